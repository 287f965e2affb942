//! The client protocol (`org.apache.zookeeper.proto`): the connect handshake, request and reply
//! headers, every request and response record, the hand-written multi records, and the typed
//! [`Request`] / [`Response`] enums keyed by opcode.
//!
//! A request frame's payload is `RequestHeader` + request record ([`decode_request`]); a reply payload
//! is `ReplyHeader` + response record ([`decode_reply`]), where the record's layout depends on the
//! opcode of the request with the same xid, and an error reply or a ping reply has no body. The first
//! frame of a connection is a bare [`ConnectRequest`], answered by a bare [`ConnectResponse`].
//!
//! Nullable buffers and strings that real clients do send as null (zkCli's `create /x` without data,
//! reconfig's unused fields) are `Option`s so that every frame re-encodes byte for byte.

use crate::jute::{DecodeError, JuteReader, JuteWriter, Record};
use crate::proto::codes::{ErrorCode, OpCode};
use crate::proto::data::{Acl, Stat};
use crate::proto::enums::{AddWatchMode, CreateMode, EventType, KeeperState, WatcherType};
use crate::proto::field::jute_record;

/// The first frame of a connection: `ConnectRequest` plus the optional trailing `readOnly` byte.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConnectRequest {
    /// Always 0 in current clients; ignored by servers.
    pub protocol_version: i32,
    /// Highest zxid the client has seen.
    pub last_zxid_seen: i64,
    /// Requested session timeout in ms.
    pub timeout: i32,
    /// 0 for a new session, else the session to resume.
    pub session_id: i64,
    /// The session password (16 bytes in practice).
    pub passwd: Vec<u8>,
    /// The trailing "I accept a read-only server" byte; `None` when an old client omitted it.
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    const MIN_ENCODED_LEN: usize = 28;

    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.timeout);
        w.write_i64(self.session_id);
        w.write_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: read_trailing_bool(r)?,
        })
    }
}

/// The connect reply: `ConnectResponse` plus `readOnly`, present iff the request carried it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConnectResponse {
    /// 0.
    pub protocol_version: i32,
    /// Negotiated timeout; 0 when the session is invalid (expired).
    pub timeout: i32,
    /// The session id; 0 when invalid.
    pub session_id: i64,
    /// 16-byte password (16 zeros when invalid).
    pub passwd: Vec<u8>,
    /// Mirrors the request: `Some(server is read-only)` iff the client sent the flag.
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    const MIN_ENCODED_LEN: usize = 20;

    fn write(&self, w: &mut JuteWriter) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.timeout);
        w.write_i64(self.session_id);
        w.write_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.read_i32()?,
            timeout: r.read_i32()?,
            session_id: r.read_i64()?,
            passwd: r.read_buffer()?,
            read_only: read_trailing_bool(r)?,
        })
    }
}

fn read_trailing_bool(r: &mut JuteReader<'_>) -> Result<Option<bool>, DecodeError> {
    if r.remaining() == 0 {
        Ok(None)
    } else {
        Ok(Some(r.read_bool()?))
    }
}

jute_record! {
    /// `RequestHeader { i32 xid; i32 type }`.
    pub struct RequestHeader {
        /// The client's xid (-2 ping, -4 auth, -8 setWatches, else ≥ 1).
        pub xid: i32,
        /// The opcode number.
        pub ty: i32,
    }
}

jute_record! {
    /// `ReplyHeader { i32 xid; i64 zxid; i32 err }`.
    pub struct ReplyHeader {
        /// The request's xid (-1 for notifications).
        pub xid: i32,
        /// The server's last processed zxid (-1 for notifications, 0 for auth).
        pub zxid: i64,
        /// An [`ErrorCode`] number; non-zero means no body follows.
        pub err: i32,
    }
}

jute_record! {
    /// `MultiHeader { i32 type; bool done; i32 err }`, the separator inside multi records.
    pub struct MultiHeader {
        /// Op (or result) type; -1 on the terminator and on error results.
        pub ty: i32,
        /// True only on the terminator.
        pub done: bool,
        /// -1 in requests and on the terminator; the error code on error results; else 0.
        pub err: i32,
    }
}

jute_record! {
    /// `AuthPacket { i32 type; str scheme; buf auth }` (op 100, xid -4).
    pub struct AuthPacket {
        /// Unused (0).
        pub ty: i32,
        /// The auth scheme (`digest`, `ip`, ...).
        pub scheme: String,
        /// Scheme-specific credentials (`user:password` for digest).
        pub auth: Vec<u8>,
    }
}

jute_record! {
    /// `SetWatches` (op 101, xid -8): re-registration after a reconnect.
    pub struct SetWatches {
        /// The client's last seen zxid.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
    }
}

jute_record! {
    /// `SetWatches2` (op 105, xid -8): SetWatches plus persistent watches.
    pub struct SetWatches2 {
        /// The client's last seen zxid.
        pub relative_zxid: i64,
        /// Paths with data watches.
        pub data_watches: Vec<String>,
        /// Paths with exist watches.
        pub exist_watches: Vec<String>,
        /// Paths with child watches.
        pub child_watches: Vec<String>,
        /// Paths with persistent watches.
        pub persistent_watches: Vec<String>,
        /// Paths with persistent recursive watches.
        pub persistent_recursive_watches: Vec<String>,
    }
}

jute_record! {
    /// `GetDataRequest { str path; bool watch }` (op 4).
    pub struct GetDataRequest {
        /// Node path.
        pub path: String,
        /// Register a data watch.
        pub watch: bool,
    }
}

jute_record! {
    /// `SetDataRequest { str path; buf data; i32 version }` (op 5).
    pub struct SetDataRequest {
        /// Node path.
        pub path: String,
        /// New data; `None` is the null buffer.
        pub data: Option<Vec<u8>>,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// `ReconfigRequest { str joiningServers; str leavingServers; str newMembers; i64 curConfigId }`.
    pub struct ReconfigRequest {
        /// Incremental: comma-separated `server.N=...` entries to add.
        pub joining_servers: Option<String>,
        /// Incremental: comma-separated sids to remove.
        pub leaving_servers: Option<String>,
        /// Non-incremental: the whole new membership.
        pub new_members: Option<String>,
        /// Expected current config version, -1 for any.
        pub cur_config_id: i64,
    }
}

jute_record! {
    /// `SetDataResponse { Stat stat }`.
    pub struct SetDataResponse {
        /// The node's stat after the write.
        pub stat: Stat,
    }
}

jute_record! {
    /// `GetSASLRequest { buf token }` (op 102).
    pub struct GetSaslRequest {
        /// SASL token.
        pub token: Vec<u8>,
    }
}

jute_record! {
    /// `SetSASLRequest { buf token }`.
    pub struct SetSaslRequest {
        /// SASL token.
        pub token: Vec<u8>,
    }
}

jute_record! {
    /// `SetSASLResponse { buf token }`.
    pub struct SetSaslResponse {
        /// SASL token.
        pub token: Vec<u8>,
    }
}

jute_record! {
    /// `CreateRequest { str path; buf data; vec<ACL> acl; i32 flags }` (ops 1, 15, 19).
    pub struct CreateRequest {
        /// Node path (sequence suffix not yet applied).
        pub path: String,
        /// Initial data; `None` is the null buffer.
        pub data: Option<Vec<u8>>,
        /// The node's ACL.
        pub acl: Vec<Acl>,
        /// A `CreateMode` flag (see [`CreateRequest::create_mode`]).
        pub flags: i32,
    }
}

impl CreateRequest {
    /// The typed mode, `None` for flags ZooKeeper rejects.
    pub fn create_mode(&self) -> Option<CreateMode> {
        CreateMode::from_flag(self.flags)
    }
}

jute_record! {
    /// `CreateTTLRequest { str path; buf data; vec<ACL> acl; i32 flags; i64 ttl }` (op 21).
    pub struct CreateTtlRequest {
        /// Node path.
        pub path: String,
        /// Initial data; `None` is the null buffer.
        pub data: Option<Vec<u8>>,
        /// The node's ACL.
        pub acl: Vec<Acl>,
        /// A `CreateMode` flag (5 or 6 for valid TTL creates).
        pub flags: i32,
        /// Time to live, ms.
        pub ttl: i64,
    }
}

impl CreateTtlRequest {
    /// The typed mode, `None` for flags ZooKeeper rejects.
    pub fn create_mode(&self) -> Option<CreateMode> {
        CreateMode::from_flag(self.flags)
    }
}

jute_record! {
    /// `DeleteRequest { str path; i32 version }` (op 2).
    pub struct DeleteRequest {
        /// Node path.
        pub path: String,
        /// Expected version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// `GetChildrenRequest { str path; bool watch }` (op 8).
    pub struct GetChildrenRequest {
        /// Node path.
        pub path: String,
        /// Register a child watch.
        pub watch: bool,
    }
}

jute_record! {
    /// `GetAllChildrenNumberRequest { str path }` (op 104).
    pub struct GetAllChildrenNumberRequest {
        /// Node path.
        pub path: String,
    }
}

jute_record! {
    /// `GetChildren2Request { str path; bool watch }` (op 12).
    pub struct GetChildren2Request {
        /// Node path.
        pub path: String,
        /// Register a child watch.
        pub watch: bool,
    }
}

jute_record! {
    /// `CheckVersionRequest { str path; i32 version }` (op 13, inside multi).
    pub struct CheckVersionRequest {
        /// Node path.
        pub path: String,
        /// Expected version.
        pub version: i32,
    }
}

jute_record! {
    /// `GetMaxChildrenRequest { str path }`: legacy, no opcode uses it.
    pub struct GetMaxChildrenRequest {
        /// Node path.
        pub path: String,
    }
}

jute_record! {
    /// `GetMaxChildrenResponse { i32 max }`: legacy.
    pub struct GetMaxChildrenResponse {
        /// The limit.
        pub max: i32,
    }
}

jute_record! {
    /// `SetMaxChildrenRequest { str path; i32 max }`: legacy.
    pub struct SetMaxChildrenRequest {
        /// Node path.
        pub path: String,
        /// The limit.
        pub max: i32,
    }
}

jute_record! {
    /// `SyncRequest { str path }` (op 9).
    pub struct SyncRequest {
        /// Node path.
        pub path: String,
    }
}

jute_record! {
    /// `SyncResponse { str path }`: echoes the request's path.
    pub struct SyncResponse {
        /// Node path.
        pub path: String,
    }
}

jute_record! {
    /// `GetACLRequest { str path }` (op 6).
    pub struct GetAclRequest {
        /// Node path.
        pub path: String,
    }
}

jute_record! {
    /// `SetACLRequest { str path; vec<ACL> acl; i32 version }` (op 7).
    pub struct SetAclRequest {
        /// Node path.
        pub path: String,
        /// The new ACL.
        pub acl: Vec<Acl>,
        /// Expected ACL version, -1 for any.
        pub version: i32,
    }
}

jute_record! {
    /// `SetACLResponse { Stat stat }`.
    pub struct SetAclResponse {
        /// The node's stat after the write.
        pub stat: Stat,
    }
}

jute_record! {
    /// `AddWatchRequest { str path; i32 mode }` (op 106).
    pub struct AddWatchRequest {
        /// Node path.
        pub path: String,
        /// An [`AddWatchMode`] number.
        pub mode: i32,
    }
}

impl AddWatchRequest {
    /// The typed mode, `None` for undefined numbers.
    pub fn watch_mode(&self) -> Option<AddWatchMode> {
        AddWatchMode::from_code(self.mode)
    }
}

jute_record! {
    /// `WatcherEvent { i32 type; i32 state; str path }`: the body of a notification (xid -1).
    pub struct WatcherEvent {
        /// An [`EventType`] number.
        pub ty: i32,
        /// A [`KeeperState`] number (always SyncConnected from a server).
        pub state: i32,
        /// The node path (server-side, chroot included).
        pub path: String,
    }
}

impl WatcherEvent {
    /// A server notification: state SyncConnected.
    pub fn node(ty: EventType, path: impl Into<String>) -> WatcherEvent {
        WatcherEvent {
            ty: ty.code(),
            state: KeeperState::SyncConnected.code(),
            path: path.into(),
        }
    }

    /// The typed event type.
    pub fn event_type(&self) -> Option<EventType> {
        EventType::from_code(self.ty)
    }

    /// The typed state.
    pub fn keeper_state(&self) -> Option<KeeperState> {
        KeeperState::from_code(self.state)
    }
}

jute_record! {
    /// `ErrorResponse { i32 err }`: multi error results and the addWatch reply body.
    pub struct ErrorResponse {
        /// An [`ErrorCode`] number.
        pub err: i32,
    }
}

jute_record! {
    /// `CreateResponse { str path }` (op 1).
    pub struct CreateResponse {
        /// The created path (with sequence suffix).
        pub path: String,
    }
}

jute_record! {
    /// `Create2Response { str path; Stat stat }` (ops 15, 19, 21).
    pub struct Create2Response {
        /// The created path.
        pub path: String,
        /// The new node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// `ExistsRequest { str path; bool watch }` (op 3).
    pub struct ExistsRequest {
        /// Node path.
        pub path: String,
        /// Register an exist/data watch.
        pub watch: bool,
    }
}

jute_record! {
    /// `ExistsResponse { Stat stat }`.
    pub struct ExistsResponse {
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// `GetDataResponse { buf data; Stat stat }` (ops 4 and 16).
    pub struct GetDataResponse {
        /// The data; `None` for a node stored with null data.
        pub data: Option<Vec<u8>>,
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// `GetChildrenResponse { vec<str> children }`.
    pub struct GetChildrenResponse {
        /// Child names (not full paths).
        pub children: Vec<String>,
    }
}

jute_record! {
    /// `GetAllChildrenNumberResponse { i32 totalNumber }`.
    pub struct GetAllChildrenNumberResponse {
        /// Number of descendants.
        pub total_number: i32,
    }
}

jute_record! {
    /// `GetChildren2Response { vec<str> children; Stat stat }`.
    pub struct GetChildren2Response {
        /// Child names.
        pub children: Vec<String>,
        /// The parent's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// `GetACLResponse { vec<ACL> acl; Stat stat }`.
    pub struct GetAclResponse {
        /// The node's ACL.
        pub acl: Vec<Acl>,
        /// The node's stat.
        pub stat: Stat,
    }
}

jute_record! {
    /// `CheckWatchesRequest { str path; i32 type }` (op 17).
    pub struct CheckWatchesRequest {
        /// Node path.
        pub path: String,
        /// A [`WatcherType`] number.
        pub ty: i32,
    }
}

jute_record! {
    /// `RemoveWatchesRequest { str path; i32 type }` (op 18).
    pub struct RemoveWatchesRequest {
        /// Node path.
        pub path: String,
        /// A [`WatcherType`] number.
        pub ty: i32,
    }
}

impl CheckWatchesRequest {
    /// The typed watcher type.
    pub fn watcher_type(&self) -> Option<WatcherType> {
        WatcherType::from_code(self.ty)
    }
}

impl RemoveWatchesRequest {
    /// The typed watcher type.
    pub fn watcher_type(&self) -> Option<WatcherType> {
        WatcherType::from_code(self.ty)
    }
}

jute_record! {
    /// `GetEphemeralsRequest { str prefixPath }` (op 103).
    pub struct GetEphemeralsRequest {
        /// Only ephemerals under this prefix.
        pub prefix_path: String,
    }
}

jute_record! {
    /// `GetEphemeralsResponse { vec<str> ephemerals }`.
    pub struct GetEphemeralsResponse {
        /// Full paths of the session's ephemerals.
        pub ephemerals: Vec<String>,
    }
}

jute_record! {
    /// `ClientInfo { str authScheme; str user }` (`org.apache.zookeeper.data`).
    pub struct ClientInfo {
        /// Auth scheme (`ip`, `digest`, ...).
        pub auth_scheme: String,
        /// The authenticated user.
        pub user: String,
    }
}

jute_record! {
    /// `WhoAmIResponse { vec<ClientInfo> clientInfo }` (op 107).
    pub struct WhoAmIResponse {
        /// The connection's identities.
        pub client_info: Vec<ClientInfo>,
    }
}

/// One operation of a `MultiOperationRecord` (op 14 writes or op 22 reads).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MultiOp {
    /// Type 1.
    Create(CreateRequest),
    /// Type 15.
    Create2(CreateRequest),
    /// Type 19.
    CreateContainer(CreateRequest),
    /// Type 21.
    CreateTtl(CreateTtlRequest),
    /// Type 2.
    Delete(DeleteRequest),
    /// Type 5.
    SetData(SetDataRequest),
    /// Type 13.
    Check(CheckVersionRequest),
    /// Type 8 (multiRead only).
    GetChildren(GetChildrenRequest),
    /// Type 4 (multiRead only).
    GetData(GetDataRequest),
}

impl MultiOp {
    /// The op's type number as carried in its `MultiHeader`.
    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }

    /// True for getChildren/getData (multiRead ops).
    pub fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetChildren(_) | MultiOp::GetData(_))
    }

    /// The path the op works on.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => &c.path,
            MultiOp::CreateTtl(c) => &c.path,
            MultiOp::Delete(d) => &d.path,
            MultiOp::SetData(s) => &s.path,
            MultiOp::Check(c) => &c.path,
            MultiOp::GetChildren(g) => &g.path,
            MultiOp::GetData(g) => &g.path,
        }
    }

    fn write_body(&self, w: &mut JuteWriter) {
        match self {
            MultiOp::Create(c) | MultiOp::Create2(c) | MultiOp::CreateContainer(c) => c.write(w),
            MultiOp::CreateTtl(c) => c.write(w),
            MultiOp::Delete(d) => d.write(w),
            MultiOp::SetData(s) => s.write(w),
            MultiOp::Check(c) => c.write(w),
            MultiOp::GetChildren(g) => g.write(w),
            MultiOp::GetData(g) => g.write(w),
        }
    }
}

/// The terminating `MultiHeader{-1, true, -1}` of both multi records.
const MULTI_DONE: MultiHeader = MultiHeader {
    ty: -1,
    done: true,
    err: -1,
};

/// `MultiOperationRecord`: `{MultiHeader{type, false, -1}, op record}*` then `MultiHeader{-1, true, -1}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MultiRequest {
    /// The ops in order.
    pub ops: Vec<MultiOp>,
}

impl Record for MultiRequest {
    const MIN_ENCODED_LEN: usize = 9;

    fn write(&self, w: &mut JuteWriter) {
        for op in &self.ops {
            MultiHeader {
                ty: op.op_code().code(),
                done: false,
                err: -1,
            }
            .write(w);
            op.write_body(w);
        }
        MULTI_DONE.write(w);
    }

    /// Reads like `MultiOperationRecord.deserialize`: unknown op types and mixing read and write ops are
    /// errors (the server's MARSHALLINGERROR). Create flags are not checked here: Java's
    /// `Op.create(path, data, acl, flags)` falls back to PERSISTENT for its opcode and keeps the raw
    /// flags, so a bad flag fails later, in prep, as that op's BADARGUMENTS.
    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        let mut ops = Vec::new();
        loop {
            let h = MultiHeader::read(r)?;
            if h.done {
                break;
            }
            let op = match OpCode::from_code(h.ty) {
                Some(kind @ (OpCode::Create | OpCode::Create2 | OpCode::CreateContainer)) => {
                    let c = CreateRequest::read(r)?;
                    match kind {
                        OpCode::Create => MultiOp::Create(c),
                        OpCode::Create2 => MultiOp::Create2(c),
                        _ => MultiOp::CreateContainer(c),
                    }
                }
                Some(OpCode::CreateTtl) => MultiOp::CreateTtl(CreateTtlRequest::read(r)?),
                Some(OpCode::Delete) => MultiOp::Delete(DeleteRequest::read(r)?),
                Some(OpCode::SetData) => MultiOp::SetData(SetDataRequest::read(r)?),
                Some(OpCode::Check) => MultiOp::Check(CheckVersionRequest::read(r)?),
                Some(OpCode::GetChildren) => MultiOp::GetChildren(GetChildrenRequest::read(r)?),
                Some(OpCode::GetData) => MultiOp::GetData(GetDataRequest::read(r)?),
                _ => {
                    return Err(DecodeError::malformed(format!(
                        "invalid type of op {} in multi",
                        h.ty
                    )))
                }
            };
            if let Some(first) = ops.first() {
                if MultiOp::is_read(first) != op.is_read() {
                    return Err(DecodeError::malformed("mixing different kind of ops"));
                }
            }
            ops.push(op);
        }
        Ok(MultiRequest { ops })
    }
}

/// One result of a `MultiResponse`; its type follows the request op's type (§2.9).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MultiResult {
    /// Type 1: `CreateResponse`.
    Create {
        /// The created path.
        path: String,
    },
    /// Type 15 (create2, createContainer and createTTL ops): `Create2Response`.
    Create2 {
        /// The created path.
        path: String,
        /// The new node's stat.
        stat: Stat,
    },
    /// Type 2: no body.
    Delete,
    /// Type 5: `SetDataResponse`.
    SetData {
        /// The node's stat.
        stat: Stat,
    },
    /// Type 13: no body.
    Check,
    /// Type 8: `GetChildrenResponse` (multiRead).
    GetChildren {
        /// Child names.
        children: Vec<String>,
    },
    /// Type 4: `GetDataResponse` (multiRead).
    GetData {
        /// The data (null kept as `None`).
        data: Option<Vec<u8>>,
        /// The node's stat.
        stat: Stat,
    },
    /// Type -1: header err and `ErrorResponse{err}` both carry the code.
    Error {
        /// 0 for ops before the failing one, the real error, or RuntimeInconsistency after it.
        err: ErrorCode,
    },
}

impl MultiResult {
    /// The result's type number.
    pub fn type_code(&self) -> i32 {
        match self {
            MultiResult::Create { .. } => 1,
            MultiResult::Create2 { .. } => 15,
            MultiResult::Delete => 2,
            MultiResult::SetData { .. } => 5,
            MultiResult::Check => 13,
            MultiResult::GetChildren { .. } => 8,
            MultiResult::GetData { .. } => 4,
            MultiResult::Error { .. } => -1,
        }
    }
}

/// `MultiResponse`: `{MultiHeader{type, false, err}, result record}*` then `MultiHeader{-1, true, -1}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MultiResponse {
    /// One result per op, in order.
    pub results: Vec<MultiResult>,
}

impl Record for MultiResponse {
    const MIN_ENCODED_LEN: usize = 9;

    fn write(&self, w: &mut JuteWriter) {
        for res in &self.results {
            let err = match res {
                MultiResult::Error { err } => err.code(),
                _ => 0,
            };
            MultiHeader {
                ty: res.type_code(),
                done: false,
                err,
            }
            .write(w);
            match res {
                MultiResult::Create { path } => w.write_string(path),
                MultiResult::Create2 { path, stat } => {
                    w.write_string(path);
                    stat.write(w);
                }
                MultiResult::Delete | MultiResult::Check => {}
                MultiResult::SetData { stat } => stat.write(w),
                MultiResult::GetChildren { children } => w.write_string_vec(children),
                MultiResult::GetData { data, stat } => {
                    w.write_buffer_opt(data.as_deref());
                    stat.write(w);
                }
                MultiResult::Error { err } => w.write_i32(err.code()),
            }
        }
        MULTI_DONE.write(w);
    }

    fn read(r: &mut JuteReader<'_>) -> Result<Self, DecodeError> {
        let mut results = Vec::new();
        loop {
            let h = MultiHeader::read(r)?;
            if h.done {
                break;
            }
            let res = match h.ty {
                1 => MultiResult::Create {
                    path: r.read_string()?,
                },
                15 => MultiResult::Create2 {
                    path: r.read_string()?,
                    stat: Stat::read(r)?,
                },
                2 => MultiResult::Delete,
                5 => MultiResult::SetData {
                    stat: Stat::read(r)?,
                },
                13 => MultiResult::Check,
                8 => MultiResult::GetChildren {
                    children: r.read_string_vec()?,
                },
                4 => MultiResult::GetData {
                    data: r.read_buffer_opt()?,
                    stat: Stat::read(r)?,
                },
                -1 => MultiResult::Error {
                    err: ErrorCode::from_code(r.read_i32()?),
                },
                other => {
                    return Err(DecodeError::malformed(format!(
                        "invalid type {other} in MultiResponse"
                    )))
                }
            };
            results.push(res);
        }
        Ok(MultiResponse { results })
    }
}

/// A decoded client request body, one variant per opcode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// 1
    Create(CreateRequest),
    /// 2
    Delete(DeleteRequest),
    /// 3
    Exists(ExistsRequest),
    /// 4
    GetData(GetDataRequest),
    /// 5
    SetData(SetDataRequest),
    /// 6
    GetAcl(GetAclRequest),
    /// 7
    SetAcl(SetAclRequest),
    /// 8
    GetChildren(GetChildrenRequest),
    /// 9
    Sync(SyncRequest),
    /// 11: no body.
    Ping,
    /// 12
    GetChildren2(GetChildren2Request),
    /// 13: a standalone check (servers answer UNIMPLEMENTED).
    Check(CheckVersionRequest),
    /// 14
    Multi(MultiRequest),
    /// 15
    Create2(CreateRequest),
    /// 16
    Reconfig(ReconfigRequest),
    /// 17
    CheckWatches(CheckWatchesRequest),
    /// 18
    RemoveWatches(RemoveWatchesRequest),
    /// 19
    CreateContainer(CreateRequest),
    /// 20: internal; the body is the raw path bytes without a length prefix.
    DeleteContainer {
        /// The container's path.
        path: String,
    },
    /// 21
    CreateTtl(CreateTtlRequest),
    /// 22
    MultiRead(MultiRequest),
    /// 100 (xid -4)
    Auth(AuthPacket),
    /// 101 (xid -8)
    SetWatches(SetWatches),
    /// 102
    Sasl(GetSaslRequest),
    /// 103
    GetEphemerals(GetEphemeralsRequest),
    /// 104
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    /// 105 (xid -8)
    SetWatches2(SetWatches2),
    /// 106
    AddWatch(AddWatchRequest),
    /// 107: no body.
    WhoAmI,
    /// -10: internal (forwarded in a learner REQUEST); the body is the 4-byte timeout.
    CreateSession {
        /// Session timeout in ms.
        timeout: i32,
    },
    /// -11: no body.
    CloseSession,
}

impl Request {
    /// The request's opcode.
    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::Create2(_) => OpCode::Create2,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::DeleteContainer { .. } => OpCode::DeleteContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Auth(_) => OpCode::Auth,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::Sasl(_) => OpCode::Sasl,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CreateSession { .. } => OpCode::CreateSession,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// The path the request names, when it names one.
    pub fn path(&self) -> Option<&str> {
        Some(match self {
            Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => &c.path,
            Request::CreateTtl(c) => &c.path,
            Request::Delete(r) => &r.path,
            Request::Exists(r) => &r.path,
            Request::GetData(r) => &r.path,
            Request::SetData(r) => &r.path,
            Request::GetAcl(r) => &r.path,
            Request::SetAcl(r) => &r.path,
            Request::GetChildren(r) => &r.path,
            Request::GetChildren2(r) => &r.path,
            Request::Sync(r) => &r.path,
            Request::Check(r) => &r.path,
            Request::CheckWatches(r) => &r.path,
            Request::RemoveWatches(r) => &r.path,
            Request::DeleteContainer { path } => path,
            Request::GetEphemerals(r) => &r.prefix_path,
            Request::GetAllChildrenNumber(r) => &r.path,
            Request::AddWatch(r) => &r.path,
            _ => return None,
        })
    }

    /// Appends the request body (no header).
    pub fn encode(&self, w: &mut JuteWriter) {
        match self {
            Request::Create(c) | Request::Create2(c) | Request::CreateContainer(c) => c.write(w),
            Request::Delete(r) => r.write(w),
            Request::Exists(r) => r.write(w),
            Request::GetData(r) => r.write(w),
            Request::SetData(r) => r.write(w),
            Request::GetAcl(r) => r.write(w),
            Request::SetAcl(r) => r.write(w),
            Request::GetChildren(r) => r.write(w),
            Request::Sync(r) => r.write(w),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::GetChildren2(r) => r.write(w),
            Request::Check(r) => r.write(w),
            Request::Multi(r) | Request::MultiRead(r) => r.write(w),
            Request::Reconfig(r) => r.write(w),
            Request::CheckWatches(r) => r.write(w),
            Request::RemoveWatches(r) => r.write(w),
            Request::DeleteContainer { path } => w.write_raw(path.as_bytes()),
            Request::CreateTtl(r) => r.write(w),
            Request::Auth(r) => r.write(w),
            Request::SetWatches(r) => r.write(w),
            Request::Sasl(r) => r.write(w),
            Request::GetEphemerals(r) => r.write(w),
            Request::GetAllChildrenNumber(r) => r.write(w),
            Request::SetWatches2(r) => r.write(w),
            Request::AddWatch(r) => r.write(w),
            Request::CreateSession { timeout } => w.write_i32(*timeout),
        }
    }

    /// The body as a fresh vector.
    pub fn to_body_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        self.encode(&mut w);
        w.into_inner()
    }

    /// Decodes the body that followed a `RequestHeader` of type `op`. Like ZooKeeper, bytes after the
    /// record are ignored. Opcodes that never carry a client request (notification, error) are refused.
    pub fn decode(op: OpCode, body: &[u8]) -> Result<Request, DecodeError> {
        let mut r = JuteReader::new(body);
        let r = &mut r;
        Ok(match op {
            OpCode::Create => Request::Create(CreateRequest::read(r)?),
            OpCode::Delete => Request::Delete(DeleteRequest::read(r)?),
            OpCode::Exists => Request::Exists(ExistsRequest::read(r)?),
            OpCode::GetData => Request::GetData(GetDataRequest::read(r)?),
            OpCode::SetData => Request::SetData(SetDataRequest::read(r)?),
            OpCode::GetAcl => Request::GetAcl(GetAclRequest::read(r)?),
            OpCode::SetAcl => Request::SetAcl(SetAclRequest::read(r)?),
            OpCode::GetChildren => Request::GetChildren(GetChildrenRequest::read(r)?),
            OpCode::Sync => Request::Sync(SyncRequest::read(r)?),
            OpCode::Ping => Request::Ping,
            OpCode::GetChildren2 => Request::GetChildren2(GetChildren2Request::read(r)?),
            OpCode::Check => Request::Check(CheckVersionRequest::read(r)?),
            OpCode::Multi => Request::Multi(MultiRequest::read(r)?),
            OpCode::Create2 => Request::Create2(CreateRequest::read(r)?),
            OpCode::Reconfig => Request::Reconfig(ReconfigRequest::read(r)?),
            OpCode::CheckWatches => Request::CheckWatches(CheckWatchesRequest::read(r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(RemoveWatchesRequest::read(r)?),
            OpCode::CreateContainer => Request::CreateContainer(CreateRequest::read(r)?),
            OpCode::DeleteContainer => Request::DeleteContainer {
                path: String::from_utf8_lossy(body).into_owned(),
            },
            OpCode::CreateTtl => Request::CreateTtl(CreateTtlRequest::read(r)?),
            OpCode::MultiRead => Request::MultiRead(MultiRequest::read(r)?),
            OpCode::Auth => Request::Auth(AuthPacket::read(r)?),
            OpCode::SetWatches => Request::SetWatches(SetWatches::read(r)?),
            OpCode::Sasl => Request::Sasl(GetSaslRequest::read(r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(GetEphemeralsRequest::read(r)?),
            OpCode::GetAllChildrenNumber => {
                Request::GetAllChildrenNumber(GetAllChildrenNumberRequest::read(r)?)
            }
            OpCode::SetWatches2 => Request::SetWatches2(SetWatches2::read(r)?),
            OpCode::AddWatch => Request::AddWatch(AddWatchRequest::read(r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CreateSession => Request::CreateSession {
                timeout: r.read_i32()?,
            },
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification | OpCode::Error => {
                return Err(DecodeError::malformed(format!(
                    "opcode {} is not a client request",
                    op.code()
                )))
            }
        })
    }
}

/// Decodes a request frame payload: `RequestHeader` then the body its type selects. An unknown type
/// number is `Malformed` (the server answers UNIMPLEMENTED and closes).
pub fn decode_request(payload: &[u8]) -> Result<(RequestHeader, Request), DecodeError> {
    let mut r = JuteReader::new(payload);
    let header = RequestHeader::read(&mut r)?;
    let op = OpCode::from_code(header.ty)
        .ok_or_else(|| DecodeError::malformed(format!("unknown opcode {}", header.ty)))?;
    let req = Request::decode(op, r.rest())?;
    Ok((header, req))
}

/// Encodes a request frame payload (no length prefix): `RequestHeader{xid, op}` then the body.
pub fn encode_request(xid: i32, req: &Request) -> Vec<u8> {
    let mut w = JuteWriter::new();
    RequestHeader {
        xid,
        ty: req.op_code().code(),
    }
    .write(&mut w);
    req.encode(&mut w);
    w.into_inner()
}

/// A reply body. Which variant a body decodes to depends on the opcode of the request it answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Response {
    /// No body: error replies, ping, auth, delete, setWatches*, check/removeWatches, closeSession.
    Empty,
    /// A watch notification (xid -1).
    Watch(WatcherEvent),
    /// create (1).
    Create(CreateResponse),
    /// create2 / createContainer / createTTL.
    Create2(Create2Response),
    /// exists.
    Exists(ExistsResponse),
    /// getData.
    GetData(GetDataResponse),
    /// setData.
    SetData(SetDataResponse),
    /// getACL.
    GetAcl(GetAclResponse),
    /// setACL.
    SetAcl(SetAclResponse),
    /// getChildren.
    GetChildren(GetChildrenResponse),
    /// getChildren2.
    GetChildren2(GetChildren2Response),
    /// sync.
    Sync(SyncResponse),
    /// multi and multiRead.
    Multi(MultiResponse),
    /// reconfig: the new config text and the stat of `/zookeeper/config`.
    Reconfig(GetDataResponse),
    /// sasl.
    Sasl(SetSaslResponse),
    /// getEphemerals.
    GetEphemerals(GetEphemeralsResponse),
    /// getAllChildrenNumber.
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    /// addWatch: a 4-byte `ErrorResponse{0}`.
    AddWatch(ErrorResponse),
    /// whoAmI.
    WhoAmI(WhoAmIResponse),
}

impl Response {
    /// Appends the body (nothing for `Empty`).
    pub fn encode(&self, w: &mut JuteWriter) {
        match self {
            Response::Empty => {}
            Response::Watch(r) => r.write(w),
            Response::Create(r) => r.write(w),
            Response::Create2(r) => r.write(w),
            Response::Exists(r) => r.write(w),
            Response::GetData(r) | Response::Reconfig(r) => r.write(w),
            Response::SetData(r) => r.write(w),
            Response::GetAcl(r) => r.write(w),
            Response::SetAcl(r) => r.write(w),
            Response::GetChildren(r) => r.write(w),
            Response::GetChildren2(r) => r.write(w),
            Response::Sync(r) => r.write(w),
            Response::Multi(r) => r.write(w),
            Response::Sasl(r) => r.write(w),
            Response::GetEphemerals(r) => r.write(w),
            Response::GetAllChildrenNumber(r) => r.write(w),
            Response::AddWatch(r) => r.write(w),
            Response::WhoAmI(r) => r.write(w),
        }
    }

    /// The body as a fresh vector.
    pub fn to_body_bytes(&self) -> Vec<u8> {
        let mut w = JuteWriter::new();
        self.encode(&mut w);
        w.into_inner()
    }

    /// Decodes the success body of a reply to a request of type `op`; the body must be consumed exactly.
    pub fn decode(op: OpCode, body: &[u8]) -> Result<Response, DecodeError> {
        let mut rd = JuteReader::new(body);
        let r = &mut rd;
        let resp = match op {
            OpCode::Notification => Response::Watch(WatcherEvent::read(r)?),
            OpCode::Create => Response::Create(CreateResponse::read(r)?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(Create2Response::read(r)?)
            }
            OpCode::Exists => Response::Exists(ExistsResponse::read(r)?),
            OpCode::GetData => Response::GetData(GetDataResponse::read(r)?),
            OpCode::SetData => Response::SetData(SetDataResponse::read(r)?),
            OpCode::GetAcl => Response::GetAcl(GetAclResponse::read(r)?),
            OpCode::SetAcl => Response::SetAcl(SetAclResponse::read(r)?),
            OpCode::GetChildren => Response::GetChildren(GetChildrenResponse::read(r)?),
            OpCode::GetChildren2 => Response::GetChildren2(GetChildren2Response::read(r)?),
            OpCode::Sync => Response::Sync(SyncResponse::read(r)?),
            OpCode::Multi | OpCode::MultiRead => Response::Multi(MultiResponse::read(r)?),
            OpCode::Reconfig => Response::Reconfig(GetDataResponse::read(r)?),
            OpCode::Sasl => Response::Sasl(SetSaslResponse::read(r)?),
            OpCode::GetEphemerals => Response::GetEphemerals(GetEphemeralsResponse::read(r)?),
            OpCode::GetAllChildrenNumber => {
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse::read(r)?)
            }
            OpCode::AddWatch => Response::AddWatch(ErrorResponse::read(r)?),
            OpCode::WhoAmI => Response::WhoAmI(WhoAmIResponse::read(r)?),
            OpCode::Delete
            | OpCode::Ping
            | OpCode::Check
            | OpCode::CheckWatches
            | OpCode::RemoveWatches
            | OpCode::DeleteContainer
            | OpCode::Auth
            | OpCode::SetWatches
            | OpCode::SetWatches2
            | OpCode::CreateSession
            | OpCode::CloseSession
            | OpCode::Error => Response::Empty,
        };
        rd.finish()?;
        Ok(resp)
    }
}

/// Decodes a reply payload. `op` is the opcode of the request with the reply's xid (`None` when unknown,
/// which is fine for notifications, pings, auth, setWatches and error replies). A notification (xid -1)
/// decodes to [`Response::Watch`]; a non-zero `err` to [`Response::Empty`].
pub fn decode_reply(
    payload: &[u8],
    op: Option<OpCode>,
) -> Result<(ReplyHeader, Response), DecodeError> {
    let mut r = JuteReader::new(payload);
    let header = ReplyHeader::read(&mut r)?;
    let op = match header.xid {
        -1 => OpCode::Notification,
        -2 => OpCode::Ping,
        -4 => OpCode::Auth,
        -8 => OpCode::SetWatches,
        _ if header.err != 0 => OpCode::Error,
        _ => op.ok_or_else(|| {
            DecodeError::malformed(format!("no request known for xid {}", header.xid))
        })?,
    };
    let op = if header.err != 0 && op != OpCode::Notification {
        OpCode::Error
    } else {
        op
    };
    Ok((header, Response::decode(op, r.rest())?))
}

/// Encodes a reply payload (no length prefix): the header then the body.
pub fn encode_reply(header: &ReplyHeader, resp: &Response) -> Vec<u8> {
    let mut w = JuteWriter::new();
    header.write(&mut w);
    resp.encode(&mut w);
    w.into_inner()
}

/// The notification payload for `event`: `ReplyHeader{-1, -1, 0}` then the `WatcherEvent`.
pub fn encode_notification(event: &WatcherEvent) -> Vec<u8> {
    encode_reply(
        &ReplyHeader {
            xid: -1,
            zxid: -1,
            err: 0,
        },
        &Response::Watch(event.clone()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::test_hex::hex;

    /// A.6's ConnectRequest and ConnectResponse decode (with the readOnly byte) and re-encode exactly;
    /// without the byte they decode as an old client's and stay short.
    #[test]
    fn golden_connect() {
        let req = hex("00000000 0000000000000000 00007530 0000000000000000 00000010 00000000000000000000000000000000 00");
        let c = ConnectRequest::from_bytes(&req).unwrap();
        assert_eq!(c.timeout, 30000);
        assert_eq!(c.read_only, Some(false));
        assert_eq!(c.to_bytes(), req);
        let old = ConnectRequest::from_bytes(&req[..44]).unwrap();
        assert_eq!(old.read_only, None);
        assert_eq!(old.to_bytes().len(), 44);

        let resp =
            hex("00000000 00007530 0100000000000000 00000010 f22acd4a97e69d6d20a49bb638eadb38 00");
        let c = ConnectResponse::from_bytes(&resp).unwrap();
        assert_eq!(c.session_id, 0x0100000000000000);
        assert_eq!(c.read_only, Some(false));
        assert_eq!(c.to_bytes(), resp);
    }

    /// A.6's create request and reply, ping and notification decode to the right variants and
    /// re-encode byte for byte.
    #[test]
    fn golden_create_ping_notification() {
        let req = hex(
            "00000001 00000001 00000008 2f7a6b5f74657374 00000007 6d795f64617461
            00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65 00000000",
        );
        let (h, r) = decode_request(&req).unwrap();
        assert_eq!(h.xid, 1);
        match &r {
            Request::Create(c) => {
                assert_eq!(c.path, "/zk_test");
                assert_eq!(c.data.as_deref(), Some(&b"my_data"[..]));
                assert_eq!(c.create_mode(), Some(CreateMode::Persistent));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(encode_request(h.xid, &r), req);

        let reply = hex("00000001 0000000100000002 00000000 00000008 2f7a6b5f74657374");
        let (h, resp) = decode_reply(&reply, Some(OpCode::Create)).unwrap();
        assert_eq!(h.zxid, 0x100000002);
        assert_eq!(
            resp,
            Response::Create(CreateResponse {
                path: "/zk_test".into()
            })
        );
        assert_eq!(encode_reply(&h, &resp), reply);

        let ping = hex("fffffffe 0000000b");
        assert_eq!(decode_request(&ping).unwrap().1, Request::Ping);
        let pong = hex("fffffffe 0000000100000002 00000000");
        assert_eq!(decode_reply(&pong, None).unwrap().1, Response::Empty);

        let note = hex("ffffffff ffffffffffffffff 00000000 00000003 00000003 00000002 2f61");
        let (_, resp) = decode_reply(&note, None).unwrap();
        let ev = WatcherEvent::node(EventType::NodeDataChanged, "/a");
        assert_eq!(resp, Response::Watch(ev.clone()));
        assert_eq!(encode_notification(&ev), note);
    }

    /// A.6's multi request and its failed-multi reply decode and re-encode byte for byte.
    #[test]
    fn golden_multi() {
        let req = hex("00000005 0000000e
            00000001 00 ffffffff  00000003 2f7431 00000001 61 00000001 0000001f 00000005 776f726c64 00000006 616e796f6e65 00000000
            0000000d 00 ffffffff  00000003 2f7431 00000000
            ffffffff 01 ffffffff");
        let (h, r) = decode_request(&req).unwrap();
        match &r {
            Request::Multi(m) => {
                assert_eq!(m.ops.len(), 2);
                assert!(matches!(m.ops[0], MultiOp::Create(_)));
                assert!(matches!(m.ops[1], MultiOp::Check(_)));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(encode_request(h.xid, &r), req);

        let reply = hex("00000005 0000000100000009 00000000
            ffffffff 00 00000000 00000000
            ffffffff 00 ffffff99 ffffff99
            ffffffff 01 ffffffff");
        let (h, resp) = decode_reply(&reply, Some(OpCode::Multi)).unwrap();
        assert_eq!(
            resp,
            Response::Multi(MultiResponse {
                results: vec![
                    MultiResult::Error { err: ErrorCode::Ok },
                    MultiResult::Error {
                        err: ErrorCode::BadVersion
                    },
                ]
            })
        );
        assert_eq!(encode_reply(&h, &resp), reply);
    }

    /// Mixing read and write ops fails to decode as in Java; a create flag that is no CreateMode decodes
    /// (Java's MultiOperationRecord keeps it; prep answers that op BADARGUMENTS, checked against
    /// ZooKeeper 3.8 by tests/differential.rs).
    #[test]
    fn multi_rejects_mixing_but_not_bad_flags() {
        let mixed = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: -1,
                }),
                MultiOp::GetData(GetDataRequest {
                    path: "/a".into(),
                    watch: false,
                }),
            ],
        });
        assert!(Request::decode(OpCode::Multi, &mixed.to_body_bytes()).is_err());
        let bad = Request::Multi(MultiRequest {
            ops: vec![MultiOp::Create(CreateRequest {
                path: "/a".into(),
                flags: 9,
                ..CreateRequest::default()
            })],
        });
        assert_eq!(
            Request::decode(OpCode::Multi, &bad.to_body_bytes()).unwrap(),
            bad
        );
    }

    /// Error replies have no body whatever the op, and an unknown opcode is refused.
    #[test]
    fn error_replies_and_unknown_ops() {
        let reply = encode_reply(
            &ReplyHeader {
                xid: 9,
                zxid: 4,
                err: ErrorCode::NoNode.code(),
            },
            &Response::Empty,
        );
        assert_eq!(
            decode_reply(&reply, Some(OpCode::GetData)).unwrap().1,
            Response::Empty
        );
        assert!(decode_request(&[0, 0, 0, 1, 0, 0, 0, 10]).is_err());
        assert!(decode_request(&[0, 0, 0, 1, 0, 0, 0, 0]).is_err());
    }
}
