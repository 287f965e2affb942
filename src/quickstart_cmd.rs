//! `outpost quickstart`: the zero-setup way to see outpost's relay. Starts a standalone server on
//! loopback whose relay prints every committed txn as a JSON line on stdout (or publishes it to NATS
//! with `--nats URL`), with its data in a temporary directory, until Ctrl-C. The banner (on stderr)
//! says how to connect and what to try.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::cli_args::QuickstartArgs;

/// The files quickstart writes: zoo.cfg and the relay.toml it names.
fn write_config(dir: &Path, args: &QuickstartArgs) -> anyhow::Result<PathBuf> {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).with_context(|| format!("create {}", data.display()))?;
    let relay = dir.join("relay.toml");
    let sink = match &args.nats {
        // A TOML basic string: the URL must not break out of its quotes.
        Some(url) => format!(
            "[nats]\nservers = [{url:?}]\nstream = \"OUTPOST\"\nsubject_prefix = \"outpost\"\n\
             [sink]\nkind = \"nats\"\n"
        ),
        None => "[sink]\nkind = \"stdout\"\n".to_string(),
    };
    std::fs::write(
        &relay,
        format!("{sink}[events]\nencoding = \"json\"\ninclude_data = true\n"),
    )
    .with_context(|| format!("write {}", relay.display()))?;
    let cfg = dir.join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nadmin.enableServer=false\nmetricsProvider.httpPort=0\n\
             relay.configFile={}\n",
            data.display(),
            args.port,
            relay.display()
        ),
    )
    .with_context(|| format!("write {}", cfg.display()))?;
    Ok(cfg)
}

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

/// `outpost quickstart [--nats URL] [--port N] [--data-dir DIR]`.
pub fn run(args: &QuickstartArgs) -> anyhow::Result<ExitCode> {
    let (dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (temp_dir()?, true),
    };
    let cfg = write_config(&dir, args)?;
    let addr = format!("127.0.0.1:{}", args.port);
    let target = match &args.nats {
        Some(url) => format!(
            "to NATS at {url} (JetStream stream OUTPOST, subjects outpost.log and outpost.node.>)\n  \
             watch it: outpost relay tail --nats {url} --stream OUTPOST"
        ),
        None => "to stdout, one JSON line per committed txn".to_string(),
    };
    eprintln!(
        "outpost quickstart: a standalone server on {addr} (data in {}), relaying committed txns {target}\n  \
         connect: outpost cli -server {addr}   (or any ZooKeeper client)\n  \
         try:     outpost cli -server {addr} create /hello world\n           \
         outpost cli -server {addr} set /hello again\n           \
         outpost cli -server {addr} delete /hello\n  \
         Ctrl-C stops it",
        dir.display()
    );
    let result = crate::server_cmd::run_server(&cfg, false);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}
