//! The connection task: owns the socket, the session and the client-side watch registry.
//!
//! One task per client. It writes request frames in the order callers submitted them (many may be
//! outstanding: pipelining), and a reader task per socket forwards reply frames back to it. ZooKeeper answers
//! ordinary requests in xid order, so each reply must match the head of the pending queue; a mismatch is a
//! protocol violation and drops the connection. Pings (xid -2), auth (-4), set-watches (-8) and
//! notifications (-1) are handled outside that queue.
//!
//! When the connection breaks, every outstanding request fails with [`ClientError::ConnectionLoss`], and
//! the task reconnects to the next host of the list with the same session id and password, then re-sends
//! the auth credentials and a `setWatches2` with every watch it still holds.

use super::types::{ClientError, EventType, KeeperState, State, WatchedEvent, WatcherType};
use crate::jute::{JuteReader, JuteWriter, Record};
use crate::proto::client::{AuthPacket, SetWatches2};
use crate::proto::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, WatcherEvent};
use crate::proto::{ErrorCode, OpCode};
use bytes::{Buf, BytesMut};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, timeout, Instant};

/// The largest reply frame accepted by default: generous, since a getChildren of a big node can exceed
/// the server's 1 MiB `jute.maxbuffer`.
pub const DEFAULT_MAX_FRAME: usize = 64 << 20;

/// Split set-watches batches at about this many bytes (Java's `SET_WATCHES_MAX_LENGTH`).
const SET_WATCHES_MAX_LEN: usize = 128 * 1024;

/// A raw reply: the header's zxid and error, and the undecoded body.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// `ReplyHeader.zxid`.
    pub zxid: i64,
    /// `ReplyHeader.err`.
    pub err: ErrorCode,
    /// The bytes after the header (empty when `err` is not `Ok`).
    pub body: Vec<u8>,
}

/// What a successful request does to the client-side watch registry.
#[derive(Debug, Clone)]
pub enum WatchReg {
    /// Nothing.
    None,
    /// getData with watch: a data watch.
    Data(String),
    /// exists with watch: a data watch if the node exists, an exist watch if not.
    Exists(String),
    /// getChildren with watch.
    Child(String),
    /// addWatch PERSISTENT.
    Persistent(String),
    /// addWatch PERSISTENT_RECURSIVE.
    Recursive(String),
    /// removeWatches: drop these.
    Remove(String, WatcherType),
}

/// A command from a `Client` handle to the connection task.
pub enum Cmd {
    /// An ordinary request (positive xid assigned by the task).
    Request {
        /// The opcode.
        op: OpCode,
        /// The encoded request record (after the header).
        body: Vec<u8>,
        /// Watch bookkeeping on success.
        watch: WatchReg,
        /// Where the reply goes.
        reply: oneshot::Sender<Result<RawReply, ClientError>>,
    },
    /// An auth packet (xid -4); remembered and re-sent on reconnect when it succeeds.
    Auth {
        /// Scheme, e.g. `digest`.
        scheme: String,
        /// Scheme data, e.g. `user:password`.
        auth: Vec<u8>,
        /// Where the result goes.
        reply: oneshot::Sender<Result<ErrorCode, ClientError>>,
    },
    /// closeSession, then stop.
    Close {
        /// Done.
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
}

/// Session facts shared with the handles.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Connection state.
    pub state: State,
    /// Session id (0 before the first handshake).
    pub session_id: i64,
    /// Session password.
    pub password: Vec<u8>,
    /// Negotiated timeout.
    pub timeout_ms: u32,
    /// The server currently connected to.
    pub host: String,
    /// Highest zxid seen.
    pub last_zxid: i64,
}

/// Settings the task needs.
#[derive(Debug, Clone)]
pub struct ConnConfig {
    /// `host:port` list.
    pub hosts: Vec<String>,
    /// Requested session timeout.
    pub session_timeout_ms: u32,
    /// Largest reply frame.
    pub max_frame: usize,
}

#[derive(Default)]
struct Watches {
    data: HashSet<String>,
    exist: HashSet<String>,
    child: HashSet<String>,
    persistent: HashSet<String>,
    recursive: HashSet<String>,
}

impl Watches {
    fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }
}

/// Auth packets awaiting their reply: `None` for credentials replayed on reconnect.
type AuthQueue = VecDeque<
    Option<(
        String,
        Vec<u8>,
        oneshot::Sender<Result<ErrorCode, ClientError>>,
    )>,
>;

enum Pending {
    User {
        xid: i32,
        watch: WatchReg,
        reply: oneshot::Sender<Result<RawReply, ClientError>>,
    },
    Close {
        xid: i32,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
}

impl Pending {
    fn xid(&self) -> i32 {
        match self {
            Pending::User { xid, .. } | Pending::Close { xid, .. } => *xid,
        }
    }
}

/// How one connection ended.
enum Ended {
    /// Socket broke; reconnect.
    Lost(String),
    /// Session over (closed by us, expired, auth failed, or every handle dropped).
    Finished(ClientError),
}

/// The task's state across connections.
pub struct ConnTask {
    cfg: ConnConfig,
    shared: Arc<Mutex<SessionInfo>>,
    cmds: mpsc::Receiver<Cmd>,
    events: mpsc::UnboundedSender<WatchedEvent>,
    watches: Watches,
    auths: Vec<(String, Vec<u8>)>,
    next_host: usize,
    next_xid: i32,
}

/// A live socket after the handshake. Replies are read by the session task itself into `rbuf`, as many
/// as one read returns, rather than by a reader task handing each frame over a channel: that saved a
/// task wake-up and a syscall per reply, which is most of a pipelining client's cost.
pub struct Connected {
    write: BufWriter<OwnedWriteHalf>,
    read: OwnedReadHalf,
    rbuf: BytesMut,
    /// Largest reply frame accepted (`jute.maxbuffer`).
    max: usize,
}

/// Capacity the read buffer is topped up to before each read.
const READ_CHUNK: usize = 64 * 1024;

/// At most this many queued requests go into one write, so a flood of callers cannot hold off replies.
const MAX_WRITE_BATCH: usize = 256;

/// The next whole frame in `buf` (its body, length prefix removed), `Ok(None)` if more bytes are needed.
fn next_frame(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, String> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if len < 0 || len as usize > max {
        return Err(format!("reply frame length {len} out of range"));
    }
    let len = len as usize;
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len)))
}

fn frame(xid: i32, op: OpCode, body: &[u8]) -> Vec<u8> {
    let mut w = JuteWriter::new();
    RequestHeader { xid, ty: op.code() }.write(&mut w);
    w.write_raw(body);
    crate::proto::encode_frame(w.as_slice())
}

async fn read_frame(read: &mut OwnedReadHalf, max: usize) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    read.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let len = i32::from_be_bytes(len);
    if len < 0 || len as usize > max {
        return Err(format!("reply frame length {len} out of range"));
    }
    let mut buf = vec![0u8; len as usize];
    read.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(buf)
}

impl ConnTask {
    /// A task for `cfg` that will report to `shared` and `events`.
    pub fn new(
        cfg: ConnConfig,
        shared: Arc<Mutex<SessionInfo>>,
        cmds: mpsc::Receiver<Cmd>,
        events: mpsc::UnboundedSender<WatchedEvent>,
    ) -> ConnTask {
        ConnTask {
            cfg,
            shared,
            cmds,
            events,
            watches: Watches::default(),
            auths: Vec::new(),
            next_host: 0,
            next_xid: 1,
        }
    }

    fn info(&self) -> SessionInfo {
        self.shared
            .lock()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn update(&self, f: impl FnOnce(&mut SessionInfo)) {
        match self.shared.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    fn emit_state(&self, state: KeeperState) {
        let _ = self.events.send(WatchedEvent {
            event_type: EventType::None,
            state,
            path: None,
        });
    }

    fn xid(&mut self) -> i32 {
        let x = self.next_xid;
        self.next_xid = if self.next_xid >= i32::MAX - 1 {
            1
        } else {
            self.next_xid + 1
        };
        x
    }

    /// Tries each host once, in list order from where the last attempt stopped, until one accepts the
    /// session or `deadline` passes.
    pub async fn connect(&mut self, deadline: Instant) -> Result<Connected, ClientError> {
        let mut last_err = String::from("no attempt made");
        let n = self.cfg.hosts.len().max(1);
        let mut round = 0u32;
        loop {
            for _ in 0..n {
                if Instant::now() >= deadline {
                    return Err(ClientError::ConnectFailed {
                        hosts: self.cfg.hosts.join(","),
                        reason: last_err,
                    });
                }
                let host = self.cfg.hosts[self.next_host % n].clone();
                self.next_host = (self.next_host + 1) % n;
                let per_try = (deadline - Instant::now()).min(Duration::from_millis(
                    u64::from(self.cfg.session_timeout_ms) / n as u64 + 1,
                ));
                match timeout(per_try, self.handshake(&host)).await {
                    Ok(Ok(c)) => return Ok(c),
                    Ok(Err(ClientError::SessionExpired)) => {
                        return Err(ClientError::SessionExpired)
                    }
                    Ok(Err(e)) => last_err = format!("{host}: {e}"),
                    Err(_) => last_err = format!("{host}: handshake timed out"),
                }
            }
            round += 1;
            // Back off between rounds, a little longer each time.
            let pause = Duration::from_millis(u64::from(100 * round.min(10)));
            let wake = (Instant::now() + pause).min(deadline);
            sleep_until(wake).await;
        }
    }

    async fn handshake(&mut self, host: &str) -> Result<Connected, ClientError> {
        let stream = TcpStream::connect(host).await?;
        stream.set_nodelay(true)?;
        let (mut read, write) = stream.into_split();
        let mut write = BufWriter::with_capacity(64 * 1024, write);
        let info = self.info();
        let mut passwd = info.password.clone();
        passwd.resize(16, 0);
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: info.last_zxid,
            timeout: self.cfg.session_timeout_ms as i32,
            session_id: info.session_id,
            passwd,
            // We want a read-write server.
            read_only: Some(false),
        };
        write
            .write_all(&crate::proto::encode_frame(&request.to_bytes()))
            .await?;
        write.flush().await?;
        let reply = read_frame(&mut read, 4096).await.map_err(|e| {
            ClientError::Protocol(format!("no connect reply (server closed or refused): {e}"))
        })?;
        let response = ConnectResponse::from_bytes(&reply)?;
        let negotiated = response.timeout;
        let session_id = response.session_id;
        let password = response.passwd;
        let read_only = response.read_only.unwrap_or(false);
        if negotiated <= 0 {
            return Err(ClientError::SessionExpired);
        }
        let state = if read_only {
            State::ConnectedReadOnly
        } else {
            State::Connected
        };
        self.update(|s| {
            s.state = state;
            s.session_id = session_id;
            s.password = password;
            s.timeout_ms = negotiated as u32;
            s.host = host.to_string();
        });
        let mut conn = Connected {
            write,
            read,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            max: self.cfg.max_frame,
        };
        self.prime(&mut conn).await?;
        Ok(conn)
    }

    /// Re-sends stored credentials and watches on a fresh connection (Java's `primeConnection` order).
    async fn prime(&mut self, conn: &mut Connected) -> Result<(), ClientError> {
        for (scheme, auth) in &self.auths {
            conn.write
                .write_all(&frame(-4, OpCode::Auth, &auth_body(scheme, auth)))
                .await?;
        }
        if !self.watches.is_empty() {
            let last_zxid = self.info().last_zxid;
            for body in set_watches_bodies(last_zxid, &self.watches) {
                conn.write
                    .write_all(&frame(-8, OpCode::SetWatches2, &body))
                    .await?;
            }
        }
        conn.write.flush().await?;
        Ok(())
    }

    /// Runs until the session ends: connection, reconnections, close.
    pub async fn run(mut self, first: Connected) {
        let mut conn = first;
        self.emit_state(KeeperState::SyncConnected);
        loop {
            let ended = self.serve(&mut conn).await;
            match ended {
                Ended::Finished(e) => {
                    self.finish(e);
                    return;
                }
                Ended::Lost(why) => {
                    tracing::debug!("connection lost: {why}");
                    self.update(|s| s.state = State::Connecting);
                    self.emit_state(KeeperState::Disconnected);
                    let timeout_ms = u64::from(self.info().timeout_ms.max(1000));
                    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
                    match self.connect(deadline).await {
                        Ok(c) => {
                            conn = c;
                            self.emit_state(KeeperState::SyncConnected);
                        }
                        Err(ClientError::SessionExpired) => {
                            self.emit_state(KeeperState::Expired);
                            self.finish(ClientError::SessionExpired);
                            return;
                        }
                        Err(e) => {
                            tracing::debug!("giving up reconnecting: {e}");
                            self.finish(ClientError::Closed);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn finish(&mut self, why: ClientError) {
        self.update(|s| s.state = State::Closed);
        self.cmds.close();
        while let Ok(cmd) = self.cmds.try_recv() {
            fail_cmd(cmd, &why);
        }
        if matches!(why, ClientError::Closed) {
            self.emit_state(KeeperState::Closed);
        }
    }

    async fn serve(&mut self, conn: &mut Connected) -> Ended {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        let mut auth_pending: AuthQueue = (0..self.auths.len()).map(|_| None).collect();
        let timeout_ms = u64::from(self.info().timeout_ms.max(300));
        let ping_every = Duration::from_millis(timeout_ms / 3);
        let read_timeout = Duration::from_millis(timeout_ms * 2 / 3);
        let mut last_send = Instant::now();
        let mut last_recv = Instant::now();
        let mut closing = false;
        let ended = loop {
            let next_ping = last_send + ping_every;
            let dead_at = last_recv + read_timeout;
            tokio::select! {
                biased;
                // `read_buf` is cancel safe: when another branch wins, no bytes were taken.
                n = conn.read.read_buf(&mut conn.rbuf) => {
                    match n {
                        Ok(0) => break Ended::Lost("the server closed the connection".into()),
                        Ok(_) => {}
                        Err(e) => break Ended::Lost(e.to_string()),
                    }
                    last_recv = Instant::now();
                    let mut done = None;
                    loop {
                        match next_frame(&mut conn.rbuf, conn.max) {
                            Ok(Some(f)) => match self.on_frame(&f, &mut pending, &mut auth_pending) {
                                Ok(Some(d)) => {
                                    done = Some(d);
                                    break;
                                }
                                Ok(None) => {}
                                Err(e) => {
                                    done = Some(Ended::Lost(e.to_string()));
                                    break;
                                }
                            },
                            Ok(None) => break,
                            Err(e) => {
                                done = Some(Ended::Lost(e));
                                break;
                            }
                        }
                    }
                    if let Some(done) = done {
                        break done;
                    }
                    if conn.rbuf.capacity() - conn.rbuf.len() < READ_CHUNK / 4 {
                        conn.rbuf.reserve(READ_CHUNK);
                    }
                }
                cmd = self.cmds.recv(), if !closing => {
                    let Some(cmd) = cmd else {
                        // Every handle is gone: close the session politely.
                        let xid = self.xid();
                        let (tx, _rx) = oneshot::channel();
                        pending.push_back(Pending::Close { xid, reply: tx });
                        if let Err(e) = conn.write.write_all(&frame(xid, OpCode::CloseSession, &[])).await {
                            break Ended::Lost(e.to_string());
                        }
                        let _ = conn.write.flush().await;
                        closing = true;
                        continue;
                    };
                    let mut batch = 0;
                    let mut next = Some(cmd);
                    let mut write_err = None;
                    let mut yielded = false;
                    loop {
                        while let Some(cmd) = next.take() {
                            if let Err(e) = self.send(conn, cmd, &mut pending, &mut auth_pending, &mut closing).await {
                                write_err = Some(e);
                                break;
                            }
                            batch += 1;
                            if batch < MAX_WRITE_BATCH && !closing {
                                next = self.cmds.try_recv().ok();
                            }
                        }
                        if yielded || write_err.is_some() || closing || batch >= MAX_WRITE_BATCH {
                            break;
                        }
                        // The first caller to queue a request wakes this task at once (tokio runs a
                        // task just woken next), while the other callers woken by the same batch of
                        // replies have yet to run. One turn of the scheduler lets them queue theirs,
                        // so a pipelining client sends them in one write instead of one each.
                        yielded = true;
                        tokio::task::yield_now().await;
                        next = self.cmds.try_recv().ok();
                        if next.is_none() {
                            break;
                        }
                    }
                    if write_err.is_none() {
                        if let Err(e) = conn.write.flush().await {
                            write_err = Some(e);
                        }
                    }
                    if let Some(e) = write_err {
                        break Ended::Lost(e.to_string());
                    }
                    last_send = Instant::now();
                }
                _ = sleep_until(next_ping) => {
                    let ping = frame(-2, OpCode::Ping, &[]);
                    if conn.write.write_all(&ping).await.is_err() || conn.write.flush().await.is_err() {
                        break Ended::Lost("ping write failed".into());
                    }
                    last_send = Instant::now();
                }
                _ = sleep_until(dead_at) => {
                    break Ended::Lost(format!("no reply from the server for {} ms", read_timeout.as_millis()));
                }
            }
        };
        // Whatever is still outstanding gets CONNECTIONLOSS (or the final error).
        let err_of = |e: &Ended| match e {
            Ended::Lost(_) => ClientError::ConnectionLoss,
            Ended::Finished(ClientError::SessionExpired) => ClientError::SessionExpired,
            Ended::Finished(ClientError::AuthFailed) => ClientError::AuthFailed,
            Ended::Finished(_) => ClientError::Closed,
        };
        for p in pending.drain(..) {
            match p {
                Pending::User { reply, .. } => {
                    let _ = reply.send(Err(err_of(&ended)));
                }
                Pending::Close { reply, .. } => {
                    // A close whose connection died: the session will expire on its own.
                    let _ = reply.send(Ok(()));
                }
            }
        }
        for (_, _, reply) in auth_pending.drain(..).flatten() {
            let _ = reply.send(Err(err_of(&ended)));
        }
        if closing && matches!(ended, Ended::Lost(_)) {
            return Ended::Finished(ClientError::Closed);
        }
        ended
    }

    async fn send(
        &mut self,
        conn: &mut Connected,
        cmd: Cmd,
        pending: &mut VecDeque<Pending>,
        auth_pending: &mut AuthQueue,
        closing: &mut bool,
    ) -> std::io::Result<()> {
        match cmd {
            Cmd::Request {
                op,
                body,
                watch,
                reply,
            } => {
                let xid = self.xid();
                conn.write.write_all(&frame(xid, op, &body)).await?;
                pending.push_back(Pending::User { xid, watch, reply });
            }
            Cmd::Auth {
                scheme,
                auth,
                reply,
            } => {
                conn.write
                    .write_all(&frame(-4, OpCode::Auth, &auth_body(&scheme, &auth)))
                    .await?;
                auth_pending.push_back(Some((scheme, auth, reply)));
            }
            Cmd::Close { reply } => {
                let xid = self.xid();
                conn.write
                    .write_all(&frame(xid, OpCode::CloseSession, &[]))
                    .await?;
                pending.push_back(Pending::Close { xid, reply });
                *closing = true;
            }
        }
        Ok(())
    }

    fn on_frame(
        &mut self,
        bytes: &[u8],
        pending: &mut VecDeque<Pending>,
        auth_pending: &mut AuthQueue,
    ) -> Result<Option<Ended>, ClientError> {
        let mut r = JuteReader::new(bytes);
        let header = ReplyHeader::read(&mut r)?;
        let (xid, zxid) = (header.xid, header.zxid);
        let err = ErrorCode::from_code(header.err);
        let body = r.rest();
        if zxid > 0 {
            self.update(|s| {
                if zxid > s.last_zxid {
                    s.last_zxid = zxid;
                }
            });
        }
        match xid {
            -1 => {
                let event = WatcherEvent::from_bytes(body)?;
                let etype = EventType::from_code(event.ty);
                let state = KeeperState::from_code(event.state);
                let path = event.path;
                self.on_event(etype, &path);
                let _ = self.events.send(WatchedEvent {
                    event_type: etype,
                    state,
                    path: Some(path),
                });
                Ok(None)
            }
            -2 => Ok(None),
            -8 => {
                if !err.is_ok() {
                    tracing::warn!("setWatches failed: {err}");
                }
                Ok(None)
            }
            -4 => {
                let entry = auth_pending.pop_front().flatten();
                if err.is_ok() {
                    if let Some((scheme, auth, reply)) = entry {
                        self.auths.push((scheme, auth));
                        let _ = reply.send(Ok(ErrorCode::Ok));
                    }
                    Ok(None)
                } else {
                    if let Some((_, _, reply)) = entry {
                        let _ = reply.send(Ok(err));
                    }
                    self.update(|s| s.state = State::AuthFailed);
                    self.emit_state(KeeperState::AuthFailed);
                    Ok(Some(Ended::Finished(ClientError::AuthFailed)))
                }
            }
            _ => {
                let Some(head) = pending.pop_front() else {
                    return Err(ClientError::Protocol(format!(
                        "reply xid {xid} with nothing outstanding"
                    )));
                };
                if head.xid() != xid {
                    return Err(ClientError::Protocol(format!(
                        "xid out of order: got {xid}, expected {}",
                        head.xid()
                    )));
                }
                match head {
                    Pending::User { watch, reply, .. } => {
                        self.on_reply_watch(watch, err);
                        let _ = reply.send(Ok(RawReply {
                            zxid,
                            err,
                            body: body.to_vec(),
                        }));
                        Ok(None)
                    }
                    Pending::Close { reply, .. } => {
                        let _ = reply.send(Ok(()));
                        Ok(Some(Ended::Finished(ClientError::Closed)))
                    }
                }
            }
        }
    }

    fn on_reply_watch(&mut self, watch: WatchReg, err: ErrorCode) {
        let ok = err.is_ok();
        match watch {
            WatchReg::None => {}
            WatchReg::Data(p) if ok => {
                self.watches.data.insert(p);
            }
            WatchReg::Exists(p) => {
                if ok {
                    self.watches.data.insert(p);
                } else if err == ErrorCode::NoNode {
                    self.watches.exist.insert(p);
                }
            }
            WatchReg::Child(p) if ok => {
                self.watches.child.insert(p);
            }
            WatchReg::Persistent(p) if ok => {
                self.watches.persistent.insert(p);
            }
            WatchReg::Recursive(p) if ok => {
                self.watches.recursive.insert(p);
            }
            WatchReg::Remove(p, kind) if ok => {
                let w = &mut self.watches;
                let mut removed = Vec::new();
                if matches!(kind, WatcherType::Data | WatcherType::Any)
                    && (w.data.remove(&p) | w.exist.remove(&p))
                {
                    removed.push(EventType::DataWatchRemoved);
                }
                if matches!(kind, WatcherType::Children | WatcherType::Any) && w.child.remove(&p) {
                    removed.push(EventType::ChildWatchRemoved);
                }
                if matches!(kind, WatcherType::Any)
                    && (w.persistent.remove(&p) | w.recursive.remove(&p))
                {
                    removed.push(EventType::PersistentWatchRemoved);
                }
                for event_type in removed {
                    let _ = self.events.send(WatchedEvent {
                        event_type,
                        state: KeeperState::SyncConnected,
                        path: Some(p.clone()),
                    });
                }
            }
            _ => {}
        }
    }

    fn on_event(&mut self, etype: EventType, path: &str) {
        let w = &mut self.watches;
        match etype {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                w.data.remove(path);
                w.exist.remove(path);
            }
            EventType::NodeDeleted => {
                w.data.remove(path);
                w.exist.remove(path);
                w.child.remove(path);
            }
            EventType::NodeChildrenChanged => {
                w.child.remove(path);
            }
            _ => {}
        }
    }
}

fn fail_cmd(cmd: Cmd, why: &ClientError) {
    let err = || match why {
        ClientError::SessionExpired => ClientError::SessionExpired,
        ClientError::AuthFailed => ClientError::AuthFailed,
        _ => ClientError::Closed,
    };
    match cmd {
        Cmd::Request { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Cmd::Auth { reply, .. } => {
            let _ = reply.send(Err(err()));
        }
        Cmd::Close { reply } => {
            let _ = reply.send(Ok(()));
        }
    }
}

fn auth_body(scheme: &str, auth: &[u8]) -> Vec<u8> {
    AuthPacket {
        ty: 0,
        scheme: scheme.to_string(),
        auth: auth.to_vec(),
    }
    .to_bytes()
}

/// `SetWatches2` records re-registering `watches`, split so none exceeds about 128 KiB.
fn set_watches_bodies(last_zxid: i64, watches: &Watches) -> Vec<Vec<u8>> {
    let lists: [Vec<&String>; 5] = [
        watches.data.iter().collect(),
        watches.exist.iter().collect(),
        watches.child.iter().collect(),
        watches.persistent.iter().collect(),
        watches.recursive.iter().collect(),
    ];
    let mut out = Vec::new();
    let mut idx = [0usize; 5];
    loop {
        let mut batch: [Vec<&String>; 5] = Default::default();
        let mut size = 0;
        for (k, list) in lists.iter().enumerate() {
            while idx[k] < list.len() && size < SET_WATCHES_MAX_LEN {
                size += list[idx[k]].len() + 4;
                batch[k].push(list[idx[k]]);
                idx[k] += 1;
            }
        }
        let [data, exist, child, persistent, recursive] =
            batch.map(|b| b.into_iter().cloned().collect::<Vec<String>>());
        out.push(
            SetWatches2 {
                relative_zxid: last_zxid,
                data_watches: data,
                exist_watches: exist,
                child_watches: child,
                persistent_watches: persistent,
                persistent_recursive_watches: recursive,
            }
            .to_bytes(),
        );
        if idx.iter().zip(lists.iter()).all(|(i, l)| *i >= l.len()) {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Request frames are `len | xid | type | body` with the length not counting itself.
    #[test]
    fn request_frame_layout() {
        let f = frame(7, OpCode::GetData, &[1, 2]);
        assert_eq!(f, vec![0, 0, 0, 10, 0, 0, 0, 7, 0, 0, 0, 4, 1, 2]);
    }

    /// The read buffer yields whole frames only: several from one read, none from a partial one until
    /// the rest arrives, and an error for a negative or oversized length.
    #[test]
    fn frames_are_cut_from_the_read_buffer() {
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0, 0, 0, 2, 7, 8, 0, 0, 0, 0, 0, 0, 0, 3, 1]);
        assert_eq!(&next_frame(&mut buf, 100).unwrap().unwrap()[..], &[7, 8]);
        assert!(next_frame(&mut buf, 100).unwrap().unwrap().is_empty());
        assert!(next_frame(&mut buf, 100).unwrap().is_none(), "1 of 3 bytes");
        buf.extend_from_slice(&[2, 3]);
        assert_eq!(&next_frame(&mut buf, 100).unwrap().unwrap()[..], &[1, 2, 3]);
        assert!(buf.is_empty());
        assert!(next_frame(&mut buf, 100).unwrap().is_none());
        buf.extend_from_slice(&[0, 0]);
        assert!(
            next_frame(&mut buf, 100).unwrap().is_none(),
            "half a length"
        );
        buf.extend_from_slice(&[0, 101]);
        assert!(next_frame(&mut buf, 100).is_err(), "over the limit");
        let mut neg = BytesMut::from(&[0xff, 0xff, 0xff, 0xfe][..]);
        assert!(next_frame(&mut neg, 100).is_err(), "negative");
    }

    /// Many watches are split into several setWatches2 records, each below the size cap, none lost.
    #[test]
    fn set_watches_split() {
        let mut w = Watches::default();
        for i in 0..20_000 {
            w.data.insert(format!("/some/long/path/{i:08}"));
        }
        let bodies = set_watches_bodies(5, &w);
        assert!(bodies.len() > 1);
        let mut total = 0;
        for b in &bodies {
            assert!(b.len() < SET_WATCHES_MAX_LEN + 1024);
            let mut r = JuteReader::new(b);
            assert_eq!(r.read_i64().unwrap(), 5);
            total += r.read_string_vec().unwrap().len();
            for _ in 0..4 {
                r.read_string_vec().unwrap();
            }
            r.finish().unwrap();
        }
        assert_eq!(total, 20_000);
    }
}
