//! outpost-relay: streams committed transactions, in zxid order and without gaps, to NATS JetStream
//! and to simpler sinks (stdout, file). See docs/relay.md for the event contract and the guarantees.
//!
//! The server side of the hook lives in `outpost_core::shell::standalone` (a bounded queue,
//! [`CommitFeed`](outpost_core::shell::standalone::CommitFeed), that the server never waits on); this crate
//! is the consumer: [`Relay`] (or [`spawn`]) reads the queue, falls back to the txn log on disk when the
//! queue skipped txns, and publishes.
//!
//! Modules: [`config`] (relay.toml), [`event`] (the contract and its encodings), [`subject`] (per-znode
//! subjects and their escaping), [`nats`] (the chained JetStream publisher), [`lines`] (stdout and file
//! sinks), [`relay`] (the task), [`tail`] (reading the stream back).

pub mod config;
pub mod event;
pub mod lines;
pub mod nats;
pub mod relay;
pub mod subject;
pub mod tail;

pub use async_nats;
pub use config::{ConfigError, Encoding, RelayConfig, SinkKind};
pub use event::{Event, CONTRACT_VERSION};
pub use futures;
pub use relay::{spawn, Relay, RelayError, ServerFiles};
pub use tail::{StreamEvent, StreamReader};
