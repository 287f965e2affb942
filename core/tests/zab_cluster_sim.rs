//! Whole-ensemble simulation: real quorum peers (election, discovery, learner sync, broadcast and the
//! server state machine) over a simulated network and disks, with crashes, restarts and partitions in
//! a safety phase and everything healed in a liveness phase. Each seed is one reproducible run; a
//! failure prints the seed, the command that reproduces it and the end of the trace.
//!
//! `OUTPOST_SIM_SEED=<n>` runs that seed alone; `OUTPOST_SIM_SEEDS=<count>` runs that many fresh
//! seeds (derived from the clock) after the fixed ones; under CI (`CI` set) fresh seeds run for
//! `OUTPOST_SIM_FRESH_SECS` seconds (default 60) after the fixed ones.

use outpost_core::zab::cluster_sim::{ClusterSim, SimConfig, SimReconfig, SimReport};

fn run_seed(cfg: SimConfig) -> SimReport {
    let seed = cfg.seed;
    match ClusterSim::new(cfg).run() {
        Ok(report) => {
            eprintln!(
            "seed {seed}: ok, {} acked writes, {} leaders, {} crashes, {} partitions, final zxid {}, syncs snap/diff/trunc {:?}, \
             {} from the txn log, {} throttled, {} snapshot chunks, {} learners checked at UPTODATE",
            report.acked_writes, report.leaders, report.crashes, report.partitions, report.final_zxid, report.syncs,
            report.txn_log_syncs, report.syncs_throttled, report.snap_chunks, report.learners_checked_at_uptodate
            );
            report
        }
        Err(failure) => panic!("{failure}"),
    }
}

/// Without faults, three voters and an observer elect a leader, sync everyone and commit every client
/// write on every server.
#[test]
fn quiet_ensemble_converges() {
    let mut cfg = SimConfig::new(7);
    cfg.faults = false;
    cfg.safety_ms = 5_000;
    run_seed(cfg);
}

/// A fixed set of seeds with crashes, restarts and partitions: every invariant holds and the ensemble
/// recovers once the faults stop.
#[test]
fn faulty_ensembles_stay_safe_and_recover() {
    if let Ok(seed) = std::env::var("OUTPOST_SIM_SEED") {
        let seed: u64 = seed.parse().expect("OUTPOST_SIM_SEED is a number");
        run_seed(SimConfig::new(seed));
        return;
    }
    for seed in 1..=20u64 {
        run_seed(SimConfig::new(seed));
    }
    let fresh: u64 = std::env::var("OUTPOST_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    for i in 0..fresh {
        run_seed(SimConfig::new(
            base.wrapping_add(i.wrapping_mul(0x9E37_79B9)),
        ));
    }
}

/// Five voters, no observer, a tiny committed log so that learners far behind get SNAP syncs.
#[test]
fn five_voters_with_snap_syncs() {
    for seed in 100..=105u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.voters = 5;
        cfg.observers = 0;
        cfg.commit_log_count = 5;
        run_seed(cfg);
    }
}

/// Every epoch starts 60 txns short of the zxid counter's end: leaders must step down when the counter
/// runs out (never wrapping it), so the run goes through many epochs and still converges.
#[test]
fn zxid_counter_exhaustion_forces_new_epochs() {
    for seed in 200..=202u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.faults = false;
        cfg.safety_ms = 8_000;
        cfg.epoch_start_counter = u32::MAX - 60;
        let report = ClusterSim::new(cfg).run().unwrap_or_else(|f| panic!("{f}"));
        assert!(
            report.leaders >= 3,
            "seed {seed}: {} leaders; the counter should have run out several times",
            report.leaders
        );
        assert!(report.final_zxid.counter() < u32::MAX);
    }
}

/// Two observers syncing from followers' observer-master ports (falling back to the leader), under
/// crashes and partitions: observers never vote or ack, commits reach them through followers as INFORMs,
/// and everything converges once the faults stop.
#[test]
fn observers_sync_from_observer_masters() {
    let mut via_masters = 0;
    for seed in 300..=309u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.observers = 2;
        cfg.observer_master = true;
        via_masters += run_seed(cfg).observer_master_links;
    }
    assert!(
        via_masters > 10,
        "observers connected to followers only {via_masters} times"
    );
}

/// Six voters in three hierarchical groups (`group.N`, where a quorum is a weight majority in a majority
/// of groups, not a majority of servers) with an observer, under crashes and partitions: the same
/// invariants hold and the ensemble converges.
#[test]
fn hierarchical_quorums_stay_safe_and_recover() {
    for seed in 400..=405u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.voters = 6;
        cfg.hierarchical = true;
        run_seed(cfg);
    }
}

/// Observers syncing through a throttle of one SNAP and one DIFF at a time (`leader.maxConcurrent*Syncs`
/// = 1) on the leader and on observer masters, with a tiny committed log so that syncs are SNAPs streamed
/// in many small chunks while clients keep writing: some observers are refused (their link closes, as
/// `LearnerHandler` shuts down on `SyncThrottleException`), they come back and sync later, and every
/// server converges with the same tree. Every learner that got UPTODATE had applied its master's
/// commit point at the start of its sync (ZOOKEEPER-3500).
#[test]
fn throttled_observer_syncs_retry_and_converge() {
    let (mut throttled, mut chunks, mut snaps, mut checked) = (0, 0, 0, 0);
    for seed in 500..=507u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.observers = 4;
        cfg.observer_master = seed % 2 == 0;
        cfg.commit_log_count = 5;
        cfg.max_concurrent_snap_syncs = 1;
        cfg.max_concurrent_diff_syncs = 1;
        cfg.snap_chunk_bytes = 512;
        let report = run_seed(cfg);
        throttled += report.syncs_throttled;
        chunks += report.snap_chunks;
        snaps += report.syncs.0;
        checked += report.learners_checked_at_uptodate;
    }
    assert!(throttled > 0, "no observer sync was ever throttled");
    assert!(
        chunks > 4 * snaps,
        "{chunks} chunks for {snaps} SNAP syncs: snapshots were not streamed in pieces"
    );
    assert!(checked > 0);
}

/// Without faults, an observer that is down for a while syncs its backlog (by DIFF from a long
/// committed log, or by SNAP streamed in small chunks while writes commit between them; from the leader
/// or an observer master) and gets UPTODATE (starts serving) only after it applied what its master had
/// committed when the sync began (ZOOKEEPER-3500), checked on every UPTODATE; its tree then converges
/// with everyone's.
#[test]
fn returning_observer_serves_only_after_applying_the_sync_point() {
    for seed in 600..=607u64 {
        let snap = seed % 2 == 0;
        let mut cfg = SimConfig::new(seed);
        cfg.faults = false;
        cfg.safety_ms = 6_000;
        cfg.observers = 2;
        cfg.observer_master = seed % 4 >= 2;
        cfg.commit_log_count = if snap { 3 } else { 1_000 };
        // SNAP means SNAP here: the txn log does not serve the observer instead.
        cfg.snapshot_size_factor = -1.0;
        cfg.snap_chunk_bytes = 32;
        cfg.outage_ms = Some((1_500, 3_500));
        let report = run_seed(cfg);
        assert!(
            report.learners_checked_at_uptodate >= 5,
            "seed {seed}: only {} learners reached UPTODATE",
            report.learners_checked_at_uptodate
        );
        if snap {
            assert!(
                report.syncs.0 >= 1 && report.snap_chunks > 10,
                "seed {seed}: the observer should sync by a SNAP in many chunks ({:?} syncs, {} chunks)",
                report.syncs,
                report.snap_chunks
            );
        }
    }
}

fn line(id: u64, role: &str) -> String {
    format!("server.{id}={}", ClusterSim::server_line(id, role))
}

fn step(at_ms: u64, joining: Option<String>, leaving: Option<&str>) -> SimReconfig {
    SimReconfig {
        at_ms,
        joining,
        leaving: leaving.map(str::to_string),
    }
}

/// Without faults, an observer running outside the configuration is added by reconfig, then removed:
/// every member ends with the same configuration, and the removed observer stops serving.
#[test]
fn reconfig_adds_and_removes_an_observer() {
    let mut cfg = SimConfig::new(300);
    cfg.faults = false;
    cfg.safety_ms = 6_000;
    cfg.observers = 0;
    cfg.spares = 1;
    cfg.reconfigs = vec![
        step(1_500, Some(line(4, "observer")), None),
        step(3_500, None, Some("4")),
    ];
    let report = run_seed(cfg);
    assert_eq!(report.reconfigs, 2);
    assert!(
        !report.final_config.contains("server.4="),
        "{}",
        report.final_config
    );
    assert!(
        report.serving_non_members.is_empty(),
        "{:?}",
        report.serving_non_members
    );
}

/// Without faults, a voter is added (it syncs first as a non-voting follower), then an original voter
/// is removed: the ensemble ends with voters 1, 2 and 4 and keeps committing.
#[test]
fn reconfig_adds_a_voter_and_removes_one() {
    for seed in 310..=312u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.faults = false;
        cfg.safety_ms = 6_000;
        cfg.observers = 0;
        cfg.spares = 1;
        cfg.spare_observers = false;
        cfg.reconfigs = vec![
            step(1_500, Some(line(4, "participant")), None),
            step(3_000, None, Some("3")),
        ];
        let report = run_seed(cfg);
        assert_eq!(report.reconfigs, 2);
        assert!(
            report.final_config.contains("server.4="),
            "{}",
            report.final_config
        );
        assert!(
            !report.final_config.contains("server.3="),
            "{}",
            report.final_config
        );
    }
}

/// Reconfigs under crashes and partitions (two configurations active while proposals are in flight,
/// the leader itself possibly removed, a removed server added back, an observer turned voter): every invariant holds, every reconfig eventually commits, and
/// the survivors converge on one configuration with every acknowledged write.
#[test]
fn reconfigs_under_faults_stay_safe() {
    let seeds: Vec<u64> = match std::env::var("OUTPOST_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("OUTPOST_SIM_SEED is a number")],
        Err(_) => (400..=411).collect(),
    };
    for seed in seeds {
        let mut cfg = SimConfig::new(seed);
        cfg.voters = 3;
        cfg.observers = 1;
        cfg.spares = 1;
        cfg.spare_observers = false;
        cfg.safety_ms = 20_000;
        cfg.liveness_ms = 60_000;
        cfg.reconfigs = vec![
            step(1_500, Some(line(5, "participant")), None),
            step(4_000, None, Some("4")),
            step(7_000, None, Some(&(1 + seed % 3).to_string())),
            step(10_000, Some(line(4, "observer")), None),
            step(13_000, Some(line(4, "participant")), None),
        ];
        let report = run_seed(cfg);
        assert_eq!(report.reconfigs, 5, "seed {seed}");
    }
}

/// The whole voting set is replaced under faults: two voters join in one reconfig, then the three
/// original voters (the leader among them) leave in another. Only a commit rule that needs quorums of
/// both configurations keeps the new voters holding every committed txn.
#[test]
fn reconfig_replaces_every_voter_under_faults() {
    let seeds: Vec<u64> = match std::env::var("OUTPOST_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("OUTPOST_SIM_SEED is a number")],
        Err(_) => (500..=509).collect(),
    };
    for seed in seeds {
        let mut cfg = SimConfig::new(seed);
        cfg.voters = 3;
        cfg.observers = 0;
        cfg.spares = 2;
        cfg.spare_observers = false;
        cfg.safety_ms = 15_000;
        cfg.liveness_ms = 60_000;
        cfg.reconfigs = vec![
            step(
                1_500,
                Some(format!(
                    "{},{}",
                    line(4, "participant"),
                    line(5, "participant")
                )),
                None,
            ),
            step(4_000, None, Some("1,2,3")),
        ];
        let report = run_seed(cfg);
        assert_eq!(report.reconfigs, 2, "seed {seed}");
        assert!(
            !report.final_config.contains("server.1="),
            "{}",
            report.final_config
        );
    }
}

/// Two configurations active at once, deterministically: the two new voters are cut off right as the
/// reconfig removing the three old voters is proposed (they miss the PROPOSAL). The reconfig (and every proposal after it) must
/// wait for a quorum of the new voters too; it commits once the partition heals and the new voters
/// carry on alone. A leader that committed on the old quorum only would leave the new voters without
/// the reconfig and the ensemble without a quorum.
#[test]
fn reconfig_waits_for_both_quorums() {
    for seed in 520..=522u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.faults = false;
        cfg.voters = 3;
        cfg.observers = 0;
        cfg.spares = 2;
        cfg.spare_observers = false;
        cfg.safety_ms = 9_000;
        cfg.liveness_ms = 30_000;
        cfg.isolate_on_proposal = Some((1, vec![4, 5], 3_000));
        cfg.reconfigs = vec![
            step(
                1_000,
                Some(format!(
                    "{},{}",
                    line(4, "participant"),
                    line(5, "participant")
                )),
                None,
            ),
            step(3_950, None, Some("1,2,3")),
        ];
        let report = run_seed(cfg);
        assert_eq!(report.reconfigs, 2, "seed {seed}");
        assert!(
            !report.final_config.contains("server.1="),
            "{}",
            report.final_config
        );
    }
}

/// Role changes by reconfig: a voter becomes an observer and the observer becomes a voter (each
/// leaves its role and comes back in the other); the ensemble ends with voters 1, 2, 4 and observer 3.
#[test]
fn reconfig_swaps_roles() {
    for seed in 530..=532u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.faults = false;
        cfg.safety_ms = 6_000;
        cfg.reconfigs = vec![
            step(1_500, Some(line(4, "participant")), None),
            step(3_000, Some(line(3, "observer")), None),
        ];
        let report = run_seed(cfg);
        assert_eq!(report.reconfigs, 2);
        assert!(
            report
                .final_config
                .contains("server.3=sim3:2888:3888:observer"),
            "{}",
            report.final_config
        );
        assert!(
            report
                .final_config
                .contains("server.4=sim4:2888:3888:participant"),
            "{}",
            report.final_config
        );
    }
}

/// Removing the leader hands leadership over without an election: after the three original voters
/// leave, the new voters take their roles from the designated leader the COMMITANDACTIVATE names.
#[test]
fn removing_the_leader_hands_off() {
    for seed in 540..=542u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.faults = false;
        cfg.voters = 3;
        cfg.observers = 0;
        cfg.spares = 2;
        cfg.spare_observers = false;
        cfg.safety_ms = 6_000;
        cfg.reconfigs = vec![
            step(
                1_000,
                Some(format!(
                    "{},{}",
                    line(4, "participant"),
                    line(5, "participant")
                )),
                None,
            ),
            step(3_000, None, Some("1,2,3")),
        ];
        let report = run_seed(cfg);
        assert_eq!(report.reconfigs, 2, "seed {seed}");
        // The designated leader leads and the other new voter follows it, both without electing.
        assert!(
            report.handoffs >= 2,
            "seed {seed}: {} hand-offs",
            report.handoffs
        );
    }
}

/// Without faults and with a committed log of 5 txns, a voter down while many txns commit comes back
/// and is synced by DIFF from the leader's txn log (ZooKeeper's `syncFollower` rule 5), not by SNAP;
/// with `snapshotSizeFactor` negative the same outages get SNAPs. (A factor of 0 is unlimited, as in
/// ZooKeeper.)
#[test]
fn voter_far_behind_syncs_by_diff_from_the_txn_log() {
    let (mut from_log, mut snaps_with_log, mut snaps_without) = (0, 0, 0);
    for seed in 700..=703u64 {
        for factor in [0.0, -1.0] {
            let mut cfg = SimConfig::new(seed);
            cfg.faults = false;
            cfg.safety_ms = 6_000;
            cfg.observers = 0;
            cfg.commit_log_count = 5;
            cfg.snapshot_size_factor = factor;
            cfg.outage_ms = Some((1_500, 3_500));
            let report = run_seed(cfg);
            if factor < 0.0 {
                assert_eq!(
                    report.txn_log_syncs, 0,
                    "seed {seed}: the txn log is disabled"
                );
                snaps_without += report.syncs.0;
            } else {
                from_log += report.txn_log_syncs;
                snaps_with_log += report.syncs.0;
            }
        }
    }
    // A returning server that was the leader may have logged a proposal that never committed: its
    // zxid is in no history of the new leader, so it gets a SNAP (as in Java, whose walk cannot TRUNC
    // across the epoch boundary); every other outage is served from the txn log.
    assert!(
        from_log >= 3,
        "only {from_log} syncs from the txn log in 4 outages"
    );
    assert!(
        snaps_with_log < snaps_without && snaps_without >= 4,
        "SNAPs: {snaps_with_log} with the txn log, {snaps_without} without, in 4 outages"
    );
}

/// Crashes and partitions with a committed log of 5 txns and the txn log unlimited (factor 0), with
/// observers syncing from the leader or from observer masters: most far-behind learners are served
/// from txn logs (whose records may include txns of abandoned histories below installed snapshots),
/// and every invariant still holds and the ensemble converges.
#[test]
fn faulty_ensembles_sync_from_txn_logs_safely() {
    let mut from_log = 0;
    for seed in 800..=809u64 {
        let mut cfg = SimConfig::new(seed);
        cfg.commit_log_count = 5;
        cfg.snapshot_size_factor = 0.0;
        cfg.observer_master = seed % 2 == 0;
        from_log += run_seed(cfg).txn_log_syncs;
    }
    assert!(from_log >= 10, "only {from_log} syncs from the txn log");
}
