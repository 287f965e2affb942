//! outpost-relay: streams committed transactions, in zxid order and without gaps, to NATS JetStream
//! and to simpler sinks (stdout, file).
//!
//! Not built yet: see issue "Relay: stream every committed proposal to NATS".
