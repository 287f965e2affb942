//! Election votes as ZooKeeper's `Vote` class holds them, with its peculiar equality, and the total
//! order of candidates (`FastLeaderElection.totalOrderPredicate`).
//!
//! Fields stay the wire's signed 64-bit values: an observer's vote is `i64::MIN` in every field and an
//! untrusted empty database votes zxid -1, neither of which fits the typed ids. The engine converts
//! to `ServerId`/`Zxid` at its output, where the values are known to be real.

use crate::proto::quorum::{Notification, ServerState};

/// A candidate as the vote order sees it: `(peerEpoch, zxid, sid)`, compared in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The proposed leader's sid (`i64::MIN` for "nobody", an observer's initial vote).
    pub leader: i64,
    /// The candidate's last logged zxid.
    pub zxid: i64,
    /// The candidate's current epoch (`peerEpoch`), not the election round.
    pub peer_epoch: i64,
}

impl Candidate {
    /// The vote no candidate loses to: an observer's (or a non-voting participant's) initial vote.
    pub const NOBODY: Candidate = Candidate {
        leader: i64::MIN,
        zxid: i64::MIN,
        peer_epoch: i64::MIN,
    };

    /// `totalOrderPredicate` without its weight check: `self` beats `current` when its epoch is
    /// higher, or the epochs tie and its zxid is higher, or both tie and its sid is higher.
    pub fn beats(&self, current: &Candidate) -> bool {
        (self.peer_epoch, self.zxid, self.leader)
            > (current.peer_epoch, current.zxid, current.leader)
    }
}

/// `Vote`: a candidate plus the round it was cast in, the voter's state and its message version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vote {
    /// The proposed leader.
    pub leader: i64,
    /// The candidate's zxid.
    pub zxid: i64,
    /// The round (logical clock) of the election that produced the vote.
    pub election_epoch: i64,
    /// The candidate's epoch.
    pub peer_epoch: i64,
    /// The voter's state when it sent the vote.
    pub state: ServerState,
    /// The notification format version (0 when built locally, as Java's 4- and 5-argument
    /// constructors do).
    pub version: i32,
}

impl Vote {
    /// `new Vote(id, zxid, electionEpoch, peerEpoch)`: state LOOKING, version 0.
    pub fn looking(leader: i64, zxid: i64, election_epoch: i64, peer_epoch: i64) -> Vote {
        Vote {
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            state: ServerState::Looking,
            version: 0,
        }
    }

    /// The vote a notification carries, with its state and version.
    pub fn from_notification(n: &Notification) -> Vote {
        Vote {
            leader: n.leader,
            zxid: n.zxid,
            election_epoch: n.election_epoch,
            peer_epoch: n.peer_epoch,
            state: n.state,
            version: n.version,
        }
    }

    /// The candidate part.
    pub fn candidate(&self) -> Candidate {
        Candidate {
            leader: self.leader,
            zxid: self.zxid,
            peer_epoch: self.peer_epoch,
        }
    }

    /// `Vote.equals`, which is what vote tallies count with: if either vote is LOOKING, all four
    /// numbers must match; otherwise (both out of election) only the leader, and the peer epoch too
    /// unless exactly one of the two has format version 0 (ZOOKEEPER-1732/1805: a follower's zxid and
    /// round drift after it syncs, so they are not compared).
    pub fn java_equals(&self, other: &Vote) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            self.leader == other.leader
                && self.zxid == other.zxid
                && self.election_epoch == other.election_epoch
                && self.peer_epoch == other.peer_epoch
        } else if (self.version > 0) ^ (other.version > 0) {
            self.leader == other.leader
        } else {
            self.leader == other.leader && self.peer_epoch == other.peer_epoch
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The order is epoch first, then zxid, then sid; it is strict (nothing beats itself).
    #[test]
    fn order_examples() {
        let c = |leader, zxid, peer_epoch| Candidate {
            leader,
            zxid,
            peer_epoch,
        };
        assert!(c(1, 0, 2).beats(&c(3, 0x1_0000_0009, 1)));
        assert!(c(1, 0x1_0000_0002, 1).beats(&c(3, 0x1_0000_0001, 1)));
        assert!(c(3, 5, 1).beats(&c(2, 5, 1)));
        assert!(!c(3, 5, 1).beats(&c(3, 5, 1)));
        assert!(c(1, -1, 0).beats(&Candidate::NOBODY));
    }

    /// `Vote.equals` cases: LOOKING compares all four numbers; out-of-election votes compare the
    /// leader and peer epoch, or only the leader across format versions 0 and >0.
    #[test]
    fn java_equality() {
        let a = Vote::looking(3, 10, 2, 1);
        assert!(a.java_equals(&a));
        assert!(!a.java_equals(&Vote {
            election_epoch: 3,
            ..a
        }));
        let f = Vote {
            state: ServerState::Following,
            version: 2,
            ..a
        };
        assert!(!f.java_equals(&Vote { zxid: 11, ..a }));
        let l = Vote {
            state: ServerState::Leading,
            zxid: 99,
            election_epoch: 7,
            ..f
        };
        assert!(f.java_equals(&l));
        assert!(!f.java_equals(&Vote { peer_epoch: 4, ..l }));
        assert!(f.java_equals(&Vote {
            peer_epoch: 4,
            version: 0,
            ..l
        }));
    }

    proptest! {
        /// The candidate order is a strict total order agreeing with the Java predicate written out
        /// literally.
        #[test]
        fn order_matches_java(a in (-2i64..4, -2i64..4, -2i64..4), b in (-2i64..4, -2i64..4, -2i64..4)) {
            let (new_id, new_zxid, new_epoch) = a;
            let (cur_id, cur_zxid, cur_epoch) = b;
            let java = (new_epoch > cur_epoch)
                || ((new_epoch == cur_epoch)
                    && ((new_zxid > cur_zxid) || ((new_zxid == cur_zxid) && (new_id > cur_id))));
            let x = Candidate { leader: new_id, zxid: new_zxid, peer_epoch: new_epoch };
            let y = Candidate { leader: cur_id, zxid: cur_zxid, peer_epoch: cur_epoch };
            prop_assert_eq!(x.beats(&y), java);
            prop_assert!(!(x.beats(&y) && y.beats(&x)));
            prop_assert!(x.beats(&y) || y.beats(&x) || x == y);
        }
    }
}
