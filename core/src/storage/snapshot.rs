//! Snapshots: `dataDir/version-2/snapshot.<zxid hex>`, an opaque tree blob with the zxid it covers,
//! lz4-compressed and CRC-checked, written atomically (temp file, fsync, rename, directory fsync).
//!
//! This module does not serialize the tree and does not decide when to snapshot. A snapshot is written
//! piece by piece with [`SnapshotFile`] as the caller produces the blob (so a large tree is never in
//! memory twice), or at once with [`write_snapshot`]. Both are plain blocking code so the shell can run
//! them on a blocking thread, off the request path.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use lz4_flex::frame::{BlockMode, BlockSize, FrameDecoder, FrameEncoder, FrameInfo};

use super::format::{
    decode_snap_header, encode_snap_header, file_name, parse_file_name, snap_crc, SNAP_HEADER_LEN,
    SNAP_PREFIX, SNAP_VERSION_BLOCK, SNAP_VERSION_FRAME,
};
use super::{corrupt, io_err, read_whole, Disk, DiskRef, Result, StorageError, VERSION_DIR};
use crate::ids::Zxid;

/// Suffix of a snapshot being written; such files are ignored and removed at recovery.
const TEMP_SUFFIX: &str = ".tmp";

/// How much of a snapshot is written between two fsyncs of it (see [`SnapshotFile`]).
const SNAPSHOT_SYNC_CHUNK: usize = 4 << 20;

/// Compressed bytes gathered before a write to the temp file.
const WRITE_CHUNK: usize = 1 << 20;

/// A snapshot being written as its blob is produced (steps S1 to S4 of `docs/storage.md`): the blob's
/// pieces go through an lz4 frame encoder into `snapshot.<zxid hex>.tmp`, the header (with the lengths
/// and the CRC, known only at the end) is written last, then the file is fsynced and renamed. Memory is
/// bounded by one lz4 block and 1 MiB of compressed output, whatever the size of the tree.
///
/// The file is fsynced every 4 MiB written: on one disk (and through ext4's ordered
/// journal) the txn log's next fsync would otherwise wait for every dirty page of the snapshot to be
/// written back; with a large tree that stalled every write for seconds (p999 535 ms, max 1.25 s in a
/// create benchmark). With chunks, a log fsync waits for at most one chunk.
pub struct SnapshotFile {
    zxid: Zxid,
    dir: PathBuf,
    temp: PathBuf,
    path: PathBuf,
    encoder: FrameEncoder<Vec<u8>>,
    /// Where the next compressed bytes go in the temp file.
    offset: u64,
    /// Bytes written since the last fsync.
    unsynced: usize,
    /// Uncompressed body length so far.
    body_len: u64,
    /// CRC32C of the uncompressed body so far.
    body_crc: u32,
}

impl std::fmt::Debug for SnapshotFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFile")
            .field("zxid", &self.zxid)
            .field("temp", &self.temp)
            .field("body_len", &self.body_len)
            .finish()
    }
}

impl SnapshotFile {
    /// Creates `snapshot.<zxid hex>.tmp` in `data_dir/version-2` (replacing a leftover one).
    pub fn begin(disk: &dyn Disk, data_dir: &Path, zxid: Zxid) -> Result<SnapshotFile> {
        let dir = data_dir.join(VERSION_DIR);
        disk.create_dir_all(&dir)
            .map_err(io_err("create dir", &dir))?;
        let path = dir.join(file_name(SNAP_PREFIX, zxid));
        let temp = dir.join(format!("{}{TEMP_SUFFIX}", file_name(SNAP_PREFIX, zxid)));
        disk.create(&temp).map_err(io_err("create", &temp))?;
        // Independent 1 MiB blocks: nearly the ratio of one big block, and the encoder holds one block.
        let info = FrameInfo::new()
            .block_size(BlockSize::Max1MB)
            .block_mode(BlockMode::Independent);
        Ok(SnapshotFile {
            zxid,
            dir,
            temp,
            path,
            encoder: FrameEncoder::with_frame_info(info, Vec::with_capacity(WRITE_CHUNK)),
            offset: SNAP_HEADER_LEN,
            unsynced: 0,
            body_len: 0,
            body_crc: 0,
        })
    }

    /// The zxid the snapshot covers.
    pub fn zxid(&self) -> Zxid {
        self.zxid
    }

    /// Uncompressed bytes appended so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Appends the next piece of the blob (S1).
    pub fn append(&mut self, disk: &dyn Disk, piece: &[u8]) -> Result<()> {
        self.body_crc = crc32c::crc32c_append(self.body_crc, piece);
        self.body_len += piece.len() as u64;
        self.encoder
            .write_all(piece)
            .map_err(io_err("compress", &self.temp))?;
        if self.encoder.get_ref().len() >= WRITE_CHUNK {
            self.write_out(disk)?;
        }
        Ok(())
    }

    /// Writes the compressed bytes gathered so far, fsyncing every [`SNAPSHOT_SYNC_CHUNK`] (S1, S2).
    fn write_out(&mut self, disk: &dyn Disk) -> Result<()> {
        let buf = self.encoder.get_mut();
        if buf.is_empty() {
            return Ok(());
        }
        disk.write_at(&self.temp, self.offset, buf)
            .map_err(io_err("write", &self.temp))?;
        self.offset += buf.len() as u64;
        self.unsynced += buf.len();
        buf.clear();
        if self.unsynced >= SNAPSHOT_SYNC_CHUNK {
            disk.fsync(&self.temp)
                .map_err(io_err("fsync", &self.temp))?;
            self.unsynced = 0;
        }
        Ok(())
    }

    /// Ends the frame, writes the header, fsyncs (S2), renames (S3), fsyncs the directory (S4) and
    /// returns the snapshot's path. When it returns `Ok`, the snapshot survives a crash.
    pub fn finish(mut self, disk: &dyn Disk) -> Result<PathBuf> {
        self.encoder
            .try_finish()
            .map_err(|e| io_err("compress", &self.temp)(std::io::Error::other(e)))?;
        self.write_out(disk)?;
        let header = encode_snap_header(
            SNAP_VERSION_FRAME,
            self.zxid,
            self.body_len,
            self.offset - SNAP_HEADER_LEN,
            self.body_crc,
        );
        disk.write_at(&self.temp, 0, &header)
            .map_err(io_err("write", &self.temp))?;
        disk.fsync(&self.temp)
            .map_err(io_err("fsync", &self.temp))?;
        disk.rename(&self.temp, &self.path)
            .map_err(io_err("rename", &self.temp))?;
        disk.fsync_dir(&self.dir)
            .map_err(io_err("fsync dir", &self.dir))?;
        Ok(self.path)
    }

    /// Gives up on the snapshot and removes its temp file (best effort: recovery removes leftovers).
    pub fn abandon(self, disk: &dyn Disk) {
        if let Err(err) = disk.remove(&self.temp) {
            tracing::debug!("removing {}: {err}", self.temp.display());
        }
    }
}

/// Writes `blob` as the snapshot for `zxid` in `data_dir/version-2` and returns its path (steps S1–S4 of
/// `docs/storage.md`) through a [`SnapshotFile`]. When it returns `Ok`, the snapshot survives a crash.
pub fn write_snapshot(
    disk: &dyn Disk,
    data_dir: &Path,
    zxid: Zxid,
    blob: &[u8],
) -> Result<PathBuf> {
    let mut file = SnapshotFile::begin(disk, data_dir, zxid)?;
    for piece in blob.chunks(WRITE_CHUNK) {
        file.append(disk, piece)?;
    }
    file.finish(disk)
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
    let blob = match header.version {
        SNAP_VERSION_BLOCK => lz4_flex::block::decompress(body, header.uncompressed_len as usize)
            .map_err(|e| corrupt(path, SNAP_HEADER_LEN, format!("lz4: {e}")))?,
        _ => {
            let mut blob = Vec::with_capacity(header.uncompressed_len as usize);
            // `take` one byte past the claim so a frame longer than its header says is caught below
            // without decompressing all of it.
            FrameDecoder::new(body)
                .take(header.uncompressed_len.saturating_add(1))
                .read_to_end(&mut blob)
                .map_err(|e| corrupt(path, SNAP_HEADER_LEN, format!("lz4 frame: {e}")))?;
            blob
        }
    };
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
