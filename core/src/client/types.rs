//! Public value types of the client: create modes, watch events and states, errors.

use crate::jute::DecodeError;
use std::fmt;
use thiserror::Error;

/// A transport-level failure. ZooKeeper's own result codes are not errors of this type: they come back as
/// [`crate::proto::ErrorCode`] values inside `Ok`.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The connect string could not be parsed.
    #[error("invalid connect string {0:?}: expected host:port[,host:port...]")]
    InvalidHosts(String),
    /// No server in the list accepted a session before the deadline.
    #[error("could not connect to {hosts}: {reason}")]
    ConnectFailed {
        /// The connect string.
        hosts: String,
        /// The last failure seen.
        reason: String,
    },
    /// The connection broke while the request was outstanding (ZooKeeper's CONNECTIONLOSS); the client is
    /// reconnecting and the request may or may not have been applied.
    #[error("connection lost while the request was outstanding")]
    ConnectionLoss,
    /// The server declared the session expired; the client is closed.
    #[error("session expired")]
    SessionExpired,
    /// The server refused an auth packet and closed the connection; the client is closed.
    #[error("authentication failed")]
    AuthFailed,
    /// The client was closed (by `close`, or after giving up reconnecting).
    #[error("client is closed")]
    Closed,
    /// A reply could not be decoded.
    #[error("undecodable reply: {0}")]
    Decode(#[from] DecodeError),
    /// The server broke the protocol (xid out of order, bad frame length).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The outcome of one operation: transport failures outside, ZooKeeper's result code inside.
pub type ZkResult<T> = Result<Result<T, crate::proto::ErrorCode>, ClientError>;

/// How a node is created (`CreateMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    /// 0
    Persistent,
    /// 1
    Ephemeral,
    /// 2
    PersistentSequential,
    /// 3
    EphemeralSequential,
    /// 4: deleted by the server once its last child is gone.
    Container,
    /// 5: deleted once childless and unmodified for `ttl` ms.
    PersistentWithTtl(i64),
    /// 6
    PersistentSequentialWithTtl(i64),
}

impl CreateMode {
    /// The `flags` value of the create request.
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl(_) => 5,
            CreateMode::PersistentSequentialWithTtl(_) => 6,
        }
    }

    /// The TTL in ms for TTL modes.
    pub fn ttl(self) -> Option<i64> {
        match self {
            CreateMode::PersistentWithTtl(t) | CreateMode::PersistentSequentialWithTtl(t) => {
                Some(t)
            }
            _ => None,
        }
    }
}

/// `Watcher.Event.EventType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// -1: a state change, no node.
    None,
    /// 1
    NodeCreated,
    /// 2
    NodeDeleted,
    /// 3
    NodeDataChanged,
    /// 4
    NodeChildrenChanged,
    /// 5 (client side)
    DataWatchRemoved,
    /// 6 (client side)
    ChildWatchRemoved,
    /// 7 (client side)
    PersistentWatchRemoved,
    /// Anything else.
    Other(i32),
}

impl EventType {
    /// From the wire number.
    pub fn from_code(code: i32) -> EventType {
        match code {
            -1 => EventType::None,
            1 => EventType::NodeCreated,
            2 => EventType::NodeDeleted,
            3 => EventType::NodeDataChanged,
            4 => EventType::NodeChildrenChanged,
            5 => EventType::DataWatchRemoved,
            6 => EventType::ChildWatchRemoved,
            7 => EventType::PersistentWatchRemoved,
            other => EventType::Other(other),
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventType::Other(c) => write!(f, "Unknown({c})"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// `Watcher.Event.KeeperState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeeperState {
    /// 0
    Disconnected,
    /// 3
    SyncConnected,
    /// 4
    AuthFailed,
    /// 5
    ConnectedReadOnly,
    /// -112
    Expired,
    /// 7 (client side)
    Closed,
    /// Anything else.
    Other(i32),
}

impl KeeperState {
    /// From the wire number.
    pub fn from_code(code: i32) -> KeeperState {
        match code {
            0 => KeeperState::Disconnected,
            3 => KeeperState::SyncConnected,
            4 => KeeperState::AuthFailed,
            5 => KeeperState::ConnectedReadOnly,
            -112 => KeeperState::Expired,
            7 => KeeperState::Closed,
            other => KeeperState::Other(other),
        }
    }
}

impl fmt::Display for KeeperState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeeperState::Other(c) => write!(f, "Unknown({c})"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A watch notification or a connection state change, as delivered on the event channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The connection state when it happened.
    pub state: KeeperState,
    /// The node, for node events.
    pub path: Option<String>,
}

impl fmt::Display for WatchedEvent {
    /// ZooKeeper 3.8's `WatchedEvent.toString`: `WatchedEvent state:SyncConnected type:None path:null`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WatchedEvent state:{} type:{} path:{}",
            self.state,
            self.event_type,
            self.path.as_deref().unwrap_or("null")
        )
    }
}

/// The client's connection state, named as `ZooKeeper.States` prints (zkCli's prompt shows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Looking for a server.
    Connecting,
    /// Session established on a read-write server.
    Connected,
    /// Session established on a read-only server.
    ConnectedReadOnly,
    /// The server refused an auth packet.
    AuthFailed,
    /// Closed or expired.
    Closed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Connecting => "CONNECTING",
            State::Connected => "CONNECTED",
            State::ConnectedReadOnly => "CONNECTEDREADONLY",
            State::AuthFailed => "AUTH_FAILED",
            State::Closed => "CLOSED",
        })
    }
}

/// Mode of `addWatch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddWatchMode {
    /// 0: fires for the node's data and children changes, stays registered.
    Persistent,
    /// 1: fires for the node and all descendants (not NodeChildrenChanged), stays registered.
    PersistentRecursive,
}

impl AddWatchMode {
    /// The wire number.
    pub fn code(self) -> i32 {
        match self {
            AddWatchMode::Persistent => 0,
            AddWatchMode::PersistentRecursive => 1,
        }
    }
}

/// Which watches `checkWatches` / `removeWatches` address (`WatcherType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatcherType {
    /// 1
    Children,
    /// 2
    Data,
    /// 3
    Any,
}

impl WatcherType {
    /// The wire number.
    pub fn code(self) -> i32 {
        match self {
            WatcherType::Children => 1,
            WatcherType::Data => 2,
            WatcherType::Any => 3,
        }
    }
}

/// One `host:port` of a connect string, plus the chroot-free list parser.
pub fn parse_hosts(connect: &str) -> Result<Vec<String>, ClientError> {
    let hosts: Vec<String> = connect
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:2181")
            }
        })
        .collect();
    if hosts.is_empty() || connect.contains('/') {
        return Err(ClientError::InvalidHosts(connect.to_string()));
    }
    Ok(hosts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events print exactly as ZooKeeper 3.8's `WatchedEvent.toString`, which zkCli shows after `WATCHER::`.
    #[test]
    fn watched_event_prints_like_zookeeper() {
        let e = WatchedEvent {
            event_type: EventType::None,
            state: KeeperState::SyncConnected,
            path: None,
        };
        assert_eq!(
            e.to_string(),
            "WatchedEvent state:SyncConnected type:None path:null"
        );
        let e = WatchedEvent {
            event_type: EventType::NodeDataChanged,
            state: KeeperState::SyncConnected,
            path: Some("/a".into()),
        };
        assert_eq!(
            e.to_string(),
            "WatchedEvent state:SyncConnected type:NodeDataChanged path:/a"
        );
    }

    /// Connect strings split on commas, default the port, and refuse chroots (not supported).
    #[test]
    fn connect_strings_parse() {
        assert_eq!(parse_hosts("a:1, b").unwrap(), vec!["a:1", "b:2181"]);
        assert!(parse_hosts("").is_err());
        assert!(parse_hosts("a:1/chroot").is_err());
    }
}
