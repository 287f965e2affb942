//! `outpost bench`: a pipelined load generator speaking the ZooKeeper protocol through
//! [`outpost_core::client`], to compare outpost with Apache ZooKeeper (or any two server lists) side by side.
//!
//! Each of `--clients` sessions is pinned to one server of the list (round robin) and keeps `--depth`
//! requests in flight for `--duration` seconds. Latencies go into an HDR histogram (microseconds). Setup
//! creates `/outpost-bench-<random>` with one parent per client (create workload) or `--keys` nodes of
//! `--value-size` bytes (get, set, mixed); teardown deletes the whole tree. With `--compare`, the same load
//! then runs against the second list, and the report shows both and their ratio.
//!
//! With `--rate`, the load is open loop: each worker issues operations on a fixed schedule and latency
//! counts from the scheduled start, so two servers can be compared at the same offered load without the
//! slower one hiding its queueing (coordinated omission). `--workload failover` (module [`failover`])
//! kills an ensemble's leader and times the first successful write after it.

pub mod failover;
pub mod relay;

use crate::cli::commands::delete_recursive;
use crate::cli_args::BenchArgs;
use hdrhistogram::Histogram;
use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::{Acl, ErrorCode};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// The operation mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Persistent creates of `--value-size` bytes, each client under its own parent.
    Create,
    /// setData on random pre-created nodes.
    Set,
    /// getData on random pre-created nodes.
    Get,
    /// 80% getData, 20% setData on random pre-created nodes.
    Mixed,
    /// kill -9 of the ensemble's leader, then the time to the first successful write
    /// ([`failover::run_failover`]).
    Failover,
    /// Creates with a JetStream subscriber on the relay's stream: commit-to-subscriber latency, relay
    /// lag, lz4 ratio and relay CPU ([`relay::run_relay`]).
    Relay,
}

impl Workload {
    /// Parses `create|set|get|mixed`.
    pub fn parse(s: &str) -> Option<Workload> {
        match s {
            "create" => Some(Workload::Create),
            "set" => Some(Workload::Set),
            "get" => Some(Workload::Get),
            "mixed" => Some(Workload::Mixed),
            "failover" => Some(Workload::Failover),
            "relay" => Some(Workload::Relay),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
            Workload::Failover => "failover",
            Workload::Relay => "relay",
        }
    }
}

/// The results of one run against one server list.
#[derive(Debug, Clone)]
pub struct Report {
    /// Column name.
    pub label: String,
    /// The server list loaded.
    pub servers: String,
    /// Successful operations.
    pub ops: u64,
    /// Operations that failed (ZooKeeper error codes or connection loss).
    pub errors: u64,
    /// Seconds the load ran.
    pub elapsed_s: f64,
    /// The offered load in operations per second (`--rate`), or None for a closed loop.
    pub offered_rate: Option<f64>,
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Median latency, microseconds.
    pub p50_us: u64,
    /// 99th percentile, microseconds.
    pub p99_us: u64,
    /// 99.9th percentile, microseconds.
    pub p999_us: u64,
    /// Worst latency, microseconds.
    pub max_us: u64,
    /// Server resident memory at the end of the load, KiB (with `--pid`).
    pub rss_kib: Option<u64>,
}

/// Resident set size of `pid` in KiB (`VmRSS` of /proc/PID/status).
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

/// A small xorshift generator: the bench needs cheap, not cryptographic, randomness.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

pub(crate) fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    (t ^ (u64::from(std::process::id()) << 32)) | 1
}

struct Totals {
    /// Operations started (for `--total`; failed ones count too).
    issued: AtomicU64,
    ops: AtomicU64,
    errors: AtomicU64,
}

pub(crate) async fn connect(hosts: &str) -> Result<Client, String> {
    let (client, _events) = Client::connect(hosts, Duration::from_secs(30))
        .await
        .map_err(|e| format!("cannot connect to {hosts}: {e}"))?;
    Ok(client)
}

/// Creates the bench root and the nodes the workload needs, pipelined.
async fn setup(
    admin: &Client,
    root: &str,
    workload: Workload,
    clients: usize,
    keys: usize,
    value: &[u8],
) -> Result<(), String> {
    let open = Acl::open_unsafe();
    match admin.create(root, b"", &open, CreateMode::Persistent).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("create {root}: {}", e.name())),
        Err(e) => return Err(format!("create {root}: {e}")),
    }
    let paths: Vec<String> = match workload {
        Workload::Create => (0..clients).map(|c| format!("{root}/c{c}")).collect(),
        _ => (0..keys).map(|k| format!("{root}/n{k}")).collect(),
    };
    let mut set = JoinSet::new();
    for chunk in paths.chunks(64) {
        let admin = admin.clone();
        let chunk = chunk.to_vec();
        let value = value.to_vec();
        let open = open.clone();
        set.spawn(async move {
            for p in chunk {
                match admin
                    .create(&p, &value, &open, CreateMode::Persistent)
                    .await
                {
                    Ok(Ok(_)) | Ok(Err(ErrorCode::NodeExists)) => {}
                    Ok(Err(e)) => return Err(format!("create {p}: {}", e.name())),
                    Err(e) => return Err(format!("create {p}: {e}")),
                }
            }
            Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// Runs the load against one server list and returns its report (teardown included).
pub async fn run_one(
    args: &BenchArgs,
    workload: Workload,
    servers: &str,
    label: &str,
    pid: Option<u32>,
) -> Result<Report, String> {
    let hosts = outpost_core::client::parse_hosts(servers).map_err(|e| e.to_string())?;
    let value = vec![b'x'; args.value_size];
    let root = format!("/outpost-bench-{:08x}", seed() as u32);
    let admin = connect(&hosts[0]).await?;
    setup(
        &admin,
        &root,
        workload,
        args.clients,
        args.keys.max(1),
        &value,
    )
    .await?;

    let mut sessions = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        sessions.push(connect(&hosts[i % hosts.len()]).await?);
    }
    let totals = Arc::new(Totals {
        issued: AtomicU64::new(0),
        ops: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    // With --total the run ends at that count; the duration is then only a safety limit.
    let duration = match args.total {
        Some(_) => Duration::from_secs(args.duration.max(3600)),
        None => Duration::from_secs(args.duration.max(1)),
    };
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    let workers_n = (args.clients * args.depth.max(1)).max(1);
    // Open loop: worker w issues at start + w/rate + k * workers/rate, so the workers together offer
    // `rate` operations per second, evenly spaced.
    let schedule = args
        .rate
        .filter(|r| *r > 0.0)
        .map(|r| (tokio::time::Instant::now(), r, workers_n as f64 / r));
    let mut workers = JoinSet::new();
    for (c, client) in sessions.iter().enumerate() {
        for d in 0..args.depth.max(1) {
            let client = client.clone();
            let totals = totals.clone();
            let root = root.clone();
            let value = value.clone();
            let keys = args.keys.max(1) as u64;
            let total = args.total;
            let depth = args.depth.max(1);
            let open = Acl::open_unsafe();
            workers.spawn(async move {
                let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                    .expect("valid histogram bounds");
                let mut rng =
                    XorShift(seed() ^ ((c as u64) << 20) ^ (d as u64) ^ 0x9e37_79b9_7f4a_7c15);
                let mut seq = 0u64;
                let worker = (c * depth + d) as f64;
                let mut k = 0u64;
                while tokio::time::Instant::now() < deadline
                    && total.is_none_or(|t| totals.issued.fetch_add(1, Ordering::Relaxed) < t)
                {
                    let t0 = match schedule {
                        Some((begin, rate, interval)) => {
                            let due = begin
                                + Duration::from_secs_f64(worker / rate + k as f64 * interval);
                            k += 1;
                            if due >= deadline {
                                break;
                            }
                            // Behind schedule, the operation goes out at once and its latency
                            // still counts from `due`.
                            tokio::time::sleep_until(due).await;
                            due.into_std()
                        }
                        None => Instant::now(),
                    };
                    let ok = match workload {
                        Workload::Create => {
                            seq += 1;
                            let p = format!("{root}/c{c}/w{d}-{seq}");
                            client
                                .create(&p, &value, &open, CreateMode::Persistent)
                                .await
                                .map(|r| r.is_ok())
                        }
                        Workload::Get => {
                            let p = format!("{root}/n{}", rng.next() % keys);
                            client.get_data(&p, false).await.map(|r| r.is_ok())
                        }
                        Workload::Set => {
                            let p = format!("{root}/n{}", rng.next() % keys);
                            client.set_data(&p, &value, -1).await.map(|r| r.is_ok())
                        }
                        Workload::Mixed => {
                            let p = format!("{root}/n{}", rng.next() % keys);
                            if rng.next().is_multiple_of(5) {
                                client.set_data(&p, &value, -1).await.map(|r| r.is_ok())
                            } else {
                                client.get_data(&p, false).await.map(|r| r.is_ok())
                            }
                        }
                        // Dispatched to `failover::run` / `relay::run` before any load starts.
                        Workload::Failover | Workload::Relay => break,
                    };
                    match ok {
                        Ok(true) => {
                            let us = t0.elapsed().as_micros().clamp(1, 60_000_000) as u64;
                            let _ = hist.record(us);
                            totals.ops.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(outpost_core::client::ClientError::ConnectionLoss) => {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {
                            totals.errors.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                }
                hist
            });
        }
    }
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds");
    while let Some(h) = workers.join_next().await {
        if let Ok(h) = h {
            let _ = hist.add(&h);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rss = pid.and_then(rss_kib);
    for s in &sessions {
        let _ = s.close().await;
    }
    if args.keep {
        eprintln!("bench: keeping {root}");
    } else if let Err(e) = delete_recursive(&admin, &root, 1000).await {
        eprintln!("bench: teardown of {root} failed: {}", e.message);
    }
    let _ = admin.close().await;
    let ops = totals.ops.load(Ordering::Relaxed);
    Ok(Report {
        label: label.to_string(),
        servers: servers.to_string(),
        ops,
        errors: totals.errors.load(Ordering::Relaxed),
        elapsed_s: elapsed,
        offered_rate: schedule.map(|(_, r, _)| r),
        ops_per_sec: if elapsed > 0.0 {
            ops as f64 / elapsed
        } else {
            0.0
        },
        p50_us: hist.value_at_quantile(0.50),
        p99_us: hist.value_at_quantile(0.99),
        p999_us: hist.value_at_quantile(0.999),
        max_us: hist.max(),
        rss_kib: rss,
    })
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

pub(crate) fn ratio(a: f64, b: f64) -> Option<f64> {
    if b > 0.0 {
        Some(a / b)
    } else {
        None
    }
}

/// The human-readable table: one column per report, plus `ratio` (first/second) when there are two.
pub fn table(args: &BenchArgs, reports: &[Report]) -> String {
    let mut rows: Vec<(String, Vec<String>, Option<f64>)> = Vec::new();
    let metric = |name: &str, f: &dyn Fn(&Report) -> (String, f64)| {
        let vals: Vec<(String, f64)> = reports.iter().map(f).collect();
        let r = if vals.len() == 2 {
            ratio(vals[0].1, vals[1].1)
        } else {
            None
        };
        (
            name.to_string(),
            vals.into_iter().map(|v| v.0).collect::<Vec<_>>(),
            r,
        )
    };
    rows.push(metric("ops/s", &|r| {
        (format!("{:.0}", r.ops_per_sec), r.ops_per_sec)
    }));
    rows.push(metric("p50 ms", &|r| (ms(r.p50_us), r.p50_us as f64)));
    rows.push(metric("p99 ms", &|r| (ms(r.p99_us), r.p99_us as f64)));
    rows.push(metric("p999 ms", &|r| (ms(r.p999_us), r.p999_us as f64)));
    rows.push(metric("max ms", &|r| (ms(r.max_us), r.max_us as f64)));
    rows.push(metric("errors", &|r| {
        (r.errors.to_string(), r.errors as f64)
    }));
    if reports.iter().any(|r| r.rss_kib.is_some()) {
        rows.push(metric("rss MiB", &|r| match r.rss_kib {
            Some(k) => (format!("{:.1}", k as f64 / 1024.0), k as f64),
            None => ("-".into(), 0.0),
        }));
    }
    let mut out = format!(
        "workload={} clients={} depth={} {}{} value-size={}B\n",
        args.workload,
        args.clients,
        args.depth,
        match args.total {
            Some(n) => format!("total={n}"),
            None => format!("duration={}s", args.duration),
        },
        match args.rate {
            Some(r) => format!(" rate={r:.0}/s"),
            None => String::new(),
        },
        args.value_size
    );
    let mut header = vec!["metric".to_string()];
    header.extend(
        reports
            .iter()
            .map(|r| format!("{} ({})", r.label, r.servers)),
    );
    if reports.len() == 2 {
        header.push(format!("ratio {}/{}", reports[0].label, reports[1].label));
    }
    let mut lines = vec![header];
    for (name, vals, r) in rows {
        let mut line = vec![name];
        line.extend(vals);
        if reports.len() == 2 {
            line.push(r.map_or("-".into(), |r| format!("{r:.2}")));
        }
        lines.push(line);
    }
    out.push_str(&columns(&lines));
    out
}

/// Renders rows as left-aligned columns two spaces apart, each as wide as its widest cell, one line
/// per row (the human-readable tables of every workload).
pub(crate) fn columns(lines: &[Vec<String>]) -> String {
    let cols = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            lines
                .iter()
                .map(|l| l.get(c).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for l in lines {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{v:<width$}", width = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The JSON object `--json` prints.
pub fn json(args: &BenchArgs, reports: &[Report]) -> serde_json::Value {
    let results: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "label": r.label,
                "servers": r.servers,
                "ops": r.ops,
                "errors": r.errors,
                "elapsed_s": r.elapsed_s,
                "offered_rate": r.offered_rate,
                "ops_per_sec": r.ops_per_sec,
                "p50_us": r.p50_us,
                "p99_us": r.p99_us,
                "p999_us": r.p999_us,
                "max_us": r.max_us,
                "rss_kib": r.rss_kib,
            })
        })
        .collect();
    let mut v = serde_json::json!({
        "workload": args.workload,
        "clients": args.clients,
        "depth": args.depth,
        "duration_s": args.duration,
        "value_size": args.value_size,
        "rate": args.rate,
        "results": results,
    });
    if reports.len() == 2 {
        let (a, b) = (&reports[0], &reports[1]);
        v["ratio"] = serde_json::json!({
            "ops_per_sec": ratio(a.ops_per_sec, b.ops_per_sec),
            "p50_us": ratio(a.p50_us as f64, b.p50_us as f64),
            "p99_us": ratio(a.p99_us as f64, b.p99_us as f64),
            "p999_us": ratio(a.p999_us as f64, b.p999_us as f64),
            "rss_kib": match (a.rss_kib, b.rss_kib) {
                (Some(x), Some(y)) => ratio(x as f64, y as f64),
                _ => None,
            },
        });
    }
    v
}

/// Entry point of `outpost bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    let Some(workload) = Workload::parse(&args.workload) else {
        eprintln!(
            "outpost bench: --workload must be create, set, get, mixed, failover or relay (got {:?})",
            args.workload
        );
        return ExitCode::from(2);
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        builder.worker_threads(args.threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("outpost bench: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    if workload == Workload::Failover || workload == Workload::Relay {
        let code = if workload == Workload::Failover {
            failover::run(&args, &runtime)
        } else {
            relay::run(&args, &runtime)
        };
        runtime.shutdown_timeout(Duration::from_millis(200));
        return code;
    }
    let mut targets = vec![(args.servers.clone(), args.label.clone(), args.pid)];
    if let Some(c) = &args.compare {
        targets.push((c.clone(), args.compare_label.clone(), args.compare_pid));
    }
    let mut reports = Vec::new();
    for (servers, label, pid) in targets {
        let span = match args.total {
            Some(n) => format!("{n} operations"),
            None => format!("{}s", args.duration),
        };
        eprintln!(
            "bench: {} workload against {label} ({servers}), {span}",
            workload.name()
        );
        match runtime.block_on(run_one(&args, workload, &servers, &label, pid)) {
            Ok(r) => reports.push(r),
            Err(e) => {
                eprintln!("outpost bench: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let table = table(&args, &reports);
    if args.json {
        eprint!("{table}");
        println!("{}", json(&args, &reports));
    } else {
        print!("{table}");
    }
    runtime.shutdown_timeout(Duration::from_millis(200));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Workload names parse, and anything else is refused.
    #[test]
    fn workloads_parse() {
        assert_eq!(Workload::parse("mixed"), Some(Workload::Mixed));
        assert_eq!(Workload::parse("failover"), Some(Workload::Failover));
        assert_eq!(Workload::parse("relay"), Some(Workload::Relay));
        assert_eq!(Workload::parse("delete"), None);
    }
}
