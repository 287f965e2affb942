//! The shell's snapshot writer: one blocking thread that writes the pieces of `Action::Snapshot` to disk
//! through [`SnapshotFile`] (compressing as they come), so the server task never holds a whole
//! serialized tree and never waits for the disk.
//!
//! The server task hands each piece over with [`SnapshotWriter::piece`] and awaits
//! [`SnapshotWriter::turn`] before it gives the engine another snapshot turn: while more than
//! [`QUEUE_LIMIT`] bytes wait for the thread, turns are held back (the thread wakes the task when the
//! queue drains), so a slow disk slows the snapshot, not the requests, and memory stays bounded. Ticks
//! also take snapshot turns, which can exceed the limit by a piece per tick.
//!
//! [`TurnShare`] decides when a busy server task gives the snapshot a turn: a piece (128 KiB in the
//! server) costs hundreds of microseconds of serialization or more while a request costs a few, so
//! the share is measured in time, not turns. After a piece that took `d`, the next piece waits until
//! the task has had `d × (SHARE_DENOMINATOR - 1)` for everything else; a task with nothing else to
//! do gives the snapshot every turn. Requests then never wait behind more than one piece, and a
//! snapshot still finishes under a load that never lets the task go idle.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

use crate::ids::Zxid;
use crate::server::standalone::Action;
use crate::shell::log_thread::{LogCommand, LogThread};
use crate::shell::metrics as shell_metrics;
use crate::storage::{DiskRef, SnapshotFile};

/// Serialized bytes that may wait for the writer thread before snapshot turns are held back.
pub const QUEUE_LIMIT: usize = 4 << 20;

/// While other inputs wait, a snapshot gets at most one part in this many of the server task's time.
pub const SHARE_DENOMINATOR: u32 = 3;

/// When the snapshot may next take a turn from a busy task (see the module doc). The task places a
/// snapshot branch first in its biased `select!`, enabled when [`TurnShare::due`], and another last,
/// which runs whenever nothing else is ready.
#[derive(Debug, Default)]
pub struct TurnShare {
    next_due: Option<Instant>,
}

impl TurnShare {
    /// Whether the task has had its share since the last piece.
    pub fn due(&self) -> bool {
        self.next_due.is_none_or(|at| Instant::now() >= at)
    }

    /// A snapshot turn that began at `began` has just ended.
    pub fn took_turn(&mut self, began: Instant) {
        let now = Instant::now();
        let spent = now.saturating_duration_since(began);
        self.next_due = Some(now + spent * (SHARE_DENOMINATOR - 1));
    }
}

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
    /// Notified by the thread when the queue drops below [`QUEUE_LIMIT`].
    room: Arc<Notify>,
}

impl SnapshotWriter {
    /// Starts the writer thread for snapshots in `data_dir`.
    pub fn start(disk: DiskRef, data_dir: PathBuf) -> std::io::Result<SnapshotWriter> {
        let (tx, rx) = mpsc::channel::<Piece>();
        let queued = Arc::new(AtomicUsize::new(0));
        let room = Arc::new(Notify::new());
        let (q, r) = (queued.clone(), room.clone());
        std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || run(disk, data_dir, rx, q, r))?;
        Ok(SnapshotWriter { tx, queued, room })
    }

    /// Whether the engine may serialize another piece now.
    pub fn ready(&self) -> bool {
        self.queued.load(Ordering::Relaxed) < QUEUE_LIMIT
    }

    /// Completes when the engine may serialize another piece: the queue has room and the task's
    /// cooperative budget is not spent. Cancel safe. Without the budget check, a task whose channels
    /// all report "budget spent" would find only this branch ready and spend its turn serializing
    /// pieces until the queue filled, while requests waited.
    pub async fn turn(&self) {
        while !self.ready() {
            // `notify_one` stores a permit when no one waits, so a wake-up between the check and
            // this await is not lost.
            self.room.notified().await;
        }
        tokio::task::consume_budget().await;
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

fn run(
    disk: DiskRef,
    data_dir: PathBuf,
    rx: mpsc::Receiver<Piece>,
    queued: Arc<AtomicUsize>,
    room: Arc<Notify>,
) {
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
        let before = queued.fetch_sub(piece.len(), Ordering::Relaxed);
        if before >= QUEUE_LIMIT && before - piece.len() < QUEUE_LIMIT {
            room.notify_one();
        }
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
        let w = SnapshotWriter {
            tx,
            queued,
            room: Arc::default(),
        };
        assert!(w.ready());
        w.piece(Zxid(1), vec![0; QUEUE_LIMIT], true, false);
        assert!(!w.ready(), "a full queue holds turns back");
    }

    /// A turn held back by a full queue is granted once the thread drains it, without any other
    /// wake-up of the waiting task.
    #[test]
    fn a_held_turn_is_granted_when_the_queue_drains() {
        let mem = Arc::new(MemDisk::new());
        let disk: DiskRef = mem.clone();
        let w = SnapshotWriter::start(disk, PathBuf::from("/data")).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Two pieces over the limit: the first may already be taken, the queue stays full
            // until the thread has written at least one.
            w.piece(Zxid(7), vec![b'x'; QUEUE_LIMIT], true, false);
            w.piece(Zxid(7), vec![b'y'; QUEUE_LIMIT], false, true);
            tokio::time::timeout(Duration::from_secs(10), w.turn())
                .await
                .expect("the drained queue grants a turn");
            assert!(w.ready());
        });
    }

    /// After a turn, the share holds the snapshot back for twice the turn's length, then lets it in.
    #[test]
    fn turn_share_leaves_the_task_twice_the_turn() {
        let mut share = TurnShare::default();
        assert!(share.due(), "the first turn is due at once");
        let began = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        share.took_turn(began);
        assert!(!share.due(), "held back right after a 20 ms turn");
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !share.due(),
            "still held back halfway through the 40 ms owed"
        );
        std::thread::sleep(Duration::from_millis(30));
        assert!(share.due(), "due once 40 ms have passed");
    }
}
