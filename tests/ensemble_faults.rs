//! Real-process fault tests of three-server outpost ensembles on loopback (issue #4): kill -9 of the
//! leader under a recorded write load, a follower catching up by DIFF and by SNAP, an isolated leader's
//! uncommitted tail dropped on rejoin (TRUNC), and a partitioned minority that stops serving and catches
//! up after the heal. Partitions go through the fault-injecting proxies of
//! `support::ensemble::faults`; clients talk to the servers directly.

mod support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use outpost_core::proto::Acl;
use support::ensemble::faults::{
    conf_check, direct_peer_connections, log_mark, server, start_configs, sync_lines_since,
    sync_mode,
};
use support::ensemble::load::{
    create_many, prefer, recorded_create, recorded_set, synced_view, Load,
};
use support::ensemble::scenario::{self, connect, create, logs, runtime, ELECT, OP, START};
use support::ensemble::{
    find_leader, find_leader_all_serving, srvr_mode, wait_mode, EnsemblePlan, JavaServer,
};
use support::history::{Op, Outcome, SharedHistory};

/// Lets sessions outlive a leader's death and the election after it (ZooKeeper's default cap is
/// 20 ticks, 4 s here).
const LONG_SESSIONS: (&str, &str) = ("maxSessionTimeout", "30000");

fn outpost_plan() -> EnsemblePlan {
    EnsemblePlan::new(3, 0).with_outpost(&[1, 2, 3])
}

/// Waits for one leader among `plan`'s members and every other member following it.
fn settled_leader(plan: &EnsemblePlan, servers: &[JavaServer]) -> u64 {
    let leader = find_leader_all_serving(&plan.members, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(servers)));
    for m in &plan.members {
        if m.id != leader {
            assert_eq!(
                wait_mode(m.client, START).as_deref(),
                Some("follower"),
                "server {}\n{}",
                m.id,
                logs(servers)
            );
        }
    }
    leader
}

/// Polls until member `id` reports `mode`, for at most `limit`.
fn wait_for_mode(
    plan: &EnsemblePlan,
    servers: &[JavaServer],
    id: u64,
    mode: &str,
    limit: Duration,
) {
    let start = Instant::now();
    while srvr_mode(plan.member(id).client).as_deref() != Some(mode) {
        assert!(
            start.elapsed() < limit,
            "server {id} is not {mode} within {limit:?}\n{}",
            logs(servers)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// After kill -9 of the leader in the middle of a write load from sessions on every server, the
/// survivors elect a new leader that serves writes, the old leader rejoins, every acknowledged create is
/// on every server, and the recorded history is linearizable (writes, synced reads) and sequentially
/// consistent (all reads).
#[test]
fn leader_kill_9_under_write_load_loses_no_acknowledged_write() {
    let plan = outpost_plan();
    let root = scenario::test_root();
    let configs = plan.write_all(root.path(), &[LONG_SESSIONS]);
    let mut servers = start_configs(&plan, &configs);
    let leader = settled_leader(&plan, &servers);
    let ports: Vec<u16> = plan.members.iter().map(|m| m.client).collect();
    let keys = ["/load-k0", "/load-k1", "/load-k2"];
    let rt = runtime();
    create(&rt, ports[0], "/load", b"");
    for k in keys {
        create(&rt, ports[0], k, b"init");
    }

    let load = Load::new(&keys, b"init", "/load");
    let workers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("load runtime");
    // Two sessions per server, each moving on to the other servers when its own one dies.
    let tasks: Vec<_> = (0..6)
        .map(|w| {
            let connect = prefer(ports[w % 3], ports.clone());
            workers.spawn(load.clone().worker(connect, w))
        })
        .collect();

    let wait_acked = |more: u64, what: &str, servers: &[JavaServer]| {
        let from = load.acked();
        let start = Instant::now();
        while load.acked() < from + more {
            assert!(
                start.elapsed() < ELECT,
                "{what}: fewer than {more} writes acknowledged within {ELECT:?}\n{}",
                logs(servers)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_acked(40, "before the crash", &servers);
    server(&mut servers, leader).kill_9();
    let survivors: Vec<_> = plan
        .members
        .iter()
        .filter(|m| m.id != leader)
        .cloned()
        .collect();
    let new_leader = find_leader(&survivors, ELECT).unwrap_or_else(|| {
        panic!(
            "no new leader within {ELECT:?} after killing {leader}\n{}",
            logs(&servers)
        )
    });
    assert_ne!(new_leader, leader);
    wait_acked(40, "after the new leader was elected", &servers);

    server(&mut servers, leader).restart();
    wait_for_mode(&plan, &servers, leader, "follower", START);
    wait_acked(40, "after the old leader rejoined", &servers);
    load.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        workers
            .block_on(t)
            .unwrap_or_else(|e| panic!("load worker: {e}"));
    }
    drop(workers);

    let creates = load.creates();
    let mut views = Vec::new();
    for &port in &ports {
        views.push(rt.block_on(synced_view(port, "/load", &keys)));
    }
    for (m, view) in plan.members.iter().zip(&views) {
        for path in &creates {
            let name = path.trim_start_matches("/load/");
            assert!(
                view.0.contains_key(name),
                "acknowledged create {path} missing at server {}\n{}",
                m.id,
                logs(&servers)
            );
        }
        assert_eq!(view, &views[0], "server {} differs from server 1", m.id);
    }
    let history = load.history.snapshot();
    let unknown = history
        .records()
        .iter()
        .filter(|r| matches!(r.outcome, Some(Outcome::Unknown)))
        .count();
    // Unique creates and unconditional sets have no precondition to fail on: a definite error is a bug.
    let refused: Vec<String> = history
        .records()
        .iter()
        .filter(|r| !matches!(r.op, Op::Read { .. }) && r.outcome == Some(Outcome::Failed))
        .map(|r| r.to_string())
        .collect();
    assert!(refused.is_empty(), "writes refused: {refused:#?}");
    let report = history.check().unwrap_or_else(|e| {
        panic!(
            "history of {} ops is not acceptable: {e}",
            history.records().len()
        )
    });
    eprintln!(
        "leader {leader} killed, {new_leader} took over; {} ops ({unknown} unknown), {} acked creates; {report:?}",
        history.records().len(),
        creates.len()
    );
}

/// A follower killed while the others commit `txns` txns rejoins, the leader syncs it with `expect`
/// (DIFF within `commitLogCount`, SNAP beyond it), and every server then holds the same data.
fn follower_catches_up(extra: &[(&str, &str)], txns: usize, expect: &str) {
    let plan = outpost_plan();
    let root = scenario::test_root();
    let configs = plan.write_all(root.path(), extra);
    let mut servers = start_configs(&plan, &configs);
    let leader = settled_leader(&plan, &servers);
    let follower = plan
        .members
        .iter()
        .find(|m| m.id != leader)
        .expect("a follower")
        .clone();
    let rt = runtime();
    create(&rt, plan.member(leader).client, "/catch-up", b"");
    server(&mut servers, follower.id).kill_9();
    rt.block_on(create_many(
        plan.member(leader).client,
        "/catch-up",
        "missed",
        txns,
        50,
    ));
    let mark = log_mark(server(&mut servers, leader));
    server(&mut servers, follower.id).restart();
    wait_for_mode(&plan, &servers, follower.id, "follower", START);

    let views: Vec<_> = plan
        .members
        .iter()
        .map(|m| rt.block_on(synced_view(m.client, "/catch-up", &[])))
        .collect();
    assert_eq!(views[0].0.len(), txns, "server 1's children");
    for (m, view) in plan.members.iter().zip(&views) {
        assert_eq!(view, &views[0], "server {} differs from server 1", m.id);
    }
    let lines = sync_lines_since(server(&mut servers, leader), mark);
    let modes: Vec<_> = lines.iter().filter_map(|l| sync_mode(l)).collect();
    assert_eq!(
        modes,
        vec![expect],
        "leader {leader} should have synced follower {} once by {expect}; its sync lines: {lines:#?}\n{}",
        follower.id,
        logs(&servers)
    );
}

/// A follower that missed a few hundred txns (fewer than the default commitLogCount of 500) is synced
/// by DIFF.
#[test]
fn follower_restart_is_synced_by_diff() {
    follower_catches_up(&[], 300, "Diff");
}

/// A follower that missed more txns than `commitLogCount=20` keeps is synced by SNAP when syncing from
/// the on-disk txn log is off (`snapshotSizeFactor=-1`; with it on the leader may serve a DIFF from its
/// log instead, which `tests/ensemble_txn_log_sync.rs` covers).
#[test]
fn follower_far_behind_is_synced_by_snap() {
    follower_catches_up(
        &[("commitLogCount", "20"), ("snapshotSizeFactor", "-1")],
        120,
        "Snap",
    );
}

/// Starts a proxied outpost ensemble (after `outpost conf check` accepts every member's files) and
/// waits for it to settle; returns the plan, servers, proxies and leader.
fn proxied_ensemble(
    root: &std::path::Path,
) -> (
    EnsemblePlan,
    Vec<JavaServer>,
    support::ensemble::faults::Proxies,
    u64,
) {
    let plan = outpost_plan();
    let (configs, proxies) = plan.write_all_proxied(root, &[LONG_SESSIONS]);
    for cfg in &configs {
        conf_check(cfg).unwrap_or_else(|e| panic!("conf check {}: {e}", cfg.display()));
    }
    let servers = start_configs(&plan, &configs);
    let leader = settled_leader(&plan, &servers);
    let direct = direct_peer_connections(&plan, &servers);
    assert!(
        direct.is_empty(),
        "members connected to each other around the proxies (from, to): {direct:?}"
    );
    (plan, servers, proxies, leader)
}

/// A leader cut off from both followers keeps its clients, whose writes cannot commit (they end
/// unknown); the majority elects a new leader and commits writes; after the heal the old leader rejoins
/// as a follower, synced by TRUNC or SNAP, and its uncommitted writes are visible nowhere while the
/// majority's are visible everywhere.
#[test]
fn isolated_leader_drops_its_uncommitted_tail() {
    isolated_leader_rejoins(true, &["Trunc", "Snap"]);
}

/// The same partition healed before the new leader commits anything: the old leader's last zxid is
/// then beyond the new leader's last committed txn, and, as `LearnerHandler.syncFollower` does, the
/// new leader sends TRUNC (SNAP here would mean outpost chooses differently from ZooKeeper).
#[test]
fn isolated_leader_healed_before_new_writes_is_truncated() {
    isolated_leader_rejoins(false, &["Trunc"]);
}

/// Isolates the leader, writes at it (uncommitted), lets the majority elect a new leader, commits the
/// majority's writes before the heal (`majority_writes_first`) or after it, and checks that the old
/// leader was synced by one of `sync_modes` and that only the majority's writes exist, everywhere.
fn isolated_leader_rejoins(majority_writes_first: bool, sync_modes: &[&str]) {
    let root = scenario::test_root();
    let (plan, mut servers, proxies, leader) = proxied_ensemble(root.path());
    let followers: Vec<u64> = plan
        .members
        .iter()
        .map(|m| m.id)
        .filter(|id| *id != leader)
        .collect();
    let rt = runtime();
    create(&rt, plan.member(leader).client, "/trunc", b"");
    create(&rt, plan.member(leader).client, "/trunc-key", b"committed");
    let history = SharedHistory::new();
    history.set_initial("/trunc-key", Some(b"committed".to_vec()));
    let lost = rt.block_on(connect(plan.member(leader).client));

    proxies.isolate(leader);
    // Sent at once, while the leader still believes it leads: proposed and logged, never acked.
    let lost_paths: Vec<String> = (0..5).map(|i| format!("/trunc/lost-{i}")).collect();
    let outcomes = rt.block_on(async {
        let mut ops = tokio::task::JoinSet::new();
        for path in lost_paths.clone() {
            let (h, c) = (history.clone(), lost.clone());
            ops.spawn(async move { recorded_create(&h, 1, &c, &path, b"lost").await });
        }
        let (h, c) = (history.clone(), lost.clone());
        ops.spawn(async move { recorded_set(&h, 2, &c, "/trunc-key", b"lost").await });
        let mut outcomes = Vec::new();
        while let Some(o) = ops.join_next().await {
            outcomes.push(o.unwrap_or_else(|e| panic!("write task: {e}")));
        }
        outcomes
    });
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Unknown),
        "writes at the isolated leader {leader} must not be acknowledged nor refused: {outcomes:?}"
    );

    let majority: Vec<_> = plan
        .members
        .iter()
        .filter(|m| m.id != leader)
        .cloned()
        .collect();
    // Both majority members must serve: the writes below go through each of them.
    let new_leader = find_leader_all_serving(&majority, ELECT).unwrap_or_else(|| {
        panic!(
            "the majority elected no leader within {ELECT:?} with {leader} isolated\n{}",
            logs(&servers)
        )
    });
    assert_ne!(new_leader, leader);
    // The majority's writes, through both of its servers.
    let majority_writes = || {
        rt.block_on(async {
            for (i, id) in followers.iter().enumerate() {
                let c = connect(plan.member(*id).client).await;
                let path = format!("/trunc/kept-{i}");
                let out = recorded_create(&history, 10 + i as u64, &c, &path, b"kept").await;
                assert!(matches!(out, Outcome::Ok { .. }), "{path} at {id}: {out:?}");
                let out = recorded_set(&history, 10 + i as u64, &c, "/trunc-key", b"kept").await;
                assert!(
                    matches!(out, Outcome::Ok { .. }),
                    "/trunc-key at {id}: {out:?}"
                );
                let _ = c.close().await;
            }
        })
    };
    if majority_writes_first {
        majority_writes();
    }
    assert_ne!(
        srvr_mode(plan.member(leader).client).as_deref(),
        Some("leader"),
        "the isolated old leader {leader} still claims to lead after the majority elected {new_leader}"
    );

    let mark = log_mark(server(&mut servers, new_leader));
    proxies.heal(leader);
    wait_for_mode(&plan, &servers, leader, "follower", START);
    let lines = sync_lines_since(server(&mut servers, new_leader), mark);
    let modes: Vec<_> = lines.iter().filter_map(|l| sync_mode(l)).collect();
    assert!(
        modes.len() == 1 && sync_modes.contains(&modes[0]),
        "new leader {new_leader} should have synced old leader {leader} once by one of {sync_modes:?}: \
         {lines:#?}\n{}",
        logs(&servers)
    );
    if !majority_writes_first {
        majority_writes();
    }
    for m in &plan.members {
        let (nodes, key) = rt.block_on(synced_view(m.client, "/trunc", &["/trunc-key"]));
        let names: Vec<&String> = nodes.keys().collect();
        assert_eq!(
            names,
            ["kept-0", "kept-1"],
            "children of /trunc at server {}",
            m.id
        );
        assert_eq!(
            key["/trunc-key"].as_deref(),
            Some(&b"kept"[..]),
            "at server {}",
            m.id
        );
    }
    let snapshot = history.snapshot();
    snapshot
        .check()
        .unwrap_or_else(|e| panic!("history not acceptable: {e}"));
}

/// A follower cut off from the others stops serving (srvr says so and its session's writes fail)
/// while the majority keeps committing writes; after the heal it follows again and has those writes
/// within a bounded time.
#[test]
fn partitioned_minority_stops_serving_and_catches_up() {
    let root = scenario::test_root();
    let (plan, servers, proxies, leader) = proxied_ensemble(root.path());
    let cut = plan
        .members
        .iter()
        .find(|m| m.id != leader)
        .expect("a follower")
        .clone();
    let rt = runtime();
    create(&rt, plan.member(leader).client, "/minority", b"");
    let session = rt.block_on(connect(cut.client));

    proxies.isolate(cut.id);
    let start = Instant::now();
    loop {
        let reply = support::four_letter(cut.client_addr(), "srvr").unwrap_or_default();
        // ZooKeeper's answer while a peer is LOOKING (`NopCommand`, "not currently serving").
        if reply.contains("not currently serving requests") {
            break;
        }
        assert!(
            start.elapsed() < ELECT,
            "cut follower {} still serves after {ELECT:?}: {reply}\n{}",
            cut.id,
            logs(&servers)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let write = rt.block_on(async {
        tokio::time::timeout(
            OP,
            session.create(
                "/minority/at-cut",
                b"x",
                &Acl::open_unsafe(),
                outpost_core::client::CreateMode::Persistent,
            ),
        )
        .await
    });
    assert!(
        !matches!(write, Ok(Ok(Ok(_)))),
        "the cut follower {} acknowledged a write: {write:?}",
        cut.id
    );
    eprintln!("a write at the cut follower {} got {write:?}", cut.id);
    rt.block_on(create_many(
        plan.member(leader).client,
        "/minority",
        "majority",
        50,
        25,
    ));
    assert_eq!(
        srvr_mode(plan.member(leader).client).as_deref(),
        Some("leader"),
        "the majority's leader {leader} stepped down"
    );

    proxies.heal(cut.id);
    let healed = Instant::now();
    wait_for_mode(&plan, &servers, cut.id, "follower", ELECT);
    let (at_cut, _) = rt.block_on(synced_view(cut.client, "/minority", &[]));
    let (at_leader, _) = rt.block_on(synced_view(plan.member(leader).client, "/minority", &[]));
    assert_eq!(at_cut, at_leader, "server {} after the heal", cut.id);
    assert!(
        at_leader.len() == 50 || at_leader.len() == 51,
        "the majority's 50 writes (and maybe the cut session's unknown one): {:?}",
        at_leader.keys()
    );
    eprintln!(
        "follower {} caught up {:?} after the heal",
        cut.id,
        healed.elapsed()
    );
}
