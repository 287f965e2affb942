//! The on-disk byte layouts: txn log file header, log record, snapshot header, and file names.
//!
//! Everything is hand-encoded big-endian with `to_be_bytes` (no bincode), and every layout is pinned by a
//! golden-byte test below: changing one of these is a disk format change and needs a new format version.
//! This module only encodes and decodes; it does not read files.
//!
//! Txn log file (`log.<first zxid hex>`): a 16-byte header, then records, then zeros (preallocation).
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `OPTL` |
//! | 4 | 4 | file format version (1) |
//! | 8 | 8 | dbid (reserved, 0) |
//!
//! Record: `len` counts the bytes after the CRC; the CRC32C covers `len` and those bytes, so a damaged length
//! is caught too. A record is never shorter than 9 bytes after the CRC, so a zero length marks the end.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | len = 9 + payload length |
//! | 4 | 4 | CRC32C of bytes 0..4 and 8..8+len |
//! | 8 | 1 | record format version (1) |
//! | 9 | 8 | zxid (signed) |
//! | 17 | len - 9 | payload |
//!
//! Snapshot file (`snapshot.<zxid hex>`): a 36-byte header and the lz4-compressed body. Version 2 (written
//! now) compresses the body as an lz4 frame, so it can be written as it is produced; version 1 (still
//! read) compressed it as one lz4 block.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `OPSN` |
//! | 4 | 4 | snapshot format version (2, or 1) |
//! | 8 | 8 | zxid (signed) |
//! | 16 | 8 | uncompressed body length |
//! | 24 | 8 | compressed body length |
//! | 32 | 4 | CRC32C of header bytes 0..32 and the uncompressed body |

use crate::ids::Zxid;

/// Magic of a txn log file.
pub const LOG_MAGIC: [u8; 4] = *b"OPTL";
/// Magic of a snapshot file.
pub const SNAP_MAGIC: [u8; 4] = *b"OPSN";
/// Version of the log file format.
pub const FILE_FORMAT_VERSION: u32 = 1;
/// Snapshot format version 1: the body is one lz4 block (read, no longer written).
pub const SNAP_VERSION_BLOCK: u32 = 1;
/// Snapshot format version 2: the body is an lz4 frame, written as the snapshot is produced.
pub const SNAP_VERSION_FRAME: u32 = 2;
/// Version of the record format.
pub const RECORD_VERSION: u8 = 1;
/// Length of a txn log file header.
pub const LOG_HEADER_LEN: u64 = 16;
/// The part of a record's `len` that is not payload: version and zxid.
pub const RECORD_FIXED_BODY: u32 = 9;
/// Length of a snapshot file header.
pub const SNAP_HEADER_LEN: u64 = 36;

/// File name prefix of txn log segments, as in ZooKeeper.
pub const LOG_PREFIX: &str = "log.";
/// File name prefix of snapshots, as in ZooKeeper.
pub const SNAP_PREFIX: &str = "snapshot.";

/// `log.<hex>` / `snapshot.<hex>`: lower-case hex without `0x`, as Java's `Long.toHexString`.
pub fn file_name(prefix: &str, zxid: Zxid) -> String {
    format!("{prefix}{:x}", zxid.0 as u64)
}

/// Parses a name made by [`file_name`]; `None` for anything else (temp files, foreign files).
pub fn parse_file_name(prefix: &str, name: &str) -> Option<Zxid> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| Zxid(v as i64))
}

/// Encodes a txn log file header.
pub fn encode_log_header(dbid: u64) -> [u8; LOG_HEADER_LEN as usize] {
    let mut out = [0u8; LOG_HEADER_LEN as usize];
    out[0..4].copy_from_slice(&LOG_MAGIC);
    out[4..8].copy_from_slice(&FILE_FORMAT_VERSION.to_be_bytes());
    out[8..16].copy_from_slice(&dbid.to_be_bytes());
    out
}

/// Checks a txn log file header; `Err` says what is wrong.
pub fn check_log_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.len() < LOG_HEADER_LEN as usize {
        return Err(format!(
            "file header is {} bytes, expected {LOG_HEADER_LEN}",
            bytes.len()
        ));
    }
    if bytes[0..4] != LOG_MAGIC {
        return Err(format!("bad magic {:02x?}", &bytes[0..4]));
    }
    let version = be_u32(&bytes[4..8]);
    if version != FILE_FORMAT_VERSION {
        return Err(format!("unsupported log format version {version}"));
    }
    Ok(())
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Appends one encoded record to `out`.
///
/// Panics if the payload is larger than 4 GiB minus 9 bytes: the caller bounds payloads by
/// `jute.maxbuffer`, so this is a bug, not an input error.
pub fn encode_record(out: &mut Vec<u8>, zxid: Zxid, payload: &[u8]) {
    let len = u32::try_from(payload.len())
        .ok()
        .and_then(|n| n.checked_add(RECORD_FIXED_BODY))
        .expect("txn payload larger than 4 GiB");
    let start = out.len();
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.push(RECORD_VERSION);
    out.extend_from_slice(&zxid.0.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = record_crc(&out[start..start + 4], &out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// The CRC of a record from its length field and its body (the bytes after the CRC).
pub fn record_crc(len_field: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(len_field), body)
}

/// The first 8 bytes of a record: its length and CRC fields.
pub fn decode_record_prefix(bytes: &[u8; 8]) -> (u32, u32) {
    (be_u32(&bytes[0..4]), be_u32(&bytes[4..8]))
}

/// A record body (`len` bytes after the CRC) whose CRC matched: `Err` says why it is still unusable.
pub fn decode_record_body(body: &[u8]) -> Result<(Zxid, &[u8]), String> {
    if body.len() < RECORD_FIXED_BODY as usize {
        return Err(format!("record body of {} bytes is too short", body.len()));
    }
    if body[0] != RECORD_VERSION {
        return Err(format!("unsupported record version {}", body[0]));
    }
    Ok((Zxid(be_u64(&body[1..9]) as i64), &body[9..]))
}

/// A decoded snapshot header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapHeader {
    /// [`SNAP_VERSION_FRAME`] or [`SNAP_VERSION_BLOCK`].
    pub version: u32,
    /// The zxid the snapshot covers.
    pub zxid: Zxid,
    /// Length of the body before compression.
    pub uncompressed_len: u64,
    /// Length of the compressed body that follows the header.
    pub compressed_len: u64,
    /// CRC32C of header bytes 0..32 and the uncompressed body.
    pub crc: u32,
}

/// Encodes a snapshot header from the CRC32C of the uncompressed body alone (`body_crc`, which a writer
/// can compute as the body streams by): the stored CRC covers the header's first 32 bytes and then the
/// body, combined with [`crc32c::crc32c_combine`].
pub fn encode_snap_header(
    version: u32,
    zxid: Zxid,
    uncompressed_len: u64,
    compressed_len: u64,
    body_crc: u32,
) -> [u8; SNAP_HEADER_LEN as usize] {
    let mut out = [0u8; SNAP_HEADER_LEN as usize];
    out[0..4].copy_from_slice(&SNAP_MAGIC);
    out[4..8].copy_from_slice(&version.to_be_bytes());
    out[8..16].copy_from_slice(&zxid.0.to_be_bytes());
    out[16..24].copy_from_slice(&uncompressed_len.to_be_bytes());
    out[24..32].copy_from_slice(&compressed_len.to_be_bytes());
    let crc = crc32c::crc32c_combine(
        crc32c::crc32c(&out[0..32]),
        body_crc,
        uncompressed_len as usize,
    );
    out[32..36].copy_from_slice(&crc.to_be_bytes());
    out
}

/// The CRC stored in a snapshot header.
pub fn snap_crc(header_prefix: &[u8], body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header_prefix), body)
}

/// Decodes a snapshot header (the CRC is checked later, against the decompressed body).
pub fn decode_snap_header(bytes: &[u8]) -> Result<SnapHeader, String> {
    if bytes.len() < SNAP_HEADER_LEN as usize {
        return Err(format!(
            "file is {} bytes, shorter than the header",
            bytes.len()
        ));
    }
    if bytes[0..4] != SNAP_MAGIC {
        return Err(format!("bad magic {:02x?}", &bytes[0..4]));
    }
    let version = be_u32(&bytes[4..8]);
    if version != SNAP_VERSION_FRAME && version != SNAP_VERSION_BLOCK {
        return Err(format!("unsupported snapshot format version {version}"));
    }
    Ok(SnapHeader {
        version,
        zxid: Zxid(be_u64(&bytes[8..16]) as i64),
        uncompressed_len: be_u64(&bytes[16..24]),
        compressed_len: be_u64(&bytes[24..32]),
        crc: be_u32(&bytes[32..36]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Epoch;

    /// The log file header encodes to exactly these bytes (format version 1).
    #[test]
    fn golden_log_header() {
        assert_eq!(
            encode_log_header(0),
            [b'O', b'P', b'T', b'L', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert!(check_log_header(&encode_log_header(7)).is_ok());
        assert!(check_log_header(&[0u8; 16]).is_err());
    }

    /// A record encodes to exactly these bytes, CRC included, and decodes back.
    #[test]
    fn golden_record() {
        let mut out = Vec::new();
        encode_record(&mut out, Zxid::new(Epoch(1), 2), b"ab");
        let crc = record_crc(&[0, 0, 0, 11], &out[8..]);
        let mut expected = vec![0, 0, 0, 11];
        expected.extend_from_slice(&crc.to_be_bytes());
        expected.extend_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(out, expected);
        // CRC32C of "00 00 00 0b 01 00 00 00 01 00 00 00 02 61 62", computed independently (bitwise, polynomial
        // 0x82f63b78), pinned so a CRC library swap shows up.
        assert_eq!(
            crc,
            crc32c::crc32c(&[0, 0, 0, 11, 1, 0, 0, 0, 1, 0, 0, 0, 2, b'a', b'b'])
        );
        assert_eq!(crc, 0x2d20_a8d1, "crc is {crc:#x}");
        assert_eq!(
            crc32c::crc32c(b"123456789"),
            0xe306_9283,
            "the CRC-32C check value"
        );
        let mut prefix = [0u8; 8];
        prefix.copy_from_slice(&out[..8]);
        assert_eq!(decode_record_prefix(&prefix), (11, crc));
        assert_eq!(
            decode_record_body(&out[8..]).unwrap(),
            (Zxid::new(Epoch(1), 2), &b"ab"[..])
        );
    }

    /// The snapshot header encodes to exactly these bytes and decodes back.
    #[test]
    fn golden_snap_header() {
        let h = encode_snap_header(
            SNAP_VERSION_FRAME,
            Zxid(0x1_0000_0005),
            3,
            4,
            crc32c::crc32c(b"xyz"),
        );
        assert_eq!(
            &h[..32],
            &[
                b'O', b'P', b'S', b'N', 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 3,
                0, 0, 0, 0, 0, 0, 0, 4
            ]
        );
        let decoded = decode_snap_header(&h).unwrap();
        assert_eq!(decoded.version, SNAP_VERSION_FRAME);
        assert_eq!(decoded.zxid, Zxid(0x1_0000_0005));
        assert_eq!(decoded.uncompressed_len, 3);
        assert_eq!(decoded.compressed_len, 4);
        // The combined CRC equals the CRC of the header prefix followed by the body.
        assert_eq!(decoded.crc, snap_crc(&h[..32], b"xyz"));
        let mut v9 = h;
        v9[7] = 9;
        assert!(decode_snap_header(&v9).is_err());
    }

    /// File names use ZooKeeper's lower-case hex and only such names parse.
    #[test]
    fn file_names_round_trip() {
        let z = Zxid(0x1_0000_00ab);
        assert_eq!(file_name(LOG_PREFIX, z), "log.1000000ab");
        assert_eq!(parse_file_name(LOG_PREFIX, "log.1000000ab"), Some(z));
        assert_eq!(parse_file_name(SNAP_PREFIX, "snapshot.0"), Some(Zxid(0)));
        assert_eq!(parse_file_name(SNAP_PREFIX, "snapshot.5.tmp"), None);
        assert_eq!(parse_file_name(LOG_PREFIX, "log."), None);
        assert_eq!(parse_file_name(LOG_PREFIX, "log.+5"), None);
    }
}
