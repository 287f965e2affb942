//! The client under `outpost cli` and `outpost bench` keeps its session across a broken connection: it
//! moves to the next host of the list, and its ephemerals and watches survive (real Apache ZooKeeper 3.8,
//! with a loopback relay in front of it as the connection to break).

mod support;

use outpost_core::client::{Client, CreateMode, EventType, KeeperState, WatchedEvent};
use outpost_core::proto::Acl;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;
use support::ZooKeeperStandalone;

/// Accepts one connection on a free port and relays it to `target`; returns the port and both sockets of
/// the relay so the test can cut them. The listener is dropped after the first accept, so reconnecting
/// to this port fails.
fn one_shot_relay(
    target: std::net::SocketAddr,
) -> (u16, std::sync::mpsc::Receiver<(TcpStream, TcpStream)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((client, _)) = listener.accept() else {
            return;
        };
        drop(listener);
        let server = TcpStream::connect(target).expect("relay connects to ZooKeeper");
        let (mut c1, mut s1) = (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        let (mut c2, mut s2) = (
            client.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        std::thread::spawn(move || std::io::copy(&mut c1, &mut s1));
        std::thread::spawn(move || std::io::copy(&mut s2, &mut c2));
        let _ = tx.send((client, server));
    });
    (port, rx)
}

async fn next_event(events: &mut outpost_core::client::EventReceiver) -> WatchedEvent {
    tokio::time::timeout(Duration::from_secs(15), events.recv())
        .await
        .expect("an event within 15 s")
        .expect("event channel open")
}

/// Cutting the connection makes the client report Disconnected, reconnect to the second host with the
/// same session id (its ephemeral node is still there), and re-register its data watch, which then fires.
#[test]
fn client_reconnects_to_next_host_keeping_session_and_watches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zk = ZooKeeperStandalone::start(dir.path(), "");
    let (port, sockets) = one_shot_relay(zk.addr);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let hosts = format!("127.0.0.1:{port},{}", zk.addr);
        let (client, mut events) = Client::connect(&hosts, Duration::from_secs(10))
            .await
            .expect("connect");
        assert_eq!(
            next_event(&mut events).await.state,
            KeeperState::SyncConnected
        );
        assert_eq!(client.connected_host(), format!("127.0.0.1:{port}"));
        let open = Acl::open_unsafe();
        client
            .create("/eph", b"", &open, CreateMode::Ephemeral)
            .await
            .expect("io")
            .expect("create");
        client
            .create("/w", b"1", &open, CreateMode::Persistent)
            .await
            .expect("io")
            .expect("create");
        client
            .get_data("/w", true)
            .await
            .expect("io")
            .expect("get with watch");
        let session = client.session_id();

        let (a, b) = sockets
            .recv_timeout(Duration::from_secs(5))
            .expect("relay sockets");
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
        assert_eq!(
            next_event(&mut events).await.state,
            KeeperState::Disconnected
        );
        assert_eq!(
            next_event(&mut events).await.state,
            KeeperState::SyncConnected
        );
        assert_eq!(client.session_id(), session);
        assert_eq!(client.connected_host(), zk.addr.to_string());
        assert!(client
            .exists("/eph", false)
            .await
            .expect("io")
            .expect("exists")
            .is_some());

        let (other, _other_events) = Client::connect(&zk.addr.to_string(), Duration::from_secs(10))
            .await
            .expect("second client");
        other
            .set_data("/w", b"2", -1)
            .await
            .expect("io")
            .expect("set");
        let e = next_event(&mut events).await;
        assert_eq!(
            (e.event_type, e.path.as_deref()),
            (EventType::NodeDataChanged, Some("/w"))
        );
        other.close().await.expect("close");
        client.close().await.expect("close");
    });
}
