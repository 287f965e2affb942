//! The tokio shell: sockets, the log thread, timers. It owns every piece of IO and drives the sans-IO
//! server logic in `server`, carrying out the actions it returns in the documented order.

pub mod admin;
pub mod connection;
pub mod election_net;
pub mod log_thread;
pub mod metrics;
pub mod quorum_peer;
pub mod standalone;
