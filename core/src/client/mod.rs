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

pub use crate::proto::client::ClientInfo;
use crate::proto::client::{
    AddWatchRequest, CheckWatchesRequest, CreateRequest, CreateTtlRequest, DeleteRequest,
    ExistsRequest, GetAclRequest, GetAllChildrenNumberRequest, GetChildren2Request,
    GetChildrenRequest, GetDataRequest, GetEphemeralsRequest, ReconfigRequest,
    RemoveWatchesRequest, SetAclRequest, SetDataRequest, SyncRequest,
};
use crate::proto::{Acl, ErrorCode, OpCode, Stat};
pub use crate::proto::{MultiOp, MultiRequest, MultiResult, Request, Response};
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

    /// Sends a typed request and decodes the typed reply: `Ok(Err(code))` for a ZooKeeper error code.
    pub async fn request(&self, req: Request) -> ZkResult<Response> {
        self.request_watch(req, WatchReg::None).await
    }

    async fn request_watch(&self, req: Request, watch: WatchReg) -> ZkResult<Response> {
        let op = req.op_code();
        let reply = self.submit(op, req.to_body_bytes(), watch).await?;
        if !reply.err.is_ok() {
            return Ok(Err(reply.err));
        }
        Ok(Ok(Response::decode(op, &reply.body)?))
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
        self.create_nullable(path, Some(data), acl, mode).await
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
        let req = create_request(path, data, acl, mode, false);
        Ok(match self.request(req).await? {
            Ok(Response::Create(r)) => Ok(r.path),
            Ok(Response::Create2(r)) => Ok(r.path),
            Ok(other) => return Err(unexpected(other)),
            Err(code) => Err(code),
        })
    }

    /// `create2`: returns the created path and the new node's stat.
    pub async fn create2(
        &self,
        path: &str,
        data: &[u8],
        acl: &[Acl],
        mode: CreateMode,
    ) -> ZkResult<(String, Stat)> {
        let req = create_request(path, Some(data), acl, mode, true);
        expect(self.request(req).await, |r| match r {
            Response::Create2(r) => Ok((r.path, r.stat)),
            other => Err(other),
        })
    }

    /// `delete` with an expected version (-1: any).
    pub async fn delete(&self, path: &str, version: i32) -> ZkResult<()> {
        let req = Request::Delete(DeleteRequest {
            path: path.to_string(),
            version,
        });
        expect(self.request(req).await, |r| match r {
            Response::Empty => Ok(()),
            other => Err(other),
        })
    }

    /// `exists`: `Ok(Ok(None))` when the node is missing. With `watch`, a watch is left either way.
    pub async fn exists(&self, path: &str, watch: bool) -> ZkResult<Option<Stat>> {
        let reg = if watch {
            WatchReg::Exists(path.to_string())
        } else {
            WatchReg::None
        };
        let req = Request::Exists(ExistsRequest {
            path: path.to_string(),
            watch,
        });
        match self.request_watch(req, reg).await? {
            Ok(Response::Exists(r)) => Ok(Ok(Some(r.stat))),
            Ok(other) => Err(unexpected(other)),
            Err(ErrorCode::NoNode) => Ok(Ok(None)),
            Err(code) => Ok(Err(code)),
        }
    }

    /// `getData` (null data reads as empty; see [`Client::get_data_nullable`]).
    pub async fn get_data(&self, path: &str, watch: bool) -> ZkResult<(Vec<u8>, Stat)> {
        Ok(self
            .get_data_nullable(path, watch)
            .await?
            .map(|(d, s)| (d.unwrap_or_default(), s)))
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
        let req = Request::GetData(GetDataRequest {
            path: path.to_string(),
            watch,
        });
        expect(self.request_watch(req, reg).await, |r| match r {
            Response::GetData(r) => Ok((r.data, r.stat)),
            other => Err(other),
        })
    }

    /// `setData` with an expected version (-1: any).
    pub async fn set_data(&self, path: &str, data: &[u8], version: i32) -> ZkResult<Stat> {
        let req = Request::SetData(SetDataRequest {
            path: path.to_string(),
            data: Some(data.to_vec()),
            version,
        });
        expect(self.request(req).await, |r| match r {
            Response::SetData(r) => Ok(r.stat),
            other => Err(other),
        })
    }

    /// `getACL`.
    pub async fn get_acl(&self, path: &str) -> ZkResult<(Vec<Acl>, Stat)> {
        let req = Request::GetAcl(GetAclRequest {
            path: path.to_string(),
        });
        expect(self.request(req).await, |r| match r {
            Response::GetAcl(r) => Ok((r.acl, r.stat)),
            other => Err(other),
        })
    }

    /// `setACL` with an expected ACL version (-1: any).
    pub async fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> ZkResult<Stat> {
        let req = Request::SetAcl(SetAclRequest {
            path: path.to_string(),
            acl: acl.to_vec(),
            version,
        });
        expect(self.request(req).await, |r| match r {
            Response::SetAcl(r) => Ok(r.stat),
            other => Err(other),
        })
    }

    /// `getChildren` (names, not paths; server order).
    pub async fn get_children(&self, path: &str, watch: bool) -> ZkResult<Vec<String>> {
        let reg = if watch {
            WatchReg::Child(path.to_string())
        } else {
            WatchReg::None
        };
        let req = Request::GetChildren(GetChildrenRequest {
            path: path.to_string(),
            watch,
        });
        expect(self.request_watch(req, reg).await, |r| match r {
            Response::GetChildren(r) => Ok(r.children),
            other => Err(other),
        })
    }

    /// `getChildren2`: children and the node's stat.
    pub async fn get_children2(&self, path: &str, watch: bool) -> ZkResult<(Vec<String>, Stat)> {
        let reg = if watch {
            WatchReg::Child(path.to_string())
        } else {
            WatchReg::None
        };
        let req = Request::GetChildren2(GetChildren2Request {
            path: path.to_string(),
            watch,
        });
        expect(self.request_watch(req, reg).await, |r| match r {
            Response::GetChildren2(r) => Ok((r.children, r.stat)),
            other => Err(other),
        })
    }

    /// `getAllChildrenNumber`: the number of descendants.
    pub async fn get_all_children_number(&self, path: &str) -> ZkResult<i32> {
        let req = Request::GetAllChildrenNumber(GetAllChildrenNumberRequest {
            path: path.to_string(),
        });
        expect(self.request(req).await, |r| match r {
            Response::GetAllChildrenNumber(r) => Ok(r.total_number),
            other => Err(other),
        })
    }

    /// `getEphemerals`: this session's ephemeral paths under the prefix (`/` for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> ZkResult<Vec<String>> {
        let req = Request::GetEphemerals(GetEphemeralsRequest {
            prefix_path: prefix.to_string(),
        });
        expect(self.request(req).await, |r| match r {
            Response::GetEphemerals(r) => Ok(r.ephemerals),
            other => Err(other),
        })
    }

    /// `sync`: returns the path the server echoes.
    pub async fn sync(&self, path: &str) -> ZkResult<String> {
        let req = Request::Sync(SyncRequest {
            path: path.to_string(),
        });
        expect(self.request(req).await, |r| match r {
            Response::Sync(r) => Ok(r.path),
            other => Err(other),
        })
    }

    /// `multi`: all write ops atomically; per-op results (all `Error` entries if one failed).
    pub async fn multi(&self, ops: Vec<MultiOp>) -> ZkResult<Vec<MultiResult>> {
        expect(
            self.request(Request::Multi(MultiRequest { ops })).await,
            |r| match r {
                Response::Multi(r) => Ok(r.results),
                other => Err(other),
            },
        )
    }

    /// `multiRead`: getData/getChildren ops, each answered independently.
    pub async fn multi_read(&self, ops: Vec<MultiOp>) -> ZkResult<Vec<MultiResult>> {
        expect(
            self.request(Request::MultiRead(MultiRequest { ops })).await,
            |r| match r {
                Response::Multi(r) => Ok(r.results),
                other => Err(other),
            },
        )
    }

    /// `addWatch`: a persistent (optionally recursive) watch, re-registered on reconnect.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> ZkResult<()> {
        let reg = match mode {
            AddWatchMode::Persistent => WatchReg::Persistent(path.to_string()),
            AddWatchMode::PersistentRecursive => WatchReg::Recursive(path.to_string()),
        };
        let req = Request::AddWatch(AddWatchRequest {
            path: path.to_string(),
            mode: mode.code(),
        });
        expect(self.request_watch(req, reg).await, |r| match r {
            Response::AddWatch(_) => Ok(()),
            other => Err(other),
        })
    }

    /// `removeWatches`: removes this connection's watches of `kind` on `path` (NoWatcher if none).
    pub async fn remove_watches(&self, path: &str, kind: WatcherType) -> ZkResult<()> {
        let req = Request::RemoveWatches(RemoveWatchesRequest {
            path: path.to_string(),
            ty: kind.code(),
        });
        let reg = WatchReg::Remove(path.to_string(), kind);
        expect(self.request_watch(req, reg).await, |r| match r {
            Response::Empty => Ok(()),
            other => Err(other),
        })
    }

    /// `checkWatches`: `Ok(Ok(()))` if such a watch exists (NoWatcher if not).
    pub async fn check_watches(&self, path: &str, kind: WatcherType) -> ZkResult<()> {
        let req = Request::CheckWatches(CheckWatchesRequest {
            path: path.to_string(),
            ty: kind.code(),
        });
        expect(self.request(req).await, |r| match r {
            Response::Empty => Ok(()),
            other => Err(other),
        })
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
        expect(self.request(Request::WhoAmI).await, |r| match r {
            Response::WhoAmI(r) => Ok(r.client_info),
            other => Err(other),
        })
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
        let req = Request::Reconfig(ReconfigRequest {
            joining_servers: joining.map(str::to_string),
            leaving_servers: leaving.map(str::to_string),
            new_members: members.map(str::to_string),
            cur_config_id: from_config,
        });
        expect(self.request(req).await, |r| match r {
            Response::Reconfig(r) => Ok((r.data.unwrap_or_default(), r.stat)),
            other => Err(other),
        })
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

fn unexpected(r: Response) -> ClientError {
    ClientError::Protocol(format!("unexpected reply body {r:?}"))
}

/// Maps a typed reply to the value an operation returns, refusing a body of the wrong kind.
fn expect<T>(
    r: ZkResult<Response>,
    f: impl FnOnce(Response) -> Result<T, Response>,
) -> ZkResult<T> {
    match r? {
        Ok(resp) => f(resp).map(Ok).map_err(unexpected),
        Err(code) => Ok(Err(code)),
    }
}

/// The create request for `mode`: container and TTL modes have their own opcodes (their replies are
/// create2-style); otherwise create or create2 as asked.
pub fn create_request(
    path: &str,
    data: Option<&[u8]>,
    acl: &[Acl],
    mode: CreateMode,
    want_stat: bool,
) -> Request {
    let c = CreateRequest {
        path: path.to_string(),
        data: data.map(<[u8]>::to_vec),
        acl: acl.to_vec(),
        flags: mode.flags(),
    };
    match mode {
        CreateMode::Container => Request::CreateContainer(c),
        CreateMode::PersistentWithTtl(ttl) | CreateMode::PersistentSequentialWithTtl(ttl) => {
            Request::CreateTtl(CreateTtlRequest {
                path: c.path,
                data: c.data,
                acl: c.acl,
                flags: c.flags,
                ttl,
            })
        }
        _ if want_stat => Request::Create2(c),
        _ => Request::Create(c),
    }
}

/// The same create as one operation of a `multi`.
pub fn create_op(path: &str, data: Option<&[u8]>, acl: &[Acl], mode: CreateMode) -> MultiOp {
    match create_request(path, data, acl, mode, false) {
        Request::CreateContainer(c) => MultiOp::CreateContainer(c),
        Request::CreateTtl(c) => MultiOp::CreateTtl(c),
        Request::Create2(c) => MultiOp::Create2(c),
        Request::Create(c) => MultiOp::Create(c),
        _ => unreachable!("create_request only builds creates"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::Record;

    /// Container and TTL creates use their own opcodes; plain creates use create or create2.
    #[test]
    fn create_opcodes() {
        let acl = Acl::open_unsafe();
        let op = |m, s| create_request("/a", None, &acl, m, s).op_code();
        assert_eq!(op(CreateMode::Persistent, false), OpCode::Create);
        assert_eq!(op(CreateMode::EphemeralSequential, true), OpCode::Create2);
        assert_eq!(op(CreateMode::Container, false), OpCode::CreateContainer);
        assert_eq!(
            op(CreateMode::PersistentWithTtl(5), false),
            OpCode::CreateTtl
        );
        assert!(matches!(
            create_op("/a", None, &acl, CreateMode::Ephemeral),
            MultiOp::Create(_)
        ));
    }

    /// A TTL create carries its TTL after the flags, as `CreateTTLRequest` does.
    #[test]
    fn ttl_create_layout() {
        let req = create_request(
            "/t",
            Some(b"x"),
            &[],
            CreateMode::PersistentWithTtl(7),
            false,
        );
        let bytes = req.to_body_bytes();
        assert_eq!(
            &bytes[bytes.len() - 12..bytes.len() - 8],
            &5i32.to_be_bytes()
        );
        assert_eq!(&bytes[bytes.len() - 8..], &7i64.to_be_bytes());
        let _ = Stat::default().to_bytes();
    }
}
