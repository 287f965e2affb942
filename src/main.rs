//! The `outpost` binary: parses the command line and hands each subcommand to the composition root.

use clap::Parser;
use outpost::cli_args::{normalize_zkcli_args, Cli, Command, ConfCommand};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse_from(normalize_zkcli_args(std::env::args().collect()));
    if let Command::Conf(ConfCommand::Check(args)) = &cli.command {
        return outpost::conf_cmd::run(&args.config).unwrap_or_else(|e| {
            eprintln!("outpost conf check: {e:#}");
            ExitCode::from(2)
        });
    }
    let cli = match cli.command {
        Command::Cli(args) => return outpost::cli::run(args),
        other => Cli { command: other },
    };
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
