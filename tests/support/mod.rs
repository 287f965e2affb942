//! Shared helpers for the root package's integration tests: free loopback ports, child processes that are
//! killed on drop (an outpost server, a real Apache ZooKeeper 3.8 from the Debian package, a nats-server),
//! and four-letter-word queries; `proxy` injects network faults into TCP links, `ensemble` runs
//! Apache ZooKeeper ensembles and `http` queries the AdminServer and the Prometheus exporter.
//!
//! Every process listens on 127.0.0.1 only and every wait is bounded, so a hung server fails the test
//! instead of hanging CI.

#![allow(dead_code)]
pub mod history;
pub mod nats;

pub mod ensemble;
pub mod http;
pub mod proxy;
pub mod wan;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Ports [`free_port`] handed out in this test process: never handed out twice, and listeners on
/// port 0 (the fault proxies) can steer clear of them while their servers have not bound them yet.
static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A loopback port that was free a moment ago (bind to port 0, read it back, release it), and that
/// no earlier call in this process returned.
pub fn free_port() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local addr").port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// True when [`free_port`] handed `port` out in this process (a server may be about to bind it).
pub fn port_handed_out(port: u16) -> bool {
    HANDED_OUT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&port)
}

/// A free loopback port below the kernel's ephemeral range (`ip_local_port_range`), never handed out
/// twice in this process. [`free_port`] returns a port from the ephemeral range, which any outgoing
/// connection on the machine (a client, an election link, another test) may take before the server
/// that was meant to bind it starts; ensembles start several processes per member and run for
/// seconds, so they draw from below the range instead. Candidates are random (std's per-process
/// `RandomState`) so that parallel test processes rarely pick the same one, and must bind.
pub fn free_port_outside_ephemeral_range() -> u16 {
    use std::collections::BTreeSet;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (10_000u16, low.max(12_000));
    let state = std::collections::hash_map::RandomState::new();
    for attempt in 0u64..10_000 {
        let mut h = state.build_hasher();
        h.write_u64(attempt);
        let port = from + (h.finish() % u64::from(to - from)) as u16;
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if handed.contains(&port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        handed.insert(port);
        return port;
    }
    panic!("no free loopback port in {from}..{to}")
}

/// Sends a four-letter word and returns the whole reply (the server closes after answering).
pub fn four_letter(addr: SocketAddr, word: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(word.as_bytes())?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    Ok(out)
}

/// A two-worker tokio runtime, for tests whose async work must go on while the test thread waits.
pub fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The integer value of `mntr` line `key` (with its `zk_` prefix) on `addr`, if it answers with one.
pub fn mntr_value(addr: SocketAddr, key: &str) -> Option<i64> {
    let reply = four_letter(addr, "mntr").ok()?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('\t'))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until `srvr` answers on `addr`, or panics with `what` after `limit`.
pub fn wait_for_srvr(addr: SocketAddr, limit: Duration, what: &str) {
    let start = Instant::now();
    loop {
        if let Ok(reply) = four_letter(addr, "srvr") {
            if reply.contains("Mode:") {
                return;
            }
        }
        assert!(
            start.elapsed() < limit,
            "{what} did not answer srvr on {addr} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct ChildGuard {
    /// The process.
    pub child: Child,
    /// Where its stdout/stderr go, for failure messages.
    pub log: PathBuf,
}

impl ChildGuard {
    /// Kills the process now (kill -9), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines of the process's log, for assertion messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn_logged(mut cmd: Command, log: &Path) -> ChildGuard {
    let out = std::fs::File::create(log).expect("create log file");
    let err = out.try_clone().expect("clone log file");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    ChildGuard {
        child,
        log: log.to_path_buf(),
    }
}

/// The `outpost` binary built for this test run, or `$OUTPOST_BIN` when set (to test a copied
/// binary while other builds share the target directory).
pub fn outpost_bin() -> PathBuf {
    std::env::var_os("OUTPOST_BIN")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_outpost")))
}

/// A standalone outpost server on a free loopback port, with its data in `dir`.
pub struct OutpostStandalone {
    /// The process.
    pub process: ChildGuard,
    /// Its client address.
    pub addr: SocketAddr,
    /// The zoo.cfg it runs with.
    pub config: PathBuf,
}

impl OutpostStandalone {
    /// Writes a zoo.cfg (plus `extra` lines) into `dir` and starts `outpost server` on it.
    pub fn start(dir: &Path, extra: &str) -> OutpostStandalone {
        let port = free_port();
        let config = dir.join("zoo.cfg");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("create dataDir");
        std::fs::write(
            &config,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 4lw.commands.whitelist=*\nadmin.enableServer=false\nmetricsProvider.httpPort=0\n{extra}\n",
                data.display()
            ),
        )
        .expect("write zoo.cfg");
        OutpostStandalone::start_with_config(&config, port)
    }

    /// Starts `outpost server --config <config>`, which must listen on `port`.
    pub fn start_with_config(config: &Path, port: u16) -> OutpostStandalone {
        let dir = config.parent().expect("config dir");
        let mut cmd = Command::new(outpost_bin());
        cmd.arg("server").arg("--config").arg(config);
        cmd.env("RUST_LOG", "info");
        let process = spawn_logged(cmd, &dir.join("outpost.log"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let server = OutpostStandalone {
            process,
            addr,
            config: config.to_path_buf(),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while !four_letter(self.addr, "srvr").is_ok_and(|r| r.contains("Mode:")) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "outpost did not start on {}:\n{}",
                self.addr,
                self.process.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// True when Debian's Apache ZooKeeper 3.8 is installed (the jar and a java runtime).
pub fn zookeeper_installed() -> bool {
    Path::new("/usr/share/java/zookeeper.jar").exists() && Path::new("/usr/bin/java").exists()
}

/// A standalone Apache ZooKeeper 3.8 (Debian package) on a free loopback port, data in `dir`.
pub struct ZooKeeperStandalone {
    /// The java process.
    pub process: ChildGuard,
    /// Its client address.
    pub addr: SocketAddr,
}

impl ZooKeeperStandalone {
    /// Starts ZooKeeper with a minimal zoo.cfg plus `extra` lines. Panics with a clear message when the
    /// Debian package is missing: CI installs it, so a missing package is a setup bug, not a skip.
    pub fn start(dir: &Path, extra: &str) -> ZooKeeperStandalone {
        assert!(
            zookeeper_installed(),
            "Apache ZooKeeper 3.8 is not installed: apt-get install zookeeper (see .ci/run)"
        );
        let port = free_port();
        let data = dir.join("zkdata");
        std::fs::create_dir_all(&data).expect("create zk dataDir");
        let config = dir.join("zk.cfg");
        std::fs::write(
            &config,
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=*\n{extra}\n",
                data.display()
            ),
        )
        .expect("write zk.cfg");
        let mut cmd = Command::new("/usr/bin/java");
        cmd.arg("-cp")
            .arg("/etc/zookeeper/conf:/usr/share/java/zookeeper.jar")
            .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
            .arg("-Dzookeeper.extendedTypesEnabled=true")
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&config);
        let process = spawn_logged(cmd, &dir.join("zookeeper.log"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        wait_for_srvr(addr, Duration::from_secs(60), "Apache ZooKeeper");
        ZooKeeperStandalone { process, addr }
    }
}

/// Resident set size of a process in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The state letter and parent pid of `pid` from `/proc/<pid>/stat` (the fields after the command
/// name, which may itself hold spaces and parentheses).
fn proc_state(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// True while `pid` runs (exists and is not a zombie waiting to be reaped).
pub fn process_alive(pid: u32) -> bool {
    proc_state(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

/// The live processes whose parent is `pid`.
pub fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| proc_state(*p).is_some_and(|(s, ppid)| ppid == pid && s != 'Z'))
        .collect()
}

/// Waits until none of `pids` runs, or panics naming `what` after `limit`.
pub fn wait_all_exited(pids: &[u32], limit: Duration, what: &str) {
    let start = Instant::now();
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| process_alive(*p)).collect();
        if alive.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{what}: processes {alive:?} still run after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends signal `name` (`INT`, `TERM`, `KILL`, ...) to `pid` with kill(1).
pub fn send_signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}
