//! Tests of the learner sync decision ([`super::learner_sync`]): agreement with a literal simulation of
//! Java's `syncFollower` / `queueCommittedProposals` over random inputs, the guide's §7.15 reference
//! sequence and one case per rule, and a model learner that ends with exactly the leader's committed
//! history whenever the plan is DIFF or TRUNC.

use std::sync::Arc;

use proptest::collection::{btree_set, vec};
use proptest::prelude::*;
use proptest::sample::Index;

use super::learner_sync::{
    plan_sync, plan_txn_log_sync, wants_txn_log, CommittedLog, SyncPlan, DEFAULT_COMMIT_LOG_COUNT,
};
use crate::ids::{Epoch, Zxid};

/// What the leader queues for a learner, as packets.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Snap(i64),
    Diff(i64),
    Trunc(i64),
    Proposal(i64, Arc<[u8]>),
    Commit(i64),
}

fn z(epoch: u32, counter: u32) -> Zxid {
    Zxid::new(Epoch(epoch), counter)
}

fn txn(zxid: Zxid) -> Arc<[u8]> {
    Arc::from(format!("txn {zxid}").into_bytes())
}

fn log_of(zxids: &[Zxid], max_count: usize) -> CommittedLog {
    let mut log = CommittedLog::new(max_count);
    for &x in zxids {
        log.push(x, txn(x));
    }
    log
}

/// Java's `LearnerHandler.syncFollower` and `queueCommittedProposals`, transcribed statement by statement
/// over bare longs (rule 5, the on-disk txn log, disabled: `txnLogSyncEnabled = false`). Returns the
/// queued packets and `currentZxid`.
fn naive_sync_follower(
    peer_last_zxid: i64,
    last_processed: i64,
    committed: &[(i64, Arc<[u8]>)],
    force_snap: bool,
) -> (Vec<Out>, i64) {
    let is_peer_new_epoch_zxid = (peer_last_zxid & 0xffff_ffff) == 0;
    let mut current_zxid = peer_last_zxid;
    let mut need_snap = true;
    let mut need_op_packet = true;
    let mut queued = Vec::new();
    let mut max_committed_log = committed.last().map_or(0, |e| e.0);
    let mut min_committed_log = committed.first().map_or(0, |e| e.0);
    if committed.is_empty() {
        min_committed_log = last_processed;
        max_committed_log = last_processed;
    }
    if force_snap {
    } else if last_processed == peer_last_zxid {
        queued.push(Out::Diff(peer_last_zxid));
        need_op_packet = false;
        need_snap = false;
    } else if peer_last_zxid > max_committed_log && !is_peer_new_epoch_zxid {
        queued.push(Out::Trunc(max_committed_log));
        current_zxid = max_committed_log;
        need_op_packet = false;
        need_snap = false;
    } else if max_committed_log >= peer_last_zxid && min_committed_log <= peer_last_zxid {
        current_zxid = naive_queue_committed_proposals(
            committed,
            peer_last_zxid,
            max_committed_log,
            &mut queued,
            &mut need_op_packet,
        );
        need_snap = false;
    }
    if need_snap {
        current_zxid = last_processed;
    }
    if need_op_packet && !need_snap {
        need_snap = true;
    }
    if need_snap {
        // The SNAP packet is written directly, ahead of anything queued (nothing was in this case).
        assert!(queued.is_empty());
        return (vec![Out::Snap(last_processed)], current_zxid);
    }
    (queued, current_zxid)
}

fn naive_queue_committed_proposals(
    committed: &[(i64, Arc<[u8]>)],
    peer_last_zxid: i64,
    last_committed_zxid: i64,
    queued: &mut Vec<Out>,
    need_op_packet: &mut bool,
) -> i64 {
    let is_peer_new_epoch_zxid = (peer_last_zxid & 0xffff_ffff) == 0;
    let mut queued_zxid = peer_last_zxid;
    let mut prev_proposal_zxid = -1;
    for (packet_zxid, data) in committed {
        let packet_zxid = *packet_zxid;
        if packet_zxid < peer_last_zxid {
            prev_proposal_zxid = packet_zxid;
            continue;
        }
        if *need_op_packet {
            if packet_zxid == peer_last_zxid {
                queued.push(Out::Diff(last_committed_zxid));
                *need_op_packet = false;
                continue;
            }
            if is_peer_new_epoch_zxid {
                queued.push(Out::Diff(last_committed_zxid));
                *need_op_packet = false;
            } else if packet_zxid > peer_last_zxid {
                if (packet_zxid >> 32) != (peer_last_zxid >> 32) {
                    return queued_zxid;
                }
                queued.push(Out::Trunc(prev_proposal_zxid));
                *need_op_packet = false;
            }
        }
        if packet_zxid <= queued_zxid {
            continue;
        }
        queued.push(Out::Proposal(packet_zxid, Arc::clone(data)));
        queued.push(Out::Commit(packet_zxid));
        queued_zxid = packet_zxid;
    }
    if *need_op_packet && is_peer_new_epoch_zxid {
        queued.push(Out::Diff(last_committed_zxid));
        *need_op_packet = false;
    }
    queued_zxid
}

/// The packets a plan stands for.
fn expand(plan: SyncPlan, last_processed: Zxid, log: &CommittedLog) -> Vec<Out> {
    let (op, after) = match plan {
        SyncPlan::Snap => return vec![Out::Snap(last_processed.0)],
        SyncPlan::Diff { zxid, after } => (Out::Diff(zxid.0), after),
        SyncPlan::Trunc { zxid, after } => (Out::Trunc(zxid.0), after),
    };
    let mut out = vec![op];
    for (x, data) in log.after(after) {
        out.push(Out::Proposal(x.0, Arc::clone(data)));
        out.push(Out::Commit(x.0));
    }
    out
}

fn entries(log: &CommittedLog) -> Vec<(i64, Arc<[u8]>)> {
    log.after(Zxid(i64::MIN))
        .map(|(x, d)| (x.0, Arc::clone(d)))
        .collect()
}

/// Asserts that plan_sync agrees with the literal simulation and returns the plan.
fn check(peer: Zxid, last_processed: Zxid, log: &CommittedLog, force_snap: bool) -> SyncPlan {
    let plan = plan_sync(peer, last_processed, log, force_snap);
    let (naive, current) = naive_sync_follower(peer.0, last_processed.0, &entries(log), force_snap);
    assert_eq!(expand(plan, last_processed, log), naive, "{plan:?}");
    if plan != SyncPlan::Snap {
        assert_eq!(plan.sync_point(log, last_processed).0, current);
    }
    plan
}

/// Guide §7.15: a follower at 0x300000057 joins the leader of epoch 4, which holds the txns after it in
/// its committed log: DIFF(maxCommittedLog), then every missing txn as PROPOSAL+COMMIT.
#[test]
fn reference_sequence_7_15() {
    let mut zxids: Vec<Zxid> = (0x40..=0x60).map(|c| z(3, c)).collect();
    zxids.extend((1..=3).map(|c| z(4, c)));
    let log = log_of(&zxids, DEFAULT_COMMIT_LOG_COUNT);
    let plan = check(z(3, 0x57), z(4, 3), &log, false);
    assert_eq!(
        plan,
        SyncPlan::Diff {
            zxid: z(4, 3),
            after: z(3, 0x57)
        }
    );
    let sent: Vec<Zxid> = log.after(z(3, 0x57)).map(|e| e.0).collect();
    assert_eq!(sent.first(), Some(&z(3, 0x58)));
    assert_eq!(sent.len(), 9 + 3);
    assert_eq!(plan.sync_point(&log, z(4, 3)), z(4, 3));
}

/// Rule 1: forceSnapshotSync sends SNAP even to a learner that is in sync.
#[test]
fn rule_1_force_snap() {
    let log = log_of(&[z(1, 1), z(1, 2)], 10);
    assert_eq!(check(z(1, 2), z(1, 2), &log, true), SyncPlan::Snap);
}

/// Rule 2: a learner at the leader's last processed zxid gets an empty DIFF carrying its own zxid,
/// with or without a committed log, and also when that zxid is a new-epoch zxid.
#[test]
fn rule_2_in_sync() {
    let log = log_of(&[z(1, 1), z(1, 2)], 10);
    let in_sync = SyncPlan::Diff {
        zxid: z(1, 2),
        after: z(1, 2),
    };
    assert_eq!(check(z(1, 2), z(1, 2), &log, false), in_sync);
    assert_eq!(
        check(z(1, 2), z(1, 2), &CommittedLog::new(10), false),
        in_sync
    );
    assert_eq!(
        check(z(2, 0), z(2, 0), &log, false),
        SyncPlan::Diff {
            zxid: z(2, 0),
            after: z(2, 0)
        }
    );
}

/// Rule 3: a learner beyond the committed log (a former leader's uncommitted txns) is truncated to
/// maxCommittedLog; with an empty log to last processed; Java does this even across epochs.
#[test]
fn rule_3_peer_ahead() {
    let log = log_of(&[z(3, 1), z(3, 2)], 10);
    let trunc = SyncPlan::Trunc {
        zxid: z(3, 2),
        after: z(3, 2),
    };
    assert_eq!(check(z(3, 5), z(3, 2), &log, false), trunc);
    assert_eq!(check(z(4, 2), z(3, 2), &log, false), trunc);
    assert_eq!(
        check(z(3, 5), z(3, 2), &CommittedLog::new(10), false),
        trunc
    );
    // Nothing follows the TRUNC, and startForwarding starts at maxCommittedLog.
    assert_eq!(expand(trunc, z(3, 2), &log).len(), 1);
    assert_eq!(trunc.sync_point(&log, z(3, 2)), z(3, 2));
}

/// Rule 3's exception: a learner ahead of the log at a new-epoch zxid is not truncated; outside the
/// log it gets SNAP (rule 6).
#[test]
fn rule_3_new_epoch_peer_ahead_gets_snap() {
    let log = log_of(&[z(3, 1), z(3, 2)], 10);
    assert_eq!(check(z(5, 0), z(3, 2), &log, false), SyncPlan::Snap);
}

/// Rule 4, peer found in the log: DIFF(maxCommittedLog) and the txns after the peer; a peer at the
/// oldest entry gets all the others; a peer at the newest entry but behind last processed (the leader's
/// new-epoch zxid) gets an empty DIFF(maxCommittedLog).
#[test]
fn rule_4_peer_in_log() {
    let log = log_of(&[z(2, 7), z(2, 8), z(3, 1), z(3, 2)], 10);
    assert_eq!(
        check(z(2, 8), z(3, 2), &log, false),
        SyncPlan::Diff {
            zxid: z(3, 2),
            after: z(2, 8)
        }
    );
    let plan = check(z(2, 7), z(3, 2), &log, false);
    assert_eq!(log.after(z(2, 7)).count(), 3);
    assert_eq!(expand(plan, z(3, 2), &log).len(), 1 + 2 * 3);
    let plan = check(z(3, 2), z(4, 0), &log, false);
    assert_eq!(
        plan,
        SyncPlan::Diff {
            zxid: z(3, 2),
            after: z(3, 2)
        }
    );
    assert_eq!(expand(plan, z(4, 0), &log).len(), 1);
}

/// Rule 4, peer at a new-epoch zxid inside the log's range: DIFF and fall through, so every txn after
/// it is sent.
#[test]
fn rule_4_new_epoch_peer() {
    let log = log_of(&[z(3, 0x60), z(4, 1), z(4, 2)], 10);
    let plan = check(z(4, 0), z(4, 2), &log, false);
    assert_eq!(
        plan,
        SyncPlan::Diff {
            zxid: z(4, 2),
            after: z(4, 0)
        }
    );
    assert_eq!(
        log.after(z(4, 0)).map(|e| e.0).collect::<Vec<_>>(),
        vec![z(4, 1), z(4, 2)]
    );
}

/// Rule 4, peer not in the log with the next entry in its epoch: TRUNC to the entry before the peer,
/// then the entries after it.
#[test]
fn rule_4_trunc_within_epoch() {
    let log = log_of(&[z(3, 5), z(3, 7), z(3, 8)], 10);
    let plan = check(z(3, 6), z(3, 8), &log, false);
    assert_eq!(
        plan,
        SyncPlan::Trunc {
            zxid: z(3, 5),
            after: z(3, 5)
        }
    );
    assert_eq!(expand(plan, z(3, 8), &log).len(), 1 + 2 * 2);
}

/// Rule 4, peer not in the log with the next entry in a later epoch: a TRUNC would cross epochs, so SNAP.
#[test]
fn rule_4_trunc_never_crosses_epochs() {
    let log = log_of(&[z(3, 5), z(4, 1), z(4, 2)], 10);
    assert_eq!(check(z(3, 6), z(4, 2), &log, false), SyncPlan::Snap);
}

/// Rule 6: a learner older than the committed log, or behind an empty one, gets SNAP; eviction moves
/// minCommittedLog so a learner that was in range falls out of it.
#[test]
fn rule_6_peer_behind() {
    let log = log_of(&[z(2, 3), z(2, 4)], 10);
    assert_eq!(check(z(2, 2), z(2, 4), &log, false), SyncPlan::Snap);
    assert_eq!(check(Zxid(0), z(2, 4), &log, false), SyncPlan::Snap);
    assert_eq!(
        check(z(1, 9), z(2, 4), &CommittedLog::new(5), false),
        SyncPlan::Snap
    );
    let evicting = log_of(&[z(1, 1), z(1, 2), z(1, 3), z(1, 4), z(1, 5)], 3);
    assert_eq!(evicting.len(), 3);
    assert_eq!(evicting.min_zxid(), Some(z(1, 3)));
    assert_eq!(check(z(1, 2), z(1, 5), &evicting, false), SyncPlan::Snap);
    assert_eq!(
        check(z(1, 3), z(1, 5), &evicting, false),
        SyncPlan::Diff {
            zxid: z(1, 5),
            after: z(1, 3)
        }
    );
}

/// The committed log keeps the newest `max_count` txns in order, `after` is strict, and `clear` empties it.
#[test]
fn committed_log_basics() {
    let mut log = log_of(&[z(1, 1), z(1, 2), z(2, 1)], 2);
    assert_eq!(
        (log.min_zxid(), log.max_zxid()),
        (Some(z(1, 2)), Some(z(2, 1)))
    );
    assert_eq!(
        log.after(z(1, 2)).map(|e| e.0).collect::<Vec<_>>(),
        vec![z(2, 1)]
    );
    assert_eq!(log.after(z(1, 1)).count(), 2);
    assert_eq!(
        &**log.after(z(1, 1)).next().expect("entry").1,
        &*txn(z(1, 2))
    );
    log.clear();
    assert!(log.is_empty());
    assert_eq!(log.max_zxid(), None);
    log.push(z(1, 1), txn(z(1, 1)));
    assert_eq!(log.len(), 1);
}

/// Pushing a zxid that does not increase is a caller bug and panics.
#[test]
#[should_panic(expected = "must increase")]
fn committed_log_rejects_non_increasing() {
    let mut log = log_of(&[z(1, 2)], 5);
    log.push(z(1, 2), txn(z(1, 2)));
}

/// A leader's committed history H (epochs 1..=k with their txn counts), what it has processed, and a
/// learner consistent with ZAB: a prefix of H, possibly at a later new-epoch zxid, or followed by
/// uncommitted txns of a single epoch that H has nothing of at or after them.
#[derive(Clone, Debug)]
struct Scenario {
    history: Vec<Zxid>,
    last_processed: Zxid,
    log_keep: usize,
    learner: Vec<(Zxid, Arc<[u8]>)>,
    peer: Zxid,
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    (
        vec(0u32..5, 1..5),
        any::<bool>(),
        any::<Index>(),
        any::<Index>(),
        0u8..3,
        any::<Index>(),
        1u32..4,
    )
        .prop_map(|(counts, fresh_leader, keep, prefix, kind, pick, n_div)| {
            let history: Vec<Zxid> = counts
                .iter()
                .enumerate()
                .flat_map(|(e, &n)| (1..=n).map(move |c| z(e as u32 + 1, c)))
                .collect();
            let k = counts.len() as u32;
            let last_processed = match history.last() {
                Some(&last) if !fresh_leader => last,
                // A newly established leader of epoch k+1 that has committed nothing yet.
                _ => z(k + 1, 0),
            };
            let leader_epoch = last_processed.epoch().0;
            let log_keep = keep.index(history.len() + 1);
            let p = prefix.index(history.len() + 1);
            let mut learner: Vec<(Zxid, Arc<[u8]>)> =
                history[..p].iter().map(|&x| (x, txn(x))).collect();
            let below = history[..p].last().copied();
            let above = history.get(p).copied();
            let mut peer = below.unwrap_or(Zxid(0));
            match kind {
                1 => {
                    // Synced with the leader of epoch E (NEWLEADER) and got nothing of E since.
                    let lo = below.map_or(1, |b| b.epoch().0 + 1);
                    let hi = above.map_or(leader_epoch, |a| a.epoch().0);
                    if lo <= hi {
                        peer = z(lo + pick.index((hi - lo + 1) as usize) as u32, 0);
                    }
                }
                2 => {
                    // Uncommitted txns of one epoch, after everything H has below them.
                    let lo = below.map_or(1, |b| b.epoch().0);
                    let hi = above.map_or(leader_epoch, |a| a.epoch().0 - 1);
                    if lo <= hi {
                        let e = lo + pick.index((hi - lo + 1) as usize) as u32;
                        let start = match below {
                            Some(b) if b.epoch().0 == e => b.counter() + 1,
                            _ => 1,
                        };
                        for c in start..start + n_div {
                            let x = z(e, c);
                            learner.push((x, Arc::from(format!("uncommitted {x}").into_bytes())));
                            peer = x;
                        }
                    }
                }
                _ => {}
            }
            Scenario {
                history,
                last_processed,
                log_keep,
                learner,
                peer,
            }
        })
}

/// Random committed logs (with eviction), leader positions and learner zxids from a small space so
/// that they collide, including -1, 0, new-epoch zxids and exact log entries.
fn agreement_inputs() -> impl Strategy<Value = (Vec<Zxid>, usize, Zxid, Zxid, bool)> {
    let small = (0u32..5, 0u32..9).prop_map(|(e, c)| z(e, c));
    (
        btree_set((0u32..5, 0u32..9), 0..14),
        1usize..16,
        small.clone(),
        prop_oneof![6 => small, 1 => Just(Zxid(-1)), 3 => any::<Index>().prop_map(|i| Zxid(-(i.index(1000) as i64) - 2))],
        any::<Index>(),
        prop_oneof![7 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(set, cap, lp, peer, pick, force)| {
            let zxids: Vec<Zxid> = set.into_iter().map(|(e, c)| z(e, c)).collect();
            let lp = zxids.last().map_or(lp, |&m| lp.max(m));
            // A negative draw means "pick an exact log entry, or last processed".
            let peer = if peer.0 < -1 {
                let kept = &zxids[zxids.len().saturating_sub(cap)..];
                kept.get(pick.index(kept.len() + 1)).copied().unwrap_or(lp)
            } else {
                peer
            };
            (zxids, cap, lp, peer, force)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// plan_sync queues exactly the packets Java's syncFollower/queueCommittedProposals would, and its
    /// sync point is Java's currentZxid.
    #[test]
    fn agrees_with_java_walk((zxids, cap, lp, peer, force) in agreement_inputs()) {
        let log = log_of(&zxids, cap);
        prop_assert_eq!(log.len(), zxids.len().min(cap));
        check(peer, lp, &log, force);
    }

    /// Applying a DIFF or TRUNC plan to a ZAB-consistent learner (truncate, then append the sent txns)
    /// leaves it with exactly the leader's committed history, payloads included.
    #[test]
    fn diff_and_trunc_rebuild_the_history(s in scenario_strategy()) {
        let kept = &s.history[s.history.len() - s.log_keep..];
        let log = log_of(kept, s.log_keep.max(1));
        let plan = check(s.peer, s.last_processed, &log, false);
        let (keep_upto, after) = match plan {
            SyncPlan::Snap => return Ok(()),
            SyncPlan::Diff { after, .. } => (None, after),
            SyncPlan::Trunc { zxid, after } => (Some(zxid), after),
        };
        let mut learner = s.learner.clone();
        if let Some(t) = keep_upto {
            learner.retain(|e| e.0 <= t);
        }
        learner.extend(log.after(after).map(|(x, d)| (x, Arc::clone(d))));
        let expected: Vec<(Zxid, Arc<[u8]>)> = s.history.iter().map(|&x| (x, txn(x))).collect();
        prop_assert_eq!(learner, expected, "{:?}", plan);
    }
}

/// The model learner scenarios reach every kind of plan, so the history property is not vacuous.
#[test]
fn history_scenarios_cover_every_plan() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let (mut snap, mut diff, mut trunc) = (0, 0, 0);
    for _ in 0..2000 {
        let s = scenario_strategy()
            .new_tree(&mut runner)
            .expect("strategy")
            .current();
        let kept = &s.history[s.history.len() - s.log_keep..];
        let log = log_of(kept, s.log_keep.max(1));
        match plan_sync(s.peer, s.last_processed, &log, false) {
            SyncPlan::Snap => snap += 1,
            SyncPlan::Diff { .. } => diff += 1,
            SyncPlan::Trunc { .. } => trunc += 1,
        }
    }
    assert!(
        snap > 100 && diff > 100 && trunc > 50,
        "snap {snap} diff {diff} trunc {trunc}"
    );
}

fn disk_of(zxids: &[Zxid]) -> Vec<(Zxid, Arc<[u8]>)> {
    zxids.iter().map(|&x| (x, txn(x))).collect()
}

// A learner behind the committed log is tried with the txn log only when it is enabled (factor >= 0)
// and the learner has a txn at all; one inside the log never is.
#[test]
fn txn_log_is_wanted_only_for_a_learner_behind_the_committed_log() {
    let log = log_of(&[z(2, 10), z(2, 11), z(2, 12)], 3);
    assert!(wants_txn_log(z(2, 3), z(2, 12), &log, 0.33));
    assert!(wants_txn_log(z(1, 7), z(2, 12), &log, 0.0));
    assert!(!wants_txn_log(z(2, 3), z(2, 12), &log, -1.0));
    assert!(!wants_txn_log(Zxid::ZERO, z(2, 12), &log, 0.33));
    assert!(!wants_txn_log(z(2, 10), z(2, 12), &log, 0.33));
    assert!(!wants_txn_log(z(2, 12), z(2, 12), &log, 0.33));
    // An empty committed log counts as starting at the last processed zxid.
    assert!(wants_txn_log(
        z(2, 3),
        z(2, 12),
        &CommittedLog::new(0),
        0.33
    ));
}

// Disk txns that continue the learner's zxid up to the committed log's first entry make a DIFF of
// maxCommittedLog; the committed log then follows after the last disk txn.
#[test]
fn txn_log_that_connects_gives_diff() {
    let log = log_of(&[z(2, 10), z(2, 11), z(2, 12)], 3);
    let disk = disk_of(&(4..=10).map(|c| z(2, c)).collect::<Vec<_>>());
    let (plan, last) = plan_txn_log_sync(z(2, 3), z(2, 12), &log, &disk, 0).expect("connects");
    assert_eq!(
        plan,
        SyncPlan::Diff {
            zxid: z(2, 12),
            after: z(2, 3)
        }
    );
    assert_eq!(last, z(2, 10));
    let rest: Vec<Zxid> = log.after(last).map(|(x, _)| x).collect();
    assert_eq!(rest, vec![z(2, 11), z(2, 12)]);
    // Across an epoch change: the new epoch's txns start at counter 1.
    let log = log_of(&[z(3, 2), z(3, 3)], 2);
    let disk = disk_of(&[z(2, 5), z(2, 6), z(3, 1), z(3, 2)]);
    assert!(plan_txn_log_sync(z(2, 4), z(3, 3), &log, &disk, 0).is_some());
}

// Disk txns that stop short of the committed log (it moved on while the log was read), skip a txn,
// carry txns of an abandoned history or run past what was applied do not connect: SNAP.
#[test]
fn txn_log_that_does_not_connect_gives_snap() {
    let log = log_of(&[z(2, 10), z(2, 11), z(2, 12)], 3);
    let short = disk_of(&(4..=8).map(|c| z(2, c)).collect::<Vec<_>>());
    assert_eq!(plan_txn_log_sync(z(2, 3), z(2, 12), &log, &short, 0), None);
    let gap = disk_of(&[z(2, 4), z(2, 5), z(2, 7), z(2, 8), z(2, 9), z(2, 10)]);
    assert_eq!(plan_txn_log_sync(z(2, 3), z(2, 12), &log, &gap, 0), None);
    // (1, 6..7) were never committed: the history went from (1, 5) to epoch 2.
    let log2 = log_of(&[z(2, 3), z(2, 4)], 2);
    let abandoned = disk_of(&[z(1, 6), z(1, 7), z(2, 4)]);
    assert_eq!(
        plan_txn_log_sync(z(1, 5), z(2, 4), &log2, &abandoned, 0),
        None
    );
    let beyond = disk_of(&(4..=13).map(|c| z(2, c)).collect::<Vec<_>>());
    assert_eq!(plan_txn_log_sync(z(2, 3), z(2, 12), &log, &beyond, 0), None);
    assert_eq!(plan_txn_log_sync(z(2, 3), z(2, 12), &log, &[], 0), None);
}

// A learner that plan_sync sends a SNAP because it is behind the committed log still gets SNAP when
// the log read was refused as too large (the driver answers None) — and the in-memory plan stays SNAP.
#[test]
fn txn_log_too_large_leaves_snap() {
    let log = log_of(&[z(2, 10), z(2, 11), z(2, 12)], 3);
    assert_eq!(plan_sync(z(2, 3), z(2, 12), &log, false), SyncPlan::Snap);
    assert!(wants_txn_log(z(2, 3), z(2, 12), &log, 0.33));
}
