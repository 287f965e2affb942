//! Opcodes (`ZooDefs.OpCode`) and error codes (`KeeperException.Code`) as ZooKeeper 3.8 numbers them.
//!
//! Error codes are values carried in replies and multi results, not Rust errors: a `NoNode` is a normal
//! outcome of a request, and the server never propagates it with `?`.

use std::fmt;

/// A request type as carried in `RequestHeader.type` and `TxnHeader.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0: used only for the notification xid; never valid in a request.
    Notification,
    /// 1
    Create,
    /// 2
    Delete,
    /// 3
    Exists,
    /// 4
    GetData,
    /// 5
    SetData,
    /// 6
    GetAcl,
    /// 7
    SetAcl,
    /// 8
    GetChildren,
    /// 9: the client `sync` operation (flush the channel to the leader).
    Sync,
    /// 11
    Ping,
    /// 12
    GetChildren2,
    /// 13: only meaningful inside a multi.
    Check,
    /// 14
    Multi,
    /// 15
    Create2,
    /// 16
    Reconfig,
    /// 17
    CheckWatches,
    /// 18
    RemoveWatches,
    /// 19
    CreateContainer,
    /// 20: internal, issued by the container reaper.
    DeleteContainer,
    /// 21
    CreateTtl,
    /// 22
    MultiRead,
    /// 100
    Auth,
    /// 101
    SetWatches,
    /// 102
    Sasl,
    /// 103
    GetEphemerals,
    /// 104
    GetAllChildrenNumber,
    /// 105
    SetWatches2,
    /// 106
    AddWatch,
    /// 107
    WhoAmI,
    /// -10: internal, a new session's txn.
    CreateSession,
    /// -11
    CloseSession,
    /// -1: the txn type of a failed write.
    Error,
}

impl OpCode {
    /// Every opcode, for tables and tests.
    pub const ALL: [OpCode; 33] = [
        OpCode::Notification,
        OpCode::Create,
        OpCode::Delete,
        OpCode::Exists,
        OpCode::GetData,
        OpCode::SetData,
        OpCode::GetAcl,
        OpCode::SetAcl,
        OpCode::GetChildren,
        OpCode::Sync,
        OpCode::Ping,
        OpCode::GetChildren2,
        OpCode::Check,
        OpCode::Multi,
        OpCode::Create2,
        OpCode::Reconfig,
        OpCode::CheckWatches,
        OpCode::RemoveWatches,
        OpCode::CreateContainer,
        OpCode::DeleteContainer,
        OpCode::CreateTtl,
        OpCode::MultiRead,
        OpCode::Auth,
        OpCode::SetWatches,
        OpCode::Sasl,
        OpCode::GetEphemerals,
        OpCode::GetAllChildrenNumber,
        OpCode::SetWatches2,
        OpCode::AddWatch,
        OpCode::WhoAmI,
        OpCode::CreateSession,
        OpCode::CloseSession,
        OpCode::Error,
    ];

    /// The wire number.
    pub fn code(self) -> i32 {
        match self {
            OpCode::Notification => 0,
            OpCode::Create => 1,
            OpCode::Delete => 2,
            OpCode::Exists => 3,
            OpCode::GetData => 4,
            OpCode::SetData => 5,
            OpCode::GetAcl => 6,
            OpCode::SetAcl => 7,
            OpCode::GetChildren => 8,
            OpCode::Sync => 9,
            OpCode::Ping => 11,
            OpCode::GetChildren2 => 12,
            OpCode::Check => 13,
            OpCode::Multi => 14,
            OpCode::Create2 => 15,
            OpCode::Reconfig => 16,
            OpCode::CheckWatches => 17,
            OpCode::RemoveWatches => 18,
            OpCode::CreateContainer => 19,
            OpCode::DeleteContainer => 20,
            OpCode::CreateTtl => 21,
            OpCode::MultiRead => 22,
            OpCode::Auth => 100,
            OpCode::SetWatches => 101,
            OpCode::Sasl => 102,
            OpCode::GetEphemerals => 103,
            OpCode::GetAllChildrenNumber => 104,
            OpCode::SetWatches2 => 105,
            OpCode::AddWatch => 106,
            OpCode::WhoAmI => 107,
            OpCode::CreateSession => -10,
            OpCode::CloseSession => -11,
            OpCode::Error => -1,
        }
    }

    /// The opcode for a wire number, or `None` for numbers ZooKeeper does not define.
    pub fn from_code(code: i32) -> Option<OpCode> {
        OpCode::ALL.iter().copied().find(|op| op.code() == code)
    }

    /// True for operations that change the tree and so go through the quorum and get a zxid.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::DeleteContainer
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::CreateSession
                | OpCode::CloseSession
                | OpCode::Error
        )
    }
}

/// A ZooKeeper result code (`KeeperException.Code`). Unknown numbers are kept as `Other` so a value read
/// from a peer is never lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0
    Ok,
    /// -1
    SystemError,
    /// -2: multi ops after the failing one.
    RuntimeInconsistency,
    /// -3
    DataInconsistency,
    /// -4 (client side only)
    ConnectionLoss,
    /// -5: undecodable request.
    MarshallingError,
    /// -6
    Unimplemented,
    /// -7 (client side only)
    OperationTimeout,
    /// -8
    BadArguments,
    /// -12
    UnknownSession,
    /// -13
    NewConfigNoQuorum,
    /// -14
    ReconfigInProgress,
    /// -100: base value, not sent.
    ApiError,
    /// -101
    NoNode,
    /// -102
    NoAuth,
    /// -103
    BadVersion,
    /// -108
    NoChildrenForEphemerals,
    /// -110
    NodeExists,
    /// -111
    NotEmpty,
    /// -112
    SessionExpired,
    /// -113 (client side only)
    InvalidCallback,
    /// -114
    InvalidAcl,
    /// -115
    AuthFailed,
    /// -118
    SessionMoved,
    /// -119
    NotReadOnly,
    /// -120
    EphemeralOnLocalSession,
    /// -121
    NoWatcher,
    /// -122 (client side only)
    RequestTimeout,
    /// -123
    ReconfigDisabled,
    /// -124
    SessionClosedRequireSaslAuth,
    /// -125
    QuotaExceeded,
    /// -127
    Throttled,
    /// Any other number.
    Other(i32),
}

impl ErrorCode {
    /// The wire number.
    pub fn code(self) -> i32 {
        match self {
            ErrorCode::Ok => 0,
            ErrorCode::SystemError => -1,
            ErrorCode::RuntimeInconsistency => -2,
            ErrorCode::DataInconsistency => -3,
            ErrorCode::ConnectionLoss => -4,
            ErrorCode::MarshallingError => -5,
            ErrorCode::Unimplemented => -6,
            ErrorCode::OperationTimeout => -7,
            ErrorCode::BadArguments => -8,
            ErrorCode::UnknownSession => -12,
            ErrorCode::NewConfigNoQuorum => -13,
            ErrorCode::ReconfigInProgress => -14,
            ErrorCode::ApiError => -100,
            ErrorCode::NoNode => -101,
            ErrorCode::NoAuth => -102,
            ErrorCode::BadVersion => -103,
            ErrorCode::NoChildrenForEphemerals => -108,
            ErrorCode::NodeExists => -110,
            ErrorCode::NotEmpty => -111,
            ErrorCode::SessionExpired => -112,
            ErrorCode::InvalidCallback => -113,
            ErrorCode::InvalidAcl => -114,
            ErrorCode::AuthFailed => -115,
            ErrorCode::SessionMoved => -118,
            ErrorCode::NotReadOnly => -119,
            ErrorCode::EphemeralOnLocalSession => -120,
            ErrorCode::NoWatcher => -121,
            ErrorCode::RequestTimeout => -122,
            ErrorCode::ReconfigDisabled => -123,
            ErrorCode::SessionClosedRequireSaslAuth => -124,
            ErrorCode::QuotaExceeded => -125,
            ErrorCode::Throttled => -127,
            ErrorCode::Other(code) => code,
        }
    }

    /// The code for a wire number.
    pub fn from_code(code: i32) -> ErrorCode {
        const KNOWN: [ErrorCode; 31] = [
            ErrorCode::Ok,
            ErrorCode::SystemError,
            ErrorCode::RuntimeInconsistency,
            ErrorCode::DataInconsistency,
            ErrorCode::ConnectionLoss,
            ErrorCode::MarshallingError,
            ErrorCode::Unimplemented,
            ErrorCode::OperationTimeout,
            ErrorCode::BadArguments,
            ErrorCode::UnknownSession,
            ErrorCode::NewConfigNoQuorum,
            ErrorCode::ReconfigInProgress,
            ErrorCode::ApiError,
            ErrorCode::NoNode,
            ErrorCode::NoAuth,
            ErrorCode::BadVersion,
            ErrorCode::NoChildrenForEphemerals,
            ErrorCode::NodeExists,
            ErrorCode::NotEmpty,
            ErrorCode::SessionExpired,
            ErrorCode::InvalidCallback,
            ErrorCode::InvalidAcl,
            ErrorCode::AuthFailed,
            ErrorCode::SessionMoved,
            ErrorCode::NotReadOnly,
            ErrorCode::EphemeralOnLocalSession,
            ErrorCode::NoWatcher,
            ErrorCode::RequestTimeout,
            ErrorCode::ReconfigDisabled,
            ErrorCode::SessionClosedRequireSaslAuth,
            ErrorCode::QuotaExceeded,
        ];
        if code == -127 {
            return ErrorCode::Throttled;
        }
        KNOWN
            .iter()
            .copied()
            .find(|e| e.code() == code)
            .unwrap_or(ErrorCode::Other(code))
    }

    /// ZooKeeper's name for the code, as `KeeperException` prints it (used by the CLI and logs).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::SystemError => "SystemError",
            ErrorCode::RuntimeInconsistency => "RuntimeInconsistency",
            ErrorCode::DataInconsistency => "DataInconsistency",
            ErrorCode::ConnectionLoss => "ConnectionLoss",
            ErrorCode::MarshallingError => "MarshallingError",
            ErrorCode::Unimplemented => "Unimplemented",
            ErrorCode::OperationTimeout => "OperationTimeout",
            ErrorCode::BadArguments => "BadArguments",
            ErrorCode::UnknownSession => "UnknownSession",
            ErrorCode::NewConfigNoQuorum => "NewConfigNoQuorum",
            ErrorCode::ReconfigInProgress => "ReconfigInProgress",
            ErrorCode::ApiError => "APIError",
            ErrorCode::NoNode => "NoNode",
            ErrorCode::NoAuth => "NoAuth",
            ErrorCode::BadVersion => "BadVersion",
            ErrorCode::NoChildrenForEphemerals => "NoChildrenForEphemerals",
            ErrorCode::NodeExists => "NodeExists",
            ErrorCode::NotEmpty => "Directory not empty",
            ErrorCode::SessionExpired => "Session expired",
            ErrorCode::InvalidCallback => "Invalid callback",
            ErrorCode::InvalidAcl => "InvalidACL",
            ErrorCode::AuthFailed => "AuthFailed",
            ErrorCode::SessionMoved => "Session moved",
            ErrorCode::NotReadOnly => "Not a read-only call",
            ErrorCode::EphemeralOnLocalSession => "Ephemeral node on local session",
            ErrorCode::NoWatcher => "No such watcher",
            ErrorCode::RequestTimeout => "Request timeout",
            ErrorCode::ReconfigDisabled => "Reconfig is disabled",
            ErrorCode::SessionClosedRequireSaslAuth => {
                "Session closed because client failed to authenticate"
            }
            ErrorCode::QuotaExceeded => "Quota has exceeded",
            ErrorCode::Throttled => "Op throttled due to high load",
            ErrorCode::Other(_) => "Unknown error",
        }
    }

    /// True for `Ok`.
    pub fn is_ok(self) -> bool {
        self == ErrorCode::Ok
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every opcode maps to its number and back, and unknown numbers are refused.
    #[test]
    fn opcodes_round_trip() {
        for op in OpCode::ALL {
            assert_eq!(OpCode::from_code(op.code()), Some(op));
        }
        assert_eq!(OpCode::from_code(10), None);
        assert_eq!(OpCode::from_code(23), None);
    }

    /// Every known error code maps to its number and back; unknown numbers are kept.
    #[test]
    fn error_codes_round_trip() {
        for code in [
            0, -1, -2, -6, -8, -12, -101, -102, -103, -110, -111, -112, -121, -123, -127,
        ] {
            assert_eq!(ErrorCode::from_code(code).code(), code);
            assert!(!matches!(ErrorCode::from_code(code), ErrorCode::Other(_)));
        }
        assert_eq!(ErrorCode::from_code(-999), ErrorCode::Other(-999));
    }
}
