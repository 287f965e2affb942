//! Tests of the history checker (`tests/support/history.rs`) on hand-made and generated histories, without
//! processes: it must accept every history a linearizable register with lagging followers can produce, and
//! reject stale synced reads, lost or failed-but-visible writes, reads from nowhere and reordered writes.

mod support;

use proptest::prelude::*;
use support::history::{CheckError, History, Op, OpId, Outcome, SharedHistory, ViolationKind};

fn write(
    h: &mut History,
    client: u64,
    path: &str,
    value: &str,
    t: (u64, u64),
    out: Outcome,
) -> OpId {
    let op = Op::Write {
        path: path.to_string(),
        value: value.as_bytes().to_vec(),
    };
    let id = h.invoke_at(client, op, t.0);
    h.complete_at(id, out, t.1);
    id
}

fn read(
    h: &mut History,
    client: u64,
    path: &str,
    synced: bool,
    t: (u64, u64),
    out: Outcome,
) -> OpId {
    let op = Op::Read {
        path: path.to_string(),
        synced,
    };
    let id = h.invoke_at(client, op, t.0);
    h.complete_at(id, out, t.1);
    id
}

fn violation_kind(result: Result<(), support::history::Violation>) -> ViolationKind {
    match result {
        Ok(()) => panic!("expected a violation"),
        Err(v) => v.kind,
    }
}

fn linearizability_violation(h: &History) -> support::history::Violation {
    match h.check_linearizable() {
        Err(CheckError::Violation(v)) => v,
        other => panic!("expected a violation, got {other:?}"),
    }
}

// Two concurrent writes read by a third client in the order that is possible are accepted by both checks.
#[test]
fn concurrent_linearizable_history_passes() {
    let mut h = History::new();
    write(&mut h, 1, "/a", "v1", (1, 10), Outcome::ok());
    write(&mut h, 2, "/a", "v2", (2, 12), Outcome::ok());
    read(&mut h, 3, "/a", true, (3, 11), Outcome::read("v2"));
    read(&mut h, 3, "/a", true, (13, 14), Outcome::read("v1"));
    read(&mut h, 4, "/b", true, (1, 2), Outcome::no_node());
    let report = h.check().expect("linearizable");
    assert_eq!(report.paths, 2);
    assert_eq!(report.ops, 5);
}

// A synced read that misses an acknowledged write completed before it began is not linearizable, and the
// explanation names the ops with their times and values; the same read unsynced is legal (a follower lags).
#[test]
fn stale_synced_read_is_a_violation() {
    let mut h = History::new();
    write(&mut h, 1, "/a", "v1", (1_000, 2_000), Outcome::ok());
    write(&mut h, 1, "/a", "v2", (3_000, 4_000), Outcome::ok());
    let stale = read(&mut h, 2, "/a", true, (5_000, 6_000), Outcome::read("v1"));
    let v = linearizability_violation(&h);
    assert_eq!(v.kind, ViolationKind::NotLinearizable);
    let text = v.to_string();
    assert!(text.contains(&stale.to_string()), "{text}");
    assert!(text.contains("\"v2\""), "{text}");
    assert!(text.contains("0.005000ms"), "{text}");

    let mut unsynced = History::new();
    write(&mut unsynced, 1, "/a", "v1", (1_000, 2_000), Outcome::ok());
    write(&mut unsynced, 1, "/a", "v2", (3_000, 4_000), Outcome::ok());
    read(
        &mut unsynced,
        2,
        "/a",
        false,
        (5_000, 6_000),
        Outcome::read("v1"),
    );
    unsynced.check().expect("a stale unsynced read is legal");
}

// An acknowledged write that later reads do not see (the register went back to its initial value) is
// rejected by the linearizability check, and by the per-client check when the writer itself reads.
#[test]
fn lost_acknowledged_write_is_a_violation() {
    let mut h = History::new();
    write(&mut h, 1, "/a", "v1", (1, 2), Outcome::ok());
    read(&mut h, 2, "/a", true, (3, 4), Outcome::no_node());
    assert_eq!(
        linearizability_violation(&h).kind,
        ViolationKind::NotLinearizable
    );

    let mut own = History::new();
    write(&mut own, 1, "/a", "v1", (1, 2), Outcome::ok());
    read(&mut own, 1, "/a", false, (3, 4), Outcome::no_node());
    assert_eq!(
        violation_kind(own.check_sequential_reads()),
        ViolationKind::ReadWentBack
    );
}

// A read of a value nobody wrote, of a value whose write failed, or of a value written only after the
// read completed is rejected by both checks.
#[test]
fn read_of_never_written_value_is_a_violation() {
    let mut ghost = History::new();
    write(&mut ghost, 1, "/a", "v1", (1, 2), Outcome::ok());
    read(&mut ghost, 2, "/a", false, (3, 4), Outcome::read("ghost"));
    assert_eq!(
        violation_kind(ghost.check_sequential_reads()),
        ViolationKind::NeverWritten
    );
    ghost
        .check_linearizable()
        .expect("unsynced reads are not searched");

    let mut failed = History::new();
    write(&mut failed, 1, "/a", "v1", (1, 2), Outcome::Failed);
    read(&mut failed, 2, "/a", true, (3, 4), Outcome::read("v1"));
    assert_eq!(
        linearizability_violation(&failed).kind,
        ViolationKind::NeverWritten
    );
    assert_eq!(
        violation_kind(failed.check_sequential_reads()),
        ViolationKind::NeverWritten
    );

    let mut future = History::new();
    read(&mut future, 2, "/a", true, (1, 2), Outcome::read("v1"));
    write(&mut future, 1, "/a", "v1", (3, 4), Outcome::Unknown);
    assert_eq!(
        linearizability_violation(&future).kind,
        ViolationKind::NeverWritten
    );
}

// One client seeing two sequential writes in the opposite order is rejected: unsynced by the per-client
// check, synced by the linearizability check.
#[test]
fn write_reordering_visible_to_one_client_is_a_violation() {
    for synced in [false, true] {
        let mut h = History::new();
        write(&mut h, 1, "/a", "a", (1, 2), Outcome::ok());
        write(&mut h, 1, "/a", "b", (3, 4), Outcome::ok());
        read(&mut h, 2, "/a", synced, (5, 6), Outcome::read("b"));
        read(&mut h, 2, "/a", synced, (7, 8), Outcome::read("a"));
        if synced {
            assert_eq!(
                linearizability_violation(&h).kind,
                ViolationKind::NotLinearizable
            );
        } else {
            h.check_linearizable().expect("no synced reads");
            let v = h.check_sequential_reads().expect_err("reordered");
            assert_eq!(v.kind, ViolationKind::ReadWentBack);
            assert!(v.to_string().contains("client 2"), "{v}");
        }
    }
}

// Synced reads that see two concurrent writes as x, then y, then x again pass every shortcut check and
// are rejected by the search itself, whose explanation lists the ops around the point it got stuck.
#[test]
fn flip_flopping_synced_reads_need_the_search() {
    let mut h = History::new();
    write(&mut h, 1, "/a", "x", (1, 10), Outcome::ok());
    write(&mut h, 2, "/a", "y", (1, 10), Outcome::ok());
    read(&mut h, 3, "/a", true, (11, 12), Outcome::read("x"));
    read(&mut h, 4, "/a", true, (13, 14), Outcome::read("y"));
    read(&mut h, 5, "/a", true, (15, 16), Outcome::read("x"));
    let v = linearizability_violation(&h);
    assert_eq!(v.kind, ViolationKind::NotLinearizable);
    let text = v.to_string();
    assert!(text.contains("longest linearizable prefix"), "{text}");
    assert!(
        text.contains("-> \"y\"") && text.contains("-> \"x\""),
        "{text}"
    );
    h.check_sequential_reads()
        .expect("each client read once, and one order (y, x) explains what they saw");
}

// Two clients that see two concurrent writes in opposite orders break ZooKeeper's single order of writes,
// although each client alone is monotonic.
#[test]
fn clients_disagreeing_on_write_order_is_a_violation() {
    let mut h = History::new();
    write(&mut h, 1, "/a", "a", (1, 10), Outcome::ok());
    write(&mut h, 2, "/a", "b", (1, 10), Outcome::ok());
    read(&mut h, 3, "/a", false, (11, 12), Outcome::read("a"));
    read(&mut h, 3, "/a", false, (13, 14), Outcome::read("b"));
    read(&mut h, 4, "/a", false, (11, 12), Outcome::read("b"));
    read(&mut h, 4, "/a", false, (13, 14), Outcome::read("a"));
    let v = h.check_sequential_reads().expect_err("two orders");
    assert_eq!(v.kind, ViolationKind::WriteOrderDisagrees);
    let text = v.to_string();
    assert!(
        text.contains("client 3") && text.contains("client 4"),
        "{text}"
    );
}

// A write that timed out may take effect long after its client gave up on it, even after a later
// acknowledged write: reading it then is legal for both checks; so is a write that was never completed.
#[test]
fn indeterminate_write_that_took_effect_late_is_legal() {
    let mut h = History::new();
    write(&mut h, 1, "/a", "v1", (1, 5), Outcome::Unknown);
    write(&mut h, 2, "/a", "v2", (10, 12), Outcome::ok());
    read(&mut h, 3, "/a", true, (13, 14), Outcome::read("v2"));
    read(&mut h, 3, "/a", true, (20, 21), Outcome::read("v1"));
    let in_flight = Op::Write {
        path: "/a".to_string(),
        value: b"v3".to_vec(),
    };
    h.invoke_at(4, in_flight, 22);
    read(&mut h, 3, "/a", true, (30, 31), Outcome::read("v3"));
    h.check()
        .expect("late effects of indeterminate writes are legal");
}

// mzxids that go backwards for one client are a violation even when values alone could not show it.
#[test]
fn mzxid_going_back_is_a_violation() {
    let mut h = History::new();
    write(&mut h, 1, "/a", "x", (1, 10), Outcome::ok_at(5));
    write(&mut h, 2, "/a", "x", (1, 10), Outcome::ok_at(6));
    read(&mut h, 3, "/a", false, (11, 12), Outcome::read_at("x", 6));
    read(&mut h, 3, "/a", false, (13, 14), Outcome::read_at("x", 5));
    let v = h.check_sequential_reads().expect_err("mzxid went back");
    assert_eq!(v.kind, ViolationKind::ReadWentBack);
    assert!(v.to_string().contains("0x5"), "{v}");
}

// A search that runs out of budget says "unknown", distinct from a violation, and succeeds with the
// default budget.
#[test]
fn budget_exceeded_is_reported_apart_from_violations() {
    let h = simulate(&SimConfig {
        seed: 7,
        clients: 4,
        paths: 1,
        ops: 200,
        sequential: false,
        duplicates: false,
    })
    .0;
    match h.check_linearizable_with_budget(3) {
        Err(e @ CheckError::BudgetExceeded { .. }) => {
            assert!(e.to_string().contains("unknown (budget exceeded)"), "{e}")
        }
        other => panic!("expected budget exceeded, got {other:?}"),
    }
    h.check_linearizable().expect("linearizable");
}

// 2 000 ops of 8 clients on one path (the search's worst case: nothing splits by path) are decided.
#[test]
fn two_thousand_ops_of_eight_clients_are_decided() {
    let (h, _) = simulate(&SimConfig {
        seed: 2_000,
        clients: 8,
        paths: 1,
        ops: 2_000,
        sequential: false,
        duplicates: false,
    });
    let report = h.check().unwrap_or_else(|e| panic!("{e}"));
    assert!(report.ops > 1_000, "{report:?}");
}

// Threads recording with the real clock through SharedHistory, against a register behind a mutex (each
// op takes effect while the lock is held, inside its recorded interval), produce a history that passes.
#[test]
fn threads_recording_with_the_real_clock_pass() {
    let history = SharedHistory::new();
    let register: std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>> = Default::default();
    let threads: Vec<_> = (0..4u64)
        .map(|client| {
            let history = history.clone();
            let register = register.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(client);
                for i in 0..200 {
                    let path = "/shared".to_string();
                    if rng.chance(50) {
                        let value = format!("t{client}-{i}").into_bytes();
                        let op = Op::Write {
                            path,
                            value: value.clone(),
                        };
                        let id = history.invoke(client, op);
                        // An indeterminate write may have happened or not.
                        let applied = !rng.chance(10);
                        if applied {
                            *register.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                        }
                        let outcome = match (applied, rng.chance(20)) {
                            (true, false) => Outcome::ok(),
                            (false, false) => Outcome::Failed,
                            (_, true) => Outcome::Unknown,
                        };
                        history.complete(id, outcome);
                    } else {
                        let synced = rng.chance(50);
                        let id = history.invoke(client, Op::Read { path, synced });
                        let value = register.lock().unwrap_or_else(|e| e.into_inner()).clone();
                        history.complete(id, Outcome::Read { value, zxid: None });
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    let report = history.snapshot().check().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.paths, 1);
}

/// splitmix64: a seeded generator, so a failing case replays from the seed proptest prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug)]
struct SimConfig {
    seed: u64,
    clients: u64,
    paths: u64,
    ops: usize,
    /// One op at a time, all clients sharing one timeline.
    sequential: bool,
    /// Values from a small alphabet, so reads do not name their writes.
    duplicates: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ok,
    Failed,
    Unknown,
}

struct Planned {
    client: u64,
    path: String,
    /// `Some(value)` for a write (`Some(None)`: delete), `None` for a read.
    write: Option<Option<Vec<u8>>>,
    synced: bool,
    t0: u64,
    t1: u64,
    kind: Kind,
    /// When the op takes effect on the register, if ever.
    lp: Option<u64>,
    result: Option<(Option<Vec<u8>>, Option<i64>)>,
}

/// What the simulation knows beyond the history: the time after which nothing happens.
struct SimInfo {
    quiet_after: u64,
}

/// Runs clients against a simulated linearizable register per path with followers that lag: each op takes
/// effect at one instant inside its interval (an indeterminate write possibly much later, or never), a
/// synced read returns the latest value, an unsynced read any value between the newest its client has seen
/// and the latest.
fn simulate(cfg: &SimConfig) -> (History, SimInfo) {
    let mut rng = Rng(cfg.seed);
    let clients = cfg.clients.max(1);
    let mut cursor = vec![1u64; clients as usize];
    let mut plan: Vec<Planned> = Vec::new();
    for i in 0..cfg.ops {
        let client = rng.below(clients);
        let c = if cfg.sequential { 0 } else { client as usize };
        let t0 = cursor[c] + 1 + rng.below(3) * 10;
        let t1 = t0 + 1 + rng.below(40) * 10;
        cursor[c] = t1;
        let path = format!("/p{}", rng.below(cfg.paths));
        let is_write = rng.chance(50);
        let kind = match rng.below(10) {
            0 => Kind::Failed,
            1 => Kind::Unknown,
            _ => Kind::Ok,
        };
        let lp = match kind {
            Kind::Ok => Some(t0 + rng.below(t1 - t0 + 1)),
            Kind::Failed => None,
            Kind::Unknown if !is_write || rng.chance(30) => None,
            Kind::Unknown => Some(t0 + rng.below(t1 - t0 + 1 + 1_000)),
        };
        let write = is_write.then(|| {
            if rng.chance(5) {
                None
            } else if cfg.duplicates {
                Some(format!("d{}", rng.below(3)).into_bytes())
            } else {
                Some(format!("c{client}-{i}").into_bytes())
            }
        });
        // Reads that fail or time out carry no value; give them an effect time anyway to keep order.
        let lp = if is_write {
            lp
        } else {
            Some(t0 + rng.below(t1 - t0 + 1))
        };
        plan.push(Planned {
            client,
            path,
            write,
            synced: rng.chance(50),
            t0,
            t1,
            kind,
            lp,
            result: None,
        });
    }

    let mut order: Vec<usize> = (0..plan.len()).filter(|&i| plan[i].lp.is_some()).collect();
    order.sort_by_key(|&i| (plan[i].lp, i));
    // Per path: the commit log (value per index, index 0 the initial "no node").
    let mut logs: std::collections::HashMap<String, Vec<Option<Vec<u8>>>> = Default::default();
    let mut seen: std::collections::HashMap<(u64, String), usize> = Default::default();
    for i in order {
        let log = logs
            .entry(plan[i].path.clone())
            .or_insert_with(|| vec![None]);
        let key = (plan[i].client, plan[i].path.clone());
        let newest_seen = seen.get(&key).copied().unwrap_or(0);
        match plan[i].write.clone() {
            Some(value) => {
                log.push(value);
                if plan[i].kind == Kind::Ok {
                    seen.insert(key, (log.len() - 1).max(newest_seen));
                }
            }
            None => {
                let latest = log.len() - 1;
                let at = if plan[i].synced {
                    latest
                } else {
                    newest_seen + rng.below((latest - newest_seen) as u64 + 1) as usize
                };
                seen.insert(key, at);
                let value = log[at].clone();
                // The Stat's mzxid is the index of the write that produced the value; no node has no Stat.
                let zxid = value.as_ref().map(|_| at as i64);
                plan[i].result = Some((value, zxid));
            }
        }
    }

    let mut h = History::new();
    let mut by_invoke: Vec<usize> = (0..plan.len()).collect();
    by_invoke.sort_by_key(|&i| (plan[i].t0, i));
    let mut quiet_after = 0;
    for i in by_invoke {
        let p = &plan[i];
        let op = match &p.write {
            Some(Some(value)) => Op::Write {
                path: p.path.clone(),
                value: value.clone(),
            },
            Some(None) => Op::Delete {
                path: p.path.clone(),
            },
            None => Op::Read {
                path: p.path.clone(),
                synced: p.synced,
            },
        };
        let outcome = match (&p.write, p.kind, &p.result) {
            (_, Kind::Failed, _) => Outcome::Failed,
            (_, Kind::Unknown, _) => Outcome::Unknown,
            (Some(_), Kind::Ok, _) => Outcome::ok(),
            (None, Kind::Ok, Some((value, zxid))) => Outcome::Read {
                value: value.clone(),
                zxid: if cfg.seed & 1 == 0 { *zxid } else { None },
            },
            (None, Kind::Ok, None) => unreachable!("every returned read took effect"),
        };
        let id = h.invoke_at(p.client, op, p.t0);
        h.complete_at(id, outcome, p.t1);
        quiet_after = quiet_after.max(p.t1).max(p.lp.unwrap_or(0));
    }
    (h, SimInfo { quiet_after })
}

/// Breaks a generated linearizable history in one of several ways that no interleaving can explain;
/// returns what the broken history must be rejected for.
fn mutate(h: &mut History, info: &SimInfo, how: u8, pick: u64) -> ViolationKind {
    let records = h.records().to_vec();
    let returned_reads: Vec<usize> = (0..records.len())
        .filter(|&i| matches!(records[i].outcome, Some(Outcome::Read { .. })))
        .collect();
    match how % 5 {
        // A synced read returns a value whose writer completed before another acknowledged write that
        // completed before the read began: a stale read, appended after everything settled.
        0 => {
            let t = info.quiet_after + 10;
            write(h, 100, "/p0", "old", (t + 1, t + 2), Outcome::ok());
            write(h, 101, "/p0", "new", (t + 3, t + 4), Outcome::ok());
            read(h, 102, "/p0", true, (t + 5, t + 6), Outcome::read("old"));
            ViolationKind::NotLinearizable
        }
        // A read returns the value of an acknowledged write invoked only after the read completed.
        1 => {
            let t = info.quiet_after + 10;
            let victim = returned_reads
                .get((pick as usize) % returned_reads.len().max(1))
                .copied();
            let mut rebuilt = History::new();
            for r in &records {
                let id = rebuilt.invoke_at(r.client, r.op.clone(), r.invoked_ns);
                let outcome = if Some(r.id.0) == victim {
                    Outcome::read("from-the-future")
                } else {
                    r.outcome.clone().unwrap_or(Outcome::Unknown)
                };
                rebuilt.complete_at(id, outcome, r.completed_ns.unwrap_or(r.invoked_ns));
            }
            if victim.is_none() {
                read(
                    &mut rebuilt,
                    103,
                    "/p0",
                    true,
                    (t, t + 1),
                    Outcome::read("from-the-future"),
                );
            }
            let path = match victim {
                Some(v) => records[v].op.path().to_string(),
                None => "/p0".to_string(),
            };
            write(
                &mut rebuilt,
                104,
                &path,
                "from-the-future",
                (t + 5, t + 6),
                Outcome::ok(),
            );
            *h = rebuilt;
            ViolationKind::NeverWritten
        }
        // An acknowledged write that some read saw is turned into a failed one: the read saw nothing real.
        2 => {
            let seen_writes: Vec<usize> = (0..records.len())
                .filter(|&i| match (&records[i].op, &records[i].outcome) {
                    (Op::Write { path, value }, Some(Outcome::Ok { .. })) => {
                        returned_reads.iter().any(|&r| {
                            records[r].op.path() == path
                                && matches!(&records[r].outcome,
                                    Some(Outcome::Read { value: Some(v), .. }) if v == value)
                        })
                    }
                    _ => false,
                })
                .collect();
            let Some(&victim) = seen_writes.get((pick as usize) % seen_writes.len().max(1)) else {
                // Nothing was read back: append a failed write that is read.
                let t = info.quiet_after + 10;
                write(h, 105, "/p0", "failed", (t, t + 1), Outcome::Failed);
                read(
                    h,
                    106,
                    "/p0",
                    false,
                    (t + 2, t + 3),
                    Outcome::read("failed"),
                );
                return ViolationKind::NeverWritten;
            };
            let mut rebuilt = History::new();
            for r in &records {
                let id = rebuilt.invoke_at(r.client, r.op.clone(), r.invoked_ns);
                let outcome = if r.id.0 == victim {
                    Outcome::Failed
                } else {
                    r.outcome.clone().unwrap_or(Outcome::Unknown)
                };
                rebuilt.complete_at(id, outcome, r.completed_ns.unwrap_or(r.invoked_ns));
            }
            *h = rebuilt;
            ViolationKind::NeverWritten
        }
        // Two concurrent writes are seen by synced reads in the order x, y, x: only the search can tell.
        4 => {
            let t = info.quiet_after + 10;
            write(h, 109, "/p0", "x", (t + 1, t + 10), Outcome::ok());
            write(h, 110, "/p0", "y", (t + 1, t + 10), Outcome::ok());
            read(h, 111, "/p0", true, (t + 11, t + 12), Outcome::read("x"));
            read(h, 112, "/p0", true, (t + 13, t + 14), Outcome::read("y"));
            read(h, 113, "/p0", true, (t + 15, t + 16), Outcome::read("x"));
            ViolationKind::NotLinearizable
        }
        // One client reads two sequential acknowledged writes in the wrong order (unsynced reads).
        _ => {
            let t = info.quiet_after + 10;
            write(h, 107, "/p0", "first", (t + 1, t + 2), Outcome::ok());
            write(h, 107, "/p0", "second", (t + 3, t + 4), Outcome::ok());
            read(
                h,
                108,
                "/p0",
                false,
                (t + 5, t + 6),
                Outcome::read("second"),
            );
            read(h, 108, "/p0", false, (t + 7, t + 8), Outcome::read("first"));
            ViolationKind::ReadWentBack
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // Any sequential history of a register (one op at a time, indeterminate writes applied or not) passes.
    #[test]
    fn sequential_histories_pass(seed in any::<u64>(), clients in 1u64..6, paths in 1u64..4,
                                 ops in 0usize..150, duplicates in any::<bool>()) {
        let cfg = SimConfig { seed, clients, paths, ops, sequential: true, duplicates };
        let (h, _) = simulate(&cfg);
        if let Err(e) = h.check() {
            panic!("{cfg:?}\n{e}");
        }
    }

    // Any history of concurrent clients against a linearizable register with lagging followers passes.
    #[test]
    fn simulated_concurrent_histories_pass(seed in any::<u64>(), clients in 1u64..9, paths in 1u64..4,
                                           ops in 0usize..300, duplicates in any::<bool>()) {
        let cfg = SimConfig { seed, clients, paths, ops, sequential: false, duplicates };
        let (h, _) = simulate(&cfg);
        if let Err(e) = h.check() {
            panic!("{cfg:?}\n{e}");
        }
    }

    // A generated history broken on purpose is rejected, for the reason the mutation planted.
    #[test]
    fn mutated_histories_fail(seed in any::<u64>(), clients in 1u64..9, ops in 0usize..200,
                              how in 0u8..5, pick in any::<u64>()) {
        let cfg = SimConfig { seed, clients, paths: 2, ops, sequential: false, duplicates: false };
        let (mut h, info) = simulate(&cfg);
        let expected = mutate(&mut h, &info, how, pick);
        let found = match h.check_linearizable() {
            Err(CheckError::Violation(v)) => Some(v),
            Err(e @ CheckError::BudgetExceeded { .. }) => panic!("{cfg:?}\n{e}"),
            Ok(_) => h.check_sequential_reads().err(),
        };
        match found {
            Some(v) => prop_assert_eq!(v.kind, expected, "{:?}\n{}", cfg, v),
            None => panic!("{cfg:?} mutation {how} not caught"),
        }
    }
}
