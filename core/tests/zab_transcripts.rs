//! Election scenarios run in the simulator on a perfect network (1 ms links, no loss) and checked
//! as transcripts: the sequence of decisions, and for the simplest scenario every message. All the
//! simulator's invariants are checked after every event along the way.

use outpost_core::ids::ServerId;
use outpost_core::zab::election::{Role, Tally};
use outpost_core::zab::quorum::{QuorumHierarchical, QuorumVerifier};
use outpost_core::zab::sim::{ClusterSpec, NetParams, Sim};
use std::collections::{BTreeMap, BTreeSet};

/// Decisions as `time node role leader round epoch tally [supporters]` lines.
fn decisions(sim: &Sim) -> Vec<String> {
    sim.decisions()
        .iter()
        .map(|d| {
            let e = &d.elected;
            format!(
                "{} {} {:?} leader={} zxid={} round={} epoch={} {:?} {:?}",
                d.at_ms,
                d.node,
                e.role,
                e.leader,
                e.zxid,
                e.election_epoch,
                e.peer_epoch,
                e.tally,
                e.supporters.iter().map(|s| s.0).collect::<Vec<_>>()
            )
        })
        .collect()
}

fn sim(spec: ClusterSpec) -> Sim {
    Sim::new(spec, NetParams::PERFECT, 1).with_full_trace()
}

fn settle(sim: &mut Sim, deadline_ms: u64) -> ServerId {
    match sim.run_until_settled(deadline_ms) {
        Ok(Some((leader, _))) => leader,
        Ok(None) => panic!(
            "not settled by {deadline_ms} ms:\n{}",
            sim.trace().join("\n")
        ),
        Err(v) => panic!("{v}"),
    }
}

/// Three servers with empty databases start together: every vote converges on the highest sid,
/// 3; each server decides 200 ms (the finalize wait) after its tally first shows a quorum.
#[test]
fn three_servers_start_together() {
    let mut sim = sim(ClusterSpec::majority(3, 0));
    sim.start_all().unwrap();
    assert_eq!(settle(&mut sim, 10_000), ServerId(3));
    let expected = "
        0 1 boots: zxid=0x0 epoch=0
        0 2 boots: zxid=0x0 epoch=0
        0 3 boots: zxid=0x0 epoch=0
        1 1 -> 2 Looking(leader=1 zxid=0x0 round=1 epoch=0)
        1 1 -> 3 Looking(leader=1 zxid=0x0 round=1 epoch=0)
        1 2 -> 1 Looking(leader=2 zxid=0x0 round=1 epoch=0)
        1 2 -> 3 Looking(leader=2 zxid=0x0 round=1 epoch=0)
        1 3 -> 1 Looking(leader=3 zxid=0x0 round=1 epoch=0)
        1 3 -> 2 Looking(leader=3 zxid=0x0 round=1 epoch=0)
        2 1 -> 2 Looking(leader=2 zxid=0x0 round=1 epoch=0)
        2 1 -> 3 Looking(leader=2 zxid=0x0 round=1 epoch=0)
        2 1 -> 2 Looking(leader=3 zxid=0x0 round=1 epoch=0)
        2 1 -> 3 Looking(leader=3 zxid=0x0 round=1 epoch=0)
        2 2 -> 1 Looking(leader=3 zxid=0x0 round=1 epoch=0)
        2 2 -> 3 Looking(leader=3 zxid=0x0 round=1 epoch=0)
        202 1 Following leader=3 zxid=0x0 round=1 epoch=0 by Round [1, 3]
        202 2 Following leader=3 zxid=0x0 round=1 epoch=0 by Round [2, 3]
        202 3 Leading leader=3 zxid=0x0 round=1 epoch=0 by Round [1, 3]
        300 3 establishes epoch 1 with [1, 2, 3]";
    // Votes that arrive during the finalize wait and do not beat the proposal are consumed unread
    // (Java's behaviour), which is why 3's supporters are 1 and 3 although 2 voted for it too.
    let trace = sim.trace();
    let got: Vec<&str> = trace.iter().map(|l| l.trim()).collect();
    let want: Vec<&str> = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(got, want);
}

/// The server with the highest zxid wins even with the lowest sid, and every decision carries its
/// zxid and epoch.
#[test]
fn highest_zxid_wins() {
    let spec = ClusterSpec::majority(3, 0)
        .with_data(1, 0x1_0000_0005, 1)
        .with_data(2, 0x1_0000_0003, 1)
        .with_data(3, 0x1_0000_0003, 1);
    let mut sim = sim(spec);
    sim.start_all().unwrap();
    assert_eq!(settle(&mut sim, 10_000), ServerId(1));
    assert_eq!(
        decisions(&sim),
        vec![
            "202 1 Leading leader=1 zxid=0x100000005 round=1 epoch=1 Round [1, 2]",
            "202 2 Following leader=1 zxid=0x100000005 round=1 epoch=1 Round [1, 2]",
            "202 3 Following leader=1 zxid=0x100000005 round=1 epoch=1 Round [1, 3]",
        ]
    );
    assert_eq!(sim.established_epoch(1), Some(2));
}

/// A higher epoch beats a higher zxid: server 1's epoch-2 history wins over server 3's longer
/// epoch-1 history.
#[test]
fn higher_epoch_beats_higher_zxid() {
    let spec = ClusterSpec::majority(3, 0)
        .with_data(1, 0x2_0000_0001, 2)
        .with_data(2, 0x1_0000_0009, 1)
        .with_data(3, 0x1_0000_0009, 1);
    let mut sim = sim(spec);
    sim.start_all().unwrap();
    assert_eq!(settle(&mut sim, 10_000), ServerId(1));
}

/// Leader 5 of five crashes: the other four elect 4 in round 2; when 5 restarts (round 1 again)
/// it joins 4 through the votes of servers already out of election, and nobody else decides again.
#[test]
fn restarted_server_rejoins_running_leader() {
    let mut sim = sim(ClusterSpec::majority(5, 0));
    sim.start_all().unwrap();
    assert_eq!(settle(&mut sim, 10_000), ServerId(5));
    sim.run_until(1_000).unwrap();
    sim.crash(ServerId(5));
    sim.run_until(2_000).unwrap();
    assert_eq!(settle(&mut sim, 20_000), ServerId(4));
    let before = sim.decisions().len();
    let epoch = sim.established_epoch(4);
    sim.run_until(20_000).unwrap();
    sim.boot(ServerId(5)).unwrap();
    assert_eq!(settle(&mut sim, 30_000), ServerId(4));
    let after = &sim.decisions()[before..];
    assert_eq!(after.len(), 1, "{:#?}", decisions(&sim));
    assert_eq!(after[0].node, ServerId(5));
    assert_eq!(after[0].elected.role, Role::Following);
    // Through FOLLOWING/LEADING votes: in its own round 2 (peers resent their last round-2 votes
    // when 5's connections reopened, moving it to round 2) or out of election.
    assert_ne!(after[0].elected.tally, Tally::Round);
    assert_eq!(after[0].elected.election_epoch, 2);
    assert_eq!(sim.established_epoch(4), epoch);
    assert_eq!(sim.election(5).logical_clock(), 2);
}

/// Five servers, 1 and 2 cut off from the start: 3, 4 and 5 elect 5; the minority never decides.
/// After healing, 1 and 2 join 5 without disturbing it.
#[test]
fn five_servers_two_partitioned() {
    let mut sim = sim(ClusterSpec::majority(5, 0));
    sim.partition(&[&[1, 2], &[3, 4, 5]]);
    sim.start_all().unwrap();
    sim.run_until(30_000).unwrap();
    assert_eq!(sim.established_epoch(5), Some(1));
    for s in [1, 2] {
        assert!(sim.election(s).is_looking(), "{s} decided in a minority");
    }
    assert!(sim
        .decisions()
        .iter()
        .all(|d| d.elected.leader == ServerId(5)));
    let before = sim.decisions().len();
    sim.heal();
    assert_eq!(settle(&mut sim, 120_000), ServerId(5));
    let joined: BTreeSet<ServerId> = sim.decisions()[before..].iter().map(|d| d.node).collect();
    assert_eq!(joined, [ServerId(1), ServerId(2)].into_iter().collect());
    assert_eq!(sim.established_epoch(5), Some(1));
}

/// The leader ends up in the minority: the majority elects a new leader in a new round and a new
/// epoch; the old leader loses its quorum and, after healing, follows the new one.
#[test]
fn leader_partitioned_into_minority() {
    let mut sim = sim(ClusterSpec::majority(5, 0));
    sim.start_all().unwrap();
    assert_eq!(settle(&mut sim, 10_000), ServerId(5));
    sim.partition(&[&[4, 5], &[1, 2, 3]]);
    sim.run_until(30_000).unwrap();
    assert_eq!(sim.established_epoch(3), Some(2));
    assert!(sim.established_epoch(5).is_none());
    sim.heal();
    assert_eq!(settle(&mut sim, 120_000), ServerId(3));
}

fn install_guide_spec() -> ClusterSpec {
    // group.1=1:2:3, weight.1=weight.2=weight.3=1 (the ZooKeeper admin guide's example).
    let groups: BTreeMap<u64, BTreeSet<ServerId>> =
        [(1, [1, 2, 3].into_iter().map(ServerId).collect())]
            .into_iter()
            .collect();
    let weights: BTreeMap<ServerId, u64> = (1..=3).map(|s| (ServerId(s), 1)).collect();
    ClusterSpec {
        verifier: QuorumVerifier::Hierarchical(
            QuorumHierarchical::new((1..=3).map(ServerId), [], groups, &weights).unwrap(),
        ),
        initial: BTreeMap::new(),
    }
}

/// The install guide's hierarchical quorum (one group of three, unit weights) elects like a
/// majority: 3 leads; with 3 down, 1 and 2 elect 2.
#[test]
fn hierarchical_install_guide() {
    let mut sim = sim(install_guide_spec());
    sim.start_all().unwrap();
    assert_eq!(settle(&mut sim, 10_000), ServerId(3));
    sim.run_until(1_000).unwrap();
    sim.crash(ServerId(3));
    assert_eq!(settle(&mut sim, 30_000), ServerId(2));
    assert_eq!(sim.established_epoch(2), Some(2));
}

/// An observer ends its election OBSERVING the voters' leader and is never a supporter.
#[test]
fn observer_observes_the_voters_leader() {
    let mut sim = sim(ClusterSpec::majority(3, 1));
    sim.start_all().unwrap();
    assert_eq!(settle(&mut sim, 10_000), ServerId(3));
    let observer: Vec<_> = sim
        .decisions()
        .iter()
        .filter(|d| d.node == ServerId(4))
        .collect();
    assert_eq!(observer.len(), 1);
    assert_eq!(observer[0].elected.role, Role::Observing);
    assert!(sim
        .decisions()
        .iter()
        .all(|d| !d.elected.supporters.contains(&ServerId(4))));
}

/// Server 3's database is untrusted-empty (zxid -1): its LOOKING votes are ignored and it ignores
/// theirs, so 1 and 2 elect 2; 3 then follows 2 through the out-of-election tally.
#[test]
fn untrusted_empty_database_follows() {
    let spec = ClusterSpec::majority(3, 0).with_data(3, -1, 0);
    let mut sim = sim(spec);
    sim.start_all().unwrap();
    assert_eq!(settle(&mut sim, 10_000), ServerId(2));
    let three: Vec<_> = sim
        .decisions()
        .iter()
        .filter(|d| d.node == ServerId(3))
        .collect();
    assert_eq!(three.len(), 1);
    assert_ne!(three[0].elected.tally, Tally::Round);
    assert!(sim
        .decisions()
        .iter()
        .all(|d| !d.elected.supporters.contains(&ServerId(3)) || d.elected.tally != Tally::Round));
}
