//! Runs a member of an ensemble: recovers the database, starts the election transport, the quorum port
//! and the client port, and drives the sans-IO [`Peer`] from one task, carrying out its actions in order.
//!
//! Sockets: the election port ([`ElectionNet`]); the quorum port, where this server accepts learners
//! while it leads (each accepted connection is a link with a reader and a writer task); one outgoing
//! connection to the leader while it learns; the client port (shared with the standalone shell). Disk:
//! the log thread (group commit), epoch files written synchronously (they are rare and must be durable
//! before the next action), snapshots on blocking threads.
//!
//! What this shell does not do: decide anything. Every protocol rule is in `zab::{peer, leader,
//! learner}`; this file only moves bytes and reports events back.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::connection::{ConnectionSettings, CoreEvent, Outbound, OutboundTx};
use super::election_net::{ElectionNet, ElectionNetConfig};
use super::log_thread::{LogCommand, LogEvent, LogThread};
use super::metrics::Latency;
use super::snapshot_writer::{SnapshotWriter, TurnShare};
use super::standalone::{
    accept_loop, admin_response, four_letter_text, now_ms, snapshot_of, CommittedTxn, ShellError,
    StandaloneConfig,
};
use crate::ids::{Epoch, ServerId, SessionId, Zxid};
use crate::proto::frame::FourLetterWord;
use crate::proto::quorum_stream::QuorumItem;
use crate::proto::quorum_stream::{encode_packet, QuorumStreamDecoder};
use crate::proto::{Txn, TxnEntry};
use crate::server::standalone::{read_snapshot_blob, Action, ConnId, Input};
use crate::storage::{self, DiskRef, RealDisk, SnapshotStore};
use crate::storage::{read_epoch_file, write_epoch_file, ACCEPTED_EPOCH_FILE, CURRENT_EPOCH_FILE};
use crate::tree::DataTree;
use crate::zab::peer::{EpochFile, LinkId, Peer, PeerAction, PeerConfig, PeerDb, PeerInput};

/// Packets a link's writer may have queued before the link is closed as too slow (a full queue must
/// break the connection, never drop a packet: ZAB relies on FIFO delivery).
const LINK_QUEUE: usize = 65_536;

/// Everything an ensemble member needs, resolved from zoo.cfg by the composition root.
#[derive(Clone, Debug)]
pub struct PeerShellConfig {
    /// Client port, directories, limits and the server state machine's settings (as standalone).
    pub base: StandaloneConfig,
    /// The peer's settings (its `server` field is replaced by `base.settings`).
    pub peer: PeerConfig,
    /// Where this server accepts learners (its quorum address).
    pub quorum_listen: SocketAddr,
    /// Every server's quorum address, to connect to whichever leads.
    pub quorum_addrs: BTreeMap<ServerId, SocketAddr>,
    /// The election transport's settings.
    pub election: ElectionNetConfig,
    /// Largest quorum packet accepted (`jute.maxbuffer`).
    pub max_packet_bytes: usize,
    /// Largest SNAP body accepted.
    pub max_snapshot_bytes: usize,
    /// Where this server serves observers (`observerMasterPort` on its quorum host), when set and a voter.
    pub observer_master_listen: Option<SocketAddr>,
    /// Every voter's observer-master address, for an observer choosing its learner master.
    pub observer_master_addrs: BTreeMap<ServerId, SocketAddr>,
    /// zoo.cfg, whose dynamic files a reconfiguration rewrites (`None`: configurations stay in
    /// memory, as in Java tests without a static file).
    pub config_file: Option<std::path::PathBuf>,
    /// `connectToLearnerMasterLimit` in ticks: how long a learner keeps trying to connect to the leader
    /// (0 = `initLimit`, as in ZooKeeper).
    pub connect_limit_ticks: u64,
}

/// Events from the quorum-port tasks to the peer task.
#[derive(Debug)]
enum QuorumEvent {
    LearnerConnected {
        link: LinkId,
        tx: LinkTx,
        /// Accepted on the observer-master port.
        observer_master: bool,
    },
    /// A link's writer wrote one snapshot chunk to the socket.
    ChunkWritten {
        link: LinkId,
    },
    FromLearner {
        link: LinkId,
        item: QuorumItem,
    },
    LearnerGone {
        link: LinkId,
    },
    LeaderConnected {
        generation: u64,
        tx: mpsc::Sender<LinkOut>,
    },
    LeaderConnectFailed {
        generation: u64,
    },
    FromLeader {
        generation: u64,
        item: QuorumItem,
    },
    /// Part of a snapshot body from the leader has arrived.
    SnapshotProgress {
        generation: u64,
        bytes: u64,
        znodes: u64,
    },
    LeaderGone {
        generation: u64,
    },
    /// A txn log read for a learner's sync is done (`PeerAction::ReadTxnLog`).
    TxnLogRead {
        link: LinkId,
        txns: Option<Vec<(Zxid, Arc<[u8]>)>>,
    },
}

/// Events one pass of the peer task's loop takes at most: enough that under load one pass serves many
/// acks and requests, few enough that the packets of its first input are not held back for long.
const MAX_TURN_BATCH: usize = 32;

/// One event of a pass of the peer task's loop, converted to the peer's input when its turn comes.
enum Turn {
    Peer(PeerInput),
    Log(LogEvent),
    Quorum(QuorumEvent),
    Core(CoreEvent),
}

/// What a link's writer task is asked to do.
#[derive(Debug)]
enum LinkOut {
    /// Encoded packets, written in order.
    Bytes {
        bytes: Vec<u8>,
        /// How many packets `bytes` holds (the queue's bound counts packets).
        packets: u64,
    },
    /// A chunk of a streamed snapshot: written on its own, then reported back (the peer serializes
    /// the next chunk only then, so a slow learner holds back the serializer, not memory).
    Chunk(Vec<u8>),
    Close,
}

/// The peer task's end of a learner link: its writer's queue and what the `observers` command shows.
#[derive(Clone, Debug)]
struct LinkTx {
    tx: mpsc::Sender<LinkOut>,
    remote: SocketAddr,
    /// Bytes queued for the writer and not yet written (`queued_packets_size`).
    queued_bytes: Arc<AtomicU64>,
    /// Packets queued for the writer and not yet written (bounded by [`LINK_QUEUE`]).
    queued_packets: Arc<AtomicU64>,
}

impl LinkTx {
    /// Queues `out` for the writer; false if the link is too far behind (or gone) to take it.
    fn queue(&self, out: LinkOut) -> bool {
        let (len, packets) = match &out {
            LinkOut::Bytes { bytes, packets } => (bytes.len() as u64, *packets),
            LinkOut::Chunk(b) => (b.len() as u64, 1),
            LinkOut::Close => (0, 0),
        };
        if self.queued_packets.load(Ordering::Relaxed) + packets > LINK_QUEUE as u64 {
            return false;
        }
        if self.tx.try_send(out).is_err() {
            return false;
        }
        self.queued_bytes.fetch_add(len, Ordering::Relaxed);
        self.queued_packets.fetch_add(packets, Ordering::Relaxed);
        true
    }
}

/// Packets gathered for one link during a pass of the peer task's loop.
#[derive(Default)]
struct Gathered {
    bytes: Vec<u8>,
    packets: u64,
}

impl Gathered {
    fn push(&mut self, packet: &crate::proto::quorum::QuorumPacket) {
        encode_packet(packet, &mut self.bytes);
        self.packets += 1;
    }

    /// The gathered packets as one writer message, leaving this empty; `None` if there were none.
    fn take(&mut self) -> Option<LinkOut> {
        if self.packets == 0 {
            return None;
        }
        let packets = std::mem::take(&mut self.packets);
        Some(LinkOut::Bytes {
            bytes: std::mem::take(&mut self.bytes),
            packets,
        })
    }
}

/// Hands the packets gathered for the leader to its connection's writer. True if that broke the
/// connection (the writer is too far behind or gone): a packet is never dropped from a connection that
/// stays up, as ZAB relies on FIFO delivery.
fn flush_leader(out: &mut Gathered, link: &mut Option<(u64, mpsc::Sender<LinkOut>)>) -> bool {
    let Some(bytes) = out.take() else {
        return false;
    };
    let Some((_, tx)) = link else {
        return false;
    };
    if tx.try_send(bytes).is_err() {
        *link = None;
        return true;
    }
    false
}

/// Hands the packets gathered for one learner link to its writer, before something that must follow
/// them (a snapshot chunk, the close); a link that cannot take them is closed and the peer told.
fn flush_learner(
    out: &mut BTreeMap<LinkId, Gathered>,
    links: &mut BTreeMap<LinkId, LinkTx>,
    link: LinkId,
    peer: &mut Peer,
) {
    if let Some(bytes) = out.get_mut(&link).and_then(Gathered::take) {
        send_link(links, link, bytes, peer);
    }
}

/// Hands every learner link's gathered packets to its writer at the end of a pass; returns the links
/// that could not take them (now closed) for the peer to hear of.
fn flush_learners(
    out: &mut BTreeMap<LinkId, Gathered>,
    links: &mut BTreeMap<LinkId, LinkTx>,
) -> Vec<LinkId> {
    let mut broken = Vec::new();
    // A link that is gone, or breaks now, is dropped here with its packets.
    out.retain(|link, gathered| {
        let Some(tx) = links.get(link) else {
            return false;
        };
        let kept = gathered.take().is_none_or(|bytes| tx.queue(bytes));
        if !kept {
            broken.push(*link);
        }
        kept
    });
    for link in &broken {
        tracing::warn!("learner link {link} is not keeping up; closing it");
        if let Some(tx) = links.remove(link) {
            let _ = tx.queue(LinkOut::Close);
        }
    }
    broken
}

/// The peer's input for an event from the quorum port, if it is still current: a link must be known
/// and a leader connection's generation the current one (an older connection's packets are dropped).
/// Learner links join and leave `links` here.
fn quorum_input(
    ev: QuorumEvent,
    links: &mut BTreeMap<LinkId, LinkTx>,
    learner_out: &mut BTreeMap<LinkId, Gathered>,
    leader_link: &mut Option<(u64, mpsc::Sender<LinkOut>)>,
    leader_generation: u64,
) -> Option<PeerInput> {
    let current = |generation: u64, link: &Option<(u64, mpsc::Sender<LinkOut>)>| {
        generation == leader_generation && link.is_some()
    };
    match ev {
        QuorumEvent::LearnerConnected {
            link,
            tx,
            observer_master,
        } => {
            links.insert(link, tx);
            Some(if observer_master {
                PeerInput::ObserverConnected { link }
            } else {
                PeerInput::LearnerConnected { link }
            })
        }
        QuorumEvent::FromLearner { link, item } => links
            .contains_key(&link)
            .then_some(PeerInput::FromLearner { link, item }),
        QuorumEvent::TxnLogRead { link, txns } => Some(PeerInput::TxnLogRead { link, txns }),
        QuorumEvent::ChunkWritten { link } => links
            .contains_key(&link)
            .then_some(PeerInput::SnapChunkWritten { link }),
        QuorumEvent::LearnerGone { link } => {
            learner_out.remove(&link);
            links
                .remove(&link)
                .map(|_| PeerInput::LearnerDisconnected { link })
        }
        QuorumEvent::LeaderConnected { generation, tx } => {
            (generation == leader_generation).then(|| {
                *leader_link = Some((generation, tx));
                PeerInput::LeaderConnected
            })
        }
        QuorumEvent::LeaderConnectFailed { generation } => {
            (generation == leader_generation).then_some(PeerInput::LeaderConnectFailed)
        }
        QuorumEvent::FromLeader { generation, item } => {
            current(generation, leader_link).then_some(PeerInput::FromLeader(item))
        }
        QuorumEvent::SnapshotProgress {
            generation,
            bytes,
            znodes,
        } => current(generation, leader_link)
            .then_some(PeerInput::SnapshotProgress { bytes, znodes }),
        QuorumEvent::LeaderGone { generation } => (generation == leader_generation
            && leader_link.take().is_some())
        .then_some(PeerInput::LeaderDisconnected),
    }
}

/// Reads the database and the epoch files (creating them from the last zxid's epoch when absent, as
/// `QuorumPeer.loadDataBase` does).
fn load_db(
    disk: &DiskRef,
    config: &StandaloneConfig,
    recent_count: usize,
) -> Result<(storage::TxnLog, PeerDb), ShellError> {
    let (log, recovered) = storage::recover(
        disk.clone(),
        &config.data_dir,
        &config.data_log_dir,
        config.log,
    )?;
    let extended = config.settings.prep.extended_types;
    let (mut tree, sessions) = match &recovered.snapshot {
        Some((zxid, blob)) => read_snapshot_blob(blob, extended)
            .map_err(|e| ShellError::Corrupt(format!("snapshot at {zxid}: {e}")))?,
        None => (DataTree::new(extended), Vec::new()),
    };
    let sessions = replay(&mut tree, sessions, &recovered.txns)?;
    tree.set_last_processed_zxid(recovered.last_zxid.0);
    let last = recovered.last_zxid;
    let epoch_of_last = last.epoch();
    let current = read_epoch_file(disk.as_ref(), &config.data_dir, CURRENT_EPOCH_FILE)?;
    let accepted = read_epoch_file(disk.as_ref(), &config.data_dir, ACCEPTED_EPOCH_FILE)?;
    let current = match current {
        Some(e) => e,
        None => {
            write_epoch_file(
                disk.as_ref(),
                &config.data_dir,
                CURRENT_EPOCH_FILE,
                epoch_of_last,
            )?;
            epoch_of_last
        }
    };
    let accepted = match accepted {
        Some(e) => e,
        None => {
            write_epoch_file(
                disk.as_ref(),
                &config.data_dir,
                ACCEPTED_EPOCH_FILE,
                epoch_of_last,
            )?;
            epoch_of_last
        }
    };
    if accepted < current {
        return Err(ShellError::Corrupt(format!(
            "acceptedEpoch {} is less than currentEpoch {}",
            accepted.0, current.0
        )));
    }
    let skip = recovered.txns.len().saturating_sub(recent_count);
    let recent = recovered.txns.into_iter().skip(skip).collect();
    Ok((
        log,
        PeerDb {
            tree,
            sessions,
            last_logged: last,
            accepted_epoch: accepted,
            current_epoch: current,
            recent,
        },
    ))
}

/// Applies logged txns to a tree, keeping the session list in step.
fn replay(
    tree: &mut DataTree,
    sessions: Vec<(SessionId, i32)>,
    txns: &[(Zxid, Vec<u8>)],
) -> Result<Vec<(SessionId, i32)>, ShellError> {
    let mut map: HashMap<SessionId, i32> = sessions.into_iter().collect();
    for (zxid, bytes) in txns {
        let entry = TxnEntry::decode(bytes)
            .map_err(|e| ShellError::Corrupt(format!("txn {zxid} in the log: {e}")))?;
        match &entry.txn {
            Txn::CreateSession { timeout } => {
                map.insert(SessionId(entry.header.client_id), *timeout);
            }
            Txn::CloseSession { .. } => {
                map.remove(&SessionId(entry.header.client_id));
            }
            _ => {}
        }
        let _ = tree.apply_txn(&entry.header, &entry.txn);
    }
    let mut out: Vec<_> = map.into_iter().collect();
    out.sort();
    Ok(out)
}

/// Re-reads the database from disk without opening the log for writing (after a TRUNC).
fn reload_db(
    disk: &DiskRef,
    config: &StandaloneConfig,
    epochs: (Epoch, Epoch),
) -> Result<PeerDb, ShellError> {
    let snapshots = SnapshotStore::open(disk.clone(), &config.data_dir)?;
    let snapshot = snapshots.newest_valid()?;
    let extended = config.settings.prep.extended_types;
    let (base, (mut tree, sessions)) = match &snapshot {
        Some((zxid, blob)) => (
            *zxid,
            read_snapshot_blob(blob, extended)
                .map_err(|e| ShellError::Corrupt(format!("snapshot at {zxid}: {e}")))?,
        ),
        None => (Zxid::ZERO, (DataTree::new(extended), Vec::new())),
    };
    let mut txns = Vec::new();
    for record in storage::LogReader::open(disk.clone(), &config.data_log_dir, base) {
        txns.push(record?);
    }
    let last = txns.last().map_or(base, |(z, _)| *z);
    let sessions = replay(&mut tree, sessions, &txns)?;
    tree.set_last_processed_zxid(last.0);
    Ok(PeerDb {
        tree,
        sessions,
        last_logged: last,
        accepted_epoch: epochs.0,
        current_epoch: epochs.1,
        recent: Vec::new(),
    })
}

/// Runs an ensemble member until `shutdown` turns true or a fatal error occurs.
pub async fn run(
    config: PeerShellConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ShellError> {
    let disk: DiskRef = Arc::new(RealDisk::new());
    let started = Instant::now();
    let base = config.base.clone();
    let (log, db) = load_db(&disk, &base, config.peer.commit_log_count)?;
    tracing::info!(
        "recovered database at zxid {} ({} nodes, {} sessions); acceptedEpoch {}, currentEpoch {}",
        db.last_logged,
        db.tree.node_count(),
        db.sessions.len(),
        db.accepted_epoch.0,
        db.current_epoch.0
    );
    if let Some(feed) = &base.commit_feed {
        feed.recovered(db.last_logged);
    }
    let mut committed_prev = db.last_logged;
    let (log_tx, mut log_rx) = mpsc::unbounded_channel();
    let log_thread = LogThread::start(log, log_tx).map_err(|source| ShellError::Io {
        what: "start the txn log thread".into(),
        source,
    })?;
    let snapshots =
        SnapshotWriter::start(disk.clone(), base.data_dir.clone()).map_err(|source| {
            ShellError::Io {
                what: "start the snapshot thread".into(),
                source,
            }
        })?;

    let mut peer_cfg = config.peer.clone();
    peer_cfg.server = base.settings.clone();
    let mut peer = Peer::new(peer_cfg, db, now_ms() as u64);

    // Election port.
    let (net, mut election_rx) =
        ElectionNet::start(config.election.clone())
            .await
            .map_err(|source| ShellError::Io {
                what: format!("bind election port {}", config.election.listen),
                source,
            })?;
    let mut unreachable_rx = net.unreachable();
    // Quorum port.
    let quorum_listener = TcpListener::bind(config.quorum_listen)
        .await
        .map_err(|source| ShellError::Io {
            what: format!("bind quorum port {}", config.quorum_listen),
            source,
        })?;
    let (qevents_tx, mut qevents_rx) = mpsc::channel::<QuorumEvent>(4096);
    // Links from both listeners share one numbering.
    let link_ids = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let quorum_accept = tokio::spawn(quorum_accept_loop(
        quorum_listener,
        qevents_tx.clone(),
        config.max_packet_bytes,
        link_ids.clone(),
        false,
    ));
    // Observer-master port: followers serve observers there (ZooKeeper binds it on every voter).
    let om_accept = match config.observer_master_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| ShellError::Io {
                    what: format!("bind observerMasterPort {addr}"),
                    source,
                })?;
            tracing::info!("observer master port {addr}");
            Some(tokio::spawn(quorum_accept_loop(
                listener,
                qevents_tx.clone(),
                config.max_packet_bytes,
                link_ids,
                true,
            )))
        }
        None => None,
    };
    // Client port.
    let listener = TcpListener::bind(base.client_addr)
        .await
        .map_err(|source| ShellError::Io {
            what: format!("bind client port {}", base.client_addr),
            source,
        })?;
    tracing::info!(
        "server {} listening: clients {}, quorum {}, election {}",
        config.peer.my_id,
        base.client_addr,
        config.quorum_listen,
        config.election.listen
    );
    let (events_tx, mut events_rx) = mpsc::channel::<CoreEvent>(4096);
    let conn_settings = ConnectionSettings {
        max_frame_bytes: base.max_frame_bytes,
        four_letter_words: base.four_letter_words.clone(),
        sessionless_timeout: Duration::from_secs(10),
        tcp_keep_alive: base.client_tcp_keep_alive,
    };
    let per_ip: Arc<Mutex<HashMap<IpAddr, u32>>> = Arc::default();
    let accept_task = tokio::spawn(accept_loop(
        listener,
        events_tx.clone(),
        conn_settings,
        per_ip,
        base.max_client_cnxns,
    ));
    let monitor_tasks = super::admin::start(&base.monitoring, &events_tx).await;

    let mut latency = Latency::default();
    let mut pending: HashMap<(ConnId, i32), (Instant, bool)> = HashMap::new();
    let mut conns: HashMap<ConnId, (OutboundTx, SocketAddr, i64)> = HashMap::new();
    let mut links: BTreeMap<LinkId, LinkTx> = BTreeMap::new();
    let mut leader_link: Option<(u64, mpsc::Sender<LinkOut>)> = None;
    let mut leader_generation: u64 = 0;
    let mut leader_tasks: Vec<JoinHandle<()>> = Vec::new();
    // Reconfigurations add members: their addresses join these.
    let mut quorum_addrs = config.quorum_addrs.clone();
    let tick_ms = config.peer.tick_ms.clamp(20, 400) / 4;
    let mut tick = tokio::time::interval(Duration::from_millis(tick_ms.max(5)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let clock = || now_ms() as u64;
    peer.start(clock());
    // What one pass of the loop handles: the event the select returned plus whatever else is already
    // waiting (up to MAX_TURN_BATCH), each in arrival order. Converting an event to the peer's input
    // happens when its turn comes, not when it is received, so a link or leader generation that an
    // earlier turn changed is what a later one is checked against, exactly as one event per pass.
    let mut batch: Vec<Turn> = Vec::new();
    // Packets for each learner link and for the leader, gathered during a pass and handed to their
    // writers once at its end: one queue message and one wake-up per link per pass, not per packet
    // (a commit goes to every learner; several commits per pass under load).
    let mut learner_out: BTreeMap<LinkId, Gathered> = BTreeMap::new();
    let mut leader_out = Gathered::default();
    let mut share = TurnShare::default();
    let mut shutdown_open = true;
    let result: Result<(), ShellError> = loop {
        // Biased: the order below is the priority. A snapshot whose time share is due comes
        // first; an idle task gives the rest of its time to the snapshot (see `snapshot_writer`).
        let mut snapshot_turn = None;
        // A non-empty batch here holds what the last pass's flush reported (a broken link).
        if batch.is_empty() {
            tokio::select! {
                biased;
                _ = snapshots.turn(), if share.due() && peer.snapshot_in_progress() => {
                    snapshot_turn = Some(Instant::now());
                    batch.push(Turn::Peer(PeerInput::SnapshotStep));
                }
                changed = shutdown.changed(), if shutdown_open => {
                    // With every sender gone no stop can come; the branch must not stay ready forever.
                    shutdown_open = changed.is_ok();
                    if *shutdown.borrow() { break Ok(()) }
                }
                _ = tick.tick() => batch.push(Turn::Peer(PeerInput::Tick)),
                ev = log_rx.recv() => match ev {
                    Some(ev) => batch.push(Turn::Log(ev)),
                    None => break Err(ShellError::Corrupt("txn log thread stopped".into())),
                },
                Some(ev) = qevents_rx.recv() => batch.push(Turn::Quorum(ev)),
                Some((from, payload)) = election_rx.recv() => {
                    batch.push(Turn::Peer(PeerInput::Election { from, payload }));
                }
                Ok(()) = unreachable_rx.changed() => {
                    let set = unreachable_rx.borrow_and_update().clone();
                    batch.push(Turn::Peer(PeerInput::ElectionUnreachable(set)));
                }
                ev = events_rx.recv() => {
                    let Some(ev) = ev else { break Ok(()) };
                    batch.push(Turn::Core(ev));
                }
                _ = snapshots.turn(), if peer.snapshot_in_progress() => {
                    snapshot_turn = Some(Instant::now());
                    batch.push(Turn::Peer(PeerInput::SnapshotStep));
                }
            }
            // What else is already waiting joins this pass: under load one select (its futures, the
            // watch and timer registrations) serves many events, and their packets share one write.
            while batch.len() < MAX_TURN_BATCH {
                if let Ok(ev) = qevents_rx.try_recv() {
                    batch.push(Turn::Quorum(ev));
                } else if let Ok(ev) = events_rx.try_recv() {
                    batch.push(Turn::Core(ev));
                } else if let Ok(ev) = log_rx.try_recv() {
                    batch.push(Turn::Log(ev));
                } else {
                    break;
                }
            }
        }
        // One input at a time, each followed by its actions (a TRUNC's reload must happen before the
        // next packet is handled); carrying out an action can feed the peer again (a reload, a broken
        // link), so each input's actions repeat until the peer is quiet.
        let mut fatal = None;
        let mut turns = std::mem::take(&mut batch);
        'inputs: for turn in turns.drain(..) {
            let input = match turn {
                Turn::Peer(input) => Some(input),
                Turn::Log(LogEvent::Durable(zxid)) => Some(PeerInput::Durable(zxid)),
                Turn::Log(LogEvent::Failed(err)) => {
                    tracing::error!("txn log failed, stopping the server: {err}");
                    fatal = Some(ShellError::Storage(err));
                    break 'inputs;
                }
                Turn::Quorum(ev) => {
                    // Whatever was gathered for a connection goes to it before it is dropped.
                    let broke = matches!(ev, QuorumEvent::LeaderGone { .. })
                        && flush_leader(&mut leader_out, &mut leader_link);
                    quorum_input(
                        ev,
                        &mut links,
                        &mut learner_out,
                        &mut leader_link,
                        leader_generation,
                    )
                    .or(broke.then_some(PeerInput::LeaderDisconnected))
                }
                Turn::Core(ev) => match ev {
                    CoreEvent::Register { conn, tx, remote } => {
                        conns.insert(conn, (tx, remote, now_ms()));
                        None
                    }
                    CoreEvent::Input(input) => {
                        if let Input::Disconnected { conn } = &input {
                            conns.remove(conn);
                            let conn = *conn;
                            pending.retain(|(c, _), _| *c != conn);
                        }
                        if let Input::Request { conn, xid, request } = &input {
                            let write = request.op_code().is_write();
                            pending.insert((*conn, *xid), (Instant::now(), write));
                        }
                        Some(PeerInput::Client(input))
                    }
                    CoreEvent::FourLetter { word, reply } => {
                        if matches!(word, FourLetterWord::Srst) {
                            latency.reset();
                        }
                        let text = peer_four_letter(word, &peer, &conns, &base, started, &latency);
                        let _ = reply.send(text);
                        None
                    }
                    CoreEvent::Admin {
                        command,
                        params,
                        reply,
                    } => {
                        if command.primary == "observer_connection_stat_reset" {
                            peer.reset_observer_stats();
                        }
                        let mut snap = snapshot_of(peer.server(), &conns, &base, started, &latency);
                        decorate(&mut snap, &peer);
                        let observers = observer_entries(&peer, &links);
                        let _ = reply.send(admin_response(
                            command,
                            &params,
                            snap,
                            peer.server(),
                            &base,
                            observers,
                        ));
                        None
                    }
                },
            };
            let Some(input) = input else { continue };
            peer.handle(input, clock());
            'actions: loop {
                let actions = peer.take_actions();
                if actions.is_empty() {
                    break;
                }
                for action in actions {
                    match action {
                        PeerAction::ElectionSend { to, payload } => net.send(to, payload),
                        PeerAction::ConnectLeader { leader, delay_ms } => {
                            flush_leader(&mut leader_out, &mut leader_link);
                            let addr = quorum_addrs.get(&leader).copied();
                            start_connect(
                                &config,
                                addr,
                                delay_ms,
                                &mut leader_generation,
                                &mut leader_link,
                                &mut leader_tasks,
                                &qevents_tx,
                                &mut peer,
                            );
                        }
                        PeerAction::ConnectLearnerMaster { server, delay_ms } => {
                            flush_leader(&mut leader_out, &mut leader_link);
                            let addr = config.observer_master_addrs.get(&server).copied();
                            start_connect(
                                &config,
                                addr,
                                delay_ms,
                                &mut leader_generation,
                                &mut leader_link,
                                &mut leader_tasks,
                                &qevents_tx,
                                &mut peer,
                            );
                        }
                        PeerAction::SendLeader(packet) => {
                            if leader_link.is_some() {
                                leader_out.push(&packet);
                            }
                        }
                        PeerAction::CloseLeader => {
                            if flush_leader(&mut leader_out, &mut leader_link) {
                                peer.handle(PeerInput::LeaderDisconnected, clock());
                            }
                            if let Some((_, tx)) = leader_link.take() {
                                let _ = tx.try_send(LinkOut::Close);
                            }
                            leader_generation += 1;
                            for t in leader_tasks.drain(..) {
                                t.abort();
                            }
                        }
                        PeerAction::SendLearner { link, packet } => {
                            if links.contains_key(&link) {
                                learner_out.entry(link).or_default().push(&packet);
                            }
                        }
                        PeerAction::SendLearnerSnapshotChunk { link, chunk } => {
                            // In order: the packets gathered before it (the SNAP packet) go first.
                            flush_learner(&mut learner_out, &mut links, link, &mut peer);
                            send_link(&mut links, link, LinkOut::Chunk(chunk), &mut peer);
                        }
                        PeerAction::CloseLearner { link } => {
                            flush_learner(&mut learner_out, &mut links, link, &mut peer);
                            learner_out.remove(&link);
                            if let Some(tx) = links.remove(&link) {
                                let _ = tx.queue(LinkOut::Close);
                            }
                        }
                        PeerAction::Log { zxid, entry } => {
                            if log_thread
                                .commands
                                .send(LogCommand::Append(zxid, entry))
                                .is_err()
                            {
                                fatal = Some(ShellError::Corrupt("txn log thread is gone".into()));
                                break 'actions;
                            }
                        }
                        PeerAction::WriteEpoch { file, epoch } => {
                            let name = match file {
                                EpochFile::Accepted => ACCEPTED_EPOCH_FILE,
                                EpochFile::Current => CURRENT_EPOCH_FILE,
                            };
                            if let Err(err) =
                                write_epoch_file(disk.as_ref(), &base.data_dir, name, epoch)
                            {
                                fatal = Some(ShellError::Storage(err));
                                break 'actions;
                            }
                        }
                        PeerAction::Truncate { zxid } => {
                            match truncate_and_reload(
                                &log_thread,
                                &disk,
                                &base,
                                zxid,
                                peer.epochs(),
                            )
                            .await
                            {
                                Ok(db) => peer.reload(db),
                                Err(err) => {
                                    fatal = Some(err);
                                    break 'actions;
                                }
                            }
                        }
                        PeerAction::InstallSnapshot { zxid, body } => {
                            // The txns before the snapshot never pass through this server's commit
                            // path; the relay sees the next txn jump past its last one (its `prev`
                            // is older) and publishes a resync rather than a silent gap.
                            if let Err(err) =
                                storage::write_snapshot(disk.as_ref(), &base.data_dir, zxid, &body)
                            {
                                fatal = Some(ShellError::Storage(err));
                                break 'actions;
                            }
                            let (tx, rx) = oneshot::channel();
                            let _ = log_thread.commands.send(LogCommand::ResetTo(zxid, tx));
                            match rx.await {
                                Ok(Ok(())) => {}
                                Ok(Err(err)) => {
                                    fatal = Some(ShellError::Storage(err));
                                    break 'actions;
                                }
                                Err(_) => {
                                    fatal =
                                        Some(ShellError::Corrupt("txn log thread is gone".into()));
                                    break 'actions;
                                }
                            }
                        }
                        PeerAction::Client(action) => match action {
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
                            Action::Committed { zxid, header, txn } => {
                                if let Some(feed) = &base.commit_feed {
                                    let prev = std::mem::replace(&mut committed_prev, zxid);
                                    feed.offer(CommittedTxn {
                                        prev,
                                        zxid,
                                        header,
                                        txn,
                                    });
                                }
                            }
                            action @ Action::Snapshot { .. } => {
                                snapshots.carry_out(action, &log_thread)
                            }
                            other => tracing::error!(
                                "unexpected server action in an ensemble: {other:?}"
                            ),
                        },
                        PeerAction::RoleChanged(role) => {
                            tracing::info!(
                                "server {} is now {}",
                                config.peer.my_id,
                                role.mode_name()
                            );
                        }
                        PeerAction::Warning(_) => {}
                        PeerAction::ConfigSeen { text } | PeerAction::ConfigActivated { text }
                            if config.config_file.is_none() =>
                        {
                            learn_addresses(&text, &mut quorum_addrs, &net, config.peer.my_id);
                        }
                        PeerAction::ConfigSeen { text } => {
                            learn_addresses(&text, &mut quorum_addrs, &net, config.peer.my_id);
                            if let Some(cfg_path) = &config.config_file {
                                match super::dynamic_config::write_next(
                                    disk.as_ref(),
                                    cfg_path,
                                    &text,
                                ) {
                                    Ok(path) => tracing::info!("wrote {}", path.display()),
                                    Err(e) => tracing::error!(
                                        "writing the next dynamic config file failed: {e}"
                                    ),
                                }
                            }
                        }
                        PeerAction::ConfigActivated { text } => {
                            learn_addresses(&text, &mut quorum_addrs, &net, config.peer.my_id);
                            if let Some(cfg_path) = &config.config_file {
                                match super::dynamic_config::write_activated(
                                    disk.as_ref(),
                                    cfg_path,
                                    &text,
                                ) {
                                    Ok(path) => tracing::info!(
                                        "configuration committed: {} now names {}",
                                        cfg_path.display(),
                                        path.display()
                                    ),
                                    // Java logs and goes on too (the in-memory view is what counts).
                                    Err(e) => tracing::error!(
                                        "writing the dynamic config file failed: {e}"
                                    ),
                                }
                            }
                        }
                        PeerAction::ReadTxnLog {
                            link,
                            after,
                            until,
                            size_factor,
                        } => {
                            // Off the peer task: a read of many log files must not stall the
                            // quorum; the learner's sync waits for the answer.
                            let disk = disk.clone();
                            let (data_dir, log_dir) =
                                (base.data_dir.clone(), base.data_log_dir.clone());
                            let events = qevents_tx.clone();
                            tokio::task::spawn_blocking(move || {
                                let txns = match storage::read_for_sync(
                                    disk,
                                    &data_dir,
                                    &log_dir,
                                    after,
                                    until,
                                    size_factor,
                                ) {
                                    Ok(txns) => txns,
                                    Err(err) => {
                                        tracing::warn!("reading the txn log for a sync: {err}");
                                        None
                                    }
                                };
                                let txns = txns.map(|t| {
                                    t.into_iter().map(|(z, b)| (z, Arc::from(b))).collect()
                                });
                                let _ =
                                    events.blocking_send(QuorumEvent::TxnLogRead { link, txns });
                            });
                        }
                    }
                }
            }
            if fatal.is_some() {
                break 'inputs;
            }
        }
        // The pass's packets go out, one queue message per link; a link that cannot take them is
        // broken, and the peer hears of it at the start of the next pass.
        if flush_leader(&mut leader_out, &mut leader_link) {
            batch.push(Turn::Peer(PeerInput::LeaderDisconnected));
        }
        for link in flush_learners(&mut learner_out, &mut links) {
            batch.push(Turn::Peer(PeerInput::LearnerDisconnected { link }));
        }
        if batch.is_empty() {
            // Keep the allocation for the next pass.
            batch = turns;
        }
        if let Some(began) = snapshot_turn {
            share.took_turn(began);
        }
        if let Some(err) = fatal {
            break Err(err);
        }
    };
    accept_task.abort();
    quorum_accept.abort();
    if let Some(task) = om_accept {
        task.abort();
    }
    for t in leader_tasks {
        t.abort();
    }
    for task in monitor_tasks {
        task.abort();
    }
    net.shutdown();
    drop(log_thread);
    result
}

/// Resolves the quorum and election addresses of a configuration's members, so this server can connect
/// to members a reconfiguration added (`QuorumPeer.connectNewPeers`).
fn learn_addresses(
    text: &[u8],
    quorum_addrs: &mut BTreeMap<ServerId, SocketAddr>,
    net: &ElectionNet,
    my_id: ServerId,
) {
    use std::net::ToSocketAddrs;
    let Ok(qc) = outpost_conf::reconfig::parse_config_text(&String::from_utf8_lossy(text)) else {
        return;
    };
    let resolve = |host: &str, port: u16| {
        (host.trim_start_matches('[').trim_end_matches(']'), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
    };
    for (id, spec) in &qc.servers {
        let Some(a) = spec.addrs.first() else {
            continue;
        };
        let sid = ServerId(*id);
        if let Some(addr) = resolve(&a.host, a.quorum_port) {
            quorum_addrs.insert(sid, addr);
        }
        if sid != my_id {
            if let Some(addr) = resolve(&a.host, a.election_port) {
                net.set_peer_addr(sid, addr);
            }
        }
    }
}

fn send_link(links: &mut BTreeMap<LinkId, LinkTx>, link: LinkId, out: LinkOut, peer: &mut Peer) {
    let Some(tx) = links.get(&link) else { return };
    if !tx.queue(out) {
        tracing::warn!("learner link {link} is not keeping up; closing it");
        if let Some(tx) = links.remove(&link) {
            let _ = tx.queue(LinkOut::Close);
        }
        peer.handle(PeerInput::LearnerDisconnected { link }, now_ms() as u64);
    }
}

/// The `observers` command's rows: the peer's view of each observer plus its link's address and queue.
fn observer_entries(
    peer: &Peer,
    links: &BTreeMap<LinkId, LinkTx>,
) -> Vec<crate::server::admin::ObserverEntry> {
    peer.observers_info()
        .into_iter()
        .map(|o| {
            let link = links.get(&o.link);
            crate::server::admin::ObserverEntry {
                // LearnerHandler.getRemoteAddress: the socket address's toString, "/ip:port".
                remote_socket_address: link
                    .map_or_else(|| "<null>".to_string(), |l| format!("/{}", l.remote)),
                sid: o.sid.0,
                established_ms: o.established_ms,
                queued_packets: link.map_or(0, |l| (l.tx.max_capacity() - l.tx.capacity()) as u64),
                queued_packets_size: link.map_or(0, |l| l.queued_bytes.load(Ordering::Relaxed)),
                packets_received: o.packets_received,
                packets_sent: o.packets_sent,
                requests: o.requests,
                last_zxid: o.last_zxid.0,
                synced: o.synced,
                lag_zxids: o.lag_zxids,
                lag_ms: o.lag_ms,
            }
        })
        .collect()
}

/// Starts connecting to the leader or a learner master (a new generation: events of older connection
/// attempts are ignored).
#[allow(clippy::too_many_arguments)]
fn start_connect(
    config: &PeerShellConfig,
    addr: Option<SocketAddr>,
    delay_ms: u64,
    generation: &mut u64,
    link: &mut Option<(u64, mpsc::Sender<LinkOut>)>,
    tasks: &mut Vec<JoinHandle<()>>,
    events: &mpsc::Sender<QuorumEvent>,
    peer: &mut Peer,
) {
    *generation += 1;
    *link = None;
    for t in tasks.drain(..) {
        t.abort();
    }
    let Some(addr) = addr else {
        tracing::error!("no address for the server to learn from in the configuration");
        peer.handle(PeerInput::LeaderConnectFailed, now_ms() as u64);
        return;
    };
    let ticks = if config.connect_limit_ticks > 0 {
        config.connect_limit_ticks
    } else {
        config.peer.init_limit
    };
    tasks.push(tokio::spawn(connect_leader(
        addr,
        *generation,
        delay_ms,
        config.peer.tick_ms * ticks,
        events.clone(),
        config.max_packet_bytes,
        config.max_snapshot_bytes,
    )));
}

async fn truncate_and_reload(
    log_thread: &LogThread,
    disk: &DiskRef,
    base: &StandaloneConfig,
    zxid: Zxid,
    epochs: (Epoch, Epoch),
) -> Result<PeerDb, ShellError> {
    let (tx, rx) = oneshot::channel();
    let _ = log_thread
        .commands
        .send(LogCommand::TruncateAfterAck(zxid, tx));
    match rx.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(ShellError::Storage(err)),
        Err(_) => return Err(ShellError::Corrupt("txn log thread is gone".into())),
    }
    let snapshots = SnapshotStore::open(disk.clone(), &base.data_dir)?;
    for removed in snapshots.remove_newer_than(zxid)? {
        tracing::info!(
            "removed snapshot {} newer than the TRUNC point",
            removed.display()
        );
    }
    reload_db(disk, base, epochs)
}

async fn quorum_accept_loop(
    listener: TcpListener,
    events: mpsc::Sender<QuorumEvent>,
    max_packet: usize,
    link_ids: Arc<std::sync::atomic::AtomicU64>,
    observer_master: bool,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(err) => {
                tracing::warn!("quorum accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let link = link_ids.fetch_add(1, Ordering::Relaxed);
        tracing::debug!("learner connection {link} from {remote}");
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        let queued_bytes = Arc::new(AtomicU64::new(0));
        let queued_packets = Arc::new(AtomicU64::new(0));
        let tx = LinkTx {
            tx,
            remote,
            queued_bytes: queued_bytes.clone(),
            queued_packets: queued_packets.clone(),
        };
        if events
            .send(QuorumEvent::LearnerConnected {
                link,
                tx,
                observer_master,
            })
            .await
            .is_err()
        {
            return;
        }
        let (reader, writer) = stream.into_split();
        tokio::spawn(write_link(
            writer,
            rx,
            Some(LinkReport {
                link,
                events: events.clone(),
                queued_bytes,
                queued_packets,
            }),
        ));
        let events = events.clone();
        tokio::spawn(async move {
            // Learners never send snapshots; a tiny snapshot bound makes a stray SNAP an error.
            read_link(
                reader,
                max_packet,
                0,
                |item| QuorumEvent::FromLearner { link, item },
                &events,
                None,
            )
            .await;
            let _ = events.send(QuorumEvent::LearnerGone { link }).await;
        });
    }
}

/// How a learner link's writer reports back to the peer task.
struct LinkReport {
    link: LinkId,
    events: mpsc::Sender<QuorumEvent>,
    queued_bytes: Arc<AtomicU64>,
    queued_packets: Arc<AtomicU64>,
}

/// Writes a link's packets in order. Everything already queued goes out in one write, as
/// `LearnerHandler.sendPackets` flushes only when its queue is empty: under load one system call
/// carries many PROPOSALs, COMMITs or ACKs instead of one each. A snapshot chunk is written as it is
/// (after the packets gathered before it) and reported written, which paces the SNAP stream.
async fn write_link(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::Receiver<LinkOut>,
    report: Option<LinkReport>,
) {
    /// Bytes gathered before a write even if more is queued (bounds the copy, not the queue).
    const BATCH_BYTES: usize = 1 << 20;
    let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(out) => out,
            None => match rx.recv().await {
                Some(out) => out,
                None => break,
            },
        };
        let mut close = false;
        let mut written_packets = 0u64;
        let mut chunk = None;
        match first {
            LinkOut::Bytes { bytes, packets } => {
                batch.extend_from_slice(&bytes);
                written_packets += packets;
            }
            LinkOut::Chunk(bytes) => chunk = Some(bytes),
            LinkOut::Close => close = true,
        }
        let mut yielded = false;
        while !close && chunk.is_none() && next.is_none() && batch.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(LinkOut::Bytes { bytes, packets }) => {
                    batch.extend_from_slice(&bytes);
                    written_packets += packets;
                }
                // Written on its own after this batch (no copy of the chunk).
                Ok(out @ LinkOut::Chunk(_)) => next = Some(out),
                Ok(LinkOut::Close) => close = true,
                Err(_) if !yielded => {
                    // The peer task woke this one with its first packet and is likely still routing
                    // the rest of the same step (a commit goes to every learner, several commits per
                    // fsync): one turn of the scheduler lets them join this write.
                    yielded = true;
                    tokio::task::yield_now().await;
                }
                Err(_) => break,
            }
        }
        let mut written = batch.len();
        if !batch.is_empty() && writer.write_all(&batch).await.is_err() {
            break;
        }
        batch.clear();
        if let Some(bytes) = &chunk {
            if writer.write_all(bytes).await.is_err() {
                break;
            }
            written += bytes.len();
        }
        if let Some(r) = &report {
            r.queued_bytes.fetch_sub(written as u64, Ordering::Relaxed);
            let packets = written_packets + u64::from(chunk.is_some());
            r.queued_packets.fetch_sub(packets, Ordering::Relaxed);
            if chunk.is_some() {
                let _ = r
                    .events
                    .send(QuorumEvent::ChunkWritten { link: r.link })
                    .await;
            }
        }
        if close {
            break;
        }
    }
    let _ = writer.shutdown().await;
}

/// Reads items until EOF or an error; each becomes an event. On the connection to a leader
/// (`snapshot_generation` set), a snapshot body still coming in is reported now and then as
/// [`QuorumEvent::SnapshotProgress`]: the learner's read timeout counts bytes, not whole items, as a
/// Java learner's socket timeout is reset by every read.
async fn read_link(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    max_packet: usize,
    max_snapshot: usize,
    wrap: impl Fn(QuorumItem) -> QuorumEvent,
    events: &mpsc::Sender<QuorumEvent>,
    snapshot_generation: Option<u64>,
) {
    /// A snapshot body coming in is reported after this many more bytes, or this long.
    const PROGRESS_BYTES: u64 = 1 << 20;
    const PROGRESS_EVERY: Duration = Duration::from_millis(500);
    let mut decoder = QuorumStreamDecoder::new(max_packet, max_snapshot);
    let mut buf = vec![0u8; 64 * 1024];
    // (bytes when last reported, when).
    let mut reported = (0u64, Instant::now());
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_item() {
                Ok(Some(item)) => {
                    if events.send(wrap(item)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::warn!("malformed quorum stream: {err}; closing the connection");
                    return;
                }
            }
        }
        match (snapshot_generation, decoder.snapshot_progress()) {
            (Some(generation), Some((bytes, znodes))) => {
                if bytes < reported.0 {
                    reported.0 = 0;
                }
                if bytes - reported.0 >= PROGRESS_BYTES || reported.1.elapsed() >= PROGRESS_EVERY {
                    reported = (bytes, Instant::now());
                    let progress = QuorumEvent::SnapshotProgress {
                        generation,
                        bytes,
                        znodes,
                    };
                    if events.send(progress).await.is_err() {
                        return;
                    }
                }
            }
            _ => reported = (0, Instant::now()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn connect_leader(
    addr: SocketAddr,
    generation: u64,
    delay_ms: u64,
    limit_ms: u64,
    events: mpsc::Sender<QuorumEvent>,
    max_packet: usize,
    max_snapshot: usize,
) {
    if delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    // Learner.connectToLeader: up to 5 attempts, 100 ms apart, bounded by initLimit ticks overall.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(limit_ms.max(1000));
    let mut stream = None;
    for attempt in 1..=5 {
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        if remaining.is_zero() {
            break;
        }
        match tokio::time::timeout(remaining, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(err)) => {
                tracing::info!("connecting to the leader at {addr} (attempt {attempt}): {err}")
            }
            Err(_) => {
                tracing::info!("connecting to the leader at {addr} (attempt {attempt}) timed out")
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let Some(stream) = stream else {
        let _ = events
            .send(QuorumEvent::LeaderConnectFailed { generation })
            .await;
        return;
    };
    let _ = stream.set_nodelay(true);
    let (reader, writer) = stream.into_split();
    let (tx, rx) = mpsc::channel(LINK_QUEUE);
    let writer_task = tokio::spawn(write_link(writer, rx, None));
    if events
        .send(QuorumEvent::LeaderConnected { generation, tx })
        .await
        .is_err()
    {
        return;
    }
    read_link(
        reader,
        max_packet,
        max_snapshot,
        |item| QuorumEvent::FromLeader { generation, item },
        &events,
        Some(generation),
    )
    .await;
    writer_task.abort();
    let _ = events.send(QuorumEvent::LeaderGone { generation }).await;
}

/// Adds the ensemble's view to a server snapshot (mode, learners).
fn decorate(snap: &mut crate::server::fourlw::ServerSnapshot, peer: &Peer) {
    snap.mode = if peer.is_detached() {
        "read-only".to_string()
    } else {
        peer.role().mode_name().to_string()
    };
    let learners = peer.learners();
    if !learners.is_empty() || peer.role() == crate::zab::peer::PeerRole::Leading {
        let followers = learners.iter().filter(|l| !l.1).count();
        let synced = learners.iter().filter(|l| !l.1 && l.2).count();
        snap.extra_metrics
            .push(("learners".into(), learners.len().to_string()));
        snap.extra_metrics
            .push(("synced_followers".into(), synced.to_string()));
        snap.extra_metrics
            .push(("followers".into(), followers.to_string()));
    }
    // synced_observers, per-observer lag, the observer's own lag, sync counters.
    snap.extra_metrics.extend(peer.monitor_lines());
}

fn peer_four_letter(
    word: FourLetterWord,
    peer: &Peer,
    conns: &HashMap<ConnId, (OutboundTx, SocketAddr, i64)>,
    base: &StandaloneConfig,
    started: Instant,
    latency: &Latency,
) -> String {
    let needs_serving = matches!(
        word,
        FourLetterWord::Srvr
            | FourLetterWord::Stat
            | FourLetterWord::Mntr
            | FourLetterWord::Cons
            | FourLetterWord::Wchs
            | FourLetterWord::Wchc
            | FourLetterWord::Wchp
            | FourLetterWord::Dump
    );
    if needs_serving && !peer.is_serving() {
        // ZooKeeper's answer while it is electing or syncing.
        return "This ZooKeeper instance is not currently serving requests\n".into();
    }
    match word {
        FourLetterWord::Srvr | FourLetterWord::Stat | FourLetterWord::Mntr => {
            let mut snap = snapshot_of(peer.server(), conns, base, started, latency);
            decorate(&mut snap, peer);
            match word {
                FourLetterWord::Srvr => crate::server::fourlw::srvr(&snap),
                FourLetterWord::Stat => crate::server::fourlw::stat(&snap),
                _ => crate::server::fourlw::mntr(&snap),
            }
        }
        other => four_letter_text(other, peer.server(), conns, base, started, latency),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::quorum::{PacketType, QuorumPacket};

    fn link_tx() -> (LinkTx, mpsc::Receiver<LinkOut>) {
        let (tx, rx) = mpsc::channel(LINK_QUEUE);
        let tx = LinkTx {
            tx,
            remote: SocketAddr::from(([127, 0, 0, 1], 2888)),
            queued_bytes: Arc::default(),
            queued_packets: Arc::default(),
        };
        (tx, rx)
    }

    fn commit(zxid: i64) -> QuorumPacket {
        QuorumPacket::new(PacketType::Commit, zxid)
    }

    /// A pass's packets for a link count one by one against the link's bound, though they travel as one
    /// queue message, so batching does not let a slow learner hold more packets than before.
    #[test]
    fn link_queue_bound_counts_packets_not_messages() {
        let (tx, _rx) = link_tx();
        let mut gathered = Gathered::default();
        for z in 1..=3 {
            gathered.push(&commit(z));
        }
        assert!(tx.queue(gathered.take().expect("three packets")));
        assert_eq!(tx.queued_packets.load(Ordering::Relaxed), 3);
        let too_many = LinkOut::Bytes {
            bytes: Vec::new(),
            packets: LINK_QUEUE as u64 - 2,
        };
        assert!(!tx.queue(too_many), "3 + 65,534 packets exceed the bound");
        let just_enough = LinkOut::Bytes {
            bytes: Vec::new(),
            packets: LINK_QUEUE as u64 - 3,
        };
        assert!(tx.queue(just_enough));
        assert!(
            Gathered::default().take().is_none(),
            "no packets, no message"
        );
    }

    /// The end-of-pass flush hands each link its packets in order as one message, and closes (and
    /// reports) a link that cannot take them instead of dropping packets from a link that stays up.
    #[test]
    fn flush_learners_sends_in_order_and_breaks_a_full_link() {
        let (fast, mut fast_rx) = link_tx();
        let (slow, mut slow_rx) = link_tx();
        slow.queued_packets
            .store(LINK_QUEUE as u64, Ordering::Relaxed);
        let mut links = BTreeMap::from([(1, fast), (2, slow)]);
        let mut out: BTreeMap<LinkId, Gathered> = BTreeMap::new();
        for z in 1..=2 {
            out.entry(1).or_default().push(&commit(z));
            out.entry(2).or_default().push(&commit(z));
        }
        // A link already gone leaves nothing behind.
        out.entry(3).or_default().push(&commit(1));
        assert_eq!(flush_learners(&mut out, &mut links), vec![2]);
        assert!(links.contains_key(&1) && !links.contains_key(&2));
        assert!(!out.contains_key(&2) && !out.contains_key(&3));
        let Ok(LinkOut::Bytes { bytes, packets }) = fast_rx.try_recv() else {
            panic!("the fast link gets one message");
        };
        assert_eq!(packets, 2);
        let mut decoder = QuorumStreamDecoder::new(1 << 20, 0);
        decoder.push(&bytes);
        for z in 1..=2 {
            match decoder.next_item() {
                Ok(Some(QuorumItem::Packet(p))) => assert_eq!(p, commit(z)),
                other => panic!("expected COMMIT {z}, got {other:?}"),
            }
        }
        assert!(matches!(slow_rx.try_recv(), Ok(LinkOut::Close)));
    }

    /// An event is checked against the leader connection as it is when its turn comes: packets of a
    /// connection older than the current generation, or after the connection is gone, never reach the
    /// peer.
    #[test]
    fn quorum_input_drops_what_an_old_leader_connection_sent() {
        let (tx, _rx) = mpsc::channel(4);
        let mut links = BTreeMap::new();
        let mut out = BTreeMap::new();
        let mut leader = Some((3, tx));
        let from = |generation| QuorumEvent::FromLeader {
            generation,
            item: QuorumItem::Packet(commit(7)),
        };
        assert!(quorum_input(from(2), &mut links, &mut out, &mut leader, 3).is_none());
        assert!(matches!(
            quorum_input(from(3), &mut links, &mut out, &mut leader, 3),
            Some(PeerInput::FromLeader(_))
        ));
        let gone = QuorumEvent::LeaderGone { generation: 3 };
        assert!(matches!(
            quorum_input(gone, &mut links, &mut out, &mut leader, 3),
            Some(PeerInput::LeaderDisconnected)
        ));
        assert!(quorum_input(from(3), &mut links, &mut out, &mut leader, 3).is_none());
    }
}
