//! Durable storage: the txn log, snapshots, the epoch files, recovery and purge.
//!
//! This is outpost's own disk format, not ZooKeeper's (byte compatibility is promised for the wire
//! protocols, not for files); only the file names (`log.<zxid hex>`, `snapshot.<zxid hex>`,
//! `acceptedEpoch`, `currentEpoch`, all under `version-2/`) follow ZooKeeper so operators recognise them.
//! The layout, the write path with every fsync, the guarantees and recovery are described in
//! `docs/storage.md`.
//!
//! The payloads are opaque: the txn log stores the bytes the caller encoded (jute `TxnHeader` + txn) keyed
//! by zxid, and a snapshot stores the serialized tree blob the data tree module produced. This module does
//! not decode either, does not decide when to snapshot, and does not run anything on a thread of its own:
//! [`write_snapshot`] and [`purge`] are plain blocking functions the shell may call from a blocking thread.
//!
//! All IO goes through the [`Disk`] trait: [`RealDisk`] uses `std::fs`, [`MemDisk`] is an in-memory disk
//! where only fsynced bytes (and only directory entries whose directory was fsynced) survive
//! [`MemDisk::crash`], with injectable ENOSPC and fsync failures, so crash tests are deterministic.
//!
//! API in brief:
//! - [`recover`]`(disk, data_dir, data_log_dir, opts)` at startup: newest valid snapshot, the txns after it,
//!   and the open [`TxnLog`] ready for appends.
//! - [`TxnLog`]: [`append`](TxnLog::append) buffers, [`flush`](TxnLog::flush) writes the batch and fsyncs
//!   once (group commit) and returns the highest durable zxid; [`truncate_after`](TxnLog::truncate_after)
//!   for ZAB's TRUNC; [`read_from`](TxnLog::read_from) streams records from disk for DIFF sync and the
//!   relay's catch-up; [`roll`](TxnLog::roll) starts a new segment at the next flush.
//! - [`SnapshotStore`] / [`write_snapshot`]: write, list and load snapshots.
//! - [`read_epoch_file`] / [`write_epoch_file`]: `acceptedEpoch` and `currentEpoch`.
//! - [`purge`]: `autopurge.snapRetainCount` retention, called every `autopurge.purgeInterval` hours.
//!
//! Errors are [`StorageError`]. Every `Io` error from a write or an fsync is fatal to the node: the caller
//! stops rather than retrying (see [`TxnLog::flush`] for why an fsync is never retried).

mod disk;
mod epoch;
mod format;
mod mem_disk;
mod purge;
mod snapshot;
mod txn_log;

#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::ids::Zxid;

pub use disk::{Disk, RealDisk};
pub use epoch::{read_epoch_file, write_epoch_file, ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE};
pub use mem_disk::MemDisk;
pub use purge::{purge, PurgeReport, MIN_SNAP_RETAIN_COUNT};
pub use snapshot::{write_snapshot, SnapshotFile, SnapshotStore};
pub use txn_log::{read_for_sync, LogOptions, LogReader, LogRecovery, TxnLog};

/// The sub-directory of `dataDir` and `dataLogDir` that holds the files, as in ZooKeeper.
pub const VERSION_DIR: &str = "version-2";

/// A shared handle to the disk implementation.
pub type DiskRef = Arc<dyn Disk>;

/// Why a storage operation failed.
///
/// `Io` from a write or fsync is fatal (stop the node); `Corrupt` and `Gap` found during recovery are fatal
/// too and need an operator (or a resync from the leader after wiping the data directories).
#[derive(Debug, Error)]
pub enum StorageError {
    /// An operating-system call failed (including a full disk and a failed fsync).
    #[error("storage io error: {op} {}: {source}", path.display())]
    Io {
        /// The operation that failed, for example `fsync` or `write`.
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A file's bytes are not a valid encoding at `offset`.
    #[error("corrupt storage file {} at offset {offset}: {detail}", file.display())]
    Corrupt {
        /// The damaged file.
        file: PathBuf,
        /// Byte offset of the damage inside `file`.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// The zxid counter skips within one epoch, so a txn (or a whole segment) is missing.
    #[error("zxid gap in {}: expected {expected}, found {found}", file.display())]
    Gap {
        /// The zxid that should have come next.
        expected: Zxid,
        /// The zxid found instead.
        found: Zxid,
        /// The file holding `found`.
        file: PathBuf,
    },
}

/// Result alias for this module.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Builds a closure that wraps an `io::Error` into [`StorageError::Io`].
pub(crate) fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { op, path, source }
}

/// Shorthand for a [`StorageError::Corrupt`].
pub(crate) fn corrupt(file: &Path, offset: u64, detail: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        detail: detail.into(),
    }
}

/// Reads a whole file through `disk`.
pub(crate) fn read_whole(disk: &dyn Disk, path: &Path) -> Result<Vec<u8>> {
    let len = disk.len(path).map_err(io_err("stat", path))?;
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < len {
        let n = disk
            .read_at(path, offset, &mut chunk)
            .map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
        offset += n as u64;
    }
    Ok(out)
}

/// Checks that `next` may follow `prev` in a replayed txn stream: within one epoch the counter increments by
/// exactly one (every ZAB proposal takes the next counter), across epochs anything greater is accepted.
///
/// `prev` = [`Zxid::ZERO`] stands for the empty database (no snapshot), whose history must start at the first
/// txn of an epoch (counter 1): a log whose older segments were purged cannot rebuild the tree on its own.
pub(crate) fn check_contiguous(prev: Zxid, next: Zxid, file: &Path) -> Result<()> {
    let expected = if prev == Zxid::ZERO {
        Zxid::new(next.epoch(), 1)
    } else if next.epoch() == prev.epoch() {
        Zxid::new(prev.epoch(), prev.counter().wrapping_add(1))
    } else {
        return Ok(());
    };
    if next != expected {
        return Err(StorageError::Gap {
            expected,
            found: next,
            file: file.to_path_buf(),
        });
    }
    Ok(())
}

/// What [`recover`] found on disk.
#[derive(Debug)]
pub struct Recovered {
    /// The newest valid snapshot's zxid and tree blob, or `None` for an empty database.
    pub snapshot: Option<(Zxid, Vec<u8>)>,
    /// Every logged txn with a zxid greater than the snapshot's, in zxid order, gap-checked.
    pub txns: Vec<(Zxid, Vec<u8>)>,
    /// The highest zxid the recovered database reflects ([`Zxid::ZERO`] when empty).
    pub last_zxid: Zxid,
    /// What opening the txn log repaired.
    pub log: LogRecovery,
}

/// Startup recovery: load the newest valid snapshot (falling back past corrupt ones with a warning), open
/// the txn log (truncating a torn tail), and read every txn after the snapshot, checking that zxids are
/// contiguous within each epoch.
///
/// `data_dir` and `data_log_dir` are the configured `dataDir` and `dataLogDir` (often the same); the files
/// live in their `version-2` sub-directories. Stale `*.tmp` files from interrupted snapshot or epoch writes
/// are removed. Any error is fatal: the node must not start on a log it cannot account for.
pub fn recover(
    disk: DiskRef,
    data_dir: &Path,
    data_log_dir: &Path,
    opts: LogOptions,
) -> Result<(TxnLog, Recovered)> {
    let snapshots = SnapshotStore::open(disk.clone(), data_dir)?;
    snapshots.remove_temp_files()?;
    let snapshot = snapshots.newest_valid()?;
    let base = snapshot.as_ref().map_or(Zxid::ZERO, |(zxid, _)| *zxid);
    let (mut log, log_recovery) = TxnLog::open(disk, data_log_dir, opts)?;
    let mut txns = Vec::new();
    for record in log.read_from(base) {
        txns.push(record?);
    }
    let last_zxid = txns.last().map_or(base, |(zxid, _)| *zxid);
    // Appends must continue above everything the database reflects, even when the log is behind the
    // snapshot (a learner that received a SNAP sync).
    if snapshot.is_some() {
        log.raise_last_zxid(last_zxid);
    }
    Ok((
        log,
        Recovered {
            snapshot,
            txns,
            last_zxid,
            log: log_recovery,
        },
    ))
}
