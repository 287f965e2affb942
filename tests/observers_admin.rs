//! What an operator sees of observers on a running outpost ensemble (issue #5): the AdminServer's
//! `observers` / `orst` commands with ZooKeeper's field names, each observer's lag in `mntr` and as a
//! `sid`-labelled Prometheus gauge, the observer's own lag, and a SNAP sync streamed to an observer
//! that lost its data, counted in bytes on both ends and logged by the leader.
//!
//! Real processes on loopback: three outpost voters and two outpost observers (in the second test across
//! the WAN test bed's proxies, so a SNAP can be made slow).

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::ensemble::scenario::{create, logs, read, runtime, START};
use support::ensemble::{
    find_leader_all_serving, start_member, wait_mode, wipe_data, EnsemblePlan, JavaServer,
};
use support::http::{command, http_get, wait_listening};
use support::wan::WanBed;
use support::{free_port, mntr_value};

/// Committed txns a leader keeps for DIFF: small, so the writes below force a SNAP.
const COMMIT_LOG_COUNT: &str = "20";
/// Writes while an observer is away, well past the committed log.
const SNAP_WRITES: usize = 60;
/// How long the observers may take to confirm the txns sent to them (a few PING round trips).
const CATCH_UP: Duration = Duration::from_secs(20);

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The `observers` entry for `sid`, if listed.
fn observer_entry(obsr: &Value, sid: u64) -> Option<Value> {
    obsr["observers"]
        .as_array()?
        .iter()
        .find(|o| o["sid"] == sid)
        .cloned()
}

/// Polls the leader's `observers` until both observers are listed, synced and have confirmed every
/// txn sent to them (lag 0); returns the last answer.
fn wait_observers_caught_up(admin: SocketAddr, servers: &[JavaServer]) -> Value {
    let start = Instant::now();
    loop {
        let obsr = command(admin, "observers");
        let caught_up = obsr["synced_observers"] == 2
            && [4, 5].iter().all(|sid| {
                observer_entry(&obsr, *sid)
                    .is_some_and(|o| o["synced"] == true && o["lag_zxids"] == 0)
            });
        if caught_up {
            return obsr;
        }
        assert!(
            start.elapsed() < CATCH_UP,
            "observers not caught up: {obsr:#}\n{}",
            logs(servers)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The leader lists both observers with `LearnerHandler`'s fields and a lag that returns to 0 once they
/// confirmed what was sent; `orst` resets their counters; followers without `observerMasterPort` list
/// none; `mntr` carries each observer's lag under its sid and each observer's own lag; the Prometheus
/// exporter labels the per-observer gauges with `sid`; and an observer restarted on an empty dataDir
/// after more writes than the committed log holds gets a SNAP streamed in chunks, counted on both ends.
#[test]
fn observers_admin_lag_and_streamed_snap() {
    let plan = EnsemblePlan::new(3, 2).with_outpost(&[1, 2, 3, 4, 5]);
    let root = support::ensemble::scenario::test_root();
    // (admin, metrics) ports per member, in member order.
    let ports: Vec<(u16, u16)> = plan
        .members
        .iter()
        .map(|_| (free_port(), free_port()))
        .collect();
    let configs: Vec<PathBuf> = plan
        .members
        .iter()
        .zip(&ports)
        .map(|(m, (admin, metrics))| {
            let (admin, metrics) = (admin.to_string(), metrics.to_string());
            plan.write_member_dir(
                m.id,
                root.path(),
                &[
                    ("admin.enableServer", "true"),
                    ("admin.serverAddress", "127.0.0.1"),
                    ("admin.serverPort", &admin),
                    (
                        "metricsProvider.className",
                        "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
                    ),
                    ("metricsProvider.httpPort", &metrics),
                    ("metricsProvider.httpHost", "127.0.0.1"),
                    ("commitLogCount", COMMIT_LOG_COUNT),
                ],
            )
        })
        .collect();
    let mut servers: Vec<JavaServer> = plan
        .members
        .iter()
        .zip(&configs)
        .map(|(m, cfg)| start_member(cfg, m))
        .collect();
    let voters = plan.members[..3].to_vec();
    let leader = find_leader_all_serving(&voters, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    for id in [4, 5] {
        assert_eq!(
            wait_mode(plan.member(id).client, START).as_deref(),
            Some("observer"),
            "{}",
            logs(&servers)
        );
    }
    let index = |id: u64| {
        plan.members
            .iter()
            .position(|m| m.id == id)
            .expect("member")
    };
    let admin_of = |id: u64| loopback(ports[index(id)].0);
    let leader_admin = admin_of(leader);
    wait_listening(leader_admin);
    let follower = voters
        .iter()
        .find(|m| m.id != leader)
        .expect("a follower")
        .id;

    // Writes through observer 4 are REQUESTs on its link; every write reaches both observers.
    let rt = runtime();
    for i in 0..10 {
        create(&rt, plan.member(4).client, &format!("/via4-{i}"), b"x");
    }
    let before = wait_observers_caught_up(leader_admin, &servers);
    let o4 = observer_entry(&before, 4).expect("observer 4 listed");
    assert!(
        o4["remote_socket_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("/127.0.0.1:")),
        "{o4:#}"
    );
    assert!(
        o4["established"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{o4:#}"
    );
    assert!(o4["last_zxid"].as_i64().is_some_and(|z| z > 0), "{o4:#}");
    assert!(o4["requests"].as_u64().is_some_and(|r| r >= 10), "{o4:#}");
    for key in [
        "queued_packets",
        "queued_packets_size",
        "packets_received",
        "lag_ms",
    ] {
        assert!(o4[key].is_u64(), "{key}: {o4:#}");
    }
    let sent_before = o4["packets_sent"].as_u64().expect("packets_sent");
    assert!(sent_before >= 10, "{o4:#}");

    // orst resets the counters (Java's resetObserverConnectionStats); nothing was forwarded since.
    let orst = command(leader_admin, "orst");
    assert_eq!(orst["command"], "observer_connection_stat_reset");
    assert!(orst["error"].is_null());
    let after = command(leader_admin, "obsr");
    let o4 = observer_entry(&after, 4).expect("observer 4 still listed");
    assert_eq!(o4["requests"], 0, "{o4:#}");
    assert!(
        o4["packets_sent"].as_u64().expect("packets_sent") < sent_before,
        "{o4:#}"
    );

    // A follower without observerMasterPort serves no observers.
    let fobs = command(admin_of(follower), "observers");
    assert_eq!(fobs["synced_observers"], 0);
    assert_eq!(fobs["observers"], serde_json::json!([]));

    // mntr: the leader's per-observer lag lines, each observer's own lag.
    let leader_client = plan.member(leader).client_addr();
    assert_eq!(mntr_value(leader_client, "zk_synced_observers"), Some(2));
    for sid in [4, 5] {
        for key in [
            format!("zk_observer_lag_zxids_sid_{sid}"),
            format!("zk_observer_lag_ms_sid_{sid}"),
        ] {
            assert!(mntr_value(leader_client, &key).is_some(), "{key} missing");
        }
        let client = plan.member(sid).client_addr();
        assert!(mntr_value(client, "zk_learner_master_lag_zxids").is_some());
        assert!(mntr_value(client, "zk_learner_master_lag_ms").is_some());
    }

    // Prometheus: one gauge per name, labelled by sid.
    let metrics = loopback(ports[index(leader)].1);
    wait_listening(metrics);
    let (status, _, page) = http_get(metrics, "/metrics");
    assert_eq!(status, 200);
    for line in [
        "# TYPE observer_lag_zxids gauge",
        "observer_lag_zxids{sid=\"4\"}",
        "observer_lag_ms{sid=\"5\"}",
    ] {
        assert!(page.contains(line), "{line} not in /metrics:\n{page}");
    }

    // Observer 5 comes back empty after more writes than the committed log holds: SNAP, streamed.
    let o5 = index(5);
    servers[o5].kill_9();
    wipe_data(&configs[o5]);
    for i in 0..SNAP_WRITES {
        create(
            &rt,
            plan.member(follower).client,
            &format!("/while5-{i}"),
            b"y",
        );
    }
    let sent_before = mntr_value(leader_client, "zk_snap_sync_bytes_sent").unwrap_or(0);
    servers[o5].restart();
    assert_eq!(
        wait_mode(plan.member(5).client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    let last = format!("/while5-{}", SNAP_WRITES - 1);
    assert_eq!(read(&rt, plan.member(5).client, &last), b"y");
    let sent = mntr_value(leader_client, "zk_snap_sync_bytes_sent").unwrap_or(0) - sent_before;
    let received =
        mntr_value(plan.member(5).client_addr(), "zk_snap_sync_bytes_received").unwrap_or(0);
    assert!(received > 0, "observer 5 received no snapshot bytes");
    // The sender counts the body and its 14-byte signature (more if the observer needed two tries).
    assert!(
        sent >= received + 14,
        "leader sent {sent}, observer got {received}"
    );
    let leader_log = std::fs::read_to_string(servers[index(leader)].log_path()).unwrap_or_default();
    assert!(
        leader_log.contains("in chunks of") && leader_log.contains("znodes in"),
        "the leader logs the streamed snapshot:\n{}",
        logs(&servers)
    );
    wait_observers_caught_up(leader_admin, &servers);
}

/// With `leader.maxConcurrentSnapSyncs=1` and a slow WAN, two empty observers that come back together
/// cannot both get a SNAP at once: the leader refuses one (it closes the link, as ZooKeeper's
/// `LearnerHandler` does on `SyncThrottleException`), that observer tries again, and once the first
/// SNAP is through both serve the latest write.
#[test]
fn snap_syncs_beyond_the_throttle_wait_their_turn() {
    let mut bed = WanBed::start(
        3,
        2,
        &[
            ("leader.maxConcurrentSnapSyncs", "1"),
            ("commitLogCount", COMMIT_LOG_COUNT),
        ],
    );
    let leader = bed.leader(START);
    for id in [4, 5] {
        bed.server_mut(id).kill_9();
        wipe_data(&bed.server(id).config);
    }
    // About 200 KiB of tree: seconds per SNAP at 32 KiB/s.
    let rt = runtime();
    let data = vec![b'z'; 1024];
    let leader_client = bed.member(leader).client;
    rt.block_on(async {
        let c = support::ensemble::scenario::connect(leader_client).await;
        for i in 0..200 {
            support::ensemble::scenario::create_on(
                &c,
                &format!("/big-{i}"),
                &data,
                outpost_core::client::CreateMode::Persistent,
            )
            .await;
        }
        let _ = c.close().await;
    });
    bed.wan.set_bandwidth(Some(32 * 1024));
    for id in [4, 5] {
        bed.server_mut(id).restart();
    }
    let slow = Duration::from_secs(90);
    for id in [4, 5] {
        bed.wait_observing(id, slow);
        assert_eq!(read(&rt, bed.member(id).client, "/big-199"), data);
    }
    let throttled = mntr_value(
        bed.member(leader).client_addr(),
        "zk_learner_syncs_throttled",
    );
    assert!(
        throttled.is_some_and(|n| n >= 1),
        "no observer SNAP was throttled ({throttled:?})\n{}",
        bed.logs()
    );
    assert!(mntr_value(bed.member(leader).client_addr(), "zk_snap_count").is_some_and(|n| n >= 2));
}
