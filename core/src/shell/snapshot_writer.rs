//! The shell's snapshot writer: one blocking thread that writes the pieces of `Action::Snapshot` to disk
//! through [`SnapshotFile`] (compressing as they come), so the server task never holds a whole
//! serialized tree and never waits for the disk.
//!
//! The server task hands each piece over with [`SnapshotWriter::piece`] and asks [`SnapshotWriter::ready`]
//! before it gives the engine another snapshot turn: while more than [`QUEUE_LIMIT`] bytes wait for the
//! thread, turns are held back, so a slow disk slows the snapshot, not the requests, and memory stays
//! bounded. Ticks also take snapshot turns, which can exceed the limit by a piece per tick.
//!
//! One thread handles every snapshot of the server in order, so two snapshots never write at once and a
//! snapshot the engine abandoned (a `first` piece arrives while another is open, or the server stops) has
//! its temp file removed before anything else happens.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use crate::ids::Zxid;
use crate::server::standalone::Action;
use crate::shell::log_thread::{LogCommand, LogThread};
use crate::shell::metrics as shell_metrics;
use crate::storage::{DiskRef, SnapshotFile};

/// Serialized bytes that may wait for the writer thread before snapshot turns are held back.
pub const QUEUE_LIMIT: usize = 4 << 20;

/// A piece of `Action::Snapshot`, as the thread receives it.
struct Piece {
    zxid: Zxid,
    piece: Vec<u8>,
    first: bool,
    last: bool,
}

/// The handle the server task keeps (see the module doc).
#[derive(Debug)]
pub struct SnapshotWriter {
    tx: mpsc::Sender<Piece>,
    queued: Arc<AtomicUsize>,
}

impl SnapshotWriter {
    /// Starts the writer thread for snapshots in `data_dir`.
    pub fn start(disk: DiskRef, data_dir: PathBuf) -> std::io::Result<SnapshotWriter> {
        let (tx, rx) = mpsc::channel::<Piece>();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || run(disk, data_dir, rx, q))?;
        Ok(SnapshotWriter { tx, queued })
    }

    /// Whether the engine may serialize another piece now.
    pub fn ready(&self) -> bool {
        self.queued.load(Ordering::Relaxed) < QUEUE_LIMIT
    }

    /// Carries out an `Action::Snapshot`: hands its piece to the thread and, after the last piece, rolls
    /// the txn log (ZooKeeper rolls its log at each snapshot). Other actions are ignored.
    pub fn carry_out(&self, action: Action, log: &LogThread) {
        if let Action::Snapshot {
            zxid,
            piece,
            first,
            last,
        } = action
        {
            if last {
                let _ = log.commands.send(LogCommand::Roll);
            }
            self.piece(zxid, piece, first, last);
        }
    }

    /// Hands a piece of `Action::Snapshot` to the thread.
    pub fn piece(&self, zxid: Zxid, piece: Vec<u8>, first: bool, last: bool) {
        self.queued.fetch_add(piece.len(), Ordering::Relaxed);
        if self
            .tx
            .send(Piece {
                zxid,
                piece,
                first,
                last,
            })
            .is_err()
        {
            tracing::error!("snapshot writer thread is gone; snapshot at {zxid} not written");
        }
    }
}

fn run(disk: DiskRef, data_dir: PathBuf, rx: mpsc::Receiver<Piece>, queued: Arc<AtomicUsize>) {
    // The snapshot being written, when it began, and whether an error made it give up (its remaining
    // pieces are then dropped until the next first piece).
    let mut open: Option<(SnapshotFile, Instant)> = None;
    let mut failed: Option<Zxid> = None;
    while let Ok(Piece {
        zxid,
        piece,
        first,
        last,
    }) = rx.recv()
    {
        queued.fetch_sub(piece.len(), Ordering::Relaxed);
        if first {
            if let Some((file, _)) = open.take() {
                tracing::warn!("snapshot at {} abandoned unfinished", file.zxid());
                file.abandon(disk.as_ref());
            }
            failed = None;
            match SnapshotFile::begin(disk.as_ref(), &data_dir, zxid) {
                Ok(file) => open = Some((file, Instant::now())),
                Err(err) => {
                    // A failed snapshot is not fatal: the txn log still holds everything.
                    tracing::warn!("snapshot at {zxid} failed: {err}");
                    failed = Some(zxid);
                }
            }
        }
        if failed == Some(zxid) {
            continue;
        }
        let Some((file, _)) = open.as_mut().filter(|(f, _)| f.zxid() == zxid) else {
            tracing::warn!("snapshot piece for {zxid} without its first piece; dropped");
            continue;
        };
        if let Err(err) = file.append(disk.as_ref(), &piece) {
            tracing::warn!("snapshot at {zxid} failed: {err}");
            if let Some((file, _)) = open.take() {
                file.abandon(disk.as_ref());
            }
            failed = Some(zxid);
            continue;
        }
        if last {
            let (file, began) = open.take().expect("checked above");
            let bytes = file.body_len();
            match file.finish(disk.as_ref()) {
                Ok(path) => {
                    shell_metrics::record_snapshot(began.elapsed());
                    tracing::info!(
                        "snapshot at {zxid} written to {} ({bytes} bytes before compression)",
                        path.display()
                    );
                }
                Err(err) => tracing::warn!("snapshot at {zxid} failed: {err}"),
            }
        }
    }
    // The server stopped: an unfinished snapshot is removed (recovery would remove it too).
    if let Some((file, _)) = open.take() {
        file.abandon(disk.as_ref());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Disk, MemDisk, SnapshotStore};
    use std::path::Path;
    use std::time::Duration;

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < until, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Pieces become one snapshot file in order, a snapshot abandoned by a new first piece leaves no
    /// file, and the queue gauge returns to ready.
    #[test]
    fn pieces_become_one_file_and_abandoned_ones_vanish() {
        let mem = Arc::new(MemDisk::new());
        let disk: DiskRef = mem.clone();
        let w = SnapshotWriter::start(disk.clone(), PathBuf::from("/data")).unwrap();
        // An abandoned snapshot at 3, then a complete one at 5 in three pieces.
        w.piece(Zxid(3), b"never ".to_vec(), true, false);
        w.piece(Zxid(5), b"tree ".to_vec(), true, false);
        w.piece(Zxid(5), b"at ".to_vec(), false, false);
        w.piece(Zxid(5), vec![b'5'; QUEUE_LIMIT + 1], false, true);
        let store = SnapshotStore::open(disk.clone(), Path::new("/data")).unwrap();
        wait_for("the snapshot at 5", || !store.list().unwrap().is_empty());
        wait_for("an empty queue", || w.ready());
        let mut expected = b"tree at ".to_vec();
        expected.extend(vec![b'5'; QUEUE_LIMIT + 1]);
        assert_eq!(store.read(Zxid(5)).unwrap(), expected);
        let names = mem.list(Path::new("/data/version-2")).unwrap();
        assert_eq!(names, vec!["snapshot.5".to_string()], "no temp file of 3");
    }

    /// The queue gauge holds turns back while more than the limit waits for the thread.
    #[test]
    fn ready_reflects_the_queue() {
        let (tx, _rx) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let w = SnapshotWriter { tx, queued };
        assert!(w.ready());
        w.piece(Zxid(1), vec![0; QUEUE_LIMIT], true, false);
        assert!(!w.ready(), "a full queue holds turns back");
    }
}
