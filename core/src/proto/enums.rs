//! Small wire enumerations of the client protocol: watch event types and keeper states
//! (`Watcher.Event`), watcher types for checkWatches/removeWatches, addWatch modes, and `CreateMode`
//! with ZooKeeper's flag decoding.
//!
//! Records keep these as raw `i32` fields so that any value read can be written back unchanged; the
//! enums here are the typed view (`from_code` returns `None` for numbers ZooKeeper does not define).

macro_rules! wire_enum {
    ($(#[$m:meta])* pub enum $name:ident { $( $(#[$vm:meta])* $variant:ident = $code:expr ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vm])* $variant ),*
        }

        impl $name {
            /// Every value, for tables and tests.
            pub const ALL: &'static [$name] = &[$( $name::$variant ),*];

            /// The wire number.
            pub fn code(self) -> i32 {
                match self {
                    $( $name::$variant => $code ),*
                }
            }

            /// The value for a wire number, or `None` for numbers ZooKeeper does not define.
            pub fn from_code(code: i32) -> Option<$name> {
                match code {
                    $( c if c == $code => Some($name::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

pub(crate) use wire_enum;

wire_enum! {
    /// `Watcher.Event.EventType`, the `type` of a `WatcherEvent`.
    pub enum EventType {
        /// -1: a state change, no node involved.
        None = -1,
        /// 1
        NodeCreated = 1,
        /// 2
        NodeDeleted = 2,
        /// 3
        NodeDataChanged = 3,
        /// 4
        NodeChildrenChanged = 4,
        /// 5 (generated client-side only)
        DataWatchRemoved = 5,
        /// 6 (generated client-side only)
        ChildWatchRemoved = 6,
        /// 7 (generated client-side only)
        PersistentWatchRemoved = 7,
    }
}

wire_enum! {
    /// `Watcher.Event.KeeperState`, the `state` of a `WatcherEvent` (always SyncConnected from a server).
    pub enum KeeperState {
        /// -1
        Unknown = -1,
        /// 0
        Disconnected = 0,
        /// 1 (deprecated)
        NoSyncConnected = 1,
        /// 3
        SyncConnected = 3,
        /// 4
        AuthFailed = 4,
        /// 5
        ConnectedReadOnly = 5,
        /// 6
        SaslAuthenticated = 6,
        /// -112
        Expired = -112,
        /// 7 (client-side only)
        Closed = 7,
    }
}

wire_enum! {
    /// `Watcher.WatcherType`, the `type` of checkWatches/removeWatches requests.
    pub enum WatcherType {
        /// 1
        Children = 1,
        /// 2
        Data = 2,
        /// 3
        Any = 3,
    }
}

wire_enum! {
    /// `AddWatchMode`, the `mode` of an addWatch request.
    pub enum AddWatchMode {
        /// 0: stays registered after firing; fires for the node itself.
        Persistent = 0,
        /// 1: stays registered; fires for the node and every descendant (not NodeChildrenChanged).
        PersistentRecursive = 1,
    }
}

wire_enum! {
    /// `CreateMode`, from the `flags` of a create request (`CreateMode.fromFlag`).
    pub enum CreateMode {
        /// 0
        Persistent = 0,
        /// 1
        Ephemeral = 1,
        /// 2
        PersistentSequential = 2,
        /// 3
        EphemeralSequential = 3,
        /// 4
        Container = 4,
        /// 5
        PersistentWithTtl = 5,
        /// 6
        PersistentSequentialWithTtl = 6,
    }
}

impl CreateMode {
    /// `CreateMode.fromFlag`: the mode for a flag value, `None` (BADARGUMENTS) for anything else.
    pub fn from_flag(flag: i32) -> Option<CreateMode> {
        CreateMode::from_code(flag)
    }

    /// The flag value.
    pub fn flag(self) -> i32 {
        self.code()
    }

    /// True for modes whose node dies with its session.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }

    /// True for modes that append a 10-digit sequence suffix.
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    /// True for the container mode.
    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    /// True for the two TTL modes.
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every enum value maps to its number and back, and undefined numbers are refused.
    #[test]
    fn enums_round_trip() {
        for v in EventType::ALL {
            assert_eq!(EventType::from_code(v.code()), Some(*v));
        }
        for v in KeeperState::ALL {
            assert_eq!(KeeperState::from_code(v.code()), Some(*v));
        }
        for v in CreateMode::ALL {
            assert_eq!(CreateMode::from_flag(v.flag()), Some(*v));
        }
        assert_eq!(EventType::from_code(0), None);
        assert_eq!(KeeperState::Expired.code(), -112);
        assert_eq!(CreateMode::from_flag(7), None);
        assert_eq!(
            AddWatchMode::from_code(1),
            Some(AddWatchMode::PersistentRecursive)
        );
        assert_eq!(WatcherType::from_code(3), Some(WatcherType::Any));
    }

    /// CreateMode predicates agree with ZooKeeper's `CreateMode` table.
    #[test]
    fn create_mode_predicates() {
        let table: Vec<(bool, bool, bool, bool)> = CreateMode::ALL
            .iter()
            .map(|m| {
                (
                    m.is_ephemeral(),
                    m.is_sequential(),
                    m.is_container(),
                    m.is_ttl(),
                )
            })
            .collect();
        assert_eq!(
            table,
            vec![
                (false, false, false, false),
                (true, false, false, false),
                (false, true, false, false),
                (true, true, false, false),
                (false, false, true, false),
                (false, false, false, true),
                (false, true, false, true),
            ]
        );
    }
}
