//! Snapshots: `dataDir/version-2/snapshot.<zxid hex>`, an opaque tree blob with the zxid it covers,
//! lz4-compressed and CRC-checked, written atomically (temp file, fsync, rename, directory fsync).
//!
//! The caller produces a consistent blob at a zxid; this module does not serialize the tree and does not
//! decide when to snapshot. [`write_snapshot`] is a plain blocking function so the shell can run it on a
//! blocking thread, off the request path.

use std::path::{Path, PathBuf};

use super::format::{
    decode_snap_header, encode_snap_header, file_name, parse_file_name, snap_crc, SNAP_HEADER_LEN,
    SNAP_PREFIX,
};
use super::{corrupt, io_err, read_whole, Disk, DiskRef, Result, StorageError, VERSION_DIR};
use crate::ids::Zxid;

/// Suffix of a snapshot being written; such files are ignored and removed at recovery.
const TEMP_SUFFIX: &str = ".tmp";

/// How much of a snapshot is written between two fsyncs of it (see [`write_snapshot`]).
const SNAPSHOT_SYNC_CHUNK: usize = 4 << 20;

/// Writes `blob` as the snapshot for `zxid` in `data_dir/version-2` and returns its path (steps S1–S4 of
/// `docs/storage.md`). When it returns `Ok`, the snapshot survives a crash.
pub fn write_snapshot(
    disk: &dyn Disk,
    data_dir: &Path,
    zxid: Zxid,
    blob: &[u8],
) -> Result<PathBuf> {
    let dir = data_dir.join(VERSION_DIR);
    disk.create_dir_all(&dir)
        .map_err(io_err("create dir", &dir))?;
    let path = dir.join(file_name(SNAP_PREFIX, zxid));
    let temp = dir.join(format!("{}{TEMP_SUFFIX}", file_name(SNAP_PREFIX, zxid)));
    let body = lz4_flex::block::compress(blob);
    let header = encode_snap_header(zxid, blob, body.len() as u64);
    // S1: write header and body to the temp file. S2: fsync it.
    disk.create(&temp).map_err(io_err("create", &temp))?;
    disk.write_at(&temp, 0, &header)
        .map_err(io_err("write", &temp))?;
    // The body goes out in chunks, each fsynced. On one disk (and through ext4's ordered journal) the txn
    // log's next fsync would otherwise wait for every dirty page of the snapshot to be written back: with a
    // large tree that stalled every write for seconds (p999 535 ms, max 1.25 s in a create benchmark). With
    // chunks, a log fsync waits for at most one chunk.
    let mut offset = SNAP_HEADER_LEN;
    for chunk in body.chunks(SNAPSHOT_SYNC_CHUNK) {
        disk.write_at(&temp, offset, chunk)
            .map_err(io_err("write", &temp))?;
        offset += chunk.len() as u64;
        disk.fsync(&temp).map_err(io_err("fsync", &temp))?;
    }
    if body.is_empty() {
        disk.fsync(&temp).map_err(io_err("fsync", &temp))?;
    }
    // S3: rename over the final name. S4: fsync the directory so the rename is durable.
    disk.rename(&temp, &path).map_err(io_err("rename", &temp))?;
    disk.fsync_dir(&dir).map_err(io_err("fsync dir", &dir))?;
    Ok(path)
}

/// Decodes and checks a snapshot file's bytes: magic, version, the zxid against the file name, lengths,
/// decompression and the CRC.
fn decode_snapshot(path: &Path, expected: Zxid, bytes: &[u8]) -> Result<Vec<u8>> {
    let header = decode_snap_header(bytes).map_err(|detail| corrupt(path, 0, detail))?;
    if header.zxid != expected {
        return Err(corrupt(
            path,
            8,
            format!(
                "header zxid {} differs from the file name's {expected}",
                header.zxid
            ),
        ));
    }
    let body = &bytes[SNAP_HEADER_LEN as usize..];
    if header.compressed_len != body.len() as u64 {
        return Err(corrupt(
            path,
            SNAP_HEADER_LEN,
            format!(
                "body is {} bytes, the header says {}",
                body.len(),
                header.compressed_len
            ),
        ));
    }
    // lz4 expands at most ~255x; a larger claim is damage, and must not drive a huge allocation.
    if header.uncompressed_len > (body.len() as u64).saturating_mul(255).saturating_add(64) {
        return Err(corrupt(
            path,
            16,
            format!(
                "implausible uncompressed length {}",
                header.uncompressed_len
            ),
        ));
    }
    let blob = lz4_flex::block::decompress(body, header.uncompressed_len as usize)
        .map_err(|e| corrupt(path, SNAP_HEADER_LEN, format!("lz4: {e}")))?;
    if blob.len() as u64 != header.uncompressed_len {
        return Err(corrupt(
            path,
            SNAP_HEADER_LEN,
            "decompressed length differs from the header",
        ));
    }
    if snap_crc(&bytes[0..32], &blob) != header.crc {
        return Err(corrupt(path, 32, "snapshot CRC32C mismatch"));
    }
    Ok(blob)
}

/// The snapshots of one `dataDir`. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    disk: DiskRef,
    data_dir: PathBuf,
    dir: PathBuf,
}

impl SnapshotStore {
    /// The store for `data_dir` (creating `data_dir/version-2` if needed).
    pub fn open(disk: DiskRef, data_dir: &Path) -> Result<SnapshotStore> {
        let dir = data_dir.join(VERSION_DIR);
        disk.create_dir_all(&dir)
            .map_err(io_err("create dir", &dir))?;
        Ok(SnapshotStore {
            disk,
            data_dir: data_dir.to_path_buf(),
            dir,
        })
    }

    /// Writes a snapshot; see [`write_snapshot`].
    pub fn write(&self, zxid: Zxid, blob: &[u8]) -> Result<PathBuf> {
        write_snapshot(&*self.disk, &self.data_dir, zxid, blob)
    }

    /// The snapshot files present, newest first (not checked).
    pub fn list(&self) -> Result<Vec<(Zxid, PathBuf)>> {
        let mut found: Vec<(Zxid, PathBuf)> = self
            .disk
            .list(&self.dir)
            .map_err(io_err("list", &self.dir))?
            .into_iter()
            .filter_map(|name| Some((parse_file_name(SNAP_PREFIX, &name)?, self.dir.join(name))))
            .collect();
        found.sort_by(|a, b| b.cmp(a));
        Ok(found)
    }

    /// Reads and fully checks the snapshot for `zxid`.
    pub fn read(&self, zxid: Zxid) -> Result<Vec<u8>> {
        let path = self.dir.join(file_name(SNAP_PREFIX, zxid));
        let bytes = read_whole(&*self.disk, &path)?;
        decode_snapshot(&path, zxid, &bytes)
    }

    /// The newest snapshot that passes every check, skipping corrupt newer ones with a warning. `Io` errors
    /// are returned, not skipped: a disk that cannot be read is not a reason to start from older state.
    pub fn newest_valid(&self) -> Result<Option<(Zxid, Vec<u8>)>> {
        for (zxid, path) in self.list()? {
            if let Some(blob) = self.read_if_valid(zxid, &path)? {
                return Ok(Some((zxid, blob)));
            }
        }
        Ok(None)
    }

    /// The zxids of up to `n` newest valid snapshots, newest first. Each is fully checked, one at a time,
    /// so at most one blob is in memory.
    pub fn newest_valid_zxids(&self, n: usize) -> Result<Vec<Zxid>> {
        let mut valid = Vec::new();
        for (zxid, path) in self.list()? {
            if valid.len() >= n {
                break;
            }
            if self.read_if_valid(zxid, &path)?.is_some() {
                valid.push(zxid);
            }
        }
        Ok(valid)
    }

    /// The blob if the snapshot is valid, `None` (with a warning) if it is corrupt, `Err` on IO errors.
    fn read_if_valid(&self, zxid: Zxid, path: &Path) -> Result<Option<Vec<u8>>> {
        match self.read(zxid) {
            Ok(blob) => Ok(Some(blob)),
            Err(e @ StorageError::Corrupt { .. }) => {
                tracing::warn!(file = %path.display(), error = %e, "skipping corrupt snapshot");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Removes snapshots newer than `zxid` (after a TRUNC, they describe state the leader discarded).
    pub fn remove_newer_than(&self, zxid: Zxid) -> Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for (found, path) in self.list()? {
            if found > zxid {
                self.disk.remove(&path).map_err(io_err("remove", &path))?;
                removed.push(path);
            }
        }
        if !removed.is_empty() {
            self.disk
                .fsync_dir(&self.dir)
                .map_err(io_err("fsync dir", &self.dir))?;
        }
        Ok(removed)
    }

    /// Removes temp files left by interrupted snapshot and epoch writes. Call only at startup, when no
    /// snapshot is being written.
    pub fn remove_temp_files(&self) -> Result<()> {
        for name in self
            .disk
            .list(&self.dir)
            .map_err(io_err("list", &self.dir))?
        {
            if name.ends_with(TEMP_SUFFIX) {
                let path = self.dir.join(&name);
                tracing::warn!(file = %path.display(), "removing leftover temp file");
                self.disk.remove(&path).map_err(io_err("remove", &path))?;
            }
        }
        Ok(())
    }
}
