//! A real `nats-server` for the relay tests (Debian package `nats-server`, JetStream in a temp dir, a free
//! loopback port, one per test, killed on drop) and a reader of the relay's stream from its start.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use outpost_relay::{StreamEvent, StreamReader};

use super::free_port;

pub const NATS_SERVER: &str = "/usr/sbin/nats-server";

/// A nats-server with JetStream storage in `dir`, stopped (SIGKILL) on drop.
pub struct Nats {
    child: Option<Child>,
    /// The client port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
}

impl Nats {
    pub fn start(dir: &Path) -> Nats {
        assert!(
            Path::new(NATS_SERVER).exists(),
            "nats-server is not installed: apt-get install nats-server (see .ci/run)"
        );
        let mut n = Nats {
            child: None,
            port: free_port(),
            dir: dir.to_path_buf(),
        };
        n.spawn();
        n
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("nats.log")
    }

    pub fn spawn(&mut self) {
        let store = self.dir.join("js");
        std::fs::create_dir_all(&store).expect("jetstream dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("nats log");
        let before = std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .matches("Server is ready")
            .count();
        let child = Command::new(NATS_SERVER)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&store)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn nats-server");
        self.child = Some(child);
        let start = Instant::now();
        while std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .matches("Server is ready")
            .count()
            == before
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nats-server did not start:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the server gracefully (SIGTERM) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let start = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if start.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads the stream OUTPOST from the start until a message matching `done` arrived (or `limit` passed).
pub async fn read_until_match(
    nats: &Nats,
    done: impl Fn(&StreamEvent) -> bool,
    limit: Duration,
) -> Vec<StreamEvent> {
    read_stream_until(nats, "OUTPOST", done, limit).await
}

/// Reads `stream` from the start until a message matching `done` arrived (or `limit` passed).
pub async fn read_stream_until(
    nats: &Nats,
    stream: &str,
    done: impl Fn(&StreamEvent) -> bool,
    limit: Duration,
) -> Vec<StreamEvent> {
    let start = Instant::now();
    let mut reader = loop {
        match StreamReader::open(&nats.url(), stream).await {
            Ok(r) => break r,
            Err(e) => {
                assert!(start.elapsed() < limit, "stream never appeared: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let mut out = Vec::new();
    loop {
        let left = limit.saturating_sub(start.elapsed());
        match reader
            .next(left.min(Duration::from_secs(1)))
            .await
            .expect("read stream")
        {
            Some(m) => {
                let finished = done(&m);
                out.push(m);
                if finished {
                    return out;
                }
            }
            None => {
                let last = out
                    .iter()
                    .rev()
                    .find(|m| m.kind == "log")
                    .map(|m| m.event.zxid);
                assert!(
                    start.elapsed() < limit,
                    "stream stopped at log zxid {last:?} ({} messages)",
                    out.len()
                );
            }
        }
    }
}
