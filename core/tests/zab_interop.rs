//! The election engine in a live election with Apache ZooKeeper 3.8 (Debian's `zookeeper` package):
//! two Java servers and one outpost engine, over outpost's election transport
//! (`shell::election_net`), elect a leader together. This proves the handshake, framing and
//! tie-break interoperate with Java's `QuorumCnxManager`, that the notifications outpost writes are
//! read by Java and vice versa, and that both sides agree.

use outpost_core::ids::{ServerId, Zxid};
use outpost_core::shell::election_net::{perform, run_election, ElectionNet, ElectionNetConfig};
use outpost_core::zab::election::{Elected, Election, ElectionConfig, LocalState, Role, Tally};
use outpost_core::zab::quorum::QuorumVerifier;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::Receiver;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn four_letter(port: u16, word: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Ports of one server: client, quorum, election.
#[derive(Clone, Copy)]
struct Ports {
    client: u16,
    quorum: u16,
    election: u16,
}

fn config_text(ports: &BTreeMap<u64, Ports>) -> String {
    let mut text = String::new();
    for (sid, p) in ports {
        text.push_str(&format!(
            "server.{sid}=127.0.0.1:{}:{}:participant;127.0.0.1:{}\n",
            p.quorum, p.election, p.client
        ));
    }
    text.push_str("version=0");
    text
}

fn start_java(dir: &Path, sid: u64, ports: &BTreeMap<u64, Ports>) -> Killed {
    let data = dir.join(format!("zk{sid}"));
    std::fs::create_dir_all(&data).expect("dataDir");
    std::fs::write(data.join("myid"), format!("{sid}\n")).expect("myid");
    let mut cfg = format!(
        "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPortAddress=127.0.0.1\n\
         clientPort={}\nadmin.enableServer=false\n4lw.commands.whitelist=*\n",
        data.display(),
        ports[&sid].client
    );
    for (s, p) in ports {
        cfg.push_str(&format!(
            "server.{s}=127.0.0.1:{}:{}\n",
            p.quorum, p.election
        ));
    }
    let path = data.join("zoo.cfg");
    std::fs::write(&path, cfg).expect("zoo.cfg");
    let log = std::fs::File::create(data.join("zookeeper.log")).expect("log");
    let child = Command::new("/usr/bin/java")
        .arg("-cp")
        // slf4j-simple (Debian's libslf4j-java) makes Java log to stderr, which the checks read.
        .arg("/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar")
        .arg(format!("-Dzookeeper.log.dir={}", data.display()))
        .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
        .arg(&path)
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("start java");
    Killed(child)
}

/// A running mixed ensemble: Java servers 2 and 3, outpost's engine as server 1.
struct Mixed {
    dir: tempfile::TempDir,
    ports: BTreeMap<u64, Ports>,
    _java: Vec<Killed>,
    engine: Election,
    net: ElectionNet,
    rx: Receiver<(ServerId, Vec<u8>)>,
    started: Instant,
}

impl Mixed {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Keeps answering peers (as a server out of election does) for `for_ms`.
    async fn serve(&mut self, for_ms: u64) {
        let end = tokio::time::Instant::now() + Duration::from_millis(for_ms);
        loop {
            let msg = tokio::select! {
                m = self.rx.recv() => m,
                _ = tokio::time::sleep_until(end) => return,
            };
            let Some((from, payload)) = msg else { return };
            let now = self.now();
            let _ = perform(&self.net, self.engine.receive_bytes(from, &payload, now));
        }
    }

    /// Runs an election over the transport with `local` (60 s at most).
    async fn elect(&mut self, local: LocalState) -> Option<Elected> {
        let started = self.started;
        let clock = move || started.elapsed().as_millis() as u64;
        tokio::time::timeout(
            Duration::from_secs(60),
            run_election(&self.net, &mut self.rx, &mut self.engine, local, clock),
        )
        .await
        .ok()
        .flatten()
    }

    /// Keeps answering until Java server `sid`'s log contains `needle` (30 s at most).
    async fn wait_for_java_log(&mut self, sid: u64, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.java_log(sid).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "Java server {sid} never logged {needle:?}:\n{}",
                tail(&self.java_log(sid))
            );
            self.serve(100).await;
        }
    }

    fn java_log(&self, sid: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("zk{sid}/zookeeper.log")))
            .unwrap_or_default()
    }
}

/// Starts Java servers 2 and 3 and runs outpost's engine as server 1 with `local` until it decides.
async fn elect_with_java(local: LocalState) -> (Mixed, Elected) {
    assert!(
        Path::new("/usr/share/java/zookeeper.jar").exists() && Path::new("/usr/bin/java").exists(),
        "Apache ZooKeeper 3.8 is not installed: apt-get install zookeeper (see .ci/run)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: BTreeMap<u64, Ports> = (1..=3)
        .map(|sid| {
            (
                sid,
                Ports {
                    client: free_port(),
                    quorum: free_port(),
                    election: free_port(),
                },
            )
        })
        .collect();
    let election_addr = |sid: u64| SocketAddr::from(([127, 0, 0, 1], ports[&sid].election));
    let (net, rx) = ElectionNet::start(ElectionNetConfig {
        my_id: ServerId(1),
        listen: election_addr(1),
        advertised: election_addr(1).to_string(),
        peers: [2, 3]
            .into_iter()
            .map(|sid| (ServerId(sid), election_addr(sid)))
            .collect(),
        cnx_timeout_ms: 5000,
        handshake_timeout_ms: 2500,
        bind_retries: 3,
        tcp_keep_alive: false,
    })
    .await
    .expect("election transport");
    let java: Vec<Killed> = [2, 3]
        .into_iter()
        .map(|sid| start_java(dir.path(), sid, &ports))
        .collect();
    let verifier = QuorumVerifier::majority((1..=3).map(ServerId), []);
    let engine = Election::new(ElectionConfig::new(
        ServerId(1),
        verifier,
        config_text(&ports).into_bytes(),
    ));
    let mut m = Mixed {
        dir,
        ports,
        _java: java,
        engine,
        net,
        rx,
        started: Instant::now(),
    };
    let elected = m.elect(local).await.unwrap_or_else(|| {
        panic!(
            "no decision after 60 s ({:?}); Java 3 log tail:\n{}",
            m.engine.stats(),
            tail(&m.java_log(3))
        )
    });
    assert_eq!(m.engine.stats().malformed, 0);
    (m, elected)
}

fn tail(log: &str) -> &str {
    let mut start = log.len().saturating_sub(4000);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    &log[start..]
}

/// Java servers 2 and 3 and outpost's engine as server 1, all with empty databases: a Java server
/// must win (the higher sid wins among those whose votes arrive in time; which one depends on how
/// fast the JVMs start); outpost ends FOLLOWING it and the Java servers report that leader and a
/// follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_server_wins() {
    let (mut m, elected) = elect_with_java(LocalState {
        last_logged_zxid: Zxid(0),
        current_epoch: 0,
    })
    .await;
    assert_eq!(elected.role, Role::Following);
    assert!(
        [ServerId(2), ServerId(3)].contains(&elected.leader),
        "{elected:?}"
    );
    assert_eq!(elected.zxid, Zxid(0));
    // Java parsed outpost's notifications: its WorkerReceiver logs each one with the sender's sid.
    for sid in [2, 3] {
        m.wait_for_java_log(sid, "n.sid:1,").await;
    }
    // The Java servers settle: one leads, the other follows.
    let deadline = Instant::now() + Duration::from_secs(60);
    let java_leader = loop {
        let clients: Vec<u16> = [2, 3].iter().map(|sid| m.ports[sid].client).collect();
        let modes: Vec<Option<String>> = tokio::task::spawn_blocking(move || {
            clients
                .into_iter()
                .map(|port| {
                    four_letter(port, "srvr").and_then(|r| {
                        r.lines()
                            .find(|l| l.starts_with("Mode:"))
                            .map(str::to_string)
                    })
                })
                .collect()
        })
        .await
        .expect("srvr");
        match (modes[0].as_deref(), modes[1].as_deref()) {
            (Some("Mode: leader"), Some("Mode: follower")) => break ServerId(2),
            (Some("Mode: follower"), Some("Mode: leader")) => break ServerId(3),
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "Java servers did not settle: {modes:?}"
        );
        // Keep answering LOOKING peers meanwhile.
        m.serve(200).await;
    };
    // Java's QuorumCnxManager and outpost's transport settled on one connection per peer, the one
    // the larger sid (the Java server) initiated.
    assert_eq!(m.net.connected(), [ServerId(2), ServerId(3)]);
    assert_eq!(m.net.live_connections(), 2);
    // Normally outpost decided on the same leader. (If the JVMs started far enough apart, it can
    // have decided with the first one before the second's better vote arrived, like any server;
    // the restart below is then how it would recover, when following fails.)
    if elected.leader != java_leader {
        eprintln!(
            "outpost decided {} before the Java servers settled on {java_leader}",
            elected.leader
        );
    }
    // outpost looks again (as after losing its leader) and must join the running Java leader
    // through the FOLLOWING/LEADING answers of the Java servers.
    let rejoined = m
        .elect(LocalState {
            last_logged_zxid: Zxid(0),
            current_epoch: 0,
        })
        .await
        .expect("outpost rejoins the Java leader");
    assert_eq!(
        (rejoined.leader, rejoined.role),
        (java_leader, Role::Following)
    );
    assert_ne!(rejoined.tally, Tally::Round, "{rejoined:?}");
    assert!(rejoined.supporters.contains(&java_leader));
}

/// outpost's engine has the longest history (epoch 1): Java servers 2 and 3 must elect it, and it
/// ends LEADING with their votes. (Without a learner protocol the Java followers then fail to
/// connect and look again; only the decision is checked.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outpost_wins() {
    let (mut m, elected) = elect_with_java(LocalState {
        last_logged_zxid: Zxid(0x1_0000_0001),
        current_epoch: 1,
    })
    .await;
    assert_eq!((elected.leader, elected.role), (ServerId(1), Role::Leading));
    assert!(elected.supporters.len() >= 2, "{elected:?}");
    // Both Java servers parsed outpost's votes and decided to follow server 1 (QuorumPeer logs its
    // new state).
    for sid in [2, 3] {
        m.wait_for_java_log(sid, "n.sid:1,").await;
        m.wait_for_java_log(sid, "FOLLOWING").await;
    }
}
