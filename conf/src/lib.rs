//! outpost-conf: reads `zoo.cfg`, its dynamic file and `myid` exactly as Apache ZooKeeper 3.8 does,
//! and validates them with errors that name the file, the line and the key.
//!
//! Entry point: [`ZooCfg::load`]. The membership and quorum rules ([`QuorumSpec::is_quorum`]) and the
//! configuration text of `/zookeeper/config` ([`QuorumConfig::render`]) are here too, for the ensemble.

pub mod error;
pub mod keys;
pub mod properties;
pub mod quorum;
pub mod reconfig;
pub mod server;
pub mod zoocfg;

pub use error::{ConfError, Source, Warning};
pub use quorum::{QuorumConfig, QuorumSpec};
pub use server::{HostPort, Role, ServerAddr, ServerSpec};
pub use zoocfg::{FourLetterWords, Mode, Resolved, ZooCfg};
