//! The composition root of the `outpost` binary: wires configuration, the core server, the observer role
//! and the relay together. Each subcommand of `outpost` has its module here; the logic lives in the crates.

pub mod bench;
pub mod cli;
pub mod cli_args;
pub mod conf_cmd;
pub mod ensemble_cmd;
pub mod quickstart;
pub mod reconfig_cmd;
pub mod relay_cmd;
pub mod server_cmd;
