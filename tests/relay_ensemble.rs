//! The relay in an outpost ensemble, against a real `nats-server`: a relay on an observer keeps the stream
//! complete and duplicate-free across a kill -9 of the leader during a 10 000-write load, and two relays
//! on two observers publishing to one stream neither duplicate nor skip a txn, even when one of them is
//! killed mid-load. The stream is checked against the txn logs the servers hold.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_core::client::{Client, CreateMode, State};
use outpost_core::ids::Zxid;
use outpost_core::proto::Acl;
use outpost_core::storage::{LogReader, RealDisk};
use outpost_relay::StreamEvent;
use support::ensemble::scenario::{self, test_root, ELECT, START};
use support::ensemble::{
    find_leader, find_leader_all_serving, start_member, wait_mode, EnsemblePlan, JavaServer,
};
use support::nats::{read_until_match, Nats};

/// ZooKeeper writes the load makes in every test (ACKed ones; failed attempts are retried under a new
/// path).
const WRITES: usize = 10_000;
/// Writers working at once, each with its own session.
const WRITERS: usize = 16;

/// Writes a relay.toml publishing to `nats` (stream OUTPOST, prefix `outpost`, ensemble id `ens`) into
/// `dir` and returns its path.
fn write_relay_toml(dir: &Path, nats: &Nats) -> PathBuf {
    let path = dir.join("relay.toml");
    std::fs::write(
        &path,
        format!(
            "[nats]\nservers = [\"{}\"]\nstream = \"OUTPOST\"\nsubject_prefix = \"outpost\"\n\
             ensemble_id = \"ens\"\n[events]\nencoding = \"json\"\ninclude_data = false\n\
             [sink]\nkind = \"nats\"\n",
            nats.url()
        ),
    )
    .expect("write relay.toml");
    path
}

/// Writes every member's directory (the `relays` members get `relay.configFile`; every leader keeps
/// `commit_log_count` txns in memory to sync learners with a DIFF) and starts them all.
fn start_ensemble(
    plan: &EnsemblePlan,
    root: &Path,
    relays: &[u64],
    nats: &Nats,
    commit_log_count: &str,
) -> Vec<JavaServer> {
    let toml = write_relay_toml(root, nats);
    let line = toml.display().to_string();
    let servers: Vec<JavaServer> = plan
        .members
        .iter()
        .map(|m| {
            let mut extra: Vec<(&str, &str)> = vec![("commitLogCount", commit_log_count)];
            if relays.contains(&m.id) {
                extra.push(("relay.configFile", line.as_str()));
            }
            let cfg = plan.write_member_dir(m.id, root, &extra);
            start_member(&cfg, m)
        })
        .collect();
    for m in &plan.members {
        assert!(
            wait_mode(m.client, START).is_some(),
            "member {} never served:\n{}",
            m.id,
            scenario::logs(&servers)
        );
    }
    servers
}

/// The voters' client addresses as a connect string.
fn voters(plan: &EnsemblePlan) -> String {
    plan.members
        .iter()
        .filter(|m| !m.observer)
        .map(|m| format!("127.0.0.1:{}", m.client))
        .collect::<Vec<_>>()
        .join(",")
}

/// A session on `connect`, retried until `limit` passes (the ensemble may be electing).
async fn session(connect: &str, limit: Duration) -> Client {
    let start = Instant::now();
    loop {
        match Client::connect(connect, Duration::from_secs(10)).await {
            Ok((c, _events)) => return c,
            Err(e) => {
                assert!(start.elapsed() < limit, "no session on {connect}: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// What the load saw: the ACKed paths, and how many attempts failed (interrupted by a crash).
#[derive(Default)]
struct LoadResult {
    acked: BTreeSet<String>,
    failed: usize,
}

/// Creates `/load/w<writer>-<attempt>` from `WRITERS` sessions on `connect` until `WRITES` creates
/// were ACKed. A failed attempt is not retried under the same path (it may have committed or not: the
/// stream decides); a session that closed (expired during an election) is replaced.
async fn load(connect: String, acked_count: Arc<AtomicUsize>) -> LoadResult {
    let result = Arc::new(Mutex::new(LoadResult::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..WRITERS {
        let connect = connect.clone();
        let acked_count = acked_count.clone();
        let result = result.clone();
        tasks.spawn(async move {
            let mut client = session(&connect, ELECT).await;
            let mut attempt = 0usize;
            loop {
                // Claim a write; give it back if it fails.
                if acked_count.fetch_add(1, Ordering::SeqCst) >= WRITES {
                    acked_count.fetch_sub(1, Ordering::SeqCst);
                    break;
                }
                attempt += 1;
                let path = format!("/load/w{w}-{attempt}");
                let done = tokio::time::timeout(
                    Duration::from_secs(15),
                    client.create(&path, b"v", &Acl::open_unsafe(), CreateMode::Persistent),
                )
                .await;
                match done {
                    Ok(Ok(Ok(_))) => {
                        result.lock().expect("result lock").acked.insert(path);
                    }
                    _ => {
                        acked_count.fetch_sub(1, Ordering::SeqCst);
                        result.lock().expect("result lock").failed += 1;
                        if client.state() == State::Closed {
                            client = session(&connect, ELECT).await;
                        } else {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
            }
            let _ = client.close().await;
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.expect("writer task");
    }
    let out = std::mem::take(&mut *result.lock().expect("result lock"));
    out
}

/// The zxids of the txns in a member's txn log, up to `last`.
fn logged_zxids(root: &Path, id: u64, last: i64) -> Vec<i64> {
    let dir = root.join(format!("member{id}")).join("data");
    LogReader::open(Arc::new(RealDisk::new()), &dir, Zxid::ZERO)
        .map_while(|r| r.ok())
        .map(|(z, _)| z.0)
        .take_while(|z| *z <= last)
        .collect()
}

/// Asserts two lists of zxids are the same, naming the first few missing from or extra in `got`.
fn assert_same_txns(got: &[i64], want: &[i64], got_name: &str, want_name: &str) {
    if got == want {
        return;
    }
    let seen: BTreeSet<i64> = got.iter().copied().collect();
    let wanted: BTreeSet<i64> = want.iter().copied().collect();
    let show = |a: &BTreeSet<i64>, b: &BTreeSet<i64>| -> Vec<String> {
        a.difference(b)
            .take(10)
            .map(|z| Zxid(*z).to_string())
            .collect()
    };
    panic!(
        "{got_name} ({} txns, {} .. {}) differs from {want_name} ({} txns, {} .. {}): missing {:?}, extra {:?}",
        got.len(),
        got.first().map_or("-".into(), |z| Zxid(*z).to_string()),
        got.last().map_or("-".into(), |z| Zxid(*z).to_string()),
        want.len(),
        want.first().map_or("-".into(), |z| Zxid(*z).to_string()),
        want.last().map_or("-".into(), |z| Zxid(*z).to_string()),
        show(&wanted, &seen),
        show(&seen, &wanted)
    );
}

/// Makes one more write through the voters after the load and returns its zxid: the stream must reach it.
async fn final_write(connect: &str) -> i64 {
    let client = session(connect, ELECT).await;
    client
        .create(
            "/load/final",
            b"",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect("final create io")
        .expect("final create");
    let (_, stat) = client
        .get_data("/load/final", false)
        .await
        .expect("final get io")
        .expect("final get");
    let _ = client.close().await;
    stat.mzxid
}

/// Reads `<prefix>.log` from the stream's start until the log event at `zxid`.
async fn read_log_until(nats: &Nats, zxid: i64) -> Vec<StreamEvent> {
    read_until_match(
        nats,
        |m| m.kind == "log" && m.event.zxid >= zxid,
        Duration::from_secs(60),
    )
    .await
}

/// Asserts the stream's log events are complete: every zxid once, increasing, consecutive within an
/// epoch, every epoch after the first starting at counter 1 (the zxids a new leader issues), the same
/// zxids as `reference` (a server's log), every ACKed path created exactly once, and unique message ids.
fn assert_stream_complete(messages: &[StreamEvent], reference: &[i64], acked: &BTreeSet<String>) {
    let log: Vec<&StreamEvent> = messages.iter().filter(|m| m.kind != "node").collect();
    assert!(
        log.iter().all(|m| m.kind == "log"),
        "a resync in the stream: {:?}",
        log.iter().find(|m| m.kind != "log").map(|m| &m.event)
    );
    let zxids: Vec<i64> = log.iter().map(|m| m.event.zxid).collect();
    for pair in zxids.windows(2) {
        let (a, b) = (Zxid(pair[0]), Zxid(pair[1]));
        let ok = if a.epoch() == b.epoch() {
            b.counter() == a.counter() + 1
        } else {
            b.epoch() > a.epoch() && b.counter() == 1
        };
        assert!(ok, "stream goes from zxid {a} to {b}");
    }
    assert_same_txns(&zxids, reference, "the stream", "the server's log");
    let mut created: BTreeMap<&str, usize> = BTreeMap::new();
    for m in &log {
        if m.event.kind == "create" {
            if let Some(p) = m.event.path.as_deref() {
                *created.entry(p).or_default() += 1;
            }
        }
    }
    for path in acked {
        assert_eq!(
            created.get(path.as_str()).copied(),
            Some(1),
            "ACKed create of {path} not in the stream exactly once"
        );
    }
    let ids: BTreeSet<&str> = messages
        .iter()
        .filter_map(|m| m.msg_id.as_deref())
        .collect();
    assert_eq!(ids.len(), messages.len(), "duplicate Nats-Msg-Id");
}

/// Runs the load through the voters of `plan` and calls `midway` once half of it is ACKed; returns what
/// the load saw and the zxid of a write made after it.
fn load_with_crash(
    rt: &tokio::runtime::Runtime,
    plan: &EnsemblePlan,
    midway: impl FnOnce(),
) -> (LoadResult, i64) {
    let connect = voters(plan);
    let acked = Arc::new(AtomicUsize::new(0));
    scenario::create(rt, plan.members[0].client, "/load", b"");
    let handle = rt.spawn(load(connect.clone(), acked.clone()));
    let crashed = AtomicBool::new(false);
    let start = Instant::now();
    while !crashed.load(Ordering::SeqCst) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the load never reached half way ({} ACKed)",
            acked.load(Ordering::SeqCst)
        );
        if acked.load(Ordering::SeqCst) >= WRITES / 2 {
            crashed.store(true, Ordering::SeqCst);
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    midway();
    let result = rt.block_on(handle).expect("load task");
    let last = rt.block_on(final_write(&connect));
    (result, last)
}

/// 3 voters and an observer running the relay: kill -9 of the leader half way through a 10 000-write
/// load; a new leader is elected, the load finishes, and the stream holds every committed txn exactly
/// once in zxid order, the same txns as the observer's and the new leader's logs.
#[test]
fn leader_failover_keeps_the_stream_complete() {
    let root = test_root();
    let nats = Nats::start(root.path());
    let plan = EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]);
    // The leader keeps every txn of the test in its committed log, so a learner that fell behind during
    // the failover is synced with a DIFF: with a SNAP the observer would not hold the txns it skipped,
    // and its relay would (rightly) publish a resync instead (see snapshot_sync_publishes_a_resync).
    let mut servers = start_ensemble(&plan, root.path(), &[4], &nats, "50000");
    let rt = support::multi_thread_runtime();
    let leader = find_leader_all_serving(&plan.members, START).expect("a leader");
    let (result, last) = load_with_crash(&rt, &plan, || {
        servers[leader as usize - 1].kill_9();
    });
    let new_leader = find_leader(&plan.members, ELECT).expect("a new leader");
    assert_ne!(new_leader, leader);
    assert_eq!(result.acked.len(), WRITES);
    let messages = rt.block_on(read_log_until(&nats, last));
    let observer = logged_zxids(root.path(), 4, last);
    assert_same_txns(
        &observer,
        &logged_zxids(root.path(), new_leader, last),
        "the observer's log",
        "the new leader's log",
    );
    assert_stream_complete(&messages, &observer, &result.acked);
    // The observer's mntr shows its relay caught up with the last committed txn.
    let start = Instant::now();
    while support::mntr_value(plan.member(4).client_addr(), "zk_relay_last_zxid")
        .is_none_or(|z| z < last)
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the observer's mntr never showed the relay at {}",
            Zxid(last)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let epochs: BTreeSet<u32> = observer.iter().map(|z| Zxid(*z).epoch().0).collect();
    assert!(epochs.len() >= 2, "no new epoch in {epochs:?}");
    eprintln!(
        "{} txns in {} epochs; {} attempts failed during the failover",
        observer.len(),
        epochs.len(),
        result.failed
    );
    drop(servers);
}

/// 3 voters and two observers, both relaying to one stream with the same ensemble id: the stream holds
/// every txn once (the NATS server refuses the losing publisher, which resumes from the stream's end),
/// and after kill -9 of one observer half way through the load, the other keeps the stream complete.
#[test]
fn two_relays_publish_one_complete_stream() {
    let root = test_root();
    let nats = Nats::start(root.path());
    let plan = EnsemblePlan::new(3, 2).with_outpost(&[1, 2, 3, 4, 5]);
    let mut servers = start_ensemble(&plan, root.path(), &[4, 5], &nats, "50000");
    let rt = support::multi_thread_runtime();
    find_leader_all_serving(&plan.members, START).expect("a leader");
    let (result, last) = load_with_crash(&rt, &plan, || servers[3].kill_9());
    assert_eq!(result.acked.len(), WRITES);
    let messages = rt.block_on(read_log_until(&nats, last));
    let survivor = logged_zxids(root.path(), 5, last);
    assert_stream_complete(&messages, &survivor, &result.acked);
    drop(servers);
}

/// Writes `count` znodes `/<dir>/n<i>` through a session on `connect`; returns the zxid of the last.
async fn writes(connect: &str, dir: &str, count: usize) -> i64 {
    let client = session(connect, ELECT).await;
    let mut last = 0;
    for i in 0..count {
        let path = format!("/{dir}/n{i}");
        client
            .create(&path, b"v", &Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .expect("create io")
            .expect("create");
        last = client.last_zxid();
    }
    let _ = client.close().await;
    last
}

/// Polls the relay's `zk_relay_last_zxid` in `member`'s mntr until it reaches `zxid`.
fn wait_relayed(plan: &EnsemblePlan, member: u64, zxid: i64) {
    let start = Instant::now();
    while support::mntr_value(plan.member(member).client_addr(), "zk_relay_last_zxid")
        .is_none_or(|z| z < zxid)
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "member {member}'s relay never reached {}",
            Zxid(zxid)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when `next` can be the txn committed right after `prev` (the relay's own rule): the next counter
/// of the same epoch, or counter 1 of a later epoch.
fn follows(prev: Zxid, next: Zxid) -> bool {
    if next.epoch() == prev.epoch() {
        next.counter() == prev.counter() + 1
    } else {
        next.epoch() > prev.epoch() && next.counter() == 1
    }
}

/// An observer that was down while the ensemble moved on further than the leader's committed log
/// (`commitLogCount`) is synced with a snapshot, so it holds none of the txns it missed: its relay must
/// say so with a resync (marker and a dump of the tree), never a silent gap, then carry on with the txns
/// after it. (Should the leader ever sync it from its txn log instead, as ZooKeeper's
/// `LearnerHandler.syncFollower` can, the stream must simply be complete.)
#[test]
fn snapshot_sync_never_leaves_a_silent_gap() {
    let root = test_root();
    let nats = Nats::start(root.path());
    let plan = EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]);
    let mut servers = start_ensemble(&plan, root.path(), &[4], &nats, "10");
    let rt = support::multi_thread_runtime();
    find_leader_all_serving(&plan.members, START).expect("a leader");
    let connect = voters(&plan);
    scenario::create(&rt, plan.members[0].client, "/a", b"");
    scenario::create(&rt, plan.members[0].client, "/load", b"");
    let before = rt.block_on(writes(&connect, "a", 20));
    wait_relayed(&plan, 4, before);
    servers[3].kill_9();
    scenario::create(&rt, plan.members[0].client, "/b", b"");
    rt.block_on(writes(&connect, "b", 100));
    servers[3].restart();
    assert!(wait_mode(plan.member(4).client, START).is_some());
    let last = rt.block_on(final_write(&connect));
    let messages = rt.block_on(read_log_until(&nats, last));
    // Walk the log: each txn follows the one before, except across a resync, which restarts the chain
    // at its own zxid; the znodes written while the observer was down are in the stream either way.
    let mut prev = Zxid::ZERO;
    let mut in_resync = false;
    let mut resyncs = 0;
    let mut seen_b = BTreeSet::new();
    for m in messages.iter().filter(|m| m.kind != "node") {
        let z = Zxid(m.event.zxid);
        match m.event.kind.as_str() {
            "resync_begin" => {
                in_resync = true;
                resyncs += 1;
            }
            "resync_end" => {
                in_resync = false;
                prev = z;
            }
            _ if in_resync => {}
            _ => {
                assert!(
                    prev == Zxid::ZERO || follows(prev, z),
                    "silent gap: the stream goes from {prev} to {z}"
                );
                prev = z;
            }
        }
        if let Some(p) = m.event.path.as_deref().filter(|p| p.starts_with("/b/")) {
            seen_b.insert(p.to_string());
        }
    }
    assert!(prev.0 >= last, "the stream stops at {prev}");
    assert_eq!(
        seen_b.len(),
        100,
        "znodes written while the observer was down"
    );
    eprintln!("{resyncs} resync(s) in the stream");
    drop(servers);
}
