//! The server as a state machine: decoded client events in, [`Action`]s out. It runs standalone, or
//! inside an ensemble as the leader's or a learner's request pipeline (see [`Mode`] and the
//! `ensemble` submodule, which holds what differs between the modes).
//!
//! It plays the roles of ZooKeeper's `PrepRequestProcessor` (writes become txns with the next zxid),
//! `SyncRequestProcessor` (it asks the shell to log them; the shell reports when they are durable) and
//! `FinalRequestProcessor` (durable txns are applied to the tree, watches fire, replies go out), plus the
//! session tracker's expiry and the connection bookkeeping of `ServerCnxn`.
//!
//! Obligations of the driver (the tokio shell or a simulator), in order:
//! 1. Feed every event through [`Standalone::handle`]; take the actions with [`Standalone::take_actions`].
//! 2. Carry out actions in the order given: `Send` frames go to their connection in order; `Close` closes
//!    a connection after the frames queued before it.
//! 3. `Log` entries must be appended in the order given; report [`Input::Durable`] only after the fsync that
//!    covers them (a reply is released only then: a write is acknowledged only once it is on disk).
//! 4. `Snapshot` pieces may be written on another thread, in order, to one file per snapshot. A snapshot
//!    is fuzzy (ZooKeeper's): the tree as of its zxid plus some later changes, so recovery must replay
//!    every txn after that zxid.
//! 5. While [`Standalone::snapshot_in_progress`], give the server [`Input::SnapshotStep`] turns between
//!    other inputs: each serializes about `snapshot_chunk_bytes` (ticks also take a step). A driver that
//!    cannot keep up with writing the pieces holds back the turns; memory stays bounded by what it
//!    queues.
//!
//! In an ensemble the ZAB engine is the driver: on the leader a `Log` is a proposal and `Durable` a
//! commit; on a learner the engine feeds committed txns as [`Input::Committed`] and carries the
//! [`Action::Forward`] / [`Action::Revalidate`] packets to the leader (details in `docs/zab.md`).
//!
//! Nothing here reads a clock or does IO: `now_ms` arrives with every input.

mod ensemble;
#[cfg(test)]
mod ensemble_tests;
mod local_sessions;
#[cfg(test)]
mod local_sessions_tests;

pub use local_sessions::LocalSessionSettings;

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::acl::{check_acl, digest_auth, redact_digests, AuthConfig, GET_ACL_PERMS};
use crate::ids::{ServerId, SessionId, Zxid};
use crate::jute::{JuteReader, JuteWriter, Record};
use crate::proto::client::ErrorResponse;
use crate::proto::client::{
    ClientInfo, ConnectRequest, ConnectResponse, Create2Response, CreateRequest, CreateResponse,
    ExistsResponse, GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response,
    GetChildrenResponse, GetDataResponse, GetEphemeralsResponse, MultiOp, MultiRequest,
    MultiResponse, MultiResult, ReplyHeader, Request, Response, SetAclResponse, SetDataResponse,
    SyncResponse, WatcherEvent, WhoAmIResponse,
};
use crate::proto::quorum::{ForwardedRequest, SessionTouch};
use crate::proto::{perms, ErrorCode, Id, OpCode, Txn, TxnEntry, TxnHeader};
use crate::session::{check_password, session_password, SessionConfig, SessionTracker};
use crate::tree::apply::TxnResult;
use crate::tree::prep::{prepare, PendingChanges, PrepConfig, RequestMeta, WriteRequest};
use crate::tree::snap_stream::SnapStream;
use crate::tree::snapshot::{read_sessions, write_sessions};
use crate::tree::DataTree;
use crate::watch::{Notification, WatchManager, WatcherMode, WatcherType};

/// A client connection, numbered by the shell.
pub type ConnId = u64;

/// The role the state machine plays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// A lone server (`ZooKeeperServer`): prepares, logs and applies its own writes.
    #[default]
    Standalone,
    /// The ensemble's leader (`LeaderZooKeeperServer`): prepares every write, its own clients' and the
    /// learners' forwarded ones; a `Log` is a proposal and `Durable` means committed.
    Leader,
    /// A follower or observer (`FollowerZooKeeperServer` / `ObserverZooKeeperServer`): serves reads,
    /// forwards writes to the leader and applies the txns the leader committed.
    Learner {
        /// An observer (no vote); the state machine behaves the same either way.
        observer: bool,
    },
}

/// Settings of the server, taken from zoo.cfg.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The role (standalone unless the server is part of an ensemble).
    pub mode: Mode,
    /// This server's id (top byte of the session ids it creates); 0 for a standalone server.
    pub server_id: ServerId,
    /// Session timeout bounds and tick.
    pub session: SessionConfig,
    /// Write-preparation settings (extended types, ACL settings).
    pub prep: PrepConfig,
    /// Take a snapshot about every this many txns (`snapCount`): after `snapCount/2 + r` txns, with
    /// `r` in `[0, snapCount/2)` drawn anew for each snapshot from `snapshot_seed`, as ZooKeeper
    /// randomizes it so the servers of an ensemble do not snapshot in lockstep.
    pub snap_count: u64,
    /// Seed of the snapshot trigger's randomness (the shell draws it; tests fix it).
    pub snapshot_seed: u64,
    /// Bytes a snapshot in progress serializes per turn ([`Input::SnapshotStep`]), so that no turn
    /// stalls the requests for long (the server uses 128 KiB: a few hundred microseconds of work).
    pub snapshot_chunk_bytes: usize,
    /// How often the container manager looks for empty containers and expired TTL nodes
    /// (`znode.container.checkIntervalMs`, default 60000).
    pub container_check_interval_ms: i64,
    /// Emit [`Action::Committed`] for every applied txn (the relay needs them; otherwise skip the copy).
    pub emit_committed: bool,
    /// `localSessionsEnabled` / `localSessionsUpgradingEnabled`; ignored in standalone mode, as
    /// ZooKeeper ignores them (see the `local_sessions` submodule).
    pub local_sessions: LocalSessionSettings,
}

/// Something that happened, for the server to react to.
#[derive(Debug)]
pub enum Input {
    /// A client's first frame. `remote_ip` gives the connection its `ip:` identity.
    Connect {
        /// The connection.
        conn: ConnId,
        /// The client's address, without the port.
        remote_ip: String,
        /// The decoded connect request.
        request: ConnectRequest,
    },
    /// A decoded request frame.
    Request {
        /// The connection.
        conn: ConnId,
        /// The request's xid.
        xid: i32,
        /// The request.
        request: Request,
    },
    /// A request frame whose header decoded but whose opcode or body did not.
    BadRequest {
        /// The connection.
        conn: ConnId,
        /// The request's xid.
        xid: i32,
        /// The header's type number.
        ty: i32,
        /// UNIMPLEMENTED (an opcode ZooKeeper refuses: answered, then the connection closes) or
        /// MARSHALLINGERROR (a known opcode with a bad body: answered in order, the connection stays
        /// open, and a write still consumes a zxid as an error txn, as in ZooKeeper's prep).
        err: ErrorCode,
    },
    /// The connection is gone (client closed it, or the shell closed it).
    Disconnected {
        /// The connection.
        conn: ConnId,
    },
    /// Every txn up to this zxid is durable. On a leader: committed (a quorum acked); feed it once per
    /// committed zxid, in order. Ignored on a learner.
    Durable(Zxid),
    /// Time passed (drives session expiry; also takes a snapshot step).
    Tick,
    /// A turn for the snapshot in progress, if any (see [`Standalone::snapshot_in_progress`]).
    SnapshotStep,
    /// Leader: a learner's REQUEST packet (a write, createSession, closeSession or sync of one of its
    /// clients).
    Forwarded {
        /// The learner it came from (the session owner for SESSIONMOVED checks).
        learner: ServerId,
        /// The decoded packet data.
        request: ForwardedRequest,
        /// The packet's auth info: the client connection's identities.
        auth_ids: Vec<Id>,
    },
    /// Leader: the sessions a learner's PING reply lists as touched.
    TouchSessions(Vec<SessionTouch>),
    /// Leader: a learner's REVALIDATE (a client reconnected there with an existing session).
    Revalidate {
        /// The learner.
        learner: ServerId,
        /// The session.
        session: SessionId,
        /// The timeout the learner negotiated.
        timeout: i32,
    },
    /// Learner: a txn the leader committed; fed strictly in zxid order.
    Committed {
        /// Its header.
        header: TxnHeader,
        /// Its body.
        txn: Txn,
    },
    /// Learner: the leader's answer to an [`Action::Revalidate`].
    RevalidateReply {
        /// The session.
        session: SessionId,
        /// Whether it is still alive (and now owned by this learner).
        valid: bool,
    },
    /// Learner: the leader's SYNC packet arrived (answers the oldest forwarded sync).
    SyncDone,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a frame (length prefix included) to a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        frame: Vec<u8>,
    },
    /// Close a connection once the frames queued before this are sent.
    Close {
        /// The connection.
        conn: ConnId,
    },
    /// Append a txn to the txn log. On a leader: propose it (the ZAB leader logs and broadcasts it).
    /// Never emitted by a learner.
    Log {
        /// Its zxid.
        zxid: Zxid,
        /// The encoded `TxnEntry`.
        entry: Vec<u8>,
    },
    /// A txn was applied, in zxid order (for the relay and metrics).
    Committed {
        /// Its zxid.
        zxid: Zxid,
        /// The txn as applied.
        header: TxnHeader,
        /// Its body.
        txn: Txn,
    },
    /// The next piece of a snapshot at this zxid, the last one applied when the snapshot started. The
    /// pieces of one snapshot, concatenated, are laid out as [`snapshot_blob`]'s (fuzzy: see
    /// [`crate::tree::snap_stream`]). `first` begins a new snapshot file (abandoning an unfinished one);
    /// after the `last` piece, finish the file and roll the txn log.
    Snapshot {
        /// The zxid the snapshot reflects.
        zxid: Zxid,
        /// The next bytes of the blob.
        piece: Vec<u8>,
        /// The first piece of this snapshot.
        first: bool,
        /// The last piece of this snapshot.
        last: bool,
    },
    /// Learner: send this REQUEST to the leader (authinfo: `auth_ids`).
    Forward {
        /// The packet data.
        request: ForwardedRequest,
        /// The client connection's identities (empty for createSession).
        auth_ids: Vec<Id>,
    },
    /// Learner: send REVALIDATE for this session to the leader.
    Revalidate {
        /// The session.
        session: SessionId,
        /// The negotiated timeout.
        timeout: i32,
    },
    /// Leader: answer a learner's REVALIDATE.
    RevalidateReply {
        /// The learner.
        learner: ServerId,
        /// The session.
        session: SessionId,
        /// Whether the session is valid.
        valid: bool,
    },
    /// Leader: send SYNC to this learner (its oldest forwarded sync may complete). Produced by the
    /// `Durable(z)` that committed the txn the sync waited for (or at once): send it after COMMIT(z) and
    /// before any later COMMIT.
    SyncReply {
        /// The learner.
        learner: ServerId,
    },
    /// Leader: the zxid counter of this epoch is used up (the next txn would get counter
    /// `0xffffffff`). The write that hit it was not prepared; the leader must abdicate so that a new
    /// election starts a new epoch (`Leader.propose`'s "zxid lower 32 bits have rolled over").
    ZxidExhausted,
}

/// Why a request waits: a write until its txn applies, a read behind its session's writes.
#[derive(Debug)]
enum Waiting {
    Read {
        xid: i32,
        request: Request,
    },
    /// A request answered with an error in its turn (a read whose body did not decode; on a learner
    /// also a bad write body and reconfig).
    Fail {
        xid: i32,
        err: ErrorCode,
    },
    /// A reply made here, sent in its turn (a learner's refusal of a local session's multi).
    Reply {
        xid: i32,
        err: ErrorCode,
        body: Response,
    },
    /// A local session's closeSession, answered here in its turn.
    CloseLocal {
        xid: i32,
    },
}

#[derive(Debug, Default)]
struct Conn {
    session: Option<SessionId>,
    /// The reply to the connect request mirrors its optional trailing `readOnly` byte.
    read_only_flag: Option<bool>,
    auth_ids: Vec<Id>,
    queue: super::ordering::OrderQueue<Waiting>,
    /// Requests that arrived before the session was established, replayed after the connect reply.
    before_session: VecDeque<(i32, Request)>,
    /// The requested timeout of a connect waiting for its createSession txn (or, on a learner, for the
    /// leader's answer to its REVALIDATE).
    pending_connect_timeout: Option<i32>,
    /// Learner: the writes (xid, opcode) forwarded to the leader whose committed txns have not come back
    /// yet, in order (`CommitProcessor`'s per-session pending queue).
    forwarded: VecDeque<(i32, OpCode)>,
    closing: bool,
    received: u64,
    sent: u64,
    last_op: &'static str,
    last_cxid: i32,
    last_zxid: i64,
}

/// Who waits for a txn in flight.
#[derive(Debug)]
enum Origin {
    /// Internal (session expiry).
    Internal,
    /// A connect waiting for its createSession.
    Connect(ConnId),
    /// A client request.
    Request { conn: ConnId, xid: i32, op: OpCode },
    /// Leader: a learner's forwarded request; the learner answers its client itself.
    Learner,
}

#[derive(Debug)]
struct InFlight {
    header: TxnHeader,
    txn: Txn,
    origin: Origin,
}

/// Counters for the four-letter words and metrics.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    /// Packets received from clients.
    pub packets_received: u64,
    /// Packets sent to clients.
    pub packets_sent: u64,
    /// Txns applied.
    pub txns_applied: u64,
}

/// The standalone server.
#[derive(Debug)]
pub struct Standalone {
    settings: Settings,
    tree: DataTree,
    sessions: SessionTracker,
    watches: WatchManager,
    pending: PendingChanges,
    conns: HashMap<ConnId, Conn>,
    session_conn: HashMap<SessionId, ConnId>,
    in_flight: VecDeque<InFlight>,
    /// The zxid of the last txn handed out (prepared), not necessarily durable.
    last_prepared: Zxid,
    txns_since_snapshot: u64,
    /// Txns after which the next snapshot starts (`snapCount/2 + randRoll`).
    snapshot_after: u64,
    /// Snapshots started so far (the draw for the next trigger).
    snapshots_started: u64,
    /// The snapshot being serialized, a chunk per turn.
    snapshot: Option<SnapStream>,
    last_container_check_ms: i64,
    now_ms: i64,
    actions: Vec<Action>,
    counters: Counters,
    /// Leader: learners' syncs waiting for the commit of the zxid that was newest when they arrived
    /// (`Leader.pendingSyncs`).
    leader_syncs: VecDeque<(Zxid, ServerId)>,
    /// Learner: client syncs forwarded to the leader, oldest first (`FollowerZooKeeperServer
    /// .pendingSyncs`): connection, xid, path.
    learner_syncs: VecDeque<(ConnId, i32, String)>,
    /// Learner: connects waiting for the leader's REVALIDATE answer, by session
    /// (`Learner.pendingRevalidations`), with the negotiated timeout.
    revalidating: HashMap<SessionId, (ConnId, i32)>,
    /// Learner: sessions touched since the last [`Standalone::take_session_touches`], with their timeout
    /// (`LearnerSessionTracker.touchTable`).
    touches: BTreeMap<i64, i32>,
    /// Leader and learner with `localSessionsEnabled`: the sessions that live on this server only
    /// (`LocalSessionTracker`); `sessions` holds the global ones.
    local: Option<local_sessions::LocalSessions>,
}

/// The name the ensemble code uses for the server state machine; `Standalone` is the historical one.
pub type ZkServer = Standalone;

/// The session owner of the local connections (`ServerCnxn.me`: one owner for all of them).
const LOCAL_OWNER: u64 = 0;

/// Builds a snapshot blob: the sessions (id, timeout) then the tree, as ZooKeeper's snapshot holds both.
pub fn snapshot_blob(tree: &DataTree, sessions: &[(SessionId, i32)]) -> Vec<u8> {
    let mut w = JuteWriter::new();
    write_sessions(&mut w, sessions);
    tree.write_to(&mut w);
    w.into_inner()
}

/// Reads a blob written by [`snapshot_blob`].
pub fn read_snapshot_blob(
    blob: &[u8],
    extended_types: bool,
) -> Result<(DataTree, Vec<(SessionId, i32)>), crate::jute::DecodeError> {
    let mut r = JuteReader::with_limit(blob, usize::MAX >> 1);
    let sessions = read_sessions(&mut r)?;
    let tree = DataTree::read_from(&mut r, extended_types)?;
    r.finish()?;
    Ok((tree, sessions))
}

/// The number of txns after which snapshot number `n` (from 0) starts: `snapCount/2 + r`, `r` in
/// `[0, snapCount/2)` drawn from `seed` and `n` (splitmix64), at least 1.
pub fn snapshot_trigger(snap_count: u64, seed: u64, n: u64) -> u64 {
    let half = snap_count / 2;
    let mut z = seed.wrapping_add(n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let r = if half > 0 { z % half } else { 0 };
    (half + r).max(1)
}

/// Encodes a reply frame: length, `ReplyHeader`, and the body only when `err` is 0 (ZooKeeper never sends
/// a body with an error).
pub fn reply_frame(xid: i32, zxid: i64, err: ErrorCode, body: &Response) -> Vec<u8> {
    let mut w = JuteWriter::from_vec(vec![0, 0, 0, 0]);
    ReplyHeader {
        xid,
        zxid,
        err: err.code(),
    }
    .write(&mut w);
    if err.is_ok() {
        body.encode(&mut w);
    }
    finish_frame(w)
}

fn finish_frame(w: JuteWriter) -> Vec<u8> {
    let mut frame = w.into_inner();
    let len = u32::try_from(frame.len() - 4).expect("frame fits in u32");
    frame[..4].copy_from_slice(&len.to_be_bytes());
    frame
}

fn connect_frame(resp: &ConnectResponse) -> Vec<u8> {
    let mut w = JuteWriter::from_vec(vec![0, 0, 0, 0]);
    resp.write(&mut w);
    finish_frame(w)
}

/// A notification body as a server sends it (state SyncConnected).
fn server_event(ty: i32, path: String) -> WatcherEvent {
    WatcherEvent {
        ty,
        state: crate::watch::STATE_SYNC_CONNECTED,
        path,
    }
}

fn notification_frame(event: &WatcherEvent) -> Vec<u8> {
    reply_frame(-1, -1, ErrorCode::Ok, &Response::Watch(event.clone()))
}

/// The short operation names `cons` prints (`ServerCnxn`'s `lop`).
fn op_name(op: OpCode) -> &'static str {
    match op {
        OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => "CREA",
        OpCode::Delete | OpCode::DeleteContainer => "DELE",
        OpCode::Exists => "EXIS",
        OpCode::GetData => "GETD",
        OpCode::SetData => "SETD",
        OpCode::GetAcl => "GETA",
        OpCode::SetAcl => "SETA",
        OpCode::GetChildren | OpCode::GetChildren2 => "GETC",
        OpCode::Sync => "SYNC",
        OpCode::Ping => "PING",
        OpCode::Multi | OpCode::MultiRead => "MULT",
        OpCode::CloseSession => "CLOS",
        OpCode::SetWatches | OpCode::SetWatches2 => "SETW",
        _ => "NA",
    }
}

impl Standalone {
    /// A server over a recovered tree and sessions. `last_zxid` is the highest zxid the tree reflects.
    pub fn new(
        settings: Settings,
        tree: DataTree,
        sessions: &[(SessionId, i32)],
        last_zxid: Zxid,
        now_ms: i64,
    ) -> Standalone {
        let mut tracker = SessionTracker::new(settings.server_id, settings.session, now_ms);
        let snapshot_after = snapshot_trigger(settings.snap_count, settings.snapshot_seed, 0);
        for (id, timeout) in sessions {
            // Sessions restored from disk get a full timeout from now to reconnect, as in ZooKeeper.
            tracker.track_session(*id, *timeout, now_ms);
        }
        // A standalone ZooKeeperServer has no local sessions, whatever zoo.cfg says.
        let local = (settings.local_sessions.enabled && settings.mode != Mode::Standalone)
            .then(|| local_sessions::LocalSessions::new(&settings, now_ms));
        Standalone {
            settings,
            tree,
            sessions: tracker,
            watches: WatchManager::new(),
            pending: PendingChanges::new(),
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            in_flight: VecDeque::new(),
            last_prepared: last_zxid,
            txns_since_snapshot: 0,
            snapshot_after,
            snapshots_started: 0,
            snapshot: None,
            last_container_check_ms: now_ms,
            now_ms,
            actions: Vec::new(),
            counters: Counters::default(),
            leader_syncs: VecDeque::new(),
            learner_syncs: VecDeque::new(),
            revalidating: HashMap::new(),
            touches: BTreeMap::new(),
            local,
        }
    }

    /// `ZKDatabase.initConfigInZKDatabase` on a running server: `/zookeeper/config` gets `text` (version
    /// -1, mzxid = the configuration version) and its watches fire, as Java's `DataTree.setData` fires
    /// them.
    pub fn init_config(&mut self, text: &[u8], version: i64) {
        let trigger = self.tree.set_config(text, version, self.now_ms);
        let notes = self.watches.trigger(&trigger);
        self.deliver(notes);
    }

    /// What prep needs to prepare a reconfig on an ensemble leader (`None` elsewhere).
    pub fn set_reconfig_context(
        &mut self,
        ctx: Option<std::sync::Arc<crate::tree::prep::ReconfigContext>>,
    ) {
        self.settings.prep.reconfig = ctx;
    }

    /// The tree (for reads by the four-letter words and tests).
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The watches.
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    /// The session tracker.
    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    /// The session tracker's part of `dump` (after `SessionTracker dump:`), as this role's Java tracker
    /// prints it: a standalone server or a leader its expiry buckets (`Session Sets ...`), a learner
    /// the global sessions it knows with their timeouts (`Global Sessions(n):`); with local sessions
    /// on, the local tracker's buckets come first (`Local Session Sets ...`, and a leader then prints
    /// `Global Session Sets ...`).
    pub fn dump_sessions(&self) -> String {
        let mut out = String::new();
        if let Some(local) = self.local_sessions() {
            out.push_str("Local Session ");
            out.push_str(&crate::server::fourlw::expiry_sets(&local.expiry_sets()));
        }
        if self.is_learner() {
            let global = self.sessions.global_sessions();
            out.push_str(&format!("Global Sessions({}):\n", global.len()));
            for (id, timeout) in global {
                out.push_str(&format!("0x{:x}\t{}ms\n", id.0, timeout));
            }
        } else {
            if self.local.is_some() {
                out.push_str("Global ");
            }
            out.push_str("Session ");
            out.push_str(&crate::server::fourlw::expiry_sets(
                &self.sessions.expiry_sets(),
            ));
        }
        out
    }

    /// `getSessionExpiryMap` (the AdminServer's `dump`): expiry time to the sessions expiring then,
    /// the local tracker's and the global one's on a leader, the global one's on a standalone server,
    /// and nothing on a learner (its Java tracker returns an empty map).
    pub fn session_expiry_map(&self) -> Vec<(i64, Vec<SessionId>)> {
        if self.is_learner() {
            return Vec::new();
        }
        let mut map: BTreeMap<i64, Vec<SessionId>> = BTreeMap::new();
        let local = self
            .local_sessions()
            .map(|l| l.expiry_sets())
            .unwrap_or_default();
        // Java puts the local map first and the global one over it (`putAll`): a time in both shows
        // the global sessions.
        for (at, ids) in local.into_iter().chain(self.sessions.expiry_sets()) {
            map.insert(at, ids);
        }
        map.into_iter().collect()
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Requests prepared and not yet applied.
    pub fn outstanding(&self) -> usize {
        self.in_flight.len()
    }

    /// Live connections that completed their handshake, with their session.
    pub fn connections(
        &self,
    ) -> impl Iterator<Item = (ConnId, Option<SessionId>, u64, u64, usize)> + '_ {
        self.conns
            .iter()
            .map(|(id, c)| (*id, c.session, c.received, c.sent, c.queue.len()))
    }

    /// Connections that wait for the leader: requests queued behind a forwarded one, or a connect
    /// whose createSession or revalidation went to the leader and has no answer yet.
    pub fn connections_awaiting_leader(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| {
                !c.closing && (!c.queue.is_empty() || c.pending_connect_timeout.is_some())
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The connection a session is bound to, if any.
    pub fn conn_of_session(&self, session: SessionId) -> Option<ConnId> {
        self.session_conn.get(&session).copied()
    }

    /// Closes a connection from outside (the ZAB engine, when a request cannot go anywhere): its
    /// watches go, its session stays (the client reconnects, here or elsewhere).
    pub fn close_connection(&mut self, conn: ConnId) {
        self.close(conn);
    }

    /// What `cons` shows of a connection's last request: its operation (ZooKeeper's short name), its
    /// xid (-1 before the first) and the zxid of its last reply (-1 before the first).
    pub fn connection_activity(&self, conn: ConnId) -> Option<(&'static str, i32, i64)> {
        self.conns
            .get(&conn)
            .map(|c| (c.last_op, c.last_cxid, c.last_zxid))
    }

    /// Takes the actions produced so far.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Reacts to one input at time `now_ms`.
    pub fn handle(&mut self, input: Input, now_ms: i64) {
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            Input::Connect {
                conn,
                remote_ip,
                request,
            } => self.on_connect(conn, remote_ip, request),
            Input::Request { conn, xid, request } => {
                self.counters.packets_received += 1;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.received += 1;
                }
                self.on_request(conn, xid, request)
            }
            Input::BadRequest { conn, xid, ty, err } => {
                self.counters.packets_received += 1;
                let session = self.conns.get(&conn).and_then(|c| {
                    (!c.closing && c.pending_connect_timeout.is_none())
                        .then_some(c.session)
                        .flatten()
                });
                match (err, session) {
                    (ErrorCode::MarshallingError, Some(session)) => {
                        self.touch_session(session);
                        self.on_bad_body(conn, xid, ty)
                    }
                    _ => {
                        let zxid = self.tree.last_processed_zxid();
                        self.send(conn, reply_frame(xid, zxid, err, &Response::Empty));
                        self.close(conn);
                    }
                }
            }
            Input::Disconnected { conn } => self.on_disconnected(conn),
            Input::Durable(zxid) => self.on_durable(zxid),
            Input::Tick => {
                self.on_tick();
                self.snapshot_step();
            }
            Input::SnapshotStep => self.snapshot_step(),
            Input::Forwarded {
                learner,
                request,
                auth_ids,
            } => self.on_forwarded(learner, request, auth_ids),
            Input::TouchSessions(touches) => self.on_touch_sessions(&touches),
            Input::Revalidate {
                learner,
                session,
                timeout,
            } => self.on_revalidate(learner, session, timeout),
            Input::Committed { header, txn } => self.on_committed(header, txn),
            Input::RevalidateReply { session, valid } => self.on_revalidate_reply(session, valid),
            Input::SyncDone => self.on_sync_done(),
        }
    }

    fn send(&mut self, conn: ConnId, frame: Vec<u8>) {
        self.counters.packets_sent += 1;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.sent += 1;
        }
        self.actions.push(Action::Send { conn, frame });
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.closing {
                c.closing = true;
                self.actions.push(Action::Close { conn });
            }
        }
    }

    // ----- connect -------------------------------------------------------------------------------

    fn on_connect(&mut self, conn: ConnId, remote_ip: String, req: ConnectRequest) {
        self.counters.packets_received += 1;
        let mut c = Conn {
            auth_ids: vec![Id::new("ip", remote_ip.clone())],

            read_only_flag: req.read_only,
            // ServerCnxn.resetStats: no operation, cxid and zxid yet.
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            ..Conn::default()
        };
        c.received = 1;
        self.conns.insert(conn, c);
        // ZooKeeperServer.processConnectRequest step 5: a client that has seen a newer zxid than this server
        // must look elsewhere; close without a reply.
        if req.last_zxid_seen > self.tree.last_processed_zxid() {
            tracing::info!(
                "refusing client with lastZxidSeen 0x{:x} > our 0x{:x}",
                req.last_zxid_seen,
                self.tree.last_processed_zxid()
            );
            self.close(conn);
            return;
        }
        let timeout = self.settings.session.negotiate_timeout(req.timeout);
        if req.session_id == 0 && self.local.is_some() {
            // QuorumZooKeeperServer.setLocalSessionFlag: all new sessions are local.
            self.local_new_session(conn, timeout);
            return;
        }
        if req.session_id == 0 && self.is_learner() {
            self.learner_new_session(conn, timeout);
            return;
        }
        if req.session_id == 0 {
            let id = self.sessions.create_session(timeout, false, self.now_ms);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.pending_connect_timeout = Some(timeout);
                c.session = Some(id);
            }
            self.session_conn.insert(id, conn);
            self.submit_write(
                id,
                0,
                &WriteRequest::CreateSession {
                    timeout_ms: timeout,
                },
                Origin::Connect(conn),
                &[],
                LOCAL_OWNER,
            );
            return;
        }
        let id = SessionId(req.session_id);
        // Close any other connection bound to this session (the client moved to a new socket).
        if let Some(old) = self.session_conn.get(&id).copied() {
            if old != conn {
                self.detach(old);
                self.close(old);
            }
        }
        if self.local_reconnect(conn, id, &req.passwd, timeout) {
            return;
        }
        if self.is_learner() && check_password(id, &req.passwd) {
            // A learner cannot judge a global session: it asks the leader (Learner.validateSession).
            self.learner_revalidate(conn, id, timeout);
            return;
        }
        // ZooKeeperServer.revalidateSession: a valid session is touched and now owned by the local
        // connections.
        let valid = check_password(id, &req.passwd)
            && self.sessions.touch(id, self.now_ms)
            && self.sessions.set_owner(id, LOCAL_OWNER).is_ok();
        if !valid {
            self.refuse_session(conn);
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
        }
        self.session_conn.insert(id, conn);
        self.finish_connect(conn, id, timeout);
    }

    /// The connect reply for an unknown, expired or wrongly authenticated session (zero id and timeout),
    /// then close (`finishSessionInit(cnxn, false)`).
    fn refuse_session(&mut self, conn: ConnId) {
        let read_only = self.conns.get(&conn).and_then(|c| c.read_only_flag);
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout: 0,
            session_id: 0,
            passwd: vec![0; 16],
            read_only: read_only.map(|_| false),
        };
        self.send(conn, connect_frame(&resp));
        self.close(conn);
    }

    fn finish_connect(&mut self, conn: ConnId, id: SessionId, timeout: i32) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout,
            session_id: id.0,
            passwd: session_password(id).to_vec(),
            read_only: c.read_only_flag.map(|_| false),
        };
        c.pending_connect_timeout = None;
        let queued: Vec<(i32, Request)> = c.before_session.drain(..).collect();
        self.send(conn, connect_frame(&resp));
        for (xid, request) in queued {
            self.on_request(conn, xid, request);
        }
    }

    /// Unbinds a connection from its session and drops its watches (the connection is going away).
    fn detach(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if let Some(id) = c.session.take() {
                if self.session_conn.get(&id) == Some(&conn) {
                    self.session_conn.remove(&id);
                }
            }
        }
        self.watches.remove_watcher(conn);
    }

    fn on_disconnected(&mut self, conn: ConnId) {
        self.detach(conn);
        self.conns.remove(&conn);
    }

    // ----- requests ------------------------------------------------------------------------------

    fn on_request(&mut self, conn: ConnId, xid: i32, request: Request) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.closing {
            return;
        }
        if c.pending_connect_timeout.is_some() {
            // ZooKeeper stops reading a connection until its connect reply is queued; we buffer instead.
            c.before_session.push_back((xid, request));
            return;
        }
        let Some(session) = c.session else {
            return;
        };
        c.last_op = op_name(request.op_code());
        // As ServerCnxn.updateStatsForResponse: pings (-2), auth (-4) and setWatches (-8) keep the
        // last ordinary cxid.
        if xid >= 0 {
            c.last_cxid = xid;
        }
        // Every packet from a client touches its session (ZooKeeperServer.processPacket).
        self.touch_session(session);
        // FollowerRequestProcessor / LeaderRequestProcessor: checkUpgradeSession, local closes.
        if self.local.is_some() && self.local_session_request(conn, session, xid, &request) {
            return;
        }
        let op = request.op_code();
        if self.is_learner() {
            // FollowerRequestProcessor: writes and syncs go to the leader, the rest stays here.
            if let Some(request) = self.learner_request(conn, session, xid, request) {
                self.local_request(conn, xid, op, request);
            }
            return;
        }
        self.local_request(conn, xid, op, request)
    }

    /// A request answered or prepared here: every request in standalone and leader mode, the reads and
    /// the locally refused requests on a learner.
    fn local_request(&mut self, conn: ConnId, xid: i32, op: OpCode, request: Request) {
        match request {
            // Auth is answered at once, outside the pipeline (zxid 0), echoing the request's xid:
            // Java and kazoo send -4, the Rust zookeeper-client crate an ordinary xid.
            Request::Auth(packet) => self.on_auth(conn, xid, packet.scheme, &packet.auth),
            // outpost has no SASL server: like ZooKeeper's processSasl without one, answer at once
            // with a null token (err 0, zxid 0) and let the client carry on unauthenticated.
            Request::Sasl(_) => {
                let mut w = JuteWriter::from_vec(vec![0, 0, 0, 0]);
                ReplyHeader {
                    xid,
                    zxid: 0,
                    err: 0,
                }
                .write(&mut w);
                w.write_buffer_opt(None);
                self.send(conn, finish_frame(w));
            }
            // Since 3.8.5 a standalone `check`, and always opcode 0 / internal ops, are invalid: the
            // server answers UNIMPLEMENTED and closes the connection (Request.isValid).
            Request::Check(_) | Request::CreateSession { .. } => {
                let zxid = self.tree.last_processed_zxid();
                self.send(
                    conn,
                    reply_frame(xid, zxid, ErrorCode::Unimplemented, &Response::Empty),
                );
                self.close(conn);
            }
            request => match write_request(request) {
                Routed::Write(write) => self.client_write(conn, xid, op, write),
                Routed::Other(read) => self.read_in_order(conn, xid, read),
            },
        }
    }

    /// Answers a read at once, or queues it behind the session's writes in flight.
    fn read_in_order(&mut self, conn: ConnId, xid: i32, read: Request) {
        let idle = self.conns.get(&conn).is_some_and(|c| c.queue.is_idle());
        if idle {
            self.answer_read(conn, xid, read);
        } else if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_read(Waiting::Read { xid, request: read });
        }
    }

    /// A known opcode whose body did not decode. ZooKeeper's prep assigns a write its zxid before it
    /// reads the body, so a write becomes a MARSHALLINGERROR error txn; a read is answered
    /// MARSHALLINGERROR by the final processor, in order. The connection stays open either way.
    fn on_bad_body(&mut self, conn: ConnId, xid: i32, ty: i32) {
        match OpCode::from_code(ty) {
            // A learner has no zxid to give an error txn: it answers in order, locally.
            Some(op) if op.is_write() && !self.is_learner() => {
                self.client_write(conn, xid, op, WriteRequest::Malformed)
            }
            _ => self.fail_in_order(conn, xid, ErrorCode::MarshallingError),
        }
    }

    /// Answers `err` at once when nothing of the connection is in flight, else behind what is.
    fn fail_in_order(&mut self, conn: ConnId, xid: i32, err: ErrorCode) {
        let idle = self.conns.get(&conn).is_some_and(|c| c.queue.is_idle());
        if idle {
            self.answer_fail(conn, xid, err);
        } else if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_read(Waiting::Fail { xid, err });
        }
    }

    /// Sends a reply made here at once when nothing of the connection is in flight, else behind
    /// what is.
    fn reply_in_order(&mut self, conn: ConnId, xid: i32, err: ErrorCode, body: Response) {
        let idle = self.conns.get(&conn).is_some_and(|c| c.queue.is_idle());
        if idle {
            let zxid = self.tree.last_processed_zxid();
            self.send(conn, reply_frame(xid, zxid, err, &body));
        } else if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_read(Waiting::Reply { xid, err, body });
        }
    }

    fn answer_fail(&mut self, conn: ConnId, xid: i32, err: ErrorCode) {
        let zxid = self.tree.last_processed_zxid();
        self.send(conn, reply_frame(xid, zxid, err, &Response::Empty));
    }

    fn on_auth(&mut self, conn: ConnId, xid: i32, scheme: String, auth: &[u8]) {
        let config: &AuthConfig = &self.settings.prep.auth;
        match scheme.as_str() {
            "digest" => {
                let ids = digest_auth(auth, config);
                if let Some(c) = self.conns.get_mut(&conn) {
                    for id in ids {
                        if !c.auth_ids.contains(&id) {
                            c.auth_ids.push(id);
                        }
                    }
                }
                self.send(conn, reply_frame(xid, 0, ErrorCode::Ok, &Response::Empty));
            }
            // The connection already carries its ip identity.
            "ip" => self.send(conn, reply_frame(xid, 0, ErrorCode::Ok, &Response::Empty)),
            _ => {
                self.send(
                    conn,
                    reply_frame(xid, 0, ErrorCode::AuthFailed, &Response::Empty),
                );
                self.close(conn);
            }
        }
    }

    fn client_write(&mut self, conn: ConnId, xid: i32, op: OpCode, write: WriteRequest) {
        let Some(session) = self.conns.get(&conn).and_then(|c| c.session) else {
            return;
        };
        let auth_ids = match self.conns.get_mut(&conn) {
            Some(c) => {
                c.queue.push_write(xid);
                c.auth_ids.clone()
            }
            None => Vec::new(),
        };
        self.submit_write(
            session,
            xid,
            &write,
            Origin::Request { conn, xid, op },
            &auth_ids,
            LOCAL_OWNER,
        );
    }

    /// Prepares a write into a txn with the next zxid and asks the driver to log it (on the leader: to
    /// propose it). `auth_ids` are the identities of the request's connection, `owner` who submitted
    /// it (`Request.owner`: [`LOCAL_OWNER`] or a learner).
    #[allow(clippy::too_many_arguments)]
    fn submit_write(
        &mut self,
        session: SessionId,
        cxid: i32,
        write: &WriteRequest,
        origin: Origin,
        auth_ids: &[Id],
        owner: u64,
    ) {
        debug_assert!(!self.is_learner(), "a learner prepares nothing");
        let zxid = match self.last_prepared.next() {
            Some(z) => z,
            None if self.settings.mode == Mode::Leader => {
                // Leader.propose: never hand out counter 0xffffffff; the leader steps down and the next
                // election starts a new epoch. The request is dropped: its client's connection closes
                // with the role change and the client retries elsewhere.
                tracing::warn!(
                    "zxid lower 32 bits have rolled over in epoch {}, forcing re-election",
                    self.last_prepared.epoch().0
                );
                self.actions.push(Action::ZxidExhausted);
                return;
            }
            None => {
                // A standalone server never changes epoch: running out of 2^32 txns in one epoch is an
                // operational limit surfaced loudly rather than wrapped.
                panic!(
                    "zxid counter exhausted in epoch {:?}",
                    self.last_prepared.epoch()
                );
            }
        };
        let meta = RequestMeta {
            session,
            cxid,
            zxid: zxid.0,
            time_ms: self.now_ms,
            auth_ids,
        };
        // Local requests all share one owner, so a standalone server never answers SESSIONMOVED; on a
        // leader a session revalidated through a learner belongs to that learner.
        let mut check = local_sessions::QuorumSessionCheck {
            global: &mut self.sessions,
            local: self.local.as_mut().map(|l| &mut l.tracker),
            owner,
            leader: (self.settings.mode == Mode::Leader).then_some(self.settings.server_id),
        };
        let prepared = prepare(
            &self.tree,
            &mut self.pending,
            &mut check,
            &self.settings.prep,
            &meta,
            write,
        );
        self.last_prepared = zxid;
        // Encode from the prepared txn directly: it is kept in flight, so cloning it to log it would copy
        // its path, data and ACL once more per write.
        let mut w = JuteWriter::from_vec(Vec::with_capacity(256));
        TxnEntry::encode_parts(&prepared.header, &prepared.txn, None, &mut w);
        self.actions.push(Action::Log {
            zxid,
            entry: w.into_inner(),
        });
        self.in_flight.push_back(InFlight {
            header: prepared.header,
            txn: prepared.txn,
            origin,
        });
    }

    // ----- commit --------------------------------------------------------------------------------

    fn on_durable(&mut self, durable: Zxid) {
        while self
            .in_flight
            .front()
            .is_some_and(|f| f.header.zxid <= durable.0)
        {
            let Some(f) = self.in_flight.pop_front() else {
                break;
            };
            self.apply(f);
        }
    }

    fn apply(&mut self, f: InFlight) {
        let outcome = self.tree.apply_txn(&f.header, &f.txn);
        self.pending.release_through(f.header.zxid);
        self.counters.txns_applied += 1;
        // Session bookkeeping (FinalRequestProcessor / ZooKeeperServer.processTxn).
        match &f.txn {
            Txn::CloseSession { .. } => {
                let id = SessionId(f.header.client_id);
                self.sessions.remove(id);
                self.forget_local_session(id);
                if let Some(conn) = self.session_conn.remove(&id) {
                    // An expired session's connection is closed (so is a local connection of a session
                    // a learner closed); a client's own close is answered below.
                    if !matches!(f.origin, Origin::Request { .. }) {
                        self.watches.remove_watcher(conn);
                        self.close(conn);
                    }
                }
            }
            Txn::CreateSession { timeout } => {
                let id = SessionId(f.header.client_id);
                self.sessions.track_session(id, *timeout, self.now_ms);
                self.forget_local_session(id);
            }
            _ => {}
        }
        for trigger in &outcome.triggers {
            let notes = self.watches.trigger(trigger);
            self.deliver(notes);
        }
        if self.settings.emit_committed {
            self.actions.push(Action::Committed {
                zxid: Zxid(f.header.zxid),
                header: f.header,
                txn: f.txn.clone(),
            });
        }
        let zxid = self.tree.last_processed_zxid();
        if !self.leader_syncs.is_empty() {
            self.release_leader_syncs(Zxid(f.header.zxid));
        }
        match f.origin {
            Origin::Internal | Origin::Learner => {}
            Origin::Connect(conn) => {
                let id = SessionId(f.header.client_id);
                let timeout = match f.txn {
                    Txn::CreateSession { timeout } => timeout,
                    _ => self.settings.session.min_session_timeout_ms,
                };
                // The createSession reply is the connection's first (ServerCnxn shows lop=SESS).
                if let Some(c) = self.conns.get_mut(&conn) {
                    (c.last_op, c.last_cxid, c.last_zxid) = ("SESS", 0, zxid);
                }
                self.finish_connect(conn, id, timeout);
            }
            Origin::Request { conn, xid, op } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    self.count_for_snapshot();
                    return;
                };
                if !c.queue.complete_write(xid) {
                    panic!("commit of xid {xid} is not at the head of connection {conn}'s queue");
                }
                c.last_zxid = zxid;
                let (err, mut body) = write_reply(op, &outcome.result);
                if let (OpCode::Reconfig, true) = (op, err.is_ok()) {
                    // FinalRequestProcessor answers a reconfig with the (now active) configuration
                    // text and /zookeeper/config's stat, as a getData would.
                    let data = self
                        .tree
                        .node(crate::tree::CONFIG_NODE)
                        .and_then(|n| n.data.as_deref().map(<[u8]>::to_vec));
                    let stat = outcome.result.stat.unwrap_or_default();
                    body = Response::Reconfig(crate::proto::client::GetDataResponse { data, stat });
                }
                self.send(conn, reply_frame(xid, zxid, err, &body));
                if op == OpCode::CloseSession {
                    self.watches.remove_watcher(conn);
                    self.close(conn);
                } else {
                    self.answer_ready(conn);
                }
            }
        }
        self.count_for_snapshot();
    }

    /// Answers the reads of `conn` that no longer wait behind a write.
    fn answer_ready(&mut self, conn: ConnId) {
        let ready = self
            .conns
            .get_mut(&conn)
            .map(|c| c.queue.take_ready_reads())
            .unwrap_or_default();
        for waiting in ready {
            match waiting {
                Waiting::Read { xid, request } => self.answer_read(conn, xid, request),
                Waiting::Fail { xid, err } => self.answer_fail(conn, xid, err),
                Waiting::Reply { xid, err, body } => {
                    let zxid = self.tree.last_processed_zxid();
                    self.send(conn, reply_frame(xid, zxid, err, &body));
                }
                Waiting::CloseLocal { xid } => self.finish_local_close(conn, xid),
            }
        }
    }

    /// Counts an applied txn toward the next snapshot and starts one when it is due
    /// (`SyncRequestProcessor.shouldSnapshot`, on every server of an ensemble too).
    fn count_for_snapshot(&mut self) {
        self.txns_since_snapshot += 1;
        if self.txns_since_snapshot >= self.snapshot_after {
            self.txns_since_snapshot = 0;
            if self.snapshot.is_some() {
                // SyncRequestProcessor's "Too busy to snap, skipping".
                tracing::warn!("too busy to snapshot, skipping");
            } else {
                self.snapshots_started += 1;
                self.snapshot_after = snapshot_trigger(
                    self.settings.snap_count,
                    self.settings.snapshot_seed,
                    self.snapshots_started,
                );
                self.snapshot = Some(SnapStream::new(
                    &self.tree,
                    &self.sessions.global_sessions(),
                ));
            }
        }
    }

    /// Whether a snapshot is being serialized: the driver should give it [`Input::SnapshotStep`] turns.
    pub fn snapshot_in_progress(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Serializes the next chunk of the snapshot in progress; emits it when the walk is complete.
    fn snapshot_step(&mut self) {
        let Some(stream) = self.snapshot.as_mut() else {
            return;
        };
        let first = stream.bytes() == 0;
        let piece = stream.next_chunk(&self.tree, self.settings.snapshot_chunk_bytes);
        let last = stream.is_done();
        let zxid = Zxid(stream.zxid());
        if last {
            self.snapshot = None;
        }
        self.actions.push(Action::Snapshot {
            zxid,
            piece,
            first,
            last,
        });
    }

    /// Sends notifications to the connections whose auth ids hold READ on the node (3.8.4+ filter).
    fn deliver(&mut self, notes: Vec<Notification>) {
        for note in notes {
            let conn = note.watcher;
            let allowed = self.conns.get(&conn).is_some_and(|c| {
                check_acl(
                    &note.acl,
                    perms::READ,
                    &c.auth_ids,
                    &self.settings.prep.auth,
                )
                .is_ok()
            });
            if allowed {
                let event = server_event(note.event.event_type.code(), note.event.path.clone());
                self.send(conn, notification_frame(&event));
            }
        }
    }

    // ----- expiry --------------------------------------------------------------------------------

    fn on_tick(&mut self) {
        // Every server expires its own local sessions.
        self.expire_local_sessions();
        // Only the leader (or a standalone server) expires global sessions and reaps containers: a
        // learner applies the leader's closeSession and deleteContainer txns (LearnerSessionTracker
        // has no expirer for them; ContainerManager runs on the leader only).
        if self.is_learner() {
            return;
        }
        for id in self.sessions.expired(self.now_ms) {
            tracing::info!("expiring session {id}, timeout exceeded");
            self.sessions.set_closing(id);
            self.submit_write(
                id,
                0,
                &WriteRequest::CloseSession,
                Origin::Internal,
                &[],
                LOCAL_OWNER,
            );
        }
        let interval = self.settings.container_check_interval_ms.max(1);
        if self.now_ms - self.last_container_check_ms >= interval {
            self.last_container_check_ms = self.now_ms;
            for path in self.reap_candidates() {
                self.submit_write(
                    SessionId(0),
                    0,
                    &WriteRequest::DeleteContainer { path },
                    Origin::Internal,
                    &[],
                    LOCAL_OWNER,
                );
            }
        }
    }

    /// `ContainerManager.getCandidates`: containers that had children and are empty now, and TTL nodes
    /// without children whose time since the last change exceeds their TTL.
    fn reap_candidates(&self) -> Vec<String> {
        let mut out = Vec::new();
        for path in self.tree.containers() {
            if let Some(node) = self.tree.node(&path) {
                if node.num_children == 0 && node.stat.cversion > 0 {
                    out.push(path);
                }
            }
        }
        for path in self.tree.ttls() {
            if let Some(node) = self.tree.node(&path) {
                let ttl = match crate::tree::EphemeralType::of(node.stat.ephemeral_owner, true) {
                    crate::tree::EphemeralType::Ttl(ttl) => ttl,
                    _ => continue,
                };
                if node.num_children == 0 && ttl != 0 && self.now_ms - node.stat.mtime > ttl {
                    out.push(path);
                }
            }
        }
        out
    }

    // ----- reads ---------------------------------------------------------------------------------

    fn answer_read(&mut self, conn: ConnId, xid: i32, request: Request) {
        let zxid = self.tree.last_processed_zxid();
        // FinalRequestProcessor answers every ping with xid -2, whatever xid it came with.
        let xid = if matches!(request, Request::Ping) {
            -2
        } else {
            xid
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_zxid = zxid;
        }
        let (err, body, catch_up) = self.read(conn, &request);
        for event in catch_up {
            self.send(conn, notification_frame(&event));
        }
        // The reply echoes the request's xid, whatever it is: the Java client sends setWatches2 with an
        // ordinary xid (its socket layer renumbers everything but ping and auth), the C client with -8.
        self.send(conn, reply_frame(xid, zxid, err, &body));
    }

    fn auth_ids(&self, conn: ConnId) -> &[Id] {
        self.conns.get(&conn).map_or(&[], |c| c.auth_ids.as_slice())
    }

    fn can(&self, conn: ConnId, path: &str, perm: i32) -> Result<(), ErrorCode> {
        let acl = self.tree.acl(path).ok_or(ErrorCode::NoNode)?;
        check_acl(&acl, perm, self.auth_ids(conn), &self.settings.prep.auth)
    }

    /// Answers a read; returns the error, the body and any catch-up notifications (setWatches).
    fn read(
        &mut self,
        conn: ConnId,
        request: &Request,
    ) -> (ErrorCode, Response, Vec<WatcherEvent>) {
        let none = Vec::new();
        let result: Result<Response, ErrorCode> = match request {
            Request::Ping => Ok(Response::Empty),
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    Err(ErrorCode::BadArguments)
                } else {
                    if r.watch {
                        self.watches.add_data_watch(&r.path, conn);
                    }
                    match self.tree.stat(&r.path) {
                        Some(stat) => self
                            .can(conn, &r.path, perms::READ)
                            .map(|()| Response::Exists(ExistsResponse { stat })),
                        None => Err(ErrorCode::NoNode),
                    }
                }
            }
            Request::GetData(r) => self.can(conn, &r.path, perms::READ).and_then(|()| {
                let (data, stat) = self.tree.get_data(&r.path).ok_or(ErrorCode::NoNode)?;
                let data = data.map(<[u8]>::to_vec);
                if r.watch {
                    self.watches.add_data_watch(&r.path, conn);
                }
                Ok(Response::GetData(GetDataResponse { data, stat }))
            }),
            Request::GetChildren(r) => self.can(conn, &r.path, perms::READ).and_then(|()| {
                let children = self.tree.get_children(&r.path).ok_or(ErrorCode::NoNode)?;
                if r.watch {
                    self.watches.add_child_watch(&r.path, conn);
                }
                Ok(Response::GetChildren(GetChildrenResponse { children }))
            }),
            Request::GetChildren2(r) => self.can(conn, &r.path, perms::READ).and_then(|()| {
                let children = self.tree.get_children(&r.path).ok_or(ErrorCode::NoNode)?;
                let stat = self.tree.stat(&r.path).ok_or(ErrorCode::NoNode)?;
                if r.watch {
                    self.watches.add_child_watch(&r.path, conn);
                }
                Ok(Response::GetChildren2(GetChildren2Response {
                    children,
                    stat,
                }))
            }),
            Request::GetAcl(r) => match self.tree.get_acl(&r.path) {
                None => Err(ErrorCode::NoNode),
                Some((acl, stat)) => {
                    let ids = self.auth_ids(conn);
                    let cfg = &self.settings.prep.auth;
                    check_acl(&acl, GET_ACL_PERMS, ids, cfg).map(|()| {
                        // Without ADMIN, digest hashes are redacted (ZooKeeper 3.8's getACL).
                        let acl = if check_acl(&acl, perms::ADMIN, ids, cfg).is_ok() {
                            acl.to_vec()
                        } else {
                            redact_digests(&acl)
                        };
                        Response::GetAcl(GetAclResponse { acl, stat })
                    })
                }
            },
            Request::GetAllChildrenNumber(r) => self.can(conn, &r.path, perms::READ).map(|()| {
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse {
                    total_number: i32::try_from(self.tree.all_children_number(&r.path))
                        .unwrap_or(i32::MAX),
                })
            }),
            Request::GetEphemerals(r) => {
                let session = self.conns.get(&conn).and_then(|c| c.session);
                let ephemerals = session
                    .map(|s| self.tree.get_ephemerals(s, &r.prefix_path))
                    .unwrap_or_default();
                Ok(Response::GetEphemerals(GetEphemeralsResponse {
                    ephemerals,
                }))
            }
            Request::Sync(r) => Ok(Response::Sync(SyncResponse {
                path: r.path.clone(),
            })),
            Request::CheckWatches(r) => match WatcherType::from_code(r.ty) {
                Some(kind) if self.watches.contains(&r.path, kind, conn) => Ok(Response::Empty),
                Some(_) => Err(ErrorCode::NoWatcher),
                None => Err(ErrorCode::BadArguments),
            },
            Request::RemoveWatches(r) => match WatcherType::from_code(r.ty) {
                Some(kind) if self.watches.remove(&r.path, kind, conn) => Ok(Response::Empty),
                Some(_) => Err(ErrorCode::NoWatcher),
                None => Err(ErrorCode::BadArguments),
            },
            Request::AddWatch(r) => match WatcherMode::from_add_watch_mode(r.mode) {
                Some(mode) => {
                    self.watches.add_watch(&r.path, conn, mode);
                    Ok(Response::AddWatch(ErrorResponse { err: 0 }))
                }
                None => Err(ErrorCode::BadArguments),
            },
            Request::WhoAmI => {
                let client_info = self
                    .auth_ids(conn)
                    .iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: match id.scheme.as_str() {
                            "digest" => id.id.split(':').next().unwrap_or("").to_string(),
                            "super" => String::new(),
                            _ => id.id.clone(),
                        },
                    })
                    .collect();
                Ok(Response::WhoAmI(WhoAmIResponse { client_info }))
            }
            Request::MultiRead(m) => Ok(Response::Multi(self.multi_read(conn, m))),
            Request::SetWatches(w) => {
                let events = self.set_watches(
                    conn,
                    w.relative_zxid,
                    &w.data_watches,
                    &w.exist_watches,
                    &w.child_watches,
                    &[],
                    &[],
                );
                return (ErrorCode::Ok, Response::Empty, events);
            }
            Request::SetWatches2(w) => {
                let events = self.set_watches(
                    conn,
                    w.relative_zxid,
                    &w.data_watches,
                    &w.exist_watches,
                    &w.child_watches,
                    &w.persistent_watches,
                    &w.persistent_recursive_watches,
                );
                return (ErrorCode::Ok, Response::Empty, events);
            }
            // Writes never reach here; anything else is not a read we know.
            _ => Err(ErrorCode::Unimplemented),
        };
        match result {
            Ok(body) => (ErrorCode::Ok, body, none),
            Err(err) => (err, Response::Empty, none),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn set_watches(
        &mut self,
        conn: ConnId,
        relative_zxid: i64,
        data: &[String],
        exist: &[String],
        child: &[String],
        persistent: &[String],
        recursive: &[String],
    ) -> Vec<WatcherEvent> {
        let tree = &self.tree;
        let lookup = |path: &str| tree.stat(path).map(|s| (s.mzxid, s.pzxid));
        let events = self.watches.set_watches(
            conn,
            relative_zxid,
            data,
            exist,
            child,
            persistent,
            recursive,
            lookup,
        );
        events
            .into_iter()
            .map(|e| server_event(e.event_type.code(), e.path))
            .collect()
    }

    fn multi_read(&mut self, conn: ConnId, m: &MultiRequest) -> MultiResponse {
        let mut results = Vec::with_capacity(m.ops.len());
        for op in &m.ops {
            let r = match op {
                MultiOp::GetChildren(r) => self
                    .can(conn, &r.path, perms::READ)
                    .and_then(|()| self.tree.get_children(&r.path).ok_or(ErrorCode::NoNode))
                    .map(|children| {
                        if r.watch {
                            self.watches.add_child_watch(&r.path, conn);
                        }
                        MultiResult::GetChildren { children }
                    }),
                MultiOp::GetData(r) => self
                    .can(conn, &r.path, perms::READ)
                    .and_then(|()| {
                        self.tree
                            .get_data(&r.path)
                            .map(|(d, s)| (d.map(<[u8]>::to_vec), s))
                            .ok_or(ErrorCode::NoNode)
                    })
                    .map(|(data, stat)| {
                        if r.watch {
                            self.watches.add_data_watch(&r.path, conn);
                        }
                        MultiResult::GetData { data, stat }
                    }),
                _ => Err(ErrorCode::BadArguments),
            };
            results.push(r.unwrap_or_else(|err| MultiResult::Error { err }));
        }
        MultiResponse { results }
    }
}

/// A client request sorted for the pipeline: a write becomes prep's input, anything else stays as is.
enum Routed {
    Write(WriteRequest),
    Other(Request),
}

/// The prep input of a client write (create, create2, createContainer, createTTL, delete, setData,
/// setACL, multi, reconfig, closeSession); any other request comes back unchanged.
fn write_request(request: Request) -> Routed {
    let op = request.op_code();
    Routed::Write(match request {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => {
            create_write(op, r, -1)
        }
        Request::CreateTtl(r) => WriteRequest::Create {
            op,
            path: r.path,
            data: r.data,
            acl: r.acl,
            flags: r.flags,
            ttl: r.ttl,
        },
        Request::Delete(r) => WriteRequest::Delete {
            path: r.path,
            version: r.version,
        },
        Request::SetData(r) => WriteRequest::SetData {
            path: r.path,
            data: r.data,
            version: r.version,
        },
        Request::SetAcl(r) => WriteRequest::SetAcl {
            path: r.path,
            acl: r.acl,
            version: r.version,
        },
        Request::Multi(m) => WriteRequest::Multi(multi_writes(m)),
        Request::Reconfig(r) => WriteRequest::Reconfig {
            joining: r.joining_servers,
            leaving: r.leaving_servers,
            new_members: r.new_members,
            from_version: r.cur_config_id,
        },
        Request::CloseSession => WriteRequest::CloseSession,
        other => return Routed::Other(other),
    })
}

fn create_write(op: OpCode, r: CreateRequest, ttl: i64) -> WriteRequest {
    WriteRequest::Create {
        op,
        path: r.path,
        data: r.data,
        acl: r.acl,
        flags: r.flags,
        ttl,
    }
}

fn multi_writes(m: MultiRequest) -> Vec<WriteRequest> {
    m.ops
        .into_iter()
        .map(|op| {
            let code = op.op_code();
            match op {
                // MultiOperationRecord reads types 1, 15 and 19 alike as `Op.create(flags)`, whose
                // opcode follows the flags: createContainer for the container flag, else create. So a
                // create2 op gets a type-1 result, and a type-1 op with the container flag makes a
                // container and gets a type-15 result.
                //
                // TTL flags there make an Op of type createTTL around a CreateRequest, on which prep's
                // cast to CreateTTLRequest fails: the multi fails with MARSHALLINGERROR when prep gets
                // to that op.
                MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                    match r.create_mode() {
                        Some(m) if m.is_ttl() => WriteRequest::Malformed,
                        Some(crate::proto::CreateMode::Container) => {
                            create_write(OpCode::CreateContainer, r, -1)
                        }
                        _ => create_write(OpCode::Create, r, -1),
                    }
                }
                // Type 21 reads a CreateTTLRequest, but `Op.create(.., flags, ttl)` only makes a TTL
                // op for TTL flags; other flags give a plain create (container or not) and the ttl is
                // dropped.
                MultiOp::CreateTtl(r) => match r.create_mode() {
                    Some(m) if m.is_ttl() => WriteRequest::Create {
                        op: code,
                        path: r.path,
                        data: r.data,
                        acl: r.acl,
                        flags: r.flags,
                        ttl: r.ttl,
                    },
                    mode => WriteRequest::Create {
                        op: if mode == Some(crate::proto::CreateMode::Container) {
                            OpCode::CreateContainer
                        } else {
                            OpCode::Create
                        },
                        path: r.path,
                        data: r.data,
                        acl: r.acl,
                        flags: r.flags,
                        ttl: -1,
                    },
                },
                MultiOp::Delete(r) => WriteRequest::Delete {
                    path: r.path,
                    version: r.version,
                },
                MultiOp::SetData(r) => WriteRequest::SetData {
                    path: r.path,
                    data: r.data,
                    version: r.version,
                },
                MultiOp::Check(r) => WriteRequest::Check {
                    path: r.path,
                    version: r.version,
                },
                // Reads inside a write multi: prep refuses them as ZooKeeper does.
                MultiOp::GetChildren(r) => WriteRequest::Check {
                    path: r.path,
                    version: i32::MIN,
                },
                MultiOp::GetData(r) => WriteRequest::Check {
                    path: r.path,
                    version: i32::MIN,
                },
            }
        })
        .collect()
}

/// The reply to a write, from the applied txn's result (FinalRequestProcessor's switch on the op).
fn write_reply(op: OpCode, result: &TxnResult) -> (ErrorCode, Response) {
    if op == OpCode::Multi && result.op != OpCode::Error {
        // A multi's reply header says 0 even when an op failed; the results carry the errors.
        let results = result.multi.iter().map(multi_result).collect();
        return (ErrorCode::Ok, Response::Multi(MultiResponse { results }));
    }
    if !result.err.is_ok() {
        return (result.err, Response::Empty);
    }
    let path = result.path.clone().unwrap_or_default();
    let stat = result.stat.unwrap_or_default();
    let body = match op {
        OpCode::Create => Response::Create(CreateResponse { path }),
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            Response::Create2(Create2Response { path, stat })
        }
        OpCode::SetData => Response::SetData(SetDataResponse { stat }),
        OpCode::SetAcl => Response::SetAcl(SetAclResponse { stat }),
        _ => Response::Empty,
    };
    (ErrorCode::Ok, body)
}

fn multi_result(r: &TxnResult) -> MultiResult {
    if !r.err.is_ok() || r.op == OpCode::Error {
        return MultiResult::Error { err: r.err };
    }
    let path = r.path.clone().unwrap_or_default();
    let stat = r.stat.unwrap_or_default();
    match r.op {
        OpCode::Create => MultiResult::Create { path },
        OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
            MultiResult::Create2 { path, stat }
        }
        OpCode::Delete | OpCode::DeleteContainer => MultiResult::Delete,
        OpCode::SetData => MultiResult::SetData { stat },
        OpCode::Check => MultiResult::Check,
        _ => MultiResult::Error { err: r.err },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::client::{CreateRequest, GetDataRequest};
    use crate::proto::Acl;

    fn server() -> Standalone {
        let settings = Settings {
            server_id: ServerId(0),
            session: SessionConfig::from_tick(100),
            prep: PrepConfig {
                extended_types: true,
                ..PrepConfig::default()
            },
            snap_count: 1_000_000,
            snapshot_seed: 1,
            snapshot_chunk_bytes: 512 << 10,
            container_check_interval_ms: 1000,
            emit_committed: false,
            mode: Mode::Standalone,
            local_sessions: LocalSessionSettings::default(),
        };
        Standalone::new(settings, DataTree::new(true), &[], Zxid::ZERO, 1_000)
    }

    fn connect(s: &mut Standalone, conn: ConnId, now: i64) -> SessionId {
        let request = ConnectRequest {
            timeout: 2000,
            passwd: vec![0; 16],
            read_only: Some(false),
            ..ConnectRequest::default()
        };
        s.handle(
            Input::Connect {
                conn,
                remote_ip: "127.0.0.1".into(),
                request,
            },
            now,
        );
        let actions = s.take_actions();
        let Some(Action::Log { zxid, .. }) = actions.first() else {
            panic!("a new session is logged first: {actions:?}");
        };
        s.handle(Input::Durable(*zxid), now);
        let actions = s.take_actions();
        let Some(Action::Send { frame, .. }) = actions.first() else {
            panic!("the connect reply follows the durable createSession: {actions:?}");
        };
        // The C client reads exactly 4 + 37 bytes.
        assert_eq!(frame.len(), 41);
        let resp = ConnectResponse::from_bytes(&frame[4..]).expect("connect response");
        SessionId(resp.session_id)
    }

    fn create(path: &str, flags: i32) -> Request {
        Request::Create(CreateRequest {
            path: path.into(),
            data: Some(b"d".to_vec()),
            acl: Acl::open_unsafe(),
            flags,
        })
    }

    fn reply_xids(actions: &[Action]) -> Vec<i32> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { frame, .. } => {
                    Some(ReplyHeader::from_bytes(&frame[4..20]).expect("header").xid)
                }
                _ => None,
            })
            .collect()
    }

    fn durable_all(s: &mut Standalone, actions: &[Action], now: i64) {
        if let Some(z) = actions.iter().rev().find_map(|a| match a {
            Action::Log { zxid, .. } => Some(*zxid),
            _ => None,
        }) {
            s.handle(Input::Durable(z), now);
        }
    }

    /// A write is acknowledged only after the driver reports its txn durable, and a read of the same
    /// session queued behind it is answered after it, in xid order.
    #[test]
    fn write_acked_after_durable_and_reads_wait_behind_it() {
        let mut s = server();
        connect(&mut s, 1, 1_000);
        s.handle(
            Input::Request {
                conn: 1,
                xid: 1,
                request: create("/a", 0),
            },
            1_001,
        );
        s.handle(
            Input::Request {
                conn: 1,
                xid: 2,
                request: Request::GetData(GetDataRequest {
                    path: "/a".into(),
                    watch: false,
                }),
            },
            1_001,
        );
        let logged = s.take_actions();
        assert!(
            reply_xids(&logged).is_empty(),
            "nothing is answered before the fsync"
        );
        durable_all(&mut s, &logged, 1_002);
        let after = s.take_actions();
        assert_eq!(reply_xids(&after), vec![1, 2]);
        // The read saw the write: no error in its header.
        let Some(Action::Send { frame, .. }) = after.get(1) else {
            panic!("read reply expected");
        };
        assert_eq!(
            ReplyHeader::from_bytes(&frame[4..20]).expect("header").err,
            0
        );
    }

    /// Another session's read is not held back by a write in flight.
    #[test]
    fn other_sessions_read_without_waiting() {
        let mut s = server();
        connect(&mut s, 1, 1_000);
        connect(&mut s, 2, 1_000);
        s.handle(
            Input::Request {
                conn: 1,
                xid: 1,
                request: create("/a", 0),
            },
            1_001,
        );
        let _ = s.take_actions();
        s.handle(
            Input::Request {
                conn: 2,
                xid: 7,
                request: Request::Exists(crate::proto::client::ExistsRequest {
                    path: "/a".into(),
                    watch: false,
                }),
            },
            1_001,
        );
        assert_eq!(reply_xids(&s.take_actions()), vec![7]);
    }

    /// The container manager deletes an emptied container and an expired TTL node, and leaves a
    /// never-used container alone.
    #[test]
    fn reaper_deletes_empty_containers_and_expired_ttls() {
        let mut s = server();
        connect(&mut s, 1, 1_000);
        let mut xid = 0;
        let mut send = |s: &mut Standalone, request: Request, now: i64| {
            xid += 1;
            s.handle(
                Input::Request {
                    conn: 1,
                    xid,
                    request,
                },
                now,
            );
            let actions = s.take_actions();
            durable_all(s, &actions, now);
            let _ = s.take_actions();
        };
        // Containers need opcode 19; a plain create with container flags makes a persistent node.
        let container = |path: &str| match create(path, 4) {
            Request::Create(r) => Request::CreateContainer(r),
            other => other,
        };
        send(&mut s, container("/c"), 1_100);
        send(&mut s, create("/c/x", 0), 1_100);
        send(&mut s, container("/unused"), 1_100);
        send(
            &mut s,
            Request::Delete(crate::proto::client::DeleteRequest {
                path: "/c/x".into(),
                version: -1,
            }),
            1_100,
        );
        send(
            &mut s,
            Request::CreateTtl(crate::proto::client::CreateTtlRequest {
                path: "/t".into(),
                data: None,
                acl: Acl::open_unsafe(),
                flags: 5,
                ttl: 500,
            }),
            1_100,
        );
        // Keep the session alive while time passes.
        send(&mut s, Request::Ping, 2_000);
        s.handle(Input::Tick, 2_200);
        let actions = s.take_actions();
        durable_all(&mut s, &actions, 2_200);
        assert!(s.tree().node("/c").is_none(), "emptied container reaped");
        assert!(s.tree().node("/t").is_none(), "expired TTL node reaped");
        assert!(
            s.tree().node("/unused").is_some(),
            "never-used container kept"
        );
    }

    /// Sends one request on conn 1, makes its txn durable, and decodes the reply.
    fn roundtrip(
        s: &mut Standalone,
        xid: i32,
        request: Request,
        now: i64,
    ) -> (ReplyHeader, Response) {
        let op = request.op_code();
        s.handle(
            Input::Request {
                conn: 1,
                xid,
                request,
            },
            now,
        );
        let actions = s.take_actions();
        durable_all(s, &actions, now);
        let mut all = actions;
        all.extend(s.take_actions());
        all.iter()
            .find_map(|a| match a {
                Action::Send { frame, .. } => {
                    let (h, r) = crate::proto::decode_reply(&frame[4..], Some(op)).ok()?;
                    (h.xid == xid).then_some((h, r))
                }
                _ => None,
            })
            .expect("a reply")
    }

    /// In a multi, ZooKeeper reads create ops of types 1, 15 and 19 alike and picks the opcode from
    /// the flags: a create2 op gets a type-1 result, a container-flagged create op makes a container
    /// with a type-15 result, a createContainer op with flags 0 makes a persistent node, and TTL flags
    /// without a TTL fail the whole multi with MARSHALLINGERROR (still consuming a zxid).
    #[test]
    fn multi_create_ops_follow_their_flags() {
        let mut s = server();
        connect(&mut s, 1, 1_000);
        let req = |path: &str, flags: i32| match create(path, flags) {
            Request::Create(r) => r,
            _ => unreachable!(),
        };
        let multi = |op: MultiOp| Request::Multi(MultiRequest { ops: vec![op] });
        let (h, r) = roundtrip(&mut s, 1, multi(MultiOp::Create2(req("/a", 0))), 1_001);
        assert_eq!(h.err, 0);
        assert!(
            matches!(&r, Response::Multi(m) if matches!(&m.results[..], [MultiResult::Create { path }] if path == "/a")),
            "{r:?}"
        );
        let (_, r) = roundtrip(&mut s, 2, multi(MultiOp::Create(req("/c", 4))), 1_001);
        assert!(
            matches!(&r, Response::Multi(m) if matches!(&m.results[..], [MultiResult::Create2 { .. }])),
            "{r:?}"
        );
        assert_eq!(
            s.tree().node("/c").unwrap().stat.ephemeral_owner,
            crate::tree::CONTAINER_OWNER
        );
        let (_, r) = roundtrip(
            &mut s,
            3,
            multi(MultiOp::CreateContainer(req("/p", 0))),
            1_001,
        );
        assert!(
            matches!(&r, Response::Multi(m) if matches!(&m.results[..], [MultiResult::Create { .. }])),
            "{r:?}"
        );
        assert_eq!(s.tree().node("/p").unwrap().stat.ephemeral_owner, 0);
        let before = s.tree().last_processed_zxid();
        let (h, r) = roundtrip(&mut s, 4, multi(MultiOp::Create(req("/t", 5))), 1_001);
        assert_eq!(
            (h.err, r),
            (ErrorCode::MarshallingError.code(), Response::Empty)
        );
        assert_eq!(h.zxid, before + 1, "the failed multi consumed a zxid");
        assert!(s.tree().node("/t").is_none());
        // ... but only when prep gets to that op: after a failed op the rest are not prepped.
        let ops = vec![
            MultiOp::Delete(crate::proto::client::DeleteRequest {
                path: "/missing".into(),
                version: -1,
            }),
            MultiOp::Create(req("/t", 5)),
        ];
        let (h, r) = roundtrip(&mut s, 5, Request::Multi(MultiRequest { ops }), 1_001);
        assert_eq!(h.err, 0);
        assert!(
            matches!(&r, Response::Multi(m) if m.results == vec![
                MultiResult::Error { err: ErrorCode::NoNode },
                MultiResult::Error { err: ErrorCode::RuntimeInconsistency },
            ]),
            "{r:?}"
        );
        // A createTTL op with non-TTL flags is a plain create; its ttl is ignored.
        let ttl_op = MultiOp::CreateTtl(crate::proto::client::CreateTtlRequest {
            path: "/plain".into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: 1000,
        });
        let (_, r) = roundtrip(&mut s, 6, multi(ttl_op), 1_001);
        assert!(
            matches!(&r, Response::Multi(m) if matches!(&m.results[..], [MultiResult::Create { .. }])),
            "{r:?}"
        );
        assert_eq!(s.tree().node("/plain").unwrap().stat.ephemeral_owner, 0);
    }

    /// A create or setData with a null buffer (what Java's client sends for null data) stores null:
    /// getData answers a null buffer (length -1), as ZooKeeper does; empty data stays empty.
    #[test]
    fn null_data_reads_back_as_null() {
        let mut s = server();
        connect(&mut s, 1, 1_000);
        let create = |path: &str, data: Option<Vec<u8>>| {
            Request::Create(CreateRequest {
                path: path.into(),
                data,
                acl: Acl::open_unsafe(),
                flags: 0,
            })
        };
        let get = |path: &str| {
            Request::GetData(GetDataRequest {
                path: path.into(),
                watch: false,
            })
        };
        let data_of = |r: Response| match r {
            Response::GetData(d) => d.data,
            other => panic!("{other:?}"),
        };
        roundtrip(&mut s, 1, create("/null", None), 1_001);
        roundtrip(&mut s, 2, create("/empty", Some(Vec::new())), 1_001);
        assert_eq!(data_of(roundtrip(&mut s, 3, get("/null"), 1_001).1), None);
        assert_eq!(
            data_of(roundtrip(&mut s, 4, get("/empty"), 1_001).1),
            Some(Vec::new())
        );
        let set = Request::SetData(crate::proto::client::SetDataRequest {
            path: "/empty".into(),
            data: None,
            version: -1,
        });
        roundtrip(&mut s, 5, set, 1_001);
        assert_eq!(data_of(roundtrip(&mut s, 6, get("/empty"), 1_001).1), None);
    }

    /// A known opcode with an undecodable body is answered MARSHALLINGERROR and the connection stays
    /// open; a write still consumes a zxid (ZooKeeper's prep assigns it before reading the body).
    #[test]
    fn bad_bodies_answer_marshalling_error_and_keep_the_connection() {
        let mut s = server();
        connect(&mut s, 1, 1_000);
        let before = s.tree().last_processed_zxid();
        let bad = |s: &mut Standalone, xid: i32, ty: i32| {
            s.handle(
                Input::BadRequest {
                    conn: 1,
                    xid,
                    ty,
                    err: ErrorCode::MarshallingError,
                },
                1_001,
            );
            let actions = s.take_actions();
            durable_all(s, &actions, 1_001);
            let mut all = actions;
            all.extend(s.take_actions());
            assert!(
                !all.iter().any(|a| matches!(a, Action::Close { .. })),
                "{all:?}"
            );
            all.iter()
                .find_map(|a| match a {
                    Action::Send { frame, .. } => ReplyHeader::from_bytes(&frame[4..20]).ok(),
                    _ => None,
                })
                .expect("a reply")
        };
        let h = bad(&mut s, 1, OpCode::Create.code());
        assert_eq!((h.xid, h.err), (1, ErrorCode::MarshallingError.code()));
        assert_eq!(h.zxid, before + 1, "the bad write became an error txn");
        let h = bad(&mut s, 2, OpCode::GetData.code());
        assert_eq!(
            (h.xid, h.zxid, h.err),
            (2, before + 1, ErrorCode::MarshallingError.code())
        );
        let (h, _) = roundtrip(&mut s, 3, create("/a", 0), 1_002);
        assert_eq!((h.err, h.zxid), (0, before + 2));
    }

    /// A due snapshot starts after snapCount/2 + r txns (r drawn from the seed), is serialized in pieces
    /// over many turns of about `snapshot_chunk_bytes` while writes go on, and is emitted under the zxid
    /// applied when it started; loading it and replaying the txns logged after that zxid gives the tree.
    #[test]
    fn snapshots_are_fuzzy_and_taken_in_turns() {
        let settings = Settings {
            server_id: ServerId(0),
            session: SessionConfig::from_tick(100),
            prep: PrepConfig::default(),
            snap_count: 40,
            snapshot_seed: 7,
            snapshot_chunk_bytes: 2,
            container_check_interval_ms: 1000,
            emit_committed: false,
            mode: Mode::Standalone,
            local_sessions: LocalSessionSettings::default(),
        };
        let trigger = snapshot_trigger(40, 7, 0);
        assert!((20..40).contains(&trigger), "{trigger}");
        let mut s = Standalone::new(settings, DataTree::new(false), &[], Zxid::ZERO, 1_000);
        let mut log: Vec<(Zxid, Vec<u8>)> = Vec::new();
        let mut write = |s: &mut Standalone, xid: i32, req: Request| {
            s.handle(
                Input::Request {
                    conn: 1,
                    xid,
                    request: req,
                },
                1_001,
            );
            let actions = s.take_actions();
            for a in &actions {
                if let Action::Log { zxid, entry } = a {
                    log.push((*zxid, entry.clone()));
                }
            }
            durable_all(s, &actions, 1_001);
            assert!(s
                .take_actions()
                .iter()
                .all(|a| !matches!(a, Action::Snapshot { .. })));
        };
        connect(&mut s, 1, 1_000);
        let mut xid = 0;
        while !s.snapshot_in_progress() {
            xid += 1;
            write(&mut s, xid, create(&format!("/n{xid}"), 0));
        }
        // The createSession txn counts too.
        assert_eq!(xid as u64 + 1, trigger);
        let start = s.tree().last_processed_zxid();
        let mut turns = 0;
        let mut blob = Vec::new();
        let zxid = 'turns: loop {
            xid += 1;
            write(&mut s, xid, create(&format!("/m{xid}"), 0));
            s.handle(Input::SnapshotStep, 1_002);
            turns += 1;
            for a in s.take_actions() {
                if let Action::Snapshot {
                    zxid,
                    piece,
                    first,
                    last,
                } = a
                {
                    assert_eq!(first, turns == 1, "only the first turn's piece is first");
                    blob.extend_from_slice(&piece);
                    if last {
                        break 'turns zxid;
                    }
                }
            }
        };
        assert!(!s.snapshot_in_progress());
        assert_eq!(zxid.0, start);
        assert!(turns > 10, "{turns} turns of one node or so");
        let (mut tree, sessions) = read_snapshot_blob(&blob, false).expect("blob");
        assert_eq!(sessions.len(), 1);
        for (z, entry) in log.iter().filter(|(z, _)| z.0 > start) {
            let e = TxnEntry::decode(entry).expect("entry");
            let _ = tree.apply_txn(&e.header, &e.txn);
            assert_eq!(e.header.zxid, z.0);
        }
        assert_eq!(tree.digest(), s.tree().digest());
        assert_eq!(tree.len(), s.tree().len());
        assert_eq!(tree.validate(), Ok(()));
    }
}
