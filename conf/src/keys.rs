//! The table of zoo.cfg keys outpost knows: ZooKeeper 3.8's default for each, how ZooKeeper parses the
//! value (strict or lenient booleans, decimal or `Integer.decode` integers), and whether outpost acts on
//! it yet. `docs/configuration.md` is written from this table.

/// How ZooKeeper parses an integer value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntSyntax {
    /// `Integer.parseInt` / `Long.parseLong`: decimal with an optional sign.
    Decimal,
    /// `Integer.getInteger` / `Long.getLong` (`Integer.decode`): also `0x`/`#` hex and leading-0 octal.
    Decode,
}

/// How ZooKeeper parses a boolean value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoolStyle {
    /// `QuorumPeerConfig.parseBoolean`: `true`/`false` in any case, anything else is an error.
    Strict,
    /// `Boolean.getBoolean`/`parseBoolean`: `true` in any case is true, anything else is false.
    TrueIgnoreCase,
    /// `!value.equals("no")`: everything but exactly `no` is true (leaderServes, forceSync).
    NotNo,
    /// `value.equals("yes")`: only exactly `yes` is true (skipACL).
    IsYes,
    /// `!"false".equals(value)`: everything but exactly `false` is true (admin.enableServer).
    NotFalse,
}

/// The type of a key's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An integer.
    Int(IntSyntax),
    /// A boolean.
    Bool(BoolStyle),
    /// Free text (trimmed).
    Str,
    /// A file-system path.
    Path,
}

/// Whether outpost acts on a key today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// outpost acts on it.
    Honoured,
    /// Parsed, validated and typed, but nothing in outpost uses it yet.
    Accepted,
}

impl Status {
    /// The words used in docs and `conf check`.
    pub fn describe(self) -> &'static str {
        match self {
            Status::Honoured => "honoured",
            Status::Accepted => "accepted, not yet used",
        }
    }
}

/// One known key.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    /// The key as written in zoo.cfg.
    pub name: &'static str,
    /// ZooKeeper's default as text ("" = unset).
    pub default: &'static str,
    /// Value type and parsing rule.
    pub kind: Kind,
    /// Whether outpost acts on it.
    pub status: Status,
    /// What it means.
    pub meaning: &'static str,
}

use BoolStyle::*;
use IntSyntax::*;
use Kind::*;
use Status::*;

const fn k(
    name: &'static str,
    default: &'static str,
    kind: Kind,
    status: Status,
    meaning: &'static str,
) -> KeyDef {
    KeyDef {
        name,
        default,
        kind,
        status,
        meaning,
    }
}

/// Every key outpost knows, in the order `conf check` prints them.
pub const KEYS: &[KeyDef] = &[
    k(
        "dataDir",
        "",
        Path,
        Honoured,
        "snapshots, myid and epoch files (required)",
    ),
    k(
        "dataLogDir",
        "",
        Path,
        Honoured,
        "transaction logs (default: dataDir)",
    ),
    k(
        "tickTime",
        "3000",
        Int(Decimal),
        Honoured,
        "basic time unit in ms",
    ),
    k(
        "initLimit",
        "0",
        Int(Decimal),
        Honoured,
        "ticks for a learner to connect and sync (required when distributed)",
    ),
    k(
        "syncLimit",
        "0",
        Int(Decimal),
        Honoured,
        "ticks a learner may lag (required when distributed)",
    ),
    k(
        "connectToLearnerMasterLimit",
        "0",
        Int(Decimal),
        Honoured,
        "ticks for the TCP connect to the leader (0 = initLimit)",
    ),
    k("clientPort", "", Int(Decimal), Honoured, "client port"),
    k(
        "clientPortAddress",
        "",
        Str,
        Honoured,
        "bind address of clientPort (default: all addresses)",
    ),
    k(
        "secureClientPort",
        "",
        Int(Decimal),
        Accepted,
        "TLS client port",
    ),
    k(
        "secureClientPortAddress",
        "",
        Str,
        Accepted,
        "bind address of secureClientPort",
    ),
    k(
        "clientPortListenBacklog",
        "-1",
        Int(Decimal),
        Accepted,
        "listen backlog (-1 = OS default)",
    ),
    k(
        "maxClientCnxns",
        "60",
        Int(Decimal),
        Honoured,
        "connections per client IP (0 = unlimited)",
    ),
    k(
        "minSessionTimeout",
        "-1",
        Int(Decimal),
        Honoured,
        "lower session timeout clamp in ms (default 2 x tickTime)",
    ),
    k(
        "maxSessionTimeout",
        "-1",
        Int(Decimal),
        Honoured,
        "upper session timeout clamp in ms (default 20 x tickTime)",
    ),
    k(
        "electionAlg",
        "3",
        Int(Decimal),
        Honoured,
        "election algorithm; only 3 is valid",
    ),
    k(
        "quorumListenOnAllIPs",
        "false",
        Bool(Strict),
        Honoured,
        "bind quorum and election ports on all addresses",
    ),
    k(
        "peerType",
        "participant",
        Str,
        Honoured,
        "participant or observer (this server's server line wins)",
    ),
    k(
        "syncEnabled",
        "true",
        Bool(Strict),
        Honoured,
        "observers log and snapshot too",
    ),
    k(
        "observerMasterPort",
        "",
        Int(Decimal),
        Honoured,
        "port on which followers serve observers",
    ),
    k(
        "dynamicConfigFile",
        "",
        Path,
        Honoured,
        "file holding server, group and weight lines",
    ),
    k(
        "standaloneEnabled",
        "true",
        Bool(Strict),
        Honoured,
        "a single voter runs standalone",
    ),
    k(
        "reconfigEnabled",
        "false",
        Bool(Strict),
        Honoured,
        "allow the reconfig operation and config versioning",
    ),
    k(
        "localSessionsEnabled",
        "false",
        Bool(Strict),
        Honoured,
        "new sessions live only on the server the client connected to (ensembles only)",
    ),
    k(
        "localSessionsUpgradingEnabled",
        "false",
        Bool(Strict),
        Honoured,
        "local sessions upgrade to global when creating ephemerals",
    ),
    k(
        "autopurge.snapRetainCount",
        "3",
        Int(Decimal),
        Honoured,
        "snapshots kept by the purger (minimum 3)",
    ),
    k(
        "autopurge.purgeInterval",
        "0",
        Int(Decimal),
        Honoured,
        "purge interval in hours (0 = off)",
    ),
    k(
        "sslQuorum",
        "false",
        Bool(Strict),
        Accepted,
        "TLS between servers",
    ),
    k(
        "portUnification",
        "false",
        Bool(Strict),
        Accepted,
        "TLS and plaintext on the quorum ports",
    ),
    k(
        "sslQuorumReloadCertFiles",
        "false",
        Bool(Strict),
        Accepted,
        "reload quorum TLS certificates",
    ),
    k(
        "quorum.auth.enableSasl",
        "false",
        Bool(Strict),
        Accepted,
        "SASL between servers",
    ),
    k(
        "quorum.auth.serverRequireSasl",
        "false",
        Bool(Strict),
        Accepted,
        "require SASL from learners",
    ),
    k(
        "quorum.auth.learnerRequireSasl",
        "false",
        Bool(Strict),
        Accepted,
        "learners use SASL",
    ),
    k(
        "quorum.auth.learner.saslLoginContext",
        "QuorumLearner",
        Str,
        Accepted,
        "JAAS section for learners",
    ),
    k(
        "quorum.auth.server.saslLoginContext",
        "QuorumServer",
        Str,
        Accepted,
        "JAAS section for servers",
    ),
    k(
        "quorum.auth.kerberos.servicePrincipal",
        "zkquorum/localhost",
        Str,
        Accepted,
        "Kerberos principal",
    ),
    k(
        "quorum.cnxn.threads.size",
        "20",
        Int(Decimal),
        Accepted,
        "election connection-setup threads",
    ),
    k(
        "jvm.pause.monitor",
        "false",
        Bool(Strict),
        Accepted,
        "JVM pause monitor (no JVM in outpost)",
    ),
    k(
        "jvm.pause.sleep.time.ms",
        "500",
        Int(Decimal),
        Accepted,
        "JVM pause monitor interval",
    ),
    k(
        "jvm.pause.warn-threshold.ms",
        "10000",
        Int(Decimal),
        Accepted,
        "JVM pause warn threshold",
    ),
    k(
        "jvm.pause.info-threshold.ms",
        "1000",
        Int(Decimal),
        Accepted,
        "JVM pause info threshold",
    ),
    k(
        "metricsProvider.className",
        "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
        Str,
        Honoured,
        "metrics provider (the Prometheus one turns the exporter on)",
    ),
    k(
        "metricsProvider.httpPort",
        "7000",
        Int(Decimal),
        Honoured,
        "Prometheus metrics port",
    ),
    k(
        "multiAddress.enabled",
        "false",
        Bool(Strict),
        Honoured,
        "several addresses per server (a|b)",
    ),
    k(
        "multiAddress.reachabilityCheckEnabled",
        "true",
        Bool(Strict),
        Accepted,
        "probe multi-addresses",
    ),
    k(
        "multiAddress.reachabilityCheckTimeoutMs",
        "1000",
        Int(Decimal),
        Accepted,
        "multi-address probe timeout",
    ),
    k("oraclePath", "", Path, Accepted, "two-voter oracle file"),
    // Keys ZooKeeper turns into `zookeeper.<key>` system properties.
    k(
        "leaderServes",
        "yes",
        Bool(NotNo),
        Honoured,
        "the leader accepts client connections (anything but \"no\")",
    ),
    k(
        "cnxTimeout",
        "5000",
        Int(Decimal),
        Honoured,
        "election connect timeout in ms",
    ),
    k(
        "quorumCnxnTimeoutMs",
        "-1",
        Int(Decode),
        Honoured,
        "election handshake read timeout in ms (-1 = syncLimit x tickTime)",
    ),
    k(
        "electionPortBindRetry",
        "3",
        Int(Decode),
        Honoured,
        "election port bind retries (0 = forever)",
    ),
    k(
        "tcpKeepAlive",
        "false",
        Bool(TrueIgnoreCase),
        Honoured,
        "keepalive on election sockets",
    ),
    k(
        "clientTcpKeepAlive",
        "false",
        Bool(TrueIgnoreCase),
        Honoured,
        "keepalive on client sockets",
    ),
    k(
        "observer.reconnectDelayMs",
        "0",
        Int(Decode),
        Honoured,
        "observer reconnect delay in ms",
    ),
    k(
        "observer.election.DelayMs",
        "200",
        Int(Decode),
        Honoured,
        "observer delay before election in ms",
    ),
    k(
        "observerMaster.sizeLimit",
        "33554432",
        Int(Decode),
        Accepted,
        "bytes of committed packets an observer master keeps",
    ),
    k(
        "snapCount",
        "100000",
        Int(Decode),
        Honoured,
        "txns between snapshots",
    ),
    k(
        "snapSizeLimitInKb",
        "4194304",
        Int(Decode),
        Accepted,
        "txn-log KiB between snapshots",
    ),
    k(
        "txnLogSizeLimitInKb",
        "-1",
        Int(Decode),
        Accepted,
        "roll the txn log when larger (-1 = off)",
    ),
    k(
        "commitLogCount",
        "500",
        Int(Decode),
        Honoured,
        "committed proposals kept for DIFF sync",
    ),
    k(
        "snapshotSizeFactor",
        "0.33",
        Str,
        Honoured,
        "DIFF from the log while log < factor x snapshot",
    ),
    k(
        "preAllocSize",
        "65536",
        Int(Decimal),
        Honoured,
        "txn log preallocation in KiB",
    ),
    k(
        "forceSync",
        "yes",
        Bool(NotNo),
        Honoured,
        "fsync the txn log (anything but \"no\")",
    ),
    k(
        "fsync.warningthresholdms",
        "1000",
        Int(Decode),
        Accepted,
        "slow fsync warning in ms",
    ),
    k(
        "jute.maxbuffer",
        "1048575",
        Int(Decode),
        Honoured,
        "largest packet in bytes",
    ),
    k(
        "globalOutstandingLimit",
        "1000",
        Int(Decode),
        Accepted,
        "requests in flight before reads from clients pause",
    ),
    k(
        "maxCnxns",
        "0",
        Int(Decode),
        Accepted,
        "total client connections (0 = unlimited)",
    ),
    k(
        "maxResponseCacheSize",
        "400",
        Int(Decode),
        Accepted,
        "cached getData responses",
    ),
    k(
        "maxGetChildrenResponseCacheSize",
        "400",
        Int(Decode),
        Accepted,
        "cached getChildren responses",
    ),
    k(
        "digest.enabled",
        "true",
        Bool(TrueIgnoreCase),
        Accepted,
        "tree digests",
    ),
    k(
        "closeSessionTxn.enabled",
        "true",
        Bool(TrueIgnoreCase),
        Accepted,
        "closeSession txns carry the ephemeral list",
    ),
    k(
        "extendedTypesEnabled",
        "false",
        Bool(TrueIgnoreCase),
        Honoured,
        "TTL nodes (myid must be <= 254)",
    ),
    k(
        "emulate353TTLNodes",
        "false",
        Bool(TrueIgnoreCase),
        Accepted,
        "3.5.3 TTL encoding",
    ),
    k(
        "enforceQuota",
        "false",
        Bool(TrueIgnoreCase),
        Accepted,
        "reject writes over hard quota",
    ),
    k(
        "skipACL",
        "no",
        Bool(IsYes),
        Honoured,
        "skip ACL checks (only exactly \"yes\")",
    ),
    k(
        "enableEagerACLCheck",
        "false",
        Bool(TrueIgnoreCase),
        Accepted,
        "check ACLs before forwarding writes",
    ),
    k(
        "4lw.commands.whitelist",
        "srvr",
        Str,
        Honoured,
        "enabled four-letter words, comma separated (* = all; srvr always)",
    ),
    k(
        "admin.enableServer",
        "true",
        Bool(NotFalse),
        Honoured,
        "AdminServer on (anything but \"false\")",
    ),
    k(
        "admin.serverAddress",
        "0.0.0.0",
        Str,
        Honoured,
        "AdminServer address",
    ),
    k(
        "admin.serverPort",
        "8080",
        Int(Decode),
        Honoured,
        "AdminServer port",
    ),
    k(
        "admin.idleTimeout",
        "30000",
        Int(Decode),
        Accepted,
        "AdminServer idle timeout in ms",
    ),
    k(
        "admin.commandURL",
        "/commands",
        Str,
        Honoured,
        "AdminServer command URL",
    ),
    k(
        "admin.httpVersion",
        "11",
        Int(Decode),
        Accepted,
        "AdminServer HTTP version",
    ),
    k(
        "admin.forceHttps",
        "false",
        Bool(TrueIgnoreCase),
        Accepted,
        "AdminServer HTTPS only",
    ),
    k(
        "admin.portUnification",
        "false",
        Bool(TrueIgnoreCase),
        Accepted,
        "AdminServer HTTP and HTTPS on one port (only \"true\" enables)",
    ),
    k(
        "leader.maxConcurrentSnapSyncs",
        "10",
        Int(Decode),
        Honoured,
        "concurrent SNAP syncs a leader or observer master serves (observers beyond it are refused)",
    ),
    k(
        "leader.maxConcurrentDiffSyncs",
        "100",
        Int(Decode),
        Honoured,
        "concurrent DIFF/TRUNC syncs a leader or observer master serves (observers beyond it are refused)",
    ),
    k(
        "leader.maxTimeToWaitForEpoch",
        "-1",
        Int(Decode),
        Accepted,
        "leader gives up waiting for an epoch quorum after ms",
    ),
    k(
        "leaderConnectDelayDuringRetryMs",
        "100",
        Int(Decode),
        Accepted,
        "pause between leader connect attempts in ms",
    ),
    k(
        "fastleader.minNotificationInterval",
        "200",
        Int(Decode),
        Accepted,
        "election backoff start in ms",
    ),
    k(
        "fastleader.maxNotificationInterval",
        "60000",
        Int(Decode),
        Accepted,
        "election backoff cap in ms",
    ),
    k(
        "snapshot.compression.method",
        "",
        Str,
        Accepted,
        "gz or snappy snapshots",
    ),
    k(
        "snapshot.trust.empty",
        "false",
        Bool(TrueIgnoreCase),
        Accepted,
        "allow logs without a snapshot",
    ),
    k(
        "DigestAuthenticationProvider.superDigest",
        "",
        Str,
        Honoured,
        "super user digest (user:base64sha1)",
    ),
    k(
        "relay.configFile",
        "",
        Path,
        Honoured,
        "outpost: the relay's TOML file",
    ),
    k(
        "outpost.snapSyncChunkBytes",
        "262144",
        Int(Decode),
        Honoured,
        "outpost: bytes per chunk of a streamed SNAP sync (512 to 67108864)",
    ),
    k(
        "outpost.observerServesWhileDetached",
        "true",
        Bool(TrueIgnoreCase),
        Honoured,
        "outpost: an observer that lost its leader keeps serving reads until it syncs again",
    ),
    k(
        "outpost.election.finalizeEarly",
        "true",
        Bool(TrueIgnoreCase),
        Honoured,
        "outpost: end an election's 200 ms finalize wait once every voter agreed or is unreachable",
    ),
];

/// Keys outpost accepts under another name, with the warning it prints: ZooKeeper itself would not
/// read them from zoo.cfg under this name.
pub const ALIASES: &[(&str, &str, &str)] = &[
    (
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "DigestAuthenticationProvider.superDigest",
        "ZooKeeper reads this from zoo.cfg as zookeeper.zookeeper.…, i.e. ignores it (it is a -D property); \
         outpost accepts it as DigestAuthenticationProvider.superDigest",
    ),
    (
        "maxConcurrentSnapSyncs",
        "leader.maxConcurrentSnapSyncs",
        "ZooKeeper only reads leader.maxConcurrentSnapSyncs from zoo.cfg; outpost accepts this spelling too",
    ),
    (
        "maxConcurrentDiffSyncs",
        "leader.maxConcurrentDiffSyncs",
        "ZooKeeper only reads leader.maxConcurrentDiffSyncs from zoo.cfg; outpost accepts this spelling too",
    ),
];

/// The definition of `name`, if known.
pub fn lookup(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|d| d.name == name)
}
