//! The relay's TOML file (`relay.configFile` in zoo.cfg): parsed once into typed values and validated;
//! every error names the file and the key.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// Why the relay's configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or of the wrong type.
    #[error("{}: {message}", file.display())]
    Parse {
        /// The file.
        file: PathBuf,
        /// What the TOML parser said (it names the line, column and key).
        message: String,
    },
    /// A key has a value the relay cannot use.
    #[error("{}: {key}: {message}", file.display())]
    Invalid {
        /// The file.
        file: PathBuf,
        /// The key, as `table.key`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// How events are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// JSON objects (the default; see docs/relay.md).
    Json,
    /// bincode 1 of the same [`crate::Event`] struct (compact).
    Bincode,
}

/// Where events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkKind {
    /// JetStream (see [`NatsConfig`]).
    Nats,
    /// JSON lines on standard output.
    Stdout,
    /// JSON lines appended to a file.
    File(PathBuf),
}

/// `[nats]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsConfig {
    /// `servers`: NATS URLs, tried in order.
    pub servers: Vec<String>,
    /// `stream`: the JetStream stream, created (or checked) at start.
    pub stream: String,
    /// `subject_prefix`: `<prefix>.log` and `<prefix>.node.>`.
    pub subject_prefix: String,
    /// `ensemble_id`: the first part of every `Nats-Msg-Id` (default: the subject prefix). Relays of one
    /// ensemble share it, so their messages deduplicate.
    pub ensemble_id: String,
}

impl NatsConfig {
    /// `<prefix>.log`.
    pub fn log_subject(&self) -> String {
        format!("{}.log", self.subject_prefix)
    }

    /// `<prefix>.node.>`.
    pub fn node_wildcard(&self) -> String {
        format!("{}.node.>", self.subject_prefix)
    }
}

/// The whole relay configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// `[nats]`.
    pub nats: NatsConfig,
    /// `[events] encoding`.
    pub encoding: Encoding,
    /// `[events] include_data`.
    pub include_data: bool,
    /// `[events] compress_over_bytes` (0 = never compress).
    pub compress_over_bytes: usize,
    /// `[events] queue_capacity`: txns the server may queue for the relay before the relay reads the log.
    pub queue_capacity: usize,
    /// `[filter] exclude`: paths (and their subtrees) not relayed.
    pub exclude: Vec<String>,
    /// `[sink] kind` (+ `path`).
    pub sink: SinkKind,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    nats: Option<RawNats>,
    #[serde(default)]
    events: RawEvents,
    #[serde(default)]
    filter: RawFilter,
    sink: Option<RawSink>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNats {
    servers: Option<Vec<String>>,
    stream: Option<String>,
    subject_prefix: Option<String>,
    ensemble_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    encoding: Option<Encoding>,
    include_data: Option<bool>,
    compress_over_bytes: Option<i64>,
    queue_capacity: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFilter {
    exclude: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSink {
    kind: Option<String>,
    path: Option<PathBuf>,
}

/// True when `s` is usable as one NATS subject token we write ourselves: no wildcards, whitespace or dots.
fn plain_token(s: &str) -> bool {
    !s.is_empty()
        && s != "*"
        && s != ">"
        && s.chars()
            .all(|c| !c.is_whitespace() && c != '.' && !c.is_control())
}

impl RelayConfig {
    /// Reads and validates a relay TOML file.
    pub fn load(file: &Path) -> Result<RelayConfig, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        RelayConfig::parse(&text, file)
    }

    /// Parses and validates relay TOML text; `file` names it in errors.
    pub fn parse(text: &str, file: &Path) -> Result<RelayConfig, ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            file: file.to_path_buf(),
            key: key.to_string(),
            message,
        };
        let has_nats = raw.nats.is_some();
        let nats = raw.nats.unwrap_or_default();
        let servers = nats
            .servers
            .unwrap_or_else(|| vec!["nats://127.0.0.1:4222".to_string()]);
        if servers.is_empty() {
            return Err(invalid("nats.servers", "needs at least one URL".into()));
        }
        for s in &servers {
            if s.trim().is_empty() || s.chars().any(char::is_whitespace) {
                return Err(invalid("nats.servers", format!("{s:?} is not a NATS URL")));
            }
        }
        let stream = nats.stream.unwrap_or_else(|| "OUTPOST".to_string());
        if !plain_token(&stream) || stream.contains(['*', '>', '/', '\\']) {
            return Err(invalid(
                "nats.stream",
                format!("{stream:?} is not a stream name (no spaces, '.', '*', '>', '/')"),
            ));
        }
        let subject_prefix = nats.subject_prefix.unwrap_or_else(|| "outpost".to_string());
        if !subject_prefix.split('.').all(plain_token) {
            return Err(invalid(
                "nats.subject_prefix",
                format!("{subject_prefix:?} is not a subject prefix (dot-separated tokens without wildcards or spaces)"),
            ));
        }
        let ensemble_id = nats.ensemble_id.unwrap_or_else(|| subject_prefix.clone());
        if ensemble_id.is_empty()
            || ensemble_id
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid(
                "nats.ensemble_id",
                format!("{ensemble_id:?} must be non-empty without spaces"),
            ));
        }
        let compress = raw.events.compress_over_bytes.unwrap_or(4096);
        let compress_over_bytes = usize::try_from(compress).map_err(|_| {
            invalid(
                "events.compress_over_bytes",
                format!("{compress} is negative"),
            )
        })?;
        let queue = raw.events.queue_capacity.unwrap_or(4096);
        let queue_capacity = usize::try_from(queue)
            .ok()
            .filter(|q| (1..=1 << 24).contains(q))
            .ok_or_else(|| {
                invalid(
                    "events.queue_capacity",
                    format!("{queue} is not in 1..=16777216"),
                )
            })?;
        let exclude = raw
            .filter
            .exclude
            .unwrap_or_else(|| vec!["/zookeeper".to_string()]);
        for p in &exclude {
            if !p.starts_with('/') || (p.len() > 1 && p.ends_with('/')) || p.contains("//") {
                return Err(invalid(
                    "filter.exclude",
                    format!("{p:?} is not a znode path (absolute, no trailing '/')"),
                ));
            }
        }
        let sink = match raw.sink {
            None => {
                if has_nats {
                    SinkKind::Nats
                } else {
                    SinkKind::Stdout
                }
            }
            Some(RawSink { kind, path }) => {
                let kind = kind.unwrap_or_else(|| if has_nats { "nats" } else { "stdout" }.into());
                match (kind.as_str(), path) {
                    ("nats", None) => SinkKind::Nats,
                    ("stdout", None) => SinkKind::Stdout,
                    ("file", Some(p)) => SinkKind::File(p),
                    ("file", None) => {
                        return Err(invalid("sink.path", "kind = \"file\" needs a path".into()))
                    }
                    ("nats" | "stdout", Some(_)) => {
                        return Err(invalid(
                            "sink.path",
                            format!("only kind = \"file\" takes a path, not {kind:?}"),
                        ))
                    }
                    (other, _) => {
                        return Err(invalid(
                            "sink.kind",
                            format!("{other:?} is not one of \"nats\", \"stdout\", \"file\""),
                        ))
                    }
                }
            }
        };
        Ok(RelayConfig {
            nats: NatsConfig {
                servers,
                stream,
                subject_prefix,
                ensemble_id,
            },
            encoding: raw.events.encoding.unwrap_or(Encoding::Json),
            include_data: raw.events.include_data.unwrap_or(true),
            compress_over_bytes,
            queue_capacity,
            exclude,
            sink,
        })
    }

    /// True when `path` is excluded by `[filter] exclude` (the path itself or one of its ancestors).
    pub fn excluded(&self, path: &str) -> bool {
        self.exclude.iter().any(|e| {
            e == "/"
                || path == e
                || (path.len() > e.len()
                    && path.starts_with(e.as_str())
                    && path.as_bytes()[e.len()] == b'/')
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RelayConfig, ConfigError> {
        RelayConfig::parse(text, Path::new("relay.toml"))
    }

    /// The sample file in conf/samples parses, with the keys it sets.
    #[test]
    fn sample_parses() {
        let text = include_str!("../../conf/samples/relay.toml");
        let cfg = parse(text).expect("sample parses");
        assert_eq!(cfg.nats.stream, "OUTPOST");
        assert_eq!(cfg.nats.log_subject(), "outpost.log");
        assert_eq!(cfg.encoding, Encoding::Json);
        assert_eq!(cfg.compress_over_bytes, 4096);
        assert_eq!(cfg.sink, SinkKind::Stdout);
        assert!(cfg.excluded("/zookeeper/quota"));
        assert!(!cfg.excluded("/zookeeperx"));
    }

    /// Every validation error names the key it is about.
    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[nats]\nservers = []\n", "nats.servers"),
            ("[nats]\nstream = \"a.b\"\n", "nats.stream"),
            ("[nats]\nsubject_prefix = \"a.*\"\n", "nats.subject_prefix"),
            (
                "[events]\ncompress_over_bytes = -1\n",
                "events.compress_over_bytes",
            ),
            ("[events]\nqueue_capacity = 0\n", "events.queue_capacity"),
            ("[filter]\nexclude = [\"zookeeper\"]\n", "filter.exclude"),
            ("[sink]\nkind = \"kafka\"\n", "sink.kind"),
            ("[sink]\nkind = \"file\"\n", "sink.path"),
        ];
        for (text, key) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text:?}: {err}");
        }
        let err = parse("[events]\nencodin = \"json\"\n")
            .expect_err("typo")
            .to_string();
        assert!(err.contains("encodin"), "{err}");
        let err = parse("[events]\nencoding = \"xml\"\n")
            .expect_err("bad enum")
            .to_string();
        assert!(err.contains("encoding") || err.contains("xml"), "{err}");
    }

    /// Without a [sink] table, a file with [nats] relays to NATS and one without prints to stdout.
    #[test]
    fn default_sink_follows_nats_table() {
        assert_eq!(parse("[nats]\n").expect("nats").sink, SinkKind::Nats);
        assert_eq!(parse("").expect("empty").sink, SinkKind::Stdout);
        let f = parse("[sink]\nkind = \"file\"\npath = \"/tmp/x.jsonl\"\n").expect("file");
        assert_eq!(f.sink, SinkKind::File(PathBuf::from("/tmp/x.jsonl")));
    }
}
