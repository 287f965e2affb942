//! relay_mirror: keeps a local mirror of one subtree from the relay's JetStream stream and checks it
//! against the server (see docs/relay.md, "Example: a subtree mirror").
//!
//! ```sh
//! cargo run --example relay_mirror -- --nats nats://127.0.0.1:4222 --stream OUTPOST \
//!     --server 127.0.0.1:2181 --path /app [--once]
//! ```
//!
//! It reads `<prefix>.log` from the start of the stream and applies each event to an in-memory map
//! (path -> data): creates, deletes, set_data, the ops of a multi, the ephemerals a close_session deleted,
//! and a resync dump (which replaces the mirror). Whenever the stream is quiet and the mirror is at the
//! zxid the server reports, it walks the subtree on the server with outpost's client and compares. With
//! `--once` it exits after the first comparison: 0 when the mirror matches, 1 when it does not. The relay
//! must run with `include_data = true` for data to be compared (otherwise only the paths are).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Parser;
use outpost_core::client::Client;
use outpost_relay::tail::touches;
use outpost_relay::{Event, StreamReader};

/// Command line.
#[derive(Debug, Parser)]
struct Args {
    /// NATS URL.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// JetStream stream the relay publishes to.
    #[arg(long, default_value = "OUTPOST")]
    stream: String,
    /// The outpost (or ZooKeeper) server to check against.
    #[arg(long, default_value = "127.0.0.1:2181")]
    server: String,
    /// The subtree to mirror.
    #[arg(long, default_value = "/")]
    path: String,
    /// Compare once, then exit (0 = the mirror matches the server).
    #[arg(long)]
    once: bool,
}

/// The mirrored subtree: path -> data (`None` when the events carried no data).
#[derive(Default)]
struct Mirror {
    root: String,
    nodes: BTreeMap<String, Option<Vec<u8>>>,
    zxid: i64,
    with_data: bool,
}

impl Mirror {
    fn under(&self, path: &str) -> bool {
        self.root == "/"
            || path == self.root
            || (path.starts_with(&self.root) && path.as_bytes().get(self.root.len()) == Some(&b'/'))
    }

    fn apply(&mut self, e: &Event) {
        match e.kind.as_str() {
            "multi" => e.ops.iter().flatten().for_each(|op| self.apply(op)),
            "close_session" => {
                for p in e.paths.iter().flatten() {
                    self.nodes.remove(p);
                }
            }
            "resync_begin" => self.nodes.clear(),
            "create" | "set_data" | "resync_node" => {
                if let Some(p) = e.path.as_deref().filter(|p| self.under(p)) {
                    if e.data.is_some() {
                        self.with_data = true;
                    }
                    self.nodes.insert(p.to_string(), e.data.clone());
                }
            }
            "delete" => {
                if let Some(p) = &e.path {
                    self.nodes.remove(p);
                }
            }
            _ => {}
        }
    }
}

/// The subtree on the server: every znode under `root` with its data.
async fn server_tree(client: &Client, root: &str) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_string()];
    while let Some(path) = stack.pop() {
        let Ok((data, _)) = client.get_data(&path, false).await? else {
            continue; // deleted meanwhile
        };
        if path != "/" {
            out.insert(path.clone(), data);
        }
        let Ok(children) = client.get_children(&path, false).await? else {
            continue;
        };
        for c in children {
            let child = if path == "/" {
                format!("/{c}")
            } else {
                format!("{path}/{c}")
            };
            if child != "/zookeeper" {
                stack.push(child);
            }
        }
    }
    Ok(out)
}

/// Compares the mirror with the server; prints the differences. True when they match.
fn compare(mirror: &Mirror, server: &BTreeMap<String, Vec<u8>>) -> bool {
    let mut diffs = Vec::new();
    for (p, data) in server {
        match mirror.nodes.get(p) {
            None => diffs.push(format!("missing in the mirror: {p}")),
            Some(Some(d)) if d != data => diffs.push(format!("data differs: {p}")),
            Some(None) if mirror.with_data && !data.is_empty() => {
                diffs.push(format!("no data in the mirror: {p}"))
            }
            _ => {}
        }
    }
    for p in mirror.nodes.keys() {
        if !server.contains_key(p) {
            diffs.push(format!("only in the mirror: {p}"));
        }
    }
    for d in &diffs {
        println!("  {d}");
    }
    diffs.is_empty()
}

async fn run(args: Args) -> anyhow::Result<bool> {
    let mut reader = StreamReader::open(&args.nats, &args.stream).await?;
    let (client, _events) = Client::connect(&args.server, Duration::from_secs(10))
        .await
        .with_context(|| format!("connect to {}", args.server))?;
    let mut mirror = Mirror {
        root: args.path.clone(),
        ..Mirror::default()
    };
    loop {
        match reader.next(Duration::from_millis(300)).await? {
            Some(m) => {
                if m.is_log()
                    && (touches(&m.event, &args.path) || m.event.kind.starts_with("resync_"))
                {
                    mirror.apply(&m.event);
                }
                if m.kind == "log" || m.event.kind == "resync_end" {
                    mirror.zxid = m.event.zxid;
                }
            }
            None => {
                // Quiet: compare if the mirror is at the server's zxid.
                let tree = server_tree(&client, &args.path).await?;
                let server_zxid = client.last_zxid();
                if server_zxid != mirror.zxid {
                    continue;
                }
                let ok = compare(&mirror, &tree);
                println!(
                    "mirror of {} at zxid 0x{:x}: {} znodes, {}",
                    args.path,
                    mirror.zxid,
                    mirror.nodes.len(),
                    if ok {
                        "matches the server"
                    } else {
                        "DIFFERS from the server"
                    }
                );
                if args.once {
                    return Ok(ok);
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("relay_mirror: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(args)).map_err(|e| anyhow!("{e:#}")) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("relay_mirror: {e}");
            ExitCode::from(2)
        }
    }
}
