//! A deterministic simulator of a whole ensemble: real [`Peer`]s (election, discovery, learner sync,
//! broadcast, the server state machine inside) over a simulated network, simulated disks and a virtual
//! clock, with crashes, restarts, partitions and message delays, plus simulated clients writing through
//! every server. One seed reproduces a run exactly.
//!
//! A run has a **safety phase** (faults on, invariants checked after every event) and a **liveness phase**
//! (every fault healed, every node up: the ensemble must elect, sync everyone, accept a write through
//! every server, and end with identical trees).
//!
//! Invariant checkers (each names the guarantee it checks):
//! - *one established leader per epoch* (ZAB's primary-uniqueness);
//! - *committed prefixes agree*: a zxid applied on two servers carries the same txn;
//! - *applied in order*: each incarnation of a server applies strictly increasing zxids;
//! - *acknowledged writes survive*: every create a client saw succeed exists on every server at the end,
//!   whatever crashed in between (ZooKeeper's durability promise);
//! - *convergence*: after the liveness phase all servers have the same last zxid and tree digest;
//! - *observers never vote or ack*: no ACK or FOLLOWERINFO leaves an observer, none of its votes
//!   counts;
//! - *synced before serving* (ZOOKEEPER-3500): a learner that gets UPTODATE has applied everything its
//!   learner master had committed when its sync began.
//!
//! Quorum packets go through the real stream codec (encode, then [`QuorumStreamDecoder`]) so the codec
//! is exercised too. Disks: a log (records survive a crash only once fsynced), epoch files and snapshots
//! (durable when written).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use crate::ids::{Epoch, ServerId, SessionId, Zxid};
use crate::jute::{JuteReader, Record};
use crate::proto::client::{
    decode_reply, ConnectRequest, ConnectResponse, CreateRequest, Request, SetDataRequest,
};
use crate::proto::quorum::{PacketType, QuorumPacket};
use crate::proto::quorum_stream::{encode_packet, QuorumItem, QuorumStreamDecoder};
use crate::proto::{Acl, Id, OpCode, Txn, TxnEntry};
use crate::server::standalone::{
    read_snapshot_blob, Action as ServerAction, ConnId, Input as ServerInput, Mode, Settings,
};
use crate::session::SessionConfig;
use crate::tree::prep::PrepConfig;
use crate::tree::DataTree;
use crate::zab::peer::{
    EpochFile, LinkId, Peer, PeerAction, PeerConfig, PeerDb, PeerInput, PeerRole,
};
use crate::zab::quorum::{QuorumHierarchical, QuorumVerifier};
use crate::zab::rng::SplitMix64;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed everything derives from.
    pub seed: u64,
    /// Voters (ids 1..=voters).
    pub voters: u64,
    /// Observers (ids after the voters).
    pub observers: u64,
    /// Virtual ms of the safety phase.
    pub safety_ms: u64,
    /// Virtual ms the liveness phase may take.
    pub liveness_ms: u64,
    /// Whether crashes and partitions happen in the safety phase.
    pub faults: bool,
    /// Committed txns a leader keeps for DIFF (small values force SNAP syncs).
    pub commit_log_count: usize,
    /// Snapshot every about this many txns.
    pub snap_count: u64,
    /// Where each epoch's zxid counter starts (near `u32::MAX` to exercise counter exhaustion).
    pub epoch_start_counter: u32,
    /// Observers sync from followers (`observerMasterPort`) instead of the leader.
    pub observer_master: bool,
    /// Hierarchical quorums (`group.N`): the voters dealt into three groups.
    pub hierarchical: bool,
    /// `zookeeper.snapshotSizeFactor` on every server: learners behind the committed log are synced
    /// from the simulated txn log while it is at most this times the newest snapshot (0: unlimited,
    /// negative: never).
    pub snapshot_size_factor: f64,
    /// `leader.maxConcurrentSnapSyncs` on every server.
    pub max_concurrent_snap_syncs: usize,
    /// `leader.maxConcurrentDiffSyncs` on every server.
    pub max_concurrent_diff_syncs: usize,
    /// Bytes per chunk of a streamed SNAP (small, so txns commit between the chunks of one snapshot).
    pub snap_chunk_bytes: usize,
    /// A planned outage of the last server: it goes down at the first virtual ms and comes back at the
    /// second, then syncs the backlog while writes go on (even in a run without faults).
    pub outage_ms: Option<(u64, u64)>,
    /// Servers outside the initial configuration (ids after the observers), running from the start
    /// with the initial configuration plus their own line (`spare_role`), ready to be added by
    /// reconfig.
    pub spares: u64,
    /// Whether spares name themselves observers (else participants).
    pub spare_observers: bool,
    /// Scripted partitions: from `.0` to `.1` ms the servers in `.2` are cut off from the others.
    pub isolations: Vec<(u64, u64, Vec<u64>)>,
    /// When reconfig number `.0` is first proposed (the leader's `ConfigSeen`, before its PROPOSAL
    /// packets leave), cut the servers in `.1` off for `.2` ms: they miss the proposal.
    pub isolate_on_proposal: Option<(usize, Vec<u64>, u64)>,
    /// Reconfigs a super-user client issues (`reconfigEnabled=true`, skipACL), each retried until it
    /// succeeds, in order.
    pub reconfigs: Vec<SimReconfig>,
}

/// One reconfig request of a simulation.
#[derive(Clone, Debug)]
pub struct SimReconfig {
    /// Not before this virtual time.
    pub at_ms: u64,
    /// `-add`: comma-separated `server.N=spec` entries (use [`ClusterSim::server_line`]).
    pub joining: Option<String>,
    /// `-remove`: comma-separated sids.
    pub leaving: Option<String>,
}

impl SimConfig {
    /// A default run for a seed: 3 voters and 1 observer, 20 s of faults, 30 s to recover.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            voters: 3,
            observers: 1,
            safety_ms: 20_000,
            liveness_ms: 30_000,
            faults: true,
            commit_log_count: 50,
            snap_count: 100,
            epoch_start_counter: 0,
            observer_master: false,
            hierarchical: false,
            // Seeds rotate between SNAP only, the txn log within ZooKeeper's default size limit and
            // the txn log without a limit (a factor of 0), which serves every far-behind learner it can.
            snapshot_size_factor: [-1.0, 0.33, 0.0][(seed % 3) as usize],
            max_concurrent_snap_syncs: 10,
            max_concurrent_diff_syncs: 100,
            snap_chunk_bytes: 200,
            outage_ms: None,
            spares: 0,
            spare_observers: true,
            isolations: Vec::new(),
            isolate_on_proposal: None,
            reconfigs: Vec::new(),
        }
    }
}

/// A violated invariant or a failed liveness check.
#[derive(Clone, Debug)]
pub struct SimFailure {
    /// The seed.
    pub seed: u64,
    /// Virtual time.
    pub at_ms: u64,
    /// What went wrong.
    pub what: String,
    /// The last lines of the trace.
    pub trace_tail: Vec<String>,
    /// The whole trace kept (printed with `OUTPOST_SIM_TRACE=1`).
    pub trace_full: Vec<String>,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} failed at {} ms: {}",
            self.seed, self.at_ms, self.what
        )?;
        writeln!(
            f,
            "reproduce: OUTPOST_SIM_SEED={} cargo test -p outpost-core --test zab_cluster_sim -- --nocapture",
            self.seed
        )?;
        if std::env::var_os("OUTPOST_SIM_TRACE").is_some() {
            for line in &self.trace_full {
                writeln!(f, "  {line}")?;
            }
        }
        for line in &self.trace_tail {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// What a successful run saw.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// Writes clients saw acknowledged.
    pub acked_writes: u64,
    /// Leaders established (epochs).
    pub leaders: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// Partitions injected.
    pub partitions: u64,
    /// The final zxid.
    pub final_zxid: Zxid,
    /// SNAP / DIFF / TRUNC syncs served, summed over leaders.
    pub syncs: (u64, u64, u64),
    /// Observer connections a follower's observer-master port accepted.
    pub observer_master_links: u64,
    /// Observer syncs refused by the sync throttles, summed over servers.
    pub syncs_throttled: u64,
    /// DIFF syncs that sent txns from the txn log (rule 5), summed over servers.
    pub txn_log_syncs: u64,
    /// Snapshot chunks streamed (a SNAP is several when the tree outgrows `snap_chunk_bytes`).
    pub snap_chunks: u64,
    /// Learners that started serving, each checked against what its master had committed when its
    /// sync began.
    pub learners_checked_at_uptodate: u64,
    /// Reconfigs that succeeded.
    pub reconfigs: u64,
    /// Roles taken by a reconfig's hand-off (no election), summed over the servers' last incarnations.
    pub handoffs: u64,
    /// The committed configuration at the end (the text of the converged servers).
    pub final_config: String,
    /// Servers outside their own final configuration that still serve clients (a removed server
    /// restarted after its removal rejoins as a non-voting follower, as in ZooKeeper).
    pub serving_non_members: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    /// Bytes travelling to the leader end of a link.
    ToLeader,
    /// Bytes travelling to the learner end.
    ToLearner,
}

#[derive(Debug)]
enum Event {
    Election {
        from: u64,
        to: u64,
        payload: Vec<u8>,
    },
    LinkOpen {
        link: LinkId,
    },
    LinkBytes {
        link: LinkId,
        side: Side,
        bytes: Vec<u8>,
    },
    Fsync {
        node: u64,
        incarnation: u64,
    },
    Tick {
        node: u64,
        incarnation: u64,
    },
    /// The sender's driver wrote a snapshot chunk to the link (reported back to the sender).
    SnapChunkWritten {
        node: u64,
        incarnation: u64,
        link: LinkId,
    },
    TxnLogRead {
        node: u64,
        incarnation: u64,
        link: LinkId,
        txns: Option<Vec<(Zxid, std::sync::Arc<[u8]>)>>,
    },
    ClientStart,
    ClientWrite {
        client: u64,
    },
    Fault,
    /// A node's election transport learns whether it can reach a peer (a connect succeeded or failed).
    Reachability {
        node: u64,
        incarnation: u64,
        peer: u64,
        reachable: bool,
    },
    Restart {
        node: u64,
    },
    Outage {
        node: u64,
    },
    Heal,
    Reconfig,
    Isolate {
        nodes: Vec<u64>,
    },
    LinkClose {
        link: LinkId,
    },
    Rejoin,
}

struct Link {
    learner: u64,
    /// The server the learner connected to: the leader, or a follower serving observers.
    leader: u64,
    /// Made to an observer-master port.
    observer_master: bool,
    /// Incarnations of both ends when the link was made (a restart kills it).
    learner_inc: u64,
    leader_inc: u64,
    open: bool,
    last_delivery: BTreeMap<Side, u64>,
    decoders: BTreeMap<Side, QuorumStreamDecoder>,
}

#[derive(Default)]
struct Disk {
    log: Vec<(Zxid, Vec<u8>)>,
    durable_len: usize,
    accepted: Epoch,
    current: Epoch,
    snapshots: Vec<(Zxid, Vec<u8>)>,
    /// The committed configuration's text (the dynamic file), once a reconfig activated one.
    config: Option<Vec<u8>>,
}

struct Node {
    id: u64,
    peer: Option<Peer>,
    incarnation: u64,
    disk: Disk,
    fsync_pending: bool,
    /// The learner link this node uses to reach its leader.
    leader_link: Option<LinkId>,
    /// Applied zxids of this incarnation, for the in-order check.
    last_applied: Zxid,
    /// The election transport's unreachable servers (sends that found the peer down or cut off).
    unreachable: BTreeSet<u64>,
    /// The pieces of the snapshot being written (a temp file: lost in a crash).
    snapshot_pieces: Vec<u8>,
}

struct Client {
    node: u64,
    conn: ConnId,
    session: Option<SessionId>,
    next_xid: i32,
    pending: HashMap<i32, (OpCode, String)>,
    written: u64,
    /// The super-user client that issues the next reconfig.
    admin: bool,
}

/// The simulator.
pub struct ClusterSim {
    cfg: SimConfig,
    rng: SplitMix64,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Event>,
    nodes: BTreeMap<u64, Node>,
    links: BTreeMap<LinkId, Link>,
    next_link: LinkId,
    /// Partition: node → side. Nodes on different sides cannot talk.
    partition: BTreeMap<u64, u8>,
    clients: BTreeMap<u64, Client>,
    conn_owner: HashMap<(u64, ConnId), u64>,
    next_client: u64,
    next_conn: ConnId,
    /// zxid → (client_id, cxid, type) of the txn applied under it anywhere.
    committed: BTreeMap<Zxid, (i64, i32, i32)>,
    /// Epoch → the server established as its leader.
    established: BTreeMap<u32, u64>,
    acked_creates: BTreeSet<String>,
    /// Paths of every create applied (so committed) anywhere: committed means durable, acked or not.
    committed_creates: BTreeSet<String>,
    report: SimReport,
    trace: Vec<String>,
    /// Invariant violations seen while performing actions (reported after the event).
    violations: Vec<String>,
    liveness: bool,
    /// Writes acknowledged since the liveness phase began; once enough, clients stop writing so the
    /// ensemble can quiesce and be compared.
    liveness_acked: u64,
    /// Link → the zxid its learner master had committed when it began the learner's sync.
    sync_begin: HashMap<LinkId, Zxid>,
    /// The tree digest an established leader had at each zxid it was seen at.
    leader_digests: HashMap<Zxid, i64>,
    /// The next reconfig to issue (index into `cfg.reconfigs`) and whether one is in flight.
    next_reconfig: usize,
    reconfig_in_flight: bool,
    /// When the admin client of the reconfig in flight connected.
    reconfig_since: u64,
}

const NET_MIN_MS: u64 = 1;
const NET_MAX_MS: u64 = 15;

impl ClusterSim {
    /// A cluster of fresh servers.
    pub fn new(cfg: SimConfig) -> ClusterSim {
        let mut rng = SplitMix64::new(cfg.seed);
        let mut nodes = BTreeMap::new();
        for id in 1..=(cfg.voters + cfg.observers + cfg.spares) {
            nodes.insert(
                id,
                Node {
                    id,
                    peer: None,
                    incarnation: 0,
                    disk: Disk::default(),
                    fsync_pending: false,
                    leader_link: None,
                    last_applied: Zxid::NONE,
                    unreachable: BTreeSet::new(),
                    snapshot_pieces: Vec::new(),
                },
            );
        }
        let _ = rng.next_u64();
        ClusterSim {
            cfg,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            nodes,
            links: BTreeMap::new(),
            next_link: 1,
            partition: BTreeMap::new(),
            clients: BTreeMap::new(),
            conn_owner: HashMap::new(),
            next_client: 1,
            next_conn: 1,
            committed: BTreeMap::new(),
            established: BTreeMap::new(),
            acked_creates: BTreeSet::new(),
            committed_creates: BTreeSet::new(),
            report: SimReport::default(),
            trace: Vec::new(),
            violations: Vec::new(),
            liveness: false,
            liveness_acked: 0,
            sync_begin: HashMap::new(),
            leader_digests: HashMap::new(),
            next_reconfig: 0,
            reconfig_in_flight: false,
            reconfig_since: 0,
        }
    }

    /// The `server.N` line value the simulator gives server `id` with `role`.
    pub fn server_line(id: u64, role: &str) -> String {
        format!("sim{id}:2888:3888:{role};0.0.0.0:2181")
    }

    fn verifier(&self) -> QuorumVerifier {
        let voters = (1..=self.cfg.voters).map(ServerId);
        let observers = (self.cfg.voters + 1..=self.cfg.voters + self.cfg.observers).map(ServerId);
        if !self.cfg.hierarchical {
            return QuorumVerifier::majority(voters, observers);
        }
        // Voters dealt round robin into three groups (group.1, group.2, group.3), weight 1 each:
        // a quorum needs a weight majority in a majority of the groups, which is not a plain majority.
        let mut groups: BTreeMap<u64, BTreeSet<ServerId>> = BTreeMap::new();
        for v in 1..=self.cfg.voters {
            groups
                .entry((v - 1) % 3 + 1)
                .or_default()
                .insert(ServerId(v));
        }
        QuorumVerifier::Hierarchical(
            QuorumHierarchical::new(voters, observers, groups, &BTreeMap::new())
                .expect("every voter is in one group"),
        )
    }

    /// The initial configuration text; a spare adds its own line.
    fn config_text(&self, me: u64) -> Vec<u8> {
        let mut text = String::new();
        for id in 1..=(self.cfg.voters + self.cfg.observers + self.cfg.spares) {
            let spare = id > self.cfg.voters + self.cfg.observers;
            if spare && id != me {
                continue;
            }
            let role = if id <= self.cfg.voters || (spare && !self.cfg.spare_observers) {
                "participant"
            } else {
                "observer"
            };
            text.push_str(&format!("server.{id}={}\n", Self::server_line(id, role)));
        }
        text.push_str("version=0");
        text.into_bytes()
    }

    fn peer_config(&self, id: u64) -> PeerConfig {
        // A configuration a reconfig activated was persisted (the dynamic file); else the initial one.
        let spare = id > self.cfg.voters + self.cfg.observers;
        let (verifier, config_text) = match self.nodes.get(&id).and_then(|n| n.disk.config.clone())
        {
            Some(text) => {
                let m = crate::zab::reconfig::Membership::from_text(&text)
                    .expect("persisted configurations parse");
                (m.verifier, text)
            }
            None if spare => {
                let text = self.config_text(id);
                let m = crate::zab::reconfig::Membership::from_text(&text)
                    .expect("the initial configuration parses");
                (m.verifier, text)
            }
            None => (self.verifier(), self.config_text(id)),
        };
        let mut prep = PrepConfig::default();
        if !self.cfg.reconfigs.is_empty() {
            prep.reconfig_enabled = true;
            prep.auth.skip_acl = true;
        }
        PeerConfig {
            my_id: ServerId(id),
            verifier,
            config_text,
            standalone_enabled: true,
            tick_ms: 100,
            init_limit: 10,
            sync_limit: 5,
            commit_log_count: self.cfg.commit_log_count,
            snapshot_size_factor: self.cfg.snapshot_size_factor,
            observer_reconnect_delay_ms: 50,
            observer_election_delay_ms: 100,
            observer_sync_enabled: true,
            observer_master: self.cfg.observer_master,
            observer_serves_detached: true,
            // Half the seeds run outpost's early finalize, half Java's full wait.
            election_finalize_early: self.cfg.seed.is_multiple_of(2),
            leader_serves: true,
            max_concurrent_snap_syncs: self.cfg.max_concurrent_snap_syncs,
            max_concurrent_diff_syncs: self.cfg.max_concurrent_diff_syncs,
            snap_chunk_bytes: self.cfg.snap_chunk_bytes,
            epoch_start_counter: self.cfg.epoch_start_counter,
            server: Settings {
                server_id: ServerId(id),
                session: SessionConfig::from_tick(100),
                prep,
                snap_count: self.cfg.snap_count,
                snapshot_seed: self.cfg.seed ^ id,
                snapshot_chunk_bytes: 64 << 20,
                container_check_interval_ms: 60_000,
                emit_committed: true,
                mode: Mode::Standalone,
                local_sessions: Default::default(),
            },
            seed: self.cfg.seed.wrapping_mul(31).wrapping_add(id),
        }
    }

    fn schedule(&mut self, at: u64, ev: Event) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn log(&mut self, line: String) {
        self.trace.push(format!("{:>7} {line}", self.now));
        if self.trace.len() > 40_000 {
            self.trace.drain(..20_000);
        }
    }

    fn fail(&self, what: String) -> SimFailure {
        let n = self.trace.len();
        SimFailure {
            seed: self.cfg.seed,
            at_ms: self.now,
            what,
            trace_tail: self.trace[n.saturating_sub(60)..].to_vec(),
            trace_full: self.trace.clone(),
        }
    }

    fn can_talk(&self, a: u64, b: u64) -> bool {
        let up = |n: u64| self.nodes.get(&n).is_some_and(|x| x.peer.is_some());
        up(a) && up(b) && self.partition.get(&a) == self.partition.get(&b)
    }

    fn latency(&mut self) -> u64 {
        self.rng.range(NET_MIN_MS, NET_MAX_MS + 1)
    }

    // ----- running -------------------------------------------------------------------------------

    /// Runs the safety phase then the liveness phase.
    pub fn run(mut self) -> Result<SimReport, SimFailure> {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        if let (Some((down, up)), Some(&last)) = (self.cfg.outage_ms, ids.last()) {
            self.schedule(down, Event::Outage { node: last });
            self.schedule(up, Event::Restart { node: last });
        }
        for id in ids {
            self.start_node(id);
        }
        self.schedule(300, Event::ClientStart);
        if self.cfg.faults {
            self.schedule(1_000, Event::Fault);
        }
        for (from, to, nodes) in self.cfg.isolations.clone() {
            self.schedule(from, Event::Isolate { nodes });
            self.schedule(to, Event::Rejoin);
        }
        if !self.cfg.reconfigs.is_empty() {
            let at = self.cfg.reconfigs[0].at_ms;
            self.schedule(at, Event::Reconfig);
        }
        let end_safety = self.cfg.safety_ms;
        self.schedule(end_safety, Event::Heal);
        let deadline = end_safety + self.cfg.liveness_ms;
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            if at > deadline {
                break;
            }
            self.now = at;
            let ev = self.events.remove(&seq).expect("scheduled event");
            self.step(ev)?;
            if self.liveness && self.converged() {
                return self.finish();
            }
        }
        let missing: Vec<&String> = self
            .acked_creates
            .iter()
            .filter(|path| {
                self.nodes.values().any(|n| {
                    n.peer
                        .as_ref()
                        .is_some_and(|p| p.server().tree().node(path).is_none())
                })
            })
            .take(5)
            .collect();
        Err(self.fail(format!(
            "no convergence within the liveness phase (acked creates missing somewhere: {missing:?}):\n  {}",
            self.status_line()
        )))
    }

    fn status_line(&self) -> String {
        self.nodes
            .values()
            .map(|n| match &n.peer {
                Some(p) => format!(
                    "{}:{}{}@{} ({}; logged {} durable {:?})",
                    n.id,
                    p.role().mode_name(),
                    if p.is_serving() { "+" } else { "-" },
                    Zxid(p.server().tree().last_processed_zxid()),
                    p.debug_state(),
                    p.last_logged(),
                    n.disk
                        .log
                        .get(n.disk.durable_len.wrapping_sub(1))
                        .map(|(z, _)| *z),
                ),
                None => format!("{}:down", n.id),
            })
            .collect::<Vec<_>>()
            .join("\n  ")
    }

    fn start_node(&mut self, id: u64) {
        let cfg = self.peer_config(id);
        let node = self.nodes.get_mut(&id).expect("node");
        node.incarnation += 1;
        node.leader_link = None;
        node.fsync_pending = false;
        node.last_applied = Zxid::NONE;
        node.unreachable.clear();
        let db = recover(&node.disk, cfg.commit_log_count);
        let inc = node.incarnation;
        let mut peer = Peer::new(cfg, db, self.now);
        peer.start(self.now);
        node.peer = Some(peer);
        self.log(format!("node {id} starts (incarnation {inc})"));
        self.drain(id);
        let jitter = self.rng.below(20);
        self.schedule(
            self.now + jitter,
            Event::Tick {
                node: id,
                incarnation: inc,
            },
        );
    }

    fn crash(&mut self, id: u64) {
        let Some(node) = self.nodes.get_mut(&id) else {
            return;
        };
        let Some(peer) = node.peer.take() else {
            return;
        };
        self.report.syncs_throttled += peer.stats().syncs_throttled;
        self.report.txn_log_syncs += peer.stats().txn_log_syncs;
        // Unsynced log records are lost, and so is a snapshot still being written.
        node.disk.log.truncate(node.disk.durable_len);
        node.snapshot_pieces.clear();
        self.report.crashes += 1;
        self.log(format!("node {id} crashes"));
        let links: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.open && (l.learner == id || l.leader == id))
            .map(|(k, _)| *k)
            .collect();
        for link in links {
            self.break_link(link);
        }
        let conns: Vec<(u64, ConnId)> = self
            .conn_owner
            .keys()
            .filter(|(n, _)| *n == id)
            .copied()
            .collect();
        for key in conns {
            if let Some(client) = self.conn_owner.remove(&key) {
                self.clients.remove(&client);
            }
        }
    }

    fn break_link(&mut self, link: LinkId) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        if !l.open {
            return;
        }
        l.open = false;
        let (learner, leader, li, ld) = (l.learner, l.leader, l.learner_inc, l.leader_inc);
        if self.alive_inc(leader, ld) {
            self.input(leader, PeerInput::LearnerDisconnected { link });
        }
        if self.alive_inc(learner, li) && self.nodes[&learner].leader_link == Some(link) {
            self.nodes.get_mut(&learner).expect("node").leader_link = None;
            self.input(learner, PeerInput::LeaderDisconnected);
        }
    }

    fn alive_inc(&self, id: u64, inc: u64) -> bool {
        self.nodes
            .get(&id)
            .is_some_and(|n| n.peer.is_some() && n.incarnation == inc)
    }

    fn input(&mut self, id: u64, input: PeerInput) {
        let now = self.now;
        if let Some(peer) = self.nodes.get_mut(&id).and_then(|n| n.peer.as_mut()) {
            peer.handle(input, now);
        }
        self.drain(id);
        // An established leader's tree is exact at every zxid it reaches: remember its digest there.
        if let Some(p) = self.nodes.get(&id).and_then(|n| n.peer.as_ref()) {
            if p.role() == PeerRole::Leading && p.is_serving() {
                let tree = p.server().tree();
                self.leader_digests
                    .entry(Zxid(tree.last_processed_zxid()))
                    .or_insert(tree.digest());
            }
        }
    }

    fn step(&mut self, ev: Event) -> Result<(), SimFailure> {
        match ev {
            Event::Election { from, to, payload } => {
                if self.can_talk(from, to) {
                    self.input(
                        to,
                        PeerInput::Election {
                            from: ServerId(from),
                            payload,
                        },
                    );
                }
            }
            Event::LinkOpen { link } => {
                let (learner, leader, li, ld) = {
                    let l = &self.links[&link];
                    (l.learner, l.leader, l.learner_inc, l.leader_inc)
                };
                let ok = self.alive_inc(learner, li)
                    && self.alive_inc(leader, ld)
                    && self.can_talk(learner, leader);
                if self.nodes[&learner].leader_link != Some(link) {
                    return Ok(());
                }
                if ok {
                    let l = self.links.get_mut(&link).expect("link");
                    l.open = true;
                    let accepted = if l.observer_master {
                        self.report.observer_master_links += 1;
                        PeerInput::ObserverConnected { link }
                    } else {
                        PeerInput::LearnerConnected { link }
                    };
                    self.input(leader, accepted);
                    self.input(learner, PeerInput::LeaderConnected);
                } else if self.alive_inc(learner, li) {
                    self.nodes.get_mut(&learner).expect("node").leader_link = None;
                    self.input(learner, PeerInput::LeaderConnectFailed);
                }
            }
            Event::LinkBytes { link, side, bytes } => {
                let Some(l) = self.links.get_mut(&link) else {
                    return Ok(());
                };
                if !l.open {
                    return Ok(());
                }
                let (to, inc) = match side {
                    Side::ToLeader => (l.leader, l.leader_inc),
                    Side::ToLearner => (l.learner, l.learner_inc),
                };
                let decoder = l.decoders.get_mut(&side).expect("decoder");
                decoder.push(&bytes);
                let mut items = Vec::new();
                loop {
                    match decoder.next_item() {
                        Ok(Some(item)) => items.push(item),
                        Ok(None) => break,
                        Err(e) => {
                            return Err(self.fail(format!(
                                "quorum stream on link {link} does not decode: {e}"
                            )))
                        }
                    }
                }
                let progress = decoder.snapshot_progress();
                if !self.alive_inc(to, inc) {
                    return Ok(());
                }
                for item in items {
                    if side == Side::ToLeader {
                        if let QuorumItem::Packet(p) = &item {
                            self.check_observer_packet(link, p)?;
                        }
                        self.input(to, PeerInput::FromLearner { link, item });
                    } else {
                        let uptodate = matches!(&item, QuorumItem::Packet(p)
                            if p.packet_type() == Some(PacketType::UpToDate));
                        self.input(to, PeerInput::FromLeader(item));
                        if uptodate {
                            self.check_synced_before_serving(to, link)?;
                        }
                    }
                    if !self.links.get(&link).is_some_and(|l| l.open) {
                        break;
                    }
                }
                if let (Side::ToLearner, Some((bytes, znodes))) = (side, progress) {
                    if self.links.get(&link).is_some_and(|l| l.open) {
                        self.input(to, PeerInput::SnapshotProgress { bytes, znodes });
                    }
                }
            }
            Event::Fsync { node, incarnation } => {
                if !self.alive_inc(node, incarnation) {
                    return Ok(());
                }
                let n = self.nodes.get_mut(&node).expect("node");
                n.fsync_pending = false;
                n.disk.durable_len = n.disk.log.len();
                if let Some((z, _)) = n.disk.log.last() {
                    let z = *z;
                    self.input(node, PeerInput::Durable(z));
                }
            }
            Event::Tick { node, incarnation } => {
                if !self.alive_inc(node, incarnation) {
                    return Ok(());
                }
                self.input(node, PeerInput::Tick);
                let snap = self.nodes[&node]
                    .peer
                    .as_ref()
                    .is_some_and(|p| p.snapshot_in_progress());
                if snap {
                    self.input(node, PeerInput::SnapshotStep);
                }
                self.schedule(self.now + 25, Event::Tick { node, incarnation });
            }
            Event::SnapChunkWritten {
                node,
                incarnation,
                link,
            } => {
                if self.alive_inc(node, incarnation) {
                    self.input(node, PeerInput::SnapChunkWritten { link });
                }
            }
            Event::TxnLogRead {
                node,
                incarnation,
                link,
                txns,
            } => {
                if self.alive_inc(node, incarnation) {
                    self.input(node, PeerInput::TxnLogRead { link, txns });
                }
            }
            Event::ClientStart => {
                self.start_client();
                let next = self.now + 150 + self.rng.below(300);
                self.schedule(next, Event::ClientStart);
            }
            Event::ClientWrite { client } => self.client_write(client),
            Event::Fault => {
                if !self.liveness {
                    self.inject_fault();
                    let next = self.now + 500 + self.rng.below(2_500);
                    self.schedule(next, Event::Fault);
                }
            }
            Event::Reachability {
                node,
                incarnation,
                peer,
                reachable,
            } => {
                if self.alive_inc(node, incarnation) {
                    let n = self.nodes.get_mut(&node).expect("node");
                    let changed = if reachable {
                        n.unreachable.remove(&peer)
                    } else {
                        n.unreachable.insert(peer)
                    };
                    if changed {
                        let set = n.unreachable.iter().map(|s| ServerId(*s)).collect();
                        self.input(node, PeerInput::ElectionUnreachable(set));
                    }
                }
            }
            Event::Outage { node } => self.crash(node),
            Event::Restart { node } => {
                if self.nodes[&node].peer.is_none() {
                    self.start_node(node);
                }
            }
            Event::Reconfig => self.issue_reconfig(),
            Event::Isolate { nodes } => self.isolate(&nodes),
            Event::LinkClose { link } => {
                if let Some(l) = self.links.get_mut(&link) {
                    if l.open {
                        l.open = false;
                        let (learner, li) = (l.learner, l.learner_inc);
                        if self.alive_inc(learner, li)
                            && self.nodes[&learner].leader_link == Some(link)
                        {
                            self.nodes.get_mut(&learner).expect("node").leader_link = None;
                            self.input(learner, PeerInput::LeaderDisconnected);
                        }
                    }
                }
            }
            Event::Rejoin => {
                self.log("scripted partition healed".into());
                self.partition.clear();
            }
            Event::Heal => {
                self.log("heal: liveness phase".into());
                self.liveness = true;
                self.partition.clear();
                let down: Vec<u64> = self
                    .nodes
                    .values()
                    .filter(|n| n.peer.is_none())
                    .map(|n| n.id)
                    .collect();
                for id in down {
                    self.start_node(id);
                }
            }
        }
        self.check_invariants()
    }

    fn inject_fault(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        match self.rng.below(3) {
            0 => {
                // One server crashes, or sometimes two at once (a rack losing power): correlated
                // crashes are what turn an acknowledged-but-unsynced txn into a lost one.
                let count = if self.rng.chance(30) { 2 } else { 1 };
                for _ in 0..count {
                    let id = ids[self.rng.below(ids.len() as u64) as usize];
                    if self.nodes[&id].peer.is_some() {
                        self.crash(id);
                        let back = self.now + 200 + self.rng.below(3_000);
                        self.schedule(back, Event::Restart { node: id });
                    }
                }
            }
            1 => {
                self.report.partitions += 1;
                self.partition.clear();
                for id in &ids {
                    let side = self.rng.below(2) as u8;
                    self.partition.insert(*id, side);
                }
                self.log(format!("partition {:?}", self.partition));
                self.break_crossing_links();
            }
            _ => {
                if !self.partition.is_empty() {
                    self.log("partition healed".into());
                }
                self.partition.clear();
            }
        }
    }

    fn isolate(&mut self, nodes: &[u64]) {
        self.partition.clear();
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            self.partition.insert(id, u8::from(nodes.contains(&id)));
        }
        self.log(format!("scripted partition {:?}", self.partition));
        self.break_crossing_links();
    }

    fn break_crossing_links(&mut self) {
        {
            {
                let broken: Vec<LinkId> = self
                    .links
                    .iter()
                    .filter(|(_, l)| {
                        l.open && self.partition.get(&l.learner) != self.partition.get(&l.leader)
                    })
                    .map(|(k, _)| *k)
                    .collect();
                for link in broken {
                    self.break_link(link);
                }
            }
        }
    }

    // ----- actions -------------------------------------------------------------------------------

    fn drain(&mut self, id: u64) {
        loop {
            let actions = match self.nodes.get_mut(&id).and_then(|n| n.peer.as_mut()) {
                Some(p) => p.take_actions(),
                None => return,
            };
            if actions.is_empty() {
                return;
            }
            for a in actions {
                self.perform(id, a);
            }
        }
    }

    fn send_bytes(&mut self, link: LinkId, side: Side, bytes: Vec<u8>) {
        let lat = self.latency();
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        if !l.open {
            return;
        }
        let last = l.last_delivery.get(&side).copied().unwrap_or(0);
        let at = (self.now + lat).max(last);
        l.last_delivery.insert(side, at);
        self.schedule(at, Event::LinkBytes { link, side, bytes });
    }

    fn perform(&mut self, id: u64, action: PeerAction) {
        match action {
            PeerAction::ElectionSend { to, payload } => {
                // The transport learns reachability from its connect attempts, a latency later.
                let reachable = self.can_talk(id, to.0);
                let known = self.nodes[&id].unreachable.contains(&to.0);
                if known == reachable {
                    let lat = self.latency();
                    let incarnation = self.nodes[&id].incarnation;
                    self.schedule(
                        self.now + lat,
                        Event::Reachability {
                            node: id,
                            incarnation,
                            peer: to.0,
                            reachable,
                        },
                    );
                }
                if reachable {
                    let lat = self.latency();
                    self.schedule(
                        self.now + lat,
                        Event::Election {
                            from: id,
                            to: to.0,
                            payload,
                        },
                    );
                }
            }
            PeerAction::ConnectLearnerMaster { server, delay_ms } => {
                self.open_link(id, server.0, delay_ms, true)
            }
            PeerAction::ConnectLeader { leader, delay_ms } => {
                self.open_link(id, leader.0, delay_ms, false)
            }
            PeerAction::SendLeader(packet) => {
                if let Some(link) = self.nodes[&id].leader_link {
                    if self.is_observer(id) {
                        let ty = packet.packet_type();
                        if matches!(ty, Some(PacketType::FollowerInfo)) {
                            self.violations
                                .push(format!("observer {id} sent FOLLOWERINFO"));
                        }
                    }
                    let mut bytes = Vec::new();
                    encode_packet(&packet, &mut bytes);
                    self.send_bytes(link, Side::ToLeader, bytes);
                }
            }
            PeerAction::CloseLeader => {
                if let Some(link) = self.nodes.get_mut(&id).expect("node").leader_link.take() {
                    if let Some(l) = self.links.get_mut(&link) {
                        if l.open {
                            l.open = false;
                            let (leader, ld) = (l.leader, l.leader_inc);
                            if self.alive_inc(leader, ld) {
                                self.input(leader, PeerInput::LearnerDisconnected { link });
                            }
                        }
                    }
                }
            }
            PeerAction::SendLearner { link, packet } => {
                if matches!(
                    packet.packet_type(),
                    Some(PacketType::Diff | PacketType::Trunc | PacketType::Snap)
                ) {
                    self.sync_begin.insert(link, Zxid(packet.zxid));
                }
                let mut bytes = Vec::new();
                encode_packet(&packet, &mut bytes);
                self.send_bytes(link, Side::ToLearner, bytes);
            }
            PeerAction::SendLearnerSnapshotChunk { link, chunk } => {
                self.report.snap_chunks += 1;
                self.send_bytes(link, Side::ToLearner, chunk);
                // The socket drains as the bytes reach the learner: report the chunk written then.
                let at = self
                    .links
                    .get(&link)
                    .and_then(|l| l.last_delivery.get(&Side::ToLearner).copied())
                    .unwrap_or(self.now);
                let incarnation = self.nodes[&id].incarnation;
                self.schedule(
                    at,
                    Event::SnapChunkWritten {
                        node: id,
                        incarnation,
                        link,
                    },
                );
            }
            PeerAction::CloseLearner { link } => {
                // Like the driver's writer: packets queued before the close are still delivered (a
                // stepping-down leader's last COMMITANDACTIVATE must reach its followers).
                let at = self.links.get(&link).map_or(self.now, |l| {
                    l.last_delivery
                        .get(&Side::ToLearner)
                        .copied()
                        .unwrap_or(0)
                        .max(self.now)
                });
                self.schedule(at, Event::LinkClose { link });
            }
            PeerAction::Log { zxid, entry } => {
                let node = self.nodes.get_mut(&id).expect("node");
                if let Some((last, _)) = node.disk.log.last() {
                    assert!(zxid > *last, "node {id}: log append {zxid} after {last}");
                }
                node.disk.log.push((zxid, entry));
                if !node.fsync_pending {
                    node.fsync_pending = true;
                    let inc = node.incarnation;
                    // Usually a few ms; sometimes a slow disk, which widens the window in which an
                    // unsynced record can be lost by a crash (and an early ACK would be caught).
                    let delay = if self.rng.chance(10) {
                        100 + self.rng.below(200)
                    } else {
                        1 + self.rng.below(8)
                    };
                    self.schedule(
                        self.now + delay,
                        Event::Fsync {
                            node: id,
                            incarnation: inc,
                        },
                    );
                }
            }
            PeerAction::WriteEpoch { file, epoch } => {
                let node = self.nodes.get_mut(&id).expect("node");
                match file {
                    EpochFile::Accepted => node.disk.accepted = epoch,
                    EpochFile::Current => node.disk.current = epoch,
                }
            }
            PeerAction::Truncate { zxid } => {
                let cfg_count = self.cfg.commit_log_count;
                let node = self.nodes.get_mut(&id).expect("node");
                node.disk.log.retain(|(z, _)| *z <= zxid);
                node.disk.durable_len = node.disk.durable_len.min(node.disk.log.len());
                node.disk.snapshots.retain(|(z, _)| *z <= zxid);
                let db = recover(&node.disk, cfg_count);
                if let Some(p) = node.peer.as_mut() {
                    p.reload(db);
                }
                self.log(format!("node {id} truncates after {zxid}"));
            }
            PeerAction::InstallSnapshot { zxid, body } => {
                let node = self.nodes.get_mut(&id).expect("node");
                node.disk.snapshots.push((zxid, body));
                node.disk.log.retain(|(z, _)| *z <= zxid);
                node.disk.durable_len = node.disk.durable_len.min(node.disk.log.len());
                self.log(format!(
                    "node {id} installs the leader's snapshot at {zxid}"
                ));
            }
            PeerAction::Client(a) => self.client_action(id, a),
            PeerAction::RoleChanged(role) => {
                self.log(format!("node {id} -> {}", role.mode_name()));
            }
            PeerAction::Warning(w) => self.log(format!("node {id} warning: {w}")),
            PeerAction::ConfigSeen { text } => {
                if let Some((k, nodes, ms)) = self.cfg.isolate_on_proposal.clone() {
                    if k == self.next_reconfig && self.reconfig_in_flight {
                        self.cfg.isolate_on_proposal = None;
                        // At once: before this action's successors (the PROPOSAL packets) go out.
                        self.isolate(&nodes);
                        self.schedule(self.now + ms, Event::Rejoin);
                    }
                }
                self.log(format!(
                    "node {id} sees configuration {:x}",
                    crate::zab::election::config_version(&text).unwrap_or(0)
                ));
            }
            PeerAction::ConfigActivated { text } => {
                self.log(format!(
                    "node {id} activates configuration {:x}",
                    crate::zab::election::config_version(&text).unwrap_or(0)
                ));
                self.nodes.get_mut(&id).expect("node").disk.config = Some(text);
            }
            PeerAction::ReadTxnLog {
                link,
                after,
                until,
                size_factor,
            } => {
                let node = &self.nodes[&id];
                let txns = read_txn_log(&node.disk, after, until, size_factor);
                let incarnation = node.incarnation;
                self.log(format!(
                    "node {id} reads its txn log after {after} up to {until} for link {link}: {}",
                    txns.as_ref()
                        .map_or("refused".to_string(), |t| format!("{} txns", t.len()))
                ));
                // The read takes a while: the committed log may move before the answer is in.
                let at = self.now + 1 + self.rng.below(40);
                self.schedule(
                    at,
                    Event::TxnLogRead {
                        node: id,
                        incarnation,
                        link,
                        txns,
                    },
                );
            }
        }
    }

    /// A learner's connection to `to` (the leader, or a follower's observer-master port).
    fn open_link(&mut self, id: u64, to: u64, delay_ms: u64, observer_master: bool) {
        let link = self.next_link;
        self.next_link += 1;
        let learner_inc = self.nodes[&id].incarnation;
        let leader_inc = self.nodes.get(&to).map_or(0, |n| n.incarnation);
        let mut decoders = BTreeMap::new();
        decoders.insert(Side::ToLeader, QuorumStreamDecoder::new(1 << 20, 0));
        decoders.insert(Side::ToLearner, QuorumStreamDecoder::new(1 << 20, 1 << 30));
        self.links.insert(
            link,
            Link {
                learner: id,
                leader: to,
                observer_master,
                learner_inc,
                leader_inc,
                open: false,
                last_delivery: BTreeMap::new(),
                decoders,
            },
        );
        self.nodes.get_mut(&id).expect("node").leader_link = Some(link);
        let lat = self.latency();
        self.schedule(self.now + delay_ms + lat, Event::LinkOpen { link });
    }

    /// ZOOKEEPER-3500: a learner that got UPTODATE (and so serves clients) has applied everything its
    /// learner master had committed when the sync began: the zxid of the DIFF / TRUNC / SNAP packet,
    /// which is the master's last applied zxid at that moment.
    fn check_synced_before_serving(
        &mut self,
        learner: u64,
        link: LinkId,
    ) -> Result<(), SimFailure> {
        let Some(&required) = self.sync_begin.get(&link) else {
            return Ok(());
        };
        let Some(peer) = self.nodes.get(&learner).and_then(|n| n.peer.as_ref()) else {
            return Ok(());
        };
        if !matches!(peer.role(), PeerRole::Following | PeerRole::Observing) {
            return Ok(());
        }
        let applied = Zxid(peer.server().tree().last_processed_zxid());
        if !peer.is_serving() || applied < required {
            return Err(self.fail(format!(
                "server {learner} got UPTODATE on link {link} (serving: {}) having applied {applied}, \
                 but its master had committed {required} when the sync began",
                peer.is_serving()
            )));
        }
        // Applied everything up to there, not just something after it: the tree is a leader's tree at
        // that zxid (when a leader was seen there).
        let digest = peer.server().tree().digest();
        if let Some(expected) = self.leader_digests.get(&applied) {
            if *expected != digest {
                return Err(self.fail(format!(
                    "server {learner} got UPTODATE at {applied} with a tree that is not the leader's \
                     there (digest {digest:x}, the leader's {expected:x})"
                )));
            }
        }
        self.report.learners_checked_at_uptodate += 1;
        Ok(())
    }

    /// An observer in its own current configuration (reconfigs change roles).
    fn is_observer(&self, id: u64) -> bool {
        match self.nodes.get(&id).and_then(|n| n.peer.as_ref()) {
            Some(p) => p.config().is_observer(),
            None => id > self.cfg.voters && id <= self.cfg.voters + self.cfg.observers,
        }
    }

    /// A member of its own current configuration (a server a reconfig removed is not; it stops).
    fn is_member(&self, id: u64) -> bool {
        self.nodes
            .get(&id)
            .and_then(|n| n.peer.as_ref())
            .is_some_and(|p| {
                let v = &p.config().verifier;
                v.is_voter(ServerId(id)) || v.observers().contains(&ServerId(id))
            })
    }

    /// Issues the next reconfig through a fresh super-user session on a serving member.
    fn issue_reconfig(&mut self) {
        if self.next_reconfig >= self.cfg.reconfigs.len() {
            return;
        }
        // The admin client may have vanished with its server (crash, refused session), or waited too
        // long (a real client's timeout: e.g. its session was being created when its observer lost
        // the leader); then it gives up and tries again.
        if self.reconfig_in_flight && self.now.saturating_sub(self.reconfig_since) > 5_000 {
            let stale: Vec<u64> = self
                .clients
                .iter()
                .filter(|(_, c)| c.admin)
                .map(|(k, _)| *k)
                .collect();
            for client in stale {
                if let Some(c) = self.clients.remove(&client) {
                    self.conn_owner.remove(&(c.node, c.conn));
                    self.log(format!(
                        "reconfig client {client} gives up on node {}",
                        c.node
                    ));
                }
            }
        }
        if !self.clients.values().any(|c| c.admin) {
            self.reconfig_in_flight = false;
        }
        if self.reconfig_in_flight {
            self.schedule(self.now + 3_000, Event::Reconfig);
            return;
        }
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.peer.as_ref().is_some_and(|p| p.is_serving()))
            .map(|(k, _)| *k)
            .collect();
        if ids.is_empty() {
            self.schedule(self.now + 300, Event::Reconfig);
            return;
        }
        let node = ids[self.rng.below(ids.len() as u64) as usize];
        self.log(format!(
            "reconfig {}: connecting through node {node}",
            self.next_reconfig
        ));
        self.reconfig_in_flight = true;
        self.reconfig_since = self.now;
        self.connect_client(node, true);
        // A lost connection (crash, partition) is retried.
        self.schedule(self.now + 3_000, Event::Reconfig);
    }

    fn check_observer_packet(&mut self, link: LinkId, p: &QuorumPacket) -> Result<(), SimFailure> {
        let learner = self.links[&link].learner;
        if self.is_observer(learner) {
            let ty = p.packet_type();
            let bad = match ty {
                Some(PacketType::FollowerInfo) => true,
                // Observers ack only NEWLEADER's and UPTODATE's epoch zxid, never a proposal.
                Some(PacketType::Ack) => Zxid(p.zxid).counter() != 0,
                _ => false,
            };
            if bad {
                return Err(self.fail(format!("observer {learner} sent {ty:?} {}", Zxid(p.zxid))));
            }
        }
        Ok(())
    }

    // ----- clients -------------------------------------------------------------------------------

    fn start_client(&mut self) {
        if self.clients.len() >= 6 || self.quiescing() {
            return;
        }
        let ids: Vec<u64> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.peer.as_ref().is_some_and(|p| p.is_serving()))
            .map(|(k, _)| *k)
            .collect();
        if ids.is_empty() {
            return;
        }
        let node = ids[self.rng.below(ids.len() as u64) as usize];
        self.connect_client(node, false);
    }

    fn connect_client(&mut self, node: u64, admin: bool) {
        let client = self.next_client;
        self.next_client += 1;
        let conn = self.next_conn;
        self.next_conn += 1;
        self.clients.insert(
            client,
            Client {
                node,
                conn,
                session: None,
                next_xid: 1,
                pending: HashMap::new(),
                written: 0,
                admin,
            },
        );
        self.conn_owner.insert((node, conn), client);
        let request = ConnectRequest {
            timeout: 4_000,
            passwd: vec![0; 16],
            read_only: Some(false),
            ..ConnectRequest::default()
        };
        self.input(
            node,
            PeerInput::Client(ServerInput::Connect {
                conn,
                remote_ip: "127.0.0.1".into(),
                request,
            }),
        );
    }

    /// Liveness: after this many fresh writes succeed, clients stop writing.
    fn quiescing(&self) -> bool {
        self.liveness && self.liveness_acked >= 10
    }

    fn client_write(&mut self, client: u64) {
        if self.quiescing() {
            return;
        }
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        if c.session.is_none() || c.pending.len() > 4 || c.written > 40 {
            return;
        }
        let xid = c.next_xid;
        c.next_xid += 1;
        c.written += 1;
        let (node, conn) = (c.node, c.conn);
        let path = format!("/c{client}-{xid}");
        let request = if xid % 3 == 0 {
            Request::SetData(SetDataRequest {
                path: "/shared".into(),
                data: Some(format!("{client}-{xid}").into_bytes()),
                version: -1,
            })
        } else {
            Request::Create(CreateRequest {
                path: path.clone(),
                data: Some(vec![xid as u8]),
                acl: vec![Acl {
                    perms: 31,
                    id: Id::new("world", "anyone"),
                }],
                flags: 0,
            })
        };
        let op = request.op_code();
        c.pending.insert(xid, (op, path));
        self.input(
            node,
            PeerInput::Client(ServerInput::Request { conn, xid, request }),
        );
        let next = self.now + 20 + self.rng.below(80);
        self.schedule(next, Event::ClientWrite { client });
    }

    fn client_action(&mut self, node: u64, action: ServerAction) {
        match action {
            ServerAction::Send { conn, frame } => {
                let Some(&client) = self.conn_owner.get(&(node, conn)) else {
                    return;
                };
                let payload = frame.get(4..).unwrap_or(&[]).to_vec();
                let Some(c) = self.clients.get_mut(&client) else {
                    return;
                };
                if c.session.is_none() {
                    let mut r = JuteReader::new(&payload);
                    match ConnectResponse::read(&mut r) {
                        Ok(resp) if resp.session_id != 0 => {
                            c.session = Some(SessionId(resp.session_id));
                            if c.admin {
                                self.send_reconfig(client);
                                return;
                            }
                            let at = self.now + 5;
                            self.schedule(at, Event::ClientWrite { client });
                        }
                        _ => {
                            self.conn_owner.remove(&(node, conn));
                            self.clients.remove(&client);
                        }
                    }
                    return;
                }
                let xid = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                let Some((op, path)) = c.pending.remove(&xid) else {
                    return;
                };
                if op == OpCode::Reconfig {
                    self.reconfig_reply(node, conn, client, &payload);
                    return;
                }
                if let Ok((header, _)) = decode_reply(&payload, Some(op)) {
                    if header.err == 0 {
                        self.report.acked_writes += 1;
                        if self.liveness {
                            self.liveness_acked += 1;
                        }
                        if op == OpCode::Create {
                            self.log(format!(
                                "node {node} acks create {path} at {}",
                                Zxid(header.zxid)
                            ));
                            self.acked_creates.insert(path);
                        }
                    }
                }
            }
            ServerAction::Close { conn } => {
                if let Some(client) = self.conn_owner.remove(&(node, conn)) {
                    if self.clients.remove(&client).is_some_and(|c| c.admin) {
                        self.reconfig_in_flight = false;
                    }
                }
            }
            ServerAction::Committed { zxid, header, txn } => {
                let key = (header.client_id, header.cxid, header.ty);
                if let Some(prev) = self.committed.get(&zxid) {
                    if *prev != key {
                        let msg = format!(
                            "zxid {zxid} committed as {prev:?} and as {key:?} (node {node})"
                        );
                        self.violations.push(msg);
                    }
                } else {
                    self.committed.insert(zxid, key);
                }
                let n = self.nodes.get_mut(&node).expect("node");
                if zxid <= n.last_applied {
                    let msg = format!("node {node} applied {zxid} after {}", n.last_applied);
                    self.violations.push(msg);
                }
                n.last_applied = zxid;
                if let Txn::Create(t) = &txn {
                    self.committed_creates.insert(t.path.clone());
                }
            }
            ServerAction::Snapshot {
                zxid,
                piece,
                first,
                last,
            } => {
                // Pieces gather in memory as a real disk's temp file would; a crash before the last
                // one loses them (the simulated disk keeps only finished snapshots).
                let n = self.nodes.get_mut(&node).expect("node");
                if first {
                    n.snapshot_pieces.clear();
                }
                n.snapshot_pieces.extend_from_slice(&piece);
                if last {
                    let blob = std::mem::take(&mut n.snapshot_pieces);
                    n.disk.snapshots.push((zxid, blob));
                }
            }
            other => self
                .violations
                .push(format!("node {node}: unexpected server action {other:?}")),
        }
    }

    fn send_reconfig(&mut self, client: u64) {
        let Some(step) = self.cfg.reconfigs.get(self.next_reconfig).cloned() else {
            return;
        };
        let Some(c) = self.clients.get_mut(&client) else {
            return;
        };
        let xid = c.next_xid;
        c.next_xid += 1;
        c.pending.insert(xid, (OpCode::Reconfig, String::new()));
        let (node, conn) = (c.node, c.conn);
        self.log(format!(
            "client {client} asks node {node} to reconfig (add {:?}, remove {:?})",
            step.joining, step.leaving
        ));
        let request = Request::Reconfig(crate::proto::client::ReconfigRequest {
            joining_servers: step.joining,
            leaving_servers: step.leaving,
            new_members: None,
            cur_config_id: -1,
        });
        self.input(
            node,
            PeerInput::Client(ServerInput::Request { conn, xid, request }),
        );
    }

    fn reconfig_reply(&mut self, node: u64, conn: ConnId, client: u64, payload: &[u8]) {
        self.reconfig_in_flight = false;
        self.conn_owner.remove(&(node, conn));
        self.clients.remove(&client);
        let Ok((header, body)) = decode_reply(payload, Some(OpCode::Reconfig)) else {
            return;
        };
        if header.err == 0 {
            let text = match body {
                crate::proto::client::Response::Reconfig(r) => r.data.unwrap_or_default(),
                _ => Vec::new(),
            };
            self.log(format!(
                "reconfig {} done at {}: {}",
                self.next_reconfig,
                Zxid(header.zxid),
                String::from_utf8_lossy(&text).replace('\n', " ")
            ));
            self.report.reconfigs += 1;
            self.next_reconfig += 1;
            if let Some(step) = self.cfg.reconfigs.get(self.next_reconfig) {
                let at = step.at_ms.max(self.now + 100);
                self.schedule(at, Event::Reconfig);
            }
        } else {
            self.log(format!("reconfig refused with error {}", header.err));
            self.schedule(self.now + 300, Event::Reconfig);
        }
    }

    // ----- invariants ----------------------------------------------------------------------------

    fn check_invariants(&mut self) -> Result<(), SimFailure> {
        if let Some(v) = self.violations.first() {
            return Err(self.fail(v.clone()));
        }
        // One established leader per epoch.
        let leaders: Vec<(u64, u32)> = self
            .nodes
            .values()
            .filter_map(|n| {
                let p = n.peer.as_ref()?;
                (p.role() == PeerRole::Leading && p.is_serving()).then(|| (n.id, p.epochs().1 .0))
            })
            .collect();
        for (id, epoch) in leaders {
            match self.established.get(&epoch) {
                Some(other) if *other != id => {
                    return Err(self.fail(format!(
                        "epoch {epoch} has two established leaders: {other} and {id}"
                    )));
                }
                Some(_) => {}
                None => {
                    self.established.insert(epoch, id);
                    self.report.leaders += 1;
                    self.log(format!("node {id} established in epoch {epoch}"));
                }
            }
        }
        Ok(())
    }

    fn converged(&self) -> bool {
        if !self.quiescing() {
            return false;
        }
        if self.next_reconfig < self.cfg.reconfigs.len() {
            return false;
        }
        let mut last = None;
        for n in self.nodes.values() {
            let Some(p) = &n.peer else { return false };
            if !self.is_member(n.id) {
                // Removed by a reconfig: not part of the ensemble any more.
                continue;
            }
            if !p.is_serving() {
                return false;
            }
            let z = p.server().tree().last_processed_zxid();
            match last {
                None => last = Some(z),
                Some(l) if l != z => return false,
                _ => {}
            }
        }
        // Quiet: nothing acked is still missing anywhere, and the tree covers every acked create.
        self.nodes
            .values()
            .filter(|n| self.is_member(n.id))
            .all(|n| {
                n.peer.as_ref().is_some_and(|p| {
                    self.acked_creates
                        .iter()
                        .all(|path| p.server().tree().node(path).is_some())
                })
            })
            && self.now > self.cfg.safety_ms + 1_000
    }

    fn finish(mut self) -> Result<SimReport, SimFailure> {
        let members: Vec<u64> = self
            .nodes
            .keys()
            .copied()
            .filter(|id| self.is_member(*id))
            .collect();
        // Committed txns survive: every create any server applied is on every member at the end.
        for id in &members {
            let Some(p) = self.nodes[id].peer.as_ref() else {
                continue;
            };
            let lost: Vec<&String> = self
                .committed_creates
                .iter()
                .filter(|path| p.server().tree().node(path).is_none())
                .take(5)
                .collect();
            if !lost.is_empty() {
                return Err(self.fail(format!("committed creates lost on member {id}: {lost:?}")));
            }
        }
        let digests: BTreeSet<i64> = members
            .iter()
            .filter_map(|id| {
                self.nodes[id]
                    .peer
                    .as_ref()
                    .map(|p| p.server().tree().digest())
            })
            .collect();
        let configs: BTreeSet<Vec<u8>> = members
            .iter()
            .filter_map(|id| {
                self.nodes[id]
                    .peer
                    .as_ref()
                    .map(|p| p.config().config_text.clone())
            })
            .collect();
        if configs.len() != 1 {
            return Err(self.fail(format!(
                "converged members have different configurations: {:?}",
                configs
                    .iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
            )));
        }
        self.report.serving_non_members = self
            .nodes
            .values()
            .filter(|n| !self.is_member(n.id) && n.peer.as_ref().is_some_and(|p| p.is_serving()))
            .map(|n| n.id)
            .collect();
        self.report.final_config = configs
            .iter()
            .next()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        if digests.len() != 1 {
            return Err(self.fail(format!(
                "servers at one zxid have different digests: {digests:?}"
            )));
        }
        let mut syncs = (0, 0, 0);
        for n in self.nodes.values() {
            if let Some(p) = &n.peer {
                let s = p.stats();
                syncs.0 += s.snap_syncs;
                syncs.1 += s.diff_syncs;
                syncs.2 += s.trunc_syncs;
                self.report.syncs_throttled += s.syncs_throttled;
                self.report.handoffs += s.handoffs;
                self.report.txn_log_syncs += s.txn_log_syncs;
            }
        }
        self.report.syncs = syncs;
        self.report.final_zxid = self
            .nodes
            .values()
            .find_map(|n| {
                n.peer
                    .as_ref()
                    .map(|p| Zxid(p.server().tree().last_processed_zxid()))
            })
            .unwrap_or(Zxid::ZERO);
        Ok(self.report)
    }
}

/// A simulated `ZKDatabase.getProposalsFromTxnLog`: the logged txns after `after` up to `until`, only
/// when the log holds `after` itself, holds every snapshot's zxid in that range, and the log from
/// `after` on is at most `size_factor` × the newest snapshot's bytes (0: unlimited).
fn read_txn_log(
    disk: &Disk,
    after: Zxid,
    until: Zxid,
    size_factor: f64,
) -> Option<Vec<(Zxid, std::sync::Arc<[u8]>)>> {
    let start = disk.log.iter().position(|(z, _)| *z == after)?;
    let newest_snap = disk
        .snapshots
        .iter()
        .max_by_key(|(z, _)| *z)
        .map_or(0, |(_, b)| b.len());
    let limit = (newest_snap as f64 * size_factor) as u64;
    let size: u64 = disk.log[start..]
        .iter()
        .map(|(_, b)| b.len() as u64 + 20)
        .sum();
    if size_factor < 0.0 || (limit > 0 && size > limit) {
        return None;
    }
    let txns: Vec<(Zxid, std::sync::Arc<[u8]>)> = disk.log[start + 1..]
        .iter()
        .take_while(|(z, _)| *z <= until)
        .map(|(z, b)| (*z, std::sync::Arc::from(b.as_slice())))
        .collect();
    // A snapshot in the range whose zxid the log lacks was installed from a leader: the log before it
    // may hold an abandoned history (see `storage::read_for_sync`).
    let installed = disk
        .snapshots
        .iter()
        .any(|(z, _)| *z > after && *z <= until && txns.binary_search_by_key(z, |t| t.0).is_err());
    (!installed).then_some(txns)
}

/// Rebuilds a database from a simulated disk: the newest snapshot plus the log after it.
fn recover(disk: &Disk, recent_count: usize) -> PeerDb {
    let snap = disk.snapshots.iter().max_by_key(|(z, _)| *z);
    let (base, mut tree, sessions) = match snap {
        Some((z, blob)) => {
            let (tree, sessions) =
                read_snapshot_blob(blob, false).expect("simulated snapshots decode");
            (*z, tree, sessions)
        }
        None => (Zxid::ZERO, DataTree::new(false), Vec::new()),
    };
    let mut map: HashMap<SessionId, i32> = sessions.into_iter().collect();
    let mut last = base;
    let mut recent = Vec::new();
    for (z, bytes) in disk.log.iter().filter(|(z, _)| *z > base) {
        let entry = TxnEntry::decode(bytes).expect("simulated log records decode");
        match &entry.txn {
            Txn::CreateSession { timeout } => {
                map.insert(SessionId(entry.header.client_id), *timeout);
            }
            Txn::CloseSession { .. } => {
                map.remove(&SessionId(entry.header.client_id));
            }
            _ => {}
        }
        let _ = tree.apply_txn(&entry.header, &entry.txn);
        last = *z;
        recent.push((*z, bytes.clone()));
    }
    tree.set_last_processed_zxid(last.0);
    let skip = recent.len().saturating_sub(recent_count);
    let mut sessions: Vec<_> = map.into_iter().collect();
    sessions.sort();
    // The peer writes currentEpoch before it logs any txn of that epoch (leader: at the epoch-ack
    // quorum; learner: at NEWLEADER), so the log can never be ahead of it.
    assert!(
        last.epoch() <= disk.current,
        "log reaches epoch {} but currentEpoch is {}",
        last.epoch().0,
        disk.current.0
    );
    PeerDb {
        tree,
        sessions,
        last_logged: last,
        accepted_epoch: disk.accepted,
        current_epoch: disk.current,
        recent: recent.into_iter().skip(skip).collect(),
    }
}
