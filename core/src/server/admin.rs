//! The AdminServer's commands (`/commands/<name>`): the command table with ZooKeeper's primary names and
//! aliases, and the JSON each command answers, rendered from a [`ServerSnapshot`] and a few extra inputs
//! the shell gathers ([`AdminInputs`]).
//!
//! Pure: the shell serves HTTP and gathers the numbers, this module only decides names and shapes.
//! Field names are ZooKeeper 3.8's (snake_case, as its Jackson outputter writes them), so scripts written
//! against a ZooKeeper AdminServer read outpost's answers unchanged.
//! `monitor` is rendered from the `mntr` lines, so the four-letter word, the AdminServer and the Prometheus
//! exporter all report the same values.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{json, Map, Value};

use super::fourlw::{self, ConnectionInfo, ServerSnapshot};

/// One AdminServer command: its primary name and the aliases that reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandSpec {
    /// The name in `/commands` and in the `command` field of every answer.
    pub primary: &'static str,
    /// Other names (mostly the four-letter words).
    pub aliases: &'static [&'static str],
}

/// Every command outpost answers, as ZooKeeper 3.8's `Commands` registers them.
pub const COMMANDS: &[CommandSpec] = &[
    cmd("configuration", &["conf", "config"]),
    cmd("connection_stat_reset", &["crst"]),
    cmd("connections", &["cons"]),
    cmd("dirs", &[]),
    cmd("dump", &[]),
    cmd("environment", &["env", "envi"]),
    cmd("get_trace_mask", &["gtmk"]),
    cmd("hash", &[]),
    cmd("initial_configuration", &["icfg"]),
    cmd("is_read_only", &["isro"]),
    cmd("last_snapshot", &["lsnp"]),
    cmd("leader", &["lead"]),
    cmd("monitor", &["mntr"]),
    cmd("observer_connection_stat_reset", &["orst"]),
    cmd("observers", &["obsr"]),
    cmd("ruok", &[]),
    cmd("server_stats", &["srvr"]),
    cmd("set_trace_mask", &["stmk"]),
    cmd("stat_reset", &["srst"]),
    cmd("stats", &["stat"]),
    cmd("system_properties", &["sysp"]),
    cmd("voting_view", &[]),
    cmd("watch_summary", &["wchs"]),
    cmd("watches", &["wchc"]),
    cmd("watches_by_path", &["wchp"]),
    cmd("zabstate", &[]),
];

const fn cmd(primary: &'static str, aliases: &'static [&'static str]) -> CommandSpec {
    CommandSpec { primary, aliases }
}

/// Finds a command by its primary name or an alias (exact, case-sensitive, as ZooKeeper's map lookup).
pub fn lookup(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS
        .iter()
        .find(|c| c.primary == name || c.aliases.contains(&name))
}

/// The `GET /commands` page: one link per primary name, sorted, as ZooKeeper's `CommandListServlet`.
pub fn listing_html(command_url: &str) -> String {
    let base = command_url.trim_end_matches('/');
    let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.primary).collect();
    names.sort_unstable();
    let mut out = String::from("<html>\n<body>\n<h1>Available commands</h1>\n");
    for name in names {
        let _ = writeln!(out, "<a href=\"{base}/{name}\">{name}</a><br/>");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// One observer connected to this server (leader or observer master), as the `observers` command lists
/// it: `LearnerHandler.getLearnerHandlerInfo`'s fields, then outpost's `synced`, `lag_zxids` and `lag_ms`
/// (see `zab::learner_link` for how the lag is measured).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObserverEntry {
    /// `/ip:port` of the observer's connection (Java's `Socket.getRemoteSocketAddress().toString()`).
    pub remote_socket_address: String,
    /// The observer's myid.
    pub sid: u64,
    /// When the connection was accepted, ms since the epoch (Java's `Date`, which Jackson writes as
    /// a number).
    pub established_ms: u64,
    /// Packets queued for the socket and not yet written.
    pub queued_packets: u64,
    /// Their bytes.
    pub queued_packets_size: u64,
    /// Packets received from it (reset by `orst`).
    pub packets_received: u64,
    /// Packets sent to it (reset by `orst`).
    pub packets_sent: u64,
    /// REQUEST packets received from it (reset by `orst`).
    pub requests: u64,
    /// The zxid of the last packet with one sent to it (-1 after `orst`).
    pub last_zxid: i64,
    /// UPTODATE sent (false while it syncs).
    pub synced: bool,
    /// Committed txns it has not confirmed yet.
    pub lag_zxids: u64,
    /// Age in ms of the oldest of them.
    pub lag_ms: u64,
}

/// What the commands report beyond the [`ServerSnapshot`], gathered by the shell at the moment of the request.
#[derive(Clone, Debug, Default)]
pub struct AdminInputs {
    /// The numbers the four-letter words print.
    pub snapshot: ServerSnapshot,
    /// The `conf` four-letter word's `key=value` text (camelCase keys).
    pub conf_text: String,
    /// zoo.cfg as read at startup.
    pub initial_configuration: String,
    /// The `envi` pairs.
    pub environment: Vec<(String, String)>,
    /// Session id → paths with a data watch set by it.
    pub watches_by_session: Vec<(i64, Vec<String>)>,
    /// Path → session ids watching it.
    pub watches_by_path: Vec<(String, Vec<i64>)>,
    /// Session id → ephemeral paths it owns.
    pub ephemerals: Vec<(i64, Vec<String>)>,
    /// Expiry time (ms since the epoch) → session ids expiring then (`getSessionExpiryMap`).
    pub session_expiry: Vec<(i64, Vec<i64>)>,
    /// The newest snapshot: zxid and time written (seconds since the epoch).
    pub last_snapshot: Option<(i64, i64)>,
    /// The trace mask (`gtmk`).
    pub trace_mask: i64,
    /// The observers connected to this server (empty unless it leads or serves observers).
    pub observers: Vec<ObserverEntry>,
}

/// One answer: `command`, `error`, then the command's fields, in this order.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    /// The primary name (or the unknown name as asked).
    pub command: String,
    /// Null on success.
    pub error: Option<String>,
    /// The command's fields, in ZooKeeper's order.
    pub fields: Vec<(String, Value)>,
}

impl Response {
    fn new(command: &str) -> Response {
        Response {
            command: command.to_string(),
            error: None,
            fields: Vec::new(),
        }
    }

    fn put(&mut self, key: &str, value: Value) {
        self.fields.push((key.to_string(), value));
    }

    /// The value of a field, for tests and the metrics exporter.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The answer as a JSON object (nested objects sorted by key).
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("command".into(), Value::String(self.command.clone()));
        map.insert(
            "error".into(),
            self.error.clone().map_or(Value::Null, Value::String),
        );
        for (k, v) in &self.fields {
            map.insert(k.clone(), v.clone());
        }
        Value::Object(map)
    }

    /// Pretty-printed JSON in the layout of ZooKeeper's Jackson outputter (`"key" : value`, two-space
    /// indent), with `command` and `error` first.
    pub fn to_pretty_json(&self) -> String {
        let mut out = String::from("{\n");
        let mut entries: Vec<(&str, Value)> = vec![
            ("command", Value::String(self.command.clone())),
            (
                "error",
                self.error.clone().map_or(Value::Null, Value::String),
            ),
        ];
        entries.extend(self.fields.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let last = entries.len() - 1;
        for (i, (k, v)) in entries.iter().enumerate() {
            out.push_str("  ");
            out.push_str(&Value::String((*k).to_string()).to_string());
            out.push_str(" : ");
            pretty(v, 1, &mut out);
            if i != last {
                out.push(',');
            }
            out.push('\n');
        }
        out.push('}');
        out
    }
}

/// Jackson's `DefaultPrettyPrinter` layout: objects one field a line, arrays inline (`[ 1, 2 ]`).
fn pretty(v: &Value, depth: usize, out: &mut String) {
    match v {
        Value::Object(map) if map.is_empty() => out.push_str("{ }"),
        Value::Object(map) => {
            out.push_str("{\n");
            let n = map.len();
            for (i, (k, v)) in map.iter().enumerate() {
                out.push_str(&"  ".repeat(depth + 1));
                out.push_str(&Value::String(k.clone()).to_string());
                out.push_str(" : ");
                pretty(v, depth + 1, out);
                if i + 1 != n {
                    out.push(',');
                }
                out.push('\n');
            }
            out.push_str(&"  ".repeat(depth));
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[ ]"),
        Value::Array(items) => {
            out.push_str("[ ");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                pretty(item, depth, out);
            }
            out.push_str(" ]");
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The answer to a name no command has: HTTP 200 with this error, as ZooKeeper answers.
pub fn unknown(name: &str) -> Response {
    Response {
        command: name.to_string(),
        error: Some(format!("Unknown command: {name}")),
        fields: Vec::new(),
    }
}

/// Runs `spec` against the gathered state. Side effects (`crst`, `srst`, `stmk`) are the shell's: it
/// carries them out before asking for the answer.
pub fn render(
    spec: &CommandSpec,
    params: &BTreeMap<String, String>,
    inputs: &AdminInputs,
) -> Response {
    let s = &inputs.snapshot;
    let mut r = Response::new(spec.primary);
    match spec.primary {
        "configuration" => {
            for (k, v) in key_values(&inputs.conf_text) {
                r.put(&snake_case(&k), scalar(&v));
            }
        }
        "connections" => {
            r.put("connections", connections(s, false));
            r.put("secure_connections", json!([]));
        }
        "dirs" => {
            r.put("datadir_size", json!(s.data_dir_size));
            r.put("logdir_size", json!(s.log_dir_size));
        }
        "dump" => {
            let mut expiry = Map::new();
            for (at, ids) in &inputs.session_expiry {
                expiry.insert(at.to_string(), json!(ids));
            }
            r.put("expiry_time_to_session_ids", Value::Object(expiry));
            let mut eph = Map::new();
            for (sid, paths) in &inputs.ephemerals {
                eph.insert(sid.to_string(), json!(paths));
            }
            r.put("session_id_to_ephemeral_paths", Value::Object(eph));
        }
        "environment" => {
            for (k, v) in &inputs.environment {
                r.put(k, Value::String(v.clone()));
            }
        }
        "get_trace_mask" => r.put("tracemask", json!(inputs.trace_mask)),
        "set_trace_mask" => match params.get("traceMask").map(|v| v.trim().parse::<i64>()) {
            Some(Ok(mask)) => r.put("tracemask", json!(mask)),
            _ => r.error = Some("setTraceMask requires long traceMask paramter".into()),
        },
        "hash" => r.put("digests", json!([])),
        "initial_configuration" => r.put(
            "initial_configuration",
            Value::String(inputs.initial_configuration.clone()),
        ),
        "is_read_only" => r.put("read_only", json!(s.read_only)),
        "last_snapshot" => {
            let (zxid, ts) = inputs.last_snapshot.unwrap_or((-1, -1));
            r.put("zxid", Value::String(format!("{:x}", zxid as u64)));
            r.put("timestamp", json!(ts));
        }
        "leader" => {
            if s.mode == "leader" || s.mode == "follower" || s.mode == "observer" {
                r.put("is_leader", json!(s.mode == "leader"));
            } else {
                r.error = Some("server is not initialized".into());
            }
        }
        "monitor" => {
            for (k, v) in monitor_pairs(s) {
                r.put(&k, v);
            }
        }
        // SyncedObserverConsCommand: the leader's observing learners or this follower's observer-master
        // clients, 0 and an empty set anywhere else (Java returns a set; outpost sorts it by sid).
        "observers" => {
            r.put("synced_observers", json!(inputs.observers.len()));
            r.put(
                "observers",
                Value::Array(inputs.observers.iter().map(observer).collect()),
            );
        }
        "server_stats" => server_stats(s, &mut r),
        "stats" => {
            server_stats(s, &mut r);
            r.put("connections", connections(s, true));
            r.put("secure_connections", json!([]));
        }
        "system_properties" => {
            for (k, v) in key_values(&inputs.initial_configuration) {
                r.put(&k, Value::String(v));
            }
        }
        "voting_view" => r.put("current_config", json!({})),
        "watch_summary" => {
            r.put("num_connections", json!(s.watch_connections));
            r.put("num_paths", json!(s.watch_paths));
            r.put("num_total_watches", json!(s.data_watch_total));
        }
        "watches" => {
            let mut m = Map::new();
            for (sid, paths) in &inputs.watches_by_session {
                m.insert(sid.to_string(), json!(paths));
            }
            r.put("session_id_to_watched_paths", Value::Object(m));
        }
        "watches_by_path" => {
            let mut m = Map::new();
            for (path, sids) in &inputs.watches_by_path {
                m.insert(path.clone(), json!(sids));
            }
            r.put("path_to_session_ids", Value::Object(m));
        }
        "zabstate" => {
            r.put("voting", json!(false));
            r.put("zabstate", json!(""));
        }
        // ruok, connection_stat_reset, stat_reset, observer_connection_stat_reset: command and error only.
        _ => {}
    }
    r
}

/// The `mntr` values as typed JSON: integers as numbers, Java doubles as numbers, the rest as strings.
pub fn monitor_pairs(s: &ServerSnapshot) -> Vec<(String, Value)> {
    fourlw::mntr(s)
        .lines()
        .filter_map(|line| {
            let (k, v) = line.split_once('\t')?;
            Some((k.strip_prefix("zk_").unwrap_or(k).to_string(), scalar(v)))
        })
        .collect()
}

fn server_stats(s: &ServerSnapshot, r: &mut Response) {
    r.put("version", Value::String(fourlw::version_string()));
    r.put("read_only", json!(s.read_only));
    let buffers = json!({
        "last_buffer_size": -1,
        "min_buffer_size": -1,
        "max_buffer_size": -1,
    });
    r.put(
        "server_stats",
        json!({
            "packets_sent": s.packets_sent,
            "packets_received": s.packets_received,
            "max_latency": s.max_latency_ms,
            "min_latency": s.min_latency_ms,
            "avg_latency": s.avg_latency_ms,
            "outstanding_requests": s.outstanding,
            "last_processed_zxid": s.zxid,
            "data_dir_size": s.data_dir_size,
            "log_dir_size": s.log_dir_size,
            "server_state": s.mode,
            "num_alive_client_connections": s.connections.len(),
            "uptime": s.uptime_ms,
            "provider_null": false,
            "fsync_threshold_exceed_count": 0,
            "non_mtls_local_conn_count": 0,
            "non_mtls_remote_conn_count": 0,
            "auth_failed_count": 0,
            "client_response_stats": buffers.clone(),
        }),
    );
    r.put("client_response", buffers.clone());
    if s.mode == "leader" {
        r.put("proposal_stats", buffers);
    }
    r.put("node_count", json!(s.node_count));
}

fn observer(o: &ObserverEntry) -> Value {
    json!({
        "remote_socket_address": o.remote_socket_address,
        "sid": o.sid,
        "established": o.established_ms,
        "queued_packets": o.queued_packets,
        "queued_packets_size": o.queued_packets_size,
        "packets_received": o.packets_received,
        "packets_sent": o.packets_sent,
        "requests": o.requests,
        "last_zxid": o.last_zxid,
        "synced": o.synced,
        "lag_zxids": o.lag_zxids,
        "lag_ms": o.lag_ms,
    })
}

fn connections(s: &ServerSnapshot, brief: bool) -> Value {
    Value::Array(s.connections.iter().map(|c| connection(c, brief)).collect())
}

fn connection(c: &ConnectionInfo, brief: bool) -> Value {
    let mut m = Map::new();
    m.insert("remote_socket_address".into(), json!(c.remote));
    m.insert("interest_ops".into(), json!(1));
    m.insert("outstanding_requests".into(), json!(c.queued));
    m.insert("packets_received".into(), json!(c.received));
    m.insert("packets_sent".into(), json!(c.sent));
    if !brief {
        if let Some(sid) = c.session_id {
            m.insert("session_id".into(), json!(sid));
            m.insert("last_operation".into(), json!(c.last_op));
            m.insert("established".into(), json!(c.established_ms));
            m.insert("session_timeout".into(), json!(c.timeout_ms));
            m.insert("last_cxid".into(), json!(c.last_cxid));
            m.insert("last_zxid".into(), json!(c.last_zxid));
            m.insert("last_response_time".into(), json!(c.last_response_ms));
            m.insert("last_latency".into(), json!(c.last_latency_ms));
            m.insert("min_latency".into(), json!(c.min_latency_ms));
            m.insert("avg_latency".into(), json!(c.avg_latency_ms));
            m.insert("max_latency".into(), json!(c.max_latency_ms));
        }
    }
    Value::Object(m)
}

/// `key=value` lines (comments and blank lines skipped), in order.
fn key_values(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// `clientPortListenBacklog` → `client_port_listen_backlog`, as Jackson's snake-case strategy.
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for ch in key.chars() {
        if ch.is_ascii_uppercase() {
            if !out.is_empty() {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// A value printed as text, typed back: an integer, a decimal, or a string.
fn scalar(v: &str) -> Value {
    if let Ok(i) = v.parse::<i64>() {
        return json!(i);
    }
    if v.contains('.')
        && v.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        if let Ok(f) = v.parse::<f64>() {
            return json!(f);
        }
    }
    Value::String(v.to_string())
}

/// Splits the `envi` text into its pairs.
pub fn environment_pairs(envi_text: &str) -> Vec<(String, String)> {
    envi_text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> AdminInputs {
        AdminInputs {
            snapshot: ServerSnapshot {
                mode: "standalone".into(),
                node_count: 5,
                zxid: 7,
                ..ServerSnapshot::default()
            },
            conf_text: "clientPort=2181\ndataDir=/d/version-2\ntickTime=2000\n".into(),
            ..AdminInputs::default()
        }
    }

    /// Every alias and primary name resolves to one command, and no name is claimed twice.
    #[test]
    fn aliases_resolve_uniquely() {
        assert_eq!(lookup("srvr").unwrap().primary, "server_stats");
        assert_eq!(lookup("mntr").unwrap().primary, "monitor");
        assert_eq!(lookup("lead").unwrap().primary, "leader");
        assert!(lookup("nope").is_none());
        let mut seen = std::collections::BTreeSet::new();
        for c in COMMANDS {
            assert!(seen.insert(c.primary));
            for a in c.aliases {
                assert!(seen.insert(a), "{a} twice");
            }
        }
    }

    /// `server_stats` carries ZooKeeper's nested field names and the node count.
    #[test]
    fn server_stats_shape() {
        let r = render(lookup("srvr").unwrap(), &BTreeMap::new(), &inputs()).to_value();
        assert_eq!(r["command"], "server_stats");
        assert!(r["error"].is_null());
        assert_eq!(r["server_stats"]["server_state"], "standalone");
        assert_eq!(r["server_stats"]["last_processed_zxid"], 7);
        assert_eq!(r["node_count"], 5);
    }

    /// `configuration` turns the `conf` keys into snake_case fields with numbers typed.
    #[test]
    fn configuration_fields() {
        let r = render(lookup("conf").unwrap(), &BTreeMap::new(), &inputs()).to_value();
        assert_eq!(r["client_port"], 2181);
        assert_eq!(r["data_dir"], "/d/version-2");
        assert_eq!(r["tick_time"], 2000);
    }

    /// The pretty output starts with `command` and `error` and parses back to the same object.
    #[test]
    fn pretty_json_round_trips() {
        let r = render(lookup("stat").unwrap(), &BTreeMap::new(), &inputs());
        let text = r.to_pretty_json();
        assert!(text.starts_with("{\n  \"command\" : \"stats\",\n  \"error\" : null,"));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r.to_value());
        let u = unknown("bogus").to_value();
        assert_eq!(u["error"], "Unknown command: bogus");
    }

    /// `monitor` reports the `mntr` values, typed.
    #[test]
    fn monitor_matches_mntr() {
        let r = render(lookup("monitor").unwrap(), &BTreeMap::new(), &inputs()).to_value();
        assert_eq!(r["server_state"], "standalone");
        assert_eq!(r["znode_count"], 5);
        assert_eq!(r["avg_latency"], 0.0);
    }

    /// Standalone placeholders for the quorum roles answer as ZooKeeper's standalone server does.
    #[test]
    fn standalone_role_placeholders() {
        let r = render(lookup("leader").unwrap(), &BTreeMap::new(), &inputs()).to_value();
        assert_eq!(r["error"], "server is not initialized");
        let r = render(lookup("obsr").unwrap(), &BTreeMap::new(), &inputs()).to_value();
        assert_eq!(r["synced_observers"], 0);
        assert_eq!(r["observers"], json!([]));
    }

    /// `observers` lists each observer with `LearnerHandler.getLearnerHandlerInfo`'s field names and
    /// types, then the lag; `orst` answers with the command and a null error only.
    #[test]
    fn observers_fields() {
        let mut i = inputs();
        i.observers = vec![ObserverEntry {
            remote_socket_address: "/127.0.0.1:40123".into(),
            sid: 4,
            established_ms: 1_700_000_000_000,
            queued_packets: 1,
            queued_packets_size: 60,
            packets_received: 12,
            packets_sent: 30,
            requests: 2,
            last_zxid: 0x1_0000_0007,
            synced: true,
            lag_zxids: 3,
            lag_ms: 250,
        }];
        let r = render(lookup("obsr").unwrap(), &BTreeMap::new(), &i).to_value();
        assert_eq!(r["command"], "observers");
        assert_eq!(r["synced_observers"], 1);
        let o = &r["observers"][0];
        for key in [
            "remote_socket_address",
            "sid",
            "established",
            "queued_packets",
            "queued_packets_size",
            "packets_received",
            "packets_sent",
            "requests",
            "last_zxid",
        ] {
            assert!(!o[key].is_null(), "{key} missing");
        }
        assert_eq!(o["sid"], 4);
        assert_eq!(o["last_zxid"], 0x1_0000_0007_i64);
        assert_eq!(o["established"], 1_700_000_000_000_u64);
        assert_eq!(
            (o["lag_zxids"].clone(), o["lag_ms"].clone()),
            (json!(3), json!(250))
        );
        let r = render(lookup("orst").unwrap(), &BTreeMap::new(), &i).to_value();
        assert_eq!(r["command"], "observer_connection_stat_reset");
        assert!(r["error"].is_null());
        assert_eq!(r.as_object().map(|m| m.len()), Some(2));
    }
}
