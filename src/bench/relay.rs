//! `outpost bench --workload relay`: what the relay costs and how fast events reach a subscriber.
//!
//! The load: `--clients` sessions on `--servers` (round robin), `--depth` workers each, creating
//! znodes of `--value-size` bytes of compressible text (JSON-like config records, see
//! [`compressible_value`]) under `/outpost-bench-relay-<random>`, closed loop (as fast as the ensemble
//! answers: its peak write rate) or open loop at `--rate`. Each create is a `create2`, so its reply
//! carries the txn's zxid (`czxid`).
//!
//! The subscriber: a JetStream ordered push consumer on `<subject-prefix>.log` of `--stream` at
//! `--nats`, created before the load with deliver policy `new`, in the same process. Each message's
//! `Outpost-Zxid` header is matched with the create that made it, all on one monotonic clock:
//! - **commit-to-subscriber** latency: from the moment the writing client holds the create's reply to
//!   the moment the subscriber holds the event. A ZooKeeper server replies to a write only once the txn
//!   is committed and applied on that server, so the reply is the first instant a client can observe the
//!   commit; the relay's observer learns of the same commit (INFORM) from the leader at about the time
//!   the client's server does, so the event can arrive first (counted as `before_ack`, latency 0).
//!   Not the txn's `time_ms`: that is the leader's wall clock at proposal time, in whole milliseconds
//!   (too coarse for a 5 ms target), and it would count the quorum round trip as relay latency.
//! - **write-to-subscriber**: from the moment the create was due (its scheduled start with `--rate`) to
//!   the event: what an application waiting for its own change to show up in the stream sees.
//!
//! Alongside: the relay's lag from `mntr` on `--observer` (`relay_lag_zxids`, `relay_lag_ms`) every
//! 250 ms; the subscriber-side backlog (acknowledged creates whose event has not arrived); after the
//! load, the time until the last acknowledged create's event arrived (drain); the lz4 ratio of the log
//! messages (uncompressed size from the 4-byte prefix `lz4_flex` puts on each compressed payload, over
//! the payload's size); and with `--relay-pid` the CPU time of that process's `outpost-relay` threads
//! (the relay runs on a thread of its own, see `relay_cmd::spawn`) and of the whole process, and how long
//! the relay's threads were runnable but waiting for a CPU, from `/proc/<pid>/task/*/schedstat`; and the
//! rate at which the relay drained its backlog after the load stopped (its throughput once the writers
//! no longer compete with it for the CPU).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::{Acl, ErrorCode};
use outpost_relay::async_nats::jetstream::{self, consumer};
use outpost_relay::futures::StreamExt as _;
use outpost_relay::nats::{header_str, parse_zxid, KIND_HEADER, ZXID_HEADER};
use tokio::task::JoinSet;

use super::{connect, seed};
use crate::cli::commands::delete_recursive;
use crate::cli_args::BenchArgs;

/// Name of the relay's threads in `/proc/<pid>/task/*/comm` (`relay_cmd::RELAY_THREAD`).
const RELAY_THREAD: &str = crate::relay_cmd::RELAY_THREAD;
/// How often the relay's lag and the subscriber's backlog are sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Width of a window of the stall timeline (see [`Window`]).
const WINDOW: Duration = Duration::from_millis(100);
/// A commit-to-subscriber latency above this is slow (the p99 target).
const SLOW: Duration = Duration::from_millis(5);

/// `size` bytes of compressible text: JSON-like service config records with varying numbers, as a
/// coordination service typically stores, so lz4 has something real to do (random bytes would not
/// compress; one repeated byte would compress unrealistically well).
pub fn compressible_value(size: usize, salt: u64) -> Vec<u8> {
    let mut out = String::with_capacity(size + 160);
    let mut i = salt;
    while out.len() < size {
        out.push_str(&format!(
            "{{\"service\":\"svc-{}\",\"replicas\":{},\"region\":\"eu-west-{}\",\"image\":\"registry.example.com/team/app:{}.{}\",\"healthy\":{}}}\n",
            i % 97,
            i % 7 + 1,
            i % 3 + 1,
            i % 11,
            i % 13,
            i.is_multiple_of(2)
        ));
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 33;
    }
    out.truncate(size);
    out.into_bytes()
}

/// A create whose reply or event is still missing.
#[derive(Clone, Copy, Default)]
struct Pending {
    due: Option<Instant>,
    acked: Option<Instant>,
    arrived: Option<Instant>,
}

fn histogram() -> Histogram<u64> {
    Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    d.as_micros().clamp(1, 600_000_000) as u64
}

/// One `WINDOW` of the run, by the time the creates were acknowledged: where the slow events fell,
/// so a tail can be told apart as a few stalls (a snapshot, an fsync) or as steady queueing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Window {
    /// Start of the window, milliseconds after the first create of the run was due.
    pub at_ms: u64,
    /// Events in the window slower than `SLOW` from reply to subscriber.
    pub slow: u64,
    /// Events in the window.
    pub events: u64,
    /// Worst commit-to-subscriber latency in the window, microseconds.
    pub max_us: u64,
    /// Worst write ack latency in the window, microseconds.
    pub max_ack_us: u64,
}

/// Matches creates with their events; holds the latency histograms.
struct Matcher {
    pending: HashMap<i64, Pending>,
    /// Where the timeline starts.
    origin: Instant,
    /// The stall timeline, one entry per [`WINDOW`] that had an event.
    windows: std::collections::BTreeMap<u64, Window>,
    commit_to_sub: Histogram<u64>,
    write_to_sub: Histogram<u64>,
    ack: Histogram<u64>,
    before_ack: u64,
    matched: u64,
    acked: u64,
    /// Events whose zxid no create of this run acknowledged (sessions, setup, other clients).
    last_arrival: Option<Instant>,
}

impl Matcher {
    fn new() -> Matcher {
        Matcher {
            pending: HashMap::new(),
            origin: Instant::now(),
            windows: std::collections::BTreeMap::new(),
            commit_to_sub: histogram(),
            write_to_sub: histogram(),
            ack: histogram(),
            before_ack: 0,
            matched: 0,
            acked: 0,
            last_arrival: None,
        }
    }

    fn complete(&mut self, p: Pending) {
        let (Some(due), Some(acked), Some(arrived)) = (p.due, p.acked, p.arrived) else {
            return;
        };
        if arrived < acked {
            self.before_ack += 1;
        }
        let latency = arrived.saturating_duration_since(acked);
        let slot =
            (acked.saturating_duration_since(self.origin).as_millis() / WINDOW.as_millis()) as u64;
        let w = self.windows.entry(slot).or_insert(Window {
            at_ms: slot * WINDOW.as_millis() as u64,
            ..Window::default()
        });
        w.events += 1;
        w.slow += u64::from(latency > SLOW);
        w.max_us = w.max_us.max(micros(latency));
        w.max_ack_us = w
            .max_ack_us
            .max(micros(acked.saturating_duration_since(due)));
        let _ = self.commit_to_sub.record(micros(latency));
        let _ = self
            .write_to_sub
            .record(micros(arrived.saturating_duration_since(due)));
        self.matched += 1;
    }

    fn acked(&mut self, zxid: i64, due: Instant, acked: Instant) {
        self.acked += 1;
        let _ = self
            .ack
            .record(micros(acked.saturating_duration_since(due)));
        let mut p = self.pending.remove(&zxid).unwrap_or_default();
        p.due = Some(due);
        p.acked = Some(acked);
        if p.arrived.is_some() {
            self.complete(p);
        } else {
            self.pending.insert(zxid, p);
        }
    }

    fn arrived(&mut self, zxid: i64, at: Instant) {
        self.last_arrival = Some(at);
        match self.pending.remove(&zxid) {
            Some(mut p) => {
                p.arrived = Some(at);
                self.complete(p);
            }
            None => {
                self.pending.insert(
                    zxid,
                    Pending {
                        arrived: Some(at),
                        ..Pending::default()
                    },
                );
            }
        }
    }

    /// Acknowledged creates whose event has not arrived yet.
    fn backlog(&self) -> usize {
        self.pending
            .values()
            .filter(|p| p.acked.is_some() && p.arrived.is_none())
            .count()
    }
}

/// What the subscriber counted besides latency.
#[derive(Default)]
struct Traffic {
    messages: AtomicU64,
    compressed: AtomicU64,
    /// Payload bytes as published (after lz4).
    payload_bytes: AtomicU64,
    /// The same payloads uncompressed.
    raw_bytes: AtomicU64,
}

/// Scheduler times of a process's threads, from `/proc/<pid>/task/*/schedstat` (nanoseconds on a CPU,
/// and runnable but waiting for one). Threads that already exited are not counted.
#[derive(Clone, Copy, Debug, Default)]
struct ThreadTimes {
    /// On a CPU, all threads.
    all_ns: u64,
    /// On a CPU, the threads named [`RELAY_THREAD`].
    relay_ns: u64,
    /// Runnable but waiting for a CPU, the relay's threads.
    relay_wait_ns: u64,
    /// How many relay threads there are.
    relay_threads: usize,
}

fn thread_times(pid: u32) -> Option<ThreadTimes> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut t = ThreadTimes::default();
    for task in tasks.flatten() {
        let dir = task.path();
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        let mut fields = stat.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (Some(Some(run)), Some(Some(wait))) = (fields.next(), fields.next()) else {
            continue;
        };
        t.all_ns += run;
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim() == RELAY_THREAD {
            t.relay_ns += run;
            t.relay_wait_ns += wait;
            t.relay_threads += 1;
        }
    }
    Some(t)
}

/// `mntr`'s numeric values from `host`, keyed without the `zk_` prefix.
async fn mntr(host: &str) -> HashMap<String, i64> {
    let text = super::failover::four_letter(host, "mntr", Duration::from_secs(1))
        .await
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('\t')?;
            let k = k.strip_prefix("zk_").unwrap_or(k);
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Latency quantiles in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quantiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Worst.
    pub max_us: u64,
}

impl Quantiles {
    fn of(h: &Histogram<u64>) -> Quantiles {
        Quantiles {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "count": self.count, "p50_us": self.p50_us, "p90_us": self.p90_us,
            "p99_us": self.p99_us, "p999_us": self.p999_us, "max_us": self.max_us,
        })
    }
}

/// The results of one relay run.
#[derive(Clone, Debug, Default)]
pub struct RelayReport {
    /// `--rate`, or None for a closed loop (the ensemble's peak).
    pub offered_rate: Option<f64>,
    /// Seconds the load ran.
    pub elapsed_s: f64,
    /// Acknowledged creates.
    pub writes: u64,
    /// Failed creates.
    pub write_errors: u64,
    /// Acknowledged creates per second.
    pub writes_per_sec: f64,
    /// Events of this run's creates the subscriber received while the load ran, per second.
    pub events_per_sec_during_load: f64,
    /// Creates matched with their event.
    pub matched: u64,
    /// Acknowledged creates whose event never arrived (within `--drain-timeout`).
    pub missing: u64,
    /// Events that arrived before their create's reply.
    pub before_ack: u64,
    /// Reply to event.
    pub commit_to_sub: Quantiles,
    /// Due time to event.
    pub write_to_sub: Quantiles,
    /// Due time to reply (the write latency itself).
    pub ack: Quantiles,
    /// Largest subscriber-side backlog (acknowledged creates without their event) seen, and at the end of
    /// the load.
    pub backlog_max: usize,
    /// Backlog when the load stopped.
    pub backlog_at_end: usize,
    /// Milliseconds from the end of the load until the last acknowledged create's event arrived.
    pub drain_ms: Option<f64>,
    /// Largest `relay_lag_zxids` / `relay_lag_ms` `mntr` reported during the load.
    pub lag_zxids_max: Option<i64>,
    /// See `lag_zxids_max`.
    pub lag_ms_max: Option<i64>,
    /// `mntr` samples taken.
    pub lag_samples: usize,
    /// Log messages the subscriber received (all of the stream's log messages in the window).
    pub messages: u64,
    /// How many of them were lz4-compressed.
    pub compressed: u64,
    /// Their payload bytes as published.
    pub payload_bytes: u64,
    /// Their uncompressed bytes.
    pub raw_bytes: u64,
    /// CPU seconds of the relay's threads during the load.
    pub relay_cpu_s: Option<f64>,
    /// Seconds the relay's threads were runnable but waiting for a CPU during the load (high when the
    /// machine is oversubscribed: the relay was starved, not slow).
    pub relay_wait_s: Option<f64>,
    /// CPU seconds of the whole relaying process during the load.
    pub process_cpu_s: Option<f64>,
    /// Relay threads found.
    pub relay_threads: usize,
    /// The windows of the stall timeline that had a slow event, in time order.
    pub slow_windows: Vec<Window>,
    /// Windows of the timeline that had an event.
    pub windows: usize,
}

impl RelayReport {
    /// Uncompressed over published bytes (1.0 when nothing was compressed).
    pub fn lz4_ratio(&self) -> Option<f64> {
        super::ratio(self.raw_bytes as f64, self.payload_bytes as f64)
    }

    /// Events per second the relay published while draining its backlog after the load stopped (its
    /// throughput when the writers no longer compete for the CPU), if there was a backlog to drain.
    pub fn drain_rate(&self) -> Option<f64> {
        match self.drain_ms {
            Some(ms) if self.backlog_at_end >= 100 && ms > 0.0 => {
                Some(self.backlog_at_end as f64 * 1000.0 / ms)
            }
            _ => None,
        }
    }

    /// Relay CPU per relayed event, microseconds.
    pub fn relay_cpu_us_per_event(&self) -> Option<f64> {
        let events = self.messages.max(1) as f64;
        self.relay_cpu_s.map(|s| s * 1e6 / events)
    }

    fn json(&self, args: &BenchArgs) -> serde_json::Value {
        // Built apart: one json! with every field exceeds the macro's recursion limit.
        let slow: Vec<serde_json::Value> = self
            .slow_windows
            .iter()
            .map(|w| {
                serde_json::json!({
                    "at_ms": w.at_ms, "slow": w.slow, "events": w.events,
                    "max_us": w.max_us, "max_ack_us": w.max_ack_us,
                })
            })
            .collect();
        let timeline = serde_json::json!({
            "window_ms": WINDOW.as_millis() as u64,
            "slow_above_ms": SLOW.as_millis() as u64,
            "windows": self.windows,
            "slow_windows": slow,
        });
        serde_json::json!({
            "workload": "relay",
            "servers": args.servers,
            "nats": args.nats,
            "stream": args.stream,
            "clients": args.clients,
            "depth": args.depth,
            "duration_s": args.duration,
            "value_size": args.value_size,
            "values": "compressible JSON-like text",
            "offered_rate": self.offered_rate,
            "elapsed_s": self.elapsed_s,
            "writes": self.writes,
            "write_errors": self.write_errors,
            "writes_per_sec": self.writes_per_sec,
            "events_per_sec_during_load": self.events_per_sec_during_load,
            "matched": self.matched,
            "missing": self.missing,
            "before_ack": self.before_ack,
            "commit_to_subscriber": self.commit_to_sub.json(),
            "write_to_subscriber": self.write_to_sub.json(),
            "write_ack": self.ack.json(),
            "backlog_max": self.backlog_max,
            "backlog_at_end": self.backlog_at_end,
            "drain_ms": self.drain_ms,
            "relay_lag_zxids_max": self.lag_zxids_max,
            "relay_lag_ms_max": self.lag_ms_max,
            "lag_samples": self.lag_samples,
            "log_messages": self.messages,
            "compressed_messages": self.compressed,
            "payload_bytes": self.payload_bytes,
            "raw_bytes": self.raw_bytes,
            "lz4_ratio": self.lz4_ratio(),
            "relay_cpu_s": self.relay_cpu_s,
            "relay_wait_s": self.relay_wait_s,
            "drain_events_per_sec": self.drain_rate(),
            "relay_cpu_us_per_event": self.relay_cpu_us_per_event(),
            "relay_cpu_pct_of_core": self.relay_cpu_s.map(|s| 100.0 * s / self.elapsed_s.max(1e-9)),
            "process_cpu_s": self.process_cpu_s,
            "process_cpu_pct_of_core": self.process_cpu_s.map(|s| 100.0 * s / self.elapsed_s.max(1e-9)),
            "relay_threads": self.relay_threads,
            "timeline": timeline,
        })
    }

    /// The human-readable report.
    pub fn text(&self, args: &BenchArgs) -> String {
        let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
        let q = |q: &Quantiles| {
            format!(
                "p50 {} / p90 {} / p99 {} / p999 {} / max {} ms ({} samples)",
                ms(q.p50_us),
                ms(q.p90_us),
                ms(q.p99_us),
                ms(q.p999_us),
                ms(q.max_us),
                q.count
            )
        };
        let opt =
            |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.2}{unit}"));
        let mut out = format!(
            "relay workload: creates of {} B compressible text, clients={} depth={} {} for {:.1} s\n",
            args.value_size,
            args.clients,
            args.depth,
            match self.offered_rate {
                Some(r) => format!("open loop at {r:.0}/s"),
                None => "closed loop (peak)".to_string(),
            },
            self.elapsed_s
        );
        out.push_str(&format!(
            "  writes acked            {} ({:.0}/s), {} errors\n",
            self.writes, self.writes_per_sec, self.write_errors
        ));
        out.push_str(&format!(
            "  events received         {:.0}/s during the load; {} matched, {} missing, {} before their ack\n",
            self.events_per_sec_during_load, self.matched, self.missing, self.before_ack
        ));
        out.push_str(&format!(
            "  commit-to-subscriber    {}\n",
            q(&self.commit_to_sub)
        ));
        out.push_str(&format!(
            "  write-to-subscriber     {}\n",
            q(&self.write_to_sub)
        ));
        out.push_str(&format!("  write ack               {}\n", q(&self.ack)));
        out.push_str(&format!(
            "  backlog (acked, no event yet)  max {}, at end of load {}; drain after load {}\n",
            self.backlog_max,
            self.backlog_at_end,
            opt(self.drain_ms, " ms")
        ));
        out.push_str(&format!(
            "  relay lag (mntr)        max {} zxids, max {} ms over {} samples\n",
            self.lag_zxids_max
                .map_or("-".to_string(), |v| v.to_string()),
            self.lag_ms_max.map_or("-".to_string(), |v| v.to_string()),
            self.lag_samples
        ));
        out.push_str(&format!(
            "  lz4                     ratio {} ({} of {} log messages compressed, {} -> {} bytes)\n",
            opt(self.lz4_ratio(), ""),
            self.compressed,
            self.messages,
            self.raw_bytes,
            self.payload_bytes
        ));
        out.push_str(&format!(
            "  relay CPU               {} s on {} thread(s) = {} of a core, {} per event; whole process {} of a core\n",
            opt(self.relay_cpu_s, ""),
            self.relay_threads,
            opt(
                self.relay_cpu_s.map(|s| 100.0 * s / self.elapsed_s.max(1e-9)),
                "%"
            ),
            opt(self.relay_cpu_us_per_event(), " us"),
            opt(
                self.process_cpu_s
                    .map(|s| 100.0 * s / self.elapsed_s.max(1e-9)),
                "%"
            ),
        ));
        out.push_str(&format!(
            "  relay waiting for a CPU {} s; drain rate after the load {}\n",
            opt(self.relay_wait_s, ""),
            opt(self.drain_rate(), " events/s")
        ));
        out.push_str(&self.timeline_text());
        out
    }

    /// Where the slow events fell: how concentrated they are, and the worst windows in time order.
    fn timeline_text(&self) -> String {
        let slow: u64 = self.slow_windows.iter().map(|w| w.slow).sum();
        let mut out = format!(
            "  slow (> {} ms) events   {} in {} of {} windows of {} ms\n",
            SLOW.as_millis(),
            slow,
            self.slow_windows.len(),
            self.windows,
            WINDOW.as_millis()
        );
        let mut worst = self.slow_windows.clone();
        worst.sort_by_key(|w| std::cmp::Reverse(w.slow));
        worst.truncate(12);
        worst.sort_by_key(|w| w.at_ms);
        for w in worst {
            out.push_str(&format!(
                "    at {:>7.1} s: {:>5} of {:>5} slow, worst {:.1} ms (write ack worst {:.1} ms)\n",
                w.at_ms as f64 / 1000.0,
                w.slow,
                w.events,
                w.max_us as f64 / 1000.0,
                w.max_ack_us as f64 / 1000.0
            ));
        }
        out
    }
}

/// The JetStream subscriber: an ordered push consumer on the log subject, from new messages on.
async fn subscribe(args: &BenchArgs) -> Result<jetstream::consumer::push::Ordered, String> {
    let client = outpost_relay::async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(args.nats.as_str())
        .await
        .map_err(|e| format!("connect to NATS {}: {e}", args.nats))?;
    let js = jetstream::new(client.clone());
    // The relay creates its stream when it first connects: give a server that just started a moment.
    let start = Instant::now();
    let stream = loop {
        match js.get_stream(&args.stream).await {
            Ok(s) => break s,
            Err(e) if start.elapsed() > Duration::from_secs(30) => {
                return Err(format!("stream {} at {}: {e}", args.stream, args.nats))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    let consumer = stream
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("{}.log", args.subject_prefix),
            deliver_policy: consumer::DeliverPolicy::New,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("create a consumer on {}: {e}", args.stream))?;
    consumer
        .messages()
        .await
        .map_err(|e| format!("consume {}: {e}", args.stream))
}

/// Reads the subscriber's messages into `matcher` and `traffic` until `stop`.
async fn consume(
    mut messages: jetstream::consumer::push::Ordered,
    matcher: Arc<Mutex<Matcher>>,
    traffic: Arc<Traffic>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    while !stop.load(Ordering::Relaxed) {
        let next = tokio::time::timeout(Duration::from_millis(200), messages.next()).await;
        let m = match next {
            Err(_) => continue,
            Ok(None) => return Err("the consumer ended".into()),
            Ok(Some(Err(e))) => return Err(format!("consumer: {e}")),
            Ok(Some(Ok(m))) => m,
        };
        let at = Instant::now();
        let Some(headers) = m.message.headers.as_ref() else {
            continue;
        };
        if header_str(headers, KIND_HEADER).is_some_and(|k| k != "log") {
            continue;
        }
        let payload = &m.message.payload;
        traffic.messages.fetch_add(1, Ordering::Relaxed);
        traffic
            .payload_bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
        let raw = if header_str(headers, "Content-Encoding")
            == Some(outpost_relay::event::LZ4_CONTENT_ENCODING)
        {
            traffic.compressed.fetch_add(1, Ordering::Relaxed);
            // lz4_flex's size-prepended format: the uncompressed length, u32 little endian.
            payload
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map_or(payload.len() as u64, |b| u64::from(u32::from_le_bytes(b)))
        } else {
            payload.len() as u64
        };
        traffic.raw_bytes.fetch_add(raw, Ordering::Relaxed);
        if let Some(z) = header_str(headers, ZXID_HEADER).and_then(parse_zxid) {
            matcher
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .arrived(z.0, at);
        }
    }
    Ok(())
}

/// One worker's creates: closed loop, or on the open-loop schedule `(begin, rate, interval)`.
#[allow(clippy::too_many_arguments)]
async fn writer(
    client: Client,
    parent: String,
    worker: usize,
    workers: usize,
    rate: Option<f64>,
    deadline: tokio::time::Instant,
    value_size: usize,
    matcher: Arc<Mutex<Matcher>>,
    errors: Arc<AtomicU64>,
) {
    let open = Acl::open_unsafe();
    let begin = tokio::time::Instant::now();
    let mut k = 0u64;
    loop {
        let due = match rate {
            Some(rate) => {
                let due = begin
                    + Duration::from_secs_f64((worker as f64 + (k * workers as u64) as f64) / rate);
                if due >= deadline {
                    return;
                }
                // Behind schedule, the create goes out at once; its latency still counts from `due`.
                tokio::time::sleep_until(due).await;
                due.into_std()
            }
            None if tokio::time::Instant::now() >= deadline => return,
            None => Instant::now(),
        };
        k += 1;
        let value = compressible_value(value_size, (worker as u64) << 32 | k);
        let path = format!("{parent}/w{worker}-{k}");
        match client
            .create2(&path, &value, &open, CreateMode::Persistent)
            .await
        {
            Ok(Ok((_, stat))) => {
                let acked = Instant::now();
                matcher
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .acked(stat.czxid, due, acked);
            }
            Ok(Err(_)) | Err(outpost_core::client::ClientError::ConnectionLoss) => {
                errors.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Runs one relay measurement.
pub async fn run_relay(args: &BenchArgs) -> Result<RelayReport, String> {
    let hosts = outpost_core::client::parse_hosts(&args.servers).map_err(|e| e.to_string())?;
    let root = format!("/outpost-bench-relay-{:08x}", seed() as u32);
    let admin = connect(&hosts[0]).await?;
    let open = Acl::open_unsafe();
    let clients = args.clients.max(1);
    for path in std::iter::once(root.clone()).chain((0..clients).map(|c| format!("{root}/c{c}"))) {
        match admin
            .create(&path, b"", &open, CreateMode::Persistent)
            .await
        {
            Ok(Ok(_)) | Ok(Err(ErrorCode::NodeExists)) => {}
            Ok(Err(e)) => return Err(format!("create {path}: {}", e.name())),
            Err(e) => return Err(format!("create {path}: {e}")),
        }
    }
    let mut sessions = Vec::with_capacity(clients);
    for i in 0..clients {
        sessions.push(connect(&hosts[i % hosts.len()]).await?);
    }
    let messages = subscribe(args).await?;
    let matcher = Arc::new(Mutex::new(Matcher::new()));
    let traffic = Arc::new(Traffic::default());
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = tokio::spawn(consume(
        messages,
        matcher.clone(),
        traffic.clone(),
        stop.clone(),
    ));

    let cpu_before = args.relay_pid.and_then(thread_times);
    let duration = Duration::from_secs(args.duration.max(1));
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + duration;
    let depth = args.depth.max(1);
    let workers = clients * depth;
    let rate = args.rate.filter(|r| *r > 0.0);
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for (c, client) in sessions.iter().enumerate() {
        for d in 0..depth {
            tasks.spawn(writer(
                client.clone(),
                format!("{root}/c{c}"),
                c * depth + d,
                workers,
                rate,
                deadline,
                args.value_size,
                matcher.clone(),
                errors.clone(),
            ));
        }
    }
    // Sample the relay's lag and the backlog while the writers run.
    let (mut lag_z, mut lag_ms, mut samples, mut backlog_max) = (None::<i64>, None::<i64>, 0, 0);
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    while !tasks.is_empty() {
        tokio::select! {
            _ = tick.tick() => {
                backlog_max = backlog_max.max(matcher.lock().unwrap_or_else(|e| e.into_inner()).backlog());
                if let Some(obs) = &args.observer {
                    let m = mntr(obs).await;
                    if let (Some(z), Some(ms)) = (m.get("relay_lag_zxids"), m.get("relay_lag_ms")) {
                        lag_z = Some(lag_z.map_or(*z, |v| v.max(*z)));
                        lag_ms = Some(lag_ms.map_or(*ms, |v| v.max(*ms)));
                        samples += 1;
                    }
                }
            }
            _ = tasks.join_next() => {}
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let load_end = Instant::now();
    let cpu_after = args.relay_pid.and_then(thread_times);
    let (events_during_load, backlog_at_end) = {
        let m = matcher.lock().unwrap_or_else(|e| e.into_inner());
        (m.matched, m.backlog())
    };
    // Drain: wait for the events of every acknowledged create.
    let drain_limit = Duration::from_secs(args.drain_timeout);
    loop {
        let backlog = matcher.lock().unwrap_or_else(|e| e.into_inner()).backlog();
        if backlog == 0 || load_end.elapsed() > drain_limit || consumer.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    match consumer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("bench: subscriber: {e}"),
        Err(e) => eprintln!("bench: subscriber task: {e}"),
    }
    for s in &sessions {
        let _ = s.close().await;
    }
    if let Err(e) = delete_recursive(&admin, &root, 1000).await {
        eprintln!("bench: teardown of {root} failed: {}", e.message);
    }
    let _ = admin.close().await;

    let m = matcher.lock().unwrap_or_else(|e| e.into_inner());
    let backlog = m.backlog();
    let drain_ms = if backlog == 0 {
        m.last_arrival
            .map(|t| t.saturating_duration_since(load_end).as_secs_f64() * 1000.0)
    } else {
        None
    };
    let secs = |ns: u64| Some(ns as f64 / 1e9);
    let (relay_cpu_s, relay_wait_s, process_cpu_s, relay_threads) = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => (
            secs(b.relay_ns.saturating_sub(a.relay_ns)),
            secs(b.relay_wait_ns.saturating_sub(a.relay_wait_ns)),
            secs(b.all_ns.saturating_sub(a.all_ns)),
            b.relay_threads,
        ),
        _ => (None, None, None, 0),
    };
    Ok(RelayReport {
        offered_rate: rate,
        elapsed_s: elapsed,
        writes: m.acked,
        write_errors: errors.load(Ordering::Relaxed),
        writes_per_sec: m.acked as f64 / elapsed.max(1e-9),
        events_per_sec_during_load: events_during_load as f64 / elapsed.max(1e-9),
        matched: m.matched,
        missing: backlog as u64,
        before_ack: m.before_ack,
        commit_to_sub: Quantiles::of(&m.commit_to_sub),
        write_to_sub: Quantiles::of(&m.write_to_sub),
        ack: Quantiles::of(&m.ack),
        backlog_max,
        backlog_at_end,
        drain_ms,
        lag_zxids_max: lag_z,
        lag_ms_max: lag_ms,
        lag_samples: samples,
        messages: traffic.messages.load(Ordering::Relaxed),
        compressed: traffic.compressed.load(Ordering::Relaxed),
        payload_bytes: traffic.payload_bytes.load(Ordering::Relaxed),
        raw_bytes: traffic.raw_bytes.load(Ordering::Relaxed),
        relay_cpu_s,
        relay_wait_s,
        process_cpu_s,
        relay_threads,
        slow_windows: m.windows.values().filter(|w| w.slow > 0).copied().collect(),
        windows: m.windows.len(),
    })
}

/// Entry point of `outpost bench --workload relay`.
pub fn run(args: &BenchArgs, runtime: &tokio::runtime::Runtime) -> ExitCode {
    eprintln!(
        "bench: relay workload against {} (stream {} at {}), {} s",
        args.servers, args.stream, args.nats, args.duration
    );
    match runtime.block_on(run_relay(args)) {
        Ok(report) => {
            let text = report.text(args);
            if args.json {
                eprint!("{text}");
                println!("{}", report.json(args));
            } else {
                print!("{text}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("outpost bench: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bench's values have the requested size and compress (they are text with repeats, not noise).
    #[test]
    fn values_are_compressible_text_of_the_requested_size() {
        for size in [0, 1, 100, 1024, 4096] {
            let v = compressible_value(size, 7);
            assert_eq!(v.len(), size);
            assert!(std::str::from_utf8(&v).is_ok());
        }
        let v = compressible_value(4096, 1);
        // A crude compressibility check without lz4 here: few distinct 8-byte windows.
        let windows: std::collections::HashSet<&[u8]> = v.windows(8).collect();
        assert!(windows.len() < v.len() / 2, "{}", windows.len());
    }

    /// An event arriving before its create's reply still counts once, with latency from the reply
    /// clamped at the minimum, and an event no create of the run made is not a match.
    #[test]
    fn matcher_pairs_replies_and_events_in_either_order() {
        let mut m = Matcher::new();
        let t0 = Instant::now();
        m.acked(1, t0, t0 + Duration::from_millis(2));
        m.arrived(1, t0 + Duration::from_millis(3));
        m.arrived(2, t0 + Duration::from_millis(4));
        m.acked(2, t0, t0 + Duration::from_millis(5));
        m.arrived(99, t0);
        assert_eq!(m.matched, 2);
        assert_eq!(m.before_ack, 1);
        assert_eq!(m.backlog(), 0);
        m.acked(3, t0, t0);
        assert_eq!(m.backlog(), 1);
        let q = Quantiles::of(&m.commit_to_sub);
        assert!(q.max_us >= 999 && q.max_us <= 1001, "{q:?}");
    }

    /// The stall timeline puts each matched event in the window of its ack and counts as slow only
    /// events over 5 ms from reply to subscriber.
    #[test]
    fn timeline_windows_count_slow_events_by_ack_time() {
        let mut m = Matcher::new();
        let t0 = m.origin;
        let ms = Duration::from_millis;
        // Window 0: one fast event. Window 3 (300-399 ms): one fast, two slow (6 and 40 ms).
        m.acked(1, t0, t0 + ms(10));
        m.arrived(1, t0 + ms(11));
        m.acked(2, t0, t0 + ms(310));
        m.arrived(2, t0 + ms(312));
        m.acked(3, t0, t0 + ms(320));
        m.arrived(3, t0 + ms(326));
        m.acked(4, t0 + ms(300), t0 + ms(350));
        m.arrived(4, t0 + ms(390));
        let w: Vec<&Window> = m.windows.values().collect();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].at_ms, w[0].events, w[0].slow), (0, 1, 0));
        assert_eq!((w[1].at_ms, w[1].events, w[1].slow), (300, 3, 2));
        assert!((39_900..=40_100).contains(&w[1].max_us), "{:?}", w[1]);
        // The worst ack in window 3 is event 3's: due at t0, acked at 320 ms.
        assert!((319_000..=321_000).contains(&w[1].max_ack_us), "{:?}", w[1]);
    }
}
