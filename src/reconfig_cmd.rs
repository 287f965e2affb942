//! `outpost reconfig --from-file <dynamic file> --config <zoo.cfg> [--dry-run]`: the operator edits the
//! dynamic config file they know; outpost reads the running membership from `/zookeeper/config`,
//! prints the difference (servers added, removed, changed) and applies it as one reconfig, guarded by
//! `-v` (the running version) so a concurrent change makes it fail instead of being overwritten.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use outpost_conf::reconfig::{parse_config_text, plan, MemberChange, PlannedRequest, ReconfigPlan};
use outpost_conf::{QuorumConfig, ServerSpec, ZooCfg};
use outpost_core::client::Client;

use crate::cli_args::ReconfigArgs;

/// Where a member's clients connect: its client address, the wildcard meaning its quorum host.
fn client_endpoint(s: &ServerSpec) -> Option<String> {
    let c = s.client.as_ref()?;
    let host = if c.is_wildcard() {
        s.addrs.first()?.host.clone()
    } else {
        c.host.clone()
    };
    Some(format!(
        "{}:{}",
        outpost_conf::server::delimited_host(&host),
        c.port
    ))
}

/// The connect string of a membership (every member with a client address).
pub fn connect_string(qc: &QuorumConfig) -> String {
    qc.servers
        .values()
        .filter_map(client_endpoint)
        .collect::<Vec<_>>()
        .join(",")
}

fn role(s: &ServerSpec) -> String {
    s.role.to_string()
}

/// The plan as operators read it, one line per change, then the equivalent zkCli command.
pub fn render_plan(running: &QuorumConfig, p: &ReconfigPlan) -> String {
    let mut out = format!(
        "running configuration version {:x}: {} voters, {} observers\n",
        running.version,
        running.voters().len(),
        running.observers().len()
    );
    if p.changes.is_empty() && p.request == PlannedRequest::Nothing {
        out.push_str("nothing to change\n");
        return out;
    }
    for c in &p.changes {
        match c {
            MemberChange::Add(s) => out.push_str(&format!(
                "  add     server.{} as {} ({})\n",
                s.id,
                role(s),
                s.render()
            )),
            MemberChange::Remove(id) => {
                let was = running.servers.get(id).map(role).unwrap_or_default();
                out.push_str(&format!("  remove  server.{id} ({was})\n"));
            }
            MemberChange::Change { from, to } => {
                let what = if from.role != to.role {
                    format!("{} -> {}", role(from), role(to))
                } else {
                    "addresses".to_string()
                };
                out.push_str(&format!(
                    "  change  server.{}: {what} ({})\n",
                    to.id,
                    to.render()
                ));
            }
        }
    }
    match &p.request {
        PlannedRequest::Nothing => {}
        PlannedRequest::Incremental { joining, leaving } => {
            out.push_str("as: reconfig");
            if let Some(j) = joining {
                out.push_str(&format!(" -add {j}"));
            }
            if let Some(l) = leaving {
                out.push_str(&format!(" -remove {l}"));
            }
            out.push_str(&format!(" -v {:x}\n", running.version));
        }
        PlannedRequest::Members(m) => {
            out.push_str(&format!(
                "as: reconfig -members {m} -v {:x}\n",
                running.version
            ));
        }
    }
    out
}

/// Runs `outpost reconfig`.
pub fn run(args: &ReconfigArgs) -> anyhow::Result<ExitCode> {
    let cfg = ZooCfg::load(&args.config)
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("load {}", args.config.display()))?;
    let wanted = read_wanted(&args.from_file)?;
    let servers = match &args.server {
        Some(s) => s.clone(),
        None => connect_string(&cfg.membership),
    };
    if servers.is_empty() {
        bail!(
            "{}: no member has a client address; pass --server host:port",
            args.config.display()
        );
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(async {
        let timeout = Duration::from_secs(10);
        let (client, _events) =
            tokio::time::timeout(timeout, Client::connect(&servers, Duration::from_secs(10)))
                .await
                .map_err(|_| anyhow!("connecting to {servers} timed out"))?
                .with_context(|| format!("connect to {servers}"))?;
        let auth = args
            .auth
            .clone()
            .or_else(|| std::env::var("OUTPOST_RECONFIG_AUTH").ok());
        if let Some(auth) = &auth {
            client
                .add_auth("digest", auth.as_bytes())
                .await
                .context("addauth")?
                .map_err(|e| anyhow!("addauth digest: {}", e.name()))?;
        }
        let _ = client.sync("/zookeeper/config").await;
        let (data, _) = client
            .get_config(false)
            .await
            .context("read /zookeeper/config")?
            .map_err(|e| anyhow!("read /zookeeper/config: {}", e.name()))?;
        let running = parse_config_text(&String::from_utf8_lossy(&data))
            .map_err(|e| anyhow!("/zookeeper/config does not parse: {e}"))?;
        let p = plan(&running, &wanted);
        print!("{}", render_plan(&running, &p));
        if args.dry_run || p.request == PlannedRequest::Nothing {
            let _ = client.close().await;
            return Ok(ExitCode::SUCCESS);
        }
        let version = i64::try_from(running.version).unwrap_or(-1);
        let result = match &p.request {
            PlannedRequest::Incremental { joining, leaving } => {
                client
                    .reconfig(joining.as_deref(), leaving.as_deref(), None, version)
                    .await
            }
            PlannedRequest::Members(m) => client.reconfig(None, None, Some(m), version).await,
            PlannedRequest::Nothing => unreachable!("handled above"),
        };
        let _ = client.close().await;
        match result.context("reconfig")? {
            Ok((data, _)) => {
                println!(
                    "Committed new configuration:\n{}",
                    String::from_utf8_lossy(&data)
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(code) => {
                eprintln!(
                    "outpost reconfig: refused: {}",
                    crate::cli::commands::keeper_message(code, "/zookeeper/config")
                );
                Ok(ExitCode::from(1))
            }
        }
    })
}

/// The edited dynamic file: `server.N`, `group.G`, `weight.N` lines (a `version` line is ignored).
fn read_wanted(path: &Path) -> anyhow::Result<QuorumConfig> {
    let bytes = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let text = outpost_conf::properties::decode_latin1(&bytes);
    let mut qc = parse_config_text(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    qc.version = 0;
    if qc.servers.is_empty() {
        bail!("{}: no server.N lines", path.display());
    }
    Ok(qc)
}
