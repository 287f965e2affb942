//! Fast leader election (ZooKeeper's `electionAlg=3`) as a sans-IO state machine: the
//! `FastLeaderElection.lookForLeader` loop and its `WorkerReceiver` answering rules, with time and
//! messages as inputs and an [`Outbox`] of notifications to send plus the final [`Elected`] verdict
//! as output.
//!
//! One [`Election`] lives as long as the server, like Java's `FastLeaderElection` object: it keeps the
//! logical clock (the election round) across elections and answers LOOKING peers while the server
//! leads, follows or observes. It does not open connections, frame messages or persist anything;
//! the driver's obligations are listed in `docs/zab.md` ("The election engine").
//!
//! Every rule cites the Java method it mirrors; behaviour that looks odd (the finalize wait drops
//! the notifications it does not act on, a LOOKING reply to an observer carries the previous
//! election's vote) is Java's, kept so mixed ensembles elect the same leader.

use crate::ids::{ServerId, Zxid};
use crate::proto::quorum::{Notification, ServerState, NOTIFICATION_VERSION};
use crate::zab::quorum::QuorumVerifier;
use crate::zab::vote::{Candidate, Vote};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// `FastLeaderElection.minNotificationInterval` / `finalizeWait`: 200 ms.
pub const FINALIZE_WAIT_MS: u64 = 200;
/// `FastLeaderElection.maxNotificationInterval`: 60 s.
pub const MAX_NOTIFICATION_INTERVAL_MS: u64 = 60_000;
/// Notifications received before the first [`Election::start`] are kept up to this many (the
/// `QuorumCnxManager` receive queue's capacity), oldest dropped first.
pub const PENDING_CAPACITY: usize = 100;

/// Whether this server may vote (`QuorumPeer.LearnerType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LearnerType {
    /// A participant: votes when it is in the voting set, follows otherwise.
    Participant,
    /// An observer: never votes, ends an election OBSERVING.
    Observer,
}

/// The role an election ends in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// This server is the leader.
    Leading,
    /// A participant following the leader.
    Following,
    /// An observer of the leader.
    Observing,
}

impl Role {
    /// The `ServerState` the role reports in notifications.
    pub fn server_state(self) -> ServerState {
        match self {
            Role::Leading => ServerState::Leading,
            Role::Following => ServerState::Following,
            Role::Observing => ServerState::Observing,
        }
    }
}

/// Which tally ended the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tally {
    /// A quorum of this round's votes agreed with this server's proposal, and the finalize wait
    /// brought nothing better (`lookForLeader`'s LOOKING case).
    Round,
    /// A quorum of this round's votes, some from servers already out of election, agreed on a leader
    /// that announced itself LEADING (`receivedFollowingNotification`, first half).
    RoundOutOfElection,
    /// A quorum of out-of-election servers (any round) follow a leader that announced itself
    /// LEADING: a server joining an established ensemble (`outofelection`).
    OutOfElection,
}

/// The outcome of an election (Java's final `Vote` plus the state `setPeerState` chooses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Elected {
    /// The leader.
    pub leader: ServerId,
    /// The leader's last zxid as the deciding votes state it.
    pub zxid: Zxid,
    /// The round of the deciding votes (this server's logical clock afterwards).
    pub election_epoch: i64,
    /// The leader's epoch as the deciding votes state it.
    pub peer_epoch: i64,
    /// What this server becomes.
    pub role: Role,
    /// Which tally decided.
    pub tally: Tally,
    /// The voters whose votes formed the quorum (never an observer).
    pub supporters: BTreeSet<ServerId>,
}

/// One output of the engine. The driver performs them in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `notification` to one peer (a reply).
    Send {
        /// The recipient.
        to: ServerId,
        /// The message.
        notification: Notification,
    },
    /// Send `notification` to each of `to` (`sendNotifications`: every voter of the committed and
    /// last-seen configurations except this server, whose copy the engine loops back itself).
    Broadcast {
        /// The recipients, ascending.
        to: Vec<ServerId>,
        /// The message.
        notification: Notification,
    },
    /// The election is over. Always the last action of its outbox.
    Elected(Elected),
    /// A LOOKING server received a configuration newer than its committed one. Java adopts it
    /// (`processReconfig`) and restarts the election when membership changed; the peer does the same
    /// when `reconfigEnabled` (see `zab::reconfig`).
    NewerConfig {
        /// Who sent it.
        from: ServerId,
        /// Its `version=`.
        version: i64,
        /// The configuration text.
        config: Vec<u8>,
    },
    /// This server leads and `from` is looking (Java's `Leader.reportLookingSid`, used for
    /// `leader.maxTimeToWaitForEpoch`).
    PeerLooking {
        /// The looking peer.
        from: ServerId,
    },
}

/// What one input produced.
#[must_use = "the outbox holds messages to send and possibly the election's outcome"]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    /// In the order the driver must perform them.
    pub actions: Vec<Action>,
}

impl Outbox {
    /// The election outcome, if this input ended the election.
    pub fn elected(&self) -> Option<&Elected> {
        self.actions.iter().find_map(|a| match a {
            Action::Elected(e) => Some(e),
            _ => None,
        })
    }

    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// What the local database says, read by the driver when an election starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LocalState {
    /// The last zxid in the log after recovery (`getLastLoggedZxid`); `Zxid::NONE` (-1) marks an
    /// untrusted empty database, which neither casts nor accepts LOOKING votes.
    pub last_logged_zxid: Zxid,
    /// The `currentEpoch` file's value.
    pub current_epoch: i64,
}

/// Static settings of an election engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElectionConfig {
    /// This server's myid.
    pub my_id: ServerId,
    /// Participant or observer (from its `server.N` line or `peerType`).
    pub learner_type: LearnerType,
    /// The committed configuration's quorum rule.
    pub verifier: QuorumVerifier,
    /// The last-seen (proposed, not yet committed) configuration; it takes part only when its
    /// version is higher than the committed one's (`getVoteTracker`).
    pub last_seen: Option<QuorumVerifier>,
    /// The committed configuration text (§4.6) sent in every notification.
    pub config_text: Vec<u8>,
    /// The first notification timeout and the finalize wait (`minNotificationInterval`, 200 ms).
    pub min_notification_interval_ms: u64,
    /// The timeout doubles up to this (`maxNotificationInterval`, 60 s).
    pub max_notification_interval_ms: u64,
    /// How long a quorum must stay unchallenged before the election ends (`finalizeWait`, 200 ms).
    pub finalize_wait_ms: u64,
    /// outpost's extension (`outpost.election.finalizeEarly`): end the finalize wait at once when
    /// every voter has either agreed with the proposal in this round or is unreachable (the transport's
    /// last connect to it failed), since nothing that could change the outcome can still arrive.
    /// False is Java's behaviour: always wait `finalize_wait_ms` of silence.
    pub finalize_early: bool,
}

impl ElectionConfig {
    /// ZooKeeper's defaults; observers are recognised from the verifier's observer set.
    pub fn new(my_id: ServerId, verifier: QuorumVerifier, config_text: Vec<u8>) -> ElectionConfig {
        let learner_type = if verifier.observers().contains(&my_id) {
            LearnerType::Observer
        } else {
            LearnerType::Participant
        };
        ElectionConfig {
            my_id,
            learner_type,
            verifier,
            last_seen: None,
            config_text,
            min_notification_interval_ms: FINALIZE_WAIT_MS,
            max_notification_interval_ms: MAX_NOTIFICATION_INTERVAL_MS,
            finalize_wait_ms: FINALIZE_WAIT_MS,
            finalize_early: false,
        }
    }
}

/// Counters for metrics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ElectionStats {
    /// Payloads that did not decode (ignored, as `WorkerReceiver` does).
    pub malformed: u64,
    /// Notifications the election loop ignored (sender or proposed leader not a voter, stale round,
    /// untrusted zxid, OBSERVING sender).
    pub ignored: u64,
    /// Notifications the finalize wait consumed without acting on them.
    pub dropped_in_finalize: u64,
    /// Notification timeouts (each resends the proposal).
    pub timeouts: u64,
}

/// The fast leader election engine of one server.
///
/// Inputs: [`Election::start`], [`Election::receive`] (or [`Election::receive_bytes`]),
/// [`Election::tick`], [`Election::update_peer_epoch`]. Every input returns an [`Outbox`].
#[derive(Clone, Debug)]
pub struct Election {
    cfg: ElectionConfig,
    /// `self.getPeerState()`.
    state: ServerState,
    /// True while `lookForLeader` runs.
    started: bool,
    /// `logicalclock`: the election round.
    logical_clock: i64,
    /// `proposedLeader`, `proposedZxid`, `proposedEpoch`.
    proposal: Candidate,
    /// `getInitId()`, `getInitLastLoggedZxid()`, `getPeerEpoch()` of the running election.
    init: Candidate,
    /// `QuorumPeer.currentVote`: the last election's result, or this server's own vote before the
    /// first one ends.
    current_vote: Option<Vote>,
    /// This round's votes by sender.
    recvset: BTreeMap<ServerId, Vote>,
    /// Votes of servers that are out of election, by sender.
    outofelection: BTreeMap<ServerId, Vote>,
    /// The current notification timeout.
    not_timeout_ms: u64,
    /// When the election loop's poll times out.
    next_timeout_at: u64,
    /// While the finalize wait runs: when it ends, and the quorum that started it.
    finalize: Option<(u64, BTreeSet<ServerId>)>,
    /// Notifications to self (`QuorumCnxManager.toSend` to one's own sid goes straight to the
    /// receive queue).
    loopback: VecDeque<Notification>,
    /// Notifications received before the first start.
    pending: VecDeque<(ServerId, Notification)>,
    /// Servers the transport could not reach on its last attempt (see
    /// [`ElectionConfig::finalize_early`]).
    unreachable: BTreeSet<ServerId>,
    /// Voters whose agreeing vote the running finalize wait consumed unread; only the early-finalize
    /// check reads it (the decision's supporters stay Java's).
    late_agreeing: BTreeSet<ServerId>,
    /// With [`ElectionConfig::finalize_early`]: voters that answered this round as FOLLOWING or
    /// LEADING, each with when this server sends them its proposal again (once per round; `None` once
    /// sent). See [`RECHECK_MS`].
    recheck: BTreeMap<ServerId, Option<u64>>,
    stats: ElectionStats,
}

/// How long after a voter answered a LOOKING notification as FOLLOWING or LEADING this server sends
/// it its proposal again (outpost's extension, with [`ElectionConfig::finalize_early`]). When a leader
/// dies, its followers notice within a fraction of a millisecond of each other; a notification that
/// reaches a follower in that window is answered with its old vote and dropped (Java's
/// `WorkerReceiver` does the same), and the sender, whose vote was better, sends nothing more until
/// its poll times out, at least 200 ms later and restarted by every message it gets. Seen in failover
/// rounds as the new leader deciding 220-470 ms after the kill instead of a millisecond. One more
/// notification shortly after reaches the follower once it looks; a peer that still follows only
/// answers again.
pub const RECHECK_MS: u64 = 20;

impl Election {
    /// A new engine, not yet looking: call [`Election::start`].
    pub fn new(cfg: ElectionConfig) -> Election {
        Election {
            not_timeout_ms: cfg.min_notification_interval_ms,
            cfg,
            state: ServerState::Looking,
            started: false,
            logical_clock: 0,
            proposal: Candidate {
                leader: -1,
                zxid: -1,
                peer_epoch: 0,
            },
            init: Candidate::NOBODY,
            current_vote: None,
            recvset: BTreeMap::new(),
            outofelection: BTreeMap::new(),
            next_timeout_at: 0,
            finalize: None,
            loopback: VecDeque::new(),
            pending: VecDeque::new(),
            unreachable: BTreeSet::new(),
            late_agreeing: BTreeSet::new(),
            recheck: BTreeMap::new(),
            stats: ElectionStats::default(),
        }
    }

    // ----- inputs -----

    /// Starts an election (`QuorumPeer` going LOOKING, then `lookForLeader`): increments the logical
    /// clock, proposes this server (or nobody, for an observer or non-voting participant) and sends
    /// the proposal to every voter. `local` is read from the database now, since it changes between
    /// elections. Calling it while already looking starts a new round.
    pub fn start(&mut self, now_ms: u64, local: LocalState) -> Outbox {
        let mut out = Outbox::default();
        if self.current_vote.is_none() {
            // QuorumPeer.startLeaderElection: the vote reported before any election ended.
            self.current_vote = Some(Vote::looking(
                self.cfg.my_id.0 as i64,
                local.last_logged_zxid.0,
                -1,
                local.current_epoch,
            ));
        }
        self.state = ServerState::Looking;
        self.started = true;
        self.init = self.initial_candidate_for(local);
        self.logical_clock += 1;
        self.proposal = self.init;
        self.recvset.clear();
        self.outofelection.clear();
        self.finalize = None;
        self.loopback.clear();
        self.recheck.clear();
        self.not_timeout_ms = self.cfg.min_notification_interval_ms;
        self.next_timeout_at = now_ms + self.not_timeout_ms;
        self.send_notifications(&mut out);
        let pending: Vec<_> = self.pending.drain(..).collect();
        for (from, n) in pending {
            if self.started {
                self.election_step(from, n, now_ms, &mut out);
            }
        }
        self.drain_loopback(now_ms, &mut out);
        out
    }

    /// A notification from `from` (the sid its election connection's handshake named).
    pub fn receive(&mut self, from: ServerId, n: Notification, now_ms: u64) -> Outbox {
        let mut out = Outbox::default();
        self.on_notification(from, n, now_ms, &mut out);
        self.drain_loopback(now_ms, &mut out);
        out
    }

    /// An election message payload from `from`; one that does not decode is counted and ignored.
    pub fn receive_bytes(&mut self, from: ServerId, payload: &[u8], now_ms: u64) -> Outbox {
        match Notification::decode(payload) {
            Ok(n) => self.receive(from, n, now_ms),
            Err(_) => {
                self.stats.malformed += 1;
                Outbox::default()
            }
        }
    }

    /// Time passes. Ends the finalize wait when it expires; otherwise, when the loop's poll times
    /// out, resends the proposal and doubles the timeout (up to the maximum). Call it at
    /// [`Election::next_deadline`] or more often.
    pub fn tick(&mut self, now_ms: u64) -> Outbox {
        let mut out = Outbox::default();
        if !self.is_looking() {
            return out;
        }
        self.send_due_rechecks(now_ms, &mut out);
        if let Some((deadline, _)) = &self.finalize {
            if now_ms >= *deadline {
                self.finish_round(&mut out);
            }
            return out;
        }
        if now_ms >= self.next_timeout_at {
            // Java resends when some peer's queue is empty (`haveDelivered`) and otherwise calls
            // `connectAll`; a driver that (re)connects to a peer when it has something to send for
            // it covers both.
            self.stats.timeouts += 1;
            self.send_notifications(&mut out);
            self.not_timeout_ms =
                (self.not_timeout_ms * 2).min(self.cfg.max_notification_interval_ms);
            self.next_timeout_at = now_ms + self.not_timeout_ms;
            self.drain_loopback(now_ms, &mut out);
        }
        out
    }

    /// The transport's view of which servers it cannot reach (its last connect to them failed and no
    /// connection from them has been made since). Only consulted with
    /// [`ElectionConfig::finalize_early`]: a running finalize wait ends now when every voter that has
    /// not agreed is in this set.
    pub fn set_unreachable(&mut self, unreachable: BTreeSet<ServerId>) -> Outbox {
        let mut out = Outbox::default();
        self.unreachable = unreachable;
        if self.is_looking() {
            self.finalize_early(&mut out);
        }
        out
    }

    /// `QuorumPeer.updateElectionVote`: after syncing with the leader of a new epoch, the vote this
    /// server reports to LOOKING peers carries that epoch, so every member reports the same vote.
    pub fn update_peer_epoch(&mut self, peer_epoch: i64) {
        if let Some(v) = &mut self.current_vote {
            v.peer_epoch = peer_epoch;
        }
    }

    // ----- observation -----

    /// When [`Election::tick`] next has something to do, if anything.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.is_looking() {
            return None;
        }
        let main = match &self.finalize {
            Some((deadline, _)) => *deadline,
            None => self.next_timeout_at,
        };
        let recheck = self.recheck.values().flatten().min().copied();
        Some(recheck.map_or(main, |r| r.min(main)))
    }

    /// Sends the proposal again to each voter whose [`RECHECK_MS`] has passed.
    fn send_due_rechecks(&mut self, now_ms: u64, out: &mut Outbox) {
        let due: Vec<ServerId> = self
            .recheck
            .iter()
            .filter(|(_, at)| at.is_some_and(|at| now_ms >= at))
            .map(|(sid, _)| *sid)
            .collect();
        if due.is_empty() {
            return;
        }
        let n = self.proposal_notification();
        for sid in due {
            self.recheck.insert(sid, None);
            out.actions.push(Action::Send {
                to: sid,
                notification: n.clone(),
            });
        }
    }

    /// True while an election runs.
    pub fn is_looking(&self) -> bool {
        self.started && self.state == ServerState::Looking
    }

    /// The state notifications report.
    pub fn state(&self) -> ServerState {
        self.state
    }

    /// The logical clock (election round).
    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    /// The current proposal (`getVote()`).
    pub fn proposal(&self) -> Candidate {
        self.proposal
    }

    /// The vote the running (or last) election started from (`getInitId()` …).
    pub fn initial_candidate(&self) -> Candidate {
        self.init
    }

    /// `QuorumPeer.currentVote`.
    pub fn current_vote(&self) -> Option<Vote> {
        self.current_vote
    }

    /// Every server with a vote in either tally of the running election.
    pub fn tally_members(&self) -> BTreeSet<ServerId> {
        self.recvset
            .keys()
            .chain(self.outofelection.keys())
            .copied()
            .collect()
    }

    /// True while the finalize wait runs.
    pub fn is_finalizing(&self) -> bool {
        self.finalize.is_some()
    }

    /// Counters.
    pub fn stats(&self) -> ElectionStats {
        self.stats
    }

    /// Adopts new configurations (`QuorumPeer.setQuorumVerifier` / `setLastSeenQuorumVerifier`): the
    /// committed verifier and its text, the last-seen one, and this server's learner type in the
    /// committed one (an observer there observes, a voter participates, and a server it does not name
    /// keeps its type, as `QuorumPeer.updateLearnerType` does). A
    /// running election keeps its round; the caller restarts it when membership changed (Java's
    /// `restartLeaderElection`).
    pub fn reconfigure(
        &mut self,
        verifier: QuorumVerifier,
        last_seen: Option<QuorumVerifier>,
        config_text: Vec<u8>,
    ) {
        // `QuorumPeer.updateLearnerType`: a server the new configuration does not name keeps its
        // type (a joining observer that adopted a leader's bumped configuration still observes).
        if verifier.observers().contains(&self.cfg.my_id) {
            self.cfg.learner_type = LearnerType::Observer;
        } else if verifier.is_voter(self.cfg.my_id) {
            self.cfg.learner_type = LearnerType::Participant;
        }
        self.cfg.verifier = verifier;
        self.cfg.last_seen = last_seen;
        self.cfg.config_text = config_text;
    }

    /// `QuorumPeer.updateVote` + `updateServerState` after a reconfig named a designated leader:
    /// Java skips the election and takes the role at once; the vote becomes (`leader`, `zxid`) in the
    /// current round with this server's new state, so LOOKING peers are pointed at the new leader.
    /// Returns the role this server takes (leading when it is the designated leader).
    pub fn adopt_leader(&mut self, leader: ServerId, zxid: Zxid) -> Role {
        let role = if leader == self.cfg.my_id {
            Role::Leading
        } else if self.cfg.learner_type == LearnerType::Participant {
            Role::Following
        } else {
            Role::Observing
        };
        let peer_epoch = self.current_vote.map_or(-1, |v| v.peer_epoch);
        self.state = role.server_state();
        self.started = false;
        self.finalize = None;
        self.recvset.clear();
        self.outofelection.clear();
        self.loopback.clear();
        self.current_vote = Some(Vote::looking(
            leader.0 as i64,
            zxid.0,
            self.logical_clock,
            peer_epoch,
        ));
        role
    }

    /// The settings.
    pub fn config(&self) -> &ElectionConfig {
        &self.cfg
    }

    // ----- WorkerReceiver -----

    fn on_notification(&mut self, from: ServerId, n: Notification, now_ms: u64, out: &mut Outbox) {
        if n.version > 1 {
            if let Some(version) = config_version(&n.config) {
                if version > self.cfg.verifier.version() && self.state == ServerState::Looking {
                    out.actions.push(Action::NewerConfig {
                        from,
                        version,
                        config: n.config.clone(),
                    });
                }
            }
        }
        if !self.is_valid_voter(from) {
            // Rule 1: a non-voter (an observer) gets this server's current vote at once and is
            // never tallied. Java would dereference a null vote before the first start; here there
            // is simply no answer yet.
            if let Some(cv) = self.current_vote {
                let reply = self.notification(
                    cv.leader,
                    cv.zxid,
                    self.logical_clock,
                    self.state,
                    cv.peer_epoch,
                );
                out.actions.push(Action::Send {
                    to: from,
                    notification: reply,
                });
            }
            return;
        }
        if self.state == ServerState::Looking {
            // Rule 2: a LOOKING sender lagging behind this round gets this server's proposal.
            if n.state == ServerState::Looking && n.election_epoch < self.logical_clock {
                let p = self.proposal;
                let reply = self.notification(
                    p.leader,
                    p.zxid,
                    self.logical_clock,
                    ServerState::Looking,
                    p.peer_epoch,
                );
                if from == self.cfg.my_id {
                    self.loopback.push_back(reply);
                } else {
                    out.actions.push(Action::Send {
                        to: from,
                        notification: reply,
                    });
                }
            }
            if self.started {
                self.election_step(from, n, now_ms, out);
            } else {
                if self.pending.len() == PENDING_CAPACITY {
                    self.pending.pop_front();
                }
                self.pending.push_back((from, n));
            }
        } else if n.state == ServerState::Looking {
            // Rule 3: out of election, answer a LOOKING peer with the vote that ended the last
            // election (its own round, this server's state).
            if self.state == ServerState::Leading {
                out.actions.push(Action::PeerLooking { from });
            }
            if let Some(cv) = self.current_vote {
                let reply = self.notification(
                    cv.leader,
                    cv.zxid,
                    cv.election_epoch,
                    self.state,
                    cv.peer_epoch,
                );
                if from != self.cfg.my_id {
                    out.actions.push(Action::Send {
                        to: from,
                        notification: reply,
                    });
                }
            }
        }
    }

    // ----- lookForLeader -----

    /// One notification taken off the receive queue by the election loop (or by its finalize wait).
    fn election_step(&mut self, from: ServerId, n: Notification, now_ms: u64, out: &mut Outbox) {
        if self.finalize.is_some() {
            // The finalize wait polls the queue: a notification that beats the proposal is put back
            // and handled by the loop; anything else is consumed unread and the wait restarts.
            if self.beats(&candidate_of(&n), &self.proposal) {
                self.finalize = None;
            } else {
                self.stats.dropped_in_finalize += 1;
                self.finalize = Some((
                    now_ms + self.cfg.finalize_wait_ms,
                    self.finalize.take().map(|f| f.1).unwrap_or_default(),
                ));
                // Java drops the notification unread; only the early-finalize check notes that this
                // voter agrees (the tallies and the supporters are untouched, so the verdict is Java's).
                // A voter that already decided for the proposal in this round (it answers as
                // FOLLOWING or LEADING, e.g. to a recheck) agrees with it just as well.
                let decided_for_proposal =
                    matches!(n.state, ServerState::Following | ServerState::Leading)
                        && n.leader == self.proposal.leader;
                if (n.state == ServerState::Looking && candidate_of(&n) == self.proposal
                    || decided_for_proposal)
                    && n.election_epoch == self.logical_clock
                    && self.is_valid_voter(from)
                {
                    self.late_agreeing.insert(from);
                }
                self.finalize_early(out);
                return;
            }
        }
        // The loop's poll restarts after every message.
        self.next_timeout_at = now_ms + self.not_timeout_ms;
        let leader_is_voter = n.leader >= 0 && self.is_valid_voter(ServerId(n.leader as u64));
        if !(self.is_valid_voter(from) && leader_is_voter) {
            self.stats.ignored += 1;
            return;
        }
        match n.state {
            ServerState::Looking => self.looking_notification(from, n, now_ms, out),
            ServerState::Observing => self.stats.ignored += 1,
            ServerState::Following | ServerState::Leading => {
                if self.cfg.finalize_early && from != self.cfg.my_id {
                    self.recheck
                        .entry(from)
                        .or_insert(Some(now_ms + RECHECK_MS));
                }
                self.received_following_notification(from, n, out)
            }
        }
    }

    /// The LOOKING case of `lookForLeader`.
    fn looking_notification(
        &mut self,
        from: ServerId,
        n: Notification,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        // Servers with an untrusted empty database neither accept nor cast LOOKING votes.
        if self.init.zxid == -1 || n.zxid == -1 {
            self.stats.ignored += 1;
            return;
        }
        let theirs = candidate_of(&n);
        if n.election_epoch > self.logical_clock {
            self.logical_clock = n.election_epoch;
            self.recvset.clear();
            self.proposal = if self.beats(&theirs, &self.init) {
                theirs
            } else {
                self.init
            };
            self.send_notifications(out);
        } else if n.election_epoch < self.logical_clock {
            self.stats.ignored += 1;
            return;
        } else if self.beats(&theirs, &self.proposal) {
            self.proposal = theirs;
            self.send_notifications(out);
        }
        self.recvset.insert(
            from,
            Vote::looking(n.leader, n.zxid, n.election_epoch, n.peer_epoch),
        );
        let target = Vote::looking(
            self.proposal.leader,
            self.proposal.zxid,
            self.logical_clock,
            self.proposal.peer_epoch,
        );
        let acks = self.agreeing(&self.recvset, &target);
        if self.has_all_quorums(&acks) && self.observer_heard_from(self.proposal.leader) {
            self.finalize = Some((now_ms + self.cfg.finalize_wait_ms, acks));
            self.late_agreeing.clear();
            self.finalize_early(out);
        }
    }

    /// With [`ElectionConfig::finalize_early`], ends a running finalize wait when every voter of every
    /// active configuration has agreed with the proposal in this round or is unreachable. Nothing can
    /// then beat the proposal: a reachable voter that has not agreed could still send a better vote,
    /// so its existence keeps the wait; an unreachable one cannot send until it reconnects, and a vote
    /// that arrives after the verdict is exactly what Java's wait also misses once it expires. Safety
    /// never rests on the wait (every deciding voter's vote is at most the proposal), so this only
    /// shortens a failover by the 200 ms Java spends listening for a server that is gone.
    fn finalize_early(&mut self, out: &mut Outbox) {
        if !self.cfg.finalize_early {
            return;
        }
        let Some((_, agreeing)) = &self.finalize else {
            return;
        };
        let settled = self.verifiers().all(|q| {
            q.voters().iter().all(|v| {
                agreeing.contains(v)
                    || self.late_agreeing.contains(v)
                    || self.unreachable.contains(v)
            })
        });
        if settled {
            self.finish_round(out);
        }
    }

    /// An observer decides a LOOKING round only for a leader it heard from in that round. Voters
    /// answer an observer with their previous election's vote (Java's `WorkerReceiver`, kept on the
    /// wire), so after a leader dies an observer can tally a quorum for the dead leader and then wait
    /// out a failed connect; a dead server cannot send, so requiring its own notification avoids that.
    /// outpost's deviation from Java, on the observer's own decision only: observers' votes never
    /// count for anyone, so mixed ensembles elect exactly as before.
    fn observer_heard_from(&self, leader: i64) -> bool {
        self.cfg.learner_type == LearnerType::Participant
            || (leader >= 0 && self.recvset.contains_key(&ServerId(leader as u64)))
    }

    /// `receivedFollowingNotification` (LEADING notifications take the same path; the oracle
    /// tie-break of `receivedLeadingNotification` is not implemented).
    fn received_following_notification(
        &mut self,
        from: ServerId,
        n: Notification,
        out: &mut Outbox,
    ) {
        let theirs = Vote::from_notification(&n);
        if n.election_epoch == self.logical_clock {
            // Stored with version 0 (Java's 5-argument constructor), so against the
            // notification's own vote (version 2) only the leader is compared.
            self.recvset.insert(
                from,
                Vote {
                    version: 0,
                    ..theirs
                },
            );
            let acks = self.agreeing(&self.recvset, &theirs);
            if self.has_all_quorums(&acks)
                && self.check_leader(&self.recvset, n.leader, n.election_epoch)
            {
                self.finish(theirs, Tally::RoundOutOfElection, acks, out);
                return;
            }
        }
        self.outofelection.insert(from, theirs);
        let acks = self.agreeing(&self.outofelection, &theirs);
        if self.has_all_quorums(&acks)
            && self.check_leader(&self.outofelection, n.leader, n.election_epoch)
        {
            self.logical_clock = n.election_epoch;
            self.finish(theirs, Tally::OutOfElection, acks, out);
        }
    }

    /// The finalize wait expired: the proposal wins.
    fn finish_round(&mut self, out: &mut Outbox) {
        let acks = self.finalize.take().map(|f| f.1).unwrap_or_default();
        let end = Vote::looking(
            self.proposal.leader,
            self.proposal.zxid,
            self.logical_clock,
            self.proposal.peer_epoch,
        );
        self.finish(end, Tally::Round, acks, out);
    }

    /// `setPeerState` + `leaveInstance`: the final vote becomes the current vote.
    fn finish(
        &mut self,
        end: Vote,
        tally: Tally,
        supporters: BTreeSet<ServerId>,
        out: &mut Outbox,
    ) {
        let role = if end.leader == self.cfg.my_id.0 as i64 {
            Role::Leading
        } else if self.cfg.learner_type == LearnerType::Participant {
            Role::Following
        } else {
            Role::Observing
        };
        self.state = role.server_state();
        self.started = false;
        self.finalize = None;
        self.recvset.clear();
        self.outofelection.clear();
        self.loopback.clear();
        self.current_vote = Some(Vote::looking(
            end.leader,
            end.zxid,
            end.election_epoch,
            end.peer_epoch,
        ));
        out.actions.push(Action::Elected(Elected {
            leader: ServerId(end.leader as u64),
            zxid: Zxid(end.zxid),
            election_epoch: end.election_epoch,
            peer_epoch: end.peer_epoch,
            role,
            tally,
            supporters,
        }));
    }

    // ----- helpers -----

    /// `getInitId()`, `getInitLastLoggedZxid()`, `getPeerEpoch()`.
    fn initial_candidate_for(&self, local: LocalState) -> Candidate {
        let participant = self.cfg.learner_type == LearnerType::Participant;
        Candidate {
            leader: if self.cfg.verifier.is_voter(self.cfg.my_id) {
                self.cfg.my_id.0 as i64
            } else {
                i64::MIN
            },
            zxid: if participant {
                local.last_logged_zxid.0
            } else {
                i64::MIN
            },
            peer_epoch: if participant {
                local.current_epoch
            } else {
                i64::MIN
            },
        }
    }

    /// `totalOrderPredicate`: a weight-0 candidate never wins.
    fn beats(&self, new: &Candidate, current: &Candidate) -> bool {
        let weight = if new.leader >= 0 {
            self.cfg.verifier.weight(ServerId(new.leader as u64))
        } else {
            // Only reachable in the finalize wait, which does not filter; QuorumMaj says 1.
            match self.cfg.verifier {
                QuorumVerifier::Majority(_) => 1,
                QuorumVerifier::Hierarchical(_) => 0,
            }
        };
        weight != 0 && new.beats(current)
    }

    /// The active configurations: the committed one, plus the last-seen one when it is newer.
    fn verifiers(&self) -> impl Iterator<Item = &QuorumVerifier> {
        let next = self
            .cfg
            .last_seen
            .as_ref()
            .filter(|q| q.version() > self.cfg.verifier.version());
        std::iter::once(&self.cfg.verifier).chain(next)
    }

    /// `validVoter`: a voter of the committed or last-seen configuration.
    fn is_valid_voter(&self, sid: ServerId) -> bool {
        self.cfg.verifier.is_voter(sid)
            || self.cfg.last_seen.as_ref().is_some_and(|q| q.is_voter(sid))
    }

    /// `getVoteTracker`'s ack set: senders whose vote equals `target`, voters only.
    fn agreeing(&self, votes: &BTreeMap<ServerId, Vote>, target: &Vote) -> BTreeSet<ServerId> {
        votes
            .iter()
            .filter(|(sid, v)| target.java_equals(v) && self.verifiers().any(|q| q.is_voter(**sid)))
            .map(|(sid, _)| *sid)
            .collect()
    }

    /// `SyncedLearnerTracker.hasAllQuorums`.
    fn has_all_quorums(&self, acks: &BTreeSet<ServerId>) -> bool {
        self.verifiers().all(|q| q.contains_quorum(acks))
    }

    /// `checkLeader`: another server may be followed only once its own LEADING vote is in the
    /// tally; this server may lead only in the round it is in.
    fn check_leader(
        &self,
        votes: &BTreeMap<ServerId, Vote>,
        leader: i64,
        election_epoch: i64,
    ) -> bool {
        if leader != self.cfg.my_id.0 as i64 {
            leader >= 0
                && votes
                    .get(&ServerId(leader as u64))
                    .is_some_and(|v| v.state == ServerState::Leading)
        } else {
            self.logical_clock == election_epoch
        }
    }

    fn notification(
        &self,
        leader: i64,
        zxid: i64,
        election_epoch: i64,
        state: ServerState,
        peer_epoch: i64,
    ) -> Notification {
        Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version: NOTIFICATION_VERSION,
            config: self.cfg.config_text.clone(),
        }
    }

    /// The proposal as a LOOKING notification of this round.
    fn proposal_notification(&self) -> Notification {
        let p = self.proposal;
        self.notification(
            p.leader,
            p.zxid,
            self.logical_clock,
            ServerState::Looking,
            p.peer_epoch,
        )
    }

    /// `sendNotifications`: the proposal, as LOOKING in this round, to every voter of the committed
    /// and last-seen configurations; this server's own copy is looped back.
    fn send_notifications(&mut self, out: &mut Outbox) {
        let n = self.proposal_notification();
        let mut to: BTreeSet<ServerId> = self.cfg.verifier.voters().clone();
        if let Some(q) = &self.cfg.last_seen {
            to.extend(q.voters().iter().copied());
        }
        if to.remove(&self.cfg.my_id) {
            self.loopback.push_back(n.clone());
        }
        if !to.is_empty() {
            out.actions.push(Action::Broadcast {
                to: to.into_iter().collect(),
                notification: n,
            });
        }
    }

    fn drain_loopback(&mut self, now_ms: u64, out: &mut Outbox) {
        // Each looped-back message either changes nothing or moves the proposal strictly up the vote
        // order (or the round up), so this ends.
        while let Some(n) = self.loopback.pop_front() {
            self.on_notification(self.cfg.my_id, n, now_ms, out);
        }
    }
}

fn candidate_of(n: &Notification) -> Candidate {
    Candidate {
        leader: n.leader,
        zxid: n.zxid,
        peer_epoch: n.peer_epoch,
    }
}

/// The `version=` (hex) of a configuration text, as `QuorumMaj(Properties)` reads it; `None` when
/// there is no parseable version line.
pub fn config_version(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    text.lines().rev().find_map(|line| {
        let value = line.trim().strip_prefix("version")?.trim_start();
        let value = value.strip_prefix(['=', ':'])?.trim();
        u64::from_str_radix(value, 16).ok().map(|v| v as i64)
    })
}
