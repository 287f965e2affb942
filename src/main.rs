//! The `outpost` binary: parses the command line and hands each subcommand to the composition root.

use clap::Parser;
use outpost::cli_args::{normalize_zkcli_args, Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_zkcli_args(std::env::args().collect()));
    let name = match &cli.command {
        Command::Server(_) => "server",
        Command::Status(_) => "status",
        Command::Cli(_) => "cli",
        Command::Conf(_) => "conf",
        Command::Relay(_) => "relay",
        Command::Bench(_) => "bench",
    };
    eprintln!("outpost {name}: not built yet (see the project's issues)");
    ExitCode::from(2)
}
