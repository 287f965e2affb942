//! Local sessions (`localSessionsEnabled`): sessions that live only on the server a client connected
//! to, as ZooKeeper's `UpgradeableSessionTracker` keeps them in its `LocalSessionTracker`, and their
//! upgrade to global sessions when they create an ephemeral (`localSessionsUpgradingEnabled`).
//!
//! The rules, from ZooKeeper 3.8 (`QuorumZooKeeperServer`, `LeaderSessionTracker`,
//! `LearnerSessionTracker`, `FollowerRequestProcessor`, `LeaderRequestProcessor`):
//! - Only in an ensemble. A standalone server ignores the keys (`ZooKeeperServer` runs a plain
//!   `SessionTrackerImpl`).
//! - With local sessions on, every new session is local, on the leader too: the connect is answered
//!   at once and no createSession txn is proposed, so an observer's client costs the quorum nothing.
//! - The server that owns a local session touches and expires it; touches never reach the leader. A
//!   client's closeSession is answered there, in order, without a closeSession txn.
//! - A reconnect with a local session's id is valid only on its server; anywhere else the leader
//!   does not know it (REVALIDATE fails) and the client is told its session expired.
//! - Writes and syncs of a local session are forwarded with its id. The leader accepts requests of a
//!   session it does not track when the id names another server (`LeaderSessionTracker.checkSession`).
//! - A create of an ephemeral, alone or inside a multi, needs a global session
//!   (`checkUpgradeSession`): the session leaves the local tracker and a createSession with the same
//!   id and timeout goes to the leader ahead of the create. With upgrading off, a learner answers
//!   EPHEMERALONLOCALSESSION itself and a leader's prep turns the create into an error txn with it.

use super::*;
use crate::tree::prep::SessionCheck;

/// `localSessionsEnabled` and `localSessionsUpgradingEnabled` (zoo.cfg defaults: both false).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalSessionSettings {
    /// `localSessionsEnabled`: new sessions are local to the server the client connected to.
    pub enabled: bool,
    /// `localSessionsUpgradingEnabled`: a local session that creates an ephemeral becomes global;
    /// without it that create fails with EPHEMERALONLOCALSESSION.
    pub upgrading: bool,
}

/// The local sessions of a leader or learner and the learner's sessions being upgraded
/// (`UpgradeableSessionTracker`'s `localSessionTracker` and `upgradingSessions`).
#[derive(Debug)]
pub(super) struct LocalSessions {
    /// The sessions that live on this server only.
    pub(super) tracker: SessionTracker,
    /// Learner: sessions upgraded here whose createSession has not committed yet, with their
    /// timeout. They are not global here until it commits (a learner's snapshot holds committed
    /// sessions only), but their touches already go to the leader.
    upgrading: BTreeMap<SessionId, i32>,
}

impl LocalSessions {
    pub(super) fn new(settings: &Settings, now_ms: i64) -> LocalSessions {
        LocalSessions {
            tracker: SessionTracker::new(settings.server_id, settings.session, now_ms),
            upgrading: BTreeMap::new(),
        }
    }
}

/// The position of the op that creates an ephemeral node: 0 for a create or create2 request, the
/// op's index in a multi; `None` when the request creates no ephemeral. The opcodes are the ones
/// `QuorumZooKeeperServer.checkUpgradeSession` looks at; in a multi every create op counts, since
/// ZooKeeper reads them all as `Op.create`, typed by their flags.
pub(super) fn ephemeral_create(request: &Request) -> Option<usize> {
    let ephemeral = |flags: i32| {
        crate::proto::CreateMode::from_flag(flags)
            .is_some_and(crate::proto::CreateMode::is_ephemeral)
    };
    match request {
        Request::Create(r) | Request::Create2(r) => ephemeral(r.flags).then_some(0),
        Request::Multi(m) => m.ops.iter().position(|op| match op {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => {
                ephemeral(r.flags)
            }
            MultiOp::CreateTtl(r) => ephemeral(r.flags),
            _ => false,
        }),
        _ => None,
    }
}

/// Prep's session checks on a server that may hold local sessions: `LeaderSessionTracker`'s
/// `checkSession` / `checkGlobalSession` on a leader, `SessionTrackerImpl`'s in standalone.
pub(super) struct QuorumSessionCheck<'a> {
    /// The global sessions.
    pub(super) global: &'a mut SessionTracker,
    /// This server's local sessions, when enabled.
    pub(super) local: Option<&'a mut SessionTracker>,
    /// Who submitted the request (`Request.owner`).
    pub(super) owner: u64,
    /// `Some(myid)` on a leader, whose trackers do not know every live session.
    pub(super) leader: Option<ServerId>,
}

impl SessionCheck for QuorumSessionCheck<'_> {
    fn check_session(&mut self, session: SessionId) -> Result<(), ErrorCode> {
        if let Some(local) = self.local.as_deref_mut() {
            match local.check_session(session, self.owner) {
                Err(ErrorCode::UnknownSession) => {}
                other => return other,
            }
        }
        match self.global.check_session(session, self.owner) {
            Err(ErrorCode::UnknownSession) => match self.leader {
                // A session no tracker here knows is a local session of the server its id names,
                // when local sessions are on; one of our own, or any without local sessions, is gone.
                Some(me) if self.local.is_some() && session.server().0 != me.0 & 0xff => Ok(()),
                Some(_) => Err(ErrorCode::SessionExpired),
                None => Err(ErrorCode::UnknownSession),
            },
            other => other,
        }
    }

    fn check_global_session(&mut self, session: SessionId) -> Result<(), ErrorCode> {
        // Still local here means it was not upgraded: upgrading is off (`checkUpgradeSession`'s
        // EphemeralOnLocalSessionException, which the leader's prep reports for the create).
        if self
            .local
            .as_deref()
            .is_some_and(|l| l.get(session).is_some())
        {
            return Err(ErrorCode::EphemeralOnLocalSession);
        }
        self.global.check_global_session(session, self.owner)
    }

    fn set_closing(&mut self, session: SessionId) {
        self.global.set_closing(session);
        if let Some(local) = self.local.as_deref_mut() {
            local.set_closing(session);
        }
    }
}

impl Standalone {
    /// This server's local sessions (`None` unless `localSessionsEnabled` in an ensemble).
    pub fn local_sessions(&self) -> Option<&SessionTracker> {
        self.local.as_ref().map(|l| &l.tracker)
    }

    /// A new session while local sessions are on (`LocalSessionTracker.createSession`): tracked
    /// here only and answered at once; no createSession txn.
    pub(super) fn local_new_session(&mut self, conn: ConnId, timeout: i32) {
        let Some(local) = self.local.as_mut().map(|l| &mut l.tracker) else {
            return;
        };
        let id = local.create_session(timeout, true, self.now_ms);
        let _ = local.set_owner(id, LOCAL_OWNER);
        tracing::debug!("created local session {id} with timeout {timeout} ms");
        let zxid = self.tree.last_processed_zxid();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
            (c.last_op, c.last_cxid, c.last_zxid) = ("SESS", 0, zxid);
        }
        self.session_conn.insert(id, conn);
        self.finish_connect(conn, id, timeout);
    }

    /// A reconnect with the id of one of this server's local sessions
    /// (`LearnerZooKeeperServer.revalidateSession` → `ZooKeeperServer.revalidateSession`): judged
    /// here, touched when valid. False when the id is no local session here (the global rules apply).
    pub(super) fn local_reconnect(
        &mut self,
        conn: ConnId,
        id: SessionId,
        passwd: &[u8],
        timeout: i32,
    ) -> bool {
        let now = self.now_ms;
        let Some(local) = self.local.as_mut().map(|l| &mut l.tracker) else {
            return false;
        };
        if local.get(id).is_none() {
            return false;
        }
        if !check_password(id, passwd) || !local.touch(id, now) {
            self.refuse_session(conn);
            return true;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(id);
        }
        self.session_conn.insert(id, conn);
        self.finish_connect(conn, id, timeout);
        true
    }

    /// Touches a local session of this server (`LocalSessionTracker.touchSession`); false when `id`
    /// is not one (it may be global).
    pub(super) fn touch_local(&mut self, id: SessionId) -> bool {
        let now = self.now_ms;
        self.local
            .as_mut()
            .is_some_and(|l| l.tracker.touch(id, now))
    }

    /// Learner: the timeout of a session this server upgraded whose createSession has not committed
    /// yet (`LearnerSessionTracker.touchSession` reports it to the leader).
    pub(super) fn upgrading_timeout(&self, id: SessionId) -> Option<i32> {
        self.local.as_ref()?.upgrading.get(&id).copied()
    }

    /// The local-session rules for a client request of `session`, before it is routed: a local
    /// session's close is answered here, in order; its create of an ephemeral first upgrades it
    /// (or, with upgrading off, is refused on a learner). True when the request was dealt with.
    pub(super) fn local_session_request(
        &mut self,
        conn: ConnId,
        session: SessionId,
        xid: i32,
        request: &Request,
    ) -> bool {
        let Some(local) = self.local.as_mut().map(|l| &mut l.tracker) else {
            return false;
        };
        if local.get(session).is_none() {
            return false;
        }
        if matches!(request, Request::CloseSession) {
            // FollowerRequestProcessor keeps a local closeSession off the wire; PrepRequestProcessor
            // makes no txn of it and FinalRequestProcessor removes the session.
            local.set_closing(session);
            let idle = self.conns.get(&conn).is_some_and(|c| c.queue.is_idle());
            if idle {
                self.finish_local_close(conn, xid);
            } else if let Some(c) = self.conns.get_mut(&conn) {
                c.queue.push_read(Waiting::CloseLocal { xid });
            }
            return true;
        }
        let Some(index) = ephemeral_create(request) else {
            return false;
        };
        if self.settings.local_sessions.upgrading {
            self.upgrade_session(session);
            return false;
        }
        if !self.is_learner() {
            // The leader prepares the create; its ephemeral check fails on the local session and
            // the create becomes an error txn with EPHEMERALONLOCALSESSION, as in ZooKeeper.
            return false;
        }
        // ZooKeeper's learner forwards the create anyway and answers its client with the local
        // exception; answering here gives the client the same reply without an error txn.
        tracing::debug!("local session {session} may not create ephemerals (upgrading is off)");
        match request {
            Request::Multi(m) => {
                // As a failed multi is answered: the ops before the failing one OK, the ones after
                // RUNTIMEINCONSISTENCY (`DataTree.processTxn`), the header 0.
                let results = (0..m.ops.len())
                    .map(|i| MultiResult::Error {
                        err: match i.cmp(&index) {
                            std::cmp::Ordering::Less => ErrorCode::Ok,
                            std::cmp::Ordering::Equal => ErrorCode::EphemeralOnLocalSession,
                            std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                        },
                    })
                    .collect();
                self.reply_in_order(
                    conn,
                    xid,
                    ErrorCode::Ok,
                    Response::Multi(MultiResponse { results }),
                );
            }
            _ => self.fail_in_order(conn, xid, ErrorCode::EphemeralOnLocalSession),
        }
        true
    }

    /// Answers a local session's close: the session goes, the reply carries the last applied zxid,
    /// the connection closes after it.
    pub(super) fn finish_local_close(&mut self, conn: ConnId, xid: i32) {
        let Some(session) = self.conns.get(&conn).and_then(|c| c.session) else {
            return;
        };
        if let Some(local) = self.local.as_mut() {
            local.tracker.remove(session);
        }
        if self.session_conn.get(&session) == Some(&conn) {
            self.session_conn.remove(&session);
        }
        tracing::debug!("closed local session {session}");
        let zxid = self.tree.last_processed_zxid();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.last_zxid = zxid;
        }
        self.send(
            conn,
            reply_frame(xid, zxid, ErrorCode::Ok, &Response::Empty),
        );
        self.watches.remove_watcher(conn);
        self.close(conn);
    }

    /// `UpgradeableSessionTracker.upgradeSession` + `QuorumZooKeeperServer.makeUpgradeRequest`: the
    /// session leaves the local tracker and a createSession with the same id and timeout goes ahead
    /// of the request that needed it. The leader tracks the session as global at once and proposes
    /// the createSession; a learner forwards it (cxid 0) and keeps the session as upgrading until it
    /// commits (`LearnerSessionTracker.trackSession` does nothing).
    fn upgrade_session(&mut self, session: SessionId) {
        let learner = self.is_learner();
        let Some(local) = self.local.as_mut() else {
            return;
        };
        let Some(timeout) = local.tracker.remove(session).map(|s| s.timeout_ms) else {
            return;
        };
        tracing::info!("upgrading session {session}");
        if learner {
            local.upgrading.insert(session, timeout);
            self.touches.insert(session.0, timeout);
            self.forward(
                session,
                0,
                OpCode::CreateSession,
                timeout.to_be_bytes().to_vec(),
                Vec::new(),
            );
        } else {
            self.sessions.track_session(session, timeout, self.now_ms);
            let _ = self.sessions.set_owner(session, LOCAL_OWNER);
            self.submit_write(
                session,
                0,
                &WriteRequest::CreateSession {
                    timeout_ms: timeout,
                },
                Origin::Internal,
                &[],
                LOCAL_OWNER,
            );
        }
    }

    /// A session's createSession or closeSession txn applied: it is neither local nor upgrading here
    /// any more (`LeaderSessionTracker` / `LearnerSessionTracker` `commitSession`, `finishedUpgrading`
    /// and `removeSession`).
    pub(super) fn forget_local_session(&mut self, session: SessionId) {
        if let Some(local) = self.local.as_mut() {
            local.tracker.remove(session);
            local.upgrading.remove(&session);
        }
    }

    /// Expires the local sessions whose time is up (`LocalSessionTracker`'s expirer → a local
    /// closeSession): they go from the tracker, their connections close; nothing is proposed.
    pub(super) fn expire_local_sessions(&mut self) {
        let now = self.now_ms;
        let expired = match self.local.as_mut() {
            Some(local) => {
                let expired = local.tracker.expired(now);
                for id in &expired {
                    local.tracker.remove(*id);
                }
                expired
            }
            None => return,
        };
        for id in expired {
            tracing::info!("expiring local session {id}, timeout exceeded");
            if let Some(conn) = self.session_conn.remove(&id) {
                self.watches.remove_watcher(conn);
                self.close(conn);
            }
        }
    }
}
