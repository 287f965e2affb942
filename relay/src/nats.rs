//! The JetStream sink: creates (or checks) the stream, finds where the stream ends, and publishes every
//! message chained to the one before it with `Nats-Expected-Last-Sequence`, so JetStream itself refuses a
//! gap or a duplicate (not only inside its deduplication window).
//!
//! Per txn the per-node messages go first and the `<prefix>.log` message last: a txn's log message is its
//! commit marker, so the stream's last log message says which txn is complete, and any node messages
//! after it belong to the next txn (they are skipped, not repeated, on resume).

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::header::HeaderMap;
use async_nats::jetstream::{self, context::PublishErrorKind, stream};
use bytes::Bytes;
use outpost_core::ids::Zxid;
use thiserror::Error;

use crate::config::RelayConfig;
use crate::event::{encode, Encoded, Event, TxnEvents, LZ4_CONTENT_ENCODING};
use crate::subject::node_subject;

/// Header with the zxid (16 hex digits) a message belongs to.
pub const ZXID_HEADER: &str = "Outpost-Zxid";
/// Header with the message's kind: `log`, `node` or `resync`.
pub const KIND_HEADER: &str = "Outpost-Kind";
/// Header with a node message's index within its txn (1-based).
pub const PART_HEADER: &str = "Outpost-Part";

/// Why the NATS sink failed.
#[derive(Debug, Error)]
pub enum NatsError {
    /// Could not connect.
    #[error("connect to NATS {servers}: {message}")]
    Connect {
        /// The URLs tried.
        servers: String,
        /// The error.
        message: String,
    },
    /// The stream exists but does not hold the relay's subjects.
    #[error("stream {stream} exists without subject {subject}; add it or pick another stream")]
    StreamMismatch {
        /// The stream.
        stream: String,
        /// The missing subject.
        subject: String,
    },
    /// JetStream refused a publish because the stream's last sequence was not the one expected: another
    /// writer, or a lost ack. Re-read the stream's end and resume.
    #[error("JetStream refused the chained publish (stream moved): {0}")]
    Refused(String),
    /// A JetStream request failed (timeout, connection lost, server restarting).
    #[error("JetStream: {0}")]
    JetStream(String),
    /// A message in the stream does not carry the relay's headers.
    #[error("stream message {seq}: {message}")]
    BadMessage {
        /// Its stream sequence.
        seq: u64,
        /// What is wrong.
        message: String,
    },
}

/// Where the stream ends, as the relay needs it to resume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// The last complete txn (or finished resync) was at this zxid; `published_nodes` node messages of the
    /// next txn are already in the stream.
    After {
        /// The zxid.
        zxid: Zxid,
        /// Node messages of the next txn already published.
        published_nodes: usize,
    },
    /// The stream ends inside a resync (the relay stopped mid-dump): start a new one.
    InsideResync,
}

/// Parses an `Outpost-Zxid` header value.
pub fn parse_zxid(text: &str) -> Option<Zxid> {
    u64::from_str_radix(text.trim(), 16)
        .ok()
        .map(|z| Zxid(z as i64))
}

/// A header's value as text.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.as_str())
}

/// A connected JetStream sink.
pub struct NatsSink {
    client: async_nats::Client,
    js: jetstream::Context,
    cfg: RelayConfig,
    log_subject: String,
    /// The stream's last sequence as far as this relay knows (every publish up to it is settled).
    expected_last: u64,
    /// The sequence the next message sent expects as the stream's last: `expected_last` plus the
    /// publishes in flight.
    sent_last: u64,
    /// Publishes sent and not yet settled, oldest first, each with the txn it completes (its last
    /// message carries the txn's zxid and commit time).
    in_flight: VecDeque<(jetstream::context::PublishAckFuture, Option<(Zxid, i64)>)>,
}

/// Publishes in flight at most: well under the JetStream context's 5000 ack permits, which a publish
/// waits for (sending more before settling any would never finish).
const IN_FLIGHT: usize = 1024;

/// One message ready to publish.
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub subject: String,
    pub headers: HeaderMap,
    pub payload: Bytes,
    pub raw_len: usize,
    /// Set on the last message of a txn: once it is stored, the whole txn is (its zxid and commit time).
    pub completes: Option<(Zxid, i64)>,
}

impl NatsSink {
    /// Connects (retrying in the background if the servers are down) and creates or checks the stream.
    pub async fn connect(cfg: &RelayConfig) -> Result<NatsSink, NatsError> {
        let servers = cfg.nats.servers.join(",");
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(cfg.nats.servers.as_slice())
            .await
            .map_err(|e| NatsError::Connect {
                servers,
                message: e.to_string(),
            })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(Duration::from_secs(5))
            .build(client.clone());
        let sink = NatsSink {
            client,
            js,
            cfg: cfg.clone(),
            log_subject: cfg.nats.log_subject(),
            expected_last: 0,
            sent_last: 0,
            in_flight: VecDeque::new(),
        };
        Ok(sink)
    }

    /// Creates the stream if it is missing (file storage, the relay's two subjects), or checks that the
    /// existing one holds both subjects.
    pub async fn ensure_stream(&self) -> Result<(), NatsError> {
        let wanted = [self.log_subject.clone(), self.cfg.nats.node_wildcard()];
        let info = match self.js.get_stream(&self.cfg.nats.stream).await {
            Ok(mut s) => s.info().await.map_err(js_err)?.clone(),
            Err(_) => {
                let config = stream::Config {
                    name: self.cfg.nats.stream.clone(),
                    subjects: wanted.to_vec(),
                    storage: stream::StorageType::File,
                    duplicate_window: Duration::from_secs(120),
                    ..Default::default()
                };
                let mut s = self.js.get_or_create_stream(config).await.map_err(js_err)?;
                tracing::info!(stream = %self.cfg.nats.stream, "relay: created JetStream stream");
                s.info().await.map_err(js_err)?.clone()
            }
        };
        for subject in wanted {
            if !info.config.subjects.contains(&subject) {
                return Err(NatsError::StreamMismatch {
                    stream: self.cfg.nats.stream.clone(),
                    subject,
                });
            }
        }
        Ok(())
    }

    /// Reads where the stream ends: its last sequence, its last log message and the node messages after it.
    pub async fn resume(&mut self) -> Result<Resume, NatsError> {
        let mut stream = self
            .js
            .get_stream(&self.cfg.nats.stream)
            .await
            .map_err(js_err)?;
        let last_seq = stream.info().await.map_err(js_err)?.state.last_sequence;
        self.expected_last = last_seq;
        self.sent_last = last_seq;
        self.in_flight.clear();
        if last_seq == 0 {
            return Ok(Resume::After {
                zxid: Zxid::ZERO,
                published_nodes: 0,
            });
        }
        let (log_seq, resume) = match stream
            .get_last_raw_message_by_subject(&self.log_subject)
            .await
        {
            Ok(msg) => {
                let zxid = header_str(&msg.headers, ZXID_HEADER)
                    .and_then(parse_zxid)
                    .ok_or_else(|| NatsError::BadMessage {
                        seq: msg.sequence,
                        message: format!("no {ZXID_HEADER} header"),
                    })?;
                let kind = header_str(&msg.headers, KIND_HEADER).unwrap_or("log");
                let event_kind = if kind == "resync" {
                    crate::event::decode(
                        &msg.payload,
                        header_str(&msg.headers, "Content-Type"),
                        header_str(&msg.headers, "Content-Encoding"),
                    )
                    .map(|e| e.kind)
                    .map_err(|e| NatsError::BadMessage {
                        seq: msg.sequence,
                        message: e.to_string(),
                    })?
                } else {
                    String::new()
                };
                let resume = match (kind, event_kind.as_str()) {
                    ("resync", "resync_end") | ("log", _) => Resume::After {
                        zxid,
                        published_nodes: 0,
                    },
                    _ => Resume::InsideResync,
                };
                (msg.sequence, resume)
            }
            Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => (
                0,
                Resume::After {
                    zxid: Zxid::ZERO,
                    published_nodes: 0,
                },
            ),
            Err(e) => return Err(js_err(e)),
        };
        Ok(match resume {
            Resume::After { zxid, .. } => Resume::After {
                zxid,
                published_nodes: usize::try_from(last_seq.saturating_sub(log_seq)).unwrap_or(0),
            },
            other => other,
        })
    }

    /// Encodes an event; one too large for the server's `max_payload` even compressed goes out without
    /// its data (`data_len` stays, `reason` says `data_too_large`), so it never blocks the stream.
    fn encode_capped(&self, ev: &Event) -> Encoded {
        let enc = encode(&self.cfg, ev);
        let limit = self.client.server_info().max_payload.saturating_sub(4096);
        if limit == 0 || enc.payload.len() <= limit {
            return enc;
        }
        let mut slim = ev.clone();
        strip_data(&mut slim);
        if encode(&self.cfg, &slim).payload.len() > limit {
            // Still too large (a multi with a huge number of ops): keep the counts, drop the lists;
            // the per-node messages still carry every op.
            if let Some(paths) = slim.paths.take() {
                slim.count.get_or_insert(paths.len() as u64);
            }
            slim.ops = None;
            slim.reason = Some("too_large".into());
        }
        tracing::warn!(
            "relay: event at zxid 0x{:x} is {} bytes, over the NATS max_payload; sent without data",
            ev.zxid,
            enc.payload.len()
        );
        encode(&self.cfg, &slim)
    }

    fn headers(&self, zxid: i64, kind: &str, id: &str, enc: &Encoded) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("Nats-Msg-Id", id);
        h.insert(ZXID_HEADER, format!("{:016x}", zxid as u64).as_str());
        h.insert(KIND_HEADER, kind);
        h.insert("Content-Type", enc.content_type);
        if enc.lz4 {
            h.insert("Content-Encoding", LZ4_CONTENT_ENCODING);
        }
        h
    }

    /// The messages of one txn, skipping its first `skip_nodes` node messages (already in the stream).
    pub(crate) fn txn_messages(
        &self,
        events: &TxnEvents,
        skip_nodes: usize,
        out: &mut Vec<Outgoing>,
    ) {
        let zxid = events.log.zxid;
        let ens = &self.cfg.nats.ensemble_id;
        let mut log = self.encode_capped(&events.log);
        let log_payload = Bytes::from(std::mem::take(&mut log.payload));
        for (i, (path, ev)) in events.nodes.iter().enumerate().skip(skip_nodes) {
            // A single-op txn's node event is its log event: encode (and compress) it once and share
            // the payload, which halves the relay's encoding work for the common case.
            let mut own;
            let (enc, payload) = if ev == &events.log {
                (&log, log_payload.clone())
            } else {
                own = self.encode_capped(ev);
                let payload = Bytes::from(std::mem::take(&mut own.payload));
                (&own, payload)
            };
            let mut headers = self.headers(
                zxid,
                "node",
                &format!("{ens}-{:x}-{}", zxid as u64, i + 1),
                enc,
            );
            headers.insert(PART_HEADER, (i + 1).to_string().as_str());
            out.push(Outgoing {
                subject: node_subject(&self.cfg.nats.subject_prefix, path),
                headers,
                raw_len: enc.raw_len,
                payload,
                completes: None,
            });
        }
        out.push(Outgoing {
            subject: self.log_subject.clone(),
            headers: self.headers(zxid, "log", &format!("{ens}-{:x}", zxid as u64), &log),
            raw_len: log.raw_len,
            payload: log_payload,
            completes: None,
        });
    }

    /// The messages of a resync dump (all on `<prefix>.log`); `nonce` makes their ids unique per dump.
    pub(crate) fn resync_messages(
        &self,
        events: &[Event],
        nonce: i64,
        first: usize,
        out: &mut Vec<Outgoing>,
    ) {
        let ens = &self.cfg.nats.ensemble_id;
        for (i, ev) in events.iter().enumerate() {
            let i = first + i;
            let enc = self.encode_capped(ev);
            let id = format!("{ens}-{:x}-resync-{nonce}-{i}", ev.zxid as u64);
            out.push(Outgoing {
                subject: self.log_subject.clone(),
                headers: self.headers(ev.zxid, "resync", &id, &enc),
                raw_len: enc.raw_len,
                payload: Bytes::from(enc.payload),
                completes: None,
            });
        }
    }

    /// Sends messages, each expecting the stream's last sequence to be the one before it, without
    /// waiting for their acks beyond [`IN_FLIGHT`] outstanding: a txn goes out as soon as it is read, not
    /// after the acks of the batch before it. Returns the newest txn whose messages are now all
    /// stored, if any settled. On an error nothing after the failed message is stored (its successors
    /// expect a sequence that never came); the caller resumes from the stream's end.
    pub(crate) async fn send(
        &mut self,
        messages: Vec<Outgoing>,
    ) -> Result<Option<(Zxid, i64)>, NatsError> {
        let mut settled = None;
        for m in messages {
            while self.in_flight.len() >= IN_FLIGHT {
                if let Some(done) = self.settle_one().await? {
                    settled = Some(done);
                }
            }
            let publish = jetstream::message::PublishMessage::build()
                .payload(m.payload)
                .headers(m.headers)
                .expected_last_sequence(self.sent_last);
            match self.js.send_publish(m.subject, publish).await {
                Ok(ack) => {
                    self.sent_last += 1;
                    self.in_flight.push_back((ack, m.completes));
                }
                Err(e) => {
                    self.in_flight.clear();
                    return Err(NatsError::JetStream(e.to_string()));
                }
            }
        }
        Ok(settled)
    }

    /// Waits for every publish in flight; returns the newest txn now stored, if any settled.
    pub(crate) async fn settle_all(&mut self) -> Result<Option<(Zxid, i64)>, NatsError> {
        let mut settled = None;
        while !self.in_flight.is_empty() {
            if let Some(done) = self.settle_one().await? {
                settled = Some(done);
            }
        }
        Ok(settled)
    }

    /// Sends messages and waits until all are stored (a resync's dump).
    pub(crate) async fn publish(&mut self, messages: Vec<Outgoing>) -> Result<(), NatsError> {
        self.send(messages).await?;
        self.settle_all().await.map(|_| ())
    }

    /// Awaits the oldest publish in flight: fine if it stored the expected next sequence; otherwise
    /// an error, and everything still in flight is abandoned (it was refused or must not count).
    async fn settle_one(&mut self) -> Result<Option<(Zxid, i64)>, NatsError> {
        let Some((ack, completes)) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        let result = match ack.await {
            // Stored where expected; or a duplicate id already stored exactly there (another relay of
            // the same ensemble published this very message first, or our earlier ack was lost): the
            // stream holds the message at the right position either way, so carry on.
            Ok(a) if a.sequence == self.expected_last + 1 => {
                if a.duplicate {
                    metrics::counter!("outpost_relay_already_stored_total").increment(1);
                }
                self.expected_last = a.sequence;
                return Ok(completes);
            }
            Ok(a) => NatsError::Refused(format!(
                "the message is already in the stream at seq {} (expected {}): another publisher is ahead",
                a.sequence,
                self.expected_last + 1
            )),
            Err(e) => match e.kind() {
                PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId => {
                    NatsError::Refused(e.to_string())
                }
                _ => NatsError::JetStream(e.to_string()),
            },
        };
        self.in_flight.clear();
        Err(result)
    }

    /// Waits until the client's outgoing buffer is written.
    pub async fn flush(&self) {
        let _ = self.client.flush().await;
    }
}

/// Drops the data of an event and of its ops, marking it `data_too_large`.
fn strip_data(ev: &mut Event) {
    if ev.data.take().is_some() && ev.reason.is_none() {
        ev.reason = Some("data_too_large".into());
    }
    for op in ev.ops.iter_mut().flatten() {
        strip_data(op);
    }
}

fn js_err(e: impl std::fmt::Display) -> NatsError {
    NatsError::JetStream(e.to_string())
}
