//! The relay against a real `nats-server` (Debian package, JetStream in a temp dir, a free loopback port,
//! one per test) and a real `outpost server` started with `relay.configFile` in its zoo.cfg: order and
//! completeness on `<prefix>.log`, per-node subjects with wildcards, resume after kill -9 of the server
//! and after a nats-server restart, the resync marker when the log was purged, and `outpost relay tail`.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::Acl;
use outpost_relay::StreamEvent;
use support::nats::{read_until_match, Nats};
use support::{four_letter, free_port, mntr_value, OutpostStandalone};

/// Writes a relay.toml for `nats` into `dir` (JSON events unless `extra`, lines of the `[events]` table,
/// sets an encoding) and returns the zoo.cfg line that names it.
fn relay_toml(dir: &Path, nats: &Nats, extra: &str) -> String {
    let extra = if extra.contains("encoding") {
        extra.to_string()
    } else {
        format!("encoding = \"json\"\n{extra}")
    };
    let path = dir.join("relay.toml");
    std::fs::write(
        &path,
        format!(
            "[nats]\nservers = [\"{}\"]\nstream = \"OUTPOST\"\nsubject_prefix = \"outpost\"\n\
             [events]\ninclude_data = true\ncompress_over_bytes = 512\n{extra}\n\
             [filter]\nexclude = [\"/zookeeper\"]\n[sink]\nkind = \"nats\"\n",
            nats.url()
        ),
    )
    .expect("write relay.toml");
    format!("relay.configFile={}", path.display())
}

/// The server's last zxid, from `srvr`.
fn server_zxid(server: &OutpostStandalone) -> i64 {
    let reply = four_letter(server.addr, "srvr").expect("srvr");
    let line = reply
        .lines()
        .find(|l| l.starts_with("Zxid:"))
        .expect("Zxid line");
    i64::from_str_radix(
        line.trim_start_matches("Zxid:")
            .trim()
            .trim_start_matches("0x"),
        16,
    )
    .expect("hex zxid")
}

async fn connect(server: &OutpostStandalone) -> Client {
    let (client, _events) = Client::connect(&server.addr.to_string(), Duration::from_secs(10))
        .await
        .expect("connect");
    client
}

/// What `start` returns: the temp dir, the nats-server, the outpost server and a runtime.
type Setup = (
    tempfile::TempDir,
    Nats,
    OutpostStandalone,
    tokio::runtime::Runtime,
);

/// A temp dir with a nats-server and an outpost server whose relay publishes to it (`extra` goes into
/// the relay.toml's `[events]` table, see `relay_toml`), plus a runtime. Bound as
/// `let (dir, nats, server, rt)`, they drop in reverse: runtime, server, nats-server, then the dir.
fn start(extra: &str) -> Setup {
    start_with_cfg(extra, "")
}

/// As `start`, with `cfg` (zoo.cfg lines) after the relay line when not empty.
fn start_with_cfg(extra: &str, cfg: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(dir.path());
    let line = relay_toml(dir.path(), &nats, extra);
    let cfg = if cfg.is_empty() {
        line
    } else {
        format!("{line}\n{cfg}")
    };
    let server = OutpostStandalone::start(dir.path(), &cfg);
    let rt = support::multi_thread_runtime();
    (dir, nats, server, rt)
}

/// Creates the persistent, open znode `path` with no data.
async fn create_root(client: &Client, path: &str) {
    client
        .create(path, b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .expect("io")
        .expect("create");
}

/// Closes `client`, then reads the stream until the server's last zxid; returns it and the messages.
async fn close_and_read(
    client: &Client,
    server: &OutpostStandalone,
    nats: &Nats,
    limit: Duration,
) -> (i64, Vec<StreamEvent>) {
    client.close().await.expect("close");
    let last = server_zxid(server);
    let messages = read_until(nats, last, limit).await;
    (last, messages)
}

/// `count` writes with up to 32 in flight: creates of `/<dir>/n<i>` (every third with 1 KiB of data, so
/// lz4 kicks in), each followed by a set_data. Returns how many succeeded (all, unless the server died).
async fn load(client: &Client, dir: &str, from: usize, count: usize) -> usize {
    let mut set = tokio::task::JoinSet::new();
    let mut ok = 0;
    for i in from..from + count {
        if set.len() >= 32 {
            if let Some(Ok(true)) = set.join_next().await {
                ok += 1;
            }
        }
        let c = client.clone();
        let path = format!("/{dir}/n{i}");
        set.spawn(async move {
            let data = if i % 3 == 0 {
                vec![b'x'; 1024]
            } else {
                format!("v{i}").into_bytes()
            };
            let created = matches!(
                c.create(&path, &data, &Acl::open_unsafe(), CreateMode::Persistent)
                    .await,
                Ok(Ok(_))
            );
            created && matches!(c.set_data(&path, b"updated", -1).await, Ok(Ok(_)))
        });
    }
    while let Some(r) = set.join_next().await {
        if let Ok(true) = r {
            ok += 1;
        }
    }
    ok
}

/// Reads the stream from the start until a log event at `zxid` or later arrived (or `limit` passed).
async fn read_until(nats: &Nats, zxid: i64, limit: Duration) -> Vec<StreamEvent> {
    read_until_match(nats, |m| m.kind == "log" && m.event.zxid >= zxid, limit).await
}

/// Asserts the log events are every zxid from `first` to `last` exactly once, in order.
fn assert_complete(messages: &[StreamEvent], first: i64, last: i64) {
    let zxids: Vec<i64> = messages
        .iter()
        .filter(|m| m.kind == "log")
        .map(|m| m.event.zxid)
        .collect();
    let expected: Vec<i64> = (first..=last).collect();
    if zxids != expected {
        let mut seen = BTreeSet::new();
        let dups: Vec<i64> = zxids.iter().copied().filter(|z| !seen.insert(*z)).collect();
        let missing: Vec<i64> = expected
            .iter()
            .copied()
            .filter(|z| !seen.contains(z))
            .collect();
        panic!(
            "log not complete and ordered: {} events, first {:?}, last {:?}, duplicates {:?}, missing {:?}",
            zxids.len(),
            zxids.first(),
            zxids.last(),
            &dups[..dups.len().min(10)],
            &missing[..missing.len().min(10)]
        );
    }
    // Chained headers: every message id is unique.
    let ids: BTreeSet<&str> = messages
        .iter()
        .filter_map(|m| m.msg_id.as_deref())
        .collect();
    assert_eq!(ids.len(), messages.len(), "duplicate Nats-Msg-Id");
}

/// 1000 writes through a real outpost server: a JetStream reader of `outpost.log` sees every zxid
/// once, in zxid order, with the documented JSON fields, lz4-compressed payloads above the limit, and one
/// per-node message per changed znode.
#[test]
fn log_is_complete_and_ordered() {
    let (_dir, nats, server, rt) = start("");
    rt.block_on(async {
        let client = connect(&server).await;
        create_root(&client, "/load").await;
        assert_eq!(load(&client, "load", 0, 500).await, 500);
        let (last, messages) =
            close_and_read(&client, &server, &nats, Duration::from_secs(60)).await;
        assert_complete(&messages, 1, last);
        let logs: Vec<&StreamEvent> = messages.iter().filter(|m| m.kind == "log").collect();
        assert_eq!(logs[0].event.kind, "create_session");
        assert_eq!(logs.last().expect("last").event.kind, "close_session");
        assert!(logs
            .iter()
            .all(|m| m.event.v == 1 && m.subject == "outpost.log"));
        let creates = logs.iter().filter(|m| m.event.kind == "create").count();
        let sets = logs.iter().filter(|m| m.event.kind == "set_data").count();
        assert_eq!((creates, sets), (501, 500));
        assert!(
            messages.iter().any(|m| m.compressed),
            "1 KiB creates are lz4-compressed"
        );
        let big = logs
            .iter()
            .find(|m| m.event.path.as_deref() == Some("/load/n0"))
            .expect("n0");
        assert_eq!(big.event.data.as_deref(), Some(&[b'x'; 1024][..]));
        let nodes: Vec<&StreamEvent> = messages.iter().filter(|m| m.kind == "node").collect();
        assert_eq!(
            nodes.len(),
            1001,
            "one per-node message per create and set_data"
        );
        assert!(nodes
            .iter()
            .any(|m| m.subject == "outpost.node.load.n7" && m.event.kind == "set_data"));
    });
    drop(server);
}

/// Per-node subjects: a core NATS subscriber of `outpost.node.app.config.>` gets exactly the changes
/// under /app/config (escaped names included, ephemerals deleted by close_session too), and `outpost
/// relay tail --path /app/config` prints them for humans.
#[test]
fn node_subjects_follow_subtrees() {
    let (_dir, nats, server, rt) = start("");
    rt.block_on(async {
        let nc = outpost_relay::async_nats::connect(nats.url())
            .await
            .expect("nats");
        let mut sub = nc
            .subscribe("outpost.node.app.config.>")
            .await
            .expect("subscribe");
        nc.flush().await.expect("flush");
        let client = connect(&server).await;
        let open = Acl::open_unsafe();
        for p in ["/app", "/app/config", "/app/other"] {
            client
                .create(p, b"", &open, CreateMode::Persistent)
                .await
                .expect("io")
                .expect("create");
        }
        client
            .create(
                "/app/config/db.url",
                b"pg://a",
                &open,
                CreateMode::Persistent,
            )
            .await
            .expect("io")
            .expect("create");
        client
            .set_data("/app/config/db.url", b"pg://b", -1)
            .await
            .expect("io")
            .expect("set");
        client
            .create("/app/other/x", b"", &open, CreateMode::Persistent)
            .await
            .expect("io")
            .expect("create");
        client
            .create("/app/config/spa ce", b"", &open, CreateMode::Ephemeral)
            .await
            .expect("io")
            .expect("eph");
        client.close().await.expect("close");
        let mut got = Vec::new();
        while got.len() < 4 {
            let msg = tokio::time::timeout(Duration::from_secs(20), futures_next(&mut sub))
                .await
                .unwrap_or_else(|_| panic!("only {got:?}"))
                .expect("subscription open");
            let ev = outpost_relay::event::decode(&msg.payload, Some("application/json"), None)
                .expect("event");
            got.push((
                msg.subject.to_string(),
                ev.kind,
                ev.path.unwrap_or_default(),
            ));
        }
        assert_eq!(
            got,
            [
                (
                    "outpost.node.app.config.db%2Eurl".to_string(),
                    "create".to_string(),
                    "/app/config/db.url".to_string()
                ),
                (
                    "outpost.node.app.config.db%2Eurl".into(),
                    "set_data".into(),
                    "/app/config/db.url".into()
                ),
                (
                    "outpost.node.app.config.spa%20ce".into(),
                    "create".into(),
                    "/app/config/spa ce".into()
                ),
                (
                    "outpost.node.app.config.spa%20ce".into(),
                    "delete".into(),
                    "/app/config/spa ce".into()
                ),
            ]
        );
        let extra = tokio::time::timeout(Duration::from_millis(500), futures_next(&mut sub)).await;
        assert!(extra.is_err(), "nothing else under /app/config: {extra:?}");
    });
    let text = tail(&nats, &["--path", "/app/config"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 5, "tail printed: {text}");
    assert!(lines[0].contains("create /app/config"), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("set_data /app/config/db.url v1")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("close_session") && l.contains("spa ce")),
        "{text}"
    );
    assert!(!text.contains("/app/other"), "{text}");
    let set_line = lines
        .iter()
        .find(|l| l.contains("set_data /app/config/db.url"))
        .expect("set_data line");
    let from = set_line.split(' ').next().expect("zxid");
    let later = tail(&nats, &["--path", "/app/config", "--from", from]);
    assert_eq!(later.lines().next(), Some(*set_line), "{later}");
    assert!(!later.contains("create /app/config/db.url"), "{later}");
}

/// Runs `outpost relay tail` on the stream for two seconds and returns what it printed.
fn tail(nats: &Nats, args: &[&str]) -> String {
    let child = Command::new(support::outpost_bin())
        .args([
            "relay",
            "tail",
            "--nats",
            &nats.url(),
            "--stream",
            "OUTPOST",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tail");
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let output = child.wait_with_output().expect("tail output");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn futures_next(
    sub: &mut outpost_relay::async_nats::Subscriber,
) -> Option<outpost_relay::async_nats::Message> {
    use outpost_relay::futures::StreamExt;
    sub.next().await
}

/// kill -9 of the outpost server in the middle of a load, then a restart: the stream ends complete and
/// duplicate-free (the relay resumes from the stream's last log message, reading the txn log).
#[test]
fn resume_after_kill_9_of_the_server() {
    let (dir, nats, mut server, rt) = start("queue_capacity = 16");
    rt.block_on(async {
        let client = connect(&server).await;
        create_root(&client, "/k").await;
        let writer = {
            let client = client.clone();
            tokio::spawn(async move { load(&client, "k", 0, 3000).await })
        };
        // Let part of the load commit, then crash the server under it.
        let start = Instant::now();
        while server_zxid(&server) < 1500 {
            assert!(start.elapsed() < Duration::from_secs(60), "load too slow");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.process.kill();
        let done = writer.await.expect("writer");
        assert!(done < 3000, "the server died under the load");
    });
    let first_life = std::fs::read_to_string(dir.path().join("outpost.log")).expect("log");
    assert!(
        first_life.contains("reading the txn log"),
        "a 16-txn queue overflows under this load and the relay reads the log"
    );
    let port = server.addr.port();
    let config = server.config.clone();
    drop(server);
    let server = OutpostStandalone::start_with_config(&config, port);
    rt.block_on(async {
        let client = connect(&server).await;
        assert_eq!(load(&client, "k", 10_000, 100).await, 100);
        let second_life = std::fs::read_to_string(dir.path().join("outpost.log")).expect("log");
        let resumed = second_life
            .lines()
            .find(|l| l.contains("relay: resuming after zxid"))
            .expect("resume line");
        assert!(
            !resumed.ends_with("zxid 0x0"),
            "resumed mid-stream: {resumed}"
        );
        let (last, messages) =
            close_and_read(&client, &server, &nats, Duration::from_secs(90)).await;
        assert_complete(&messages, 1, last);
    });
}

/// A nats-server restart while the server keeps writing: the relay retries, re-reads the stream's end
/// and resumes; the stream ends complete and duplicate-free (with bincode events, which decode by their
/// Content-Type).
#[test]
fn resume_after_nats_restart() {
    let (_dir, mut nats, server, rt) = start("encoding = \"bincode\"");
    rt.block_on(async {
        let client = connect(&server).await;
        create_root(&client, "/r").await;
        assert_eq!(load(&client, "r", 0, 200).await, 200);
        let before = server_zxid(&server);
        read_until(&nats, before, Duration::from_secs(30)).await;
        nats.stop();
        // Writes go on while NATS is down: commits never wait for the relay.
        let t = Instant::now();
        assert_eq!(load(&client, "r", 200, 200).await, 200);
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "writes stalled while NATS was down"
        );
        nats.spawn();
        assert_eq!(load(&client, "r", 400, 200).await, 200);
        let (last, messages) =
            close_and_read(&client, &server, &nats, Duration::from_secs(90)).await;
        assert_complete(&messages, 1, last);
        let n5 = messages
            .iter()
            .find(|m| m.kind == "log" && m.event.path.as_deref() == Some("/r/n5"))
            .expect("n5");
        assert_eq!(n5.event.data.as_deref(), Some(&b"v5"[..]));
    });
}

/// When the txns after the stream's end were purged from the server's log, the relay publishes an
/// explicit resync: a resync_begin marker, the tree's znodes as resync_node events and resync_end, then
/// continues with the txns after the dump; never a silent gap.
#[test]
fn purged_log_publishes_a_resync() {
    let dir = tempfile::tempdir().expect("tempdir");
    // First life: no relay, small snapCount so the log rolls into several segments.
    let server = OutpostStandalone::start(dir.path(), "snapCount=50");
    let rt = support::multi_thread_runtime();
    rt.block_on(async {
        let client = connect(&server).await;
        create_root(&client, "/p").await;
        assert_eq!(load(&client, "p", 0, 300).await, 300);
        client.close().await.expect("close");
    });
    let port = server.addr.port();
    let config = server.config.clone();
    drop(server);
    // Remove every log segment older than the one the newest snapshot needs (what autopurge does).
    let v2 = dir.path().join("data").join("version-2");
    let zxid_of = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|h| i64::from_str_radix(h, 16).ok())
    };
    let names: Vec<String> = std::fs::read_dir(&v2)
        .expect("version-2")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let newest_snap = names
        .iter()
        .filter_map(|n| zxid_of(n, "snapshot."))
        .max()
        .expect("a snapshot");
    let mut logs: Vec<i64> = names.iter().filter_map(|n| zxid_of(n, "log.")).collect();
    logs.sort();
    let keep_from = logs
        .iter()
        .copied()
        .filter(|z| *z <= newest_snap + 1)
        .max()
        .unwrap_or(logs[0]);
    let mut removed = 0;
    for z in logs.iter().filter(|z| **z < keep_from) {
        std::fs::remove_file(v2.join(format!("log.{z:x}"))).expect("remove segment");
        removed += 1;
    }
    assert!(
        removed > 0,
        "snapCount=50 should have rolled the log: {names:?}"
    );
    // Second life with the relay and an empty stream: zxid 1 is gone from the log.
    let nats = Nats::start(dir.path());
    let relay = relay_toml(dir.path(), &nats, "");
    let mut cfg_text = std::fs::read_to_string(&config).expect("zoo.cfg");
    cfg_text.push_str(&format!("\n{relay}\n"));
    std::fs::write(&config, cfg_text).expect("zoo.cfg");
    let server = OutpostStandalone::start_with_config(&config, port);
    rt.block_on(async {
        // The resync comes first, at the zxid the server recovered; then a write after it.
        read_until_match(
            &nats,
            |m| m.event.kind == "resync_end",
            Duration::from_secs(60),
        )
        .await;
        let client = connect(&server).await;
        client
            .create(
                "/p/after",
                b"a",
                &Acl::open_unsafe(),
                CreateMode::Persistent,
            )
            .await
            .expect("io")
            .expect("create");
        let (last, messages) =
            close_and_read(&client, &server, &nats, Duration::from_secs(60)).await;
        let logs: Vec<&StreamEvent> = messages.iter().filter(|m| m.is_log()).collect();
        assert_eq!(logs[0].event.kind, "resync_begin", "{:?}", logs[0].event);
        assert!(logs[0]
            .event
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("purged") || r.contains("nothing")));
        let at = logs[0].event.zxid;
        let end = logs
            .iter()
            .position(|m| m.event.kind == "resync_end")
            .expect("resync_end");
        let dumped: BTreeSet<String> = logs[1..end]
            .iter()
            .map(|m| m.event.path.clone().expect("path"))
            .collect();
        assert!(logs[1..end]
            .iter()
            .all(|m| m.event.kind == "resync_node" && m.event.zxid == at));
        assert_eq!(logs[0].event.count, Some(dumped.len() as u64));
        assert!(
            dumped.contains("/p") && dumped.contains("/p/n0") && dumped.contains("/p/n299"),
            "{} nodes",
            dumped.len()
        );
        assert_eq!(dumped.len(), 301);
        let n5 = logs[1..end]
            .iter()
            .find(|m| m.event.path.as_deref() == Some("/p/n5"))
            .expect("n5");
        assert_eq!(
            (n5.event.data.as_deref(), n5.event.version),
            (Some(&b"updated"[..]), Some(1))
        );
        assert_complete(
            &messages[messages
                .iter()
                .position(|m| m.event.kind == "resync_end")
                .expect("end")
                + 1..],
            at + 1,
            last,
        );
    });
}

/// The path of an example binary built next to this test (`cargo test` builds examples first).
fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("examples").join(name);
    assert!(
        bin.exists(),
        "{} is not built: `cargo test --workspace` builds it (or cargo build --example {name})",
        bin.display()
    );
    bin
}

/// examples/relay_mirror.rs rebuilds a subtree from the stream (creates, set_data, a multi, an
/// ephemeral deleted by close_session) and finds it equal to the server's.
#[test]
fn mirror_example_matches_the_server() {
    let (_dir, nats, server, rt) = start("");
    rt.block_on(async {
        let client = connect(&server).await;
        let open = Acl::open_unsafe();
        for p in ["/m", "/m/a", "/m/b", "/elsewhere"] {
            client
                .create(p, p.as_bytes(), &open, CreateMode::Persistent)
                .await
                .expect("io")
                .expect("create");
        }
        client
            .set_data("/m/a", b"new", -1)
            .await
            .expect("io")
            .expect("set");
        let ops = vec![
            outpost_core::client::create_op("/m/c", Some(b"c"), &open, CreateMode::Persistent),
            outpost_core::client::create_op("/m/d", Some(b"d"), &open, CreateMode::Persistent),
        ];
        client.multi(ops).await.expect("io").expect("multi");
        client
            .delete("/m/b", -1)
            .await
            .expect("io")
            .expect("delete");
        let eph = connect(&server).await;
        eph.create("/m/eph", b"", &open, CreateMode::Ephemeral)
            .await
            .expect("io")
            .expect("ephemeral");
        eph.close().await.expect("close");
        close_and_read(&client, &server, &nats, Duration::from_secs(30)).await;
    });
    let out = Command::new(example_bin("relay_mirror"))
        .args([
            "--nats",
            &nats.url(),
            "--stream",
            "OUTPOST",
            "--path",
            "/m",
            "--once",
        ])
        .arg("--server")
        .arg(server.addr.to_string())
        .output()
        .expect("run relay_mirror");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "relay_mirror: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("4 znodes, matches the server"), "{text}");
}

/// Large txns keep the stream moving: a multi of 3000 creates (3001 messages in one txn, more than the
/// relay keeps in flight) arrives whole, and a set_data whose event exceeds NATS's max_payload even
/// compressed arrives without its data, marked `data_too_large`, instead of blocking the stream.
#[test]
fn large_txns_are_relayed() {
    let (_dir, nats, server, rt) = start("");
    rt.block_on(async {
        let client = connect(&server).await;
        let open = Acl::open_unsafe();
        create_root(&client, "/big").await;
        let ops = (0..3000)
            .map(|i| {
                outpost_core::client::create_op(
                    &format!("/big/n{i}"),
                    Some(b"x"),
                    &open,
                    CreateMode::Persistent,
                )
            })
            .collect();
        client.multi(ops).await.expect("io").expect("multi");
        // 900 KB that lz4 cannot shrink: base64 makes the JSON event larger than 1 MiB.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let noise: Vec<u8> = (0..900_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        client
            .set_data("/big", &noise, -1)
            .await
            .expect("io")
            .expect("set");
        let (last, messages) =
            close_and_read(&client, &server, &nats, Duration::from_secs(60)).await;
        assert_complete(&messages, 1, last);
        let multi = messages
            .iter()
            .find(|m| m.kind == "log" && m.event.kind == "multi")
            .expect("multi");
        assert_eq!(multi.event.ops.as_ref().map(Vec::len), Some(3000));
        let nodes = messages
            .iter()
            .filter(|m| m.kind == "node" && m.event.zxid == multi.event.zxid)
            .count();
        assert_eq!(nodes, 3000);
        let set = messages
            .iter()
            .find(|m| m.kind == "log" && m.event.kind == "set_data")
            .expect("set_data");
        assert_eq!(set.event.data, None);
        assert_eq!(set.event.data_len, Some(900_000));
        assert_eq!(set.event.reason.as_deref(), Some("data_too_large"));
    });
}

/// The body of `GET path` on 127.0.0.1:`port` (empty when nothing answers).
fn http_body(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut body = String::new();
    if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
        let _ = s.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
        let _ = s.read_to_string(&mut body);
    }
    body
}

/// The relay's metrics (lag, events, bytes, compression ratio) appear on the server's Prometheus
/// exporter (`metricsProvider.httpPort`), and its progress (last published zxid, lag in zxids and ms) in
/// `mntr`, the AdminServer's `monitor` and the exporter.
#[test]
fn relay_metrics_are_exported() {
    let port = free_port();
    let admin = free_port();
    let (_dir, nats, server, rt) = start_with_cfg(
        "",
        &format!(
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpPort={port}\nmetricsProvider.httpHost=127.0.0.1\n\
             admin.enableServer=true\nadmin.serverAddress=127.0.0.1\nadmin.serverPort={admin}"
        ),
    );
    rt.block_on(async {
        let client = connect(&server).await;
        create_root(&client, "/x").await;
        assert_eq!(load(&client, "x", 0, 50).await, 50);
        close_and_read(&client, &server, &nats, Duration::from_secs(30)).await;
    });
    // Once the relay has published the last txn (the close_session), mntr says it is caught up.
    let last = server_zxid(&server);
    let start = Instant::now();
    while mntr_value(server.addr, "zk_relay_last_zxid") != Some(last) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "mntr never showed zk_relay_last_zxid {last}:\n{}",
            four_letter(server.addr, "mntr").unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(mntr_value(server.addr, "zk_relay_lag_zxids"), Some(0));
    assert_eq!(mntr_value(server.addr, "zk_relay_lag_ms"), Some(0));
    let monitor = http_body(admin, "/commands/monitor");
    for key in [
        "\"relay_last_zxid\"",
        "\"relay_lag_zxids\"",
        "\"relay_lag_ms\"",
    ] {
        assert!(
            monitor.contains(key),
            "{key} missing from monitor:\n{monitor}"
        );
    }
    let start = Instant::now();
    let page = loop {
        let body = http_body(port, "/metrics");
        if body.contains("outpost_relay_events_total") || start.elapsed() > Duration::from_secs(10)
        {
            break body;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for metric in [
        "outpost_relay_events_total",
        "outpost_relay_messages_total",
        "outpost_relay_bytes_total",
        "outpost_relay_compression_ratio",
        "outpost_relay_lag_zxids",
        "outpost_relay_lag_ms",
        "relay_last_zxid",
    ] {
        assert!(page.contains(metric), "{metric} missing from:\n{page}");
    }
}
