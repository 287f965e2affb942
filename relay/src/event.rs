//! The event contract (version [`CONTRACT_VERSION`], documented in docs/relay.md): one [`Event`] per
//! committed txn on `<prefix>.log`, one per touched znode on its per-node subject, and the resync markers.
//! Encoded as JSON (null fields left out, data in base64) or bincode 1 (every field, data as bytes),
//! optionally lz4-compressed.

use base64::Engine as _;
use outpost_core::proto::txn::{CreateTxn, SetAclTxn};
use outpost_core::proto::{Acl, Txn, TxnHeader};
use outpost_core::tree::{DataTree, EphemeralType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{Encoding, RelayConfig};

/// The contract version carried in every event's `v`.
pub const CONTRACT_VERSION: u32 = 1;

/// `Content-Type` of JSON payloads.
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// `Content-Type` of bincode payloads.
pub const BINCODE_CONTENT_TYPE: &str = "application/x-outpost-bincode";
/// `Content-Encoding` of lz4-compressed payloads (lz4_flex block format with the size prepended).
pub const LZ4_CONTENT_ENCODING: &str = "lz4";

/// One ACL entry (`digest` ids are redacted to `user:x`, as getACL answers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclEntry {
    /// Permission bits (READ 1, WRITE 2, CREATE 4, DELETE 8, ADMIN 16).
    pub perms: i32,
    /// The scheme (`world`, `digest`, `ip`, `auth`, ...).
    pub scheme: String,
    /// The id within the scheme.
    pub id: String,
}

/// One relay event. Optional fields are absent from JSON when `None`; see docs/relay.md for which
/// `type` carries which field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The contract version ([`CONTRACT_VERSION`]).
    pub v: u32,
    /// The txn's zxid (for resync events: the zxid the dump reflects).
    pub zxid: i64,
    /// create, delete, set_data, set_acl, check, multi, create_session, close_session, error, reconfig,
    /// skipped, resync_begin, resync_node, resync_end.
    #[serde(rename = "type")]
    pub kind: String,
    /// The znode path, when the event has one.
    #[serde(default)]
    pub path: Option<String>,
    /// The txn's time (the leader's clock, ms since the epoch); a znode's mtime for resync_node.
    pub time_ms: i64,
    /// The session that issued the txn, `0x` hex (0x0 for server-internal txns).
    pub session_id: String,
    /// create: 0; set_data: the new data version; set_acl: the new ACL version; check: the checked
    /// version; resync_node: the data version.
    #[serde(default)]
    pub version: Option<i32>,
    /// The data (base64 in JSON), when `include_data` is on and the data is not null.
    #[serde(default, with = "data_field")]
    pub data: Option<Vec<u8>>,
    /// The data length in bytes (also when `data` is left out).
    #[serde(default)]
    pub data_len: Option<u32>,
    /// create / resync_node: persistent, ephemeral, container or ttl.
    #[serde(default)]
    pub mode: Option<String>,
    /// The owning session of an ephemeral znode, `0x` hex.
    #[serde(default)]
    pub ephemeral_owner: Option<String>,
    /// ttl znodes: the time to live in ms.
    #[serde(default)]
    pub ttl_ms: Option<i64>,
    /// create and set_acl: the ACL.
    #[serde(default)]
    pub acl: Option<Vec<AclEntry>>,
    /// create_session: the negotiated timeout.
    #[serde(default)]
    pub timeout_ms: Option<i32>,
    /// close_session: the ephemeral znodes it deleted.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
    /// error: the ZooKeeper error code.
    #[serde(default)]
    pub err: Option<i32>,
    /// error: the error's name.
    #[serde(default)]
    pub error: Option<String>,
    /// multi: its ops, in order, each an event of its own type.
    #[serde(default)]
    pub ops: Option<Vec<Event>>,
    /// Why: delete events on per-node subjects say `close_session` or `container`; resync_begin says why
    /// the relay resynchronised; skipped says `filter`.
    #[serde(default)]
    pub reason: Option<String>,
    /// resync_begin: how many resync_node events follow; multi: how many ops it had before filtering.
    #[serde(default)]
    pub count: Option<u64>,
}

/// Base64 in human-readable formats (JSON), plain bytes otherwise (bincode).
mod data_field {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match data {
            None => s.serialize_none(),
            Some(bytes) if s.is_human_readable() => {
                s.serialize_some(&base64::engine::general_purpose::STANDARD.encode(bytes))
            }
            Some(bytes) => s.serialize_some(bytes),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        if d.is_human_readable() {
            let text: Option<String> = Option::deserialize(d)?;
            text.map(|t| {
                base64::engine::general_purpose::STANDARD
                    .decode(t.as_bytes())
                    .map_err(serde::de::Error::custom)
            })
            .transpose()
        } else {
            Option::<Vec<u8>>::deserialize(d)
        }
    }
}

/// Why a payload could not be turned back into an [`Event`].
#[derive(Debug, Error)]
pub enum EventError {
    /// The lz4 block did not decompress.
    #[error("lz4 payload: {0}")]
    Lz4(#[from] lz4_flex::block::DecompressError),
    /// The JSON did not decode.
    #[error("json event: {0}")]
    Json(#[from] serde_json::Error),
    /// The bincode did not decode.
    #[error("bincode event: {0}")]
    Bincode(#[from] bincode::Error),
    /// An unknown content type or encoding header.
    #[error("unknown {header}: {value}")]
    Unknown {
        /// The header.
        header: &'static str,
        /// Its value.
        value: String,
    },
}

/// A session id as ZooKeeper prints it.
pub fn session_hex(id: i64) -> String {
    format!("0x{:x}", id as u64)
}

fn acl_entries(acl: &[Acl]) -> Vec<AclEntry> {
    outpost_core::acl::redact_digests(acl)
        .into_iter()
        .map(|a| AclEntry {
            perms: a.perms,
            scheme: a.id.scheme,
            id: a.id.id,
        })
        .collect()
}

/// The events of one committed txn: the `<prefix>.log` event and the per-node events (path, event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnEvents {
    /// The log event (exactly one per txn).
    pub log: Event,
    /// The per-node events, in the order the txn touched the znodes.
    pub nodes: Vec<(String, Event)>,
}

struct Builder<'a> {
    cfg: &'a RelayConfig,
    header: &'a TxnHeader,
}

impl Builder<'_> {
    fn base(&self, kind: &str, path: Option<&str>) -> Event {
        Event {
            v: CONTRACT_VERSION,
            zxid: self.header.zxid,
            kind: kind.to_string(),
            path: path.map(str::to_string),
            time_ms: self.header.time,
            session_id: session_hex(self.header.client_id),
            ..Event::default()
        }
    }

    fn with_data(&self, mut e: Event, data: Option<&[u8]>) -> Event {
        e.data_len = Some(data.map_or(0, |d| d.len() as u32));
        if self.cfg.include_data {
            e.data = data.map(<[u8]>::to_vec);
        }
        e
    }

    fn create(&self, t: &CreateTxn, mode: &str, ttl: Option<i64>) -> Event {
        let mut e = self.with_data(self.base("create", Some(&t.path)), t.data.as_deref());
        e.version = Some(0);
        e.mode = Some(mode.to_string());
        e.ttl_ms = ttl;
        if t.ephemeral {
            e.ephemeral_owner = Some(session_hex(self.header.client_id));
        }
        e.acl = Some(acl_entries(&t.acl));
        e
    }

    /// The event of one (sub-)txn, or `None` when its path is excluded.
    fn op(&self, txn: &Txn) -> Option<Event> {
        let path = match txn {
            Txn::Create(t) | Txn::Create2(t) => Some(t.path.as_str()),
            Txn::CreateContainer(t) => Some(t.path.as_str()),
            Txn::CreateTtl(t) => Some(t.path.as_str()),
            Txn::Delete(t) | Txn::DeleteContainer(t) => Some(t.path.as_str()),
            Txn::SetData(t) | Txn::Reconfig(t) => Some(t.path.as_str()),
            Txn::SetAcl(t) => Some(t.path.as_str()),
            Txn::CheckVersion(t) => Some(t.path.as_str()),
            _ => None,
        };
        if path.is_some_and(|p| self.cfg.excluded(p)) {
            return None;
        }
        Some(match txn {
            Txn::Create(t) | Txn::Create2(t) => self.create(
                t,
                if t.ephemeral {
                    "ephemeral"
                } else {
                    "persistent"
                },
                None,
            ),
            Txn::CreateContainer(t) => {
                let c = CreateTxn {
                    path: t.path.clone(),
                    data: t.data.clone(),
                    acl: t.acl.clone(),
                    ephemeral: false,
                    parent_cversion: t.parent_cversion,
                };
                self.create(&c, "container", None)
            }
            Txn::CreateTtl(t) => {
                let c = CreateTxn {
                    path: t.path.clone(),
                    data: t.data.clone(),
                    acl: t.acl.clone(),
                    ephemeral: false,
                    parent_cversion: t.parent_cversion,
                };
                self.create(&c, "ttl", Some(t.ttl))
            }
            Txn::Delete(t) => self.base("delete", Some(&t.path)),
            Txn::DeleteContainer(t) => {
                let mut e = self.base("delete", Some(&t.path));
                e.reason = Some("container".into());
                e
            }
            Txn::SetData(t) => {
                let mut e = self.with_data(self.base("set_data", Some(&t.path)), t.data.as_deref());
                e.version = Some(t.version);
                e
            }
            Txn::Reconfig(t) => {
                self.with_data(self.base("reconfig", Some(&t.path)), t.data.as_deref())
            }
            Txn::SetAcl(SetAclTxn { path, acl, version }) => {
                let mut e = self.base("set_acl", Some(path));
                e.version = Some(*version);
                e.acl = Some(acl_entries(acl));
                e
            }
            Txn::CheckVersion(t) => {
                let mut e = self.base("check", Some(&t.path));
                e.version = Some(t.version);
                e
            }
            Txn::CreateSession { timeout } => {
                let mut e = self.base("create_session", None);
                e.timeout_ms = Some(*timeout);
                e
            }
            Txn::CloseSession { paths2delete } => {
                let mut e = self.base("close_session", None);
                e.paths = Some(
                    paths2delete
                        .iter()
                        .flatten()
                        .filter(|p| !self.cfg.excluded(p))
                        .cloned()
                        .collect(),
                );
                e
            }
            Txn::Error { err } => {
                let mut e = self.base("error", None);
                e.err = Some(err.code());
                e.error = Some(err.name().to_string());
                e
            }
            Txn::Multi(txns) => {
                let ops: Vec<Event> = txns.iter().filter_map(|t| self.op(t)).collect();
                if ops.is_empty() && !txns.is_empty() {
                    return None;
                }
                let mut e = self.base("multi", None);
                e.count = Some(txns.len() as u64);
                e.ops = Some(ops);
                e
            }
        })
    }
}

/// Per-node events of an op event: znode changes only (not check or error), and a close_session's deletes.
fn node_events(e: &Event, out: &mut Vec<(String, Event)>) {
    match e.kind.as_str() {
        "create" | "delete" | "set_data" | "set_acl" | "reconfig" => {
            if let Some(p) = &e.path {
                out.push((p.clone(), e.clone()));
            }
        }
        "multi" => {
            for op in e.ops.iter().flatten() {
                node_events(op, out);
            }
        }
        "close_session" => {
            for p in e.paths.iter().flatten() {
                let mut d = e.clone();
                d.kind = "delete".into();
                d.path = Some(p.clone());
                d.paths = None;
                d.reason = Some("close_session".into());
                out.push((p.clone(), d));
            }
        }
        _ => {}
    }
}

/// The events of one committed txn. An excluded txn still has its log event (type `skipped`, no path),
/// so consumers of `<prefix>.log` see every zxid.
pub fn txn_events(cfg: &RelayConfig, header: &TxnHeader, txn: &Txn) -> TxnEvents {
    let b = Builder { cfg, header };
    let log = b.op(txn).unwrap_or_else(|| {
        let mut e = b.base("skipped", None);
        e.reason = Some("filter".into());
        e
    });
    let mut nodes = Vec::new();
    node_events(&log, &mut nodes);
    TxnEvents { log, nodes }
}

/// The resync dump of `tree` (at zxid `zxid`): resync_begin (with `reason` and the node count), one
/// resync_node per znode not excluded (pre-order, root left out), resync_end.
pub fn resync_events(
    cfg: &RelayConfig,
    tree: &DataTree,
    zxid: i64,
    now_ms: i64,
    reason: &str,
) -> Vec<Event> {
    let marker = |kind: &str| Event {
        v: CONTRACT_VERSION,
        zxid,
        kind: kind.to_string(),
        time_ms: now_ms,
        session_id: session_hex(0),
        ..Event::default()
    };
    let extended = tree.extended_types();
    let mut nodes = Vec::new();
    tree.walk(|path, node| {
        if path.is_empty() || path == "/" || cfg.excluded(path) {
            return;
        }
        let mut e = marker("resync_node");
        e.path = Some(path.to_string());
        e.time_ms = node.stat.mtime;
        e.version = Some(node.stat.version);
        let data = node.data.as_deref();
        e.data_len = Some(data.map_or(0, |d| d.len() as u32));
        if cfg.include_data {
            e.data = data.map(<[u8]>::to_vec);
        }
        let (mode, owner, ttl) = match EphemeralType::of(node.stat.ephemeral_owner, extended) {
            EphemeralType::Void => ("persistent", None, None),
            EphemeralType::Normal(s) => ("ephemeral", Some(session_hex(s.0)), None),
            EphemeralType::Container => ("container", None, None),
            EphemeralType::Ttl(t) => ("ttl", None, Some(t)),
        };
        e.mode = Some(mode.into());
        e.ephemeral_owner = owner;
        e.ttl_ms = ttl;
        nodes.push(e);
    });
    let mut begin = marker("resync_begin");
    begin.reason = Some(reason.to_string());
    begin.count = Some(nodes.len() as u64);
    let mut out = Vec::with_capacity(nodes.len() + 2);
    out.push(begin);
    out.extend(nodes);
    out.push(marker("resync_end"));
    out
}

/// An encoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The payload (compressed when `lz4`).
    pub payload: Vec<u8>,
    /// The payload's `Content-Type`.
    pub content_type: &'static str,
    /// True when the payload is lz4-compressed (`Content-Encoding: lz4`).
    pub lz4: bool,
    /// The size before compression.
    pub raw_len: usize,
}

/// An [`AclEntry`] as JSON writes it: keys in byte order.
#[derive(Serialize)]
struct JsonAcl<'a> {
    id: &'a str,
    perms: i32,
    scheme: &'a str,
}

/// An [`Event`] as JSON writes it: keys in byte order and `None` fields left out, the exact bytes a
/// `serde_json::Value` (a sorted map) with its nulls removed would give, serialized in one pass without
/// building that map (the relay encodes every event, so this is its hottest path).
#[derive(Serialize)]
struct JsonEvent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    acl: Option<Vec<JsonAcl<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ephemeral_owner: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    err: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ops: Option<Vec<JsonEvent<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    paths: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    session_id: &'a str,
    time_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl_ms: Option<i64>,
    #[serde(rename = "type")]
    kind: &'a str,
    v: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<i32>,
    zxid: i64,
}

impl<'a> JsonEvent<'a> {
    fn of(e: &'a Event) -> JsonEvent<'a> {
        JsonEvent {
            acl: e.acl.as_ref().map(|acl| {
                acl.iter()
                    .map(|a| JsonAcl {
                        id: &a.id,
                        perms: a.perms,
                        scheme: &a.scheme,
                    })
                    .collect()
            }),
            count: e.count,
            data: e.data.as_deref().map(base64_of),
            data_len: e.data_len,
            ephemeral_owner: e.ephemeral_owner.as_deref(),
            err: e.err,
            error: e.error.as_deref(),
            mode: e.mode.as_deref(),
            ops: e
                .ops
                .as_ref()
                .map(|ops| ops.iter().map(JsonEvent::of).collect()),
            path: e.path.as_deref(),
            paths: e.paths.as_deref(),
            reason: e.reason.as_deref(),
            session_id: &e.session_id,
            time_ms: e.time_ms,
            timeout_ms: e.timeout_ms,
            ttl_ms: e.ttl_ms,
            kind: &e.kind,
            v: e.v,
            version: e.version,
            zxid: e.zxid,
        }
    }
}

/// The event as JSON with null fields left out and keys in byte order (the line format of the stdout and
/// file sinks too).
pub fn to_json(event: &Event) -> Vec<u8> {
    serde_json::to_vec(&JsonEvent::of(event)).unwrap_or_default()
}

/// Encodes an event as the configuration says, compressing it above `compress_over_bytes`.
pub fn encode(cfg: &RelayConfig, event: &Event) -> Encoded {
    let (raw, content_type) = match cfg.encoding {
        Encoding::Json => (to_json(event), JSON_CONTENT_TYPE),
        Encoding::Bincode => (
            bincode::serialize(event).unwrap_or_default(),
            BINCODE_CONTENT_TYPE,
        ),
    };
    let raw_len = raw.len();
    if cfg.compress_over_bytes > 0 && raw_len > cfg.compress_over_bytes {
        Encoded {
            payload: lz4_flex::compress_prepend_size(&raw),
            content_type,
            lz4: true,
            raw_len,
        }
    } else {
        Encoded {
            payload: raw,
            content_type,
            lz4: false,
            raw_len,
        }
    }
}

/// Decodes a payload given its `Content-Type` (JSON when absent) and `Content-Encoding` headers.
pub fn decode(
    payload: &[u8],
    content_type: Option<&str>,
    content_encoding: Option<&str>,
) -> Result<Event, EventError> {
    let owned;
    let bytes = match content_encoding {
        None | Some("") | Some("identity") => payload,
        Some(LZ4_CONTENT_ENCODING) => {
            owned = lz4_flex::decompress_size_prepended(payload)?;
            &owned[..]
        }
        Some(other) => {
            return Err(EventError::Unknown {
                header: "Content-Encoding",
                value: other.to_string(),
            })
        }
    };
    match content_type {
        None | Some(JSON_CONTENT_TYPE) => Ok(serde_json::from_slice(bytes)?),
        Some(BINCODE_CONTENT_TYPE) => Ok(bincode::deserialize(bytes)?),
        Some(other) => Err(EventError::Unknown {
            header: "Content-Type",
            value: other.to_string(),
        }),
    }
}

/// One line for humans: `0x1f5 set_data /app/config v3 12B session 0x1000...`.
pub fn human_line(e: &Event) -> String {
    let mut line = format!("0x{:x} {}", e.zxid, e.kind);
    if let Some(p) = &e.path {
        line.push(' ');
        line.push_str(p);
    }
    if let Some(v) = e.version {
        line.push_str(&format!(" v{v}"));
    }
    if let Some(mode) = &e.mode {
        line.push_str(&format!(" {mode}"));
    }
    if let Some(d) = &e.data {
        let text = String::from_utf8_lossy(&d[..d.len().min(60)]).replace(['\n', '\r'], " ");
        line.push_str(&format!(" data={text:?}"));
        if d.len() > 60 {
            line.push_str(&format!("…({} bytes)", d.len()));
        }
    } else if let Some(n) = e.data_len {
        line.push_str(&format!(" {n}B"));
    }
    if let Some(paths) = &e.paths {
        line.push_str(&format!(" deleted={paths:?}"));
    }
    if let Some(t) = e.timeout_ms {
        line.push_str(&format!(" timeout={t}ms"));
    }
    if let Some(err) = &e.error {
        line.push_str(&format!(" {err}"));
    }
    if let Some(r) = &e.reason {
        line.push_str(&format!(" ({r})"));
    }
    if let Some(ops) = &e.ops {
        let inner: Vec<String> = ops
            .iter()
            .map(|o| format!("{} {}", o.kind, o.path.as_deref().unwrap_or("")))
            .collect();
        line.push_str(&format!(" [{}]", inner.join(", ")));
    }
    if e.session_id != "0x0" {
        line.push_str(&format!(" session {}", e.session_id));
    }
    line
}

/// base64 of bytes, as JSON events carry data (for tools and examples).
pub fn base64_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use outpost_core::proto::txn::{DeleteTxn, SetDataTxn};
    use outpost_core::proto::ErrorCode;
    use std::path::Path;

    fn cfg(extra: &str) -> RelayConfig {
        RelayConfig::parse(extra, Path::new("relay.toml")).expect("config")
    }

    fn header(zxid: i64) -> TxnHeader {
        TxnHeader {
            client_id: 0x1000_0000_0000_0001,
            cxid: 1,
            zxid,
            time: 1_700_000_000_000,
            ty: 0,
        }
    }

    fn create(path: &str, data: &[u8], ephemeral: bool) -> Txn {
        Txn::Create(CreateTxn {
            path: path.into(),
            data: Some(data.to_vec()),
            acl: Acl::open_unsafe(),
            ephemeral,
            parent_cversion: 1,
        })
    }

    /// A create's JSON event carries the documented fields, data in base64, and no null fields.
    /// The JSON encoding before it was written in one pass: through a `serde_json::Value` (a sorted map)
    /// with its nulls removed. The oracle of `to_json_matches_the_value_encoding`.
    fn to_json_via_value(event: &Event) -> Vec<u8> {
        fn strip(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(map) => {
                    map.retain(|_, x| !x.is_null());
                    map.values_mut().for_each(strip);
                }
                serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
                _ => {}
            }
        }
        let mut value = serde_json::to_value(event).expect("to value");
        strip(&mut value);
        serde_json::to_vec(&value).expect("to vec")
    }

    /// `to_json` writes the same bytes as the sorted-map encoding it replaced, for events with no
    /// optional field, with every field (unicode, quotes and control characters in strings, empty
    /// data), and with nested multi ops.
    #[test]
    fn to_json_matches_the_value_encoding() {
        let bare = Event {
            v: CONTRACT_VERSION,
            zxid: 7,
            kind: "create_session".into(),
            session_id: "0x1".into(),
            time_ms: 1,
            ..Event::default()
        };
        let full = Event {
            v: CONTRACT_VERSION,
            zxid: -3,
            kind: "create".into(),
            path: Some("/a/\u{e9}\"q\"\n\t/\u{1f600}".into()),
            time_ms: 1_700_000_000_000,
            session_id: "0xffffffffffffffff".into(),
            version: Some(-1),
            data: Some(vec![0, 1, 2, 255, b'"']),
            data_len: Some(5),
            mode: Some("ttl".into()),
            ephemeral_owner: Some("0x2".into()),
            ttl_ms: Some(i64::MAX),
            acl: Some(vec![
                AclEntry {
                    perms: 31,
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
                AclEntry {
                    perms: 1,
                    scheme: "digest".into(),
                    id: "user:x".into(),
                },
            ]),
            timeout_ms: Some(30_000),
            paths: Some(vec!["/e1".into(), "/e 2".into()]),
            err: Some(-101),
            error: Some("NoNode".into()),
            ops: None,
            reason: Some("close_session".into()),
            count: Some(u64::MAX),
        };
        let empty_data = Event {
            data: Some(Vec::new()),
            data_len: Some(0),
            ..bare.clone()
        };
        let multi = Event {
            kind: "multi".into(),
            ops: Some(vec![full.clone(), bare.clone(), empty_data.clone()]),
            count: Some(3),
            ..bare.clone()
        };
        let nested = Event {
            ops: Some(vec![multi.clone()]),
            ..multi.clone()
        };
        for e in [bare, full, empty_data, multi, nested] {
            assert_eq!(
                String::from_utf8(to_json(&e)).expect("utf-8"),
                String::from_utf8(to_json_via_value(&e)).expect("utf-8"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn create_event_json() {
        let ev = txn_events(&cfg(""), &header(5), &create("/app/x", b"hi", true));
        let json: serde_json::Value = serde_json::from_slice(&to_json(&ev.log)).expect("json");
        assert_eq!(json["v"], 1);
        assert_eq!(json["zxid"], 5);
        assert_eq!(json["type"], "create");
        assert_eq!(json["path"], "/app/x");
        assert_eq!(json["data"], "aGk=");
        assert_eq!(json["mode"], "ephemeral");
        assert_eq!(json["ephemeral_owner"], "0x1000000000000001");
        assert_eq!(json["session_id"], "0x1000000000000001");
        assert!(
            json.get("ops").is_none() && json.get("err").is_none(),
            "{json}"
        );
        assert_eq!(ev.nodes.len(), 1);
        assert_eq!(ev.nodes[0].0, "/app/x");
    }

    /// A multi is one log event with nested ops and one node event per changed znode; a close_session
    /// lists its ephemerals and yields a delete per path; excluded paths are filtered out.
    #[test]
    fn multi_close_session_and_filter() {
        let c = cfg("[filter]\nexclude = [\"/hidden\"]\n");
        let multi = Txn::Multi(vec![
            create("/a", b"", false),
            Txn::SetData(SetDataTxn {
                path: "/b".into(),
                data: Some(b"x".to_vec()),
                version: 3,
            }),
            Txn::Delete(DeleteTxn {
                path: "/hidden/c".into(),
            }),
        ]);
        let ev = txn_events(&c, &header(6), &multi);
        assert_eq!(ev.log.kind, "multi");
        let ops = ev.log.ops.as_ref().expect("ops");
        assert_eq!(
            ops.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>(),
            ["create", "set_data"]
        );
        assert_eq!(
            ev.nodes.iter().map(|n| n.0.as_str()).collect::<Vec<_>>(),
            ["/a", "/b"]
        );
        let close = Txn::CloseSession {
            paths2delete: Some(vec!["/e1".into(), "/hidden/e2".into()]),
        };
        let ev = txn_events(&c, &header(7), &close);
        assert_eq!(ev.log.paths.as_deref(), Some(&["/e1".to_string()][..]));
        assert_eq!(ev.nodes.len(), 1);
        assert_eq!(ev.nodes[0].1.kind, "delete");
        assert_eq!(ev.nodes[0].1.reason.as_deref(), Some("close_session"));
        let skipped = txn_events(
            &c,
            &header(8),
            &Txn::Delete(DeleteTxn {
                path: "/hidden".into(),
            }),
        );
        assert_eq!(skipped.log.kind, "skipped");
        assert_eq!(skipped.log.zxid, 8);
        assert!(skipped.log.path.is_none() && skipped.nodes.is_empty());
        let err = txn_events(
            &c,
            &header(9),
            &Txn::Error {
                err: ErrorCode::NoNode,
            },
        );
        assert_eq!((err.log.kind.as_str(), err.log.err), ("error", Some(-101)));
    }

    /// JSON and bincode, compressed or not, decode back to the same event; lz4 kicks in above the limit.
    #[test]
    fn encodings_round_trip() {
        let big = vec![b'z'; 10_000];
        for encoding in ["json", "bincode"] {
            let c = cfg(&format!(
                "[events]\nencoding = \"{encoding}\"\ncompress_over_bytes = 1024\n"
            ));
            for data in [&b"small"[..], &big[..]] {
                let ev = txn_events(&c, &header(10), &create("/d", data, false)).log;
                let enc = encode(&c, &ev);
                assert_eq!(enc.lz4, data.len() > 1024, "{encoding}");
                if enc.lz4 {
                    assert!(enc.payload.len() < enc.raw_len / 10);
                }
                let back = decode(
                    &enc.payload,
                    Some(enc.content_type),
                    enc.lz4.then_some(LZ4_CONTENT_ENCODING),
                )
                .expect("decodes");
                assert_eq!(back, ev, "{encoding}");
            }
        }
    }

    /// With include_data off, events carry the data length but not the data.
    #[test]
    fn include_data_off() {
        let c = cfg("[events]\ninclude_data = false\n");
        let ev = txn_events(&c, &header(11), &create("/d", b"secret", false)).log;
        assert_eq!((ev.data.as_deref(), ev.data_len), (None, Some(6)));
    }
}
