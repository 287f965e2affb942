//! Quorum verifiers as pure values: ZooKeeper's `QuorumMaj` (more than half of the voters) and
//! `QuorumHierarchical` (a majority of the non-zero-weight groups, each with more than half of its
//! group's weight), with the voter/observer split every quorum question starts from.
//!
//! This module does not parse `zoo.cfg` or render the configuration text: `outpost-conf` does that
//! (its `QuorumSpec` has the same rules over bare `u64` ids) and `zab::reconfig::verifier_of` converts. The
//! election engine only asks four questions: who votes, what weight a candidate has, whether a set
//! of acks is a quorum, and which configuration version is active.

use crate::ids::ServerId;
use std::collections::{BTreeMap, BTreeSet};

/// Why a hierarchical quorum definition was refused (ZooKeeper's `QuorumHierarchical.parse` throws
/// `ConfigException` for the first two; the third would be a `NullPointerException` there).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    /// Every participant must be in a group (`Server N is not in a group`).
    #[error("server {0} is not in a group")]
    VoterWithoutGroup(ServerId),
    /// A server may be in one group only (`Server N is in multiple groups`).
    #[error("server {0} is in multiple groups")]
    InSeveralGroups(ServerId),
    /// Groups hold participants only; an observer or an unknown id in a group is refused.
    #[error("server {0} is in a group but is not a participant")]
    GroupMemberNotVoter(ServerId),
}

/// `QuorumMaj`: a set is a quorum when it holds more than half of the voters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumMaj {
    voters: BTreeSet<ServerId>,
    observers: BTreeSet<ServerId>,
    version: i64,
}

impl QuorumMaj {
    /// A majority verifier over `voters` (participants) with `observers`, version 0.
    pub fn new(
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
    ) -> QuorumMaj {
        let voters: BTreeSet<ServerId> = voters.into_iter().collect();
        let observers = observers
            .into_iter()
            .filter(|o| !voters.contains(o))
            .collect();
        QuorumMaj {
            voters,
            observers,
            version: 0,
        }
    }

    /// `|set ∩ voters| > ⌊|voters| / 2⌋`. Java's `containsQuorum` counts the whole set, but its
    /// callers (`SyncedLearnerTracker.addAck`) only ever add voters; here the filter is built in.
    pub fn contains_quorum(&self, set: &BTreeSet<ServerId>) -> bool {
        let have = set.iter().filter(|s| self.voters.contains(s)).count();
        have > self.voters.len() / 2
    }
}

/// `QuorumHierarchical`: voters are split into groups, each voter has a weight (default 1). A set is
/// a quorum when, in more than half of the groups whose total weight is non-zero, the set holds more
/// than half of that group's weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumHierarchical {
    voters: BTreeSet<ServerId>,
    observers: BTreeSet<ServerId>,
    /// Group id → members (voters only).
    groups: BTreeMap<u64, BTreeSet<ServerId>>,
    /// Voter → weight (every voter has one).
    weights: BTreeMap<ServerId, u64>,
    /// Group id → total weight.
    group_weights: BTreeMap<u64, u64>,
    /// Groups with non-zero weight (Java's `numGroups` after `computeGroupWeight`).
    live_groups: usize,
    version: i64,
}

impl QuorumHierarchical {
    /// A hierarchical verifier. `weights` may omit voters (weight 1, as `weight.N` defaults); weights
    /// of ids that are not voters are ignored. Every voter must be in exactly one group and every
    /// group member must be a voter.
    pub fn new(
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
        groups: BTreeMap<u64, BTreeSet<ServerId>>,
        weights: &BTreeMap<ServerId, u64>,
    ) -> Result<QuorumHierarchical, QuorumError> {
        let voters: BTreeSet<ServerId> = voters.into_iter().collect();
        let observers = observers
            .into_iter()
            .filter(|o| !voters.contains(o))
            .collect();
        let mut seen = BTreeSet::new();
        for members in groups.values() {
            for m in members {
                if !voters.contains(m) {
                    return Err(QuorumError::GroupMemberNotVoter(*m));
                }
                if !seen.insert(*m) {
                    return Err(QuorumError::InSeveralGroups(*m));
                }
            }
        }
        if let Some(v) = voters.iter().find(|v| !seen.contains(v)) {
            return Err(QuorumError::VoterWithoutGroup(*v));
        }
        let weights: BTreeMap<ServerId, u64> = voters
            .iter()
            .map(|v| (*v, weights.get(v).copied().unwrap_or(1)))
            .collect();
        let group_weights: BTreeMap<u64, u64> = groups
            .iter()
            .map(|(g, members)| (*g, members.iter().map(|m| weights[m]).sum()))
            .collect();
        let live_groups = group_weights.values().filter(|w| **w > 0).count();
        Ok(QuorumHierarchical {
            voters,
            observers,
            groups,
            weights,
            group_weights,
            live_groups,
            version: 0,
        })
    }

    /// The groups (id → members).
    pub fn groups(&self) -> &BTreeMap<u64, BTreeSet<ServerId>> {
        &self.groups
    }

    /// Mirrors `QuorumHierarchical.containsQuorum`: an empty set is never a quorum; per group, the
    /// weight of the set's members must exceed half (integer division) of the group's weight; the
    /// number of such groups must exceed half of the non-zero-weight groups.
    pub fn contains_quorum(&self, set: &BTreeSet<ServerId>) -> bool {
        if set.is_empty() {
            return false;
        }
        let mut majority_groups = 0usize;
        for (gid, members) in &self.groups {
            let got: u64 = members
                .iter()
                .filter(|m| set.contains(m))
                .map(|m| self.weights[m])
                .sum();
            if got > self.group_weights[gid] / 2 {
                majority_groups += 1;
            }
        }
        majority_groups > self.live_groups / 2
    }
}

/// The active quorum rule of one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumVerifier {
    /// `QuorumMaj`.
    Majority(QuorumMaj),
    /// `QuorumHierarchical`.
    Hierarchical(QuorumHierarchical),
}

impl QuorumVerifier {
    /// Shorthand for a majority verifier.
    pub fn majority(
        voters: impl IntoIterator<Item = ServerId>,
        observers: impl IntoIterator<Item = ServerId>,
    ) -> QuorumVerifier {
        QuorumVerifier::Majority(QuorumMaj::new(voters, observers))
    }

    /// The same verifier with configuration version `version` (the `version=` of the config text).
    pub fn with_version(mut self, version: i64) -> QuorumVerifier {
        match &mut self {
            QuorumVerifier::Majority(q) => q.version = version,
            QuorumVerifier::Hierarchical(q) => q.version = version,
        }
        self
    }

    /// The configuration version.
    pub fn version(&self) -> i64 {
        match self {
            QuorumVerifier::Majority(q) => q.version,
            QuorumVerifier::Hierarchical(q) => q.version,
        }
    }

    /// The voting members (participants).
    pub fn voters(&self) -> &BTreeSet<ServerId> {
        match self {
            QuorumVerifier::Majority(q) => &q.voters,
            QuorumVerifier::Hierarchical(q) => &q.voters,
        }
    }

    /// The observers.
    pub fn observers(&self) -> &BTreeSet<ServerId> {
        match self {
            QuorumVerifier::Majority(q) => &q.observers,
            QuorumVerifier::Hierarchical(q) => &q.observers,
        }
    }

    /// True for a voting member.
    pub fn is_voter(&self, sid: ServerId) -> bool {
        self.voters().contains(&sid)
    }

    /// A candidate's weight as `totalOrderPredicate` asks for it: `QuorumMaj.getWeight` is 1 for any
    /// id; a hierarchical voter has its `weight.N`, anybody else 0 (Java would throw there, but the
    /// election only asks about voters). A weight-0 server can never be elected.
    pub fn weight(&self, sid: ServerId) -> u64 {
        match self {
            QuorumVerifier::Majority(_) => 1,
            QuorumVerifier::Hierarchical(q) => q.weights.get(&sid).copied().unwrap_or(0),
        }
    }

    /// True when `set` is a quorum; ids that are not voters never count.
    pub fn contains_quorum(&self, set: &BTreeSet<ServerId>) -> bool {
        match self {
            QuorumVerifier::Majority(q) => q.contains_quorum(set),
            QuorumVerifier::Hierarchical(q) => q.contains_quorum(set),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(v: &[u64]) -> BTreeSet<ServerId> {
        v.iter().map(|i| ServerId(*i)).collect()
    }

    /// The install guide's `group.1=1:2:3` with `weight.1..3=1`: any two of the three are a quorum,
    /// one is not, and an observer (4) never helps.
    #[test]
    fn install_guide_hierarchical() {
        let groups = [(1u64, ids(&[1, 2, 3]))].into_iter().collect();
        let weights = [(ServerId(1), 1), (ServerId(2), 1), (ServerId(3), 1)]
            .into_iter()
            .collect();
        let q = QuorumVerifier::Hierarchical(
            QuorumHierarchical::new(ids(&[1, 2, 3]), ids(&[4]), groups, &weights).unwrap(),
        );
        assert!(q.contains_quorum(&ids(&[1, 2])));
        assert!(q.contains_quorum(&ids(&[2, 3])));
        assert!(!q.contains_quorum(&ids(&[3, 4])));
        assert!(!q.contains_quorum(&ids(&[])));
        assert_eq!(q.weight(ServerId(2)), 1);
        assert_eq!(q.weight(ServerId(4)), 0);
        assert_eq!(q.observers(), &ids(&[4]));
    }

    /// Three groups of three plus a zero-weight group: two groups with weight majorities make a
    /// quorum; the zero-weight group neither counts nor helps; a weight-0 voter adds nothing.
    #[test]
    fn hierarchical_groups_and_zero_weights() {
        let groups: BTreeMap<u64, BTreeSet<ServerId>> = [
            (1, ids(&[1, 2, 3])),
            (2, ids(&[4, 5, 6])),
            (3, ids(&[7, 8, 9])),
            (4, ids(&[10])),
        ]
        .into_iter()
        .collect();
        let mut weights: BTreeMap<ServerId, u64> = BTreeMap::new();
        weights.insert(ServerId(10), 0);
        weights.insert(ServerId(1), 2);
        weights.insert(ServerId(3), 0);
        let q = QuorumHierarchical::new(ids(&(1..=10).collect::<Vec<_>>()), [], groups, &weights)
            .unwrap();
        // Group 1 weighs 3 (2+1+0): server 1 alone (2 > 1) is a group majority.
        assert!(q.contains_quorum(&ids(&[1, 4, 5])));
        // Servers 2 and 3 weigh 1 of 3: not a majority of group 1.
        assert!(!q.contains_quorum(&ids(&[2, 3, 4, 5])));
        assert!(!q.contains_quorum(&ids(&[1, 10])));
        assert!(q.contains_quorum(&ids(&[4, 5, 7, 8])));
    }

    /// Definitions ZooKeeper refuses are refused.
    #[test]
    fn hierarchical_validation() {
        let g = |v: &[(u64, &[u64])]| -> BTreeMap<u64, BTreeSet<ServerId>> {
            v.iter().map(|(g, m)| (*g, ids(m))).collect()
        };
        let w = BTreeMap::new();
        assert_eq!(
            QuorumHierarchical::new(ids(&[1, 2]), [], g(&[(1, &[1])]), &w),
            Err(QuorumError::VoterWithoutGroup(ServerId(2)))
        );
        assert_eq!(
            QuorumHierarchical::new(ids(&[1, 2]), [], g(&[(1, &[1, 2]), (2, &[2])]), &w),
            Err(QuorumError::InSeveralGroups(ServerId(2)))
        );
        assert_eq!(
            QuorumHierarchical::new(ids(&[1]), ids(&[2]), g(&[(1, &[1, 2])]), &w),
            Err(QuorumError::GroupMemberNotVoter(ServerId(2)))
        );
    }

    /// A naive restatement of the hierarchical rule, written independently: `2·got > total` per
    /// group and `2·winning > live` across groups, over plain vectors.
    fn naive_hierarchical(
        groups: &[Vec<(u64, u64)>], // per group: (sid, weight)
        set: &BTreeSet<u64>,
    ) -> bool {
        if set.is_empty() {
            return false;
        }
        let mut live = 0u64;
        let mut winning = 0u64;
        for g in groups {
            let total: u64 = g.iter().map(|(_, w)| w).sum();
            if total > 0 {
                live += 1;
            }
            let got: u64 = g
                .iter()
                .filter(|(s, _)| set.contains(s))
                .map(|(_, w)| w)
                .sum();
            if 2 * got > total {
                winning += 1;
            }
        }
        2 * winning > live
    }

    /// Builds `n_groups` groups from (sid → group index, weight) assignments.
    fn build(
        assign: &BTreeMap<u64, (usize, u64)>,
        n_groups: usize,
        observers: &BTreeSet<u64>,
    ) -> (QuorumHierarchical, Vec<Vec<(u64, u64)>>) {
        let mut plain = vec![Vec::new(); n_groups];
        let mut groups: BTreeMap<u64, BTreeSet<ServerId>> = BTreeMap::new();
        let mut weights = BTreeMap::new();
        for (sid, (g, w)) in assign {
            plain[*g].push((*sid, *w));
            groups
                .entry(*g as u64 + 1)
                .or_default()
                .insert(ServerId(*sid));
            weights.insert(ServerId(*sid), *w);
        }
        plain.retain(|g| !g.is_empty());
        let q = QuorumHierarchical::new(
            assign.keys().map(|s| ServerId(*s)),
            observers.iter().map(|s| ServerId(*s)),
            groups,
            &weights,
        )
        .unwrap();
        (q, plain)
    }

    proptest! {
        /// Majority agrees with a naive count of the voters in the set; observers and unknown ids
        /// never count.
        #[test]
        fn majority_matches_naive(voters in proptest::collection::btree_set(0u64..20, 0..12),
                                  observers in proptest::collection::btree_set(20u64..25, 0..4),
                                  set in proptest::collection::btree_set(0u64..30, 0..20)) {
            let q = QuorumVerifier::majority(voters.iter().map(|s| ServerId(*s)),
                                             observers.iter().map(|s| ServerId(*s)));
            let mut n = 0;
            for s in &set {
                if voters.contains(s) { n += 1; }
            }
            let set_ids = set.iter().map(|s| ServerId(*s)).collect();
            prop_assert_eq!(q.contains_quorum(&set_ids), 2 * n > voters.len());
        }

        /// Hierarchical agrees with the naive restatement for random groups, weights (including
        /// zeros), observers and sets.
        #[test]
        fn hierarchical_matches_naive(assign in proptest::collection::btree_map(1u64..16, (0usize..4, 0u64..4), 1..14),
                                      observers in proptest::collection::btree_set(16u64..20, 0..3),
                                      set in proptest::collection::btree_set(1u64..20, 0..18)) {
            let (q, plain) = build(&assign, 4, &observers);
            let set_ids = set.iter().map(|s| ServerId(*s)).collect();
            let voter_set: BTreeSet<u64> = set.iter().copied().filter(|s| assign.contains_key(s)).collect();
            // Java never sees non-voters in an ack set; a set of only non-voters is empty to Java.
            prop_assert_eq!(q.contains_quorum(&set_ids) && !voter_set.is_empty(),
                            naive_hierarchical(&plain, &voter_set));
        }

        /// Quorum intersection, the property election and ZAB safety rest on: any two quorums of
        /// the same verifier share a voter (of non-zero weight, for hierarchical ones).
        #[test]
        fn quorums_intersect(assign in proptest::collection::btree_map(1u64..10, (0usize..3, 0u64..3), 1..9),
                             a in proptest::collection::btree_set(1u64..10, 0..9),
                             b in proptest::collection::btree_set(1u64..10, 0..9)) {
            let (h, _) = build(&assign, 3, &BTreeSet::new());
            let a: BTreeSet<ServerId> = a.iter().map(|s| ServerId(*s)).collect();
            let b: BTreeSet<ServerId> = b.iter().map(|s| ServerId(*s)).collect();
            if h.contains_quorum(&a) && h.contains_quorum(&b) {
                let shared: Vec<_> = a.intersection(&b).filter(|s| h.weights.get(s).copied().unwrap_or(0) > 0).collect();
                prop_assert!(!shared.is_empty());
            }
            let m = QuorumMaj::new(assign.keys().map(|s| ServerId(*s)), []);
            if m.contains_quorum(&a) && m.contains_quorum(&b) {
                prop_assert!(a.intersection(&b).any(|s| assign.contains_key(&s.0)));
            }
        }

        /// Monotonicity: adding servers to a quorum keeps it a quorum.
        #[test]
        fn quorums_are_monotone(assign in proptest::collection::btree_map(1u64..10, (0usize..3, 0u64..3), 1..9),
                                a in proptest::collection::btree_set(1u64..10, 0..9),
                                extra in proptest::collection::btree_set(1u64..12, 0..4)) {
            let (h, _) = build(&assign, 3, &BTreeSet::new());
            let a: BTreeSet<ServerId> = a.iter().map(|s| ServerId(*s)).collect();
            let mut bigger = a.clone();
            bigger.extend(extra.iter().map(|s| ServerId(*s)));
            if h.contains_quorum(&a) {
                prop_assert!(h.contains_quorum(&bigger));
            }
        }

        /// One group of unit weights is exactly a majority of its members.
        #[test]
        fn one_unit_group_is_majority(voters in proptest::collection::btree_set(1u64..20, 1..12),
                                      set in proptest::collection::btree_set(1u64..20, 0..20)) {
            let v: BTreeSet<ServerId> = voters.iter().map(|s| ServerId(*s)).collect();
            let groups = [(1u64, v.clone())].into_iter().collect();
            let h = QuorumHierarchical::new(v.clone(), [], groups, &BTreeMap::new()).unwrap();
            let m = QuorumMaj::new(v, []);
            let set: BTreeSet<ServerId> = set.iter().map(|s| ServerId(*s)).collect();
            prop_assert_eq!(h.contains_quorum(&set), m.contains_quorum(&set));
        }
    }
}
