//! Typed identifiers: zxid, epoch, server id, session id, xid.
//!
//! ZooKeeper passes all of these around as bare Java `long`s and `int`s; here each has its own type so two
//! of them can never be swapped. The wire representation is kept (a zxid is a signed 64-bit value on every
//! wire and in every file), and conversions are explicit.

use std::fmt;

/// Epoch: the high 32 bits of a zxid, incremented by every newly established leader.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Epoch(pub u32);

/// Transaction id: `(epoch << 32) | counter`, signed 64-bit as on the wire.
///
/// Counter 0 of an epoch is never a real transaction (it is the NEWLEADER zxid); a counter of `u32::MAX`
/// is never handed out: the leader must move to a new epoch instead (see [`Zxid::next`]).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Zxid(pub i64);

impl Zxid {
    /// The zxid ZooKeeper uses for "nothing logged yet" in election votes.
    pub const NONE: Zxid = Zxid(-1);
    /// The zxid of an empty database.
    pub const ZERO: Zxid = Zxid(0);

    /// Builds a zxid from its epoch and counter halves.
    pub fn new(epoch: Epoch, counter: u32) -> Zxid {
        Zxid(((u64::from(epoch.0) << 32) | u64::from(counter)) as i64)
    }

    /// The high 32 bits.
    pub fn epoch(self) -> Epoch {
        Epoch(((self.0 as u64) >> 32) as u32)
    }

    /// The low 32 bits.
    pub fn counter(self) -> u32 {
        (self.0 as u64 & 0xffff_ffff) as u32
    }

    /// The next zxid in the same epoch, or `None` when the counter is exhausted and the leader must force a
    /// new epoch (ZooKeeper's `Leader.propose` abdicates at counter `0xffffffff` rather than wrapping).
    pub fn next(self) -> Option<Zxid> {
        let counter = self.counter().checked_add(1)?;
        if counter == u32::MAX {
            return None;
        }
        Some(Zxid::new(self.epoch(), counter))
    }
}

impl fmt::Debug for Zxid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zxid({self})")
    }
}

impl fmt::Display for Zxid {
    // Hex, like ZooKeeper's own logs (`0x100000002`), so operators can compare the two.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A server's id: the number in its `myid` file and in its `server.N` line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerId(pub u64);

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A client session id. ZooKeeper puts the creating server's id in the top byte (see
/// [`SessionId::initial_for_server`]) so ids from different servers never collide.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub i64);

impl SessionId {
    /// The first session id a server hands out, as ZooKeeper's `SessionTrackerImpl.initializeNextSessionId`
    /// computes it: the current time in ms shifted left 24 then logically right 8, with the server id in the
    /// top byte. `now_ms` is an input so this stays deterministic.
    pub fn initial_for_server(server: ServerId, now_ms: i64) -> SessionId {
        let next = ((now_ms << 24) as u64) >> 8;
        SessionId((next | (server.0 << 56)) as i64)
    }

    /// The server that created the session: the top byte of the id
    /// (`LeaderSessionTracker.getServerIdFromSessionId`). Read unsigned, so ids of servers 128..=255 come
    /// back as themselves (Java's signed shift makes them negative and never equal to a `myid`).
    pub fn server(self) -> ServerId {
        ServerId((self.0 as u64) >> 56)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// A client request's sequence number within its session. Negative values are reserved
/// (see [`Xid::NOTIFICATION`] and friends).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Xid(pub i32);

impl Xid {
    /// Watch notifications.
    pub const NOTIFICATION: Xid = Xid(-1);
    /// Pings.
    pub const PING: Xid = Xid(-2);
    /// Auth packets.
    pub const AUTH: Xid = Xid(-4);
    /// setWatches / setWatches2.
    pub const SET_WATCHES: Xid = Xid(-8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Epoch and counter split and join without loss, including the sign bit of the epoch.
    #[test]
    fn zxid_halves_round_trip() {
        let z = Zxid::new(Epoch(0x8000_0001), 7);
        assert_eq!(z.epoch(), Epoch(0x8000_0001));
        assert_eq!(z.counter(), 7);
        assert!(z.0 < 0);
        assert_eq!(format!("{}", Zxid::new(Epoch(1), 2)), "0x100000002");
    }

    /// The counter never reaches 0xffffffff: `next` reports exhaustion so a new epoch is forced.
    #[test]
    fn zxid_counter_exhaustion_is_explicit() {
        assert_eq!(Zxid::new(Epoch(3), 5).next(), Some(Zxid::new(Epoch(3), 6)));
        assert_eq!(Zxid::new(Epoch(3), u32::MAX - 1).next(), None);
        assert_eq!(Zxid::new(Epoch(3), u32::MAX).next(), None);
    }

    /// Session ids carry the server id in the top byte.
    #[test]
    fn session_id_has_server_in_top_byte() {
        let s = SessionId::initial_for_server(ServerId(3), 1_700_000_000_000);
        assert_eq!((s.0 as u64) >> 56, 3);
        assert_ne!(s.0 & 0x00ff_ffff_ffff_ffff, 0);
        assert_eq!(s.server(), ServerId(3));
        let high = SessionId::initial_for_server(ServerId(200), 1_700_000_000_000);
        assert!(high.0 < 0, "server 200 sets the sign bit");
        assert_eq!(high.server(), ServerId(200));
    }
}
