//! Where the quickstart's events come from and where they go: the DC2 observer's relay writes JSON lines
//! to its stdout (a pipe the quickstart reads) or publishes to a JetStream stream (which the quickstart
//! reads back); either way each `<prefix>.log` event is written to the quickstart's own stdout as one
//! JSON line (so `outpost quickstart | jq` works) and handed to the example session, which shows the
//! events it produced.

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, Context};
use outpost_relay::event::to_json;
use outpost_relay::{Event, StreamReader};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStdout;
use tokio::sync::mpsc;

/// The JetStream stream and subject prefix the quickstart's relay publishes to: its own, not the
/// relay's default `OUTPOST`, because a fresh quickstart deletes it (see [`fresh_stream`]).
pub const STREAM: &str = "QUICKSTART";
/// `<prefix>.log` and `<prefix>.node.>`.
pub const SUBJECT_PREFIX: &str = "quickstart";

/// Where the relay's events are read from.
pub enum Source {
    /// The observer's stdout (the relay's `stdout` sink).
    Pipe(ChildStdout),
    /// The stream [`STREAM`] at this NATS URL; `from_end` skips what the stream held at start.
    Nats {
        /// The NATS URL.
        url: String,
        /// Start after the stream's current end rather than at its first message.
        from_end: bool,
    },
}

/// Writes one event line to stdout and flushes it (so a pipe reader sees it at once).
fn print_line(line: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .context("write an event to stdout")
}

/// Copies the relay's events to stdout and sends each to `tx` (dropped receivers are fine) until the
/// source ends (the observer stopped) or stdout fails.
pub async fn forward(source: Source, tx: mpsc::UnboundedSender<Event>) -> anyhow::Result<()> {
    match source {
        Source::Pipe(stdout) => {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(line) = lines.next_line().await.context("read the relay's stdout")? {
                print_line(line.as_bytes())?;
                if let Ok(event) = serde_json::from_str::<Event>(&line) {
                    let _ = tx.send(event);
                }
            }
            Ok(())
        }
        Source::Nats { url, from_end } => {
            let mut reader = open_stream(&url).await?;
            if from_end {
                let last = reader.last_sequence().await?;
                reader.seek(last + 1);
            }
            loop {
                let Some(m) = reader.next(Duration::from_secs(3600)).await? else {
                    continue;
                };
                if !m.is_log() {
                    continue;
                }
                print_line(&to_json(&m.event))?;
                let _ = tx.send(m.event);
            }
        }
    }
}

/// Opens [`STREAM`], waiting for the relay to create it (up to a minute).
async fn open_stream(url: &str) -> anyhow::Result<StreamReader> {
    let start = tokio::time::Instant::now();
    loop {
        match StreamReader::open(url, STREAM).await {
            Ok(r) => return Ok(r),
            Err(e) if start.elapsed() > Duration::from_secs(60) => {
                return Err(anyhow!("the relay's stream {STREAM} at {url}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// True when a JetStream-enabled NATS server answers at `url` within a few seconds.
pub async fn jetstream_reachable(url: &str) -> bool {
    let probe = async {
        let client = match outpost_relay::async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(url)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("NATS at {url}: {e}");
                return false;
            }
        };
        // JetStream's account info request, raw: async-nats's typed one does not parse older
        // servers' answers (nats-server 2.9). Without JetStream the answer is an error or nothing.
        match client.request("$JS.API.INFO", "".into()).await {
            Ok(reply) => {
                let text = String::from_utf8_lossy(&reply.payload);
                tracing::debug!("JetStream at {url}: {text}");
                text.contains("account_info_response") && !text.contains("\"error\"")
            }
            Err(e) => {
                tracing::debug!("JetStream at {url}: {e}");
                false
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), probe)
        .await
        .unwrap_or(false)
}

/// Deletes [`STREAM`] at `url` if it exists: a fresh ensemble's zxids start over, and a relay whose
/// stream is ahead of its server waits for the server to catch up instead of publishing (see
/// docs/relay.md), so a new quickstart must not inherit an old run's stream.
pub async fn fresh_stream(url: &str) -> anyhow::Result<bool> {
    let client = outpost_relay::async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .map_err(|e| anyhow!("connect to NATS {url}: {e}"))?;
    let js = outpost_relay::async_nats::jetstream::new(client);
    match js.get_stream(STREAM).await {
        Ok(_) => {
            js.delete_stream(STREAM)
                .await
                .map_err(|e| anyhow!("delete the old stream {STREAM} at {url}: {e}"))?;
            Ok(true)
        }
        Err(_) => Ok(false),
    }
}

/// The observer's relay.toml: JSON events with data, to stdout or to [`STREAM`] at `nats`.
pub fn relay_toml(nats: Option<&str>) -> String {
    let sink = match nats {
        // `{url:?}` is a TOML basic string: the URL cannot break out of its quotes.
        Some(url) => format!(
            "[nats]\nservers = [{url:?}]\nstream = \"{STREAM}\"\nsubject_prefix = \"{SUBJECT_PREFIX}\"\n\
             [sink]\nkind = \"nats\"\n"
        ),
        None => "[sink]\nkind = \"stdout\"\n".to_string(),
    };
    format!("{sink}[events]\nencoding = \"json\"\ninclude_data = true\n")
}
