//! A deterministic simulator for the election engine: voters and observers, each an [`Election`],
//! exchanging encoded notifications over a virtual network with random delays, drops and
//! partitions, crashing and restarting, under a virtual clock. One `u64` seed derives everything,
//! so a failing run replays exactly.
//!
//! Above the engines sits a deliberately abstract stand-in for what discovery and sync will do (no
//! learner protocol yet): a leader that gathers a quorum of reachable followers within an init
//! limit "establishes" a new epoch (one above every accepted epoch) and brings them
//! to its history; an established leader commits transactions to reachable followers; followers that
//! cannot reach their leader, and leaders that lose their quorum, go back to looking. That gives the
//! elections realistic inputs (growing epochs and zxids, stragglers, restarted followers joining a
//! running leader) without pretending to test ZAB itself.
//!
//! Invariants, checked after every event (see [`Sim::check`]):
//! 1. In each election round, at most one leader is decided by a quorum of voters (rounds restart at
//!    1 when a server restarts, so the table is cleared at every restart).
//! 2. A decision reached by a voter's own round tally names a candidate at least as good, in vote
//!    order, as the initial vote of every supporter at the time that supporter sent its vote.
//! 3. Observers never appear in any tally, never lead, and end elections OBSERVING.
//! 4. Decisions name a voter, are backed by a quorum, and Leading is reported exactly by the leader;
//!    a server joins a running leader only after receiving that leader's own LEADING notification.
//! 5. At most one leader establishes each epoch.
//! 6. (liveness, [`run_seed`]) Once faults stop and a quorum of voters with trusted databases can
//!    talk (every server is back, or a minority stays crashed or cut off), one leader emerges within
//!    [`LIVENESS_BOUND_MS`], followed by every reachable voter and observed by every reachable
//!    observer.

use crate::ids::{ServerId, Zxid};
use crate::proto::quorum::{Notification, ServerState};
use crate::zab::election::{
    Action, Elected, Election, ElectionConfig, LocalState, Role, Tally,
    MAX_NOTIFICATION_INTERVAL_MS,
};
use crate::zab::quorum::{QuorumHierarchical, QuorumVerifier};
use crate::zab::rng::SplitMix64;
use crate::zab::vote::Candidate;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

/// How often the abstract discovery/broadcast layer looks at the cluster.
pub const HEARTBEAT_MS: u64 = 100;
/// A follower or observer that cannot reach its leader for this long looks again (Java's learner
/// retries its connection five times a second apart).
pub const LEARNER_TIMEOUT_MS: u64 = 5_000;
/// A leader without a quorum of reachable followers for this long looks again (init/sync limit).
pub const LEADER_TIMEOUT_MS: u64 = 5_000;
/// After healing, an ensemble must settle within this much virtual time: the longest notification
/// timeout (60 s), plus a learner timeout, plus slack for a few rounds.
pub const LIVENESS_BOUND_MS: u64 = MAX_NOTIFICATION_INTERVAL_MS + 3 * LEARNER_TIMEOUT_MS + 30_000;

/// Network behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetParams {
    /// Smallest one-way delay.
    pub min_delay_ms: u64,
    /// Largest one-way delay.
    pub max_delay_ms: u64,
    /// Chance a message is lost, in percent (a broken connection losing its queue).
    pub drop_percent: u64,
}

impl NetParams {
    /// A fast, lossless network with fixed 1 ms delays (for transcripts).
    pub const PERFECT: NetParams = NetParams {
        min_delay_ms: 1,
        max_delay_ms: 1,
        drop_percent: 0,
    };
}

/// The cluster: quorum rule (voters and observers) and each server's database at boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Voters and observers, and how quorums are counted.
    pub verifier: QuorumVerifier,
    /// Every server's last logged zxid and current epoch at boot (missing: zxid 0, epoch 0).
    pub initial: BTreeMap<ServerId, LocalState>,
}

impl ClusterSpec {
    /// `voters` voters and `observers` observers (ids 1.. then the observers), majority quorums,
    /// empty databases.
    pub fn majority(voters: u64, observers: u64) -> ClusterSpec {
        ClusterSpec {
            verifier: QuorumVerifier::majority(
                (1..=voters).map(ServerId),
                (voters + 1..=voters + observers).map(ServerId),
            ),
            initial: BTreeMap::new(),
        }
    }

    /// Sets one server's boot database.
    pub fn with_data(mut self, sid: u64, zxid: i64, current_epoch: i64) -> ClusterSpec {
        self.initial.insert(
            ServerId(sid),
            LocalState {
                last_logged_zxid: Zxid(zxid),
                current_epoch,
            },
        );
        self
    }

    fn servers(&self) -> BTreeSet<ServerId> {
        let mut all = self.verifier.voters().clone();
        all.extend(self.verifier.observers().iter().copied());
        all
    }
}

/// What the abstract layer thinks a server is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Activity {
    Down,
    Looking,
    Leading {
        since: u64,
        last_quorum: u64,
        established: Option<i64>,
    },
    Learning {
        leader: ServerId,
        last_contact: u64,
        /// Synchronised with the leader's established epoch.
        synced: bool,
    },
}

#[derive(Clone, Debug)]
struct Node {
    id: ServerId,
    election: Election,
    activity: Activity,
    /// Durable: survives crashes.
    data: LocalState,
    accepted_epoch: i64,
    incarnation: u32,
}

#[derive(Clone, Debug)]
struct InFlight {
    from: ServerId,
    to: ServerId,
    payload: Vec<u8>,
    /// The sender's initial candidate when it sent a LOOKING notification (for invariant 2).
    sender_init: Option<Candidate>,
    /// Incarnations of sender and receiver at send time: a restart breaks the connection and loses
    /// what was in flight on it.
    incarnations: (u32, u32),
}

/// One decision, for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Virtual time.
    pub at_ms: u64,
    /// Who decided.
    pub node: ServerId,
    /// The outcome.
    pub elected: Elected,
}

/// An invariant broken, with the recent trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What broke.
    pub what: String,
    /// Virtual time.
    pub at_ms: u64,
    /// The last trace lines.
    pub trace: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invariant violated at {} ms: {}", self.at_ms, self.what)?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// Lines of trace kept for failure reports when full tracing is off.
const TRACE_TAIL: usize = 400;

/// The simulator.
pub struct Sim {
    spec: ClusterSpec,
    config_text: Vec<u8>,
    net: NetParams,
    rng: SplitMix64,
    now: u64,
    nodes: BTreeMap<ServerId, Node>,
    /// (delivery time, sequence) → message.
    queue: BTreeMap<(u64, u64), InFlight>,
    seq: u64,
    /// Per directed link, the latest scheduled delivery (links are FIFO, like TCP).
    link_clock: BTreeMap<(ServerId, ServerId), u64>,
    /// Partition side of each server; servers talk only within a side.
    side: BTreeMap<ServerId, u32>,
    next_heartbeat: u64,
    /// Invariant 1: round → leader → voters that decided it (cleared at restarts).
    decided: BTreeMap<i64, BTreeMap<ServerId, BTreeSet<ServerId>>>,
    /// Invariant 2: (receiver, sender, vote) → the sender's initial candidate when it sent it, or
    /// `None` when the sender was out of election (its own decision was checked when it made it).
    ghosts: BTreeMap<(ServerId, ServerId, [i64; 4]), Option<Candidate>>,
    /// Open election connections (smaller sid, larger sid).
    links_up: BTreeSet<(ServerId, ServerId)>,
    /// The last notification each server sent to each peer, with the sender's initial candidate.
    last_sent: BTreeMap<(ServerId, ServerId), (Notification, Option<Candidate>)>,
    /// Invariant 4: (receiver, leader) pairs where the receiver got the leader's own LEADING
    /// notification since the receiver's election started (`checkLeader`).
    leading_seen: BTreeSet<(ServerId, ServerId)>,
    /// Invariant 5: epoch → leader that established it.
    established: BTreeMap<i64, ServerId>,
    decisions: Vec<Decision>,
    full_trace: bool,
    trace: VecDeque<String>,
    /// Messages delivered, for statistics.
    delivered: u64,
}

impl Sim {
    /// A cluster with nobody started yet; `seed` drives delays and drops.
    pub fn new(spec: ClusterSpec, net: NetParams, seed: u64) -> Sim {
        let config_text = render_config(&spec.verifier).into_bytes();
        let mut nodes = BTreeMap::new();
        for sid in spec.servers() {
            let data = spec.initial.get(&sid).copied().unwrap_or(LocalState {
                last_logged_zxid: Zxid(0),
                current_epoch: 0,
            });
            let cfg = ElectionConfig::new(sid, spec.verifier.clone(), config_text.clone());
            nodes.insert(
                sid,
                Node {
                    id: sid,
                    election: Election::new(cfg),
                    activity: Activity::Down,
                    data,
                    accepted_epoch: data.current_epoch,
                    incarnation: 0,
                },
            );
        }
        Sim {
            spec,
            config_text,
            net,
            rng: SplitMix64::new(seed),
            now: 0,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            link_clock: BTreeMap::new(),
            side: BTreeMap::new(),
            next_heartbeat: HEARTBEAT_MS,
            decided: BTreeMap::new(),
            ghosts: BTreeMap::new(),
            leading_seen: BTreeSet::new(),
            links_up: BTreeSet::new(),
            last_sent: BTreeMap::new(),
            established: BTreeMap::new(),
            decisions: Vec::new(),
            full_trace: false,
            trace: VecDeque::new(),
            delivered: 0,
        }
    }

    /// Record every message, not just role changes and faults (for transcripts).
    pub fn with_full_trace(mut self) -> Sim {
        self.full_trace = true;
        self
    }

    /// Changes the network's behaviour from now on.
    pub fn set_net(&mut self, net: NetParams) {
        self.net = net;
    }

    /// Virtual time.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Every decision so far.
    pub fn decisions(&self) -> &[Decision] {
        &self.decisions
    }

    /// The trace (all of it with full tracing; otherwise the last few hundred lines).
    pub fn trace(&self) -> Vec<String> {
        self.trace.iter().cloned().collect()
    }

    /// A server's election engine.
    pub fn election(&self, sid: u64) -> &Election {
        &self.nodes[&ServerId(sid)].election
    }

    /// A server's database as the next election would read it.
    pub fn data(&self, sid: u64) -> LocalState {
        self.nodes[&ServerId(sid)].data
    }

    /// True when the server is up.
    pub fn is_up(&self, sid: u64) -> bool {
        self.nodes[&ServerId(sid)].activity != Activity::Down
    }

    /// The epoch a leader established, if it did.
    pub fn established_epoch(&self, sid: u64) -> Option<i64> {
        match self.nodes[&ServerId(sid)].activity {
            Activity::Leading { established, .. } => established,
            _ => None,
        }
    }

    fn log(&mut self, line: String) {
        let line = format!("{:>8} {line}", self.now);
        self.trace.push_back(line);
        if !self.full_trace && self.trace.len() > TRACE_TAIL {
            self.trace.pop_front();
        }
    }

    fn violation(&self, what: String) -> Violation {
        Violation {
            what,
            at_ms: self.now,
            trace: self.trace.iter().cloned().collect(),
        }
    }

    // ----- faults and control -----

    /// Boots every server: all of them are up (listening) before the first election starts, as
    /// when an ensemble is started together.
    pub fn start_all(&mut self) -> Result<(), Violation> {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        for sid in &ids {
            self.power_on(*sid);
        }
        for sid in ids {
            self.start_election(sid)?;
        }
        Ok(())
    }

    /// Boots (or restarts) one server: a fresh engine (logical clock 0) over its durable data,
    /// starting an election at once.
    pub fn boot(&mut self, sid: ServerId) -> Result<(), Violation> {
        self.power_on(sid);
        self.start_election(sid)
    }

    fn power_on(&mut self, sid: ServerId) {
        // A new process: no connections, nothing sent yet.
        self.links_up.retain(|(a, b)| *a != sid && *b != sid);
        self.last_sent.retain(|(from, _), _| *from != sid);
        let cfg = ElectionConfig::new(sid, self.spec.verifier.clone(), self.config_text.clone());
        let node = self.nodes.get_mut(&sid).expect("known server");
        if node.incarnation > 0 {
            // Invariant 1 compares rounds, which restart at 1 with the engine.
            self.decided.clear();
        }
        node.incarnation += 1;
        node.election = Election::new(cfg);
        node.activity = Activity::Looking;
        let data = node.data;
        self.log(format!(
            "{sid} boots: zxid={} epoch={}",
            data.last_logged_zxid, data.current_epoch
        ));
    }

    fn start_election(&mut self, sid: ServerId) -> Result<(), Violation> {
        self.leading_seen.retain(|(to, _)| *to != sid);
        let node = self.nodes.get_mut(&sid).expect("known server");
        let out = node.election.start(self.now, node.data);
        self.perform(sid, out.actions)
    }

    /// Crashes a server: it stops; its durable data stays; messages to it are lost.
    pub fn crash(&mut self, sid: ServerId) {
        self.links_up.retain(|(a, b)| *a != sid && *b != sid);
        let node = self.nodes.get_mut(&sid).expect("known server");
        node.activity = Activity::Down;
        self.log(format!("{sid} crashes"));
    }

    /// Splits the servers into sides; servers on different sides cannot talk, and messages in flight
    /// between them are lost. Servers not listed form one more side.
    pub fn partition(&mut self, sides: &[&[u64]]) {
        self.side.clear();
        for (i, members) in sides.iter().enumerate() {
            for m in *members {
                self.side.insert(ServerId(*m), i as u32 + 1);
            }
        }
        let links = std::mem::take(&mut self.links_up);
        self.links_up = links
            .into_iter()
            .filter(|(a, b)| self.connected(*a, *b))
            .collect();
        self.log(format!("partition {sides:?}"));
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.side.clear();
        self.log("heal".to_string());
    }

    fn connected(&self, a: ServerId, b: ServerId) -> bool {
        self.side.get(&a).copied().unwrap_or(0) == self.side.get(&b).copied().unwrap_or(0)
    }

    // ----- the event loop -----

    /// Runs until virtual time `until_ms`, checking invariants after every event.
    pub fn run_until(&mut self, until_ms: u64) -> Result<(), Violation> {
        loop {
            let next = self.next_event_time();
            if next > until_ms {
                self.now = until_ms;
                return Ok(());
            }
            self.now = next;
            self.step()?;
            self.check()?;
        }
    }

    /// Runs until the cluster is settled (see [`Sim::settled_leader`]) or `deadline_ms`; returns
    /// the leader and the time it settled.
    pub fn run_until_settled(
        &mut self,
        deadline_ms: u64,
    ) -> Result<Option<(ServerId, u64)>, Violation> {
        loop {
            if let Some(l) = self.settled_leader() {
                return Ok(Some((l, self.now)));
            }
            let next = self.next_event_time();
            if next > deadline_ms {
                self.now = deadline_ms;
                return Ok(None);
            }
            self.now = next;
            self.step()?;
            self.check()?;
        }
    }

    /// The leader, when every up server agrees: it leads with an established epoch, every up voter
    /// follows it and every up observer observes it, all reachable from it.
    pub fn settled_leader(&self) -> Option<ServerId> {
        self.nodes
            .values()
            .filter(|n| {
                matches!(
                    n.activity,
                    Activity::Leading {
                        established: Some(_),
                        ..
                    }
                )
            })
            .map(|n| n.id)
            .find(|leader| self.settled_on(*leader))
    }

    /// True when the servers that are up and can reach `leader` include a quorum of voters and all
    /// of them follow (voters) or observe (observers) it. Servers that are down or cut off from it
    /// are not asked.
    fn settled_on(&self, leader: ServerId) -> bool {
        let component: Vec<&Node> = self
            .nodes
            .values()
            .filter(|n| n.activity != Activity::Down && self.connected(n.id, leader))
            .collect();
        let voters: BTreeSet<ServerId> = component
            .iter()
            .map(|n| n.id)
            .filter(|s| self.spec.verifier.is_voter(*s))
            .collect();
        self.spec.verifier.contains_quorum(&voters)
            && component.iter().all(|n| match n.activity {
                Activity::Leading { .. } => n.id == leader,
                Activity::Learning { leader: l, .. } => {
                    let want = if self.spec.verifier.is_voter(n.id) {
                        ServerState::Following
                    } else {
                        ServerState::Observing
                    };
                    l == leader && n.election.state() == want
                }
                Activity::Looking | Activity::Down => false,
            })
    }

    fn next_event_time(&self) -> u64 {
        let mut next = self.next_heartbeat;
        if let Some(((t, _), _)) = self.queue.first_key_value() {
            next = next.min(*t);
        }
        for n in self.nodes.values() {
            if n.activity != Activity::Down {
                if let Some(d) = n.election.next_deadline() {
                    next = next.min(d);
                }
            }
        }
        next.max(self.now)
    }

    fn step(&mut self) -> Result<(), Violation> {
        // Messages due now, then engine deadlines, then the heartbeat.
        if let Some(entry) = self.queue.first_entry() {
            if entry.key().0 <= self.now {
                let msg = entry.remove();
                return self.deliver(msg);
            }
        }
        let due: Vec<ServerId> = self
            .nodes
            .values()
            .filter(|n| n.activity != Activity::Down)
            .filter(|n| n.election.next_deadline().is_some_and(|d| d <= self.now))
            .map(|n| n.id)
            .collect();
        if let Some(sid) = due.first() {
            let out = self
                .nodes
                .get_mut(sid)
                .expect("node")
                .election
                .tick(self.now);
            return self.perform(*sid, out.actions);
        }
        if self.next_heartbeat <= self.now {
            self.next_heartbeat = self.now + HEARTBEAT_MS;
            return self.heartbeat();
        }
        Ok(())
    }

    fn deliver(&mut self, msg: InFlight) -> Result<(), Violation> {
        let Some(node) = self.nodes.get(&msg.to) else {
            return Ok(());
        };
        let now_incarnations = (self.nodes[&msg.from].incarnation, node.incarnation);
        if node.activity == Activity::Down
            || now_incarnations != msg.incarnations
            || !self.connected(msg.from, msg.to)
        {
            return Ok(());
        }
        self.delivered += 1;
        let n = Notification::decode(&msg.payload).expect("the engine's own encoding decodes");
        self.ghosts
            .insert((msg.to, msg.from, vote_key(&n)), msg.sender_init);
        if n.state == ServerState::Leading && n.leader == msg.from.0 as i64 {
            self.leading_seen.insert((msg.to, msg.from));
        }
        if self.full_trace {
            self.log(format!("{} -> {} {}", msg.from, msg.to, show(&n)));
        }
        let out = self
            .nodes
            .get_mut(&msg.to)
            .expect("node")
            .election
            .receive_bytes(msg.from, &msg.payload, self.now);
        self.perform(msg.to, out.actions)
    }

    /// Sends over the election connection between `from` and `to`, modelled on
    /// `QuorumCnxManager`: one connection per pair, opened lazily when there is something to send;
    /// a partition, a crash or a lost message breaks it; when it is opened again both ends resend
    /// the last message they sent each other (`SendWorker` with an empty queue sends
    /// `lastMessageSent`), which is what revives an election whose messages were lost.
    fn send(&mut self, from: ServerId, to: ServerId, n: &Notification) {
        let sender = &self.nodes[&from];
        let sender_init = (n.state == ServerState::Looking && sender.election.is_looking())
            .then(|| sender.election.initial_candidate());
        self.last_sent.insert((from, to), (n.clone(), sender_init));
        let pair = (from.min(to), from.max(to));
        if !self.connected(from, to) || self.nodes[&to].activity == Activity::Down {
            self.links_up.remove(&pair);
            return;
        }
        if self.rng.chance(self.net.drop_percent) {
            self.links_up.remove(&pair);
            return;
        }
        if self.links_up.insert(pair) {
            if let Some((last, init)) = self.last_sent.get(&(to, from)).cloned() {
                self.enqueue(to, from, &last, init);
            }
        }
        self.enqueue(from, to, n, sender_init);
    }

    fn enqueue(
        &mut self,
        from: ServerId,
        to: ServerId,
        n: &Notification,
        sender_init: Option<Candidate>,
    ) {
        let delay = self.rng.range(self.net.min_delay_ms, self.net.max_delay_ms);
        let link = self.link_clock.entry((from, to)).or_insert(0);
        let at = (self.now + delay).max(*link);
        *link = at;
        let incarnations = (self.nodes[&from].incarnation, self.nodes[&to].incarnation);
        self.seq += 1;
        self.queue.insert(
            (at, self.seq),
            InFlight {
                from,
                to,
                payload: n.to_bytes(),
                sender_init,
                incarnations,
            },
        );
    }

    fn perform(&mut self, sid: ServerId, actions: Vec<Action>) -> Result<(), Violation> {
        for a in actions {
            match a {
                Action::Send { to, notification } => self.send(sid, to, &notification),
                Action::Broadcast { to, notification } => {
                    for peer in to {
                        self.send(sid, peer, &notification);
                    }
                }
                Action::Elected(e) => self.on_elected(sid, e)?,
                Action::NewerConfig { .. } | Action::PeerLooking { .. } => {}
            }
        }
        Ok(())
    }

    fn on_elected(&mut self, sid: ServerId, e: Elected) -> Result<(), Violation> {
        self.log(format!(
            "{sid} {:?} leader={} zxid={} round={} epoch={} by {:?} {:?}",
            e.role,
            e.leader,
            e.zxid,
            e.election_epoch,
            e.peer_epoch,
            e.tally,
            e.supporters.iter().map(|s| s.0).collect::<Vec<_>>()
        ));
        let q = &self.spec.verifier;
        let is_voter = q.is_voter(sid);
        // Invariant 4.
        if !q.is_voter(e.leader) {
            return Err(self.violation(format!("{sid} elected non-voter {}", e.leader)));
        }
        if !q.contains_quorum(&e.supporters) {
            return Err(self.violation(format!(
                "{sid} decided without a quorum: {:?}",
                e.supporters
            )));
        }
        if (e.role == Role::Leading) != (e.leader == sid) {
            return Err(self.violation(format!("{sid} role {:?} for leader {}", e.role, e.leader)));
        }
        if e.tally != Tally::Round
            && e.leader != sid
            && !self.leading_seen.contains(&(sid, e.leader))
        {
            return Err(self.violation(format!(
                "{sid} joined {} without its LEADING notification",
                e.leader
            )));
        }
        // Invariant 3.
        if !is_voter && e.role != Role::Observing {
            return Err(self.violation(format!("observer {sid} ended as {:?}", e.role)));
        }
        if let Some(o) = e.supporters.iter().find(|s| !q.is_voter(**s)) {
            return Err(self.violation(format!("{sid} counted non-voter {o}")));
        }
        if is_voter {
            // Invariant 1.
            let per_round = self.decided.entry(e.election_epoch).or_default();
            per_round.entry(e.leader).or_default().insert(sid);
            let winners: Vec<ServerId> = per_round
                .iter()
                .filter(|(_, who)| q.contains_quorum(who))
                .map(|(l, _)| *l)
                .collect();
            if winners.len() > 1 {
                return Err(self.violation(format!(
                    "round {} has two leaders decided by quorums: {winners:?}",
                    e.election_epoch
                )));
            }
            // Invariant 2.
            if e.tally == Tally::Round {
                let won = Candidate {
                    leader: e.leader.0 as i64,
                    zxid: e.zxid.0,
                    peer_epoch: e.peer_epoch,
                };
                let key = [won.leader, won.zxid, e.election_epoch, won.peer_epoch];
                for m in &e.supporters {
                    let init = if *m == sid {
                        Some(Some(self.nodes[&sid].election.initial_candidate()))
                    } else {
                        self.ghosts.get(&(sid, *m, key)).copied()
                    };
                    let Some(init) = init else {
                        return Err(self.violation(format!(
                            "{sid} counted {m} for a vote {key:?} it never received"
                        )));
                    };
                    let Some(init) = init else {
                        continue;
                    };
                    if init.beats(&won) {
                        return Err(self.violation(format!(
                            "{sid} elected {won:?} but supporter {m} started from better {init:?}"
                        )));
                    }
                }
            }
        }
        self.decisions.push(Decision {
            at_ms: self.now,
            node: sid,
            elected: e.clone(),
        });
        let now = self.now;
        let node = self.nodes.get_mut(&sid).expect("node");
        node.activity = match e.role {
            Role::Leading => Activity::Leading {
                since: now,
                last_quorum: now,
                established: None,
            },
            Role::Following | Role::Observing => Activity::Learning {
                leader: e.leader,
                last_contact: now,
                synced: false,
            },
        };
        Ok(())
    }

    /// The abstract discovery/sync/broadcast layer (see the module doc).
    fn heartbeat(&mut self) -> Result<(), Violation> {
        let ids: Vec<ServerId> = self.nodes.keys().copied().collect();
        // Learners: reach the leader or give up.
        for sid in &ids {
            let Activity::Learning {
                leader,
                last_contact,
                ..
            } = self.nodes[sid].activity
            else {
                continue;
            };
            let leading = matches!(self.nodes[&leader].activity, Activity::Leading { .. });
            let reachable = self.connected(*sid, leader) && leading;
            let was_connected = last_contact > self.decided_at(*sid);
            if was_connected && self.connected(*sid, leader) && !leading {
                // A leader that stops leading (or crashes) closes its learners' connections:
                // they look again at once. Only a partition leaves them waiting for a timeout.
                self.log(format!("{sid} lost leader {leader}: it stopped leading"));
                self.relook(*sid)?;
            } else if reachable {
                if let Activity::Learning { last_contact, .. } =
                    &mut self.nodes.get_mut(sid).expect("node").activity
                {
                    *last_contact = self.now;
                }
            } else if self.now - last_contact > LEARNER_TIMEOUT_MS {
                self.log(format!("{sid} lost leader {leader}"));
                self.relook(*sid)?;
            }
        }
        // Leaders: gather a quorum, establish an epoch, sync and commit.
        for sid in &ids {
            let Activity::Leading {
                since,
                last_quorum,
                established,
            } = self.nodes[sid].activity
            else {
                continue;
            };
            let followers: BTreeSet<ServerId> = self
                .nodes
                .values()
                .filter(|n| {
                    // Learners that reached this leader in this heartbeat (see above).
                    matches!(n.activity, Activity::Learning { leader, last_contact, .. }
                        if leader == *sid && last_contact == self.now)
                })
                .map(|n| n.id)
                .collect();
            let mut voters: BTreeSet<ServerId> = followers
                .iter()
                .copied()
                .filter(|f| self.spec.verifier.is_voter(*f))
                .collect();
            voters.insert(*sid);
            let has_quorum = self.spec.verifier.contains_quorum(&voters);
            match established {
                None if has_quorum => {
                    // An oracle: one above every accepted epoch in the ensemble. Real discovery
                    // takes a quorum's, which can leave a minority whose accepted epoch is higher
                    // refusing the leader until the next election (Learner.registerWithLeader);
                    // that ZooKeeper behaviour lies outside the election and would only make the
                    // liveness check flaky here.
                    let epoch = self
                        .nodes
                        .values()
                        .map(|n| n.accepted_epoch)
                        .max()
                        .unwrap_or(0)
                        + 1;
                    if let Some(other) = self.established.insert(epoch, *sid) {
                        return Err(self
                            .violation(format!("epoch {epoch} established by {other} and {sid}")));
                    }
                    self.log(format!(
                        "{sid} establishes epoch {epoch} with {:?}",
                        voters.iter().map(|v| v.0).collect::<Vec<_>>()
                    ));
                    let history = self.nodes[sid].data.last_logged_zxid;
                    for v in voters.iter().chain(followers.iter()) {
                        self.sync_learner(*v, epoch, history);
                    }
                    if let Activity::Leading {
                        established,
                        last_quorum,
                        ..
                    } = &mut self.nodes.get_mut(sid).expect("node").activity
                    {
                        *established = Some(epoch);
                        *last_quorum = self.now;
                    }
                }
                None => {
                    if self.now - since > LEADER_TIMEOUT_MS {
                        self.log(format!("{sid} gives up leading: no quorum"));
                        self.relook(*sid)?;
                    }
                }
                Some(epoch) if has_quorum => {
                    // Late joiners are synced; then, sometimes, a transaction commits on the leader
                    // and on each follower that is not lagging.
                    let history = self.nodes[sid].data.last_logged_zxid;
                    for f in &followers {
                        let synced = matches!(
                            self.nodes[f].activity,
                            Activity::Learning { synced: true, .. }
                        );
                        if !synced {
                            if self.nodes[f].accepted_epoch > epoch {
                                // Learner.registerWithLeader refuses a leader behind its
                                // accepted epoch.
                                self.log(format!("{f} refuses leader {sid}: epoch {epoch} is old"));
                                self.relook(*f)?;
                            } else {
                                self.sync_learner(*f, epoch, history);
                            }
                        }
                    }
                    let followers: BTreeSet<ServerId> = followers
                        .into_iter()
                        .filter(|f| self.nodes[f].election.state() != ServerState::Looking)
                        .collect();
                    if self.rng.chance(30) {
                        let next = if history.epoch().0 as i64 == epoch {
                            Zxid(history.0 + 1)
                        } else {
                            Zxid((epoch << 32) | 1)
                        };
                        self.nodes.get_mut(sid).expect("node").data.last_logged_zxid = next;
                        for f in &followers {
                            if self.rng.chance(80) {
                                self.nodes.get_mut(f).expect("node").data.last_logged_zxid = next;
                            }
                        }
                    }
                    if let Activity::Leading { last_quorum, .. } =
                        &mut self.nodes.get_mut(sid).expect("node").activity
                    {
                        *last_quorum = self.now;
                    }
                }
                Some(_) => {
                    if self.now - last_quorum > LEADER_TIMEOUT_MS {
                        self.log(format!("{sid} loses its quorum"));
                        self.relook(*sid)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A learner takes the leader's history and epoch (what DIFF/SNAP/TRUNC plus NEWLEADER do).
    fn sync_learner(&mut self, sid: ServerId, epoch: i64, history: Zxid) {
        let node = self.nodes.get_mut(&sid).expect("node");
        node.accepted_epoch = node.accepted_epoch.max(epoch);
        node.data.current_epoch = epoch;
        node.data.last_logged_zxid = history;
        node.election.update_peer_epoch(epoch);
        if let Activity::Learning { synced, .. } = &mut node.activity {
            *synced = true;
        }
    }

    /// When the server's last election ended.
    fn decided_at(&self, sid: ServerId) -> u64 {
        self.decisions
            .iter()
            .rev()
            .find(|d| d.node == sid)
            .map_or(0, |d| d.at_ms)
    }

    fn relook(&mut self, sid: ServerId) -> Result<(), Violation> {
        self.leading_seen.retain(|(to, _)| *to != sid);
        let node = self.nodes.get_mut(&sid).expect("node");
        node.activity = Activity::Looking;
        let data = node.data;
        let out = node.election.start(self.now, data);
        self.perform(sid, out.actions)
    }

    /// Invariants that hold between events (3, and engine/activity agreement).
    pub fn check(&self) -> Result<(), Violation> {
        let observers = self.spec.verifier.observers();
        for n in self.nodes.values() {
            if n.activity == Activity::Down {
                continue;
            }
            if let Some(o) = n.election.tally_members().intersection(observers).next() {
                return Err(self.violation(format!("observer {o} in {}'s tally", n.id)));
            }
            let looking = n.activity == Activity::Looking;
            if looking != n.election.is_looking() {
                return Err(self.violation(format!(
                    "{} engine looking={} but activity {:?}",
                    n.id,
                    n.election.is_looking(),
                    n.activity
                )));
            }
            if observers.contains(&n.id) && n.election.state() == ServerState::Leading {
                return Err(self.violation(format!("observer {} leads", n.id)));
            }
        }
        Ok(())
    }
}

/// The four numbers that identify a vote in a tally.
fn vote_key(n: &Notification) -> [i64; 4] {
    [n.leader, n.zxid, n.election_epoch, n.peer_epoch]
}

fn show(n: &Notification) -> String {
    let leader = if n.leader == i64::MIN {
        "-".to_string()
    } else {
        n.leader.to_string()
    };
    let zxid = if n.zxid == i64::MIN {
        "-".to_string()
    } else {
        Zxid(n.zxid).to_string()
    };
    let epoch = if n.peer_epoch == i64::MIN {
        "-".to_string()
    } else {
        n.peer_epoch.to_string()
    };
    format!(
        "{:?}(leader={leader} zxid={zxid} round={} epoch={epoch})",
        n.state, n.election_epoch
    )
}

/// A config text in `QuorumMaj.toString`'s shape (addresses are placeholders: the engine only
/// carries the text and reads its version).
fn render_config(q: &QuorumVerifier) -> String {
    let mut out = String::new();
    let mut all: BTreeMap<ServerId, &str> = BTreeMap::new();
    for v in q.voters() {
        all.insert(*v, "participant");
    }
    for o in q.observers() {
        all.insert(*o, "observer");
    }
    for (sid, role) in all {
        let _ = writeln!(
            out,
            "server.{sid}=127.0.0.1:{}:{}:{role}",
            2888 + sid.0,
            3888 + sid.0
        );
    }
    let _ = write!(out, "version={:x}", q.version());
    out
}

/// What one seeded run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// The seed.
    pub seed: u64,
    /// Voters and observers.
    pub voters: usize,
    /// Observers.
    pub observers: usize,
    /// Hierarchical quorum?
    pub hierarchical: bool,
    /// Decisions taken.
    pub decisions: usize,
    /// Messages delivered.
    pub delivered: u64,
    /// Virtual time from the end of faults to a settled ensemble.
    pub settle_ms: u64,
}

/// A random cluster for `seed`: 1–7 voters, 0–2 observers, a majority or (one run in four) a
/// hierarchical quorum with random groups and weights, random boot databases (a minority of voters
/// may have an untrusted empty one, zxid -1), and random network parameters (swarm testing).
pub fn random_cluster(rng: &mut SplitMix64) -> (ClusterSpec, NetParams) {
    let n_voters = rng.range(1, 7);
    let n_observers = rng.range(0, 2);
    let voters: Vec<ServerId> = (1..=n_voters).map(ServerId).collect();
    let observers: Vec<ServerId> = (n_voters + 1..=n_voters + n_observers)
        .map(ServerId)
        .collect();
    let verifier = if n_voters >= 3 && rng.chance(25) {
        let n_groups = rng.range(1, 3.min(n_voters));
        let mut groups: BTreeMap<u64, BTreeSet<ServerId>> = BTreeMap::new();
        let mut weights = BTreeMap::new();
        for (i, v) in voters.iter().enumerate() {
            // Every group gets a first member of weight 1 so no group is empty or weightless;
            // later members get weights 0..=2.
            let g = if (i as u64) < n_groups {
                i as u64
            } else {
                rng.below(n_groups)
            };
            let w = if (i as u64) < n_groups {
                1
            } else {
                rng.range(0, 2)
            };
            groups.entry(g + 1).or_default().insert(*v);
            weights.insert(*v, w);
        }
        QuorumVerifier::Hierarchical(
            QuorumHierarchical::new(voters.clone(), observers.clone(), groups, &weights)
                .expect("valid groups"),
        )
    } else {
        QuorumVerifier::majority(voters.clone(), observers.clone())
    };
    let mut initial = BTreeMap::new();
    let mut untrusted = BTreeSet::new();
    for sid in voters.iter().chain(observers.iter()) {
        let epoch = rng.range(0, 2) as i64;
        let counter = rng.range(0, 3) as i64;
        let zxid_epoch = rng.range(0, epoch as u64) as i64;
        let mut zxid = (zxid_epoch << 32) | counter;
        if verifier.is_voter(*sid) && rng.chance(10) {
            // An untrusted empty database, allowed only while the rest still forms a quorum.
            let rest: BTreeSet<ServerId> = voters
                .iter()
                .copied()
                .filter(|v| v != sid && !untrusted.contains(v))
                .collect();
            if verifier.contains_quorum(&rest) {
                untrusted.insert(*sid);
                zxid = -1;
            }
        }
        initial.insert(
            *sid,
            LocalState {
                last_logged_zxid: Zxid(zxid),
                current_epoch: epoch,
            },
        );
    }
    let max_delay_ms = match rng.below(4) {
        0 => 5,
        1 => 50,
        2 => 150,
        // Slower than the finalize wait: decisions on stale tallies happen.
        _ => 700,
    };
    let net = NetParams {
        min_delay_ms: 1,
        max_delay_ms,
        drop_percent: [0, 0, 5, 20][rng.below(4) as usize],
    };
    (ClusterSpec { verifier, initial }, net)
}

/// Length of the fault phase of [`run_seed`].
pub const FAULT_PHASE_MS: u64 = 40_000;

/// One seeded run: a random cluster boots; for [`FAULT_PHASE_MS`] servers crash and restart and the
/// network partitions and heals at random, with invariants checked after every event; then the
/// network heals and servers come back (in half the runs a minority stays crashed or cut off), and
/// the ensemble must settle within [`LIVENESS_BOUND_MS`].
pub fn run_seed(seed: u64) -> Result<RunSummary, Violation> {
    run_seed_traced(seed, false)
}

/// [`run_seed`], optionally recording every message in the trace (for replaying a failure).
pub fn run_seed_traced(seed: u64, full_trace: bool) -> Result<RunSummary, Violation> {
    let mut rng = SplitMix64::new(seed);
    let (spec, net) = random_cluster(&mut rng);
    let ids: Vec<ServerId> = spec.servers().into_iter().collect();
    let summary_base = (
        spec.verifier.voters().len(),
        spec.verifier.observers().len(),
        matches!(spec.verifier, QuorumVerifier::Hierarchical(_)),
    );
    let mut sim = Sim::new(spec, net, rng.next_u64());
    sim.full_trace = full_trace;
    let mut faults = rng.fork();
    let crash_percent = faults.range(0, 6);
    let partition_percent = faults.range(0, 4);
    sim.log(format!(
        "seed {seed}: servers {ids:?} {:?} net {net:?} crash {crash_percent}% partition {partition_percent}% per 500 ms",
        sim.spec.verifier
    ));
    sim.start_all()?;
    let mut down_until: BTreeMap<ServerId, u64> = BTreeMap::new();
    let mut heal_at: Option<u64> = None;
    let mut t = 0;
    while t < FAULT_PHASE_MS {
        t += 500;
        sim.run_until(t)?;
        // Restarts that are due.
        let due: Vec<ServerId> = down_until
            .iter()
            .filter(|(_, at)| **at <= t)
            .map(|(s, _)| *s)
            .collect();
        for sid in due {
            down_until.remove(&sid);
            sim.boot(sid)?;
        }
        if faults.chance(crash_percent) {
            let sid = ids[faults.below(ids.len() as u64) as usize];
            if let std::collections::btree_map::Entry::Vacant(slot) = down_until.entry(sid) {
                sim.crash(sid);
                slot.insert(t + faults.range(500, 10_000));
            }
        }
        if heal_at.is_some_and(|h| h <= t) {
            sim.heal();
            heal_at = None;
        }
        if heal_at.is_none() && faults.chance(partition_percent) {
            let mut a = Vec::new();
            let mut b = Vec::new();
            for sid in &ids {
                if faults.chance(50) {
                    a.push(sid.0);
                } else {
                    b.push(sid.0);
                }
            }
            sim.partition(&[&a, &b]);
            heal_at = Some(t + faults.range(500, 15_000));
        }
    }
    // Liveness phase: the network behaves and every server comes back, except, in half the runs,
    // a minority (servers whose absence still leaves a quorum of voters with trusted databases)
    // that stays crashed or cut off: whenever a quorum can talk, it must elect.
    let mut excluded: BTreeSet<ServerId> = BTreeSet::new();
    if faults.chance(50) {
        for sid in &ids {
            // Voters with an untrusted empty database cannot vote, so they do not count.
            let mut rest: BTreeSet<ServerId> = sim.spec.verifier.voters().clone();
            rest.retain(|v| {
                v != sid && !excluded.contains(v) && sim.data(v.0).last_logged_zxid != Zxid::NONE
            });
            if faults.chance(40) && sim.spec.verifier.contains_quorum(&rest) {
                excluded.insert(*sid);
            }
        }
    }
    let isolate = faults.chance(50);
    for sid in &ids {
        let down = down_until.contains_key(sid);
        match (excluded.contains(sid), down) {
            (false, true) => sim.boot(*sid)?,
            (true, false) if !isolate => sim.crash(*sid),
            _ => {}
        }
    }
    sim.heal();
    if isolate && !excluded.is_empty() {
        let cut: Vec<u64> = excluded.iter().map(|s| s.0).collect();
        sim.partition(&[&cut]);
    }
    sim.log(format!(
        "liveness phase; excluded {excluded:?} isolated {isolate}"
    ));
    sim.set_net(NetParams {
        drop_percent: 0,
        ..net
    });
    let healed = sim.now();
    match sim.run_until_settled(healed + LIVENESS_BOUND_MS)? {
        Some((_, at)) => Ok(RunSummary {
            seed,
            voters: summary_base.0,
            observers: summary_base.1,
            hierarchical: summary_base.2,
            decisions: sim.decisions().len(),
            delivered: sim.delivered(),
            settle_ms: at - healed,
        }),
        None => Err(sim.violation(format!(
            "no settled leader {LIVENESS_BOUND_MS} ms after healing"
        ))),
    }
}
