//! Helpers for the mixed-ensemble interop tests (`tests/ensemble_interop.rs`): which implementation a
//! server runs (from its `srvr` version line), a write workload sent through every server, a snapshot of
//! the whole tree (data, full Stat, ACL, children) read at one server after `sync`, a check that every
//! server holds the identical snapshot, and drivers for real third-party clients (kazoo through
//! `tests/compat/kazoo_ensemble.py`, Apache ZooKeeper's zkCli.sh) and for `outpost status`.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use outpost_core::client::{
    create_op, Client, CreateMode, EventReceiver, EventType, MultiOp, MultiResult, ZkResult,
};
use outpost_core::proto::client::{CheckVersionRequest, SetDataRequest};
use outpost_core::proto::{Acl, Stat};

use super::scenario::{connect, OP};
use super::{srvr_mode, Member};
use crate::support::{four_letter, outpost_bin};

/// The `/usr/bin/python3` that has Debian's python3-kazoo (the pyenv `python3` on PATH does not).
pub const PYTHON: &str = "/usr/bin/python3";
/// Debian's Apache ZooKeeper command-line client.
pub const ZKCLI: &str = "/usr/share/zookeeper/bin/zkCli.sh";

/// A tokio runtime whose worker thread keeps running between `block_on` calls, so that open sessions
/// keep pinging while the test thread sleeps or polls `srvr` (a current-thread runtime would let their
/// ephemerals expire).
pub fn background_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The implementation a server runs, from the `Zookeeper version:` line of its `srvr` reply: outpost
/// announces `3.8.0-outpost-<version>`, Apache ZooKeeper its own build string. None when it does not
/// answer.
pub fn implementation(client_port: u16) -> Option<&'static str> {
    let reply = four_letter(SocketAddr::from(([127, 0, 0, 1], client_port)), "srvr").ok()?;
    let version = reply
        .lines()
        .find_map(|l| l.strip_prefix("Zookeeper version:"))?;
    Some(if version.contains("-outpost-") {
        "outpost"
    } else {
        "java"
    })
}

/// Polls `srvr` at every member of `members` until all of them answer, exactly one says `leader` and
/// the rest `follower` or `observer`, with the same answer on two polls 300 ms apart (a member still
/// joining, or a leader that has not gathered its quorum yet, must not be taken for the settled
/// ensemble); returns the leader's id, or None after `timeout`. Unlike [`super::find_leader`], a
/// member that does not answer keeps it waiting.
pub fn find_settled_leader(members: &[Member], timeout: Duration) -> Option<u64> {
    let start = Instant::now();
    let poll = || -> Option<u64> {
        let modes: Vec<(u64, String)> = members
            .iter()
            .map(|m| srvr_mode(m.client).map(|mode| (m.id, mode)))
            .collect::<Option<_>>()?;
        let leaders: Vec<u64> = modes
            .iter()
            .filter(|(_, mode)| mode == "leader")
            .map(|(id, _)| *id)
            .collect();
        let others_ok = modes
            .iter()
            .all(|(_, mode)| matches!(mode.as_str(), "leader" | "follower" | "observer"));
        (leaders.len() == 1 && others_ok).then(|| leaders[0])
    };
    let mut last = None;
    loop {
        let now = poll();
        if now.is_some() && now == last {
            return now;
        }
        last = now;
        if start.elapsed() >= timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// What the plan says member `m` runs, in [`implementation`]'s words.
pub fn planned_implementation(m: &Member) -> &'static str {
    if m.java {
        "java"
    } else {
        "outpost"
    }
}

/// Awaits one client call, bounded by [`OP`], and panics with `what` on a timeout, a transport error or
/// a ZooKeeper error code.
pub async fn must<T>(what: &str, call: impl Future<Output = ZkResult<T>>) -> T {
    tokio::time::timeout(OP, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: timed out"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .unwrap_or_else(|code| panic!("{what}: {code:?}"))
}

/// One znode as a client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// getData's bytes.
    pub data: Vec<u8>,
    /// getData's Stat (czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion,
    /// ephemeralOwner, dataLength, numChildren).
    pub stat: Stat,
    /// getACL's list.
    pub acl: Vec<Acl>,
    /// getChildren's names, sorted: ZooKeeper leaves their order unspecified (a Java `HashSet`).
    pub children: Vec<String>,
}

/// Every znode of a server's tree by path.
pub type TreeView = BTreeMap<String, NodeView>;

/// The node whose Stat no two servers share: ZooKeeper writes `/zookeeper/config` locally on each
/// server (`ZKDatabase.initConfigInZKDatabase`, stamped with the local wall clock), so its mtime differs
/// even between two Java servers. Tree snapshots leave it out (its name is still among `/zookeeper`'s
/// children); [`config_node_view`] reads it with the mtime zeroed.
pub const CONFIG_NODE: &str = "/zookeeper/config";

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// `sync`, then reads every znode reachable from `/` except [`CONFIG_NODE`] through `c`.
/// The caller must keep writers quiet while it runs.
pub async fn tree_view(c: &Client, server: &str) -> TreeView {
    must(&format!("sync at {server}"), c.sync("/")).await;
    let mut tree = TreeView::new();
    let mut queue = VecDeque::from(["/".to_string()]);
    while let Some(path) = queue.pop_front() {
        if path == CONFIG_NODE {
            continue;
        }
        let (data, stat) = must(
            &format!("getData {path} at {server}"),
            c.get_data(&path, false),
        )
        .await;
        let (acl, _) = must(&format!("getACL {path} at {server}"), c.get_acl(&path)).await;
        let mut children = must(
            &format!("getChildren {path} at {server}"),
            c.get_children(&path, false),
        )
        .await;
        children.sort();
        for name in &children {
            queue.push_back(child_path(&path, name));
        }
        tree.insert(
            path,
            NodeView {
                data,
                stat,
                acl,
                children,
            },
        );
    }
    tree
}

/// A node for an assertion message: data as text, then Stat, ACL and children.
fn show(node: Option<&NodeView>) -> String {
    match node {
        None => "missing".to_string(),
        Some(n) => format!(
            "data {:?} {:?} acl {:?} children {:?}",
            String::from_utf8_lossy(&n.data),
            n.stat,
            n.acl,
            n.children
        ),
    }
}

/// [`CONFIG_NODE`] as `getData` and as `getConfig` (opcode 22, what zkCli's `config` sends) return it,
/// each Stat's server-local mtime zeroed.
pub async fn config_node_view(c: &Client, server: &str) -> (NodeView, (Vec<u8>, Stat)) {
    must(&format!("sync at {server}"), c.sync("/")).await;
    let (data, mut stat) = must(
        &format!("getData {CONFIG_NODE} at {server}"),
        c.get_data(CONFIG_NODE, false),
    )
    .await;
    stat.mtime = 0;
    let (acl, _) = must(
        &format!("getACL {CONFIG_NODE} at {server}"),
        c.get_acl(CONFIG_NODE),
    )
    .await;
    let (config, mut config_stat) =
        must(&format!("getConfig at {server}"), c.get_config(false)).await;
    config_stat.mtime = 0;
    let node = NodeView {
        data,
        stat,
        acl,
        children: Vec::new(),
    };
    (node, (config, config_stat))
}

/// The differences between two snapshots, one line per path (at most `limit` lines).
pub fn tree_diff(a: &TreeView, b: &TreeView, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    let paths: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for p in paths {
        match (a.get(p), b.get(p)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => out.push(format!("{p}:\n    {}\n vs {}", show(x), show(y))),
        }
        if out.len() >= limit {
            break;
        }
    }
    out
}

/// Reads the whole tree at every member (each through its own session, after `sync`) and asserts the
/// snapshots are identical: same paths, data, full Stat, ACL and children. Returns the common snapshot.
pub async fn assert_same_tree_everywhere(members: &[Member], context: &str) -> TreeView {
    let mut first: Option<(u64, TreeView)> = None;
    for m in members {
        let c = connect(m.client).await;
        let view = tree_view(&c, &format!("server {}", m.id)).await;
        let _ = c.close().await;
        match &first {
            None => first = Some((m.id, view)),
            Some((id, reference)) => {
                let diff = tree_diff(reference, &view, 8);
                assert!(
                    diff.is_empty(),
                    "{context}: server {} ({}) and server {id} disagree on {} path(s):\n{}",
                    m.id,
                    planned_implementation(m),
                    diff.len(),
                    diff.join("\n")
                );
            }
        }
    }
    first.map(|(_, v)| v).unwrap_or_default()
}

/// Sends the write workload of `round` through every member in turn, one session per member, and
/// returns the sessions, still open (their ephemerals live until the caller closes them). Under
/// `/interop-<round>` each member's session creates `m<id>`, a persistent sequential node, an
/// ephemeral, an ephemeral sequential node, an ACL-changed node (aversion 1), a node it then deletes,
/// sets the data of the previous member's `m<id>`, and sends one multi that commits (two creates, a
/// setData and a version check) and one that fails on a version check (an error txn, nothing applied).
pub async fn write_through_every_server(members: &[Member], round: &str) -> Vec<Client> {
    let base = format!("/interop-{round}");
    let open = Acl::open_unsafe();
    let mut sessions = Vec::new();
    let mut previous: Option<u64> = None;
    for m in members {
        let at = format!("at server {} ({})", m.id, planned_implementation(m));
        let c = connect(m.client).await;
        if previous.is_none() {
            must(
                &format!("create {base} {at}"),
                c.create(&base, round.as_bytes(), &open, CreateMode::Persistent),
            )
            .await;
        }
        let own = format!("{base}/m{}", m.id);
        let text = format!("written {at}");
        for (path, mode) in [
            (own.clone(), CreateMode::Persistent),
            (format!("{base}/seq-"), CreateMode::PersistentSequential),
            (format!("{base}/eph-m{}", m.id), CreateMode::Ephemeral),
            (format!("{base}/ephseq-"), CreateMode::EphemeralSequential),
            (format!("{base}/acl-m{}", m.id), CreateMode::Persistent),
            (format!("{base}/doomed-m{}", m.id), CreateMode::Persistent),
        ] {
            must(
                &format!("create {path} {at}"),
                c.create(&path, text.as_bytes(), &open, mode),
            )
            .await;
        }
        must(
            &format!("setACL {base}/acl-m{} {at}", m.id),
            c.set_acl(&format!("{base}/acl-m{}", m.id), &Acl::read_unsafe(), 0),
        )
        .await;
        must(
            &format!("delete {base}/doomed-m{} {at}", m.id),
            c.delete(&format!("{base}/doomed-m{}", m.id), 0),
        )
        .await;
        if let Some(prev) = previous {
            must(
                &format!("setData {base}/m{prev} {at}"),
                c.set_data(&format!("{base}/m{prev}"), text.as_bytes(), -1),
            )
            .await;
        }

        let multi = format!("{base}/multi-m{}", m.id);
        let results = must(
            &format!("multi {at}"),
            c.multi(vec![
                create_op(&multi, Some(b"multi"), &open, CreateMode::Persistent),
                create_op(
                    &format!("{multi}/c-"),
                    None,
                    &open,
                    CreateMode::PersistentSequential,
                ),
                MultiOp::SetData(SetDataRequest {
                    path: own.clone(),
                    data: Some(b"set by multi".to_vec()),
                    version: 0,
                }),
                MultiOp::Check(CheckVersionRequest {
                    path: own.clone(),
                    version: 1,
                }),
            ]),
        )
        .await;
        assert!(
            !results
                .iter()
                .any(|r| matches!(r, MultiResult::Error { .. })),
            "multi {at} failed: {results:?}"
        );
        let failing = tokio::time::timeout(
            OP,
            c.multi(vec![
                create_op(
                    &format!("{base}/never-m{}", m.id),
                    None,
                    &open,
                    CreateMode::Persistent,
                ),
                MultiOp::Check(CheckVersionRequest {
                    path: own.clone(),
                    version: 99,
                }),
            ]),
        )
        .await
        .unwrap_or_else(|_| panic!("failing multi {at}: timed out"))
        .unwrap_or_else(|e| panic!("failing multi {at}: {e}"));
        match failing {
            Err(_) => {}
            Ok(results) => assert!(
                results
                    .iter()
                    .any(|r| matches!(r, MultiResult::Error { .. })),
                "a multi with a wrong version check succeeded {at}: {results:?}"
            ),
        }
        sessions.push(c);
        previous = Some(m.id);
    }
    sessions
}

/// A session on one server with exists-watches armed on paths that do not exist yet.
pub struct Watcher {
    /// The server's member id.
    pub server: u64,
    client: Client,
    events: EventReceiver,
    paths: Vec<String>,
}

/// The paths a round creates that [`arm_watches`] watches: the round's parent and every member's
/// `m<id>`.
pub fn round_created_paths(members: &[Member], round: &str) -> Vec<String> {
    let base = format!("/interop-{round}");
    std::iter::once(base.clone())
        .chain(members.iter().map(|m| format!("{base}/m{}", m.id)))
        .collect()
}

/// Opens a session at `m` and leaves an exists-watch on each of `paths` (all absent).
pub async fn arm_watches(m: &Member, paths: &[String]) -> Watcher {
    let (client, events) = tokio::time::timeout(
        OP,
        Client::connect(&m.client_addr().to_string(), Duration::from_secs(4)),
    )
    .await
    .unwrap_or_else(|_| panic!("connect to server {}: timed out", m.id))
    .unwrap_or_else(|e| panic!("connect to server {}: {e}", m.id));
    for p in paths {
        let stat = must(
            &format!("exists {p} with a watch at server {}", m.id),
            client.exists(p, true),
        )
        .await;
        assert!(stat.is_none(), "{p} exists before the round: {stat:?}");
    }
    Watcher {
        server: m.id,
        client,
        events,
        paths: paths.to_vec(),
    }
}

/// Waits until the watcher's server has delivered one NodeCreated event for each watched path (it
/// applies every commit and fires the watches it holds, whichever implementation proposed the txn),
/// then closes the session.
pub async fn expect_created(mut w: Watcher) {
    let mut missing: std::collections::BTreeSet<String> = w.paths.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + OP;
    while !missing.is_empty() {
        let event = tokio::time::timeout_at(deadline, w.events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "server {}: no NodeCreated for {missing:?} within {OP:?}",
                    w.server
                )
            })
            .unwrap_or_else(|| panic!("server {}: the event stream ended", w.server));
        if event.event_type == EventType::None {
            continue;
        }
        assert_eq!(
            event.event_type,
            EventType::NodeCreated,
            "server {}: {event}",
            w.server
        );
        let path = event.path.clone().unwrap_or_default();
        assert!(
            missing.remove(&path),
            "server {}: unexpected or repeated {event}",
            w.server
        );
    }
    let _ = tokio::time::timeout(OP, w.client.close()).await;
}

/// Closes every session (their ephemerals go with a committed closeSession).
pub async fn close_all(sessions: Vec<Client>) {
    for c in sessions {
        let _ = tokio::time::timeout(OP, c.close()).await;
    }
}

/// Checks the shape a finished round leaves in `tree`: every member's nodes, `ephemerals` telling
/// whether the round's sessions are still open.
pub fn assert_round_in_tree(tree: &TreeView, members: &[Member], round: &str, ephemerals: bool) {
    let base = format!("/interop-{round}");
    let node = |p: &str| {
        tree.get(p)
            .unwrap_or_else(|| panic!("{p} is missing; tree has {:?}", tree.keys()))
    };
    let parent = node(&base);
    let n = members.len();
    for m in members {
        let own = node(&format!("{base}/m{}", m.id));
        // Created (v0), set by the multi (v1), then set by the next member's session (v2).
        let want = if Some(m) == members.last() { 1 } else { 2 };
        assert_eq!(own.stat.version, want, "{base}/m{}: {:?}", m.id, own.stat);
        let acl = node(&format!("{base}/acl-m{}", m.id));
        assert_eq!(acl.stat.aversion, 1);
        assert_eq!(acl.acl, Acl::read_unsafe());
        assert!(!tree.contains_key(&format!("{base}/doomed-m{}", m.id)));
        assert!(!tree.contains_key(&format!("{base}/never-m{}", m.id)));
        let multi = node(&format!("{base}/multi-m{}", m.id));
        assert_eq!(multi.children, vec!["c-0000000000".to_string()]);
        let eph = tree.get(&format!("{base}/eph-m{}", m.id));
        assert_eq!(eph.is_some(), ephemerals, "eph-m{}: {eph:?}", m.id);
        if let Some(eph) = eph {
            assert_ne!(eph.stat.ephemeral_owner, 0);
        }
    }
    let seq = parent
        .children
        .iter()
        .filter(|c| c.starts_with("seq-"))
        .count();
    let ephseq = parent
        .children
        .iter()
        .filter(|c| c.starts_with("ephseq-"))
        .count();
    assert_eq!(seq, n, "children of {base}: {:?}", parent.children);
    assert_eq!(ephseq, if ephemerals { n } else { 0 });
}

/// A child process that speaks in lines on stdout (collected by a reader thread) and reads commands
/// on stdin; killed (SIGKILL) on drop. Its stderr goes to a file, for assertion messages.
pub struct LineProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: PathBuf,
}

impl LineProcess {
    /// Spawns `cmd` with piped stdin/stdout and stderr to `stderr`.
    pub fn spawn(mut cmd: Command, stderr: &Path) -> LineProcess {
        let err = std::fs::File::create(stderr).expect("create stderr file");
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err));
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LineProcess {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            stderr: stderr.to_path_buf(),
        }
    }

    /// Everything printed so far, stdout then stderr, for assertion messages.
    pub fn transcript(&self) -> String {
        format!(
            "stdout:\n{}\nstderr (tail):\n{}",
            self.seen.join("\n"),
            std::fs::read_to_string(&self.stderr)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// Waits up to `limit` for a line starting with `prefix` and returns it; panics (with the
    /// transcript) on a `compat: FAIL` line, on end of output or on the timeout.
    pub fn expect_line(&mut self, prefix: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    assert!(
                        !line.starts_with("compat: FAIL"),
                        "the client failed:\n{}",
                        self.transcript()
                    );
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no line starting with {prefix:?} within {limit:?} ({e}):\n{}",
                    self.transcript()
                ),
            }
        }
    }

    /// Writes one line to the process's stdin.
    pub fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{line}").expect("write to the client's stdin");
        stdin.flush().expect("flush the client's stdin");
    }

    /// kill -9 (no close reaches the server) and reap.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LineProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Panics with a setup message unless `/usr/bin/python3` imports kazoo (CI installs python3-kazoo).
pub fn require_kazoo() {
    let ok = Command::new(PYTHON)
        .args(["-c", "import kazoo"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "kazoo is missing for {PYTHON}: apt-get install python3-kazoo (CI does it in .ci/run)"
    );
}

/// `tests/compat/kazoo_ensemble.py <args>` under `/usr/bin/python3`, stderr to `dir/kazoo.err`.
pub fn kazoo_script(args: &[&str], dir: &Path) -> LineProcess {
    require_kazoo();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/kazoo_ensemble.py");
    let mut cmd = Command::new(PYTHON);
    cmd.arg(script).args(args);
    LineProcess::spawn(cmd, &dir.join(format!("kazoo-{}.err", args[0])))
}

/// The `0x...` session id after `session ` in a line the kazoo script printed.
pub fn session_in(line: &str) -> i64 {
    line.split_whitespace()
        .skip_while(|w| *w != "session")
        .nth(1)
        .and_then(|h| h.strip_prefix("0x"))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .map(|v| v as i64)
        .unwrap_or_else(|| panic!("no session id in {line:?}"))
}

/// Runs Debian's zkCli.sh against `server` with `commands` piped on stdin (one per line, then
/// `quit`), bounded by `timeout(1)`; returns stdout and stderr together. zkCli exits with the status of
/// its last failed command, so only a timeout (124) is a failure here.
pub fn zkcli(server: SocketAddr, commands: &[&str]) -> String {
    assert!(
        Path::new(ZKCLI).exists(),
        "{ZKCLI} is missing: apt-get install zookeeper (see .ci/run)"
    );
    let mut input = commands.join("\n");
    input.push_str("\nquit\n");
    let mut child = Command::new("timeout")
        .arg("90")
        .arg(ZKCLI)
        .arg("-server")
        .arg(server.to_string())
        // The C1 compiler and one GC thread: a short-lived client starts faster on two cores.
        .env(
            "CLIENT_JVMFLAGS",
            "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn zkCli.sh");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write zkCli commands");
    let out = child.wait_with_output().expect("wait for zkCli.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(
        out.status.code(),
        Some(124),
        "zkCli.sh did not finish:\n{text}"
    );
    text
}

/// `outpost status --config <cfg>`: its stdout and whether it exited 0.
pub fn outpost_status(cfg: &Path) -> (String, bool) {
    let out = Command::new(outpost_bin())
        .arg("status")
        .arg("--config")
        .arg(cfg)
        .output()
        .expect("run outpost status");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.success(),
    )
}
