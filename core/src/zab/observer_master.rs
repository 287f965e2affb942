//! The observer master: a follower serving observers on `observerMasterPort` (ZooKeeper's
//! `ObserverMaster`, 3.6+), so that observers sync from followers and not from the leader.
//!
//! What a follower does for each observer link, as `ObserverMaster` and its `LearnerHandler`s do:
//! 1. OBSERVERINFO → LEADERINFO carrying this follower's **currentEpoch** (no epoch negotiation: the
//!    epoch is the established leader's).
//! 2. ACKEPOCH → DIFF / TRUNC / SNAP from this follower's own committed log and tree, then NEWLEADER;
//!    the observer's ACK → UPTODATE at once (no quorum to wait for).
//! 3. Every txn this follower commits goes to its observers as INFORM, after the follower applied it.
//! 4. An observer's REQUEST is forwarded to the leader as this follower's own; its REVALIDATE is
//!    forwarded and the answer routed back by session id; its `sync` is forwarded and the leader's SYNC
//!    answered in the order syncs were forwarded (this follower's own clients' and its observers'
//!    share one FIFO, as in `FollowerRequestProcessor`).
//! 5. PING every `tickTime / 2`; the session touches in the observers' replies are carried to the
//!    leader in this follower's own ping replies. An observer silent for `syncLimit` ticks is dropped.
//!
//! The observer side (choosing a master from the voters in a shuffled order, falling back to the leader)
//! is in `learner.rs`.

use std::collections::{BTreeMap, VecDeque};

use crate::ids::{ServerId, Zxid};
use crate::jute::{JuteReader, JuteWriter, Record};
use crate::proto::quorum::{
    decode_session_touches, ForwardedRequest, LearnerInfoView, PacketType, QuorumPacket,
    RevalidateReply, RevalidateRequest, SessionTouch, LEARNER_PROTOCOL_VERSION,
};
use crate::proto::quorum_stream::QuorumItem;
use crate::proto::OpCode;
use crate::zab::peer::{LinkId, Peer, PeerAction, RoleState, SyncQueued};

/// Where one observer link is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OmState {
    AwaitInfo,
    AwaitAckEpoch,
    AwaitNewLeaderAck,
    Active,
}

#[derive(Debug)]
struct OmHandler {
    sid: Option<ServerId>,
    state: OmState,
    last_heard_ms: u64,
}

/// Who waits for the leader's next SYNC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncOwner {
    /// One of this server's own clients.
    Local,
    /// An observer on this link.
    Link(LinkId),
}

/// A follower's observer-master state (empty on observers and while not serving).
#[derive(Debug, Default)]
pub(crate) struct ObserverMaster {
    handlers: BTreeMap<LinkId, OmHandler>,
    /// Forwarded syncs, oldest first.
    syncs: VecDeque<SyncOwner>,
    /// Forwarded REVALIDATEs by session.
    revalidates: BTreeMap<i64, LinkId>,
    /// Session touches from observers' ping replies, for this server's next ping reply.
    touches: Vec<SessionTouch>,
    last_ping_ms: u64,
}

impl ObserverMaster {
    pub(crate) fn links(&self) -> Vec<LinkId> {
        self.handlers.keys().copied().collect()
    }

    /// Observer links past their sync decision (`ObserverMaster.activeObservers`), with whether
    /// UPTODATE was sent.
    pub(crate) fn observer_links(&self) -> Vec<(LinkId, bool)> {
        self.handlers
            .iter()
            .filter(|(_, h)| matches!(h.state, OmState::AwaitNewLeaderAck | OmState::Active))
            .map(|(l, h)| (*l, h.state == OmState::Active))
            .collect()
    }

    /// Observers served (sid, active?).
    pub(crate) fn summary(&self) -> Vec<(ServerId, bool)> {
        self.handlers
            .values()
            .filter_map(|h| h.sid.map(|s| (s, h.state == OmState::Active)))
            .collect()
    }
}

impl Peer {
    fn om(&mut self) -> Option<&mut ObserverMaster> {
        match &mut self.role {
            RoleState::Learning(l) if !l.observer => Some(&mut l.om),
            _ => None,
        }
    }

    /// Whether this server can serve observers now: a follower synced with its leader.
    fn om_ready(&self) -> bool {
        matches!(&self.role, RoleState::Learning(l) if !l.observer) && self.serving
    }

    pub(crate) fn om_is_link(&mut self, link: LinkId) -> bool {
        self.om().is_some_and(|om| om.handlers.contains_key(&link))
    }

    /// An observer connected to this server's observer-master port.
    pub(crate) fn om_on_connect(&mut self, link: LinkId) {
        let now = self.now_ms;
        if !self.om_ready() {
            // Not a synced follower (looking, leading, syncing, observing): the observer tries the next
            // master or the leader.
            self.close_learner(link);
            return;
        }
        self.link_opened(link);
        if let Some(om) = self.om() {
            om.handlers.insert(
                link,
                OmHandler {
                    sid: None,
                    state: OmState::AwaitInfo,
                    last_heard_ms: now,
                },
            );
        }
    }

    pub(crate) fn om_on_disconnect(&mut self, link: LinkId) {
        if let Some(om) = self.om() {
            om.handlers.remove(&link);
            om.revalidates.retain(|_, l| *l != link);
        }
    }

    /// Syncs an observer whose ACKEPOCH carried `peer_last` (the link stays in `AwaitAckEpoch` while
    /// a txn log read is under way).
    fn om_sync(&mut self, link: LinkId, peer_last: Zxid) {
        let epoch = self.current_epoch;
        // Observers are never essential: the throttle may refuse them.
        let text = self.cfg.config_text.clone();
        match self.queue_sync(link, peer_last, &[], epoch, false, text) {
            SyncQueued::Done => {
                if let Some(h) = self.om().and_then(|om| om.handlers.get_mut(&link)) {
                    h.state = OmState::AwaitNewLeaderAck;
                }
            }
            SyncQueued::Refused => {
                self.om_on_disconnect(link);
                self.close_learner(link);
            }
            SyncQueued::AwaitTxnLog => {}
        }
    }

    /// The txn log read an observer's sync waited for is in: decide its sync now.
    pub(crate) fn om_resume_sync(&mut self, link: LinkId, peer_last: Zxid) {
        let waiting = self
            .om()
            .and_then(|om| om.handlers.get(&link))
            .is_some_and(|h| h.state == OmState::AwaitAckEpoch);
        if waiting {
            self.om_sync(link, peer_last);
        }
    }

    fn om_drop(&mut self, link: LinkId, why: &str) {
        tracing::warn!("closing observer link {link}: {why}");
        self.stats.protocol_errors += 1;
        self.om_on_disconnect(link);
        self.close_learner(link);
    }

    fn om_send(&mut self, link: LinkId, packet: QuorumPacket) {
        self.link_send(link, packet);
    }

    pub(crate) fn om_on_item(&mut self, link: LinkId, item: QuorumItem) {
        let now = self.now_ms;
        let Some(state) = self.om().and_then(|om| {
            let h = om.handlers.get_mut(&link)?;
            h.last_heard_ms = now;
            Some(h.state)
        }) else {
            return;
        };
        let QuorumItem::Packet(packet) = item else {
            return self.om_drop(link, "an observer sent a snapshot");
        };
        self.link_received(link, &packet);
        let Some(ty) = packet.packet_type() else {
            return self.om_drop(link, "unknown packet type");
        };
        match (state, ty) {
            (OmState::AwaitInfo, PacketType::ObserverInfo) => {
                let info = LearnerInfoView::parse(packet.data_or_empty());
                let sid = info
                    .server_id
                    .filter(|s| *s >= 0)
                    .map(|s| ServerId(s as u64));
                let current = self.current_epoch;
                if let Some(h) = self.om().and_then(|om| om.handlers.get_mut(&link)) {
                    h.sid = sid;
                    h.state = OmState::AwaitAckEpoch;
                }
                if let Some(sid) = sid {
                    self.link_identified(link, sid, true);
                }
                tracing::info!("observer {sid:?} connected to this observer master");
                let mut w = JuteWriter::new();
                w.write_i32(LEARNER_PROTOCOL_VERSION);
                self.om_send(
                    link,
                    QuorumPacket::with_data(
                        PacketType::LeaderInfo,
                        Zxid::new(current, 0).0,
                        w.into_inner(),
                    ),
                );
            }
            (OmState::AwaitInfo, _) => {
                self.om_drop(link, "an observer master accepts OBSERVERINFO only")
            }
            (OmState::AwaitAckEpoch, PacketType::AckEpoch) => {
                self.om_sync(link, Zxid(packet.zxid));
            }
            (OmState::AwaitNewLeaderAck, PacketType::Ack) => {
                if let Some(h) = self.om().and_then(|om| om.handlers.get_mut(&link)) {
                    h.state = OmState::Active;
                }
                self.link_synced(link);
                self.om_send(link, QuorumPacket::new(PacketType::UpToDate, -1));
            }
            // The observer's ACK after UPTODATE (Learner L6) carries the epoch's zxid; any other ACK
            // from an observer is a protocol error (ObserverMaster's rule).
            (OmState::Active, PacketType::Ack) if Zxid(packet.zxid).counter() == 0 => {}
            (OmState::Active, PacketType::Ping) => {
                match decode_session_touches(packet.data_or_empty()) {
                    Ok(touches) => {
                        if let Some(om) = self.om() {
                            om.touches.extend(touches);
                        }
                    }
                    Err(e) => self.om_drop(link, &format!("bad PING data: {e}")),
                }
            }
            (OmState::Active, PacketType::Request) => {
                match ForwardedRequest::from_bytes(packet.data_or_empty()) {
                    Ok(req) => {
                        if req.op_type == OpCode::Sync.code() {
                            if let Some(om) = self.om() {
                                om.syncs.push_back(SyncOwner::Link(link));
                            }
                        }
                        // Forwarded as this follower's own REQUEST (the leader sees it as the owner).
                        self.actions.push(PeerAction::SendLeader(packet));
                    }
                    Err(e) => self.om_drop(link, &format!("bad REQUEST: {e}")),
                }
            }
            (OmState::Active, PacketType::Revalidate) => {
                let mut r = JuteReader::new(packet.data_or_empty());
                match RevalidateRequest::read(&mut r) {
                    Ok(req) => {
                        if let Some(om) = self.om() {
                            om.revalidates.insert(req.session_id, link);
                        }
                        self.actions.push(PeerAction::SendLeader(packet));
                    }
                    Err(e) => self.om_drop(link, &format!("bad REVALIDATE: {e}")),
                }
            }
            (state, ty) => self.om_drop(link, &format!("unexpected {ty:?} in state {state:?}")),
        }
    }

    /// A txn this follower committed and applied: INFORM every observer being served.
    pub(crate) fn om_inform(&mut self, zxid: Zxid, entry: &[u8]) {
        self.om_inform_as(zxid, entry, None)
    }

    /// As [`Peer::om_inform`]; a committed reconfig goes as INFORMANDACTIVATE with the designated
    /// leader (`ObserverMaster.informAndActivate`).
    pub(crate) fn om_inform_as(&mut self, zxid: Zxid, entry: &[u8], designated: Option<ServerId>) {
        let links: Vec<LinkId> = match self.om() {
            Some(om) => om
                .handlers
                .iter()
                .filter(|(_, h)| matches!(h.state, OmState::AwaitNewLeaderAck | OmState::Active))
                .map(|(l, _)| *l)
                .collect(),
            None => return,
        };
        for link in links {
            let packet = match designated {
                None => QuorumPacket::with_data(PacketType::Inform, zxid.0, entry.to_vec()),
                Some(d) => QuorumPacket::with_data(
                    PacketType::InformAndActivate,
                    zxid.0,
                    crate::zab::reconfig::inform_and_activate_data(d, entry),
                ),
            };
            self.om_send(link, packet);
        }
    }

    /// Records who waits for the next SYNC when this server forwards its own client's sync.
    pub(crate) fn om_note_local_sync(&mut self, request: &ForwardedRequest) {
        if request.op_type == OpCode::Sync.code() {
            if let Some(om) = self.om() {
                om.syncs.push_back(SyncOwner::Local);
            }
        }
    }

    /// The leader's SYNC: who does it answer? (`Local` when nobody else waits.)
    pub(crate) fn om_take_sync(&mut self) -> SyncOwner {
        self.om()
            .and_then(|om| om.syncs.pop_front())
            .unwrap_or(SyncOwner::Local)
    }

    /// Routes a REVALIDATE answer to the observer that asked; false when it is this server's own.
    pub(crate) fn om_route_revalidate(&mut self, packet: &QuorumPacket) -> bool {
        let mut r = JuteReader::new(packet.data_or_empty());
        let Ok(reply) = RevalidateReply::read(&mut r) else {
            return false;
        };
        let Some(link) = self
            .om()
            .and_then(|om| om.revalidates.remove(&reply.session_id))
        else {
            return false;
        };
        self.om_send(link, packet.clone());
        true
    }

    /// Session touches from observers since the last ping reply.
    pub(crate) fn om_take_touches(&mut self) -> Vec<SessionTouch> {
        self.om()
            .map(|om| std::mem::take(&mut om.touches))
            .unwrap_or_default()
    }

    pub(crate) fn om_on_tick(&mut self) {
        let now = self.now_ms;
        let sync_ms = self.ticks(self.cfg.sync_limit);
        let init_ms = self.ticks(self.cfg.init_limit);
        let half_tick = (self.cfg.tick_ms / 2).max(1);
        let last = Zxid(self.server.tree().last_processed_zxid());
        let stale: Vec<LinkId> = match &self.role {
            RoleState::Learning(l) if !l.observer => {
                l.om.handlers
                    .iter()
                    .filter(|(link, h)| {
                        let limit = if h.state == OmState::Active {
                            sync_ms
                        } else {
                            init_ms
                        };
                        self.link_quiet_since(**link, h.last_heard_ms)
                            .is_some_and(|since| now.saturating_sub(since) > limit)
                    })
                    .map(|(l, _)| *l)
                    .collect()
            }
            _ => return,
        };
        let Some(om) = self.om() else { return };
        let ping = now.saturating_sub(om.last_ping_ms) >= half_tick;
        if ping {
            om.last_ping_ms = now;
        }
        let active: Vec<LinkId> = om
            .handlers
            .iter()
            .filter(|(_, h)| h.state == OmState::Active)
            .map(|(l, _)| *l)
            .collect();
        for link in stale {
            tracing::warn!("observer link {link} silent past its limit; closing");
            self.om_on_disconnect(link);
            self.close_learner(link);
        }
        if ping {
            for link in active {
                self.om_send(link, QuorumPacket::new(PacketType::Ping, last.0));
            }
        }
    }
}
