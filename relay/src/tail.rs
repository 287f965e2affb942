//! Reading the relay's stream back: [`StreamReader`] walks a JetStream stream by sequence and decodes
//! each message into an [`Event`] (used by `outpost relay tail`, the mirror example and the tests). It
//! uses only the stream-message API (`STREAM.MSG.GET`), which every JetStream server has.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use thiserror::Error;

use crate::event::{decode, Event, EventError};
use crate::nats::{header_str, parse_zxid, KIND_HEADER, ZXID_HEADER};

/// Why reading the stream failed.
#[derive(Debug, Error)]
pub enum TailError {
    /// Could not connect.
    #[error("connect to NATS {url}: {message}")]
    Connect {
        /// The URL.
        url: String,
        /// The error.
        message: String,
    },
    /// A JetStream request failed.
    #[error("JetStream: {0}")]
    JetStream(String),
    /// A message's payload did not decode.
    #[error("stream message {seq}: {source}")]
    Event {
        /// Its sequence.
        seq: u64,
        /// The error.
        #[source]
        source: EventError,
    },
}

/// One message of the relay's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEvent {
    /// The stream sequence.
    pub seq: u64,
    /// The subject (`<prefix>.log` or a per-node subject).
    pub subject: String,
    /// `log`, `node` or `resync` (the `Outpost-Kind` header).
    pub kind: String,
    /// The `Nats-Msg-Id` header.
    pub msg_id: Option<String>,
    /// Whether the payload was lz4-compressed.
    pub compressed: bool,
    /// The decoded event.
    pub event: Event,
}

impl StreamEvent {
    /// True for messages on `<prefix>.log` (txn events and resync events).
    pub fn is_log(&self) -> bool {
        self.kind == "log" || self.kind == "resync"
    }
}

/// Walks a stream from a sequence, waiting for new messages.
pub struct StreamReader {
    client: async_nats::Client,
    stream: stream::Stream,
    next_seq: u64,
    last_seq: u64,
}

impl StreamReader {
    /// Connects to `url` and opens `stream` at its first message.
    pub async fn open(url: &str, stream_name: &str) -> Result<StreamReader, TailError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| TailError::Connect {
                url: url.to_string(),
                message: e.to_string(),
            })?;
        let js = jetstream::new(client.clone());
        let stream = js
            .get_stream(stream_name)
            .await
            .map_err(|e| TailError::JetStream(format!("stream {stream_name}: {e}")))?;
        Ok(StreamReader {
            client,
            stream,
            next_seq: 1,
            last_seq: 0,
        })
    }

    /// The NATS client (to subscribe to per-node subjects, for example).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The stream's current last sequence.
    pub async fn last_sequence(&mut self) -> Result<u64, TailError> {
        let info = self
            .stream
            .info()
            .await
            .map_err(|e| TailError::JetStream(e.to_string()))?;
        self.last_seq = info.state.last_sequence;
        if self.next_seq < info.state.first_sequence {
            self.next_seq = info.state.first_sequence;
        }
        Ok(self.last_seq)
    }

    /// Continues at stream sequence `seq` (e.g. one past [`StreamReader::last_sequence`] to read only
    /// what arrives from now on).
    pub fn seek(&mut self, seq: u64) {
        self.next_seq = seq.max(1);
    }

    /// The next message, waiting up to `wait` for one to arrive; `None` when none came.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<StreamEvent>, TailError> {
        let deadline = Instant::now() + wait;
        loop {
            if self.next_seq > self.last_seq {
                self.last_sequence().await?;
            }
            if self.next_seq > self.last_seq {
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            let msg = match self.stream.get_raw_message(seq).await {
                Ok(m) => m,
                // A message deleted from the stream (limits or an operator): skip it.
                Err(e) if e.to_string().contains("no message found") => continue,
                Err(e) => return Err(TailError::JetStream(e.to_string())),
            };
            let encoding = header_str(&msg.headers, "Content-Encoding");
            let event = decode(
                &msg.payload,
                header_str(&msg.headers, "Content-Type"),
                encoding,
            )
            .map_err(|source| TailError::Event { seq, source })?;
            if let Some(z) = header_str(&msg.headers, ZXID_HEADER).and_then(parse_zxid) {
                debug_assert_eq!(z.0, event.zxid);
            }
            return Ok(Some(StreamEvent {
                seq,
                subject: msg.subject.to_string(),
                kind: header_str(&msg.headers, KIND_HEADER)
                    .unwrap_or("log")
                    .to_string(),
                msg_id: header_str(&msg.headers, "Nats-Msg-Id").map(str::to_string),
                compressed: encoding == Some(crate::event::LZ4_CONTENT_ENCODING),
                event,
            }));
        }
    }
}

/// True when the event touches `prefix` or its subtree (for `--path`): its path, a multi's ops, or a
/// close_session's deleted paths. Events without paths (sessions, errors, markers) never match a prefix
/// other than `/`.
pub fn touches(event: &Event, prefix: &str) -> bool {
    if prefix == "/" || prefix.is_empty() {
        return true;
    }
    let under = |p: &str| {
        p == prefix || (p.starts_with(prefix) && p.as_bytes().get(prefix.len()) == Some(&b'/'))
    };
    event.path.as_deref().is_some_and(under)
        || event.paths.iter().flatten().any(|p| under(p))
        || event.ops.iter().flatten().any(|o| touches(o, prefix))
}
