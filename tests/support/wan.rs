//! The cross-datacenter test bed for observers (issue #5): "DC1" of voters and "DC2" of observers on
//! loopback, with every link between the two datacenters through a [`FaultProxy`] (40 ms round trip by
//! default), so a test can delay, cut or hold the WAN without `tc netem`.
//!
//! outpost, like ZooKeeper, binds its own quorum and election ports from its own `server.N` line and
//! reaches every other server at the address its own config gives it. So each member gets its own
//! `zoo.cfg.dynamic`: lines of same-DC members are the real addresses, lines of far-DC members name a
//! proxy that forwards to that member's real port. Learner-to-leader (quorum) connections and election
//! connections in either direction therefore cross the proxies.
//!
//! One exception comes from the election transport itself: when the server with the smaller sid opens
//! an election channel, the larger sid closes it and dials back the address written in the initiator's
//! header, which is the initiator's real address (`QuorumCnxManager.handleConnection`, mirrored by
//! `shell::election_net`). Such a dialled-back channel does not cross a proxy. The quorum links always
//! do. [`WanBed::direct_cross_links`] lists connections between the DCs that bypass the proxies, read
//! from `/proc`, so a test can report (or assert on) them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use outpost_core::client::{Client, EventReceiver};

use super::ensemble::scenario::{logs, test_root, START};
use super::ensemble::{
    find_leader, find_leader_all_serving, start_member, wait_mode, EnsemblePlan, JavaServer, Member,
};
use super::proxy::FaultProxy;

/// The WAN's one-way latency by default: 20 ms each way, a 40 ms round trip.
pub const WAN_ONE_WAY: Duration = Duration::from_millis(20);

/// Which port of a member a proxy stands in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PortKind {
    /// The quorum port (learners connect to the leader there).
    Quorum,
    /// The leader election port.
    Election,
}

/// Every proxy of the WAN, on one tokio runtime of its own: the link between the two datacenters.
pub struct Wan {
    proxies: BTreeMap<(u64, PortKind), FaultProxy>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Wan {
    /// One proxy per member and port kind, forwarding to that member's real port; proxy ports never
    /// collide with `avoid` (the plan's ports, not yet bound when the proxies start).
    fn start(plan: &EnsemblePlan, avoid: &BTreeSet<u16>) -> Wan {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("wan-proxies")
            .enable_all()
            .build()
            .expect("WAN proxy runtime");
        let mut proxies = BTreeMap::new();
        for m in &plan.members {
            for (kind, port) in [
                (PortKind::Quorum, m.quorum),
                (PortKind::Election, m.election),
            ] {
                let upstream = SocketAddr::from(([127, 0, 0, 1], port));
                let proxy = loop {
                    let p = runtime
                        .block_on(FaultProxy::start(upstream))
                        .expect("start a WAN proxy");
                    if !avoid.contains(&p.addr().port()) {
                        break p;
                    }
                    // A port the plan handed to a member: drop it (inside the runtime) and try again.
                    runtime.block_on(async move { drop(p) });
                };
                proxy.set_latency(WAN_ONE_WAY, Duration::ZERO);
                proxies.insert((m.id, kind), proxy);
            }
        }
        Wan {
            proxies,
            runtime: Some(runtime),
        }
    }

    fn proxy(&self, id: u64, kind: PortKind) -> &FaultProxy {
        self.proxies
            .get(&(id, kind))
            .unwrap_or_else(|| panic!("no WAN proxy for member {id} {kind:?}"))
    }

    /// The address far-DC members use for member `id`'s `kind` port.
    pub fn addr(&self, id: u64, kind: PortKind) -> SocketAddr {
        self.proxy(id, kind).addr()
    }

    /// Sets the one-way latency (plus uniform jitter) of every WAN link, both directions.
    pub fn set_latency(&self, one_way: Duration, jitter: Duration) {
        self.proxies
            .values()
            .for_each(|p| p.set_latency(one_way, jitter));
    }

    /// Caps every WAN link at `bytes_per_sec` in each direction (`None`: no cap).
    pub fn set_bandwidth(&self, bytes_per_sec: Option<u64>) {
        self.proxies
            .values()
            .for_each(|p| p.set_bandwidth(bytes_per_sec));
    }

    /// Partitions the datacenters: every WAN connection is reset and new ones are refused.
    pub fn cut(&self) {
        self.proxies.values().for_each(FaultProxy::cut);
    }

    /// Stalls the WAN: connections stay open but carry nothing until [`Wan::heal`].
    pub fn hold(&self) {
        self.proxies.values().for_each(FaultProxy::hold);
    }

    /// Ends a cut or a hold.
    pub fn heal(&self) {
        self.proxies.values().for_each(FaultProxy::heal);
    }

    /// Connections open through the WAN now.
    pub fn connections(&self) -> usize {
        self.proxies.values().map(FaultProxy::connections).sum()
    }

    /// Bytes carried over the WAN so far, both directions.
    pub fn bytes_forwarded(&self) -> u64 {
        self.proxies.values().map(FaultProxy::bytes_forwarded).sum()
    }
}

impl Drop for Wan {
    fn drop(&mut self) {
        // Proxies first, inside their runtime, so connection tasks see the cut and reset their sockets.
        let proxies = std::mem::take(&mut self.proxies);
        if let Some(runtime) = self.runtime.as_ref() {
            runtime.block_on(async move {
                drop(proxies);
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// A running two-datacenter ensemble: DC1 holds the voters (ids `1..=voters`), DC2 the observers.
/// Processes are killed, then proxies stopped, then the directory removed, on drop.
pub struct WanBed {
    /// Every member's process, in id order.
    pub servers: Vec<JavaServer>,
    /// The WAN between the datacenters.
    pub wan: Wan,
    /// The ensemble (real ports).
    pub plan: EnsemblePlan,
    /// Ids of DC1 (voters).
    pub dc1: Vec<u64>,
    /// Ids of DC2 (observers).
    pub dc2: Vec<u64>,
    root: tempfile::TempDir,
}

impl WanBed {
    /// Starts `voters` outpost voters in DC1 and `observers` outpost observers in DC2, with `extra`
    /// keys in every zoo.cfg, and waits until DC1 has a leader and every observer serves.
    pub fn start(voters: usize, observers: usize, extra: &[(&str, &str)]) -> WanBed {
        let ids: Vec<u64> = (1..=(voters + observers) as u64).collect();
        let plan = EnsemblePlan::new(voters, observers).with_outpost(&ids);
        WanBed::start_plan(plan, extra)
    }

    /// Starts `plan` (voters form DC1, observers DC2) with the WAN between them, and waits until DC1
    /// has a leader, every DC1 member serves and every observer serves.
    pub fn start_plan(plan: EnsemblePlan, extra: &[(&str, &str)]) -> WanBed {
        let root = test_root();
        let avoid: BTreeSet<u16> = plan
            .members
            .iter()
            .flat_map(|m| [m.client, m.quorum, m.election])
            .collect();
        let wan = Wan::start(&plan, &avoid);
        let dc1: Vec<u64> = plan
            .members
            .iter()
            .filter(|m| !m.observer)
            .map(|m| m.id)
            .collect();
        let dc2: Vec<u64> = plan
            .members
            .iter()
            .filter(|m| m.observer)
            .map(|m| m.id)
            .collect();
        let servers = plan
            .members
            .iter()
            .map(|m| {
                let view = servers_seen_by(&plan, &wan, m);
                let cfg = plan.write_member_dir_with(m.id, root.path(), extra, &view);
                start_member(&cfg, m)
            })
            .collect();
        let bed = WanBed {
            servers,
            wan,
            plan,
            dc1,
            dc2,
            root,
        };
        // Every DC1 member, not only the leader: a follower still syncing closes client connections.
        let members: Vec<Member> = bed.dc1.iter().map(|id| bed.member(*id).clone()).collect();
        if find_leader_all_serving(&members, START).is_none() {
            panic!(
                "DC1 does not have a leader and serving followers within {START:?}\n{}",
                bed.logs()
            );
        }
        for id in &bed.dc2 {
            bed.wait_observing(*id, START);
        }
        bed
    }

    /// The bed's directory (member dirs `member<N>` with their logs).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Member `id` of the plan.
    pub fn member(&self, id: u64) -> &Member {
        self.plan.member(id)
    }

    /// Member `id`'s process.
    pub fn server_mut(&mut self, id: u64) -> &mut JavaServer {
        self.servers
            .iter_mut()
            .find(|s| s.member.id == id)
            .unwrap_or_else(|| panic!("no server {id}"))
    }

    /// Member `id`'s process.
    pub fn server(&self, id: u64) -> &JavaServer {
        self.servers
            .iter()
            .find(|s| s.member.id == id)
            .unwrap_or_else(|| panic!("no server {id}"))
    }

    /// The leader among DC1's members that answer, waiting up to `timeout`; panics with every log.
    pub fn leader(&self, timeout: Duration) -> u64 {
        let members: Vec<Member> = self.dc1.iter().map(|id| self.member(*id).clone()).collect();
        find_leader(&members, timeout).unwrap_or_else(|| {
            panic!(
                "DC1 has no single leader within {timeout:?}\n{}",
                self.logs()
            )
        })
    }

    /// Waits until observer `id` reports `Mode: observer` (it serves clients); panics with every log.
    pub fn wait_observing(&self, id: u64, timeout: Duration) {
        let mode = wait_mode(self.member(id).client, timeout);
        assert_eq!(
            mode.as_deref(),
            Some("observer"),
            "server {id} does not serve as an observer within {timeout:?}\n{}",
            self.logs()
        );
    }

    /// Every member's log tail.
    pub fn logs(&self) -> String {
        logs(&self.servers)
    }

    /// Established TCP connections between a DC1 process and a DC2 process that do not cross the WAN
    /// proxies (a socket of one member whose peer port is a quorum or election port of a member of the
    /// other DC), as `"member 4 -> member 1 election port"`. Read from `/proc`.
    pub fn direct_cross_links(&self) -> Vec<String> {
        let established = established_sockets();
        let mut out = Vec::new();
        for s in &self.servers {
            let Some(pid) = s.pid() else { continue };
            let inodes = socket_inodes(pid);
            for far in self
                .plan
                .members
                .iter()
                .filter(|m| m.observer != s.member.observer)
            {
                for (kind, port) in [("quorum", far.quorum), ("election", far.election)] {
                    if established
                        .iter()
                        .any(|(inode, remote)| *remote == port && inodes.contains(inode))
                    {
                        out.push(format!(
                            "member {} -> member {} {kind} port",
                            s.member.id, far.id
                        ));
                    }
                }
            }
        }
        out
    }
}

/// The dynamic config member `viewer` runs with: same-DC members at their real addresses, far-DC
/// members at their proxies.
fn servers_seen_by(plan: &EnsemblePlan, wan: &Wan, viewer: &Member) -> String {
    let mut out = String::new();
    for m in &plan.members {
        let line = if m.observer == viewer.observer {
            m.server_line()
        } else {
            Member {
                quorum: wan.addr(m.id, PortKind::Quorum).port(),
                election: wan.addr(m.id, PortKind::Election).port(),
                ..m.clone()
            }
            .server_line()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The socket inodes process `pid` holds (`/proc/<pid>/fd/* -> socket:[inode]`).
fn socket_inodes(pid: u32) -> BTreeSet<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|target| {
            let t = target.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// `(inode, remote port)` of every established IPv4 TCP socket (`/proc/net/tcp`, state 01).
fn established_sockets() -> Vec<(u64, u16)> {
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "01" {
                return None;
            }
            let remote_port = u16::from_str_radix(f[2].rsplit(':').next()?, 16).ok()?;
            Some((f[9].parse().ok()?, remote_port))
        })
        .collect()
}

/// A tokio runtime whose worker runs in the background, so client sessions keep pinging while the test
/// thread sleeps or waits on processes.
pub fn background_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A session on `connect` (one or more `host:port`) with `timeout`, within 10 s.
pub async fn session(connect: &str, timeout: Duration) -> (Client, EventReceiver) {
    tokio::time::timeout(Duration::from_secs(10), Client::connect(connect, timeout))
        .await
        .unwrap_or_else(|_| panic!("connect to {connect}: timed out"))
        .unwrap_or_else(|e| panic!("connect to {connect}: {e}"))
}

/// Timestamps (seconds since the Unix epoch) of the lines of `log` containing `needle`, read from the
/// RFC 3339 time that starts each line of outpost's log (ANSI colour codes skipped).
pub fn log_times(log: &Path, needle: &str) -> Vec<(f64, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            let plain = strip_ansi(l);
            let stamp = plain.split_whitespace().next()?.to_string();
            Some((parse_rfc3339(&stamp)?, plain))
        })
        .collect()
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `2026-11-24T18:25:00.123456Z` as seconds since the Unix epoch (UTC only, as tracing writes it).
fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (h, min) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let sec = t.next()?.parse::<f64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + h * 3600.0 + min * 60.0 + sec)
}
