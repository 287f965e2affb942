//! The relay task: takes committed txns from the server's bounded queue (or, when it fell behind or
//! starts up, from the txn log on disk), turns them into events and hands them to the sink, in zxid
//! order, resuming from where the sink ends, and publishing an explicit resync when the txns it needs
//! were purged from the log.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::FutureExt as _;
use outpost_core::ids::Zxid;
use outpost_core::proto::TxnEntry;
use outpost_core::server::standalone::read_snapshot_blob;
use outpost_core::shell::standalone::{CommitFeedReceiver, CommittedTxn};
use outpost_core::storage::{DiskRef, LogReader, RealDisk, SnapshotStore, StorageError};
use outpost_core::tree::DataTree;
use thiserror::Error;

use crate::config::{RelayConfig, SinkKind};
use crate::event::{resync_events, txn_events, Event};
use crate::lines::{LineSink, LinesError};
use crate::nats::{NatsError, NatsSink, Resume};

/// Most txns read from the log per catch-up read, and most per publish batch.
const CATCH_UP_BATCH: usize = 4096;
const PUBLISH_BATCH: usize = 256;

/// The server's files the relay reads (never writes): `dataDir` for snapshots, `dataLogDir` for the log.
#[derive(Clone, Debug)]
pub struct ServerFiles {
    /// `dataDir`.
    pub data_dir: PathBuf,
    /// `dataLogDir`.
    pub data_log_dir: PathBuf,
    /// `zookeeper.extendedTypesEnabled` (how snapshots and ephemeral owners read).
    pub extended_types: bool,
}

/// Why a relay session stopped (the relay logs it, waits, and resumes from the sink's end).
#[derive(Debug, Error)]
pub enum RelayError {
    /// NATS or JetStream failed.
    #[error(transparent)]
    Nats(#[from] NatsError),
    /// The stdout or file sink failed.
    #[error(transparent)]
    Lines(#[from] LinesError),
    /// Reading the txn log or a snapshot failed.
    #[error("reading the server's files: {0}")]
    Storage(#[from] StorageError),
    /// A txn or snapshot on disk did not decode.
    #[error("corrupt data on disk: {0}")]
    Corrupt(String),
}

enum Sink {
    Nats(Box<NatsSink>),
    Lines(LineSink),
}

enum Next {
    Txn(CommittedTxn),
    Purged(String),
    Closed,
}

/// A log reader kept between catch-up reads: the last zxid it yielded and the record it read past the
/// target.
struct OpenReader {
    reader: LogReader,
    last: Zxid,
    peeked: Option<(Zxid, Vec<u8>)>,
}

/// Txns in zxid order from the live queue, falling back to the log whenever the queue skipped some.
struct Source {
    feed: CommitFeedReceiver,
    files: ServerFiles,
    disk: DiskRef,
    pending: Option<CommittedTxn>,
    ready: VecDeque<CommittedTxn>,
    closed: bool,
    empty_reads: u32,
    /// True while txns come from the log (the queue skipped some, or the relay is starting).
    behind: bool,
    reader: Option<OpenReader>,
    /// Set when the queue claims a txn follows the last one although its zxid cannot (see [`follows`]):
    /// this server skipped those txns (it was synced with a snapshot), so they are in no log here.
    hole: Option<String>,
}

/// True when `next` can be the txn committed right after `prev`: the next counter of the same epoch, or
/// the first txn of a later epoch (a new leader's zxids restart at counter 1, `Leader.lead` /
/// `ZxidUtils.makeZxid(epoch, 0)` plus one per proposal). Anything else means txns are missing.
fn follows(prev: Zxid, next: Zxid) -> bool {
    if prev == Zxid::ZERO {
        return true;
    }
    if next.epoch() == prev.epoch() {
        next.counter() == prev.counter().wrapping_add(1)
    } else {
        next.epoch() > prev.epoch() && next.counter() == 1
    }
}

impl Source {
    fn committed(&self) -> Zxid {
        self.feed.committed_zxid().unwrap_or(Zxid::ZERO)
    }

    /// The txn right after `after`, if one is at hand without waiting.
    fn try_next(&mut self, after: Zxid) -> Option<CommittedTxn> {
        loop {
            if let Some(front) = self.ready.front() {
                if front.zxid <= after {
                    self.ready.pop_front();
                    continue;
                }
                if front.prev == after && !follows(after, front.zxid) {
                    self.hole = Some(format!(
                        "the txn log goes from zxid {after} to {} without the txns between (synced from a snapshot)",
                        front.zxid
                    ));
                    self.ready.clear();
                    return None;
                }
                if front.prev == after {
                    return self.ready.pop_front();
                }
                self.ready.clear();
            }
            let item = match self.pending.take() {
                Some(p) => p,
                None if self.closed => return None,
                None => match self.feed.recv().now_or_never() {
                    Some(Some(item)) => item,
                    Some(None) => {
                        self.closed = true;
                        return None;
                    }
                    None => return None,
                },
            };
            if item.zxid <= after {
                continue;
            }
            if item.prev == after && !follows(after, item.zxid) {
                // The server's feed says nothing is missing, but the zxids say otherwise (the server
                // installed a snapshot from its leader): neither the queue nor the log has the txns.
                self.hole = Some(format!(
                    "the server went from zxid {after} to {} without the txns between (synced from a snapshot)",
                    item.zxid
                ));
                self.pending = Some(item);
                return None;
            }
            if item.prev == after {
                if self.behind && self.ready.is_empty() {
                    self.behind = false;
                    tracing::info!("relay: caught up at zxid {after}; following the live queue");
                }
                return Some(item);
            }
            self.pending = Some(item);
            return None;
        }
    }

    /// The txn right after `after`, waiting for it; reads the log when the queue skipped txns.
    async fn next(&mut self, after: Zxid) -> Result<Next, RelayError> {
        loop {
            if let Some(t) = self.try_next(after) {
                return Ok(Next::Txn(t));
            }
            if let Some(why) = self.hole.take() {
                return Ok(Next::Purged(why));
            }
            if let Some(p) = &self.pending {
                // The queue skipped txns (it was full): read them from the log.
                let target = p.prev;
                if let Some(n) = self.catch_up(after, target).await? {
                    return Ok(n);
                }
                continue;
            }
            let committed = self.committed();
            if committed > after {
                if let Some(n) = self.catch_up(after, committed).await? {
                    return Ok(n);
                }
                continue;
            }
            if self.closed {
                return Ok(Next::Closed);
            }
            match tokio::time::timeout(Duration::from_millis(200), self.feed.recv()).await {
                Ok(Some(item)) => self.pending = Some(item),
                Ok(None) => self.closed = true,
                Err(_) => {}
            }
        }
    }

    /// Reads committed txns after `after` up to `target` from the log into `ready`. `Some(Purged)` when the
    /// log no longer holds the txn right after `after`.
    async fn catch_up(&mut self, after: Zxid, target: Zxid) -> Result<Option<Next>, RelayError> {
        if !self.behind {
            self.behind = true;
            tracing::info!(
                "relay: behind the queue ({} txns not queued so far); reading the txn log from zxid {after}",
                self.feed.dropped()
            );
        }
        let disk = self.disk.clone();
        let dir = self.files.data_log_dir.clone();
        metrics::counter!("outpost_relay_catch_up_reads_total").increment(1);
        // Continue the previous read where it stopped (a long catch-up reads each segment once).
        let open = self.reader.take().filter(|r| r.last == after);
        let (read, reader) = tokio::task::spawn_blocking(move || {
            let mut r = open.unwrap_or_else(|| OpenReader {
                reader: LogReader::open(disk, &dir, after),
                last: after,
                peeked: None,
            });
            let mut out = Vec::new();
            loop {
                let record = match r.peeked.take().map(Ok).or_else(|| r.reader.next()) {
                    None => return (Ok(out), None),
                    Some(Err(e)) => return (Err(e), None),
                    Some(Ok(record)) => record,
                };
                let zxid = record.0;
                if zxid > target || out.len() >= CATCH_UP_BATCH {
                    r.peeked = Some(record);
                    return (Ok(out), Some(r));
                }
                let Ok(entry) = TxnEntry::decode(&record.1) else {
                    let err = StorageError::Corrupt {
                        file: dir.clone(),
                        offset: 0,
                        detail: format!("txn {zxid} does not decode"),
                    };
                    return (Err(err), None);
                };
                out.push(CommittedTxn {
                    prev: r.last,
                    zxid,
                    header: entry.header,
                    txn: entry.txn,
                });
                r.last = zxid;
            }
        })
        .await
        .map_err(|e| RelayError::Corrupt(format!("log reader task: {e}")))?;
        self.reader = reader;
        match read {
            Ok(txns) if txns.is_empty() => {
                // Committed txns are fsynced before they apply, so they are in the log unless purged;
                // an empty read can still race a segment being created, so look again before deciding.
                self.empty_reads += 1;
                if self.empty_reads >= 20 {
                    self.empty_reads = 0;
                    return Ok(Some(Next::Purged(format!(
                        "the txn log holds nothing after zxid {after} although zxid {target} is committed"
                    ))));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok(None)
            }
            Ok(txns) => {
                self.empty_reads = 0;
                self.ready.extend(txns);
                Ok(None)
            }
            Err(StorageError::Gap {
                expected, found, ..
            }) => Ok(Some(Next::Purged(format!(
                "the txn log skips from zxid {expected} to {found} (purged)"
            )))),
            Err(e) => Err(e.into()),
        }
    }
}

/// Rebuilds the tree at (at least) `committed` from the newest snapshot and the log after it.
fn build_tree(
    disk: DiskRef,
    files: &ServerFiles,
    committed: Zxid,
) -> Result<(DataTree, Zxid), RelayError> {
    let store = SnapshotStore::open(disk.clone(), &files.data_dir)?;
    let (base, mut tree) = match store.newest_valid()? {
        Some((zxid, blob)) => {
            let (tree, _) = read_snapshot_blob(&blob, files.extended_types)
                .map_err(|e| RelayError::Corrupt(format!("snapshot at {zxid}: {e}")))?;
            (zxid, tree)
        }
        None => (Zxid::ZERO, DataTree::new(files.extended_types)),
    };
    let mut last = base;
    for record in LogReader::open(disk, &files.data_log_dir, base) {
        let (zxid, bytes) = record?;
        if zxid > committed {
            break;
        }
        let entry = TxnEntry::decode(&bytes)
            .map_err(|e| RelayError::Corrupt(format!("txn {zxid} in the log: {e}")))?;
        let _ = tree.apply_txn(&entry.header, &entry.txn);
        last = zxid;
    }
    Ok((tree, last))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Counters behind the metrics that need state (events/s, compression ratio).
struct Stats {
    window_start: Instant,
    window_events: u64,
    raw_bytes: u64,
    bytes: u64,
}

impl Stats {
    fn published(&mut self, events: u64, raw: u64, bytes: u64, messages: u64) {
        metrics::counter!("outpost_relay_events_total").increment(events);
        metrics::counter!("outpost_relay_messages_total").increment(messages);
        metrics::counter!("outpost_relay_bytes_total").increment(bytes);
        metrics::counter!("outpost_relay_uncompressed_bytes_total").increment(raw);
        self.raw_bytes += raw;
        self.bytes += bytes;
        if self.bytes > 0 {
            metrics::gauge!("outpost_relay_compression_ratio")
                .set(self.raw_bytes as f64 / self.bytes as f64);
        }
        self.window_events += events;
        let elapsed = self.window_start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            metrics::gauge!("outpost_relay_events_per_second")
                .set(self.window_events as f64 / elapsed.as_secs_f64());
            self.window_start = Instant::now();
            self.window_events = 0;
        }
    }
}

fn lag(committed: Zxid, after: Zxid, last_time_ms: i64) {
    let zxids = if committed.epoch() == after.epoch() {
        i64::from(committed.counter()) - i64::from(after.counter())
    } else {
        i64::from(committed.counter())
    };
    metrics::gauge!("outpost_relay_lag_zxids").set(zxids.max(0) as f64);
    metrics::gauge!("outpost_relay_lag_ms").set((now_ms() - last_time_ms).max(0) as f64);
}

/// The relay: owns the sink and the source, and runs until the server stops (its feed closes).
pub struct Relay {
    cfg: RelayConfig,
    source: Source,
    stats: Stats,
}

impl Relay {
    /// A relay reading `feed` and the server's `files`.
    pub fn new(cfg: RelayConfig, files: ServerFiles, feed: CommitFeedReceiver) -> Relay {
        Relay {
            cfg,
            source: Source {
                feed,
                files,
                disk: Arc::new(RealDisk::new()),
                pending: None,
                ready: VecDeque::new(),
                closed: false,
                empty_reads: 0,
                behind: false,
                reader: None,
                hole: None,
            },
            stats: Stats {
                window_start: Instant::now(),
                window_events: 0,
                raw_bytes: 0,
                bytes: 0,
            },
        }
    }

    /// Runs until the server has stopped and every committed txn is published (or, if the sink is down
    /// when the server stops, until the task is dropped). Errors are logged and the relay resumes from
    /// the sink's end after a pause; only a configuration it cannot use at all ends it with an error.
    pub async fn run(mut self) -> Result<(), RelayError> {
        while self.source.feed.committed_zxid().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut sink = loop {
            let made = match &self.cfg.sink {
                SinkKind::Nats => NatsSink::connect(&self.cfg)
                    .await
                    .map(|n| Sink::Nats(Box::new(n)))
                    .map_err(RelayError::from),
                SinkKind::Stdout => Ok(Sink::Lines(LineSink::stdout())),
                SinkKind::File(p) => LineSink::file(p).map(Sink::Lines).map_err(RelayError::from),
            };
            match made {
                Ok(s) => break s,
                Err(e) => {
                    metrics::counter!("outpost_relay_errors_total", "kind" => "connect")
                        .increment(1);
                    tracing::warn!("relay: {e}; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let started = Instant::now();
            match self.session(&mut sink).await {
                Ok(()) => {
                    tracing::info!("relay: the server stopped; every committed txn is relayed");
                    return Ok(());
                }
                Err(e) => {
                    // A session that ran a while was healthy: its error starts the back-off over
                    // (otherwise, after a few errors, each later one would stall the relay 5 s).
                    if started.elapsed() >= Duration::from_secs(10) {
                        backoff = Duration::from_millis(100);
                    }
                    let kind = match &e {
                        RelayError::Nats(NatsError::Refused(_)) => "refused",
                        RelayError::Nats(_) => "nats",
                        RelayError::Lines(_) => "sink",
                        RelayError::Storage(_) | RelayError::Corrupt(_) => "storage",
                    };
                    metrics::counter!("outpost_relay_errors_total", "kind" => kind).increment(1);
                    if kind == "refused" {
                        tracing::info!("relay: {e}; re-reading the stream's end");
                        backoff = Duration::from_millis(100);
                    } else {
                        tracing::warn!("relay: {e}; resuming from the sink's end in {backoff:?}");
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn resume(&self, sink: &mut Sink) -> Result<Option<Resume>, RelayError> {
        Ok(match sink {
            Sink::Nats(n) => {
                n.ensure_stream().await?;
                Some(n.resume().await?)
            }
            Sink::Lines(l) => l.resume()?,
        })
    }

    async fn session(&mut self, sink: &mut Sink) -> Result<(), RelayError> {
        let (mut after, mut skip) = match self.resume(sink).await? {
            Some(Resume::After {
                zxid,
                published_nodes,
            }) => (zxid, published_nodes),
            Some(Resume::InsideResync) => {
                let z = self
                    .resync(sink, "the sink ends inside an unfinished resync")
                    .await?;
                (z, 0)
            }
            None => (self.source.committed(), 0),
        };
        tracing::info!("relay: resuming after zxid {after}");
        // The commit time of the sink's last txn is not at hand: count lag from now on.
        self.source.feed.relayed(after, now_ms());
        let mut warned_ahead = false;
        loop {
            let committed = self.source.committed();
            if after > committed && !warned_ahead {
                warned_ahead = true;
                tracing::warn!(
                    "relay: the sink is at zxid {after}, ahead of this server ({committed}); waiting for the server"
                );
            }
            let next = match self.source.try_next(after) {
                Some(t) => Next::Txn(t),
                None => {
                    // Nothing at hand: what is in flight is settled (and counted as relayed) before
                    // waiting, so an idle relay reports no lag.
                    self.settle(sink).await?;
                    self.source.next(after).await?
                }
            };
            match next {
                Next::Closed => {
                    self.settle(sink).await?;
                    if let Sink::Nats(n) = sink {
                        n.flush().await;
                    }
                    return Ok(());
                }
                Next::Purged(why) => {
                    tracing::error!(
                        "relay: {why}; publishing a resync (marker and a dump of the tree)"
                    );
                    self.settle(sink).await?;
                    after = self.resync(sink, &why).await?;
                    self.source.feed.relayed(after, now_ms());
                    skip = 0;
                }
                Next::Txn(first) => {
                    let mut batch = vec![first];
                    while batch.len() < PUBLISH_BATCH {
                        let last = batch[batch.len() - 1].zxid;
                        match self.source.try_next(last) {
                            Some(t) => batch.push(t),
                            None => break,
                        }
                    }
                    let stored = self.publish(sink, &batch, skip).await?;
                    after = batch[batch.len() - 1].zxid;
                    skip = 0;
                    if let Some((zxid, time)) = stored {
                        self.source.feed.relayed(zxid, time);
                        lag(self.source.committed(), zxid, time);
                    }
                    metrics::gauge!("outpost_relay_queue_dropped")
                        .set(self.source.feed.dropped() as f64);
                }
            }
        }
    }

    /// Waits until everything sent is stored; reports the newest stored txn as relayed.
    async fn settle(&mut self, sink: &mut Sink) -> Result<(), RelayError> {
        if let Sink::Nats(n) = sink {
            if let Some((zxid, time)) = n.settle_all().await? {
                self.source.feed.relayed(zxid, time);
                lag(self.source.committed(), zxid, time);
            }
        }
        Ok(())
    }

    /// Sends a batch of txns; returns the newest txn known stored (for NATS, those whose acks came
    /// back; the rest settle later, see [`NatsSink::send`]).
    async fn publish(
        &mut self,
        sink: &mut Sink,
        batch: &[CommittedTxn],
        skip: usize,
    ) -> Result<Option<(Zxid, i64)>, RelayError> {
        let events: Vec<_> = batch
            .iter()
            .map(|t| txn_events(&self.cfg, &t.header, &t.txn))
            .collect();
        match sink {
            Sink::Nats(n) => {
                let mut out = Vec::new();
                for (i, (ev, t)) in events.iter().zip(batch).enumerate() {
                    n.txn_messages(ev, if i == 0 { skip } else { 0 }, &mut out);
                    // The log message comes last: once it is stored, so is the whole txn.
                    if let Some(last) = out.last_mut() {
                        last.completes = Some((t.zxid, t.header.time));
                    }
                }
                let raw: usize = out.iter().map(|m| m.raw_len).sum();
                let bytes: usize = out.iter().map(|m| m.payload.len()).sum();
                let messages = out.len();
                let stored = n.send(out).await?;
                self.stats.published(
                    events.len() as u64,
                    raw as u64,
                    bytes as u64,
                    messages as u64,
                );
                Ok(stored)
            }
            Sink::Lines(l) => {
                let logs: Vec<&Event> = events.iter().map(|e| &e.log).collect();
                let bytes = l.write(&logs)?;
                self.stats.published(
                    events.len() as u64,
                    bytes as u64,
                    bytes as u64,
                    logs.len() as u64,
                );
                let last = &batch[batch.len() - 1];
                Ok(Some((last.zxid, last.header.time)))
            }
        }
    }

    /// Publishes resync_begin, the tree's znodes and resync_end at the newest committed zxid; returns it.
    async fn resync(&mut self, sink: &mut Sink, reason: &str) -> Result<Zxid, RelayError> {
        metrics::counter!("outpost_relay_resyncs_total").increment(1);
        let committed = self.source.committed();
        let disk = self.source.disk.clone();
        let files = self.source.files.clone();
        let (tree, zxid) = tokio::task::spawn_blocking(move || build_tree(disk, &files, committed))
            .await
            .map_err(|e| RelayError::Corrupt(format!("resync task: {e}")))??;
        let now = now_ms();
        let events = resync_events(&self.cfg, &tree, zxid.0, now, reason);
        tracing::warn!(
            "relay: resync at zxid {zxid}: {} znodes follow the resync_begin marker ({reason})",
            events.len().saturating_sub(2)
        );
        match sink {
            Sink::Nats(n) => {
                for (c, chunk) in events.chunks(PUBLISH_BATCH).enumerate() {
                    let mut out = Vec::new();
                    n.resync_messages(chunk, now, c * PUBLISH_BATCH, &mut out);
                    n.publish(out).await?;
                }
            }
            Sink::Lines(l) => {
                let refs: Vec<&Event> = events.iter().collect();
                l.write(&refs)?;
            }
        }
        Ok(zxid)
    }
}

/// Spawns a relay on the current tokio runtime; its errors are logged.
pub fn spawn(
    cfg: RelayConfig,
    files: ServerFiles,
    feed: CommitFeedReceiver,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = Relay::new(cfg, files, feed).run().await {
            tracing::error!("relay stopped: {e}");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(epoch: i64, counter: i64) -> Zxid {
        Zxid((epoch << 32) | counter)
    }

    /// A txn follows the one before it only as the next counter of its epoch or as the first txn of a
    /// later epoch; a jump (a snapshot sync skipped txns) does not.
    #[test]
    fn follows_accepts_only_the_next_zxid() {
        assert!(follows(Zxid::ZERO, z(1, 1)));
        assert!(follows(z(1, 7), z(1, 8)));
        assert!(follows(z(1, 7), z(2, 1)));
        assert!(follows(z(1, 7), z(4, 1)));
        assert!(!follows(z(1, 7), z(1, 9)));
        assert!(!follows(z(1, 7), z(1, 7)));
        assert!(!follows(z(1, 7), z(2, 0x2cc)));
        assert!(!follows(z(2, 1), z(1, 8)));
    }

    fn committed(prev: Zxid, zxid: Zxid, time: i64) -> CommittedTxn {
        CommittedTxn {
            prev,
            zxid,
            header: outpost_core::proto::TxnHeader {
                client_id: 1,
                cxid: 1,
                zxid: zxid.0,
                time,
                ty: -10,
            },
            txn: outpost_core::proto::Txn::CreateSession { timeout: 30_000 },
        }
    }

    fn line(lines: &[(String, String)], key: &str) -> Option<i64> {
        lines
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }

    /// The relay's progress reaches `mntr` through the commit feed: no lines until the relay reports,
    /// then the last relayed zxid and the lag in zxids (across an epoch change, the new epoch's counter)
    /// and in ms (0 once caught up).
    #[test]
    fn relay_progress_in_mntr_lines() {
        let (feed, rx) = outpost_core::shell::standalone::commit_feed(8);
        feed.recovered(Zxid::ZERO);
        assert!(feed.mntr_lines(1_000).is_empty());
        feed.offer(committed(Zxid::ZERO, z(1, 1), 100));
        feed.offer(committed(z(1, 1), z(1, 2), 200));
        feed.offer(committed(z(1, 2), z(1, 3), 300));
        rx.relayed(z(1, 1), 100);
        let lines = feed.mntr_lines(1_000);
        assert_eq!(line(&lines, "relay_last_zxid"), Some(z(1, 1).0));
        assert_eq!(line(&lines, "relay_lag_zxids"), Some(2));
        assert_eq!(line(&lines, "relay_lag_ms"), Some(900));
        feed.offer(committed(z(1, 3), z(2, 1), 400));
        assert_eq!(line(&feed.mntr_lines(1_000), "relay_lag_zxids"), Some(1));
        rx.relayed(z(2, 1), 400);
        let lines = feed.mntr_lines(1_000);
        assert_eq!(line(&lines, "relay_lag_zxids"), Some(0));
        assert_eq!(line(&lines, "relay_lag_ms"), Some(0));
    }
}
