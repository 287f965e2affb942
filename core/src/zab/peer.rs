//! A quorum peer (ZooKeeper's `QuorumPeer`) as a sans-IO state machine: fast leader election, then
//! leading or learning (following or observing) over the quorum port, with the ZooKeeper server state
//! machine ([`ZkServer`]) inside serving clients once the peer is synced.
//!
//! Inputs are [`PeerInput`] values with the time; outputs are [`PeerAction`]s, taken with
//! [`Peer::take_actions`]. The role logic lives in `leader.rs` (discovery, learner sync, broadcast:
//! `Leader` and `LearnerHandler`) and `learner.rs` (`Learner`, `Follower`, `Observer`); this file holds
//! what every role shares: the election, role changes, the database hand-over between roles, and client
//! routing.
//!
//! # Obligations of the driver
//! 1. Perform actions in the order given. `WriteAcceptedEpoch` / `WriteCurrentEpoch` are durable
//!    (written, fsynced, renamed) before the next action is performed.
//! 2. `Log` records are appended in order; report [`PeerInput::Durable`] once an fsync covers them. The
//!    peer sends a follower's ACK only after that (ZAB: an ack promises the txn is on disk).
//! 3. `Truncate`: wait for pending appends, truncate the txn log after the zxid, recover the database
//!    from disk and hand it back with [`Peer::reload`] before the next input.
//! 4. `InstallSnapshot`: write the body as a snapshot file at the zxid (durable), drop log records after
//!    that zxid, before the next action.
//! 5. `ConnectLeader`: connect to the leader's quorum address (retrying as `Learner.connectToLeader`
//!    does) and report [`PeerInput::LeaderConnected`] or [`PeerInput::LeaderConnectFailed`]; then feed
//!    every decoded item from that connection as [`PeerInput::FromLeader`], in order.
//! 6. Connections accepted on the quorum port become [`PeerInput::LearnerConnected`] with a fresh
//!    [`LinkId`]; their items arrive as [`PeerInput::FromLearner`]; packets to a link are written in
//!    order (a full queue must close the link, never drop a packet from the middle).
//! 7. Call [`PeerInput::Tick`] at least every `tick_ms / 2`.
//! 8. `ReadTxnLog`: read the logged txns after `after` up to `until` (off the peer's task), only when
//!    the log holds `after` itself and every snapshot's zxid in between (a snapshot at a zxid the
//!    log lacks was installed by a SNAP sync), and the log files from the one holding `after` on are
//!    no larger than `size_factor` × the newest snapshot file (`ZKDatabase.getProposalsFromTxnLog`,
//!    `calculateTxnLogSizeLimit`; a limit of 0 is unlimited); report [`PeerInput::TxnLogRead`],
//!    with `None` otherwise or on any read error.
//!
//! Nothing here reads a clock, a disk or a socket.

use std::collections::BTreeMap;

use crate::ids::{Epoch, ServerId, SessionId, Zxid};
use crate::proto::quorum::{QuorumPacket, ServerState};
use crate::proto::quorum_stream::QuorumItem;
use crate::proto::{Txn, TxnEntry, TxnHeader};
use crate::server::standalone::{read_snapshot_blob, Standalone as ZkServer};
use crate::server::standalone::{Action as ServerAction, Input as ServerInput, Mode, Settings};
use crate::tree::DataTree;
use crate::zab::election::{Action as ElectionAction, Election, ElectionConfig, LocalState, Role};
use crate::zab::leader::LeaderState;
use crate::zab::learner::LearnerState;
use crate::zab::learner_link::LinkState;
use crate::zab::learner_sync::CommittedLog;
use crate::zab::quorum::QuorumVerifier;
use crate::zab::rng::SplitMix64;

/// How long a server removed by a reconfig waits before looking again after an election ended.
const REMOVED_RELOOK_MS: u64 = 2_000;

/// A connection on the quorum port accepted by this server, numbered by the driver.
pub type LinkId = u64;

/// Static settings of a peer, from zoo.cfg.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// This server's myid.
    pub my_id: ServerId,
    /// The committed configuration's quorum rule (voters and observers).
    pub verifier: QuorumVerifier,
    /// The committed configuration text (§4.6), sent in notifications and NEWLEADER.
    pub config_text: Vec<u8>,
    /// `tickTime`.
    pub tick_ms: u64,
    /// `initLimit`, in ticks.
    pub init_limit: u64,
    /// `syncLimit`, in ticks.
    pub sync_limit: u64,
    /// `zookeeper.commitLogCount`: committed txns a leader keeps for DIFF syncs (default 500).
    pub commit_log_count: usize,
    /// `zookeeper.snapshotSizeFactor` (default 0.33): a learner behind the committed log is synced by
    /// DIFF from the on-disk txn log when the log files needed are at most this times the newest
    /// snapshot's size; negative disables (such a learner gets a SNAP).
    pub snapshot_size_factor: f64,
    /// `observer.reconnectDelayMs` (default 0).
    pub observer_reconnect_delay_ms: u64,
    /// `observer.election.DelayMs` (default 200).
    pub observer_election_delay_ms: u64,
    /// `syncEnabled`: whether an observer logs and snapshots (default true).
    pub observer_sync_enabled: bool,
    /// An observer that loses its leader keeps serving reads to its connected clients (stale, from its
    /// last applied zxid) while it looks for a leader again, instead of closing every connection; writes,
    /// syncs and new sessions are refused by closing the connection (the client retries). outpost's
    /// extension for observers across a WAN (`outpost.observerServesWhileDetached`, default true).
    pub observer_serves_detached: bool,
    /// `observerMasterPort` is set: followers serve observers on it and observers sync from a
    /// follower (the voters in a shuffled order, then the leader) instead of the leader.
    pub observer_master: bool,
    /// `leaderServes`: whether the leader accepts client connections (default true; with false the
    /// leader only leads, as ZooKeeper's `leaderServes=no`).
    pub leader_serves: bool,
    /// `leader.maxConcurrentSnapSyncs` (default 10): SNAP syncs this server serves at once as leader or
    /// observer master; an observer beyond it is refused (its link closed) and tries again later.
    /// Followers count but are never refused (`LearnerSyncThrottler`'s essential syncs).
    pub max_concurrent_snap_syncs: usize,
    /// `leader.maxConcurrentDiffSyncs` (default 100): the same for DIFF and TRUNC syncs.
    pub max_concurrent_diff_syncs: usize,
    /// Bytes of snapshot per chunk of a streamed SNAP sync (outpost's; see `zab::learner_link`).
    pub snap_chunk_bytes: usize,
    /// `standaloneEnabled` (default true): a reconfig must then leave at least two voters.
    pub standalone_enabled: bool,
    /// The counter an epoch's zxids start after (0 in production: the first txn of an epoch has counter
    /// 1). Tests set it near `u32::MAX` to reach counter exhaustion, which must force a new epoch.
    pub epoch_start_counter: u32,
    /// The server state machine's settings (its mode is set by the peer).
    pub server: Settings,
    /// Seed of the peer's randomness (observer delays).
    pub seed: u64,
    /// `outpost.election.finalizeEarly`: end the election's finalize wait once every voter agreed or
    /// is unreachable ([`crate::zab::election::ElectionConfig::finalize_early`]).
    pub election_finalize_early: bool,
}

impl PeerConfig {
    /// Whether this server is an observer in the committed configuration.
    pub fn is_observer(&self) -> bool {
        self.verifier.observers().contains(&self.my_id)
    }
}

/// What a peer starts from, recovered from disk by the driver.
pub struct PeerDb {
    /// The tree with every logged txn applied.
    pub tree: DataTree,
    /// Global sessions (id, timeout).
    pub sessions: Vec<(SessionId, i32)>,
    /// The last logged zxid (snapshot or log), the tree's last applied zxid.
    pub last_logged: Zxid,
    /// The acceptedEpoch file.
    pub accepted_epoch: Epoch,
    /// The currentEpoch file.
    pub current_epoch: Epoch,
    /// The last txns of the log (zxid, encoded entry), oldest first, to seed the committed log.
    pub recent: Vec<(Zxid, Vec<u8>)>,
}

/// Something that happened.
#[derive(Debug)]
pub enum PeerInput {
    /// An election message from a peer (the sid named by the election connection's handshake).
    Election {
        /// The sender.
        from: ServerId,
        /// The notification payload.
        payload: Vec<u8>,
    },
    /// The election transport's servers it cannot reach now (its last connect failed and none has
    /// been made since); the whole set each time it changes.
    ElectionUnreachable(std::collections::BTreeSet<ServerId>),
    /// A client event (the connection layer is shared with the standalone server).
    Client(ServerInput),
    /// Time passed.
    Tick,
    /// Every txn logged up to this zxid is durable.
    Durable(Zxid),
    /// An observer connected to our observer-master port (`observerMasterPort`).
    ObserverConnected {
        /// Its link (numbered with the quorum port's links).
        link: LinkId,
    },
    /// A learner connected to our quorum port.
    LearnerConnected {
        /// Its link.
        link: LinkId,
    },
    /// An item from a learner's link.
    FromLearner {
        /// The link.
        link: LinkId,
        /// The packet (learners never send snapshots).
        item: QuorumItem,
    },
    /// A learner's link broke (or the driver closed it).
    LearnerDisconnected {
        /// The link.
        link: LinkId,
    },
    /// The connection to the leader is up.
    LeaderConnected,
    /// The connection to the leader could not be made.
    LeaderConnectFailed,
    /// An item from the leader.
    FromLeader(QuorumItem),
    /// The connection to the leader broke.
    LeaderDisconnected,
    /// A snapshot turn (see [`Peer::snapshot_in_progress`]).
    SnapshotStep,
    /// Part of a snapshot body from the leader has arrived (`bytes` and `znodes` of it so far, as
    /// [`crate::proto::quorum_stream::QuorumStreamDecoder::snapshot_progress`] counts them): the
    /// connection is alive. Report it now and then while a snapshot comes in; without it a snapshot
    /// that takes longer than `initLimit` to arrive would time the learner out.
    SnapshotProgress {
        /// Bytes of the body so far.
        bytes: u64,
        /// Node records so far.
        znodes: u64,
    },
    /// A chunk of a SNAP stream handed out with [`PeerAction::SendLearnerSnapshotChunk`] has been
    /// written to the link's socket (the stream serializes the next one).
    SnapChunkWritten {
        /// The link.
        link: LinkId,
    },
    /// The answer to [`PeerAction::ReadTxnLog`]: the txns read, oldest first, or `None` when the log
    /// cannot serve the sync (it does not hold the learner's zxid, it is too large, a read failed).
    TxnLogRead {
        /// The link.
        link: LinkId,
        /// The txns after the requested zxid (zxid, encoded `TxnEntry`).
        txns: Option<Vec<(Zxid, std::sync::Arc<[u8]>)>>,
    },
}

/// Which epoch file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochFile {
    /// `acceptedEpoch`.
    Accepted,
    /// `currentEpoch`.
    Current,
}

/// The role the peer is in, for logs, `srvr` and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// Electing.
    Looking,
    /// Leading (`Mode: leader` once established).
    Leading,
    /// Following.
    Following,
    /// Observing.
    Observing,
}

impl PeerRole {
    /// The word `srvr` prints after `Mode:`.
    pub fn mode_name(self) -> &'static str {
        match self {
            PeerRole::Looking => "looking",
            PeerRole::Leading => "leader",
            PeerRole::Following => "follower",
            PeerRole::Observing => "observer",
        }
    }
}

/// What the driver must do.
#[derive(Debug)]
pub enum PeerAction {
    /// Send an election notification.
    ElectionSend {
        /// The recipient.
        to: ServerId,
        /// The payload.
        payload: Vec<u8>,
    },
    /// Connect to the leader's quorum address.
    ConnectLeader {
        /// The leader.
        leader: ServerId,
        /// Wait this long before the first attempt (observers spread their reconnects).
        delay_ms: u64,
    },
    /// Connect to a voter's observer-master port (an observer with `observerMasterPort`); then as
    /// `ConnectLeader` (the same inputs report the connection and its packets).
    ConnectLearnerMaster {
        /// The voter.
        server: ServerId,
        /// Wait this long before connecting.
        delay_ms: u64,
    },
    /// Write a packet to the leader (or to the learner master an observer synced from).
    SendLeader(QuorumPacket),
    /// Close the connection to the leader.
    CloseLeader,
    /// Write a packet to a learner.
    SendLearner {
        /// The link.
        link: LinkId,
        /// The packet.
        packet: QuorumPacket,
    },
    /// Write raw bytes of a streamed snapshot body to a learner, in order with its packets (the SNAP
    /// packet comes first; the last chunk ends with the body's terminator and the `BenWasHere`
    /// signature). Report [`PeerInput::SnapChunkWritten`] once it is written to the socket.
    SendLearnerSnapshotChunk {
        /// The link.
        link: LinkId,
        /// The bytes ([`crate::server::standalone::snapshot_blob`] layout, cut anywhere).
        chunk: Vec<u8>,
    },
    /// Close a learner's link once what was queued before is written.
    CloseLearner {
        /// The link.
        link: LinkId,
    },
    /// Append a txn to the log.
    Log {
        /// Its zxid.
        zxid: Zxid,
        /// The encoded `TxnEntry`.
        entry: Vec<u8>,
    },
    /// Write an epoch file durably before the next action.
    WriteEpoch {
        /// Which.
        file: EpochFile,
        /// The value.
        epoch: Epoch,
    },
    /// Truncate the log after `zxid`, recover, call [`Peer::reload`].
    Truncate {
        /// The last zxid to keep.
        zxid: Zxid,
    },
    /// Write `body` as the snapshot at `zxid` and drop log records after it.
    InstallSnapshot {
        /// The snapshot's zxid.
        zxid: Zxid,
        /// The body.
        body: Vec<u8>,
    },
    /// A client-facing action of the server state machine (`Send`, `Close`, `Snapshot`, `Committed`).
    Client(ServerAction),
    /// The role changed.
    RoleChanged(PeerRole),
    /// A problem worth an operator's attention (already logged): the driver may count it.
    Warning(String),
    /// A reconfig proposal was seen (`setLastSeenQuorumVerifier`): write `<zoo.cfg>.dynamic.next`
    /// with this text (version line kept) and connect to its new members' election ports.
    ConfigSeen {
        /// The configuration text.
        text: Vec<u8>,
    },
    /// A configuration became the committed one (`setQuorumVerifier(qv, true)`): write
    /// `<zoo.cfg>.dynamic.<version hex>` (sorted lines, no version line), point zoo.cfg's
    /// `dynamicConfigFile` at it (dropping its `server.`, `group`, `weight`, `peerType` lines), delete
    /// `.dynamic.next` if it holds this version, and use the new members' addresses from now on.
    ConfigActivated {
        /// The configuration text.
        text: Vec<u8>,
    },
    /// Read the txn log for a learner's DIFF sync (driver obligation 8); answer with
    /// [`PeerInput::TxnLogRead`]. The learner's sync waits for the answer.
    ReadTxnLog {
        /// The learner's link.
        link: LinkId,
        /// The learner's last zxid: the log must hold it; the txns after it are wanted.
        after: Zxid,
        /// The last zxid wanted (what this server had applied when it asked: committed, logged).
        until: Zxid,
        /// `zookeeper.snapshotSizeFactor`.
        size_factor: f64,
    },
}

/// The role-specific state.
#[derive(Debug)]
pub(crate) enum RoleState {
    Looking,
    Leading(Box<LeaderState>),
    Learning(Box<LearnerState>),
}

/// A quorum peer.
pub struct Peer {
    pub(crate) cfg: PeerConfig,
    pub(crate) election: Election,
    pub(crate) role: RoleState,
    /// The server state machine; it serves clients only while `serving`.
    pub(crate) server: ZkServer,
    pub(crate) serving: bool,
    pub(crate) accepted_epoch: Epoch,
    pub(crate) current_epoch: Epoch,
    /// The last zxid appended to the log (or installed by a snapshot).
    pub(crate) last_logged: Zxid,
    /// The last zxid the driver reported durable.
    pub(crate) durable: Zxid,
    /// Logged txns not applied to the tree yet (a learner's uncommitted proposals, a leader's
    /// outstanding ones), oldest first: applied when the role ends (`ZKDatabase.fastForwardDataBase`),
    /// so the tree always reflects the log between roles.
    pub(crate) unapplied: BTreeMap<Zxid, Vec<u8>>,
    /// The last committed txns, contiguous up to the tree's last applied zxid (`ZKDatabase.committedLog`),
    /// kept on every server because any of them may lead next and serve DIFFs from it.
    pub(crate) committed_log: CommittedLog,
    pub(crate) now_ms: u64,
    pub(crate) rng: SplitMix64,
    pub(crate) actions: Vec<PeerAction>,
    /// Observers wait before looking again (`observer.election.DelayMs`): when the election restarts.
    pub(crate) election_resume_at: Option<u64>,
    pub(crate) role_name: PeerRole,
    pub(crate) stats: PeerStats,
    /// Learner links accepted while looking: (when, items received), adopted if this server leads.
    pub(crate) waiting_links: BTreeMap<LinkId, (u64, Vec<QuorumItem>)>,
    /// The leader's zxid counter ran out: step down once the current input is handled.
    pub(crate) abdicate: bool,
    /// An observer serving reads while it has no leader (see `PeerConfig::observer_serves_detached`).
    pub(crate) detached: bool,
    /// Per learner link served (leader or observer master): counters, lag, throttle slot, SNAP stream.
    pub(crate) link_states: BTreeMap<LinkId, LinkState>,
    /// The last seen configuration while a reconfig is in flight (see `zab::reconfig`).
    pub(crate) last_seen: Option<crate::zab::reconfig::Membership>,
    /// A committed reconfig named this leader when this server leaves its role (see
    /// `zab::reconfig`'s hand-off): it takes its new role at once instead of electing.
    pub(crate) handoff: Option<ServerId>,
    /// A committed reconfig removed this server: it stops serving; it keeps looking (a LOOKING
    /// non-voter, so the others see it looking and nobody counts it) but never takes a role.
    pub(crate) removed: bool,
}

/// Counters for `mntr`, metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Elections won or lost (roles entered).
    pub elections: u64,
    /// Learner syncs served by DIFF, TRUNC and SNAP (leader side).
    pub diff_syncs: u64,
    /// TRUNC syncs served.
    pub trunc_syncs: u64,
    /// SNAP syncs served.
    pub snap_syncs: u64,
    /// Packets from peers that broke the protocol (the link was closed).
    pub protocol_errors: u64,
    /// Proposals committed by this leader.
    pub commits: u64,
    /// Bytes of snapshot streamed to learners by SNAP syncs (leader or observer master).
    pub snap_bytes_sent: u64,
    /// Bytes of snapshot received from a leader or observer master by SNAP syncs.
    pub snap_bytes_received: u64,
    /// Observer syncs refused by `maxConcurrentSnapSyncs` / `maxConcurrentDiffSyncs`.
    pub syncs_throttled: u64,
    /// Roles taken after a reconfig's hand-off, without an election.
    pub handoffs: u64,
    /// DIFF syncs (counted in `diff_syncs` too) that sent txns read from the on-disk txn log (rule 5).
    pub txn_log_syncs: u64,
}

/// What [`Peer::queue_sync`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncQueued {
    /// The sync and NEWLEADER are queued.
    Done,
    /// The throttle refused the learner: close its link.
    Refused,
    /// Waiting for the txn log read (rule 5); call again when it is answered.
    AwaitTxnLog,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer")
            .field("my_id", &self.cfg.my_id)
            .field("role", &self.role_name)
            .field("last_logged", &self.last_logged)
            .finish()
    }
}

impl Peer {
    /// A peer over a recovered database; call [`Peer::start`] to begin the first election.
    pub fn new(cfg: PeerConfig, db: PeerDb, now_ms: u64) -> Peer {
        let mut ecfg =
            ElectionConfig::new(cfg.my_id, cfg.verifier.clone(), cfg.config_text.clone());
        if cfg.is_observer() {
            ecfg.learner_type = crate::zab::election::LearnerType::Observer;
        }
        ecfg.finalize_early = cfg.election_finalize_early;
        let election = Election::new(ecfg);
        // The recovered log may end with a reconfig this server logged but never saw committed (Java
        // keeps it in `zoo.cfg.dynamic.next`): it is the last seen configuration.
        let logged_config = db
            .tree
            .node(crate::tree::CONFIG_NODE)
            .and_then(|n| n.data.as_deref())
            .and_then(|d| crate::zab::reconfig::Membership::from_text(d).ok())
            .filter(|m| m.version() > cfg.verifier.version());
        let server = build_server(
            &cfg,
            Mode::Standalone,
            db.tree,
            &db.sessions,
            db.last_logged,
            now_ms,
        );
        let rng = SplitMix64::new(cfg.seed);
        let mut peer = Peer {
            election,
            role: RoleState::Looking,
            server,
            serving: false,
            accepted_epoch: db.accepted_epoch,
            current_epoch: db.current_epoch,
            last_logged: db.last_logged,
            durable: db.last_logged,
            unapplied: BTreeMap::new(),
            committed_log: seed_committed_log(cfg.commit_log_count, db.recent, db.last_logged),
            now_ms,
            rng,
            actions: Vec::new(),
            election_resume_at: None,
            role_name: PeerRole::Looking,
            stats: PeerStats::default(),
            waiting_links: BTreeMap::new(),
            abdicate: false,
            detached: false,
            link_states: BTreeMap::new(),
            last_seen: None,
            handoff: None,
            removed: false,
            cfg,
        };
        if let Some(m) = logged_config {
            peer.set_last_seen(m);
            peer.actions.clear();
        }
        peer
    }

    /// Starts the first election.
    pub fn start(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        self.start_election();
    }

    /// Takes the actions produced so far.
    pub fn take_actions(&mut self) -> Vec<PeerAction> {
        std::mem::take(&mut self.actions)
    }

    /// The role now.
    pub fn role(&self) -> PeerRole {
        self.role_name
    }

    /// Whether this is an observer serving reads without a leader (see
    /// `PeerConfig::observer_serves_detached`); `srvr` then says `Mode: read-only`, as ZooKeeper's
    /// read-only servers do.
    pub fn is_detached(&self) -> bool {
        self.detached && self.serving
    }

    /// Whether the server serves clients now (a leader once established, a learner after UPTODATE).
    pub fn is_serving(&self) -> bool {
        self.serving
    }

    /// The leader this peer follows or is, once an election ended.
    pub fn leader_id(&self) -> Option<ServerId> {
        match &self.role {
            RoleState::Looking => None,
            RoleState::Leading(_) => Some(self.cfg.my_id),
            RoleState::Learning(l) => Some(l.leader),
        }
    }

    /// The server state machine (tree, sessions, connections) for the four-letter words and tests.
    pub fn server(&self) -> &ZkServer {
        &self.server
    }

    /// The configuration.
    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    /// The last logged zxid.
    pub fn last_logged(&self) -> Zxid {
        self.last_logged
    }

    /// The epoch files' values (accepted, current).
    pub fn epochs(&self) -> (Epoch, Epoch) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// A one-line summary of the role's internal state, for simulator failures and debug logs.
    pub fn debug_state(&self) -> String {
        let role = match &self.role {
            RoleState::Looking => "looking".into(),
            RoleState::Leading(l) => l.debug_state(),
            RoleState::Learning(l) => l.debug_state(),
        };
        if self.link_states.is_empty() {
            role
        } else {
            format!("{role} links [{}]", self.debug_links())
        }
    }

    /// Counters.
    pub fn stats(&self) -> PeerStats {
        self.stats
    }

    /// Learners synced with this leader (sid, observer?, last zxid acknowledged or informed), for
    /// `mntr`'s `zk_synced_followers` and the admin output; empty unless leading.
    pub fn learners(&self) -> Vec<(ServerId, bool, bool)> {
        match &self.role {
            RoleState::Leading(l) => l.learner_summary(),
            _ => Vec::new(),
        }
    }

    /// Observers this follower serves as their observer master (sid, synced?).
    pub fn observers_served(&self) -> Vec<(ServerId, bool)> {
        match &self.role {
            RoleState::Learning(l) => l.om.summary(),
            _ => Vec::new(),
        }
    }

    /// Whether the server has a snapshot being serialized (give it [`PeerInput::SnapshotStep`] turns).
    pub fn snapshot_in_progress(&self) -> bool {
        self.server.snapshot_in_progress()
    }

    /// Replaces the database after a `Truncate` action (driver obligation 3).
    pub fn reload(&mut self, db: PeerDb) {
        self.server = build_server(
            &self.cfg,
            self.server.mode(),
            db.tree,
            &db.sessions,
            db.last_logged,
            self.now_ms,
        );
        self.last_logged = db.last_logged;
        self.durable = self.durable.min(db.last_logged);
        self.unapplied.clear();
        self.committed_log =
            seed_committed_log(self.cfg.commit_log_count, db.recent, db.last_logged);
    }

    /// Reacts to one input at `now_ms`.
    pub fn handle(&mut self, input: PeerInput, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        match input {
            PeerInput::Election { from, payload } => {
                let out = self.election.receive_bytes(from, &payload, self.now_ms);
                self.perform_election(out);
            }
            PeerInput::ElectionUnreachable(set) => {
                let out = self.election.set_unreachable(set);
                self.perform_election(out);
            }
            PeerInput::Client(input) => self.on_client(input),
            PeerInput::Tick => self.on_tick(),
            PeerInput::Durable(zxid) => {
                if zxid > self.durable {
                    self.durable = zxid;
                }
                match &mut self.role {
                    RoleState::Leading(_) => self.leader_on_durable(),
                    RoleState::Learning(_) => self.learner_on_durable(),
                    RoleState::Looking => {}
                }
            }
            PeerInput::LearnerConnected { link } => match &mut self.role {
                RoleState::Leading(_) => self.leader_on_connect(link),
                // A learner may decide the election a moment before this server does and connect
                // while it is still looking: hold the link (Java's leader is not listening yet and
                // the learner's connect retries; here the socket is already accepted, and closing
                // it would send the learner back to looking). It is adopted if this server leads.
                RoleState::Looking => {
                    self.waiting_links.insert(link, (self.now_ms, Vec::new()));
                }
                // Only a leader accepts learners (the ObserverMaster port is separate).
                RoleState::Learning(_) => self.close_learner(link),
            },
            PeerInput::ObserverConnected { link } => self.om_on_connect(link),
            PeerInput::FromLearner { link, item } if self.om_is_link(link) => {
                self.om_on_item(link, item)
            }
            PeerInput::FromLearner { link, item } => match &mut self.role {
                RoleState::Leading(_) => self.leader_on_item(link, item),
                RoleState::Looking => match self.waiting_links.get_mut(&link) {
                    Some((_, items)) if items.len() < 16 => items.push(item),
                    _ => {
                        self.waiting_links.remove(&link);
                        self.close_learner(link);
                    }
                },
                RoleState::Learning(_) => self.close_learner(link),
            },
            PeerInput::LearnerDisconnected { link } => {
                self.waiting_links.remove(&link);
                self.link_closed(link);
                self.om_on_disconnect(link);
                if let RoleState::Leading(_) = self.role {
                    self.leader_on_disconnect(link);
                }
            }
            PeerInput::LeaderConnected => {
                if let RoleState::Learning(_) = self.role {
                    self.learner_on_connected();
                }
            }
            PeerInput::LeaderConnectFailed => {
                if let RoleState::Learning(_) = self.role {
                    self.learner_on_connect_failed();
                }
            }
            PeerInput::FromLeader(item) => {
                if let RoleState::Learning(_) = self.role {
                    self.learner_on_item(item);
                }
            }
            PeerInput::LeaderDisconnected => {
                if let RoleState::Learning(_) = self.role {
                    self.learner_on_disconnected();
                }
            }
            PeerInput::SnapshotStep => {
                self.server
                    .handle(ServerInput::SnapshotStep, self.now_ms as i64);
                self.route_server_actions();
            }
            PeerInput::SnapChunkWritten { link } => self.snap_chunk_written(link),
            PeerInput::TxnLogRead { link, txns } => self.txn_log_read(link, txns),
            PeerInput::SnapshotProgress { bytes, znodes } => {
                if let RoleState::Learning(_) = self.role {
                    self.learner_on_snapshot_progress(bytes, znodes);
                }
            }
        }
        if std::mem::take(&mut self.abdicate) && matches!(self.role, RoleState::Leading(_)) {
            tracing::warn!("leader stepping down: zxid counter exhausted, a new epoch is needed");
            self.go_looking();
        }
    }

    // ----- election ------------------------------------------------------------------------------

    pub(crate) fn local_state(&self) -> LocalState {
        LocalState {
            last_logged_zxid: self.last_logged,
            current_epoch: i64::from(self.current_epoch.0),
        }
    }

    fn start_election(&mut self) {
        self.set_role_name(PeerRole::Looking);
        let out = self.election.start(self.now_ms, self.local_state());
        self.perform_election(out);
    }

    pub(crate) fn perform_election(&mut self, out: crate::zab::election::Outbox) {
        // A newer configuration restarts the election: a verdict later in the same outbox was
        // reached under the old one and is dropped (Java shuts that election down).
        let mut restarted = false;
        for action in out.actions {
            match action {
                ElectionAction::Send { to, notification } => {
                    self.actions.push(PeerAction::ElectionSend {
                        to,
                        payload: notification.to_bytes(),
                    })
                }
                ElectionAction::Broadcast { to, notification } => {
                    let payload = notification.to_bytes();
                    for sid in to {
                        self.actions.push(PeerAction::ElectionSend {
                            to: sid,
                            payload: payload.clone(),
                        });
                    }
                }
                ElectionAction::Elected(_) if restarted => {}
                ElectionAction::Elected(elected) => {
                    tracing::info!(
                        "election over: leader {} (zxid {}, round {}), this server {:?}",
                        elected.leader,
                        elected.zxid,
                        elected.election_epoch,
                        elected.role
                    );
                    if self.removed {
                        // Out of the configuration: no role until a configuration names this
                        // server again (or a restart); look again later.
                        for link in std::mem::take(&mut self.waiting_links).into_keys() {
                            self.actions.push(PeerAction::CloseLearner { link });
                        }
                        self.election_resume_at = Some(self.now_ms + REMOVED_RELOOK_MS);
                        continue;
                    }
                    self.stats.elections += 1;
                    let waiting = std::mem::take(&mut self.waiting_links);
                    match elected.role {
                        Role::Leading => {
                            self.become_leader();
                            for (link, (_, items)) in waiting {
                                self.leader_on_connect(link);
                                for item in items {
                                    if matches!(self.role, RoleState::Leading(_)) {
                                        self.leader_on_item(link, item);
                                    }
                                }
                            }
                        }
                        Role::Following | Role::Observing => {
                            for link in waiting.into_keys() {
                                self.close_learner(link);
                            }
                            self.become_learner(elected.leader, elected.role == Role::Observing);
                        }
                    }
                }
                ElectionAction::NewerConfig { from, config, .. } => {
                    restarted |= self.on_newer_config(from, &config);
                }
                ElectionAction::PeerLooking { .. } => {}
            }
        }
    }

    pub(crate) fn set_role_name(&mut self, role: PeerRole) {
        if self.role_name != role {
            self.role_name = role;
            self.actions.push(PeerAction::RoleChanged(role));
        }
    }

    /// Ends the current role and starts an election (`QuorumPeer.run`'s loop going back to LOOKING).
    pub(crate) fn go_looking(&mut self) {
        let observer_delay = matches!(&self.role, RoleState::Learning(l) if l.observer);
        // An observer that was serving keeps serving reads while it looks for a leader again.
        // (A removed observer is no observer any more: it stops serving.)
        let detach = observer_delay
            && self.serving
            && self.cfg.observer_serves_detached
            && self.cfg.is_observer();
        match std::mem::replace(&mut self.role, RoleState::Looking) {
            RoleState::Leading(leader) => {
                for link in leader.links() {
                    self.close_learner(link);
                }
            }
            RoleState::Learning(learner) => {
                for link in learner.om.links() {
                    self.close_learner(link);
                }
                self.actions.push(PeerAction::CloseLeader);
            }
            RoleState::Looking => {}
        }
        // Whatever served learners in the old role is gone with it.
        self.link_states.clear();
        if detach {
            if !self.detached {
                tracing::warn!(
                    "observer lost its leader; serving reads at zxid {} until it syncs again",
                    Zxid(self.server.tree().last_processed_zxid())
                );
            }
            self.detached = true;
            self.close_busy_connections();
        } else {
            self.detached = false;
            self.stop_serving();
            self.fast_forward();
        }
        self.set_role_name(PeerRole::Looking);
        if let Some(designated) = self.handoff.take() {
            if self.take_designated_role(designated) {
                return;
            }
        }
        if observer_delay && self.cfg.observer_election_delay_ms > 0 {
            // Observer.shutdown: sleep a random time in [0, observer.election.DelayMs) so a fleet of
            // observers does not stampede the next leader.
            let delay = self.rng.below(self.cfg.observer_election_delay_ms);
            self.election_resume_at = Some(self.now_ms + delay);
        } else {
            self.start_election();
        }
    }

    /// A LOOKING server adopted a configuration with other members: a new round over it.
    pub(crate) fn restart_election_after_reconfig(&mut self) {
        if self.election_resume_at.is_none() {
            self.start_election();
        }
    }

    /// Applies logged but unapplied txns, so the tree reflects the whole log again.
    fn fast_forward(&mut self) {
        let pending = std::mem::take(&mut self.unapplied);
        let (mut tree, sessions, _) = self.take_server_parts();
        let mut sessions: std::collections::HashMap<SessionId, i32> =
            sessions.into_iter().collect();
        for (zxid, bytes) in pending {
            match TxnEntry::decode(&bytes) {
                Ok(entry) => {
                    track_sessions(&mut sessions, &entry.header, &entry.txn);
                    let _ = tree.apply_txn(&entry.header, &entry.txn);
                    if self.committed_log.max_zxid().is_none_or(|m| zxid > m) {
                        self.committed_log.push(zxid, std::sync::Arc::from(bytes));
                    }
                }
                Err(e) => tracing::error!("logged txn {zxid} does not decode: {e}"),
            }
        }
        let mut sessions: Vec<_> = sessions.into_iter().collect();
        sessions.sort();
        let last = Zxid(tree.last_processed_zxid());
        self.server = build_server(
            &self.cfg,
            Mode::Standalone,
            tree,
            &sessions,
            last,
            self.now_ms,
        );
    }

    /// Moves the database out of the server (leaving an empty placeholder behind).
    pub(crate) fn take_server_parts(&mut self) -> (DataTree, Vec<(SessionId, i32)>, Zxid) {
        let placeholder = build_server(
            &self.cfg,
            Mode::Standalone,
            DataTree::new(self.cfg.server.prep.extended_types),
            &[],
            Zxid::ZERO,
            self.now_ms,
        );
        std::mem::replace(&mut self.server, placeholder).into_parts()
    }

    /// Rebuilds the server in `mode` over the same database.
    pub(crate) fn rebuild_server(&mut self, mode: Mode) {
        let (tree, sessions, last) = self.take_server_parts();
        self.server = build_server(&self.cfg, mode, tree, &sessions, last, self.now_ms);
    }

    /// Replaces the database with a snapshot body received by SNAP.
    pub(crate) fn install_snapshot_db(&mut self, zxid: Zxid, body: &[u8]) -> bool {
        match read_snapshot_blob(body, self.cfg.server.prep.extended_types) {
            Ok((mut tree, sessions)) => {
                tree.set_last_processed_zxid(zxid.0);
                let mode = self.server.mode();
                self.server = build_server(&self.cfg, mode, tree, &sessions, zxid, self.now_ms);
                self.unapplied.clear();
                // The log must stay contiguous up to the tree: what came before the snapshot is gone.
                self.committed_log.clear();
                true
            }
            Err(e) => {
                tracing::error!("the leader's snapshot at {zxid} does not decode: {e}");
                false
            }
        }
    }

    /// Closes the connections with requests in flight (a detached observer cannot complete them); the
    /// others keep reading.
    fn close_busy_connections(&mut self) {
        // A connect waiting for its createSession commit or its revalidation counts: its answer
        // went with the leader, and without the close its client would wait for a reply that never
        // comes instead of retrying (here once synced again, or at another server).
        for conn in self.server.connections_awaiting_leader() {
            self.server.close_connection(conn);
        }
        self.route_server_actions();
    }

    /// A request that needs the leader while there is none: its client's connection closes (the
    /// client retries, here once synced again, or at another server).
    pub(crate) fn refuse_session_request(&mut self, session: SessionId) {
        if let Some(conn) = self.server.conn_of_session(session) {
            self.server.close_connection(conn);
            // Sent by the next route (this runs inside one).
            let actions = self.server.take_actions();
            for a in actions {
                self.actions.push(PeerAction::Client(a));
            }
        }
    }

    /// Closes every client connection and stops serving (`ZooKeeperServer.shutdown` on role change).
    pub(crate) fn stop_serving(&mut self) {
        self.detached = false;
        if !self.serving {
            return;
        }
        self.serving = false;
        let conns: Vec<_> = self.server.connections().map(|c| c.0).collect();
        for conn in conns {
            self.actions
                .push(PeerAction::Client(ServerAction::Close { conn }));
        }
    }

    // ----- clients -------------------------------------------------------------------------------

    fn on_client(&mut self, input: ServerInput) {
        let refuse = !self.serving
            || (!self.cfg.leader_serves && matches!(self.role, RoleState::Leading(_)));
        if refuse {
            // ZooKeeper accepts the socket but refuses the session while it is not running
            // ("ZooKeeperServer not running"): close at once so the client tries another server.
            if let ServerInput::Connect { conn, .. } = input {
                self.actions
                    .push(PeerAction::Client(ServerAction::Close { conn }));
            }
            return;
        }
        if let ServerInput::Request {
            request: crate::proto::client::Request::Reconfig(_),
            ..
        } = &input
        {
            self.refresh_reconfig_context();
        }
        self.server.handle(input, self.now_ms as i64);
        self.route_server_actions();
    }

    /// Routes the server state machine's actions: client ones to the driver, quorum ones to the role.
    pub(crate) fn route_server_actions(&mut self) {
        let actions = self.server.take_actions();
        for action in actions {
            match action {
                ServerAction::Log { zxid, entry } => self.leader_propose(zxid, entry),
                ServerAction::Forward { request, auth_ids } => {
                    self.learner_forward(request, auth_ids)
                }
                ServerAction::Revalidate { session, timeout } => {
                    self.learner_revalidate(session, timeout)
                }
                ServerAction::RevalidateReply {
                    learner,
                    session,
                    valid,
                } => self.leader_revalidate_reply(learner, session, valid),
                ServerAction::SyncReply { learner } => self.leader_sync_reply(learner),
                ServerAction::ZxidExhausted => self.abdicate = true,
                other => self.actions.push(PeerAction::Client(other)),
            }
        }
    }

    /// Applies a committed txn to the server (a learner's commit path) and remembers it for DIFFs.
    pub(crate) fn apply_committed(
        &mut self,
        zxid: Zxid,
        entry: &[u8],
        header: TxnHeader,
        txn: Txn,
    ) {
        if self.committed_log.max_zxid().is_none_or(|m| zxid > m) {
            self.committed_log.push(zxid, std::sync::Arc::from(entry));
        }
        self.server
            .handle(ServerInput::Committed { header, txn }, self.now_ms as i64);
        self.route_server_actions();
    }

    // ----- time ----------------------------------------------------------------------------------

    fn on_tick(&mut self) {
        // Links held while looking give up after initLimit, as the learner's own read timeout would.
        let limit = self.ticks(self.cfg.init_limit);
        let now = self.now_ms;
        let stale: Vec<LinkId> = self
            .waiting_links
            .iter()
            .filter(|(_, (since, _))| now.saturating_sub(*since) > limit)
            .map(|(l, _)| *l)
            .collect();
        for link in stale {
            self.waiting_links.remove(&link);
            self.close_learner(link);
        }
        if let Some(at) = self.election_resume_at {
            if self.now_ms >= at {
                self.election_resume_at = None;
                self.start_election();
            }
        }
        let out = self.election.tick(self.now_ms);
        self.perform_election(out);
        match &self.role {
            RoleState::Leading(_) => self.leader_on_tick(),
            RoleState::Learning(_) => self.learner_on_tick(),
            RoleState::Looking => {}
        }
        if self.serving {
            self.server.handle(ServerInput::Tick, self.now_ms as i64);
            self.route_server_actions();
        }
    }

    /// The election's view of this server's state, for its answers to looking peers.
    pub fn server_state(&self) -> ServerState {
        self.election.state()
    }

    /// `LearnerHandler.syncFollower` + `startForwarding` + NEWLEADER, for the leader and for a follower
    /// serving observers: DIFF/TRUNC with the committed txns the learner misses (PROPOSAL + COMMIT
    /// pairs) or SNAP with this server's tree (streamed, see `zab::learner_link`), then `in_flight`
    /// proposals, then NEWLEADER of `epoch`. Returns [`SyncQueued::Refused`], having sent nothing, when
    /// the sync throttle refuses a non-`essential` (observer) learner; the caller then closes its link.
    /// Returns [`SyncQueued::AwaitTxnLog`], having sent nothing, when a learner behind the committed
    /// log is to be tried with the on-disk txn log (rule 5): the caller calls this again for the link
    /// once [`PeerInput::TxnLogRead`] answered (`Peer::txn_log_read` routes it), and the decision is
    /// then made against the committed log of that moment.
    pub(crate) fn queue_sync(
        &mut self,
        link: LinkId,
        peer_last: Zxid,
        in_flight: &[(Zxid, std::sync::Arc<[u8]>)],
        epoch: Epoch,
        essential: bool,
        newleader_config: Vec<u8>,
    ) -> SyncQueued {
        use crate::proto::quorum::PacketType;
        use crate::zab::learner_link::{SyncKind, TxnLogRead};
        use crate::zab::learner_sync::{plan_sync, plan_txn_log_sync, wants_txn_log, SyncPlan};
        let last_processed = Zxid(self.server.tree().last_processed_zxid());
        let mut plan = plan_sync(peer_last, last_processed, &self.committed_log, false);
        let read = self
            .link_states
            .get_mut(&link)
            .and_then(|s| s.txn_log.take());
        let mut disk = Vec::new();
        let factor = self.cfg.snapshot_size_factor;
        if plan == SyncPlan::Snap
            && wants_txn_log(peer_last, last_processed, &self.committed_log, factor)
        {
            match read {
                Some(TxnLogRead::Answered { txns: Some(txns) }) => {
                    match plan_txn_log_sync(
                        peer_last,
                        last_processed,
                        &self.committed_log,
                        &txns,
                        self.cfg.epoch_start_counter,
                    ) {
                        Some((p, _)) => {
                            tracing::info!(
                                "using the txn log and the committed log for the learner on link \
                                 {link} ({} txns from disk)",
                                txns.len()
                            );
                            plan = p;
                            disk = txns;
                        }
                        None => tracing::info!(
                            "gap between the txn log read for link {link} and the committed log \
                             (from {:?}): SNAP",
                            self.committed_log.min_zxid()
                        ),
                    }
                }
                Some(TxnLogRead::Answered { txns: None }) => tracing::info!(
                    "the txn log cannot serve the learner on link {link} (last zxid {peer_last}): SNAP"
                ),
                Some(TxnLogRead::Requested { .. }) | None => {
                    if let Some(state) = self.link_states.get_mut(&link) {
                        state.txn_log = Some(TxnLogRead::Requested { peer_last });
                        // Java reads while holding the committed log still; here commits go on
                        // during the read, so it goes up to everything applied now: the txns still
                        // connect unless the committed log moves a whole commitLogCount meanwhile.
                        self.actions.push(PeerAction::ReadTxnLog {
                            link,
                            after: peer_last,
                            until: last_processed,
                            size_factor: factor,
                        });
                        return SyncQueued::AwaitTxnLog;
                    }
                }
            }
        }
        let kind = match plan {
            SyncPlan::Snap => SyncKind::Snap,
            SyncPlan::Diff { .. } | SyncPlan::Trunc { .. } => SyncKind::Diff,
        };
        if !self.begin_sync(link, kind, essential) {
            return SyncQueued::Refused;
        }
        tracing::info!(
            "syncing learner on link {link} (last zxid {peer_last}, ours {last_processed}): {plan:?}"
        );
        let after = match plan {
            SyncPlan::Snap => {
                self.stats.snap_syncs += 1;
                self.start_snap_stream(link);
                None
            }
            SyncPlan::Diff { zxid, after } => {
                self.stats.diff_syncs += 1;
                if !disk.is_empty() {
                    self.stats.txn_log_syncs += 1;
                }
                self.link_send(link, QuorumPacket::new(PacketType::Diff, zxid.0));
                Some(after)
            }
            SyncPlan::Trunc { zxid, after } => {
                self.stats.trunc_syncs += 1;
                self.link_send(link, QuorumPacket::new(PacketType::Trunc, zxid.0));
                Some(after)
            }
        };
        let mut packets = Vec::new();
        if let Some(after) = after {
            // Rule 5: the txns from disk first, then the committed log after the last of them
            // (`queueCommittedProposals` over the txn log, then over the committed log).
            let after = disk.last().map_or(after, |d| d.0);
            for (zxid, entry) in disk
                .iter()
                .map(|(z, e)| (*z, e))
                .chain(self.committed_log.after(after))
            {
                packets.push(QuorumPacket::with_data(
                    PacketType::Proposal,
                    zxid.0,
                    entry.to_vec(),
                ));
                packets.push(QuorumPacket::new(PacketType::Commit, zxid.0));
            }
        }
        for (zxid, entry) in in_flight {
            packets.push(QuorumPacket::with_data(
                PacketType::Proposal,
                zxid.0,
                entry.to_vec(),
            ));
        }
        packets.push(QuorumPacket::with_data(
            PacketType::NewLeader,
            Zxid::new(epoch, 0).0,
            newleader_config,
        ));
        for packet in packets {
            self.link_send(link, packet);
        }
        SyncQueued::Done
    }

    /// The driver answered a [`PeerAction::ReadTxnLog`]: the link's sync continues (leader or observer
    /// master), unless the link is gone or no longer waits.
    fn txn_log_read(&mut self, link: LinkId, txns: Option<Vec<(Zxid, std::sync::Arc<[u8]>)>>) {
        use crate::zab::learner_link::TxnLogRead;
        let Some(state) = self.link_states.get_mut(&link) else {
            return;
        };
        let Some(TxnLogRead::Requested { peer_last }) = state.txn_log.take() else {
            return;
        };
        state.txn_log = Some(TxnLogRead::Answered { txns });
        if self.om_is_link(link) {
            self.om_resume_sync(link, peer_last);
        } else if let RoleState::Leading(_) = self.role {
            self.leader_resume_sync(link);
        }
    }

    /// `tickTime × n` in ms.
    pub(crate) fn ticks(&self, n: u64) -> u64 {
        self.cfg.tick_ms.saturating_mul(n)
    }
}

/// Keeps a session map in step with txns applied outside the server (fast-forward, recovery).
pub(crate) fn track_sessions(
    sessions: &mut std::collections::HashMap<SessionId, i32>,
    header: &TxnHeader,
    txn: &Txn,
) {
    match txn {
        Txn::CreateSession { timeout } => {
            sessions.insert(SessionId(header.client_id), *timeout);
        }
        Txn::CloseSession { .. } => {
            sessions.remove(&SessionId(header.client_id));
        }
        _ => {}
    }
}

/// A committed log over the last recovered txns (those at or below the database's last zxid).
fn seed_committed_log(count: usize, recent: Vec<(Zxid, Vec<u8>)>, last: Zxid) -> CommittedLog {
    let mut log = CommittedLog::new(count);
    for (zxid, bytes) in recent {
        if zxid <= last && log.max_zxid().is_none_or(|m| zxid > m) {
            log.push(zxid, std::sync::Arc::from(bytes));
        }
    }
    log
}

fn build_server(
    cfg: &PeerConfig,
    mode: Mode,
    mut tree: DataTree,
    sessions: &[(SessionId, i32)],
    last: Zxid,
    now_ms: u64,
) -> ZkServer {
    // ZKDatabase.initConfigInZKDatabase: /zookeeper/config holds the committed configuration text on
    // every member (a local, txn-less update; the digest leaves /zookeeper out).
    if !cfg.config_text.is_empty() {
        let _ = tree.set_config(&cfg.config_text, cfg.verifier.version(), now_ms as i64);
    }
    let mut settings = cfg.server.clone();
    settings.server_id = cfg.my_id;
    settings.mode = mode;
    ZkServer::new(settings, tree, sessions, last, now_ms as i64)
}
