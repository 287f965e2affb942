//! What a learner master (the leader, or a follower serving observers) keeps per learner link beyond the
//! protocol state in `leader.rs` / `observer_master.rs`:
//! - `LearnerHandler`'s counters (`packets_sent`, `packets_received`, `requests`, `last_zxid`, when the
//!   link was established), for the `observers` admin command, and their reset (`orst`);
//! - the learner's lag (below);
//! - the sync throttle's bookkeeping (`LearnerSyncThrottler`): which kind of sync the link holds a slot of;
//! - a SNAP being streamed ([`SnapStream`]) and the packets that must wait behind it.
//!
//! # Lag
//! Observers never ACK proposals, so the lag is measured with the only reply they do send: every PING is
//! answered, in order, after everything sent before it has been processed (`Learner.ping` runs on the
//! thread that applies INFORMs; outpost's learner handles packets strictly in order too). Each PING the
//! master sends records how many committed txns (INFORM or COMMIT packets) it had handed to the link; a
//! reply confirms them. So:
//! - `lag_zxids`: txns committed and handed to the link that the learner has not yet confirmed by
//!   answering a later PING (one zxid per txn: within an epoch this is the zxid counter difference);
//! - `lag_ms`: how long ago the oldest of them was committed and handed to the link (0 when none).
//!
//! The measure includes the WAN transit, the socket buffers and the learner's own queue, and its
//! resolution is the PING interval (`tickTime / 2`): an observer in step shows 0 once the next PING
//! comes back, a falling-behind one shows its backlog and its age.
//!
//! # SNAP streaming
//! A SNAP sync sends the SNAP packet, then the snapshot body in chunks of about
//! `PeerConfig::snap_chunk_bytes`, at most [`SNAP_WINDOW`] chunks handed to the driver at a time; the next
//! chunk is serialized when the driver reports one written ([`crate::zab::peer::PeerInput::SnapChunkWritten`]),
//! so a slow link holds back the serializer, not memory. Txns keep committing meanwhile (the snapshot is
//! fuzzy, as Java's is); every packet for that link (the txns committed meanwhile, NEWLEADER, …) waits
//! behind the stream and follows its last chunk, so the learner replays them on top of the snapshot.

use std::collections::VecDeque;

use crate::ids::{ServerId, Zxid};
use crate::proto::quorum::{PacketType, QuorumPacket};
use crate::proto::quorum_stream::encode_snapshot_signature;
use crate::tree::snap_stream::SnapStream;
use crate::zab::peer::{LinkId, Peer, PeerAction, RoleState};

/// Snapshot chunks handed to the driver and not yet reported written.
pub const SNAP_WINDOW: usize = 4;
/// Progress is logged after this many bytes of a SNAP stream…
const PROGRESS_BYTES: u64 = 16 << 20;
/// …or this much time, whichever comes first.
const PROGRESS_MS: u64 = 5_000;
/// PINGs remembered while their replies are outstanding; beyond, pings are not recorded, which makes
/// the lag read high (a reply then confirms an older ping), never low.
const MAX_PING_MARKS: usize = 1024;
/// Packet bytes that may wait behind a SNAP stream; a learner whose stream is slower than the commits
/// piling up behind it is dropped (it syncs again, by DIFF if it can).
const MAX_DEFERRED_BYTES: usize = 256 << 20;

/// The learner sync throttles (`LearnerSyncThrottler.SyncType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncKind {
    /// A SNAP sync (`maxConcurrentSnapSyncs`).
    Snap,
    /// A DIFF or TRUNC sync (`maxConcurrentDiffSyncs`).
    Diff,
}

/// One observer connected to this server, for the `observers` admin command and `mntr`
/// (`LearnerHandler.getLearnerHandlerInfo` plus outpost's lag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObserverInfo {
    /// The driver's link.
    pub link: LinkId,
    /// The observer's myid.
    pub sid: ServerId,
    /// When the link was accepted (ms, the peer's clock).
    pub established_ms: u64,
    /// Synced (UPTODATE sent) rather than still syncing.
    pub synced: bool,
    /// Packets handed to the link since it was established or the last reset.
    pub packets_sent: u64,
    /// Packets received from the observer since it was established or the last reset.
    pub packets_received: u64,
    /// REQUEST packets (forwarded writes and syncs) among them.
    pub requests: u64,
    /// The zxid of the last packet with a positive zxid sent to it (-1 after a reset, as Java).
    pub last_zxid: Zxid,
    /// Committed txns it has not confirmed yet (see the module doc).
    pub lag_zxids: u64,
    /// Age in ms of the oldest of them.
    pub lag_ms: u64,
}

/// A learner link's bookkeeping (see the module doc).
#[derive(Debug)]
pub(crate) struct LinkState {
    established_ms: u64,
    sid: Option<ServerId>,
    observer: bool,
    packets_sent: u64,
    packets_received: u64,
    requests: u64,
    last_zxid: Zxid,
    /// The throttle slot held from the sync decision to the learner's NEWLEADER ACK.
    pub(crate) syncing: Option<SyncKind>,
    lag: LagTracker,
    snap: Option<SnapOut>,
    /// When the last SNAP stream on this link finished.
    snap_done_ms: Option<u64>,
    /// Rule 5's txn log read for this link's sync, while asked for and once answered.
    pub(crate) txn_log: Option<TxnLogRead>,
}

/// The on-disk txn log read a learner's sync waits for (`PeerAction::ReadTxnLog`).
#[derive(Debug)]
pub(crate) enum TxnLogRead {
    /// Asked for, for a learner whose last zxid is `peer_last`.
    Requested {
        /// The learner's last zxid.
        peer_last: Zxid,
    },
    /// Answered: the txns read, or `None` when the log cannot serve the sync.
    Answered {
        /// The txns after the learner's zxid.
        txns: Option<Vec<(Zxid, std::sync::Arc<[u8]>)>>,
    },
}

impl LinkState {
    fn new(now_ms: u64) -> LinkState {
        LinkState {
            established_ms: now_ms,
            sid: None,
            observer: false,
            packets_sent: 0,
            packets_received: 0,
            requests: 0,
            last_zxid: Zxid::NONE,
            syncing: None,
            lag: LagTracker::default(),
            snap: None,
            snap_done_ms: None,
            txn_log: None,
        }
    }

    /// `LearnerHandler.sendPackets`: counts the packet and remembers the last positive zxid.
    fn count_sent(&mut self, packet: &QuorumPacket) {
        self.packets_sent += 1;
        if packet.zxid > 0 {
            self.last_zxid = Zxid(packet.zxid);
        }
    }
}

#[derive(Debug)]
struct PingMark {
    /// Which PING (1, 2, …): the n-th reply answers the n-th PING.
    seq: u64,
    /// Committed txns handed to the link before it.
    commits: u64,
    /// When the first txn after it was handed to the link.
    first_after_ms: Option<u64>,
}

/// Lag by PING round trips (see the module doc).
#[derive(Debug, Default)]
struct LagTracker {
    commits: u64,
    confirmed: u64,
    oldest_unconfirmed_ms: Option<u64>,
    pings: VecDeque<PingMark>,
    pings_sent: u64,
    replies: u64,
}

impl LagTracker {
    fn committed(&mut self, now_ms: u64) {
        self.commits += 1;
        if self.oldest_unconfirmed_ms.is_none() {
            self.oldest_unconfirmed_ms = Some(now_ms);
        }
        for mark in self.pings.iter_mut().rev() {
            if mark.first_after_ms.is_some() {
                break;
            }
            mark.first_after_ms = Some(now_ms);
        }
    }

    fn ping_sent(&mut self) {
        self.pings_sent += 1;
        if self.pings.len() < MAX_PING_MARKS {
            self.pings.push_back(PingMark {
                seq: self.pings_sent,
                commits: self.commits,
                first_after_ms: None,
            });
        }
    }

    fn ping_replied(&mut self) {
        self.replies += 1;
        let mut answered = None;
        while self.pings.front().is_some_and(|m| m.seq <= self.replies) {
            answered = self.pings.pop_front();
        }
        if let Some(mark) = answered {
            self.confirmed = mark.commits;
            self.oldest_unconfirmed_ms = if mark.commits < self.commits {
                mark.first_after_ms
            } else {
                None
            };
        }
    }

    fn lag(&self, now_ms: u64) -> (u64, u64) {
        let zxids = self.commits.saturating_sub(self.confirmed);
        let ms = match self.oldest_unconfirmed_ms {
            Some(t) if zxids > 0 => now_ms.saturating_sub(t),
            _ => 0,
        };
        (zxids, ms)
    }
}

/// A SNAP being streamed to a link.
#[derive(Debug)]
struct SnapOut {
    stream: SnapStream,
    /// Packets for the link that follow the snapshot.
    deferred: VecDeque<QuorumPacket>,
    deferred_bytes: usize,
    in_flight: usize,
    started_ms: u64,
    logged_ms: u64,
    logged_bytes: u64,
}

impl Peer {
    /// A learner link accepted by the leader or by this follower's observer-master port.
    pub(crate) fn link_opened(&mut self, link: LinkId) {
        self.link_states.insert(link, LinkState::new(self.now_ms));
    }

    /// The link's learner said who it is (FOLLOWERINFO / OBSERVERINFO).
    pub(crate) fn link_identified(&mut self, link: LinkId, sid: ServerId, observer: bool) {
        if let Some(s) = self.link_states.get_mut(&link) {
            s.sid = Some(sid);
            s.observer = observer;
        }
    }

    /// The link is gone: its throttle slot, counters and SNAP stream go with it.
    pub(crate) fn link_closed(&mut self, link: LinkId) {
        self.link_states.remove(&link);
    }

    /// Closes a learner's link once what was queued before is written.
    pub(crate) fn close_learner(&mut self, link: LinkId) {
        self.link_closed(link);
        self.actions.push(PeerAction::CloseLearner { link });
    }

    /// Sends a packet to a learner link, behind its SNAP stream if one is running.
    pub(crate) fn link_send(&mut self, link: LinkId, packet: QuorumPacket) {
        let now = self.now_ms;
        if let Some(state) = self.link_states.get_mut(&link) {
            match packet.packet_type() {
                Some(
                    PacketType::Inform
                    | PacketType::Commit
                    | PacketType::InformAndActivate
                    | PacketType::CommitAndActivate,
                ) => state.lag.committed(now),
                Some(PacketType::Ping) => state.lag.ping_sent(),
                _ => {}
            }
            if let Some(out) = &mut state.snap {
                out.deferred_bytes += packet.data.as_ref().map_or(0, Vec::len) + 32;
                out.deferred.push_back(packet);
                if out.deferred_bytes > MAX_DEFERRED_BYTES {
                    let why = format!(
                        "more than {MAX_DEFERRED_BYTES} bytes of packets wait behind the SNAP stream \
                         to server {}",
                        sid_text(state.sid)
                    );
                    self.drop_link(link, &why);
                }
                return;
            }
            state.count_sent(&packet);
        }
        self.actions.push(PeerAction::SendLearner { link, packet });
    }

    /// Counts a packet received on a learner link; a PING reply confirms the txns sent before its PING.
    pub(crate) fn link_received(&mut self, link: LinkId, packet: &QuorumPacket) {
        if let Some(state) = self.link_states.get_mut(&link) {
            state.packets_received += 1;
            match packet.packet_type() {
                Some(PacketType::Request) => state.requests += 1,
                Some(PacketType::Ping) => state.lag.ping_replied(),
                _ => {}
            }
        }
    }

    /// The learner acknowledged NEWLEADER: its sync is over and frees its throttle slot
    /// (`LearnerHandler`: `syncThrottler.endSync()` after the NEWLEADER ACK).
    pub(crate) fn link_synced(&mut self, link: LinkId) {
        if let Some(state) = self.link_states.get_mut(&link) {
            state.syncing = None;
        }
    }

    /// Syncs of `kind` this server is serving now (the links holding a slot).
    pub(crate) fn syncs_in_progress(&self, kind: SyncKind) -> usize {
        self.link_states
            .values()
            .filter(|s| s.syncing == Some(kind))
            .count()
    }

    /// `LearnerSyncThrottler.beginSync(essential)`: takes a slot of `kind` for `link`, or refuses a
    /// non-essential (observer) sync when the slots are all taken. Followers are essential: counted,
    /// never refused, because the quorum depends on them.
    pub(crate) fn begin_sync(&mut self, link: LinkId, kind: SyncKind, essential: bool) -> bool {
        let (max, name) = match kind {
            SyncKind::Snap => (self.cfg.max_concurrent_snap_syncs, "SNAP"),
            SyncKind::Diff => (self.cfg.max_concurrent_diff_syncs, "DIFF"),
        };
        let busy = self.syncs_in_progress(kind);
        if !essential && busy >= max {
            // LearnerHandler catches SyncThrottleException, logs "too many concurrent sync." and shuts
            // the handler down: the observer sees its connection close and tries again later.
            let sid = sid_text(self.link_states.get(&link).and_then(|s| s.sid));
            tracing::warn!(
                "too many concurrent syncs: refusing a {name} sync to server {sid} on link {link} \
                 ({busy} of at most {max} in progress)"
            );
            self.stats.syncs_throttled += 1;
            return false;
        }
        if let Some(state) = self.link_states.get_mut(&link) {
            state.syncing = Some(kind);
        }
        true
    }

    /// Since when a learner link counts as silent, given when its learner was last heard: never while a
    /// SNAP is streamed to it (the learner has nothing to say until the snapshot is in), and not before
    /// the stream ended (Java's `LearnerHandler` starts its read timeout for the NEWLEADER ACK only
    /// after writing the snapshot).
    pub(crate) fn link_quiet_since(&self, link: LinkId, last_heard_ms: u64) -> Option<u64> {
        match self.link_states.get(&link) {
            Some(s) if s.snap.is_some() => None,
            Some(s) => Some(last_heard_ms.max(s.snap_done_ms.unwrap_or(0))),
            None => Some(last_heard_ms),
        }
    }

    /// Drops a learner link from whichever role serves it.
    pub(crate) fn drop_link(&mut self, link: LinkId, why: &str) {
        tracing::warn!("closing learner link {link}: {why}");
        match &mut self.role {
            RoleState::Leading(l) => l.remove_handler(link),
            RoleState::Learning(_) => self.om_on_disconnect(link),
            RoleState::Looking => {}
        }
        self.close_learner(link);
    }

    /// Starts streaming this server's tree to `link` after the SNAP packet (see the module doc).
    pub(crate) fn start_snap_stream(&mut self, link: LinkId) {
        let sessions = self.server.global_sessions();
        let stream = SnapStream::new(self.server.tree(), &sessions);
        let zxid = Zxid(stream.zxid());
        self.link_send(link, QuorumPacket::new(PacketType::Snap, zxid.0));
        let now = self.now_ms;
        let Some(state) = self.link_states.get_mut(&link) else {
            return;
        };
        tracing::info!(
            "sending a snapshot at {zxid} to server {} on link {link} in chunks of {} bytes",
            sid_text(state.sid),
            self.cfg.snap_chunk_bytes
        );
        state.snap = Some(SnapOut {
            stream,
            deferred: VecDeque::new(),
            deferred_bytes: 0,
            in_flight: 0,
            started_ms: now,
            logged_ms: now,
            logged_bytes: 0,
        });
        self.snap_pump(link);
    }

    /// The driver wrote one snapshot chunk of `link` to its socket: serialize the next.
    pub(crate) fn snap_chunk_written(&mut self, link: LinkId) {
        if let Some(out) = self
            .link_states
            .get_mut(&link)
            .and_then(|s| s.snap.as_mut())
        {
            out.in_flight = out.in_flight.saturating_sub(1);
            self.snap_pump(link);
        }
    }

    /// Hands chunks to the driver while the window has room; after the last one, the waiting packets.
    fn snap_pump(&mut self, link: LinkId) {
        let now = self.now_ms;
        let chunk_bytes = self.cfg.snap_chunk_bytes.max(1);
        let tree = self.server.tree();
        let Some(state) = self.link_states.get_mut(&link) else {
            return;
        };
        let sid = sid_text(state.sid);
        let Some(out) = state.snap.as_mut() else {
            return;
        };
        while out.in_flight < SNAP_WINDOW && !out.stream.is_done() {
            let mut chunk = out.stream.next_chunk(tree, chunk_bytes);
            if out.stream.is_done() {
                encode_snapshot_signature(&mut chunk);
            }
            out.in_flight += 1;
            self.stats.snap_bytes_sent += chunk.len() as u64;
            self.actions
                .push(PeerAction::SendLearnerSnapshotChunk { link, chunk });
            let sent = out.stream.bytes();
            if sent - out.logged_bytes >= PROGRESS_BYTES || now - out.logged_ms >= PROGRESS_MS {
                out.logged_bytes = sent;
                out.logged_ms = now;
                tracing::info!(
                    "snapshot to server {sid} on link {link}: {sent} bytes, {} znodes sent",
                    out.stream.nodes()
                );
            }
        }
        if !out.stream.is_done() {
            return;
        }
        let Some(out) = state.snap.take() else {
            return;
        };
        state.snap_done_ms = Some(now);
        tracing::info!(
            "snapshot at {} to server {sid} on link {link} sent: {} bytes, {} znodes in {} ms; {} \
             packets followed it",
            Zxid(out.stream.zxid()),
            out.stream.bytes(),
            out.stream.nodes(),
            now.saturating_sub(out.started_ms),
            out.deferred.len()
        );
        for packet in out.deferred {
            state.count_sent(&packet);
            self.actions.push(PeerAction::SendLearner { link, packet });
        }
    }

    /// The observers connected to this server: the leader's observing learners, or the observers this
    /// follower serves as their observer master (`Leader.getObservingLearnersInfo`,
    /// `ObserverMaster.getActiveObservers`), once their sync is decided.
    pub fn observers_info(&self) -> Vec<ObserverInfo> {
        let synced = self.synced_observer_links();
        let mut out: Vec<ObserverInfo> = self
            .link_states
            .iter()
            .filter(|(link, s)| s.observer && synced.iter().any(|(l, _)| l == *link))
            .filter_map(|(link, s)| {
                let (lag_zxids, lag_ms) = s.lag.lag(self.now_ms);
                Some(ObserverInfo {
                    link: *link,
                    sid: s.sid?,
                    established_ms: s.established_ms,
                    synced: synced.iter().any(|(l, up)| l == link && *up),
                    packets_sent: s.packets_sent,
                    packets_received: s.packets_received,
                    requests: s.requests,
                    last_zxid: s.last_zxid,
                    lag_zxids,
                    lag_ms,
                })
            })
            .collect();
        out.sort_by_key(|o| (o.sid, o.link));
        out
    }

    /// `orst`: `LearnerHandler.resetObserverConnectionStats` for every observer.
    pub fn reset_observer_stats(&mut self) {
        for s in self.link_states.values_mut().filter(|s| s.observer) {
            s.packets_sent = 0;
            s.packets_received = 0;
            s.requests = 0;
            s.last_zxid = Zxid::NONE;
        }
    }

    /// The `mntr` lines (names without `zk_`) about observers and learner syncs:
    /// - on a leader, and on a follower serving observers: `synced_observers` and, per observer,
    ///   `observer_lag_zxids_sid_<sid>` and `observer_lag_ms_sid_<sid>` (`mntr` is flat `key value`
    ///   lines, so the sid goes into the key, as ZooKeeper's keyed metric sets put their key there; the
    ///   Prometheus exporter turns these into one gauge with a `sid` label);
    /// - on an observer: `learner_master_lag_zxids` and `learner_master_lag_ms`;
    /// - everywhere: `snap_count` and `diff_count` (syncs served, ZooKeeper's names; TRUNC counts as
    ///   DIFF there too), `snap_sync_bytes_sent` / `snap_sync_bytes_received`, `learner_syncs_throttled`
    ///   and the syncs in progress.
    pub fn monitor_lines(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let serves_observers = match &self.role {
            RoleState::Leading(_) => true,
            RoleState::Learning(l) => !l.observer && self.cfg.observer_master,
            RoleState::Looking => false,
        };
        if serves_observers {
            let observers = self.observers_info();
            out.push(("synced_observers".into(), observers.len().to_string()));
            for o in &observers {
                out.push((
                    format!("observer_lag_zxids_sid_{}", o.sid.0),
                    o.lag_zxids.to_string(),
                ));
                out.push((
                    format!("observer_lag_ms_sid_{}", o.sid.0),
                    o.lag_ms.to_string(),
                ));
            }
        }
        if let Some((zxids, ms)) = self.learner_master_lag() {
            out.push(("learner_master_lag_zxids".into(), zxids.to_string()));
            out.push(("learner_master_lag_ms".into(), ms.to_string()));
        }
        let s = &self.stats;
        out.push(("snap_count".into(), s.snap_syncs.to_string()));
        out.push((
            "diff_count".into(),
            (s.diff_syncs + s.trunc_syncs).to_string(),
        ));
        out.push((
            "snap_syncs_in_progress".into(),
            self.syncs_in_progress(SyncKind::Snap).to_string(),
        ));
        out.push((
            "diff_syncs_in_progress".into(),
            self.syncs_in_progress(SyncKind::Diff).to_string(),
        ));
        out.push(("snap_sync_bytes_sent".into(), s.snap_bytes_sent.to_string()));
        out.push((
            "snap_sync_bytes_received".into(),
            s.snap_bytes_received.to_string(),
        ));
        out.push((
            "learner_syncs_throttled".into(),
            s.syncs_throttled.to_string(),
        ));
        out
    }

    /// One line per link state, for simulator failures.
    pub(crate) fn debug_links(&self) -> String {
        self.link_states
            .iter()
            .map(|(l, s)| {
                format!(
                    "{l}:{:?}{}",
                    s.syncing,
                    s.snap.as_ref().map_or(String::new(), |o| format!(
                        " snap {}B in_flight {} deferred {}",
                        o.stream.bytes(),
                        o.in_flight,
                        o.deferred.len()
                    ))
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Observer links past their sync decision (forwarding), with whether UPTODATE was sent.
    fn synced_observer_links(&self) -> Vec<(LinkId, bool)> {
        match &self.role {
            RoleState::Leading(l) => l.observer_links(),
            RoleState::Learning(l) if !l.observer => l.om.observer_links(),
            _ => Vec::new(),
        }
    }
}

/// A learner's sid for log lines (`?` before it said who it is).
fn sid_text(sid: Option<ServerId>) -> String {
    sid.map_or_else(|| "?".to_string(), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lag counts the txns handed out after the last answered PING and ages the oldest of them; a reply
    /// to a PING confirms exactly what preceded that PING.
    #[test]
    fn lag_follows_ping_replies() {
        let mut t = LagTracker::default();
        assert_eq!(t.lag(0), (0, 0));
        t.committed(10);
        t.committed(20);
        assert_eq!(t.lag(30), (2, 20));
        t.ping_sent(); // covers 2
        t.committed(40);
        t.ping_sent(); // covers 3
        assert_eq!(t.lag(50), (3, 40));
        t.ping_replied();
        assert_eq!(
            t.lag(60),
            (1, 20),
            "the txn at 40 is the oldest unconfirmed"
        );
        t.ping_replied();
        assert_eq!(t.lag(70), (0, 0));
        t.ping_sent();
        t.ping_replied();
        assert_eq!(t.lag(80), (0, 0));
        t.committed(90);
        assert_eq!(t.lag(100), (1, 10));
    }

    /// Past the mark limit pings go unrecorded and a reply confirms only what an older, recorded PING
    /// covered: the lag may read high, never low.
    #[test]
    fn unrecorded_pings_never_understate_the_lag() {
        let mut t = LagTracker::default();
        for i in 0..(MAX_PING_MARKS as u64 + 10) {
            t.committed(i);
            t.ping_sent();
        }
        let total = MAX_PING_MARKS as u64 + 10;
        for _ in 0..total {
            t.ping_replied();
        }
        let (zxids, _) = t.lag(total);
        assert!(zxids <= 10, "{zxids}");
        assert!(t.confirmed <= t.commits);
    }
}
