//! Runs a standalone server: recovers the database from disk, starts the log thread, accepts client
//! connections, and drives the [`Standalone`] state machine from one task, carrying out its actions.
//!
//! The server task is the only writer of the tree, so requests need no locks; the log thread makes txns
//! durable in batches; snapshots are written on a blocking thread so they never stall the request path.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::connection::{serve, ConnectionSettings, CoreEvent, Outbound, OutboundTx};
use super::log_thread::{LogCommand, LogEvent, LogThread};
use super::metrics::{self as shell_metrics, Latency};
use super::snapshot_writer::{SnapshotWriter, TurnShare};
use crate::ids::{SessionId, Zxid};
use crate::proto::frame::FourLetterWord;
use crate::proto::{Txn, TxnEntry, TxnHeader};
use crate::server::admin;
use crate::server::fourlw::{self, ConnectionInfo, ServerSnapshot};
use crate::server::standalone::{
    read_snapshot_blob, snapshot_blob, Action, ConnId, Input, Settings, Standalone,
};
use crate::storage::{self, DiskRef, LogOptions, RealDisk, StorageError};
use crate::tree::DataTree;

/// Everything the standalone shell needs, resolved from zoo.cfg by the composition root.
#[derive(Clone, Debug)]
pub struct StandaloneConfig {
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// `dataDir` (snapshots).
    pub data_dir: PathBuf,
    /// `dataLogDir` (txn log).
    pub data_log_dir: PathBuf,
    /// `maxClientCnxns` per client IP (0 = unlimited).
    pub max_client_cnxns: u32,
    /// `clientTcpKeepAlive`: TCP keepalive on client sockets.
    pub client_tcp_keep_alive: bool,
    /// `jute.maxbuffer`.
    pub max_frame_bytes: usize,
    /// `4lw.commands.whitelist`.
    pub four_letter_words: fourlw::Whitelist,
    /// The state machine's settings.
    pub settings: Settings,
    /// Txn log settings (`preAllocSize`, `forceSync`).
    pub log: LogOptions,
    /// `autopurge.snapRetainCount`.
    pub snap_retain_count: usize,
    /// `autopurge.purgeInterval` in hours (0 = off).
    pub purge_interval_hours: u32,
    /// The AdminServer and the Prometheus exporter.
    pub monitoring: super::admin::Monitoring,
    /// `conf` 4lw lines, rendered once by the composition root.
    pub conf_text: String,
    /// Where committed txns go (the relay's hook), when `settings.emit_committed` is on.
    pub commit_feed: Option<CommitFeed>,
}

/// One committed txn, as the shell hands it to a [`CommitFeed`].
#[derive(Clone, Debug)]
pub struct CommittedTxn {
    /// The zxid committed just before this one (the recovered zxid for the first txn after start). A
    /// consumer whose last txn is not `prev` missed some (the queue was full) and reads them from the log.
    pub prev: Zxid,
    /// The txn's zxid.
    pub zxid: Zxid,
    /// The txn's header.
    pub header: TxnHeader,
    /// The txn's body.
    pub txn: Txn,
}

#[derive(Debug)]
struct FeedState {
    /// The highest committed zxid (-1 until the server has recovered its database).
    committed: AtomicI64,
    /// Txns not queued because the queue was full (or the consumer gone).
    dropped: AtomicU64,
    /// The commit time (txn header, ms) of the highest committed zxid.
    committed_time_ms: AtomicI64,
    /// The consumer's progress, for `mntr`: the last zxid it published (-1 until it knows) and that
    /// txn's commit time.
    relayed: AtomicI64,
    relayed_time_ms: AtomicI64,
}

/// The shell's end of the commit hook: a bounded queue the server task never waits on. When the queue is
/// full the txn is not queued (it is on disk already: txns are applied only after their fsync), so the
/// consumer must read the txn log to fill the gap; [`CommittedTxn::prev`] and
/// [`CommitFeedReceiver::committed_zxid`] tell it when. Made with [`commit_feed`].
#[derive(Clone, Debug)]
pub struct CommitFeed {
    tx: mpsc::Sender<CommittedTxn>,
    state: Arc<FeedState>,
}

/// The consumer's end of the commit hook (the relay task owns it).
#[derive(Debug)]
pub struct CommitFeedReceiver {
    rx: mpsc::Receiver<CommittedTxn>,
    state: Arc<FeedState>,
}

/// A commit feed whose queue holds at most `capacity` txns.
pub fn commit_feed(capacity: usize) -> (CommitFeed, CommitFeedReceiver) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let state = Arc::new(FeedState {
        committed: AtomicI64::new(-1),
        dropped: AtomicU64::new(0),
        committed_time_ms: AtomicI64::new(0),
        relayed: AtomicI64::new(-1),
        relayed_time_ms: AtomicI64::new(0),
    });
    (
        CommitFeed {
            tx,
            state: state.clone(),
        },
        CommitFeedReceiver { rx, state },
    )
}

impl CommitFeed {
    /// The database is recovered at `zxid`: everything up to it is committed and in the txn log.
    pub fn recovered(&self, zxid: Zxid) {
        self.state.committed.store(zxid.0, Ordering::Release);
    }

    /// Hands a committed txn over without waiting; a full queue counts as dropped.
    pub fn offer(&self, txn: CommittedTxn) {
        self.state
            .committed_time_ms
            .store(txn.header.time, Ordering::Relaxed);
        self.state.committed.store(txn.zxid.0, Ordering::Release);
        if self.tx.try_send(txn).is_err() {
            self.state.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The consumer's progress as `mntr` lines (names without `zk_`), once it reported any:
    /// `relay_last_zxid` (the last zxid it published), `relay_lag_zxids` (committed txns not yet
    /// published; across an epoch change, the new epoch's counter) and `relay_lag_ms` (how long ago the
    /// first txn it has not published may have committed: 0 when caught up, else `now_ms` minus the
    /// commit time of the last txn it published, an upper bound).
    pub fn mntr_lines(&self, now_ms: i64) -> Vec<(String, String)> {
        let relayed = self.state.relayed.load(Ordering::Acquire);
        if relayed < 0 {
            return Vec::new();
        }
        let relayed = Zxid(relayed);
        let committed = Zxid(self.state.committed.load(Ordering::Acquire).max(0));
        let lag_zxids = if committed <= relayed {
            0
        } else if committed.epoch() == relayed.epoch() {
            i64::from(committed.counter()) - i64::from(relayed.counter())
        } else {
            i64::from(committed.counter())
        };
        let lag_ms = if lag_zxids == 0 {
            0
        } else {
            (now_ms - self.state.relayed_time_ms.load(Ordering::Relaxed)).max(0)
        };
        vec![
            ("relay_last_zxid".into(), relayed.0.to_string()),
            ("relay_lag_zxids".into(), lag_zxids.to_string()),
            ("relay_lag_ms".into(), lag_ms.to_string()),
        ]
    }
}

impl CommitFeedReceiver {
    /// Reports the consumer's progress (read by `mntr`): it has published everything up to `zxid`,
    /// which committed at `time_ms` (its txn header's time).
    pub fn relayed(&self, zxid: Zxid, time_ms: i64) {
        self.state.relayed_time_ms.store(time_ms, Ordering::Relaxed);
        self.state.relayed.store(zxid.0, Ordering::Release);
    }

    /// The next queued txn; `None` once the server has stopped and the queue is empty.
    pub async fn recv(&mut self) -> Option<CommittedTxn> {
        self.rx.recv().await
    }

    /// The highest committed zxid, or `None` until the server has recovered its database.
    pub fn committed_zxid(&self) -> Option<Zxid> {
        let z = self.state.committed.load(Ordering::Acquire);
        (z >= 0).then_some(Zxid(z))
    }

    /// How many txns were not queued because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.state.dropped.load(Ordering::Relaxed)
    }
}

/// Why the server stopped.
#[derive(Debug, Error)]
pub enum ShellError {
    /// Storage failed (fatal: a failed fsync, a corrupt log, a full disk).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A snapshot or txn in the data directory could not be decoded.
    #[error("corrupt database: {0}")]
    Corrupt(String),
    /// A socket could not be bound or a thread started.
    #[error("{what}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The recovered database: tree, sessions and the zxid it reflects.
pub struct Database {
    /// The tree.
    pub tree: DataTree,
    /// Sessions (id, timeout).
    pub sessions: Vec<(SessionId, i32)>,
    /// The highest zxid applied.
    pub last_zxid: Zxid,
    /// How many txns were replayed from the log.
    pub replayed: usize,
}

/// Loads the newest valid snapshot and replays the txn log after it.
pub fn recover(
    disk: DiskRef,
    config: &StandaloneConfig,
) -> Result<(storage::TxnLog, Database), ShellError> {
    let (log, recovered) =
        storage::recover(disk, &config.data_dir, &config.data_log_dir, config.log)?;
    let extended = config.settings.prep.extended_types;
    let (mut tree, sessions) = match &recovered.snapshot {
        Some((zxid, blob)) => read_snapshot_blob(blob, extended)
            .map_err(|e| ShellError::Corrupt(format!("snapshot at {zxid}: {e}")))?,
        None => (DataTree::new(extended), Vec::new()),
    };
    let mut sessions: HashMap<SessionId, i32> = sessions.into_iter().collect();
    for (zxid, bytes) in &recovered.txns {
        let entry = TxnEntry::decode(bytes)
            .map_err(|e| ShellError::Corrupt(format!("txn {zxid} in the log: {e}")))?;
        match &entry.txn {
            Txn::CreateSession { timeout } => {
                sessions.insert(SessionId(entry.header.client_id), *timeout);
            }
            Txn::CloseSession { .. } => {
                sessions.remove(&SessionId(entry.header.client_id));
            }
            _ => {}
        }
        let _ = tree.apply_txn(&entry.header, &entry.txn);
    }
    tree.set_last_processed_zxid(recovered.last_zxid.0);
    let mut sessions: Vec<(SessionId, i32)> = sessions.into_iter().collect();
    sessions.sort();
    Ok((
        log,
        Database {
            tree,
            sessions,
            last_zxid: recovered.last_zxid,
            replayed: recovered.txns.len(),
        },
    ))
}

/// Runs the standalone server until `shutdown` turns true or a fatal error occurs.
pub async fn run(
    config: StandaloneConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ShellError> {
    let disk: DiskRef = Arc::new(RealDisk::new());
    let started = Instant::now();
    let (log, db) = recover(disk.clone(), &config)?;
    tracing::info!(
        "recovered database at zxid {} ({} nodes, {} sessions, {} txns replayed)",
        db.last_zxid,
        db.tree.node_count(),
        db.sessions.len(),
        db.replayed
    );
    // As ZooKeeper does at startup: a snapshot of what was recovered bounds the next replay.
    if db.replayed > 0 {
        let blob = snapshot_blob(&db.tree, &db.sessions);
        storage::write_snapshot(disk.as_ref(), &config.data_dir, db.last_zxid, &blob)?;
    }
    let (log_tx, mut log_rx) = mpsc::unbounded_channel();
    let log_thread = LogThread::start(log, log_tx).map_err(|source| ShellError::Io {
        what: "start the txn log thread".into(),
        source,
    })?;
    if db.replayed > 0 {
        let _ = log_thread.commands.send(LogCommand::Roll);
    }
    let snapshots =
        SnapshotWriter::start(disk.clone(), config.data_dir.clone()).map_err(|source| {
            ShellError::Io {
                what: "start the snapshot thread".into(),
                source,
            }
        })?;
    let mut committed_prev = db.last_zxid;
    if let Some(feed) = &config.commit_feed {
        feed.recovered(db.last_zxid);
    }
    let mut server = Standalone::new(
        config.settings.clone(),
        db.tree,
        &db.sessions,
        db.last_zxid,
        now_ms(),
    );

    let listener = TcpListener::bind(config.client_addr)
        .await
        .map_err(|source| ShellError::Io {
            what: format!("bind client port {}", config.client_addr),
            source,
        })?;
    tracing::info!("serving clients on {}", config.client_addr);
    let (events_tx, mut events_rx) = mpsc::channel::<CoreEvent>(4096);
    let conn_settings = ConnectionSettings {
        max_frame_bytes: config.max_frame_bytes,
        four_letter_words: config.four_letter_words.clone(),
        sessionless_timeout: Duration::from_secs(10),
        tcp_keep_alive: config.client_tcp_keep_alive,
    };
    let per_ip: Arc<Mutex<HashMap<IpAddr, u32>>> = Arc::default();
    let accept_task = tokio::spawn(accept_loop(
        listener,
        events_tx.clone(),
        conn_settings,
        per_ip,
        config.max_client_cnxns,
    ));
    let monitor_tasks = super::admin::start(&config.monitoring, &events_tx).await;
    let mut clients = Clients::default();
    let tick_ms = u64::try_from(config.settings.session.tick_ms.max(10)).unwrap_or(2000);
    let mut tick = tokio::time::interval(Duration::from_millis(tick_ms / 2));
    let mut purge = tokio::time::interval(Duration::from_secs(
        u64::from(config.purge_interval_hours.max(1)) * 3600,
    ));
    purge.tick().await;
    let mut share = TurnShare::default();
    let mut shutdown_open = true;
    let result = 'serve: loop {
        // Biased: the order below is the priority. A snapshot whose time share is due comes
        // first, then what finishes work (durable txns) and timers, then new client input, and an idle
        // task gives the rest of its time to the snapshot (see `snapshot_writer`).
        let mut snapshot_turn = None;
        tokio::select! {
            biased;
            _ = snapshots.turn(), if share.due() && server.snapshot_in_progress() => {
                snapshot_turn = Some(Instant::now());
                server.handle(Input::SnapshotStep, now_ms())
            }
            changed = shutdown.changed(), if shutdown_open => {
                // With every sender gone no stop can come; the branch must not stay ready forever.
                shutdown_open = changed.is_ok();
                if *shutdown.borrow() { break Ok(()) }
            }
            ev = log_rx.recv() => {
                match ev {
                    Some(LogEvent::Durable(zxid)) => server.handle(Input::Durable(zxid), now_ms()),
                    Some(LogEvent::Failed(err)) => {
                        tracing::error!("txn log failed, stopping the server: {err}");
                        break Err(ShellError::Storage(err));
                    }
                    None => break Err(ShellError::Corrupt("txn log thread stopped".into())),
                }
            }
            _ = tick.tick() => {
                server.handle(Input::Tick, now_ms())
            }
            _ = purge.tick(), if config.purge_interval_hours > 0 => {
                let disk = disk.clone();
                let (d, l, n) = (config.data_dir.clone(), config.data_log_dir.clone(), config.snap_retain_count);
                tokio::task::spawn_blocking(move || {
                    if let Err(err) = storage::purge(disk, &d, &l, n) {
                        tracing::warn!("autopurge failed: {err}");
                    }
                });
            }
            ev = events_rx.recv() => {
                let Some(ev) = ev else { break Ok(()) };
                on_core_event(ev, &mut server, &mut clients, &config, started);
            }
            _ = snapshots.turn(), if server.snapshot_in_progress() => {
                snapshot_turn = Some(Instant::now());
                server.handle(Input::SnapshotStep, now_ms())
            }
        }
        // What else is already waiting joins this pass (bounded): under load one select (its futures,
        // the watch and timer registrations) serves many requests. Inputs are handled in arrival order
        // and their actions carried out in that order below, as if each had had a pass of its own.
        for _ in 1..MAX_PASS_EVENTS {
            if let Ok(ev) = events_rx.try_recv() {
                on_core_event(ev, &mut server, &mut clients, &config, started);
            } else if let Ok(ev) = log_rx.try_recv() {
                match ev {
                    LogEvent::Durable(zxid) => server.handle(Input::Durable(zxid), now_ms()),
                    LogEvent::Failed(err) => {
                        tracing::error!("txn log failed, stopping the server: {err}");
                        break 'serve Err(ShellError::Storage(err));
                    }
                }
            } else {
                break;
            }
        }
        let Clients {
            conns,
            pending,
            latency,
            gone,
        } = &mut clients;
        for action in server.take_actions() {
            match action {
                Action::Send { conn, frame } => {
                    if let Some(b) = frame.get(4..8) {
                        let xid = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                        if let Some((at, write)) = pending.remove(&(conn, xid)) {
                            latency.record(at.elapsed(), write);
                        }
                    }
                    if let Some((tx, _, _)) = conns.get(&conn) {
                        let _ = tx.send(Outbound::Frame(frame));
                    }
                }
                Action::Close { conn } => {
                    if let Some((tx, _, _)) = conns.get(&conn) {
                        let _ = tx.send(Outbound::Close);
                    }
                }
                Action::Log { zxid, entry } => {
                    if log_thread
                        .commands
                        .send(LogCommand::Append(zxid, entry))
                        .is_err()
                    {
                        tracing::error!("txn log thread is gone");
                    }
                }
                Action::Committed { zxid, header, txn } => {
                    if let Some(feed) = &config.commit_feed {
                        let prev = std::mem::replace(&mut committed_prev, zxid);
                        feed.offer(CommittedTxn {
                            prev,
                            zxid,
                            header,
                            txn,
                        });
                    }
                }
                // Ensemble traffic; a standalone server (Mode::Standalone) never produces it.
                Action::Forward { .. }
                | Action::Revalidate { .. }
                | Action::RevalidateReply { .. }
                | Action::SyncReply { .. }
                | Action::ZxidExhausted => {
                    tracing::error!("ensemble action in a standalone server: {action:?}");
                }
                action @ Action::Snapshot { .. } => snapshots.carry_out(action, &log_thread),
            }
        }
        for conn in gone.drain(..) {
            conns.remove(&conn);
            pending.retain(|(c, _), _| *c != conn);
        }
        if let Some(began) = snapshot_turn {
            share.took_turn(began);
        }
    };
    accept_task.abort();
    for task in monitor_tasks {
        task.abort();
    }
    drop(log_thread);
    result
}

/// Events one pass of the server task's loop takes at most (see `run`).
const MAX_PASS_EVENTS: usize = 32;

/// What the server task keeps about client connections beside the state machine.
#[derive(Default)]
struct Clients {
    conns: HashMap<ConnId, (OutboundTx, SocketAddr, i64)>,
    /// Requests waiting for their reply, for the latency `srvr` and the metrics report.
    pending: HashMap<(ConnId, i32), (Instant, bool)>,
    latency: Latency,
    /// Connections that went away during this pass: forgotten only after the pass's actions are
    /// carried out, so what earlier inputs produced for them (a last reply before a close) still goes
    /// to their writer, as when every input had a pass of its own.
    gone: Vec<ConnId>,
}

/// Hands one event from the connection tasks to the state machine, or answers it (4lw, AdminServer).
fn on_core_event(
    ev: CoreEvent,
    server: &mut Standalone,
    clients: &mut Clients,
    config: &StandaloneConfig,
    started: Instant,
) {
    let Clients {
        conns,
        pending,
        latency,
        gone,
    } = clients;
    match ev {
        CoreEvent::Register { conn, tx, remote } => {
            conns.insert(conn, (tx, remote, now_ms()));
        }
        CoreEvent::Input(input) => {
            if let Input::Disconnected { conn } = &input {
                gone.push(*conn);
            }
            if let Input::Request { conn, xid, request } = &input {
                let write = request.op_code().is_write();
                pending.insert((*conn, *xid), (Instant::now(), write));
            }
            server.handle(input, now_ms());
        }
        CoreEvent::FourLetter { word, reply } => {
            if matches!(word, FourLetterWord::Srst) {
                latency.reset();
            }
            let text = four_letter_text(word, server, conns, config, started, latency);
            let _ = reply.send(text);
        }
        CoreEvent::Admin {
            command,
            params,
            reply,
        } => {
            if command.primary == "stat_reset" {
                latency.reset();
            }
            let snap = snapshot_of(server, conns, config, started, latency);
            let _ = reply.send(admin_response(
                command,
                &params,
                snap,
                server,
                config,
                Vec::new(),
            ));
        }
    }
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    events: mpsc::Sender<CoreEvent>,
    settings: ConnectionSettings,
    per_ip: Arc<Mutex<HashMap<IpAddr, u32>>>,
    max_per_ip: u32,
) {
    let mut next_conn: ConnId = 1;
    let mut backoff = Duration::from_millis(5);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => {
                backoff = Duration::from_millis(5);
                x
            }
            Err(err) => {
                // Out of file descriptors and similar: back off instead of spinning.
                tracing::warn!("accept failed: {err}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let ip = remote.ip();
        {
            let mut map = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            let count = map.entry(ip).or_insert(0);
            if max_per_ip > 0 && *count >= max_per_ip {
                tracing::warn!("too many connections from {ip} - max is {max_per_ip}");
                drop(stream);
                continue;
            }
            *count += 1;
        }
        let conn = next_conn;
        next_conn += 1;
        let events = events.clone();
        let settings = settings.clone();
        let per_ip = per_ip.clone();
        tokio::spawn(async move {
            serve(stream, remote, conn, events, settings).await;
            let mut map = per_ip.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(count) = map.get_mut(&ip) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    map.remove(&ip);
                }
            }
        });
    }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join(storage::VERSION_DIR))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

pub(crate) fn snapshot_of(
    server: &Standalone,
    conns: &HashMap<ConnId, (OutboundTx, SocketAddr, i64)>,
    config: &StandaloneConfig,
    started: Instant,
    latency: &Latency,
) -> ServerSnapshot {
    let tree = server.tree();
    let data = server.watches().data_summary();
    let connections = server
        .connections()
        .filter_map(|(id, session, received, sent, queued)| {
            let (_, remote, est) = conns.get(&id)?;
            let (last_op, last_cxid, last_zxid) = server.connection_activity(id)?;
            Some(ConnectionInfo {
                remote: remote.to_string(),
                queued: queued as u64,
                received,
                sent,
                session_id: session.map(|s| s.0),
                last_op: last_op.into(),
                last_cxid: i64::from(last_cxid),
                last_zxid,
                established_ms: *est,
                timeout_ms: session
                    .and_then(|s| server.sessions().get(s))
                    .map_or(0, |s| s.timeout_ms),
                ..ConnectionInfo::default()
            })
        })
        .collect();
    let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
    let (min_latency_ms, avg_latency_ms, max_latency_ms) = latency.min_avg_max();
    let mut extra_metrics = vec![(
        shell_metrics::COMMIT_COUNT.to_string(),
        server.counters().txns_applied.to_string(),
    )];
    extra_metrics.extend(shell_metrics::FSYNC.mntr_lines(shell_metrics::FSYNC_TIME));
    if let Some(feed) = &config.commit_feed {
        extra_metrics.extend(feed.mntr_lines(now_ms()));
    }
    ServerSnapshot {
        mode: "standalone".into(),
        packets_received: server.counters().packets_received,
        packets_sent: server.counters().packets_sent,
        connections,
        outstanding: server.outstanding() as u64,
        zxid: tree.last_processed_zxid(),
        // Already Java's count: the path map holds the root twice ("" and "/").
        node_count: tree.node_count() as u64,
        // wchs reports the data table only (persistent watches live there too), as ZooKeeper's
        // DataTree.getWatchesSummary does; mntr's zk_watch_count counts both tables.
        watch_connections: data.connections as u64,
        watch_paths: data.paths as u64,
        data_watch_total: data.total as u64,
        watch_total: server.watches().watch_count() as u64,
        ephemerals: tree.ephemerals_count() as u64,
        approximate_data_size: tree.approximate_data_size().max(0) as u64,
        global_sessions: server.sessions().len() as u64,
        local_sessions: server.local_sessions().map_or(0, |l| l.len() as u64),
        uptime_ms: started.elapsed().as_millis() as u64,
        data_dir_size: dir_size(&config.data_dir),
        log_dir_size: dir_size(&config.data_log_dir),
        open_fds: fds,
        max_fds: 0,
        min_latency_ms,
        avg_latency_ms,
        max_latency_ms,
        extra_metrics,
        ..ServerSnapshot::default()
    }
}

pub(crate) fn four_letter_text(
    word: FourLetterWord,
    server: &Standalone,
    conns: &HashMap<ConnId, (OutboundTx, SocketAddr, i64)>,
    config: &StandaloneConfig,
    started: Instant,
    latency: &Latency,
) -> String {
    let snap = || snapshot_of(server, conns, config, started, latency);
    match word {
        FourLetterWord::Srvr => fourlw::srvr(&snap()),
        FourLetterWord::Stat => fourlw::stat(&snap()),
        FourLetterWord::Mntr => fourlw::mntr(&snap()),
        FourLetterWord::Cons => fourlw::cons(&snap()),
        FourLetterWord::Wchs => fourlw::wchs(&snap()),
        FourLetterWord::Dirs => fourlw::dirs(&snap()),
        FourLetterWord::Isro => fourlw::isro(&snap()),
        FourLetterWord::Conf => config.conf_text.clone(),
        FourLetterWord::Envi => fourlw::envi(
            "localhost",
            &std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
        FourLetterWord::Crst => "Connection stats reset.\n".into(),
        FourLetterWord::Srst => "Server stats reset.\n".into(),
        FourLetterWord::Ruok => "imok".into(),
        FourLetterWord::Gtmk => "0".into(),
        FourLetterWord::Stmk => "0".into(),
        FourLetterWord::Wchc => {
            let mut out = String::new();
            for (watcher, paths) in server.watches().data_watches_by_watcher() {
                let session = server
                    .connections()
                    .find(|(id, ..)| *id == watcher)
                    .and_then(|(_, s, ..)| s);
                out.push_str(&format!("0x{:x}\n", session.map_or(0, |s| s.0)));
                for p in paths {
                    out.push_str(&format!("\t{p}\n"));
                }
            }
            // ZooKeeper's WatchesReport ends with an empty line, even when there are no watches.
            out.push('\n');
            out
        }
        FourLetterWord::Wchp => {
            let mut out = String::new();
            for (path, watchers) in server.watches().data_watches_by_path() {
                out.push_str(&format!("{path}\n"));
                for w in watchers {
                    let session = server
                        .connections()
                        .find(|(id, ..)| *id == w)
                        .and_then(|(_, s, ..)| s);
                    out.push_str(&format!("\t0x{:x}\n", session.map_or(0, |s| s.0)));
                }
            }
            out.push('\n');
            out
        }
        FourLetterWord::Dump => {
            let mut out = String::from("SessionTracker dump:\n");
            out.push_str(&server.dump_sessions());
            let tree = server.tree();
            let with = tree.sessions_with_ephemerals();
            out.push_str(&format!(
                "ephemeral nodes dump:\nSessions with Ephemerals ({}):\n",
                with.len()
            ));
            for s in with {
                out.push_str(&format!("0x{:x}:\n", s.0));
                for p in tree.ephemerals(s) {
                    out.push_str(&format!("\t{p}\n"));
                }
            }
            out
        }
        FourLetterWord::Hash | FourLetterWord::TelnetClose => String::new(),
    }
}

/// Answers an AdminServer command from the server task's state.
pub(crate) fn admin_response(
    command: &admin::CommandSpec,
    params: &BTreeMap<String, String>,
    snapshot: ServerSnapshot,
    server: &Standalone,
    config: &StandaloneConfig,
    observers: Vec<admin::ObserverEntry>,
) -> admin::Response {
    let session_of = |conn: ConnId| {
        server
            .connections()
            .find(|(id, ..)| *id == conn)
            .and_then(|(_, s, ..)| s)
            .map_or(0, |s| s.0)
    };
    let mut inputs = admin::AdminInputs {
        snapshot,
        conf_text: config.conf_text.clone(),
        initial_configuration: config.monitoring.initial_config.clone(),
        observers,
        ..admin::AdminInputs::default()
    };
    match command.primary {
        "environment" => {
            let cwd = std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            inputs.environment = admin::environment_pairs(&fourlw::envi("localhost", &cwd));
        }
        "watches" => {
            for (watcher, paths) in server.watches().data_watches_by_watcher() {
                inputs.watches_by_session.push((session_of(watcher), paths));
            }
        }
        "watches_by_path" => {
            for (path, watchers) in server.watches().data_watches_by_path() {
                let sessions = watchers.into_iter().map(session_of).collect();
                inputs.watches_by_path.push((path, sessions));
            }
        }
        "dump" => {
            inputs.session_expiry = server
                .session_expiry_map()
                .into_iter()
                .map(|(at, ids)| (at, ids.into_iter().map(|s| s.0).collect()))
                .collect();
            let tree = server.tree();
            for s in tree.sessions_with_ephemerals() {
                inputs.ephemerals.push((s.0, tree.ephemerals(s)));
            }
        }
        "last_snapshot" => inputs.last_snapshot = last_snapshot(&config.data_dir),
        _ => {}
    }
    admin::render(command, params, &inputs)
}

/// The newest snapshot file in `dataDir`: its zxid and modification time (seconds since the epoch).
fn last_snapshot(data_dir: &std::path::Path) -> Option<(i64, i64)> {
    std::fs::read_dir(data_dir.join(storage::VERSION_DIR))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let zxid = u64::from_str_radix(name.strip_prefix("snapshot.")?, 16).ok()?;
            let secs = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(-1, |d| d.as_secs() as i64);
            Some((zxid as i64, secs))
        })
        .max()
}
