//! The four servers of `outpost quickstart`: a "DC1" of three voters and a "DC2" observer that runs the
//! relay, each a child process of the same binary (`outpost server --config <member>/zoo.cfg`) with its
//! own directory, free loopback ports and a log file.
//!
//! Separate processes rather than tasks in one runtime, because a server process owns process-wide
//! state (the `metrics` recorder, the fsync summary `mntr` prints, the relay's metrics), so four
//! members in one process would mix their figures. Each child watches a pipe on its stdin
//! (`--exit-on-stdin-eof`) and shuts down when it closes: the quickstart closes it at Ctrl-C or SIGTERM,
//! and the kernel closes it when the quickstart dies any other way, even by SIGKILL. Children get their
//! own process group, so a Ctrl-C at the terminal reaches only the quickstart, which then stops them in
//! order and removes their data.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::bench::failover::srvr_mode;

/// One member's place in the ensemble: its id (`myid`), its loopback ports and its role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// `server.N`'s N.
    pub id: u64,
    /// Client port on 127.0.0.1.
    pub client: u16,
    /// Quorum port (learners connect to the leader here).
    pub quorum: u16,
    /// Leader election port.
    pub election: u16,
    /// A non-voting observer (DC2) rather than a voter (DC1).
    pub observer: bool,
}

impl Plan {
    /// `dc1-<id>` for voters, `dc2-<id>` for the observer: the member's directory name.
    pub fn name(&self) -> String {
        format!("{}-{}", if self.observer { "dc2" } else { "dc1" }, self.id)
    }

    /// The client address.
    pub fn client_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.client))
    }

    /// This member's `server.N` line (`QuorumPeer.QuorumServer` syntax, client address after `;`).
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

/// Candidate ports below the kernel's ephemeral range (`ip_local_port_range`), in an order random per
/// run: a port from the ephemeral range could be taken by any outgoing connection (the members' own
/// election links included) between choosing it and the member binding it.
fn candidate_ports() -> impl Iterator<Item = u16> {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (10_000u16, low.max(12_000));
    let state = std::collections::hash_map::RandomState::new();
    (0u64..20_000).map(move |attempt| {
        let mut h = state.build_hasher();
        h.write_u64(attempt);
        from + (h.finish() % u64::from(to - from)) as u16
    })
}

/// Plans three voters (ids 1..=3) and one observer (id 4) on distinct free loopback ports; DC1's first
/// voter gets `first_client` if it is free. The ports are held while choosing, so they are distinct.
pub fn plan(first_client: u16) -> anyhow::Result<Vec<Plan>> {
    let mut held: Vec<TcpListener> = Vec::new();
    let mut taken = BTreeSet::new();
    let mut take = |port: u16, held: &mut Vec<TcpListener>| -> bool {
        if port == 0 || taken.contains(&port) {
            return false;
        }
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => {
                taken.insert(port);
                held.push(l);
                true
            }
            Err(_) => false,
        }
    };
    let mut ports = Vec::with_capacity(12);
    if take(first_client, &mut held) {
        ports.push(first_client);
    }
    let mut candidates = candidate_ports();
    while ports.len() < 12 {
        let port = candidates
            .next()
            .ok_or_else(|| anyhow!("no free loopback ports for the quickstart ensemble"))?;
        if take(port, &mut held) {
            ports.push(port);
        }
    }
    Ok((0..4)
        .map(|i| Plan {
            id: i as u64 + 1,
            client: ports[i * 3],
            quorum: ports[i * 3 + 1],
            election: ports[i * 3 + 2],
            observer: i == 3,
        })
        .collect())
}

/// Writes `root/<name>/zoo.cfg` and `root/<name>/data/myid` for `member` of `plans`; the observer's
/// zoo.cfg names `relay_toml`. Returns the zoo.cfg path.
pub fn write_member(
    root: &Path,
    plans: &[Plan],
    member: &Plan,
    relay_toml: &Path,
) -> anyhow::Result<PathBuf> {
    let dir = root.join(member.name());
    let data = dir.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("create {}", data.display()))?;
    std::fs::write(data.join("myid"), format!("{}\n", member.id))
        .with_context(|| format!("write {}/myid", data.display()))?;
    // ZooKeeper's sample timing halved: elections and syncs take a second, not several.
    let mut text = format!(
        "tickTime=1000\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
         standaloneEnabled=false\nreconfigEnabled=false\n4lw.commands.whitelist=*\n\
         admin.enableServer=false\nmetricsProvider.httpPort=0\n",
        data.display()
    );
    for p in plans {
        text.push_str(&p.server_line());
        text.push('\n');
    }
    if member.observer {
        text.push_str(&format!(
            "peerType=observer\nrelay.configFile={}\n",
            relay_toml.display()
        ));
    }
    let cfg = dir.join("zoo.cfg");
    std::fs::write(&cfg, text).with_context(|| format!("write {}", cfg.display()))?;
    Ok(cfg)
}

/// A running member: the child process, the write end of its stdin lifeline, and its log file.
pub struct Running {
    /// Its place in the ensemble.
    pub plan: Plan,
    /// The `outpost server` process.
    pub child: Child,
    /// Closing this stops the member (it runs with `--exit-on-stdin-eof`).
    lifeline: Option<ChildStdin>,
    /// Its stderr (the server's log).
    pub log: PathBuf,
    /// zoo.cfg (for `outpost status --config`).
    pub config: PathBuf,
}

impl Running {
    /// The last lines of the member's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Starts `exe server --config <cfg> --exit-on-stdin-eof` for `plan`; with `pipe_stdout`, returns the
/// read end of its stdout (the stdout relay's JSON lines).
pub fn start(
    exe: &Path,
    plan: &Plan,
    config: &Path,
    pipe_stdout: bool,
) -> anyhow::Result<(Running, Option<ChildStdout>)> {
    let log = config.with_file_name("outpost.log");
    let err = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("server")
        .arg("--config")
        .arg(config)
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(if pipe_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::from(err))
        .process_group(0)
        // A last resort only: the lifeline pipe is how members normally stop.
        .kill_on_drop(true);
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "start {} server --config {}",
            exe.display(),
            config.display()
        )
    })?;
    let lifeline = child.stdin.take();
    let stdout = child.stdout.take();
    Ok((
        Running {
            plan: plan.clone(),
            child,
            lifeline,
            log,
            config: config.to_path_buf(),
        },
        stdout,
    ))
}

/// Waits until the voters report one leader and two followers and the observer reports `observer`
/// (each answers `srvr` only once it serves); returns the leader's id. Fails when a member exits or
/// after `limit`.
pub async fn wait_ready(members: &mut [Running], limit: Duration) -> anyhow::Result<u64> {
    let start = Instant::now();
    loop {
        for m in members.iter_mut() {
            if let Some(status) = m.child.try_wait()? {
                bail!(
                    "server {} ({}) exited with {status} while starting; its log:\n{}",
                    m.plan.id,
                    m.plan.name(),
                    m.log_tail(20)
                );
            }
        }
        let mut leader = None;
        let mut followers = 0;
        let mut observer_ready = false;
        for m in members.iter() {
            match srvr_mode(&m.plan.client_addr().to_string())
                .await
                .as_deref()
            {
                Some("leader") if !m.plan.observer => leader = Some(m.plan.id),
                Some("follower") if !m.plan.observer => followers += 1,
                Some("observer") if m.plan.observer => observer_ready = true,
                _ => {}
            }
        }
        if let (Some(id), 2, true) = (leader, followers, observer_ready) {
            return Ok(id);
        }
        if start.elapsed() > limit {
            let logs: Vec<String> = members
                .iter()
                .map(|m| {
                    format!(
                        "--- server {} ({}):\n{}",
                        m.plan.id,
                        m.plan.name(),
                        m.log_tail(10)
                    )
                })
                .collect();
            bail!(
                "the ensemble did not settle within {limit:?} (leader {leader:?}, {followers} followers, \
                 observer serving: {observer_ready}):\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stops every member: closes their lifelines (they shut down cleanly, the relay publishing what is
/// committed), waits up to `grace` for them, then kills what is left.
pub async fn stop_all(members: &mut [Running], grace: Duration) {
    for m in members.iter_mut() {
        m.lifeline = None;
    }
    let deadline = tokio::time::Instant::now() + grace;
    for m in members.iter_mut() {
        match tokio::time::timeout_at(deadline, m.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!(
                    "outpost quickstart: server {} did not stop within {grace:?}; killing it",
                    m.plan.id
                );
                let _ = m.child.kill().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan has three voters and one observer on twelve distinct ports, and the observer's server
    /// line says so.
    #[test]
    fn plan_has_three_voters_and_an_observer_on_distinct_ports() {
        let plans = plan(0).expect("plan");
        assert_eq!(plans.len(), 4);
        assert_eq!(plans.iter().filter(|p| p.observer).count(), 1);
        let ports: BTreeSet<u16> = plans
            .iter()
            .flat_map(|p| [p.client, p.quorum, p.election])
            .collect();
        assert_eq!(ports.len(), 12);
        assert!(plans[3].server_line().contains(":observer;127.0.0.1:"));
        assert_eq!(plans[0].name(), "dc1-1");
        assert_eq!(plans[3].name(), "dc2-4");
    }
}
