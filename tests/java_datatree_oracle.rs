//! Apache ZooKeeper's own `DataTree` (the installed 3.8 `zookeeper.jar`) as an oracle for
//! `DataTree::apply_txn`: seeded random txn sequences are encoded as txn log entries (`TxnEntry`), run
//! through `DataTree.processTxn` by a small Java program (`tests/compat/java/DataTreeOracle.java`,
//! compiled here with `javac` into a temporary directory) and through our tree, and the per-txn results,
//! the final trees (paths, data, stats, ACLs), `lastProcessedZxid` and the tree digests must agree.
//!
//! Needs `java`, `javac` (Debian: `default-jdk-headless`) and `/usr/share/java/zookeeper.jar` (Debian:
//! `zookeeper`); `.ci/run` installs them. `ORACLE_SEED=<n>` runs other seeds; `ORACLE_SEQUENCES` and
//! `ORACLE_TXNS` change how many sequences of how many txns.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use outpost_core::ids::SessionId;
use outpost_core::proto::txn::{
    CreateContainerTxn, CreateTtlTxn, CreateTxn, DeleteTxn, SetAclTxn, SetDataTxn,
};
use outpost_core::proto::{Acl, ErrorCode, Id, Txn, TxnEntry, TxnHeader};
use outpost_core::tree::DataTree;

const JAR: &str = "/usr/share/java/zookeeper.jar";
const SESSIONS: [i64; 2] = [0x0100_0000_0000_0001, 0x0100_0000_0000_0002];

/// A small seeded generator (PCG-style LCG), so a failing seed replays exactly.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_path(rng: &mut Lcg) -> String {
    let mut p = String::new();
    for _ in 0..1 + rng.below(3) {
        p.push('/');
        p.push_str(["a", "b", "c"][rng.below(3) as usize]);
    }
    p
}

fn childless(t: &DataTree, path: &str) -> bool {
    t.stat(path).is_none_or(|s| s.num_children == 0)
}

/// One random txn against the current tree. Raw txns, not prepared requests, so the appliers see
/// failures prep would avoid (NONODE, NODEEXISTS, odd versions and parent cversions); only what neither
/// prep nor a fuzzy-snapshot replay can produce is left out: deleting a node that has children (Java
/// would orphan the subtree). A create of an existing node uses that node's ACL, because 3.8.0 keeps
/// the old ACL there while later 3.8 releases (and outpost) replace it.
fn random_txn(rng: &mut Lcg, t: &DataTree, in_multi: bool) -> Txn {
    let path = random_path(rng);
    let data = match rng.below(8) {
        0 => None,
        _ => Some(vec![rng.below(256) as u8; rng.below(4) as usize]),
    };
    let acls = [
        Acl::open_unsafe(),
        Acl::read_unsafe(),
        vec![Acl {
            perms: 31,
            id: Id::new("digest", "u:h"),
        }],
    ];
    let acl = t
        .acl(&path)
        .map(|a| a.to_vec())
        .unwrap_or_else(|| acls[rng.below(3) as usize].clone());
    let parent_cversion = rng.below(5) as i32 - 1;
    match rng.below(if in_multi { 7 } else { 10 }) {
        0 | 1 => Txn::Create(CreateTxn {
            path,
            data,
            acl,
            ephemeral: rng.below(3) == 0,
            parent_cversion,
        }),
        2 if in_multi => Txn::Create(CreateTxn {
            path,
            data,
            acl,
            ephemeral: false,
            parent_cversion,
        }),
        2 => Txn::Create2(CreateTxn {
            path,
            data,
            acl,
            ephemeral: false,
            parent_cversion,
        }),
        3 => Txn::CreateContainer(CreateContainerTxn {
            path,
            data,
            acl,
            parent_cversion,
        }),
        4 => Txn::Delete(DeleteTxn { path }),
        5 => Txn::SetData(SetDataTxn {
            path,
            data,
            version: rng.below(4) as i32,
        }),
        6 => Txn::CreateTtl(CreateTtlTxn {
            path,
            data,
            acl,
            parent_cversion,
            ttl: 1 + rng.below(1000) as i64,
        }),
        7 => Txn::SetAcl(SetAclTxn {
            path,
            acl,
            version: rng.below(3) as i32,
        }),
        8 => Txn::Error {
            err: ErrorCode::NoNode,
        },
        _ => Txn::CloseSession {
            paths2delete: Some(vec![random_path(rng)]),
        },
    }
}

/// A multi that creates a path twice gives the second create the first one's ACL (see [`random_txn`]:
/// the second one finds the node).
fn same_acl_for_repeated_creates(subs: &mut [Txn]) {
    let mut seen: Vec<(String, Vec<Acl>)> = Vec::new();
    for s in subs.iter_mut() {
        let (path, acl) = match s {
            Txn::Create(c) => (&c.path, &mut c.acl),
            Txn::CreateContainer(c) => (&c.path, &mut c.acl),
            Txn::CreateTtl(c) => (&c.path, &mut c.acl),
            _ => continue,
        };
        match seen.iter().find(|(p, _)| p == path) {
            Some((_, first)) => *acl = first.clone(),
            None => seen.push((path.clone(), acl.clone())),
        }
    }
}

/// Whether applying `txn` could delete a node that has children (see [`random_txn`]).
fn may_orphan(t: &DataTree, client_id: i64, txn: &Txn) -> bool {
    match txn {
        Txn::Delete(d) => !childless(t, &d.path),
        Txn::CloseSession { paths2delete } => {
            paths2delete.iter().flatten().any(|p| !childless(t, p))
                || t.ephemerals(SessionId(client_id))
                    .iter()
                    .any(|p| !childless(t, p))
        }
        Txn::Multi(subs) => {
            let failed = subs.iter().any(|s| matches!(s, Txn::Error { .. }));
            let creates: Vec<&str> = subs
                .iter()
                .filter_map(|s| match s {
                    Txn::Create(c) => Some(c.path.as_str()),
                    Txn::CreateContainer(c) => Some(c.path.as_str()),
                    Txn::CreateTtl(c) => Some(c.path.as_str()),
                    _ => None,
                })
                .collect();
            !failed
                && subs.iter().any(|s| match s {
                    Txn::Delete(d) => {
                        !childless(t, &d.path)
                            || creates
                                .iter()
                                .any(|c| c.starts_with(&format!("{}/", d.path)))
                    }
                    _ => false,
                })
        }
        _ => false,
    }
}

/// A random sequence: the encoded log entries, our result code for each, and our tree after them.
type Sequence = (Vec<Vec<u8>>, Vec<i32>, DataTree);

/// Generates and applies a random sequence of `len` txns (see [`Sequence`]).
fn sequence(seed: u64, len: usize) -> Sequence {
    let mut rng = Lcg(seed);
    let mut tree = DataTree::new(true);
    let mut entries = Vec::new();
    let mut results = Vec::new();
    let mut zxid = 0x1_0000_0000i64;
    for _ in 0..len {
        zxid += 1;
        let client_id = SESSIONS[rng.below(2) as usize];
        let mut txn = if rng.below(6) == 0 {
            let n = 1 + rng.below(4);
            let mut subs: Vec<Txn> = (0..n).map(|_| random_txn(&mut rng, &tree, true)).collect();
            if rng.below(3) == 0 {
                // A failed multi as prep logs it: the failing op's error, then -2 for the rest.
                let k = rng.below(n) as usize;
                subs[k] = Txn::Error {
                    err: ErrorCode::NoNode,
                };
                for s in subs.iter_mut().skip(k + 1) {
                    *s = Txn::Error {
                        err: ErrorCode::RuntimeInconsistency,
                    };
                }
            }
            same_acl_for_repeated_creates(&mut subs);
            Txn::Multi(subs)
        } else {
            random_txn(&mut rng, &tree, false)
        };
        if may_orphan(&tree, client_id, &txn) {
            txn = Txn::Error {
                err: ErrorCode::NotEmpty,
            };
        }
        let header = TxnHeader {
            client_id,
            cxid: 1,
            zxid,
            time: 1_700_000_000_000 + zxid % 1000,
            ty: txn.type_code(),
        };
        let outcome = tree.apply_txn(&header, &txn);
        results.push(outcome.result.err.code());
        entries.push(TxnEntry::new(header, txn, None).to_bytes());
    }
    (entries, results, tree)
}

type Row = (
    String,
    Option<Vec<u8>>,
    outpost_core::proto::StatPersisted,
    Vec<Acl>,
);

fn dump(t: &DataTree) -> Vec<Row> {
    let mut rows = Vec::new();
    t.walk(|p, n| {
        rows.push((
            p.to_string(),
            n.data.as_ref().map(|d| d.to_vec()),
            n.stat,
            t.acl_of_node(n).to_vec(),
        ))
    });
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn tool(name: &str) -> bool {
    Command::new(name)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Reads big-endian values from the oracle's output.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        assert!(self.0.len() >= n, "the Java oracle's output is truncated");
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().expect("8 bytes"))
    }
}

/// Random txn sequences give the same results, trees, lastProcessedZxid and digests in ZooKeeper
/// 3.8's `DataTree.processTxn` as in `DataTree::apply_txn`.
#[test]
fn apply_txn_agrees_with_zookeepers_datatree() {
    assert!(
        tool("java") && tool("javac") && Path::new(JAR).exists(),
        "this test runs Apache ZooKeeper's DataTree: it needs `java` and `javac` on PATH (Debian: \
         default-jdk-headless) and {JAR} (Debian: zookeeper); .ci/run installs both"
    );
    let classes = tempfile::tempdir().expect("temp dir");
    let source =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/java/DataTreeOracle.java");
    let javac = Command::new("javac")
        .args(["-nowarn", "-cp", JAR, "-d"])
        .arg(classes.path())
        .arg(&source)
        .output()
        .expect("run javac");
    assert!(
        javac.status.success(),
        "javac failed:\n{}",
        String::from_utf8_lossy(&javac.stderr)
    );

    let first_seed = env_u64("ORACLE_SEED", 1);
    let count = env_u64("ORACLE_SEQUENCES", 100);
    let len = env_u64("ORACLE_TXNS", 300) as usize;
    let runs: Vec<(u64, Sequence)> = (first_seed..first_seed + count)
        .map(|seed| (seed, sequence(seed, len)))
        .collect();
    let mut input = Vec::new();
    for (_, (entries, _, _)) in &runs {
        input.extend_from_slice(&(entries.len() as i32).to_be_bytes());
        for e in entries {
            input.extend_from_slice(&(e.len() as i32).to_be_bytes());
            input.extend_from_slice(e);
        }
    }

    let class_path = format!("{JAR}:{}", classes.path().display());
    let mut child = Command::new("java")
        .args([
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Xshare:auto",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            &class_path,
            "DataTreeOracle",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start java");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("java output");
    writer.join().expect("writer").expect("write to java");
    assert!(
        out.status.success(),
        "the Java oracle failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut r = Reader(&out.stdout);
    let mut failures = Vec::new();
    for (seed, (entries, results, ours)) in &runs {
        let n = r.i32() as usize;
        assert_eq!(n, entries.len(), "seed {seed}: txn count");
        let java_results: Vec<i32> = (0..n).map(|_| r.i32()).collect();
        let java_digest = r.i64();
        let java_zxid = r.i64();
        let tree_len = r.i32() as usize;
        let java_bytes = r.take(tree_len).to_vec();
        let java_tree = match DataTree::deserialize(&java_bytes, true) {
            Ok(t) => t,
            Err(e) => {
                failures.push(format!("seed {seed}: Java's tree does not decode: {e}"));
                continue;
            }
        };
        if let Some(i) = (0..n).find(|&i| java_results[i] != results[i]) {
            let e = TxnEntry::decode(&entries[i]).expect("our entry");
            failures.push(format!(
                "seed {seed}: txn {i} ({:#x} {:?}): Java err {} vs ours {}",
                e.header.zxid, e.txn, java_results[i], results[i]
            ));
            continue;
        }
        let (java_rows, our_rows) = (dump(&java_tree), dump(ours));
        if java_rows != our_rows {
            let diff: Vec<String> = java_rows
                .iter()
                .filter(|r| !our_rows.contains(r))
                .map(|r| format!("  java {r:?}"))
                .chain(
                    our_rows
                        .iter()
                        .filter(|r| !java_rows.contains(r))
                        .map(|r| format!("  ours {r:?}")),
                )
                .take(10)
                .collect();
            failures.push(format!("seed {seed}: trees differ:\n{}", diff.join("\n")));
            continue;
        }
        if java_zxid != ours.last_processed_zxid() {
            failures.push(format!(
                "seed {seed}: lastProcessedZxid {java_zxid:#x} vs ours {:#x}",
                ours.last_processed_zxid()
            ));
        }
        if java_digest != ours.digest() || java_tree.digest() != java_digest {
            failures.push(format!(
                "seed {seed}: digest Java {java_digest}, ours {}, Java's tree loaded here {}",
                ours.digest(),
                java_tree.digest()
            ));
        }
    }
    assert!(r.0.is_empty(), "trailing output from the Java oracle");
    assert!(
        failures.is_empty(),
        "{} of {count} sequences differ from ZooKeeper's DataTree (replay one with ORACLE_SEED=<seed> \
         ORACLE_SEQUENCES=1):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
