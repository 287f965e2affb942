//! The relay in the `outpost` binary: hooks the relay into `outpost server` when zoo.cfg names a
//! `relay.configFile`, and runs `outpost relay tail`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use outpost_conf::ZooCfg;
use outpost_core::shell::standalone::{commit_feed, CommitFeedReceiver, StandaloneConfig};
use outpost_relay::event::human_line;
use outpost_relay::tail::touches;
use outpost_relay::{RelayConfig, ServerFiles, StreamReader};

use crate::cli_args::RelayTailArgs;

/// A relay ready to start with the server.
pub struct PreparedRelay {
    config: RelayConfig,
    files: ServerFiles,
    feed: CommitFeedReceiver,
}

/// When zoo.cfg names `relay.configFile`: reads and validates it (a bad file stops the server from
/// starting, naming the key) and gives the server its end of the commit feed.
pub fn prepare(
    cfg: &ZooCfg,
    server: &mut StandaloneConfig,
) -> anyhow::Result<Option<PreparedRelay>> {
    let Some(path) = &cfg.relay_config_file else {
        return Ok(None);
    };
    let config = RelayConfig::load(path).map_err(|e| anyhow!("relay.configFile: {e}"))?;
    let (feed, rx) = commit_feed(config.queue_capacity);
    server.settings.emit_committed = true;
    server.commit_feed = Some(feed);
    tracing::info!(
        "relay: {} (config {}), queue of {} txns",
        match &config.sink {
            outpost_relay::SinkKind::Nats => format!(
                "JetStream stream {} at {}",
                config.nats.stream,
                config.nats.servers.join(",")
            ),
            outpost_relay::SinkKind::Stdout => "JSON lines on stdout".to_string(),
            outpost_relay::SinkKind::File(p) => format!("JSON lines to {}", p.display()),
        },
        path.display(),
        config.queue_capacity
    );
    Ok(Some(PreparedRelay {
        config,
        files: ServerFiles {
            data_dir: cfg.data_dir.clone(),
            data_log_dir: cfg.data_log_dir.clone(),
            extended_types: cfg.extended_types_enabled,
        },
        feed: rx,
    }))
}

/// The name of the relay's thread (and of its runtime's blocking threads), so its CPU can be told apart
/// from the server's in `/proc/<pid>/task/*/comm` (the relay benchmark reads it).
pub const RELAY_THREAD: &str = "outpost-relay";

/// A relay running on its own thread.
pub struct RelayThread {
    done: tokio::sync::oneshot::Receiver<()>,
}

/// Starts the relay on a thread of its own with a single-threaded runtime: publishing (JSON, lz4, the
/// NATS client) never takes a worker of the server's runtime, and its CPU cost shows per thread.
pub fn spawn(relay: PreparedRelay) -> anyhow::Result<RelayThread> {
    let (tx, done) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name(RELAY_THREAD)
        .build()
        .context("start the relay's runtime")?;
    std::thread::Builder::new()
        .name(RELAY_THREAD.into())
        .spawn(move || {
            runtime.block_on(async move {
                let task = outpost_relay::spawn(relay.config, relay.files, relay.feed);
                let _ = task.await;
            });
            let _ = tx.send(());
        })
        .context("start the relay's thread")?;
    Ok(RelayThread { done })
}

/// After the server stopped: lets the relay publish what is committed, for at most 10 seconds.
pub async fn finish(relay: RelayThread) {
    if tokio::time::timeout(Duration::from_secs(10), relay.done)
        .await
        .is_err()
    {
        tracing::warn!(
            "relay: still behind after 10s at shutdown; it resumes from the log at the next start"
        );
    }
}

/// Parses `--from` as decimal or `0x` hex.
fn parse_zxid(text: &str) -> anyhow::Result<i64> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.with_context(|| format!("--from {text:?} is not a zxid (decimal or 0x hex)"))
}

/// `outpost relay tail --nats URL --stream NAME [--from ZXID] [--path /prefix]`: prints the log events of
/// the stream, one line each, and keeps following it until Ctrl-C.
pub fn run_tail(args: &RelayTailArgs) -> anyhow::Result<ExitCode> {
    let from = args.from.as_deref().map(parse_zxid).transpose()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(async {
        let mut reader = StreamReader::open(&args.nats, &args.stream).await?;
        loop {
            tokio::select! {
                next = reader.next(Duration::from_secs(3600)) => {
                    let Some(m) = next? else { continue };
                    if !m.is_log() || from.is_some_and(|f| m.event.zxid < f) {
                        continue;
                    }
                    // Resync markers (no path) always show; everything else must touch the subtree.
                    let marker = m.event.kind.starts_with("resync_") && m.event.path.is_none();
                    if let Some(prefix) = &args.path {
                        if !marker && !touches(&m.event, prefix) {
                            continue;
                        }
                    }
                    println!("{}", human_line(&m.event));
                }
                _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            }
        }
    })
}
