//! The leader's learner sync decision (ZAB phase 2): given the zxid a learner reported in ACKEPOCH, the
//! leader's last processed zxid and its in-memory log of recent committed txns, choose DIFF, TRUNC or
//! SNAP and which committed txns follow as PROPOSAL+COMMIT pairs. Mirrors ZooKeeper 3.8's
//! `LearnerHandler.syncFollower` and `queueCommittedProposals` (guide §7.5).
//!
//! A learner behind the committed log can be served from the on-disk txn log (rule 5:
//! `zookeeper.snapshotSizeFactor`, `ZKDatabase.getProposalsFromTxnLog`): [`wants_txn_log`] says when
//! to ask the driver for the log's txns after the learner's zxid, and [`plan_txn_log_sync`] checks
//! that what the driver read connects the learner to the committed log. Everything here is pure: no
//! IO, no clock.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::ids::Zxid;

/// ZooKeeper's default `zookeeper.commitLogCount`.
pub const DEFAULT_COMMIT_LOG_COUNT: usize = 500;

/// The last `max_count` committed txns, oldest first, with strictly increasing zxids
/// (`ZKDatabase.committedLog`). The txn bytes are PROPOSAL data, shared with whoever else holds them.
///
/// Java trims before adding and so briefly holds `commitLogCount + 1` proposals; this log holds at
/// most `max_count`.
#[derive(Clone, Debug, Default)]
pub struct CommittedLog {
    entries: VecDeque<(Zxid, Arc<[u8]>)>,
    max_count: usize,
}

impl CommittedLog {
    /// An empty log keeping at most `max_count` txns (`zookeeper.commitLogCount`).
    pub fn new(max_count: usize) -> Self {
        CommittedLog {
            entries: VecDeque::with_capacity(max_count.min(DEFAULT_COMMIT_LOG_COUNT)),
            max_count,
        }
    }

    /// Appends a committed txn, evicting the oldest beyond `max_count` (`addCommittedProposal`).
    ///
    /// # Panics
    /// If `zxid` is not above the last one: commits are applied in zxid order, so anything else is a
    /// bug in the caller.
    pub fn push(&mut self, zxid: Zxid, txn: Arc<[u8]>) {
        if let Some(max) = self.max_zxid() {
            assert!(
                zxid > max,
                "committed log zxids must increase: {zxid} after {max}"
            );
        }
        self.entries.push_back((zxid, txn));
        while self.entries.len() > self.max_count {
            self.entries.pop_front();
        }
    }

    /// The oldest zxid held (`minCommittedLog` when the log is not empty).
    pub fn min_zxid(&self) -> Option<Zxid> {
        self.entries.front().map(|e| e.0)
    }

    /// The newest zxid held (`maxCommittedLog` when the log is not empty).
    pub fn max_zxid(&self) -> Option<Zxid> {
        self.entries.back().map(|e| e.0)
    }

    /// The entries with a zxid above `zxid`, oldest first.
    pub fn after(&self, zxid: Zxid) -> impl Iterator<Item = (Zxid, &Arc<[u8]>)> + '_ {
        let start = self.entries.partition_point(|e| e.0 <= zxid);
        self.entries.range(start..).map(|e| (e.0, &e.1))
    }

    /// The number of txns held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no txn is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops every txn (`ZKDatabase.clear`, e.g. before loading a snapshot).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

/// How the leader brings one learner up to date. After the op packet (and, for SNAP, the snapshot)
/// come the NEWLEADER / UPTODATE steps and `startForwarding`'s in-flight proposals, which are not part
/// of this plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncPlan {
    /// Send `SNAP(last_processed)` and the snapshot; nothing from the committed log.
    Snap,
    /// Send `DIFF(zxid)`, then `PROPOSAL`+`COMMIT` for every committed-log entry with a zxid above
    /// `after`, the learner's last zxid. `zxid` is what Java puts in the packet: the peer's zxid when
    /// it is already in sync, else `maxCommittedLog` (learners do not use it).
    Diff {
        /// The DIFF packet's zxid.
        zxid: Zxid,
        /// Entries above this zxid follow.
        after: Zxid,
    },
    /// Send `TRUNC(zxid)`: the learner drops its txns above `zxid`; then `PROPOSAL`+`COMMIT` for every
    /// committed-log entry above `after`. With the in-memory log, `after == zxid`: the learner's last
    /// zxid once it has truncated.
    Trunc {
        /// The zxid the learner truncates its log to.
        zxid: Zxid,
        /// Entries above this zxid follow.
        after: Zxid,
    },
}

impl SyncPlan {
    /// The zxid after which `startForwarding` queues in-flight proposals: the last txn this plan sends,
    /// else `after`, and `last_processed` for SNAP (Java's `currentZxid`; in the one case where Java
    /// falls back to SNAP after the walk found no op packet it passes the peer's zxid instead, which
    /// only re-sends txns the snapshot already holds).
    pub fn sync_point(&self, log: &CommittedLog, last_processed: Zxid) -> Zxid {
        match *self {
            SyncPlan::Snap => last_processed,
            SyncPlan::Diff { after, .. } | SyncPlan::Trunc { after, .. } => {
                log.after(after).last().map_or(after, |(z, _)| z)
            }
        }
    }
}

/// `(peerLastZxid & 0xffffffff) == 0`: the learner last synced with a leader of that epoch and has
/// no txn of it, so its zxid is in no leader's history (Java sends DIFF rather than TRUNC for it).
fn is_new_epoch_zxid(z: Zxid) -> bool {
    z.counter() == 0
}

/// Chooses how to sync a learner whose last zxid (from ACKEPOCH) is `peer_last_zxid`, as
/// `LearnerHandler.syncFollower` does without the on-disk txn log (guide §7.5):
///
/// 1. `force_snap` (`zookeeper.forceSnapshotSync`) → SNAP;
/// 2. the peer is at `last_processed` → `DIFF(peer)`, nothing else;
/// 3. the peer is beyond the log and not at a new-epoch zxid → `TRUNC(maxCommittedLog)` (Java does
///    this even when the two zxids are of different epochs);
/// 4. the peer is within `[minCommittedLog, maxCommittedLog]` → the `queueCommittedProposals` walk:
///    the peer's zxid found, or a new-epoch zxid → `DIFF(maxCommittedLog)`; otherwise the peer has
///    txns the leader never committed → `TRUNC` to the newest entry below the peer, unless the next
///    entry is of another epoch (a TRUNC never crosses epochs) → SNAP;
/// 6. otherwise → SNAP; the caller may first try rule 5, the on-disk txn log ([`wants_txn_log`]).
///
/// An empty log counts as `min = max = last_processed`. The log must hold only applied txns
/// (`max_zxid() <= last_processed`), as ZooKeeper adds to it after applying.
pub fn plan_sync(
    peer_last_zxid: Zxid,
    last_processed: Zxid,
    log: &CommittedLog,
    force_snap: bool,
) -> SyncPlan {
    debug_assert!(
        log.max_zxid().is_none_or(|m| m <= last_processed),
        "committed log beyond last processed zxid {last_processed}"
    );
    let peer = peer_last_zxid;
    let (min, max) = match (log.min_zxid(), log.max_zxid()) {
        (Some(min), Some(max)) => (min, max),
        _ => (last_processed, last_processed),
    };
    if force_snap {
        return SyncPlan::Snap;
    }
    if peer == last_processed {
        return SyncPlan::Diff {
            zxid: peer,
            after: peer,
        };
    }
    if peer > max && !is_new_epoch_zxid(peer) {
        return SyncPlan::Trunc {
            zxid: max,
            after: max,
        };
    }
    if min <= peer && peer <= max {
        return walk_committed_log(peer, max, log);
    }
    SyncPlan::Snap
}

/// `queueCommittedProposals(log, peer, null, maxCommittedLog)` without the queueing: only the first
/// entry at or above the peer's zxid decides the op packet; every entry after the learner's last zxid
/// then follows.
fn walk_committed_log(peer: Zxid, max: Zxid, log: &CommittedLog) -> SyncPlan {
    let first = log.entries.partition_point(|e| e.0 < peer);
    let Some(&(z, _)) = log.entries.get(first) else {
        // Every entry is below the peer: only the catch after Java's loop can queue an op packet.
        return if is_new_epoch_zxid(peer) {
            SyncPlan::Diff {
                zxid: max,
                after: peer,
            }
        } else {
            SyncPlan::Snap
        };
    };
    if z == peer || is_new_epoch_zxid(peer) {
        return SyncPlan::Diff {
            zxid: max,
            after: peer,
        };
    }
    // z > peer: the peer has txns this leader never committed; it may be a former leader.
    if z.epoch() != peer.epoch() {
        // Java: "We cannot send TRUNC that cross epoch boundary. The learner will crash".
        return SyncPlan::Snap;
    }
    // Java's prevProposalZxid starts at -1; with min <= peer an entry below the peer always exists.
    let prev = first
        .checked_sub(1)
        .map_or(Zxid::NONE, |i| log.entries[i].0);
    SyncPlan::Trunc {
        zxid: prev,
        after: prev,
    }
}

/// Rule 5's precondition (`peerLastZxid < minCommittedLog && txnLogSyncEnabled`): whether a learner that
/// [`plan_sync`] would SNAP should first be tried with the on-disk txn log. `size_factor` is
/// `zookeeper.snapshotSizeFactor` (negative disables). A learner with no txn at all (zxid 0) is not
/// tried: no log reaches back before the first txn, so Java's iterator would be empty too.
pub fn wants_txn_log(
    peer_last_zxid: Zxid,
    last_processed: Zxid,
    log: &CommittedLog,
    size_factor: f64,
) -> bool {
    let min = log.min_zxid().unwrap_or(last_processed);
    size_factor >= 0.0 && peer_last_zxid != Zxid::ZERO && peer_last_zxid < min
}

/// Rule 5's plan once the driver read the txn log: `disk` holds the logged txns after the learner's
/// zxid, oldest first, read only when the log holds the learner's own zxid (so the learner's history
/// is a prefix of ours: Java's "strictly the starting txn" check). The txns up to the committed log
/// then the committed log follow a `DIFF(maxCommittedLog)`, as `queueCommittedProposals` over the
/// `TxnLogProposalIterator` and then the committed log does. Returns the DIFF plan and the zxid of the
/// last disk txn to send (committed-log entries above it follow), or `None` — SNAP — when the disk
/// txns do not reach the committed log (Java's "Detected gap between end of txnlog and start of
/// committedLog"), are not one unbroken history after the learner's zxid (`epoch_start_counter`, 0 in
/// production, is the counter each epoch's txns start after), or run past what this server applied.
///
/// The committed log may have moved on since the read was asked for; the check is against `log` now.
pub fn plan_txn_log_sync(
    peer_last_zxid: Zxid,
    last_processed: Zxid,
    log: &CommittedLog,
    disk: &[(Zxid, Arc<[u8]>)],
    epoch_start_counter: u32,
) -> Option<(SyncPlan, Zxid)> {
    let (min, max) = match (log.min_zxid(), log.max_zxid()) {
        (Some(min), Some(max)) => (min, max),
        _ => (last_processed, last_processed),
    };
    // The learner's zxid and the txns after it must be one unbroken history: within an epoch the
    // counters follow each other, and a new epoch's txns start right after `epoch_start_counter`. A
    // log that kept txns of an abandoned history (below a snapshot a learner installed) breaks this,
    // and sending them would corrupt the learner.
    let mut prev = peer_last_zxid;
    for (zxid, _) in disk {
        let next_ok = if zxid.epoch() == prev.epoch() {
            prev.counter().checked_add(1) == Some(zxid.counter())
        } else {
            zxid.epoch() > prev.epoch() && zxid.counter() == epoch_start_counter.wrapping_add(1)
        };
        if !next_ok {
            return None;
        }
        prev = *zxid;
    }
    let last = disk.last()?.0;
    // The disk txns must reach the committed log's first entry (or, with an empty log, what this
    // server applied), and never beyond what it applied.
    if last < min || last > last_processed {
        return None;
    }
    let plan = SyncPlan::Diff {
        zxid: max,
        after: peer_last_zxid,
    };
    Some((plan, last))
}
