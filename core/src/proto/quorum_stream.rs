//! The learner channel as a byte stream: `QuorumPacket` records back to back with no length prefix, and,
//! after a SNAP packet, the raw snapshot body followed by the jute string `"BenWasHere"` (ZooKeeper's
//! `LearnerHandler.run` writes it, `Learner.syncWithLeader` reads it; guide §7.1, §7.5, §8.5).
//!
//! [`QuorumStreamDecoder`] is sans-IO: the driver pushes whatever bytes a socket read returned and pulls
//! [`QuorumItem`]s. Because nothing on this channel says how long a record is, the decoder finds the end
//! of each record with a resumable scanner that walks the jute layout (packet fields; then the snapshot's
//! sessions, ACL cache map and node records up to the `"/"` terminator). The scanner keeps its place
//! between calls and never re-reads a byte, so decoding is linear in the stream length however the bytes
//! are split; skipped lengths are checked against the limits before the bytes arrive, so a hostile
//! length is refused without buffering it.

use crate::jute::{DecodeError, JuteWriter, Record};
use crate::proto::quorum::{PacketType, QuorumPacket};

/// The string a leader writes after a streamed snapshot (`LearnerHandler`: `oa.writeString("BenWasHere",
/// "signature")`).
pub const SNAP_SIGNATURE: &str = "BenWasHere";

/// [`SNAP_SIGNATURE`] as a jute string: length 10 then the bytes.
const SIGNATURE_BYTES: [u8; 14] = *b"\x00\x00\x00\x0aBenWasHere";

/// `DataNode`'s fixed tail after its data buffer: `i64 aclRef` and the 60-byte `StatPersisted`.
const NODE_TAIL: u64 = 8 + 60;

/// One session entry in a snapshot: `i64 id; i32 timeout`.
const SESSION_ENTRY: u64 = 12;

/// Below this many consumed bytes the buffer is not compacted (a small copy is not worth it).
const COMPACT_MIN: usize = 64 * 1024;

/// What the decoder yields, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuorumItem {
    /// One `QuorumPacket`.
    Packet(QuorumPacket),
    /// The raw snapshot body that followed a SNAP packet (`i32 sessionCount; {i64 id; i32 timeout}*;`
    /// then the DataTree serialization up to and including the `"/"` terminator), with the signature
    /// checked and stripped. It has the layout of `server::standalone::snapshot_blob`.
    Snapshot(Vec<u8>),
}

/// Where the scanner is in the record it is walking. Counts are the elements still to walk, including
/// the one the state is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `i32 type; i64 zxid; i32 dataLen` then the data.
    PacketHeader,
    /// `i32 authinfo count`.
    AuthCount,
    /// `Id.scheme` of an authinfo entry.
    AuthScheme { ids: u32 },
    /// `Id.id` of an authinfo entry.
    AuthId { ids: u32 },
    /// The packet's end is known (`pos`); waiting for its last bytes.
    PacketEnd,
    /// `i32 sessionCount` then the fixed-size entries.
    Sessions,
    /// `i32 aclMapSize`.
    AclMapSize,
    /// `i64 aclRef; i32 aclCount` of a map entry.
    AclEntry { entries: u32 },
    /// `i32 perms; i32 schemeLen` then the scheme of one ACL.
    AclScheme { entries: u32, acls: u32 },
    /// `i32 idLen` then the id of one ACL.
    AclId { entries: u32, acls: u32 },
    /// `str path`: the terminator `"/"` ends the body.
    NodePath,
    /// `buf data` then the fixed tail of a `DataNode`.
    NodeData,
    /// The body ends at `body_len`; the signature follows.
    Signature { body_len: u64 },
}

/// Incremental decoder of the leader-to-learner stream (also usable for learner-to-leader packets,
/// which never contain SNAP). See the module docs.
#[derive(Debug)]
pub struct QuorumStreamDecoder {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`; the current record starts here.
    head: usize,
    step: Step,
    /// Offset from `head` of the next byte the scanner will look at; may run ahead of the buffered
    /// bytes after a skip.
    pos: u64,
    max_packet: usize,
    max_snapshot: usize,
    /// The stream has no framing to resynchronise on, so the first error is final.
    failed: Option<DecodeError>,
    /// Scanner steps taken, for the linear-time test.
    steps: u64,
    /// Node records walked in the snapshot body being received (progress reports).
    snap_nodes: u64,
}

impl QuorumStreamDecoder {
    /// A decoder in packet mode. `max_packet` bounds one encoded packet (all fields; ZooKeeper bounds
    /// each buffer by `jute.maxbuffer`, so pass that plus some headroom for the header and authinfo);
    /// `max_snapshot` bounds a streamed snapshot body (ZooKeeper has no such limit; a learner needs one
    /// to bound its memory).
    pub fn new(max_packet: usize, max_snapshot: usize) -> Self {
        QuorumStreamDecoder {
            buf: Vec::new(),
            head: 0,
            step: Step::PacketHeader,
            pos: 0,
            max_packet,
            max_snapshot,
            failed: None,
            steps: 0,
            snap_nodes: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as items.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.head
    }

    /// The next packet or snapshot, `Ok(None)` when more bytes are needed. Errors are final: the same
    /// error is returned by every later call, since an unframed stream cannot be resynchronised.
    pub fn next_item(&mut self) -> Result<Option<QuorumItem>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let out = self.scan();
        if let Err(e) = &out {
            self.failed = Some(e.clone());
        }
        out
    }

    /// While a snapshot body is being received: (bytes of it scanned so far, node records among them),
    /// for progress reports on a long SNAP sync; `None` otherwise.
    pub fn snapshot_progress(&self) -> Option<(u64, u64)> {
        match self.step {
            Step::PacketHeader
            | Step::AuthCount
            | Step::AuthScheme { .. }
            | Step::AuthId { .. }
            | Step::PacketEnd => None,
            _ => Some((self.pos.min(self.buffered() as u64), self.snap_nodes)),
        }
    }

    /// Scanner steps taken so far (each moves past at least one length field).
    #[cfg(test)]
    pub(crate) fn scan_steps(&self) -> u64 {
        self.steps
    }

    /// `N` bytes at `self.pos` of the current record, if buffered.
    fn peek<const N: usize>(&self) -> Option<[u8; N]> {
        let avail = (self.buf.len() - self.head) as u64;
        if self.pos.checked_add(N as u64)? > avail {
            return None;
        }
        let at = self.head + self.pos as usize;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[at..at + N]);
        Some(out)
    }

    /// Moves past `n` bytes, refusing to go beyond `limit`.
    fn advance(&mut self, n: u64, limit: usize) -> Result<(), DecodeError> {
        self.steps += 1;
        self.pos = self.pos.saturating_add(n);
        if self.pos > limit as u64 {
            return Err(DecodeError::TooLarge {
                len: i64::try_from(self.pos).unwrap_or(i64::MAX),
                max: limit,
            });
        }
        Ok(())
    }

    fn scan(&mut self) -> Result<Option<QuorumItem>, DecodeError> {
        let (pk, sn) = (self.max_packet, self.max_snapshot);
        loop {
            match self.step {
                Step::PacketHeader => {
                    let Some(h) = self.peek::<16>() else {
                        return Ok(None);
                    };
                    let len = be_i32(&h[12..16]);
                    self.advance(16 + skip_len(len, "packet data")?, pk)?;
                    self.step = Step::AuthCount;
                }
                Step::AuthCount => {
                    let Some(c) = self.peek::<4>() else {
                        return Ok(None);
                    };
                    let count = skip_len(i32::from_be_bytes(c), "authinfo count")?;
                    self.advance(4, pk)?;
                    self.step = match count {
                        0 => Step::PacketEnd,
                        n => Step::AuthScheme { ids: n as u32 },
                    };
                }
                Step::AuthScheme { ids } => {
                    let Some(l) = self.peek::<4>() else {
                        return Ok(None);
                    };
                    self.advance(4 + skip_len(i32::from_be_bytes(l), "auth scheme")?, pk)?;
                    self.step = Step::AuthId { ids };
                }
                Step::AuthId { ids } => {
                    let Some(l) = self.peek::<4>() else {
                        return Ok(None);
                    };
                    self.advance(4 + skip_len(i32::from_be_bytes(l), "auth id")?, pk)?;
                    self.step = if ids > 1 {
                        Step::AuthScheme { ids: ids - 1 }
                    } else {
                        Step::PacketEnd
                    };
                }
                Step::PacketEnd => return self.finish_packet(),
                Step::Sessions => {
                    let Some(c) = self.peek::<4>() else {
                        return Ok(None);
                    };
                    let n = i32::from_be_bytes(c);
                    if n < 0 {
                        return Err(DecodeError::malformed(format!(
                            "negative session count {n} in streamed snapshot"
                        )));
                    }
                    self.advance(4 + n as u64 * SESSION_ENTRY, sn)?;
                    self.snap_nodes = 0;
                    self.step = Step::AclMapSize;
                }
                Step::AclMapSize => {
                    let Some(c) = self.peek::<4>() else {
                        return Ok(None);
                    };
                    let n = i32::from_be_bytes(c);
                    if n < 0 {
                        return Err(DecodeError::malformed(format!("negative ACL map size {n}")));
                    }
                    self.advance(4, sn)?;
                    self.step = match n {
                        0 => Step::NodePath,
                        n => Step::AclEntry { entries: n as u32 },
                    };
                }
                Step::AclEntry { entries } => {
                    let Some(e) = self.peek::<12>() else {
                        return Ok(None);
                    };
                    let count = be_i32(&e[8..12]);
                    // `AclCache::read` refuses a null list, and so must the scanner, or it would
                    // accept a body the tree reader then rejects.
                    if count < 0 {
                        return Err(DecodeError::malformed(format!(
                            "invalid ACL list count {count} in ACL map"
                        )));
                    }
                    self.advance(12, sn)?;
                    self.step = match count {
                        0 => next_acl_entry(entries),
                        n => Step::AclScheme {
                            entries,
                            acls: n as u32,
                        },
                    };
                }
                Step::AclScheme { entries, acls } => {
                    let Some(h) = self.peek::<8>() else {
                        return Ok(None);
                    };
                    self.advance(8 + skip_len(be_i32(&h[4..8]), "ACL scheme")?, sn)?;
                    self.step = Step::AclId { entries, acls };
                }
                Step::AclId { entries, acls } => {
                    let Some(l) = self.peek::<4>() else {
                        return Ok(None);
                    };
                    self.advance(4 + skip_len(i32::from_be_bytes(l), "ACL id")?, sn)?;
                    self.step = if acls > 1 {
                        Step::AclScheme {
                            entries,
                            acls: acls - 1,
                        }
                    } else {
                        next_acl_entry(entries)
                    };
                }
                Step::NodePath => {
                    let Some(l) = self.peek::<4>() else {
                        return Ok(None);
                    };
                    let len = i32::from_be_bytes(l);
                    if len == 1 {
                        // Only a one-byte path can be the terminator; look at that byte.
                        let Some(p) = self.peek::<5>() else {
                            return Ok(None);
                        };
                        if p[4] == b'/' {
                            self.advance(5, sn)?;
                            self.step = Step::Signature { body_len: self.pos };
                            continue;
                        }
                    }
                    self.advance(4 + skip_len(len, "node path")?, sn)?;
                    self.step = Step::NodeData;
                }
                Step::NodeData => {
                    let Some(l) = self.peek::<4>() else {
                        return Ok(None);
                    };
                    let len = skip_len(i32::from_be_bytes(l), "node data")?;
                    self.advance(4 + len + NODE_TAIL, sn)?;
                    self.snap_nodes += 1;
                    self.step = Step::NodePath;
                }
                Step::Signature { body_len } => return self.finish_snapshot(body_len),
            }
        }
    }

    /// The packet's length is known; decode it once all its bytes are here.
    fn finish_packet(&mut self) -> Result<Option<QuorumItem>, DecodeError> {
        let len = self.pos as usize;
        if self.buffered() < len {
            return Ok(None);
        }
        let bytes = &self.buf[self.head..self.head + len];
        let (packet, used) = QuorumPacket::decode_stream(bytes, self.max_packet)?;
        if used != len {
            return Err(DecodeError::malformed(format!(
                "quorum packet took {used} bytes, the scanner found {len}"
            )));
        }
        self.consume(len);
        self.pos = 0;
        self.step = if packet.packet_type() == Some(PacketType::Snap) {
            Step::Sessions
        } else {
            Step::PacketHeader
        };
        Ok(Some(QuorumItem::Packet(packet)))
    }

    /// The body is `body_len` bytes; check the signature after it (failing on the first wrong byte)
    /// and hand the body out.
    fn finish_snapshot(&mut self, body_len: u64) -> Result<Option<QuorumItem>, DecodeError> {
        let body_len = body_len as usize; // at most max_snapshot, checked by `advance`
        let avail = self.buffered();
        if avail <= body_len {
            return Ok(None);
        }
        let start = self.head + body_len;
        let got = &self.buf[start..self.buf.len().min(start + SIGNATURE_BYTES.len())];
        if got != &SIGNATURE_BYTES[..got.len()] {
            return Err(DecodeError::malformed(format!(
                "missing snapshot signature {SNAP_SIGNATURE:?} after a {body_len}-byte body"
            )));
        }
        if got.len() < SIGNATURE_BYTES.len() {
            return Ok(None);
        }
        let body = self.buf[self.head..start].to_vec();
        self.consume(body_len + SIGNATURE_BYTES.len());
        self.pos = 0;
        self.step = Step::PacketHeader;
        Ok(Some(QuorumItem::Snapshot(body)))
    }

    /// Drops `n` bytes from the front; compacts once the dead prefix is at least half the buffer, so
    /// every byte is moved at most once on average.
    fn consume(&mut self, n: usize) {
        self.head += n;
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
        } else if self.head >= COMPACT_MIN && self.head * 2 >= self.buf.len() {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }
}

/// After a complete ACL map entry: the next entry, or the node records.
fn next_acl_entry(entries: u32) -> Step {
    if entries > 1 {
        Step::AclEntry {
            entries: entries - 1,
        }
    } else {
        Step::NodePath
    }
}

fn be_i32(b: &[u8]) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    i32::from_be_bytes(a)
}

/// The bytes a jute length prefix says follow it: -1 (null) is none, other negatives are refused.
fn skip_len(len: i32, what: &str) -> Result<u64, DecodeError> {
    match len {
        -1 => Ok(0),
        n if n < 0 => Err(DecodeError::malformed(format!(
            "negative {what} length {n}"
        ))),
        n => Ok(n as u64),
    }
}

/// Appends a packet as the learner channel carries it (no length prefix).
pub fn encode_packet(p: &QuorumPacket, out: &mut Vec<u8>) {
    let mut w = JuteWriter::from_vec(std::mem::take(out));
    p.write(&mut w);
    *out = w.into_inner();
}

/// Appends what follows a SNAP packet: the raw snapshot body, then the `"BenWasHere"` signature.
pub fn encode_snapshot_stream(body: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(body);
    encode_snapshot_signature(out);
}

/// Appends the `"BenWasHere"` signature that ends a streamed snapshot body (after its last chunk).
pub fn encode_snapshot_signature(out: &mut Vec<u8>) {
    out.extend_from_slice(&SIGNATURE_BYTES);
}
