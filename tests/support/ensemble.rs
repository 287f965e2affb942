//! Apache ZooKeeper 3.8 ensembles (Debian package) for integration tests: a plan of members on free
//! loopback ports, each member's directory (`myid`, `zoo.cfg`, `zoo.cfg.dynamic`), Java servers that are
//! killed on drop and can be crashed (kill -9) and restarted, and `srvr` polls for a member's mode and
//! for the ensemble's leader.
//!
//! The files written are also valid outpost configuration (`outpost conf check` accepts them), so a plan
//! can later mix outpost members (`java: false`) with Java ones.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{four_letter, free_port_outside_ephemeral_range, zookeeper_installed, ChildGuard};

pub mod faults;
pub mod interop;
pub mod load;
pub mod scenario;

/// ZooKeeper's tick in this harness. Small so that elections, syncs and failure detection (a follower
/// gives up on a dead leader after `syncLimit` ticks, `Learner`'s socket read timeout) take seconds, not
/// tens of seconds; the limits below are in ticks and sized for a loaded two-core machine.
pub const TICK_MS: u64 = 200;
/// `initLimit` in ticks (10 s): a learner's whole initial sync, including a JVM that is still warming up.
pub const INIT_LIMIT_TICKS: u64 = 50;
/// `syncLimit` in ticks (3 s): how long a follower may fall behind before the leader drops it, and how
/// long a follower waits on a silent leader.
pub const SYNC_LIMIT_TICKS: u64 = 15;

/// One server of an ensemble: its id (`myid`), its loopback ports and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// `server.N`'s N, written to `myid`.
    pub id: u64,
    /// Client port.
    pub client: u16,
    /// Quorum port (learners connect to the leader here).
    pub quorum: u16,
    /// Leader election port.
    pub election: u16,
    /// A non-voting observer rather than a participant.
    pub observer: bool,
    /// Runs Apache ZooKeeper (true) or outpost (false).
    pub java: bool,
}

impl Member {
    /// The client address on loopback.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client))
    }

    /// This member's line of the dynamic config (`QuorumPeer.QuorumServer` syntax).
    pub fn server_line(&self) -> String {
        format!(
            "server.{}=127.0.0.1:{}:{}:{};127.0.0.1:{}",
            self.id,
            self.quorum,
            self.election,
            if self.observer {
                "observer"
            } else {
                "participant"
            },
            self.client
        )
    }
}

/// The members of one ensemble, ids 1..=n (voters first, then observers), each with three distinct free
/// loopback ports.
#[derive(Debug, Clone)]
pub struct EnsemblePlan {
    /// The members, in id order.
    pub members: Vec<Member>,
}

impl EnsemblePlan {
    /// A plan with `voters` participants and `observers` observers, all run by Java.
    pub fn new(voters: usize, observers: usize) -> EnsemblePlan {
        // Below the ephemeral range, distinct within this process: see free_port_outside_ephemeral_range.
        let port = free_port_outside_ephemeral_range;
        let members = (0..voters + observers)
            .map(|i| Member {
                id: i as u64 + 1,
                client: port(),
                quorum: port(),
                election: port(),
                observer: i >= voters,
                java: true,
            })
            .collect();
        EnsemblePlan { members }
    }

    /// The same plan with the members `ids` run by outpost instead of Java.
    pub fn with_outpost(mut self, ids: &[u64]) -> EnsemblePlan {
        for m in &mut self.members {
            if ids.contains(&m.id) {
                m.java = false;
            }
        }
        self
    }

    /// The member with `id`; panics if there is none (a test bug).
    pub fn member(&self, id: u64) -> &Member {
        self.members
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no member {id} in the plan"))
    }

    /// The dynamic config file's text: one `server.N=127.0.0.1:q:e:role;127.0.0.1:c` line per member.
    pub fn dynamic_config(&self) -> String {
        let mut out = String::new();
        for m in &self.members {
            out.push_str(&m.server_line());
            out.push('\n');
        }
        out
    }

    /// Every client address, comma separated, as a client connect string.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| m.client_addr().to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Writes member `id`'s directory `root/member<id>`: `data/myid`, `zoo.cfg` and `zoo.cfg.dynamic`.
    /// `extra` keys are added to zoo.cfg, replacing a default of the same key. Paths in zoo.cfg are
    /// absolute, since ZooKeeper resolves relative ones against the working directory. Returns the path
    /// of zoo.cfg.
    pub fn write_member_dir(&self, id: u64, root: &Path, extra: &[(&str, &str)]) -> PathBuf {
        self.write_member_dir_with(id, root, extra, &self.dynamic_config())
    }

    /// [`EnsemblePlan::write_member_dir`] with `dynamic` as the text of this member's
    /// `zoo.cfg.dynamic` (each member reads only its own files, so members may see different
    /// addresses for one another, e.g. proxies in `faults`).
    pub fn write_member_dir_with(
        &self,
        id: u64,
        root: &Path,
        extra: &[(&str, &str)],
        dynamic: &str,
    ) -> PathBuf {
        let member = self.member(id);
        let dir = root.join(format!("member{id}"));
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("create dataDir");
        let dir = dir.canonicalize().expect("canonical member dir");
        let data = dir.join("data");
        std::fs::write(data.join("myid"), format!("{id}\n")).expect("write myid");
        let dynamic_path = dir.join("zoo.cfg.dynamic");
        std::fs::write(&dynamic_path, dynamic).expect("write zoo.cfg.dynamic");

        let mut keys: Vec<(String, String)> = vec![
            ("tickTime".into(), TICK_MS.to_string()),
            ("initLimit".into(), INIT_LIMIT_TICKS.to_string()),
            ("syncLimit".into(), SYNC_LIMIT_TICKS.to_string()),
            ("dataDir".into(), data.display().to_string()),
            // An ensemble of one must not fall back to standalone, and membership is fixed: the
            // `server.N` lines are the whole truth (QuorumPeerConfig's standaloneEnabled/reconfigEnabled).
            ("standaloneEnabled".into(), "false".into()),
            ("reconfigEnabled".into(), "false".into()),
            ("4lw.commands.whitelist".into(), "*".into()),
            ("admin.enableServer".into(), "false".into()),
            // outpost serves Prometheus metrics on 7000 by default: several members share one host.
            ("metricsProvider.httpPort".into(), "0".into()),
            (
                "dynamicConfigFile".into(),
                dynamic_path.display().to_string(),
            ),
        ];
        if member.observer {
            // The servers list decides the role anyway; saying it too keeps both parsers quiet.
            keys.push(("peerType".into(), "observer".into()));
        }
        for (k, v) in extra {
            match keys.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = (*v).to_string(),
                None => keys.push(((*k).to_string(), (*v).to_string())),
            }
        }
        let mut text = String::new();
        for (k, v) in &keys {
            text.push_str(&format!("{k}={v}\n"));
        }
        let cfg = dir.join("zoo.cfg");
        std::fs::write(&cfg, text).expect("write zoo.cfg");
        cfg
    }

    /// Writes every member's directory under `root` (with `extra` in each zoo.cfg) and returns the zoo.cfg
    /// paths in member order.
    pub fn write_all(&self, root: &Path, extra: &[(&str, &str)]) -> Vec<PathBuf> {
        self.members
            .iter()
            .map(|m| self.write_member_dir(m.id, root, extra))
            .collect()
    }
}

/// An Apache ZooKeeper server process of an ensemble, killed (SIGKILL) on drop. Its console log is
/// `zookeeper.out` in the member directory (the directory of its zoo.cfg), appended across restarts.
pub struct JavaServer {
    /// The member it runs.
    pub member: Member,
    /// Its zoo.cfg.
    pub config: PathBuf,
    process: Option<ChildGuard>,
}

impl JavaServer {
    /// The console log's path (`zookeeper.out` for Java, `outpost.log` for outpost).
    pub fn log_path(&self) -> PathBuf {
        member_dir(&self.config).join(log_name(self.member.java))
    }

    /// The last lines of the log, for assertion messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Crashes the server now (SIGKILL: no shutdown hook, no flush), and reaps it.
    pub fn kill_9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.child.id())
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.process
            .as_mut()
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Kills the server if it runs, then starts it again on the same directory and ports.
    pub fn restart(&mut self) {
        self.kill_9();
        self.process = Some(spawn_member(&self.config, self.member.java));
    }
}

fn member_dir(cfg: &Path) -> PathBuf {
    cfg.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn log_name(java: bool) -> &'static str {
    if java {
        "zookeeper.out"
    } else {
        "outpost.log"
    }
}

fn spawn_member(cfg: &Path, java: bool) -> ChildGuard {
    if java {
        spawn_java(cfg)
    } else {
        spawn_outpost(cfg)
    }
}

/// `outpost server --config <cfg>`, its log appended to `outpost.log` in the member directory.
fn spawn_outpost(cfg: &Path) -> ChildGuard {
    let dir = member_dir(cfg);
    let log = dir.join(log_name(false));
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("open outpost.log");
    let err = out.try_clone().expect("clone log file");
    let mut cmd = Command::new(super::outpost_bin());
    cmd.arg("server")
        .arg("--config")
        .arg(cfg)
        .env("RUST_LOG", "info")
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    ChildGuard { child, log }
}

fn spawn_java(cfg: &Path) -> ChildGuard {
    let dir = member_dir(cfg);
    let log = dir.join("zookeeper.out");
    let out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("open zookeeper.out");
    let err = out.try_clone().expect("clone log file");
    // zookeeper.jar's manifest brings slf4j-api only; without a binding on the class path the server
    // logs nothing. Debian's zookeeper package pulls in log4j 1.2 and the slf4j binding for it.
    let mut classpath = String::from("/etc/zookeeper/conf:/usr/share/java/zookeeper.jar");
    for jar in [
        "/usr/share/java/slf4j-log4j12.jar",
        "/usr/share/java/log4j-1.2.jar",
    ] {
        if Path::new(jar).exists() {
            classpath.push(':');
            classpath.push_str(jar);
        }
    }
    let mut cmd = Command::new("/usr/bin/java");
    // A small heap, one GC thread and the C1 compiler only: four JVMs start faster on two cores.
    cmd.arg("-Xms32m")
        .arg("-Xmx256m")
        .arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg("-cp")
        .arg(&classpath)
        .arg(format!("-Dzookeeper.log.dir={}", dir.display()))
        // Debian's log4j.properties names no default appender; the console goes to zookeeper.out.
        .arg("-Dzookeeper.root.logger=INFO,CONSOLE")
        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        .arg(cfg)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    ChildGuard { child, log }
}

/// Starts Apache ZooKeeper on `cfg` for `member` and returns at once (JVMs start slowly: start every
/// member first, then wait with [`wait_mode`] or [`find_leader`]). Panics with a clear message when the
/// Debian package is missing: CI installs it, so that is a setup bug, not a skip.
pub fn start_java(cfg: &Path, member: &Member) -> JavaServer {
    assert!(
        zookeeper_installed(),
        "Apache ZooKeeper 3.8 is not installed: apt-get install zookeeper (see .ci/run)"
    );
    assert!(member.java, "member {} is not a Java member", member.id);
    JavaServer {
        member: member.clone(),
        config: cfg.to_path_buf(),
        process: Some(spawn_java(cfg)),
    }
}

/// Starts a member with whichever implementation its plan says (`member.java`): Apache ZooKeeper or
/// this build's `outpost` binary. Returns at once, like [`start_java`].
pub fn start_member(cfg: &Path, member: &Member) -> JavaServer {
    if member.java {
        return start_java(cfg, member);
    }
    JavaServer {
        member: member.clone(),
        config: cfg.to_path_buf(),
        process: Some(spawn_outpost(cfg)),
    }
}

/// Removes everything in the member's dataDir except `myid`: the server starts as a new, empty one.
pub fn wipe_data(cfg: &Path) {
    let data = cfg.parent().expect("member dir").join("data");
    for entry in std::fs::read_dir(&data).expect("read dataDir").flatten() {
        if entry.file_name() == "myid" {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
    }
}

/// The mode a server reports in `srvr` right now (`leader`, `follower`, `observer`, `standalone`), or
/// None when it does not answer or is not serving (during an election).
pub fn srvr_mode(client_port: u16) -> Option<String> {
    let reply = four_letter(SocketAddr::from(([127, 0, 0, 1], client_port)), "srvr").ok()?;
    reply
        .lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(|m| m.trim().to_string())
}

/// Polls `srvr` on `client_port` until the server reports a mode, for at most `timeout`.
pub fn wait_mode(client_port: u16, timeout: Duration) -> Option<String> {
    let start = Instant::now();
    loop {
        // A detached outpost observer serves reads while it looks for a leader ("read-only"): not
        // yet the mode a caller waits for.
        if let Some(mode) = srvr_mode(client_port).filter(|m| m != "read-only") {
            return Some(mode);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls every member's `srvr` until exactly one reports `leader` and every other member that answers
/// reports `follower` or `observer`; returns the leader's id, or None after `timeout`. Members that do
/// not answer (crashed, or still electing) are ignored, so a caller that needs a quorum checks the
/// followers itself; a caller that has just started every member wants [`find_leader_all_serving`].
pub fn find_leader(members: &[Member], timeout: Duration) -> Option<u64> {
    poll_leader(members, timeout, false)
}

/// Like [`find_leader`], but also waits until every member in `members` serves (`follower` or
/// `observer` beside the one `leader`). A leader reports `leader` once a quorum has synced, while
/// the slowest follower may still be syncing and closing client connections; a test that then
/// connects to that follower would fail on a loaded machine.
pub fn find_leader_all_serving(members: &[Member], timeout: Duration) -> Option<u64> {
    poll_leader(members, timeout, true)
}

fn poll_leader(members: &[Member], timeout: Duration, all_serving: bool) -> Option<u64> {
    let start = Instant::now();
    loop {
        let modes: Vec<(u64, Option<String>)> = members
            .iter()
            .map(|m| (m.id, srvr_mode(m.client)))
            .collect();
        let leaders: Vec<u64> = modes
            .iter()
            .filter(|(_, mode)| mode.as_deref() == Some("leader"))
            .map(|(id, _)| *id)
            .collect();
        let others_settled = modes.iter().all(|(_, mode)| match mode.as_deref() {
            Some("leader") | Some("follower") | Some("observer") => true,
            None | Some("read-only") => !all_serving,
            Some(_) => false,
        });
        if leaders.len() == 1 && others_settled {
            return Some(leaders[0]);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
