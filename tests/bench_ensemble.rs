//! `outpost bench` against a three-member outpost ensemble, to keep the ensemble benchmark paths of
//! `scripts/bench-ensemble-vs-zookeeper.sh` working: sessions spread over every member, the open-loop
//! `--rate` mode, and `--workload failover` (kill -9 of the leader, time to the first write). Asserts that
//! the reports are sane, never on speed.

mod support;

use std::process::Command;
use support::ensemble::{find_leader_all_serving, scenario, EnsemblePlan};

/// Runs `outpost bench <args> --json` and returns its JSON report, failing with its stderr otherwise.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = Command::new(support::outpost_bin())
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("run outpost bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "outpost bench {args:?} failed: {stderr}"
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("outpost bench {args:?} printed no JSON ({e}): {stderr}"))
}

/// Closed-loop set and open-loop get over all three members report operations without errors, the
/// open loop never exceeds its offered rate, and the failover run kills exactly the leader and then
/// sees a write succeed through a survivor.
#[test]
fn bench_paths_against_an_outpost_ensemble() {
    let plan = EnsemblePlan::new(3, 0).with_outpost(&[1, 2, 3]);
    let root = scenario::test_root();
    let mut servers = scenario::start_all(&plan, root.path());
    let leader = find_leader_all_serving(&plan.members, scenario::START)
        .unwrap_or_else(|| panic!("no leader elected:\n{}", scenario::logs(&servers)));
    let connect = plan.connect_string();

    let set = bench_json(&[
        "--servers",
        &connect,
        "--workload",
        "set",
        "--clients",
        "3",
        "--depth",
        "2",
        "--duration",
        "1",
        "--keys",
        "20",
    ]);
    let r = &set["results"][0];
    assert!(r["ops_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{set}");
    assert_eq!(r["errors"].as_u64(), Some(0), "{set}");

    let rate = 200.0;
    let get = bench_json(&[
        "--servers",
        &connect,
        "--workload",
        "get",
        "--clients",
        "3",
        "--depth",
        "2",
        "--duration",
        "2",
        "--keys",
        "20",
        "--rate",
        "200",
    ]);
    let r = &get["results"][0];
    assert_eq!(r["offered_rate"].as_f64(), Some(rate), "{get}");
    let achieved = r["ops_per_sec"].as_f64().unwrap_or(0.0);
    assert!(
        achieved > 0.0 && achieved <= rate * 1.2,
        "open loop above its rate: {get}"
    );
    assert!(r["p99_us"].as_u64().unwrap_or(0) > 0, "{get}");

    let pids: Vec<String> = servers
        .iter()
        .map(|s| s.pid().expect("member running").to_string())
        .collect();
    let leader_pid = servers[(leader - 1) as usize]
        .pid()
        .expect("leader running");
    let failover = bench_json(&[
        "--servers",
        &connect,
        "--workload",
        "failover",
        "--clients",
        "3",
        "--pids",
        &pids.join(","),
        "--failover-timeout",
        "60",
    ]);
    let r = &failover["results"][0];
    assert_eq!(
        r["killed_pid"].as_u64(),
        Some(u64::from(leader_pid)),
        "{failover}"
    );
    assert!(
        !servers[(leader - 1) as usize].is_running(),
        "the leader survived SIGKILL"
    );
    let first = r["first_write_ms"].as_f64().unwrap_or(-1.0);
    assert!(first > 0.0 && first < 60_000.0, "{failover}");
    assert!(
        r["writes_before_kill"].as_u64().unwrap_or(0) > 0,
        "{failover}"
    );
    let killed_addr = plan.member(leader).client_addr().to_string();
    assert_ne!(
        r["new_leader"].as_str(),
        Some(killed_addr.as_str()),
        "{failover}"
    );
}
