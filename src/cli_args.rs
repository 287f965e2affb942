//! Command-line surface of `outpost`, parsed with clap. Subcommands that are not built yet say so and exit
//! non-zero rather than pretending to work.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// outpost: a ZooKeeper-compatible coordination service with observers and a NATS relay.
#[derive(Debug, Parser)]
#[command(name = "outpost", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a server (standalone, participant or observer, as zoo.cfg says) in the foreground.
    Server(ServerArgs),
    /// Print the mode of the server a zoo.cfg describes, like `zkServer.sh status`.
    Status(ConfigArg),
    /// ZooKeeper command-line client, like zkCli.sh (`outpost cli -server host:port [cmd args...]`).
    Cli(CliArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Conf(ConfCommand),
    /// Relay tools (committed-txn stream to NATS).
    #[command(subcommand)]
    Relay(RelayCommand),
    /// Load generator speaking the ZooKeeper protocol; compares two servers side by side.
    Bench(Box<BenchArgs>),
    /// Try it: three voters and an observer on loopback, the observer relaying every committed change
    /// (JSON lines on stdout, or NATS), with an example session.
    Quickstart(QuickstartArgs),
    /// Change the running membership to what an edited dynamic config file says: prints the plan
    /// (servers added, removed, changed) and applies it as one reconfig.
    Reconfig(ReconfigArgs),
}

/// Arguments of `outpost reconfig`.
#[derive(Debug, Args)]
pub struct ReconfigArgs {
    /// The edited dynamic config file (`server.N=...` lines, as in zoo.cfg.dynamic).
    #[arg(long, value_name = "DYNAMIC_FILE")]
    pub from_file: PathBuf,
    /// zoo.cfg of a member (its membership says where to connect).
    #[arg(long, short = 'c', value_name = "ZOO_CFG")]
    pub config: PathBuf,
    /// Print the plan without applying it.
    #[arg(long)]
    pub dry_run: bool,
    /// host:port[,host:port...] to connect to instead of the members' client addresses.
    #[arg(long, value_name = "HOSTS")]
    pub server: Option<String>,
    /// `user:password` for `addauth digest` (the super user, whose digest is zoo.cfg's
    /// `DigestAuthenticationProvider.superDigest`); the environment variable `OUTPOST_RECONFIG_AUTH`
    /// keeps it out of the process list.
    #[arg(long, value_name = "USER:PASSWORD")]
    pub auth: Option<String>,
}

/// Arguments of `outpost quickstart`.
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Relay to the JetStream stream QUICKSTART at this NATS server (default: nats://127.0.0.1:4222
    /// when a JetStream-enabled server answers there, else JSON lines on stdout).
    #[arg(long, value_name = "URL", conflicts_with = "stdout")]
    pub nats: Option<String>,
    /// Relay to stdout as JSON lines even when a NATS server answers at nats://127.0.0.1:4222.
    #[arg(long)]
    pub stdout: bool,
    /// Client port of DC1's first voter on 127.0.0.1 (another free port is chosen if it is taken;
    /// 0: any free port).
    #[arg(long, default_value_t = 2181)]
    pub port: u16,
    /// Keep the data here (kept afterwards) instead of a temporary directory (removed at exit).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// `--config zoo.cfg`.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Path to zoo.cfg.
    #[arg(long, short = 'c', value_name = "ZOO_CFG")]
    pub config: PathBuf,
}

/// Arguments of `outpost server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Path to zoo.cfg.
    #[arg(long, short = 'c', value_name = "ZOO_CFG")]
    pub config: PathBuf,
    /// Shut down when standard input reaches end of file: `outpost quickstart` starts its members with
    /// a pipe on stdin, so they stop when it exits, however it exits (even kill -9).
    #[arg(long, hide = true)]
    pub exit_on_stdin_eof: bool,
}

/// Arguments of `outpost cli`.
#[derive(Debug, Args)]
pub struct CliArgs {
    /// host:port[,host:port...] to connect to (zkCli's `-server`).
    #[arg(long = "server", default_value = "127.0.0.1:2181")]
    pub server: String,
    /// Session timeout in ms (zkCli's `-timeout`).
    #[arg(long = "timeout", default_value_t = 30000)]
    pub timeout_ms: u32,
    /// A command and its arguments to run once; without it, commands are read from stdin.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `outpost conf ...`.
#[derive(Debug, Subcommand)]
pub enum ConfCommand {
    /// Parse and validate zoo.cfg (and its dynamic file and myid); print the resolved configuration.
    Check(ConfigArg),
}

/// `outpost relay ...`.
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Print relay events from a NATS stream for humans.
    Tail(RelayTailArgs),
}

/// Arguments of `outpost relay tail`.
#[derive(Debug, Args)]
pub struct RelayTailArgs {
    /// NATS server URL.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// JetStream stream name.
    #[arg(long, default_value = "OUTPOST")]
    pub stream: String,
    /// First zxid to print.
    #[arg(long)]
    pub from: Option<String>,
    /// Only events under this path.
    #[arg(long)]
    pub path: Option<String>,
}

/// Arguments of `outpost bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// host:port[,host:port...] of the servers to load.
    #[arg(long)]
    pub servers: String,
    /// create | set | get | mixed | failover | relay.
    #[arg(long, default_value = "mixed")]
    pub workload: String,
    /// Concurrent client sessions.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Outstanding requests per client.
    #[arg(long, default_value_t = 16)]
    pub depth: usize,
    /// Threads of the load generator's runtime (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// A second server (host:port[,..]) to run the same load against, printing ratios.
    #[arg(long)]
    pub compare: Option<String>,
    /// Bytes of data per create/set (and per pre-created node for get/set).
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Nodes pre-created for the get, set and mixed workloads.
    #[arg(long, default_value_t = 1000)]
    pub keys: usize,
    /// Name of the `--servers` column in the report.
    #[arg(long, default_value = "outpost")]
    pub label: String,
    /// Name of the `--compare` column in the report.
    #[arg(long, default_value = "other")]
    pub compare_label: String,
    /// Pid of the `--servers` server, to report its resident memory (VmRSS) at the end of the load.
    #[arg(long)]
    pub pid: Option<u32>,
    /// Pid of the `--compare` server, likewise.
    #[arg(long)]
    pub compare_pid: Option<u32>,
    /// Also print the results as one JSON object (last line of stdout).
    #[arg(long)]
    pub json: bool,
    /// Stop after starting this many operations in total (instead of at the end of `--duration`).
    #[arg(long)]
    pub total: Option<u64>,
    /// Keep the bench tree instead of deleting it at the end (e.g. to measure memory with it loaded).
    #[arg(long)]
    pub keep: bool,
    /// Offer this many operations per second in total (open loop, spread evenly over the
    /// `--clients` x `--depth` workers) instead of as many as the servers answer; latency is then
    /// measured from each operation's scheduled start, so queueing behind a slow server counts.
    #[arg(long)]
    pub rate: Option<f64>,
    /// For `--workload failover`: the pids of the `--servers` members, comma separated, in the same
    /// order; the one whose server reports `Mode: leader` is killed with SIGKILL.
    #[arg(long, value_delimiter = ',')]
    pub pids: Vec<u32>,
    /// For `--workload failover`: the pids of the `--compare` members, likewise.
    #[arg(long, value_delimiter = ',')]
    pub compare_pids: Vec<u32>,
    /// For `--workload failover`: seconds to wait for the first write after the kill before giving up.
    #[arg(long, default_value_t = 60)]
    pub failover_timeout: u64,
    /// For `--workload relay`: the NATS server the relay publishes to.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// For `--workload relay`: the relay's JetStream stream.
    #[arg(long, default_value = "OUTPOST")]
    pub stream: String,
    /// For `--workload relay`: the relay's subject prefix (the subscriber reads `<prefix>.log`).
    #[arg(long, default_value = "outpost")]
    pub subject_prefix: String,
    /// For `--workload relay`: client address of the server running the relay, whose `mntr` reports
    /// the relay's lag.
    #[arg(long)]
    pub observer: Option<String>,
    /// For `--workload relay`: pid of the server running the relay, for the CPU time of its relay
    /// threads and of the whole process.
    #[arg(long)]
    pub relay_pid: Option<u32>,
    /// For `--workload relay`: seconds to wait after the load for the last events to arrive.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
}

/// Rewrites zkCli-style single-dash long options (`-server`, `-timeout`) into clap's `--server` form, so
/// commands copied from a ZooKeeper guide work unchanged. Only options before the command are touched.
pub fn normalize_zkcli_args(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut in_cli = false;
    let mut past_options = false;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 1 && arg == "cli" {
            in_cli = true;
        } else if in_cli && !past_options && (arg == "-server" || arg == "-timeout") {
            out.push(format!("-{arg}"));
            continue;
        } else if in_cli && i > 1 && !arg.starts_with('-') && !past_options {
            // The value of an option is not the command; only a bare word after a value is.
            let prev_is_option = out
                .last()
                .is_some_and(|p: &String| p == "--server" || p == "--timeout");
            if !prev_is_option {
                past_options = true;
            }
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// zkCli's `-server host:port cmd` form parses, and options inside the command are left alone.
    #[test]
    fn zkcli_style_server_option_parses() {
        let args: Vec<String> = ["outpost", "cli", "-server", "h:1", "create", "-e", "/a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cli = Cli::try_parse_from(normalize_zkcli_args(args)).expect("parses");
        match cli.command {
            Command::Cli(c) => {
                assert_eq!(c.server, "h:1");
                assert_eq!(c.command, vec!["create", "-e", "/a"]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
