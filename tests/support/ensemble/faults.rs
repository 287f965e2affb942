//! Network faults between ensemble members: every member's zoo.cfg points at fault-injecting proxies
//! (`support::proxy`) for the other members' quorum and election ports, one proxy per directed pair
//! and port, while its own `server.N` line keeps its real ports (a member binds from its own line and
//! connects to the others at the addresses in its own file, as ZooKeeper's `QuorumPeer` does). Cutting
//! every proxy to and from one member isolates it from the others; clients still reach it directly.
//!
//! ZooKeeper's election handshake carries the initiator's own election address, and an acceptor with
//! the larger sid drops the connection and connects back to that address
//! (`QuorumCnxManager.handleConnection`), which would bypass the proxies. The election proxies therefore
//! rewrite the address in the handshake to the acceptor's proxy towards the initiator, as a NAT would.
//!
//! [`direct_peer_connections`] checks that no member bypasses the proxies. Also here: the leader log marks that show how a learner was synced (DIFF, SNAP or TRUNC).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use outpost_core::jute::DecodeError;
use outpost_core::proto::quorum::{ElectionHandshake, ElectionProtocol};

use super::super::proxy::{FaultProxy, HeaderRewrite, Rewrite};
use super::{start_member, EnsemblePlan, JavaServer};

/// Which of a member's server-to-server ports a proxy stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerPort {
    /// The quorum port (learner to leader).
    Quorum,
    /// The leader election port.
    Election,
}

/// One proxied direction: what `from` dials to reach `to`'s `port`.
struct Link {
    from: u64,
    to: u64,
    port: PeerPort,
    proxy: FaultProxy,
}

/// The proxies of a proxied ensemble (see the module doc), on a tokio runtime of their own.
pub struct Proxies {
    links: Vec<Link>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxies {
    /// The proxy `from` dials to reach `to`'s `port`.
    pub fn link(&self, from: u64, to: u64, port: PeerPort) -> &FaultProxy {
        &self
            .links
            .iter()
            .find(|l| l.from == from && l.to == to && l.port == port)
            .unwrap_or_else(|| panic!("no proxy from {from} to {to} ({port:?})"))
            .proxy
    }

    fn touching(&self, id: u64) -> impl Iterator<Item = &FaultProxy> {
        self.links
            .iter()
            .filter(move |l| l.from == id || l.to == id)
            .map(|l| &l.proxy)
    }

    /// Partitions member `id` from every other member, silently: its quorum and election links become
    /// black holes (connections stay open, no byte moves, new connections hang), as when a cable is
    /// pulled, so each side notices only by its own timeouts (`syncLimit`, `cnxTimeout`).
    pub fn isolate(&self, id: u64) {
        for p in self.touching(id) {
            p.hold();
        }
    }

    /// Ends the partition of `id`: the connections that were held are reset and their bytes dropped
    /// (TCP connections do not outlive a long partition), then links forward again.
    pub fn heal(&self, id: u64) {
        for p in self.touching(id) {
            p.cut();
        }
        for p in self.touching(id) {
            p.heal();
        }
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        // Inside their runtime, so connection tasks see the cut and reset their sockets.
        let links = std::mem::take(&mut self.links);
        drop(links);
        if let Some(runtime) = self.runtime.take() {
            runtime.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Rewrites an election handshake from `initiator`'s header so that it advertises `back` (the
/// acceptor's proxy towards the initiator); other bytes pass unchanged.
fn rewrite_handshake(buf: &[u8], back: &BTreeMap<u64, SocketAddr>) -> Rewrite {
    match ElectionHandshake::decode(buf) {
        Ok((header, used)) => {
            if header.protocol == ElectionProtocol::Legacy {
                return Rewrite::Keep;
            }
            let Some(addr) = u64::try_from(header.sid).ok().and_then(|s| back.get(&s)) else {
                return Rewrite::Keep;
            };
            let rewritten = ElectionHandshake {
                protocol: header.protocol,
                sid: header.sid,
                addresses: addr.to_string(),
            };
            Rewrite::Replace {
                consumed: used,
                with: rewritten.to_bytes(),
            }
        }
        Err(DecodeError::Incomplete { .. }) => Rewrite::NeedMore,
        // Not a handshake we understand: the server is the one to refuse it.
        Err(_) => Rewrite::Keep,
    }
}

/// Starts a proxy on a port no server of this process was promised: a proxy listening on a member's
/// planned port would keep that member from binding it.
fn start_proxy(
    runtime: &tokio::runtime::Runtime,
    upstream: SocketAddr,
    rewrite: Option<HeaderRewrite>,
) -> FaultProxy {
    // Rejected proxies stay bound until one fits, so the kernel does not hand their ports out again.
    let mut rejected = Vec::new();
    loop {
        let proxy = runtime
            .block_on(FaultProxy::start_rewriting(upstream, rewrite.clone()))
            .expect("start proxy");
        if !super::super::port_handed_out(proxy.addr().port()) {
            drop(rejected);
            return proxy;
        }
        rejected.push(proxy);
    }
}

impl EnsemblePlan {
    /// Writes every member's directory under `root` (with `extra` in each zoo.cfg) so that members
    /// reach each other only through proxies, starts the proxies, and returns the zoo.cfg paths in
    /// member order with the [`Proxies`]. Each member's `zoo.cfg.dynamic` has its own line with its
    /// real ports and, for every other member, a line whose quorum and election ports are proxies.
    pub fn write_all_proxied(
        &self,
        root: &Path,
        extra: &[(&str, &str)],
    ) -> (Vec<PathBuf>, Proxies) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ensemble-proxies")
            .enable_all()
            .build()
            .expect("proxy runtime");
        // For each acceptor `to`, the election proxy it dials to reach each initiator: filled once
        // every proxy is listening, read by the rewrites when connections arrive.
        let back: Arc<BTreeMap<u64, OnceLock<BTreeMap<u64, SocketAddr>>>> = Arc::new(
            self.members
                .iter()
                .map(|m| (m.id, OnceLock::new()))
                .collect(),
        );
        let mut links = Vec::new();
        for from in &self.members {
            for to in &self.members {
                if from.id == to.id {
                    continue;
                }
                for port in [PeerPort::Quorum, PeerPort::Election] {
                    let (upstream, rewrite): (u16, Option<HeaderRewrite>) = match port {
                        PeerPort::Quorum => (to.quorum, None),
                        PeerPort::Election => {
                            let back = back.clone();
                            let acceptor = to.id;
                            let rewrite: HeaderRewrite = Arc::new(move |buf: &[u8]| {
                                match back.get(&acceptor).and_then(OnceLock::get) {
                                    Some(map) => rewrite_handshake(buf, map),
                                    None => Rewrite::Keep,
                                }
                            });
                            (to.election, Some(rewrite))
                        }
                    };
                    let upstream = SocketAddr::from(([127, 0, 0, 1], upstream));
                    let proxy = start_proxy(&runtime, upstream, rewrite);
                    links.push(Link {
                        from: from.id,
                        to: to.id,
                        port,
                        proxy,
                    });
                }
            }
        }
        for m in &self.members {
            let map: BTreeMap<u64, SocketAddr> = links
                .iter()
                .filter(|l| l.from == m.id && l.port == PeerPort::Election)
                .map(|l| (l.to, l.proxy.addr()))
                .collect();
            if let Some(slot) = back.get(&m.id) {
                let _ = slot.set(map);
            }
        }
        let proxies = Proxies {
            links,
            runtime: Some(runtime),
        };
        let configs = self
            .members
            .iter()
            .map(|me| {
                let mut dynamic = String::new();
                for m in &self.members {
                    let mut line = m.clone();
                    if m.id != me.id {
                        line.quorum = proxies.link(me.id, m.id, PeerPort::Quorum).addr().port();
                        line.election = proxies.link(me.id, m.id, PeerPort::Election).addr().port();
                    }
                    dynamic.push_str(&line.server_line());
                    dynamic.push('\n');
                }
                self.write_member_dir_with(me.id, root, extra, &dynamic)
            })
            .collect();
        (configs, proxies)
    }
}

/// Runs `outpost conf check --config <cfg>` and returns its combined output on failure.
pub fn conf_check(cfg: &Path) -> Result<(), String> {
    let out = Command::new(super::super::outpost_bin())
        .args(["conf", "check", "--config"])
        .arg(cfg)
        .output()
        .map_err(|e| format!("run outpost conf check: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Starts every member of `plan` on its zoo.cfg (`configs` in member order), all before waiting.
pub fn start_configs(plan: &EnsemblePlan, configs: &[PathBuf]) -> Vec<JavaServer> {
    plan.members
        .iter()
        .zip(configs)
        .map(|(m, cfg)| start_member(cfg, m))
        .collect()
}

/// The server process of member `id`.
pub fn server(servers: &mut [JavaServer], id: u64) -> &mut JavaServer {
    servers
        .iter_mut()
        .find(|s| s.member.id == id)
        .unwrap_or_else(|| panic!("no process for member {id}"))
}

/// A position in a member's log, to look only at what it wrote afterwards.
#[derive(Debug, Clone, Copy)]
pub struct LogMark(usize);

/// Marks the end of `server`'s log now.
pub fn log_mark(server: &JavaServer) -> LogMark {
    LogMark(
        std::fs::metadata(server.log_path())
            .map(|m| m.len() as usize)
            .unwrap_or(0),
    )
}

/// The lines `server` logged since `mark` that say how the leader synced a learner (the leader's
/// `syncing learner ... : Diff {..} | Snap | Trunc {..}` lines, `LearnerHandler.syncFollower`'s choice).
pub fn sync_lines_since(server: &JavaServer, mark: LogMark) -> Vec<String> {
    let text = std::fs::read(server.log_path()).unwrap_or_default();
    let tail = text.get(mark.0..).unwrap_or_default();
    String::from_utf8_lossy(tail)
        .lines()
        .filter(|l| l.contains("syncing learner"))
        .map(str::to_string)
        .collect()
}

/// The sync mode a sync line names: `Diff`, `Snap` or `Trunc`.
pub fn sync_mode(line: &str) -> Option<&'static str> {
    let plan = line.rsplit("): ").next()?;
    ["Diff", "Snap", "Trunc"]
        .into_iter()
        .find(|mode| plan.starts_with(mode))
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> std::collections::BTreeSet<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Default::default();
    };
    fds.filter_map(|fd| {
        let target = std::fs::read_link(fd.ok()?.path()).ok()?;
        let text = target.to_str()?;
        text.strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()
    })
    .collect()
}

/// Established IPv4 TCP connections from `/proc/net/tcp`: (remote port, socket inode).
fn established_remote_ports() -> Vec<(u16, u64)> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if fields.get(3) != Some(&"01") {
                return None;
            }
            let remote_port = u16::from_str_radix(fields.get(2)?.rsplit(':').next()?, 16).ok()?;
            let inode = fields.get(9)?.parse().ok()?;
            Some((remote_port, inode))
        })
        .collect()
}

/// The connections a member process holds straight to another member's real quorum or election
/// port, as `(from, to)` pairs: with every peer address in zoo.cfg a proxy, any such connection went
/// around the proxies (an election connect-back to a handshake address the proxy failed to rewrite).
pub fn direct_peer_connections(plan: &EnsemblePlan, servers: &[JavaServer]) -> Vec<(u64, u64)> {
    let established = established_remote_ports();
    let mut found = Vec::new();
    for s in servers {
        let Some(pid) = s.pid() else { continue };
        let mine = socket_inodes(pid);
        for (remote, inode) in &established {
            if !mine.contains(inode) {
                continue;
            }
            if let Some(to) = plan
                .members
                .iter()
                .find(|m| m.id != s.member.id && (m.quorum == *remote || m.election == *remote))
            {
                found.push((s.member.id, to.id));
            }
        }
    }
    found
}
