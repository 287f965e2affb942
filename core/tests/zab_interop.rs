//! The election engine in a live election with Apache ZooKeeper 3.8 (Debian's `zookeeper` package):
//! two Java servers and one outpost engine, driven by a minimal blocking election transport written
//! here (handshake header, tie-break, length-prefixed frames), elect a leader together. This proves
//! the notifications outpost writes are read by Java and vice versa, and that both sides agree.

use outpost_core::ids::{ServerId, Zxid};
use outpost_core::proto::frame::encode_frame;
use outpost_core::proto::quorum::{ElectionHandshake, ELECTION_MAX_MESSAGE};
use outpost_core::zab::election::{
    Action, Elected, Election, ElectionConfig, LocalState, Role, Tally,
};
use outpost_core::zab::quorum::QuorumVerifier;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

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

enum Event {
    Connected(u64, TcpStream),
    Message(u64, Vec<u8>),
}

/// Reads one connection: handshake header, then frames, forwarding them to the engine loop.
fn reader(mut stream: TcpStream, my_id: u64, events: mpsc::Sender<Event>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let sid = loop {
        match ElectionHandshake::decode(&buf) {
            Ok((h, used)) => {
                buf.drain(..used);
                break h.sid;
            }
            Err(_) if buf.len() < 8 + 8 + 4 + 2048 => {}
            Err(_) => return,
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    // Tie-break (§5.3): keep connections from larger sids only; a smaller sid would be called back
    // (not needed here: outpost's engine has the smallest sid).
    if sid <= my_id as i64 {
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let sid = sid as u64;
    let _ = events.send(Event::Connected(sid, stream.try_clone().expect("clone")));
    loop {
        while buf.len() >= 4 {
            let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            assert!(
                len > 0 && len as usize <= ELECTION_MAX_MESSAGE,
                "bad frame {len}"
            );
            if buf.len() < 4 + len as usize {
                break;
            }
            let payload = buf[4..4 + len as usize].to_vec();
            buf.drain(..4 + len as usize);
            if events.send(Event::Message(sid, payload)).is_err() {
                return;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A running mixed ensemble: Java servers 2 and 3, outpost's engine as server 1.
struct Mixed {
    dir: tempfile::TempDir,
    ports: BTreeMap<u64, Ports>,
    _java: Vec<Killed>,
    engine: Election,
    events: mpsc::Receiver<Event>,
    peers: BTreeMap<u64, TcpStream>,
    started: Instant,
}

impl Mixed {
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Writes a notification frame to a connected peer (Java connects to us: its sids are larger).
    fn send(&mut self, to: u64, frame: &[u8]) {
        if let Some(s) = self.peers.get_mut(&to) {
            if s.write_all(frame).is_err() {
                self.peers.remove(&to);
            }
        }
    }

    /// Performs an outbox; returns the decision if there is one.
    fn perform(
        &mut self,
        actions: Vec<Action>,
        last: &mut BTreeMap<u64, Vec<u8>>,
    ) -> Option<Elected> {
        let mut outcome = None;
        for action in actions {
            let mut deliver = |m: &mut Mixed, to: u64, bytes: Vec<u8>| {
                let frame = encode_frame(&bytes);
                m.send(to, &frame);
                last.insert(to, frame);
            };
            match action {
                Action::Send { to, notification } => deliver(self, to.0, notification.to_bytes()),
                Action::Broadcast { to, notification } => {
                    for peer in to {
                        deliver(self, peer.0, notification.to_bytes());
                    }
                }
                Action::Elected(e) => outcome = Some(e),
                Action::NewerConfig { .. } | Action::PeerLooking { .. } => {}
            }
        }
        outcome
    }

    /// Feeds events to the engine for up to `for_ms`, or until it decides when `until_decided`.
    fn drive(
        &mut self,
        for_ms: u64,
        until_decided: bool,
        last: &mut BTreeMap<u64, Vec<u8>>,
    ) -> Option<Elected> {
        let end = self.now() + for_ms;
        while self.now() < end {
            let wait = self
                .engine
                .next_deadline()
                .map_or(100, |d| d.saturating_sub(self.now()).clamp(1, 100));
            let actions = match self.events.recv_timeout(Duration::from_millis(wait)) {
                Ok(Event::Connected(sid, mut stream)) => {
                    // QuorumCnxManager sends the last message again on a new connection.
                    if let Some(frame) = last.get(&sid) {
                        let _ = stream.write_all(frame);
                    }
                    self.peers.insert(sid, stream);
                    continue;
                }
                Ok(Event::Message(sid, payload)) => {
                    let now = self.now();
                    self.engine
                        .receive_bytes(ServerId(sid), &payload, now)
                        .actions
                }
                Err(_) => {
                    let now = self.now();
                    self.engine.tick(now).actions
                }
            };
            if let Some(e) = self.perform(actions, last) {
                if until_decided {
                    return Some(e);
                }
            }
        }
        None
    }

    /// Drives the engine until Java server `sid`'s log contains `needle` (30 s at most).
    fn wait_for_java_log(&mut self, sid: u64, needle: &str, last: &mut BTreeMap<u64, Vec<u8>>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.java_log(sid).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "Java server {sid} never logged {needle:?}:\n{}",
                tail(&self.java_log(sid))
            );
            let _ = self.drive(100, false, last);
        }
    }

    fn java_log(&self, sid: u64) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("zk{sid}/zookeeper.log")))
            .unwrap_or_default()
    }
}

/// Starts Java servers 2 and 3 and runs outpost's engine as server 1 with `local` until it decides.
fn elect_with_java(local: LocalState) -> (Mixed, Elected, BTreeMap<u64, Vec<u8>>) {
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
    let listener = TcpListener::bind(("127.0.0.1", ports[&1].election)).expect("election port");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || reader(stream, 1, tx));
        }
    });
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
        events: rx,
        peers: BTreeMap::new(),
        started: Instant::now(),
    };
    let mut last = BTreeMap::new();
    let now = m.now();
    let first = m.engine.start(now, local).actions;
    let mut elected = m.perform(first, &mut last);
    if elected.is_none() {
        elected = m.drive(60_000, true, &mut last);
    }
    let elected = elected.unwrap_or_else(|| {
        panic!(
            "no decision after 60 s ({:?}); Java 3 log tail:\n{}",
            m.engine.stats(),
            tail(&m.java_log(3))
        )
    });
    assert_eq!(m.engine.stats().malformed, 0);
    (m, elected, last)
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
#[test]
fn java_server_wins() {
    let (mut m, elected, mut last) = elect_with_java(LocalState {
        last_logged_zxid: Zxid(0),
        current_epoch: 0,
    });
    assert_eq!(elected.role, Role::Following);
    assert!(
        [ServerId(2), ServerId(3)].contains(&elected.leader),
        "{elected:?}"
    );
    assert_eq!(elected.zxid, Zxid(0));
    // Java parsed outpost's notifications: its WorkerReceiver logs each one with the sender's sid.
    for sid in [2, 3] {
        m.wait_for_java_log(sid, "n.sid:1,", &mut last);
    }
    // The Java servers settle: one leads, the other follows.
    let deadline = Instant::now() + Duration::from_secs(60);
    let java_leader = loop {
        let modes: Vec<Option<String>> = [2, 3]
            .iter()
            .map(|sid| {
                four_letter(m.ports[sid].client, "srvr").and_then(|r| {
                    r.lines()
                        .find(|l| l.starts_with("Mode:"))
                        .map(str::to_string)
                })
            })
            .collect();
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
        let _ = m.drive(200, false, &mut last);
    };
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
    let now = m.now();
    let actions = m
        .engine
        .start(
            now,
            LocalState {
                last_logged_zxid: Zxid(0),
                current_epoch: 0,
            },
        )
        .actions;
    let rejoined = match m.perform(actions, &mut last) {
        Some(e) => Some(e),
        None => m.drive(30_000, true, &mut last),
    }
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
#[test]
fn outpost_wins() {
    let (mut m, elected, mut last) = elect_with_java(LocalState {
        last_logged_zxid: Zxid(0x1_0000_0001),
        current_epoch: 1,
    });
    assert_eq!((elected.leader, elected.role), (ServerId(1), Role::Leading));
    assert!(elected.supporters.len() >= 2, "{elected:?}");
    // Both Java servers parsed outpost's votes and decided to follow server 1 (QuorumPeer logs its
    // new state).
    for sid in [2, 3] {
        m.wait_for_java_log(sid, "n.sid:1,", &mut last);
        m.wait_for_java_log(sid, "FOLLOWING", &mut last);
    }
}
