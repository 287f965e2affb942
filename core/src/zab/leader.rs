//! The leader role: ZooKeeper's `Leader` and `LearnerHandler`, sans-IO.
//!
//! Phases, as `Leader.lead` runs them:
//! 1. **Discovery** (`getEpochToPropose`): learners send FOLLOWERINFO/OBSERVERINFO with their acceptedEpoch;
//!    once this server and a quorum of voters have, the new epoch is `max(acceptedEpoch) + 1`, written to
//!    acceptedEpoch, and every waiting learner gets LEADERINFO.
//! 2. **Epoch acks** (`waitForEpochAck`): ACKEPOCH carries each learner's currentEpoch and last zxid; a
//!    learner ahead of the leader is refused; a quorum of acks lets the leader write currentEpoch.
//! 3. **Learner sync** (`LearnerHandler.syncFollower` + `startForwarding`): DIFF, TRUNC or SNAP by
//!    [`plan_sync`](super::learner_sync::plan_sync), the committed txns the learner misses as PROPOSAL+COMMIT pairs, the proposals still in
//!    flight, then NEWLEADER.
//! 4. **Establishment** (`waitForNewLeaderAck`): a quorum of NEWLEADER ACKs and the leader starts serving;
//!    every synced learner gets UPTODATE.
//! 5. **Broadcast**: each txn the server prepares becomes a PROPOSAL to the followers; a quorum of ACKs
//!    (the leader's own counts once its log fsync covers the txn) commits it, strictly in zxid order:
//!    COMMIT to followers, INFORM to observers, applied here.
//!
//! A handler that connects after establishment goes through 1-4 at once (the epoch is decided). The leader
//! gives up (LOOKING) when a phase outlasts `initLimit` ticks or when the voters it heard from within
//! `syncLimit` ticks no longer form a quorum with it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use crate::ids::{Epoch, ServerId, SessionId, Zxid};
use crate::jute::JuteWriter;
use crate::jute::{JuteReader, Record};
use crate::proto::quorum::{
    decode_session_touches, ForwardedRequest, LearnerInfoView, PacketType, QuorumPacket,
    RevalidateReply, RevalidateRequest, LEARNER_PROTOCOL_VERSION,
};
use crate::proto::quorum_stream::QuorumItem;
use crate::server::standalone::{Input as ServerInput, Mode};
use crate::zab::peer::{EpochFile, LinkId, Peer, PeerAction, PeerRole, RoleState, SyncQueued};
use crate::zab::quorum::QuorumVerifier;
use crate::zab::reconfig::{
    commit_and_activate_data, designated_leader, inform_and_activate_data, reconfig_membership,
    Membership,
};

/// Where the leader is in `Leader.lead`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LeaderPhase {
    /// Collecting learner infos to decide the epoch.
    Discovery,
    /// Epoch decided and written to acceptedEpoch; collecting ACKEPOCHs.
    EpochAcks,
    /// currentEpoch written; learners sync; collecting NEWLEADER ACKs.
    NewLeaderAcks,
    /// Established: serving and broadcasting.
    Broadcast,
}

/// Where one learner's handler is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HandlerState {
    /// Waiting for FOLLOWERINFO / OBSERVERINFO.
    AwaitInfo,
    /// Info received; waiting for the epoch to be decided.
    AwaitEpoch,
    /// LEADERINFO sent; waiting for ACKEPOCH.
    AwaitAckEpoch,
    /// ACKEPOCH received; waiting for currentEpoch to be established before syncing.
    AwaitSync,
    /// Sync decided to try the on-disk txn log (rule 5); waiting for the driver's read.
    AwaitTxnLog,
    /// Sync data and NEWLEADER queued; waiting for the learner's ACK of NEWLEADER.
    AwaitNewLeaderAck,
    /// NEWLEADER acked; waiting for the leader to be established (then UPTODATE).
    AwaitUpToDate,
    /// UPTODATE sent: a full member of the broadcast.
    Active,
}

/// One learner connection (`LearnerHandler`).
#[derive(Debug)]
struct Handler {
    sid: Option<ServerId>,
    observer: bool,
    state: HandlerState,
    /// Last zxid from ACKEPOCH.
    peer_last_zxid: Zxid,
    /// When anything was last received from it.
    last_heard_ms: u64,
    /// Whether proposals and commits are forwarded to it (sync decided, `startForwarding` done).
    forwarding: bool,
}

/// An outstanding proposal.
#[derive(Debug)]
struct Proposal {
    zxid: Zxid,
    entry: Arc<[u8]>,
    acks: BTreeSet<ServerId>,
    /// The configurations whose quorums must ack it (`Proposal.qvAcksetPairs`): the committed one at
    /// proposal time, and the last seen one while a reconfig is in flight. Shared, not cloned per
    /// proposal: every proposal of a stable configuration points at the same verifier.
    verifiers: Vec<Arc<QuorumVerifier>>,
    /// For a reconfig proposal, the configuration it activates (boxed: the queue moves proposals).
    config: Option<Box<Membership>>,
}

/// The outstanding proposals, oldest first. Proposals are made in zxid order and commit in zxid
/// order, so a queue (push at the back, commit from the front) replaces a map: the commit path neither
/// searches nor shifts a tree node's worth of proposals per txn.
#[derive(Debug, Default)]
struct Outstanding(VecDeque<Proposal>);

impl Outstanding {
    fn push(&mut self, p: Proposal) {
        if let Some(last) = self.0.back() {
            assert!(
                p.zxid > last.zxid,
                "proposal {} after {}: proposals must be made in zxid order",
                p.zxid,
                last.zxid
            );
        }
        self.0.push_back(p);
    }

    /// Proposals with a zxid of at most `zxid`, oldest first.
    fn up_to_mut(&mut self, zxid: Zxid) -> impl Iterator<Item = &mut Proposal> {
        self.0.iter_mut().take_while(move |p| p.zxid <= zxid)
    }

    fn iter(&self) -> impl Iterator<Item = &Proposal> {
        self.0.iter()
    }

    fn front(&self) -> Option<&Proposal> {
        self.0.front()
    }

    fn pop_front(&mut self) -> Option<Proposal> {
        self.0.pop_front()
    }
}

/// The leader's state.
#[derive(Debug)]
pub(crate) struct LeaderState {
    phase: LeaderPhase,
    /// The epoch being established (decided from Discovery on).
    new_epoch: Epoch,
    started_ms: u64,
    /// Voters (this server included) whose info counted for the epoch.
    epoch_voters: BTreeSet<ServerId>,
    epoch_acks: BTreeSet<ServerId>,
    newleader_acks: BTreeSet<ServerId>,
    handlers: BTreeMap<LinkId, Handler>,
    outstanding: Outstanding,
    /// The committed configuration's verifier as last shared with a proposal (compared, not cloned,
    /// per proposal).
    shared_verifier: Option<Arc<QuorumVerifier>>,
    last_proposed: Zxid,
    last_ping_ms: u64,
}

impl LeaderState {
    pub(crate) fn links(&self) -> Vec<LinkId> {
        self.handlers.keys().copied().collect()
    }

    /// Forgets a learner's handler (its link is being closed).
    pub(crate) fn remove_handler(&mut self, link: LinkId) {
        self.handlers.remove(&link);
    }

    /// The observing learners (`Leader.observingLearners`: from `startForwarding` on), with whether
    /// UPTODATE was sent.
    pub(crate) fn observer_links(&self) -> Vec<(LinkId, bool)> {
        self.handlers
            .iter()
            .filter(|(_, h)| h.observer && h.forwarding)
            .map(|(l, h)| (*l, h.state == HandlerState::Active))
            .collect()
    }

    /// (sid, observer, synced) for every identified learner.
    pub(crate) fn learner_summary(&self) -> Vec<(ServerId, bool, bool)> {
        self.handlers
            .values()
            .filter_map(|h| {
                h.sid
                    .map(|sid| (sid, h.observer, h.state == HandlerState::Active))
            })
            .collect()
    }

    /// Followers (voting or not) synced with this leader: `isQuorumSynced`'s `forwardingFollowers`.
    pub(crate) fn synced_followers(&self) -> Vec<ServerId> {
        self.handlers
            .values()
            .filter(|h| h.state == HandlerState::Active && !h.observer)
            .filter_map(|h| h.sid)
            .collect()
    }

    pub(crate) fn debug_state(&self) -> String {
        let handlers: Vec<String> = self
            .handlers
            .iter()
            .map(|(l, h)| {
                format!(
                    "{l}:{:?}/{:?}{}",
                    h.sid.map(|s| s.0),
                    h.state,
                    if h.forwarding { "+" } else { "" }
                )
            })
            .collect();
        let outstanding: Vec<String> = self
            .outstanding
            .iter()
            .map(|p| {
                let acks: Vec<u64> = p.acks.iter().map(|s| s.0).collect();
                format!("{}{acks:?}", p.zxid)
            })
            .collect();
        format!(
            "leader {:?} epoch {} last_proposed {} outstanding [{}] handlers [{}]",
            self.phase,
            self.new_epoch.0,
            self.last_proposed,
            outstanding.join(" "),
            handlers.join(" ")
        )
    }

    /// The links whose handler is in `state`, in link order.
    fn links_in(&self, state: HandlerState) -> Vec<LinkId> {
        self.handlers
            .iter()
            .filter(|(_, h)| h.state == state)
            .map(|(l, _)| *l)
            .collect()
    }

    fn link_of(&self, sid: ServerId) -> Option<LinkId> {
        self.handlers
            .iter()
            .rev()
            .find(|(_, h)| h.sid == Some(sid))
            .map(|(l, _)| *l)
    }
}

impl Peer {
    fn leader(&mut self) -> &mut LeaderState {
        match &mut self.role {
            RoleState::Leading(l) => l,
            _ => unreachable!("leader state used outside the leader role"),
        }
    }

    /// `QuorumPeer` entering LEADING: `Leader.lead` begins with this server's own epoch vote.
    pub(crate) fn become_leader(&mut self) {
        let mut epoch_voters = BTreeSet::new();
        if self.cfg.verifier.is_voter(self.cfg.my_id) {
            epoch_voters.insert(self.cfg.my_id);
        }
        let proposed = Epoch(self.accepted_epoch.0.saturating_add(1));
        self.role = RoleState::Leading(Box::new(LeaderState {
            phase: LeaderPhase::Discovery,
            new_epoch: proposed,
            started_ms: self.now_ms,
            epoch_voters,
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            handlers: BTreeMap::new(),
            outstanding: Outstanding::default(),
            shared_verifier: None,
            last_proposed: self.last_logged,
            last_ping_ms: self.now_ms,
        }));
        self.set_role_name(PeerRole::Leading);
        tracing::info!(
            "leading: proposing epoch {} (acceptedEpoch {})",
            proposed.0,
            self.accepted_epoch.0
        );
        self.leader_check_epoch_quorum();
    }

    pub(crate) fn leader_on_connect(&mut self, link: LinkId) {
        let now = self.now_ms;
        self.link_opened(link);
        self.leader().handlers.insert(
            link,
            Handler {
                sid: None,
                observer: false,
                state: HandlerState::AwaitInfo,
                peer_last_zxid: Zxid::NONE,
                last_heard_ms: now,
                forwarding: false,
            },
        );
    }

    pub(crate) fn leader_on_disconnect(&mut self, link: LinkId) {
        if let Some(h) = self.leader().handlers.remove(&link) {
            tracing::info!("learner {:?} disconnected", h.sid);
        }
    }

    fn send_learner(&mut self, link: LinkId, packet: QuorumPacket) {
        self.link_send(link, packet);
    }

    /// Drops a learner that broke the protocol.
    fn drop_learner(&mut self, link: LinkId, why: &str) {
        tracing::warn!("closing learner link {link}: {why}");
        self.stats.protocol_errors += 1;
        self.leader().handlers.remove(&link);
        self.close_learner(link);
    }

    pub(crate) fn leader_on_item(&mut self, link: LinkId, item: QuorumItem) {
        let now = self.now_ms;
        let Some(h) = self.leader().handlers.get_mut(&link) else {
            return;
        };
        h.last_heard_ms = now;
        let state = h.state;
        let packet = match item {
            QuorumItem::Packet(p) => p,
            QuorumItem::Snapshot(_) => return self.drop_learner(link, "a learner sent a snapshot"),
        };
        self.link_received(link, &packet);
        let Some(ty) = packet.packet_type() else {
            return self.drop_learner(link, "unknown packet type");
        };
        match (state, ty) {
            (HandlerState::AwaitInfo, PacketType::FollowerInfo | PacketType::ObserverInfo) => {
                self.leader_on_info(link, ty == PacketType::ObserverInfo, &packet)
            }
            (HandlerState::AwaitInfo, _) => {
                self.drop_learner(link, "first packet is not FOLLOWERINFO/OBSERVERINFO")
            }
            (HandlerState::AwaitAckEpoch, PacketType::AckEpoch) => {
                self.leader_on_ack_epoch(link, &packet)
            }
            (HandlerState::AwaitNewLeaderAck, PacketType::Ack) => {
                self.leader_on_newleader_ack(link, Zxid(packet.zxid))
            }
            (HandlerState::AwaitUpToDate | HandlerState::Active, PacketType::Ack) => {
                self.leader_on_ack(link, Zxid(packet.zxid))
            }
            (HandlerState::Active | HandlerState::AwaitUpToDate, PacketType::Ping) => {
                match decode_session_touches(packet.data_or_empty()) {
                    Ok(touches) if !touches.is_empty() => {
                        self.server
                            .handle(ServerInput::TouchSessions(touches), now as i64);
                        self.route_server_actions();
                    }
                    Ok(_) => {}
                    Err(e) => self.drop_learner(link, &format!("bad PING data: {e}")),
                }
            }
            (HandlerState::Active, PacketType::Request) => self.leader_on_request(link, packet),
            (HandlerState::Active, PacketType::Revalidate) => {
                self.leader_on_revalidate(link, &packet)
            }
            (_, other) => {
                self.drop_learner(link, &format!("unexpected {other:?} in state {state:?}"))
            }
        }
    }

    // ----- discovery -----------------------------------------------------------------------------

    fn leader_on_info(&mut self, link: LinkId, observer: bool, packet: &QuorumPacket) {
        let info = LearnerInfoView::parse(packet.data_or_empty());
        let Some(sid) = info
            .server_id
            .filter(|s| *s >= 0)
            .map(|s| ServerId(s as u64))
        else {
            return self.drop_learner(link, "learner info without a server id");
        };
        // LearnerHandler.run: a learner with a later activated configuration than this leader's is
        // refused (it must not sync from a leader of an older configuration).
        if let Some(v) = info.config_version {
            if v > self.cfg.verifier.version() {
                return self.drop_learner(
                    link,
                    &format!(
                        "server {sid} is ahead of the leader (has a later activated configuration {v:x})"
                    ),
                );
            }
        }
        // A follower outside the voting set is a non-voting follower (Java's too): it syncs and acks,
        // and its acks count only in a configuration where it votes (a voter being added by reconfig
        // must be synced before the reconfig: `isQuorumSynced`).
        let voter = self.cfg.verifier.is_voter(sid);
        let learner_accepted = Zxid(packet.zxid).epoch();
        // A second link from the same server replaces the first (its old connection is dead).
        if let Some(old) = self.leader().link_of(sid) {
            if old != link {
                self.leader().handlers.remove(&old);
                self.close_learner(old);
            }
        }
        let phase = self.leader().phase;
        {
            let l = self.leader();
            let h = l.handlers.get_mut(&link).expect("handler exists");
            h.sid = Some(sid);
            h.observer = observer;
            h.state = HandlerState::AwaitEpoch;
        }
        self.link_identified(link, sid, observer);
        tracing::info!(
            "learner {sid} ({}) connected, acceptedEpoch {}",
            if observer { "observer" } else { "follower" },
            learner_accepted.0
        );
        if phase == LeaderPhase::Discovery {
            let l = self.leader();
            if learner_accepted.0 >= l.new_epoch.0 {
                l.new_epoch = Epoch(learner_accepted.0.saturating_add(1));
            }
            if voter && !observer {
                l.epoch_voters.insert(sid);
            }
            self.leader_check_epoch_quorum();
        } else {
            self.send_leader_info(link);
        }
    }

    fn leader_check_epoch_quorum(&mut self) {
        let verifier = self.cfg.verifier.clone();
        let now = self.now_ms;
        let l = self.leader();
        if l.phase != LeaderPhase::Discovery || !verifier.contains_quorum(&l.epoch_voters) {
            return;
        }
        let epoch = l.new_epoch;
        l.phase = LeaderPhase::EpochAcks;
        l.started_ms = now;
        tracing::info!("epoch {} decided", epoch.0);
        self.accepted_epoch = epoch;
        self.actions.push(PeerAction::WriteEpoch {
            file: EpochFile::Accepted,
            epoch,
        });
        let my_id = self.cfg.my_id;
        if self.is_active_voter(my_id) {
            self.leader().epoch_acks.insert(my_id);
        }
        let waiting = self.leader().links_in(HandlerState::AwaitEpoch);
        for link in waiting {
            self.send_leader_info(link);
        }
        self.leader_check_epoch_ack_quorum();
    }

    fn send_leader_info(&mut self, link: LinkId) {
        let epoch = self.leader().new_epoch;
        if let Some(h) = self.leader().handlers.get_mut(&link) {
            h.state = HandlerState::AwaitAckEpoch;
        }
        let mut data = JuteWriter::new();
        data.write_i32(LEARNER_PROTOCOL_VERSION);
        self.send_learner(
            link,
            QuorumPacket::with_data(
                PacketType::LeaderInfo,
                Zxid::new(epoch, 0).0,
                data.into_inner(),
            ),
        );
    }

    fn leader_on_ack_epoch(&mut self, link: LinkId, packet: &QuorumPacket) {
        let mut r = JuteReader::new(packet.data_or_empty());
        let Ok(learner_current) = r.read_i32() else {
            return self.drop_learner(link, "ACKEPOCH without an epoch");
        };
        let peer_last = Zxid(packet.zxid);
        let my_summary = (i64::from(self.current_epoch.0), self.last_logged);
        let phase = self.leader().phase;
        let (sid, observer) = {
            let h = self
                .leader()
                .handlers
                .get_mut(&link)
                .expect("handler exists");
            h.peer_last_zxid = peer_last;
            h.state = HandlerState::AwaitSync;
            (h.sid.expect("identified"), h.observer)
        };
        if learner_current != -1 {
            // Leader.waitForEpochAck: a learner that is more recent than the leader means the election
            // went wrong; refuse it rather than lose its txns.
            if phase == LeaderPhase::EpochAcks
                && (i64::from(learner_current), peer_last) > my_summary
            {
                return self.drop_learner(
                    link,
                    &format!(
                        "follower {sid} is ahead of the leader (epoch {learner_current}, zxid {peer_last})"
                    ),
                );
            }
            if phase == LeaderPhase::EpochAcks
                && peer_last != Zxid::NONE
                && !observer
                && self.is_active_voter(sid)
            {
                self.leader().epoch_acks.insert(sid);
            }
        }
        if phase == LeaderPhase::EpochAcks {
            self.leader_check_epoch_ack_quorum();
        } else {
            self.sync_learner(link);
        }
    }

    fn leader_check_epoch_ack_quorum(&mut self) {
        let now = self.now_ms;
        let acks = self.leader().epoch_acks.clone();
        if self.leader().phase != LeaderPhase::EpochAcks || !self.has_all_quorums(&acks) {
            return;
        }
        let l = self.leader();
        let epoch = l.new_epoch;
        l.phase = LeaderPhase::NewLeaderAcks;
        l.started_ms = now;
        self.current_epoch = epoch;
        self.actions.push(PeerAction::WriteEpoch {
            file: EpochFile::Current,
            epoch,
        });
        let my_id = self.cfg.my_id;
        if self.is_active_voter(my_id) {
            self.leader().newleader_acks.insert(my_id);
        }
        let waiting = self.leader().links_in(HandlerState::AwaitSync);
        for link in waiting {
            self.sync_learner(link);
        }
        self.leader_check_newleader_quorum();
    }

    // ----- learner sync --------------------------------------------------------------------------

    /// `LearnerHandler.syncFollower` + `startForwarding` + queueing NEWLEADER.
    fn sync_learner(&mut self, link: LinkId) {
        let (peer_last, observer) = {
            let h = &self.leader().handlers[&link];
            (h.peer_last_zxid, h.observer)
        };
        // startForwarding: the proposals still in flight go to followers only (observers get INFORMs
        // when they commit). Everything committed is already applied here, so nothing is "to be
        // applied".
        let in_flight: Vec<(Zxid, Arc<[u8]>)> = if observer {
            Vec::new()
        } else {
            self.leader()
                .outstanding
                .iter()
                .map(|p| (p.zxid, p.entry.clone()))
                .collect()
        };
        let epoch = self.leader().new_epoch;
        // NEWLEADER's configuration: while the leader is being established, the last seen one (a
        // reconfig its predecessor proposed is committed by this establishment, `Leader.lead`); once
        // established, the committed one, since a reconfig in flight is not committed yet and reaches
        // the learner as its PROPOSAL (then COMMITANDACTIVATE), so the learner never activates it early
        // at UPTODATE.
        let text = if self.leader().phase == LeaderPhase::Broadcast {
            self.cfg.config_text.clone()
        } else {
            self.newleader_config_text()
        };
        // LearnerHandler: syncs to followers are exempt from the throttle (the quorum needs them).
        match self.queue_sync(link, peer_last, &in_flight, epoch, !observer, text) {
            SyncQueued::Done => {}
            SyncQueued::Refused => {
                self.leader().handlers.remove(&link);
                self.close_learner(link);
                return;
            }
            SyncQueued::AwaitTxnLog => {
                // Nothing is forwarded yet: the sync (and startForwarding) happens when the read is in.
                if let Some(h) = self.leader().handlers.get_mut(&link) {
                    h.state = HandlerState::AwaitTxnLog;
                }
                return;
            }
        }
        if let Some(h) = self.leader().handlers.get_mut(&link) {
            h.state = HandlerState::AwaitNewLeaderAck;
            h.forwarding = true;
        }
    }

    /// The txn log read a learner's sync waited for is in: decide its sync now.
    pub(crate) fn leader_resume_sync(&mut self, link: LinkId) {
        let waiting = self
            .leader()
            .handlers
            .get(&link)
            .is_some_and(|h| h.state == HandlerState::AwaitTxnLog);
        if waiting {
            self.sync_learner(link);
        }
    }

    fn leader_on_newleader_ack(&mut self, link: LinkId, zxid: Zxid) {
        let epoch = self.leader().new_epoch;
        let (sid, observer) = {
            let h = self
                .leader()
                .handlers
                .get_mut(&link)
                .expect("handler exists");
            h.state = HandlerState::AwaitUpToDate;
            (h.sid.expect("identified"), h.observer)
        };
        self.link_synced(link);
        // Leader.waitForNewLeaderAck counts only ACKs of this epoch's NEWLEADER from voters.
        if zxid == Zxid::new(epoch, 0) && !observer && self.is_active_voter(sid) {
            self.leader().newleader_acks.insert(sid);
        }
        if self.leader().phase == LeaderPhase::Broadcast {
            self.send_up_to_date(link);
        } else {
            self.leader_check_newleader_quorum();
        }
    }

    fn leader_check_newleader_quorum(&mut self) {
        let start = self.cfg.epoch_start_counter;
        let acks = self.leader().newleader_acks.clone();
        if self.leader().phase != LeaderPhase::NewLeaderAcks || !self.has_all_quorums(&acks) {
            return;
        }
        let l = self.leader();
        l.phase = LeaderPhase::Broadcast;
        let epoch = l.new_epoch;
        let base = Zxid::new(epoch, start);
        l.last_proposed = base;
        tracing::info!("established as leader of epoch {}", epoch.0);
        self.election.update_peer_epoch(i64::from(epoch.0));
        self.rebuild_server(Mode::Leader);
        self.server.set_next_zxid_base(base);
        self.serving = true;
        // Leader.lead after NEWLEADER: a reconfig the previous leader began (the last seen configuration
        // NEWLEADER carried) is now committed by both quorums; activate it. A leader that does not vote
        // in it hands over (here: steps down; the new voters elect a leader among themselves).
        if let Some(m) = self.newer_last_seen().cloned() {
            let me = self.cfg.my_id;
            let stays = m.verifier.is_voter(me);
            let text = m.text.clone();
            self.activate(m, Some(me));
            self.server.init_config(&text, self.cfg.verifier.version());
            if !stays {
                tracing::warn!("this leader is not a voter of the configuration it activated");
                self.abdicate = true;
            }
        }
        let waiting = self.leader().links_in(HandlerState::AwaitUpToDate);
        for link in waiting {
            self.send_up_to_date(link);
        }
    }

    fn send_up_to_date(&mut self, link: LinkId) {
        if let Some(h) = self.leader().handlers.get_mut(&link) {
            h.state = HandlerState::Active;
        }
        self.send_learner(link, QuorumPacket::new(PacketType::UpToDate, -1));
    }

    // ----- broadcast -----------------------------------------------------------------------------

    /// The server prepared a txn: propose it (`Leader.propose`), log it, count our own ack on fsync.
    pub(crate) fn leader_propose(&mut self, zxid: Zxid, entry: Vec<u8>) {
        if !matches!(self.role, RoleState::Leading(_)) {
            tracing::error!("txn {zxid} prepared outside the leader role; dropped");
            return;
        }
        // The txn log takes `log_entry` itself; the proposal and its packets share or copy it.
        let log_entry = entry;
        let entry: Arc<[u8]> = Arc::from(log_entry.as_slice());
        // Leader.propose: a reconfig becomes the last seen configuration before the proposal is built,
        // so the reconfig itself needs a quorum of both the old and the new voters.
        let config = reconfig_membership(&entry);
        let committed = match self.leader().shared_verifier.clone() {
            Some(v) if *v == self.cfg.verifier => v,
            _ => {
                let v = Arc::new(self.cfg.verifier.clone());
                self.leader().shared_verifier = Some(v.clone());
                v
            }
        };
        let mut verifiers = vec![committed];
        if let Some(m) = &config {
            tracing::info!("proposing reconfig {zxid} to version {:x}", m.version());
            self.set_last_seen(m.clone());
        }
        if let Some(m) = self.newer_last_seen() {
            verifiers.push(Arc::new(m.verifier.clone()));
        }
        let followers: Vec<LinkId> = {
            let l = self.leader();
            l.last_proposed = zxid;
            l.outstanding.push(Proposal {
                zxid,
                entry: entry.clone(),
                acks: BTreeSet::new(),
                verifiers,
                config: config.map(Box::new),
            });
            l.handlers
                .iter()
                .filter(|(_, h)| h.forwarding && !h.observer)
                .map(|(l, _)| *l)
                .collect()
        };
        for link in followers {
            self.send_learner(
                link,
                QuorumPacket::with_data(PacketType::Proposal, zxid.0, entry.to_vec()),
            );
        }
        self.last_logged = zxid;
        self.unapplied.insert(zxid, log_entry.clone());
        self.actions.push(PeerAction::Log {
            zxid,
            entry: log_entry,
        });
    }

    pub(crate) fn leader_on_durable(&mut self) {
        let my_id = self.cfg.my_id;
        let durable = self.durable;
        for p in self.leader().outstanding.up_to_mut(durable) {
            p.acks.insert(my_id);
        }
        self.try_commit();
    }

    fn leader_on_ack(&mut self, link: LinkId, zxid: Zxid) {
        let (sid, observer) = {
            let h = &self.leader().handlers[&link];
            (h.sid.expect("identified"), h.observer)
        };
        // Any follower's ack is recorded; each configuration counts only its own voters
        // (`SyncedLearnerTracker.addAck`).
        if observer {
            return;
        }
        if zxid.counter() == 0 {
            // The post-UPTODATE ack of NEWLEADER's zxid (Learner L6): nothing to count.
            return;
        }
        // A follower logs in order and acks after each fsync, so an ACK of z covers every proposal up
        // to z (Java acks one by one; counting cumulatively is equivalent and tolerates batching).
        for p in self.leader().outstanding.up_to_mut(zxid) {
            p.acks.insert(sid);
        }
        self.try_commit();
    }

    /// Commits outstanding proposals in zxid order while the oldest has a quorum of every configuration
    /// it waits for (`tryToCommit`). A reconfig commits as COMMITANDACTIVATE / INFORMANDACTIVATE and
    /// activates its configuration here first; a leader that does not vote in it commits nothing more
    /// and steps down (`allowedToCommit = false`).
    fn try_commit(&mut self) {
        loop {
            if self.abdicate {
                return;
            }
            let l = self.leader();
            let Some(p) = l.outstanding.front() else {
                return;
            };
            if !p.verifiers.iter().all(|q| q.contains_quorum(&p.acks)) {
                return;
            }
            let p = l.outstanding.pop_front().expect("present");
            let zxid = p.zxid;
            let targets: Vec<(LinkId, bool)> = l
                .handlers
                .iter()
                .filter(|(_, h)| h.forwarding)
                .map(|(l, h)| (*l, h.observer))
                .collect();
            let designated = match &p.config {
                Some(m) => {
                    let later: Vec<BTreeSet<ServerId>> =
                        l.outstanding.iter().map(|q| q.acks.clone()).collect();
                    let d = designated_leader(self.cfg.my_id, &m.verifier, &p.acks, &later);
                    tracing::info!(
                        "committing reconfig {zxid} to version {:x}; designated leader {d}",
                        m.version()
                    );
                    self.activate(Membership::clone(m), Some(d));
                    Some(d)
                }
                None => None,
            };
            for (link, observer) in targets {
                let packet = match (designated, observer) {
                    (None, true) => {
                        QuorumPacket::with_data(PacketType::Inform, zxid.0, p.entry.to_vec())
                    }
                    (None, false) => QuorumPacket::new(PacketType::Commit, zxid.0),
                    (Some(d), true) => QuorumPacket::with_data(
                        PacketType::InformAndActivate,
                        zxid.0,
                        inform_and_activate_data(d, &p.entry),
                    ),
                    (Some(d), false) => QuorumPacket::with_data(
                        PacketType::CommitAndActivate,
                        zxid.0,
                        commit_and_activate_data(d),
                    ),
                };
                self.send_learner(link, packet);
            }
            self.stats.commits += 1;
            self.unapplied.remove(&zxid);
            self.committed_log.push(zxid, p.entry.clone());
            self.server
                .handle(ServerInput::Durable(zxid), self.now_ms as i64);
            self.route_server_actions();
            if designated.is_some_and(|d| d != self.cfg.my_id) {
                tracing::warn!("this leader is not the designated leader any more; stepping down");
                self.abdicate = true;
                self.handoff = designated;
                return;
            }
        }
    }

    fn leader_on_request(&mut self, link: LinkId, packet: QuorumPacket) {
        let sid = self.leader().handlers[&link].sid.expect("identified");
        match ForwardedRequest::from_bytes(packet.data_or_empty()) {
            Ok(request) => {
                if request.op_type == crate::proto::OpCode::Reconfig.code() {
                    self.refresh_reconfig_context();
                }
                let auth_ids = packet.authinfo.unwrap_or_default();
                self.server.handle(
                    ServerInput::Forwarded {
                        learner: sid,
                        request,
                        auth_ids,
                    },
                    self.now_ms as i64,
                );
                self.route_server_actions();
            }
            Err(e) => self.drop_learner(link, &format!("bad REQUEST: {e}")),
        }
    }

    fn leader_on_revalidate(&mut self, link: LinkId, packet: &QuorumPacket) {
        let sid = self.leader().handlers[&link].sid.expect("identified");
        let mut r = JuteReader::new(packet.data_or_empty());
        match RevalidateRequest::read(&mut r) {
            Ok(req) => {
                self.server.handle(
                    ServerInput::Revalidate {
                        learner: sid,
                        session: SessionId(req.session_id),
                        timeout: req.timeout,
                    },
                    self.now_ms as i64,
                );
                self.route_server_actions();
            }
            Err(e) => self.drop_learner(link, &format!("bad REVALIDATE: {e}")),
        }
    }

    pub(crate) fn leader_revalidate_reply(
        &mut self,
        learner: ServerId,
        session: SessionId,
        valid: bool,
    ) {
        if !matches!(self.role, RoleState::Leading(_)) {
            return;
        }
        let Some(link) = self.leader().link_of(learner) else {
            return;
        };
        let mut w = JuteWriter::new();
        RevalidateReply {
            session_id: session.0,
            valid,
        }
        .write(&mut w);
        self.send_learner(
            link,
            QuorumPacket::with_data(PacketType::Revalidate, -1, w.into_inner()),
        );
    }

    pub(crate) fn leader_sync_reply(&mut self, learner: ServerId) {
        if !matches!(self.role, RoleState::Leading(_)) {
            return;
        }
        if let Some(link) = self.leader().link_of(learner) {
            self.send_learner(link, QuorumPacket::new(PacketType::Sync, 0));
        }
    }

    // ----- time ----------------------------------------------------------------------------------

    pub(crate) fn leader_on_tick(&mut self) {
        let now = self.now_ms;
        let init_ms = self.ticks(self.cfg.init_limit);
        let sync_ms = self.ticks(self.cfg.sync_limit);
        let phase = self.leader().phase;
        if phase != LeaderPhase::Broadcast && now.saturating_sub(self.leader().started_ms) > init_ms
        {
            tracing::warn!(
                "leader gave up in phase {phase:?}: no quorum within initLimit ({init_ms} ms)"
            );
            return self.go_looking();
        }
        // A learner silent for longer than its limit is dropped (its socket read timeout in Java).
        let stale: Vec<LinkId> = {
            let RoleState::Leading(l) = &self.role else {
                return;
            };
            l.handlers
                .iter()
                .filter(|(link, h)| {
                    let limit = if h.state == HandlerState::Active {
                        sync_ms
                    } else {
                        init_ms + sync_ms
                    };
                    self.link_quiet_since(**link, h.last_heard_ms)
                        .is_some_and(|since| now.saturating_sub(since) > limit)
                })
                .map(|(l, _)| *l)
                .collect()
        };
        for link in stale {
            tracing::warn!("learner link {link} silent past its limit; closing");
            self.leader().handlers.remove(&link);
            self.close_learner(link);
        }
        if phase == LeaderPhase::Broadcast {
            // Leader.lead's tick loop: stay leader only while the synced voters form a quorum.
            let my_id = self.cfg.my_id;
            let mut synced: BTreeSet<ServerId> = self
                .leader()
                .handlers
                .values()
                .filter(|h| h.state == HandlerState::Active && !h.observer)
                .filter_map(|h| h.sid)
                .collect();
            synced.insert(my_id);
            if !self.has_all_quorums(&synced) {
                tracing::warn!(
                    "not sufficient followers synced, only synced with {:?}; giving up leadership",
                    synced
                );
                return self.go_looking();
            }
            let half_tick = (self.cfg.tick_ms / 2).max(1);
            if now.saturating_sub(self.leader().last_ping_ms) >= half_tick {
                self.leader().last_ping_ms = now;
                let last = self.leader().last_proposed;
                let links: Vec<LinkId> = self
                    .leader()
                    .handlers
                    .iter()
                    .filter(|(_, h)| h.state == HandlerState::Active)
                    .map(|(l, _)| *l)
                    .collect();
                for link in links {
                    self.send_learner(link, QuorumPacket::new(PacketType::Ping, last.0));
                }
            }
        }
    }
}
