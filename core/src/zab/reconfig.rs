//! Dynamic reconfiguration in the quorum peer, sans-IO: ZooKeeper's `QuorumPeer.processReconfig`,
//! `setLastSeenQuorumVerifier` and `setQuorumVerifier`, the leader's `getDesignatedLeader`, and the
//! COMMITANDACTIVATE / INFORMANDACTIVATE packet bodies.
//!
//! A peer has a committed configuration (`PeerConfig::verifier` + `config_text`) and, while a reconfig
//! is in flight, a last-seen one ([`Membership`]) learnt from the reconfig PROPOSAL or from NEWLEADER.
//! While both are active every quorum question (epoch acks, NEWLEADER acks, commits, the leader's
//! synced-followers check) needs a quorum of each: that is what keeps two configurations from committing
//! different histories. Activation (the commit of a reconfig, UPTODATE with a newer configuration, a
//! LOOKING server hearing of a newer one) makes a configuration the committed one; the driver persists it
//! (`zoo.cfg.dynamic.<version>`, zoo.cfg's `dynamicConfigFile`) and reconnects to new members.
//!
//! Everything here is a no-op with `reconfigEnabled=false`, as in ZooKeeper.

use std::collections::BTreeSet;
use std::sync::Arc;

use outpost_conf::reconfig::parse_config_text;
use outpost_conf::{QuorumConfig, QuorumSpec};

use crate::ids::ServerId;
use crate::jute::{JuteReader, Record};
use crate::proto::{OpCode, Txn, TxnEntry, TxnHeader};
use crate::tree::prep::ReconfigContext;
use crate::zab::peer::{Peer, PeerAction, RoleState};
use crate::zab::quorum::{QuorumError, QuorumHierarchical, QuorumVerifier};

/// A configuration as the engine uses it: its text (exactly as `/zookeeper/config` and notifications
/// carry it), the parsed membership and the quorum rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The text (`server.N=…` lines and `version=<hex>`).
    pub text: Vec<u8>,
    /// The parsed membership.
    pub config: QuorumConfig,
    /// The quorum rule, with the configuration's version.
    pub verifier: QuorumVerifier,
}

impl Membership {
    /// Parses a configuration text (`QuorumPeer.configFromString`).
    pub fn from_text(text: &[u8]) -> Result<Membership, String> {
        let s = std::str::from_utf8(text).map_err(|e| e.to_string())?;
        let config = parse_config_text(s)?;
        let verifier = verifier_of(&config).map_err(|e| e.to_string())?;
        Ok(Membership {
            text: text.to_vec(),
            config,
            verifier,
        })
    }

    /// The version (the zxid of the reconfig that made it; 0 for a configuration from files only).
    pub fn version(&self) -> i64 {
        self.verifier.version()
    }
}

/// A membership's quorum rule (`QuorumMaj` or `QuorumHierarchical`) with its version.
pub fn verifier_of(membership: &QuorumConfig) -> Result<QuorumVerifier, QuorumError> {
    let voters: BTreeSet<ServerId> = membership.voters().into_iter().map(ServerId).collect();
    let observers: BTreeSet<ServerId> = membership.observers().into_iter().map(ServerId).collect();
    let verifier = match &membership.quorum {
        QuorumSpec::Majority { .. } => QuorumVerifier::majority(voters, observers),
        QuorumSpec::Hierarchical { groups, weights } => {
            let groups = groups
                .iter()
                .map(|(g, m)| (*g, m.iter().copied().map(ServerId).collect()))
                .collect();
            let weights = weights.iter().map(|(s, w)| (ServerId(*s), *w)).collect();
            QuorumVerifier::Hierarchical(QuorumHierarchical::new(
                voters, observers, groups, &weights,
            )?)
        }
    };
    Ok(verifier.with_version(i64::try_from(membership.version).unwrap_or(i64::MAX)))
}

/// COMMITANDACTIVATE's data: the designated leader as a big-endian `long` (`Leader.commitAndActivate`).
pub fn commit_and_activate_data(designated: ServerId) -> Vec<u8> {
    (designated.0 as i64).to_be_bytes().to_vec()
}

/// INFORMANDACTIVATE's data: the designated leader, then the proposal's bytes
/// (`Leader.buildInformAndActivePacket`).
pub fn inform_and_activate_data(designated: ServerId, entry: &[u8]) -> Vec<u8> {
    let mut data = commit_and_activate_data(designated);
    data.extend_from_slice(entry);
    data
}

/// Splits an ACTIVATE packet's data into the designated leader and the rest; `None` when shorter
/// than 8 bytes.
pub fn split_activate_data(data: &[u8]) -> Option<(ServerId, &[u8])> {
    let (head, rest) = data.split_first_chunk::<8>()?;
    let id = i64::from_be_bytes(*head);
    Some((ServerId(u64::try_from(id).ok()?), rest))
}

/// The header of an encoded txn entry, without decoding its body.
fn entry_header(entry: &[u8]) -> Option<TxnHeader> {
    TxnHeader::read(&mut JuteReader::new(entry)).ok()
}

/// The configuration a reconfig txn proposes, if `entry` is one.
pub fn reconfig_membership(entry: &[u8]) -> Option<Membership> {
    let header = entry_header(entry)?;
    if header.ty != OpCode::Reconfig.code() {
        return None;
    }
    match TxnEntry::decode(entry) {
        Ok(TxnEntry {
            txn: Txn::Reconfig(t),
            ..
        }) => {
            let data = t.data.unwrap_or_default();
            match Membership::from_text(&data) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!(
                        "reconfig txn 0x{:x} carries a configuration that does not parse: {e}",
                        header.zxid
                    );
                    None
                }
            }
        }
        _ => None,
    }
}

impl Peer {
    fn reconfig_enabled(&self) -> bool {
        self.cfg.server.prep.reconfig_enabled
    }

    /// The last seen configuration when it is newer than the committed one.
    pub(crate) fn newer_last_seen(&self) -> Option<&Membership> {
        self.last_seen
            .as_ref()
            .filter(|m| m.version() > self.cfg.verifier.version())
    }

    /// The verifiers a quorum must satisfy: the committed one, and the last seen one while newer.
    pub(crate) fn active_verifiers(&self) -> Vec<QuorumVerifier> {
        let mut v = vec![self.cfg.verifier.clone()];
        if let Some(m) = self.newer_last_seen() {
            v.push(m.verifier.clone());
        }
        v
    }

    /// `SyncedLearnerTracker.hasAllQuorums` over the active configurations.
    pub(crate) fn has_all_quorums(&self, set: &BTreeSet<ServerId>) -> bool {
        self.active_verifiers()
            .iter()
            .all(|q| q.contains_quorum(set))
    }

    /// A voter of an active configuration.
    pub(crate) fn is_active_voter(&self, sid: ServerId) -> bool {
        self.active_verifiers().iter().any(|q| q.is_voter(sid))
    }

    /// The text NEWLEADER carries: the last seen configuration (`Leader.lead` sends
    /// `getLastSeenQuorumVerifier`), which lets a new leader finish a reconfig its predecessor began.
    pub(crate) fn newleader_config_text(&self) -> Vec<u8> {
        match self.newer_last_seen() {
            Some(m) => m.text.clone(),
            None => self.cfg.config_text.clone(),
        }
    }

    /// `setLastSeenQuorumVerifier(qv, true)`: remember a proposed configuration, tell the driver (it
    /// writes `zoo.cfg.dynamic.next` and connects to new members), and let elections count it.
    pub(crate) fn set_last_seen(&mut self, m: Membership) {
        if !self.reconfig_enabled() {
            return;
        }
        if self
            .last_seen
            .as_ref()
            .is_some_and(|l| l.version() >= m.version())
            || m.version() <= self.cfg.verifier.version()
        {
            return;
        }
        tracing::info!("last seen configuration is now version {:x}", m.version());
        self.actions.push(PeerAction::ConfigSeen {
            text: m.text.clone(),
        });
        self.election.reconfigure(
            self.cfg.verifier.clone(),
            Some(m.verifier.clone()),
            self.cfg.config_text.clone(),
        );
        self.last_seen = Some(m);
    }

    /// `QuorumPeer.processReconfig`: make `m` the committed configuration if it is newer. Returns
    /// whether the change is major for this server (its learner type changed, it left the
    /// configuration, or its leader changes): the caller then leaves its role (Java throws "changes
    /// proposed in reconfig").
    pub(crate) fn activate(&mut self, m: Membership, designated: Option<ServerId>) -> bool {
        if !self.reconfig_enabled() || m.version() <= self.cfg.verifier.version() {
            return false;
        }
        let my_id = self.cfg.my_id;
        let was_observer = self.cfg.is_observer();
        let was_member = self.cfg.verifier.is_voter(my_id) || was_observer;
        let prev = std::mem::replace(&mut self.cfg.verifier, m.verifier.clone());
        self.cfg.config_text = m.text.clone();
        if self
            .last_seen
            .as_ref()
            .is_some_and(|l| l.version() <= m.version())
        {
            self.last_seen = None;
        }
        tracing::info!(
            "configuration version {:x} is active: voters {:?}, observers {:?}",
            m.version(),
            m.verifier.voters(),
            m.verifier.observers()
        );
        self.election.reconfigure(
            m.verifier.clone(),
            self.last_seen.as_ref().map(|l| l.verifier.clone()),
            m.text.clone(),
        );
        self.actions.push(PeerAction::ConfigActivated {
            text: m.text.clone(),
        });
        let now_observer = self.cfg.is_observer();
        let member = m.verifier.is_voter(my_id) || now_observer;
        if was_member && !member && designated.is_some() {
            // Removed by a committed reconfig: stop serving and stay out until restarted (a server
            // that joins later lists itself in its own configuration).
            tracing::warn!("this server is not in configuration {:x}", m.version());
            self.removed = true;
        } else if member {
            self.removed = false;
        }
        // updateLearnerType: an observer in the new configuration observes, anything else participates.
        let role_change = was_observer != now_observer;
        // updateVote / the leader check without a designated leader.
        let current_leader = self.leader_id();
        let leader_change = match (designated, current_leader) {
            (Some(d), Some(l)) => d != l,
            (None, Some(l)) => !(prev.is_voter(l) && m.verifier.is_voter(l)),
            (_, None) => false,
        };
        role_change || leader_change || self.removed
    }

    /// The hand-off (`QuorumPeer.updateServerState` with `reconfigFlag` set): after a committed reconfig
    /// named `designated` as leader, a member of the new configuration leads (if designated) or
    /// follows / observes it straight away, without an election; discovery still establishes the new
    /// epoch, so this only saves the election's time. Returns false when this server must elect
    /// instead (it was removed, or the designated leader does not vote in the configuration).
    pub(crate) fn take_designated_role(&mut self, designated: ServerId) -> bool {
        let me = self.cfg.my_id;
        let member = self.cfg.verifier.is_voter(me) || self.cfg.is_observer();
        if self.removed || !member || !self.cfg.verifier.is_voter(designated) {
            return false;
        }
        let role = self.election.adopt_leader(designated, self.last_logged);
        tracing::info!("reconfig hand-off: {role:?} server {designated} without an election");
        self.election_resume_at = None;
        self.stats.handoffs += 1;
        match role {
            crate::zab::election::Role::Leading => self.become_leader(),
            crate::zab::election::Role::Following => self.become_learner(designated, false),
            crate::zab::election::Role::Observing => self.become_learner(designated, true),
        }
        true
    }

    /// A LOOKING server heard of a newer configuration in an election notification
    /// (`FastLeaderElection.Messenger`: `processReconfig(rqv, null, null, false)`, then restart the
    /// election if membership changed). Returns whether the election restarted.
    pub(crate) fn on_newer_config(&mut self, from: ServerId, config: &[u8]) -> bool {
        if !self.reconfig_enabled() {
            tracing::warn!(
                "server {from} has a newer configuration, but reconfigEnabled is false; ignoring it"
            );
            return false;
        }
        let m = match Membership::from_text(config) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("configuration from server {from} does not parse: {e}");
                return false;
            }
        };
        let old = self.cfg.verifier.clone();
        let changed =
            old.voters() != m.verifier.voters() || old.observers() != m.verifier.observers();
        let text = m.text.clone();
        self.activate(m, None);
        self.server.init_config(&text, self.cfg.verifier.version());
        if changed && matches!(self.role, RoleState::Looking) {
            tracing::info!("restarting leader election with configuration from server {from}");
            self.restart_election_after_reconfig();
            return true;
        }
        false
    }

    /// What a reconfig request needs from this leader (`isQuorumSynced`'s candidates and the two
    /// versions); refreshed right before the server prepares one.
    pub(crate) fn refresh_reconfig_context(&mut self) {
        let ctx = match &self.role {
            RoleState::Leading(l) if self.reconfig_enabled() => {
                let last_seen = match &self.last_seen {
                    Some(m) => Some(m.config.clone()),
                    None => parse_config_text(&String::from_utf8_lossy(&self.cfg.config_text)).ok(),
                };
                last_seen.map(|last_seen| {
                    let mut synced: BTreeSet<u64> =
                        l.synced_followers().into_iter().map(|s| s.0).collect();
                    synced.insert(self.cfg.my_id.0);
                    Arc::new(ReconfigContext {
                        committed_version: self.cfg.verifier.version(),
                        last_seen,
                        synced,
                        standalone_enabled: self.cfg.standalone_enabled,
                    })
                })
            }
            _ => None,
        };
        self.server.set_reconfig_context(ctx);
    }
}

/// `Leader.getDesignatedLeader`: the leader stays if it votes in the new configuration; otherwise the
/// voter of the new configuration that acked the reconfig and the most proposals after it (the most
/// up to date), smallest sid on ties.
pub(crate) fn designated_leader(
    my_id: ServerId,
    new: &QuorumVerifier,
    reconfig_acks: &BTreeSet<ServerId>,
    later_acks: &[BTreeSet<ServerId>],
) -> ServerId {
    if new.is_voter(my_id) {
        return my_id;
    }
    let mut candidates: BTreeSet<ServerId> = reconfig_acks
        .iter()
        .copied()
        .filter(|s| *s != my_id && new.is_voter(*s))
        .collect();
    let Some(mut best) = candidates.iter().next().copied() else {
        return my_id;
    };
    for acks in later_acks {
        candidates.retain(|s| acks.contains(s));
        match candidates.iter().next() {
            None => return best,
            Some(s) => best = *s,
        }
        if candidates.len() == 1 {
            return best;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> BTreeSet<ServerId> {
        v.iter().map(|i| ServerId(*i)).collect()
    }

    /// ACTIVATE packet bodies are a big-endian long, then (INFORMANDACTIVATE) the proposal bytes.
    #[test]
    fn activate_data_layout() {
        let d = inform_and_activate_data(ServerId(3), &[1, 2, 3]);
        assert_eq!(&d[..8], &[0, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(
            split_activate_data(&d),
            Some((ServerId(3), &[1u8, 2, 3][..]))
        );
        assert_eq!(
            commit_and_activate_data(ServerId(258)),
            vec![0, 0, 0, 0, 0, 0, 1, 2]
        );
        assert_eq!(split_activate_data(&[0; 7]), None);
    }

    /// The leader stays when it votes in the new configuration; otherwise the new voter that acked the
    /// most later proposals takes over.
    #[test]
    fn designated_leader_rules() {
        let new = QuorumVerifier::majority(ids(&[2, 3, 4]), ids(&[]));
        let stay = QuorumVerifier::majority(ids(&[1, 2, 3]), ids(&[]));
        assert_eq!(
            designated_leader(ServerId(1), &stay, &ids(&[1, 2]), &[]),
            ServerId(1)
        );
        assert_eq!(
            designated_leader(
                ServerId(1),
                &new,
                &ids(&[1, 2, 3]),
                &[ids(&[1, 3]), ids(&[1])]
            ),
            ServerId(3)
        );
        assert_eq!(
            designated_leader(ServerId(1), &new, &ids(&[1, 2, 3]), &[]),
            ServerId(2)
        );
    }

    /// A reconfig txn's configuration is recognised from the encoded entry; other txns are not.
    #[test]
    fn recognises_reconfig_entries() {
        let text = b"server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\nserver.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\nversion=100000002";
        let header = TxnHeader {
            client_id: 1,
            cxid: 1,
            zxid: 0x1_0000_0002,
            time: 0,
            ty: OpCode::Reconfig.code(),
        };
        let txn = Txn::Reconfig(crate::proto::txn::SetDataTxn {
            path: "/zookeeper/config".into(),
            data: Some(text.to_vec()),
            version: -1,
        });
        let mut w = crate::jute::JuteWriter::new();
        TxnEntry::encode_parts(&header, &txn, None, &mut w);
        let entry = w.into_inner();
        let m = reconfig_membership(&entry).expect("a reconfig");
        assert_eq!(m.version(), 0x1_0000_0002);
        assert_eq!(m.verifier.voters(), &ids(&[1, 2]));
    }
}
