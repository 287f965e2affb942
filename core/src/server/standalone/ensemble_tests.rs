//! Tests of the leader and learner modes: a Leader-mode and a Learner-mode server wired together
//! directly (the learner's REQUEST/REVALIDATE go to the leader, the leader's proposals commit at once
//! or when a test says so, and come back to the learner as committed txns, SYNC and REVALIDATE answers).

use super::*;
use crate::ids::Epoch;
use crate::proto::client::{
    CreateRequest, DeleteRequest, ExistsRequest, GetDataRequest, SetDataRequest, SyncRequest,
};
use crate::proto::{decode_reply, Acl, Stat};

pub(super) const LEADER: ServerId = ServerId(1);
pub(super) const LEARNER: ServerId = ServerId(2);

fn settings(server_id: ServerId, mode: Mode) -> Settings {
    Settings {
        mode,
        server_id,
        session: SessionConfig::from_tick(100),
        prep: PrepConfig {
            extended_types: true,
            ..PrepConfig::default()
        },
        snap_count: 1_000_000,
        snapshot_seed: 1,
        snapshot_chunk_bytes: 512 << 10,
        container_check_interval_ms: 1000,
        emit_committed: false,
        local_sessions: LocalSessionSettings::default(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Leader,
    Learner,
}

/// What a client connection received.
#[derive(Debug)]
pub(super) enum Out {
    Frame(Vec<u8>),
    Close,
}

/// The two servers and the wire between them.
pub(super) struct Pair {
    pub(super) leader: Standalone,
    pub(super) learner: Standalone,
    pub(super) now: i64,
    /// Commit every proposal as soon as it is made (else only on [`Pair::commit_all`]).
    pub(super) auto_commit: bool,
    /// Proposals not yet committed, oldest first.
    pub(super) uncommitted: VecDeque<(Zxid, Vec<u8>)>,
    /// What each client connection received, by side and connection.
    pub(super) out: Vec<(Side, ConnId, Out)>,
    /// Every REQUEST the learner sent.
    pub(super) forwarded: Vec<ForwardedRequest>,
    /// How many times the leader reported its zxid counter used up.
    pub(super) exhausted: usize,
}

impl Pair {
    fn new() -> Pair {
        Pair::with_settings(|_| {})
    }

    /// Two servers whose settings `adjust` changed (the same change on both).
    pub(super) fn with_settings(adjust: impl Fn(&mut Settings)) -> Pair {
        let mut leader_settings = settings(LEADER, Mode::Leader);
        let mut learner_settings = settings(LEARNER, Mode::Learner { observer: false });
        adjust(&mut leader_settings);
        adjust(&mut learner_settings);
        let mut leader =
            Standalone::new(leader_settings, DataTree::new(true), &[], Zxid::ZERO, 1_000);
        // As after NEWLEADER of epoch 1.
        leader.set_next_zxid_base(Zxid::new(Epoch(1), 0));
        let learner = Standalone::new(
            learner_settings,
            DataTree::new(true),
            &[],
            Zxid::ZERO,
            1_000,
        );
        Pair {
            leader,
            learner,
            now: 1_000,
            auto_commit: true,
            uncommitted: VecDeque::new(),
            out: Vec::new(),
            forwarded: Vec::new(),
            exhausted: 0,
        }
    }

    fn server(&mut self, side: Side) -> &mut Standalone {
        match side {
            Side::Leader => &mut self.leader,
            Side::Learner => &mut self.learner,
        }
    }

    pub(super) fn handle(&mut self, side: Side, input: Input) {
        let now = self.now;
        self.server(side).handle(input, now);
        self.pump();
    }

    /// Carries every action to its destination until both servers are quiet.
    fn pump(&mut self) {
        loop {
            let mut progress = false;
            for action in self.learner.take_actions() {
                progress = true;
                match action {
                    Action::Send { conn, frame } => {
                        self.out.push((Side::Learner, conn, Out::Frame(frame)))
                    }
                    Action::Close { conn } => self.out.push((Side::Learner, conn, Out::Close)),
                    Action::Forward { request, auth_ids } => {
                        self.forwarded.push(request.clone());
                        self.leader.handle(
                            Input::Forwarded {
                                learner: LEARNER,
                                request,
                                auth_ids,
                            },
                            self.now,
                        );
                    }
                    Action::Revalidate { session, timeout } => self.leader.handle(
                        Input::Revalidate {
                            learner: LEARNER,
                            session,
                            timeout,
                        },
                        self.now,
                    ),
                    Action::Committed { .. } | Action::Snapshot { .. } => {}
                    other => panic!("a learner never emits {other:?}"),
                }
            }
            for action in self.leader.take_actions() {
                progress = true;
                match action {
                    Action::Send { conn, frame } => {
                        self.out.push((Side::Leader, conn, Out::Frame(frame)))
                    }
                    Action::Close { conn } => self.out.push((Side::Leader, conn, Out::Close)),
                    Action::Log { zxid, entry } => self.uncommitted.push_back((zxid, entry)),
                    Action::SyncReply { learner } => {
                        assert_eq!(learner, LEARNER);
                        self.learner.handle(Input::SyncDone, self.now);
                    }
                    Action::RevalidateReply {
                        learner,
                        session,
                        valid,
                    } => {
                        assert_eq!(learner, LEARNER);
                        self.learner
                            .handle(Input::RevalidateReply { session, valid }, self.now);
                    }
                    Action::ZxidExhausted => self.exhausted += 1,
                    Action::Committed { .. } | Action::Snapshot { .. } => {}
                    other => panic!("a leader never emits {other:?}"),
                }
            }
            if self.auto_commit && !self.uncommitted.is_empty() {
                progress = true;
                self.commit_one();
            }
            if !progress {
                break;
            }
        }
    }

    /// Commits the oldest proposal: on the leader (Durable), then COMMIT to the learner.
    pub(super) fn commit_one(&mut self) {
        let Some((zxid, entry)) = self.uncommitted.pop_front() else {
            return;
        };
        self.leader.handle(Input::Durable(zxid), self.now);
        let e = TxnEntry::decode(&entry).expect("a logged entry decodes");
        assert_eq!(e.header.zxid, zxid.0);
        self.learner.handle(
            Input::Committed {
                header: e.header,
                txn: e.txn,
            },
            self.now,
        );
    }

    pub(super) fn commit_all(&mut self) {
        while !self.uncommitted.is_empty() {
            self.commit_one();
            self.pump();
        }
    }

    /// Connects a new client; returns its session once the connect is answered.
    pub(super) fn connect(&mut self, side: Side, conn: ConnId) -> SessionId {
        self.connect_with(side, conn, 0, vec![0; 16]);
        self.connect_reply(side, conn)
            .map(|r| SessionId(r.session_id))
            .expect("a connect reply")
    }

    pub(super) fn connect_with(&mut self, side: Side, conn: ConnId, session: i64, passwd: Vec<u8>) {
        let request = ConnectRequest {
            timeout: 2000,
            session_id: session,
            passwd,
            read_only: Some(false),
            ..ConnectRequest::default()
        };
        self.handle(
            side,
            Input::Connect {
                conn,
                remote_ip: "127.0.0.1".into(),
                request,
            },
        );
    }

    /// The connect reply a connection got, if any (the first frame of a 41-byte length).
    pub(super) fn connect_reply(&self, side: Side, conn: ConnId) -> Option<ConnectResponse> {
        self.frames(side, conn)
            .into_iter()
            .find(|f| f.len() == 41)
            .map(|f| ConnectResponse::from_bytes(&f[4..]).expect("connect response"))
    }

    pub(super) fn frames(&self, side: Side, conn: ConnId) -> Vec<Vec<u8>> {
        self.out
            .iter()
            .filter(|(s, c, _)| *s == side && *c == conn)
            .filter_map(|(_, _, o)| match o {
                Out::Frame(f) => Some(f.clone()),
                Out::Close => None,
            })
            .collect()
    }

    pub(super) fn closed(&self, side: Side, conn: ConnId) -> bool {
        self.out
            .iter()
            .any(|(s, c, o)| *s == side && *c == conn && matches!(o, Out::Close))
    }

    /// Sends a request without waiting for anything beyond the pump.
    pub(super) fn send(&mut self, side: Side, conn: ConnId, xid: i32, request: Request) {
        self.handle(side, Input::Request { conn, xid, request });
    }

    /// The reply to `xid` on a connection (decoded as an answer to `op`), if it arrived.
    pub(super) fn reply(
        &self,
        side: Side,
        conn: ConnId,
        xid: i32,
        op: OpCode,
    ) -> Option<(ReplyHeader, Response)> {
        self.frames(side, conn)
            .iter()
            .filter(|f| f.len() != 41)
            .filter_map(|f| decode_reply(&f[4..], Some(op)).ok())
            .find(|(h, _)| h.xid == xid)
    }

    /// Sends a request and returns its reply (commits run automatically).
    pub(super) fn call(
        &mut self,
        side: Side,
        conn: ConnId,
        xid: i32,
        request: Request,
    ) -> (ReplyHeader, Response) {
        let op = request.op_code();
        self.send(side, conn, xid, request);
        self.reply(side, conn, xid, op).expect("a reply")
    }

    /// The xids of the replies a connection received, in order (notifications as -1).
    pub(super) fn reply_xids(&self, side: Side, conn: ConnId) -> Vec<i32> {
        self.frames(side, conn)
            .iter()
            .filter(|f| f.len() != 41)
            .map(|f| ReplyHeader::from_bytes(&f[4..20]).expect("header").xid)
            .collect()
    }
}

pub(super) fn create(path: &str, flags: i32) -> Request {
    Request::Create2(CreateRequest {
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl: Acl::open_unsafe(),
        flags,
    })
}

pub(super) fn set(path: &str, version: i32) -> Request {
    Request::SetData(SetDataRequest {
        path: path.into(),
        data: Some(b"new".to_vec()),
        version,
    })
}

pub(super) fn get(path: &str, watch: bool) -> Request {
    Request::GetData(GetDataRequest {
        path: path.into(),
        watch,
    })
}

fn stat_of(r: &Response) -> Stat {
    match r {
        Response::Create2(c) => c.stat,
        Response::SetData(s) => s.stat,
        Response::GetData(g) => g.stat,
        other => panic!("no stat in {other:?}"),
    }
}

/// Creates, setData, delete and multi sent through the learner are answered after the leader's commit
/// with the Stat and zxid the leader's own tree holds, exactly as the same writes sent to the leader.
#[test]
fn learner_writes_reply_with_the_leaders_stats() {
    let mut p = Pair::new();
    p.connect(Side::Leader, 1);
    p.connect(Side::Learner, 1);
    for (side, root) in [(Side::Leader, "/l"), (Side::Learner, "/f")] {
        let (h, r) = p.call(side, 1, 1, create(root, 0));
        assert_eq!(h.err, 0);
        let leader_stat = p.leader.tree().stat(root).expect("created on the leader");
        assert_eq!(stat_of(&r), leader_stat, "{side:?}");
        assert_eq!(h.zxid, leader_stat.czxid);
        assert_eq!(p.learner.tree().stat(root), Some(leader_stat));

        let (h, r) = p.call(side, 1, 2, set(root, 0));
        assert_eq!(h.err, 0);
        let leader_stat = p.leader.tree().stat(root).expect("node");
        assert_eq!((stat_of(&r), stat_of(&r).version), (leader_stat, 1));
        assert_eq!(h.zxid, leader_stat.mzxid);

        let child = format!("{root}/c");
        let multi = Request::Multi(MultiRequest {
            ops: vec![
                MultiOp::Create(CreateRequest {
                    path: child.clone(),
                    data: None,
                    acl: Acl::open_unsafe(),
                    flags: 0,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: root.into(),
                    data: None,
                    version: 1,
                }),
            ],
        });
        let (h, r) = p.call(side, 1, 3, multi);
        assert_eq!(h.err, 0);
        let Response::Multi(m) = r else {
            panic!("multi reply expected: {r:?}")
        };
        let root_stat = p.leader.tree().stat(root).expect("node");
        assert_eq!(
            m.results,
            vec![
                MultiResult::Create {
                    path: child.clone()
                },
                MultiResult::SetData { stat: root_stat },
            ]
        );

        let (h, r) = p.call(
            side,
            1,
            4,
            Request::Delete(DeleteRequest {
                path: child.clone(),
                version: 0,
            }),
        );
        assert_eq!((h.err, r), (0, Response::Empty));
        assert!(p.leader.tree().node(&child).is_none());
        assert!(p.learner.tree().node(&child).is_none());
    }
    // Nothing went to the leader's log that the learner did not apply.
    assert_eq!(p.leader.tree().digest(), p.learner.tree().digest());
    assert_eq!(
        p.leader.tree().last_processed_zxid(),
        p.learner.tree().last_processed_zxid()
    );
    assert_eq!(p.leader.tree().last_processed_zxid() >> 32, 1, "epoch 1");
}

/// A read on the learner sent right after the same session's write waits until that write's txn
/// commits there, then sees it; replies leave in request order.
#[test]
fn learner_read_after_own_write_sees_it() {
    let mut p = Pair::new();
    p.connect(Side::Learner, 1);
    p.auto_commit = false;
    p.send(Side::Learner, 1, 1, create("/a", 0));
    p.send(Side::Learner, 1, 2, get("/a", false));
    assert!(
        p.reply_xids(Side::Learner, 1).is_empty(),
        "nothing before the commit"
    );
    assert_eq!(p.uncommitted.len(), 1, "the learner forwarded the write");
    assert!(p.learner.tree().node("/a").is_none());
    p.commit_all();
    assert_eq!(p.reply_xids(Side::Learner, 1), vec![1, 2]);
    let (h, r) = p
        .reply(Side::Learner, 1, 2, OpCode::GetData)
        .expect("read reply");
    assert_eq!(h.err, 0);
    assert_eq!(stat_of(&r), p.leader.tree().stat("/a").expect("node"));
}

/// Failed writes through the learner come back as error txns and are answered with their code
/// (NODEEXISTS, BADVERSION), each with the zxid it consumed; an undecodable write body on the learner
/// is answered MARSHALLINGERROR locally without reaching the leader.
#[test]
fn learner_error_txns_answer_with_their_code() {
    let mut p = Pair::new();
    p.connect(Side::Learner, 1);
    p.call(Side::Learner, 1, 1, create("/a", 0));
    let before = p.leader.tree().last_processed_zxid();
    let (h, r) = p.call(Side::Learner, 1, 2, create("/a", 0));
    assert_eq!(
        (h.err, h.zxid, r),
        (ErrorCode::NodeExists.code(), before + 1, Response::Empty)
    );
    let (h, _) = p.call(Side::Learner, 1, 3, set("/a", 7));
    assert_eq!((h.err, h.zxid), (ErrorCode::BadVersion.code(), before + 2));
    assert_eq!(p.learner.tree().last_processed_zxid(), before + 2);

    let forwarded = p.forwarded.len();
    p.handle(
        Side::Learner,
        Input::BadRequest {
            conn: 1,
            xid: 4,
            ty: OpCode::Create.code(),
            err: ErrorCode::MarshallingError,
        },
    );
    let (h, _) = p.reply(Side::Learner, 1, 4, OpCode::Create).expect("reply");
    assert_eq!(h.err, ErrorCode::MarshallingError.code());
    assert_eq!(p.forwarded.len(), forwarded, "nothing forwarded");
    assert!(!p.closed(Side::Learner, 1));
}

/// The leader turns a forwarded write with an undecodable body into a MARSHALLINGERROR error txn, a
/// write of a session it does not know into SESSIONEXPIRED (`LeaderSessionTracker.checkSession`), and a
/// write of a session owned by another learner into SESSIONMOVED.
#[test]
fn leader_prepares_forwarded_errors() {
    let mut p = Pair::new();
    p.auto_commit = false;
    let session = {
        p.auto_commit = true;
        let s = p.connect(Side::Learner, 1);
        p.auto_commit = false;
        s
    };
    let forward = |p: &mut Pair, learner: ServerId, session: i64, body: Vec<u8>| {
        p.leader.handle(
            Input::Forwarded {
                learner,
                request: ForwardedRequest {
                    session_id: session,
                    cxid: 9,
                    op_type: OpCode::Create.code(),
                    body,
                },
                auth_ids: Vec::new(),
            },
            p.now,
        );
        let actions = p.leader.take_actions();
        let [Action::Log { entry, .. }] = &actions[..] else {
            panic!("one proposal expected: {actions:?}")
        };
        TxnEntry::decode(entry).expect("entry").txn
    };
    assert_eq!(
        forward(&mut p, LEARNER, session.0, vec![1, 2]),
        Txn::Error {
            err: ErrorCode::MarshallingError
        }
    );
    let body = create("/x", 0).to_body_bytes();
    assert_eq!(
        forward(&mut p, LEARNER, 0x0200_0000_0000_0999, body.clone()),
        Txn::Error {
            err: ErrorCode::SessionExpired
        }
    );
    assert_eq!(
        forward(&mut p, ServerId(3), session.0, body.clone()),
        Txn::Error {
            err: ErrorCode::SessionMoved
        }
    );
    assert!(matches!(
        forward(&mut p, LEARNER, session.0, body),
        Txn::Create(_)
    ));
}

/// A session opened on the learner is created through the leader (its id carries the learner's id);
/// its ephemeral node lives on both servers and vanishes from both when the leader expires the
/// session, which also closes the client's connection on the learner. The learner never expires it.
#[test]
fn learner_session_created_and_expired_by_the_leader() {
    let mut p = Pair::new();
    let session = p.connect(Side::Learner, 1);
    assert_eq!(
        (session.0 as u64) >> 56,
        LEARNER.0,
        "the id carries the learner's id"
    );
    let create_session = &p.forwarded[0];
    assert_eq!(
        (
            create_session.op_type,
            create_session.cxid,
            create_session.body.clone()
        ),
        (
            OpCode::CreateSession.code(),
            0,
            2000i32.to_be_bytes().to_vec()
        )
    );
    assert!(p.leader.sessions().get(session).is_some());
    assert!(p.learner.sessions().get(session).is_some());
    let (h, _) = p.call(Side::Learner, 1, 1, create("/e", 1));
    assert_eq!(h.err, 0);
    assert_eq!(
        p.leader.tree().node("/e").map(|n| n.stat.ephemeral_owner),
        Some(session.0)
    );
    assert_eq!(
        p.learner.tree().node("/e").map(|n| n.stat.ephemeral_owner),
        Some(session.0)
    );

    // Long past the timeout: the learner does nothing on its own.
    p.now = 10_000;
    let (forwarded, frames) = (p.forwarded.len(), p.out.len());
    p.handle(Side::Learner, Input::Tick);
    assert!(p.learner.tree().node("/e").is_some());
    assert_eq!((p.forwarded.len(), p.out.len()), (forwarded, frames));

    p.handle(Side::Leader, Input::Tick);
    assert!(p.leader.tree().node("/e").is_none());
    assert!(p.learner.tree().node("/e").is_none());
    assert!(
        p.closed(Side::Learner, 1),
        "the expired session's connection closes"
    );
    assert!(p.leader.sessions().get(session).is_none());
    assert!(p.learner.sessions().get(session).is_none());
}

/// A client closing its session on the learner is answered when the leader's closeSession commits;
/// its connection closes and its ephemerals go on both servers.
#[test]
fn learner_close_session_goes_through_the_leader() {
    let mut p = Pair::new();
    let session = p.connect(Side::Learner, 1);
    p.call(Side::Learner, 1, 1, create("/e", 1));
    let (h, _) = p.call(Side::Learner, 1, 2, Request::CloseSession);
    assert_eq!(h.err, 0);
    assert_eq!(
        p.forwarded.last().map(|f| f.op_type),
        Some(OpCode::CloseSession.code())
    );
    assert!(p.closed(Side::Learner, 1));
    assert!(p.leader.tree().node("/e").is_none());
    assert!(p.learner.tree().node("/e").is_none());
    assert!(p.leader.sessions().get(session).is_none());
}

/// A client reconnecting to the learner with a live session is revalidated by the leader and gets a
/// normal connect reply; once the leader expired the session, the same reconnect gets the expired
/// reply (id 0) and the connection closes. A wrong password is refused without asking the leader.
#[test]
fn learner_reconnect_revalidates_with_the_leader() {
    let mut p = Pair::new();
    let session = p.connect(Side::Leader, 1);
    p.call(Side::Leader, 1, 1, create("/e", 1));
    p.handle(Side::Leader, Input::Disconnected { conn: 1 });
    let passwd = session_password(session).to_vec();

    p.connect_with(Side::Learner, 5, session.0, passwd.clone());
    let reply = p.connect_reply(Side::Learner, 5).expect("connect reply");
    assert_eq!((reply.session_id, reply.timeout), (session.0, 2000));
    assert!(!p.closed(Side::Learner, 5));
    // The learner now serves the session: its writes go through and its ephemeral is its own.
    let (h, _) = p.call(Side::Learner, 5, 1, set("/e", -1));
    assert_eq!(h.err, 0);

    // A wrong password never reaches the leader.
    let forwarded = p.forwarded.len();
    p.connect_with(Side::Learner, 6, session.0, vec![0; 16]);
    assert_eq!(
        p.connect_reply(Side::Learner, 6).map(|r| r.session_id),
        Some(0)
    );
    assert!(p.closed(Side::Learner, 6));
    assert_eq!(p.forwarded.len(), forwarded);

    p.now = 20_000;
    p.handle(Side::Leader, Input::Tick);
    assert!(
        p.learner.tree().node("/e").is_none(),
        "expired by the leader"
    );
    p.connect_with(Side::Learner, 7, session.0, passwd);
    let reply = p.connect_reply(Side::Learner, 7).expect("connect reply");
    assert_eq!((reply.session_id, reply.timeout), (0, 0));
    assert!(p.closed(Side::Learner, 7));
}

/// A learner's sync completes only after every txn the leader prepared before it committed there,
/// and a read the same session sent after the sync waits for it and sees those txns; with nothing
/// outstanding the leader answers a sync at once.
#[test]
fn learner_sync_waits_for_earlier_commits() {
    let mut p = Pair::new();
    p.connect(Side::Learner, 1);
    p.connect(Side::Learner, 2);
    let sync = |path: &str| Request::Sync(SyncRequest { path: path.into() });

    let (h, r) = p.call(Side::Learner, 2, 1, sync("/"));
    assert_eq!(
        (h.err, r),
        (0, Response::Sync(SyncResponse { path: "/".into() }))
    );

    p.auto_commit = false;
    p.send(Side::Learner, 1, 1, create("/s", 0));
    p.send(Side::Learner, 2, 2, sync("/s"));
    p.send(
        Side::Learner,
        2,
        3,
        Request::Exists(ExistsRequest {
            path: "/s".into(),
            watch: false,
        }),
    );
    assert_eq!(
        p.reply_xids(Side::Learner, 2),
        vec![1],
        "sync and read wait"
    );
    p.commit_all();
    assert_eq!(p.reply_xids(Side::Learner, 2), vec![1, 2, 3]);
    let (h, r) = p
        .reply(Side::Learner, 2, 2, OpCode::Sync)
        .expect("sync reply");
    assert_eq!(
        (h.err, h.zxid, r),
        (
            0,
            p.leader.tree().last_processed_zxid(),
            Response::Sync(SyncResponse { path: "/s".into() })
        )
    );
    let (h, _) = p
        .reply(Side::Learner, 2, 3, OpCode::Exists)
        .expect("read reply");
    assert_eq!(h.err, 0, "the read after the sync sees the earlier write");
}

/// A watch set on the learner fires there when a write made through the leader commits on the learner,
/// before the learner has any other reason to notice.
#[test]
fn learner_watches_fire_on_commit() {
    let mut p = Pair::new();
    p.connect(Side::Leader, 1);
    p.connect(Side::Learner, 1);
    p.call(Side::Leader, 1, 1, create("/w", 0));
    let (h, _) = p.call(Side::Learner, 1, 1, get("/w", true));
    assert_eq!(h.err, 0);
    p.auto_commit = false;
    p.send(Side::Leader, 1, 2, set("/w", -1));
    assert!(!p.reply_xids(Side::Learner, 1).contains(&-1));
    p.commit_all();
    let event = p
        .frames(Side::Learner, 1)
        .iter()
        .filter_map(|f| decode_reply(&f[4..], None).ok())
        .find_map(|(h, r)| match r {
            Response::Watch(e) if h.xid == -1 => Some(e),
            _ => None,
        })
        .expect("a notification on the learner");
    assert_eq!(
        (event.ty, event.path.as_str()),
        (crate::watch::EventType::NodeDataChanged.code(), "/w")
    );
}

/// The learner reports each session its clients touched once per PING reply, and the leader's touch
/// keeps the session alive past the timeout it would otherwise have expired at.
#[test]
fn learner_touches_keep_sessions_alive_on_the_leader() {
    let mut p = Pair::new();
    let session = p.connect(Side::Learner, 1);
    let _ = p.learner.take_session_touches();
    p.now = 2_500;
    p.send(Side::Learner, 1, -2, Request::Ping);
    p.send(Side::Learner, 1, 1, get("/", false));
    let touches = p.learner.take_session_touches();
    assert_eq!(
        touches,
        vec![SessionTouch {
            session_id: session.0,
            timeout: 2000
        }]
    );
    assert!(p.learner.take_session_touches().is_empty(), "taken once");
    p.handle(Side::Leader, Input::TouchSessions(touches));
    p.now = 3_500;
    p.handle(Side::Leader, Input::Tick);
    assert!(
        p.leader.sessions().get(session).is_some(),
        "touched at 2500"
    );
    assert!(!p.closed(Side::Learner, 1));
    p.now = 5_000;
    p.handle(Side::Leader, Input::Tick);
    assert!(
        p.leader.sessions().get(session).is_none(),
        "expired without touches"
    );
    assert!(p.closed(Side::Learner, 1));
}

/// The parts and the snapshot a server hands over hold the tree, its global sessions and its last
/// zxid, the same on leader and learner after the same commits.
#[test]
fn parts_and_snapshot_agree_between_leader_and_learner() {
    let mut p = Pair::new();
    let session = p.connect(Side::Learner, 1);
    p.call(Side::Learner, 1, 1, create("/a", 0));
    assert_eq!(p.leader.mode(), Mode::Leader);
    assert_eq!(p.learner.mode(), Mode::Learner { observer: false });
    let blob = p.learner.snapshot_now();
    let (tree, sessions) = read_snapshot_blob(&blob, true).expect("blob");
    assert_eq!(sessions, vec![(session, 2000)]);
    assert_eq!(tree.digest(), p.leader.tree().digest());
    let Pair {
        leader, learner, ..
    } = p;
    let (lt, ls, lz) = leader.into_parts();
    let (ft, fs, fz) = learner.into_parts();
    assert_eq!((ls, lz), (fs, fz));
    assert_eq!(lz, Zxid::new(Epoch(1), 2));
    assert_eq!(lt.digest(), ft.digest());
}

/// A leader never hands out counter 0xffffffff: the write that would get it is not prepared (no txn,
/// no reply) and the leader reports `ZxidExhausted` so the ZAB engine steps down for a new epoch.
#[test]
fn leader_reports_zxid_counter_exhaustion_instead_of_wrapping() {
    let mut p = Pair::new();
    // Two counters left: the session's createSession takes 0xfffffffe, then nothing is left.
    p.leader
        .set_next_zxid_base(Zxid::new(Epoch(1), u32::MAX - 2));
    let session = p.connect(Side::Leader, 1);
    assert_eq!(
        p.leader.tree().last_processed_zxid(),
        Zxid::new(Epoch(1), u32::MAX - 1).0
    );
    assert_eq!(p.exhausted, 0);
    p.send(Side::Leader, 1, 1, create("/after", 0));
    assert_eq!(p.exhausted, 1, "session {session:?}");
    assert!(p.uncommitted.is_empty(), "nothing was proposed");
    assert_eq!(
        p.leader.tree().last_processed_zxid(),
        Zxid::new(Epoch(1), u32::MAX - 1).0
    );
    assert!(p.reply_xids(Side::Leader, 1).is_empty());
}
