//! The election transport (`shell::election_net`) between real sockets on loopback: three outpost
//! servers elect a leader over it, the tie-break leaves one connection per pair, a restarted server
//! learns the running leader, and malformed peers are dropped without disturbing the others.

use outpost_core::ids::{ServerId, Zxid};
use outpost_core::proto::quorum::{ElectionHandshake, ELECTION_PROTOCOL_V1};
use outpost_core::shell::election_net::{perform, run_election, ElectionNet, ElectionNetConfig};
use outpost_core::zab::election::{Elected, Election, ElectionConfig, LocalState, Role, Tally};
use outpost_core::zab::quorum::QuorumVerifier;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

type Rx = Receiver<(ServerId, Vec<u8>)>;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
}

fn net_config(me: u64, addrs: &BTreeMap<u64, SocketAddr>) -> ElectionNetConfig {
    ElectionNetConfig {
        my_id: ServerId(me),
        listen: addrs[&me],
        advertised: addrs[&me].to_string(),
        peers: addrs
            .iter()
            .filter(|(s, _)| **s != me)
            .map(|(s, a)| (ServerId(*s), *a))
            .collect(),
        cnx_timeout_ms: 5000,
        handshake_timeout_ms: 2000,
        bind_retries: 5,
        tcp_keep_alive: false,
    }
}

fn engine(me: u64, n: u64) -> Election {
    let verifier = QuorumVerifier::majority((1..=n).map(ServerId), []);
    Election::new(ElectionConfig::new(
        ServerId(me),
        verifier,
        b"version=0".to_vec(),
    ))
}

fn clock(origin: Instant) -> impl Fn() -> u64 {
    move || origin.elapsed().as_millis() as u64
}

fn local(zxid: i64) -> LocalState {
    LocalState {
        last_logged_zxid: Zxid(zxid),
        current_epoch: 0,
    }
}

/// Runs an election on its own task and returns the engine with its verdict.
fn spawn_election(
    net: ElectionNet,
    mut rx: Rx,
    mut election: Election,
    state: LocalState,
    origin: Instant,
) -> JoinHandle<(Election, Rx, Option<Elected>)> {
    tokio::spawn(async move {
        let e = run_election(&net, &mut rx, &mut election, state, clock(origin)).await;
        (election, rx, e)
    })
}

/// After the election: keeps answering LOOKING peers, as a leader or follower must.
fn spawn_answering(net: ElectionNet, mut rx: Rx, mut election: Election, origin: Instant) {
    tokio::spawn(async move {
        let now = clock(origin);
        while let Some((from, payload)) = rx.recv().await {
            let _ = perform(&net, election.receive_bytes(from, &payload, now()));
        }
    });
}

/// Starts three nets on free ports.
async fn three_nets() -> (BTreeMap<u64, SocketAddr>, Vec<(ElectionNet, Rx)>) {
    let addrs: BTreeMap<u64, SocketAddr> = (1..=3).map(|s| (s, free_addr())).collect();
    let mut nets = Vec::new();
    for sid in 1..=3 {
        nets.push(
            ElectionNet::start(net_config(sid, &addrs))
                .await
                .expect("start net"),
        );
    }
    (addrs, nets)
}

/// Elects among three servers with the given last zxids; returns engines, receivers and verdicts.
async fn elect_three(
    nets: Vec<(ElectionNet, Rx)>,
    zxids: [i64; 3],
    origin: Instant,
    rounds: u32,
) -> Vec<(ElectionNet, Election, Rx, Elected)> {
    let mut tasks = Vec::new();
    for (i, (net, rx)) in nets.into_iter().enumerate() {
        let mut e = engine(i as u64 + 1, 3);
        // Extra starts move the round on, as earlier abandoned elections would.
        for _ in 1..rounds {
            let _ = e.start(0, local(zxids[i]));
        }
        tasks.push((
            net.clone(),
            spawn_election(net, rx, e, local(zxids[i]), origin),
        ));
    }
    let mut out = Vec::new();
    for (net, task) in tasks {
        let (e, rx, verdict) = task.await.expect("election task");
        out.push((net, e, rx, verdict.expect("a verdict")));
    }
    out
}

/// Waits until every net is connected to exactly the other two over exactly two sockets.
async fn wait_one_connection_per_pair(nets: &[ElectionNet]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = nets.iter().all(|n| {
            let others: Vec<ServerId> = (1..=3).map(ServerId).filter(|s| *s != n.my_id()).collect();
            n.connected() == others && n.live_connections() == 2
        });
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "connections never settled: {:?}",
            nets.iter()
                .map(|n| (n.my_id(), n.connected(), n.live_connections()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three servers elect the one with the highest zxid (server 2 here, beating the higher sid 3), all
/// agree, and the tie-break leaves exactly one connection per pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_elect_one_leader() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (_addrs, nets) = three_nets().await;
        let origin = Instant::now();
        let done = elect_three(
            nets,
            [0x1_0000_0001, 0x1_0000_0005, 0x1_0000_0003],
            origin,
            1,
        )
        .await;
        for (_, _, _, v) in &done {
            assert_eq!(v.leader, ServerId(2), "{v:?}");
        }
        let roles: Vec<Role> = done.iter().map(|d| d.3.role).collect();
        assert_eq!(roles, [Role::Following, Role::Leading, Role::Following]);
        let nets: Vec<ElectionNet> = done.iter().map(|d| d.0.clone()).collect();
        wait_one_connection_per_pair(&nets).await;
        // Still one per pair a moment later: no connection churn.
        tokio::time::sleep(Duration::from_millis(500)).await;
        wait_one_connection_per_pair(&nets).await;
        for n in &nets {
            n.shutdown();
        }
    })
    .await
    .expect("test timed out");
}

/// A follower restarts twice (shutdown, then a new transport on the same port and a new engine):
/// the others answer its LOOKING votes from their finished election and it follows the running
/// leader, the second time through the out-of-election tally alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_server_learns_the_leader() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (addrs, nets) = three_nets().await;
        let origin = Instant::now();
        // The running ensemble is in round 2, the restarted server starts at round 1, so only the
        // out-of-election tally can decide for it.
        let done = elect_three(nets, [0, 0, 0], origin, 2).await;
        assert!(done.iter().all(|d| d.3.leader == ServerId(3)));
        let mut done = done.into_iter();
        let (net1, _, _, _) = done.next().expect("server 1");
        for (net, e, rx, _) in done {
            spawn_answering(net, rx, e, origin);
        }
        // The first restart may decide from the others' last election messages, which they
        // resend on the new connections (stale LOOKING votes for 3: a Round tally, as in Java);
        // their answers to it become the last messages, so the second restart hears only
        // FOLLOWING/LEADING votes.
        let mut net1 = net1;
        for restart in 1..=2 {
            net1.shutdown();
            let (net, mut rx1) = ElectionNet::start(net_config(1, &addrs))
                .await
                .expect("restart on the same port");
            net1 = net;
            let mut e1 = engine(1, 3);
            let verdict = run_election(&net1, &mut rx1, &mut e1, local(0), clock(origin))
                .await
                .expect("a verdict");
            assert_eq!(
                (verdict.leader, verdict.role),
                (ServerId(3), Role::Following)
            );
            if restart == 2 {
                assert_eq!(verdict.tally, Tally::OutOfElection, "{verdict:?}");
                assert_eq!(verdict.election_epoch, 2);
            }
        }
        net1.shutdown();
    })
    .await
    .expect("test timed out");
}

/// Expects the server to close `sock` (EOF or reset) within a few seconds.
async fn expect_closed(mut sock: TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match sock.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok(), "{what}: connection was not dropped");
}

/// Bad handshakes (unknown negative version, address length 0 and 2049, a header that never
/// finishes, a badly formed address)
/// and bad frames after a good handshake (oversized, zero, negative) are dropped, and the three
/// servers still elect together with one connection per pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_peers_are_dropped() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let (addrs, nets) = three_nets().await;
        let target = addrs[&1];
        let mut bad_headers: Vec<(&str, Vec<u8>)> = Vec::new();
        bad_headers.push((
            "negative non-protocol value",
            (-7i64).to_be_bytes().to_vec(),
        ));
        for (what, n) in [("n=0", 0i32), ("n>2048", 2049)] {
            let mut h = ELECTION_PROTOCOL_V1.to_be_bytes().to_vec();
            h.extend_from_slice(&9i64.to_be_bytes());
            h.extend_from_slice(&n.to_be_bytes());
            h.extend(std::iter::repeat_n(b'a', n.max(0) as usize));
            bad_headers.push((what, h));
        }
        // A peer that stops mid-header is dropped after quorumCnxnTimeoutMs (2 s here).
        bad_headers.push(("silent peer", ELECTION_PROTOCOL_V1.to_be_bytes().to_vec()));
        bad_headers.push((
            "address without a port",
            ElectionHandshake::v1(9, "localhost").to_bytes(),
        ));
        for (what, bytes) in bad_headers {
            let mut s = TcpStream::connect(target).await.expect("connect");
            s.write_all(&bytes).await.expect("write");
            expect_closed(s, what).await;
        }
        for (what, len) in [
            ("oversized frame", 524_289i32),
            ("empty frame", 0),
            ("negative frame", -1),
        ] {
            let mut s = TcpStream::connect(target).await.expect("connect");
            s.write_all(&ElectionHandshake::v1(9, "127.0.0.1:1").to_bytes())
                .await
                .expect("write");
            s.write_all(&len.to_be_bytes()).await.expect("write");
            expect_closed(s, what).await;
        }
        let origin = Instant::now();
        let done = elect_three(nets, [0, 0, 0], origin, 1).await;
        assert!(done.iter().all(|d| d.3.leader == ServerId(3)));
        let nets: Vec<ElectionNet> = done.iter().map(|d| d.0.clone()).collect();
        wait_one_connection_per_pair(&nets).await;
        assert!(!nets[0].connected().contains(&ServerId(9)));
        for n in &nets {
            n.shutdown();
        }
    })
    .await
    .expect("test timed out");
}

async fn recv_from(rx: &mut Rx, what: &str) -> (ServerId, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing received"))
        .unwrap_or_else(|| panic!("{what}: transport shut down"))
}

/// The send queue keeps only the newest unsent payload, a new connection resends the last payload
/// sent when nothing newer is queued, and the receive queue keeps the newest 100 messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_replace_resend_and_drop_oldest() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let addrs: BTreeMap<u64, SocketAddr> = (1..=2).map(|s| (s, free_addr())).collect();
        // Server 1 is not up yet: server 2's connect fails and both payloads wait in its queue,
        // the second replacing the first.
        let (net2, mut rx2) = ElectionNet::start(net_config(2, &addrs))
            .await
            .expect("net 2");
        net2.send(ServerId(1), b"old".to_vec());
        net2.send(ServerId(1), b"new".to_vec());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (net1, mut rx1) = ElectionNet::start(net_config(1, &addrs))
            .await
            .expect("net 1");
        net2.connect_all();
        assert_eq!(
            recv_from(&mut rx1, "queued").await,
            (ServerId(2), b"new".to_vec())
        );
        // Server 1 restarts; its first message makes server 2 connect back, and server 2 resends
        // the last payload it sent to 1 without being asked.
        net1.shutdown();
        let (net1, mut rx1) = ElectionNet::start(net_config(1, &addrs))
            .await
            .expect("restart");
        net1.send(ServerId(2), b"hello".to_vec());
        assert_eq!(
            recv_from(&mut rx2, "hello").await,
            (ServerId(1), b"hello".to_vec())
        );
        assert_eq!(
            recv_from(&mut rx1, "resend").await,
            (ServerId(2), b"new".to_vec())
        );
        // Loopback into a receive queue nobody reads: the oldest messages are dropped. (The pump
        // may already hold the first one or two.)
        for i in 0u32..150 {
            net1.send(ServerId(1), i.to_be_bytes().to_vec());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut got = Vec::new();
        while let Ok(Some((from, payload))) =
            tokio::time::timeout(Duration::from_millis(300), rx1.recv()).await
        {
            assert_eq!(from, ServerId(1));
            got.push(u32::from_be_bytes(payload.try_into().expect("4 bytes")));
        }
        assert!(got.len() <= 102, "{got:?}");
        assert_eq!(got[got.len() - 100..], (50..150).collect::<Vec<u32>>()[..]);
        net1.shutdown();
        net2.shutdown();
    })
    .await
    .expect("test timed out");
}
