//! Ensemble scenarios shared by the Java-only harness test and the outpost and mixed ensemble tests:
//! the same steps run whichever implementation each member of the plan uses, so a mixed ensemble is
//! held to exactly what Apache ZooKeeper's own ensemble does.

use std::path::Path;
use std::time::Duration;

use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::Acl;

use super::{
    find_leader, find_leader_all_serving, start_member, wait_mode, EnsemblePlan, JavaServer,
};

/// Bound for JVM start-up plus the first election on a loaded two-core machine.
pub const START: Duration = Duration::from_secs(40);
/// Bound for a re-election after the leader dies (syncLimit 3 s to notice, then an election).
pub const ELECT: Duration = Duration::from_secs(30);
pub const OP: Duration = Duration::from_secs(10);

/// The scenario's directory: removed afterwards, unless `OUTPOST_KEEP_TEST_DIRS` is set (then its path
/// is printed and it stays, with every member's log, for a post-mortem).
pub fn test_root() -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix("outpost-ensemble-")
        .tempdir()
        .expect("tempdir");
    if std::env::var_os("OUTPOST_KEEP_TEST_DIRS").is_some() {
        eprintln!("keeping {}", dir.path().display());
        dir.disable_cleanup(true);
    }
    dir
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Writes every member's directory under `root` and starts them all before waiting on any.
pub fn start_all(plan: &EnsemblePlan, root: &Path) -> Vec<JavaServer> {
    start_all_with(plan, root, &[])
}

/// [`start_all`] with `extra` keys in every member's zoo.cfg.
pub fn start_all_with(plan: &EnsemblePlan, root: &Path, extra: &[(&str, &str)]) -> Vec<JavaServer> {
    let configs = plan.write_all(root, extra);
    plan.members
        .iter()
        .zip(&configs)
        .map(|(m, cfg)| start_member(cfg, m))
        .collect()
}

/// Every server's log tail, for assertion messages.
pub fn logs(servers: &[JavaServer]) -> String {
    servers
        .iter()
        .map(|s| format!("--- server {} ---\n{}", s.member.id, s.log_tail()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A session on the one server `port`.
pub async fn connect(port: u16) -> Client {
    let (c, _events) = tokio::time::timeout(
        OP,
        Client::connect(&format!("127.0.0.1:{port}"), Duration::from_secs(4)),
    )
    .await
    .unwrap_or_else(|_| panic!("connect to {port}: timed out"))
    .unwrap_or_else(|e| panic!("connect to {port}: {e}"));
    c
}

/// Creates the persistent znode `path` through a session on server `port`.
pub fn create(rt: &tokio::runtime::Runtime, port: u16, path: &str, data: &[u8]) {
    rt.block_on(async {
        let c = connect(port).await;
        create_on(&c, path, data, CreateMode::Persistent).await;
        let _ = c.close().await;
    });
}

/// Creates `path` (open ACL, `mode`) through session `c`; panics on any failure, within [`OP`].
pub async fn create_on(c: &Client, path: &str, data: &[u8], mode: CreateMode) {
    tokio::time::timeout(OP, c.create(path, data, &Acl::open_unsafe(), mode))
        .await
        .unwrap_or_else(|_| panic!("create {path}: timed out"))
        .unwrap_or_else(|e| panic!("create {path}: {e}"))
        .unwrap_or_else(|e| panic!("create {path}: {e:?}"));
}

/// Sets `path` to `data` (any version) through session `c`; panics on any failure, within [`OP`].
pub async fn set_on(c: &Client, path: &str, data: &[u8]) {
    tokio::time::timeout(OP, c.set_data(path, data, -1))
        .await
        .unwrap_or_else(|_| panic!("set {path}: timed out"))
        .unwrap_or_else(|e| panic!("set {path}: {e}"))
        .unwrap_or_else(|e| panic!("set {path}: {e:?}"));
}

/// A plain read of `path` (no sync: the server answers from its own tree) through session `c`.
pub async fn get_on(c: &Client, path: &str) -> Vec<u8> {
    tokio::time::timeout(OP, c.get_data(path, false))
        .await
        .unwrap_or_else(|_| panic!("get {path}: timed out"))
        .unwrap_or_else(|e| panic!("get {path}: {e}"))
        .unwrap_or_else(|e| panic!("get {path}: {e:?}"))
        .0
}

/// Reads `path` at `port` after a `sync`, so a learner answers with everything the leader committed.
pub fn read(rt: &tokio::runtime::Runtime, port: u16, path: &str) -> Vec<u8> {
    rt.block_on(async {
        let c = connect(port).await;
        let data = tokio::time::timeout(OP, async {
            c.sync(path)
                .await
                .unwrap_or_else(|e| panic!("sync at {port}: {e}"))
                .unwrap_or_else(|e| panic!("sync at {port}: {e:?}"));
            c.get_data(path, false)
                .await
                .unwrap_or_else(|e| panic!("get {path} at {port}: {e}"))
                .unwrap_or_else(|e| panic!("get {path} at {port}: {e:?}"))
                .0
        })
        .await
        .unwrap_or_else(|_| panic!("read {path} at {port}: timed out"));
        let _ = c.close().await;
        data
    })
}

/// Every member started together: exactly one reports `leader`, every other voter `follower`.
pub fn elect_exactly_one_leader(plan: &EnsemblePlan) {
    let root = test_root();
    let servers = start_all(plan, root.path());
    let leader = find_leader_all_serving(&plan.members, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    let mut modes = Vec::new();
    for m in &plan.members {
        let mode = wait_mode(m.client, OP)
            .unwrap_or_else(|| panic!("server {} has no mode\n{}", m.id, logs(&servers)));
        modes.push((m.id, mode));
    }
    let leaders: Vec<u64> = modes
        .iter()
        .filter(|(_, mode)| mode == "leader")
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(leaders, vec![leader], "modes: {modes:?}");
    assert_eq!(
        modes.iter().filter(|(_, mode)| mode == "follower").count(),
        plan.members.iter().filter(|m| !m.observer).count() - 1,
        "modes: {modes:?}"
    );
}

/// With 3 voters and 1 observer: the observer reports `observer`; a znode written at a follower is read
/// at every server; after kill -9 of the leader the two surviving voters elect a new leader, which
/// serves a write that the observer and the other voter then read; the old leader, restarted, rejoins
/// as a follower and has that write.
pub fn observer_reads_writes_and_leader_failover(plan: &EnsemblePlan) {
    let root = test_root();
    let mut servers = start_all(plan, root.path());
    let observer = plan.member(4).clone();
    let voters: Vec<_> = plan.members[..3].to_vec();

    let leader = find_leader_all_serving(&voters, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    assert_eq!(
        wait_mode(observer.client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    for m in &voters {
        let want = if m.id == leader { "leader" } else { "follower" };
        assert_eq!(
            wait_mode(m.client, OP).as_deref(),
            Some(want),
            "server {}",
            m.id
        );
    }

    let rt = runtime();
    let follower = voters
        .iter()
        .find(|m| m.id != leader)
        .expect("a follower")
        .clone();
    create(&rt, follower.client, "/written-at-follower", b"one");
    for m in &plan.members {
        assert_eq!(
            read(&rt, m.client, "/written-at-follower"),
            b"one",
            "at server {}",
            m.id
        );
    }

    let old = leader;
    servers
        .iter_mut()
        .find(|s| s.member.id == old)
        .expect("leader process")
        .kill_9();
    let survivors: Vec<_> = plan
        .members
        .iter()
        .filter(|m| m.id != old)
        .cloned()
        .collect();
    let new_leader = find_leader(&survivors, ELECT).unwrap_or_else(|| {
        panic!(
            "no new leader within {ELECT:?} after killing {old}\n{}",
            logs(&servers)
        )
    });
    assert_ne!(new_leader, old);
    assert_ne!(new_leader, observer.id, "an observer cannot lead");

    create(
        &rt,
        plan.member(new_leader).client,
        "/after-failover",
        b"two",
    );
    for m in &survivors {
        assert_eq!(
            read(&rt, m.client, "/after-failover"),
            b"two",
            "at server {}",
            m.id
        );
        assert_eq!(
            read(&rt, m.client, "/written-at-follower"),
            b"one",
            "at server {}",
            m.id
        );
    }

    // The crashed leader restarts on its old directory and rejoins as a follower with every write.
    let crashed = servers
        .iter_mut()
        .find(|s| s.member.id == old)
        .expect("old leader process");
    crashed.restart();
    assert!(crashed.is_running());
    assert_eq!(
        wait_mode(plan.member(old).client, START).as_deref(),
        Some("follower"),
        "{}",
        logs(&servers)
    );
    assert_eq!(
        read(&rt, plan.member(old).client, "/after-failover"),
        b"two"
    );
}
