//! The handful of file operations storage needs, as a trait, and [`RealDisk`], its `std::fs` implementation.
//!
//! Keeping IO behind [`Disk`] lets tests and the simulator substitute [`super::MemDisk`], where only
//! fsynced bytes survive a crash. Paths are full paths; the trait has no notion of a current directory.
//! This module does not interpret file contents.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// File operations used by storage. Implementations must be usable from several threads (the log writer,
/// a snapshot thread, a purge thread, catch-up readers).
pub trait Disk: Send + Sync + fmt::Debug {
    /// Creates `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names (not paths) of the regular files directly in `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates an empty file at `path`, truncating an existing one.
    fn create(&self, path: &Path) -> io::Result<()>;
    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;
    /// The length of the file at `path`.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at or past the end).
    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `data` at `offset`, extending the file if needed.
    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Sets the file length, cutting it or extending it with zeros.
    fn set_len(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Makes the file's data durable, with the metadata needed to read it back (its size and block map):
    /// `fdatasync`, as ZooKeeper's `FileChannel.force(false)`. Timestamps may lag, which saves a journal
    /// commit per call when an append stays within blocks the file already has.
    fn fsync(&self, path: &Path) -> io::Result<()>;
    /// Atomically renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes the file at `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the entries of directory `dir` durable (created, renamed and removed names).
    fn fsync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// [`Disk`] on the real file system.
///
/// Files that are written are kept open (one handle per path) so that a write, the following fsync and
/// any error the kernel reports in between all go through the same file description: after a writeback
/// error, an fsync on a freshly opened descriptor may not report it on older kernels ("fsyncgate").
#[derive(Debug, Default, Clone)]
pub struct RealDisk {
    handles: Arc<Mutex<HashMap<PathBuf, Arc<File>>>>,
}

impl RealDisk {
    /// A real disk with no open handles.
    pub fn new() -> RealDisk {
        RealDisk::default()
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<PathBuf, Arc<File>>> {
        // A panic while the lock was held cannot leave the map inconsistent (single inserts and removes).
        self.handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached writable handle for `path`, opening (without creating) it if needed.
    fn writable(&self, path: &Path) -> io::Result<Arc<File>> {
        let mut handles = self.handles();
        if let Some(file) = handles.get(path) {
            return Ok(file.clone());
        }
        let file = Arc::new(OpenOptions::new().read(true).write(true).open(path)?);
        handles.insert(path.to_path_buf(), file.clone());
        Ok(file)
    }
}

impl Disk for RealDisk {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn create(&self, path: &Path) -> io::Result<()> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        self.handles().insert(path.to_path_buf(), Arc::new(file));
        Ok(())
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }

    fn read_at(&self, path: &Path, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let cached = self.handles().get(path).cloned();
        let file = match cached {
            Some(file) => file,
            None => Arc::new(File::open(path)?),
        };
        let mut filled = 0;
        while filled < buf.len() {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    fn write_at(&self, path: &Path, offset: u64, data: &[u8]) -> io::Result<()> {
        self.writable(path)?.write_all_at(data, offset)
    }

    fn set_len(&self, path: &Path, len: u64) -> io::Result<()> {
        self.writable(path)?.set_len(len)
    }

    fn fsync(&self, path: &Path) -> io::Result<()> {
        self.writable(path)?.sync_data()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)?;
        let mut handles = self.handles();
        handles.remove(to);
        if let Some(file) = handles.remove(from) {
            handles.insert(to.to_path_buf(), file);
        }
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.handles().remove(path);
        std::fs::remove_file(path)
    }

    fn fsync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
