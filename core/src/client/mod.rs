//! An async ZooKeeper client over tokio, used by `outpost cli` and `outpost bench`.
//!
//! [`Client::connect`] performs the handshake against the first reachable server of a
//! `host:port,host:port` list and spawns a connection task (see `conn`). [`Client`] handles are cheap
//! clones; any number of requests may be outstanding at once (pipelining), and replies are matched to
//! requests in xid order. Watch notifications and connection state changes arrive on the
//! [`EventReceiver`] returned by `connect`.
//!
//! Every operation returns [`ZkResult`]: `Err(ClientError)` for transport failures (connection loss,
//! expiry, closed client, undecodable bytes), and `Ok(Err(ErrorCode))` for ZooKeeper's own result codes
//! (`NoNode`, `NodeExists`, ...), which are values, not errors.

mod conn;
mod types;

pub use conn::RawReply;
pub use types::{
    parse_hosts, AddWatchMode, ClientError, CreateMode, EventType, KeeperState, State,
    WatchedEvent, WatcherType, ZkResult,
};

use crate::jute::{JuteReader, JuteWriter, Record};
use crate::proto::{Acl, ErrorCode, OpCode, Stat};
use conn::{Cmd, ConnConfig, ConnTask, SessionInfo, WatchReg};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Watch notifications and state changes, in the order the connection saw them.
pub type EventReceiver = mpsc::UnboundedReceiver<WatchedEvent>;

/// Connection settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port[,host:port...]`.
    pub connect_string: String,
    /// Requested session timeout; the server clamps it (see [`Client::negotiated_timeout`]).
    pub session_timeout: Duration,
    /// How long the first connect may take across all hosts.
    pub connect_timeout: Duration,
    /// Largest reply frame accepted.
    pub max_frame: usize,
    /// Requests that may wait to be written before callers block.
    pub queue_depth: usize,
}

impl ClientConfig {
    /// Defaults for `connect_string` with the given session timeout.
    pub fn new(connect_string: &str, session_timeout: Duration) -> ClientConfig {
        ClientConfig {
            connect_string: connect_string.to_string(),
            session_timeout,
            connect_timeout: session_timeout.max(Duration::from_secs(2)),
            max_frame: conn::DEFAULT_MAX_FRAME,
            queue_depth: 4096,
        }
    }
}

/// One result of a `multi` or `multiRead` sub-operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// create: the created path.
    Create(String),
    /// create2 / container / TTL create: path and stat.
    Create2(String, Stat),
    /// delete.
    Delete,
    /// setData: the new stat.
    SetData(Stat),
    /// check.
    Check,
    /// getChildren (multiRead).
    GetChildren(Vec<String>),
    /// getData (multiRead).
    GetData(Vec<u8>, Stat),
    /// The sub-operation failed (or, in a failed multi, was rolled back: `Ok` before the failing op,
    /// `RuntimeInconsistency` after it).
    Error(ErrorCode),
}

/// One sub-operation of `multi` (writes) or `multiRead` (reads).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Create a node (create2-style result when `stat` is true).
    Create {
        /// Path.
        path: String,
        /// Data.
        data: Vec<u8>,
        /// ACL.
        acl: Vec<Acl>,
        /// Mode.
        mode: CreateMode,
    },
    /// Delete a node.
    Delete {
        /// Path.
        path: String,
        /// Expected version or -1.
        version: i32,
    },
    /// Set data.
    SetData {
        /// Path.
        path: String,
        /// Data.
        data: Vec<u8>,
        /// Expected version or -1.
        version: i32,
    },
    /// Check a node's version.
    Check {
        /// Path.
        path: String,
        /// Expected version.
        version: i32,
    },
    /// Read children (multiRead only).
    GetChildren {
        /// Path.
        path: String,
    },
    /// Read data (multiRead only).
    GetData {
        /// Path.
        path: String,
    },
}

/// Who the connection is authenticated as (one entry of `whoAmI`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    /// Scheme, e.g. `ip`, `digest`.
    pub auth_scheme: String,
    /// User name within the scheme.
    pub user: String,
}

/// A handle on one ZooKeeper session. Clones share the session and the connection.
#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Cmd>,
    shared: Arc<Mutex<SessionInfo>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.info();
        f.debug_struct("Client")
            .field("session_id", &format_args!("0x{:x}", info.session_id))
            .field("state", &info.state)
            .field("host", &info.host)
            .finish()
    }
}

fn path_req(path: &str) -> Vec<u8> {
    let mut w = JuteWriter::new();
    w.write_string(path);
    w.into_inner()
}

fn path_watch_req(path: &str, watch: bool) -> Vec<u8> {
    let mut w = JuteWriter::new();
    w.write_string(path);
    w.write_bool(watch);
    w.into_inner()
}

fn create_req(w: &mut JuteWriter, path: &str, data: Option<&[u8]>, acl: &[Acl], mode: CreateMode) {
    w.write_string(path);
    w.write_buffer_opt(data);
    w.write_vec(acl);
    w.write_i32(mode.flags());
    if let Some(ttl) = mode.ttl() {
        w.write_i64(ttl);
    }
}

/// The opcode of a create with `mode`, in its create2-style form when `want_stat`.
fn create_op(mode: CreateMode, want_stat: bool) -> OpCode {
    match mode {
        CreateMode::Container => OpCode::CreateContainer,
        CreateMode::PersistentWithTtl(_) | CreateMode::PersistentSequentialWithTtl(_) => {
            OpCode::CreateTtl
        }
        _ if want_stat => OpCode::Create2,
        _ => OpCode::Create,
    }
}

fn decode<T>(
    body: &[u8],
    f: impl FnOnce(&mut JuteReader<'_>) -> Result<T, crate::jute::DecodeError>,
) -> Result<T, ClientError> {
    let mut r = JuteReader::with_limit(body, body.len());
    let v = f(&mut r)?;
    Ok(v)
}

impl Client {
    /// Connects to `connect_string` with `session_timeout`, returning the handle and its event stream.
    pub async fn connect(
        connect_string: &str,
        session_timeout: Duration,
    ) -> Result<(Client, EventReceiver), ClientError> {
        Client::connect_with(ClientConfig::new(connect_string, session_timeout)).await
    }

    /// Connects with explicit settings.
    pub async fn connect_with(cfg: ClientConfig) -> Result<(Client, EventReceiver), ClientError> {
        let hosts = parse_hosts(&cfg.connect_string)?;
        let timeout_ms = u32::try_from(cfg.session_timeout.as_millis()).unwrap_or(u32::MAX);
        let shared = Arc::new(Mutex::new(SessionInfo {
            state: State::Connecting,
            session_id: 0,
            password: vec![0; 16],
            timeout_ms,
            host: String::new(),
            last_zxid: 0,
        }));
        let (tx, rx) = mpsc::channel(cfg.queue_depth.max(1));
        let (etx, erx) = mpsc::unbounded_channel();
        let mut task = ConnTask::new(
            ConnConfig {
                hosts,
                session_timeout_ms: timeout_ms,
                max_frame: cfg.max_frame,
            },
            shared.clone(),
            rx,
            etx,
        );
        let first = task.connect(Instant::now() + cfg.connect_timeout).await?;
        tokio::spawn(task.run(first));
        Ok((Client { tx, shared }, erx))
    }

    fn info(&self) -> SessionInfo {
        match self.shared.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The session id.
    pub fn session_id(&self) -> i64 {
        self.info().session_id
    }

    /// The session password the server handed out.
    pub fn session_password(&self) -> Vec<u8> {
        self.info().password
    }

    /// The session timeout the server granted.
    pub fn negotiated_timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.info().timeout_ms))
    }

    /// The connection state.
    pub fn state(&self) -> State {
        self.info().state
    }

    /// The `host:port` currently (or last) connected to.
    pub fn connected_host(&self) -> String {
        self.info().host
    }

    /// The highest zxid seen in any reply.
    pub fn last_zxid(&self) -> i64 {
        self.info().last_zxid
    }

    /// Sends a request and waits for its raw reply; the building block of every operation.
    pub async fn raw_request(&self, op: OpCode, body: Vec<u8>) -> Result<RawReply, ClientError> {
        self.submit(op, body, WatchReg::None).await
    }

    async fn submit(
        &self,
        op: OpCode,
        body: Vec<u8>,
        watch: WatchReg,
    ) -> Result<RawReply, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Request {
                op,
                body,
                watch,
                reply,
            })
            .await
            .map_err(|_| self.closed_error())?;
        rx.await.map_err(|_| self.closed_error())?
    }

    fn closed_error(&self) -> ClientError {
        ClientError::Closed
    }

    async fn call<T>(
        &self,
        op: OpCode,
        body: Vec<u8>,
        watch: WatchReg,
        parse: impl FnOnce(&mut JuteReader<'_>) -> Result<T, crate::jute::DecodeError>,
    ) -> ZkResult<T> {
        let reply = self.submit(op, body, watch).await?;
        if !reply.err.is_ok() {
            return Ok(Err(reply.err));
        }
        Ok(Ok(decode(&reply.body, parse)?))
    }

    /// `create`: returns the created path (with the sequence suffix for sequential modes). Container and
    /// TTL modes use their own opcodes, as ZooKeeper's Java client does.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> ZkResult<String> {
        let op = create_op(mode, false);
        let mut w = JuteWriter::new();
        create_req(&mut w, path, Some(data), acl, mode);
        self.call(op, w.into_inner(), WatchReg::None, |r| {
            let p = r.read_string()?;
            Ok(p)
        })
        .await
    }

    /// `create` with possibly null data (what zkCli sends for `create /p` without data; `get` then
    /// shows `null`).
    pub async fn create_nullable(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> ZkResult<String> {
        let mut w = JuteWriter::new();
        create_req(&mut w, path, data, acl, mode);
        self.call(
            create_op(mode, false),
            w.into_inner(),
            WatchReg::None,
            |r| r.read_string(),
        )
        .await
    }

    /// `create2`: returns the created path and the new node's stat.
    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> ZkResult<(String, Stat)> {
        let op = create_op(mode, true);
        let mut w = JuteWriter::new();
        create_req(&mut w, path, Some(data), acl, mode);
        self.call(op, w.into_inner(), WatchReg::None, |r| {
            Ok((r.read_string()?, Stat::read(r)?))
        })
        .await
    }

    /// `delete` with an expected version (-1: any).
    pub async fn delete(&self, path: &str, version: i32) -> ZkResult<()> {
        let mut w = JuteWriter::new();
        w.write_string(path);
        w.write_i32(version);
        self.call(OpCode::Delete, w.into_inner(), WatchReg::None, |_| Ok(()))
            .await
    }

    /// `exists`: `Ok(Ok(None))` when the node is missing. With `watch`, a watch is left either way.
    pub async fn exists(&self, path: &str, watch: bool) -> ZkResult<Option<Stat>> {
        let reg = if watch {
            WatchReg::Exists(path.to_string())
        } else {
            WatchReg::None
        };
        let reply = self
            .submit(OpCode::Exists, path_watch_req(path, watch), reg)
            .await?;
        match reply.err {
            ErrorCode::Ok => Ok(Ok(Some(decode(&reply.body, Stat::read)?))),
            ErrorCode::NoNode => Ok(Ok(None)),
            e => Ok(Err(e)),
        }
    }

    /// `getData`.
    pub async fn get_data(&self, path: &str, watch: bool) -> ZkResult<(Vec<u8>, Stat)> {
        let reg = if watch {
            WatchReg::Data(path.to_string())
        } else {
            WatchReg::None
        };
        self.call(OpCode::GetData, path_watch_req(path, watch), reg, |r| {
            Ok((r.read_buffer()?, Stat::read(r)?))
        })
        .await
    }

    /// `getData` keeping the difference between null data (`None`) and empty data.
    pub async fn get_data_nullable(
        &self,
        path: &str,
        watch: bool,
    ) -> ZkResult<(Option<Vec<u8>>, Stat)> {
        let reg = if watch {
            WatchReg::Data(path.to_string())
        } else {
            WatchReg::None
        };
        self.call(OpCode::GetData, path_watch_req(path, watch), reg, |r| {
            Ok((r.read_buffer_opt()?, Stat::read(r)?))
        })
        .await
    }

    /// `setData` with an expected version (-1: any).
    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> ZkResult<Stat> {
        let mut w = JuteWriter::new();
        w.write_string(path);
        w.write_buffer(data);
        w.write_i32(version);
        self.call(OpCode::SetData, w.into_inner(), WatchReg::None, Stat::read)
            .await
    }

    /// `getACL`.
    pub async fn get_acl(&self, path: &str) -> ZkResult<(Vec<Acl>, Stat)> {
        self.call(OpCode::GetAcl, path_req(path), WatchReg::None, |r| {
            Ok((r.read_vec()?, Stat::read(r)?))
        })
        .await
    }

    /// `setACL` with an expected ACL version (-1: any).
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> ZkResult<Stat> {
        let mut w = JuteWriter::new();
        w.write_string(path);
        w.write_vec(acl);
        w.write_i32(version);
        self.call(OpCode::SetAcl, w.into_inner(), WatchReg::None, Stat::read)
            .await
    }

    /// `getChildren` (names, not paths; server order).
    pub async fn get_children(&self, path: &str, watch: bool) -> ZkResult<Vec<String>> {
        let reg = if watch {
            WatchReg::Child(path.to_string())
        } else {
            WatchReg::None
        };
        self.call(OpCode::GetChildren, path_watch_req(path, watch), reg, |r| {
            r.read_string_vec()
        })
        .await
    }

    /// `getChildren2`: children and the node's stat.
    pub async fn get_children2(&self, path: &str, watch: bool) -> ZkResult<(Vec<String>, Stat)> {
        let reg = if watch {
            WatchReg::Child(path.to_string())
        } else {
            WatchReg::None
        };
        self.call(
            OpCode::GetChildren2,
            path_watch_req(path, watch),
            reg,
            |r| Ok((r.read_string_vec()?, Stat::read(r)?)),
        )
        .await
    }

    /// `getAllChildrenNumber`: the number of descendants.
    pub async fn get_all_children_number(&self, path: &str) -> ZkResult<i32> {
        self.call(
            OpCode::GetAllChildrenNumber,
            path_req(path),
            WatchReg::None,
            |r| r.read_i32(),
        )
        .await
    }

    /// `getEphemerals`: this session's ephemeral paths under the prefix (`/` for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> ZkResult<Vec<String>> {
        self.call(
            OpCode::GetEphemerals,
            path_req(prefix),
            WatchReg::None,
            |r| r.read_string_vec(),
        )
        .await
    }

    /// `sync`: returns the path the server echoes.
    pub async fn sync(&self, path: &str) -> ZkResult<String> {
        self.call(OpCode::Sync, path_req(path), WatchReg::None, |r| {
            r.read_string()
        })
        .await
    }

    fn write_ops(ops: &[Op]) -> Vec<u8> {
        let mut w = JuteWriter::new();
        for op in ops {
            let code = match op {
                Op::Create { mode, .. } => create_op(*mode, false),
                Op::Delete { .. } => OpCode::Delete,
                Op::SetData { .. } => OpCode::SetData,
                Op::Check { .. } => OpCode::Check,
                Op::GetChildren { .. } => OpCode::GetChildren,
                Op::GetData { .. } => OpCode::GetData,
            };
            w.write_i32(code.code());
            w.write_bool(false);
            w.write_i32(-1);
            match op {
                Op::Create {
                    path,
                    data,
                    acl,
                    mode,
                } => create_req(&mut w, path, Some(data), acl, *mode),
                Op::Delete { path, version } | Op::Check { path, version } => {
                    w.write_string(path);
                    w.write_i32(*version);
                }
                Op::SetData {
                    path,
                    data,
                    version,
                } => {
                    w.write_string(path);
                    w.write_buffer(data);
                    w.write_i32(*version);
                }
                Op::GetChildren { path } | Op::GetData { path } => {
                    w.write_string(path);
                    w.write_bool(false);
                }
            }
        }
        w.write_i32(-1);
        w.write_bool(true);
        w.write_i32(-1);
        w.into_inner()
    }

    fn read_results(r: &mut JuteReader<'_>) -> Result<Vec<OpResult>, crate::jute::DecodeError> {
        let mut out = Vec::new();
        loop {
            let typ = r.read_i32()?;
            let done = r.read_bool()?;
            let err = r.read_i32()?;
            if done {
                return Ok(out);
            }
            let res = match OpCode::from_code(typ) {
                Some(OpCode::Create) => OpResult::Create(r.read_string()?),
                Some(OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl) => {
                    OpResult::Create2(r.read_string()?, Stat::read(r)?)
                }
                Some(OpCode::Delete) => OpResult::Delete,
                Some(OpCode::Check) => OpResult::Check,
                Some(OpCode::SetData) => OpResult::SetData(Stat::read(r)?),
                Some(OpCode::GetChildren) => OpResult::GetChildren(r.read_string_vec()?),
                Some(OpCode::GetData) => OpResult::GetData(r.read_buffer()?, Stat::read(r)?),
                Some(OpCode::Error) => OpResult::Error(ErrorCode::from_code(r.read_i32()?)),
                _ => {
                    return Err(crate::jute::DecodeError::malformed(format!(
                        "multi result type {typ} (err {err})"
                    )))
                }
            };
            out.push(res);
        }
    }

    /// `multi`: all write ops atomically; per-op results (all `Error` entries if one failed).
    pub async fn multi(&self, ops: &[Op]) -> ZkResult<Vec<OpResult>> {
        self.call(
            OpCode::Multi,
            Client::write_ops(ops),
            WatchReg::None,
            Client::read_results,
        )
        .await
    }

    /// `multiRead`: getData/getChildren ops, each answered independently.
    pub async fn multi_read(&self, ops: &[Op]) -> ZkResult<Vec<OpResult>> {
        self.call(
            OpCode::MultiRead,
            Client::write_ops(ops),
            WatchReg::None,
            Client::read_results,
        )
        .await
    }

    /// `addWatch`: a persistent (optionally recursive) watch, re-registered on reconnect.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> ZkResult<()> {
        let mut w = JuteWriter::new();
        w.write_string(path);
        w.write_i32(mode.code());
        let reg = match mode {
            AddWatchMode::Persistent => WatchReg::Persistent(path.to_string()),
            AddWatchMode::PersistentRecursive => WatchReg::Recursive(path.to_string()),
        };
        self.call(OpCode::AddWatch, w.into_inner(), reg, |_| Ok(()))
            .await
    }

    /// `removeWatches`: removes this connection's watches of `kind` on `path` (NoWatcher if none).
    pub async fn remove_watches(&self, path: &str, kind: WatcherType) -> ZkResult<()> {
        let mut w = JuteWriter::new();
        w.write_string(path);
        w.write_i32(kind.code());
        self.call(
            OpCode::RemoveWatches,
            w.into_inner(),
            WatchReg::Remove(path.to_string(), kind),
            |_| Ok(()),
        )
        .await
    }

    /// `checkWatches`: `Ok(Ok(()))` if such a watch exists (NoWatcher if not).
    pub async fn check_watches(&self, path: &str, kind: WatcherType) -> ZkResult<()> {
        let mut w = JuteWriter::new();
        w.write_string(path);
        w.write_i32(kind.code());
        self.call(OpCode::CheckWatches, w.into_inner(), WatchReg::None, |_| {
            Ok(())
        })
        .await
    }

    /// `addauth`: adds credentials to the connection (kept and re-sent on reconnect when accepted). A
    /// refused credential closes the session (`AuthFailed`), as ZooKeeper does.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> ZkResult<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Auth {
                scheme: scheme.to_string(),
                auth: auth.to_vec(),
                reply,
            })
            .await
            .map_err(|_| ClientError::Closed)?;
        let code = rx.await.map_err(|_| ClientError::Closed)??;
        Ok(if code.is_ok() { Ok(()) } else { Err(code) })
    }

    /// `whoAmI`: the identities the server attached to this connection.
    pub async fn who_am_i(&self) -> ZkResult<Vec<ClientInfo>> {
        self.call(OpCode::WhoAmI, Vec::new(), WatchReg::None, |r| {
            let n = r.read_count(8)?.unwrap_or(0);
            let mut out = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                out.push(ClientInfo {
                    auth_scheme: r.read_string()?,
                    user: r.read_string()?,
                });
            }
            Ok(out)
        })
        .await
    }

    /// `getConfig`: data and stat of `/zookeeper/config`.
    pub async fn get_config(&self, watch: bool) -> ZkResult<(Vec<u8>, Stat)> {
        self.get_data("/zookeeper/config", watch).await
    }

    /// `reconfig`: incremental (`joining`/`leaving`) or full (`members`); `from_config` -1 means any.
    /// Returns the new configuration text and the stat of `/zookeeper/config`.
    pub async fn reconfig(
        &self,
        joining: Option<&str>,
        leaving: Option<&str>,
        members: Option<&str>,
        from_config: i64,
    ) -> ZkResult<(Vec<u8>, Stat)> {
        let mut w = JuteWriter::new();
        w.write_string_opt(joining);
        w.write_string_opt(leaving);
        w.write_string_opt(members);
        w.write_i64(from_config);
        self.call(OpCode::Reconfig, w.into_inner(), WatchReg::None, |r| {
            Ok((r.read_buffer()?, Stat::read(r)?))
        })
        .await
    }

    /// Closes the session (closeSession, then the socket). Ephemerals of the session go away.
    pub async fn close(&self) -> Result<(), ClientError> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Cmd::Close { reply }).await.is_err() {
            return Ok(());
        }
        rx.await.unwrap_or(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multi record is a sequence of `MultiHeader{type,false,-1}` + op records, ended by `{-1,true,-1}`.
    #[test]
    fn multi_request_layout() {
        let body = Client::write_ops(&[Op::Check {
            path: "/a".into(),
            version: 3,
        }]);
        let mut r = JuteReader::new(&body);
        assert_eq!(r.read_i32().unwrap(), 13);
        assert!(!r.read_bool().unwrap());
        assert_eq!(r.read_i32().unwrap(), -1);
        assert_eq!(r.read_string().unwrap(), "/a");
        assert_eq!(r.read_i32().unwrap(), 3);
        assert_eq!(r.read_i32().unwrap(), -1);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_i32().unwrap(), -1);
        r.finish().unwrap();
    }

    /// Container and TTL creates use their own opcodes; plain creates use create or create2.
    #[test]
    fn create_opcodes() {
        assert_eq!(create_op(CreateMode::Persistent, false), OpCode::Create);
        assert_eq!(
            create_op(CreateMode::EphemeralSequential, true),
            OpCode::Create2
        );
        assert_eq!(
            create_op(CreateMode::Container, false),
            OpCode::CreateContainer
        );
        assert_eq!(
            create_op(CreateMode::PersistentWithTtl(5), false),
            OpCode::CreateTtl
        );
    }
}
