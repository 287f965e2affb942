//! The Apache ZooKeeper 3.8 ensemble harness of `tests/support/ensemble.rs` against the Debian package:
//! the files it writes are valid for both ZooKeeper and `outpost conf check`, three voters elect exactly
//! one leader, and with an observer added a write is seen at every server and a kill -9 of the leader
//! leads to a new leader that serves writes. Servers start in parallel with a 200 ms tick; every wait is
//! bounded.

mod support;

use std::process::Command;

use support::ensemble::{scenario, EnsemblePlan};
use support::outpost_bin;

/// The files written for a 3-voter, 1-observer plan hold what ZooKeeper needs (myid, absolute dataDir
/// and dynamicConfigFile, one distinct server line per member with its role) and `outpost conf check`
/// accepts every member's zoo.cfg, so outpost members can later run on the same files.
#[test]
fn member_dirs_are_valid_for_outpost() {
    let root = tempfile::tempdir().expect("tempdir");
    let plan = EnsemblePlan::new(3, 1);
    let dynamic = plan.dynamic_config();
    assert_eq!(dynamic.lines().count(), 4);
    assert_eq!(dynamic.matches(":participant;127.0.0.1:").count(), 3);
    assert_eq!(dynamic.matches(":observer;127.0.0.1:").count(), 1);
    let mut ports: Vec<u16> = plan
        .members
        .iter()
        .flat_map(|m| [m.client, m.quorum, m.election])
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 12, "ports repeat in {dynamic}");

    for cfg in plan.write_all(root.path(), &[("syncLimit", "20"), ("maxClientCnxns", "0")]) {
        let dir = cfg.parent().expect("member dir");
        let text = std::fs::read_to_string(&cfg).expect("read zoo.cfg");
        assert_eq!(
            text.matches("syncLimit=").count(),
            1,
            "extra did not replace:\n{text}"
        );
        assert!(text.contains("syncLimit=20\n") && text.contains("maxClientCnxns=0\n"));
        assert!(text.contains(&format!(
            "dynamicConfigFile={}",
            dir.join("zoo.cfg.dynamic").display()
        )));
        assert_eq!(
            std::fs::read_to_string(dir.join("zoo.cfg.dynamic")).expect("read dynamic"),
            dynamic
        );
        let out = Command::new(outpost_bin())
            .args(["conf", "check", "--config"])
            .arg(&cfg)
            .output()
            .expect("run outpost conf check");
        assert!(
            out.status.success(),
            "outpost rejects {}:\n{text}\n{}{}",
            cfg.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let myid = root.path().join("member4").join("data").join("myid");
    assert_eq!(std::fs::read_to_string(myid).expect("myid").trim(), "4");
}

/// Three Java voters started together elect exactly one leader and the other two follow it.
#[test]
fn three_voters_elect_exactly_one_leader() {
    scenario::elect_exactly_one_leader(&EnsemblePlan::new(3, 0));
}

/// With 3 voters and 1 observer: the observer reports `observer`; a znode written at a follower is read
/// at every server; after kill -9 of the leader the two surviving voters elect a new leader, which
/// serves a write that the observer and the other voter then read; the old leader, restarted, rejoins
/// as a follower and has that write.
#[test]
fn observer_reads_writes_and_leader_failover() {
    scenario::observer_reads_writes_and_leader_failover(&EnsemblePlan::new(3, 1));
}
