//! Table tests of request preparation: every error case of `PrepRequestProcessor` with its precedence,
//! sequential naming, the outstanding-changes overlay (pipelined requests), multi rollback, and
//! closeSession's ephemeral list.

use super::*;
use crate::proto::Id;
use crate::tree::TTL_MAX_MS;

const S1: SessionId = SessionId(0x0100_0000_0000_0001);
const S2: SessionId = SessionId(0x0100_0000_0000_0002);

struct Env {
    tree: DataTree,
    pending: PendingChanges,
    config: PrepConfig,
    zxid: i64,
}

/// A session checker with a fixed verdict, to test where session checks sit in the order.
struct Verdict(Result<(), ErrorCode>, Result<(), ErrorCode>);

impl SessionCheck for Verdict {
    fn check_session(&mut self, _: SessionId) -> Result<(), ErrorCode> {
        self.0
    }
    fn check_global_session(&mut self, _: SessionId) -> Result<(), ErrorCode> {
        self.1
    }
    fn set_closing(&mut self, _: SessionId) {}
}

impl Env {
    fn new() -> Env {
        Env {
            tree: DataTree::new(true),
            pending: PendingChanges::new(),
            config: PrepConfig {
                extended_types: true,
                ..PrepConfig::default()
            },
            zxid: 100,
        }
    }

    fn prep_as(&mut self, session: SessionId, ids: &[Id], req: &WriteRequest) -> Prepared {
        self.prep_with(session, ids, req, &mut AnySession)
    }

    fn prep_with(
        &mut self,
        session: SessionId,
        ids: &[Id],
        req: &WriteRequest,
        check: &mut dyn SessionCheck,
    ) -> Prepared {
        self.zxid += 1;
        let meta = RequestMeta {
            session,
            cxid: 7,
            zxid: self.zxid,
            time_ms: 5_000,
            auth_ids: ids,
        };
        prepare(
            &self.tree,
            &mut self.pending,
            check,
            &self.config,
            &meta,
            req,
        )
    }

    fn prep(&mut self, req: &WriteRequest) -> Prepared {
        self.prep_as(S1, &[], req)
    }

    /// Prepares and applies at once (no pipelining).
    fn run(&mut self, req: &WriteRequest) -> Prepared {
        let p = self.prep(req);
        let _ = self.tree.apply_txn(&p.header, &p.txn);
        self.pending.release_through(p.header.zxid);
        p
    }
}

fn create(path: &str, flags: i32) -> WriteRequest {
    WriteRequest::Create {
        op: OpCode::Create,
        path: path.into(),
        data: Some(b"d".to_vec()),
        acl: Acl::open_unsafe(),
        flags,
        ttl: -1,
    }
}

fn create_acl(path: &str, acl: Vec<Acl>) -> WriteRequest {
    WriteRequest::Create {
        op: OpCode::Create,
        path: path.into(),
        data: Some(vec![]),
        acl,
        flags: 0,
        ttl: -1,
    }
}

fn ttl_create(path: &str, flags: i32, ttl: i64) -> WriteRequest {
    WriteRequest::Create {
        op: OpCode::CreateTtl,
        path: path.into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        flags,
        ttl,
    }
}

fn delete(path: &str, version: i32) -> WriteRequest {
    WriteRequest::Delete {
        path: path.into(),
        version,
    }
}

fn set_data(path: &str, version: i32) -> WriteRequest {
    WriteRequest::SetData {
        path: path.into(),
        data: Some(b"new".to_vec()),
        version,
    }
}

fn err_of(p: &Prepared) -> Option<ErrorCode> {
    match &p.txn {
        Txn::Error { err } => Some(*err),
        _ => None,
    }
}

fn acl(perms: i32, scheme: &str, id: &str) -> Acl {
    Acl {
        perms,
        id: Id::new(scheme, id),
    }
}

/// Create error cases, one per row, in ZooKeeper's precedence (the first failing step wins).
#[test]
fn create_error_table() {
    let mut env = Env::new();
    let _ = env.run(&create("/p", 0));
    let _ = env.run(&create("/eph", 1));
    let _ = env.run(&create_acl(
        "/locked",
        vec![acl(perms::READ, "world", "anyone")],
    ));
    env.config.extended_types = false;
    let no_ext = env.prep(&ttl_create("/t", 5, 100));
    assert_eq!(err_of(&no_ext), Some(ErrorCode::Unimplemented));
    env.config.extended_types = true;
    let cases: Vec<(WriteRequest, Option<ErrorCode>)> = vec![
        (create("/x", 7), Some(ErrorCode::BadArguments)),
        (ttl_create("/t", 5, 0), Some(ErrorCode::BadArguments)),
        (
            ttl_create("/t", 5, TTL_MAX_MS + 1),
            Some(ErrorCode::BadArguments),
        ),
        (ttl_create("/t", 0, 100), Some(ErrorCode::BadArguments)),
        (ttl_create("/t", 5, TTL_MAX_MS), None),
        (create("x", 0), Some(ErrorCode::BadArguments)),
        (create("/a\0b", 0), Some(ErrorCode::BadArguments)),
        (create_acl("/x", vec![]), Some(ErrorCode::InvalidAcl)),
        (
            create_acl("/x", vec![acl(31, "auth", "")]),
            Some(ErrorCode::InvalidAcl),
        ),
        // INVALIDACL comes before NONODE (fixupACL precedes the parent lookup).
        (
            create_acl("/missing/x", vec![]),
            Some(ErrorCode::InvalidAcl),
        ),
        (create("/missing/x", 0), Some(ErrorCode::NoNode)),
        // NOAUTH (parent lacks CREATE) comes before NODEEXISTS and path validation.
        (create("/locked/x", 0), Some(ErrorCode::NoAuth)),
        (create("/p/", 0), Some(ErrorCode::BadArguments)),
        (create("/p/./x", 0), Some(ErrorCode::NoNode)),
        (create("/p", 0), Some(ErrorCode::NodeExists)),
        (
            create("/eph/c", 0),
            Some(ErrorCode::NoChildrenForEphemerals),
        ),
        (create("/zookeeper/x", 0), None),
    ];
    for (req, want) in cases {
        let p = env.prep(&req);
        assert_eq!(err_of(&p), want, "{req:?}");
        assert_eq!(p.error, want, "{req:?}");
        if want.is_some() {
            assert_eq!(p.header.ty, OpCode::Error.code());
        }
        env.pending.clear();
    }
}

/// Session checks sit after the TTL checks and before path checks; ephemeral creates use the global check.
#[test]
fn create_session_check_order() {
    let mut env = Env::new();
    let mut expired = Verdict(
        Err(ErrorCode::SessionExpired),
        Err(ErrorCode::EphemeralOnLocalSession),
    );
    let p = env.prep_with(S1, &[], &create("bad", 0), &mut expired);
    assert_eq!(err_of(&p), Some(ErrorCode::SessionExpired));
    let p = env.prep_with(S1, &[], &create("/e", 1), &mut expired);
    assert_eq!(err_of(&p), Some(ErrorCode::EphemeralOnLocalSession));
    let p = env.prep_with(S1, &[], &create("/e", 9), &mut expired);
    assert_eq!(err_of(&p), Some(ErrorCode::BadArguments));
}

/// Sequential names use the parent's persisted cversion formatted %010d; the suffixed path is validated
/// (so a "/q/" prefix works) and deletes do not reuse numbers.
#[test]
fn sequential_names() {
    let mut env = Env::new();
    let _ = env.run(&create("/q", 0));
    let p = env.run(&create("/q/item-", 2));
    assert!(
        matches!(&p.txn, Txn::Create(t) if t.path == "/q/item-0000000000" && t.parent_cversion == 1)
    );
    let _ = env.run(&delete("/q/item-0000000000", -1));
    let p = env.run(&create("/q/", 2));
    assert!(matches!(&p.txn, Txn::Create(t) if t.path == "/q/0000000001"));
    let p = env.run(&create("/q/e-", 3));
    assert!(matches!(&p.txn, Txn::Create(t) if t.path == "/q/e-0000000002" && t.ephemeral));
    assert_eq!(env.tree.ephemerals(S1), vec!["/q/e-0000000002".to_string()]);
}

/// Delete: special paths, NONODE for parent then node, NOAUTH on the parent, BADVERSION, NOTEMPTY.
#[test]
fn delete_error_table() {
    let mut env = Env::new();
    let _ = env.run(&create("/p", 0));
    let _ = env.run(&create("/p/c", 0));
    let _ = env.run(&create_acl(
        "/nodel",
        vec![acl(perms::ALL & !perms::DELETE, "world", "anyone")],
    ));
    let _ = env.run(&create("/nodel/c", 0));
    let cases = vec![
        (delete("/", -1), Some(ErrorCode::BadArguments)),
        (delete("/zookeeper", -1), Some(ErrorCode::BadArguments)),
        (
            delete("/zookeeper/config", -1),
            Some(ErrorCode::BadArguments),
        ),
        (
            delete("/zookeeper/quota", -1),
            Some(ErrorCode::BadArguments),
        ),
        (delete("noslash", -1), Some(ErrorCode::BadArguments)),
        (delete("/x/y", -1), Some(ErrorCode::NoNode)),
        (delete("/p/zz", -1), Some(ErrorCode::NoNode)),
        (delete("/nodel/c", -1), Some(ErrorCode::NoAuth)),
        (delete("/p/c", 3), Some(ErrorCode::BadVersion)),
        (delete("/p", -1), Some(ErrorCode::NotEmpty)),
        (delete("/p/c", 0), None),
    ];
    for (req, want) in cases {
        let p = env.prep(&req);
        assert_eq!(err_of(&p), want, "{req:?}");
        env.pending.clear();
    }
}

/// setData / setACL / check: NONODE, NOAUTH (WRITE / ADMIN / READ), BADVERSION against version or
/// aversion, INVALIDACL before NONODE for setACL, and the new versions in the txns.
#[test]
fn set_data_acl_check_table() {
    let mut env = Env::new();
    let _ = env.run(&create("/a", 0));
    let _ = env.run(&create_acl(
        "/ro",
        vec![acl(perms::READ, "world", "anyone")],
    ));
    let bob = vec![Id::new("digest", "bob:h")];
    let _ = env.run(&create_acl(
        "/bob",
        vec![acl(perms::ALL, "digest", "bob:h")],
    ));
    let cases = vec![
        (set_data("/zz", -1), Some(ErrorCode::NoNode)),
        (set_data("/a/", -1), Some(ErrorCode::BadArguments)),
        (set_data("/ro", -1), Some(ErrorCode::NoAuth)),
        (set_data("/a", 1), Some(ErrorCode::BadVersion)),
        (
            WriteRequest::SetAcl {
                path: "/zz".into(),
                acl: vec![],
                version: -1,
            },
            Some(ErrorCode::InvalidAcl),
        ),
        (
            WriteRequest::SetAcl {
                path: "/zz".into(),
                acl: Acl::open_unsafe(),
                version: -1,
            },
            Some(ErrorCode::NoNode),
        ),
        (
            WriteRequest::SetAcl {
                path: "/ro".into(),
                acl: Acl::open_unsafe(),
                version: -1,
            },
            Some(ErrorCode::NoAuth),
        ),
        (
            WriteRequest::SetAcl {
                path: "/zookeeper/config".into(),
                acl: Acl::open_unsafe(),
                version: -1,
            },
            Some(ErrorCode::NoAuth),
        ),
        (
            WriteRequest::Check {
                path: "/bob".into(),
                version: -1,
            },
            Some(ErrorCode::NoAuth),
        ),
        (
            WriteRequest::Check {
                path: "/a".into(),
                version: 2,
            },
            Some(ErrorCode::BadVersion),
        ),
    ];
    for (req, want) in cases {
        let p = env.prep(&req);
        assert_eq!(err_of(&p), want, "{req:?}");
        env.pending.clear();
    }
    let p = env.prep_as(S1, &bob, &set_data("/bob", 0));
    assert!(matches!(&p.txn, Txn::SetData(t) if t.version == 1));
    env.pending.clear();
    let p = env.prep(&WriteRequest::SetAcl {
        path: "/a".into(),
        acl: Acl::read_unsafe(),
        version: 0,
    });
    assert!(matches!(&p.txn, Txn::SetAcl(t) if t.version == 1));
    env.pending.clear();
    // The super id passes every check.
    let sup = vec![Id::new("super", "")];
    let p = env.prep_as(S1, &sup, &set_data("/ro", -1));
    assert_eq!(err_of(&p), None);
}

/// Pipelining: create /a then create /a/b before /a is applied; a pipelined delete hides a node; records
/// are released once the txns apply.
#[test]
fn outstanding_changes_overlay() {
    let mut env = Env::new();
    let p1 = env.prep(&create("/a", 0));
    let p2 = env.prep(&create("/a/b", 2));
    assert!(matches!(&p2.txn, Txn::Create(t) if t.path == "/a/b0000000000"));
    let p3 = env.prep(&create("/a/c", 2));
    assert!(
        matches!(&p3.txn, Txn::Create(t) if t.path == "/a/c0000000001" && t.parent_cversion == 2)
    );
    // NOTEMPTY sees the two pending children.
    let p4 = env.prep(&delete("/a", -1));
    assert_eq!(err_of(&p4), Some(ErrorCode::NotEmpty));
    for p in [&p1, &p2, &p3, &p4] {
        let _ = env.tree.apply_txn(&p.header, &p.txn);
        env.pending.release_through(p.header.zxid);
    }
    assert!(env.pending.is_empty());
    assert_eq!(env.tree.get_children("/a").map(|c| c.len()), Some(2));
    let d = env.prep(&delete("/a/b0000000000", -1));
    assert_eq!(err_of(&d), None);
    let again = env.prep(&set_data("/a/b0000000000", -1));
    assert_eq!(err_of(&again), Some(ErrorCode::NoNode));
    let v = env.prep(&set_data("/a/c0000000001", 0));
    let v2 = env.prep(&set_data("/a/c0000000001", 1));
    assert!(matches!(&v2.txn, Txn::SetData(t) if t.version == 2));
    let _ = (v, d);
}

/// A failed multi: earlier ops keep their txns, the failing op is its error, later ops -2; its records
/// are rolled back so the next request sees the old state (including the sequence counter).
#[test]
fn multi_failure_and_rollback() {
    let mut env = Env::new();
    let _ = env.run(&create("/q", 0));
    let before = env.prep(&create("/q/pre", 0));
    let m = env.prep(&WriteRequest::Multi(vec![
        create("/q/s-", 2),
        create("/q/x", 0),
        delete("/nope", -1),
        set_data("/q", -1),
    ]));
    assert_eq!(m.error, Some(ErrorCode::NoNode));
    assert_eq!(m.header.ty, OpCode::Multi.code());
    let Txn::Multi(subs) = &m.txn else {
        panic!("multi expected")
    };
    assert!(matches!(&subs[0], Txn::Create(t) if t.path == "/q/s-0000000001"));
    assert!(matches!(&subs[1], Txn::Create(_)));
    assert_eq!(
        subs[2],
        Txn::Error {
            err: ErrorCode::NoNode
        }
    );
    assert_eq!(
        subs[3],
        Txn::Error {
            err: ErrorCode::RuntimeInconsistency
        }
    );
    // Rolled back: /q/x does not exist for the next request; /q's record is the earlier create's.
    let next = env.prep(&create("/q/s-", 2));
    assert!(
        matches!(&next.txn, Txn::Create(t) if t.path == "/q/s-0000000001"),
        "{next:?}"
    );
    let x = env.prep(&set_data("/q/x", -1));
    assert_eq!(err_of(&x), Some(ErrorCode::NoNode));
    // Applying the failed multi changes nothing and reports 0 / -101 / -2.
    for p in [&before, &m] {
        let o = env.tree.apply_txn(&p.header, &p.txn);
        env.pending.release_through(p.header.zxid);
        if p.header.ty == OpCode::Multi.code() {
            let codes: Vec<_> = o.result.multi.iter().map(|r| r.err).collect();
            assert_eq!(
                codes,
                vec![
                    ErrorCode::Ok,
                    ErrorCode::Ok,
                    ErrorCode::NoNode,
                    ErrorCode::RuntimeInconsistency
                ]
            );
        }
    }
    assert!(env.tree.stat("/q/x").is_none());
    // A good multi validates each op against the earlier ops' changes.
    let good = env.prep(&WriteRequest::Multi(vec![
        create("/m", 0),
        create("/m/c", 0),
        WriteRequest::Check {
            path: "/m/c".into(),
            version: 0,
        },
        delete("/m/c", 0),
    ]));
    assert_eq!(good.error, None);
    assert!(
        matches!(&good.txn, Txn::Multi(s) if s.iter().all(|t| !matches!(t, Txn::Error { .. })))
    );
}

/// closeSession lists the session's ephemerals, including pending creates and excluding pending deletes,
/// and marks the session closing; deleteContainer refuses non-empty nodes and normal ephemerals.
#[test]
fn close_session_and_delete_container() {
    let mut env = Env::new();
    let _ = env.run(&create("/e1", 1));
    let _ = env.run(&create("/e2", 1));
    let _pending_create = env.prep(&create("/e3", 1));
    let _pending_delete = env.prep(&delete("/e1", -1));
    let _other = env.prep_as(S2, &[], &create("/other", 1));
    let p = env.prep(&WriteRequest::CloseSession);
    assert_eq!(
        p.txn,
        Txn::CloseSession {
            paths2delete: Some(vec!["/e2".into(), "/e3".into()])
        }
    );
    env.config.close_session_txn = false;
    let p = env.prep(&WriteRequest::CloseSession);
    assert_eq!(p.txn, Txn::CloseSession { paths2delete: None });
    env.pending.clear();

    let _ = env.run(&WriteRequest::Create {
        op: OpCode::CreateContainer,
        path: "/c".into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        flags: 4,
        ttl: -1,
    });
    let _ = env.run(&create("/c/kid", 0));
    let dc = |p: &str| WriteRequest::DeleteContainer { path: p.into() };
    assert_eq!(err_of(&env.prep(&dc("/c"))), Some(ErrorCode::NotEmpty));
    assert_eq!(err_of(&env.prep(&dc("/e2"))), Some(ErrorCode::BadVersion));
    assert_eq!(
        err_of(&env.prep(&dc("/zookeeper"))),
        Some(ErrorCode::BadArguments)
    );
    assert_eq!(err_of(&env.prep(&dc("/nope"))), Some(ErrorCode::NoNode));
    env.pending.clear();
    let _ = env.run(&delete("/c/kid", -1));
    let p = env.prep(&dc("/c"));
    assert!(matches!(&p.txn, Txn::DeleteContainer(t) if t.path == "/c"));
    assert_eq!(p.header.ty, OpCode::DeleteContainer.code());
}

/// ACL fix-up on create expands `auth` to the digest ids and keeps the rest; the txn carries the result.
#[test]
fn create_acl_fixup_in_txn() {
    let mut env = Env::new();
    let ids = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "bob:h")];
    let p = env.prep_as(
        S1,
        &ids,
        &create_acl(
            "/x",
            vec![
                acl(31, "auth", ""),
                acl(1, "world", "anyone"),
                acl(1, "world", "anyone"),
            ],
        ),
    );
    assert!(
        matches!(&p.txn, Txn::Create(t) if t.acl == vec![acl(31, "digest", "bob:h"), acl(1, "world", "anyone")])
    );
    let r = env.prep(&WriteRequest::Reconfig {
        joining: None,
        leaving: Some("3".into()),
        new_members: None,
        from_version: -1,
    });
    assert_eq!(err_of(&r), Some(ErrorCode::ReconfigDisabled));
}

const THREE: &str = "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\nversion=100000000";

fn reconfig_env(synced: &[u64]) -> Env {
    let mut env = Env::new();
    let last_seen = outpost_conf::reconfig::parse_config_text(THREE).expect("parses");
    env.tree.set_config(THREE.as_bytes(), 0x1_0000_0000, 0);
    env.config.reconfig_enabled = true;
    env.config.auth.super_digest = Some("super:D/InIHSb7yEEbrWz8b9l71RjZJU=".into());
    env.config.reconfig = Some(Arc::new(ReconfigContext {
        committed_version: 0x1_0000_0000,
        last_seen,
        synced: synced.iter().copied().collect(),
        standalone_enabled: true,
    }));
    env
}

fn reconfig_req(joining: Option<&str>, leaving: Option<&str>, from_version: i64) -> WriteRequest {
    WriteRequest::Reconfig {
        joining: joining.map(str::to_string),
        leaving: leaving.map(str::to_string),
        new_members: None,
        from_version,
    }
}

/// The super user (`superDigest`) may reconfigure: the txn is a reconfig setData of
/// /zookeeper/config with the new configuration, versioned by the txn's zxid; the pending record has
/// Java's version -1.
#[test]
fn reconfig_by_super_user() {
    let mut env = reconfig_env(&[1, 2, 3]);
    // What `addauth digest super:test` gives a connection.
    let sup = crate::acl::digest_auth(b"super:test", &env.config.auth);
    let p = env.prep_as(
        S1,
        &sup,
        &reconfig_req(Some("server.4=127.0.0.1:2891:3891:observer;2184"), None, -1),
    );
    let Txn::Reconfig(t) = &p.txn else {
        panic!("expected a reconfig txn, got {:?}", p.txn);
    };
    assert_eq!(t.path, CONFIG_NODE);
    assert_eq!(t.version, -1);
    let text = String::from_utf8(t.data.clone().unwrap_or_default()).expect("utf8");
    assert!(text.ends_with(&format!(
        "server.4=127.0.0.1:2891:3891:observer;0.0.0.0:2184\nversion={:x}",
        p.header.zxid
    )));
    let rec = env.pending.get(CONFIG_NODE).expect("pending record");
    assert_eq!(rec.stat.map(|s| s.version), Some(-1));
}

/// The refusals in `PrepRequestProcessor`'s order, each with ZooKeeper's code: disabled
/// (RECONFIGDISABLED), standalone (UNIMPLEMENTED), in progress (RECONFIGINPROGRESS), `-v` mismatch
/// (BADVERSION), bad arguments, no synced quorum of the new voters (NEWCONFIGNOQUORUM), and a client
/// that is not the super user (NOAUTH: /zookeeper/config is world-readable only).
#[test]
fn reconfig_refusals_in_order() {
    let sup = crate::acl::digest_auth(b"super:test", &reconfig_env(&[]).config.auth);
    let add5 = reconfig_req(Some("server.5=127.0.0.1:2895:3895;2185"), None, -1);
    let mut env = reconfig_env(&[1, 2, 3]);
    env.config.reconfig_enabled = false;
    assert_eq!(
        err_of(&env.prep_as(S1, &sup, &add5)),
        Some(ErrorCode::ReconfigDisabled)
    );
    let mut env = reconfig_env(&[1, 2, 3]);
    env.config.reconfig = None;
    assert_eq!(
        err_of(&env.prep_as(S1, &sup, &add5)),
        Some(ErrorCode::Unimplemented)
    );
    let mut env = reconfig_env(&[1, 2, 3]);
    if let Some(ctx) = env.config.reconfig.as_mut() {
        Arc::make_mut(ctx).committed_version = 0;
    }
    assert_eq!(
        err_of(&env.prep_as(S1, &sup, &add5)),
        Some(ErrorCode::ReconfigInProgress)
    );
    let mut env = reconfig_env(&[1, 2, 3]);
    let stale = reconfig_req(None, Some("3"), 0x42);
    assert_eq!(
        err_of(&env.prep_as(S1, &sup, &stale)),
        Some(ErrorCode::BadVersion)
    );
    let right = reconfig_req(None, Some("3"), 0x1_0000_0000);
    assert_eq!(err_of(&env.prep_as(S1, &sup, &right)), None);
    let mut env = reconfig_env(&[1, 2, 3]);
    let bad = reconfig_req(Some("server.5=127.0.0.1:2895"), None, -1);
    assert_eq!(
        err_of(&env.prep_as(S1, &sup, &bad)),
        Some(ErrorCode::BadArguments)
    );
    let nan = reconfig_req(None, Some("x"), -1);
    assert_eq!(
        err_of(&env.prep_as(S1, &sup, &nan)),
        Some(ErrorCode::MarshallingError)
    );
    // Only 1 is synced: {1, 2, 3, 5} has no synced quorum.
    let mut env = reconfig_env(&[1]);
    assert_eq!(
        err_of(&env.prep_as(S1, &sup, &add5)),
        Some(ErrorCode::NewConfigNoQuorum)
    );
    let mut env = reconfig_env(&[1, 2, 3]);
    assert_eq!(err_of(&env.prep(&add5)), Some(ErrorCode::NoAuth));
    env.config.auth.skip_acl = true;
    assert_eq!(err_of(&env.prep(&add5)), None);
}
