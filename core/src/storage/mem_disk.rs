//! [`MemDisk`]: an in-memory [`Disk`] with crash semantics, for deterministic crash, torn-write and
//! full-disk tests (and later the simulator).
//!
//! The model: every file has its current bytes (what reads see) and its synced bytes (what survives a
//! crash). Writes and length changes since the last fsync are kept as a pending list. [`MemDisk::crash`]
//! drops all pending changes; [`MemDisk::crash_torn`] keeps a seeded prefix of them, the last one possibly
//! cut in the middle (a torn write). Directory entries work the same way: a created, renamed or removed
//! name is durable only after [`Disk::fsync_dir`] on its directory. Directories themselves are durable at
//! once. Faults: a byte capacity (ENOSPC on writes beyond it) and failing fsyncs. A failed fsync models
//! Linux's behaviour ("fsyncgate"): the unsynced writes stay visible to reads but are lost for good, so a
//! later successful fsync does not make them durable.
//! This is not a performance model and does not model reordering of writes within one file.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::Disk;

/// ENOSPC on Linux.
const ENOSPC: i32 = 28;
/// EIO on Linux.
const EIO: i32 = 5;

#[derive(Debug, Clone)]
enum Pending {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
    pending: Vec<Pending>,
    /// Writes whose fsync failed: their ranges are never made durable (fsyncgate).
    lost: Vec<(u64, u64)>,
}

#[derive(Debug, Default)]
struct State {
    inodes: HashMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    dirs: BTreeSet<PathBuf>,
    next_ino: u64,
    capacity: Option<u64>,
    failing_fsyncs: u64,
    fsync_count: u64,
    /// `Some(n)`: power fails after `n` more successful fsyncs (see [`MemDisk::cut_power_after`]).
    power_cut: Option<u64>,
}

/// An in-memory disk where only fsynced data survives [`MemDisk::crash`]. Clones share the same disk.
#[derive(Debug, Default, Clone)]
pub struct MemDisk {
    state: Arc<Mutex<State>>,
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{}: no such file", path.display()),
    )
}

fn apply(bytes: &mut Vec<u8>, op: &Pending) {
    match op {
        Pending::Write {
            offset,
            bytes: data,
        } => {
            let start = *offset as usize;
            let end = start + data.len();
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            bytes[start..end].copy_from_slice(data);
        }
        Pending::SetLen(len) => bytes.resize(*len as usize, 0),
    }
}

/// splitmix64, for the seeded choices of [`MemDisk::crash_torn`].
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl State {
    fn ino(&self, path: &Path) -> io::Result<u64> {
        self.names.get(path).copied().ok_or_else(|| not_found(path))
    }

    fn used(&self) -> u64 {
        self.inodes.values().map(|i| i.data.len() as u64).sum()
    }

    fn check_space(&self, path: &Path, new_len: u64) -> io::Result<()> {
        let ino = self.ino(path)?;
        let old_len = self.inodes.get(&ino).map_or(0, |i| i.data.len() as u64);
        if let Some(capacity) = self.capacity {
            if new_len > old_len && self.used() + (new_len - old_len) > capacity {
                return Err(io::Error::from_raw_os_error(ENOSPC));
            }
        }
        Ok(())
    }

    fn inode_mut(&mut self, path: &Path) -> io::Result<&mut Inode> {
        let ino = self.ino(path)?;
        self.inodes.get_mut(&ino).ok_or_else(|| not_found(path))
    }

    fn dir_exists(&self, dir: &Path) -> io::Result<()> {
        if self.dirs.contains(dir) {
            Ok(())
        } else {
            Err(not_found(dir))
        }
    }

    fn parent_exists(&self, path: &Path) -> io::Result<()> {
        self.dir_exists(path.parent().ok_or_else(|| not_found(path))?)
    }

    /// Drops inodes that no name (current or durable) refers to.
    fn collect_garbage(&mut self) {
        let live: BTreeSet<u64> = self
            .names
            .values()
            .chain(self.durable_names.values())
            .copied()
            .collect();
        self.inodes.retain(|ino, _| live.contains(ino));
    }
}

impl MemDisk {
    /// An empty disk with unlimited capacity.
    pub fn new() -> MemDisk {
        MemDisk::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Limits the total bytes of all files; writes that would exceed it fail with ENOSPC.
    pub fn set_capacity(&self, capacity: Option<u64>) {
        self.state().capacity = capacity;
    }

    /// Makes the next `count` fsyncs (of files or directories) fail with EIO.
    pub fn fail_fsyncs(&self, count: u64) {
        self.state().failing_fsyncs = count;
    }

    /// Power is about to fail: from now until [`MemDisk::crash`] or [`MemDisk::crash_torn`], every fsync
    /// fails and leaves the unsynced changes pending, so the crash can keep a torn prefix of them. This
    /// models a crash in the middle of an fsync.
    pub fn cut_power(&self) {
        self.cut_power_after(0);
    }

    /// Like [`MemDisk::cut_power`], but the next `fsyncs` fsyncs (files or directories) still succeed.
    pub fn cut_power_after(&self, fsyncs: u64) {
        self.state().power_cut = Some(fsyncs);
    }

    /// How many fsyncs (files and directories) have succeeded so far.
    pub fn fsync_count(&self) -> u64 {
        self.state().fsync_count
    }

    /// The current (not necessarily durable) bytes of a file, for tests.
    pub fn file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.state();
        let ino = state.names.get(path)?;
        state.inodes.get(ino).map(|inode| inode.data.clone())
    }

    /// XORs `mask` into the byte at `offset` of a file, in both its current and its synced bytes: bit rot.
    pub fn flip_byte(&self, path: &Path, offset: u64, mask: u8) {
        let mut state = self.state();
        if let Ok(inode) = state.inode_mut(path) {
            for bytes in [&mut inode.data, &mut inode.synced] {
                if let Some(b) = bytes.get_mut(offset as usize) {
                    *b ^= mask;
                }
            }
        }
    }

    /// A power failure: every unsynced write and every unsynced directory change is lost.
    pub fn crash(&self) {
        self.crash_with(None);
    }

    /// A power failure where, per file, a seeded prefix of the unsynced changes reached the platter, the
    /// last of them possibly only partly (a torn write). Directory changes follow [`MemDisk::crash`].
    pub fn crash_torn(&self, seed: u64) {
        self.crash_with(Some(seed));
    }

    fn crash_with(&self, seed: Option<u64>) {
        let mut state = self.state();
        state.power_cut = None;
        state.names = state.durable_names.clone();
        state.collect_garbage();
        let mut rng = seed.unwrap_or(0);
        let mut inos: Vec<u64> = state.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Some(inode) = state.inodes.get_mut(&ino) else {
                continue;
            };
            let mut survived = inode.synced.clone();
            if seed.is_some() && !inode.pending.is_empty() {
                let keep = (splitmix(&mut rng) % (inode.pending.len() as u64 + 1)) as usize;
                for op in &inode.pending[..keep] {
                    apply(&mut survived, op);
                }
                if let Some(Pending::Write { offset, bytes }) = inode.pending.get(keep) {
                    let cut = (splitmix(&mut rng) % (bytes.len() as u64 + 1)) as usize;
                    apply(
                        &mut survived,
                        &Pending::Write {
                            offset: *offset,
                            bytes: bytes[..cut].to_vec(),
                        },
                    );
                }
            }
            inode.data = survived.clone();
            inode.synced = survived;
            inode.pending.clear();
            inode.lost.clear();
        }
    }

    fn fsync_fault(state: &mut State) -> io::Result<()> {
        match state.power_cut {
            Some(0) => return Err(io::Error::other("MemDisk: power cut")),
            Some(n) => state.power_cut = Some(n - 1),
            None => {}
        }
        if state.failing_fsyncs > 0 {
            state.failing_fsyncs -= 1;
            return Err(io::Error::from_raw_os_error(EIO));
        }
        state.fsync_count += 1;
        Ok(())
    }
}

impl Disk for MemDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        for ancestor in dir.ancestors() {
            if !ancestor.as_os_str().is_empty() {
                state.dirs.insert(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let state = self.state();
        state.dir_exists(dir)?;
        Ok(state
            .names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn create(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.parent_exists(path)?;
        if state.names.contains_key(path) {
            let inode = state.inode_mut(path)?;
            inode.data.clear();
            inode.pending.push(Pending::SetLen(0));
            return Ok(());
        }
        let ino = state.next_ino;
        state.next_ino += 1;
        state.inodes.insert(ino, Inode::default());
        state.names.insert(path.to_path_buf(), ino);
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let state = self.state();
        Ok(state.names.contains_key(path) || state.dirs.contains(path))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let state = self.state();
        let ino = state.ino(path)?;
        Ok(state.inodes.get(&ino).map_or(0, |i| i.data.len() as u64))
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let state = self.state();
        let ino = state.ino(path)?;
        let data = state.inodes.get(&ino).map(|i| &i.data[..]).unwrap_or(&[]);
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        let end = offset + data.len() as u64;
        state.check_space(path, end)?;
        let inode = state.inode_mut(path)?;
        let op = Pending::Write {
            offset,
            bytes: data.to_vec(),
        };
        apply(&mut inode.data, &op);
        inode.pending.push(op);
        Ok(())
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut state = self.state();
        state.check_space(path, len)?;
        let inode = state.inode_mut(path)?;
        let op = Pending::SetLen(len);
        apply(&mut inode.data, &op);
        inode.pending.push(op);
        Ok(())
    }

    fn fsync(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.ino(path)?;
        if state.power_cut == Some(0) {
            return MemDisk::fsync_fault(&mut state);
        }
        if let Err(e) = MemDisk::fsync_fault(&mut state) {
            let inode = state.inode_mut(path)?;
            let lost: Vec<(u64, u64)> = inode
                .pending
                .iter()
                .filter_map(|op| match op {
                    Pending::Write { offset, bytes } => Some((*offset, bytes.len() as u64)),
                    Pending::SetLen(_) => None,
                })
                .collect();
            inode.lost.extend(lost);
            inode.pending.clear();
            return Err(e);
        }
        let inode = state.inode_mut(path)?;
        let old = std::mem::replace(&mut inode.synced, inode.data.clone());
        // Pages whose writeback failed earlier were dropped by the kernel: their old contents stay on disk.
        for (offset, len) in inode.lost.drain(..) {
            for i in offset..offset + len {
                let i = i as usize;
                if let Some(b) = inode.synced.get_mut(i) {
                    *b = old.get(i).copied().unwrap_or(0);
                }
            }
        }
        inode.pending.clear();
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.parent_exists(to)?;
        let ino = state.names.remove(from).ok_or_else(|| not_found(from))?;
        state.names.insert(to.to_path_buf(), ino);
        state.collect_garbage();
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.names.remove(path).ok_or_else(|| not_found(path))?;
        state.collect_garbage();
        Ok(())
    }

    fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.state();
        state.dir_exists(dir)?;
        MemDisk::fsync_fault(&mut state)?;
        state.durable_names.retain(|p, _| p.parent() != Some(dir));
        let entries: Vec<(PathBuf, u64)> = state
            .names
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        state.durable_names.extend(entries);
        state.collect_garbage();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unsynced bytes and unsynced directory entries vanish on crash; fsynced ones survive.
    #[test]
    fn crash_keeps_only_synced_state() {
        let disk = MemDisk::new();
        let dir = Path::new("/d");
        disk.create_dir_all(dir).unwrap();
        let a = dir.join("a");
        disk.create(&a).unwrap();
        disk.write_at(&a, 0, b"hello").unwrap();
        disk.fsync(&a).unwrap();
        disk.fsync_dir(dir).unwrap();
        disk.write_at(&a, 5, b" world").unwrap();
        let b = dir.join("b");
        disk.create(&b).unwrap();
        disk.fsync(&b).unwrap();
        disk.crash();
        assert_eq!(disk.file(&a).unwrap(), b"hello");
        assert!(
            disk.file(&b).is_none(),
            "b's directory entry was never fsynced"
        );
    }

    /// After a failed fsync the written bytes are still readable but never become durable (fsyncgate).
    #[test]
    fn failed_fsync_loses_the_writes_for_good() {
        let disk = MemDisk::new();
        let dir = Path::new("/d");
        disk.create_dir_all(dir).unwrap();
        let a = dir.join("a");
        disk.create(&a).unwrap();
        disk.fsync_dir(dir).unwrap();
        disk.write_at(&a, 0, b"abc").unwrap();
        disk.fail_fsyncs(1);
        assert!(disk.fsync(&a).is_err());
        assert_eq!(disk.file(&a).unwrap(), b"abc");
        disk.fsync(&a).unwrap();
        disk.crash();
        assert_eq!(disk.file(&a).unwrap(), vec![0, 0, 0]);
    }

    /// Writes beyond the capacity fail with ENOSPC and change nothing.
    #[test]
    fn capacity_gives_enospc() {
        let disk = MemDisk::new();
        let dir = Path::new("/d");
        disk.create_dir_all(dir).unwrap();
        let a = dir.join("a");
        disk.create(&a).unwrap();
        disk.set_capacity(Some(4));
        disk.write_at(&a, 0, b"abcd").unwrap();
        let err = disk.write_at(&a, 4, b"e").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(ENOSPC));
        assert_eq!(disk.file(&a).unwrap(), b"abcd");
    }
}
