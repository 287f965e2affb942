//! Loading zoo.cfg, its dynamic file and `myid` into a typed [`ZooCfg`], following
//! `QuorumPeerConfig.parse` of ZooKeeper 3.8 step by step, plus the checks outpost adds (duplicate
//! ports, myid not among the servers, groups and weights that name unknown servers).
//!
//! Paths (`dataDir`, `dynamicConfigFile`, …) are used as given: a relative path is relative to the
//! process's working directory, exactly as in ZooKeeper (which only warns about it); outpost warns too.

use crate::error::{ConfError, Source, Warning};
use crate::keys::{self, BoolStyle, IntSyntax, KeyDef, Kind};
use crate::properties::{self, Entry};
use crate::quorum::{QuorumConfig, QuorumSpec};
use crate::server::{HostPort, Role, ServerSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// How this server runs, as `QuorumPeerMain` decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No ensemble: a single standalone server.
    Standalone,
    /// A voting member of an ensemble.
    Participant,
    /// A non-voting member of an ensemble.
    Observer,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Standalone => "standalone",
            Mode::Participant => "participant",
            Mode::Observer => "observer",
        })
    }
}

/// Which four-letter words are enabled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FourLetterWords {
    /// `*`: every command.
    All,
    /// These commands (always including `srvr`, which ZooKeeper adds itself).
    Only(BTreeSet<String>),
}

impl FourLetterWords {
    /// True when `cmd` is enabled.
    pub fn allows(&self, cmd: &str) -> bool {
        match self {
            FourLetterWords::All => true,
            FourLetterWords::Only(set) => set.contains(cmd),
        }
    }
}

/// One key's resolved value and where it came from, as `conf check` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The key.
    pub key: String,
    /// The value as text ("" = unset).
    pub value: String,
    /// Where it came from.
    pub source: Source,
}

/// zoo.cfg (with its dynamic file and myid) resolved as ZooKeeper 3.8 resolves it.
#[derive(Debug, Clone)]
pub struct ZooCfg {
    /// The zoo.cfg path, as given.
    pub config_path: PathBuf,
    /// `dataDir`.
    pub data_dir: PathBuf,
    /// `dataLogDir` (default: dataDir).
    pub data_log_dir: PathBuf,
    /// `tickTime`.
    pub tick_time_ms: u32,
    /// `initLimit` (0 = unset; required when distributed).
    pub init_limit_ticks: u32,
    /// `syncLimit` (0 = unset; required when distributed).
    pub sync_limit_ticks: u32,
    /// `connectToLearnerMasterLimit` (0 = use initLimit).
    pub connect_to_learner_master_limit_ticks: u32,
    /// This server's client address: its server line's client part, else `clientPortAddress:clientPort`
    /// (host `0.0.0.0` when no address), else none.
    pub client_address: Option<HostPort>,
    /// `secureClientPortAddress:secureClientPort`.
    pub secure_client_address: Option<HostPort>,
    /// `clientPortListenBacklog` (-1 = OS default).
    pub client_port_listen_backlog: i32,
    /// `maxClientCnxns` (0 = unlimited).
    pub max_client_cnxns: u32,
    /// `minSessionTimeout` (default 2 × tickTime).
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout` (default 20 × tickTime).
    pub max_session_timeout_ms: u32,
    /// `electionAlg` (always 3).
    pub election_alg: u32,
    /// `quorumListenOnAllIPs`.
    pub quorum_listen_on_all_ips: bool,
    /// `peerType` as configured (the effective role is in [`ZooCfg::mode`]).
    pub peer_type: Role,
    /// `syncEnabled`.
    pub sync_enabled: bool,
    /// `observerMasterPort` (None when unset or ≤ 0).
    pub observer_master_port: Option<u16>,
    /// `dynamicConfigFile`.
    pub dynamic_config_file: Option<PathBuf>,
    /// `standaloneEnabled`.
    pub standalone_enabled: bool,
    /// `reconfigEnabled`.
    pub reconfig_enabled: bool,
    /// `localSessionsEnabled`.
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled`.
    pub local_sessions_upgrading_enabled: bool,
    /// `autopurge.snapRetainCount` (at least 3).
    pub snap_retain_count: u32,
    /// `autopurge.purgeInterval` (0 = off).
    pub purge_interval_hours: u32,
    /// `multiAddress.enabled`.
    pub multi_address_enabled: bool,
    /// `leaderServes`.
    pub leader_serves: bool,
    /// `cnxTimeout`.
    pub cnx_timeout_ms: u32,
    /// `quorumCnxnTimeoutMs` (≤ 0 = syncLimit × tickTime).
    pub quorum_cnxn_timeout_ms: i64,
    /// `electionPortBindRetry` (0 = forever).
    pub election_port_bind_retry: u32,
    /// `tcpKeepAlive`.
    pub tcp_keep_alive: bool,
    /// `clientTcpKeepAlive`.
    pub client_tcp_keep_alive: bool,
    /// `observer.reconnectDelayMs`.
    pub observer_reconnect_delay_ms: u64,
    /// `observer.election.DelayMs`.
    pub observer_election_delay_ms: u64,
    /// `snapCount`.
    pub snap_count: u32,
    /// `preAllocSize`.
    pub pre_alloc_size_kb: u64,
    /// `forceSync`.
    pub force_sync: bool,
    /// `jute.maxbuffer`.
    pub jute_max_buffer_bytes: u32,
    /// `globalOutstandingLimit`.
    pub global_outstanding_limit: u32,
    /// `extendedTypesEnabled`.
    pub extended_types_enabled: bool,
    /// `skipACL`.
    pub skip_acl: bool,
    /// `4lw.commands.whitelist`.
    pub four_letter_words: FourLetterWords,
    /// `admin.enableServer`.
    pub admin_enable_server: bool,
    /// `admin.serverAddress`.
    pub admin_server_address: String,
    /// `admin.serverPort`.
    pub admin_server_port: u16,
    /// `admin.idleTimeout`.
    pub admin_idle_timeout_ms: u32,
    /// `admin.commandURL`.
    pub admin_command_url: String,
    /// `admin.portUnification`.
    pub admin_port_unification: bool,
    /// `admin.forceHttps`.
    pub admin_force_https: bool,
    /// `leader.maxConcurrentSnapSyncs`.
    pub max_concurrent_snap_syncs: u32,
    /// `leader.maxConcurrentDiffSyncs`.
    pub max_concurrent_diff_syncs: u32,
    /// `metricsProvider.className`.
    pub metrics_provider_class_name: String,
    /// `metricsProvider.httpPort`.
    pub metrics_provider_http_port: u16,
    /// Every other `metricsProvider.<name>` key, without the prefix.
    pub metrics_provider: BTreeMap<String, String>,
    /// `DigestAuthenticationProvider.superDigest`.
    pub super_digest: Option<String>,
    /// `relay.configFile` (outpost's own; the relay crate reads the TOML).
    pub relay_config_file: Option<PathBuf>,
    /// The membership (empty for a standalone config without server lines).
    pub membership: QuorumConfig,
    /// Where each `server.N` line came from.
    pub server_sources: BTreeMap<u64, Source>,
    /// The last seen, not yet committed config from `<zoo.cfg>.dynamic.next`, if present.
    pub last_seen: Option<QuorumConfig>,
    /// The id in `<dataDir>/myid`, if the file exists.
    pub my_id: Option<u64>,
    /// How this server runs.
    pub mode: Mode,
    /// Every known key with its resolved value and source, in table order (then metricsProvider.*).
    pub resolved: Vec<Resolved>,
    /// Keys ZooKeeper does not parse itself (it would set `zookeeper.<key>`), with value and source.
    pub unknown: Vec<Resolved>,
    /// outpost's `observerMasterPort.N` keys: per-server observer-master ports (overriding
    /// `observerMasterPort` for server N).
    pub observer_master_ports: BTreeMap<u64, u16>,
    /// Non-fatal findings.
    pub warnings: Vec<Warning>,
}

impl ZooCfg {
    /// True when ZooKeeper would run a quorum peer rather than a standalone server.
    pub fn is_distributed(&self) -> bool {
        self.mode != Mode::Standalone
    }

    /// The value and source of a known key.
    pub fn get(&self, key: &str) -> Option<&Resolved> {
        self.resolved.iter().find(|r| r.key == key)
    }

    /// The configuration text for `/zookeeper/config` (see [`QuorumConfig::render`]).
    pub fn config_text(&self) -> String {
        self.membership.render()
    }

    /// Reads and validates zoo.cfg at `path`, its dynamic file and `<dataDir>/myid`.
    pub fn load(path: &Path) -> Result<ZooCfg, ConfError> {
        Loader::new(path).load()
    }
}

/// One setting from a file or the defaults.
#[derive(Debug, Clone)]
struct Setting {
    value: String,
    source: Source,
}

fn read_properties(path: &Path) -> Result<Vec<Entry>, ConfError> {
    let bytes = std::fs::read(path).map_err(|source| ConfError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    properties::parse(&properties::decode_latin1(&bytes)).map_err(|e| ConfError::Syntax {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })
}

/// Parses an integer the way `Integer.decode` does (`0x`, `#`, leading-0 octal, sign).
fn decode_int(s: &str) -> Option<i64> {
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, digits) =
        if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            (16, h)
        } else if let Some(h) = rest.strip_prefix('#') {
            (16, h)
        } else if rest.len() > 1 && rest.starts_with('0') {
            (8, &rest[1..])
        } else {
            (10, rest)
        };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    let v = i64::from_str_radix(digits, radix).ok()?;
    Some(if neg { -v } else { v })
}

fn parse_int(s: &str, syntax: IntSyntax) -> Option<i64> {
    match syntax {
        IntSyntax::Decimal => s.parse::<i64>().ok(),
        IntSyntax::Decode => decode_int(s),
    }
}

/// Whether a lenient boolean value is one a reader would recognise; others get a warning.
fn canonical_lenient(style: BoolStyle, v: &str) -> bool {
    match style {
        BoolStyle::NotNo | BoolStyle::IsYes => v == "yes" || v == "no",
        BoolStyle::NotFalse => v == "true" || v == "false",
        BoolStyle::TrueIgnoreCase => {
            v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")
        }
        BoolStyle::Strict => true,
    }
}

struct Loader {
    path: PathBuf,
    settings: BTreeMap<&'static str, Setting>,
    metrics_extra: BTreeMap<String, Setting>,
    unknown: Vec<Resolved>,
    observer_master_ports: BTreeMap<u64, u16>,
    warnings: Vec<Warning>,
}

impl Loader {
    fn new(path: &Path) -> Self {
        let settings = keys::KEYS
            .iter()
            .map(|d| {
                (
                    d.name,
                    Setting {
                        value: d.default.to_string(),
                        source: Source::Default,
                    },
                )
            })
            .collect();
        Loader {
            path: path.to_path_buf(),
            settings,
            metrics_extra: BTreeMap::new(),
            unknown: Vec::new(),
            observer_master_ports: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn warn(&mut self, source: Source, key: Option<&str>, message: impl Into<String>) {
        self.warnings.push(Warning {
            source,
            key: key.map(str::to_string),
            message: message.into(),
        });
    }

    fn setting(&self, key: &str) -> Setting {
        self.settings.get(key).cloned().unwrap_or(Setting {
            value: String::new(),
            source: Source::Default,
        })
    }

    fn def(key: &str) -> Option<&'static KeyDef> {
        keys::lookup(key)
    }

    fn err(&self, key: &str, message: impl Into<String>) -> ConfError {
        let s = self.setting(key);
        ConfError::at(&s.source, &self.path, key, message)
    }

    /// An integer key converted to `T`; `None` when unset ("").
    fn int_opt<T: TryFrom<i64>>(&self, key: &str) -> Result<Option<T>, ConfError> {
        let s = self.setting(key);
        if s.value.is_empty() {
            return Ok(None);
        }
        let syntax = match Self::def(key).map(|d| d.kind) {
            Some(Kind::Int(syntax)) => syntax,
            _ => IntSyntax::Decimal,
        };
        let n = parse_int(&s.value, syntax)
            .ok_or_else(|| self.err(key, format!("expected an integer, found {:?}", s.value)))?;
        T::try_from(n)
            .map(Some)
            .map_err(|_| self.err(key, format!("{n} is out of range")))
    }

    fn int<T: TryFrom<i64>>(&self, key: &str) -> Result<T, ConfError> {
        self.int_opt(key)?
            .ok_or_else(|| self.err(key, "expected an integer, found nothing"))
    }

    /// An integer of at least 1: `LearnerSyncThrottler`'s constructor refuses anything else
    /// ("maxConcurrentSyncs must be positive"), which stops a Java leader from starting.
    fn positive_int(&self, key: &str) -> Result<u32, ConfError> {
        let n: u32 = self.int(key)?;
        if n == 0 {
            return Err(self.err(key, "must be positive (at least 1)"));
        }
        Ok(n)
    }

    fn boolean(&mut self, key: &str) -> Result<bool, ConfError> {
        let s = self.setting(key);
        let style = match Self::def(key).map(|d| d.kind) {
            Some(Kind::Bool(style)) => style,
            _ => BoolStyle::Strict,
        };
        let v = s.value.as_str();
        let result = match style {
            BoolStyle::Strict => {
                if v.eq_ignore_ascii_case("true") {
                    true
                } else if v.eq_ignore_ascii_case("false") {
                    false
                } else {
                    return Err(self.err(key, format!("expected true or false, found {v:?}")));
                }
            }
            BoolStyle::TrueIgnoreCase => v.eq_ignore_ascii_case("true"),
            BoolStyle::NotNo => v != "no",
            BoolStyle::IsYes => v == "yes",
            BoolStyle::NotFalse => v != "false",
        };
        if s.source != Source::Default && !canonical_lenient(style, v) {
            let shown = format!("{v} (read as {result})");
            if let Some(setting) = self.settings.get_mut(key) {
                setting.value = shown;
            }
            self.warn(
                s.source.clone(),
                Some(key),
                format!("{v:?} is not a usual value; ZooKeeper reads it as {result}, and so does outpost"),
            );
        }
        Ok(result)
    }

    fn string(&self, key: &str) -> String {
        self.setting(key).value
    }

    fn opt_string(&self, key: &str) -> Option<String> {
        Some(self.string(key)).filter(|v| !v.is_empty())
    }

    fn path_opt(&mut self, key: &str) -> Option<PathBuf> {
        let s = self.setting(key);
        if s.value.is_empty() {
            return None;
        }
        let p = PathBuf::from(&s.value);
        if p.is_relative() {
            self.warn(
                s.source.clone(),
                Some(key),
                format!("{:?} is relative: it is resolved against the working directory, as in ZooKeeper", s.value),
            );
        }
        Some(p)
    }

    fn load(mut self) -> Result<ZooCfg, ConfError> {
        let entries = read_properties(&self.path)?;
        // Java `Properties.containsKey`: the raw (untrimmed) key, which has no blanks anyway.
        let has_dynamic = entries.iter().any(|e| e.key == "dynamicConfigFile");
        let mut static_membership: Vec<Entry> = Vec::new();
        for e in &entries {
            let key = e.key.trim();
            let value = e.value.trim().to_string();
            let source = Source::File {
                path: self.path.clone(),
                line: e.line,
            };
            if key.starts_with("server.") || key.starts_with("group") || key.starts_with("weight") {
                if has_dynamic {
                    return Err(ConfError::Value {
                        path: self.path.clone(),
                        line: e.line,
                        key: key.to_string(),
                        message: "must be in the dynamic config file when dynamicConfigFile is set"
                            .into(),
                    });
                }
                static_membership.push(e.clone());
                continue;
            }
            if key == "version" && !has_dynamic {
                static_membership.push(e.clone());
                continue;
            }
            let (name, alias_note) = match keys::ALIASES.iter().find(|(a, _, _)| *a == key) {
                Some((_, canonical, note)) => (*canonical, Some(*note)),
                None => (key, None),
            };
            if let Some(def) = keys::lookup(name) {
                if let Some(note) = alias_note {
                    self.warn(source.clone(), Some(key), note);
                }
                if let Some(prev) = self.settings.get(def.name) {
                    if let Source::File { line, .. } = prev.source {
                        self.warn(
                            source.clone(),
                            Some(key),
                            format!("set twice (also on line {line}); the last one wins, as in ZooKeeper"),
                        );
                    }
                }
                self.settings.insert(def.name, Setting { value, source });
            } else if let Some(rest) = key.strip_prefix("metricsProvider.") {
                self.metrics_extra
                    .insert(rest.to_string(), Setting { value, source });
            } else if let Some(id) = key.strip_prefix("observerMasterPort.") {
                // outpost's extension: a per-server observer-master port, so that several voters can
                // share one host (ZooKeeper's observerMasterPort is one port for every server).
                let id: u64 = id.parse().map_err(|_| ConfError::Value {
                    path: self.path.clone(),
                    line: e.line,
                    key: key.to_string(),
                    message: "expected observerMasterPort.<server id>".into(),
                })?;
                let port = parse_int(&value, IntSyntax::Decimal)
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|p| *p > 0)
                    .ok_or_else(|| ConfError::Value {
                        path: self.path.clone(),
                        line: e.line,
                        key: key.to_string(),
                        message: format!("expected a port in 1..65535, found {value:?}"),
                    })?;
                self.observer_master_ports.insert(id, port);
            } else {
                let message = if key.starts_with("zookeeper.") {
                    format!("unknown key; ZooKeeper would set system property zookeeper.{key} (which nothing reads); outpost ignores it")
                } else {
                    format!("unknown key; ZooKeeper would set system property zookeeper.{key}; outpost ignores it")
                };
                self.warn(source.clone(), Some(key), message);
                self.unknown.push(Resolved {
                    key: key.to_string(),
                    value,
                    source,
                });
            }
        }
        self.key_notes();
        self.build(has_dynamic, static_membership)
    }

    /// Warnings for values that mean something other than what they seem to.
    fn key_notes(&mut self) {
        let cnx = self.setting("cnxTimeout");
        if cnx.source != Source::Default {
            if let Ok(n) = cnx.value.parse::<i64>() {
                if (1..100).contains(&n) {
                    self.warn(
                        cnx.source.clone(),
                        Some("cnxTimeout"),
                        format!("ZooKeeper reads cnxTimeout in milliseconds: {n} means {n} ms, not {n} s"),
                    );
                }
            }
        }
        let jute = self.setting("jute.maxbuffer");
        if jute.source != Source::Default {
            self.warn(
                jute.source,
                Some("jute.maxbuffer"),
                "Apache ZooKeeper ignores jute.maxbuffer in zoo.cfg (it is the JVM property -Djute.maxbuffer); outpost reads it here",
            );
        }
        let provider = self.setting("metricsProvider.className");
        let known = [
            "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
            "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
        ];
        if provider.source != Source::Default && !known.contains(&provider.value.trim()) {
            self.warn(
                provider.source,
                Some("metricsProvider.className"),
                format!(
                    "outpost knows only ZooKeeper's default and Prometheus metrics providers; with {} no exporter runs",
                    provider.value.trim()
                ),
            );
        }
    }

    fn build(
        mut self,
        has_dynamic: bool,
        static_membership: Vec<Entry>,
    ) -> Result<ZooCfg, ConfError> {
        // Keys ZooKeeper parses in parseProperties, in its order of checks.
        let election_alg: u32 = self.int("electionAlg")?;
        if election_alg != 3 {
            return Err(self.err(
                "electionAlg",
                format!("only 3 is supported, found {election_alg}"),
            ));
        }
        let peer_type_text = self.string("peerType");
        let peer_type = match peer_type_text.to_ascii_lowercase().as_str() {
            "observer" => Role::Observer,
            "participant" => Role::Participant,
            _ => {
                return Err(self.err(
                    "peerType",
                    format!("expected participant or observer, found {peer_type_text:?}"),
                ))
            }
        };
        let quorum_listen_on_all_ips = self.boolean("quorumListenOnAllIPs")?;
        let sync_enabled = self.boolean("syncEnabled")?;
        let standalone_enabled = self.boolean("standaloneEnabled")?;
        let reconfig_enabled = self.boolean("reconfigEnabled")?;
        let local_sessions_enabled = self.boolean("localSessionsEnabled")?;
        let local_sessions_upgrading_enabled = self.boolean("localSessionsUpgradingEnabled")?;
        for key in [
            "sslQuorum",
            "portUnification",
            "sslQuorumReloadCertFiles",
            "jvm.pause.monitor",
            "multiAddress.reachabilityCheckEnabled",
        ] {
            self.boolean(key)?;
        }
        let sasl = self.boolean("quorum.auth.enableSasl")?;
        let server_sasl = self.boolean("quorum.auth.serverRequireSasl")?;
        let learner_sasl = self.boolean("quorum.auth.learnerRequireSasl")?;
        if !sasl && server_sasl {
            return Err(self.err(
                "quorum.auth.serverRequireSasl",
                "quorum.auth.enableSasl is disabled, so this cannot be enabled",
            ));
        }
        if !sasl && learner_sasl {
            return Err(self.err(
                "quorum.auth.learnerRequireSasl",
                "quorum.auth.enableSasl is disabled, so this cannot be enabled",
            ));
        }
        if !learner_sasl && server_sasl {
            return Err(self.err(
                "quorum.auth.serverRequireSasl",
                "quorum.auth.learnerRequireSasl is disabled, so this cannot be enabled",
            ));
        }
        let multi_address_enabled = self.boolean("multiAddress.enabled")?;

        // Validate every integer key, even those with no typed field.
        for def in keys::KEYS {
            if matches!(def.kind, Kind::Int(_)) {
                self.int_opt::<i64>(def.name)?;
            }
        }

        let mut snap_retain_count: u32 =
            self.int::<i32>("autopurge.snapRetainCount")?.max(0) as u32;
        if snap_retain_count < 3 {
            let s = self.setting("autopurge.snapRetainCount");
            self.warn(
                s.source,
                Some("autopurge.snapRetainCount"),
                format!("{snap_retain_count} is below the minimum 3; using 3, as ZooKeeper does"),
            );
            snap_retain_count = 3;
            self.set_display("autopurge.snapRetainCount", "3".into());
        }
        let purge_interval_hours: u32 = self.int::<i32>("autopurge.purgeInterval")?.max(0) as u32;

        let data_dir = match self.path_opt("dataDir") {
            Some(p) => p,
            None => {
                return Err(ConfError::Key {
                    path: self.path.clone(),
                    key: "dataDir".into(),
                    message: "dataDir is not set".into(),
                })
            }
        };
        let data_log_dir = match self.path_opt("dataLogDir") {
            Some(p) => p,
            None => {
                self.set_display("dataLogDir", data_dir.display().to_string());
                data_dir.clone()
            }
        };

        let client_port: i32 = self.int_opt("clientPort")?.unwrap_or(0);
        let client_port_address = self.opt_string("clientPortAddress");
        let static_client = if client_port == 0 {
            if client_port_address.is_some() {
                return Err(self.err(
                    "clientPortAddress",
                    "clientPortAddress is set but clientPort is not set",
                ));
            }
            None
        } else {
            let port = u16::try_from(client_port).map_err(|_| {
                self.err(
                    "clientPort",
                    format!("{client_port} is out of range 0..65535"),
                )
            })?;
            Some(HostPort {
                host: client_port_address
                    .clone()
                    .unwrap_or_else(|| "0.0.0.0".into()),
                port,
            })
        };
        let secure_port: i32 = self.int_opt("secureClientPort")?.unwrap_or(0);
        let secure_address = self.opt_string("secureClientPortAddress");
        let secure_client_address = if secure_port == 0 {
            if secure_address.is_some() {
                return Err(self.err(
                    "secureClientPortAddress",
                    "secureClientPortAddress is set but secureClientPort is not set",
                ));
            }
            None
        } else {
            let port = u16::try_from(secure_port).map_err(|_| {
                self.err(
                    "secureClientPort",
                    format!("{secure_port} is out of range 0..65535"),
                )
            })?;
            Some(HostPort {
                host: secure_address.unwrap_or_else(|| "0.0.0.0".into()),
                port,
            })
        };
        let omp: i32 = self.int_opt("observerMasterPort")?.unwrap_or(0);
        let observer_master_port = if omp <= 0 {
            None
        } else {
            Some(u16::try_from(omp).map_err(|_| {
                self.err(
                    "observerMasterPort",
                    format!("{omp} is out of range 0..65535"),
                )
            })?)
        };

        let tick_time_ms: u32 = self.int("tickTime")?;
        if tick_time_ms == 0 {
            return Err(self.err("tickTime", "tickTime is not set (0)"));
        }
        let min_raw: i64 = self.int("minSessionTimeout")?;
        let max_raw: i64 = self.int("maxSessionTimeout")?;
        let min_session = if min_raw == -1 {
            2 * i64::from(tick_time_ms)
        } else {
            min_raw
        };
        let max_session = if max_raw == -1 {
            20 * i64::from(tick_time_ms)
        } else {
            max_raw
        };
        if min_raw == -1 {
            self.set_display("minSessionTimeout", min_session.to_string());
        }
        if max_raw == -1 {
            self.set_display("maxSessionTimeout", max_session.to_string());
        }
        if min_session > max_session {
            return Err(self.err(
                "minSessionTimeout",
                format!("{min_session} must not be larger than maxSessionTimeout {max_session}"),
            ));
        }
        let min_session_timeout_ms = u32::try_from(min_session).map_err(|_| {
            self.err(
                "minSessionTimeout",
                format!("{min_session} is out of range"),
            )
        })?;
        let max_session_timeout_ms = u32::try_from(max_session).map_err(|_| {
            self.err(
                "maxSessionTimeout",
                format!("{max_session} is out of range"),
            )
        })?;

        // Membership: from the dynamic file, or (backward compatibility) from zoo.cfg itself.
        let dynamic_config_file = self.path_opt("dynamicConfigFile");
        let (membership, server_sources, membership_path) = match &dynamic_config_file {
            Some(dyn_path) => {
                let entries = read_properties(dyn_path)?;
                for e in &entries {
                    let key = e.key.trim();
                    if key == "version" {
                        return Err(ConfError::Value {
                            path: dyn_path.clone(),
                            line: e.line,
                            key: key.into(),
                            message: "the dynamic file must not contain a version (it comes from the file name)".into(),
                        });
                    }
                    if !(key.starts_with("server.")
                        || key.starts_with("group")
                        || key.starts_with("weight"))
                    {
                        return Err(ConfError::Value {
                            path: dyn_path.clone(),
                            line: e.line,
                            key: key.into(),
                            message: "unrecognised parameter in a dynamic config file".into(),
                        });
                    }
                }
                let version = version_from_filename(dyn_path);
                let mk = |line| Source::DynamicFile {
                    path: dyn_path.clone(),
                    line,
                };
                let (qc, sources) = parse_membership(
                    &entries,
                    dyn_path,
                    &mk,
                    multi_address_enabled,
                    Some(version),
                )?;
                (qc, sources, dyn_path.clone())
            }
            None => {
                let path = self.path.clone();
                let mk = |line| Source::File {
                    path: path.clone(),
                    line,
                };
                let (qc, sources) = parse_membership(
                    &static_membership,
                    &self.path,
                    &mk,
                    multi_address_enabled,
                    None,
                )?;
                (qc, sources, self.path.clone())
            }
        };
        let mut membership = membership;

        // parseDynamicConfig's checks.
        let voters = membership.voters().len();
        let observers = membership.observers().len();
        let invalid = |message: &str| ConfError::Invalid {
            path: membership_path.clone(),
            message: message.to_string(),
        };
        if voters == 0 {
            if !standalone_enabled {
                return Err(invalid(
                    "standaloneEnabled=false needs at least one participant server line",
                ));
            }
            if observers > 0 {
                return Err(invalid(
                    "observers without participants is an invalid configuration",
                ));
            }
        } else if voters == 1 && standalone_enabled {
            if observers > 0 {
                return Err(invalid("observers without a quorum (one participant, standaloneEnabled=true) is an invalid configuration"));
            }
            self.warn(Source::Default, None, "only one participant and standaloneEnabled=true: the server line is ignored and the server runs standalone, as in ZooKeeper");
        } else if voters <= 2 {
            self.warn(
                Source::Default,
                None,
                "no server failure will be tolerated: you need at least 3 voters",
            );
        } else if voters % 2 == 0 {
            self.warn(
                Source::Default,
                None,
                "non-optimal configuration: consider an odd number of voters",
            );
        }
        let distributed = !standalone_enabled || voters > 1;

        // myid (setupMyId): the first line of <dataDir>/myid, when the file exists.
        let my_id = self.read_my_id(&data_dir)?;

        // setupClientPort.
        let mut client_address = static_client.clone();
        if let Some(id) = my_id {
            if let Some(server) = membership.servers.get_mut(&id) {
                match (&server.client, &static_client) {
                    (Some(line_client), Some(stat)) => {
                        let conflict = if stat.is_wildcard() {
                            stat.port != line_client.port
                        } else {
                            stat != line_client
                        };
                        if conflict {
                            let src = server_sources.get(&id).cloned().unwrap_or(Source::Default);
                            return Err(ConfError::at(&src, &self.path, &format!("server.{id}"), format!(
                                "client address {line_client} differs from clientPort/clientPortAddress {stat} in {}",
                                self.path.display()
                            )));
                        }
                        client_address = Some(line_client.clone());
                    }
                    (Some(line_client), None) => client_address = Some(line_client.clone()),
                    (None, Some(stat)) => {
                        server.client = Some(stat.clone());
                        server.client_from_static = true;
                    }
                    (None, None) => {}
                }
            }
        }

        // setupPeerType: the server line wins over peerType.
        let mut role = peer_type;
        if let Some(id) = my_id {
            let by_list = if membership.observers().contains(&id) {
                Role::Observer
            } else {
                Role::Participant
            };
            if by_list != peer_type {
                let s = self.setting("peerType");
                self.warn(s.source, Some("peerType"), format!("peerType {peer_type} does not match the server line of server.{id} ({by_list}); the server line wins, as in ZooKeeper"));
                role = by_list;
            }
        }

        // checkValidity, and outpost's extra checks.
        let init_limit_ticks: u32 = self.int("initLimit")?;
        let sync_limit_ticks: u32 = self.int("syncLimit")?;
        let mode = if distributed {
            if init_limit_ticks == 0 {
                return Err(self.err(
                    "initLimit",
                    "initLimit is not set (required for an ensemble)",
                ));
            }
            if sync_limit_ticks == 0 {
                return Err(self.err(
                    "syncLimit",
                    "syncLimit is not set (required for an ensemble)",
                ));
            }
            let Some(id) = my_id else {
                return Err(ConfError::Key {
                    path: self.path.clone(),
                    key: "dataDir".into(),
                    message: format!(
                        "{} is missing (required for an ensemble)",
                        data_dir.join("myid").display()
                    ),
                });
            };
            if !membership.servers.contains_key(&id) {
                let ids: Vec<String> = membership.servers.keys().map(u64::to_string).collect();
                return Err(ConfError::Invalid {
                    path: data_dir.join("myid"),
                    message: format!("myid {id} is not among the servers ({})", ids.join(", ")),
                });
            }
            match role {
                Role::Participant => Mode::Participant,
                Role::Observer => Mode::Observer,
            }
        } else {
            Mode::Standalone
        };
        check_duplicate_addresses(&membership, &server_sources, &membership_path)?;
        let extended_types_enabled = self.boolean("extendedTypesEnabled")?;
        if let (true, Some(id)) = (extended_types_enabled, my_id) {
            if id > 254 && distributed {
                return Err(self.err(
                    "extendedTypesEnabled",
                    format!("extendedTypesEnabled is true but myid {id} is larger than 254"),
                ));
            }
        }

        // `.dynamic.next`: the last seen, uncommitted config (only looked at with a dynamic file).
        let mut last_seen = None;
        if has_dynamic {
            let next = PathBuf::from(format!("{}.dynamic.next", self.path.display()));
            if next.is_file() {
                let entries = read_properties(&next)?;
                let mk = |line| Source::DynamicFile {
                    path: next.clone(),
                    line,
                };
                let (qc, _) = parse_membership(&entries, &next, &mk, multi_address_enabled, None)?;
                last_seen = Some(qc);
            }
        }

        let four_letter_words = {
            let text = self.string("4lw.commands.whitelist");
            let mut set = BTreeSet::new();
            let mut all = false;
            for cmd in text.split(',') {
                let cmd = cmd.trim();
                if cmd == "*" {
                    all = true;
                    break;
                }
                if !cmd.is_empty() {
                    set.insert(cmd.to_string());
                }
            }
            set.insert("srvr".to_string());
            if all {
                FourLetterWords::All
            } else {
                FourLetterWords::Only(set)
            }
        };

        let leader_serves = self.boolean("leaderServes")?;
        let tcp_keep_alive = self.boolean("tcpKeepAlive")?;
        let client_tcp_keep_alive = self.boolean("clientTcpKeepAlive")?;
        let force_sync = self.boolean("forceSync")?;
        let skip_acl = self.boolean("skipACL")?;
        let admin_enable_server = self.boolean("admin.enableServer")?;
        let admin_port_unification = self.boolean("admin.portUnification")?;
        let admin_force_https = self.boolean("admin.forceHttps")?;
        for key in [
            "digest.enabled",
            "closeSessionTxn.enabled",
            "emulate353TTLNodes",
            "enforceQuota",
            "enableEagerACLCheck",
            "snapshot.trust.empty",
        ] {
            self.boolean(key)?;
        }
        let relay_config_file = self.path_opt("relay.configFile");
        let oracle = self.path_opt("oraclePath");
        if oracle.is_some() && voters != 2 {
            let s = self.setting("oraclePath");
            self.warn(
                s.source,
                Some("oraclePath"),
                "an oracle only matters with exactly two voters",
            );
        }

        let cfg = ZooCfg {
            config_path: self.path.clone(),
            data_dir,
            data_log_dir,
            tick_time_ms,
            init_limit_ticks,
            sync_limit_ticks,
            connect_to_learner_master_limit_ticks: self.int("connectToLearnerMasterLimit")?,
            client_address,
            secure_client_address,
            client_port_listen_backlog: self.int("clientPortListenBacklog")?,
            max_client_cnxns: self.int("maxClientCnxns")?,
            min_session_timeout_ms,
            max_session_timeout_ms,
            election_alg,
            quorum_listen_on_all_ips,
            peer_type,
            sync_enabled,
            observer_master_port,
            dynamic_config_file,
            standalone_enabled,
            reconfig_enabled,
            local_sessions_enabled,
            local_sessions_upgrading_enabled,
            snap_retain_count,
            purge_interval_hours,
            multi_address_enabled,
            leader_serves,
            cnx_timeout_ms: self.int("cnxTimeout")?,
            quorum_cnxn_timeout_ms: self.int("quorumCnxnTimeoutMs")?,
            election_port_bind_retry: self.int("electionPortBindRetry")?,
            tcp_keep_alive,
            client_tcp_keep_alive,
            observer_reconnect_delay_ms: self.int("observer.reconnectDelayMs")?,
            observer_election_delay_ms: self.int("observer.election.DelayMs")?,
            snap_count: self.int("snapCount")?,
            pre_alloc_size_kb: self.int("preAllocSize")?,
            force_sync,
            jute_max_buffer_bytes: self.int("jute.maxbuffer")?,
            global_outstanding_limit: self.int("globalOutstandingLimit")?,
            extended_types_enabled,
            skip_acl,
            four_letter_words,
            admin_enable_server,
            admin_server_address: self.string("admin.serverAddress"),
            admin_server_port: self.int("admin.serverPort")?,
            admin_idle_timeout_ms: self.int("admin.idleTimeout")?,
            admin_command_url: self.string("admin.commandURL"),
            admin_port_unification,
            admin_force_https,
            max_concurrent_snap_syncs: self.positive_int("leader.maxConcurrentSnapSyncs")?,
            max_concurrent_diff_syncs: self.positive_int("leader.maxConcurrentDiffSyncs")?,
            metrics_provider_class_name: self.string("metricsProvider.className"),
            metrics_provider_http_port: self.int("metricsProvider.httpPort")?,
            metrics_provider: self
                .metrics_extra
                .iter()
                .map(|(k, s)| (k.clone(), s.value.clone()))
                .collect(),
            super_digest: self.opt_string("DigestAuthenticationProvider.superDigest"),
            relay_config_file,
            membership,
            server_sources,
            last_seen,
            my_id,
            mode,
            resolved: self.resolved(),
            unknown: self.unknown.clone(),
            observer_master_ports: self.observer_master_ports.clone(),
            warnings: self.warnings.clone(),
        };
        Ok(cfg)
    }

    /// Replaces the displayed value of a key whose default is derived from other keys.
    fn set_display(&mut self, key: &'static str, value: String) {
        if let Some(s) = self.settings.get_mut(key) {
            s.value = value;
        }
    }

    fn resolved(&self) -> Vec<Resolved> {
        let mut out: Vec<Resolved> = keys::KEYS
            .iter()
            .map(|d| {
                let s = self.setting(d.name);
                Resolved {
                    key: d.name.to_string(),
                    value: s.value,
                    source: s.source,
                }
            })
            .collect();
        for (k, s) in &self.metrics_extra {
            out.push(Resolved {
                key: format!("metricsProvider.{k}"),
                value: s.value.clone(),
                source: s.source.clone(),
            });
        }
        out
    }

    fn read_my_id(&mut self, data_dir: &Path) -> Result<Option<u64>, ConfError> {
        let path = data_dir.join("myid");
        if !path.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(&path).map_err(|source| ConfError::Io {
            path: path.clone(),
            source,
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let first = text.lines().next().unwrap_or("");
        let trimmed = first.trim();
        let id: u64 = trimmed.parse().map_err(|_| ConfError::Value {
            path: path.clone(),
            line: 1,
            key: "myid".into(),
            message: format!("expected a server id (a non-negative integer), found {first:?}"),
        })?;
        if trimmed != first {
            self.warn(
                Source::File { path, line: 1 },
                Some("myid"),
                "blanks around the id: outpost trims them, but Apache ZooKeeper would reject this file",
            );
        }
        Ok(Some(id))
    }
}

/// The version encoded in a dynamic file's name: the hex suffix after the last `.` (0 when not hex),
/// as `QuorumPeerConfig.getVersionFromFilename`.
pub fn version_from_filename(path: &Path) -> u64 {
    let name = path.to_string_lossy();
    match name.rfind('.') {
        Some(i) => u64::from_str_radix(&name[i + 1..], 16).unwrap_or(0),
        None => 0,
    }
}

/// Parses `server.N`, `group.G`, `weight.N` and `version` entries into a membership, as `QuorumMaj` /
/// `QuorumHierarchical` do, with outpost's stricter checks (duplicates and unknown ids are errors).
/// `version` overrides any `version=` entry (it comes from the dynamic file's name).
pub fn parse_membership(
    entries: &[Entry],
    file: &Path,
    source_of: &dyn Fn(u32) -> Source,
    multi_address_enabled: bool,
    version: Option<u64>,
) -> Result<(QuorumConfig, BTreeMap<u64, Source>), ConfError> {
    let mut servers: BTreeMap<u64, ServerSpec> = BTreeMap::new();
    let mut sources: BTreeMap<u64, Source> = BTreeMap::new();
    let mut groups: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut group_lines: BTreeMap<u64, u32> = BTreeMap::new();
    let mut server_group: BTreeMap<u64, u64> = BTreeMap::new();
    let mut weights: BTreeMap<u64, u64> = BTreeMap::new();
    let mut weight_lines: BTreeMap<u64, u32> = BTreeMap::new();
    let mut hierarchical = false;
    let mut file_version = 0u64;
    let err = |line: u32, key: &str, message: String| ConfError::Value {
        path: file.to_path_buf(),
        line,
        key: key.to_string(),
        message,
    };
    let id_after_dot = |key: &str, line: u32| -> Result<u64, ConfError> {
        let suffix = key.find('.').map(|i| &key[i + 1..]).unwrap_or("");
        suffix.parse::<u64>().map_err(|_| {
            err(
                line,
                key,
                format!("expected a numeric id after the dot, found {suffix:?}"),
            )
        })
    };
    for e in entries {
        let key = e.key.trim();
        if key.starts_with("server.") {
            let sid = id_after_dot(key, e.line)?;
            if let Some(prev) = sources.get(&sid) {
                let prev_line = prev.location().map(|(_, l)| l).unwrap_or(0);
                return Err(err(
                    e.line,
                    key,
                    format!("server {sid} is listed twice (also on line {prev_line})"),
                ));
            }
            // The value is not trimmed: ZooKeeper hands it to QuorumServer as loaded.
            let spec = ServerSpec::parse(sid, &e.value, multi_address_enabled)
                .map_err(|m| err(e.line, key, m))?;
            servers.insert(sid, spec);
            sources.insert(sid, source_of(e.line));
        } else if key.starts_with("group") {
            hierarchical = true;
            let gid = id_after_dot(key, e.line)?;
            if let Some(prev) = group_lines.get(&gid) {
                return Err(err(
                    e.line,
                    key,
                    format!("group {gid} is defined twice (also on line {prev})"),
                ));
            }
            group_lines.insert(gid, e.line);
            let mut members = BTreeSet::new();
            for part in e.value.trim().split(':') {
                let sid: u64 = part.trim().parse().map_err(|_| {
                    err(
                        e.line,
                        key,
                        format!("expected server ids separated by ':', found {part:?}"),
                    )
                })?;
                if let Some(other) = server_group.insert(sid, gid) {
                    return Err(err(
                        e.line,
                        key,
                        format!("server {sid} is in two groups ({other} and {gid})"),
                    ));
                }
                members.insert(sid);
            }
            groups.insert(gid, members);
        } else if key.starts_with("weight") {
            hierarchical = true;
            let sid = id_after_dot(key, e.line)?;
            let w: u64 = e.value.trim().parse().map_err(|_| {
                err(
                    e.line,
                    key,
                    format!(
                        "expected a non-negative integer weight, found {:?}",
                        e.value.trim()
                    ),
                )
            })?;
            weights.insert(sid, w);
            weight_lines.insert(sid, e.line);
        } else if key == "version" {
            file_version = u64::from_str_radix(e.value.trim(), 16).map_err(|_| {
                err(
                    e.line,
                    key,
                    format!("expected a hex version, found {:?}", e.value.trim()),
                )
            })?;
        }
    }
    let quorum = if hierarchical {
        for (sid, line) in &weight_lines {
            if !servers.contains_key(sid) {
                return Err(err(
                    *line,
                    &format!("weight.{sid}"),
                    format!("server {sid} has no server line"),
                ));
            }
        }
        for (gid, members) in &groups {
            let line = group_lines.get(gid).copied().unwrap_or(0);
            for sid in members {
                match servers.get(sid) {
                    None => {
                        return Err(err(
                            line,
                            &format!("group.{gid}"),
                            format!("server {sid} has no server line"),
                        ))
                    }
                    Some(s) if s.role == Role::Observer => {
                        return Err(err(
                            line,
                            &format!("group.{gid}"),
                            format!("server {sid} is an observer; groups hold voters only"),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
        for s in servers.values() {
            if s.role == Role::Participant {
                if !server_group.contains_key(&s.id) {
                    let src = sources.get(&s.id).cloned().unwrap_or(Source::Default);
                    let line = src.location().map(|(_, l)| l).unwrap_or(0);
                    return Err(err(line, &format!("server.{}", s.id), format!("server {} is not in any group (every voter must be in one with group.N)", s.id)));
                }
                weights.entry(s.id).or_insert(1);
            }
        }
        QuorumSpec::Hierarchical { groups, weights }
    } else {
        QuorumSpec::Majority {
            voters: servers
                .values()
                .filter(|s| s.role == Role::Participant)
                .map(|s| s.id)
                .collect(),
        }
    };
    Ok((
        QuorumConfig {
            servers,
            quorum,
            version: version.unwrap_or(file_version),
        },
        sources,
    ))
}

/// Two servers (or one server twice) using the same host:port. Client addresses on the wildcard
/// address count as being on the server's own (first) quorum host.
fn check_duplicate_addresses(
    membership: &QuorumConfig,
    sources: &BTreeMap<u64, Source>,
    file: &Path,
) -> Result<(), ConfError> {
    let mut seen: BTreeMap<(String, u16), (u64, &'static str)> = BTreeMap::new();
    for s in membership.servers.values() {
        let mut uses: Vec<(String, u16, &'static str)> = Vec::new();
        for a in &s.addrs {
            uses.push((a.host.clone(), a.quorum_port, "quorum port"));
            uses.push((a.host.clone(), a.election_port, "election port"));
        }
        if let Some(c) = &s.client {
            let host = if c.is_wildcard() {
                s.addrs.first().map(|a| a.host.clone()).unwrap_or_default()
            } else {
                c.host.clone()
            };
            uses.push((host, c.port, "client port"));
        }
        for (host, port, what) in uses {
            // Compare IP literals in one spelling (`::1` and `0:0:0:0:0:0:0:1` are the same address).
            let canonical = crate::server::java_host_string(&host);
            if let Some((other, other_what)) = seen.insert((canonical, port), (s.id, what)) {
                let src = sources.get(&s.id).cloned().unwrap_or(Source::Default);
                let hp = HostPort { host, port };
                return Err(ConfError::at(
                    &src,
                    file,
                    &format!("server.{}", s.id),
                    format!("{what} {hp} is already the {other_what} of server.{other}"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Integer.decode` forms: hex with 0x and #, octal with a leading 0, signs.
    #[test]
    fn decode_forms() {
        assert_eq!(decode_int("0xfffff"), Some(0xfffff));
        assert_eq!(decode_int("#10"), Some(16));
        assert_eq!(decode_int("010"), Some(8));
        assert_eq!(decode_int("-5"), Some(-5));
        assert_eq!(decode_int("0"), Some(0));
        assert_eq!(decode_int("abc"), None);
        assert_eq!(decode_int("0x"), None);
    }

    /// The version comes from the hex suffix of the dynamic file's name, 0 when it is not hex.
    #[test]
    fn version_suffix() {
        assert_eq!(
            version_from_filename(Path::new("/a/zoo.cfg.dynamic.100000000")),
            0x100000000
        );
        assert_eq!(version_from_filename(Path::new("/a/zoo.cfg.dynamic")), 0);
        assert_eq!(version_from_filename(Path::new("zoo.cfg.dynamic.1f")), 0x1f);
    }
}
