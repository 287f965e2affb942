//! A fault-injecting TCP proxy for integration tests, standing in for `tc netem` (which this machine
//! lacks): it forwards one loopback port to an upstream address and can add one-way latency with
//! jitter, cap the bandwidth, partition the link (`cut`: reset every connection and refuse new ones) or
//! turn it into a black hole (`hold`: connections stay open but no byte moves) until `heal`.
//!
//! Each connection is two directions; each direction is a reader that stamps every chunk it reads with
//! a release time and a writer that forwards the chunks in order once they are due. Release times never
//! decrease within a direction, so jitter delays bytes but never reorders them (TCP is FIFO, and a
//! WAN's jitter reorders packets, not the stream the receiver sees). The bandwidth cap is shared by all
//! connections of a direction, like one WAN link.
//!
//! A proxy may also rewrite the header a client sends first ([`HeaderRewrite`]), as a NAT rewrites
//! addresses: the ensemble fault tests use it so that a ZooKeeper election handshake advertises the
//! proxy to connect back through instead of the server's real port.
//!
//! [`FaultProxy`] runs on the caller's tokio runtime; [`BlockingFaultProxy`] owns a runtime of its own so
//! synchronous `#[test]`s that spawn processes can use it too.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The largest chunk one read takes from a socket.
const READ_CHUNK: usize = 16 * 1024;
/// Chunks buffered per direction before the reader stops reading (TCP back-pressure then applies).
const QUEUE_CHUNKS: usize = 64;

/// What a [`HeaderRewrite`] decides about the bytes a connection's client sent so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// The header is not complete yet: read more before deciding.
    NeedMore,
    /// Forward the bytes unchanged.
    Keep,
    /// Replace the first `consumed` bytes with `with`; the rest follows unchanged.
    Replace {
        /// How many bytes of the buffered input the header took.
        consumed: usize,
        /// What goes upstream instead of them.
        with: Vec<u8>,
    },
}

/// Looks at the first bytes of every connection, client to upstream, before any of them is forwarded.
pub type HeaderRewrite = Arc<dyn Fn(&[u8]) -> Rewrite + Send + Sync>;

/// Bytes buffered while a [`HeaderRewrite`] asks for more; beyond this the bytes go on unchanged.
const MAX_HEADER: usize = 64 * 1024;

/// What the link does with bytes right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Forward (after latency and bandwidth shaping).
    Normal,
    /// Keep connections open, forward nothing.
    Held,
    /// Reset every connection, refuse new ones.
    Cut,
}

/// Latency and bandwidth settings, read by every chunk.
#[derive(Debug, Clone, Copy)]
struct Shape {
    one_way: Duration,
    jitter: Duration,
    bytes_per_sec: Option<u64>,
}

/// State shared by the accept loop, the connection tasks and the handle.
struct Shared {
    upstream: SocketAddr,
    shape: Mutex<Shape>,
    mode: watch::Sender<Mode>,
    /// Counts `cut` calls, so a connection notices a cut even when `heal` follows before it looks.
    cuts: AtomicU64,
    /// SplitMix64 state for jitter: seeded, so a run's delays are reproducible from the seed.
    rng: Mutex<u64>,
    /// Per direction (0: client to upstream, 1: upstream to client), the instant the link is free
    /// again; the bandwidth pacer reserves slots from it.
    link_free_at: [Mutex<Instant>; 2],
    connections: AtomicUsize,
    bytes_forwarded: AtomicU64,
    /// Applied to the first bytes of each connection, client to upstream.
    rewrite: Option<HeaderRewrite>,
}

impl Shared {
    fn shape(&self) -> Shape {
        *self.shape.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One chunk's one-way delay: the base latency plus a uniform draw from `[0, jitter]`.
    fn delay(&self) -> Duration {
        let shape = self.shape();
        let jitter_nanos = u64::try_from(shape.jitter.as_nanos()).unwrap_or(u64::MAX);
        if jitter_nanos == 0 {
            return shape.one_way;
        }
        let mut state = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        shape.one_way + Duration::from_nanos(z % (jitter_nanos + 1))
    }

    /// Waits until the link of direction `dir` may carry `len` more bytes under the bandwidth cap, and
    /// returns how many bytes (at most `len`) to send now. Slots are reserved in a shared schedule, so
    /// the cap holds for all connections together; pieces are at most ~20 ms of the cap so a large
    /// chunk does not go out as one burst.
    async fn pace(&self, dir: usize, len: usize) -> usize {
        let Some(rate) = self.shape().bytes_per_sec else {
            return len;
        };
        let rate = rate.max(1);
        let piece_cap = usize::try_from((rate / 50).max(1)).unwrap_or(usize::MAX);
        let piece = len.min(piece_cap);
        let start = {
            let mut free_at = self.link_free_at[dir]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let start = (*free_at).max(Instant::now());
            let nanos = (piece as u128) * 1_000_000_000 / u128::from(rate);
            *free_at = start + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            start
        };
        tokio::time::sleep_until(start).await;
        piece
    }
}

/// A chunk of bytes read from one side, due at the other side at `due`.
struct Chunk {
    due: Instant,
    bytes: Vec<u8>,
}

/// A TCP proxy on a free loopback port that forwards to one upstream address and injects faults.
///
/// Dropping it resets every connection and stops the listener.
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:<free port>` and forwards every accepted connection to `upstream`, with no
    /// faults until told otherwise. Must be called inside a tokio runtime, which then runs the proxy.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        FaultProxy::start_rewriting(upstream, None).await
    }

    /// [`FaultProxy::start`] with a [`HeaderRewrite`] applied to the first bytes every client sends.
    pub async fn start_rewriting(
        upstream: SocketAddr,
        rewrite: Option<HeaderRewrite>,
    ) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, _) = watch::channel(Mode::Normal);
        let now = Instant::now();
        let shared = Arc::new(Shared {
            upstream,
            shape: Mutex::new(Shape {
                one_way: Duration::ZERO,
                jitter: Duration::ZERO,
                bytes_per_sec: None,
            }),
            mode,
            cuts: AtomicU64::new(0),
            rng: Mutex::new(u64::from(addr.port())),
            link_free_at: [Mutex::new(now), Mutex::new(now)],
            connections: AtomicUsize::new(0),
            bytes_forwarded: AtomicU64::new(0),
            rewrite,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            shared,
            addr,
            accept,
        })
    }

    /// Starts a proxy on a runtime of its own, for synchronous tests.
    pub fn spawn_blocking(upstream: SocketAddr) -> std::io::Result<BlockingFaultProxy> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("fault-proxy")
            .enable_all()
            .build()?;
        let proxy = runtime.block_on(FaultProxy::start(upstream))?;
        Ok(BlockingFaultProxy {
            proxy: Some(proxy),
            runtime: Some(runtime),
        })
    }

    /// The address clients connect to instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Delays every chunk by `one_way` plus a uniform draw from `[0, jitter]`, in each direction (so a
    /// round trip takes at least `2 * one_way`). Bytes keep their order: a chunk is never released before
    /// the one read before it. Applies to chunks read from now on.
    pub fn set_latency(&self, one_way: Duration, jitter: Duration) {
        let mut shape = self.shared.shape.lock().unwrap_or_else(|p| p.into_inner());
        shape.one_way = one_way;
        shape.jitter = jitter;
    }

    /// Caps each direction at `bytes_per_sec` over all connections together (`None`: no cap).
    pub fn set_bandwidth(&self, bytes_per_sec: Option<u64>) {
        let mut shape = self.shared.shape.lock().unwrap_or_else(|p| p.into_inner());
        shape.bytes_per_sec = bytes_per_sec;
    }

    /// Partitions the link: every current connection is reset (both sides get an RST) and bytes in
    /// flight are lost; new connections are accepted by the kernel and reset at once, so a client sees
    /// its connection fail before any byte reaches the upstream.
    pub fn cut(&self) {
        self.shared.cuts.fetch_add(1, Ordering::SeqCst);
        self.shared.mode.send_replace(Mode::Cut);
    }

    /// Turns the link into a black hole: connections stay open but no byte is forwarded (new ones are
    /// accepted but not connected upstream) until [`FaultProxy::heal`], as when a WAN stalls.
    pub fn hold(&self) {
        self.shared.mode.send_replace(Mode::Held);
    }

    /// Back to normal forwarding; bytes held by [`FaultProxy::hold`] are released in order.
    pub fn heal(&self) {
        self.shared.mode.send_replace(Mode::Normal);
    }

    /// Connections open through the proxy now.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Bytes written to either side so far, both directions together.
    pub fn bytes_forwarded(&self) -> u64 {
        self.shared.bytes_forwarded.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A [`FaultProxy`] with its own one-thread tokio runtime, for synchronous tests; it has the same
/// methods (through `Deref`). Drop it outside any async context.
pub struct BlockingFaultProxy {
    proxy: Option<FaultProxy>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Deref for BlockingFaultProxy {
    type Target = FaultProxy;

    fn deref(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .unwrap_or_else(|| unreachable!("the proxy lives until drop"))
    }
}

impl Drop for BlockingFaultProxy {
    fn drop(&mut self) {
        // The proxy first, inside its runtime, so connection tasks see the cut and reset their sockets.
        if let (Some(proxy), Some(runtime)) = (self.proxy.take(), self.runtime.as_ref()) {
            drop(proxy);
            runtime.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // EMFILE and friends: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if *shared.mode.borrow() == Mode::Cut {
            reset(client);
            continue;
        }
        let _ = client.set_nodelay(true);
        tokio::spawn(connection(client, shared.clone()));
    }
}

/// Closes `stream` with an RST instead of a FIN (`SO_LINGER` zero never blocks the close).
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Waits until the mode satisfies `pred`. Never returns if the proxy is gone without saying so.
async fn until(mode: &mut watch::Receiver<Mode>, pred: impl Fn(Mode) -> bool) -> Mode {
    let found = mode.wait_for(|m| pred(*m)).await.map(|m| *m);
    match found {
        Ok(m) => m,
        Err(_) => std::future::pending().await,
    }
}

/// Waits until the link is cut after a connection saw `cuts_seen` cuts (a cut already healed counts).
async fn cut_after(mode: &mut watch::Receiver<Mode>, shared: &Shared, cuts_seen: u64) {
    let cut = mode
        .wait_for(|m| *m == Mode::Cut || shared.cuts.load(Ordering::SeqCst) != cuts_seen)
        .await
        .is_ok();
    if !cut {
        std::future::pending::<()>().await;
    }
}

/// Counts a connection open for as long as it lives.
struct Open<'a>(&'a AtomicUsize);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn connection(mut client: TcpStream, shared: Arc<Shared>) {
    shared.connections.fetch_add(1, Ordering::SeqCst);
    let _open = Open(&shared.connections);
    let cuts_seen = shared.cuts.load(Ordering::SeqCst);
    let mut mode = shared.mode.subscribe();
    // A black hole swallows the SYN too: the upstream sees nothing until the link heals.
    if until(&mut mode, |m| m != Mode::Held).await == Mode::Cut
        || shared.cuts.load(Ordering::SeqCst) != cuts_seen
    {
        reset(client);
        return;
    }
    let connect = tokio::select! {
        c = TcpStream::connect(shared.upstream) => c,
        _ = cut_after(&mut mode, &shared, cuts_seen) => {
            reset(client);
            return;
        }
    };
    let Ok(mut upstream) = connect else {
        reset(client);
        return;
    };
    let _ = upstream.set_nodelay(true);

    let outcome = {
        let (client_read, client_write) = client.split();
        let (upstream_read, upstream_write) = upstream.split();
        let to_upstream = direction(client_read, upstream_write, 0, &shared);
        let to_client = direction(upstream_read, client_write, 1, &shared);
        let mut cut = shared.mode.subscribe();
        tokio::select! {
            r = async { tokio::try_join!(to_upstream, to_client) } => r.map(|_| ()),
            _ = cut_after(&mut cut, &shared, cuts_seen) => Err(std::io::ErrorKind::ConnectionAborted.into()),
        }
    };
    match outcome {
        // Both sides closed their writing halves and every byte was delivered: a graceful close.
        Ok(()) => {}
        // A cut, or one side reset or failed: the other side is reset too, as a real link failure would.
        Err(_) => {
            reset(client);
            reset(upstream);
        }
    }
}

/// Forwards one direction until its reader sees EOF (then half-closes the writer) or an error.
async fn direction(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    dir: usize,
    shared: &Shared,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<Chunk>(QUEUE_CHUNKS);
    let reader = async move {
        let mut buf = vec![0u8; READ_CHUNK];
        let mut last_due = Instant::now();
        // The client's header, gathered until the rewrite decides (client to upstream only).
        let mut header: Option<Vec<u8>> = shared
            .rewrite
            .as_ref()
            .filter(|_| dir == 0)
            .map(|_| Vec::new());
        loop {
            let n = from.read(&mut buf).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            let bytes = match header.take() {
                None => buf[..n].to_vec(),
                Some(mut pending) => {
                    pending.extend_from_slice(&buf[..n]);
                    let decision = match &shared.rewrite {
                        Some(rewrite) => rewrite(&pending),
                        None => Rewrite::Keep,
                    };
                    match decision {
                        Rewrite::NeedMore if pending.len() < MAX_HEADER => {
                            header = Some(pending);
                            continue;
                        }
                        Rewrite::NeedMore | Rewrite::Keep => pending,
                        Rewrite::Replace { consumed, mut with } => {
                            with.extend_from_slice(&pending[consumed.min(pending.len())..]);
                            with
                        }
                    }
                }
            };
            // Never before the previous chunk: jitter must not reorder the stream. (The writer takes
            // chunks in FIFO order anyway; this keeps each chunk's stamp its true release time.)
            let due = (Instant::now() + shared.delay()).max(last_due);
            last_due = due;
            let chunk = Chunk { due, bytes };
            if tx.send(chunk).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async move {
        let mut mode = shared.mode.subscribe();
        while let Some(chunk) = rx.recv().await {
            tokio::time::sleep_until(chunk.due).await;
            let mut rest = &chunk.bytes[..];
            while !rest.is_empty() {
                // Held bytes wait here, in order; a cut ends the whole connection elsewhere.
                until(&mut mode, |m| m == Mode::Normal).await;
                let piece = shared.pace(dir, rest.len()).await;
                to.write_all(&rest[..piece]).await?;
                shared
                    .bytes_forwarded
                    .fetch_add(piece as u64, Ordering::SeqCst);
                rest = &rest[piece..];
            }
        }
        to.shutdown().await
    };
    tokio::try_join!(reader, writer).map(|_| ())
}
