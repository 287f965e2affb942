//! `outpost bench --workload failover`: leader failover time of a voting ensemble, from `kill -9` of the
//! leader to the first successful write after it.
//!
//! Given the members' client addresses (`--servers`) and their pids in the same order (`--pids`), the run
//! 1. polls `srvr` on every member until exactly one reports `Mode: leader` and all others follow;
//! 2. starts `--clients` writer sessions, each with the whole connect string rotated so the sessions
//!    start spread over all members (as real clients' random host order spreads them), each writing
//!    `setData` in a loop, one at a time, for a second;
//! 3. sends SIGKILL to the leader's pid and takes the time;
//! 4. measures, from that instant: when a surviving member first reports `Mode: leader`
//!    (`new_leader_ms`); when an established session first completes a write it issued after the kill
//!    (`session_write_ms`: includes the client's reconnect back-off and session revalidation); when a fresh
//!    session, opened on a surviving member every 25 ms, first completes a write (`fresh_write_ms`: the
//!    ensemble's own recovery at 25 ms resolution, independent of any client's back-off).
//!    `first_write_ms` is the earlier of the two writes: the failover time.
//!
//! The killed member is not restarted: the caller owns the processes (scripts/bench-ensemble-vs-zookeeper.sh
//! restarts it and waits for the ensemble to settle before the next measurement).

use super::{connect, ratio, seed};
use crate::cli_args::BenchArgs;
use outpost_core::client::{parse_hosts, Client, ClientConfig, CreateMode};
use outpost_core::proto::Acl;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

/// How often a fresh session is tried on each surviving member after the kill.
const PROBE_EVERY: Duration = Duration::from_millis(25);
/// How long one fresh-session attempt may take (connect, including the client's own retries, plus the
/// write) before it is abandoned; attempts overlap, so this does not limit the resolution.
const PROBE_BUDGET: Duration = Duration::from_secs(2);
/// How long the writers run before the kill, to show the ensemble was serving writes.
const WARMUP: Duration = Duration::from_secs(1);

/// The result of one failover measurement on one ensemble.
#[derive(Debug, Clone)]
pub struct FailoverReport {
    /// Column name.
    pub label: String,
    /// The members' client addresses.
    pub servers: String,
    /// Client address of the leader that was killed.
    pub killed: String,
    /// Its pid.
    pub killed_pid: u32,
    /// Client address of the member that reported `Mode: leader` first after the kill.
    pub new_leader: Option<String>,
    /// Milliseconds from the kill until a surviving member reported `Mode: leader`.
    pub new_leader_ms: Option<f64>,
    /// Milliseconds from the kill until an established session completed a write issued after it.
    pub session_write_ms: Option<f64>,
    /// Milliseconds from the kill until a fresh session completed a write.
    pub fresh_write_ms: Option<f64>,
    /// The earlier of the two writes: the failover time.
    pub first_write_ms: Option<f64>,
    /// Writes the writer sessions completed in the second before the kill.
    pub writes_before_kill: u64,
}

/// A four-letter word's whole answer from `host`, or None when it does not answer within `limit`.
pub async fn four_letter(host: &str, word: &str, limit: Duration) -> Option<String> {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
        s.write_all(word.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        Some(String::from_utf8_lossy(&buf).into_owned())
    };
    tokio::time::timeout(limit, ask).await.ok().flatten()
}

/// The `Mode:` a server reports to the `srvr` four-letter word (`leader`, `follower`, ...), or None when
/// it does not answer or is not serving (ZooKeeper answers "not currently serving requests").
pub async fn srvr_mode(host: &str) -> Option<String> {
    let text = four_letter(host, "srvr", Duration::from_millis(1000)).await?;
    text.lines()
        .find_map(|l| l.strip_prefix("Mode:"))
        .map(|m| m.trim().to_string())
}

/// Polls `srvr` until exactly one member reports `leader` and every other one `follower` or `observer`;
/// returns the leader's index in `hosts`.
pub async fn settled_leader(hosts: &[String], limit: Duration) -> Result<usize, String> {
    let start = Instant::now();
    loop {
        let mut modes = Vec::with_capacity(hosts.len());
        for h in hosts {
            modes.push(srvr_mode(h).await);
        }
        let leaders: Vec<usize> = (0..hosts.len())
            .filter(|&i| modes[i].as_deref() == Some("leader"))
            .collect();
        let settled = modes
            .iter()
            .all(|m| matches!(m.as_deref(), Some("leader" | "follower" | "observer")));
        if leaders.len() == 1 && settled {
            return Ok(leaders[0]);
        }
        if start.elapsed() >= limit {
            return Err(format!(
                "the ensemble did not settle on one leader within {}s (modes: {modes:?})",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends SIGKILL to `pid` through kill(1) (outpost forbids `unsafe`, so no libc call).
fn kill_9(pid: u32) -> Result<(), String> {
    let status = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("cannot run kill: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -KILL {pid} failed ({status})"))
    }
}

/// The earliest instant recorded, shared by the tasks that race to record it.
#[derive(Default)]
struct First(Mutex<Option<Instant>>);

impl First {
    fn record(&self, at: Instant) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.is_none_or(|t| at < t) {
            *g = Some(at);
        }
    }

    fn get(&self) -> Option<Instant> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connect string listing `hosts` starting at index `first`, so sessions spread over all members.
fn rotated(hosts: &[String], first: usize) -> String {
    let n = hosts.len();
    (0..n)
        .map(|i| hosts[(first + i) % n].as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// One failover measurement against the ensemble `servers` whose member pids are `pids` (same order).
pub async fn run_failover(
    args: &BenchArgs,
    servers: &str,
    label: &str,
    pids: &[u32],
) -> Result<FailoverReport, String> {
    let hosts = parse_hosts(servers).map_err(|e| e.to_string())?;
    if hosts.len() != pids.len() || hosts.len() < 3 {
        return Err(format!(
            "failover needs an ensemble of at least 3 members and one pid per member \
             ({} servers, {} pids)",
            hosts.len(),
            pids.len()
        ));
    }
    let leader = settled_leader(&hosts, Duration::from_secs(60)).await?;
    let survivors: Vec<String> = (0..hosts.len())
        .filter(|&i| i != leader)
        .map(|i| hosts[i].clone())
        .collect();

    let root = format!("/outpost-bench-{:08x}", seed() as u32);
    let admin = connect(&survivors[0]).await?;
    let open = Acl::open_unsafe();
    let writers_n = args.clients.max(1);
    for path in std::iter::once(root.clone()).chain((0..writers_n).map(|c| format!("{root}/w{c}")))
    {
        match admin
            .create(&path, b"", &open, CreateMode::Persistent)
            .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("create {path}: {}", e.name())),
            Err(e) => return Err(format!("create {path}: {e}")),
        }
    }
    let _ = admin.close().await;

    let kill_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let before = Arc::new(AtomicU64::new(0));
    let session_first = Arc::new(First::default());
    let mut writers = JoinSet::new();
    let mut sessions = Vec::with_capacity(writers_n);
    for c in 0..writers_n {
        let (client, _events) = Client::connect(&rotated(&hosts, c), Duration::from_secs(30))
            .await
            .map_err(|e| format!("cannot connect to {servers}: {e}"))?;
        sessions.push(client.clone());
        let (kill_at, stop, before, first) = (
            kill_at.clone(),
            stop.clone(),
            before.clone(),
            session_first.clone(),
        );
        let node = format!("{root}/w{c}");
        writers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let issued = Instant::now();
                let ok = matches!(client.set_data(&node, b"x", -1).await, Ok(Ok(_)));
                let done = Instant::now();
                let killed = *kill_at.lock().unwrap_or_else(|p| p.into_inner());
                match (ok, killed) {
                    (true, None) => {
                        before.fetch_add(1, Ordering::Relaxed);
                    }
                    (true, Some(k)) if issued >= k => first.record(done),
                    (true, Some(_)) => {}
                    // Reconnecting: the client queues the next request until it has a connection.
                    (false, _) => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
        });
    }
    tokio::time::sleep(WARMUP).await;
    let writes_before_kill = before.load(Ordering::Relaxed);
    if writes_before_kill == 0 {
        stop.store(true, Ordering::Relaxed);
        writers.abort_all();
        return Err(format!(
            "no write succeeded in {}s before the kill: is {servers} serving writes?",
            WARMUP.as_secs()
        ));
    }

    kill_9(pids[leader])?;
    let killed = Instant::now();
    *kill_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(killed);

    // Fresh sessions on each survivor, one every PROBE_EVERY, overlapping.
    let fresh_first = Arc::new(First::default());
    let mut probes = JoinSet::new();
    for host in &survivors {
        let (host, root, first, stop) = (
            host.clone(),
            root.clone(),
            fresh_first.clone(),
            stop.clone(),
        );
        probes.spawn(async move {
            let mut attempts = JoinSet::new();
            let mut tick = tokio::time::interval(PROBE_EVERY);
            while !stop.load(Ordering::Relaxed) && first.get().is_none() {
                tick.tick().await;
                while attempts.try_join_next().is_some() {}
                let (host, root, first) = (host.clone(), root.clone(), first.clone());
                attempts.spawn(async move {
                    let mut cfg = ClientConfig::new(&host, Duration::from_secs(10));
                    cfg.connect_timeout = PROBE_BUDGET;
                    let attempt = async {
                        let (c, _events) = Client::connect_with(cfg).await.ok()?;
                        let ok = matches!(c.set_data(&root, b"p", -1).await, Ok(Ok(_)));
                        let done = Instant::now();
                        let _ = c.close().await;
                        ok.then_some(done)
                    };
                    if let Ok(Some(done)) = tokio::time::timeout(PROBE_BUDGET, attempt).await {
                        first.record(done);
                    }
                });
            }
            attempts.abort_all();
        });
    }

    // Who leads next, polled on the survivors.
    let limit = Duration::from_secs(args.failover_timeout.max(1));
    let mut new_leader = None;
    let mut new_leader_at = None;
    while killed.elapsed() < limit {
        if new_leader.is_none() {
            for h in &survivors {
                if srvr_mode(h).await.as_deref() == Some("leader") {
                    new_leader = Some(h.clone());
                    new_leader_at = Some(Instant::now());
                    break;
                }
            }
        }
        if new_leader.is_some() && session_first.get().is_some() && fresh_first.get().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    probes.abort_all();
    writers.abort_all();
    for s in &sessions {
        let _ = tokio::time::timeout(Duration::from_secs(2), s.close()).await;
    }
    drop(sessions);

    // Teardown through a survivor; a failure here does not spoil the measurement.
    let survivors_list = survivors.join(",");
    let teardown = async {
        let admin = connect(&survivors_list).await?;
        let r = crate::cli::commands::delete_recursive(&admin, &root, 1000)
            .await
            .map_err(|e| e.message);
        let _ = admin.close().await;
        r
    };
    match tokio::time::timeout(Duration::from_secs(10), teardown).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("bench: teardown of {root} failed: {e}"),
        Err(_) => eprintln!("bench: teardown of {root} timed out"),
    }

    let since =
        |t: Option<Instant>| t.map(|t| t.saturating_duration_since(killed).as_secs_f64() * 1000.0);
    let session_write_ms = since(session_first.get());
    let fresh_write_ms = since(fresh_first.get());
    let first_write_ms = match (session_write_ms, fresh_write_ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(FailoverReport {
        label: label.to_string(),
        servers: servers.to_string(),
        killed: hosts[leader].clone(),
        killed_pid: pids[leader],
        new_leader,
        new_leader_ms: since(new_leader_at),
        session_write_ms,
        fresh_write_ms,
        first_write_ms,
        writes_before_kill,
    })
}

fn opt_ms(v: Option<f64>) -> (String, f64) {
    match v {
        Some(ms) => (format!("{ms:.0}"), ms),
        None => ("timeout".into(), 0.0),
    }
}

/// The human-readable table: one column per report, plus `ratio` (first/second) when there are two.
pub fn table(args: &BenchArgs, reports: &[FailoverReport]) -> String {
    type Cell = fn(&FailoverReport) -> (String, f64);
    let rows: [(&str, Cell); 6] = [
        ("killed leader", |r| {
            (format!("{} (pid {})", r.killed, r.killed_pid), 0.0)
        }),
        ("new leader ms", |r| opt_ms(r.new_leader_ms)),
        ("first write ms", |r| opt_ms(r.first_write_ms)),
        ("session write ms", |r| opt_ms(r.session_write_ms)),
        ("fresh-session write ms", |r| opt_ms(r.fresh_write_ms)),
        ("writes before kill", |r| {
            (
                r.writes_before_kill.to_string(),
                r.writes_before_kill as f64,
            )
        }),
    ];
    let mut lines = vec![{
        let mut h = vec!["metric".to_string()];
        h.extend(reports.iter().map(|r| r.label.clone()));
        if reports.len() == 2 {
            h.push(format!("ratio {}/{}", reports[0].label, reports[1].label));
        }
        h
    }];
    for (i, (name, cell)) in rows.iter().enumerate() {
        let vals: Vec<(String, f64)> = reports.iter().map(cell).collect();
        let mut line = vec![name.to_string()];
        line.extend(vals.iter().map(|v| v.0.clone()));
        if reports.len() == 2 {
            let r = if i == 0 || i == 5 {
                None
            } else {
                ratio(vals[0].1, vals[1].1)
            };
            line.push(r.map_or("-".into(), |r| format!("{r:.2}")));
        }
        lines.push(line);
    }
    let mut out = format!("workload=failover writers={}\n", args.clients.max(1));
    out.push_str(&super::columns(&lines));
    out
}

/// The JSON object `--json` prints for a failover run.
pub fn json(args: &BenchArgs, reports: &[FailoverReport]) -> serde_json::Value {
    let results: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "label": r.label,
                "servers": r.servers,
                "killed": r.killed,
                "killed_pid": r.killed_pid,
                "new_leader": r.new_leader,
                "new_leader_ms": r.new_leader_ms,
                "session_write_ms": r.session_write_ms,
                "fresh_write_ms": r.fresh_write_ms,
                "first_write_ms": r.first_write_ms,
                "writes_before_kill": r.writes_before_kill,
            })
        })
        .collect();
    let mut v = serde_json::json!({
        "workload": "failover",
        "clients": args.clients.max(1),
        "results": results,
    });
    if let [a, b] = reports {
        let both = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => ratio(x, y),
            _ => None,
        };
        v["ratio"] = serde_json::json!({
            "new_leader_ms": both(a.new_leader_ms, b.new_leader_ms),
            "first_write_ms": both(a.first_write_ms, b.first_write_ms),
            "session_write_ms": both(a.session_write_ms, b.session_write_ms),
            "fresh_write_ms": both(a.fresh_write_ms, b.fresh_write_ms),
        });
    }
    v
}

/// `outpost bench --workload failover`: one measurement per target (`--servers`, then `--compare`).
/// Exits 1 when a target cannot be measured or no write succeeded within `--failover-timeout`.
pub fn run(args: &BenchArgs, runtime: &tokio::runtime::Runtime) -> ExitCode {
    let mut targets = vec![(args.servers.clone(), args.label.clone(), args.pids.clone())];
    if let Some(c) = &args.compare {
        targets.push((
            c.clone(),
            args.compare_label.clone(),
            args.compare_pids.clone(),
        ));
    }
    let mut reports = Vec::new();
    for (servers, label, pids) in targets {
        eprintln!("bench: failover of {label} ({servers}): kill -9 of the leader");
        match runtime.block_on(run_failover(args, &servers, &label, &pids)) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("outpost bench: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let table = table(args, &reports);
    if args.json {
        eprint!("{table}");
        println!("{}", json(args, &reports));
    } else {
        print!("{table}");
    }
    if reports.iter().any(|r| r.first_write_ms.is_none()) {
        eprintln!(
            "outpost bench: no write succeeded within {}s of the kill",
            args.failover_timeout
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rotated connect string starts at the given member and still lists every member once.
    #[test]
    fn rotated_lists_every_host_once() {
        let hosts: Vec<String> = ["a:1", "b:2", "c:3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(rotated(&hosts, 1), "b:2,c:3,a:1");
        assert_eq!(rotated(&hosts, 3), "a:1,b:2,c:3");
    }

    /// The earliest recorded instant wins, whatever order the racers record in.
    #[test]
    fn first_keeps_the_earliest() {
        let f = First::default();
        let t = Instant::now();
        f.record(t + Duration::from_millis(5));
        f.record(t);
        f.record(t + Duration::from_millis(9));
        assert_eq!(f.get(), Some(t));
    }
}
