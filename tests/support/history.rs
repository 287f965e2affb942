//! A history checker for ensemble tests: concurrent clients record what they invoked and what they saw,
//! and the checker decides whether ZooKeeper's promises held (see "History checker" in docs/testing.md).
//!
//! The model is a set of independent registers, one per znode path, holding the node's data or "no node".
//! ZooKeeper promises two different things, so there are two checks:
//!
//! - [`History::check_linearizable`]: writes, and reads issued after a `sync` on the same session, are
//!   linearizable (ZooKeeper's "linearizable writes"; `sync` + read is the documented way to read the latest
//!   committed value). Decided per path by the Wing & Gong / Lowe search with memoization of
//!   (linearized set, register value), as Knossos and Porcupine do, under a step budget.
//! - [`History::check_sequential_reads`]: every read, synced or not, returns a value some write wrote (or
//!   the initial value), never one written only after the read completed; a client never reads a value
//!   older than one it already read or wrote on that path, also after reconnecting to another server
//!   (ZooKeeper's "sequential consistency" and "single system image", enforced in Java by the client's
//!   `lastZxidSeen` and `ZooKeeperServer.processConnectRequest` refusing a server that is behind); and,
//!   among writes of values written only once, all clients saw the writes in one order
//!   consistent with real time.
//!
//! Timestamps are taken by [`History::invoke`] before the request is sent and by [`History::complete`]
//! after the reply arrived, so the recorded interval contains the real one. An op precedes another only if
//! it completed strictly before the other was invoked; equal times count as concurrent.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The default number of search steps per path before [`History::check_linearizable`] gives up. The
/// memo table holds at most one entry per step, of about (ops / 8 + 40) bytes.
pub const DEFAULT_BUDGET: u64 = 1_000_000;

/// Identifies one recorded operation; printed as `#n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `setData(path, value, -1)`, or `create(path, value)` (its "node must not exist" precondition is not
    /// modeled: a create that failed with NodeExists is recorded as `Failed`).
    Write { path: String, value: Vec<u8> },
    /// `delete(path, -1)`: a write of "no node" (the NoNode precondition is not modeled either).
    Delete { path: String },
    /// `getData(path)`; `synced` when the session issued `sync(path)` and waited for it just before.
    Read { path: String, synced: bool },
}

impl Op {
    /// The znode path the op works on.
    pub fn path(&self) -> &str {
        match self {
            Op::Write { path, .. } | Op::Delete { path } | Op::Read { path, .. } => path,
        }
    }

    fn is_read(&self) -> bool {
        matches!(self, Op::Read { .. })
    }
}

/// What the client saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A write was acknowledged; `zxid` is the mzxid of the returned Stat when known.
    Ok { zxid: Option<i64> },
    /// A definite error (BadVersion, NodeExists, NoAuth, ...): the write did not happen. For a read: no
    /// value was returned, so the read is ignored.
    Failed,
    /// Timeout, ConnectionLoss, SessionExpired: a write may or may not have happened, and may take effect at
    /// any time after its invocation. For a read: ignored. An op never completed counts as `Unknown`.
    Unknown,
    /// A read returned: `value` is `None` for NoNode; `zxid` is the mzxid of the returned Stat when known.
    Read {
        value: Option<Vec<u8>>,
        zxid: Option<i64>,
    },
}

impl Outcome {
    /// An acknowledged write without a zxid.
    pub fn ok() -> Outcome {
        Outcome::Ok { zxid: None }
    }

    /// An acknowledged write whose Stat carried `zxid` as mzxid.
    pub fn ok_at(zxid: i64) -> Outcome {
        Outcome::Ok { zxid: Some(zxid) }
    }

    /// A read that returned `value` (no Stat).
    pub fn read(value: impl Into<Vec<u8>>) -> Outcome {
        Outcome::Read {
            value: Some(value.into()),
            zxid: None,
        }
    }

    /// A read that returned `value` with mzxid `zxid`.
    pub fn read_at(value: impl Into<Vec<u8>>, zxid: i64) -> Outcome {
        Outcome::Read {
            value: Some(value.into()),
            zxid: Some(zxid),
        }
    }

    /// A read that answered NoNode.
    pub fn no_node() -> Outcome {
        Outcome::Read {
            value: None,
            zxid: None,
        }
    }
}

/// One recorded operation. Times are nanoseconds since the history began, at least 1.
#[derive(Clone, Debug)]
pub struct Record {
    /// Its id, in order of recording.
    pub id: OpId,
    /// The client (session) that issued it.
    pub client: u64,
    /// What was asked.
    pub op: Op,
    /// When it was invoked.
    pub invoked_ns: u64,
    /// When it completed; `None` while the op is still in flight.
    pub completed_ns: Option<u64>,
    /// What the client saw; `None` while in flight.
    pub outcome: Option<Outcome>,
}

impl Record {
    fn write_value(&self) -> Option<Option<&[u8]>> {
        match &self.op {
            Op::Write { value, .. } => Some(Some(value)),
            Op::Delete { .. } => Some(None),
            Op::Read { .. } => None,
        }
    }

    /// A write that certainly happened.
    fn write_ok(&self) -> bool {
        !self.op.is_read() && matches!(self.outcome, Some(Outcome::Ok { .. }))
    }

    /// A write that may have happened (Ok, Unknown or never completed).
    fn write_possible(&self) -> bool {
        !self.op.is_read() && !matches!(self.outcome, Some(Outcome::Failed))
    }

    /// The value and mzxid a read returned, if it returned.
    fn read_result(&self) -> Option<(Option<&[u8]>, Option<i64>)> {
        match (&self.op, &self.outcome) {
            (Op::Read { .. }, Some(Outcome::Read { value, zxid })) => {
                Some((value.as_deref(), *zxid))
            }
            _ => None,
        }
    }

    /// The completion time of a determinate op; `u64::MAX` (never) for an indeterminate write.
    fn end_ns(&self) -> u64 {
        match (&self.outcome, self.completed_ns) {
            (Some(Outcome::Unknown), _) | (None, _) | (_, None) => u64::MAX,
            (_, Some(t)) => t,
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} client {} ", self.id, self.client)?;
        match &self.op {
            Op::Write { path, value } => write!(f, "write {path} = {}", show(Some(value)))?,
            Op::Delete { path } => write!(f, "delete {path}")?,
            Op::Read { path, synced } => {
                write!(f, "{}read {path}", if *synced { "sync+" } else { "" })?
            }
        }
        write!(f, " [{} .. ", ms(self.invoked_ns))?;
        match self.completed_ns {
            Some(t) => write!(f, "{}]", ms(t))?,
            None => write!(f, "never]")?,
        }
        match &self.outcome {
            None => write!(f, " in flight"),
            Some(Outcome::Ok { zxid: None }) => write!(f, " ok"),
            Some(Outcome::Ok { zxid: Some(z) }) => write!(f, " ok mzxid 0x{z:x}"),
            Some(Outcome::Failed) => write!(f, " failed"),
            Some(Outcome::Unknown) => write!(f, " unknown"),
            Some(Outcome::Read { value, zxid }) => {
                write!(f, " -> {}", show(value.as_deref()))?;
                match zxid {
                    Some(z) => write!(f, " mzxid 0x{z:x}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A register value for humans: quoted text when printable, hex otherwise, cut at 40 bytes.
fn show(value: Option<&[u8]>) -> String {
    let Some(bytes) = value else {
        return "<no node>".to_string();
    };
    let cut = &bytes[..bytes.len().min(40)];
    let more = if bytes.len() > 40 { "..." } else { "" };
    match std::str::from_utf8(cut) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => format!("{s:?}{more}"),
        _ => {
            let hex: String = cut.iter().map(|b| format!("{b:02x}")).collect();
            format!("0x{hex}{more}")
        }
    }
}

fn ms(ns: u64) -> String {
    if ns == 0 {
        return "start".to_string();
    }
    format!("{}.{:06}ms", ns / 1_000_000, ns % 1_000_000)
}

/// Which promise a violation breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    /// A read returned a value that no write wrote (before the read completed), nor the initial value.
    NeverWritten,
    /// No linearization of the writes and synced reads on the path exists.
    NotLinearizable,
    /// A client read a value older than one it had already read or written.
    ReadWentBack,
    /// Clients observed the writes on a path in orders no single write order explains.
    WriteOrderDisagrees,
}

/// A broken promise, with the few ops that show it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// Which promise broke.
    pub kind: ViolationKind,
    /// The znode path (register) it broke on.
    pub path: String,
    /// What went wrong, in a sentence or two naming the ops by id.
    pub explanation: String,
    /// The ops involved, printed one per line with times, values and outcomes.
    pub ops: Vec<Record>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:?} on {}: {}", self.kind, self.path, self.explanation)?;
        for op in &self.ops {
            writeln!(f, "  {op}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

/// Why [`History::check_linearizable`] did not say yes.
#[derive(Clone, Debug)]
pub enum CheckError {
    /// The history is certainly not linearizable.
    Violation(Violation),
    /// The search gave up: the history may or may not be linearizable.
    BudgetExceeded {
        path: String,
        ops: usize,
        steps: u64,
    },
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Violation(v) => write!(f, "{v}"),
            CheckError::BudgetExceeded { path, ops, steps } => write!(
                f,
                "unknown (budget exceeded): the linearizability search on {path} ({ops} ops) gave up \
                 after {steps} steps"
            ),
        }
    }
}

impl std::error::Error for CheckError {}

/// What a successful linearizability check looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Paths checked.
    pub paths: usize,
    /// Writes (Ok or indeterminate) and synced reads that took part.
    pub ops: usize,
    /// Search steps, summed over paths.
    pub steps: u64,
}

/// A recorded history of concurrent client operations.
#[derive(Clone, Debug)]
pub struct History {
    start: Instant,
    records: Vec<Record>,
    initial: HashMap<String, Option<Vec<u8>>>,
}

impl Default for History {
    fn default() -> History {
        History::new()
    }
}

impl History {
    /// An empty history; its clock starts now. Every path starts as "no node" unless
    /// [`History::set_initial`] says otherwise.
    pub fn new() -> History {
        History {
            start: Instant::now(),
            records: Vec::new(),
            initial: HashMap::new(),
        }
    }

    /// Declares the value `path` held before the history began (`None`: no node).
    pub fn set_initial(&mut self, path: &str, value: Option<Vec<u8>>) {
        self.initial.insert(path.to_string(), value);
    }

    fn now_ns(&self) -> u64 {
        // +1 keeps real times apart from 0, the time of the initial value.
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    /// Records that `client` (one id per ZooKeeper session, kept across reconnects) invokes `op` now.
    /// Call it before sending the request. A client's ops are taken to be sent in invocation order (a
    /// session's requests apply in order), so threads must not race to send on one client id.
    pub fn invoke(&mut self, client: u64, op: Op) -> OpId {
        let now = self.now_ns();
        self.invoke_at(client, op, now)
    }

    /// Records a completion now. Call it after the reply (or the error) arrived.
    pub fn complete(&mut self, id: OpId, outcome: Outcome) {
        let now = self.now_ns();
        self.complete_at(id, outcome, now);
    }

    /// [`History::invoke`] with an explicit time in nanoseconds (at least 1), for hand-made histories.
    pub fn invoke_at(&mut self, client: u64, op: Op, at_ns: u64) -> OpId {
        assert!(at_ns >= 1, "times start at 1 ns; 0 is the initial value's");
        let id = OpId(self.records.len());
        self.records.push(Record {
            id,
            client,
            op,
            invoked_ns: at_ns,
            completed_ns: None,
            outcome: None,
        });
        id
    }

    /// [`History::complete`] with an explicit time in nanoseconds. Panics on a test bug: an unknown id, a
    /// second completion, a time before the invocation, or an outcome that does not fit the op.
    pub fn complete_at(&mut self, id: OpId, outcome: Outcome, at_ns: u64) {
        let record = self
            .records
            .get_mut(id.0)
            .unwrap_or_else(|| panic!("complete of unknown op {id}"));
        assert!(record.outcome.is_none(), "{id} completed twice");
        assert!(
            at_ns >= record.invoked_ns,
            "{id} completes before it was invoked"
        );
        let fits = matches!(
            (&record.op, &outcome),
            (_, Outcome::Failed | Outcome::Unknown)
                | (Op::Read { .. }, Outcome::Read { .. })
                | (Op::Write { .. } | Op::Delete { .. }, Outcome::Ok { .. })
        );
        assert!(
            fits,
            "{id}: outcome {outcome:?} does not fit {:?}",
            record.op
        );
        record.completed_ns = Some(at_ns);
        record.outcome = Some(outcome);
    }

    /// Every recorded op, in invocation order of recording.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Runs both checks.
    pub fn check(&self) -> Result<CheckReport, CheckError> {
        let report = self.check_linearizable()?;
        self.check_sequential_reads()
            .map_err(CheckError::Violation)?;
        Ok(report)
    }

    /// Checks that writes and synced reads are linearizable, path by path, with [`DEFAULT_BUDGET`].
    pub fn check_linearizable(&self) -> Result<CheckReport, CheckError> {
        self.check_linearizable_with_budget(DEFAULT_BUDGET)
    }

    /// [`History::check_linearizable`] with a step budget per path.
    pub fn check_linearizable_with_budget(&self, budget: u64) -> Result<CheckReport, CheckError> {
        let mut report = CheckReport::default();
        for (path, ops) in self.by_path() {
            // Unsynced reads may be stale (a follower serves them): check_sequential_reads covers them.
            let ops: Vec<&Record> = ops
                .into_iter()
                .filter(|r| !matches!(r.op, Op::Read { synced: false, .. }))
                .collect();
            self.check_never_written(&path, &ops)
                .map_err(CheckError::Violation)?;
            // A failed write did not happen; it takes no part in the search.
            let ops: Vec<&Record> = ops
                .into_iter()
                .filter(|r| r.write_possible() || r.read_result().is_some())
                .collect();
            self.check_stale_reads(&path, &ops)
                .map_err(CheckError::Violation)?;
            let (ops, ends) = self.search_set(&path, ops);
            if ops.is_empty() {
                continue;
            }
            let steps = wgl::search(&path, self.initial_of(&path), &ops, &ends, budget)?;
            report.paths += 1;
            report.ops += ops.len();
            report.steps += steps;
        }
        Ok(report)
    }

    /// Checks what every read promises in ZooKeeper, synced or not: it returns a written value, never goes
    /// back in time for its client, and all clients agree on the order of writes (see the module doc).
    pub fn check_sequential_reads(&self) -> Result<(), Violation> {
        for (path, ops) in self.by_path() {
            self.check_never_written(&path, &ops)?;
            self.check_monotonic(&path, &ops)?;
            self.check_write_order(&path, &ops)?;
        }
        Ok(())
    }

    /// The ops the search needs, each with the time by which it must have taken effect. An indeterminate
    /// write whose value no synced read returned is dropped: whether it happened changes no read. One
    /// whose value a read returned did happen; when it is that value's only writer, it happened before
    /// the first such read completed, so it gets that deadline and the search need not carry it forever.
    fn search_set<'a>(&self, path: &str, ops: Vec<&'a Record>) -> (Vec<&'a Record>, Vec<u64>) {
        let initial = self.initial_of(path);
        let mut first_seen: HashMap<Option<&[u8]>, u64> = HashMap::new();
        let mut writers: HashMap<Option<&[u8]>, usize> = HashMap::new();
        for r in &ops {
            if let Some((v, _)) = r.read_result() {
                let t = first_seen.entry(v).or_insert(u64::MAX);
                *t = (*t).min(r.end_ns());
            }
            if let Some(v) = r.write_value() {
                *writers.entry(v).or_default() += 1;
            }
        }
        let mut kept = Vec::with_capacity(ops.len());
        let mut ends = Vec::with_capacity(ops.len());
        for r in ops {
            let end = match r.write_value() {
                Some(v) if r.end_ns() == u64::MAX => match first_seen.get(&v) {
                    None => continue,
                    Some(&seen) if v != initial && writers.get(&v) == Some(&1) => seen,
                    Some(_) => u64::MAX,
                },
                _ => r.end_ns(),
            };
            kept.push(r);
            ends.push(end);
        }
        (kept, ends)
    }

    /// The common violation, found without a search and explained with three ops: a synced read returns
    /// a value every writer of which completed before another acknowledged write began, and that write
    /// completed before the read began.
    fn check_stale_reads(&self, path: &str, ops: &[&Record]) -> Result<(), Violation> {
        let writers = Writers::new(self.initial_of(path), ops);
        let mut acked: Vec<&Record> = ops.iter().copied().filter(|r| r.write_ok()).collect();
        acked.sort_by_key(|r| r.end_ns());
        // newest[k]: among the first k+1 acknowledged writes by completion, the one invoked last.
        let mut newest: Vec<&Record> = Vec::with_capacity(acked.len());
        for w in &acked {
            let best = match newest.last() {
                Some(b) if b.invoked_ns >= w.invoked_ns => *b,
                _ => *w,
            };
            newest.push(best);
        }
        for read in ops {
            let Some((value, _)) = read.read_result() else {
                continue;
            };
            let (_, last_end) = writers.span(value, read.end_ns());
            let k = acked.partition_point(|w| w.end_ns() < read.invoked_ns);
            if k == 0 || newest[k - 1].invoked_ns <= last_end {
                continue;
            }
            let newer = newest[k - 1];
            return Err(Violation {
                kind: ViolationKind::NotLinearizable,
                path: path.to_string(),
                explanation: format!(
                    "stale read: {} returned {}, but every write of that value completed before {} \
                     began, and {} was acknowledged before the read began",
                    read.id,
                    show(value),
                    newer.id,
                    newer.id
                ),
                ops: self.with_writers(&[newer, read], ops, &[value]),
            });
        }
        Ok(())
    }

    fn initial_of(&self, path: &str) -> Option<&[u8]> {
        self.initial.get(path).and_then(|v| v.as_deref())
    }

    /// The ops of each path, paths in sorted order, ops in invocation order.
    fn by_path(&self) -> Vec<(String, Vec<&Record>)> {
        let mut map: HashMap<&str, Vec<&Record>> = HashMap::new();
        for r in &self.records {
            map.entry(r.op.path()).or_default().push(r);
        }
        let mut out: Vec<(String, Vec<&Record>)> = map
            .into_iter()
            .map(|(p, mut ops)| {
                ops.sort_by_key(|r| (r.invoked_ns, r.id));
                (p.to_string(), ops)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every read's value was written (by a write invoked before the read completed) or is the initial one.
    fn check_never_written(&self, path: &str, ops: &[&Record]) -> Result<(), Violation> {
        let initial = self.initial_of(path);
        let possible = Writers::new(initial, ops);
        for read in ops {
            let Some((value, _)) = read.read_result() else {
                continue;
            };
            if possible.span(value, read.end_ns()).0 != u64::MAX {
                continue;
            }
            // Every write of the value, failed ones included, to show.
            let writers: Vec<&Record> = ops
                .iter()
                .copied()
                .filter(|w| w.write_value() == Some(value))
                .collect();
            let why = if writers.is_empty() {
                format!(
                    "a read returned {}, which no write wrote and is not the initial value {}",
                    show(value),
                    show(initial)
                )
            } else {
                format!(
                    "a read returned {}, but the only writes of it failed or began after the read \
                     completed",
                    show(value)
                )
            };
            let mut involved = vec![(*read).clone()];
            involved.extend(writers.into_iter().take(4).cloned());
            return Err(Violation {
                kind: ViolationKind::NeverWritten,
                path: path.to_string(),
                explanation: why,
                ops: involved,
            });
        }
        Ok(())
    }

    /// Per client: no read returns a value whose every possible writer completed before the earliest
    /// possible writer of a value the client had already read (or before the client's own acknowledged
    /// write), and mzxids never decrease.
    fn check_monotonic(&self, path: &str, ops: &[&Record]) -> Result<(), Violation> {
        let writers = Writers::new(self.initial_of(path), ops);
        let mut clients: HashMap<u64, Vec<&Record>> = HashMap::new();
        for r in ops {
            clients.entry(r.client).or_default().push(r);
        }
        let mut ids: Vec<u64> = clients.keys().copied().collect();
        ids.sort_unstable();
        for client in ids {
            // The newest point the client is known to have seen: the earliest time the newest value it
            // saw can have been written, and the op that showed it.
            let mut seen: Option<(u64, &Record)> = None;
            let mut seen_zxid: Option<(i64, &Record)> = None;
            for op in &clients[&client] {
                if op.write_ok() {
                    if seen.is_none_or(|(t, _)| op.invoked_ns > t) {
                        seen = Some((op.invoked_ns, op));
                    }
                    if let Some(Outcome::Ok { zxid: Some(z) }) = op.outcome {
                        if seen_zxid.is_none_or(|(s, _)| z > s) {
                            seen_zxid = Some((z, op));
                        }
                    }
                    continue;
                }
                let Some((value, zxid)) = op.read_result() else {
                    continue;
                };
                let (first_invoke, last_end) = writers.span(value, op.end_ns());
                if let Some((t, earlier)) = seen {
                    if last_end < t {
                        return Err(Violation {
                            kind: ViolationKind::ReadWentBack,
                            path: path.to_string(),
                            explanation: format!(
                                "client {client} read {} after it had seen a newer value: every write \
                                 of {}{} completed before the newer value can have been written",
                                show(value),
                                show(value),
                                if value == self.initial_of(path) {
                                    " (also the initial value)"
                                } else {
                                    ""
                                }
                            ),
                            ops: self.with_writers(&[earlier, op], ops, &[value]),
                        });
                    }
                }
                if let (Some(z), Some((s, earlier))) = (zxid, seen_zxid) {
                    if z < s {
                        return Err(Violation {
                            kind: ViolationKind::ReadWentBack,
                            path: path.to_string(),
                            explanation: format!(
                                "client {client} read mzxid 0x{z:x} after it had seen mzxid 0x{s:x}"
                            ),
                            ops: vec![earlier.clone(), (*op).clone()],
                        });
                    }
                }
                if seen.is_none_or(|(t, _)| first_invoke > t) {
                    seen = Some((first_invoke, op));
                }
                if let Some(z) = zxid {
                    if seen_zxid.is_none_or(|(s, _)| z > s) {
                        seen_zxid = Some((z, op));
                    }
                }
            }
        }
        Ok(())
    }

    /// The given ops plus up to three possible writers of each of `values`.
    fn with_writers(
        &self,
        shown: &[&Record],
        ops: &[&Record],
        values: &[Option<&[u8]>],
    ) -> Vec<Record> {
        let mut out: Vec<Record> = shown.iter().map(|r| (*r).clone()).collect();
        for value in values {
            out.extend(
                ops.iter()
                    .filter(|w| w.write_possible() && w.write_value() == Some(*value))
                    .take(3)
                    .map(|w| (*w).clone()),
            );
        }
        out.sort_by_key(|r| (r.invoked_ns, r.id));
        out.dedup_by_key(|r| r.id);
        out
    }

    /// A read of a value written once names its write; the orders in which clients observed such writes,
    /// plus real time between them, must be acyclic.
    fn check_write_order(&self, path: &str, ops: &[&Record]) -> Result<(), Violation> {
        order::check(path, self.initial_of(path), ops)
    }
}

/// Invocation times in order, and the latest completion among the first k writers.
type Spans = (Vec<u64>, Vec<u64>);

/// The possible writers of each value on one path, for "which writes can have produced what a read saw".
struct Writers<'a> {
    initial: Option<&'a [u8]>,
    /// Per value: invocation times in order, and the latest completion among the first k writers.
    by_value: HashMap<Option<&'a [u8]>, Spans>,
}

impl<'a> Writers<'a> {
    fn new(initial: Option<&'a [u8]>, ops: &[&'a Record]) -> Writers<'a> {
        let mut lists: HashMap<Option<&'a [u8]>, Vec<(u64, u64)>> = HashMap::new();
        for w in ops.iter().filter(|w| w.write_possible()) {
            if let Some(v) = w.write_value() {
                lists.entry(v).or_default().push((w.invoked_ns, w.end_ns()));
            }
        }
        let by_value = lists
            .into_iter()
            .map(|(v, mut list)| {
                list.sort_unstable();
                let invokes = list.iter().map(|&(i, _)| i).collect();
                let ends = list
                    .iter()
                    .scan(0u64, |m, &(_, e)| {
                        *m = (*m).max(e);
                        Some(*m)
                    })
                    .collect();
                (v, (invokes, ends))
            })
            .collect();
        Writers { initial, by_value }
    }

    /// Over the writes of `value` invoked by `read_end` (the initial value counting as a write at time
    /// 0): the earliest invocation and the latest completion (`u64::MAX` when one is indeterminate).
    fn span(&self, value: Option<&[u8]>, read_end: u64) -> (u64, u64) {
        let (mut first_invoke, mut last_end) = (u64::MAX, 0);
        if value == self.initial {
            first_invoke = 0;
        }
        if let Some((invokes, ends)) = self.by_value.get(&value) {
            let k = invokes.partition_point(|&t| t <= read_end);
            if k > 0 {
                first_invoke = first_invoke.min(invokes[0]);
                last_end = ends[k - 1];
            }
        }
        (first_invoke, last_end)
    }
}

/// A [`History`] shared by concurrent client tasks or threads.
#[derive(Clone, Debug, Default)]
pub struct SharedHistory(Arc<Mutex<History>>);

impl SharedHistory {
    /// An empty shared history; its clock starts now.
    pub fn new() -> SharedHistory {
        SharedHistory::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, History> {
        // A panicking client task must not hide the history from the check.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`History::invoke`].
    pub fn invoke(&self, client: u64, op: Op) -> OpId {
        self.lock().invoke(client, op)
    }

    /// See [`History::complete`].
    pub fn complete(&self, id: OpId, outcome: Outcome) {
        self.lock().complete(id, outcome)
    }

    /// See [`History::set_initial`].
    pub fn set_initial(&self, path: &str, value: Option<Vec<u8>>) {
        self.lock().set_initial(path, value)
    }

    /// A copy of the history so far, to check.
    pub fn snapshot(&self) -> History {
        self.lock().clone()
    }
}

/// The Wing & Gong / Lowe linearizability search on one register.
mod wgl {
    use super::*;

    const HEAD: usize = usize::MAX - 1;
    const TAIL: usize = usize::MAX;

    /// One end of an op in the time-ordered list.
    #[derive(Clone, Copy)]
    struct Entry {
        op: usize,
        is_call: bool,
    }

    /// A doubly linked list over entry indices with removal and undo in LIFO order (dancing links).
    struct Links {
        next: Vec<usize>,
        prev: Vec<usize>,
        head_next: usize,
        tail_prev: usize,
    }

    impl Links {
        fn next_of(&self, i: usize) -> usize {
            if i == HEAD {
                self.head_next
            } else {
                self.next[i]
            }
        }

        fn set_next(&mut self, i: usize, to: usize) {
            if i == HEAD {
                self.head_next = to;
            } else {
                self.next[i] = to;
            }
        }

        fn set_prev(&mut self, i: usize, to: usize) {
            if i == TAIL {
                self.tail_prev = to;
            } else {
                self.prev[i] = to;
            }
        }

        fn remove(&mut self, i: usize) {
            let (p, n) = (self.prev[i], self.next[i]);
            self.set_next(p, n);
            self.set_prev(n, p);
        }

        fn restore(&mut self, i: usize) {
            let (p, n) = (self.prev[i], self.next[i]);
            self.set_next(p, i);
            self.set_prev(n, i);
        }
    }

    /// The small integer standing for a register value.
    fn intern<'a>(
        values: &mut Vec<Option<&'a [u8]>>,
        index: &mut HashMap<Option<&'a [u8]>, u32>,
        v: Option<&'a [u8]>,
    ) -> u32 {
        *index.entry(v).or_insert_with(|| {
            values.push(v);
            u32::try_from(values.len() - 1).unwrap_or(u32::MAX)
        })
    }

    /// Returns the number of steps taken, or why the path is not (known to be) linearizable.
    pub(super) fn search(
        path: &str,
        initial: Option<&[u8]>,
        ops: &[&Record],
        ends: &[u64],
        budget: u64,
    ) -> Result<u64, CheckError> {
        // Intern values: the register state is a small integer, 0 being the initial value.
        let mut values: Vec<Option<&[u8]>> = vec![initial];
        let mut index: HashMap<Option<&[u8]>, u32> = HashMap::new();
        index.insert(initial, 0);
        // Per op: Some(v) writes v; None with a read value checks it.
        let mut writes: Vec<Option<u32>> = Vec::with_capacity(ops.len());
        let mut reads: Vec<u32> = Vec::with_capacity(ops.len());
        for r in ops {
            match (r.write_value(), r.read_result()) {
                (Some(v), _) => {
                    writes.push(Some(intern(&mut values, &mut index, v)));
                    reads.push(0);
                }
                (None, Some((v, _))) => {
                    writes.push(None);
                    reads.push(intern(&mut values, &mut index, v));
                }
                (None, None) => unreachable!("only writes and returned reads are searched"),
            }
        }

        let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * ops.len());
        let mut required = 0usize;
        for (i, r) in ops.iter().enumerate() {
            // Calls sort before returns at equal times: touching intervals count as concurrent.
            entries.push((r.invoked_ns, false, i));
            if ends[i] != u64::MAX {
                entries.push((ends[i], true, i));
                required += 1;
            }
        }
        entries.sort_unstable();
        let list: Vec<Entry> = entries
            .iter()
            .map(|&(_, is_return, op)| Entry {
                op,
                is_call: !is_return,
            })
            .collect();
        let mut call_at = vec![0usize; ops.len()];
        let mut return_at = vec![None; ops.len()];
        for (i, e) in list.iter().enumerate() {
            if e.is_call {
                call_at[e.op] = i;
            } else {
                return_at[e.op] = Some(i);
            }
        }
        let n = list.len();
        let mut links = Links {
            next: (0..n)
                .map(|i| if i + 1 < n { i + 1 } else { TAIL })
                .collect(),
            prev: (0..n).map(|i| if i == 0 { HEAD } else { i - 1 }).collect(),
            head_next: if n == 0 { TAIL } else { 0 },
            tail_prev: if n == 0 { HEAD } else { n - 1 },
        };

        let words = ops.len().div_ceil(64);
        let mut linearized = vec![0u64; words];
        let mut seen: HashSet<(Box<[u64]>, u32)> = HashSet::new();
        let mut stack: Vec<(usize, u32)> = Vec::new();
        let mut state = 0u32;
        let mut done = 0usize;
        let mut steps = 0u64;
        // The deepest point reached, for the explanation: (linearized ops, state, stuck op, candidates).
        let mut deepest: Option<(Vec<usize>, u32, usize, Vec<usize>)> = None;
        let mut entry = links.head_next;

        loop {
            if done == required {
                return Ok(steps);
            }
            steps += 1;
            if steps > budget {
                return Err(CheckError::BudgetExceeded {
                    path: path.to_string(),
                    ops: ops.len(),
                    steps: budget,
                });
            }
            if entry == TAIL {
                unreachable!(
                    "a required op's return entry stays in the list until it is linearized"
                );
            }
            let e = list[entry];
            if e.is_call {
                let op = e.op;
                let next_state = match writes[op] {
                    Some(v) => Some(v),
                    None if reads[op] == state => Some(state),
                    None => None,
                };
                if let Some(next_state) = next_state {
                    linearized[op / 64] |= 1 << (op % 64);
                    if seen.insert((linearized.clone().into_boxed_slice(), next_state)) {
                        stack.push((op, state));
                        state = next_state;
                        links.remove(call_at[op]);
                        if let Some(r) = return_at[op] {
                            links.remove(r);
                            done += 1;
                        }
                        entry = links.head_next;
                        continue;
                    }
                    linearized[op / 64] &= !(1 << (op % 64));
                }
                entry = links.next_of(entry);
            } else {
                if deepest.as_ref().is_none_or(|d| stack.len() > d.0.len()) {
                    let mut candidates = Vec::new();
                    let mut c = links.head_next;
                    while c != entry && candidates.len() < 6 {
                        if list[c].is_call {
                            candidates.push(list[c].op);
                        }
                        c = links.next_of(c);
                    }
                    let path_ops = stack.iter().map(|&(op, _)| op).collect();
                    deepest = Some((path_ops, state, e.op, candidates));
                }
                let Some((op, old_state)) = stack.pop() else {
                    return Err(CheckError::Violation(explain(
                        path, ops, &values, &writes, deepest,
                    )));
                };
                linearized[op / 64] &= !(1 << (op % 64));
                state = old_state;
                if let Some(r) = return_at[op] {
                    links.restore(r);
                    done -= 1;
                }
                links.restore(call_at[op]);
                entry = links.next_of(call_at[op]);
            }
        }
    }

    fn explain(
        path: &str,
        ops: &[&Record],
        values: &[Option<&[u8]>],
        writes: &[Option<u32>],
        deepest: Option<(Vec<usize>, u32, usize, Vec<usize>)>,
    ) -> Violation {
        let Some((prefix, state, stuck, candidates)) = deepest else {
            unreachable!("the search records a deepest point before it can fail");
        };
        // The tail of the prefix shows how the register got where it is: its last four ops, and the last
        // write if that came earlier.
        let mut tail: Vec<usize> = prefix[prefix.len().saturating_sub(4)..].to_vec();
        if let Some(&w) = prefix.iter().rev().find(|&&op| writes[op].is_some()) {
            if !tail.contains(&w) {
                tail.insert(0, w);
            }
        }
        let tail_ids: Vec<String> = tail.iter().map(|&op| ops[op].id.to_string()).collect();
        let mut shown: Vec<Record> = tail.iter().map(|&op| ops[op].clone()).collect();
        shown.push(ops[stuck].clone());
        let others: Vec<usize> = candidates.into_iter().filter(|&c| c != stuck).collect();
        shown.extend(others.iter().map(|&c| ops[c].clone()));
        shown.sort_by_key(|r| (r.invoked_ns, r.id));
        let needs = match writes[stuck] {
            None => format!(
                " (it read {})",
                show(ops[stuck].read_result().and_then(|(v, _)| v))
            ),
            Some(_) => String::new(),
        };
        let concurrent = if others.is_empty() {
            "no other op can go first".to_string()
        } else {
            let ids: Vec<String> = others.iter().map(|&c| ops[c].id.to_string()).collect();
            format!("nor can it after any of {}", ids.join(", "))
        };
        Violation {
            kind: ViolationKind::NotLinearizable,
            path: path.to_string(),
            explanation: format!(
                "no order of the ops fits their times. The longest linearizable prefix takes {} of {} \
                 ops{}{}, leaving the register at {}; then {} must take effect before it completed, \
                 but cannot{needs}; {concurrent}",
                prefix.len(),
                ops.len(),
                if tail_ids.is_empty() { "" } else { " and ends with " },
                tail_ids.join(", "),
                show(values[state as usize]),
                ops[stuck].id,
            ),
            ops: shown,
        }
    }
}

/// The cross-client write-order check for paths whose writes wrote distinct values.
mod order {
    use super::*;

    /// Why one write must come before another.
    #[derive(Clone, Copy)]
    enum Reason {
        /// A client observed the first, then the second (ops of that client).
        Observed(usize, usize),
        /// Real time, through the time chain.
        RealTime,
    }

    pub(super) fn check(
        path: &str,
        initial: Option<&[u8]>,
        ops: &[&Record],
    ) -> Result<(), Violation> {
        // A value written more than once (or rewriting the initial value, as a delete of a path that
        // started absent does) does not name its write: its observations are skipped, which is sound
        // because a client's order is transitive (a, then an ambiguous value, then b still means a < b).
        let mut count: HashMap<Option<&[u8]>, usize> = HashMap::new();
        *count.entry(initial).or_default() += 1;
        for w in ops.iter().filter(|r| r.write_possible()) {
            *count.entry(w.write_value().flatten()).or_default() += 1;
        }
        let unique = |v: Option<&[u8]>| count.get(&v) == Some(&1);
        // Node 0 is the initial value; nodes 1..=w are the possible writes of values written once.
        let writes: Vec<&Record> = ops
            .iter()
            .copied()
            .filter(|r| r.write_possible() && unique(r.write_value().flatten()))
            .collect();
        let mut by_value: HashMap<Option<&[u8]>, usize> = HashMap::new();
        if unique(initial) {
            by_value.insert(initial, 0);
        }
        for (i, w) in writes.iter().enumerate() {
            by_value.insert(w.write_value().flatten(), i + 1);
        }
        let nw = writes.len() + 1;
        // Time nodes nw..nw+w: the i-th completion in time order. Write j -> T(rank of its end);
        // T(k) -> T(k+1); T(k) -> every write invoked after the k-th completion.
        let mut ends: Vec<(u64, usize)> = writes
            .iter()
            .enumerate()
            .filter(|(_, w)| w.end_ns() != u64::MAX)
            .map(|(i, w)| (w.end_ns(), i + 1))
            .collect();
        ends.sort_unstable();
        let total = nw + ends.len();
        let mut edges: Vec<Vec<(usize, Reason)>> = vec![Vec::new(); total];
        for (k, &(_, node)) in ends.iter().enumerate() {
            edges[node].push((nw + k, Reason::RealTime));
            if k + 1 < ends.len() {
                edges[nw + k].push((nw + k + 1, Reason::RealTime));
            }
        }
        for (i, w) in writes.iter().enumerate() {
            // The last completion strictly before this invocation.
            let k = ends.partition_point(|&(t, _)| t < w.invoked_ns);
            if k > 0 {
                edges[nw + k - 1].push((i + 1, Reason::RealTime));
            }
            // The initial value precedes every write.
            edges[0].push((i + 1, Reason::RealTime));
        }
        // Observations: per client, consecutive observed writes (reads name them; own Ok writes count).
        let mut last: HashMap<u64, (usize, usize)> = HashMap::new();
        for (pos, r) in ops.iter().enumerate() {
            let node = if r.write_ok() {
                by_value.get(&r.write_value().flatten()).copied()
            } else {
                r.read_result().and_then(|(v, _)| by_value.get(&v).copied())
            };
            let Some(node) = node else { continue };
            if let Some(&(prev_node, prev_pos)) = last.get(&r.client) {
                if prev_node != node {
                    edges[prev_node].push((node, Reason::Observed(prev_pos, pos)));
                }
            }
            last.insert(r.client, (node, pos));
        }
        match find_cycle(&edges) {
            None => Ok(()),
            Some(cycle) => Err(describe(path, ops, &writes, nw, &cycle)),
        }
    }

    /// An iterative DFS; returns the edges of one cycle.
    fn find_cycle(edges: &[Vec<(usize, Reason)>]) -> Option<Vec<(usize, usize, Reason)>> {
        let n = edges.len();
        // 0 unvisited, 1 on the stack, 2 done.
        let mut color = vec![0u8; n];
        let mut parent: Vec<Option<(usize, Reason)>> = vec![None; n];
        for root in 0..n {
            if color[root] != 0 {
                continue;
            }
            let mut stack = vec![(root, 0usize)];
            color[root] = 1;
            while let Some(top) = stack.len().checked_sub(1) {
                let (node, next) = stack[top];
                if next < edges[node].len() {
                    let (to, why) = edges[node][next];
                    stack[top].1 += 1;
                    match color[to] {
                        0 => {
                            color[to] = 1;
                            parent[to] = Some((node, why));
                            stack.push((to, 0));
                        }
                        1 => {
                            let mut cycle = vec![(node, to, why)];
                            let mut at = node;
                            while at != to {
                                let Some((p, w)) = parent[at] else { break };
                                cycle.push((p, at, w));
                                at = p;
                            }
                            cycle.reverse();
                            return Some(cycle);
                        }
                        _ => {}
                    }
                } else {
                    color[node] = 2;
                    stack.pop();
                }
            }
        }
        None
    }

    fn describe(
        path: &str,
        ops: &[&Record],
        writes: &[&Record],
        nw: usize,
        cycle: &[(usize, usize, Reason)],
    ) -> Violation {
        let name = |node: usize| -> String {
            if node == 0 {
                "the initial value".to_string()
            } else {
                format!("{}", writes[node - 1].id)
            }
        };
        let mut steps = Vec::new();
        let mut shown: Vec<Record> = Vec::new();
        // Collapse runs through time nodes into "completed before ... was invoked".
        let mut from: Option<usize> = None;
        for &(a, b, why) in cycle {
            match why {
                Reason::Observed(p, q) => {
                    steps.push(format!(
                        "client {} saw {} then {} ({} then {})",
                        ops[p].client,
                        name(a),
                        name(b),
                        ops[p].id,
                        ops[q].id
                    ));
                    shown.push(ops[p].clone());
                    shown.push(ops[q].clone());
                }
                Reason::RealTime => {
                    if a < nw {
                        from = Some(a);
                    }
                    if b < nw {
                        let start = from.take().unwrap_or(a);
                        steps.push(format!("{} precedes {} in real time", name(start), name(b)));
                    }
                }
            }
            for node in [a, b] {
                if (1..nw).contains(&node) {
                    shown.push(writes[node - 1].clone());
                }
            }
        }
        shown.sort_by_key(|r| (r.invoked_ns, r.id));
        shown.dedup_by_key(|r| r.id);
        Violation {
            kind: ViolationKind::WriteOrderDisagrees,
            path: path.to_string(),
            explanation: format!(
                "no single order of the writes explains what clients saw: {}, which is a cycle",
                steps.join("; ")
            ),
            ops: shown,
        }
    }
}
