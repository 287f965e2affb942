//! The election transport: ZooKeeper's `QuorumCnxManager` on tokio, byte for byte, so the sans-IO
//! fast leader election engine (`zab::election::Election`) can run between real processes, Java
//! servers included.
//!
//! What it mirrors (§5 of the protocol guide, `QuorumCnxManager.java`):
//! - a listener on the election address, bound with SO_REUSEADDR and `electionPortBindRetry` attempts
//!   one second apart (`Listener.ListenerHandler`);
//! - the initiator's V1 header `i64 -65536, i64 sid, i32 n, n bytes "host:port"` (`startConnection`),
//!   read by the acceptor under `quorumCnxnTimeoutMs` (`handleConnection`, `InitialMessage.parse`);
//! - the tie-break: the connection kept between two servers is the one the larger sid initiated; an
//!   initiator with the smaller sid closes after its header, an acceptor facing a smaller sid closes
//!   and connects back (`startConnection`, `handleConnection`);
//! - i32-length-prefixed messages of `1..=524288` bytes; anything else drops the connection
//!   (`RecvWorker`);
//! - a one-message send queue per peer where a newer message replaces an unsent one
//!   (`CircularBlockingQueue(SEND_CAPACITY = 1)`), and on every new connection, when that queue is
//!   empty, the last message sent to the peer is sent again (`SendWorker.run`);
//! - a receive queue of 100 messages that drops the oldest (`RECV_CAPACITY`), messages to self
//!   looped back into it (`toSend`), lazy connects (`connectOne`) with `cnxTimeout`, and `connectAll`.
//!
//! Quorum SASL, TLS, multi-address (V2 headers are accepted, V1 is sent) and `tcpKeepAlive` are not
//! implemented. A pre-3.5 observer without an id (legacy sid `i64::MAX`) is refused.
//!
//! [`run_election`] drives an [`Election`] over the transport until it decides, and [`perform`]
//! carries out an engine outbox afterwards, while the server leads or follows and must keep answering
//! LOOKING peers.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

use crate::ids::ServerId;
use crate::jute::DecodeError;
use crate::proto::frame::{decode_frame, encode_frame, FrameResult};
use crate::proto::quorum::{
    ElectionHandshake, ElectionProtocol, ELECTION_MAX_ADDRESS, ELECTION_MAX_MESSAGE,
};
use crate::zab::election::{Action, Elected, Election, LocalState, Outbox};

/// `QuorumCnxManager.RECV_CAPACITY`: received messages waiting for the election, oldest dropped.
pub const RECV_CAPACITY: usize = 100;
/// `cnxTimeout`'s default (`zookeeper.cnxTimeout`), ms.
pub const DEFAULT_CNX_TIMEOUT_MS: u64 = 5000;
/// `electionPortBindRetry`'s default.
pub const DEFAULT_BIND_RETRIES: u32 = 3;
/// Pause between bind attempts (`ListenerHandler.acceptConnections` sleeps 1 s).
const BIND_RETRY_PAUSE: Duration = Duration::from_secs(1);
/// The largest handshake header: version, sid, length and the longest address text.
const MAX_HEADER: usize = 8 + 8 + 4 + ELECTION_MAX_ADDRESS;
/// Java's `QuorumPeer.OBSERVER_ID`: a pre-3.5 observer without an id.
const LEGACY_OBSERVER_ID: i64 = i64::MAX;

/// Settings of one server's election transport (from its `server.N` lines and zoo.cfg).
#[derive(Clone, Debug)]
pub struct ElectionNetConfig {
    /// This server's myid.
    pub my_id: ServerId,
    /// This server's election address (bound).
    pub listen: SocketAddr,
    /// `host:port` sent in the handshake header.
    pub advertised: String,
    /// Every other server's election address, voters and observers.
    pub peers: BTreeMap<ServerId, SocketAddr>,
    /// `cnxTimeout`: how long a connect may take, ms (0: no limit).
    pub cnx_timeout_ms: u64,
    /// `quorumCnxnTimeoutMs` (default tickTime × syncLimit): how long an acceptor waits for the
    /// handshake header, ms (0: no limit).
    pub handshake_timeout_ms: u64,
    /// `electionPortBindRetry`: bind attempts, 0 for unlimited.
    pub bind_retries: u32,
    /// `tcpKeepAlive`: TCP keepalive on every election socket (`QuorumCnxManager.setSockOpts`).
    pub tcp_keep_alive: bool,
}

/// Why an inbound connection was dropped (logged; the connection is closed, nothing is answered).
#[derive(Debug, thiserror::Error)]
pub enum ElectionNetError {
    /// The socket failed.
    #[error("election connection io: {0}")]
    Io(#[from] std::io::Error),
    /// The handshake header did not parse (`InitialMessage.InitialMessageException`).
    #[error("bad election handshake: {0}")]
    Handshake(#[from] DecodeError),
    /// The header's address text is not `host:port` (`InitialMessage.parse`).
    #[error("badly formed election address {0:?}")]
    Address(String),
    /// The header did not arrive within `quorumCnxnTimeoutMs`.
    #[error("election handshake timed out")]
    HandshakeTimeout,
    /// The peer closed before finishing its header.
    #[error("peer closed during the election handshake")]
    Closed,
    /// A pre-3.5 observer without an id: not supported.
    #[error("legacy observer without an id")]
    LegacyObserver,
    /// A message length outside `1..=524288` (`RecvWorker`).
    #[error("election message of invalid length {0}")]
    FrameLength(i64),
}

/// The election transport of one server. Cheap to clone: clones share one transport.
#[derive(Clone)]
pub struct ElectionNet {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ElectionNetConfig,
    local_addr: SocketAddr,
    state: Mutex<State>,
    /// `recvQueue`: bounded, oldest dropped.
    recv: Mutex<VecDeque<(ServerId, Vec<u8>)>>,
    recv_ready: Notify,
    /// Flips to true once, on shutdown; every task watches it.
    stop: watch::Sender<bool>,
    /// Established connections whose tasks still run (both halves).
    live: AtomicUsize,
    /// Peers whose last connect attempt failed and that have not connected since (for outpost's
    /// early finalize of an election: see `ElectionConfig::finalize_early`).
    unreachable: watch::Sender<BTreeSet<ServerId>>,
}

#[derive(Default)]
struct State {
    peers: BTreeMap<ServerId, Peer>,
    /// Election addresses learnt from reconfigurations; they override the configured ones.
    addrs: BTreeMap<ServerId, SocketAddr>,
    next_conn: u64,
    shut: bool,
}

/// Per-peer state: `queueSendMap`, `lastMessageSent`, `senderWorkerMap` and `inprogressConnections`
/// entries for one sid. An entry exists once something was queued for the peer or it connected.
#[derive(Default)]
struct Peer {
    /// The one-message send queue.
    queued: Option<Arc<Vec<u8>>>,
    /// The last payload handed to the socket.
    last_sent: Option<Arc<Vec<u8>>>,
    /// The live connection.
    conn: Option<Conn>,
    /// A connect attempt is under way.
    connecting: bool,
    /// When a broken connection last triggered an immediate reconnect (see [`RETRY_SPACING`]).
    retried_at: Option<std::time::Instant>,
}

/// At most one immediate reconnect per peer this often after a live connection breaks, so a peer that
/// keeps dropping connections (a twin with the same myid, say) costs one connect a second, not a loop.
const RETRY_SPACING: Duration = Duration::from_secs(1);

struct Conn {
    id: u64,
    /// Wakes the writer when a payload is queued.
    wake: Arc<Notify>,
    /// Stops both halves (`SendWorker.finish`).
    stop: watch::Sender<bool>,
}

impl ElectionNet {
    /// Binds the listener and starts the accept loop; inbound payloads arrive on the receiver as
    /// `(sender sid, payload)`.
    pub async fn start(
        cfg: ElectionNetConfig,
    ) -> std::io::Result<(ElectionNet, mpsc::Receiver<(ServerId, Vec<u8>)>)> {
        let listener = bind_with_retry(cfg.listen, cfg.bind_retries).await?;
        let local_addr = listener.local_addr()?;
        let (stop, _) = watch::channel(false);
        let net = ElectionNet {
            inner: Arc::new(Inner {
                cfg,
                local_addr,
                state: Mutex::new(State::default()),
                recv: Mutex::new(VecDeque::with_capacity(RECV_CAPACITY)),
                recv_ready: Notify::new(),
                stop,
                live: AtomicUsize::new(0),
                unreachable: watch::channel(BTreeSet::new()).0,
            }),
        };
        // The receive queue drops its oldest message when full, which a tokio channel cannot do, so
        // a pump moves messages from it into a channel of one.
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(net.clone().pump(tx));
        tokio::spawn(net.clone().accept_loop(listener));
        tracing::info!(
            "election transport of server {} listening on {local_addr}",
            net.inner.cfg.my_id
        );
        Ok((net, rx))
    }

    /// Queues a payload for a peer (`toSend`): never blocks; replaces a payload not yet sent to
    /// it; connects lazily if there is no connection. A payload to this server is looped back.
    pub fn send(&self, to: ServerId, payload: Vec<u8>) {
        if to == self.inner.cfg.my_id {
            self.push_received(to, payload);
            return;
        }
        {
            let mut st = self.lock();
            if st.shut {
                return;
            }
            let peer = st.peers.entry(to).or_default();
            peer.queued = Some(Arc::new(payload));
            if let Some(conn) = &peer.conn {
                conn.wake.notify_one();
            }
        }
        self.connect_one(to, None);
    }

    /// Connects to every peer that has no connection (`connectAll`). As in Java, these are the
    /// peers something was ever queued for or that ever connected: the election's recipients.
    pub fn connect_all(&self) {
        let sids: Vec<ServerId> = self.lock().peers.keys().copied().collect();
        for sid in sids {
            self.connect_one(sid, None);
        }
    }

    /// Sids with a live connection now.
    pub fn connected(&self) -> Vec<ServerId> {
        self.lock()
            .peers
            .iter()
            .filter(|(_, p)| p.conn.is_some())
            .map(|(sid, _)| *sid)
            .collect()
    }

    /// Established connections whose tasks are still running. A replaced connection counts until
    /// its tasks have ended, so this tells whether the tie-break left one socket per peer.
    pub fn live_connections(&self) -> usize {
        self.inner.live.load(Ordering::SeqCst) / 2
    }

    /// The peers this transport cannot reach now: its last connect to each failed and no connection
    /// with it has been made since. Changes as connects fail and connections are made.
    pub fn unreachable(&self) -> watch::Receiver<BTreeSet<ServerId>> {
        self.inner.unreachable.subscribe()
    }

    /// Records whether `sid` can be reached, notifying watchers only on a change.
    fn set_reachable(&self, sid: ServerId, reachable: bool) {
        self.inner.unreachable.send_if_modified(|set| {
            if reachable {
                set.remove(&sid)
            } else {
                set.insert(sid)
            }
        });
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// This server's myid.
    pub fn my_id(&self) -> ServerId {
        self.inner.cfg.my_id
    }

    /// Stops the listener, every connection and the pump (`halt`); the receiver then ends. The
    /// listening socket closes as soon as its task sees the signal, shortly after this returns.
    pub fn shutdown(&self) {
        let mut st = self.lock();
        st.shut = true;
        for peer in st.peers.values_mut() {
            if let Some(conn) = peer.conn.take() {
                let _ = conn.stop.send(true);
            }
        }
        drop(st);
        let _ = self.inner.stop.send(true);
    }

    // ----- internals -----

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // more than losing the transport, so a poisoned lock is used as is.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is_shut(&self) -> bool {
        *self.inner.stop.borrow()
    }

    /// `addToRecvQueue`: full queue drops its oldest message.
    fn push_received(&self, from: ServerId, payload: Vec<u8>) {
        let mut q = self
            .inner
            .recv
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if q.len() >= RECV_CAPACITY {
            q.pop_front();
        }
        q.push_back((from, payload));
        drop(q);
        self.inner.recv_ready.notify_one();
    }

    async fn pump(self, tx: mpsc::Sender<(ServerId, Vec<u8>)>) {
        let mut stop = self.inner.stop.subscribe();
        loop {
            let next = self
                .inner
                .recv
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop_front();
            match next {
                Some(msg) => {
                    tokio::select! {
                        sent = tx.send(msg) => if sent.is_err() { return },
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
                None => {
                    tokio::select! {
                        _ = self.inner.recv_ready.notified() => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
    }

    async fn accept_loop(self, listener: TcpListener) {
        let mut stop = self.inner.stop.subscribe();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.wait_for(|s| *s) => return,
            };
            match accepted {
                Ok((sock, remote)) => {
                    let net = self.clone();
                    tokio::spawn(async move {
                        if let Err(err) = net.receive_connection(sock).await {
                            tracing::info!(%remote, "election connection dropped: {err}");
                        }
                    });
                }
                // Accept errors (out of descriptors, aborted handshakes) are transient; Java logs
                // and rebinds, which here would only lose the port.
                Err(err) => {
                    tracing::warn!("election listener accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// `receiveConnection` / `handleConnection`: reads the header, then applies the tie-break.
    async fn receive_connection(&self, sock: TcpStream) -> Result<(), ElectionNetError> {
        sock.set_nodelay(true)?;
        super::set_tcp_keepalive(&sock, self.inner.cfg.tcp_keep_alive)?;
        let (mut rd, wr) = sock.into_split();
        let mut buf = Vec::with_capacity(64);
        let read_header = async {
            loop {
                match ElectionHandshake::decode(&buf) {
                    Ok((h, used)) => {
                        buf.drain(..used);
                        return Ok(h);
                    }
                    Err(DecodeError::Incomplete { .. }) if buf.len() < MAX_HEADER => {}
                    Err(err) => return Err(ElectionNetError::Handshake(err)),
                }
                let mut chunk = [0u8; 512];
                let want = (MAX_HEADER - buf.len()).min(chunk.len());
                let n = rd.read(&mut chunk[..want]).await?;
                if n == 0 {
                    return Err(ElectionNetError::Closed);
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        };
        let header = within(self.inner.cfg.handshake_timeout_ms, read_header)
            .await
            .ok_or(ElectionNetError::HandshakeTimeout)??;
        if header.protocol != ElectionProtocol::Legacy {
            for addr in header.address_list() {
                parse_host_port(addr).ok_or_else(|| ElectionNetError::Address(addr.to_string()))?;
            }
        }
        if header.sid == LEGACY_OBSERVER_ID {
            return Err(ElectionNetError::LegacyObserver);
        }
        // decode() refuses negative sids other than the protocol versions.
        let sid = ServerId(header.sid as u64);
        let my_id = self.inner.cfg.my_id;
        if sid < my_id {
            // The smaller sid must not keep this connection: close it and connect back, after
            // finishing any connection this server still believes in.
            drop((rd, wr));
            self.finish_peer_conn(sid);
            let back = header
                .address_list()
                .first()
                .and_then(|a| a.parse::<SocketAddr>().ok())
                .filter(|a| !a.ip().is_unspecified());
            self.connect_one(sid, back);
        } else if sid == my_id {
            tracing::warn!(
                "election connection from a server with this server's own id {sid}: \
                 a configuration error or a bug (ZOOKEEPER-2164)"
            );
        } else {
            self.start_workers(sid, rd, wr, buf);
        }
        Ok(())
    }

    /// Uses `addr` as `sid`'s election address from now on (a reconfiguration added the server or moved
    /// it; `QuorumCnxManager` reads addresses from the current view the same way).
    pub fn set_peer_addr(&self, sid: ServerId, addr: SocketAddr) {
        self.lock().addrs.insert(sid, addr);
    }

    /// `connectOne`: opens a connection to `sid` unless one exists or is being opened. `addr`
    /// overrides the configured address (the acceptor connects back to the header's address).
    fn connect_one(&self, sid: ServerId, addr: Option<SocketAddr>) {
        let addr = {
            let mut st = self.lock();
            if st.shut {
                return;
            }
            let known = st
                .addrs
                .get(&sid)
                .or_else(|| self.inner.cfg.peers.get(&sid));
            let Some(addr) = addr.or(known.copied()) else {
                if st.peers.get(&sid).is_none_or(|p| p.conn.is_none()) {
                    tracing::warn!("invalid server id {sid}: no election address known");
                }
                return;
            };
            let peer = st.peers.entry(sid).or_default();
            if peer.conn.is_some() || peer.connecting {
                return;
            }
            peer.connecting = true;
            addr
        };
        let net = self.clone();
        tokio::spawn(async move {
            let mut stop = net.inner.stop.subscribe();
            tokio::select! {
                r = net.initiate_connection(sid, addr) => {
                    if let Err(err) = r {
                        tracing::debug!("cannot open election channel to {sid} at {addr}: {err}");
                        net.set_reachable(sid, false);
                    }
                }
                _ = stop.wait_for(|s| *s) => {}
            }
            if let Some(p) = net.lock().peers.get_mut(&sid) {
                p.connecting = false;
            }
        });
    }

    /// Asks again, twice and shortly, whether `sid` can be reached after its connection broke, until
    /// it has connected back or a refused connect marked it unreachable. To a peer with a larger id a
    /// connect that succeeds proves only that its port accepted (the peer is expected to connect
    /// back), and a killed peer's port can still accept for a moment while the kernel tears the
    /// process down: seen in failover rounds (the retry right after the break "opened" a channel to the
    /// killed leader), where the leader was then not marked unreachable until the election's next
    /// notification round, 200 ms or more later, and early finalize waited for it.
    fn probe_after_break(&self, sid: ServerId) {
        let net = self.clone();
        tokio::spawn(async move {
            for delay_ms in [20u64, 80] {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                let settled = {
                    let st = net.lock();
                    st.shut || st.peers.get(&sid).is_some_and(|p| p.conn.is_some())
                } || net.inner.unreachable.borrow().contains(&sid);
                if settled {
                    return;
                }
                net.connect_one(sid, None);
            }
        });
    }

    /// `initiateConnection` + `startConnection`: connect within `cnxTimeout`, send the V1 header,
    /// and keep the connection only if the remote sid is smaller.
    async fn initiate_connection(
        &self,
        sid: ServerId,
        addr: SocketAddr,
    ) -> Result<(), ElectionNetError> {
        let mut sock = within(self.inner.cfg.cnx_timeout_ms, TcpStream::connect(addr))
            .await
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        sock.set_nodelay(true)?;
        super::set_tcp_keepalive(&sock, self.inner.cfg.tcp_keep_alive)?;
        let header =
            ElectionHandshake::v1(self.inner.cfg.my_id.0 as i64, &self.inner.cfg.advertised);
        sock.write_all(&header.to_bytes()).await?;
        if sid > self.inner.cfg.my_id {
            // Lost the challenge: the larger sid connects back.
            tracing::debug!("election channel to {sid} opened; it connects back (larger id)");
            return Ok(());
        }
        let (rd, wr) = sock.into_split();
        self.start_workers(sid, rd, wr, Vec::new());
        Ok(())
    }

    /// `SendWorker.finish` for the live connection to `sid`, if any.
    fn finish_peer_conn(&self, sid: ServerId) {
        if let Some(conn) = self.lock().peers.get_mut(&sid).and_then(|p| p.conn.take()) {
            let _ = conn.stop.send(true);
        }
    }

    /// Removes connection `id` of `sid` if it is still the live one (`senderWorkerMap.remove(sid,
    /// this)`) and stops its tasks.
    fn finish_conn(&self, sid: ServerId, id: u64) {
        let mut st = self.lock();
        if let Some(peer) = st.peers.get_mut(&sid) {
            if peer.conn.as_ref().is_some_and(|c| c.id == id) {
                if let Some(conn) = peer.conn.take() {
                    let _ = conn.stop.send(true);
                }
            }
        }
    }

    /// Starts the send and receive halves for `sid`, replacing any older connection to it.
    /// `leftover` holds bytes read past the handshake header.
    fn start_workers(
        &self,
        sid: ServerId,
        rd: OwnedReadHalf,
        wr: OwnedWriteHalf,
        leftover: Vec<u8>,
    ) {
        let (id, wake, stop_rx) = {
            let mut st = self.lock();
            if st.shut {
                return;
            }
            st.next_conn += 1;
            let id = st.next_conn;
            let wake = Arc::new(Notify::new());
            let (stop, stop_rx) = watch::channel(false);
            let peer = st.peers.entry(sid).or_default();
            if let Some(old) = peer.conn.replace(Conn {
                id,
                wake: wake.clone(),
                stop,
            }) {
                let _ = old.stop.send(true);
            }
            (id, wake, stop_rx)
        };
        tracing::debug!("election connection {id} with server {sid} established");
        self.set_reachable(sid, true);
        self.inner.live.fetch_add(2, Ordering::SeqCst);
        let net = self.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let r = tokio::select! {
                r = net.send_worker(sid, wr, &wake) => r,
                _ = stop.wait_for(|s| *s) => Ok(()),
            };
            if let Err(err) = r {
                tracing::info!("election connection to {sid} broken while sending: {err}");
            }
            net.finish_conn(sid, id);
            net.inner.live.fetch_sub(1, Ordering::SeqCst);
        });
        let net = self.clone();
        let mut stop = stop_rx;
        tokio::spawn(async move {
            let r = tokio::select! {
                r = net.recv_worker(sid, rd, leftover) => r,
                _ = stop.wait_for(|s| *s) => Ok(()),
            };
            let broken = r.is_err();
            if let Err(err) = r {
                tracing::info!("election connection to {sid} broken: {err}");
            }
            net.finish_conn(sid, id);
            net.inner.live.fetch_sub(1, Ordering::SeqCst);
            let retry = broken && {
                let mut st = net.lock();
                let peer = st.peers.entry(sid).or_default();
                let now = std::time::Instant::now();
                let due = peer
                    .retried_at
                    .is_none_or(|t| now.duration_since(t) >= RETRY_SPACING);
                if due {
                    peer.retried_at = Some(now);
                }
                due
            };
            if retry {
                // Try the peer again at once. A notification queued on this connection just before it
                // broke was lost with it, and nothing else would connect until the election sends
                // again; a killed peer refuses the connect, which marks it unreachable for early
                // finalize (otherwise the new leader waits out `finalizeWait`). A peer that is up is
                // simply connected again. Connections replaced or stopped on purpose end without an
                // error and are not retried here; `connect_one` does nothing while a connection exists.
                net.connect_one(sid, None);
                net.probe_after_break(sid);
            }
        });
    }

    /// `SendWorker.run`: first the last message again if nothing newer is queued, then every queued
    /// message, each remembered as the last one before it is written.
    async fn send_worker(
        &self,
        sid: ServerId,
        mut wr: OwnedWriteHalf,
        wake: &Notify,
    ) -> Result<(), ElectionNetError> {
        let resend = {
            let st = self.lock();
            st.peers
                .get(&sid)
                .filter(|p| p.queued.is_none())
                .and_then(|p| p.last_sent.clone())
        };
        if let Some(payload) = resend {
            wr.write_all(&encode_frame(&payload)).await?;
        }
        loop {
            let next = {
                let mut st = self.lock();
                let peer = st.peers.entry(sid).or_default();
                let next = peer.queued.take();
                if let Some(p) = &next {
                    peer.last_sent = Some(p.clone());
                }
                next
            };
            match next {
                Some(payload) => wr.write_all(&encode_frame(&payload)).await?,
                None => wake.notified().await,
            }
        }
    }

    /// `RecvWorker.run`: length-prefixed messages of `1..=524288` bytes into the receive queue.
    async fn recv_worker(
        &self,
        sid: ServerId,
        mut rd: OwnedReadHalf,
        mut buf: Vec<u8>,
    ) -> Result<(), ElectionNetError> {
        let mut chunk = vec![0u8; 8192];
        loop {
            loop {
                match decode_frame(&buf, ELECTION_MAX_MESSAGE) {
                    FrameResult::Complete { payload, consumed } => {
                        if payload.is_empty() {
                            return Err(ElectionNetError::FrameLength(0));
                        }
                        let msg = buf[payload].to_vec();
                        buf.drain(..consumed);
                        self.push_received(sid, msg);
                    }
                    FrameResult::Incomplete { .. } => break,
                    FrameResult::TooLarge { len, .. } => {
                        return Err(ElectionNetError::FrameLength(len as i64))
                    }
                    FrameResult::Malformed { len } => {
                        return Err(ElectionNetError::FrameLength(len.into()))
                    }
                }
            }
            let n = rd.read(&mut chunk).await?;
            if n == 0 {
                return Err(ElectionNetError::Closed);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
}

impl std::fmt::Debug for ElectionNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElectionNet")
            .field("my_id", &self.inner.cfg.my_id)
            .field("local_addr", &self.inner.local_addr)
            .field("shut", &self.is_shut())
            .finish()
    }
}

/// Runs `fut` for at most `ms` milliseconds; 0 means no limit, as a Java socket timeout of 0 does.
/// `None` when the time ran out.
async fn within<T>(ms: u64, fut: impl std::future::Future<Output = T>) -> Option<T> {
    if ms == 0 {
        Some(fut.await)
    } else {
        tokio::time::timeout(Duration::from_millis(ms), fut)
            .await
            .ok()
    }
}

/// `ListenerHandler.acceptConnections`' bind loop: SO_REUSEADDR, up to `retries` attempts (0 =
/// unlimited) one second apart.
async fn bind_with_retry(addr: SocketAddr, retries: u32) -> std::io::Result<TcpListener> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match bind_once(addr) {
            Ok(listener) => return Ok(listener),
            Err(err) if retries == 0 || attempt < retries => {
                tracing::warn!("cannot bind election address {addr} (attempt {attempt}): {err}");
                tokio::time::sleep(BIND_RETRY_PAUSE).await;
            }
            Err(err) => return Err(err),
        }
    }
}

fn bind_once(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(128)
}

/// `ConfigUtils.getHostAndPort` as `InitialMessage.parse` uses it: `host:port` or `[v6]:port`
/// with a numeric port.
fn parse_host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = text.split_once(':')?;
        if port.contains(':') {
            return None;
        }
        (host, port)
    };
    Some((host, port.parse().ok()?))
}

/// Carries out an engine outbox over the transport: `Send` and `Broadcast` become [`ElectionNet::send`]
/// of the encoded notification; returns the verdict if the outbox holds one. `NewerConfig` is logged
/// (reconfiguration is not implemented); `PeerLooking` matters only to a leader's epoch wait.
pub fn perform(net: &ElectionNet, outbox: Outbox) -> Option<Elected> {
    let mut elected = None;
    for action in outbox.actions {
        match action {
            Action::Send { to, notification } => net.send(to, notification.to_bytes()),
            Action::Broadcast { to, notification } => {
                let bytes = notification.to_bytes();
                for peer in to {
                    net.send(peer, bytes.clone());
                }
            }
            Action::Elected(e) => elected = Some(e),
            Action::NewerConfig { from, version, .. } => tracing::info!(
                "server {from} has a newer configuration (version {version:#x}); \
                 reconfiguration is not supported, ignoring it"
            ),
            Action::PeerLooking { from } => tracing::debug!("server {from} is looking"),
        }
    }
    elected
}

/// Runs one election over the transport (`FastLeaderElection.lookForLeader` on `QuorumCnxManager`):
/// starts it, performs every outbox, feeds received payloads to the engine, ticks it at its
/// deadlines and, when the notification timeout fires, also reconnects (`connectAll`) as Java's loop
/// does. `clock` returns milliseconds from any fixed origin and must not go backwards. Returns the
/// verdict, or `None` if the transport was shut down first.
pub async fn run_election(
    net: &ElectionNet,
    rx: &mut mpsc::Receiver<(ServerId, Vec<u8>)>,
    election: &mut Election,
    local: LocalState,
    clock: impl Fn() -> u64,
) -> Option<Elected> {
    if let Some(e) = perform(net, election.start(clock(), local)) {
        return Some(e);
    }
    loop {
        let wait = match election.next_deadline() {
            Some(deadline) => Duration::from_millis(deadline.saturating_sub(clock())),
            // Not looking any more without a verdict cannot happen; wait for messages.
            None => Duration::from_secs(3600),
        };
        let outbox = tokio::select! {
            msg = rx.recv() => match msg {
                Some((from, payload)) => election.receive_bytes(from, &payload, clock()),
                None => return None,
            },
            _ = tokio::time::sleep(wait) => {
                let timeouts = election.stats().timeouts;
                let outbox = election.tick(clock());
                if election.stats().timeouts > timeouts {
                    net.connect_all();
                }
                outbox
            }
        };
        if let Some(e) = perform(net, outbox) {
            return Some(e);
        }
    }
}
