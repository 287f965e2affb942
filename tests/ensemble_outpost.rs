//! outpost ensembles, alone and mixed with Apache ZooKeeper 3.8 (Debian package), run through the same
//! scenarios as the Java-only harness test (`tests/support/ensemble/scenario.rs`): election, writes at a
//! follower read everywhere, an observer, kill -9 of the leader, and the crashed leader rejoining.

mod support;

use support::ensemble::{scenario, EnsemblePlan};

/// Three outpost voters elect exactly one leader; the others follow.
#[test]
fn outpost_voters_elect_one_leader() {
    scenario::elect_exactly_one_leader(&EnsemblePlan::new(3, 0).with_outpost(&[1, 2, 3]));
}

/// Three outpost voters and an outpost observer: writes at a follower are read everywhere, the
/// ensemble survives kill -9 of its leader, and the old leader rejoins with every write.
#[test]
fn outpost_ensemble_failover_with_observer() {
    scenario::observer_reads_writes_and_leader_failover(
        &EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]),
    );
}

/// Two Java voters and one outpost voter (the highest id, so it wins a fresh election on ties) form
/// one ensemble; the Java observer follows whichever leads.
#[test]
fn mixed_two_java_one_outpost() {
    scenario::observer_reads_writes_and_leader_failover(
        &EnsemblePlan::new(3, 1).with_outpost(&[3]),
    );
}

/// One Java voter and two outpost voters, with an outpost observer.
#[test]
fn mixed_one_java_two_outpost() {
    scenario::observer_reads_writes_and_leader_failover(
        &EnsemblePlan::new(3, 1).with_outpost(&[2, 3, 4]),
    );
}
