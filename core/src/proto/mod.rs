//! The ZooKeeper 3.8 wire vocabulary: opcodes, error codes and every jute record of the client protocol,
//! the quorum protocol and the txn log, byte-compatible with Apache ZooKeeper 3.8.
//!
//! Records are plain data with `Record` implementations; nothing here does IO or holds state. The byte
//! layouts are tabulated in `docs/wire.md`.

pub mod field;

pub mod client;
pub mod codes;
pub mod data;
pub mod enums;
pub mod frame;
pub mod quorum;
pub mod quorum_stream;
pub mod txn;

pub use client::{
    decode_reply, decode_request, encode_notification, encode_reply, encode_request,
    ConnectRequest, ConnectResponse, MultiOp, MultiRequest, MultiResponse, MultiResult,
    ReplyHeader, Request, RequestHeader, Response, WatcherEvent,
};
pub use codes::{ErrorCode, OpCode};
pub use data::{perms, Acl, Id, Stat, StatPersisted};
pub use enums::{AddWatchMode, CreateMode, EventType, KeeperState, WatcherType};
pub use frame::{decode_frame, encode_frame, four_letter_word, FourLetterWord, FrameResult};
pub use quorum::{
    ElectionHandshake, LearnerInfo, Notification, PacketType, QuorumPacket, ServerState,
};
pub use quorum_stream::{encode_packet, encode_snapshot_stream, QuorumItem, QuorumStreamDecoder};
pub use txn::{Txn, TxnDigest, TxnEntry, TxnHeader};

#[cfg(test)]
mod quorum_stream_tests;

/// Test helper shared by the record modules' golden tests.
#[cfg(test)]
mod test_hex {
    /// Decodes a hex string (whitespace ignored), as the spec's golden vectors are written.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("valid hex in a test vector"))
            .collect()
    }
}
