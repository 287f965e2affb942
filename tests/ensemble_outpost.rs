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

/// With per-server observer-master ports (`observerMasterPort.N`, so the voters can share 127.0.0.1), the
/// outpost observer syncs from a follower, not from the leader: a follower's log shows it serving the
/// observer, writes through the observer are read everywhere, and when that follower is killed the
/// observer finds another master (or the leader) and serves again.
#[test]
fn observer_syncs_from_a_follower_observer_master() {
    use support::ensemble::scenario::{create, logs, read, runtime, test_root, ELECT, START};
    use support::ensemble::{find_leader_all_serving, start_member, wait_mode};
    let plan = EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]);
    let root = test_root();
    let ports: Vec<(String, String)> = (1..=3)
        .map(|id| {
            (
                format!("observerMasterPort.{id}"),
                support::free_port().to_string(),
            )
        })
        .collect();
    let extra: Vec<(&str, &str)> = ports
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let configs = plan.write_all(root.path(), &extra);
    let mut servers: Vec<_> = plan
        .members
        .iter()
        .zip(&configs)
        .map(|(m, cfg)| start_member(cfg, m))
        .collect();
    let voters: Vec<_> = plan.members[..3].to_vec();
    let leader = find_leader_all_serving(&voters, START)
        .unwrap_or_else(|| panic!("no leader\n{}", logs(&servers)));
    assert_eq!(
        wait_mode(plan.member(4).client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    // At a cold start the followers are still syncing when the observer looks for a master, so it may
    // end up at the leader or at either follower; restarted into a running ensemble it syncs from a
    // follower. Only what the logs say after the restart counts.
    let log_offsets: Vec<u64> = servers
        .iter()
        .map(|s| std::fs::metadata(s.log_path()).map_or(0, |m| m.len()))
        .collect();
    let observer = servers
        .iter_mut()
        .find(|s| s.member.id == 4)
        .expect("observer process");
    observer.restart();
    assert_eq!(
        wait_mode(plan.member(4).client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    let rt = runtime();
    create(&rt, plan.member(4).client, "/via-observer", b"om");
    for m in &plan.members {
        assert_eq!(read(&rt, m.client, "/via-observer"), b"om", "at {}", m.id);
    }
    let serving: Vec<u64> = servers
        .iter()
        .zip(&log_offsets)
        .filter(|(s, offset)| {
            std::fs::read(s.log_path()).is_ok_and(|bytes| {
                let since = bytes.get(**offset as usize..).unwrap_or_default();
                String::from_utf8_lossy(since).contains("connected to this observer master")
            })
        })
        .map(|(s, _)| s.member.id)
        .collect();
    assert_eq!(
        serving.len(),
        1,
        "one follower serves the observer: {serving:?}\n{}",
        logs(&servers)
    );
    assert_ne!(
        serving[0], leader,
        "the leader does not serve observers on the master port"
    );

    // Kill the follower the observer syncs from: it finds another master or the leader.
    servers
        .iter_mut()
        .find(|s| s.member.id == serving[0])
        .expect("master process")
        .kill_9();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        wait_mode(plan.member(4).client, ELECT).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    let live = voters
        .iter()
        .find(|m| m.id != serving[0])
        .expect("a live voter")
        .clone();
    create(&rt, live.client, "/after-master-died", b"2");
    assert_eq!(read(&rt, plan.member(4).client, "/after-master-died"), b"2");
}
