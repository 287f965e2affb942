//! Client load for the ensemble fault tests: sessions that write and read while servers crash or are
//! partitioned, recording every op in a [`SharedHistory`] for the linearizability checker, and the
//! reads that compare what every server holds afterwards.
//!
//! An op's outcome follows what a ZooKeeper client can know: an acknowledged write is `Ok`; a definite
//! refusal (NodeExists, NoNode, BadVersion, ...) is `Failed`; a timeout, a connection loss or an
//! expired session leaves the write `Unknown` (it may still commit), never failed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use outpost_core::client::{Client, CreateMode, State, ZkResult};
use outpost_core::proto::codes::ErrorCode;
use outpost_core::proto::Acl;

use super::super::history::{Op, Outcome, SharedHistory};
use super::scenario::OP;

/// Session timeout the load's clients ask for; zoo.cfg must allow it (`maxSessionTimeout`), so a
/// session outlives a leader's death and the election after it.
pub const LOAD_SESSION: Duration = Duration::from_secs(20);

/// Result codes that say a write certainly did not happen.
fn definite(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NoNode
            | ErrorCode::NodeExists
            | ErrorCode::BadVersion
            | ErrorCode::NoAuth
            | ErrorCode::NotEmpty
            | ErrorCode::BadArguments
            | ErrorCode::InvalidAcl
            | ErrorCode::NoChildrenForEphemerals
    )
}

/// Runs `fut` under [`OP`]; a timeout is a transport failure like a connection loss.
async fn bounded<T>(fut: impl std::future::Future<Output = ZkResult<T>>) -> Option<ZkResult<T>> {
    tokio::time::timeout(OP, fut).await.ok()
}

/// Creates `path` with `value` as `client` of `history`; returns the outcome recorded.
pub async fn recorded_create(
    history: &SharedHistory,
    client: u64,
    c: &Client,
    path: &str,
    value: &[u8],
) -> Outcome {
    let id = history.invoke(
        client,
        Op::Write {
            path: path.to_string(),
            value: value.to_vec(),
        },
    );
    let outcome =
        match bounded(c.create2(path, value, &Acl::open_unsafe(), CreateMode::Persistent)).await {
            Some(Ok(Ok((_, stat)))) => Outcome::ok_at(stat.mzxid),
            Some(Ok(Err(code))) if definite(code) => Outcome::Failed,
            _ => Outcome::Unknown,
        };
    history.complete(id, outcome.clone());
    outcome
}

/// `setData(path, value, -1)` as `client`; returns the outcome recorded.
pub async fn recorded_set(
    history: &SharedHistory,
    client: u64,
    c: &Client,
    path: &str,
    value: &[u8],
) -> Outcome {
    let id = history.invoke(
        client,
        Op::Write {
            path: path.to_string(),
            value: value.to_vec(),
        },
    );
    let outcome = match bounded(c.set_data(path, value, -1)).await {
        Some(Ok(Ok(stat))) => Outcome::ok_at(stat.mzxid),
        Some(Ok(Err(code))) if definite(code) => Outcome::Failed,
        _ => Outcome::Unknown,
    };
    history.complete(id, outcome.clone());
    outcome
}

/// `getData(path)` as `client`, after a `sync(path)` when `synced` (a failed sync skips the read).
pub async fn recorded_read(
    history: &SharedHistory,
    client: u64,
    c: &Client,
    path: &str,
    synced: bool,
) {
    if synced && !matches!(bounded(c.sync(path)).await, Some(Ok(Ok(_)))) {
        return;
    }
    let id = history.invoke(
        client,
        Op::Read {
            path: path.to_string(),
            synced,
        },
    );
    let outcome = match bounded(c.get_data(path, false)).await {
        Some(Ok(Ok((data, stat)))) => Outcome::read_at(data, stat.mzxid),
        Some(Ok(Err(ErrorCode::NoNode))) => Outcome::no_node(),
        Some(Ok(Err(_))) => Outcome::Failed,
        _ => Outcome::Unknown,
    };
    history.complete(id, outcome);
}

/// A write load shared by worker tasks and the test that steers the faults.
#[derive(Clone)]
pub struct Load {
    /// Every op of every worker.
    pub history: SharedHistory,
    /// Set to end the workers.
    pub stop: Arc<AtomicBool>,
    /// Writes acknowledged so far (to see that a new leader serves writes).
    pub acked_writes: Arc<AtomicU64>,
    /// Paths whose create was acknowledged.
    pub acked_creates: Arc<Mutex<Vec<String>>>,
    /// The shared keys every worker sets and reads.
    pub keys: Vec<String>,
    /// The parent of the workers' unique creates.
    pub dir: String,
    next_client: Arc<AtomicU64>,
}

impl Load {
    /// A load on `keys` (which must exist with `initial` data) creating children of `dir`.
    pub fn new(keys: &[&str], initial: &[u8], dir: &str) -> Load {
        let history = SharedHistory::new();
        for k in keys {
            history.set_initial(k, Some(initial.to_vec()));
        }
        Load {
            history,
            stop: Arc::new(AtomicBool::new(false)),
            acked_writes: Arc::new(AtomicU64::new(0)),
            acked_creates: Arc::new(Mutex::new(Vec::new())),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            dir: dir.to_string(),
            next_client: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Writes acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked_writes.load(Ordering::SeqCst)
    }

    /// The acknowledged creates so far.
    pub fn creates(&self) -> Vec<String> {
        self.acked_creates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One worker: a session on `connect` (its first server is the preferred one; the others are where
    /// the session moves when that server dies) that cycles through a unique create, a setData of a
    /// shared key, a synced read and an unsynced read until told to stop. A session that expires or
    /// gives up is replaced by a new one under a new client id.
    pub async fn worker(self, connect: String, worker: usize) {
        let mut step = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            let client = self.next_client.fetch_add(1, Ordering::SeqCst);
            let session = tokio::time::timeout(OP, Client::connect(&connect, LOAD_SESSION)).await;
            let Ok(Ok((c, _events))) = session else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            while !self.stop.load(Ordering::SeqCst) && c.state() != State::Closed {
                step += 1;
                let key = &self.keys[(step as usize / 4 + worker) % self.keys.len()];
                let value = format!("w{worker}-c{client}-{step}");
                match step % 4 {
                    0 => {
                        let path = format!("{}/{value}", self.dir);
                        let out =
                            recorded_create(&self.history, client, &c, &path, value.as_bytes())
                                .await;
                        if matches!(out, Outcome::Ok { .. }) {
                            self.acked_writes.fetch_add(1, Ordering::SeqCst);
                            self.acked_creates
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(path);
                        }
                    }
                    1 => {
                        let out =
                            recorded_set(&self.history, client, &c, key, value.as_bytes()).await;
                        if matches!(out, Outcome::Ok { .. }) {
                            self.acked_writes.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    2 => recorded_read(&self.history, client, &c, key, true).await,
                    _ => recorded_read(&self.history, client, &c, key, false).await,
                }
                // A steady, modest rate: the checker's search stays small and two cores stay usable.
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
        }
    }
}

/// The connect string that prefers `first` and falls back to the `others` in order.
pub fn prefer(first: u16, others: impl IntoIterator<Item = u16>) -> String {
    std::iter::once(first)
        .chain(others.into_iter().filter(|p| *p != first))
        .map(|p| format!("127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// What one server holds under `dir` after a `sync`: each child's name and data, plus the data of
/// `extra` paths (`None` for no node). Panics when the server does not answer within [`OP`] per call.
pub async fn synced_view(
    port: u16,
    dir: &str,
    extra: &[&str],
) -> (BTreeMap<String, Vec<u8>>, BTreeMap<String, Option<Vec<u8>>>) {
    let c = super::scenario::connect(port).await;
    tokio::time::timeout(OP, c.sync(dir))
        .await
        .unwrap_or_else(|_| panic!("sync {dir} at {port}: timed out"))
        .unwrap_or_else(|e| panic!("sync {dir} at {port}: {e}"))
        .unwrap_or_else(|e| panic!("sync {dir} at {port}: {e:?}"));
    let children = tokio::time::timeout(OP, c.get_children(dir, false))
        .await
        .unwrap_or_else(|_| panic!("children of {dir} at {port}: timed out"))
        .unwrap_or_else(|e| panic!("children of {dir} at {port}: {e}"))
        .unwrap_or_else(|e| panic!("children of {dir} at {port}: {e:?}"));
    // Pipelined: every getData is sent before the first reply is awaited.
    let mut reads = tokio::task::JoinSet::new();
    for name in children {
        let c = c.clone();
        let path = format!("{dir}/{name}");
        reads.spawn(async move {
            (
                name,
                tokio::time::timeout(OP, c.get_data(&path, false)).await,
            )
        });
    }
    let mut nodes = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        let (name, got) = joined.unwrap_or_else(|e| panic!("read task: {e}"));
        let data = got
            .unwrap_or_else(|_| panic!("get {dir}/{name} at {port}: timed out"))
            .unwrap_or_else(|e| panic!("get {dir}/{name} at {port}: {e}"))
            .unwrap_or_else(|e| panic!("get {dir}/{name} at {port}: {e:?}"))
            .0;
        nodes.insert(name, data);
    }
    let mut others = BTreeMap::new();
    for path in extra {
        let got = tokio::time::timeout(OP, c.get_data(path, false))
            .await
            .unwrap_or_else(|_| panic!("get {path} at {port}: timed out"))
            .unwrap_or_else(|e| panic!("get {path} at {port}: {e}"));
        others.insert((*path).to_string(), got.ok().map(|(d, _)| d));
    }
    let _ = c.close().await;
    (nodes, others)
}

/// Creates `count` children `dir/<prefix>-<i>` through one session on `port`, pipelined `window` at a
/// time, and panics unless every one is acknowledged.
pub async fn create_many(port: u16, dir: &str, prefix: &str, count: usize, window: usize) {
    let c = super::scenario::connect(port).await;
    let mut next = 0;
    while next < count {
        let mut batch = tokio::task::JoinSet::new();
        for i in next..(next + window).min(count) {
            let c = c.clone();
            let path = format!("{dir}/{prefix}-{i:05}");
            batch.spawn(async move {
                let got = tokio::time::timeout(
                    OP,
                    c.create(
                        &path,
                        path.as_bytes(),
                        &Acl::open_unsafe(),
                        CreateMode::Persistent,
                    ),
                )
                .await;
                (path, got)
            });
        }
        while let Some(joined) = batch.join_next().await {
            let (path, got) = joined.unwrap_or_else(|e| panic!("create task: {e}"));
            got.unwrap_or_else(|_| panic!("create {path} at {port}: timed out"))
                .unwrap_or_else(|e| panic!("create {path} at {port}: {e}"))
                .unwrap_or_else(|e| panic!("create {path} at {port}: {e:?}"));
        }
        next += window;
    }
    let _ = c.close().await;
}
