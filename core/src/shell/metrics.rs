//! Metrics: the `metrics` crate facade, a Prometheus exporter on `metricsProvider.httpPort` (`GET /metrics`),
//! and the few statistics the four-letter words print that the state machine does not keep (request
//! latency, fsync time).
//!
//! Names follow ZooKeeper's Prometheus provider: the `mntr` keys without `zk_` become gauges (`znode_count`,
//! `watch_count`, `num_alive_connections`, `packets_received`, `uptime`, ...), and the summaries keep
//! ZooKeeper's names: `fsynctime`, `snapshottime`, `readlatency`, `updatelatency` (all in ms), plus the
//! counters `commit_count`, `snap_count`, `diff_count`, `snap_sync_bytes_sent`, `snap_sync_bytes_received` and
//! `learner_syncs_throttled`. Per-observer values (`observer_lag_zxids`, `observer_lag_ms`) carry a `sid`
//! label.
//! Gauges are evaluated at scrape time from the same [`ServerSnapshot`](crate::server::fourlw::ServerSnapshot)
//! that `mntr` and the AdminServer's `monitor` render, as ZooKeeper evaluates its gauges on scrape.
//!
//! The Prometheus recorder is process-global (the `metrics` facade allows one), so it is installed once;
//! several servers in one process (tests) share it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::connection::CoreEvent;
use crate::server::admin;

/// Summary of the log thread's flush + fsync time per batch, in ms.
pub const FSYNC_TIME: &str = "fsynctime";
/// Summary of the time to write a snapshot, in ms.
pub const SNAPSHOT_TIME: &str = "snapshottime";
/// Summary of read request latency (arrival to reply), in ms.
pub const READ_LATENCY: &str = "readlatency";
/// Summary of write request latency (arrival to reply, after fsync), in ms.
pub const UPDATE_LATENCY: &str = "updatelatency";
/// Counter of committed txns.
pub const COMMIT_COUNT: &str = "commit_count";

/// Installs the process-wide Prometheus recorder (once) and returns its handle.
pub fn install_recorder() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(err) => {
                tracing::warn!("metrics recorder not installed: {err}");
                None
            }
        })
        .clone()
}

/// A min/avg/max/count summary kept with atomics, for the `mntr` lines of a summary metric.
#[derive(Debug)]
pub struct Summary {
    count: AtomicU64,
    sum_us: AtomicU64,
    min_us: AtomicU64,
    max_us: AtomicU64,
}

impl Summary {
    /// An empty summary.
    pub const fn new() -> Summary {
        Summary {
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            min_us: AtomicU64::new(u64::MAX),
            max_us: AtomicU64::new(0),
        }
    }

    /// Adds one observation.
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.min_us.fetch_min(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// ZooKeeper's `mntr` lines for a summary (`avg_<name>`, `min_<name>`, `max_<name>`, `cnt_<name>`,
    /// `sum_<name>`), in ms.
    pub fn mntr_lines(&self, name: &str) -> Vec<(String, String)> {
        let count = self.count.load(Ordering::Relaxed);
        let sum = self.sum_us.load(Ordering::Relaxed) / 1000;
        let (min, max, avg) = if count == 0 {
            (0, 0, 0.0)
        } else {
            (
                self.min_us.load(Ordering::Relaxed) / 1000,
                self.max_us.load(Ordering::Relaxed) / 1000,
                self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0 / count as f64,
            )
        };
        vec![
            (
                format!("avg_{name}"),
                crate::server::fourlw::java_double(avg),
            ),
            (format!("min_{name}"), min.to_string()),
            (format!("max_{name}"), max.to_string()),
            (format!("cnt_{name}"), count.to_string()),
            (format!("sum_{name}"), sum.to_string()),
        ]
    }
}

impl Default for Summary {
    fn default() -> Self {
        Summary::new()
    }
}

/// The log thread's fsync times, process-wide (the log thread has no other channel to the `mntr` text).
pub static FSYNC: Summary = Summary::new();

/// Records one flush + fsync of the txn log.
pub fn record_fsync(d: Duration) {
    FSYNC.record(d);
    metrics::histogram!(FSYNC_TIME).record(d.as_secs_f64() * 1000.0);
}

/// Records one snapshot write.
pub fn record_snapshot(d: Duration) {
    metrics::histogram!(SNAPSHOT_TIME).record(d.as_secs_f64() * 1000.0);
}

/// Request latency as `srvr` reports it (min/avg/max in ms), reset by `srst`.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    count: u64,
    sum_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

impl Latency {
    /// Records one request, answered `d` after it arrived; `write` picks the Prometheus summary.
    pub fn record(&mut self, d: Duration, write: bool) {
        let ms = d.as_secs_f64() * 1000.0;
        if self.count == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        if ms > self.max_ms {
            self.max_ms = ms;
        }
        self.count += 1;
        self.sum_ms += ms;
        let name = if write { UPDATE_LATENCY } else { READ_LATENCY };
        metrics::histogram!(name).record(ms);
    }

    /// (min, avg, max) in ms, ZooKeeper style: whole ms for min and max.
    pub fn min_avg_max(&self) -> (i64, f64, i64) {
        if self.count == 0 {
            return (0, 0.0, 0);
        }
        (
            self.min_ms as i64,
            self.sum_ms / self.count as f64,
            self.max_ms as i64,
        )
    }

    /// `srst`.
    pub fn reset(&mut self) {
        *self = Latency::default();
    }
}

/// Monitor keys exported as counters rather than gauges.
const COUNTERS: &[&str] = &[
    COMMIT_COUNT,
    "snap_count",
    "diff_count",
    "snap_sync_bytes_sent",
    "snap_sync_bytes_received",
    "learner_syncs_throttled",
];

/// Per-observer `monitor` keys (`observer_lag_zxids_sid_4`): exported as one gauge per name with a
/// `sid` label (`observer_lag_zxids{sid="4"}`), which is what a Prometheus user aggregates and alerts
/// on, rather than one metric name per observer.
const PER_SID: &[&str] = &["observer_lag_zxids", "observer_lag_ms"];

/// Splits `observer_lag_ms_sid_4` into (`observer_lag_ms`, `4`).
fn per_sid(key: &str) -> Option<(&'static str, &str)> {
    PER_SID.iter().find_map(|name| {
        let sid = key.strip_prefix(name)?.strip_prefix("_sid_")?;
        (!sid.is_empty() && sid.bytes().all(|b| b.is_ascii_digit())).then_some((*name, sid))
    })
}

/// The per-observer gauges in Prometheus' text format, rendered at scrape time from the `monitor`
/// answer (so an observer that went away leaves no stale series behind).
pub fn labelled_gauges(resp: &admin::Response) -> String {
    let mut out = String::new();
    for name in PER_SID {
        let rows: Vec<(&str, f64)> = resp
            .fields
            .iter()
            .filter_map(|(k, v)| {
                let (n, sid) = per_sid(k)?;
                (n == *name).then_some((sid, v.as_f64()?))
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        out.push_str(&format!("# TYPE {name} gauge\n"));
        for (sid, v) in rows {
            out.push_str(&format!("{name}{{sid=\"{sid}\"}} {v}\n"));
        }
    }
    out
}

/// Sets the gauges (and absolute counters) from the `monitor` answer's numeric fields.
fn update_from_monitor(resp: &admin::Response) {
    for (key, value) in &resp.fields {
        // Summaries' mntr lines (avg_fsynctime...) are the exporter's own summaries already.
        if key.ends_with(FSYNC_TIME) || per_sid(key).is_some() {
            continue;
        }
        let Some(v) = value.as_f64() else { continue };
        if COUNTERS.contains(&key.as_str()) {
            metrics::counter!(key.clone()).absolute(v.max(0.0) as u64);
        } else {
            metrics::gauge!(key.clone()).set(v);
        }
    }
}

#[derive(Clone)]
struct Exporter {
    handle: PrometheusHandle,
    events: mpsc::Sender<CoreEvent>,
}

async fn metrics_page(State(ex): State<Exporter>) -> impl IntoResponse {
    let (reply, rx) = oneshot::channel();
    let asked = ex
        .events
        .send(CoreEvent::Admin {
            command: admin::lookup("monitor").expect("monitor is a command"),
            params: Default::default(),
            reply,
        })
        .await;
    let mut labelled = String::new();
    if asked.is_ok() {
        if let Ok(resp) = rx.await {
            update_from_monitor(&resp);
            labelled = labelled_gauges(&resp);
        }
    }
    ex.handle.run_upkeep();
    let mut page = ex.handle.render();
    page.push_str(&labelled);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], page)
}

/// How often the recorder's histogram samples are folded into their summaries without a scrape.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds the recorded samples into the summaries every [`UPKEEP_INTERVAL`] until the task is aborted.
/// The recorder keeps every histogram sample (each request's latency) until upkeep runs; a scrape
/// runs it too, but a server nobody scrapes would otherwise hold every sample of its life (as
/// `PrometheusBuilder::install` avoids with its own upkeep thread).
pub async fn upkeep(handle: PrometheusHandle) {
    let mut every = tokio::time::interval(UPKEEP_INTERVAL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}

/// Binds the exporter's port; a failure is logged and the server runs without it.
pub async fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => {
            tracing::info!("Prometheus metrics on http://{addr}/metrics");
            Some(l)
        }
        Err(err) => {
            tracing::warn!("metrics port {addr} not bound, metrics export disabled: {err}");
            None
        }
    }
}

/// Serves `GET /metrics` until the task is aborted.
pub async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    events: mpsc::Sender<CoreEvent>,
) {
    let app = Router::new()
        .route("/metrics", get(metrics_page))
        .with_state(Exporter { handle, events });
    if let Err(err) = axum::serve(listener, app).await {
        tracing::warn!("metrics exporter stopped: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Per-observer `monitor` keys become one labelled gauge per name, in Prometheus' text format, and
    /// only keys of exactly that shape are taken.
    #[test]
    fn per_observer_keys_become_sid_labels() {
        assert_eq!(
            per_sid("observer_lag_ms_sid_12"),
            Some(("observer_lag_ms", "12"))
        );
        assert_eq!(per_sid("observer_lag_ms_sid_"), None);
        assert_eq!(per_sid("observer_lag_ms_sid_1x"), None);
        assert_eq!(per_sid("learner_master_lag_ms"), None);
        let resp = admin::Response {
            command: "monitor".into(),
            error: None,
            fields: vec![
                ("synced_observers".into(), json!(2)),
                ("observer_lag_zxids_sid_4".into(), json!(3)),
                ("observer_lag_ms_sid_4".into(), json!(250)),
                ("observer_lag_zxids_sid_5".into(), json!(0)),
                ("observer_lag_ms_sid_5".into(), json!(0)),
            ],
        };
        assert_eq!(
            labelled_gauges(&resp),
            "# TYPE observer_lag_zxids gauge\nobserver_lag_zxids{sid=\"4\"} 3\n\
             observer_lag_zxids{sid=\"5\"} 0\n# TYPE observer_lag_ms gauge\n\
             observer_lag_ms{sid=\"4\"} 250\nobserver_lag_ms{sid=\"5\"} 0\n"
        );
    }
}
