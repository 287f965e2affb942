//! The election simulator over many seeds: each seed builds a random cluster (voters, observers,
//! majority or hierarchical quorums, random databases and network), runs a fault phase with crashes,
//! restarts, partitions, drops and delays while checking the invariants after every event, then
//! heals everything and requires a settled leader within a bound.
//!
//! Reproduce one seed with `OUTPOST_SIM_SEED=n cargo test -p outpost-core --test zab_sim`;
//! `OUTPOST_SIM_SEEDS=n` runs seeds 0..n instead of 0..500, `OUTPOST_SIM_SEEDS=a..b` a range.

use outpost_core::zab::sim::{run_seed_traced, LIVENESS_BOUND_MS};
use std::time::Instant;

/// Runs the fixed seed range 0..500 (or `OUTPOST_SIM_SEED` alone); any invariant violation or a
/// missed liveness bound fails with the seed, the reproduce command and the trace tail.
#[test]
fn zab_election_seeds() {
    let seeds: Vec<u64> = match std::env::var("OUTPOST_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("OUTPOST_SIM_SEED is a u64")],
        Err(_) => {
            // `OUTPOST_SIM_SEEDS=n` runs 0..n; `OUTPOST_SIM_SEEDS=a..b` runs a..b.
            let spec = std::env::var("OUTPOST_SIM_SEEDS").unwrap_or_else(|_| "500".into());
            let (a, b) = match spec.split_once("..") {
                Some((a, b)) => (a.parse(), b.parse()),
                None => (Ok(0), spec.parse()),
            };
            (a.expect("seed range start")..b.expect("seed range end")).collect()
        }
    };
    // A replayed seed records every message.
    let full_trace = std::env::var("OUTPOST_SIM_SEED").is_ok();
    let started = Instant::now();
    let mut worst_settle = (0, 0);
    let mut decisions = 0;
    let mut delivered = 0;
    let mut hierarchical = 0;
    for seed in &seeds {
        match run_seed_traced(*seed, full_trace) {
            Ok(s) => {
                if s.settle_ms > worst_settle.1 {
                    worst_settle = (*seed, s.settle_ms);
                }
                decisions += s.decisions;
                delivered += s.delivered;
                hierarchical += usize::from(s.hierarchical);
            }
            Err(v) => panic!(
                "seed {seed} failed; reproduce with\n  OUTPOST_SIM_SEED={seed} cargo test -p outpost-core --test zab_sim\n{v}"
            ),
        }
    }
    eprintln!(
        "{} seeds ({hierarchical} hierarchical) in {:?}: {decisions} decisions, {delivered} messages; \
         slowest settle {} ms (seed {}), bound {LIVENESS_BOUND_MS} ms",
        seeds.len(),
        started.elapsed(),
        worst_settle.1,
        worst_settle.0
    );
}
