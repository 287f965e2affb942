//! Learner sync from the leader's on-disk txn log (ZooKeeper's `LearnerHandler.syncFollower` rule 5)
//! on real processes: with a committed log of 20 txns (`commitLogCount=20`), a follower that was down
//! while a few hundred znodes were written comes back and is synced by DIFF from the leader's txn log,
//! and has every znode; with `snapshotSizeFactor=-1` the same outage gets a SNAP. Run on three outpost
//! voters, and on an outpost-led ensemble with an Apache ZooKeeper 3.8 follower (when installed), which
//! must accept the DIFF.
//!
//! The tests run one at a time (a file-wide lock): ensembles are CPU-heavy on two shared cores.

mod support;

use std::sync::Mutex;

use support::ensemble::scenario::{connect, create, logs, runtime, test_root, OP, START};
use support::ensemble::{
    find_leader_all_serving, start_member, wait_mode, EnsemblePlan, JavaServer,
};
use support::mntr_value;

/// One test at a time in this file.
static SERIAL: Mutex<()> = Mutex::new(());

/// Znodes written while the follower is down: far more than `commitLogCount`.
const WRITES: usize = 300;

/// The zxid a server reports in `srvr` (`Zxid: 0x...`), or None while it does not answer.
fn srvr_zxid(addr: std::net::SocketAddr) -> Option<i64> {
    let text = support::four_letter(addr, "srvr").ok()?;
    let hex = text.lines().find_map(|l| l.strip_prefix("Zxid: 0x"))?;
    i64::from_str_radix(hex.trim(), 16).ok()
}

/// How the returning follower was synced, from the leader's `mntr` counters.
#[derive(Debug, PartialEq, Eq)]
enum Synced {
    Diff,
    Snap,
}

/// Starts `plan` with `commitLogCount=20` and `snapshotSizeFactor=factor`, stops a follower (a
/// ZooKeeper one when there is one), writes [`WRITES`] znodes, restarts it and returns how the leader
/// synced it, having checked that it holds every znode.
fn outage_and_return(plan: &EnsemblePlan, factor: &str) -> Synced {
    let root = test_root();
    // A factor of 0 is unlimited (ZooKeeper's calculateTxnLogSizeLimit gives 0, which
    // getProposalsFromTxnLog does not check): the 64 MiB preallocated log file would otherwise be
    // larger than 0.33 x the snapshot of a small tree, in ZooKeeper as here.
    let extra = [("commitLogCount", "20"), ("snapshotSizeFactor", factor)];
    let mut servers: Vec<JavaServer> = plan
        .members
        .iter()
        .map(|m| start_member(&plan.write_member_dir(m.id, root.path(), &extra), m))
        .collect();
    for m in &plan.members {
        assert!(
            wait_mode(m.client, START).is_some(),
            "member {} never served:\n{}",
            m.id,
            logs(&servers)
        );
    }
    let leader = find_leader_all_serving(&plan.members, START).expect("a leader");
    // The txn log sync under test is outpost's: the leader must be an outpost server (with every zxid
    // at zero the highest id leads, and the plans give that id to outpost).
    assert!(
        !plan.member(leader).java,
        "a ZooKeeper server leads:\n{}",
        logs(&servers)
    );
    let leader_addr = plan.member(leader).client_addr();
    let victim = plan
        .members
        .iter()
        .filter(|m| m.id != leader)
        .max_by_key(|m| m.java)
        .expect("a follower")
        .id;
    let rt = runtime();
    create(&rt, plan.member(leader).client, "/d", b"");
    // The victim must hold a txn before it goes down: a learner with none (zxid 0) is always sent a
    // SNAP, and the create above needs only the other follower's ack, so on a loaded machine a slow
    // victim could still be without it. Applied means received and handed to its log; the pause lets
    // that write reach the kernel, which a kill -9 does not undo.
    let target = srvr_zxid(leader_addr).expect("leader zxid");
    let victim_addr = plan.member(victim).client_addr();
    let until = std::time::Instant::now() + OP;
    while srvr_zxid(victim_addr).is_none_or(|z| z < target) {
        assert!(
            std::time::Instant::now() < until,
            "server {victim} never applied 0x{target:x}:\n{}",
            logs(&servers)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    let index = plan
        .members
        .iter()
        .position(|m| m.id == victim)
        .expect("victim");
    servers[index].kill_9();
    rt.block_on(async {
        let c = connect(plan.member(leader).client).await;
        for i in 0..WRITES {
            support::ensemble::scenario::create_on(
                &c,
                &format!("/d/n{i:04}"),
                b"payload",
                outpost_core::client::CreateMode::Persistent,
            )
            .await;
        }
        let _ = c.close().await;
    });
    let before = (
        mntr_value(leader_addr, "zk_snap_count").expect("snap count"),
        mntr_value(leader_addr, "zk_diff_count").expect("diff count"),
    );
    servers[index].restart();
    assert!(
        wait_mode(plan.member(victim).client, START).is_some(),
        "server {victim} never came back:\n{}",
        logs(&servers)
    );
    let children = rt.block_on(async {
        let c = connect(plan.member(victim).client).await;
        let children = tokio::time::timeout(OP, async {
            c.sync("/d").await.expect("sync").expect("sync ok");
            c.get_children("/d", false)
                .await
                .expect("children")
                .expect("children ok")
        })
        .await
        .expect("children in time");
        let _ = c.close().await;
        children
    });
    assert_eq!(
        children.len(),
        WRITES,
        "server {victim} misses znodes:\n{}",
        logs(&servers)
    );
    let after = (
        mntr_value(leader_addr, "zk_snap_count").expect("snap count"),
        mntr_value(leader_addr, "zk_diff_count").expect("diff count"),
    );
    let synced = match (after.0 - before.0, after.1 - before.1) {
        (0, 1) => Synced::Diff,
        (1, 0) => Synced::Snap,
        other => panic!(
            "leader {leader}: {other:?} more SNAP/DIFF syncs for one returning follower:\n{}",
            logs(&servers)
        ),
    };
    if synced == Synced::Diff {
        let at = plan.members.iter().position(|m| m.id == leader);
        let log = at
            .and_then(|i| std::fs::read_to_string(servers[i].log_path()).ok())
            .unwrap_or_default();
        assert!(
            log.contains("using the txn log and the committed log"),
            "leader {leader} did not say it used its txn log"
        );
    }
    synced
}

// Three outpost voters: a follower 300 txns behind a 20-txn committed log is synced by DIFF from the
// leader's txn log; with the txn log sync disabled it gets a SNAP.
#[test]
fn outpost_follower_far_behind_syncs_by_diff_from_the_txn_log() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let plan = EnsemblePlan::new(3, 0).with_outpost(&[1, 2, 3]);
    assert_eq!(outage_and_return(&plan, "0"), Synced::Diff);
    let plan = EnsemblePlan::new(3, 0).with_outpost(&[1, 2, 3]);
    assert_eq!(outage_and_return(&plan, "-1"), Synced::Snap);
}

// An Apache ZooKeeper 3.8 follower far behind an outpost leader accepts the DIFF read from the
// leader's txn log and ends with every znode.
#[test]
fn zookeeper_follower_accepts_a_diff_from_the_txn_log() {
    if !support::zookeeper_installed() {
        eprintln!("Apache ZooKeeper is not installed: skipped");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Servers 2 and 3 are outpost: with equal zxids the highest id (3) leads; server 1 is ZooKeeper.
    let plan = EnsemblePlan::new(3, 0).with_outpost(&[2, 3]);
    assert_eq!(outage_and_return(&plan, "0"), Synced::Diff);
}
