//! The standalone server driven by a real third-party client, the Rust `zookeeper-client` crate, as an
//! application would use it against Apache ZooKeeper 3.8: every opcode the crate speaks, every create
//! mode, watches of each kind, ACLs and auth, sessions (close, expiry, re-establishment) and the error
//! codes. Every wait is bounded.

mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use support::{four_letter, OutpostStandalone};
use zookeeper_client as zk;
use zookeeper_client::{
    Acl, Acls, AddWatchMode, AuthId, AuthUser, Client, CreateMode, EventType, MultiReadResult,
    MultiWriteError, MultiWriteResult, Permission,
};

const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `fut` for at most [`LIMIT`].
async fn t<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {LIMIT:?}"))
}

fn start(extra: &str) -> (tempfile::TempDir, OutpostStandalone) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = OutpostStandalone::start(dir.path(), extra);
    (dir, server)
}

async fn connect(server: &OutpostStandalone) -> Client {
    t(
        "connect",
        Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .connect(&server.addr.to_string()),
    )
    .await
    .expect("connect")
}

fn persistent() -> zk::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

/// Watches held on the server, both tables (`mntr`'s zk_watch_count; `wchs` counts data watches only).
fn total_watches(server: &OutpostStandalone) -> String {
    let mntr = four_letter(server.addr, "mntr").expect("mntr");
    let count = mntr
        .lines()
        .find_map(|l| l.strip_prefix("zk_watch_count\t"))
        .unwrap_or("?");
    format!("Total watches:{count}")
}

/// Waits until `cond` holds (polled every 50 ms), or panics with `what` after [`LIMIT`].
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < LIMIT, "{what}: not within {LIMIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates in every mode (persistent, ephemeral, both sequentials, container, TTL) and create2's
/// stat; reads with exists/getData/getChildren(2)/getAllChildrenNumber/getEphemerals/sync; versioned
/// setData and delete; the error codes NoNode, NodeExists, BadVersion, NotEmpty,
/// NoChildrenForEphemerals and BadArguments; and the reaper removing an emptied container and an
/// expired TTL node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_create_mode_read_and_error_code() {
    let (_dir, server) = start("extendedTypesEnabled=true\nznode.container.checkIntervalMs=100");
    let c = connect(&server).await;
    let sid = c.session_id().0;

    let (stat, seq) = t("create", c.create("/app", b"hello", &persistent()))
        .await
        .expect("create /app");
    assert_eq!(
        (stat.version, stat.ephemeral_owner, stat.data_length),
        (0, 0, 5)
    );
    assert_eq!(stat.czxid, stat.mzxid);
    assert_eq!(seq.to_string(), "-000000001");
    assert_eq!(
        t("dup", c.create("/app", b"", &persistent())).await,
        Err(zk::Error::NodeExists)
    );
    assert_eq!(
        t("orphan", c.create("/nope/x", b"", &persistent())).await,
        Err(zk::Error::NoNode)
    );

    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let (stat, _) = t("eph", c.create("/app/eph", b"", &eph))
        .await
        .expect("eph");
    assert_eq!(stat.ephemeral_owner, sid);
    assert_eq!(
        t("child of eph", c.create("/app/eph/x", b"", &persistent())).await,
        Err(zk::Error::NoChildrenForEphemerals)
    );
    let pseq = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
    let eseq = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    let (_, s1) = t("pseq", c.create("/app/q-", b"", &pseq))
        .await
        .expect("pseq");
    let (_, s2) = t("eseq", c.create("/app/q-", b"", &eseq))
        .await
        .expect("eseq");
    // The suffix is the parent's cversion: /app has had 1 (eph) then 2 children created before.
    assert_eq!(
        (s1.to_string(), s2.to_string()),
        ("0000000001".into(), "0000000002".into())
    );

    let container = CreateMode::Container.with_acls(Acls::anyone_all());
    let (stat, _) = t("container", c.create("/box", b"", &container))
        .await
        .expect("container");
    assert_eq!(stat.ephemeral_owner, 0, "containers report owner 0");
    t("box child", c.create("/box/item", b"", &persistent()))
        .await
        .expect("box child");
    let ttl = persistent().with_ttl(Duration::from_millis(300));
    let (stat, _) = t("ttl", c.create("/ttl", b"", &ttl)).await.expect("ttl");
    assert_eq!(stat.ephemeral_owner, 0, "TTL nodes report owner 0");
    let ttl_seq = pseq.clone().with_ttl(Duration::from_millis(300));
    t("ttl seq", c.create("/ttl-", b"", &ttl_seq))
        .await
        .expect("ttl seq");

    // Reads.
    let stat = t("exists", c.check_stat("/app"))
        .await
        .unwrap()
        .expect("exists");
    assert_eq!(stat.num_children, 3);
    assert_eq!(
        t("exists missing", c.check_stat("/missing")).await,
        Ok(None)
    );
    let (data, _) = t("get", c.get_data("/app")).await.expect("get");
    assert_eq!(data, b"hello");
    assert_eq!(
        t("get missing", c.get_data("/missing")).await,
        Err(zk::Error::NoNode)
    );
    let mut kids = t("ls", c.list_children("/app")).await.expect("ls");
    kids.sort();
    assert_eq!(kids, vec!["eph", "q-0000000001", "q-0000000002"]);
    let (kids2, stat2) = t("ls2", c.get_children("/app")).await.expect("ls2");
    assert_eq!((kids2.len(), stat2.num_children), (3, 3));
    // Every node but the root: /zookeeper, /zookeeper/quota, /zookeeper/config, and ours.
    let all = t("count", c.count_descendants_number("/"))
        .await
        .expect("count");
    assert_eq!(all, 3 + 4 + 2 + 2);
    assert_eq!(
        t("count app", c.count_descendants_number("/app")).await,
        Ok(3)
    );
    let mut ephs = t("ephemerals", c.list_ephemerals("/"))
        .await
        .expect("ephemerals");
    ephs.sort();
    assert_eq!(ephs, vec!["/app/eph", "/app/q-0000000002"]);
    assert_eq!(
        t("ephemerals /x", c.list_ephemerals("/x")).await,
        Ok(vec![])
    );
    t("sync", c.sync("/app")).await.expect("sync");

    // Versioned writes.
    assert_eq!(
        t("set bad version", c.set_data("/app", b"x", Some(7))).await,
        Err(zk::Error::BadVersion)
    );
    let stat = t("set", c.set_data("/app", b"v1", Some(0)))
        .await
        .expect("set");
    assert_eq!(stat.version, 1);
    assert_eq!(
        t("set missing", c.set_data("/missing", b"", None)).await,
        Err(zk::Error::NoNode)
    );
    assert_eq!(
        t("delete non-empty", c.delete("/app", None)).await,
        Err(zk::Error::NotEmpty)
    );
    assert_eq!(
        t("delete missing", c.delete("/missing", None)).await,
        Err(zk::Error::NoNode)
    );
    t("mk", c.create("/app/v", b"", &persistent()))
        .await
        .expect("mk");
    assert_eq!(
        t("delete bad version", c.delete("/app/v", Some(3))).await,
        Err(zk::Error::BadVersion)
    );
    t("delete v0", c.delete("/app/v", Some(0)))
        .await
        .expect("delete");
    // The crate checks paths itself, before the server sees them.
    assert!(matches!(
        t("bad path", c.create("relative", b"", &persistent())).await,
        Err(zk::Error::BadArguments(_))
    ));

    // The reaper: an emptied container and expired TTL nodes go; a used container with a child stays
    // until the child goes.
    t("empty box", c.delete("/box/item", None))
        .await
        .expect("delete item");
    eventually("container and TTL nodes reaped", || async {
        let kids = c.list_children("/").await.unwrap_or_default();
        !kids.iter().any(|k| k == "box" || k.starts_with("ttl"))
    })
    .await;
    assert!(t("app kept", c.check_stat("/app")).await.unwrap().is_some());
}

/// A one-shot watch of each kind (exists on a missing node, exists, getData, getChildren) fires once
/// with the right event, and is gone from the server afterwards (`wchs` drops to zero); a getData
/// watch reports deletion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shot_watches_fire_once_per_arming() {
    let (_dir, server) = start("");
    let c = connect(&server).await;
    let other = connect(&server).await;

    let (none, created) = t("exists watch", c.check_and_watch_stat("/w"))
        .await
        .expect("exists");
    assert!(none.is_none());
    assert!(total_watches(&server).ends_with("Total watches:1"));
    t("create", other.create("/w", b"", &persistent()))
        .await
        .unwrap();
    let ev = t("NodeCreated", created.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeCreated, "/w")
    );
    assert!(
        total_watches(&server).ends_with("Total watches:0"),
        "{}",
        total_watches(&server)
    );

    let (_, _, data) = t("get watch", c.get_and_watch_data("/w"))
        .await
        .expect("get");
    let (_, exists) = t("exists watch", c.check_and_watch_stat("/w"))
        .await
        .expect("exists");
    let (_, _, kids) = t("child watch", c.get_and_watch_children("/w"))
        .await
        .expect("kids");
    t("set", other.set_data("/w", b"1", None)).await.unwrap();
    let ev = t("NodeDataChanged", data.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDataChanged, "/w")
    );
    let ev = t("NodeDataChanged (exists)", exists.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDataChanged);
    // The child watch is still armed, alone.
    assert!(
        total_watches(&server).ends_with("Total watches:1"),
        "{}",
        total_watches(&server)
    );
    t("set again", other.set_data("/w", b"2", None))
        .await
        .unwrap();
    t("child", other.create("/w/c", b"", &persistent()))
        .await
        .unwrap();
    let ev = t("NodeChildrenChanged", kids.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeChildrenChanged, "/w")
    );
    assert!(total_watches(&server).ends_with("Total watches:0"));

    let (_, _, data) = t("get watch", c.get_and_watch_data("/w/c"))
        .await
        .expect("get");
    t("delete", other.delete("/w/c", None)).await.unwrap();
    let ev = t("NodeDeleted", data.changed()).await;
    assert_eq!(
        (ev.event_type, ev.path.as_str()),
        (EventType::NodeDeleted, "/w/c")
    );
    assert!(total_watches(&server).ends_with("Total watches:0"));
}

/// addWatch: a persistent watch sees every change of its node and stays armed; a recursive one sees
/// the whole subtree (no NodeChildrenChanged, as in ZooKeeper); dropping a watcher removes it on the
/// server (removeWatches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_and_recursive_watches() {
    let (_dir, server) = start("");
    let c = connect(&server).await;
    let other = connect(&server).await;
    let mut p = t("addWatch", c.watch("/p", AddWatchMode::Persistent))
        .await
        .expect("watch");
    let mut r = t(
        "addWatch rec",
        c.watch("/r", AddWatchMode::PersistentRecursive),
    )
    .await
    .expect("watch");

    t("c", other.create("/p", b"", &persistent()))
        .await
        .unwrap();
    t("s", other.set_data("/p", b"1", None)).await.unwrap();
    t("s", other.set_data("/p", b"2", None)).await.unwrap();
    t("k", other.create("/p/k", b"", &persistent()))
        .await
        .unwrap();
    t("dk", other.delete("/p/k", None)).await.unwrap();
    t("d", other.delete("/p", None)).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..6 {
        let ev = t("persistent event", p.changed()).await;
        seen.push((ev.event_type, ev.path));
    }
    assert_eq!(
        seen,
        vec![
            (EventType::NodeCreated, "/p".to_string()),
            (EventType::NodeDataChanged, "/p".into()),
            (EventType::NodeDataChanged, "/p".into()),
            (EventType::NodeChildrenChanged, "/p".into()),
            (EventType::NodeChildrenChanged, "/p".into()),
            (EventType::NodeDeleted, "/p".into()),
        ]
    );

    t("c", other.create("/r", b"", &persistent()))
        .await
        .unwrap();
    t("c", other.create("/r/a", b"", &persistent()))
        .await
        .unwrap();
    t("c", other.create("/r/a/b", b"", &persistent()))
        .await
        .unwrap();
    t("s", other.set_data("/r/a", b"x", None)).await.unwrap();
    t("d", other.delete("/r/a/b", None)).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let ev = t("recursive event", r.changed()).await;
        seen.push((ev.event_type, ev.path));
    }
    assert_eq!(
        seen,
        vec![
            (EventType::NodeCreated, "/r".to_string()),
            (EventType::NodeCreated, "/r/a".into()),
            (EventType::NodeCreated, "/r/a/b".into()),
            (EventType::NodeDataChanged, "/r/a".into()),
            (EventType::NodeDeleted, "/r/a/b".into()),
        ]
    );
    drop(p);
    drop(r);
    eventually("dropped watchers removed on the server", || async {
        total_watches(&server).ends_with("Total watches:0")
    })
    .await;
    // The session is fine after the removals.
    t("ping", c.sync("/")).await.expect("sync");
}

/// multi: a successful transaction returns one result per op; a failing one applies nothing and
/// names the failing op; multiRead returns per-op data, children or error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_and_multi_read() {
    let (_dir, server) = start("");
    let c = connect(&server).await;
    t("mk", c.create("/m", b"", &persistent())).await.unwrap();
    let mut w = c.new_multi_writer();
    w.add_create("/m/a", b"A", &persistent()).unwrap();
    w.add_set_data("/m", b"top", Some(0)).unwrap();
    w.add_check_version("/m", 1).unwrap();
    w.add_create("/m/b", b"", &persistent()).unwrap();
    w.add_delete("/m/b", Some(0)).unwrap();
    let results = t("multi", w.commit()).await.expect("multi");
    assert_eq!(results.len(), 5);
    assert!(matches!(&results[0], MultiWriteResult::Create { path, .. } if path == "/m/a"));
    assert!(matches!(&results[1], MultiWriteResult::SetData { stat } if stat.version == 1));
    assert_eq!(results[2], MultiWriteResult::Check);
    assert_eq!(results[4], MultiWriteResult::Delete);

    let mut w = c.new_multi_writer();
    w.add_create("/m/c", b"", &persistent()).unwrap();
    w.add_set_data("/m/a", b"", Some(9)).unwrap();
    w.add_delete("/m/a", None).unwrap();
    assert_eq!(
        t("failing multi", w.commit()).await,
        Err(MultiWriteError::OperationFailed {
            index: 1,
            source: zk::Error::BadVersion
        })
    );
    assert_eq!(t("rolled back", c.check_stat("/m/c")).await, Ok(None));
    let mut w = c.new_multi_writer();
    w.add_check_version("/missing", 0).unwrap();
    assert_eq!(
        t("check missing", w.commit()).await,
        Err(MultiWriteError::OperationFailed {
            index: 0,
            source: zk::Error::NoNode
        })
    );

    let mut r = c.new_multi_reader();
    r.add_get_data("/m/a").unwrap();
    r.add_get_children("/m").unwrap();
    r.add_get_data("/missing").unwrap();
    let results = t("multiRead", r.commit()).await.expect("multiRead");
    assert!(matches!(&results[0], MultiReadResult::Data { data, .. } if data == b"A"));
    assert!(
        matches!(&results[1], MultiReadResult::Children { children } if children == &vec!["a".to_string()])
    );
    assert!(matches!(
        &results[2],
        MultiReadResult::Error {
            err: zk::Error::NoNode
        }
    ));
}

/// Digest auth and ACLs: a creator-only node refuses others (NoAuth) and admits the creator; an
/// `auth` ACL without any authenticated id is InvalidACL; getACL/setACL with aversion checks; the
/// super digest from zoo.cfg overrides every ACL; whoAmI lists the connection's ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_acl_super_and_who_am_i() {
    // base64(sha1("super:test")), computed outside outpost.
    let (_dir, server) =
        start("DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    let alice = t(
        "alice",
        Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_auth("digest", b"alice:secret")
            .connect(&server.addr.to_string()),
    )
    .await
    .expect("alice");
    let anon = connect(&server).await;

    let creator = CreateMode::Persistent.with_acls(Acls::creator_all());
    assert_eq!(
        t("auth ACL without auth", anon.create("/s", b"", &creator)).await,
        Err(zk::Error::InvalidAcl)
    );
    t("alice creates", alice.create("/s", b"secret", &creator))
        .await
        .expect("create");
    let (acl, stat) = t("getACL", alice.get_acl("/s")).await.expect("getACL");
    // base64(sha1("alice:secret")), computed outside outpost.
    assert_eq!(
        acl,
        vec![Acl::new(
            Permission::ALL,
            AuthId::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=")
        )]
    );
    assert_eq!(stat.aversion, 0);
    assert_eq!(
        t("anon get", anon.get_data("/s")).await,
        Err(zk::Error::NoAuth)
    );
    assert_eq!(
        t("anon set", anon.set_data("/s", b"", None)).await,
        Err(zk::Error::NoAuth)
    );
    assert_eq!(
        t("anon getACL", anon.get_acl("/s")).await,
        Err(zk::Error::NoAuth)
    );
    assert_eq!(
        t("anon child", anon.create("/s/x", b"", &persistent())).await,
        Err(zk::Error::NoAuth)
    );
    assert_eq!(
        t("alice get", alice.get_data("/s")).await.unwrap().0,
        b"secret"
    );

    // setACL: aversion checked, then anyone may read.
    let read_all = [
        Acl::new(Permission::READ, AuthId::anyone()),
        Acl::new(
            Permission::ALL,
            AuthId::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
        ),
    ];
    assert_eq!(
        t(
            "setACL bad version",
            alice.set_acl("/s", &read_all, Some(5))
        )
        .await,
        Err(zk::Error::BadVersion)
    );
    let stat = t("setACL", alice.set_acl("/s", &read_all, Some(0)))
        .await
        .expect("setACL");
    assert_eq!(stat.aversion, 1);
    assert_eq!(
        t("anon get now", anon.get_data("/s")).await.unwrap().0,
        b"secret"
    );
    // READ without ADMIN: the digest is redacted.
    let (acl, _) = t("anon getACL", anon.get_acl("/s")).await.expect("getACL");
    assert_eq!(acl[1].id(), "alice:x");
    assert_eq!(
        t("anon set", anon.set_data("/s", b"", None)).await,
        Err(zk::Error::NoAuth)
    );

    // Super.
    let root = t(
        "super",
        Client::connector()
            .with_session_timeout(Duration::from_secs(10))
            .with_auth("digest", b"super:test")
            .connect(&server.addr.to_string()),
    )
    .await
    .expect("super");
    t("lock down", alice.set_acl("/s", &read_all[1..], None))
        .await
        .unwrap();
    assert_eq!(
        t("anon locked out", anon.get_data("/s")).await,
        Err(zk::Error::NoAuth)
    );
    t("super writes", root.set_data("/s", b"by super", None))
        .await
        .expect("super set");
    t("super deletes", root.delete("/s", None))
        .await
        .expect("super delete");

    // whoAmI (ip first, then digest).
    let who = t("whoAmI", alice.list_auth_users()).await.expect("whoAmI");
    assert_eq!(
        who,
        vec![
            AuthUser::new("ip", "127.0.0.1"),
            AuthUser::new("digest", "alice")
        ]
    );
    let who = t("whoAmI anon", anon.list_auth_users())
        .await
        .expect("whoAmI");
    assert_eq!(who, vec![AuthUser::new("ip", "127.0.0.1")]);
    // Adding auth later on a live connection works too.
    t("addauth", anon.auth("digest", b"bob:pw"))
        .await
        .expect("addauth");
    let who = t("whoAmI bob", anon.list_auth_users())
        .await
        .expect("whoAmI");
    assert_eq!(who.len(), 2);
    assert_eq!(who[1], AuthUser::new("digest", "bob"));
}

/// Sessions: closing a client removes its ephemerals (and fires the watch on them); a detached session
/// can be re-established with its id and password and keeps its ephemerals; left alone past its
/// timeout (tickTime=200, so 400 ms minimum) it expires, its ephemerals go, and re-establishing it
/// fails with SessionExpired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_close_reestablish_and_expiry() {
    let (_dir, server) = start("tickTime=200");
    let addr = server.addr.to_string();
    let watcher = connect(&server).await;

    let c = connect(&server).await;
    let eph = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    t("eph", c.create("/closing", b"", &eph)).await.unwrap();
    let (_, w) = t("watch", watcher.check_and_watch_stat("/closing"))
        .await
        .unwrap();
    drop(c);
    let ev = t("ephemeral removed on close", w.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDeleted);

    let detached = t(
        "detached",
        Client::connector()
            .with_session_timeout(Duration::from_millis(1000))
            .with_detached()
            .connect(&addr),
    )
    .await
    .expect("connect");
    let timeout = detached.session_timeout();
    assert_eq!(
        timeout,
        Duration::from_millis(1000),
        "1000 ms is within [400, 4000]"
    );
    t("eph", detached.create("/mine", b"", &eph)).await.unwrap();
    let session = detached.session().clone();
    let id = detached.session_id();
    drop(detached);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let back = t(
        "re-establish",
        Client::connector()
            .with_session(session.clone())
            .with_session_timeout(Duration::from_millis(1000))
            .with_detached()
            .connect(&addr),
    )
    .await
    .expect("re-establish the session");
    assert_eq!(back.session_id(), id);
    let stat = t("still mine", back.check_stat("/mine"))
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(stat.ephemeral_owner, id.0);

    // Now let it expire.
    let (_, w) = t("watch", watcher.check_and_watch_stat("/mine"))
        .await
        .unwrap();
    let gone_at = Instant::now();
    drop(back);
    let ev = t("ephemeral removed on expiry", w.changed()).await;
    assert_eq!(ev.event_type, EventType::NodeDeleted);
    let took = gone_at.elapsed();
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(3000),
        "expired after {took:?} (timeout 1000 ms)"
    );
    let again = t(
        "re-establish expired",
        Client::connector()
            .with_session(session)
            .with_session_timeout(Duration::from_millis(1000))
            .connect(&addr),
    )
    .await;
    assert!(
        matches!(again, Err(zk::Error::SessionExpired)),
        "an expired session cannot come back: {again:?}"
    );
}
