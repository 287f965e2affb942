//! The JSON-lines sinks (`[sink] kind = "stdout"` or `"file"`): the `<prefix>.log` events, one JSON
//! object per line, with no NATS needed. A file sink resumes after the last complete line in the file;
//! stdout starts at the server's current zxid.

use std::io::Write;
use std::path::{Path, PathBuf};

use outpost_core::ids::Zxid;
use thiserror::Error;

use crate::event::{to_json, Event};
use crate::nats::Resume;

/// Why a line sink failed.
#[derive(Debug, Error)]
pub enum LinesError {
    /// Writing or reading the file failed.
    #[error("relay file {}: {source}", path.display())]
    Io {
        /// The file (`-` for stdout).
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A stdout or file sink.
pub struct LineSink {
    path: Option<PathBuf>,
    out: Box<dyn Write + Send>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LinesError + '_ {
    move |source| LinesError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl LineSink {
    /// Lines on stdout.
    pub fn stdout() -> LineSink {
        LineSink {
            path: None,
            out: Box::new(std::io::stdout()),
        }
    }

    /// Lines appended to `path` (created if missing). A torn last line (a crash mid-write) is cut off.
    pub fn file(path: &Path) -> Result<LineSink, LinesError> {
        if let Ok(text) = std::fs::read(path) {
            if !text.is_empty() && !text.ends_with(b"\n") {
                let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io(path))?;
                f.set_len(keep as u64).map_err(io(path))?;
            }
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        Ok(LineSink {
            path: Some(path.to_path_buf()),
            out: Box::new(std::io::BufWriter::new(f)),
        })
    }

    /// Where to resume: after the last line of the file (`None` for stdout: start at the current zxid).
    pub fn resume(&self) -> Result<Option<Resume>, LinesError> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
            return Ok(Some(Resume::After {
                zxid: Zxid::ZERO,
                published_nodes: 0,
            }));
        };
        let event: Event = serde_json::from_str(last).map_err(|e| LinesError::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })?;
        Ok(Some(match event.kind.as_str() {
            "resync_begin" | "resync_node" => Resume::InsideResync,
            _ => Resume::After {
                zxid: Zxid(event.zxid),
                published_nodes: 0,
            },
        }))
    }

    /// Writes events, one line each, and flushes. Returns the bytes written.
    pub fn write(&mut self, events: &[&Event]) -> Result<usize, LinesError> {
        let mut bytes = 0;
        let name = self.path.clone().unwrap_or_else(|| PathBuf::from("-"));
        for e in events {
            let mut line = to_json(e);
            line.push(b'\n');
            bytes += line.len();
            self.out.write_all(&line).map_err(io(&name))?;
        }
        self.out.flush().map_err(io(&name))?;
        Ok(bytes)
    }
}
