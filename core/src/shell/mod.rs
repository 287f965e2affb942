//! The tokio shell: sockets, the log thread, timers. It owns every piece of IO and drives the sans-IO
//! server logic in `server`, carrying out the actions it returns in the documented order.

pub mod admin;
pub mod connection;
pub mod dynamic_config;
pub mod election_net;
pub mod log_thread;
pub mod metrics;
pub mod quorum_peer;
pub mod snapshot_writer;
pub mod standalone;

/// Turns TCP keepalive on for `stream` when `on` (ZooKeeper's `tcpKeepAlive` for election sockets,
/// `clientTcpKeepAlive` for client sockets), so a peer that vanished without a FIN or RST (a dead host,
/// a NAT or firewall that dropped the flow) is noticed by the kernel instead of holding the socket forever.
/// Off leaves the socket as the kernel made it, as ZooKeeper's `setKeepAlive(false)` does.
pub fn set_tcp_keepalive(stream: &tokio::net::TcpStream, on: bool) -> std::io::Result<()> {
    if on {
        socket2::SockRef::from(stream).set_keepalive(true)?;
    }
    Ok(())
}
