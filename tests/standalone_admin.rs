//! The AdminServer (`/commands`, JSON with ZooKeeper's field names) and the Prometheus exporter
//! (`/metrics`) of a standalone outpost server, queried over plain HTTP.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::Acl;
use support::http::{command, http_get, wait_listening};
use support::{free_port, OutpostStandalone};

/// Creates `n` persistent nodes through outpost's own client.
fn write_nodes(server: SocketAddr, n: usize) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (client, _events) = Client::connect(&server.to_string(), Duration::from_secs(10))
            .await
            .expect("connect");
        for i in 0..n {
            client
                .create(
                    &format!("/admin-{i}"),
                    b"data",
                    &Acl::open_unsafe(),
                    CreateMode::Persistent,
                )
                .await
                .expect("io")
                .expect("create");
        }
        // Closed here, not left to the drop: a client whose handles are all gone closes its session
        // when its task next runs, which races with the runtime's shutdown.
        client.close().await.expect("close");
    });
}

/// The AdminServer answers ZooKeeper's commands and aliases with `command`, `error` and ZooKeeper's
/// snake_case fields, lists its commands under `/commands`, answers an unknown name with HTTP 200 and
/// ZooKeeper's error shape, and the placeholders for quorum roles answer as a standalone ZooKeeper does.
#[test]
fn admin_server_answers_zookeeper_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = OutpostStandalone::start(
        dir.path(),
        &format!("admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={port}"),
    );
    let admin: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_listening(admin);
    write_nodes(server.addr, 3);

    let (status, _, listing) = http_get(admin, "/commands");
    assert_eq!(status, 200);
    for name in [
        "server_stats",
        "monitor",
        "watch_summary",
        "voting_view",
        "zabstate",
    ] {
        assert!(
            listing.contains(&format!("<a href=\"/commands/{name}\">{name}</a>")),
            "{name} missing from {listing}"
        );
    }

    let ruok = command(admin, "ruok");
    assert_eq!(ruok["command"], "ruok");
    assert!(ruok["error"].is_null());

    for name in ["srvr", "server_stats"] {
        let srvr = command(admin, name);
        assert_eq!(srvr["command"], "server_stats");
        assert!(srvr["error"].is_null());
        assert_eq!(srvr["server_stats"]["server_state"], "standalone");
        // A fresh ZooKeeper says 5 (root twice, /zookeeper, /zookeeper/config, /zookeeper/quota).
        assert_eq!(srvr["node_count"], 8);
        assert!(srvr["version"]
            .as_str()
            .expect("version")
            .starts_with("3.8.0-"));
        assert_eq!(srvr["read_only"], false);
        assert!(
            srvr["server_stats"]["last_processed_zxid"]
                .as_i64()
                .expect("zxid")
                >= 3
        );
    }

    let stat = command(admin, "stat");
    assert_eq!(stat["command"], "stats");
    assert!(stat["connections"].is_array());

    let mntr = command(admin, "mntr");
    assert_eq!(mntr["command"], "monitor");
    assert_eq!(mntr["server_state"], "standalone");
    assert_eq!(mntr["znode_count"], 8);
    assert!(mntr["commit_count"].as_i64().expect("commit_count") >= 3);
    assert!(mntr["cnt_fsynctime"].as_i64().expect("cnt_fsynctime") >= 1);

    let conf = command(admin, "conf");
    assert_eq!(conf["command"], "configuration");
    assert_eq!(conf["client_port"], server.addr.port());
    assert_eq!(conf["tick_time"], 2000);

    let icfg = command(admin, "icfg");
    assert!(icfg["initial_configuration"]
        .as_str()
        .expect("text")
        .contains(&format!("admin.serverPort={port}")));

    let wchs = command(admin, "wchs");
    assert_eq!(wchs["command"], "watch_summary");
    assert_eq!(wchs["num_total_watches"], 0);

    let isro = command(admin, "isro");
    assert_eq!(isro["read_only"], false);

    // One open session: one session in one expiry bucket, keyed by a wall-clock time in the future
    // (`getSessionExpiryMap`). Its runtime lives until the checks are done.
    let keeper_rt = tokio::runtime::Runtime::new().expect("runtime");
    let (keeper, _keeper_events) = keeper_rt
        .block_on(Client::connect(
            &server.addr.to_string(),
            Duration::from_secs(10),
        ))
        .expect("connect");
    let dump = command(admin, "dump");
    let expiry = dump["expiry_time_to_session_ids"]
        .as_object()
        .expect("expiry map");
    let sessions: usize = expiry
        .values()
        .map(|ids| ids.as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(sessions, 1, "{dump}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    let at: u128 = expiry.keys().next().expect("a bucket").parse().expect("ms");
    assert!(at > now_ms, "expiry {at} not after now {now_ms}: {dump}");
    let listed: Vec<i64> = expiry
        .values()
        .flat_map(|ids| ids.as_array().cloned().unwrap_or_default())
        .filter_map(|id| id.as_i64())
        .collect();
    assert_eq!(listed, vec![keeper.session_id()], "{dump}");
    keeper_rt.block_on(keeper.close()).expect("close");

    let lsnp = command(admin, "lsnp");
    assert_eq!(lsnp["command"], "last_snapshot");
    assert!(lsnp["zxid"].is_string());

    let envi = command(admin, "envi");
    assert_eq!(envi["command"], "environment");
    assert!(envi["zookeeper.version"].is_string());

    for name in [
        "cons",
        "crst",
        "srst",
        "dirs",
        "dump",
        "wchc",
        "wchp",
        "gtmk",
        "hash",
        "voting_view",
        "zabstate",
    ] {
        let v = command(admin, name);
        assert!(v["error"].is_null(), "{name}: {v}");
    }

    let lead = command(admin, "lead");
    assert_eq!(lead["command"], "leader");
    assert_eq!(lead["error"], "server is not initialized");

    let obsr = command(admin, "obsr");
    assert_eq!(obsr["command"], "observers");
    assert_eq!(obsr["synced_observers"], 0);
    assert_eq!(obsr["observers"], serde_json::json!([]));

    let unknown = command(admin, "bogus");
    assert_eq!(
        unknown,
        serde_json::json!({"command": "bogus", "error": "Unknown command: bogus"})
    );
}

/// ZooKeeper's Prometheus provider, which turns the exporter on (as `metricsProvider.className` does in
/// ZooKeeper).
const PROMETHEUS: &str =
    "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// The Prometheus endpoint exposes the `mntr` gauges (`znode_count`) and the log thread's `fsynctime`
/// summary after a few writes, under ZooKeeper's metric names.
#[test]
fn prometheus_endpoint_exposes_zookeeper_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = OutpostStandalone::start(
        dir.path(),
        &format!(
            "{PROMETHEUS}\nmetricsProvider.httpPort={port}\nmetricsProvider.httpHost=127.0.0.1"
        ),
    );
    let metrics: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    wait_listening(metrics);
    write_nodes(server.addr, 4);

    let (status, _, body) = http_get(metrics, "/metrics");
    assert_eq!(status, 200, "{body}");
    let value = |name: &str| -> f64 {
        body.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from\n{body}"))
    };
    assert_eq!(value("znode_count"), 9.0);
    assert!(value("fsynctime_count") >= 1.0);
    assert!(value("commit_count") >= 4.0);
    assert!(value("updatelatency_count") >= 4.0);
    assert!(value("num_alive_connections") >= 0.0);
    assert!(value("uptime") > 0.0);
    assert!(body.contains("fsynctime{quantile=\"0.5\"}"), "{body}");
}

/// Without ZooKeeper's Prometheus provider in `metricsProvider.className`, no exporter listens, even
/// with `metricsProvider.httpPort` set: ZooKeeper's default provider serves nothing over HTTP either.
#[test]
fn no_exporter_without_the_prometheus_provider() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = OutpostStandalone::start(
        dir.path(),
        &format!("metricsProvider.httpPort={port}\nmetricsProvider.httpHost=127.0.0.1"),
    );
    // Serving clients (and a moment more) means the monitoring listeners have been started.
    write_nodes(server.addr, 1);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let metrics: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let probe = std::net::TcpStream::connect_timeout(&metrics, std::time::Duration::from_secs(1));
    assert!(probe.is_err(), "something listens on the metrics port");
}
