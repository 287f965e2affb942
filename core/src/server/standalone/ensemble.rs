//! What the leader and learner modes add to the server state machine.
//!
//! Leader ([`Mode::Leader`], ZooKeeper's `LeaderZooKeeperServer`): its own clients are served exactly as
//! standalone; learners' forwarded requests (`LearnerHandler` REQUEST) go through the same prep with
//! the packet's auth ids and the learner as session owner, and produce no client reply here; learner
//! syncs are answered once every txn prepared before them committed (`Leader.processSync`); PING
//! replies touch sessions and REVALIDATE checks them (`LearnerHandler`, `Leader.revalidateSession`).
//!
//! Learner ([`Mode::Learner`], `FollowerZooKeeperServer` / `ObserverZooKeeperServer`): reads are served
//! locally; writes, syncs, createSession and closeSession are forwarded (`FollowerRequestProcessor`)
//! and stay pending in their connection's queue until the leader's committed txn comes back and is
//! matched by session and cxid (`CommitProcessor`), after which it is answered as
//! `FinalRequestProcessor` would. Session ids are picked here, validity is the leader's call
//! (`LearnerSessionTracker`, `Learner.validateSession`); touches are collected for the next PING reply.

use super::*;

/// The session owner of a learner's requests (`Request.owner` is its `LearnerHandler`); kept apart
/// from [`LOCAL_OWNER`] by the top bit.
fn learner_owner(learner: ServerId) -> u64 {
    learner.0 | (1 << 63)
}

impl Standalone {
    /// The role this state machine plays.
    pub fn mode(&self) -> Mode {
        self.settings.mode
    }

    pub(super) fn is_learner(&self) -> bool {
        matches!(self.settings.mode, Mode::Learner { .. })
    }

    /// Learner: the sessions touched (by a client packet or ping) since the previous call, each once,
    /// with its timeout: the data of the next PING reply (`LearnerSessionTracker.snapshot`).
    pub fn take_session_touches(&mut self) -> Vec<SessionTouch> {
        std::mem::take(&mut self.touches)
            .into_iter()
            .map(|(session_id, timeout)| SessionTouch {
                session_id,
                timeout,
            })
            .collect()
    }

    /// Takes the server apart when its role ends: the tree, the global sessions with their timeouts and
    /// the last applied zxid (what a new role starts from).
    pub fn into_parts(self) -> (DataTree, Vec<(SessionId, i32)>, Zxid) {
        let sessions = self.sessions.global_sessions();
        let zxid = Zxid(self.tree.last_processed_zxid());
        (self.tree, sessions, zxid)
    }

    /// Leader: the next prepared txn gets `zxid.next()`. After NEWLEADER the base is `newEpoch << 32`,
    /// so the new epoch's first txn has counter 1 (`Leader.lead` resets the zxid to the new epoch).
    pub fn set_next_zxid_base(&mut self, zxid: Zxid) {
        self.last_prepared = zxid;
    }

    /// The global sessions (id, timeout) as they are now: the session list of a SNAP sync.
    pub fn global_sessions(&self) -> Vec<(SessionId, i32)> {
        self.sessions.global_sessions()
    }

    /// A snapshot blob ([`snapshot_blob`]) of the tree and global sessions as they are now, not fuzzy.
    pub fn snapshot_now(&self) -> Vec<u8> {
        snapshot_blob(&self.tree, &self.sessions.global_sessions())
    }

    /// Touches a session for a client packet; a learner also remembers the touch for the leader, for
    /// the global sessions it knows (`LearnerSessionTracker.touchSession`). A local session is touched
    /// here only: the leader never hears of it.
    pub(super) fn touch_session(&mut self, id: SessionId) {
        if self.touch_local(id) {
            return;
        }
        self.sessions.touch(id, self.now_ms);
        if self.is_learner() {
            let timeout = self
                .sessions
                .get(id)
                .filter(|s| !s.closing)
                .map(|s| s.timeout_ms)
                .or_else(|| self.upgrading_timeout(id));
            if let Some(timeout) = timeout {
                self.touches.insert(id.0, timeout);
            }
        }
    }

    // ----- leader --------------------------------------------------------------------------------

    /// A learner's REQUEST (`LearnerHandler` → `LeaderZooKeeperServer.submitLearnerRequest`).
    pub(super) fn on_forwarded(
        &mut self,
        learner: ServerId,
        request: ForwardedRequest,
        auth_ids: Vec<Id>,
    ) {
        if self.settings.mode != Mode::Leader {
            tracing::warn!("forwarded request from server {learner} while not leading, ignored");
            return;
        }
        let Some(op) = OpCode::from_code(request.op_type) else {
            tracing::warn!(
                "forwarded request of unknown type {} from server {learner}, ignored",
                request.op_type
            );
            return;
        };
        let session = SessionId(request.session_id);
        let owner = learner_owner(learner);
        if op == OpCode::Sync {
            // Leader.processSync: at once when no proposal is outstanding, else when the newest one
            // at arrival commits.
            if self.in_flight.is_empty() {
                self.actions.push(Action::SyncReply { learner });
            } else {
                self.leader_syncs.push_back((self.last_prepared, learner));
            }
            return;
        }
        let write = match Request::decode(op, &request.body) {
            // PrepRequestProcessor assigns the zxid before it reads the body: an error txn.
            Err(err) if op.is_write() => {
                tracing::debug!("forwarded {op:?} from server {learner} did not decode: {err}");
                WriteRequest::Malformed
            }
            Err(err) => {
                tracing::warn!("forwarded {op:?} from server {learner} did not decode: {err}");
                return;
            }
            Ok(Request::CreateSession { timeout }) => {
                // PrepRequestProcessor (createSession): the learner chose the id and negotiated the
                // timeout; the leader tracks the session and gives it to the learner.
                self.sessions.track_session(session, timeout, self.now_ms);
                let _ = self.sessions.set_owner(session, owner);
                WriteRequest::CreateSession {
                    timeout_ms: timeout,
                }
            }
            // Internal and check ops only ever come from learners here (a client's are refused where
            // it connected).
            Ok(Request::DeleteContainer { path }) => WriteRequest::DeleteContainer { path },
            Ok(Request::Check(r)) => WriteRequest::Check {
                path: r.path,
                version: r.version,
            },
            Ok(other) => match write_request(other) {
                Routed::Write(write) => write,
                Routed::Other(read) => {
                    tracing::warn!(
                        "server {learner} forwarded a {:?}, which is no write; ignored",
                        read.op_code()
                    );
                    return;
                }
            },
        };
        self.submit_write(
            session,
            request.cxid,
            &write,
            Origin::Learner,
            &auth_ids,
            owner,
        );
    }

    /// A learner's PING reply: the sessions its clients touched (`LearnerHandler` PING →
    /// `ZooKeeperServer.touch`). Only the leader tracks expiry.
    pub(super) fn on_touch_sessions(&mut self, touches: &[SessionTouch]) {
        if self.is_learner() {
            return;
        }
        for t in touches {
            self.sessions.touch(SessionId(t.session_id), self.now_ms);
        }
    }

    /// A learner's REVALIDATE (`LearnerHandler.revalidateSession`): valid when the session exists and is
    /// not closing; a valid session is touched and now owned by that learner.
    pub(super) fn on_revalidate(&mut self, learner: ServerId, session: SessionId, timeout: i32) {
        if self.settings.mode != Mode::Leader {
            tracing::warn!("revalidate from server {learner} while not leading, ignored");
            return;
        }
        let _ = timeout;
        let valid = self.sessions.touch(session, self.now_ms)
            && self
                .sessions
                .set_owner(session, learner_owner(learner))
                .is_ok();
        self.actions.push(Action::RevalidateReply {
            learner,
            session,
            valid,
        });
    }

    /// Releases the learner syncs waiting for txns up to `applied` (`Leader.commit` → `sendSync`).
    pub(super) fn release_leader_syncs(&mut self, applied: Zxid) {
        while let Some(&(zxid, learner)) = self.leader_syncs.front() {
            if zxid > applied {
                break;
            }
            self.leader_syncs.pop_front();
            self.actions.push(Action::SyncReply { learner });
        }
    }

    // ----- learner -------------------------------------------------------------------------------

    /// Sends a REQUEST for a client of `session` to the leader.
    pub(super) fn forward(
        &mut self,
        session: SessionId,
        cxid: i32,
        op: OpCode,
        body: Vec<u8>,
        auth: Vec<Id>,
    ) {
        self.actions.push(Action::Forward {
            request: ForwardedRequest {
                session_id: session.0,
                cxid,
                op_type: op.code(),
                body,
            },
            auth_ids: auth,
        });
    }

    /// A new session on a learner: pick the id here (it carries this server's id), have the leader
    /// create it (`LearnerSessionTracker.createSession` then a forwarded createSession, cxid 0, no
    /// auth), and answer the connect when its txn commits.
    pub(super) fn learner_new_session(&mut self, conn: ConnId, timeout: i32) {
        let id = self.sessions.allocate_id();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending_connect_timeout = Some(timeout);
            c.session = Some(id);
        }
        self.session_conn.insert(id, conn);
        self.forward(
            id,
            0,
            OpCode::CreateSession,
            timeout.to_be_bytes().to_vec(),
            Vec::new(),
        );
    }

    /// A reconnect with an existing session and the right password: ask the leader
    /// (`Learner.validateSession`); the connect is answered on [`Input::RevalidateReply`].
    pub(super) fn learner_revalidate(&mut self, conn: ConnId, id: SessionId, timeout: i32) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.pending_connect_timeout = Some(timeout);
            c.session = Some(id);
        }
        self.session_conn.insert(id, conn);
        // A newer reconnect of the same session supersedes an older one still waiting.
        self.revalidating.insert(id, (conn, timeout));
        self.actions.push(Action::Revalidate {
            session: id,
            timeout,
        });
    }

    /// The leader's answer to a REVALIDATE (`Learner.revalidate` → `finishSessionInit`).
    pub(super) fn on_revalidate_reply(&mut self, session: SessionId, valid: bool) {
        let Some((conn, timeout)) = self.revalidating.remove(&session) else {
            tracing::warn!("revalidate reply for session {session} nobody waits for");
            return;
        };
        let waiting = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.session == Some(session) && !c.closing);
        if !waiting {
            return;
        }
        if valid {
            // The leader refreshed the session; the tracker here learns of it if it had not yet.
            self.sessions.track_session(session, timeout, self.now_ms);
            self.finish_connect(conn, session, timeout);
        } else {
            self.detach(conn);
            self.refuse_session(conn);
        }
    }

    /// A client request on a learner: forwards writes, syncs and closeSession to the leader and keeps
    /// them pending in order; hands everything else back to be served here.
    pub(super) fn learner_request(
        &mut self,
        conn: ConnId,
        session: SessionId,
        xid: i32,
        request: Request,
    ) -> Option<Request> {
        let op = request.op_code();
        match &request {
            Request::Sync(r) => {
                let path = r.path.clone();
                let auth = self.queue_forwarded(conn, xid, None);
                self.learner_syncs.push_back((conn, xid, path));
                self.forward(session, xid, op, request.to_body_bytes(), auth);
                None
            }
            Request::Create(_)
            | Request::Create2(_)
            | Request::CreateContainer(_)
            | Request::CreateTtl(_)
            | Request::Delete(_)
            | Request::SetData(_)
            | Request::SetAcl(_)
            | Request::Multi(_)
            // ZooKeeper's learners pass reconfig to the leader, whose prep decides (and refuses it
            // when reconfigEnabled is false).
            | Request::Reconfig(_)
            | Request::CloseSession => {
                let auth = self.queue_forwarded(conn, xid, Some(op));
                self.forward(session, xid, op, request.to_body_bytes(), auth);
                None
            }
            _ => Some(request),
        }
    }

    /// Records a forwarded request as pending on its connection (a write waits for its committed txn,
    /// `op` is `None` for a sync) and returns the connection's auth ids for the packet.
    fn queue_forwarded(&mut self, conn: ConnId, xid: i32, op: Option<OpCode>) -> Vec<Id> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Vec::new();
        };
        c.queue.push_write(xid);
        if let Some(op) = op {
            c.forwarded.push_back((xid, op));
        }
        c.auth_ids.clone()
    }

    /// A txn the leader committed (`Follower`'s COMMIT / `Observer`'s INFORM → `CommitProcessor`):
    /// applied here, and answered when it is the head pending request of one of our connections.
    pub(super) fn on_committed(&mut self, header: TxnHeader, txn: Txn) {
        if !self.is_learner() {
            tracing::warn!(
                "committed txn 0x{:x} fed while not a learner, ignored",
                header.zxid
            );
            return;
        }
        if header.zxid <= self.tree.last_processed_zxid() {
            tracing::warn!("committed txn 0x{:x} already applied, ignored", header.zxid);
            return;
        }
        let id = SessionId(header.client_id);
        let mut origin = Origin::Internal;
        if let Some(&conn) = self.session_conn.get(&id) {
            let revalidating = self.revalidating.get(&id).is_some_and(|(c, _)| *c == conn);
            if let Some(c) = self.conns.get_mut(&conn) {
                if matches!(txn, Txn::CreateSession { .. })
                    && c.pending_connect_timeout.is_some()
                    && !revalidating
                {
                    origin = Origin::Connect(conn);
                } else if let Some(&(xid, op)) = c
                    .forwarded
                    .front()
                    // A session upgrade's createSession (cxid 0) answers no client request.
                    .filter(|_| !matches!(txn, Txn::CreateSession { .. }))
                {
                    // CommitProcessor matches the session's oldest pending request by cxid; a
                    // mismatch (or a sync still ahead of it) means the txn is not ours to answer.
                    if xid == header.cxid && c.queue.head_write() == Some(xid) {
                        c.forwarded.pop_front();
                        origin = Origin::Request { conn, xid, op };
                    } else if xid == header.cxid {
                        tracing::warn!(
                            "commit of cxid {xid} of session {id} arrived before an earlier request \
                             of it was answered; closing the connection"
                        );
                        c.forwarded.pop_front();
                        self.close(conn);
                    }
                }
            }
        }
        self.last_prepared = self.last_prepared.max(Zxid(header.zxid));
        self.apply(InFlight {
            header,
            txn,
            origin,
        });
    }

    /// The leader's SYNC: the oldest forwarded sync completes, after everything committed before it
    /// (`FollowerZooKeeperServer.sync` → `CommitProcessor`).
    pub(super) fn on_sync_done(&mut self) {
        if !self.is_learner() {
            return;
        }
        let Some((conn, xid, path)) = self.learner_syncs.pop_front() else {
            tracing::warn!("SYNC from the leader with no sync pending");
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.queue.complete_write(xid) {
            tracing::warn!(
                "sync {xid} of connection {conn} completed before an earlier request; closing it"
            );
            self.close(conn);
            return;
        }
        let zxid = self.tree.last_processed_zxid();
        c.last_zxid = zxid;
        self.send(
            conn,
            reply_frame(
                xid,
                zxid,
                ErrorCode::Ok,
                &Response::Sync(SyncResponse { path }),
            ),
        );
        self.answer_ready(conn);
    }
}
