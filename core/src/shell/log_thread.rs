//! The log thread: owns the [`TxnLog`], appends the txns the server task hands it, and makes them durable
//! with one fsync per batch (group commit).
//!
//! Batching is natural, not timed: the thread blocks for the first append, then takes every append already
//! queued behind it, writes them all, fsyncs once, and reports the highest durable zxid. Under light load a
//! batch is one txn (lowest latency); under heavy load one fsync covers hundreds.
//!
//! A failed write or fsync is fatal: the thread reports it and stops, and the server stops rather than
//! acknowledge a write it may not have persisted (see `docs/storage.md`).

use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use tokio::sync::mpsc::UnboundedSender;

use crate::ids::Zxid;
use crate::storage::{StorageError, TxnLog};

/// What the server task asks of the log thread.
#[derive(Debug)]
pub enum LogCommand {
    /// Append one txn (an encoded `TxnEntry`) with its zxid.
    Append(Zxid, Vec<u8>),
    /// Start a new segment at the next write (after a snapshot, as ZooKeeper rolls its log).
    Roll,
    /// Truncate everything after this zxid (ZAB's TRUNC), then report it as durable.
    TruncateAfter(Zxid),
    /// ZAB's TRUNC for a learner: flush, truncate after the zxid, then answer on the channel (the peer
    /// task waits for it before reloading the database from disk).
    TruncateAfterAck(Zxid, tokio::sync::oneshot::Sender<Result<(), StorageError>>),
    /// A SNAP sync installed a snapshot at this zxid: drop records after it (a diverged tail) and let
    /// appends continue above it, then answer on the channel.
    ResetTo(Zxid, tokio::sync::oneshot::Sender<Result<(), StorageError>>),
}

/// What the log thread reports back.
#[derive(Debug)]
pub enum LogEvent {
    /// Every txn up to and including this zxid is on disk and fsynced.
    Durable(Zxid),
    /// Writing or fsyncing failed; the node must stop.
    Failed(StorageError),
}

/// A handle to the running log thread.
pub struct LogThread {
    /// Send commands here.
    pub commands: Sender<LogCommand>,
    handle: Option<JoinHandle<()>>,
}

impl LogThread {
    /// Starts the thread. Durable zxids and failures arrive on `events`.
    pub fn start(log: TxnLog, events: UnboundedSender<LogEvent>) -> std::io::Result<LogThread> {
        let (commands, rx) = std::sync::mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("outpost-txnlog".into())
            .spawn(move || run(log, rx, events))?;
        Ok(LogThread {
            commands,
            handle: Some(handle),
        })
    }
}

impl Drop for LogThread {
    fn drop(&mut self) {
        // Closing the channel ends the loop after the current batch; joining makes shutdown orderly.
        let (dead, _) = std::sync::mpsc::channel();
        self.commands = dead;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

fn run(mut log: TxnLog, rx: Receiver<LogCommand>, events: UnboundedSender<LogEvent>) {
    while let Ok(first) = rx.recv() {
        // Everything already queued behind the first command joins its batch (one fsync for all).
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        match apply_batch(&mut log, batch) {
            Ok(Some(zxid)) => {
                if events.send(LogEvent::Durable(zxid)).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(err) => {
                let _ = events.send(LogEvent::Failed(err));
                return;
            }
        }
    }
}

fn apply_batch(log: &mut TxnLog, batch: Vec<LogCommand>) -> Result<Option<Zxid>, StorageError> {
    let mut durable = None;
    for cmd in batch {
        match cmd {
            LogCommand::Append(zxid, bytes) => log.append(zxid, &bytes),
            LogCommand::Roll => {
                // Make what is buffered durable before the segment changes.
                if let Some(z) = log.flush()? {
                    durable = Some(z);
                }
                log.roll();
            }
            LogCommand::TruncateAfter(zxid) => {
                log.flush()?;
                log.truncate_after(zxid)?;
                durable = Some(zxid);
            }
            LogCommand::TruncateAfterAck(zxid, reply) => {
                truncate_and_answer(log, zxid, false, reply)?;
                durable = Some(zxid);
            }
            LogCommand::ResetTo(zxid, reply) => {
                truncate_and_answer(log, zxid, true, reply)?;
                durable = Some(zxid);
            }
        }
    }
    // The batch's write + fsync, timed for the `fsynctime` summary (ZooKeeper times its commit the same way).
    let at = std::time::Instant::now();
    if let Some(z) = log.flush()? {
        super::metrics::record_fsync(at.elapsed());
        durable = Some(z);
    }
    Ok(durable)
}

/// Flushes, drops the records after `zxid` and answers the peer task; with `raise`, appends continue
/// above `zxid` even when the log ends below it (a snapshot was installed there). A failure is fatal
/// for the log thread as for any write.
fn truncate_and_answer(
    log: &mut TxnLog,
    zxid: Zxid,
    raise: bool,
    reply: tokio::sync::oneshot::Sender<Result<(), StorageError>>,
) -> Result<(), StorageError> {
    let result = log.flush().and_then(|_| log.truncate_after(zxid));
    let failed = result.is_err();
    if !failed && raise {
        log.raise_last_zxid(zxid);
    }
    let _ = reply.send(result);
    if failed {
        return Err(StorageError::Corrupt {
            file: log.dir().to_path_buf(),
            offset: 0,
            detail: format!("truncating the txn log after {zxid} failed"),
        });
    }
    Ok(())
}
