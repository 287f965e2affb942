//! Observer interop with Apache ZooKeeper 3.8 (Debian package), both ways (issue #5): an outpost
//! observer joins an ensemble of three Java voters, and a Java observer joins an ensemble of three
//! outpost voters. In each, the observer syncs when started with the ensemble, by DIFF when restarted
//! after a few writes, and by SNAP (started again on an empty data directory after more writes than the
//! leader keeps for DIFF), serves reads, and forwards writes that the voters then serve.
//!
//! The tests run one at a time (a file-wide lock): Java servers are CPU-heavy on two shared cores.

mod support;

use std::sync::Mutex;

use outpost_core::client::CreateMode;

use support::ensemble::scenario::{
    connect, create, create_on, logs, read, runtime, set_on, test_root, OP, START,
};
use support::ensemble::{
    find_leader_all_serving, start_member, wait_mode, wipe_data, EnsemblePlan, JavaServer,
};

/// One test at a time in this file.
static SERIAL: Mutex<()> = Mutex::new(());

/// Committed txns a leader keeps for DIFF (`zookeeper.commitLogCount`; Java reads the zoo.cfg key as
/// that system property, outpost reads it from zoo.cfg): small, so a few dozen writes force SNAP.
const COMMIT_LOG_COUNT: &str = "30";
/// Writes while the observer is down that still fit the leader's committed log: DIFF.
const DIFF_WRITES: usize = 10;
/// Writes while the observer is away, well past the committed log: SNAP.
const SNAP_WRITES: usize = 80;

/// Sets `path` to `prefix-0 .. prefix-(n-1)` in one session at `port`; returns the last value.
fn write_many(
    rt: &tokio::runtime::Runtime,
    port: u16,
    path: &str,
    prefix: &str,
    n: usize,
) -> Vec<u8> {
    rt.block_on(async {
        let c = connect(port).await;
        let mut last = Vec::new();
        for i in 0..n {
            last = format!("{prefix}-{i}").into_bytes();
            set_on(&c, path, &last).await;
        }
        let _ = c.close().await;
        last
    })
}

/// How the observer's last start synced, from its log after byte `from`: "SNAP", "TRUNC" or "DIFF"
/// (outpost logs a received snapshot and a truncation, and nothing for DIFF; Java's `Learner` logs
/// each), or None when it never finished syncing.
fn sync_mode(server: &JavaServer, from: usize) -> Option<&'static str> {
    let text = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    let text = text.get(from..).unwrap_or("");
    if server.member.java {
        if text.contains("Getting a snapshot from leader") {
            Some("SNAP")
        } else if text.contains("Truncating log") {
            Some("TRUNC")
        } else if text.contains("Getting a diff from the leader") {
            Some("DIFF")
        } else {
            None
        }
    } else if !text.contains("synced with leader") {
        None
    } else if text.contains("received the leader's snapshot") {
        Some("SNAP")
    } else if text.contains("truncate the log") {
        Some("TRUNC")
    } else {
        Some("DIFF")
    }
}

fn log_len(server: &JavaServer) -> usize {
    std::fs::metadata(server.log_path()).map_or(0, |m| m.len() as usize)
}

/// The leader's log lines about syncing learners, for the report.
fn leader_sync_lines(server: &JavaServer) -> String {
    let text = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    text.lines()
        .filter(|l| {
            l.contains("Sending DIFF")
                || l.contains("Sending SNAP")
                || l.contains("Sending snapshot")
                || l.contains("Sending TRUNC")
                || l.contains("syncing learner")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The whole interop scenario for a plan of voters 1-3 and observer 4.
fn observer_interop(plan: &EnsemblePlan) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let root = test_root();
    let configs = plan.write_all(
        root.path(),
        &[
            ("commitLogCount", COMMIT_LOG_COUNT),
            // Java may also DIFF from its txn log files when they are small; -1 turns that off
            // (ZKDatabase.isTxnLogSyncEnabled), so "more than commitLogCount behind" means SNAP.
            ("snapshotSizeFactor", "-1"),
            // An outpost leader streams the SNAP in many small chunks (a Java learner must read them
            // as one snapshot); Java members ignore the key.
            ("outpost.snapSyncChunkBytes", "512"),
        ],
    );
    let mut servers: Vec<JavaServer> = plan
        .members
        .iter()
        .zip(&configs)
        .map(|(m, cfg)| start_member(cfg, m))
        .collect();
    let observer = plan.member(4).clone();
    let voters: Vec<_> = plan.members[..3].to_vec();
    let obs_idx = 3;
    let leader = find_leader_all_serving(&voters, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    assert_eq!(
        wait_mode(observer.client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    let rt = runtime();
    let follower = voters
        .iter()
        .find(|m| m.id != leader)
        .expect("a follower")
        .clone();
    let leader_server = servers
        .iter()
        .position(|s| s.member.id == leader)
        .expect("leader server");

    // 1. Started with the ensemble. The first sync is an empty DIFF when the observer reaches the
    // leader before the leader has established its epoch; a Java leader that already has (JVMs start
    // at different speeds) sends SNAP for a learner at zxid 0 (LearnerHandler.syncFollower's
    // "Unhandled scenario"). Either way it syncs; the DIFF that carries txns is step 2.
    let first = sync_mode(&servers[obs_idx], 0);
    assert!(
        matches!(first, Some("DIFF" | "SNAP")),
        "observer's first sync: {first:?}\n{}",
        logs(&servers)
    );
    eprintln!("observer's first sync: {first:?}");
    create(&rt, follower.client, "/interop", b"from-a-voter");
    assert_eq!(read(&rt, observer.client, "/interop"), b"from-a-voter");
    create(&rt, observer.client, "/via-observer", b"forwarded");
    for m in &voters {
        assert_eq!(
            read(&rt, m.client, "/via-observer"),
            b"forwarded",
            "a write through the observer is served by voter {}",
            m.id
        );
    }

    // 2. Restarted after a few writes, within the leader's committed log: DIFF.
    servers[obs_idx].kill_9();
    let last = write_many(&rt, follower.client, "/interop", "diff", DIFF_WRITES);
    let from = log_len(&servers[obs_idx]);
    servers[obs_idx].restart();
    assert_eq!(
        wait_mode(observer.client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    assert_eq!(read(&rt, observer.client, "/interop"), last);
    assert_eq!(
        sync_mode(&servers[obs_idx], from),
        Some("DIFF"),
        "observer restarted {DIFF_WRITES} writes behind (commitLogCount {COMMIT_LOG_COUNT})\n\
         leader's sync lines:\n{}\n{}",
        leader_sync_lines(&servers[leader_server]),
        logs(&servers)
    );

    // 3. Started late on an empty dataDir, after more writes than the committed log holds: SNAP.
    servers[obs_idx].kill_9();
    wipe_data(&configs[obs_idx]);
    let last = write_many(&rt, follower.client, "/interop", "snap", SNAP_WRITES);
    let from = log_len(&servers[obs_idx]);
    servers[obs_idx].restart();
    assert_eq!(
        wait_mode(observer.client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    assert_eq!(read(&rt, observer.client, "/interop"), last);
    assert_eq!(read(&rt, observer.client, "/via-observer"), b"forwarded");
    assert_eq!(
        sync_mode(&servers[obs_idx], from),
        Some("SNAP"),
        "observer started empty {SNAP_WRITES} writes behind (commitLogCount {COMMIT_LOG_COUNT})\n\
         leader's sync lines:\n{}\n{}",
        leader_sync_lines(&servers[leader_server]),
        logs(&servers)
    );
    // After SNAP it still forwards writes, and its session's ephemeral is seen by every voter.
    rt.block_on(async {
        let c = connect(observer.client).await;
        create_on(&c, "/eph-via-observer", b"e", CreateMode::Ephemeral).await;
        for m in &voters {
            let v = connect(m.client).await;
            tokio::time::timeout(OP, v.sync("/eph-via-observer"))
                .await
                .ok();
            let st = tokio::time::timeout(OP, v.exists("/eph-via-observer", false))
                .await
                .expect("exists: timed out")
                .expect("exists")
                .expect("exists: result");
            assert_eq!(
                st.map(|s| s.ephemeral_owner),
                Some(c.session_id()),
                "voter {} sees the observer session's ephemeral",
                m.id
            );
            let _ = v.close().await;
        }
        let _ = c.close().await;
    });
    eprintln!(
        "leader {leader}'s sync lines:\n{}",
        leader_sync_lines(&servers[leader_server])
    );
}

/// An outpost observer joins three Apache ZooKeeper 3.8 voters: it syncs by DIFF and by SNAP, serves
/// reads and forwards writes the Java servers serve.
#[test]
fn outpost_observer_in_zookeeper_ensemble() {
    observer_interop(&EnsemblePlan::new(3, 1).with_outpost(&[4]));
}

/// An Apache ZooKeeper 3.8 observer joins three outpost voters: it syncs by DIFF and by SNAP, serves
/// reads and forwards writes the outpost servers serve.
#[test]
fn zookeeper_observer_in_outpost_ensemble() {
    observer_interop(&EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3]));
}
