//! outpost-core: identifiers, the jute codec, the data tree, sessions, request logic, the ZAB engine,
//! storage and the tokio shell that drives them.
//!
//! The logic modules are sans-IO: they take values (bytes, ticks, random seeds) and return actions.
//! Only `shell` touches sockets, disks and clocks.

pub mod acl;
pub mod client;
pub mod ids;
pub mod jute;
pub mod path;
pub mod proto;
pub mod server;
pub mod session;
pub mod shell;
pub mod storage;
pub mod tree;
pub mod watch;
pub mod zab;
