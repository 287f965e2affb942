//! `outpost quickstart` as a newcomer runs it: the server answers on loopback, and a znode written with
//! a client shows up as an event, on stdout as a JSON line by default, or in NATS with `--nats URL`.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::Acl;
use outpost_relay::Event;
use support::nats::{read_until_match, Nats};
use support::{free_port, outpost_bin, wait_for_srvr, ChildGuard};

/// Starts `outpost quickstart --port <free> <args>` with stdout in `dir/events.jsonl` and stderr in
/// `dir/quickstart.log`; returns it once the server answers, and its port.
fn start(dir: &Path, args: &[&str]) -> (ChildGuard, u16) {
    let port = free_port();
    let log = dir.join("quickstart.log");
    let child = Command::new(outpost_bin())
        .arg("quickstart")
        .args(["--port", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(
            std::fs::File::create(dir.join("events.jsonl")).expect("events file"),
        ))
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .spawn()
        .expect("spawn outpost quickstart");
    let guard = ChildGuard { child, log };
    wait_for_srvr(
        format!("127.0.0.1:{port}").parse().expect("addr"),
        Duration::from_secs(20),
        "outpost quickstart",
    );
    (guard, port)
}

/// Creates /hello = "world" and sets it to "again" through a session on `port`.
fn write_hello(port: u16) {
    let rt = support::ensemble::scenario::runtime();
    rt.block_on(async {
        let (c, _events) = Client::connect(&format!("127.0.0.1:{port}"), Duration::from_secs(10))
            .await
            .expect("connect");
        c.create(
            "/hello",
            b"world",
            &Acl::open_unsafe(),
            CreateMode::Persistent,
        )
        .await
        .expect("create io")
        .expect("create");
        c.set_data("/hello", b"again", -1)
            .await
            .expect("set io")
            .expect("set");
        c.close().await.expect("close");
    });
}

/// The quickstart's temp data dir, from its banner.
fn banner_dir(log: &Path) -> PathBuf {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let dir = text
        .split("(data in ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no data dir in the banner:\n{text}"));
    PathBuf::from(dir)
}

/// With no arguments the committed create and set_data of /hello come out on stdout as JSON events with
/// their data, and Ctrl-C stops the server and removes its temporary data directory.
#[test]
fn quickstart_prints_committed_changes_on_stdout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, port) = start(dir.path(), &[]);
    let data_dir = banner_dir(&server.log);
    assert!(data_dir.join("zoo.cfg").exists(), "{data_dir:?}");
    write_hello(port);
    let start = Instant::now();
    let events: Vec<Event> = loop {
        let text = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap_or_default();
        let events: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect();
        if events.iter().any(|e| e.kind == "set_data") {
            break events;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no set_data event on stdout:\n{text}\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let hello: Vec<&Event> = events
        .iter()
        .filter(|e| e.path.as_deref() == Some("/hello"))
        .collect();
    assert_eq!(hello.len(), 2, "{events:?}");
    assert_eq!(hello[0].kind, "create");
    assert_eq!(hello[0].data.as_deref(), Some(&b"world"[..]));
    assert_eq!(hello[1].kind, "set_data");
    assert_eq!(hello[1].data.as_deref(), Some(&b"again"[..]));
    assert!(hello[0].zxid < hello[1].zxid);
    // Ctrl-C (SIGINT): the server stops and the temporary data directory goes.
    let status = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let start = Instant::now();
    while server.child.try_wait().expect("wait").is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "quickstart ignored Ctrl-C:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!data_dir.exists(), "{data_dir:?} left behind");
}

/// With `--nats URL` the same change lands in the JetStream stream OUTPOST on `outpost.log`.
#[test]
fn quickstart_publishes_to_nats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(dir.path());
    let data = dir.path().join("data");
    let (_server, port) = start(
        dir.path(),
        &[
            "--nats",
            &nats.url(),
            "--data-dir",
            data.to_str().expect("utf-8 path"),
        ],
    );
    write_hello(port);
    let rt = support::ensemble::scenario::runtime();
    let messages = rt.block_on(read_until_match(
        &nats,
        |m| m.kind == "log" && m.event.kind == "set_data",
        Duration::from_secs(30),
    ));
    assert!(messages.iter().any(|m| m.kind == "log"
        && m.event.kind == "create"
        && m.event.path.as_deref() == Some("/hello")));
}
