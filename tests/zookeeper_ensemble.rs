//! The Apache ZooKeeper 3.8 ensemble harness of `tests/support/ensemble.rs` against the Debian package:
//! the files it writes are valid for both ZooKeeper and `outpost conf check`, three voters elect exactly
//! one leader, and with an observer added a write is seen at every server and a kill -9 of the leader
//! leads to a new leader that serves writes. Servers start in parallel with a 200 ms tick; every wait is
//! bounded.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::Acl;
use support::ensemble::{find_leader, start_java, wait_mode, EnsemblePlan, JavaServer};
use support::outpost_bin;

/// Bound for JVM start-up plus the first election on a loaded two-core machine.
const START: Duration = Duration::from_secs(40);
/// Bound for a re-election after the leader dies (syncLimit 3 s to notice, then an election).
const ELECT: Duration = Duration::from_secs(30);
const OP: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Writes every member's directory under `root` and starts them all before waiting on any.
fn start_all(plan: &EnsemblePlan, root: &Path) -> Vec<JavaServer> {
    let configs = plan.write_all(root, &[]);
    plan.members
        .iter()
        .zip(&configs)
        .map(|(m, cfg)| start_java(cfg, m))
        .collect()
}

/// Every server's log tail, for assertion messages.
fn logs(servers: &[JavaServer]) -> String {
    servers
        .iter()
        .map(|s| format!("--- server {} ---\n{}", s.member.id, s.log_tail()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A session on the one server `port`.
async fn connect(port: u16) -> Client {
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
fn create(rt: &tokio::runtime::Runtime, port: u16, path: &str, data: &[u8]) {
    rt.block_on(async {
        let c = connect(port).await;
        tokio::time::timeout(
            OP,
            c.create(path, data, &Acl::open_unsafe(), CreateMode::Persistent),
        )
        .await
        .unwrap_or_else(|_| panic!("create {path} at {port}: timed out"))
        .unwrap_or_else(|e| panic!("create {path} at {port}: {e}"))
        .unwrap_or_else(|e| panic!("create {path} at {port}: {e:?}"));
        let _ = c.close().await;
    });
}

/// Reads `path` at `port` after a `sync`, so a learner answers with everything the leader committed.
fn read(rt: &tokio::runtime::Runtime, port: u16, path: &str) -> Vec<u8> {
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

/// The files written for a 3-voter, 1-observer plan hold what ZooKeeper needs (myid, absolute dataDir
/// and dynamicConfigFile, one distinct server line per member with its role) and `outpost conf check`
/// accepts every member's zoo.cfg, so outpost members can later run on the same files.
#[test]
fn member_dirs_are_valid_for_outpost() {
    let root = tempfile::tempdir().expect("tempdir");
    let plan = EnsemblePlan::new(3, 1);
    let dynamic = plan.dynamic_config();
    assert_eq!(dynamic.lines().count(), 4);
    assert_eq!(dynamic.matches(":participant;127.0.0.1:").count(), 3);
    assert_eq!(dynamic.matches(":observer;127.0.0.1:").count(), 1);
    let mut ports: Vec<u16> = plan
        .members
        .iter()
        .flat_map(|m| [m.client, m.quorum, m.election])
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 12, "ports repeat in {dynamic}");

    for cfg in plan.write_all(root.path(), &[("syncLimit", "20"), ("maxClientCnxns", "0")]) {
        let dir = cfg.parent().expect("member dir");
        let text = std::fs::read_to_string(&cfg).expect("read zoo.cfg");
        assert_eq!(
            text.matches("syncLimit=").count(),
            1,
            "extra did not replace:\n{text}"
        );
        assert!(text.contains("syncLimit=20\n") && text.contains("maxClientCnxns=0\n"));
        assert!(text.contains(&format!(
            "dynamicConfigFile={}",
            dir.join("zoo.cfg.dynamic").display()
        )));
        assert_eq!(
            std::fs::read_to_string(dir.join("zoo.cfg.dynamic")).expect("read dynamic"),
            dynamic
        );
        let out = Command::new(outpost_bin())
            .args(["conf", "check", "--config"])
            .arg(&cfg)
            .output()
            .expect("run outpost conf check");
        assert!(
            out.status.success(),
            "outpost rejects {}:\n{text}\n{}{}",
            cfg.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let myid = root.path().join("member4").join("data").join("myid");
    assert_eq!(std::fs::read_to_string(myid).expect("myid").trim(), "4");
}

/// Three Java voters started together elect exactly one leader and the other two follow it.
#[test]
fn three_voters_elect_exactly_one_leader() {
    let root = tempfile::tempdir().expect("tempdir");
    let plan = EnsemblePlan::new(3, 0);
    let servers = start_all(&plan, root.path());
    let leader = find_leader(&plan.members, START)
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
        2,
        "modes: {modes:?}"
    );
}

/// With 3 voters and 1 observer: the observer reports `observer`; a znode written at a follower is read
/// at every server; after kill -9 of the leader the two surviving voters elect a new leader, which
/// serves a write that the observer and the other voter then read; the old leader, restarted, rejoins
/// as a follower and has that write.
#[test]
fn observer_reads_writes_and_leader_failover() {
    let root = tempfile::tempdir().expect("tempdir");
    let plan = EnsemblePlan::new(3, 1);
    let mut servers = start_all(&plan, root.path());
    let observer = plan.member(4).clone();
    let voters: Vec<_> = plan.members[..3].to_vec();

    let leader = find_leader(&voters, START)
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
