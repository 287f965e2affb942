//! The txn log: segment files `dataLogDir/version-2/log.<first zxid hex>` holding opaque txn payloads keyed
//! by zxid, with group commit, preallocation, torn-tail repair, truncation and range reads.
//!
//! The byte layout is in `format.rs`; the write path and its fsyncs are numbered in `docs/storage.md`
//! (steps L1–L6), and the code below cites those step numbers. This module does not decode payloads and
//! does not know about snapshots beyond the zxid recovery starts from.

use std::path::{Path, PathBuf};

use super::format::{
    self, check_log_header, decode_record_body, decode_record_prefix, encode_log_header,
    encode_record, record_crc, LOG_HEADER_LEN, LOG_PREFIX, RECORD_FIXED_BODY,
};
use super::{check_contiguous, corrupt, io_err, Disk, DiskRef, Result, StorageError, VERSION_DIR};
use crate::ids::Zxid;

/// How much of a segment a reader pulls into memory at once.
const READ_CHUNK: usize = 1 << 20;

/// Txn log tuning, with ZooKeeper's names where they exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// Segment files grow in chunks of this many bytes, filled with zeros (`preAllocSize`, which ZooKeeper
    /// gives in KB; default 65536 KB). 0 disables preallocation.
    pub prealloc_bytes: u64,
    /// Start a new segment once the current one holds this many records (checked before each batch).
    pub roll_after_records: u64,
    /// Start a new segment once the current one holds this many bytes (checked before each batch).
    pub roll_after_bytes: u64,
    /// `forceSync`: when false, no fsync is ever issued for the log (nothing is durable; testing only).
    pub force_sync: bool,
    /// Zeros are written this far ahead of the last record, within the preallocated length, so that
    /// appends overwrite blocks the file already has: an fdatasync then flushes data only, where an
    /// append into a sparse (`set_len`) region also commits the filesystem's journal for the new blocks.
    /// On ext4 here that halved the fsync (145 -> 80 us). 0 disables it.
    pub zero_ahead_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> LogOptions {
        LogOptions {
            prealloc_bytes: 65536 * 1024,
            roll_after_records: 100_000,
            roll_after_bytes: 64 << 20,
            force_sync: true,
            zero_ahead_bytes: 1 << 20,
        }
    }
}

impl LogOptions {
    /// Sets the preallocation from zoo.cfg's `preAllocSize`, which is in KB.
    pub fn with_prealloc_kb(mut self, kb: u64) -> LogOptions {
        self.prealloc_bytes = kb.saturating_mul(1024);
        self
    }
}

/// What [`TxnLog::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRecovery {
    /// Segment files present after repair.
    pub segments: usize,
    /// The last record's zxid, if the log has any record.
    pub last_zxid: Option<Zxid>,
    /// A torn tail that was cut off: the segment and the offset it was cut at.
    pub torn_tail: Option<(PathBuf, u64)>,
    /// Trailing segments that held no complete record and were removed.
    pub removed_segments: Vec<PathBuf>,
}

/// The segment being appended to.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    write_pos: u64,
    allocated: u64,
    records: u64,
    /// Everything before this offset has been written (records, or zeros written ahead of them).
    written_to: u64,
}

/// The append side of the txn log. One writer; readers use [`TxnLog::read_from`] or [`LogReader::open`].
#[derive(Debug)]
pub struct TxnLog {
    disk: DiskRef,
    dir: PathBuf,
    opts: LogOptions,
    current: Option<Segment>,
    roll_requested: bool,
    batch: Vec<u8>,
    batch_first: Option<Zxid>,
    batch_records: u64,
    last_zxid: Option<Zxid>,
    durable_zxid: Option<Zxid>,
    /// Set by the first write or fsync failure; every later call fails (see [`TxnLog::flush`]).
    failed: Option<String>,
}

/// The log segments in `dir`, sorted by first zxid.
pub(crate) fn list_segments(disk: &dyn Disk, dir: &Path) -> Result<Vec<(Zxid, PathBuf)>> {
    let mut segments: Vec<(Zxid, PathBuf)> = disk
        .list(dir)
        .map_err(io_err("list", dir))?
        .into_iter()
        .filter_map(|name| Some((format::parse_file_name(LOG_PREFIX, &name)?, dir.join(name))))
        .collect();
    segments.sort();
    Ok(segments)
}

/// What the next position of a segment holds.
enum Next {
    Record {
        zxid: Zxid,
        payload: Vec<u8>,
        offset: u64,
    },
    /// No more records: a zero length (the preallocated tail) or the end of the file at `offset`.
    End { offset: u64 },
    /// An invalid record at `offset`. `torn` when everything after it is zeros, so it can be the partial
    /// last write of a crash rather than damage in the middle of the log.
    Bad {
        offset: u64,
        detail: String,
        torn: bool,
    },
}

/// Sequential reader of one segment, pulling [`READ_CHUNK`] bytes at a time.
struct SegmentCursor {
    path: PathBuf,
    file_len: u64,
    pos: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl SegmentCursor {
    /// Opens a segment and checks its header; `Ok(Err(detail))` when the header is invalid.
    fn open(disk: &dyn Disk, path: &Path) -> Result<std::result::Result<SegmentCursor, String>> {
        let file_len = disk.len(path).map_err(io_err("stat", path))?;
        let mut cursor = SegmentCursor {
            path: path.to_path_buf(),
            file_len,
            pos: LOG_HEADER_LEN,
            buf: Vec::new(),
            buf_start: 0,
        };
        let available = file_len.min(LOG_HEADER_LEN) as usize;
        let header = cursor.fetch(disk, 0, available)?;
        Ok(check_log_header(header).map(|()| cursor))
    }

    /// The `len` bytes at `offset`; the caller keeps `offset + len` within the file.
    fn fetch(&mut self, disk: &dyn Disk, offset: u64, len: usize) -> Result<&[u8]> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        if offset < self.buf_start || offset + len as u64 > buf_end {
            let want = len
                .max(READ_CHUNK)
                .min(self.file_len.saturating_sub(offset) as usize)
                .max(len);
            self.buf.resize(want, 0);
            let n = disk
                .read_at(&self.path, offset, &mut self.buf)
                .map_err(io_err("read", &self.path))?;
            self.buf.truncate(n);
            self.buf_start = offset;
            if n < len {
                return Err(StorageError::Io {
                    op: "read",
                    path: self.path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("file shrank while reading at offset {offset}"),
                    ),
                });
            }
        }
        let start = (offset - self.buf_start) as usize;
        Ok(&self.buf[start..start + len])
    }

    /// The offset of the first non-zero byte at or after `from`, if any.
    fn first_nonzero(&mut self, disk: &dyn Disk, from: u64) -> Result<Option<u64>> {
        let mut offset = from;
        while offset < self.file_len {
            let len = ((self.file_len - offset) as usize).min(READ_CHUNK);
            let chunk = self.fetch(disk, offset, len)?;
            if let Some(i) = chunk.iter().position(|&b| b != 0) {
                return Ok(Some(offset + i as u64));
            }
            offset += len as u64;
        }
        Ok(None)
    }

    fn bad(
        &mut self,
        disk: &dyn Disk,
        offset: u64,
        detail: String,
        zeros_from: u64,
    ) -> Result<Next> {
        let torn = self
            .first_nonzero(disk, zeros_from.min(self.file_len))?
            .is_none();
        Ok(Next::Bad {
            offset,
            detail,
            torn,
        })
    }

    /// Forgets the cached bytes and re-reads the file's length.
    fn refresh(&mut self, disk: &dyn Disk) -> Result<()> {
        self.buf.clear();
        self.buf_start = 0;
        self.file_len = disk.len(&self.path).map_err(io_err("stat", &self.path))?;
        Ok(())
    }

    /// The next position's content. A writer may be appending to this segment while another thread
    /// reads it (the relay catching up on the live log): bytes cached before the writer's last batch can
    /// show zeros or a shorter file where a record now is, next to newer bytes read after them. So an
    /// invalid record gets a second, uncached look before it counts as damage.
    fn next(&mut self, disk: &dyn Disk) -> Result<Next> {
        match self.read_next(disk)? {
            Next::Bad { .. } => {
                self.refresh(disk)?;
                self.read_next(disk)
            }
            other => Ok(other),
        }
    }

    fn read_next(&mut self, disk: &dyn Disk) -> Result<Next> {
        let pos = self.pos;
        let remaining = self.file_len.saturating_sub(pos);
        if remaining < 8 {
            return match self.first_nonzero(disk, pos)? {
                None => Ok(Next::End { offset: pos }),
                Some(_) => Ok(Next::Bad {
                    offset: pos,
                    detail: "partial record header".into(),
                    torn: true,
                }),
            };
        }
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(self.fetch(disk, pos, 8)?);
        let (len, crc) = decode_record_prefix(&prefix);
        if len == 0 {
            // The preallocated tail. Anything non-zero after it was written past the end marker: damage.
            return match self.first_nonzero(disk, pos)? {
                None => Ok(Next::End { offset: pos }),
                Some(at) => Ok(Next::Bad {
                    offset: at,
                    detail: format!("non-zero bytes after the end of records at offset {pos}"),
                    torn: false,
                }),
            };
        }
        let end = pos + 8 + u64::from(len);
        if len < RECORD_FIXED_BODY {
            return self.bad(disk, pos, format!("record length {len} is too small"), end);
        }
        if end > self.file_len {
            // With a bad length we cannot tell where the record ends; it is torn only if nothing at all was
            // written after its length and CRC fields.
            return self.bad(
                disk,
                pos,
                format!("record length {len} runs past the end of the file"),
                pos + 8,
            );
        }
        let body = self.fetch(disk, pos + 8, len as usize)?;
        if record_crc(&prefix[0..4], body) != crc {
            return self.bad(disk, pos, "record CRC32C mismatch".into(), end);
        }
        match decode_record_body(body) {
            Ok((zxid, payload)) => {
                let payload = payload.to_vec();
                self.pos = end;
                Ok(Next::Record {
                    zxid,
                    payload,
                    offset: pos,
                })
            }
            Err(detail) => Ok(Next::Bad {
                offset: pos,
                detail,
                torn: false,
            }),
        }
    }
}

/// The result of scanning a whole segment.
struct SegmentScan {
    records: u64,
    last: Option<Zxid>,
    /// Where the next record goes (after the last valid record).
    end: u64,
    file_len: u64,
    /// A torn tail at this offset (only reported when torn tails are allowed).
    torn_at: Option<(u64, String)>,
}

/// Scans a segment, checking CRCs, that the first record's zxid is the file's name and that zxids increase.
/// `allow_torn`: a torn tail is reported in the scan instead of as corruption (last segment only).
fn scan_segment(
    disk: &dyn Disk,
    path: &Path,
    first: Zxid,
    allow_torn: bool,
) -> Result<SegmentScan> {
    let mut cursor = match SegmentCursor::open(disk, path)? {
        Ok(cursor) => cursor,
        Err(detail) => return Err(corrupt(path, 0, detail)),
    };
    let mut scan = SegmentScan {
        records: 0,
        last: None,
        end: LOG_HEADER_LEN,
        file_len: cursor.file_len,
        torn_at: None,
    };
    loop {
        match cursor.next(disk)? {
            Next::Record { zxid, offset, .. } => {
                check_order(path, offset, first, scan.last, zxid)?;
                scan.records += 1;
                scan.last = Some(zxid);
            }
            Next::End { offset } => {
                scan.end = offset;
                return Ok(scan);
            }
            Next::Bad {
                offset,
                detail,
                torn,
            } => {
                if torn && allow_torn {
                    scan.end = offset;
                    scan.torn_at = Some((offset, detail));
                    return Ok(scan);
                }
                return Err(corrupt(path, offset, detail));
            }
        }
    }
}

/// A segment's first record carries the zxid in its name and zxids strictly increase.
fn check_order(
    path: &Path,
    offset: u64,
    first: Zxid,
    prev: Option<Zxid>,
    zxid: Zxid,
) -> Result<()> {
    match prev {
        None if zxid != first => Err(corrupt(
            path,
            offset,
            format!("first record has zxid {zxid}, the file name says {first}"),
        )),
        Some(prev) if zxid <= prev => Err(corrupt(
            path,
            offset,
            format!("zxid goes backwards: {zxid} after {prev}"),
        )),
        _ => Ok(()),
    }
}

/// Zeros a segment from `offset` on, keeping its length, and fsyncs it.
fn zero_tail(disk: &dyn Disk, path: &Path, offset: u64, file_len: u64) -> Result<()> {
    disk.set_len(path, offset)
        .map_err(io_err("truncate", path))?;
    disk.set_len(path, file_len.max(offset))
        .map_err(io_err("preallocate", path))?;
    disk.fsync(path).map_err(io_err("fsync", path))
}

impl TxnLog {
    /// Opens (creating if needed) the log in `data_log_dir/version-2`, repairing a torn tail: an invalid
    /// last record of the last segment followed only by zeros is cut off with a warning, and trailing
    /// segments left without any complete record are removed. Only the last segment is scanned here; the
    /// others are checked when read ([`TxnLog::read_from`]).
    pub fn open(
        disk: DiskRef,
        data_log_dir: &Path,
        opts: LogOptions,
    ) -> Result<(TxnLog, LogRecovery)> {
        let dir = data_log_dir.join(VERSION_DIR);
        disk.create_dir_all(&dir)
            .map_err(io_err("create dir", &dir))?;
        let mut segments = list_segments(&*disk, &dir)?;
        let mut recovery = LogRecovery::default();
        let mut current = None;
        let mut last_zxid = None;
        // Only the newest segment can legitimately end in a torn write: older ones were complete and
        // fsynced before the next segment was created (step L2 of the write path).
        let mut allow_torn = true;
        while let Some((first, path)) = segments.last().cloned() {
            let header_is_torn = allow_torn && header_never_written(&*disk, &path)?;
            let scan = if header_is_torn {
                None
            } else {
                Some(scan_segment(&*disk, &path, first, allow_torn)?)
            };
            match scan {
                Some(scan) if scan.records > 0 => {
                    let mut write_pos = scan.end;
                    if let Some((offset, detail)) = scan.torn_at {
                        tracing::warn!(file = %path.display(), offset, %detail, "truncating torn txn log tail");
                        zero_tail(&*disk, &path, offset, scan.file_len)?;
                        recovery.torn_tail = Some((path.clone(), offset));
                        write_pos = offset;
                    }
                    last_zxid = scan.last;
                    current = Some(Segment {
                        path,
                        write_pos,
                        allocated: scan.file_len,
                        records: scan.records,
                        written_to: write_pos,
                    });
                    break;
                }
                _ => {
                    // Created but never got a durable record (a crash during step L2 or L4): drop it so the
                    // next segment is named after the zxid it really starts with.
                    tracing::warn!(file = %path.display(), "removing txn log segment without complete records");
                    disk.remove(&path).map_err(io_err("remove", &path))?;
                    disk.fsync_dir(&dir).map_err(io_err("fsync dir", &dir))?;
                    recovery.removed_segments.push(path);
                    segments.pop();
                    allow_torn = false;
                }
            }
        }
        recovery.segments = segments.len();
        recovery.last_zxid = last_zxid;
        let log = TxnLog {
            disk,
            dir,
            opts,
            current,
            roll_requested: false,
            batch: Vec::new(),
            batch_first: None,
            batch_records: 0,
            last_zxid,
            durable_zxid: last_zxid,
            failed: None,
        };
        Ok((log, recovery))
    }

    /// The directory holding the segments (`dataLogDir/version-2`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The zxid of the last appended record (buffered or durable).
    pub fn last_zxid(&self) -> Option<Zxid> {
        self.last_zxid
    }

    /// The highest zxid whose record and all earlier ones are durable (as of the last [`TxnLog::flush`]).
    pub fn durable_zxid(&self) -> Option<Zxid> {
        self.durable_zxid
    }

    /// Whether an earlier write or fsync failed; every operation now fails.
    pub fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    /// After recovery from a snapshot newer than the log, appends must still go above the snapshot.
    pub(crate) fn raise_last_zxid(&mut self, zxid: Zxid) {
        if !matches!(self.last_zxid, Some(last) if last >= zxid) {
            self.last_zxid = Some(zxid);
            self.durable_zxid = Some(zxid);
        }
    }

    /// Buffers a record (step L1). Nothing is written until [`TxnLog::flush`].
    ///
    /// Panics if `zxid` is not strictly greater than the last appended zxid: that is a bug in the caller.
    pub fn append(&mut self, zxid: Zxid, payload: &[u8]) {
        assert!(
            !matches!(self.last_zxid, Some(last) if last >= zxid),
            "txn log append out of order: {zxid} after {:?}",
            self.last_zxid
        );
        if self.batch_first.is_none() {
            self.batch_first = Some(zxid);
        }
        encode_record(&mut self.batch, zxid, payload);
        self.batch_records += 1;
        self.last_zxid = Some(zxid);
    }

    /// Requests a new segment: the next flushed batch starts one (ZooKeeper rolls at each snapshot).
    pub fn roll(&mut self) {
        self.roll_requested = true;
    }

    /// Writes the buffered batch and fsyncs it once (group commit, steps L2–L5), returning the highest
    /// durable zxid (`None` when the log is empty).
    ///
    /// Any error is [`StorageError::Io`] and is fatal: the caller must stop the node. The log also refuses
    /// every later call, because an fsync must never be retried: when writeback fails, Linux may drop the
    /// dirty pages and mark them clean, so a second fsync can succeed without the data ever reaching the
    /// disk ("fsyncgate", PostgreSQL 2018). The only safe continuation is a restart that recovers from what
    /// is really on disk.
    pub fn flush(&mut self) -> Result<Option<Zxid>> {
        self.check_healthy()?;
        if self.batch.is_empty() {
            return Ok(self.durable_zxid);
        }
        match self.write_batch() {
            Ok(()) => Ok(self.durable_zxid),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn check_healthy(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(why) => Err(StorageError::Io {
                op: "use the txn log after an earlier failure",
                path: self.dir.clone(),
                source: std::io::Error::other(why.clone()),
            }),
        }
    }

    fn fail(&mut self, e: StorageError) -> StorageError {
        self.failed = Some(e.to_string());
        e
    }

    fn write_batch(&mut self) -> Result<()> {
        let Some(first) = self.batch_first else {
            return Ok(());
        };
        let needs_segment = match &self.current {
            None => true,
            Some(seg) => {
                self.roll_requested
                    || seg.records >= self.opts.roll_after_records
                    || seg.write_pos >= self.opts.roll_after_bytes
            }
        };
        if needs_segment {
            self.start_segment(first)?;
        }
        let disk = &*self.disk;
        let opts = self.opts;
        let Some(seg) = self.current.as_mut() else {
            return Ok(());
        };
        let end = seg.write_pos + self.batch.len() as u64;
        if end > seg.allocated {
            // Step L3: grow the file by whole preallocation chunks and make the new length durable before
            // any record lands there, so a torn write is always followed by zeros, never by the end of file.
            let chunk = opts.prealloc_bytes.max(1);
            let allocated = end.div_ceil(chunk) * chunk;
            disk.set_len(&seg.path, allocated)
                .map_err(io_err("preallocate", &seg.path))?;
            if opts.force_sync {
                disk.fsync(&seg.path).map_err(io_err("fsync", &seg.path))?;
            }
            seg.allocated = allocated;
        }
        // Step L4: one write for the whole batch.
        disk.write_at(&seg.path, seg.write_pos, &self.batch)
            .map_err(io_err("write", &seg.path))?;
        seg.written_to = seg.written_to.max(end);
        // Once the batch comes within half a step of the zeros written ahead, write the next step of
        // zeros after it; the batch's fsync below makes their blocks durable along with it.
        let ahead = opts.zero_ahead_bytes;
        if ahead > 0 && end.saturating_add(ahead / 2) > seg.written_to {
            let from = seg.written_to;
            let to = from.saturating_add(ahead).min(seg.allocated);
            // One step at most (zero_ahead_bytes); a zeroed allocation once per step costs nothing
            // next to the write.
            if let Some(len) = to.checked_sub(from).filter(|n| *n > 0) {
                let zeros = vec![0u8; usize::try_from(len).unwrap_or(0)];
                disk.write_at(&seg.path, from, &zeros)
                    .map_err(io_err("write zeros", &seg.path))?;
                seg.written_to = from + zeros.len() as u64;
            }
        }
        // Step L5: one fsync for the whole batch (group commit).
        if opts.force_sync {
            disk.fsync(&seg.path).map_err(io_err("fsync", &seg.path))?;
        }
        seg.write_pos = end;
        seg.records += self.batch_records;
        self.durable_zxid = self.last_zxid;
        self.batch.clear();
        self.batch_first = None;
        self.batch_records = 0;
        Ok(())
    }

    /// Step L2: creates `log.<first hex>` with its header and first preallocation chunk, fsyncs it, then
    /// fsyncs the directory so the new name survives a crash.
    fn start_segment(&mut self, first: Zxid) -> Result<()> {
        let path = self.dir.join(format::file_name(LOG_PREFIX, first));
        let disk = &*self.disk;
        disk.create(&path).map_err(io_err("create", &path))?;
        disk.write_at(&path, 0, &encode_log_header(0))
            .map_err(io_err("write", &path))?;
        let allocated = self.opts.prealloc_bytes.max(LOG_HEADER_LEN);
        disk.set_len(&path, allocated)
            .map_err(io_err("preallocate", &path))?;
        if self.opts.force_sync {
            disk.fsync(&path).map_err(io_err("fsync", &path))?;
            disk.fsync_dir(&self.dir)
                .map_err(io_err("fsync dir", &self.dir))?;
        }
        self.current = Some(Segment {
            path,
            write_pos: LOG_HEADER_LEN,
            allocated,
            records: 0,
            written_to: LOG_HEADER_LEN,
        });
        self.roll_requested = false;
        Ok(())
    }

    /// ZAB's TRUNC: durably removes every record with a zxid greater than `zxid`, across segments.
    ///
    /// Buffered records are flushed first. Whole segments past `zxid` are removed newest first, each
    /// followed by a directory fsync, and then the segment holding `zxid` is cut and fsynced; a crash in
    /// between leaves a shorter but contiguous log, and the leader repeats the TRUNC at the next sync.
    /// Snapshots newer than `zxid` are the caller's to remove ([`super::SnapshotStore::remove_newer_than`]).
    pub fn truncate_after(&mut self, zxid: Zxid) -> Result<()> {
        self.flush()?;
        match self.truncate_inner(zxid) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn truncate_inner(&mut self, zxid: Zxid) -> Result<()> {
        let disk = &*self.disk;
        let segments = list_segments(disk, &self.dir)?;
        let mut kept = None;
        let mut last = None;
        for (first, path) in segments.iter().rev() {
            if *first > zxid {
                disk.remove(path).map_err(io_err("remove", path))?;
                disk.fsync_dir(&self.dir)
                    .map_err(io_err("fsync dir", &self.dir))?;
                continue;
            }
            let mut cursor = match SegmentCursor::open(disk, path)? {
                Ok(cursor) => cursor,
                Err(detail) => return Err(corrupt(path, 0, detail)),
            };
            let mut records = 0;
            let write_pos = loop {
                match cursor.next(disk)? {
                    Next::Record {
                        zxid: found,
                        offset,
                        ..
                    } if found > zxid => {
                        zero_tail(disk, path, offset, cursor.file_len)?;
                        break offset;
                    }
                    Next::Record { zxid: found, .. } => {
                        records += 1;
                        last = Some(found);
                    }
                    Next::End { offset } => break offset,
                    Next::Bad { offset, detail, .. } => return Err(corrupt(path, offset, detail)),
                }
            };
            kept = Some(Segment {
                path: path.clone(),
                write_pos,
                allocated: cursor.file_len,
                records,
                written_to: write_pos,
            });
            break;
        }
        self.current = kept;
        self.last_zxid = last;
        self.durable_zxid = last;
        self.roll_requested = false;
        Ok(())
    }

    /// Records with a zxid greater than `after`, read from the segment files (not from memory), for DIFF
    /// sync and the relay's catch-up. See [`LogReader`].
    pub fn read_from(&self, after: Zxid) -> LogReader {
        LogReader::new(self.disk.clone(), self.dir.clone(), after)
    }
}

/// Whether a segment's header was never completely written: the file holds nothing beyond the header area.
fn header_never_written(disk: &dyn Disk, path: &Path) -> Result<bool> {
    let mut cursor = SegmentCursor {
        path: path.to_path_buf(),
        file_len: 0,
        pos: 0,
        buf: Vec::new(),
        buf_start: 0,
    };
    cursor.file_len = disk.len(path).map_err(io_err("stat", path))?;
    let available = cursor.file_len.min(LOG_HEADER_LEN) as usize;
    let header_ok = check_log_header(cursor.fetch(disk, 0, available)?).is_ok();
    Ok(!header_ok && cursor.first_nonzero(disk, LOG_HEADER_LEN)?.is_none())
}

/// An iterator over the records with a zxid greater than a starting zxid, read segment by segment from disk.
///
/// It checks every record's CRC, that zxids strictly increase, and that they are contiguous within an epoch
/// starting from the requested zxid (a missing record or segment is a [`StorageError::Gap`], so a DIFF sync
/// never silently skips a txn). After an error it ends. It yields records that are in the files when it gets
/// to them, which may include a batch being written but not yet fsynced, and records not yet committed:
/// callers bound the range by their committed zxid. A torn record at the very end of the newest segment ends
/// the iteration quietly (a concurrent writer's batch in progress).
#[derive(Debug)]
pub struct LogReader {
    disk: DiskRef,
    dir: PathBuf,
    segments: Vec<(Zxid, PathBuf)>,
    next_segment: usize,
    /// The segment being read: its cursor, first zxid, whether it is the newest, records read so far.
    cursor: Option<(SegmentCursor, Zxid, bool, u64)>,
    prev_record: Option<Zxid>,
    prev_yielded: Zxid,
    after: Zxid,
    started: bool,
    done: bool,
    /// Whether the record at `after` itself was read.
    saw_after: bool,
}

impl std::fmt::Debug for SegmentCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentCursor")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .finish()
    }
}

impl LogReader {
    /// A reader over the log in `data_log_dir/version-2`, usable without the [`TxnLog`] (another thread).
    pub fn open(disk: DiskRef, data_log_dir: &Path, after: Zxid) -> LogReader {
        LogReader::new(disk, data_log_dir.join(VERSION_DIR), after)
    }

    fn new(disk: DiskRef, dir: PathBuf, after: Zxid) -> LogReader {
        LogReader {
            disk,
            dir,
            segments: Vec::new(),
            next_segment: 0,
            cursor: None,
            prev_record: None,
            prev_yielded: after,
            after,
            started: false,
            done: false,
            saw_after: false,
        }
    }

    fn start(&mut self) -> Result<()> {
        self.segments = list_segments(&*self.disk, &self.dir)?;
        // Segments before the last one starting at or below `after` hold only records <= `after`.
        self.next_segment = self
            .segments
            .iter()
            .rposition(|(first, _)| *first <= self.after)
            .unwrap_or(0);
        Ok(())
    }

    fn advance(&mut self) -> Result<Option<(Zxid, Vec<u8>)>> {
        if !self.started {
            self.started = true;
            self.start()?;
        }
        let disk = self.disk.clone();
        loop {
            if self.cursor.is_none() {
                let Some((first, path)) = self.segments.get(self.next_segment).cloned() else {
                    return Ok(None);
                };
                self.next_segment += 1;
                let is_last = self.next_segment == self.segments.len();
                match SegmentCursor::open(&*disk, &path)? {
                    Ok(cursor) => self.cursor = Some((cursor, first, is_last, 0)),
                    // The writer is creating this segment right now (step L2).
                    Err(_) if is_last && header_never_written(&*disk, &path)? => return Ok(None),
                    Err(detail) => return Err(corrupt(&path, 0, detail)),
                }
            }
            let Some((cursor, first, is_last, records)) = self.cursor.as_mut() else {
                continue;
            };
            match cursor.next(&*disk)? {
                Next::Record {
                    zxid,
                    payload,
                    offset,
                } => {
                    let path = &cursor.path;
                    let prev_in_segment = if *records == 0 {
                        None
                    } else {
                        self.prev_record
                    };
                    check_order(path, offset, *first, prev_in_segment, zxid)?;
                    *records += 1;
                    if let Some(prev) = self.prev_record {
                        if zxid <= prev {
                            return Err(corrupt(
                                path,
                                offset,
                                format!("zxid goes backwards: {zxid} after {prev}"),
                            ));
                        }
                    }
                    self.prev_record = Some(zxid);
                    if zxid <= self.after {
                        self.saw_after |= zxid == self.after;
                        continue;
                    }
                    check_contiguous(self.prev_yielded, zxid, path)?;
                    self.prev_yielded = zxid;
                    return Ok(Some((zxid, payload)));
                }
                Next::End { .. } => self.cursor = None,
                Next::Bad { torn: true, .. } if *is_last => return Ok(None),
                Next::Bad { offset, detail, .. } => {
                    return Err(corrupt(&cursor.path, offset, detail))
                }
            }
        }
    }
}

impl LogReader {
    /// Whether the record at the starting zxid itself has been read (so far): the log reaches back to
    /// it and the records yielded continue it.
    pub fn saw_start(&self) -> bool {
        self.saw_after
    }
}

/// Logged txns (zxid, encoded entry), oldest first, read for a learner's sync.
pub type SyncTxns = Vec<(Zxid, Vec<u8>)>;

/// `ZKDatabase.getProposalsFromTxnLog(after, sizeLimit)` for a learner's DIFF sync (ZooKeeper's
/// `LearnerHandler.syncFollower` rule 5): the logged txns after `after` up to `until`, oldest first.
/// `None` — the sync falls back to SNAP — when `size_factor` is negative, when the log does not hold
/// `after` itself (it was purged, or `after` is in no history of ours), when a snapshot between `after`
/// and `until` is not at a logged zxid (installed by a SNAP sync), or when the log files from the
/// one holding `after` on are larger than `size_factor` × the newest snapshot file
/// (`calculateTxnLogSizeLimit`; as in Java a limit of 0 — no snapshot, or a factor of 0 — is
/// unlimited, and file sizes count preallocated space, as `File.length()` does). Memory is bounded by
/// that limit, the txns being at most the files' size. Blocking: run it off the async runtime.
pub fn read_for_sync(
    disk: DiskRef,
    data_dir: &Path,
    data_log_dir: &Path,
    after: Zxid,
    until: Zxid,
    size_factor: f64,
) -> Result<Option<SyncTxns>> {
    if size_factor < 0.0 {
        return Ok(None);
    }
    let snapshots = super::SnapshotStore::open(disk.clone(), data_dir)?.list()?;
    let snap_len = match snapshots.first() {
        Some((_, path)) => disk.len(path).map_err(io_err("stat", path))?,
        None => 0,
    };
    let limit = (snap_len as f64 * size_factor) as u64;
    let dir = data_log_dir.join(VERSION_DIR);
    let segments = list_segments(&*disk, &dir)?;
    let Some(first) = segments.iter().rposition(|(z, _)| *z <= after) else {
        return Ok(None);
    };
    let mut size = 0u64;
    for (_, path) in &segments[first..] {
        size = size.saturating_add(disk.len(path).map_err(io_err("stat", path))?);
    }
    if limit > 0 && size > limit {
        tracing::info!("txn log size {size} exceeds the sync size limit {limit}");
        return Ok(None);
    }
    let mut reader = LogReader::new(disk, dir, after);
    let mut txns = Vec::new();
    while let Some(record) = reader.next() {
        let (zxid, payload) = record?;
        if !reader.saw_start() {
            return Ok(None);
        }
        if zxid > until {
            break;
        }
        txns.push((zxid, payload));
    }
    // A snapshot in the range whose zxid the log does not hold was installed from a leader (a SNAP
    // sync): the log records before it may be txns of an abandoned history that the SNAP jumped over
    // (the log keeps records up to the snapshot), and the zxids alone cannot always tell (the next
    // record may start a later epoch at counter 1). Such a log cannot serve the sync.
    let installed = snapshots
        .iter()
        .any(|(z, _)| *z > after && *z <= until && txns.binary_search_by_key(z, |t| t.0).is_err());
    if installed || txns.is_empty() {
        return Ok(None);
    }
    Ok(Some(txns))
}

impl Iterator for LogReader {
    type Item = Result<(Zxid, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
