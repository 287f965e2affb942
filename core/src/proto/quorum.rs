//! Server-to-server records: the learner channel's `QuorumPacket` (no length prefix) with its packet
//! types and payloads, `LearnerInfo`, the election connection's handshake header, and the fast leader
//! election `Notification` carried in length-prefixed election messages.
//!
//! Decoders return `DecodeError::Incomplete` when a stream prefix is too short, so the same functions
//! serve buffered socket reads; election message framing is [`crate::proto::frame::decode_frame`] with
//! [`ELECTION_MAX_MESSAGE`].

use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};
use crate::proto::data::Id;
use crate::proto::enums::wire_enum;
use crate::proto::field::jute_record;

/// Largest election message payload a receiver accepts (`QuorumCnxManager.PACKETMAXSIZE`).
pub const ELECTION_MAX_MESSAGE: usize = 524_288;
/// Largest address string in an election handshake header.
pub const ELECTION_MAX_ADDRESS: usize = 2048;
/// Election handshake protocol version 1 (`0xFFFFFFFFFFFF0000`).
pub const ELECTION_PROTOCOL_V1: i64 = -65536;
/// Election handshake protocol version 2 (`0xFFFFFFFFFFFF0001`), used with multi-address.
pub const ELECTION_PROTOCOL_V2: i64 = -65535;
/// The learner protocol version sent in LEADERINFO and `LearnerInfo`.
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;
/// The notification format version ZooKeeper 3.8 writes.
pub const NOTIFICATION_VERSION: i32 = 2;

wire_enum! {
    /// QuorumPacket types (`Leader.java` constants).
    pub enum PacketType {
        /// 1: a forwarded client write.
        Request = 1,
        /// 2: a txn to log and ack.
        Proposal = 2,
        /// 3
        Ack = 3,
        /// 4
        Commit = 4,
        /// 5
        Ping = 5,
        /// 6: session re-attach on a learner.
        Revalidate = 6,
        /// 7: answer to a forwarded sync.
        Sync = 7,
        /// 8: a committed txn for observers.
        Inform = 8,
        /// 9: commit of a reconfig (data: designated leader sid).
        CommitAndActivate = 9,
        /// 10
        NewLeader = 10,
        /// 11
        FollowerInfo = 11,
        /// 12
        UpToDate = 12,
        /// 13
        Diff = 13,
        /// 14
        Trunc = 14,
        /// 15
        Snap = 15,
        /// 16
        ObserverInfo = 16,
        /// 17
        LeaderInfo = 17,
        /// 18
        AckEpoch = 18,
        /// 19: inform of a reconfig (data: designated leader sid then txn bytes).
        InformAndActivate = 19,
    }
}

jute_record! {
    /// `QuorumPacket { i32 type; i64 zxid; buf data; vec<Id> authinfo }`, written back to back on the
    /// learner channel with no length prefix. `None` is Java's null (length/count -1).
    pub struct QuorumPacket {
        /// A [`PacketType`] number.
        pub ty: i32,
        /// Meaning depends on the type (§7.3).
        pub zxid: i64,
        /// Payload; `None` is null.
        pub data: Option<Vec<u8>>,
        /// Auth ids of a forwarded request's connection; `None` is null.
        pub authinfo: Option<Vec<Id>>,
    }
}

impl QuorumPacket {
    /// A packet with null data and authinfo.
    pub fn new(ty: PacketType, zxid: i64) -> QuorumPacket {
        QuorumPacket {
            ty: ty.code(),
            zxid,
            data: None,
            authinfo: None,
        }
    }

    /// A packet with data and null authinfo.
    pub fn with_data(ty: PacketType, zxid: i64, data: Vec<u8>) -> QuorumPacket {
        QuorumPacket {
            ty: ty.code(),
            zxid,
            data: Some(data),
            authinfo: None,
        }
    }

    /// The typed packet type.
    pub fn packet_type(&self) -> Option<PacketType> {
        PacketType::from_code(self.ty)
    }

    /// The data, with null read as empty.
    pub fn data_or_empty(&self) -> &[u8] {
        self.data.as_deref().unwrap_or(&[])
    }

    /// Reads one packet from the start of a stream buffer with a payload limit; returns it and the
    /// bytes it took, or `Incomplete` when more bytes are needed.
    pub fn decode_stream(buf: &[u8], max_len: usize) -> Result<(QuorumPacket, usize), DecodeError> {
        let mut r = JuteReader::with_limit(buf, max_len);
        let p = QuorumPacket::read(&mut r)?;
        Ok((p, r.position()))
    }
}

jute_record! {
    /// `LearnerInfo { i64 serverid; i32 protocolVersion; i64 configVersion }`: FOLLOWERINFO/OBSERVERINFO
    /// data (20 bytes).
    pub struct LearnerInfo {
        /// The learner's myid.
        pub server_id: i64,
        /// [`LEARNER_PROTOCOL_VERSION`].
        pub protocol_version: i32,
        /// The learner's committed config version.
        pub config_version: i64,
    }
}

/// What a leader takes from FOLLOWERINFO/OBSERVERINFO data, read as `LearnerHandler` does: each field
/// only if the data is long enough for it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LearnerInfoView {
    /// The sid, when the data has at least 8 bytes (else the leader invents a negative one).
    pub server_id: Option<i64>,
    /// The protocol version, when there are at least 12 bytes.
    pub protocol_version: Option<i32>,
    /// The config version, when there are at least 20 bytes.
    pub config_version: Option<i64>,
}

impl LearnerInfoView {
    /// Parses possibly short (older learners') data; never fails.
    pub fn parse(data: &[u8]) -> LearnerInfoView {
        let mut r = JuteReader::new(data);
        LearnerInfoView {
            server_id: r.read_i64().ok(),
            protocol_version: r.read_i32().ok(),
            config_version: r.read_i64().ok(),
        }
    }
}

/// REQUEST packet data: `i64 sessionId ‖ i32 cxid ‖ i32 opType ‖ <request body bytes>` (§7.9).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ForwardedRequest {
    /// The client's session.
    pub session_id: i64,
    /// The client's xid.
    pub cxid: i32,
    /// The opcode number.
    pub op_type: i32,
    /// The bytes that followed the RequestHeader in the client frame.
    pub body: Vec<u8>,
}

impl ForwardedRequest {
    /// The packet data.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        w.write_i64(self.session_id);
        w.write_i32(self.cxid);
        w.write_i32(self.op_type);
        w.write_raw(&self.body);
        w.into_inner()
    }

    /// Parses packet data; everything after the 16-byte prefix is the body.
    pub fn from_bytes(data: &[u8]) -> Result<ForwardedRequest, DecodeError> {
        let mut r = JuteReader::new(data);
        Ok(ForwardedRequest {
            session_id: r.read_i64()?,
            cxid: r.read_i32()?,
            op_type: r.read_i32()?,
            body: r.rest().to_vec(),
        })
    }
}

jute_record! {
    /// REVALIDATE request data (learner → leader): `i64 sessionId ‖ i32 timeout`.
    pub struct RevalidateRequest {
        /// The session.
        pub session_id: i64,
        /// Its timeout, ms.
        pub timeout: i32,
    }
}

jute_record! {
    /// REVALIDATE reply data (leader → learner): `i64 sessionId ‖ bool valid`.
    pub struct RevalidateReply {
        /// The session.
        pub session_id: i64,
        /// Whether the session is valid (and now owned by the learner).
        pub valid: bool,
    }
}

jute_record! {
    /// One entry of a learner's PING reply data: a session touched since the previous reply.
    pub struct SessionTouch {
        /// The session.
        pub session_id: i64,
        /// Its timeout, ms.
        pub timeout: i32,
    }
}

/// PING reply data: the entries back to back (no count). Empty is valid (and must not be sent as null).
pub fn encode_session_touches(touches: &[SessionTouch]) -> Vec<u8> {
    let mut w = JuteWriter::new();
    for t in touches {
        t.write(&mut w);
    }
    w.into_inner()
}

/// Parses PING reply data; a trailing partial entry is an error.
pub fn decode_session_touches(data: &[u8]) -> Result<Vec<SessionTouch>, DecodeError> {
    let mut r = JuteReader::new(data);
    let mut out = Vec::with_capacity(data.len() / 12);
    while r.remaining() > 0 {
        out.push(SessionTouch::read(&mut r)?);
    }
    Ok(out)
}

/// COMMITANDACTIVATE / INFORMANDACTIVATE data: the designated leader's sid, then (INFORMANDACTIVATE
/// only) the txn bytes.
pub fn decode_activate(data: &[u8]) -> Result<(i64, &[u8]), DecodeError> {
    let mut r = JuteReader::new(data);
    let sid = r.read_i64()?;
    Ok((sid, r.rest()))
}

/// Builds COMMITANDACTIVATE (empty `txn`) or INFORMANDACTIVATE data.
pub fn encode_activate(designated_leader: i64, txn: &[u8]) -> Vec<u8> {
    let mut w = JuteWriter::new();
    w.write_i64(designated_leader);
    w.write_raw(txn);
    w.into_inner()
}

/// The election handshake's protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElectionProtocol {
    /// Pre-3.5: just a non-negative sid, nothing after it.
    Legacy,
    /// `-65536`: one `host:port`.
    V1,
    /// `-65535`: `h1:p1|h2:p2|…`.
    V2,
}

/// The unframed header an election connection's initiator sends first (§5.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ElectionHandshake {
    /// The header version.
    pub protocol: ElectionProtocol,
    /// The initiator's myid.
    pub sid: i64,
    /// The initiator's election address(es) as text (empty for `Legacy`).
    pub addresses: String,
}

impl ElectionHandshake {
    /// A V1 header for one address.
    pub fn v1(sid: i64, address: impl Into<String>) -> ElectionHandshake {
        ElectionHandshake {
            protocol: ElectionProtocol::V1,
            sid,
            addresses: address.into(),
        }
    }

    /// The addresses split on `|`.
    pub fn address_list(&self) -> Vec<&str> {
        if self.addresses.is_empty() {
            Vec::new()
        } else {
            self.addresses.split('|').collect()
        }
    }

    /// The header bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        match self.protocol {
            ElectionProtocol::Legacy => w.write_i64(self.sid),
            ElectionProtocol::V1 | ElectionProtocol::V2 => {
                w.write_i64(if self.protocol == ElectionProtocol::V1 {
                    ELECTION_PROTOCOL_V1
                } else {
                    ELECTION_PROTOCOL_V2
                });
                w.write_i64(self.sid);
                w.write_string(&self.addresses);
            }
        }
        w.into_inner()
    }

    /// Reads a header from the start of a stream; returns it and the bytes it took. `Incomplete` asks
    /// for more bytes; an unknown negative version or an address length outside 1..=2048 is `Malformed`
    /// (ZooKeeper drops the connection).
    pub fn decode(buf: &[u8]) -> Result<(ElectionHandshake, usize), DecodeError> {
        let mut r = JuteReader::new(buf);
        let first = r.read_i64()?;
        let protocol = match first {
            v if v >= 0 => {
                return Ok((
                    ElectionHandshake {
                        protocol: ElectionProtocol::Legacy,
                        sid: v,
                        addresses: String::new(),
                    },
                    8,
                ))
            }
            ELECTION_PROTOCOL_V1 => ElectionProtocol::V1,
            ELECTION_PROTOCOL_V2 => ElectionProtocol::V2,
            other => {
                return Err(DecodeError::malformed(format!(
                    "unrecognized election protocol version {other}"
                )))
            }
        };
        let sid = r.read_i64()?;
        let n = r.read_i32()?;
        if n <= 0 || n as usize > ELECTION_MAX_ADDRESS {
            return Err(DecodeError::malformed(format!(
                "unreasonable election address length {n}"
            )));
        }
        let bytes = r.read_raw(n as usize)?;
        let addresses = String::from_utf8_lossy(bytes).into_owned();
        Ok((
            ElectionHandshake {
                protocol,
                sid,
                addresses,
            },
            r.position(),
        ))
    }
}

wire_enum! {
    /// `QuorumPeer.ServerState` as carried in notifications.
    pub enum ServerState {
        /// 0
        Looking = 0,
        /// 1
        Following = 1,
        /// 2
        Leading = 2,
        /// 3
        Observing = 3,
    }
}

/// A fast-leader-election notification (§6.1): one election message payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Notification {
    /// The sender's state.
    pub state: ServerState,
    /// The sid the sender votes for.
    pub leader: i64,
    /// The candidate's last zxid.
    pub zxid: i64,
    /// The sender's logical clock (round).
    pub election_epoch: i64,
    /// The candidate's epoch (derived from `zxid` for 28-byte messages).
    pub peer_epoch: i64,
    /// Format version: 2 today; 0 for 28- and 40-byte messages.
    pub version: i32,
    /// The sender's config text (§4.6); written only when `version > 1`.
    pub config: Vec<u8>,
}

impl Notification {
    /// The payload. The 36-byte vote is followed by `version` and, when `version > 1`, the config
    /// length and bytes; so version 0 gives the 40-byte layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        w.write_i32(self.state.code());
        w.write_i64(self.leader);
        w.write_i64(self.zxid);
        w.write_i64(self.election_epoch);
        w.write_i64(self.peer_epoch);
        w.write_i32(self.version);
        if self.version > 1 {
            w.write_buffer(&self.config);
        }
        w.into_inner()
    }

    /// Parses a payload as `FastLeaderElection.WorkerReceiver` does: under 28 bytes is refused; exactly
    /// 28 has no peerEpoch (taken from the zxid's high 32 bits) and no version; exactly 40 has no
    /// version (0); otherwise the version is read and, when above 1, a config of length
    /// `0..=payload length`. Bytes after what the version defines are ignored, as in ZooKeeper.
    /// An unknown state is refused (ZooKeeper ignores such messages).
    pub fn decode(payload: &[u8]) -> Result<Notification, DecodeError> {
        let total = payload.len();
        if total < 28 {
            return Err(DecodeError::malformed(format!(
                "short notification: {total} bytes"
            )));
        }
        let mut r = JuteReader::new(payload);
        let state_code = r.read_i32()?;
        let state = ServerState::from_code(state_code)
            .ok_or_else(|| DecodeError::malformed(format!("unknown server state {state_code}")))?;
        let leader = r.read_i64()?;
        let zxid = r.read_i64()?;
        let election_epoch = r.read_i64()?;
        let mut n = Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch: zxid >> 32,
            version: 0,
            config: Vec::new(),
        };
        if total == 28 {
            return Ok(n);
        }
        n.peer_epoch = r.read_i64()?;
        if total == 40 {
            return Ok(n);
        }
        n.version = r.read_i32()?;
        if n.version > 1 {
            let len = r.read_i32()?;
            if len < 0 || len as usize > total {
                return Err(DecodeError::malformed(format!(
                    "invalid notification config length {len}"
                )));
            }
            n.config = r.read_raw(len as usize)?.to_vec();
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::frame::{decode_frame, encode_frame, FrameResult};
    use crate::proto::test_hex::hex;

    /// A.7's election handshake header decodes as V1 sid 3 and re-encodes exactly; the legacy form is
    /// a bare sid; bad versions and lengths are refused.
    #[test]
    fn golden_election_handshake() {
        let bytes = hex("ffffffffffff0000 0000000000000003 0000000e 3132372e302e302e313a33383930");
        let (h, used) = ElectionHandshake::decode(&bytes).unwrap();
        assert_eq!(h, ElectionHandshake::v1(3, "127.0.0.1:3890"));
        assert_eq!(used, bytes.len());
        assert_eq!(h.to_bytes(), bytes);
        assert!(matches!(
            ElectionHandshake::decode(&bytes[..20]),
            Err(DecodeError::Incomplete { .. })
        ));
        let (legacy, used) = ElectionHandshake::decode(&hex("0000000000000007")).unwrap();
        assert_eq!(
            (legacy.protocol, legacy.sid, used),
            (ElectionProtocol::Legacy, 7, 8)
        );
        assert!(ElectionHandshake::decode(&hex("fffffffffffffff0 0000000000000003")).is_err());
        assert!(
            ElectionHandshake::decode(&hex("ffffffffffff0000 0000000000000003 00000000")).is_err()
        );
    }

    /// A.7's notification frame decodes to the documented vote and config and re-encodes exactly.
    #[test]
    fn golden_notification() {
        let config = b"server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=0";
        assert_eq!(config.len(), 65);
        let mut frame = hex("0000006d 00000000 0000000000000001 0000000100000005 0000000000000001 0000000000000001 00000002 00000041");
        frame.extend_from_slice(config);
        let FrameResult::Complete { payload, consumed } =
            decode_frame(&frame, ELECTION_MAX_MESSAGE)
        else {
            panic!("incomplete frame");
        };
        assert_eq!(consumed, frame.len());
        let n = Notification::decode(&frame[payload]).unwrap();
        assert_eq!(
            n,
            Notification {
                state: ServerState::Looking,
                leader: 1,
                zxid: 0x100000005,
                election_epoch: 1,
                peer_epoch: 1,
                version: 2,
                config: config.to_vec(),
            }
        );
        assert_eq!(encode_frame(&n.to_bytes()), frame);
    }

    /// Older notification layouts (28 and 40 bytes) parse as ZooKeeper accepts them; shorter ones and
    /// unknown states are refused.
    #[test]
    fn old_notification_layouts() {
        let n = Notification {
            state: ServerState::Following,
            leader: 2,
            zxid: 0x300000001,
            election_epoch: 4,
            peer_epoch: 9,
            version: 2,
            config: b"x".to_vec(),
        };
        let full = n.to_bytes();
        let n28 = Notification::decode(&full[..28]).unwrap();
        assert_eq!((n28.peer_epoch, n28.version), (3, 0));
        let n40 = Notification::decode(&full[..40]).unwrap();
        assert_eq!((n40.peer_epoch, n40.version), (9, 0));
        assert_eq!(n40.to_bytes().len(), 40);
        assert_eq!(Notification::decode(&n40.to_bytes()).unwrap(), n40);
        assert!(Notification::decode(&full[..27]).is_err());
        let mut bad = full.clone();
        bad[3] = 9;
        assert!(Notification::decode(&bad).is_err());
    }

    /// A.7's learner packets decode to the documented fields and re-encode byte for byte.
    #[test]
    fn golden_quorum_packets() {
        let cases = [
            ("0000000b 0000000300000000 00000014 0000000000000002 00010000 0000000000000000 ffffffff", PacketType::FollowerInfo),
            ("00000011 0000000400000000 00000004 00010000 ffffffff", PacketType::LeaderInfo),
            ("00000012 0000000300000057 00000004 00000003 ffffffff", PacketType::AckEpoch),
            ("0000000c ffffffffffffffff ffffffff ffffffff", PacketType::UpToDate),
            ("00000005 0000000400000003 0000000c 0100000000000000 00007530 ffffffff", PacketType::Ping),
        ];
        for (h, ty) in cases {
            let bytes = hex(h);
            let (p, used) = QuorumPacket::decode_stream(&bytes, 1 << 20).unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(p.packet_type(), Some(ty));
            assert_eq!(p.to_bytes(), bytes);
        }
        let (fi, _) = QuorumPacket::decode_stream(&hex(cases[0].0), 1 << 20).unwrap();
        let info = LearnerInfo::from_bytes(fi.data_or_empty()).unwrap();
        assert_eq!(
            info,
            LearnerInfo {
                server_id: 2,
                protocol_version: LEARNER_PROTOCOL_VERSION,
                config_version: 0
            }
        );
        assert_eq!(
            LearnerInfoView::parse(&fi.data_or_empty()[..12]).config_version,
            None
        );
        let (ping, _) = QuorumPacket::decode_stream(&hex(cases[4].0), 1 << 20).unwrap();
        assert_eq!(
            decode_session_touches(ping.data_or_empty()).unwrap(),
            vec![SessionTouch {
                session_id: 0x0100000000000000,
                timeout: 30000
            }]
        );
    }

    /// Packet type numbers match Leader.java's constants.
    #[test]
    fn packet_type_numbers() {
        let codes: Vec<i32> = PacketType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, (1..=19).collect::<Vec<i32>>());
    }
}
