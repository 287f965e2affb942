//! Per-connection request ordering: replies leave in request order, and a session's reads wait behind its
//! own earlier writes (ZooKeeper's CommitProcessor rule), while reads of other sessions never wait.
//!
//! The queue holds, in arrival order, writes that are in flight (identified by their xid) and reads that
//! arrived after one of them. A read that arrives when nothing is in flight is answered at once and never
//! enters the queue, so an idle session pays nothing.

use std::collections::VecDeque;

/// One entry of a connection's queue.
#[derive(Debug)]
pub enum Queued<R> {
    /// A write (or anything answered only after a txn commits) waiting for the txn with this xid.
    Write {
        /// The request's xid.
        xid: i32,
    },
    /// A read that must wait behind an earlier write.
    Read(R),
}

/// The queue of one connection.
#[derive(Debug)]
pub struct OrderQueue<R> {
    entries: VecDeque<Queued<R>>,
}

impl<R> Default for OrderQueue<R> {
    fn default() -> Self {
        OrderQueue {
            entries: VecDeque::new(),
        }
    }
}

impl<R> OrderQueue<R> {
    /// True when nothing is in flight: a read may be answered immediately.
    pub fn is_idle(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of requests waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a write in flight.
    pub fn push_write(&mut self, xid: i32) {
        self.entries.push_back(Queued::Write { xid });
    }

    /// Queues a read behind the writes in flight. Call only when not idle.
    pub fn push_read(&mut self, read: R) {
        debug_assert!(!self.is_idle(), "an idle connection answers reads at once");
        self.entries.push_back(Queued::Read(read));
    }

    /// The xid of the write at the head of the queue, if the head is a write.
    pub fn head_write(&self) -> Option<i32> {
        match self.entries.front() {
            Some(Queued::Write { xid }) => Some(*xid),
            _ => None,
        }
    }

    /// The write with `xid` completed. Returns true when it was at the head of the queue (the normal case);
    /// a commit for an xid that is not at the head means the pipeline reordered requests, which is a bug.
    pub fn complete_write(&mut self, xid: i32) -> bool {
        match self.entries.front() {
            Some(Queued::Write { xid: head }) if *head == xid => {
                self.entries.pop_front();
                true
            }
            _ => false,
        }
    }

    /// Takes the reads at the head of the queue that no longer wait behind any write.
    pub fn take_ready_reads(&mut self) -> Vec<R> {
        let mut out = Vec::new();
        while matches!(self.entries.front(), Some(Queued::Read(_))) {
            if let Some(Queued::Read(r)) = self.entries.pop_front() {
                out.push(r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads queued behind a write come out only after that write completes, in arrival order, and stop at
    /// the next write.
    #[test]
    fn reads_wait_for_earlier_writes_only() {
        let mut q: OrderQueue<&str> = OrderQueue::default();
        assert!(q.is_idle());
        q.push_write(1);
        q.push_read("r2");
        q.push_read("r3");
        q.push_write(4);
        q.push_read("r5");
        assert!(q.take_ready_reads().is_empty());
        assert!(q.complete_write(1));
        assert_eq!(q.take_ready_reads(), vec!["r2", "r3"]);
        assert!(!q.complete_write(7), "only the head write may complete");
        assert!(q.complete_write(4));
        assert_eq!(q.take_ready_reads(), vec!["r5"]);
        assert!(q.is_idle());
    }
}
