//! Real clients against the standalone server: `tests/compat/run.sh` drives Apache ZooKeeper's zkCli.sh,
//! the C client's cli_mt, and kazoo's recipes (Lock, Election, Counter, Queue, LockingQueue, DataWatch, transactions) plus
//! the sequential-ephemeral leader election recipe, and the same script is run against Apache
//! ZooKeeper 3.8 so its expectations are ZooKeeper's own.
//!
//! The clients are not optional: CI installs them (.ci/run), and a missing one fails the test.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{OutpostStandalone, ZooKeeperStandalone};

const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";
const CLI_MT: &str = "/usr/lib/zookeeper/bin/cli_mt";
const PYTHON: &str = "/usr/bin/python3";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/run.sh")
}

fn require_clients() {
    assert!(
        Path::new(ZKCLI).exists(),
        "{ZKCLI} is missing: apt-get install zookeeper (CI does it in .ci/run); this test does not skip"
    );
    assert!(
        Path::new(CLI_MT).exists(),
        "{CLI_MT} is missing: apt-get install zookeeper-bin (CI does it in .ci/run); this test does \
         not skip"
    );
    let kazoo = Command::new(PYTHON)
        .args(["-c", "import kazoo"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        kazoo,
        "kazoo is missing for {PYTHON}: apt-get install python3-kazoo (CI does it in .ci/run); \
         this test does not skip"
    );
}

/// Runs the script against `addr` (bounded by `limit`), returning its exit status and output.
fn run_compat(addr: SocketAddr, dir: &Path, limit: Duration) -> (Option<i32>, String) {
    let out_path = dir.join("compat.out");
    let out = std::fs::File::create(&out_path).expect("output file");
    let mut child = Command::new("bash")
        .arg(script())
        .arg(addr.to_string())
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out)
        .spawn()
        .expect("run tests/compat/run.sh");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (
        status,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
    )
}

fn assert_compat(what: &str, status: Option<i32>, output: &str) {
    assert_ne!(
        status,
        Some(2),
        "{what}: a client is missing (this test does not skip):\n{output}"
    );
    assert_eq!(
        status,
        Some(0),
        "{what}: tests/compat/run.sh failed or timed out:\n{output}"
    );
    for line in [
        "compat: zkCli.sh ok",
        "compat: zkCli.sh 3.5+ commands ok",
        "compat: zkCli.sh quotas ok",
        "compat: C client (cli_mt) ok",
        "compat: kazoo lock ok",
        "compat: kazoo election ok",
        "compat: kazoo counter ok",
        "compat: kazoo queue ok",
        "compat: kazoo leader election recipe ok",
        "compat: kazoo watches and transactions ok",
        "compat: ALL OK",
    ] {
        assert!(
            output.lines().any(|l| l == line),
            "{what}: missing {line:?}:\n{output}"
        );
    }
}

/// zkCli.sh (create/ls/get/set/delete/deleteall, `create -e -s /election/guid-n_`, stat, errors), the
/// C client (create, set, get, ephemeral and sequential creates, ls, NotEmpty, NoNode) and kazoo's recipes plus the sequential-ephemeral leader election (a SIGKILLed leader's session expires
/// and only the next candidate takes over; a leader that closes hands over at once) all work against
/// outpost.
#[test]
fn zkcli_and_kazoo_against_outpost() {
    require_clients();
    let dir = tempfile::tempdir().expect("tempdir");
    // tickTime=500: sessions may be as short as 1 s, so the killed leader expires quickly; TTL nodes
    // need the extended types (ZooKeeperStandalone turns them on too).
    let server = OutpostStandalone::start(dir.path(), "tickTime=500\nextendedTypesEnabled=true");
    let (status, output) = run_compat(server.addr, dir.path(), Duration::from_secs(90));
    if status != Some(0) {
        eprintln!("outpost log:\n{}", server.process.log_tail());
    }
    assert_compat("outpost", status, &output);
}

/// The same script passes against Apache ZooKeeper 3.8, so what it expects is ZooKeeper's behaviour.
#[test]
fn zkcli_and_kazoo_against_apache_zookeeper() {
    require_clients();
    let dir = tempfile::tempdir().expect("tempdir");
    let zk = ZooKeeperStandalone::start(dir.path(), "tickTime=500");
    let (status, output) = run_compat(zk.addr, dir.path(), Duration::from_secs(90));
    assert_compat("Apache ZooKeeper", status, &output);
}
