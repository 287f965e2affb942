//! The fault-injecting TCP proxy of `tests/support/proxy.rs` against a real echo server on loopback:
//! plain forwarding, latency (the 40 ms round trip of the remote-datacenter scenario) with jitter that
//! never reorders bytes, the bandwidth cap, partitions (`cut`/`heal`) and black holes (`hold`/`heal`), header rewrites,
//! and the blocking wrapper for synchronous tests. Every wait is bounded.

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::proxy::{FaultProxy, HeaderRewrite, Rewrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(10);
/// One way of the remote-datacenter scenario: a 40 ms round trip.
const ONE_WAY: Duration = Duration::from_millis(20);

/// Awaits `fut` for at most [`LIMIT`].
async fn t<F: Future>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: not within {LIMIT:?}"))
}

/// An echo server on a free loopback port, counting the connections it accepted.
async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                if tokio::io::copy(&mut r, &mut w).await.is_ok() {
                    let _ = w.shutdown().await;
                }
            });
        }
    });
    (addr, accepted)
}

async fn proxied_echo() -> (FaultProxy, Arc<AtomicUsize>) {
    let (echo, accepted) = echo_server().await;
    let proxy = FaultProxy::start(echo).await.expect("start proxy");
    (proxy, accepted)
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    let s = t("connect", TcpStream::connect(proxy.addr()))
        .await
        .expect("connect to proxy");
    s.set_nodelay(true).expect("nodelay");
    s
}

/// Writes `msg` and reads the same number of bytes back.
async fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    t("echo", s.read_exact(&mut back)).await.expect("read echo");
    back
}

/// True when the peer closed or reset the connection within 3 s (a read returns EOF or an error).
async fn closed_soon(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// A connection through the proxy reaches the upstream and bytes come back unchanged; the proxy
/// counts the connection and the bytes, and forgets the connection once it closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_to_upstream() {
    let (proxy, accepted) = proxied_echo().await;
    let mut s = connect(&proxy).await;
    assert_eq!(round_trip(&mut s, b"hello outpost").await, b"hello outpost");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(proxy.connections(), 1);
    assert_eq!(proxy.bytes_forwarded(), 2 * 13);

    // A half-close travels through: the echo server sees EOF, closes, and the client sees EOF too.
    s.shutdown().await.expect("shutdown");
    let mut rest = Vec::new();
    t("eof", s.read_to_end(&mut rest)).await.expect("read eof");
    assert!(rest.is_empty());
    t("connection gone", async {
        while proxy.connections() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// With 20 ms one way, every measured round trip takes at least 40 ms, with and without jitter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_sets_a_floor_on_round_trips() {
    let (proxy, _) = proxied_echo().await;
    let mut s = connect(&proxy).await;
    // Without latency a loopback round trip is far below the floor, so the assertions below can fail.
    let start = Instant::now();
    round_trip(&mut s, b"x").await;
    let unshaped = start.elapsed();

    for jitter in [Duration::ZERO, Duration::from_millis(15)] {
        proxy.set_latency(ONE_WAY, jitter);
        for i in 0..5u8 {
            let start = Instant::now();
            assert_eq!(round_trip(&mut s, &[i]).await, [i]);
            let rtt = start.elapsed();
            assert!(
                rtt >= 2 * ONE_WAY,
                "round trip {rtt:?} below 2 x {ONE_WAY:?} (jitter {jitter:?}, unshaped {unshaped:?})"
            );
            assert!(
                rtt < 2 * (ONE_WAY + jitter) + Duration::from_secs(1),
                "round trip {rtt:?} far above the configured latency"
            );
        }
    }
}

/// Under heavy jitter (up to 4x the base latency), 400 separately written sequence numbers come back in
/// exactly the order they were sent: jitter delays bytes but never reorders the stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_never_reorders_bytes() {
    let (proxy, _) = proxied_echo().await;
    proxy.set_latency(Duration::from_millis(5), Duration::from_millis(20));
    let s = connect(&proxy).await;
    let (mut r, mut w) = s.into_split();
    const N: u32 = 400;
    let writer = tokio::spawn(async move {
        for i in 0..N {
            w.write_all(&i.to_be_bytes()).await.expect("write");
            // Separate writes become separate chunks, each with its own random delay.
            if i % 4 == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        w
    });
    let mut back = vec![0u8; 4 * N as usize];
    t("all numbers back", r.read_exact(&mut back))
        .await
        .expect("read");
    let numbers: Vec<u32> = back
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let expected: Vec<u32> = (0..N).collect();
    assert_eq!(numbers, expected, "bytes reordered under jitter");
    drop(t("writer", writer).await);
}

/// A 100 kB/s cap makes 150 kB take about 1.5 s each way; the test checks only the lower bound (the
/// machine is noisy), that every byte arrives intact, and that lifting the cap makes it fast again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandwidth_cap_slows_transfers() {
    let (proxy, _) = proxied_echo().await;
    const RATE: u64 = 100_000;
    const LEN: usize = 150_000;
    let payload: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();

    proxy.set_bandwidth(Some(RATE));
    let s = connect(&proxy).await;
    let (mut r, mut w) = s.into_split();
    let send = payload.clone();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        w.write_all(&send).await.expect("write");
        w
    });
    let mut back = vec![0u8; LEN];
    t("capped transfer", r.read_exact(&mut back))
        .await
        .expect("read");
    let capped = start.elapsed();
    assert!(back == payload, "bytes changed under the bandwidth cap");
    // The cap paces in pieces of 20 ms of traffic; allow one piece of burst.
    let floor = Duration::from_millis(1500 - 20 - 20);
    assert!(
        capped >= floor,
        "{LEN} bytes at {RATE} B/s took {capped:?}, expected at least {floor:?}"
    );
    drop(t("writer", writer).await);

    proxy.set_bandwidth(None);
    let mut s = connect(&proxy).await;
    let start = Instant::now();
    assert!(round_trip(&mut s, &payload).await == payload);
    let uncapped = start.elapsed();
    assert!(
        uncapped < capped,
        "uncapped {uncapped:?} not faster than capped {capped:?}"
    );
}

/// `cut` resets the open connection and turns new ones away before they reach the upstream; `heal`
/// lets new connections through again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_kills_and_refuses_then_heal_restores() {
    let (proxy, accepted) = proxied_echo().await;
    let mut before = connect(&proxy).await;
    assert_eq!(round_trip(&mut before, b"ping").await, b"ping");

    proxy.cut();
    assert!(
        closed_soon(&mut before).await,
        "the open connection survived the cut"
    );
    t("connections dropped", async {
        while proxy.connections() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    // The kernel may complete the handshake, but the proxy resets it at once and never dials upstream.
    let forwarded = proxy.bytes_forwarded();
    if let Ok(Ok(mut during)) =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(proxy.addr())).await
    {
        let _ = during.write_all(b"lost").await;
        assert!(
            closed_soon(&mut during).await,
            "a new connection during the cut stayed open"
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the cut let a connection through"
    );
    assert_eq!(proxy.bytes_forwarded(), forwarded);

    proxy.heal();
    let mut after = connect(&proxy).await;
    assert_eq!(round_trip(&mut after, b"pong").await, b"pong");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// A cut healed at once still resets the connections that were open when it happened, as a real
/// partition breaks them however short it is; a connection made after the heal works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_cut_still_breaks_open_connections() {
    let (proxy, _) = proxied_echo().await;
    let mut held = connect(&proxy).await;
    let mut open = connect(&proxy).await;
    assert_eq!(round_trip(&mut open, b"ping").await, b"ping");
    proxy.hold();
    proxy.cut();
    proxy.heal();
    assert!(
        closed_soon(&mut open).await,
        "an open connection survived a brief cut"
    );
    assert!(
        closed_soon(&mut held).await,
        "a held connection survived a brief cut"
    );
    let mut after = connect(&proxy).await;
    assert_eq!(round_trip(&mut after, b"pong").await, b"pong");
}

/// `hold` keeps the connection open but forwards nothing (new connections do not reach the upstream
/// either); `heal` then delivers every held byte, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_stalls_and_heal_delivers_in_order() {
    let (proxy, accepted) = proxied_echo().await;
    let mut s = connect(&proxy).await;
    assert_eq!(round_trip(&mut s, b"warm").await, b"warm");

    proxy.hold();
    let forwarded = proxy.bytes_forwarded();
    const N: u32 = 500;
    for i in 0..N {
        s.write_all(&i.to_be_bytes())
            .await
            .expect("write while held");
    }
    let mut newcomer = connect(&proxy).await;
    newcomer.write_all(b"late").await.expect("write newcomer");

    let mut first = [0u8; 4];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), s.read_exact(&mut first))
            .await
            .is_err(),
        "bytes came back through a held link"
    );
    assert_eq!(
        proxy.bytes_forwarded(),
        forwarded,
        "the held link forwarded bytes"
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "a held link connected upstream"
    );
    assert_eq!(proxy.connections(), 2, "hold closed a connection");

    proxy.heal();
    let mut back = vec![0u8; 4 * N as usize];
    t("held bytes", s.read_exact(&mut back))
        .await
        .expect("read");
    let numbers: Vec<u32> = back
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(
        numbers,
        (0..N).collect::<Vec<_>>(),
        "held bytes out of order"
    );
    let mut late = [0u8; 4];
    t("newcomer", newcomer.read_exact(&mut late))
        .await
        .expect("read newcomer");
    assert_eq!(&late, b"late");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

/// The blocking wrapper runs the proxy on its own runtime, so a synchronous test with std sockets gets
/// the same latency floor and the same partition.
#[test]
fn blocking_wrapper_shapes_std_sockets() {
    use std::io::{Read, Write};
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").expect("bind echo");
    let upstream_addr = upstream.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in upstream.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });

    let proxy = FaultProxy::spawn_blocking(upstream_addr).expect("start blocking proxy");
    proxy.set_latency(ONE_WAY, Duration::ZERO);
    let mut s = std::net::TcpStream::connect(proxy.addr()).expect("connect");
    s.set_read_timeout(Some(LIMIT)).expect("timeout");
    s.set_nodelay(true).expect("nodelay");
    let start = Instant::now();
    s.write_all(b"sync").expect("write");
    let mut back = [0u8; 4];
    s.read_exact(&mut back).expect("read");
    let rtt = start.elapsed();
    assert_eq!(&back, b"sync");
    assert!(
        rtt >= 2 * ONE_WAY,
        "round trip {rtt:?} below {:?}",
        2 * ONE_WAY
    );
    assert_eq!(proxy.connections(), 1);

    proxy.cut();
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .expect("timeout");
    let mut buf = [0u8; 4];
    // A read timeout (WouldBlock/TimedOut) means the connection is still open: that fails the test.
    let closed = match s.read(&mut buf) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    };
    assert!(closed, "the connection survived the cut");
    drop(proxy);
}

/// A header rewrite sees the client's first bytes even when they arrive in pieces, replaces exactly
/// the header it recognizes, and leaves every later byte, and the upstream-to-client direction, alone.
#[tokio::test]
async fn header_rewrite_replaces_only_the_first_header() {
    let (echo, _) = echo_server().await;
    // The "header" is everything up to the first newline; it becomes "NEW:<len>\n".
    let rewrite: HeaderRewrite =
        Arc::new(|buf: &[u8]| match buf.iter().position(|b| *b == b'\n') {
            None => Rewrite::NeedMore,
            Some(end) => Rewrite::Replace {
                consumed: end + 1,
                with: format!("NEW:{end}\n").into_bytes(),
            },
        });
    let proxy = FaultProxy::start_rewriting(echo, Some(rewrite))
        .await
        .expect("start proxy");
    let mut s = connect(&proxy).await;
    s.write_all(b"OLD-HEA").await.expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    s.write_all(b"DER\nbody\nmore").await.expect("write");
    let want = b"NEW:10\nbody\nmore";
    let mut back = vec![0u8; want.len()];
    t("echo", s.read_exact(&mut back)).await.expect("read echo");
    assert_eq!(back, want);
    // A second header on the same connection is just data.
    assert_eq!(round_trip(&mut s, b"OLD\n").await, b"OLD\n");
}

/// When the upstream closes its end (as a killed server's kernel does), the client behind the proxy
/// sees its connection end within the one-way latency, without sending anything: a learner behind a
/// WAN notices a dead leader at once, not at its next write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_close_reaches_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = listener.local_addr().expect("addr");
    let proxy = FaultProxy::start(upstream).await.expect("start proxy");
    proxy.set_latency(ONE_WAY, Duration::ZERO);
    let mut s = connect(&proxy).await;
    let (mut accepted, _) = t("accept", listener.accept()).await.expect("accept");
    // Unread bytes at the upstream make its close an RST; a FIN is tested by the drop below as well.
    s.write_all(b"unread").await.expect("write");
    tokio::time::sleep(ONE_WAY * 3).await;
    let mut first = [0u8; 6];
    accepted
        .read_exact(&mut first)
        .await
        .expect("upstream reads");
    let at = Instant::now();
    drop(accepted);
    assert!(closed_soon(&mut s).await, "the client never saw the close");
    assert!(
        at.elapsed() < Duration::from_secs(1),
        "the close took {:?} to reach the client",
        at.elapsed()
    );
}
