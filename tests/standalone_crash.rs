//! Crash safety of the standalone server: `outpost server` is killed with SIGKILL in the middle of a
//! write load and restarted on the same dataDir; every write it acknowledged must be there afterwards,
//! and nothing that no client asked for may appear. Also: a torn record at the end of the newest log
//! segment is cut off with a warning and the server starts; damage in the middle of the log stops it.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_core::jute::Record;
use outpost_core::proto::client::{
    decode_reply, encode_request, ConnectRequest, ConnectResponse, CreateRequest,
    GetChildrenRequest, GetDataRequest, ReplyHeader, Request, Response, SetDataRequest,
};
use outpost_core::proto::{Acl, ErrorCode};
use support::OutpostStandalone;

const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A blocking raw-protocol session; every failure is an `Err` (the server may die at any moment).
struct Session {
    stream: TcpStream,
    xid: i32,
}

impl Session {
    fn connect(addr: SocketAddr) -> std::io::Result<Session> {
        let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let req = ConnectRequest {
            timeout: 30_000,
            passwd: vec![0; 16],
            read_only: Some(false),
            ..ConnectRequest::default()
        };
        write_frame(&mut stream, &req.to_bytes())?;
        let reply = read_frame(&mut stream)?;
        let resp = ConnectResponse::from_bytes(&reply)
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e.to_string()))?;
        if resp.timeout <= 0 {
            return Err(std::io::Error::other("session refused"));
        }
        Ok(Session { stream, xid: 0 })
    }

    /// Sends all `reqs` at once (pipelined), then reads their replies in order.
    fn pipeline(&mut self, reqs: &[Request]) -> std::io::Result<Vec<(ReplyHeader, Response)>> {
        let mut batch = Vec::new();
        let mut expect = Vec::new();
        for r in reqs {
            self.xid += 1;
            let payload = encode_request(self.xid, r);
            batch.extend_from_slice(&(payload.len() as i32).to_be_bytes());
            batch.extend_from_slice(&payload);
            expect.push((self.xid, r.op_code()));
        }
        self.stream.write_all(&batch)?;
        let mut out = Vec::new();
        for (xid, op) in expect {
            loop {
                let frame = read_frame(&mut self.stream)?;
                let (h, r) = decode_reply(&frame, Some(op))
                    .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e.to_string()))?;
                if h.xid == -1 {
                    continue;
                }
                assert_eq!(h.xid, xid, "replies in xid order");
                out.push((h, r));
                break;
            }
        }
        Ok(out)
    }

    fn call(&mut self, req: Request) -> (ReplyHeader, Response) {
        self.pipeline(&[req])
            .expect("request on a live server")
            .pop()
            .expect("one reply")
    }
}

fn write_frame(stream: &mut TcpStream, payload: &[u8]) -> std::io::Result<()> {
    let mut out = (payload.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    stream.write_all(&out)
}

fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if !(0..=16 << 20).contains(&len) {
        return Err(std::io::Error::new(ErrorKind::InvalidData, "bad length"));
    }
    let mut payload = vec![0u8; len as usize];
    stream.read_exact(&mut payload)?;
    Ok(payload)
}

fn create(path: &str, data: &[u8]) -> Request {
    Request::Create(CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags: 0,
    })
}

/// What the load learned: acknowledged creates (path → data), every path ever sent, and per counter
/// node the highest acknowledged and the highest attempted setData value.
#[derive(Default)]
struct Ledger {
    acked: HashMap<String, Vec<u8>>,
    sent: BTreeSet<String>,
    counters: HashMap<String, (u64, u64)>,
}

/// Runs `threads` writers against `addr` until `stop` (or the server dies): each pipelines 8 creates
/// of distinct nodes under `/crash` plus one setData of its counter node per round.
fn load(addr: SocketAddr, round: usize, threads: usize, stop: Arc<AtomicBool>) -> Ledger {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let acks = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let ledger = ledger.clone();
            let stop = stop.clone();
            let acks = acks.clone();
            std::thread::spawn(move || {
                let Ok(mut s) = Session::connect(addr) else {
                    return;
                };
                let counter = format!("/crash/counter-r{round}-t{t}");
                let mut i = 0u64;
                let mut value = 0u64;
                let (h, _) = match s.pipeline(&[create(&counter, b"0")]) {
                    Ok(mut r) => r.pop().expect("reply"),
                    Err(_) => return,
                };
                if h.err != 0 {
                    return;
                }
                ledger
                    .lock()
                    .unwrap()
                    .counters
                    .insert(counter.clone(), (0, 0));
                while !stop.load(Ordering::Relaxed) {
                    let mut reqs = Vec::new();
                    let mut paths = Vec::new();
                    for _ in 0..8 {
                        let path = format!("/crash/r{round}-t{t}-{i:06}");
                        let data = format!("data-{round}-{t}-{i}").into_bytes();
                        reqs.push(create(&path, &data));
                        paths.push((path, data));
                        i += 1;
                    }
                    value += 1;
                    reqs.push(Request::SetData(SetDataRequest {
                        path: counter.clone(),
                        data: Some(value.to_string().into_bytes()),
                        version: -1,
                    }));
                    {
                        let mut l = ledger.lock().unwrap();
                        l.sent.extend(paths.iter().map(|(p, _)| p.clone()));
                        l.counters.get_mut(&counter).expect("counter").1 = value;
                    }
                    let Ok(replies) = s.pipeline(&reqs) else {
                        return;
                    };
                    let mut l = ledger.lock().unwrap();
                    for ((h, _), (path, data)) in replies.iter().zip(&paths) {
                        assert_eq!(h.err, 0, "create {path} failed");
                        l.acked.insert(path.clone(), data.clone());
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    assert_eq!(replies[8].0.err, 0, "setData {counter}");
                    l.counters.get_mut(&counter).expect("counter").0 = value;
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("load thread");
    }
    Arc::try_unwrap(ledger)
        .ok()
        .expect("threads done")
        .into_inner()
        .unwrap()
}

fn children(s: &mut Session, path: &str) -> Vec<String> {
    let (h, r) = s.call(Request::GetChildren(GetChildrenRequest {
        path: path.into(),
        watch: false,
    }));
    assert_eq!(h.err, 0, "getChildren {path}");
    match r {
        Response::GetChildren(c) => c.children,
        other => panic!("{other:?}"),
    }
}

fn get_data(s: &mut Session, path: &str) -> Option<Vec<u8>> {
    let (h, r) = s.call(Request::GetData(GetDataRequest {
        path: path.into(),
        watch: false,
    }));
    if ErrorCode::from_code(h.err) == ErrorCode::NoNode {
        return None;
    }
    assert_eq!(h.err, 0, "getData {path}");
    match r {
        Response::GetData(d) => Some(d.data.unwrap_or_default()),
        other => panic!("{other:?}"),
    }
}

/// Checks the restarted server against everything acknowledged before the crashes.
fn verify(addr: SocketAddr, ledger: &Ledger, what: &str) {
    let mut s = Session::connect(addr).expect("connect after restart");
    let present: BTreeSet<String> = children(&mut s, "/crash")
        .into_iter()
        .map(|c| format!("/crash/{c}"))
        .collect();
    let mut missing: Vec<&String> = ledger
        .acked
        .keys()
        .filter(|p| !present.contains(*p))
        .collect();
    missing.sort();
    assert!(
        missing.is_empty(),
        "{what}: {} acknowledged creates lost, first {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let strangers: Vec<&String> = present
        .iter()
        .filter(|p| !ledger.sent.contains(*p) && !ledger.counters.contains_key(*p))
        .collect();
    assert!(
        strangers.is_empty(),
        "{what}: nodes nobody created: {strangers:?}"
    );
    // Data of a sample of acknowledged nodes (all of them would be slow in a debug build).
    for (path, data) in ledger.acked.iter().step_by(17) {
        assert_eq!(
            get_data(&mut s, path).as_ref(),
            Some(data),
            "{what}: data of {path}"
        );
    }
    for (counter, (acked, attempted)) in &ledger.counters {
        let data = get_data(&mut s, counter).unwrap_or_else(|| panic!("{what}: {counter} lost"));
        let value: u64 = String::from_utf8_lossy(&data)
            .parse()
            .expect("counter value");
        assert!(
            *acked <= value && value <= *attempted,
            "{what}: {counter} = {value}, acknowledged {acked}, attempted {attempted}"
        );
    }
}

fn wait_acks(ledger_acks: impl Fn() -> usize, n: usize, limit: Duration) {
    let start = Instant::now();
    while ledger_acks() < n && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Three rounds of: write load from 4 sessions, SIGKILL at a different point (early, mid-snapshot
/// territory with snapCount=300, later), restart on the same dataDir; every acknowledged create and
/// setData survives every crash, and no node appears that no client sent.
#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "snapCount=300\npreAllocSize=256";
    let mut server = OutpostStandalone::start(dir.path(), extra);
    {
        let mut s = Session::connect(server.addr).expect("connect");
        let (h, _) = s.call(create("/crash", b""));
        assert_eq!(h.err, 0);
    }
    let mut all = Ledger::default();
    for (round, kill_after) in [(0usize, 40usize), (1, 400), (2, 1500)] {
        let stop = Arc::new(AtomicBool::new(false));
        let addr = server.addr;
        let loader = {
            let stop = stop.clone();
            std::thread::spawn(move || load(addr, round, 4, stop))
        };
        // Kill once the server has acknowledged about `kill_after` creates (bounded by time too).
        let probe_start = Instant::now();
        wait_acks(
            || {
                let text = support::four_letter(addr, "mntr").unwrap_or_default();
                text.lines()
                    .find_map(|l| l.strip_prefix("zk_znode_count\t"))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0)
            },
            all.acked.len() + all.counters.len() + kill_after,
            Duration::from_secs(15),
        );
        assert!(
            probe_start.elapsed() < Duration::from_secs(15),
            "load too slow"
        );
        server.process.kill();
        stop.store(true, Ordering::Relaxed);
        let ledger = loader.join().expect("load");
        assert!(
            !ledger.acked.is_empty(),
            "round {round}: the load got acknowledgements before the kill"
        );
        let unacked = ledger.sent.len() - ledger.acked.len();
        eprintln!(
            "round {round}: {} creates acknowledged, {unacked} in flight at the kill",
            ledger.acked.len()
        );
        all.acked.extend(ledger.acked);
        all.sent.extend(ledger.sent);
        all.counters.extend(ledger.counters);
        server = OutpostStandalone::start(dir.path(), extra);
        verify(server.addr, &all, &format!("after crash {round}"));
    }
    // A clean restart on top changes nothing.
    server.process.kill();
    let server = OutpostStandalone::start(dir.path(), extra);
    verify(server.addr, &all, "after the last restart");
}

/// The newest txn log segment and the offset where its records end.
fn newest_segment(data: &Path) -> (PathBuf, usize) {
    let dir = data.join("version-2");
    let mut logs: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .expect("version-2")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let zxid = u64::from_str_radix(name.strip_prefix("log.")?, 16).ok()?;
            Some((zxid, e.path()))
        })
        .collect();
    logs.sort();
    let (_, path) = logs.pop().expect("a txn log segment");
    let bytes = std::fs::read(&path).expect("read segment");
    assert_eq!(&bytes[..4], b"OPTL", "segment magic");
    let mut at = 16;
    while at + 4 <= bytes.len() {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        at += 8 + len;
    }
    (path, at)
}

fn overwrite(path: &Path, offset: usize, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .expect("open segment");
    f.seek(SeekFrom::Start(offset as u64)).expect("seek");
    f.write_all(bytes).expect("write");
    f.sync_all().expect("sync");
}

fn write_some(addr: SocketAddr, prefix: &str, n: usize) -> Vec<String> {
    let mut s = Session::connect(addr).expect("connect");
    let paths: Vec<String> = (0..n).map(|i| format!("{prefix}{i:03}")).collect();
    let reqs: Vec<Request> = paths.iter().map(|p| create(p, p.as_bytes())).collect();
    for (h, _) in s.pipeline(&reqs).expect("writes") {
        assert_eq!(h.err, 0);
    }
    paths
}

/// After a kill, a torn record at the end of the newest segment's records (a length and CRC, a few
/// bytes of payload, zeros where the rest should be) is cut off with a warning, the server starts,
/// and every acknowledged write is there; the server keeps appending after the cut. Garbage in the
/// middle of the records, followed by valid records, is not a torn tail: the server refuses to start.
#[test]
fn torn_tail_is_repaired_and_mid_log_damage_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = OutpostStandalone::start(dir.path(), "");
    let first = write_some(server.addr, "/t", 30);
    server.process.kill();

    let data = dir.path().join("data");
    let (segment, end) = newest_segment(&data);
    let mut torn = Vec::new();
    torn.extend_from_slice(&200u32.to_be_bytes());
    torn.extend_from_slice(&0xdead_beefu32.to_be_bytes());
    torn.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 99, 7, 7, 7, 7]);
    overwrite(&segment, end, &torn);

    let mut server = OutpostStandalone::start(dir.path(), "");
    let log = std::fs::read_to_string(&server.process.log).unwrap_or_default();
    assert!(
        log.contains("truncating torn txn log tail"),
        "a warning names the repair:\n{log}"
    );
    let mut s = Session::connect(server.addr).expect("connect");
    for p in &first {
        assert_eq!(get_data(&mut s, p).as_deref(), Some(p.as_bytes()), "{p}");
    }
    drop(s);
    let second = write_some(server.addr, "/u", 10);
    server.process.kill();
    let server = OutpostStandalone::start(dir.path(), "");
    let mut s = Session::connect(server.addr).expect("connect");
    for p in first.iter().chain(&second) {
        assert_eq!(get_data(&mut s, p).as_deref(), Some(p.as_bytes()), "{p}");
    }
    drop(s);
    // More records after this start's session, so the newest segment holds several.
    write_some(server.addr, "/v", 5);
    drop(server);

    // Damage in the middle: flip bytes inside the first record's payload of the newest segment.
    let (segment, end) = newest_segment(&data);
    assert!(end > 16 + 40, "records to damage");
    overwrite(&segment, 16 + 20, &[0xff; 8]);
    let mut cmd = std::process::Command::new(support::outpost_bin());
    cmd.arg("server")
        .arg("--config")
        .arg(dir.path().join("zoo.cfg"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the server started on a log damaged in the middle");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    let mut out = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err);
    let _ = child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out);
    assert!(!status.success(), "refuses to start:\n{out}{err}");
    let text = format!("{out}{err}");
    assert!(
        text.contains(&segment.file_name().unwrap().to_string_lossy().to_string()),
        "the error names the damaged file:\n{text}"
    );
}

/// Sessions and sequence numbers survive a crash as in ZooKeeper: after kill -9 and a restart, a
/// session that reconnects with its id and password keeps its ephemerals; one that does not come
/// back expires after its timeout and its ephemerals go; sequential suffixes continue from the
/// recovered parent cversion and are never reused.
#[test]
fn sessions_and_sequence_numbers_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    // tickTime=200: sessions of 1 s are allowed; snapCount=4 puts a snapshot in the middle.
    let extra = "tickTime=200\nsnapCount=4";
    let mut server = OutpostStandalone::start(dir.path(), extra);
    let connect = |addr: SocketAddr, id: i64, passwd: Vec<u8>| {
        let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let req = ConnectRequest {
            timeout: 1000,
            session_id: id,
            passwd,
            read_only: Some(false),
            ..ConnectRequest::default()
        };
        write_frame(&mut stream, &req.to_bytes()).expect("write");
        let resp = ConnectResponse::from_bytes(&read_frame(&mut stream).expect("connect reply"))
            .expect("decodes");
        (Session { stream, xid: 0 }, resp)
    };
    let (mut keep, keep_resp) = connect(server.addr, 0, vec![0; 16]);
    let (mut lose, _) = connect(server.addr, 0, vec![0; 16]);
    let eph = |path: &str| {
        Request::Create(CreateRequest {
            path: path.into(),
            data: None,
            acl: Acl::open_unsafe(),
            flags: 1,
        })
    };
    let seq = Request::Create(CreateRequest {
        path: "/seq/n-".into(),
        data: None,
        acl: Acl::open_unsafe(),
        flags: 2,
    });
    assert_eq!(keep.call(create("/seq", b"")).0.err, 0);
    let mut names = BTreeSet::new();
    for _ in 0..5 {
        let (h, r) = keep.call(seq.clone());
        assert_eq!(h.err, 0);
        let Response::Create(c) = r else {
            panic!("{r:?}")
        };
        names.insert(c.path);
    }
    // A deleted sequential node's number is not reused either.
    let (h, _) = keep.call(Request::Delete(
        outpost_core::proto::client::DeleteRequest {
            path: "/seq/n-0000000004".into(),
            version: -1,
        },
    ));
    assert_eq!(h.err, 0);
    assert_eq!(keep.call(eph("/keep")).0.err, 0);
    assert_eq!(lose.call(eph("/lose")).0.err, 0);
    server.process.kill();
    drop((keep, lose));

    server = OutpostStandalone::start(dir.path(), extra);
    let (mut keep, resp) = connect(server.addr, keep_resp.session_id, keep_resp.passwd.clone());
    assert_eq!(
        (resp.session_id, resp.timeout),
        (keep_resp.session_id, 1000),
        "the session came back after the crash"
    );
    assert!(
        get_data(&mut keep, "/keep").is_some(),
        "its ephemeral is there"
    );
    let (h, r) = keep.call(seq.clone());
    assert_eq!(h.err, 0);
    let Response::Create(c) = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        c.path, "/seq/n-0000000005",
        "the sequence continues after the crash"
    );
    assert!(!names.contains(&c.path));
    // The session that never came back expires (1 s timeout, full timeout from the restart).
    let start = Instant::now();
    while get_data(&mut keep, "/lose").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the abandoned session's ephemeral never went"
        );
        std::thread::sleep(Duration::from_millis(100));
        // Any request keeps this session alive.
        let _ = get_data(&mut keep, "/keep");
    }
    assert!(
        get_data(&mut keep, "/keep").is_some(),
        "the live session's stays"
    );
}

/// A client rides out a server crash: zookeeper-client stays connected across kill -9 and a restart on
/// the same port and dataDir, keeps its session and ephemeral, and its watches come back through
/// setWatches: a change made while it was away fires at once (catch-up from its last zxid), and new
/// watches work afterwards. (A persistent watch does not come back through this crate's reconnect,
/// against Apache ZooKeeper 3.8 either, so it is not checked here.)
#[test]
fn client_rides_out_a_crash_with_session_and_watches() {
    use zookeeper_client as zk;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = OutpostStandalone::start(dir.path(), "");
    let port = server.addr.port();
    let config = server.config.clone();
    let addr = server.addr.to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let connector = || zk::Client::connector().with_session_timeout(Duration::from_secs(20));
        let client = within("connect", connector().connect(&addr))
            .await
            .expect("connect");
        let open = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        let eph = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        client.create("/w", b"0", &open).await.expect("create");
        client.create("/mine", b"", &eph).await.expect("eph");
        let (_, _, data_watch) = client.get_and_watch_data("/w").await.expect("watch");
        let sid = client.session_id();

        server.process.kill();
        let restarted = OutpostStandalone::start_with_config(&config, port);
        // Another session changes /w before the first client is back.
        let other = within("other", connector().connect(&addr))
            .await
            .expect("connect to the restarted server");
        other.set_data("/w", b"1", None).await.expect("set");
        let ev = within("catch-up event", data_watch.changed()).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (zk::EventType::NodeDataChanged, "/w"),
            "the change made while the client was away fires on reconnect"
        );
        assert_eq!(client.session_id(), sid, "same session after the crash");
        let stat = client
            .check_stat("/mine")
            .await
            .expect("exists")
            .expect("kept");
        assert_eq!(stat.ephemeral_owner, sid.0);
        // Watching goes on as before.
        let (_, _, again) = client.get_and_watch_data("/w").await.expect("watch");
        other.delete("/w", None).await.expect("delete");
        let ev = within("event after the crash", again.changed()).await;
        assert_eq!(
            (ev.event_type, ev.path.as_str()),
            (zk::EventType::NodeDeleted, "/w")
        );
        drop(restarted);
    });
}

/// Awaits `fut` for at most 20 s.
async fn within<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 20 s"))
}

/// Kills during startup (recovery, the startup snapshot, the log roll) lose nothing: after a load,
/// the server is started and SIGKILLed a few milliseconds later, again and again, then started for
/// good; every acknowledged write is there and the log keeps accepting writes.
#[test]
fn kills_during_startup_lose_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = OutpostStandalone::start(dir.path(), "snapCount=50");
    let mut acked = Vec::new();
    for batch in 0..4 {
        acked.extend(write_some(server.addr, &format!("/b{batch}-"), 40));
    }
    server.process.kill();
    let config = server.config.clone();
    for delay_ms in [0u64, 2, 5, 10, 20, 40, 80] {
        let mut child = std::process::Command::new(support::outpost_bin())
            .arg("server")
            .arg("--config")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
    }
    let server = OutpostStandalone::start_with_config(&config, server.addr.port());
    let mut s = Session::connect(server.addr).expect("connect");
    for p in &acked {
        assert_eq!(get_data(&mut s, p).as_deref(), Some(p.as_bytes()), "{p}");
    }
    drop(s);
    let more = write_some(server.addr, "/after-", 20);
    let mut s = Session::connect(server.addr).expect("connect");
    for p in &more {
        assert_eq!(get_data(&mut s, p).as_deref(), Some(p.as_bytes()), "{p}");
    }
}

/// Apache ZooKeeper's own Java client (zkCli.sh) rides out a kill -9 of the server and a restart on the
/// same port: it reconnects with its session, its ephemeral is still there, and the data watch it set
/// before the crash (re-registered with setWatches) reports the change another client made after the
/// restart. Fails, not skips, when zkCli.sh is missing (CI installs it).
#[test]
fn java_client_rides_out_a_crash() {
    use std::io::Write as _;
    let zkcli = "/usr/share/zookeeper/bin/zkCli.sh";
    assert!(
        Path::new(zkcli).exists(),
        "{zkcli} is missing: apt-get install zookeeper (CI does it in .ci/run)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = OutpostStandalone::start(dir.path(), "");
    let port = server.addr.port();
    let config = server.config.clone();
    let out_path = dir.path().join("zkcli.out");
    let out = std::fs::File::create(&out_path).expect("output");
    let mut cli = std::process::Command::new(zkcli)
        .arg("-server")
        .arg(server.addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out)
        .spawn()
        .expect("zkCli.sh");
    let mut stdin = cli.stdin.take().expect("stdin");
    let output = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let wait_for = |what: &str, limit: Duration| {
        let start = Instant::now();
        while !output().contains(what) {
            assert!(
                start.elapsed() < limit,
                "zkCli.sh never printed {what:?}:\n{}",
                output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        writeln!(stdin, "create /jw before").expect("stdin");
        writeln!(stdin, "create -e /jeph mine").expect("stdin");
        writeln!(stdin, "get -w /jw").expect("stdin");
        wait_for("Created /jeph", Duration::from_secs(30));
        wait_for("before\n", Duration::from_secs(10));

        server.process.kill();
        let restarted = OutpostStandalone::start_with_config(&config, port);
        let mut s = Session::connect(restarted.addr).expect("connect");
        let (h, _) = s.call(Request::SetData(SetDataRequest {
            path: "/jw".into(),
            data: Some(b"after".to_vec()),
            version: -1,
        }));
        assert_eq!(h.err, 0);
        wait_for(
            "WatchedEvent state:SyncConnected type:NodeDataChanged path:/jw",
            Duration::from_secs(20),
        );
        writeln!(stdin, "get /jeph").expect("stdin");
        wait_for("mine\n", Duration::from_secs(10));
        writeln!(stdin, "quit").expect("stdin");
        let start = Instant::now();
        while cli.try_wait().expect("wait").is_none() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "zkCli.sh did not quit"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // quit closed the session: its ephemeral is gone.
        assert!(get_data(&mut s, "/jeph").is_none(), "{}", output());
        assert!(
            !output().contains("SESSIONEXPIRED") && !output().contains("state:Expired"),
            "the session survived the crash:\n{}",
            output()
        );
        drop(restarted);
    }));
    let _ = cli.kill();
    let _ = cli.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Walks the tree from `/` with `s`: for every node, its path, data, ACL and full Stat, in path order.
fn dump_tree(s: &mut Session) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec!["/".to_string()];
    while let Some(path) = stack.pop() {
        let (h, r) = s.call(Request::GetData(GetDataRequest {
            path: path.clone(),
            watch: false,
        }));
        assert_eq!(h.err, 0, "getData {path}");
        let Response::GetData(d) = r else {
            panic!("{r:?}")
        };
        let (h, acl) = s.call(Request::GetAcl(
            outpost_core::proto::client::GetAclRequest { path: path.clone() },
        ));
        assert_eq!(h.err, 0, "getACL {path}");
        out.push(format!(
            "{path} data={:?} stat={:?} acl={acl:?}",
            d.data, d.stat
        ));
        for c in children(s, &path) {
            stack.push(if path == "/" {
                format!("/{c}")
            } else {
                format!("{path}/{c}")
            });
        }
    }
    out.sort();
    out
}

/// Every kind of node and every stat field survive kill -9 exactly, whether they come back from a
/// snapshot or from the txn log (snapCount=8 puts snapshots in the middle): persistent, sequential,
/// container, TTL and ephemeral nodes, null and empty data, digest/ip/world ACLs, versions bumped by
/// setData and setACL, cversions bumped by creates and deletes, multi results.
#[test]
fn every_node_kind_and_stat_survives_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "snapCount=8\nextendedTypesEnabled=true";
    let mut server = OutpostStandalone::start(dir.path(), extra);
    let mut s = Session::connect(server.addr).expect("connect");
    let auth = Request::Auth(outpost_core::proto::client::AuthPacket {
        ty: 0,
        scheme: "digest".into(),
        auth: b"alice:secret".to_vec(),
    });
    let write = |s: &mut Session, r: Request| {
        let (h, resp) = s.call(r.clone());
        assert_eq!(h.err, 0, "{r:?}");
        resp
    };
    s.stream
        .write_all(&{
            let p = encode_request(-4, &auth);
            let mut f = (p.len() as i32).to_be_bytes().to_vec();
            f.extend_from_slice(&p);
            f
        })
        .expect("auth");
    let h = ReplyHeader::from_bytes(&read_frame(&mut s.stream).expect("auth reply")).expect("h");
    assert_eq!(h.err, 0);
    let node = |path: &str, data: Option<&[u8]>, acl: Vec<Acl>, flags: i32| {
        Request::Create(CreateRequest {
            path: path.into(),
            data: data.map(<[u8]>::to_vec),
            acl,
            flags,
        })
    };
    let open = Acl::open_unsafe;
    let digest = || {
        vec![Acl {
            perms: 31,
            id: outpost_core::proto::Id::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
        }]
    };
    let ip = || {
        vec![Acl {
            perms: 31,
            id: outpost_core::proto::Id::new("ip", "127.0.0.0/8"),
        }]
    };
    write(&mut s, node("/k", Some(b"k"), open(), 0));
    write(&mut s, node("/k/null", None, open(), 0));
    write(&mut s, node("/k/empty", Some(b""), open(), 0));
    write(&mut s, node("/k/digest", Some(b"d"), digest(), 0));
    write(&mut s, node("/k/ip", Some(b"i"), ip(), 0));
    for _ in 0..3 {
        write(&mut s, node("/k/seq-", Some(b"s"), open(), 2));
    }
    write(&mut s, node("/k/eph", Some(b"e"), open(), 1));
    write(
        &mut s,
        Request::CreateContainer(CreateRequest {
            path: "/k/box".into(),
            data: None,
            acl: open(),
            flags: 4,
        }),
    );
    write(&mut s, node("/k/box/item", Some(b"x"), open(), 0));
    write(
        &mut s,
        Request::CreateTtl(outpost_core::proto::client::CreateTtlRequest {
            path: "/k/ttl".into(),
            data: Some(b"t".to_vec()),
            acl: open(),
            flags: 5,
            ttl: 3_600_000,
        }),
    );
    for i in 0..3 {
        write(
            &mut s,
            Request::SetData(SetDataRequest {
                path: "/k".into(),
                data: Some(format!("v{i}").into_bytes()),
                version: -1,
            }),
        );
    }
    write(
        &mut s,
        Request::SetAcl(outpost_core::proto::client::SetAclRequest {
            path: "/k/ip".into(),
            acl: digest(),
            version: 0,
        }),
    );
    write(
        &mut s,
        Request::Delete(outpost_core::proto::client::DeleteRequest {
            path: "/k/seq-0000000006".into(),
            version: -1,
        }),
    );
    write(
        &mut s,
        Request::Multi(outpost_core::proto::client::MultiRequest {
            ops: vec![
                outpost_core::proto::client::MultiOp::Create(CreateRequest {
                    path: "/k/m".into(),
                    data: Some(b"m".to_vec()),
                    acl: open(),
                    flags: 0,
                }),
                outpost_core::proto::client::MultiOp::SetData(SetDataRequest {
                    path: "/k/m".into(),
                    data: None,
                    version: 0,
                }),
            ],
        }),
    );
    let before = dump_tree(&mut s);
    server.process.kill();
    drop(s);
    let server = OutpostStandalone::start(dir.path(), extra);
    let mut s = Session::connect(server.addr).expect("connect");
    s.stream
        .write_all(&{
            let p = encode_request(-4, &auth);
            let mut f = (p.len() as i32).to_be_bytes().to_vec();
            f.extend_from_slice(&p);
            f
        })
        .expect("auth");
    let _ = read_frame(&mut s.stream).expect("auth reply");
    let after = dump_tree(&mut s);
    let diffs: Vec<String> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("before {a}\n after {b}"))
        .collect();
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    assert_eq!(before.len(), after.len(), "{before:#?}\n{after:#?}");
}

/// The snapshot files in `data`'s `version-2` directory (finished ones: temp files end in `.tmp`).
fn snapshot_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("version-2"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("snapshot.") && !name.ends_with(".tmp")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Snapshots keep pace with pipelined writes that never let the server task go idle for long: each
/// needs many turns (1 KiB values, so they span dozens of 128 KiB pieces), and a scheduler that gave
/// turns only to an idle task (or only at ticks) would let thousands of txns pass per snapshot.
#[test]
fn snapshots_keep_pace_with_saturating_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = OutpostStandalone::start(dir.path(), "snapCount=1000\npreAllocSize=1024");
    let data = dir.path().join("data");
    let at_start = snapshot_files(&data);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (stop, acked, addr) = (stop.clone(), acked.clone(), server.addr);
            std::thread::spawn(move || {
                let mut s = Session::connect(addr).expect("connect");
                let value = vec![b'v'; 1024];
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let reqs: Vec<Request> = (0..32)
                        .map(|k| create(&format!("/w{t}-{}", i + k), &value))
                        .collect();
                    i += 32;
                    for (h, _) in s.pipeline(&reqs).expect("pipeline") {
                        assert_eq!(h.err, 0, "create failed");
                    }
                    acked.fetch_add(32, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while snapshot_files(&data) < at_start + 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let finished = snapshot_files(&data) - at_start;
    let creates = acked.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    server.process.kill();
    // A snapshot is due every 500 to 1,000 txns (snapCount 1,000), so three that kept pace finish
    // within about 3,000 creates; 30,000 leaves tenfold slack for a slow machine (an idle-only
    // scheduler needed hundreds of thousands).
    assert!(
        finished >= 3 && creates <= 30_000,
        "{finished} snapshots finished during {creates} pipelined creates"
    );
}
