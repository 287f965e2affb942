//! `outpost conf check --config zoo.cfg`: loads zoo.cfg (with its dynamic file and myid) through
//! outpost-conf and prints the resolved configuration: mode, quorum, servers, every key with its value
//! and source, unknown keys and warnings. A bad file prints `file:line: key: message` and exits 1.

use anyhow::Context;
use outpost_conf::{Mode, QuorumSpec, Source, ZooCfg};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// Runs the check: prints the report on stdout and returns success, or prints the configuration error
/// on stderr and returns exit code 1. An `Err` means the report itself could not be written.
pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    match ZooCfg::load(path) {
        Ok(cfg) => {
            let mut out = std::io::stdout().lock();
            out.write_all(report(&cfg).as_bytes())
                .context("writing the report")?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

fn source_text(source: &Source) -> String {
    source.to_string()
}

/// The human-readable report of a loaded configuration.
pub fn report(cfg: &ZooCfg) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "config: {}", cfg.config_path.display());
    let mode = match (cfg.mode, cfg.my_id) {
        (Mode::Standalone, _) => "standalone".to_string(),
        (m, Some(id)) => format!("{m} (myid {id})"),
        (m, None) => m.to_string(),
    };
    let _ = writeln!(s, "mode: {mode}");
    let m = &cfg.membership;
    let quorum = match &m.quorum {
        QuorumSpec::Majority { .. } => "majority".to_string(),
        QuorumSpec::Hierarchical { groups, .. } => {
            format!("hierarchical, groups: {}", groups.len())
        }
    };
    let _ = writeln!(
        s,
        "quorum: {quorum}; voters: {}; observers: {}",
        m.voters().len(),
        m.observers().len()
    );
    let _ = writeln!(s, "config version: {:x}", m.version);
    if let Some(c) = &cfg.client_address {
        let _ = writeln!(s, "client address: {c}");
    }

    let _ = writeln!(s, "\nservers:");
    if m.servers.is_empty() {
        let _ = writeln!(s, "  (none)");
    } else {
        let _ = writeln!(
            s,
            "  {:<4} {:<12} {:<28} {:<28} {:<28} source",
            "id", "role", "quorum", "election", "client"
        );
        for srv in m.servers.values() {
            let quorum: Vec<String> = srv
                .addrs
                .iter()
                .map(|a| {
                    format!(
                        "{}:{}",
                        outpost_conf::server::delimited_host(&a.host),
                        a.quorum_port
                    )
                })
                .collect();
            let election: Vec<String> = srv
                .addrs
                .iter()
                .map(|a| {
                    format!(
                        "{}:{}",
                        outpost_conf::server::delimited_host(&a.host),
                        a.election_port
                    )
                })
                .collect();
            let client = match &srv.client {
                Some(c) if srv.client_from_static => format!("{c} (clientPort)"),
                Some(c) => c.to_string(),
                None => "-".to_string(),
            };
            let src = cfg
                .server_sources
                .get(&srv.id)
                .map(source_text)
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:<4} {:<12} {:<28} {:<28} {:<28} {src}",
                srv.id,
                srv.role.to_string(),
                quorum.join("|"),
                election.join("|"),
                client
            );
        }
    }

    let _ = writeln!(s, "\nkeys:");
    let width = cfg.resolved.iter().map(|r| r.key.len()).max().unwrap_or(0);
    for r in &cfg.resolved {
        let value = if r.value.is_empty() {
            "(unset)"
        } else {
            &r.value
        };
        let _ = writeln!(
            s,
            "  {:<width$} = {:<40} {}",
            r.key,
            value,
            source_text(&r.source)
        );
    }

    if !cfg.unknown.is_empty() {
        let _ = writeln!(
            s,
            "\nunknown keys (ZooKeeper would set them as zookeeper.<key>; outpost ignores them):"
        );
        for r in &cfg.unknown {
            let _ = writeln!(
                s,
                "  {} = {}   ({})",
                r.key,
                r.value,
                source_text(&r.source)
            );
        }
    }

    if !cfg.warnings.is_empty() {
        let _ = writeln!(s, "\nwarnings:");
        for w in &cfg.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
    }

    if !m.servers.is_empty() {
        let _ = writeln!(s, "\nconfig text (/zookeeper/config):");
        for line in cfg.config_text().lines() {
            let _ = writeln!(s, "  {line}");
        }
    }
    s
}
