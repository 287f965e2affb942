//! `outpost bench --workload relay` runs end to end against a real nats-server and an outpost server
//! relaying to it, and measures something: matched events with commit-to-subscriber latencies, lz4
//! compression of the values, the relay's lag from `mntr` and the CPU of its thread. Figures are not
//! asserted (that is scripts/bench-relay.sh's job), only that each one was measured.

mod support;

use std::process::Command;

use support::nats::Nats;
use support::{outpost_bin, OutpostStandalone};

/// A short open-loop relay run produces non-zero samples for every figure the benchmark reports, and
/// every acknowledged create's event arrives.
#[test]
fn relay_bench_workload_measures_latency_compression_lag_and_cpu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nats = Nats::start(dir.path());
    let relay_toml = dir.path().join("relay.toml");
    std::fs::write(
        &relay_toml,
        format!(
            "[nats]\nservers = [\"{}\"]\nstream = \"OUTPOST\"\nsubject_prefix = \"outpost\"\n\
             [events]\nencoding = \"json\"\ninclude_data = true\ncompress_over_bytes = 256\n\
             [sink]\nkind = \"nats\"\n",
            nats.url()
        ),
    )
    .expect("write relay.toml");
    let server_dir = dir.path().join("server");
    std::fs::create_dir_all(&server_dir).expect("server dir");
    let server = OutpostStandalone::start(
        &server_dir,
        &format!("relay.configFile={}", relay_toml.display()),
    );
    let addr = server.addr.to_string();
    let out = Command::new(outpost_bin())
        .args(["bench", "--workload", "relay", "--servers", &addr])
        .args(["--nats", &nats.url(), "--observer", &addr])
        .args(["--relay-pid", &server.process.child.id().to_string()])
        .args(["--duration", "3", "--rate", "200", "--clients", "2"])
        .args([
            "--depth",
            "2",
            "--value-size",
            "1024",
            "--drain-timeout",
            "20",
        ])
        .arg("--json")
        .output()
        .expect("run outpost bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON report ({e}):\n{stdout}\n{stderr}"));
    let n = |key: &str| report[key].as_f64().unwrap_or(0.0);
    assert!(n("writes") > 0.0, "{report}");
    assert_eq!(n("missing"), 0.0, "{report}");
    assert_eq!(n("matched"), n("writes"), "{report}");
    assert!(
        report["commit_to_subscriber"]["count"].as_u64() > Some(0),
        "{report}"
    );
    assert!(
        report["commit_to_subscriber"]["p99_us"].as_u64() > Some(0),
        "{report}"
    );
    assert!(n("compressed_messages") > 0.0, "{report}");
    assert!(n("lz4_ratio") > 1.0, "{report}");
    assert!(n("lag_samples") > 0.0, "{report}");
    assert!(n("relay_threads") >= 1.0, "{report}");
    assert!(n("relay_cpu_s") > 0.0, "{report}");
    assert!(n("process_cpu_s") >= n("relay_cpu_s"), "{report}");
}
