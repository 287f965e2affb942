//! Plain HTTP/1.1 GETs against a server's AdminServer (`/commands/<name>`, JSON) and Prometheus exporter
//! (`/metrics`), without an HTTP client dependency: one request per connection, bounded in time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One HTTP/1.1 GET with `Connection: close`: the status code, the head and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header end");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    assert!(
        !head.to_ascii_lowercase().contains("chunked"),
        "unexpected chunked body: {head}"
    );
    (status, head.to_string(), body.to_string())
}

/// GETs an AdminServer command and parses its JSON.
pub fn command(addr: SocketAddr, name: &str) -> Value {
    let (status, head, body) = http_get(addr, &format!("/commands/{name}"));
    assert_eq!(status, 200, "{name}: {head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{name}: {head}"
    );
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"))
}

/// Waits until `addr` accepts TCP connections (the HTTP listeners start right after the client port).
pub fn wait_listening(addr: SocketAddr) {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{addr} not listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
