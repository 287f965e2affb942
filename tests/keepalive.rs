//! `clientTcpKeepAlive` and `tcpKeepAlive`: with the key on, the server's side of a client connection
//! (or of every election connection) has TCP keepalive armed; with it off (ZooKeeper's default) it does
//! not. Read from the kernel's own socket table (`/proc/net/tcp`, the `tr` column: 2 means the keepalive
//! timer is pending on an idle established socket), so the tests see what the process really set.

mod support;

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::ensemble::{find_leader_all_serving, start_member, EnsemblePlan};
use support::OutpostStandalone;

/// One established TCP socket from `/proc/net/tcp`: its two ports and whether its keepalive timer runs.
#[derive(Debug)]
struct Socket {
    local_port: u16,
    remote_port: u16,
    keepalive_armed: bool,
}

/// The established IPv4 sockets on this host (every process: the table is per network namespace).
fn established() -> Vec<Socket> {
    let text = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap_or(""), 16).ok();
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when ...; st 01 is ESTABLISHED.
            if f.len() < 6 || f[3] != "01" {
                return None;
            }
            Some(Socket {
                local_port: port(f[1])?,
                remote_port: port(f[2])?,
                keepalive_armed: f[5].starts_with("02:"),
            })
        })
        .collect()
}

/// Whether the server's end (local port `server_port`) of the connection from `client` has keepalive.
fn server_side_keepalive(server_port: u16, client: SocketAddr) -> bool {
    let sockets = established();
    sockets
        .iter()
        .find(|s| s.local_port == server_port && s.remote_port == client.port())
        .unwrap_or_else(|| panic!("no server socket for {client} in {sockets:?}"))
        .keepalive_armed
}

/// Opens a client connection to `addr` that has finished the TCP handshake and been accepted.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    // The server arms keepalive right after accept; give the accept loop a moment.
    std::thread::sleep(Duration::from_millis(300));
    stream
}

/// A standalone server with `clientTcpKeepAlive=true` arms keepalive on an accepted client socket and one
/// without the key does not, so the key (not a default) is what turns it on.
#[test]
fn client_tcp_keep_alive_follows_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (sub, extra, want) in [("on", "clientTcpKeepAlive=true", true), ("off", "", false)] {
        let d = dir.path().join(sub);
        std::fs::create_dir_all(&d).expect("mkdir");
        let server = OutpostStandalone::start(&d, extra);
        let client = connect(server.addr);
        let local = client.local_addr().expect("local addr");
        assert_eq!(
            server_side_keepalive(server.addr.port(), local),
            want,
            "{sub}: {extra:?}"
        );
        // The connection still works as a ZooKeeper connection: a four-letter word is answered.
        let mut ruok = TcpStream::connect(server.addr).expect("connect");
        std::io::Write::write_all(&mut ruok, b"ruok").expect("send ruok");
        let mut reply = String::new();
        ruok.read_to_string(&mut reply).expect("read imok");
        assert_eq!(reply, "imok");
    }
}

/// In a three-voter outpost ensemble with `tcpKeepAlive=true`, both ends of every established election
/// connection (the end a server accepted and the end another initiated) have keepalive armed.
#[test]
fn tcp_keep_alive_arms_every_election_connection() {
    let root = tempfile::tempdir().expect("tempdir");
    let plan = EnsemblePlan::new(3, 0).with_outpost(&[1, 2, 3]);
    let configs = plan.write_all(root.path(), &[("tcpKeepAlive", "true")]);
    let _servers: Vec<_> = plan
        .members
        .iter()
        .zip(&configs)
        .map(|(m, cfg)| start_member(cfg, m))
        .collect();
    assert!(
        find_leader_all_serving(&plan.members, Duration::from_secs(60)).is_some(),
        "no leader"
    );
    let election_ports: Vec<u16> = plan.members.iter().map(|m| m.election).collect();
    // Election connections are opened lazily, when a notification must go out (as in Java's
    // QuorumCnxManager), so how many pairs are connected after a quick election varies; every end that
    // exists must have keepalive, and at least one connection (both of its ends) must exist.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ends: Vec<Socket> = established()
            .into_iter()
            .filter(|s| {
                election_ports.contains(&s.local_port) || election_ports.contains(&s.remote_port)
            })
            .collect();
        if ends.len() >= 2 {
            assert!(
                ends.iter().all(|s| s.keepalive_armed),
                "election sockets without keepalive: {ends:?}"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected an election connection, saw {ends:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
