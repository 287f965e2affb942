//! Tests of local sessions (`localSessionsEnabled`) on a leader and a learner wired together by the
//! `ensemble_tests` harness: what stays on the owning server, what crosses to the leader, and the
//! upgrade to a global session on an ephemeral create.

use super::ensemble_tests::{create, get, Pair, Side, LEADER, LEARNER};
use super::*;
use crate::proto::client::SetDataRequest;
use crate::proto::Acl;

/// A pair with local sessions on everywhere, upgrading as given.
fn local_pair(upgrading: bool) -> Pair {
    Pair::with_settings(|s| {
        s.local_sessions = LocalSessionSettings {
            enabled: true,
            upgrading,
        }
    })
}

fn op_types(p: &Pair) -> Vec<i32> {
    p.forwarded.iter().map(|f| f.op_type).collect()
}

fn local_count(s: &Standalone) -> usize {
    s.local_sessions().map_or(0, SessionTracker::len)
}

/// A session opened on a learner is answered there without a createSession at the leader; its
/// persistent writes are forwarded under its id and accepted by the leader, its reads and pings
/// stay local, and the leader never tracks it.
#[test]
fn learner_local_session_costs_the_leader_nothing() {
    let mut p = local_pair(true);
    let session = p.connect(Side::Learner, 1);
    assert_eq!(session.server(), LEARNER, "the id carries the learner's id");
    assert!(
        p.forwarded.is_empty(),
        "no createSession went to the leader"
    );
    assert_eq!(p.leader.tree().last_processed_zxid(), 0, "no txn");
    assert_eq!(local_count(&p.learner), 1);
    assert!(p.learner.sessions().is_empty());

    let (h, _) = p.call(Side::Learner, 1, 1, create("/p", 0));
    assert_eq!(h.err, 0);
    assert_eq!(op_types(&p), vec![OpCode::Create2.code()]);
    assert_eq!(p.forwarded[0].session_id, session.0);
    assert!(p.leader.tree().node("/p").is_some());
    let (h, _) = p.call(Side::Learner, 1, 2, get("/p", true));
    assert_eq!(h.err, 0);
    p.send(Side::Learner, 1, -2, Request::Ping);
    assert!(
        p.learner.take_session_touches().is_empty(),
        "a local session's touches stay on its server"
    );
    assert!(p.leader.sessions().is_empty());
    assert_eq!(local_count(&p.leader), 0);
    assert_eq!(op_types(&p).len(), 1, "reads are not forwarded");
}

/// An ephemeral create from a learner's local session first sends a createSession with the same id
/// and timeout (cxid 0), then the create; the node belongs to the session on both servers, the
/// session is global from then on (it reconnects through the leader) and its close removes the node.
#[test]
fn ephemeral_create_on_a_learner_upgrades_the_session() {
    let mut p = local_pair(true);
    let session = p.connect(Side::Learner, 1);
    let (h, _) = p.call(Side::Learner, 1, 7, create("/e", 1));
    assert_eq!(h.err, 0);
    assert_eq!(
        op_types(&p),
        vec![OpCode::CreateSession.code(), OpCode::Create2.code()]
    );
    let upgrade = &p.forwarded[0];
    assert_eq!(
        (upgrade.session_id, upgrade.cxid, upgrade.body.clone()),
        (session.0, 0, 2000i32.to_be_bytes().to_vec())
    );
    for side in [&p.leader, &p.learner] {
        assert_eq!(
            side.tree().node("/e").map(|n| n.stat.ephemeral_owner),
            Some(session.0)
        );
        assert!(side.sessions().get(session).is_some(), "global everywhere");
        assert_eq!(local_count(side), 0);
    }
    assert_eq!(
        p.reply_xids(Side::Learner, 1),
        vec![7],
        "one reply, no stray"
    );
    // The leader now knows the session: a reconnect there is valid.
    p.handle(Side::Learner, Input::Disconnected { conn: 1 });
    p.connect_with(
        Side::Leader,
        2,
        session.0,
        session_password(session).to_vec(),
    );
    assert_eq!(
        p.connect_reply(Side::Leader, 2).map(|r| r.session_id),
        Some(session.0)
    );
    let (h, _) = p.call(Side::Leader, 2, 8, Request::CloseSession);
    assert_eq!(h.err, 0);
    assert!(p.leader.tree().node("/e").is_none());
    assert!(p.learner.tree().node("/e").is_none());
    assert!(p.leader.sessions().get(session).is_none());
}

/// Until its createSession commits, a session a learner upgraded is not global there (a snapshot
/// would not hold it) but its touches already go to the leader; the commit makes it global.
#[test]
fn an_upgrading_session_is_touched_but_not_yet_global_on_the_learner() {
    let mut p = local_pair(true);
    let session = p.connect(Side::Learner, 1);
    p.auto_commit = false;
    p.send(Side::Learner, 1, 1, create("/e", 1));
    assert_eq!(p.uncommitted.len(), 2, "createSession and create proposed");
    assert!(p.learner.sessions().get(session).is_none());
    let (_, sessions) = read_snapshot_blob(&p.learner.snapshot_now(), true).expect("blob");
    assert!(sessions.is_empty(), "{sessions:?}");
    let touches = p.learner.take_session_touches();
    assert_eq!(
        touches,
        vec![SessionTouch {
            session_id: session.0,
            timeout: 2000
        }]
    );
    p.commit_all();
    assert!(p.learner.sessions().get(session).is_some());
    p.send(Side::Learner, 1, -2, Request::Ping);
    assert_eq!(
        p.learner.take_session_touches().len(),
        1,
        "touched as global"
    );
}

/// On the leader its own local session upgrades the same way: a createSession txn is proposed
/// before the create, so the txn log holds both in that order.
#[test]
fn ephemeral_create_on_the_leader_upgrades_the_session() {
    let mut p = local_pair(true);
    let session = p.connect(Side::Leader, 1);
    assert_eq!(session.server(), LEADER);
    assert_eq!(
        p.leader.tree().last_processed_zxid(),
        0,
        "no txn to connect"
    );
    p.auto_commit = false;
    p.send(Side::Leader, 1, 1, create("/e", 1));
    let txns: Vec<Txn> = p
        .uncommitted
        .iter()
        .map(|(_, e)| TxnEntry::decode(e).expect("entry").txn)
        .collect();
    assert!(
        matches!(
            &txns[..],
            [Txn::CreateSession { timeout: 2000 }, Txn::Create2(_)]
        ),
        "{txns:?}"
    );
    p.commit_all();
    let (h, _) = p.reply(Side::Leader, 1, 1, OpCode::Create2).expect("reply");
    assert_eq!(h.err, 0);
    assert_eq!(
        p.learner.tree().node("/e").map(|n| n.stat.ephemeral_owner),
        Some(session.0)
    );
    assert_eq!(local_count(&p.leader), 0);
}

/// A local session's close is answered by its server after the session's earlier write, without
/// anything reaching the leader; the session is gone (a reconnect is refused) and its connection
/// closes.
#[test]
fn local_close_is_answered_in_order_by_the_owner() {
    let mut p = local_pair(true);
    let session = p.connect(Side::Learner, 1);
    p.auto_commit = false;
    p.send(Side::Learner, 1, 1, create("/a", 0));
    p.send(Side::Learner, 1, 2, Request::CloseSession);
    assert!(p.reply_xids(Side::Learner, 1).is_empty(), "the close waits");
    p.commit_all();
    assert_eq!(p.reply_xids(Side::Learner, 1), vec![1, 2]);
    assert!(p.closed(Side::Learner, 1));
    assert_eq!(
        op_types(&p),
        vec![OpCode::Create2.code()],
        "no closeSession"
    );
    let zxid = p.leader.tree().last_processed_zxid();
    assert_eq!(zxid & 0xffff_ffff, 1, "only the create's txn");
    let (h, _) = p
        .reply(Side::Learner, 1, 2, OpCode::CloseSession)
        .expect("close reply");
    assert_eq!((h.err, h.zxid), (0, zxid));
    assert_eq!(local_count(&p.learner), 0);
    p.connect_with(
        Side::Learner,
        2,
        session.0,
        session_password(session).to_vec(),
    );
    assert_eq!(
        p.connect_reply(Side::Learner, 2).map(|r| r.session_id),
        Some(0)
    );
}

/// The learner expires its own local sessions (the leader never could): touches keep one alive,
/// silence past the timeout closes its connection, with no txn anywhere.
#[test]
fn the_owner_expires_local_sessions() {
    let mut p = local_pair(true);
    p.connect(Side::Learner, 1);
    p.now = 2_500;
    p.send(Side::Learner, 1, -2, Request::Ping);
    p.now = 3_500;
    p.handle(Side::Learner, Input::Tick);
    assert!(!p.closed(Side::Learner, 1), "touched at 2500");
    assert_eq!(local_count(&p.learner), 1);
    p.now = 5_000;
    p.handle(Side::Learner, Input::Tick);
    assert!(p.closed(Side::Learner, 1), "expired");
    assert_eq!(local_count(&p.learner), 0);
    assert!(p.forwarded.is_empty());
    assert_eq!(p.leader.tree().last_processed_zxid(), 0);
}

/// A local session is valid only where it lives: a reconnect on its own server (new socket) works,
/// the same id and password at the leader or, for a leader's local session, at a learner
/// (REVALIDATE) are told the session expired.
#[test]
fn local_session_does_not_move() {
    let mut p = local_pair(true);
    let on_learner = p.connect(Side::Learner, 1);
    let on_leader = p.connect(Side::Leader, 1);
    let passwd = |s: SessionId| session_password(s).to_vec();

    p.connect_with(Side::Learner, 2, on_learner.0, passwd(on_learner));
    assert_eq!(
        p.connect_reply(Side::Learner, 2).map(|r| r.session_id),
        Some(on_learner.0)
    );
    assert!(p.closed(Side::Learner, 1), "the old socket is replaced");

    p.connect_with(Side::Leader, 3, on_learner.0, passwd(on_learner));
    let refused = p.connect_reply(Side::Leader, 3).expect("reply");
    assert_eq!((refused.session_id, refused.timeout), (0, 0));
    assert!(p.closed(Side::Leader, 3));

    p.connect_with(Side::Learner, 4, on_leader.0, passwd(on_leader));
    assert_eq!(
        p.connect_reply(Side::Learner, 4).map(|r| r.session_id),
        Some(0)
    );
    assert!(p.closed(Side::Learner, 4));
}

/// With upgrading off, a learner refuses an ephemeral create of a local session itself with
/// EPHEMERALONLOCALSESSION (a multi gets it at that op, OK before, RUNTIMEINCONSISTENCY after) and
/// forwards nothing; the leader's prep fails its own local session's create with the same code.
#[test]
fn without_upgrading_local_sessions_cannot_create_ephemerals() {
    let mut p = local_pair(false);
    p.connect(Side::Learner, 1);
    let (h, _) = p.call(Side::Learner, 1, 1, create("/e", 1));
    assert_eq!(h.err, ErrorCode::EphemeralOnLocalSession.code());
    let op = |path: &str, flags| {
        MultiOp::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags,
        })
    };
    let multi = Request::Multi(MultiRequest {
        ops: vec![
            op("/m1", 0),
            op("/m2", 3),
            MultiOp::SetData(SetDataRequest {
                path: "/m1".into(),
                data: None,
                version: -1,
            }),
        ],
    });
    let (h, r) = p.call(Side::Learner, 1, 2, multi);
    assert_eq!(h.err, 0);
    let errors = |r: Response| match r {
        Response::Multi(m) => m.results,
        other => panic!("multi reply expected: {other:?}"),
    };
    assert_eq!(
        errors(r),
        vec![
            MultiResult::Error { err: ErrorCode::Ok },
            MultiResult::Error {
                err: ErrorCode::EphemeralOnLocalSession
            },
            MultiResult::Error {
                err: ErrorCode::RuntimeInconsistency
            },
        ]
    );
    assert!(p.forwarded.is_empty());
    let (h, _) = p.call(Side::Learner, 1, 3, create("/p", 0));
    assert_eq!(h.err, 0, "persistent creates still work");

    p.connect(Side::Leader, 1);
    let (h, _) = p.call(Side::Leader, 1, 1, create("/e", 1));
    assert_eq!(h.err, ErrorCode::EphemeralOnLocalSession.code());
    assert_eq!(local_count(&p.leader), 1, "not upgraded");
    assert!(p.learner.tree().node("/e").is_none());
}

/// The leader accepts a forwarded write of a session it does not track only when local sessions are
/// on and the id names another server; an unknown id of its own is expired, and an ephemeral needs a
/// session the leader knows as global.
#[test]
fn leader_accepts_other_servers_local_sessions() {
    let forward = |p: &mut Pair, session: i64, request: Request| -> Txn {
        p.auto_commit = false;
        p.handle(
            Side::Leader,
            Input::Forwarded {
                learner: LEARNER,
                request: ForwardedRequest {
                    session_id: session,
                    cxid: 3,
                    op_type: request.op_code().code(),
                    body: request.to_body_bytes(),
                },
                auth_ids: Vec::new(),
            },
        );
        let (_, entry) = p.uncommitted.pop_back().expect("a proposal");
        TxnEntry::decode(&entry).expect("entry").txn
    };
    let foreign = 0x0300_0000_0000_0042;
    let own = 0x0100_0000_0000_0042;
    let mut p = local_pair(true);
    assert!(matches!(
        forward(&mut p, foreign, create("/a", 0)),
        Txn::Create2(_)
    ));
    assert_eq!(
        forward(&mut p, own, create("/b", 0)),
        Txn::Error {
            err: ErrorCode::SessionExpired
        }
    );
    assert_eq!(
        forward(&mut p, foreign, create("/c", 1)),
        Txn::Error {
            err: ErrorCode::SessionExpired
        }
    );
    let mut without = Pair::with_settings(|_| {});
    assert_eq!(
        forward(&mut without, foreign, create("/a", 0)),
        Txn::Error {
            err: ErrorCode::SessionExpired
        }
    );
}

/// A standalone server ignores `localSessionsEnabled`, as ZooKeeper's does: a new session is
/// created by a logged createSession txn.
#[test]
fn standalone_ignores_local_sessions() {
    let mut s = Standalone::new(
        Settings {
            mode: Mode::Standalone,
            server_id: ServerId(0),
            session: SessionConfig::from_tick(100),
            prep: PrepConfig::default(),
            snap_count: 1_000_000,
            snapshot_seed: 1,
            snapshot_chunk_bytes: 512 << 10,
            container_check_interval_ms: 1000,
            emit_committed: false,
            local_sessions: LocalSessionSettings {
                enabled: true,
                upgrading: true,
            },
        },
        DataTree::new(true),
        &[],
        Zxid::ZERO,
        1_000,
    );
    assert!(s.local_sessions().is_none());
    s.handle(
        Input::Connect {
            conn: 1,
            remote_ip: "127.0.0.1".into(),
            request: ConnectRequest {
                timeout: 2000,
                passwd: vec![0; 16],
                ..ConnectRequest::default()
            },
        },
        1_000,
    );
    let logged = s
        .take_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Log { entry, .. } => Some(TxnEntry::decode(&entry).expect("entry").txn),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(
        matches!(&logged[..], [Txn::CreateSession { timeout: 2000 }]),
        "{logged:?}"
    );
}
