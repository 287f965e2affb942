//! The learner roles, follower and observer: ZooKeeper's `Learner`, `Follower` and `Observer`, sans-IO.
//!
//! After an election names another leader the learner connects to it and runs `Learner.registerWithLeader`
//! and `syncWithLeader` (steps L1-L8 of the protocol guide §7.4):
//! 1. FOLLOWERINFO / OBSERVERINFO with acceptedEpoch; LEADERINFO with the new epoch (written to
//!    acceptedEpoch before ACKEPOCH when it is newer).
//! 2. DIFF, TRUNC (the driver truncates the log and reloads) or SNAP (the snapshot replaces the tree and is
//!    written to disk before anything else).
//! 3. PROPOSAL / COMMIT / INFORM until NEWLEADER are buffered; at NEWLEADER the learner writes currentEpoch,
//!    logs every buffered proposal, applies the committed ones, and ACKs NEWLEADER once the log is durable
//!    (Java 3.8.5+'s order: no proposal is acknowledged before it is on disk).
//! 4. UPTODATE: serve clients, ACK, then broadcast: a follower logs each PROPOSAL and ACKs it after the
//!    fsync, applies each COMMIT (which must match its oldest pending proposal, or the learner drops the
//!    leader: Java exits the process); an observer applies each INFORM (logging it when `syncEnabled`).
//!
//! The learner answers PINGs with the sessions its clients touched, forwards writes as REQUEST, session
//! re-attaches as REVALIDATE, and gives up the leader (back to LOOKING) when it hears nothing for
//! `syncLimit` ticks (`initLimit` while syncing).

use std::collections::VecDeque;

use crate::ids::{Epoch, ServerId, SessionId, Zxid};
use crate::jute::{JuteReader, JuteWriter, Record};
use crate::proto::quorum::{
    encode_session_touches, ForwardedRequest, LearnerInfo, PacketType, QuorumPacket,
    RevalidateReply, RevalidateRequest, LEARNER_PROTOCOL_VERSION,
};
use crate::proto::quorum_stream::QuorumItem;
use crate::proto::{Id, TxnEntry};
use crate::server::standalone::{Input as ServerInput, Mode};
use crate::zab::election::config_version;
use crate::zab::observer_master::{ObserverMaster, SyncOwner};
use crate::zab::peer::{EpochFile, Peer, PeerAction, PeerRole, RoleState};
use crate::zab::reconfig::{reconfig_membership, split_activate_data, Membership};

/// PINGs an observer remembers while it has not applied their zxid (the oldest ones matter: a full
/// queue keeps them and drops the newer).
const MAX_MASTER_PINGS: usize = 1024;

/// Where the learner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LearnerPhase {
    /// Waiting for the driver's connection.
    Connecting,
    /// Info sent; waiting for LEADERINFO.
    AwaitLeaderInfo,
    /// ACKEPOCH sent; waiting for DIFF / TRUNC / SNAP.
    AwaitSyncMode,
    /// SNAP received; waiting for the snapshot body.
    AwaitSnapshot,
    /// Receiving sync traffic until NEWLEADER.
    Syncing,
    /// NEWLEADER handled; waiting for UPTODATE.
    AwaitUpToDate,
    /// Serving and following the broadcast.
    Broadcast,
}

/// A proposal received and not yet committed.
#[derive(Debug)]
struct Pending {
    zxid: Zxid,
    entry: Vec<u8>,
    committed: bool,
}

/// The learner's state.
#[derive(Debug)]
pub(crate) struct LearnerState {
    /// The leader's sid.
    pub(crate) leader: ServerId,
    /// Observer (true) or follower.
    pub(crate) observer: bool,
    phase: LearnerPhase,
    new_epoch: Epoch,
    snap_zxid: Zxid,
    /// Proposals received before NEWLEADER, in order (with their commit marks).
    buffered: VecDeque<Pending>,
    /// Proposals logged and not yet committed, oldest first (followers).
    pending: VecDeque<(Zxid, Vec<u8>)>,
    /// ACKs waiting for the log fsync: (zxid to ack, zxid that must be durable first). NEWLEADER's ACK
    /// (counter 0) waits for everything logged before it.
    acks_waiting: VecDeque<(Zxid, Zxid)>,
    last_heard_ms: u64,
    phase_started_ms: u64,
    /// Observer with `observerMasterPort`: the voters still to try as learner master, in order.
    masters: VecDeque<ServerId>,
    /// Connected (or connecting) to a learner master rather than the leader.
    via_master: bool,
    /// A follower's observer-master state.
    pub(crate) om: ObserverMaster,
    /// An observer's PINGs from its master whose zxid it had not applied yet, oldest first, with when
    /// they arrived (its own lag, see [`Peer::learner_master_lag`]).
    master_pings: VecDeque<(Zxid, u64)>,
    /// The zxid of the last PING from the master.
    master_zxid: Zxid,
    /// A snapshot coming in: (bytes when progress was last logged, when).
    snap_logged: (u64, u64),
    /// The configuration NEWLEADER carried, activated at UPTODATE (`Learner.syncWithLeader`).
    newleader_config: Option<Membership>,
}

impl LearnerState {
    pub(crate) fn debug_state(&self) -> String {
        format!(
            "learner of {} {:?} pending {:?} acks_waiting {:?} buffered {}",
            self.leader.0,
            self.phase,
            self.pending.iter().map(|(z, _)| *z).collect::<Vec<_>>(),
            self.acks_waiting,
            self.buffered.len()
        )
    }
}

impl Peer {
    fn learner(&mut self) -> &mut LearnerState {
        match &mut self.role {
            RoleState::Learning(l) => l,
            _ => unreachable!("learner state used outside a learner role"),
        }
    }

    /// `QuorumPeer` entering FOLLOWING or OBSERVING: connect to the leader.
    pub(crate) fn become_learner(&mut self, leader: ServerId, observer: bool) {
        self.role = RoleState::Learning(Box::new(LearnerState {
            leader,
            observer,
            phase: LearnerPhase::Connecting,
            new_epoch: Epoch(0),
            snap_zxid: Zxid::NONE,
            buffered: VecDeque::new(),
            pending: VecDeque::new(),
            acks_waiting: VecDeque::new(),
            last_heard_ms: self.now_ms,
            phase_started_ms: self.now_ms,
            masters: VecDeque::new(),
            via_master: false,
            om: ObserverMaster::default(),
            master_pings: VecDeque::new(),
            master_zxid: Zxid::NONE,
            snap_logged: (0, self.now_ms),
            newleader_config: None,
        }));
        // The server runs as a learner from now on (sync txns apply through its commit path); it serves
        // clients only after UPTODATE, except a detached observer's, which keeps serving reads.
        if !self.detached {
            self.rebuild_server(Mode::Learner { observer });
        }
        self.set_role_name(if observer {
            PeerRole::Observing
        } else {
            PeerRole::Following
        });
        if observer && self.cfg.observer_master {
            // Observer.observeLeader with observer masters: try the voters in a shuffled order (the
            // leader is among them but does not listen there), then fall back to the leader.
            let mut voters: Vec<ServerId> = self.cfg.verifier.voters().iter().copied().collect();
            for i in (1..voters.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                voters.swap(i, j);
            }
            self.learner().masters = voters.into_iter().collect();
            self.connect_next_master();
            return;
        }
        self.connect_leader_delayed();
    }

    /// Connects to the leader's quorum port; an observer first waits a random time in
    /// `[0, observer.reconnectDelayMs)` (`Observer.observeLeader`) so observers do not all arrive at once.
    fn connect_leader_delayed(&mut self) {
        let observer = self.learner().observer;
        let leader = self.learner().leader;
        let delay_ms = if observer && self.cfg.observer_reconnect_delay_ms > 0 {
            self.rng.below(self.cfg.observer_reconnect_delay_ms)
        } else {
            0
        };
        self.learner().via_master = false;
        self.actions
            .push(PeerAction::ConnectLeader { leader, delay_ms });
    }

    fn connect_next_master(&mut self) {
        match self.learner().masters.pop_front() {
            Some(server) => {
                self.learner().via_master = true;
                self.actions.push(PeerAction::ConnectLearnerMaster {
                    server,
                    delay_ms: 0,
                });
            }
            // Every master refused: the leader, after the reconnect delay.
            None => self.connect_leader_delayed(),
        }
    }

    /// The connection to the leader (or learner master) broke. A learner master that closes before
    /// LEADERINFO is not ready to serve (still syncing itself): the observer tries the next one.
    pub(crate) fn learner_on_disconnected(&mut self) {
        let (phase, via_master) = {
            let l = self.learner();
            (l.phase, l.via_master)
        };
        if via_master && phase == LearnerPhase::AwaitLeaderInfo {
            self.learner().phase = LearnerPhase::Connecting;
            self.connect_next_master();
            return;
        }
        tracing::warn!("lost the connection to the leader; looking again");
        self.go_looking();
    }

    /// The driver could not connect: try the next learner master, or give up and look again.
    pub(crate) fn learner_on_connect_failed(&mut self) {
        let (phase, via_master) = {
            let l = self.learner();
            (l.phase, l.via_master)
        };
        if phase == LearnerPhase::Connecting && via_master {
            self.connect_next_master();
            return;
        }
        tracing::warn!("could not connect to the leader; looking again");
        self.go_looking();
    }

    fn send_leader(&mut self, packet: QuorumPacket) {
        self.actions.push(PeerAction::SendLeader(packet));
    }

    /// Gives up on the leader after a protocol violation.
    fn learner_fail(&mut self, why: &str) {
        tracing::error!("learner: {why}; dropping the leader");
        self.stats.protocol_errors += 1;
        self.actions.push(PeerAction::Warning(why.to_string()));
        self.go_looking();
    }

    pub(crate) fn learner_on_connected(&mut self) {
        let now = self.now_ms;
        let observer = {
            let l = self.learner();
            l.phase = LearnerPhase::AwaitLeaderInfo;
            l.last_heard_ms = now;
            l.phase_started_ms = now;
            l.observer
        };
        let mut w = JuteWriter::new();
        LearnerInfo {
            server_id: self.cfg.my_id.0 as i64,
            protocol_version: LEARNER_PROTOCOL_VERSION,
            config_version: config_version(&self.cfg.config_text).unwrap_or(0),
        }
        .write(&mut w);
        let ty = if observer {
            PacketType::ObserverInfo
        } else {
            PacketType::FollowerInfo
        };
        self.send_leader(QuorumPacket::with_data(
            ty,
            Zxid::new(self.accepted_epoch, 0).0,
            w.into_inner(),
        ));
    }

    pub(crate) fn learner_on_item(&mut self, item: QuorumItem) {
        let now = self.now_ms;
        let phase = {
            let l = self.learner();
            l.last_heard_ms = now;
            l.phase
        };
        let packet = match item {
            QuorumItem::Snapshot(body) => {
                if phase != LearnerPhase::AwaitSnapshot {
                    return self.learner_fail("a snapshot arrived outside a SNAP sync");
                }
                return self.learner_on_snapshot(body);
            }
            QuorumItem::Packet(p) => p,
        };
        let Some(ty) = packet.packet_type() else {
            return self.learner_fail(&format!("unknown packet type {}", packet.ty));
        };
        match (phase, ty) {
            (LearnerPhase::AwaitLeaderInfo, PacketType::LeaderInfo) => {
                self.learner_on_leader_info(Zxid(packet.zxid).epoch())
            }
            (LearnerPhase::AwaitSyncMode, PacketType::Diff) => {
                self.learner().phase = LearnerPhase::Syncing;
            }
            (LearnerPhase::AwaitSyncMode, PacketType::Trunc) => {
                let zxid = Zxid(packet.zxid);
                tracing::info!("leader asks to truncate the log after {zxid}");
                // The reload replaces the database: a detached observer's clients go.
                self.stop_serving();
                self.actions.push(PeerAction::Truncate { zxid });
                self.last_logged = zxid;
                self.learner().phase = LearnerPhase::Syncing;
            }
            (LearnerPhase::AwaitSyncMode, PacketType::Snap) => {
                let l = self.learner();
                l.snap_zxid = Zxid(packet.zxid);
                l.phase = LearnerPhase::AwaitSnapshot;
                l.snap_logged = (0, now);
            }
            (
                LearnerPhase::Syncing,
                PacketType::Proposal | PacketType::Commit | PacketType::Inform,
            ) => self.learner_buffer(ty, packet),
            (LearnerPhase::Syncing, PacketType::CommitAndActivate) => {
                self.learner_buffer_activate(packet)
            }
            (LearnerPhase::Syncing, PacketType::InformAndActivate) => {
                match split_activate_data(packet.data_or_empty()) {
                    Some((designated, entry)) => {
                        let entry = entry.to_vec();
                        if let Some(m) = reconfig_membership(&entry) {
                            if self.activate(m, Some(designated)) {
                                return self.leave_after_reconfig(Some(designated));
                            }
                        }
                        let inform =
                            QuorumPacket::with_data(PacketType::Inform, packet.zxid, entry);
                        self.learner_buffer(PacketType::Inform, inform)
                    }
                    None => self.learner_fail("INFORMANDACTIVATE without a leader id"),
                }
            }
            (LearnerPhase::Syncing, PacketType::NewLeader) => {
                if let Some(data) = packet.data.as_deref().filter(|d| d.len() > 1) {
                    match Membership::from_text(data) {
                        Ok(m) => {
                            self.set_last_seen(m.clone());
                            self.learner().newleader_config = Some(m);
                        }
                        Err(e) => tracing::warn!("NEWLEADER's configuration does not parse: {e}"),
                    }
                }
                self.learner_on_newleader(Zxid(packet.zxid))
            }
            (LearnerPhase::AwaitUpToDate, PacketType::UpToDate) => self.learner_on_up_to_date(),
            (LearnerPhase::AwaitUpToDate | LearnerPhase::Broadcast, PacketType::Proposal) => {
                self.learner_on_proposal(packet)
            }
            (LearnerPhase::AwaitUpToDate | LearnerPhase::Broadcast, PacketType::Commit) => {
                self.learner_on_commit(Zxid(packet.zxid))
            }
            (LearnerPhase::AwaitUpToDate | LearnerPhase::Broadcast, PacketType::Inform) => {
                self.learner_on_inform(packet)
            }
            (
                LearnerPhase::AwaitUpToDate | LearnerPhase::Broadcast,
                PacketType::CommitAndActivate,
            ) => self.learner_on_commit_and_activate(packet),
            (
                LearnerPhase::AwaitUpToDate | LearnerPhase::Broadcast,
                PacketType::InformAndActivate,
            ) => self.learner_on_inform_and_activate(packet),
            (_, PacketType::Ping) => self.learner_on_ping(packet),
            (LearnerPhase::Broadcast, PacketType::Revalidate)
                if self.om_route_revalidate(&packet) => {}
            (LearnerPhase::Broadcast, PacketType::Revalidate) => {
                let mut r = JuteReader::new(packet.data_or_empty());
                match RevalidateReply::read(&mut r) {
                    Ok(reply) => {
                        self.server.handle(
                            ServerInput::RevalidateReply {
                                session: SessionId(reply.session_id),
                                valid: reply.valid,
                            },
                            now as i64,
                        );
                        self.route_server_actions();
                    }
                    Err(e) => self.learner_fail(&format!("bad REVALIDATE reply: {e}")),
                }
            }
            (LearnerPhase::Broadcast, PacketType::Sync) => match self.om_take_sync() {
                SyncOwner::Link(link) => {
                    self.link_send(link, QuorumPacket::new(PacketType::Sync, packet.zxid))
                }
                SyncOwner::Local => {
                    self.server.handle(ServerInput::SyncDone, now as i64);
                    self.route_server_actions();
                }
            },
            (phase, ty) => self.learner_fail(&format!("unexpected {ty:?} in phase {phase:?}")),
        }
    }

    fn learner_on_leader_info(&mut self, new_epoch: Epoch) {
        // Learner.registerWithLeader: promise the new epoch (acceptedEpoch) before acknowledging it.
        let epoch_field: i32 = if new_epoch > self.accepted_epoch {
            let current = self.current_epoch.0 as i32;
            self.accepted_epoch = new_epoch;
            self.actions.push(PeerAction::WriteEpoch {
                file: EpochFile::Accepted,
                epoch: new_epoch,
            });
            current
        } else if new_epoch == self.accepted_epoch {
            -1
        } else {
            return self.learner_fail(&format!(
                "leader's epoch {} is older than our acceptedEpoch {}",
                new_epoch.0, self.accepted_epoch.0
            ));
        };
        {
            let l = self.learner();
            l.new_epoch = new_epoch;
            l.phase = LearnerPhase::AwaitSyncMode;
        }
        let mut w = JuteWriter::new();
        w.write_i32(epoch_field);
        self.send_leader(QuorumPacket::with_data(
            PacketType::AckEpoch,
            self.last_logged.0,
            w.into_inner(),
        ));
    }

    /// Part of the snapshot arrived: the leader is alive (`Learner`'s socket timeout is reset by every
    /// read, not by whole packets); log progress every 16 MiB or 5 s.
    pub(crate) fn learner_on_snapshot_progress(&mut self, bytes: u64, znodes: u64) {
        let now = self.now_ms;
        let l = self.learner();
        if l.phase != LearnerPhase::AwaitSnapshot {
            return;
        }
        l.last_heard_ms = now;
        let (logged, at) = l.snap_logged;
        if bytes.saturating_sub(logged) >= 16 << 20 || now.saturating_sub(at) >= 5_000 {
            l.snap_logged = (bytes, now);
            tracing::info!(
                "receiving the snapshot at {}: {bytes} bytes, {znodes} znodes so far",
                l.snap_zxid
            );
        }
    }

    fn learner_on_snapshot(&mut self, body: Vec<u8>) {
        let zxid = self.learner().snap_zxid;
        self.stats.snap_bytes_received += body.len() as u64;
        tracing::info!(
            "received the leader's snapshot at {zxid} ({} bytes)",
            body.len()
        );
        // The snapshot replaces the database: a detached observer's clients go.
        self.stop_serving();
        if !self.install_snapshot_db(zxid, &body) {
            return self.learner_fail("the leader's snapshot does not decode");
        }
        // Written before anything after it is logged: the log continues from the snapshot's zxid.
        self.actions
            .push(PeerAction::InstallSnapshot { zxid, body });
        self.last_logged = zxid;
        self.durable = zxid;
        self.learner().phase = LearnerPhase::Syncing;
    }

    /// Sync traffic before NEWLEADER: remember it (`packetsNotLogged` / `packetsCommitted`).
    fn learner_buffer(&mut self, ty: PacketType, packet: QuorumPacket) {
        let zxid = Zxid(packet.zxid);
        let l = self.learner();
        match ty {
            PacketType::Proposal => {
                let entry = packet.data.unwrap_or_default();
                let config = reconfig_membership(&entry);
                l.buffered.push_back(Pending {
                    zxid,
                    entry,
                    committed: false,
                });
                if let Some(m) = config {
                    self.set_last_seen(m);
                }
            }
            PacketType::Inform => l.buffered.push_back(Pending {
                zxid,
                entry: packet.data.unwrap_or_default(),
                committed: true,
            }),
            _ => {
                // COMMIT: must name the oldest uncommitted buffered proposal.
                match l.buffered.iter_mut().find(|p| !p.committed) {
                    Some(p) if p.zxid == zxid => p.committed = true,
                    other => {
                        let expected = other.map(|p| p.zxid);
                        self.learner_fail(&format!(
                            "COMMIT {zxid} does not match the oldest pending proposal {expected:?}"
                        ));
                    }
                }
            }
        }
    }

    /// COMMITANDACTIVATE during sync: the COMMIT, and the buffered reconfig's configuration becomes the
    /// committed one at once (`Learner.syncWithLeader`).
    fn learner_buffer_activate(&mut self, packet: QuorumPacket) {
        let Some((designated, _)) = split_activate_data(packet.data_or_empty()) else {
            return self.learner_fail("COMMITANDACTIVATE without a leader id");
        };
        let zxid = Zxid(packet.zxid);
        let config = self
            .learner()
            .buffered
            .iter()
            .find(|p| !p.committed)
            .filter(|p| p.zxid == zxid)
            .and_then(|p| reconfig_membership(&p.entry));
        self.learner_buffer(
            PacketType::Commit,
            QuorumPacket::new(PacketType::Commit, zxid.0),
        );
        if !matches!(self.role, RoleState::Learning(_)) {
            return;
        }
        if let Some(m) = config {
            if self.activate(m, Some(designated)) {
                self.leave_after_reconfig(Some(designated));
            }
        }
    }

    /// A major change (`processReconfig` returned true: new learner type, removed, or another leader):
    /// leave the role as Java does by throwing out of `followLeader` / `observeLeader`.
    /// `designated` is the leader the reconfig named (none at UPTODATE): the server then takes its
    /// new role at once (see `Peer::take_designated_role`), else it elects.
    fn leave_after_reconfig(&mut self, designated: Option<ServerId>) {
        tracing::info!("changes proposed in reconfig: leaving the role");
        self.handoff = designated;
        self.go_looking();
    }

    fn learner_on_newleader(&mut self, zxid: Zxid) {
        let expected = Zxid::new(self.learner().new_epoch, 0);
        if zxid != expected {
            return self.learner_fail(&format!("NEWLEADER {zxid}, expected {expected}"));
        }
        // currentEpoch first: a crash after it but before the log fsync leaves a server that claims the
        // epoch with fewer txns (harmless: it never acked NEWLEADER); the reverse order could leave txns
        // of an epoch newer than currentEpoch in the log.
        let epoch = self.learner().new_epoch;
        self.current_epoch = epoch;
        self.actions.push(PeerAction::WriteEpoch {
            file: EpochFile::Current,
            epoch,
        });
        let buffered: Vec<Pending> = self.learner().buffered.drain(..).collect();
        let observer = self.learner().observer;
        let log_it = !observer || self.cfg.observer_sync_enabled;
        for p in buffered {
            if p.zxid <= self.last_logged {
                // Already in our log (a DIFF resending what we have): skip.
                continue;
            }
            if log_it {
                self.actions.push(PeerAction::Log {
                    zxid: p.zxid,
                    entry: p.entry.clone(),
                });
            }
            self.last_logged = p.zxid;
            if p.committed {
                self.apply_entry(p.zxid, &p.entry);
                if !matches!(self.role, RoleState::Learning(_)) {
                    // The txn did not decode: the learner dropped the leader.
                    return;
                }
            } else {
                self.unapplied.insert(p.zxid, p.entry.clone());
                self.learner().pending.push_back((p.zxid, p.entry));
            }
        }
        self.election.update_peer_epoch(i64::from(epoch.0));
        self.learner().phase = LearnerPhase::AwaitUpToDate;
        // ACK NEWLEADER once everything logged so far is durable.
        let needed = self.last_logged;
        self.learner().acks_waiting.push_back((expected, needed));
        if !log_it {
            self.durable = self.last_logged;
        }
        self.learner_on_durable();
    }

    fn learner_on_up_to_date(&mut self) {
        // A newer configuration NEWLEADER carried is committed now (processReconfig at UPTODATE).
        if let Some(m) = self.learner().newleader_config.take() {
            let text = m.text.clone();
            let major = self.activate(m, None);
            self.server.init_config(&text, self.cfg.verifier.version());
            if major {
                return self.leave_after_reconfig(None);
            }
        }
        let observer = self.learner().observer;
        let epoch = self.learner().new_epoch;
        self.learner().phase = LearnerPhase::Broadcast;
        self.detached = false;
        tracing::info!(
            "synced with leader {} in epoch {}; serving clients",
            self.learner().leader,
            epoch.0
        );
        self.serving = true;
        // Learner L6: an ACK of the epoch's zxid after UPTODATE (the leader ignores it).
        self.send_leader(QuorumPacket::new(PacketType::Ack, Zxid::new(epoch, 0).0));
        // L7: proposals logged at NEWLEADER are acked as their fsync completes.
        if !observer {
            let pending: Vec<(Zxid, Zxid)> = self
                .learner()
                .pending
                .iter()
                .map(|(z, _)| (*z, *z))
                .collect();
            self.learner().acks_waiting.extend(pending);
            self.learner_on_durable();
        }
    }

    fn learner_on_proposal(&mut self, packet: QuorumPacket) {
        if self.learner().observer {
            // Observer.processPacket: PROPOSAL is not for observers after sync.
            return;
        }
        let zxid = Zxid(packet.zxid);
        if zxid <= self.last_logged {
            return self.learner_fail(&format!(
                "PROPOSAL {zxid} is not after our last logged {}",
                self.last_logged
            ));
        }
        let entry = packet.data.unwrap_or_default();
        // Follower.processPacket: a reconfig proposal is the last seen configuration from now on.
        if let Some(m) = reconfig_membership(&entry) {
            self.set_last_seen(m);
        }
        self.actions.push(PeerAction::Log {
            zxid,
            entry: entry.clone(),
        });
        self.last_logged = zxid;
        self.unapplied.insert(zxid, entry.clone());
        let l = self.learner();
        l.pending.push_back((zxid, entry));
        if l.phase == LearnerPhase::Broadcast {
            l.acks_waiting.push_back((zxid, zxid));
        }
        self.learner_on_durable();
    }

    fn learner_on_commit(&mut self, zxid: Zxid) {
        if self.learner().observer {
            return;
        }
        // Follower.processPacket → FollowerZooKeeperServer.commit: the commit must be for the oldest
        // pending proposal (Java exits with UNMATCHED_TXN_COMMIT otherwise).
        let head = self.learner().pending.front().map(|(z, _)| *z);
        if head != Some(zxid) {
            return self.learner_fail(&format!(
                "COMMIT {zxid} does not match the oldest pending proposal {head:?}"
            ));
        }
        let (_, entry) = self.learner().pending.pop_front().expect("checked");
        self.unapplied.remove(&zxid);
        self.apply_entry(zxid, &entry);
        // ObserverMaster: observers get the txn once this follower has it.
        if matches!(self.role, RoleState::Learning(_)) {
            self.om_inform(zxid, &entry);
        }
    }

    /// Follower: COMMITANDACTIVATE (`Follower.processPacket`): activate the pending reconfig's
    /// configuration with the designated leader, commit it, pass it on to our observers, and leave the
    /// role if the change is major.
    fn learner_on_commit_and_activate(&mut self, packet: QuorumPacket) {
        if self.learner().observer {
            return;
        }
        let Some((designated, _)) = split_activate_data(packet.data_or_empty()) else {
            return self.learner_fail("COMMITANDACTIVATE without a leader id");
        };
        let zxid = Zxid(packet.zxid);
        let head = self.learner().pending.front().map(|(z, e)| (*z, e.clone()));
        let Some((head_zxid, entry)) = head.filter(|(z, _)| *z == zxid) else {
            return self.learner_fail(&format!(
                "COMMITANDACTIVATE {zxid} does not match the oldest pending proposal"
            ));
        };
        let major = match reconfig_membership(&entry) {
            Some(m) => self.activate(m, Some(designated)),
            None => false,
        };
        self.learner().pending.pop_front();
        self.unapplied.remove(&head_zxid);
        self.apply_entry(zxid, &entry);
        if !matches!(self.role, RoleState::Learning(_)) {
            return;
        }
        self.om_inform_as(zxid, &entry, Some(designated));
        if major {
            self.leave_after_reconfig(Some(designated));
        }
    }

    /// Observer: INFORMANDACTIVATE (`Observer.processPacket`).
    fn learner_on_inform_and_activate(&mut self, packet: QuorumPacket) {
        if !self.learner().observer {
            return self.learner_fail("INFORMANDACTIVATE sent to a follower");
        }
        let Some((designated, entry)) = split_activate_data(packet.data_or_empty()) else {
            return self.learner_fail("INFORMANDACTIVATE without a leader id");
        };
        let entry = entry.to_vec();
        let major = match reconfig_membership(&entry) {
            Some(m) => self.activate(m, Some(designated)),
            None => false,
        };
        self.learner_on_inform(QuorumPacket::with_data(
            PacketType::Inform,
            packet.zxid,
            entry,
        ));
        if major && matches!(self.role, RoleState::Learning(_)) {
            self.leave_after_reconfig(Some(designated));
        }
    }

    fn learner_on_inform(&mut self, packet: QuorumPacket) {
        if !self.learner().observer {
            return self.learner_fail("INFORM sent to a follower");
        }
        let zxid = Zxid(packet.zxid);
        if zxid <= self.last_logged {
            return;
        }
        let entry = packet.data.unwrap_or_default();
        if self.cfg.observer_sync_enabled {
            self.actions.push(PeerAction::Log {
                zxid,
                entry: entry.clone(),
            });
        } else {
            self.durable = zxid;
        }
        self.last_logged = zxid;
        self.apply_entry(zxid, &entry);
    }

    /// Applies a committed txn's bytes to the server.
    fn apply_entry(&mut self, zxid: Zxid, entry: &[u8]) {
        match TxnEntry::decode(entry) {
            Ok(e) => self.apply_committed(zxid, entry, e.header, e.txn),
            Err(err) => {
                // The leader sent bytes we cannot read; continuing would diverge the tree.
                self.learner_fail(&format!("committed txn {zxid} does not decode: {err}"))
            }
        }
    }

    fn learner_on_ping(&mut self, packet: QuorumPacket) {
        let applied = Zxid(self.server.tree().last_processed_zxid());
        let now = self.now_ms;
        let l = self.learner();
        if l.observer {
            // The master's PING carries its last proposed (leader) or applied (observer master) zxid:
            // what this observer has heard exists. Remember when, until it is applied here.
            let zxid = Zxid(packet.zxid);
            l.master_zxid = zxid;
            while l.master_pings.front().is_some_and(|(z, _)| *z <= applied) {
                l.master_pings.pop_front();
            }
            if zxid > applied && l.master_pings.len() < MAX_MASTER_PINGS {
                l.master_pings.push_back((zxid, now));
            }
        }
        let mut touches = if self.serving {
            self.server.take_session_touches()
        } else {
            Vec::new()
        };
        // Sessions of observers served by this follower are touched on the leader through it.
        touches.extend(self.om_take_touches());
        // The Java leader wraps the data without a null check: always send a (possibly empty) buffer.
        let reply = QuorumPacket {
            ty: PacketType::Ping.code(),
            zxid: packet.zxid,
            data: Some(encode_session_touches(&touches)),
            authinfo: packet.authinfo,
        };
        self.send_leader(reply);
    }

    pub(crate) fn learner_on_durable(&mut self) {
        let durable = self.durable;
        loop {
            let l = self.learner();
            let Some(&(zxid, needed)) = l.acks_waiting.front() else {
                return;
            };
            if needed > durable {
                return;
            }
            self.learner().acks_waiting.pop_front();
            self.send_leader(QuorumPacket::new(PacketType::Ack, zxid.0));
        }
    }

    pub(crate) fn learner_forward(&mut self, request: ForwardedRequest, auth_ids: Vec<Id>) {
        let synced =
            matches!(&self.role, RoleState::Learning(l) if l.phase == LearnerPhase::Broadcast);
        if !synced {
            // A detached observer (or one still syncing) has no leader to send it to.
            self.refuse_session_request(SessionId(request.session_id));
            return;
        }
        self.om_note_local_sync(&request);
        self.send_leader(QuorumPacket {
            ty: PacketType::Request.code(),
            zxid: -1,
            data: Some(request.to_bytes()),
            authinfo: Some(auth_ids),
        });
    }

    pub(crate) fn learner_revalidate(&mut self, session: SessionId, timeout: i32) {
        let synced =
            matches!(&self.role, RoleState::Learning(l) if l.phase == LearnerPhase::Broadcast);
        if !synced {
            self.refuse_session_request(session);
            return;
        }
        let mut w = JuteWriter::new();
        RevalidateRequest {
            session_id: session.0,
            timeout,
        }
        .write(&mut w);
        self.send_leader(QuorumPacket::with_data(
            PacketType::Revalidate,
            -1,
            w.into_inner(),
        ));
    }

    /// An observer's own lag behind what it last heard from its learner master: the txns its master's
    /// last PING said exist that it has not applied (zxid counter difference, when in the same epoch),
    /// and how long ago the oldest PING it is still behind arrived (ms). `None` unless observing and
    /// synced. The master's PING zxid is the leader's last proposal or an observer master's last applied
    /// txn, so against a leader the number includes proposals not committed yet.
    pub fn learner_master_lag(&self) -> Option<(u64, u64)> {
        let RoleState::Learning(l) = &self.role else {
            return None;
        };
        if !l.observer || l.phase != LearnerPhase::Broadcast {
            return None;
        }
        let applied = Zxid(self.server.tree().last_processed_zxid());
        let zxids = if l.master_zxid.epoch() == applied.epoch() && l.master_zxid > applied {
            u64::from(l.master_zxid.counter() - applied.counter())
        } else {
            0
        };
        let ms = l
            .master_pings
            .iter()
            .find(|(z, _)| *z > applied)
            .map_or(0, |(_, at)| self.now_ms.saturating_sub(*at));
        Some((zxids, ms))
    }

    pub(crate) fn learner_on_tick(&mut self) {
        let now = self.now_ms;
        let (phase, last_heard) = {
            let l = self.learner();
            (l.phase, l.last_heard_ms)
        };
        let limit = if phase == LearnerPhase::Broadcast {
            self.ticks(self.cfg.sync_limit)
        } else {
            self.ticks(self.cfg.init_limit)
        };
        // Connecting has its own bound in the driver (it reports LeaderConnectFailed).
        if phase != LearnerPhase::Connecting && now.saturating_sub(last_heard) > limit {
            tracing::warn!("nothing from the leader for {limit} ms; looking again");
            self.go_looking();
            return;
        }
        self.om_on_tick();
    }
}
