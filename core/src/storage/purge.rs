//! Purge: ZooKeeper's `autopurge.snapRetainCount` retention, run by the shell every
//! `autopurge.purgeInterval` hours.
//!
//! Keeps the newest N valid snapshots (N at least 3, as ZooKeeper enforces), removes older snapshots, and
//! removes the log segments whose records are all covered by the oldest retained snapshot. It never removes
//! the newest log segment, so it is safe to run while the [`super::TxnLog`] is appending. It must not run
//! concurrently with recovery or [`super::TxnLog::truncate_after`] (both happen before or during a learner
//! sync, when the shell does not purge).

use std::path::{Path, PathBuf};

use super::txn_log::list_segments;
use super::{io_err, DiskRef, Result, SnapshotStore, VERSION_DIR};

/// ZooKeeper refuses to keep fewer than 3 snapshots (`PurgeTxnLog`).
pub const MIN_SNAP_RETAIN_COUNT: usize = 3;

/// What [`purge`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PurgeReport {
    /// Snapshot files removed.
    pub removed_snapshots: Vec<PathBuf>,
    /// Txn log segments removed.
    pub removed_segments: Vec<PathBuf>,
}

/// Keeps the `snap_retain_count` (raised to [`MIN_SNAP_RETAIN_COUNT`]) newest valid snapshots and removes
/// older snapshots and every log segment wholly older than the oldest retained snapshot: the segment that
/// holds (or would hold) that snapshot's zxid + 1 and all later segments are kept, so recovery from any
/// retained snapshot still finds every txn after it. With no valid snapshot nothing is removed.
///
/// Removal order: snapshots, then segments oldest first, then one directory fsync per directory. A crash
/// before the directory fsync can bring a removed file back; that is harmless, the next purge removes it.
pub fn purge(
    disk: DiskRef,
    data_dir: &Path,
    data_log_dir: &Path,
    snap_retain_count: usize,
) -> Result<PurgeReport> {
    let retain = snap_retain_count.max(MIN_SNAP_RETAIN_COUNT);
    let store = SnapshotStore::open(disk.clone(), data_dir)?;
    let valid = store.newest_valid_zxids(retain)?;
    let mut report = PurgeReport::default();
    let Some(&oldest_kept) = valid.last() else {
        return Ok(report);
    };
    if valid.len() < retain {
        // Fewer valid snapshots than we must keep: keep everything, as ZooKeeper does.
        return Ok(report);
    }
    for (zxid, path) in store.list()? {
        if zxid < oldest_kept {
            disk.remove(&path).map_err(io_err("remove", &path))?;
            report.removed_snapshots.push(path);
        }
    }
    let log_dir = data_log_dir.join(VERSION_DIR);
    disk.create_dir_all(&log_dir)
        .map_err(io_err("create dir", &log_dir))?;
    let segments = list_segments(&*disk, &log_dir)?;
    // Segment i holds only zxids below segment i+1's first zxid; if that is <= oldest_kept + 1, every
    // record of segment i is covered by the snapshot.
    let needed_from = oldest_kept.0.saturating_add(1);
    for pair in segments.windows(2) {
        let (_, path) = &pair[0];
        let (next_first, _) = pair[1];
        if next_first.0 <= needed_from {
            disk.remove(path).map_err(io_err("remove", path))?;
            report.removed_segments.push(path.clone());
        }
    }
    let snap_dir = data_dir.join(VERSION_DIR);
    if !report.removed_snapshots.is_empty() {
        disk.fsync_dir(&snap_dir)
            .map_err(io_err("fsync dir", &snap_dir))?;
    }
    if !report.removed_segments.is_empty() {
        disk.fsync_dir(&log_dir)
            .map_err(io_err("fsync dir", &log_dir))?;
    }
    if !report.removed_snapshots.is_empty() || !report.removed_segments.is_empty() {
        tracing::info!(
            snapshots = report.removed_snapshots.len(),
            segments = report.removed_segments.len(),
            oldest_kept = %oldest_kept,
            "purged old snapshots and txn log segments"
        );
    }
    Ok(report)
}
