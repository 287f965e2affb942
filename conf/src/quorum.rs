//! Membership and quorums: the `server.N`, `group.G`, `weight.N` and `version` keys, ZooKeeper's
//! `QuorumMaj` and `QuorumHierarchical` rules, and the configuration text ("QuorumVerifier string")
//! stored in `/zookeeper/config` and sent in election notifications.

use crate::server::{Role, ServerSpec};
use std::collections::{BTreeMap, BTreeSet};

/// How a set of servers is judged to be a quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumSpec {
    /// `QuorumMaj`: more than half of the voters.
    Majority {
        /// The voting members (participants).
        voters: BTreeSet<u64>,
    },
    /// `QuorumHierarchical`: more than half of the (non-zero-weight) groups each have more than half
    /// of their weight in the set.
    Hierarchical {
        /// Group id → member server ids.
        groups: BTreeMap<u64, BTreeSet<u64>>,
        /// Server id → weight (every participant has one; default 1).
        weights: BTreeMap<u64, u64>,
    },
}

impl QuorumSpec {
    /// "majority" or "hierarchical".
    pub fn kind(&self) -> &'static str {
        match self {
            QuorumSpec::Majority { .. } => "majority",
            QuorumSpec::Hierarchical { .. } => "hierarchical",
        }
    }

    /// True when `acks` (server ids) forms a quorum, with ZooKeeper's semantics. Ids that are not
    /// voters (observers, unknown ids) never count.
    pub fn is_quorum(&self, acks: &BTreeSet<u64>) -> bool {
        match self {
            QuorumSpec::Majority { voters } => {
                let have = acks.intersection(voters).count();
                have > voters.len() / 2
            }
            QuorumSpec::Hierarchical { groups, weights } => {
                if acks.is_empty() {
                    return false;
                }
                let weight = |sid: &u64| weights.get(sid).copied().unwrap_or(0);
                let mut live_groups = 0usize;
                let mut majority_groups = 0usize;
                for members in groups.values() {
                    let total: u64 = members.iter().map(weight).sum();
                    if total == 0 {
                        continue;
                    }
                    live_groups += 1;
                    let got: u64 = members
                        .iter()
                        .filter(|s| acks.contains(s))
                        .map(weight)
                        .sum();
                    if got > total / 2 {
                        majority_groups += 1;
                    }
                }
                majority_groups > live_groups / 2
            }
        }
    }
}

/// A full membership: servers, quorum rule and configuration version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// All members by id.
    pub servers: BTreeMap<u64, ServerSpec>,
    /// The quorum rule.
    pub quorum: QuorumSpec,
    /// The configuration version (hex in files and text).
    pub version: u64,
}

impl QuorumConfig {
    /// Ids of the voting members.
    pub fn voters(&self) -> BTreeSet<u64> {
        self.servers
            .values()
            .filter(|s| s.role == Role::Participant)
            .map(|s| s.id)
            .collect()
    }

    /// Ids of the observers.
    pub fn observers(&self) -> BTreeSet<u64> {
        self.servers
            .values()
            .filter(|s| s.role == Role::Observer)
            .map(|s| s.id)
            .collect()
    }

    /// The configuration text exactly as `QuorumMaj.toString` / `QuorumHierarchical.toString` print it:
    /// `server.N=…\n` lines (ascending id), for hierarchical quorums `group.G=a:b:c\n` and
    /// `weight.N=w\n` lines, then `version=<hex>` with no trailing newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in self.servers.values() {
            out.push_str(&format!("server.{}={}\n", s.id, s.render()));
        }
        if let QuorumSpec::Hierarchical { groups, weights } = &self.quorum {
            for (gid, members) in groups {
                let list: Vec<String> = members.iter().map(u64::to_string).collect();
                out.push_str(&format!("group.{gid}={}\n", list.join(":")));
            }
            for (sid, w) in weights {
                out.push_str(&format!("weight.{sid}={w}\n"));
            }
        }
        out.push_str(&format!("version={:x}", self.version));
        out
    }

    /// The dynamic file as `QuorumPeerConfig.writeDynamicConfig` writes it: the lines of
    /// [`QuorumConfig::render`] sorted as strings, joined by `\n` with no trailing newline; the
    /// `version` line only when `keep_version` (the `.dynamic.next` file).
    pub fn render_dynamic_file(&self, keep_version: bool) -> String {
        let text = self.render();
        let mut lines: Vec<&str> = text
            .lines()
            .filter(|l| keep_version || !l.starts_with("version"))
            .collect();
        lines.sort_unstable();
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn maj(voters: &[u64]) -> QuorumSpec {
        QuorumSpec::Majority {
            voters: voters.iter().copied().collect(),
        }
    }

    fn set(ids: &[u64]) -> BTreeSet<u64> {
        ids.iter().copied().collect()
    }

    /// Majority: 2 of 3 and 3 of 5 are quorums, 1 of 3 and 2 of 4 are not; non-voters never count.
    #[test]
    fn majority_examples() {
        assert!(maj(&[1, 2, 3]).is_quorum(&set(&[1, 2])));
        assert!(!maj(&[1, 2, 3]).is_quorum(&set(&[3])));
        assert!(!maj(&[1, 2, 3, 4]).is_quorum(&set(&[1, 2])));
        assert!(maj(&[1, 2, 3, 4, 5]).is_quorum(&set(&[1, 3, 5])));
        assert!(!maj(&[1, 2, 3]).is_quorum(&set(&[1, 7, 8])));
    }

    /// Hierarchical: a majority of groups, each with a weight majority; zero-weight groups are ignored.
    #[test]
    fn hierarchical_examples() {
        let groups: BTreeMap<u64, BTreeSet<u64>> = [
            (1, set(&[1, 2, 3])),
            (2, set(&[4, 5, 6])),
            (3, set(&[7, 8, 9])),
            (4, set(&[10])),
        ]
        .into_iter()
        .collect();
        let mut weights: BTreeMap<u64, u64> = (1..=10).map(|s| (s, 1)).collect();
        weights.insert(10, 0);
        let q = QuorumSpec::Hierarchical { groups, weights };
        // Groups 1 and 2 have majorities: 2 of 3 live groups.
        assert!(q.is_quorum(&set(&[1, 2, 4, 5])));
        // Only group 1 has a majority.
        assert!(!q.is_quorum(&set(&[1, 2, 3, 4, 7])));
        // The zero-weight group never helps.
        assert!(!q.is_quorum(&set(&[1, 2, 10])));
        assert!(!q.is_quorum(&set(&[])));
    }

    /// The configuration text matches `QuorumMaj.toString` byte for byte.
    #[test]
    fn render_majority_text() {
        let mut servers = BTreeMap::new();
        let s1 = ServerSpec::parse(1, "127.0.0.1:2888:3888:participant;2181", false).expect("ok");
        let mut s2 = ServerSpec::parse(2, "127.0.0.1:2889:3889", false).expect("ok");
        s2.client = Some(crate::server::HostPort {
            host: "0.0.0.0".into(),
            port: 2182,
        });
        s2.client_from_static = true;
        servers.insert(1, s1);
        servers.insert(2, s2);
        let qc = QuorumConfig {
            servers,
            quorum: maj(&[1, 2]),
            version: 0x100000000,
        };
        assert_eq!(
            qc.render(),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.1:2889:3889:participant\nversion=100000000"
        );
        assert_eq!(
            qc.render_dynamic_file(false),
            "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
             server.2=127.0.0.1:2889:3889:participant"
        );
    }

    proptest! {
        /// Majority agrees with a naive count of voters in the set, for any voters and any ack set.
        #[test]
        fn majority_matches_naive(voters in proptest::collection::btree_set(0u64..20, 0..12),
                                  acks in proptest::collection::btree_set(0u64..25, 0..20)) {
            let q = QuorumSpec::Majority { voters: voters.clone() };
            let naive = {
                let mut n = 0;
                for a in &acks {
                    if voters.contains(a) { n += 1; }
                }
                2 * n > voters.len()
            };
            prop_assert_eq!(q.is_quorum(&acks), naive);
        }

        /// A hierarchical quorum with one group of unit weights is exactly a majority of that group.
        #[test]
        fn one_group_is_majority(voters in proptest::collection::btree_set(1u64..20, 1..12),
                                 acks in proptest::collection::btree_set(1u64..20, 0..20)) {
            let groups = [(1u64, voters.clone())].into_iter().collect();
            let weights = voters.iter().map(|&v| (v, 1u64)).collect();
            let h = QuorumSpec::Hierarchical { groups, weights };
            let m = QuorumSpec::Majority { voters };
            prop_assert_eq!(h.is_quorum(&acks), m.is_quorum(&acks));
        }
    }
}
