//! Exact-output tests of the fast leader election engine: one input, the whole outbox asserted
//! (openraft style), each case citing the `FastLeaderElection` rule it pins down.

use outpost_core::ids::{ServerId, Zxid};
use outpost_core::proto::frame::encode_frame;
use outpost_core::proto::quorum::{Notification, ServerState};
use outpost_core::zab::election::{
    config_version, Action, Election, ElectionConfig, LearnerType, LocalState, Outbox, Role, Tally,
};
use outpost_core::zab::quorum::{QuorumHierarchical, QuorumVerifier};
use std::collections::{BTreeMap, BTreeSet};

const CONFIG: &[u8] = b"server.1=127.0.0.1:2888:3888:participant\nversion=0";

fn sids(v: &[u64]) -> Vec<ServerId> {
    v.iter().map(|s| ServerId(*s)).collect()
}

fn set(v: &[u64]) -> BTreeSet<ServerId> {
    v.iter().map(|s| ServerId(*s)).collect()
}

fn engine(me: u64, voters: &[u64], observers: &[u64]) -> Election {
    let q = QuorumVerifier::majority(sids(voters), sids(observers));
    Election::new(ElectionConfig::new(ServerId(me), q, CONFIG.to_vec()))
}

fn local(zxid: i64, epoch: i64) -> LocalState {
    LocalState {
        last_logged_zxid: Zxid(zxid),
        current_epoch: epoch,
    }
}

fn note(state: ServerState, leader: i64, zxid: i64, round: i64, epoch: i64) -> Notification {
    Notification {
        state,
        leader,
        zxid,
        election_epoch: round,
        peer_epoch: epoch,
        version: 2,
        config: CONFIG.to_vec(),
    }
}

fn looking(leader: i64, zxid: i64, round: i64, epoch: i64) -> Notification {
    note(ServerState::Looking, leader, zxid, round, epoch)
}

fn broadcast(to: &[u64], n: Notification) -> Action {
    Action::Broadcast {
        to: sids(to),
        notification: n,
    }
}

fn send(to: u64, n: Notification) -> Action {
    Action::Send {
        to: ServerId(to),
        notification: n,
    }
}

fn actions(out: Outbox) -> Vec<Action> {
    out.actions
}

/// `lookForLeader` start: the round becomes 1, the proposal is (myid, lastLoggedZxid,
/// currentEpoch), and it goes to every other voter (this server's copy is looped back, not sent).
#[test]
fn start_proposes_self_to_every_voter() {
    let mut e = engine(1, &[1, 2, 3], &[4]);
    let out = e.start(0, local(0x1_0000_0005, 1));
    assert_eq!(
        actions(out),
        vec![broadcast(&[2, 3], looking(1, 0x1_0000_0005, 1, 1))]
    );
    assert_eq!(e.logical_clock(), 1);
    assert_eq!(e.tally_members(), set(&[1]));
    assert_eq!(e.next_deadline(), Some(200));
}

/// The broadcast notification is byte for byte the A.7 frame captured from ZooKeeper 3.8 (sid 1,
/// zxid 0x100000005, round 1, peer epoch 1, version 2, that config text).
#[test]
fn notification_bytes_match_zookeeper() {
    let config = b"server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nversion=0";
    let q = QuorumVerifier::majority(sids(&[1, 2, 3]), []);
    let mut e = Election::new(ElectionConfig::new(ServerId(1), q, config.to_vec()));
    let out = e.start(0, local(0x1_0000_0005, 1));
    let Action::Broadcast { notification, .. } = &out.actions[0] else {
        panic!("expected a broadcast: {out:?}");
    };
    let frame = encode_frame(&notification.to_bytes());
    let mut golden = hex("0000006d 00000000 0000000000000001 0000000100000005 0000000000000001 0000000000000001 00000002 00000041");
    golden.extend_from_slice(config);
    assert_eq!(frame, golden);
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A better vote in the same round is adopted and re-broadcast (`totalOrderPredicate`: epoch,
/// then zxid, then sid); a worse one is only recorded.
#[test]
fn better_vote_is_adopted() {
    let mut e = engine(1, &[1, 2, 3], &[]);
    let _ = e.start(0, local(5, 0));
    // Same epoch and zxid, higher sid: better.
    let out = e.receive(ServerId(3), looking(3, 5, 1, 0), 10);
    assert_eq!(actions(out), vec![broadcast(&[2, 3], looking(3, 5, 1, 0))]);
    // Higher sid but lower zxid: worse, nothing to send.
    let out = e.receive(ServerId(2), looking(2, 4, 1, 0), 20);
    assert!(out.is_empty());
    // A higher epoch beats a higher zxid.
    let out = e.receive(ServerId(2), looking(2, 1, 1, 1), 30);
    assert_eq!(actions(out), vec![broadcast(&[2, 3], looking(2, 1, 1, 1))]);
}

/// A LOOKING peer in an older round gets this server's proposal back (`WorkerReceiver`) and its
/// vote is ignored.
#[test]
fn lagging_round_gets_a_reply() {
    let mut e = engine(2, &[1, 2, 3], &[]);
    let _ = e.start(0, local(7, 0));
    let _ = e.receive(ServerId(3), looking(3, 7, 4, 0), 5);
    assert_eq!(e.logical_clock(), 4);
    let out = e.receive(ServerId(1), looking(1, 9, 2, 0), 6);
    assert_eq!(actions(out), vec![send(1, looking(3, 7, 4, 0))]);
    assert_eq!(e.proposal().leader, 3);
    assert!(!e.tally_members().contains(&ServerId(1)));
}

/// A newer round resets the tally and the proposal becomes the better of the sender's vote and
/// this server's *initial* vote, not its current proposal.
#[test]
fn newer_round_restarts_from_initial_vote() {
    let mut e = engine(2, &[1, 2, 3, 4, 5], &[]);
    let _ = e.start(0, local(7, 0));
    let _ = e.receive(ServerId(3), looking(3, 7, 1, 0), 5);
    assert_eq!(e.proposal().leader, 3);
    // Round 5 brings a vote for 1 with the same zxid: worse than 2's own initial vote.
    let out = e.receive(ServerId(1), looking(1, 7, 5, 0), 6);
    assert_eq!(
        actions(out),
        vec![broadcast(&[1, 3, 4, 5], looking(2, 7, 5, 0))]
    );
    assert_eq!(e.logical_clock(), 5);
    assert_eq!(e.tally_members(), set(&[1, 2]));
}

/// A quorum agreeing with the proposal starts the 200 ms finalize wait; a notification that does
/// not beat the proposal is consumed and restarts the wait; when it expires the election ends.
#[test]
fn finalize_wait() {
    let mut e = engine(3, &[1, 2, 3], &[]);
    let _ = e.start(0, local(0, 0));
    assert!(e.receive(ServerId(2), looking(3, 0, 1, 0), 10).is_empty());
    assert!(e.is_finalizing());
    assert_eq!(e.next_deadline(), Some(210));
    assert!(e.tick(209).is_empty());
    // A worse vote during the wait: dropped, wait restarts.
    assert!(e.receive(ServerId(1), looking(1, 0, 1, 0), 150).is_empty());
    assert_eq!(e.stats().dropped_in_finalize, 1);
    assert!(e.tick(349).is_empty());
    let out = e.tick(350);
    let elected = out.elected().expect("elected").clone();
    assert_eq!(
        (
            elected.leader,
            elected.role,
            elected.tally,
            elected.election_epoch
        ),
        (ServerId(3), Role::Leading, Tally::Round, 1)
    );
    assert_eq!(elected.supporters, set(&[2, 3]));
    assert_eq!(e.state(), ServerState::Leading);
    assert_eq!(e.next_deadline(), None);
}

/// A better vote during the finalize wait cancels it and is handled as usual.
#[test]
fn better_vote_cancels_finalize() {
    let mut e = engine(2, &[1, 2, 3], &[]);
    let _ = e.start(0, local(0, 0));
    let _ = e.receive(ServerId(1), looking(2, 0, 1, 0), 10);
    assert!(e.is_finalizing());
    let out = e.receive(ServerId(3), looking(3, 0, 1, 0), 50);
    assert_eq!(actions(out), vec![broadcast(&[1, 3], looking(3, 0, 1, 0))]);
    // 3's vote and 2's own new one are a quorum again: a fresh wait for the new proposal.
    assert_eq!(e.proposal().leader, 3);
    assert_eq!(e.next_deadline(), Some(250));
    let out = e.tick(250);
    let elected = out.elected().expect("elected");
    assert_eq!(
        (elected.leader, elected.role),
        (ServerId(3), Role::Following)
    );
    assert_eq!(elected.supporters, set(&[2, 3]));
}

/// With no messages the engine resends at 200 ms, then doubles the timeout up to 60 s.
#[test]
fn notification_timeout_doubles_to_sixty_seconds() {
    let mut e = engine(1, &[1, 2, 3], &[]);
    let _ = e.start(0, local(0, 0));
    let mut deadlines = Vec::new();
    for _ in 0..12 {
        let at = e.next_deadline().unwrap();
        deadlines.push(at);
        let out = e.tick(at);
        assert_eq!(actions(out), vec![broadcast(&[2, 3], looking(1, 0, 1, 0))]);
    }
    let gaps: Vec<u64> = deadlines.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        vec![400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000]
    );
    assert_eq!(e.stats().timeouts, 12);
}

/// A single voter elects itself after the finalize wait.
#[test]
fn single_voter_leads() {
    let mut e = engine(1, &[1], &[]);
    assert!(e.start(0, local(0, 0)).is_empty());
    assert!(e.is_finalizing());
    let out = e.tick(200);
    assert_eq!(out.elected().map(|x| x.role), Some(Role::Leading));
}

/// An observer proposes nobody (`i64::MIN` in every field) to the voters only, and finishes
/// OBSERVING through the out-of-election tally once the leader's own LEADING vote and a quorum of
/// matching votes arrive.
#[test]
fn observer_joins_through_out_of_election() {
    let mut e = engine(4, &[1, 2, 3], &[4]);
    assert_eq!(e.config().learner_type, LearnerType::Observer);
    let out = e.start(0, local(9, 1));
    assert_eq!(
        actions(out),
        vec![broadcast(
            &[1, 2, 3],
            looking(i64::MIN, i64::MIN, 1, i64::MIN)
        )]
    );
    assert!(e
        .receive(ServerId(2), note(ServerState::Following, 3, 9, 4, 2), 5)
        .is_empty());
    let out = e.receive(ServerId(3), note(ServerState::Leading, 3, 9, 4, 2), 6);
    let elected = out.elected().expect("elected");
    assert_eq!(
        (elected.leader, elected.role, elected.tally),
        (ServerId(3), Role::Observing, Tally::OutOfElection)
    );
    assert_eq!(elected.supporters, set(&[2, 3]));
    assert_eq!(e.logical_clock(), 4);
}

/// A voter answers a non-voter at once with its current vote, this round and its state, and never
/// tallies it (§9 #26).
#[test]
fn voter_answers_observer_without_tallying() {
    let mut e = engine(1, &[1, 2, 3], &[4]);
    let _ = e.start(0, local(0x2_0000_0001, 2));
    let out = e.receive(ServerId(4), looking(i64::MIN, i64::MIN, 1, i64::MIN), 5);
    // Before any election ended the current vote is this server's own (startLeaderElection),
    // with round -1 replaced by the logical clock.
    assert_eq!(actions(out), vec![send(4, looking(1, 0x2_0000_0001, 1, 2))]);
    assert!(!e.tally_members().contains(&ServerId(4)));
}

/// An untrusted empty database (zxid -1) neither accepts LOOKING votes nor gets its own counted
/// (§9 #27); it still joins a running leader out of election.
#[test]
fn untrusted_empty_database() {
    let mut e = engine(1, &[1, 2, 3], &[]);
    let _ = e.start(0, local(-1, 0));
    assert!(e.receive(ServerId(3), looking(3, 5, 1, 0), 5).is_empty());
    assert!(e.tally_members().is_empty());
    let mut other = engine(2, &[1, 2, 3], &[]);
    let _ = other.start(0, local(5, 0));
    assert!(other
        .receive(ServerId(1), looking(1, -1, 1, 0), 5)
        .is_empty());
    assert_eq!(other.tally_members(), set(&[2]));
    let _ = e.receive(ServerId(2), note(ServerState::Following, 3, 5, 1, 1), 6);
    let out = e.receive(ServerId(3), note(ServerState::Leading, 3, 5, 1, 1), 7);
    assert_eq!(out.elected().map(|x| x.role), Some(Role::Following));
}

/// Out of election, a LOOKING peer gets the vote that ended the last election (its round, this
/// server's state); a leader also reports the looking peer; `update_peer_epoch` changes the epoch
/// reported.
#[test]
fn out_of_election_replies() {
    let mut e = engine(3, &[1, 2, 3], &[]);
    let _ = e.start(0, local(0, 0));
    let _ = e.receive(ServerId(2), looking(3, 0, 1, 0), 10);
    let _ = e.tick(210);
    assert_eq!(e.state(), ServerState::Leading);
    e.update_peer_epoch(1);
    let out = e.receive(ServerId(1), looking(1, 0, 3, 0), 300);
    assert_eq!(
        actions(out),
        vec![
            Action::PeerLooking { from: ServerId(1) },
            send(1, note(ServerState::Leading, 3, 0, 1, 1)),
        ]
    );
    // Non-LOOKING notifications are not answered.
    assert!(e
        .receive(ServerId(2), note(ServerState::Following, 3, 0, 1, 1), 301)
        .is_empty());
}

/// A joining server needs the leader's own LEADING vote (`checkLeader`): a quorum of followers
/// alone is not enough.
#[test]
fn check_leader_requires_the_leaders_vote() {
    let mut e = engine(1, &[1, 2, 3, 4, 5], &[]);
    let _ = e.start(0, local(0, 0));
    for f in [2, 4] {
        assert!(e
            .receive(ServerId(f), note(ServerState::Following, 3, 0, 7, 1), 5)
            .is_empty());
    }
    // Followers 2, 4 and a stale LEADING claim from 5 for itself do not elect 3.
    assert!(e
        .receive(ServerId(5), note(ServerState::Following, 3, 0, 7, 1), 6)
        .is_empty());
    let out = e.receive(ServerId(3), note(ServerState::Leading, 3, 0, 7, 1), 7);
    let elected = out.elected().expect("elected");
    assert_eq!(elected.supporters, set(&[2, 3, 4, 5]));
}

/// Out-of-election votes match on leader and peer epoch: followers still reporting an older epoch
/// (they have not called `update_peer_epoch`) do not count with the leader's newer one.
#[test]
fn out_of_election_votes_compare_peer_epoch() {
    let mut e = engine(1, &[1, 2, 3], &[]);
    let _ = e.start(0, local(0, 0));
    // Round 6 is not this server's round (1): only the out-of-election tally applies.
    let _ = e.receive(ServerId(2), note(ServerState::Following, 3, 0, 6, 1), 5);
    assert!(e
        .receive(ServerId(3), note(ServerState::Leading, 3, 0, 6, 2), 6)
        .is_empty());
    // Once the follower reports the new epoch it counts.
    let out = e.receive(ServerId(2), note(ServerState::Following, 3, 0, 6, 2), 7);
    assert_eq!(out.elected().map(|x| x.tally), Some(Tally::OutOfElection));
}

/// In this server's own round, out-of-election votes are stored with format version 0, so against
/// the notification's vote (version 2) only the leader is compared (Java's `Vote.equals` quirk).
#[test]
fn in_round_out_of_election_votes_compare_leader_only() {
    let mut e = engine(1, &[1, 2, 3], &[]);
    let _ = e.start(0, local(0, 0));
    let _ = e.receive(ServerId(2), note(ServerState::Following, 3, 0, 1, 1), 5);
    let out = e.receive(ServerId(3), note(ServerState::Leading, 3, 0, 1, 2), 6);
    assert_eq!(
        out.elected().map(|x| (x.tally, x.peer_epoch)),
        Some((Tally::RoundOutOfElection, 2))
    );
}

/// A weight-0 server is never adopted as a candidate (hierarchical quorums).
#[test]
fn weight_zero_never_wins() {
    let groups = [(1u64, set(&[1, 2, 3]))].into_iter().collect();
    let weights: BTreeMap<ServerId, u64> = [(ServerId(3), 0)].into_iter().collect();
    let q = QuorumVerifier::Hierarchical(
        QuorumHierarchical::new(sids(&[1, 2, 3]), [], groups, &weights).unwrap(),
    );
    let mut e = Election::new(ElectionConfig::new(ServerId(1), q, CONFIG.to_vec()));
    let _ = e.start(0, local(0, 0));
    assert!(e.receive(ServerId(3), looking(3, 9, 1, 9), 5).is_empty());
    assert_eq!(e.proposal().leader, 1);
}

/// A notification whose config is newer than the committed one is reported while looking; the
/// version is read from the text's `version=` line.
#[test]
fn newer_config_is_reported() {
    assert_eq!(
        config_version(b"server.1=a:1:2:participant\nversion=100000000"),
        Some(0x1_0000_0000)
    );
    assert_eq!(config_version(b"server.1=a:1:2:participant"), None);
    let mut e = engine(1, &[1, 2, 3], &[]);
    let _ = e.start(0, local(0, 0));
    let mut n = looking(1, 0, 1, 0);
    n.config = b"server.1=a:1:2:participant\nversion=2".to_vec();
    let out = e.receive(ServerId(2), n.clone(), 5);
    assert_eq!(
        out.actions[0],
        Action::NewerConfig {
            from: ServerId(2),
            version: 2,
            config: n.config
        }
    );
}

/// Payloads go through `Notification::decode`: the 40-byte pre-3.4.6 layout is accepted and a
/// short one is counted as malformed and ignored.
#[test]
fn receive_bytes_accepts_old_layouts() {
    let mut e = engine(1, &[1, 2, 3], &[]);
    let _ = e.start(0, local(0, 0));
    let mut old = looking(3, 0, 1, 0);
    old.version = 0;
    let bytes = old.to_bytes();
    assert_eq!(bytes.len(), 40);
    let out = e.receive_bytes(ServerId(3), &bytes, 5);
    assert_eq!(actions(out), vec![broadcast(&[2, 3], looking(3, 0, 1, 0))]);
    assert!(e.receive_bytes(ServerId(3), &bytes[..20], 6).is_empty());
    assert_eq!(e.stats().malformed, 1);
}

/// Notifications that arrive before the first start are kept and handled when it starts.
#[test]
fn early_notifications_wait_for_start() {
    let mut e = engine(1, &[1, 2, 3], &[]);
    assert!(e.receive(ServerId(2), looking(2, 0, 1, 0), 0).is_empty());
    let out = e.start(1, local(0, 0));
    assert_eq!(
        actions(out),
        vec![
            broadcast(&[2, 3], looking(1, 0, 1, 0)),
            broadcast(&[2, 3], looking(2, 0, 1, 0)),
        ]
    );
    assert!(e.is_finalizing());
}

/// During a reconfiguration the last-seen configuration (higher version) also votes: notifications
/// go to the voters of both, and a decision needs a quorum in each (`getVoteTracker` with two
/// verifiers, `hasAllQuorums`).
#[test]
fn last_seen_config_must_also_agree() {
    let committed = QuorumVerifier::majority(sids(&[1, 2, 3]), []);
    let next = QuorumVerifier::majority(sids(&[1, 2, 3, 4, 5]), []).with_version(1);
    let mut cfg = ElectionConfig::new(ServerId(1), committed, CONFIG.to_vec());
    cfg.last_seen = Some(next);
    let mut e = Election::new(cfg);
    let out = e.start(0, local(0, 0));
    assert_eq!(
        actions(out),
        vec![broadcast(&[2, 3, 4, 5], looking(1, 0, 1, 0))]
    );
    // Servers 4 and 5 are voters of the next configuration: tallied, not answered as observers.
    let _ = e.receive(ServerId(5), looking(5, 0, 1, 0), 1);
    let _ = e.receive(ServerId(4), looking(5, 0, 1, 0), 2);
    // {1, 4, 5} is 3 of 5 but only 1 of 3 in the committed configuration.
    assert!(!e.is_finalizing());
    let _ = e.receive(ServerId(2), looking(5, 0, 1, 0), 3);
    assert!(e.is_finalizing());
    let out = e.tick(203);
    assert_eq!(out.elected().map(|x| x.leader), Some(ServerId(5)));
}

/// An engine with outpost's early finalize on.
fn engine_early(me: u64, voters: &[u64]) -> Election {
    let q = QuorumVerifier::majority(sids(voters), sids(&[]));
    let mut cfg = ElectionConfig::new(ServerId(me), q, CONFIG.to_vec());
    cfg.finalize_early = true;
    Election::new(cfg)
}

/// With `finalize_early`, a failover's election ends as soon as the one voter that has not agreed is
/// reported unreachable, instead of after the 200 ms finalize wait; the verdict is the same one.
#[test]
fn early_finalize_ends_the_wait_when_the_missing_voter_is_unreachable() {
    let mut e = engine_early(3, &[1, 2, 3]);
    let _ = e.start(0, local(0x2_0000_0007, 2));
    // Server 2 agrees: a quorum {2, 3}, but server 1 could still send something better.
    let out = e.receive(ServerId(2), looking(3, 0x2_0000_0007, 1, 2), 3);
    assert!(out.elected().is_none());
    assert!(e.is_finalizing());
    // The transport failed to connect to server 1 (the old leader, killed).
    let out = e.set_unreachable(set(&[1]));
    let elected = out.elected().expect("elected without waiting");
    assert_eq!(
        (elected.leader, elected.role, elected.tally),
        (ServerId(3), Role::Leading, Tally::Round)
    );
}

/// With `finalize_early`, an unreachable voter alone is not enough: a reachable voter that has not
/// agreed yet keeps the full wait, since it may still send a better vote.
#[test]
fn early_finalize_waits_for_reachable_voters() {
    let mut e = engine_early(3, &[1, 2, 3, 4, 5]);
    let _ = e.start(0, local(5, 1));
    let _ = e.receive(ServerId(2), looking(3, 5, 1, 1), 1);
    let _ = e.receive(ServerId(4), looking(3, 5, 1, 1), 2);
    assert!(e.is_finalizing());
    // 1 is gone, 5 is reachable and silent.
    assert!(e.set_unreachable(set(&[1])).elected().is_none());
    assert!(e.tick(150).elected().is_none());
    // Server 5 agrees during the wait (Java drops it unread); now every voter is settled.
    let out = e.receive(ServerId(5), looking(3, 5, 1, 1), 160);
    assert_eq!(out.elected().map(|x| x.role), Some(Role::Leading));
}

/// Without `finalize_early` (ZooKeeper's behaviour and the default of `ElectionConfig::new`), the
/// unreachable set changes nothing: the election ends only when the finalize wait expires.
#[test]
fn without_early_finalize_the_wait_always_runs() {
    let mut e = engine(3, &[1, 2, 3], &[]);
    let _ = e.start(0, local(7, 2));
    let _ = e.receive(ServerId(2), looking(3, 7, 1, 2), 3);
    assert!(e.set_unreachable(set(&[1])).elected().is_none());
    assert!(e.tick(202).elected().is_none());
    assert_eq!(e.tick(203).elected().map(|x| x.role), Some(Role::Leading));
}

/// With `finalize_early`, a voter that answered this round as FOLLOWING (it had not noticed the
/// leader's death yet, and dropped this server's LOOKING notification) gets the proposal again
/// `RECHECK_MS` later, once per round, instead of only when the poll times out 200 ms later; the
/// failover then ends as soon as it agrees. Without the recheck this exact exchange waits for the
/// poll's timeout.
#[test]
fn early_finalize_rechecks_a_voter_that_answered_as_follower() {
    let mut e = engine_early(2, &[1, 2, 3]);
    let _ = e.start(100, local(0xa_0000_2220, 10));
    // Server 1 still follows the dead leader 3 and answers with the vote that ended the last round.
    let out = e.receive(
        ServerId(1),
        note(ServerState::Following, 3, 0xa_0000_2210, 9, 10),
        100,
    );
    assert!(out.elected().is_none());
    assert_eq!(
        e.next_deadline(),
        Some(100 + outpost_core::zab::election::RECHECK_MS)
    );
    assert!(e
        .tick(100 + outpost_core::zab::election::RECHECK_MS - 1)
        .is_empty());
    let out = e.tick(100 + outpost_core::zab::election::RECHECK_MS);
    assert_eq!(
        actions(out),
        vec![send(1, looking(2, 0xa_0000_2220, 1, 10))]
    );
    // Once per round: another FOLLOWING answer schedules nothing more (the next deadline is the poll,
    // restarted by that message).
    let _ = e.receive(
        ServerId(1),
        note(ServerState::Following, 3, 0xa_0000_2210, 9, 10),
        125,
    );
    assert_eq!(e.next_deadline(), Some(325));
    // Server 1, looking now, agrees; 3 is unreachable: elected at once.
    let _ = e.receive(ServerId(1), looking(1, 0xa_0000_2210, 1, 10), 126);
    let _ = e.set_unreachable(set(&[3]));
    let out = e.receive(ServerId(1), looking(2, 0xa_0000_2220, 1, 10), 127);
    assert_eq!(out.elected().map(|x| x.role), Some(Role::Leading));
}

/// Without `finalize_early` no recheck is scheduled: ZooKeeper's timing.
#[test]
fn without_early_finalize_no_recheck() {
    let mut e = engine(2, &[1, 2, 3], &[]);
    let _ = e.start(100, local(7, 2));
    let _ = e.receive(ServerId(1), note(ServerState::Following, 3, 5, 9, 2), 100);
    assert_eq!(e.next_deadline(), Some(300));
}

/// With `finalize_early`, a voter that answers during the finalize wait as FOLLOWING the proposed
/// leader in this round (it decided already, e.g. when answering a recheck) counts as agreeing: the
/// wait ends at once when every other voter has agreed or is unreachable, instead of restarting for
/// another 200 ms.
#[test]
fn early_finalize_counts_a_voter_that_already_follows_the_proposal() {
    let mut e = engine_early(2, &[1, 2, 3, 4, 5]);
    let _ = e.start(0, local(0x8_0000_20d3, 8));
    let _ = e.set_unreachable(set(&[5]));
    let _ = e.receive(ServerId(1), looking(2, 0x8_0000_20d3, 1, 8), 1);
    let _ = e.receive(ServerId(4), looking(2, 0x8_0000_20d3, 1, 8), 2);
    // A quorum {1, 2, 4}; 3 is reachable and has not agreed: the wait runs.
    assert!(e.is_finalizing());
    assert_eq!(e.next_deadline(), Some(202));
    // Server 3 decided already and answers as FOLLOWING 2 in round 1: dropped unread as in Java, but
    // it agrees; 5 is unreachable: elected now.
    let out = e.receive(
        ServerId(3),
        note(ServerState::Following, 2, 0x8_0000_20d3, 1, 8),
        50,
    );
    assert_eq!(out.elected().map(|x| x.role), Some(Role::Leading));
}
