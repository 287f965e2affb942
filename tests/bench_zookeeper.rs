//! `outpost bench` smoke test against a real Apache ZooKeeper 3.8: the load generator runs, reports a
//! throughput, and its `--json` output parses. Not a performance assertion.

mod support;

use std::process::Command;
use support::ZooKeeperStandalone;

/// One second of the mixed workload with two pipelined clients yields non-zero ops/s, no errors, a
/// parseable JSON report, and leaves no bench tree behind.
#[test]
fn bench_smoke_against_apache_zookeeper() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zk = ZooKeeperStandalone::start(dir.path(), "");
    let out = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["bench", "--servers"])
        .arg(zk.addr.to_string())
        .args([
            "--workload",
            "mixed",
            "--clients",
            "2",
            "--depth",
            "4",
            "--duration",
            "1",
            "--keys",
            "50",
        ])
        .arg("--pid")
        .arg(zk.process.child.id().to_string())
        .arg("--json")
        .output()
        .expect("run outpost bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed: {stderr}");
    assert!(stderr.contains("ops/s"), "no table on stderr: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("bench --json prints one JSON object");
    let r = &v["results"][0];
    assert!(r["ops_per_sec"].as_f64().unwrap_or(0.0) > 0.0, "{v}");
    assert_eq!(r["errors"].as_u64(), Some(0), "{v}");
    assert!(r["rss_kib"].as_u64().unwrap_or(0) > 0, "{v}");

    let ls = Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["cli", "-server"])
        .arg(zk.addr.to_string())
        .args(["ls", "/"])
        .output()
        .expect("run outpost cli");
    assert_eq!(String::from_utf8_lossy(&ls.stdout).trim(), "[zookeeper]");
}
