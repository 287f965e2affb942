//! The relay's JSON-lines sinks with a real `outpost server` and no NATS: `[sink] kind = "stdout"` prints
//! the events as JSON lines, and `kind = "file"` appends them and resumes after a restart without
//! duplicates or gaps.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::Acl;
use outpost_relay::Event;
use support::OutpostStandalone;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Creates `/<name>` and `/<name>/c`, sets it, deletes the child, then closes the session.
fn write_some(server: &OutpostStandalone, name: &str) {
    runtime().block_on(async {
        let (c, _events) = Client::connect(&server.addr.to_string(), Duration::from_secs(10))
            .await
            .expect("connect");
        let open = Acl::open_unsafe();
        let root = format!("/{name}");
        let child = format!("/{name}/c");
        c.create(&root, b"one", &open, CreateMode::Persistent)
            .await
            .expect("io")
            .expect("create");
        c.create(&child, b"", &open, CreateMode::Ephemeral)
            .await
            .expect("io")
            .expect("create");
        c.set_data(&root, b"two", -1)
            .await
            .expect("io")
            .expect("set");
        c.close().await.expect("close");
    });
}

/// JSON events in `text` (lines starting with `{`), in order.
fn events(text: &str) -> Vec<Event> {
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn wait_for(path: &Path, pred: impl Fn(&[Event]) -> bool) -> Vec<Event> {
    let start = Instant::now();
    loop {
        let evs = events(&std::fs::read_to_string(path).unwrap_or_default());
        if pred(&evs) {
            return evs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "events so far: {evs:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// With `[sink] kind = "stdout"` the server's stdout carries one JSON event per committed txn: session,
/// creates with data in base64, set_data, and the close_session listing the ephemeral it deleted.
#[test]
fn stdout_sink_prints_json_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = dir.path().join("relay.toml");
    std::fs::write(&toml, "[sink]\nkind = \"stdout\"\n").expect("relay.toml");
    let server =
        OutpostStandalone::start(dir.path(), &format!("relay.configFile={}", toml.display()));
    write_some(&server, "s");
    let log = dir.path().join("outpost.log");
    let evs = wait_for(&log, |e| e.iter().any(|e| e.kind == "close_session"));
    let kinds: Vec<&str> = evs.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "create_session",
            "create",
            "create",
            "set_data",
            "close_session"
        ]
    );
    assert_eq!(evs[1].data.as_deref(), Some(&b"one"[..]));
    assert_eq!(evs[2].mode.as_deref(), Some("ephemeral"));
    assert_eq!(evs[3].version, Some(1));
    assert_eq!(evs[4].paths.as_deref(), Some(&["/s/c".to_string()][..]));
    let raw = std::fs::read_to_string(&log).expect("log");
    assert!(
        raw.contains("\"data\":\"b25l\""),
        "data is base64 in the JSON line"
    );
    for w in evs.windows(2) {
        assert_eq!(w[1].zxid, w[0].zxid + 1);
    }
}

/// A file sink resumes after its last line across a server restart: every zxid once, in order.
#[test]
fn file_sink_resumes_without_duplicates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("events.jsonl");
    let toml = dir.path().join("relay.toml");
    std::fs::write(
        &toml,
        format!("[sink]\nkind = \"file\"\npath = \"{}\"\n", out.display()),
    )
    .expect("relay.toml");
    let line = format!("relay.configFile={}", toml.display());
    let server = OutpostStandalone::start(dir.path(), &line);
    write_some(&server, "f1");
    wait_for(&out, |e| e.len() == 5);
    let (port, config) = (server.addr.port(), server.config.clone());
    drop(server);
    let server = OutpostStandalone::start_with_config(&config, port);
    write_some(&server, "f2");
    let evs = wait_for(&out, |e| e.len() >= 10);
    std::thread::sleep(Duration::from_millis(300));
    let evs2 = events(&std::fs::read_to_string(&out).expect("file"));
    assert_eq!(evs, evs2, "nothing more than the 10 txns");
    let zxids: Vec<i64> = evs.iter().map(|e| e.zxid).collect();
    let first = zxids[0];
    assert_eq!(zxids, (first..first + 10).collect::<Vec<_>>());
}
