//! `outpost quickstart` as a newcomer runs it: three voters ("DC1") and an observer ("DC2") on loopback
//! reporting the right modes, the example session's events on stdout in zxid order, a write through
//! DC1 coming out of DC2's relay (JSON lines on stdout, or a real nats-server with `--nats`), and
//! Ctrl-C, SIGTERM or kill -9 of the quickstart stopping all four servers.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::Acl;
use outpost_relay::Event;
use support::ensemble::srvr_mode;
use support::nats::{read_stream_until, Nats};
use support::{child_pids, outpost_bin, send_signal, wait_all_exited, ChildGuard};

/// How long the quickstart may take to elect, run its example session and say what to try.
const READY: Duration = Duration::from_secs(120);
/// How long it may take to stop after a signal (the members get 20 s, then are killed).
const STOP: Duration = Duration::from_secs(40);

/// A running `outpost quickstart`, its stdout in `events` and its stderr in the guard's log.
struct Quickstart {
    guard: ChildGuard,
    events: PathBuf,
}

impl Quickstart {
    /// Starts `outpost quickstart <args>` with output in `dir` and waits until it has run its example
    /// session and prints what to try.
    fn start(dir: &Path, args: &[&str]) -> Quickstart {
        let log = dir.join("quickstart.log");
        let events = dir.join("events.jsonl");
        let child = Command::new(outpost_bin())
            .arg("quickstart")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(&events).expect("events file"),
            ))
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
            .spawn()
            .expect("spawn outpost quickstart");
        let mut q = Quickstart {
            guard: ChildGuard { child, log },
            events,
        };
        let start = Instant::now();
        while !q.stderr().contains("try it") {
            if let Some(status) = q.guard.child.try_wait().expect("try_wait") {
                panic!("quickstart exited with {status}:\n{}", q.stderr());
            }
            assert!(
                start.elapsed() < READY,
                "quickstart not ready within {READY:?}:\n{}",
                q.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        q
    }

    fn pid(&self) -> u32 {
        self.guard.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.guard.log).unwrap_or_default()
    }

    /// The banner's text after `label` up to the next whitespace.
    fn banner(&self, label: &str) -> String {
        let text = self.stderr();
        text.split(label)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {label:?} in the banner:\n{text}"))
            .to_string()
    }

    fn dc1(&self) -> String {
        self.banner("DC1 connect string: ")
    }

    fn dc2(&self) -> String {
        self.banner("DC2 connect string: ")
    }

    fn data_dir(&self) -> PathBuf {
        PathBuf::from(self.banner("data in "))
    }

    /// The JSON events on stdout so far (every line must be one).
    fn events(&self) -> Vec<Event> {
        std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line {l:?}: {e}")))
            .collect()
    }

    /// Waits for an event on stdout matching `want`.
    fn wait_event(&self, want: impl Fn(&Event) -> bool) -> Event {
        let start = Instant::now();
        loop {
            if let Some(e) = self.events().into_iter().find(|e| want(e)) {
                return e;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no such event on stdout; events: {:?}\nstderr:\n{}",
                self.events(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends `signal` and waits for the quickstart to exit; returns whether it exited successfully.
    fn stop_with(&mut self, signal: &str) -> bool {
        send_signal(self.pid(), signal);
        let start = Instant::now();
        loop {
            if let Some(status) = self.guard.child.try_wait().expect("try_wait") {
                return status.success();
            }
            assert!(
                start.elapsed() < STOP,
                "quickstart ignored SIG{signal}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The `Mode:` every address of `connect` reports to `srvr` (`none` when one does not answer).
fn modes(connect: &str) -> Vec<String> {
    connect
        .split(',')
        .map(|a| {
            let addr: SocketAddr = a.parse().expect("address");
            srvr_mode(addr.port()).unwrap_or_else(|| "none".into())
        })
        .collect()
}

/// `outpost status --config <cfg>`'s `Mode:` line.
fn status_mode(cfg: &Path) -> String {
    let out = Command::new(outpost_bin())
        .arg("status")
        .arg("--config")
        .arg(cfg)
        .output()
        .expect("outpost status");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("Mode: "))
        .unwrap_or("")
        .to_string()
}

/// DC1 has one leader and two followers and DC2 one observer, by `srvr` and by `outpost status`.
fn assert_shape(q: &Quickstart) {
    let mut dc1 = modes(&q.dc1());
    dc1.sort();
    assert_eq!(dc1, ["follower", "follower", "leader"], "{}", q.stderr());
    assert_eq!(modes(&q.dc2()), ["observer"], "{}", q.stderr());
    let data = q.data_dir();
    assert_eq!(status_mode(&data.join("dc2-4/zoo.cfg")), "Mode: observer");
    let mut voters: Vec<String> = (1..=3)
        .map(|i| status_mode(&data.join(format!("dc1-{i}/zoo.cfg"))))
        .collect();
    voters.sort();
    assert_eq!(voters, ["Mode: follower", "Mode: follower", "Mode: leader"]);
}

/// The example session's events on stdout: its create_session, create, set_data, delete and
/// close_session of /quickstart, one session, in that (zxid) order; and the whole stdout in zxid order.
fn assert_example_events(q: &Quickstart) {
    let close = q.wait_event(|e| e.kind == "close_session");
    let events = q.events();
    let zxids: Vec<i64> = events.iter().map(|e| e.zxid).collect();
    assert!(
        zxids.windows(2).all(|w| w[0] < w[1]),
        "stdout is not in zxid order: {zxids:x?}"
    );
    let session: Vec<(&str, Option<&str>)> = events
        .iter()
        .filter(|e| e.session_id == close.session_id)
        .map(|e| (e.kind.as_str(), e.path.as_deref()))
        .collect();
    assert_eq!(
        session,
        [
            ("create_session", None),
            ("create", Some("/quickstart")),
            ("set_data", Some("/quickstart")),
            ("delete", Some("/quickstart")),
            ("close_session", None),
        ],
        "{events:?}"
    );
    let set = events
        .iter()
        .find(|e| e.kind == "set_data")
        .expect("set_data");
    assert_eq!(set.data.as_deref(), Some(&b"hello again"[..]));
    // The human form on stderr names the same events.
    assert!(
        q.stderr().contains("set_data /quickstart"),
        "{}",
        q.stderr()
    );
}

/// Creates `path` = `data` through a session on `connect` (DC1); returns the txn's zxid.
fn create_through(connect: &str, path: &str, data: &[u8]) -> i64 {
    let rt = support::ensemble::scenario::runtime();
    rt.block_on(async {
        let (c, _events) = Client::connect(connect, Duration::from_secs(10))
            .await
            .expect("connect");
        let (_, stat) = c
            .create2(path, data, &Acl::open_unsafe(), CreateMode::Persistent)
            .await
            .expect("create io")
            .expect("create");
        c.close().await.expect("close");
        stat.czxid
    })
}

/// True when something listens on NATS's default port (the quickstart would relay there).
fn default_nats_listening() -> bool {
    std::net::TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], 4222)),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// With no arguments (and no NATS on 4222): three voters and an observer report their modes, the
/// example session's events and a write through DC1 come out on stdout as JSON lines from the DC2
/// relay, and Ctrl-C stops the four servers and removes the temporary data directory.
#[test]
fn quickstart_runs_dc1_and_a_relaying_dc2_observer() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The no-argument default, unless a NATS server on this machine would take the events.
    let args: &[&str] = if default_nats_listening() {
        &["--stdout"]
    } else {
        &[]
    };
    let mut q = Quickstart::start(dir.path(), args);
    let data = q.data_dir();
    assert!(data.join("dc1-1/zoo.cfg").exists(), "{data:?}");
    let servers = child_pids(q.pid());
    assert_eq!(servers.len(), 4, "{servers:?}");
    assert_shape(&q);
    assert_example_events(&q);
    let zxid = create_through(&q.dc1(), "/from-dc1", b"written in DC1");
    let event = q.wait_event(|e| e.path.as_deref() == Some("/from-dc1"));
    assert_eq!(event.kind, "create");
    assert_eq!(event.zxid, zxid);
    assert_eq!(event.data.as_deref(), Some(&b"written in DC1"[..]));
    assert!(q.stop_with("INT"), "{}", q.stderr());
    wait_all_exited(&servers, Duration::from_secs(5), "the quickstart's servers");
    assert!(!data.exists(), "{data:?} left behind");
}

/// With `--nats URL` against a real nats-server and `--data-dir`: the events land in the JetStream
/// stream QUICKSTART (and on stdout), a write through DC1 too, and SIGTERM stops everything but keeps
/// the data directory.
#[test]
fn quickstart_publishes_to_nats_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(dir.path());
    let data = dir.path().join("data");
    let mut q = Quickstart::start(
        dir.path(),
        &[
            "--nats",
            &nats.url(),
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "--port",
            "0",
        ],
    );
    let servers = child_pids(q.pid());
    assert_eq!(servers.len(), 4, "{servers:?}");
    assert_shape(&q);
    assert_example_events(&q);
    let zxid = create_through(&q.dc1(), "/from-dc1", b"to nats");
    let rt = support::ensemble::scenario::runtime();
    let messages = rt.block_on(read_stream_until(
        &nats,
        "QUICKSTART",
        |m| m.is_log() && m.event.zxid == zxid,
        Duration::from_secs(30),
    ));
    let last = messages.last().expect("a message");
    assert_eq!(last.subject, "quickstart.log");
    assert_eq!(last.event.path.as_deref(), Some("/from-dc1"));
    assert!(messages.iter().any(|m| m.is_log()
        && m.event.kind == "set_data"
        && m.event.path.as_deref() == Some("/quickstart")));
    q.wait_event(|e| e.zxid == zxid);
    assert!(q.stop_with("TERM"), "{}", q.stderr());
    wait_all_exited(&servers, Duration::from_secs(5), "the quickstart's servers");
    assert!(
        data.join("dc2-4/zoo.cfg").exists(),
        "--data-dir was not kept"
    );
}

/// kill -9 of the quickstart leaves no server behind: each watches a pipe on its stdin that the
/// kernel closes when the quickstart dies.
#[test]
fn quickstart_servers_die_with_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut q = Quickstart::start(dir.path(), &["--stdout", "--port", "0"]);
    let servers = child_pids(q.pid());
    assert_eq!(servers.len(), 4, "{servers:?}");
    let data = q.data_dir();
    q.guard.kill();
    wait_all_exited(
        &servers,
        Duration::from_secs(30),
        "servers of a killed quickstart",
    );
    // Nothing removes the temporary directory after a kill -9; do it here.
    let _ = std::fs::remove_dir_all(data);
}
