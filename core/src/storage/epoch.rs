//! The epoch files `acceptedEpoch` and `currentEpoch` in `dataDir/version-2`: plain decimal text as
//! ZooKeeper writes them (`Long.toString`, no newline), replaced atomically.
//!
//! ZAB writes `acceptedEpoch` when a follower accepts a NEWEPOCH and `currentEpoch` when it acks NEWLEADER;
//! this module only reads and writes the files, it does not decide when.

use std::path::Path;

use super::{corrupt, io_err, read_whole, Disk, Result, VERSION_DIR};
use crate::ids::Epoch;

/// ZooKeeper's file name for the last epoch this server accepted (NEWEPOCH).
pub const ACCEPTED_EPOCH_FILE: &str = "acceptedEpoch";
/// ZooKeeper's file name for the epoch this server acknowledged as established (NEWLEADER).
pub const CURRENT_EPOCH_FILE: &str = "currentEpoch";

/// Reads an epoch file (`name` is [`ACCEPTED_EPOCH_FILE`] or [`CURRENT_EPOCH_FILE`]); `None` if absent.
/// Surrounding whitespace is accepted, as ZooKeeper's `readLine` does.
pub fn read_epoch_file(disk: &dyn Disk, data_dir: &Path, name: &str) -> Result<Option<Epoch>> {
    let path = data_dir.join(VERSION_DIR).join(name);
    if !disk.exists(&path).map_err(io_err("stat", &path))? {
        return Ok(None);
    }
    let bytes = read_whole(disk, &path)?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| corrupt(&path, 0, "epoch file is not text"))?;
    let value: i64 = text
        .trim()
        .parse()
        .map_err(|_| corrupt(&path, 0, format!("epoch file holds {:?}", text.trim())))?;
    let epoch = u32::try_from(value)
        .map_err(|_| corrupt(&path, 0, format!("epoch {value} out of range")))?;
    Ok(Some(Epoch(epoch)))
}

/// Replaces an epoch file atomically: write a temp file, fsync it, rename it, fsync the directory (steps
/// E1–E3 of `docs/storage.md`). When it returns `Ok`, the new value survives a crash.
pub fn write_epoch_file(disk: &dyn Disk, data_dir: &Path, name: &str, epoch: Epoch) -> Result<()> {
    let dir = data_dir.join(VERSION_DIR);
    disk.create_dir_all(&dir)
        .map_err(io_err("create dir", &dir))?;
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.tmp"));
    disk.create(&temp).map_err(io_err("create", &temp))?;
    disk.write_at(&temp, 0, epoch.0.to_string().as_bytes())
        .map_err(io_err("write", &temp))?;
    disk.fsync(&temp).map_err(io_err("fsync", &temp))?;
    disk.rename(&temp, &path).map_err(io_err("rename", &temp))?;
    disk.fsync_dir(&dir).map_err(io_err("fsync dir", &dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemDisk, StorageError};

    /// Epoch files round-trip, read as absent before the first write, survive a crash once written, and a
    /// non-numeric file is reported as corrupt.
    #[test]
    fn epoch_files_round_trip_and_survive_crash() {
        let disk = MemDisk::new();
        let data = Path::new("/data");
        assert_eq!(
            read_epoch_file(&disk, data, ACCEPTED_EPOCH_FILE).unwrap(),
            None
        );
        write_epoch_file(&disk, data, ACCEPTED_EPOCH_FILE, Epoch(7)).unwrap();
        write_epoch_file(&disk, data, CURRENT_EPOCH_FILE, Epoch(6)).unwrap();
        disk.crash();
        assert_eq!(
            read_epoch_file(&disk, data, ACCEPTED_EPOCH_FILE).unwrap(),
            Some(Epoch(7))
        );
        assert_eq!(
            read_epoch_file(&disk, data, CURRENT_EPOCH_FILE).unwrap(),
            Some(Epoch(6))
        );
        let path = data.join(VERSION_DIR).join(CURRENT_EPOCH_FILE);
        assert_eq!(disk.file(&path).unwrap(), b"6");
        disk.write_at(&path, 0, b"x").unwrap();
        assert!(matches!(
            read_epoch_file(&disk, data, CURRENT_EPOCH_FILE),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
