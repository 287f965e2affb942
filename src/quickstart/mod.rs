//! `outpost quickstart`: the whole picture on loopback with no setup. A "DC1" of three voters and a
//! "DC2" observer running the relay (to NATS when a JetStream-enabled nats-server answers at
//! `nats://127.0.0.1:4222` or `--nats URL` is given, else JSON lines on stdout), an example session
//! through the observer and the events it produced, then it runs until Ctrl-C or SIGTERM. Data lives
//! in a temporary directory, removed at exit, unless `--data-dir` is given.
//!
//! Human text goes to stderr and event lines to stdout, so `outpost quickstart | jq` works.
//! Modules: [`members`] (the four child processes), [`events`] (the relay's events to stdout),
//! [`example`] (the example session).

pub mod events;
pub mod example;
pub mod members;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context};
use tokio::sync::{mpsc, watch};

use crate::cli_args::QuickstartArgs;
use members::{Plan, Running};

/// Where the relay looks for NATS when `--nats` is not given.
pub const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";

/// How long the ensemble may take to elect a leader and have the observer serving.
const SETTLE: Duration = Duration::from_secs(90);
/// How long the members may take to stop after their lifelines close.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A fresh directory under the system's temp dir.
fn temp_dir() -> anyhow::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "outpost-quickstart-{}-{nanos:x}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// `outpost quickstart [--nats URL | --stdout] [--port N] [--data-dir DIR]`.
pub fn run(args: &QuickstartArgs) -> anyhow::Result<ExitCode> {
    let (dir, temporary) = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
            (d.canonicalize().unwrap_or_else(|_| d.clone()), false)
        }
        None => (temp_dir()?, true),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("quickstart")
        .build()
        .context("start the tokio runtime")?;
    let result = runtime.block_on(quickstart(args, &dir, temporary));
    runtime.shutdown_timeout(Duration::from_secs(1));
    if temporary {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => eprintln!("outpost quickstart: removed {}", dir.display()),
            Err(e) => eprintln!(
                "outpost quickstart: could not remove {}: {e}",
                dir.display()
            ),
        }
    }
    result
}

/// A channel that turns true at Ctrl-C (SIGINT) or SIGTERM.
fn stop_signal() -> anyhow::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listen for SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

/// Resolves when `stop` turns true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The relay's target: `--stdout`, `--nats URL` (which must answer), or NATS at [`DEFAULT_NATS`] if a
/// JetStream-enabled server answers there, else stdout.
async fn choose_nats(args: &QuickstartArgs) -> anyhow::Result<Option<String>> {
    if args.stdout {
        return Ok(None);
    }
    match &args.nats {
        Some(url) => {
            if !events::jetstream_reachable(url).await {
                return Err(anyhow!(
                    "no JetStream-enabled NATS server answers at {url} (start one with `nats-server -js`, \
                     or leave out --nats to relay to stdout)"
                ));
            }
            Ok(Some(url.clone()))
        }
        None if events::jetstream_reachable(DEFAULT_NATS).await => {
            Ok(Some(DEFAULT_NATS.to_string()))
        }
        None => Ok(None),
    }
}

/// A connect string of the members' client addresses.
fn connect_string<'a>(plans: impl Iterator<Item = &'a Plan>) -> String {
    plans
        .map(|p| p.client_addr().to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// The banner: where the data is, the two connect strings and where events go.
fn banner(dir: &Path, temporary: bool, plans: &[Plan], nats: Option<&str>, wanted_port: u16) {
    let dc1 = connect_string(plans.iter().filter(|p| !p.observer));
    let dc2 = connect_string(plans.iter().filter(|p| p.observer));
    eprintln!(
        "outpost quickstart: a ZooKeeper ensemble on loopback, data in {} ({})",
        dir.display(),
        if temporary { "removed at exit" } else { "kept" }
    );
    if wanted_port != 0 && plans[0].client != wanted_port {
        eprintln!("  (port {wanted_port} is taken, so DC1's first voter uses another one)");
    }
    eprintln!("  DC1 connect string: {dc1}   (3 voters: servers 1, 2, 3)");
    eprintln!("  DC2 connect string: {dc2}   (1 observer: server 4, running the relay)");
    match nats {
        Some(url) => eprintln!(
            "  relay: to NATS at {url}, JetStream stream {} (subjects {p}.log and {p}.node.>); its {p}.log \
             events are copied to stdout as JSON lines\n  \
             watch it: outpost relay tail --nats {url} --stream {}",
            events::STREAM,
            events::STREAM,
            p = events::SUBJECT_PREFIX
        ),
        None => eprintln!(
            "  relay: JSON lines on stdout, one per committed txn (no NATS at {DEFAULT_NATS}; start \
             `nats-server -js` or pass --nats URL to publish to JetStream)"
        ),
    }
    eprintln!(
        "  logs: {}/<dc1-1|dc1-2|dc1-3|dc2-4>/outpost.log",
        dir.display()
    );
}

/// What to try next, once the ensemble is up.
fn next_steps(dir: &Path, plans: &[Plan], nats: Option<&str>) {
    let dc1 = connect_string(plans.iter().filter(|p| !p.observer));
    let dc2 = connect_string(plans.iter().filter(|p| p.observer));
    let mut steps = vec![
        (
            format!("outpost cli -server {dc1} create /app v1"),
            "a write in DC1",
        ),
        (
            format!("outpost cli -server {dc2} set /app v2"),
            "through DC2's observer",
        ),
        (
            format!("outpost cli -server {dc2} get /app"),
            "a local read in DC2",
        ),
        (
            format!("outpost status --config {}/dc2-4/zoo.cfg", dir.display()),
            "Mode: observer",
        ),
    ];
    if let Some(url) = nats {
        steps.push((
            format!(
                "outpost relay tail --nats {url} --stream {}",
                events::STREAM
            ),
            "the stream, for humans",
        ));
    }
    let width = steps.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    eprintln!("try it (each write's event appears on stdout):");
    for (command, what) in steps {
        eprintln!("  {command:<width$}   # {what}");
    }
    eprintln!("Ctrl-C stops the four servers.");
}

/// Resolves with a message when a member exits on its own.
async fn member_exited(members: &mut [Running]) -> String {
    loop {
        for m in members.iter_mut() {
            if let Ok(Some(status)) = m.child.try_wait() {
                return format!(
                    "server {} ({}) exited with {status}; its log:\n{}",
                    m.plan.id,
                    m.plan.name(),
                    m.log_tail(20)
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs the ensemble, the example session and the wait for Ctrl-C; always stops the members.
async fn quickstart(
    args: &QuickstartArgs,
    dir: &Path,
    temporary: bool,
) -> anyhow::Result<ExitCode> {
    let stop = stop_signal()?;
    let fresh = temporary || !dir.join("dc1-1").join("data").join("myid").exists();
    let nats = choose_nats(args).await?;
    if let (Some(url), true) = (&nats, fresh) {
        if events::fresh_stream(url).await? {
            eprintln!(
                "outpost quickstart: deleted the stream {} at {url} (an earlier quickstart's; this ensemble starts fresh)",
                events::STREAM
            );
        }
    }
    let plans = members::plan(args.port)?;
    let relay_toml = dir.join("relay.toml");
    std::fs::write(&relay_toml, events::relay_toml(nats.as_deref()))
        .with_context(|| format!("write {}", relay_toml.display()))?;
    banner(dir, temporary, &plans, nats.as_deref(), args.port);

    let exe = std::env::current_exe().context("find the outpost binary")?;
    let mut running = Vec::new();
    let mut pipe = None;
    for p in &plans {
        let cfg = members::write_member(dir, &plans, p, &relay_toml)?;
        let (member, stdout) = members::start(&exe, p, &cfg, p.observer && nats.is_none())?;
        running.push(member);
        if stdout.is_some() {
            pipe = stdout;
        }
    }
    let source = match (&nats, pipe) {
        (Some(url), _) => events::Source::Nats {
            url: url.clone(),
            from_end: !fresh,
        },
        (None, Some(p)) => events::Source::Pipe(p),
        (None, None) => return Err(anyhow!("the observer's stdout is not piped")),
    };
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut forwarder = tokio::spawn(events::forward(source, tx));
    // A JoinHandle must not be awaited again once it has yielded its output.
    let mut forwarder_done = false;

    let outcome = async {
        let started = Instant::now();
        eprintln!("starting the four servers...");
        let leader = tokio::select! {
            r = members::wait_ready(&mut running, SETTLE) => r?,
            _ = stopped(stop.clone()) => return Ok(()),
        };
        let followers: Vec<String> = plans
            .iter()
            .filter(|p| !p.observer && p.id != leader)
            .map(|p| p.id.to_string())
            .collect();
        eprintln!(
            "ensemble ready in {:.1} s: server {leader} leads DC1, servers {} follow, server 4 observes in DC2",
            started.elapsed().as_secs_f64(),
            followers.join(" and ")
        );
        let observer = plans[3].client_addr().to_string();
        tokio::select! {
            r = example::run(&observer, &mut rx, Duration::from_secs(30)) => { r?; }
            _ = stopped(stop.clone()) => return Ok(()),
        }
        drop(rx);
        next_steps(dir, &plans, nats.as_deref());
        tokio::select! {
            _ = stopped(stop.clone()) => Ok(()),
            why = member_exited(&mut running) => Err(anyhow!(why)),
            r = &mut forwarder => {
                forwarder_done = true;
                match r {
                    Ok(Ok(())) => Err(anyhow!("the relay's output ended")),
                    Ok(Err(e)) => Err(e),
                    Err(e) => Err(anyhow!("event forwarder: {e}")),
                }
            }
        }
    }
    .await;
    eprintln!("outpost quickstart: stopping the four servers...");
    members::stop_all(&mut running, STOP_GRACE).await;
    // The observer's relay publishes what was committed before it stops; with a pipe the forwarder
    // ends at its end, with NATS give it a moment to read the last messages.
    let drain = if nats.is_some() { 2 } else { 10 };
    if !forwarder_done
        && tokio::time::timeout(Duration::from_secs(drain), &mut forwarder)
            .await
            .is_err()
    {
        forwarder.abort();
    }
    match outcome {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e),
    }
}
