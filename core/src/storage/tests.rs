//! Cross-module storage tests: recovery, crashes, torn tails, corruption, gaps, truncation, purge, injected
//! disk faults (on [`MemDisk`]) and the real file system (in a temp dir).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;

use super::format::{self, encode_log_header, encode_record, LOG_HEADER_LEN};
use super::*;
use crate::ids::{Epoch, Zxid};

const DATA: &str = "/data";
const LOGS: &str = "/logs";

fn z(counter: u32) -> Zxid {
    Zxid::new(Epoch(1), counter)
}

/// A fixed-size payload (8 bytes) so record offsets are predictable: record k starts at 16 + 25 (k - 1).
fn payload(zxid: Zxid) -> Vec<u8> {
    format!("txn-{:04}", zxid.counter() % 10_000).into_bytes()
}

/// Bytes of a record before its payload: len, crc, version, zxid (see the table in `format.rs`).
const RECORD_HEADER_LEN: u64 = 17;
const RECORD_LEN: u64 = RECORD_HEADER_LEN + 8;

type Txns = Vec<(Zxid, Vec<u8>)>;

fn record_offset(k: u64) -> u64 {
    LOG_HEADER_LEN + RECORD_LEN * (k - 1)
}

fn small_opts() -> LogOptions {
    LogOptions {
        prealloc_bytes: 4096,
        ..LogOptions::default()
    }
}

fn mem() -> (MemDisk, DiskRef) {
    let disk = MemDisk::new();
    let shared: DiskRef = Arc::new(disk.clone());
    (disk, shared)
}

fn recover_mem(disk: &DiskRef, opts: LogOptions) -> Result<(TxnLog, Recovered)> {
    recover(disk.clone(), Path::new(DATA), Path::new(LOGS), opts)
}

fn append_range(log: &mut TxnLog, counters: std::ops::RangeInclusive<u32>) {
    for c in counters {
        log.append(z(c), &payload(z(c)));
    }
}

/// Appends the records with these counters, flushing after every `every`-th counter and at the end.
fn append_flushed(log: &mut TxnLog, counters: std::ops::RangeInclusive<u32>, every: u32) {
    for c in counters {
        log.append(z(c), &payload(z(c)));
        if c % every == 0 {
            log.flush().unwrap();
        }
    }
    log.flush().unwrap();
}

fn segment_path(first: Zxid) -> PathBuf {
    Path::new(LOGS)
        .join(VERSION_DIR)
        .join(format::file_name(format::LOG_PREFIX, first))
}

fn zxids(txns: &[(Zxid, Vec<u8>)]) -> Vec<u32> {
    txns.iter().map(|(zxid, _)| zxid.counter()).collect()
}

/// Appended and flushed records come back after a crash, in order, with their payloads; buffered records
/// that were never flushed do not.
#[test]
fn round_trip_append_flush_replay() {
    let (mem, disk) = mem();
    let (mut log, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert!(rec.snapshot.is_none() && rec.txns.is_empty());
    assert_eq!(rec.last_zxid, Zxid::ZERO);
    append_range(&mut log, 1..=3);
    assert_eq!(log.flush().unwrap(), Some(z(3)));
    append_range(&mut log, 4..=5);
    assert_eq!(log.flush().unwrap(), Some(z(5)));
    log.append(z(6), b"never flushed");
    mem.crash();
    let (log, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2, 3, 4, 5]);
    assert!(rec
        .txns
        .iter()
        .all(|(zxid, bytes)| *bytes == payload(*zxid)));
    assert_eq!(rec.last_zxid, z(5));
    assert_eq!(log.last_zxid(), Some(z(5)));
    let from3: Vec<u32> = log
        .read_from(z(3))
        .map(|r| r.unwrap().0.counter())
        .collect();
    assert_eq!(from3, vec![4, 5]);
}

/// Group commit: a batch of many records costs one file fsync, plus the segment creation's file and
/// directory fsyncs for the first batch.
#[test]
fn flush_fsyncs_once_per_batch() {
    let (mem, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    append_range(&mut log, 1..=50);
    let before = mem.fsync_count();
    log.flush().unwrap();
    // New segment (step L2): file fsync + directory fsync; then the batch's one fsync (step L5). The
    // 1250 bytes fit in the first 4 KiB preallocation chunk, so step L3 does not run.
    assert_eq!(mem.fsync_count() - before, 3);
    append_range(&mut log, 51..=60);
    let before = mem.fsync_count();
    log.flush().unwrap();
    assert_eq!(mem.fsync_count() - before, 1);
    assert_eq!(
        log.flush().unwrap(),
        Some(z(60)),
        "an empty flush reports the durable zxid"
    );
    assert_eq!(
        mem.fsync_count() - before,
        1,
        "an empty flush does not fsync"
    );
}

/// A torn last record (bad CRC, followed only by zeros) is cut off with the records before it kept, and
/// appends continue from there and survive the next recovery.
#[test]
fn torn_tail_truncated_and_appends_continue() {
    let (mem, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    append_range(&mut log, 1..=4);
    log.flush().unwrap();
    let seg = segment_path(z(1));
    mem.flip_byte(&seg, record_offset(4) + RECORD_LEN - 1, 0xff);
    mem.crash();
    let (mut log, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2, 3]);
    assert_eq!(rec.log.torn_tail, Some((seg.clone(), record_offset(4))));
    assert_eq!(log.last_zxid(), Some(z(3)));
    append_range(&mut log, 4..=5);
    log.flush().unwrap();
    mem.crash();
    let (_, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2, 3, 4, 5]);
    assert_eq!(rec.log.torn_tail, None);
}

/// A partial last record (only its first bytes reached the disk) is a torn tail too.
#[test]
fn partial_last_record_is_torn_tail() {
    let (mem, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    append_range(&mut log, 1..=2);
    log.flush().unwrap();
    let seg = segment_path(z(1));
    let mut partial = Vec::new();
    encode_record(&mut partial, z(3), &payload(z(3)));
    mem.write_at(&seg, record_offset(3), &partial[..11])
        .unwrap();
    mem.fsync(&seg).unwrap();
    let (_, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2]);
    assert_eq!(rec.log.torn_tail, Some((seg, record_offset(3))));
}

/// A bad CRC in the middle of the log (valid records follow) is fatal, and the error names the file and
/// the offset of the damaged record.
#[test]
fn mid_file_corruption_is_fatal_with_file_and_offset() {
    let (mem, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    append_range(&mut log, 1..=5);
    log.flush().unwrap();
    let seg = segment_path(z(1));
    mem.flip_byte(&seg, record_offset(2) + RECORD_HEADER_LEN, 0x01);
    let err = recover_mem(&disk, small_opts()).unwrap_err();
    match &err {
        StorageError::Corrupt { file, offset, .. } => {
            assert_eq!(file, &seg);
            assert_eq!(*offset, record_offset(2));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("log.100000001") && message.contains("offset 41"),
        "{message}"
    );
}

/// A damaged record in an older segment is fatal even when it looks like a torn tail: only the newest
/// segment may end in a torn write.
#[test]
fn torn_looking_record_in_older_segment_is_fatal() {
    let (mem, disk) = mem();
    let opts = LogOptions {
        roll_after_records: 2,
        ..small_opts()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    append_flushed(&mut log, 1..=4, 1);
    mem.flip_byte(
        &segment_path(z(1)),
        record_offset(2) + RECORD_HEADER_LEN,
        0x01,
    );
    let err = recover_mem(&disk, opts).unwrap_err();
    assert!(
        matches!(err, StorageError::Corrupt { ref file, offset: 41, .. } if *file == segment_path(z(1))),
        "{err}"
    );
}

/// A missing middle segment shows up as a zxid gap naming the segment after the hole.
#[test]
fn missing_segment_detected() {
    let (mem, disk) = mem();
    let opts = LogOptions {
        roll_after_records: 2,
        ..small_opts()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    append_flushed(&mut log, 1..=6, 1);
    let middle = segment_path(z(3));
    assert!(mem.file(&middle).is_some(), "segments roll every 2 records");
    mem.remove(&middle).unwrap();
    match recover_mem(&disk, opts).unwrap_err() {
        StorageError::Gap {
            expected,
            found,
            file,
        } => {
            assert_eq!((expected, found), (z(3), z(5)));
            assert_eq!(file, segment_path(z(5)));
        }
        other => panic!("expected Gap, got {other:?}"),
    }
}

/// A skipped counter within one epoch is a gap; a new epoch starting at counter 1 is not.
#[test]
fn counter_gap_within_epoch_is_detected_but_epoch_change_is_not() {
    let (_, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    log.append(z(1), b"a");
    log.append(z(2), b"b");
    log.append(Zxid::new(Epoch(2), 1), b"c");
    log.flush().unwrap();
    let (mut log, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(rec.txns.len(), 3);
    log.append(Zxid::new(Epoch(2), 3), b"d");
    log.flush().unwrap();
    assert!(matches!(
        recover_mem(&disk, small_opts()).unwrap_err(),
        StorageError::Gap { expected, found, .. } if expected == Zxid::new(Epoch(2), 2) && found == Zxid::new(Epoch(2), 3)
    ));
}

/// Without a snapshot, a log that does not start at the first txn of an epoch (older segments purged) is a
/// gap: the tree cannot be rebuilt from it.
#[test]
fn log_without_snapshot_must_start_at_counter_one() {
    let (_, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    append_range(&mut log, 5..=6);
    log.flush().unwrap();
    match recover_mem(&disk, small_opts()).unwrap_err() {
        StorageError::Gap {
            expected,
            found,
            file,
        } => {
            assert_eq!((expected, found), (z(1), z(5)));
            assert_eq!(file, segment_path(z(5)));
        }
        other => panic!("expected Gap, got {other:?}"),
    }
    write_snapshot(&*disk, Path::new(DATA), z(4), b"tree at 4").unwrap();
    let (_, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(zxids(&rec.txns), vec![5, 6]);
}

/// A record whose zxid is lower than its predecessor's (hand-made, since append forbids it) is corruption.
#[test]
fn zxid_going_backwards_is_corrupt() {
    let (mem, disk) = mem();
    let dir = Path::new(LOGS).join(VERSION_DIR);
    mem.create_dir_all(&dir).unwrap();
    let seg = segment_path(z(2));
    let mut bytes = encode_log_header(0).to_vec();
    encode_record(&mut bytes, z(2), b"x");
    encode_record(&mut bytes, z(1), b"y");
    encode_record(&mut bytes, z(3), b"z");
    mem.create(&seg).unwrap();
    mem.write_at(&seg, 0, &bytes).unwrap();
    let err = recover_mem(&disk, small_opts()).unwrap_err();
    assert!(
        matches!(err, StorageError::Corrupt { offset: 34, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("backwards"), "{err}");
}

/// Appending a zxid that is not greater than the last one is a bug and panics.
#[test]
#[should_panic(expected = "out of order")]
fn append_out_of_order_panics() {
    let (_, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    log.append(z(2), b"a");
    log.append(z(2), b"b");
}

/// Recovery skips a corrupt newest snapshot, loads the previous one and replays the log from there.
#[test]
fn snapshot_fallback_when_newest_is_corrupt() {
    let (mem, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    append_range(&mut log, 1..=7);
    log.flush().unwrap();
    let store = SnapshotStore::open(disk.clone(), Path::new(DATA)).unwrap();
    store.write(z(3), b"tree at 3").unwrap();
    let newest = store.write(z(5), b"tree at 5").unwrap();
    let (_, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(rec.snapshot, Some((z(5), b"tree at 5".to_vec())));
    assert_eq!(zxids(&rec.txns), vec![6, 7]);
    mem.flip_byte(&newest, 40, 0x20);
    let (_, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(rec.snapshot, Some((z(3), b"tree at 3".to_vec())));
    assert_eq!(zxids(&rec.txns), vec![4, 5, 6, 7]);
    assert_eq!(rec.last_zxid, z(7));
}

/// Snapshots round-trip large compressible blobs, survive a crash once written, and a half-written temp
/// file is ignored and cleaned up at recovery.
#[test]
fn snapshot_write_is_atomic_and_durable() {
    let (mem, disk) = mem();
    let blob: Vec<u8> = (0..100_000u32)
        .flat_map(|i| (i % 251).to_be_bytes())
        .collect();
    let path = write_snapshot(&*disk, Path::new(DATA), z(9), &blob).unwrap();
    assert!(
        mem.file(&path).unwrap().len() < blob.len(),
        "the body is compressed"
    );
    let temp = Path::new(DATA)
        .join(VERSION_DIR)
        .join("snapshot.10000000a.tmp");
    mem.create(&temp).unwrap();
    mem.write_at(&temp, 0, b"OPSN half").unwrap();
    mem.fsync_dir(&Path::new(DATA).join(VERSION_DIR)).unwrap();
    mem.crash();
    let (_, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(rec.snapshot, Some((z(9), blob)));
    assert!(mem.file(&temp).is_none());
}

/// A snapshot written in many pieces (several write chunks and fsync chunks) reads back as their
/// concatenation, and a crash before `finish` leaves only a temp file that recovery removes.
#[test]
fn snapshot_written_in_pieces_round_trips() {
    let (mem, disk) = mem();
    let pieces: Vec<Vec<u8>> = (0..40u32)
        .map(|i| {
            (0..70_000u32)
                .flat_map(|j| (j.wrapping_mul(2_654_435_761) ^ i).to_le_bytes())
                .collect()
        })
        .collect();
    let mut file = SnapshotFile::begin(&*disk, Path::new(DATA), z(9)).unwrap();
    for p in &pieces {
        file.append(&*disk, p).unwrap();
    }
    assert_eq!(file.body_len(), 40 * 280_000);
    let path = file.finish(&*disk).unwrap();
    assert_eq!(
        &mem.file(&path).unwrap()[4..8],
        &[0, 0, 0, 2],
        "format version 2"
    );
    // A second snapshot is interrupted by a crash before its header is written.
    let mut torn = SnapshotFile::begin(&*disk, Path::new(DATA), z(12)).unwrap();
    torn.append(&*disk, &pieces[0]).unwrap();
    torn.append(&*disk, &pieces[1]).unwrap();
    drop(torn);
    mem.crash();
    let store = SnapshotStore::open(disk.clone(), Path::new(DATA)).unwrap();
    let (zxid, blob) = store.newest_valid().unwrap().unwrap();
    assert_eq!(zxid, z(9));
    assert_eq!(blob, pieces.concat());
    let (_, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(rec.snapshot.map(|(zxid, _)| zxid), Some(z(9)));
    let temp = Path::new(DATA)
        .join(VERSION_DIR)
        .join("snapshot.10000000c.tmp");
    assert!(mem.file(&temp).is_none(), "the temp file is removed");
}

/// A snapshot in format version 1 (one lz4 block, as earlier builds wrote) is still read, and a damaged
/// or truncated version-2 body is reported as corrupt rather than loaded.
#[test]
fn snapshot_format_versions_and_damage() {
    let (mem, disk) = mem();
    let blob = b"a tree written by an older build".repeat(50);
    let body = lz4_flex::block::compress(&blob);
    let mut header = format::encode_snap_header(
        format::SNAP_VERSION_BLOCK,
        z(4),
        blob.len() as u64,
        body.len() as u64,
        crc32c::crc32c(&blob),
    );
    assert_eq!(&header[4..8], &[0, 0, 0, 1]);
    let dir = Path::new(DATA).join(VERSION_DIR);
    mem.create_dir_all(&dir).unwrap();
    let old = dir.join("snapshot.100000004");
    mem.create(&old).unwrap();
    mem.write_at(&old, 0, &header).unwrap();
    mem.write_at(&old, format::SNAP_HEADER_LEN, &body).unwrap();
    let store = SnapshotStore::open(disk.clone(), Path::new(DATA)).unwrap();
    assert_eq!(store.read(z(4)).unwrap(), blob);
    // The same file claiming version 2 is not a valid lz4 frame.
    header[7] = 2;
    mem.write_at(&old, 0, &header).unwrap();
    assert!(matches!(
        store.read(z(4)),
        Err(StorageError::Corrupt { .. })
    ));
    // A version-2 file cut short, and one with a flipped body byte.
    let path = store.write(z(5), &blob).unwrap();
    let len = mem.file(&path).unwrap().len();
    mem.flip_byte(&path, (len - 3) as u64, 0x01);
    assert!(matches!(
        store.read(z(5)),
        Err(StorageError::Corrupt { .. })
    ));
    let path = store.write(z(6), &blob).unwrap();
    let bytes = mem.file(&path).unwrap();
    mem.remove(&path).unwrap();
    mem.create(&path).unwrap();
    mem.write_at(&path, 0, &bytes[..bytes.len() - 5]).unwrap();
    assert!(matches!(
        store.read(z(6)),
        Err(StorageError::Corrupt { .. })
    ));
}

/// truncate_after removes later records across segments durably, keeps earlier ones, and appends resume
/// right after the truncation point.
#[test]
fn truncate_after_across_segments() {
    let (mem, disk) = mem();
    let opts = LogOptions {
        roll_after_records: 2,
        ..small_opts()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    append_flushed(&mut log, 1..=7, 1);
    log.truncate_after(z(3)).unwrap();
    assert_eq!(log.last_zxid(), Some(z(3)));
    let left: Vec<u32> = log
        .read_from(Zxid::ZERO)
        .map(|r| r.unwrap().0.counter())
        .collect();
    assert_eq!(left, vec![1, 2, 3]);
    assert!(mem.file(&segment_path(z(5))).is_none() && mem.file(&segment_path(z(7))).is_none());
    mem.crash();
    let (mut log, rec) = recover_mem(&disk, opts).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2, 3]);
    log.append(Zxid::new(Epoch(2), 1), b"new leader's txn");
    log.flush().unwrap();
    log.truncate_after(Zxid::ZERO).unwrap();
    assert_eq!(log.last_zxid(), None);
    mem.crash();
    let (_, rec) = recover_mem(&disk, opts).unwrap();
    assert!(rec.txns.is_empty());
}

/// read_from serves a DIFF from any zxid in the log, and reports a gap when asked for a range whose start
/// has been purged.
#[test]
fn read_from_serves_ranges_and_reports_purged_start() {
    let (_, disk) = mem();
    let opts = LogOptions {
        roll_after_records: 3,
        ..small_opts()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    append_flushed(&mut log, 1..=9, 1);
    for after in 0..=9u32 {
        let got: Vec<u32> = log
            .read_from(z(after))
            .map(|r| r.unwrap().0.counter())
            .collect();
        assert_eq!(got, ((after + 1)..=9).collect::<Vec<_>>(), "after {after}");
    }
    disk.remove(&segment_path(z(1))).unwrap();
    let reader = LogReader::open(disk.clone(), Path::new(LOGS), z(1));
    let first = reader.into_iter().next().unwrap();
    assert!(matches!(first, Err(StorageError::Gap { found, .. }) if found == z(4)));
}

/// `read_for_sync` (rule 5 of a learner sync) serves the txns after a zxid the log holds up to `until`,
/// and refuses (None) when disabled, when the log no longer reaches back to the zxid, and when the log
/// files needed are larger than the factor times the newest snapshot.
#[test]
fn read_for_sync_serves_connected_ranges_within_the_size_limit() {
    let (_, disk) = mem();
    let opts = LogOptions {
        roll_after_records: 3,
        ..small_opts()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    append_flushed(&mut log, 1..=9, 1);
    let read = |after: u32, until: u32, factor: f64| {
        read_for_sync(
            disk.clone(),
            Path::new(DATA),
            Path::new(LOGS),
            z(after),
            z(until),
            factor,
        )
        .unwrap()
        .map(|t| t.iter().map(|(x, _)| x.counter()).collect::<Vec<_>>())
    };
    // No snapshot: the limit is 0, unlimited (Java's calculateTxnLogSizeLimit).
    assert_eq!(read(2, 7, 0.33), Some(vec![3, 4, 5, 6, 7]));
    assert_eq!(read(5, 9, 0.0), Some(vec![6, 7, 8, 9]));
    assert_eq!(read(2, 7, -1.0), None);
    // A small snapshot: three 4 KiB segments are more than 1.0 x its size, not more than 1000 x.
    write_snapshot(&*disk, Path::new(DATA), z(1), b"a small tree").unwrap();
    assert_eq!(read(2, 7, 1.0), None);
    assert_eq!(read(2, 7, 1000.0), Some(vec![3, 4, 5, 6, 7]));
    // A snapshot at a zxid the log lacks was installed by a SNAP sync: the records before it may be an
    // abandoned history, so the log cannot serve a range across it.
    write_snapshot(&*disk, Path::new(DATA), z(20), b"installed").unwrap();
    assert_eq!(read(2, 30, 1000.0), None);
    assert_eq!(read(2, 9, 1000.0), Some(vec![3, 4, 5, 6, 7, 8, 9]));
    // A snapshot at a logged zxid (taken by this server) does not matter.
    write_snapshot(&*disk, Path::new(DATA), z(6), b"own").unwrap();
    assert_eq!(read(2, 9, 1000.0), Some(vec![3, 4, 5, 6, 7, 8, 9]));
    // The segment holding txns 1..=3 is purged: txn 2 is no longer in the log.
    disk.remove(&segment_path(z(1))).unwrap();
    assert_eq!(read(2, 5, 1000.0), None);
    assert_eq!(read(3, 5, 1000.0), None);
    assert_eq!(read(4, 5, 1000.0), Some(vec![5]));
}

/// Purge keeps the newest 3 snapshots even when asked for fewer, removes older ones, and removes exactly
/// the log segments wholly covered by the oldest kept snapshot.
#[test]
fn purge_keeps_the_right_files() {
    let (mem, disk) = mem();
    let opts = LogOptions {
        roll_after_records: 2,
        ..small_opts()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    let store = SnapshotStore::open(disk.clone(), Path::new(DATA)).unwrap();
    for c in 1..=10 {
        log.append(z(c), &payload(z(c)));
        log.flush().unwrap();
        if c % 2 == 0 {
            store.write(z(c), format!("tree {c}").as_bytes()).unwrap();
        }
    }
    // Segments start at 1, 3, 5, 7, 9; snapshots at 2, 4, 6, 8, 10.
    let report = purge(disk.clone(), Path::new(DATA), Path::new(LOGS), 1).unwrap();
    let kept: Vec<Zxid> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|(zxid, _)| zxid)
        .collect();
    assert_eq!(kept, vec![z(10), z(8), z(6)]);
    assert_eq!(report.removed_snapshots.len(), 2);
    // The oldest kept snapshot is 6; replay from it needs 7, which starts segment 7.
    assert_eq!(
        report.removed_segments,
        vec![segment_path(z(1)), segment_path(z(3)), segment_path(z(5))]
    );
    assert!(mem.file(&segment_path(z(7))).is_some());
    // Recovery from every kept snapshot still works: corrupt the two newest and recover from 6.
    for zxid in [z(10), z(8)] {
        let path = Path::new(DATA)
            .join(VERSION_DIR)
            .join(format::file_name(format::SNAP_PREFIX, zxid));
        mem.flip_byte(&path, 33, 0xff);
    }
    let (_, rec) = recover_mem(&disk, opts).unwrap();
    assert_eq!(rec.snapshot.map(|(zxid, _)| zxid), Some(z(6)));
    assert_eq!(zxids(&rec.txns), vec![7, 8, 9, 10]);
}

/// Purge with a snapshot in the middle of a segment keeps that segment.
#[test]
fn purge_keeps_segment_holding_snapshot_successor() {
    let (_, disk) = mem();
    let opts = LogOptions {
        roll_after_records: 4,
        ..small_opts()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    let store = SnapshotStore::open(disk.clone(), Path::new(DATA)).unwrap();
    append_flushed(&mut log, 1..=12, 1);
    for c in [2, 6, 7] {
        store.write(z(c), b"t").unwrap();
    }
    // Segments start at 1, 5, 9; the oldest kept snapshot is 2 and needs 3, inside segment 1.
    let report = purge(disk.clone(), Path::new(DATA), Path::new(LOGS), 3).unwrap();
    assert!(report.removed_segments.is_empty() && report.removed_snapshots.is_empty());
}

/// A failed fsync surfaces as StorageError::Io, the log refuses all further work (an fsync is never
/// retried), and after a restart every acknowledged record is still there.
#[test]
fn failed_fsync_is_fatal_and_loses_nothing_acknowledged() {
    let (mem, disk) = mem();
    let (mut log, _) = recover_mem(&disk, small_opts()).unwrap();
    append_range(&mut log, 1..=3);
    assert_eq!(log.flush().unwrap(), Some(z(3)));
    append_range(&mut log, 4..=5);
    mem.fail_fsyncs(1);
    assert!(matches!(
        log.flush(),
        Err(StorageError::Io { op: "fsync", .. })
    ));
    assert!(log.has_failed());
    assert!(
        matches!(log.flush(), Err(StorageError::Io { .. })),
        "no retry after a failed fsync"
    );
    assert!(matches!(
        log.truncate_after(z(1)),
        Err(StorageError::Io { .. })
    ));
    assert_eq!(log.durable_zxid(), Some(z(3)));
    mem.crash();
    let (_, rec) = recover_mem(&disk, small_opts()).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2, 3]);
}

/// A full disk (ENOSPC on a write or on growing the preallocation) surfaces as StorageError::Io and loses
/// nothing acknowledged.
#[test]
fn full_disk_is_fatal_and_loses_nothing_acknowledged() {
    let (mem, disk) = mem();
    let opts = LogOptions {
        prealloc_bytes: 64,
        ..LogOptions::default()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    append_range(&mut log, 1..=2);
    log.flush().unwrap();
    let used = mem.file(&segment_path(z(1))).unwrap().len() as u64;
    mem.set_capacity(Some(used));
    append_range(&mut log, 3..=6);
    let err = log.flush().unwrap_err();
    match &err {
        StorageError::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(28), "{err}"),
        other => panic!("expected Io, got {other:?}"),
    }
    mem.set_capacity(None);
    mem.crash();
    let (_, rec) = recover_mem(&disk, opts).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2]);
    // A full disk while writing a snapshot is an Io error and leaves no snapshot behind.
    mem.set_capacity(Some(0));
    assert!(matches!(
        write_snapshot(&*disk, Path::new(DATA), z(2), b"tree"),
        Err(StorageError::Io { .. })
    ));
    mem.set_capacity(None);
    mem.crash();
    assert!(SnapshotStore::open(disk.clone(), Path::new(DATA))
        .unwrap()
        .newest_valid()
        .unwrap()
        .is_none());
}

/// A crash while a new segment is being created leaves no half-made segment behind, and the log continues.
#[test]
fn crash_during_segment_creation_is_repaired() {
    let (mem, disk) = mem();
    let opts = LogOptions {
        roll_after_records: 2,
        ..small_opts()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    append_range(&mut log, 1..=2);
    log.flush().unwrap();
    // The next batch starts segment 3: header written, fsynced, directory fsynced, then power fails in the
    // batch's own fsync with nothing of the batch on disk.
    append_range(&mut log, 3..=3);
    mem.fail_fsyncs(0);
    let seg3 = segment_path(z(3));
    mem.create(&seg3).unwrap();
    mem.write_at(&seg3, 0, &encode_log_header(0)).unwrap();
    mem.set_len(&seg3, 4096).unwrap();
    mem.fsync(&seg3).unwrap();
    mem.fsync_dir(&Path::new(LOGS).join(VERSION_DIR)).unwrap();
    drop(log);
    mem.crash();
    let (mut log, rec) = recover_mem(&disk, opts).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2]);
    assert_eq!(rec.log.removed_segments, vec![seg3]);
    append_range(&mut log, 3..=4);
    log.flush().unwrap();
    let (_, rec) = recover_mem(&disk, opts).unwrap();
    assert_eq!(zxids(&rec.txns), vec![1, 2, 3, 4]);
}

/// A temp dir with `data` and `logs` directories on the real file system (created by recovery).
fn real_dirs() -> (tempfile::TempDir, PathBuf, PathBuf, DiskRef) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let logs = tmp.path().join("logs");
    (tmp, data, logs, Arc::new(RealDisk::new()))
}

/// On the real file system zeros are written ahead of the records, in steps of `zero_ahead_bytes` within
/// the preallocated length, so appends overwrite allocated blocks; every record still reads back, and
/// without the option the preallocated tail stays sparse.
#[test]
fn real_disk_writes_zeros_ahead_of_records() {
    use std::os::unix::fs::MetadataExt;
    let allocated_bytes = |logs: &Path| -> u64 {
        std::fs::read_dir(logs.join(VERSION_DIR))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().blocks() * 512)
            .sum()
    };
    let run = |ahead: u64| -> (u64, Vec<u32>) {
        let (_tmp, data, logs, disk) = real_dirs();
        let opts = LogOptions {
            prealloc_bytes: 1 << 20,
            zero_ahead_bytes: ahead,
            ..LogOptions::default()
        };
        let (mut log, _) = recover(disk.clone(), &data, &logs, opts).unwrap();
        // 4,000 records of 25 bytes in batches of 10: 100,000 bytes, past the first 64 KiB step.
        append_flushed(&mut log, 1..=4_000, 10);
        let blocks = allocated_bytes(&logs);
        drop(log);
        let (_, rec) = recover(disk.clone(), &data, &logs, opts).unwrap();
        (blocks, zxids(&rec.txns))
    };
    let (with_zeros, txns) = run(64 * 1024);
    assert_eq!(txns, (1..=4_000).collect::<Vec<_>>());
    // The records end at 100,016 bytes; the zeros reach at least half a step past them.
    assert!(
        with_zeros >= 100_016 + 32 * 1024,
        "{with_zeros} bytes allocated with zeros written ahead"
    );
    let (sparse, txns) = run(0);
    assert_eq!(txns, (1..=4_000).collect::<Vec<_>>());
    assert!(
        sparse < with_zeros,
        "without zeros ahead {sparse} bytes are allocated, with them {with_zeros}"
    );
}

/// The real file system: round trip, a torn tail made by appending half a record with std::fs, snapshots
/// and epoch files, in a temp dir.
#[test]
fn real_disk_round_trip_and_torn_tail() {
    use std::io::{Seek, SeekFrom, Write};
    let (_tmp, data, logs, disk) = real_dirs();
    let opts = LogOptions {
        prealloc_bytes: 16 * 1024,
        roll_after_records: 40,
        ..LogOptions::default()
    };
    let (mut log, _) = recover(disk.clone(), &data, &logs, opts).unwrap();
    append_flushed(&mut log, 1..=100, 7);
    write_snapshot(&*disk, &data, z(50), b"tree at 50").unwrap();
    write_epoch_file(&*disk, &data, ACCEPTED_EPOCH_FILE, Epoch(1)).unwrap();
    drop(log);
    let (log, rec) = recover(disk.clone(), &data, &logs, opts).unwrap();
    assert_eq!(rec.snapshot, Some((z(50), b"tree at 50".to_vec())));
    assert_eq!(zxids(&rec.txns), (51..=100).collect::<Vec<_>>());
    let segments = std::fs::read_dir(logs.join(VERSION_DIR)).unwrap().count();
    assert!(segments >= 3, "rolled into {segments} segments");
    // Write half of record 101 after the last record of the newest segment.
    let last_segment = std::fs::read_dir(logs.join(VERSION_DIR))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            Some((
                format::parse_file_name("log.", p.file_name()?.to_str()?)?,
                p,
            ))
        })
        .max()
        .unwrap();
    let records_in_last = u64::from(100 - last_segment.0.counter() + 1);
    let tail = record_offset(records_in_last + 1);
    drop(log);
    let mut half = Vec::new();
    encode_record(&mut half, z(101), &payload(z(101)));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(&last_segment.1)
        .unwrap();
    file.seek(SeekFrom::Start(tail)).unwrap();
    file.write_all(&half[..half.len() / 2]).unwrap();
    file.sync_all().unwrap();
    let (mut log, rec) = recover(disk.clone(), &data, &logs, opts).unwrap();
    assert_eq!(rec.log.torn_tail, Some((last_segment.1.clone(), tail)));
    assert_eq!(rec.last_zxid, z(100));
    log.append(z(101), &payload(z(101)));
    log.flush().unwrap();
    drop(log);
    let (_, rec) = recover(disk.clone(), &data, &logs, opts).unwrap();
    assert_eq!(rec.last_zxid, z(101));
    assert_eq!(
        read_epoch_file(&*disk, &data, ACCEPTED_EPOCH_FILE).unwrap(),
        Some(Epoch(1))
    );
}

/// A reader on another thread, while the writer appends, flushes and rolls segments, always sees a
/// gapless prefix of the log and never an error (a segment being created or a batch being written ends
/// its pass quietly).
#[test]
fn concurrent_reader_sees_a_prefix() {
    let (_, disk) = mem();
    let opts = LogOptions {
        prealloc_bytes: 256,
        roll_after_records: 7,
        ..LogOptions::default()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    let reader_disk = disk.clone();
    let reader = std::thread::spawn(move || {
        let mut longest = 0;
        while longest < 300 {
            let mut expected = 1;
            for record in LogReader::open(reader_disk.clone(), Path::new(LOGS), Zxid::ZERO) {
                let (zxid, bytes) = record.expect("reader error while the writer runs");
                assert_eq!(zxid, z(expected));
                assert_eq!(bytes, payload(zxid));
                expected += 1;
            }
            longest = longest.max(expected - 1);
        }
    });
    for c in 1..=300 {
        log.append(z(c), &payload(z(c)));
        if c % 3 == 0 {
            log.flush().unwrap();
        }
    }
    reader.join().unwrap();
}

/// A reader that stopped in the middle of the live segment, with zeros cached where the writer has
/// since appended (and more records beyond its cached chunk), continues with the new records instead of
/// calling the segment damaged: the relay keeps such a reader between catch-up reads.
#[test]
fn paused_reader_continues_after_the_writer_appends() {
    let (_, disk) = mem();
    let opts = LogOptions {
        prealloc_bytes: 8 << 20,
        ..LogOptions::default()
    };
    let (mut log, _) = recover_mem(&disk, opts).unwrap();
    let big = |c: u32| vec![c as u8; 1000];
    for c in 1..=600 {
        log.append(z(c), &big(c));
    }
    log.flush().unwrap();
    // The reader caches a 1 MiB chunk: 600 records, then zeros.
    let mut reader = LogReader::open(disk.clone(), Path::new(LOGS), Zxid::ZERO);
    for c in 1..=600 {
        let (zxid, bytes) = reader.next().unwrap().unwrap();
        assert_eq!((zxid, bytes), (z(c), big(c)));
    }
    // The writer appends past the end of that chunk.
    for c in 601..=2000 {
        log.append(z(c), &big(c));
    }
    log.flush().unwrap();
    for c in 601..=2000 {
        let (zxid, bytes) = reader
            .next()
            .unwrap_or_else(|| panic!("reader ended before {c}"))
            .unwrap_or_else(|e| panic!("reader error at {c}: {e}"));
        assert_eq!((zxid, bytes), (z(c), big(c)));
    }
}

/// One step of the model-based crash test.
#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Flush,
    Roll,
    /// Power fails cleanly: only fsynced state survives.
    Crash,
    /// Power fails during the next flush, after the given number of successful fsyncs; a seeded prefix of
    /// the unsynced writes survives, the last one possibly torn.
    CrashInFlush(u64, u64),
    /// ZAB's TRUNC to the appended record picked by this number (or to before all of them).
    Truncate(u16),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u8>().prop_map(Op::Append),
        3 => Just(Op::Flush),
        1 => Just(Op::Roll),
        1 => Just(Op::Crash),
        1 => any::<u16>().prop_map(Op::Truncate),
        3 => (0u64..3, any::<u64>()).prop_map(|(fsyncs, seed)| Op::CrashInFlush(fsyncs, seed)),
    ]
}

fn recover_checked(
    disk: &DiskRef,
    opts: LogOptions,
    appended: &[(Zxid, Vec<u8>)],
    acked: usize,
) -> std::result::Result<(TxnLog, Txns), TestCaseError> {
    let (log, rec) = recover_mem(disk, opts)
        .map_err(|e| TestCaseError::fail(format!("recovery failed: {e}")))?;
    let n = rec.txns.len();
    prop_assert!(
        n >= acked,
        "lost acknowledged records: recovered {n}, acknowledged {acked}"
    );
    prop_assert!(
        n <= appended.len(),
        "recovered {n} records but only {} were appended",
        appended.len()
    );
    prop_assert_eq!(
        &rec.txns[..],
        &appended[..n],
        "recovered records are not a prefix of the appended ones"
    );
    Ok((log, rec.txns))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Model-based crash test (as sled does it): after random appends, flushes, segment rolls, clean
    /// crashes and crashes that tear the write being fsynced, recovery always yields exactly a prefix of the
    /// appended records that includes every record a flush acknowledged, and the log keeps working.
    #[test]
    fn crash_recovery_keeps_a_prefix_with_every_acknowledged_record(
        ops in proptest::collection::vec(op_strategy(), 1..60),
        prealloc in prop_oneof![Just(0u64), Just(64), Just(4096)],
        roll_after_records in 1u64..6,
    ) {
        let (mem, disk) = mem();
        let opts = LogOptions { prealloc_bytes: prealloc, roll_after_records, ..LogOptions::default() };
        let (mut log, _) = recover_mem(&disk, opts).unwrap();
        // Every record handed to append that may still reach the disk, in order; the acked prefix length.
        let mut appended: Vec<(Zxid, Vec<u8>)> = Vec::new();
        let mut acked = 0usize;
        let mut next = 1u32;
        for op in ops {
            match op {
                Op::Append(len) => {
                    let zxid = z(next);
                    next += 1;
                    let bytes: Vec<u8> = (0..len).map(|i| i ^ (zxid.counter() as u8)).collect();
                    log.append(zxid, &bytes);
                    appended.push((zxid, bytes));
                }
                Op::Flush => {
                    let durable = log.flush().unwrap();
                    acked = appended.len();
                    prop_assert_eq!(durable, appended.last().map(|(zxid, _)| *zxid));
                }
                Op::Roll => log.roll(),
                Op::Truncate(pick) => {
                    let keep = usize::from(pick) % (appended.len() + 1);
                    let target = keep.checked_sub(1).map_or(Zxid::ZERO, |i| appended[i].0);
                    log.truncate_after(target).unwrap();
                    appended.truncate(keep);
                    acked = keep;
                    prop_assert_eq!(log.last_zxid(), appended.last().map(|(zxid, _)| *zxid));
                    next = appended.last().map_or(1, |(zxid, _)| zxid.counter() + 1);
                }
                Op::Crash | Op::CrashInFlush(..) => {
                    if let Op::CrashInFlush(fsyncs, seed) = op {
                        mem.cut_power_after(fsyncs);
                        if log.flush().is_ok() {
                            acked = appended.len();
                        }
                        mem.crash_torn(seed);
                    } else {
                        mem.crash();
                    }
                    let (new_log, txns) = recover_checked(&disk, opts, &appended, acked)?;
                    log = new_log;
                    appended.truncate(txns.len());
                    acked = txns.len();
                    next = appended.last().map_or(1, |(zxid, _)| zxid.counter() + 1);
                }
            }
        }
        log.flush().unwrap();
        mem.crash();
        let (_, txns) = recover_checked(&disk, opts, &appended, appended.len())?;
        prop_assert_eq!(txns.len(), appended.len());
    }
}
