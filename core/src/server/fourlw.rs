//! Four-letter words (`srvr`, `stat`, `mntr`, `conf`, ...): rendering a [`ServerSnapshot`] into the exact
//! text Apache ZooKeeper 3.8 prints, so `zkServer.sh status`, zktop, kazoo's `server_version()` and
//! monitoring scripts parse outpost's answers unchanged.
//!
//! Pure: the shell gathers the numbers, this module only formats them. Detection of a 4lw on a
//! connection's first bytes lives in the frame codec.

use crate::ids::SessionId;
use std::fmt::Write as _;

/// The version string in ZooKeeper's format (`<version>-<sha>, built on <date> UTC`), so tools that
/// split on `-` and `,` keep working. The ZooKeeper version we are compatible with comes first.
pub fn version_string() -> String {
    format!(
        "3.8.0-outpost-{}, built on 1970-01-01 00:00 UTC",
        env!("CARGO_PKG_VERSION")
    )
}

/// One client connection, as `cons` and `stat` list it.
#[derive(Clone, Debug, Default)]
pub struct ConnectionInfo {
    /// `ip:port` of the client.
    pub remote: String,
    /// Requests queued and not answered.
    pub queued: u64,
    /// Packets received.
    pub received: u64,
    /// Packets sent.
    pub sent: u64,
    /// Session id, once the handshake completed.
    pub session_id: Option<i64>,
    /// Name of the last operation (`GETD`, `SETD`, `PING`...).
    pub last_op: String,
    /// When the connection was established, ms since the epoch.
    pub established_ms: i64,
    /// Negotiated session timeout.
    pub timeout_ms: i32,
    /// Last cxid seen.
    pub last_cxid: i64,
    /// Last zxid answered.
    pub last_zxid: i64,
    /// Time of the last response, ms since the epoch.
    pub last_response_ms: i64,
    /// Latency of the last request.
    pub last_latency_ms: i64,
    /// Minimum latency.
    pub min_latency_ms: i64,
    /// Average latency.
    pub avg_latency_ms: f64,
    /// Maximum latency.
    pub max_latency_ms: i64,
}

/// What the four-letter words report, gathered by the shell at the moment of the request.
#[derive(Clone, Debug, Default)]
pub struct ServerSnapshot {
    /// `standalone`, `leader`, `follower`, `observer`.
    pub mode: String,
    /// True in read-only mode.
    pub read_only: bool,
    /// Minimum request latency in ms.
    pub min_latency_ms: i64,
    /// Average request latency in ms.
    pub avg_latency_ms: f64,
    /// Maximum request latency in ms.
    pub max_latency_ms: i64,
    /// Packets received.
    pub packets_received: u64,
    /// Packets sent.
    pub packets_sent: u64,
    /// Live client connections.
    pub connections: Vec<ConnectionInfo>,
    /// Requests in the pipeline.
    pub outstanding: u64,
    /// Last processed zxid.
    pub zxid: i64,
    /// Number of znodes (ZooKeeper counts the root twice; pass ZooKeeper's number).
    pub node_count: u64,
    /// Watches (`wchs`): connections with a watch in the data table (ZooKeeper's getWatchesSummary).
    pub watch_connections: u64,
    /// Watches (`wchs`): paths in the data table.
    pub watch_paths: u64,
    /// Watches (`wchs` "Total watches"): (connection, path) pairs in the data table.
    pub data_watch_total: u64,
    /// Watches (`mntr` zk_watch_count): both tables.
    pub watch_total: u64,
    /// Ephemeral nodes.
    pub ephemerals: u64,
    /// Sum of path and data sizes.
    pub approximate_data_size: u64,
    /// Global sessions.
    pub global_sessions: u64,
    /// Local sessions.
    pub local_sessions: u64,
    /// Uptime in ms.
    pub uptime_ms: u64,
    /// Bytes in the snapshot directory.
    pub data_dir_size: u64,
    /// Bytes in the txn log directory.
    pub log_dir_size: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Maximum file descriptors.
    pub max_fds: u64,
    /// Extra `mntr` lines (name without `zk_`, value) for role-specific metrics.
    pub extra_metrics: Vec<(String, String)>,
}

/// Formats a Java `double` as `Double.toString` does for the values we print (always a decimal point).
pub fn java_double(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        let s = format!("{v}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    }
}

/// `srvr`.
pub fn srvr(s: &ServerSnapshot) -> String {
    let mut out = format!("Zookeeper version: {}\n", version_string());
    if s.read_only {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    srvr_tail(s, &mut out);
    out
}

fn srvr_tail(s: &ServerSnapshot, out: &mut String) {
    let _ = writeln!(
        out,
        "Latency min/avg/max: {}/{}/{}",
        s.min_latency_ms,
        java_double(s.avg_latency_ms),
        s.max_latency_ms
    );
    let _ = writeln!(out, "Received: {}", s.packets_received);
    let _ = writeln!(out, "Sent: {}", s.packets_sent);
    let _ = writeln!(out, "Connections: {}", s.connections.len());
    let _ = writeln!(out, "Outstanding: {}", s.outstanding);
    let _ = writeln!(out, "Zxid: 0x{:x}", s.zxid);
    let _ = writeln!(out, "Mode: {}", s.mode);
    let _ = writeln!(out, "Node count: {}", s.node_count);
    if s.mode == "leader" {
        out.push_str("Proposal sizes last/min/max: -1/-1/-1\n");
    }
}

/// `stat`: the version, the brief client list, then the `srvr` body.
pub fn stat(s: &ServerSnapshot) -> String {
    let mut out = format!("Zookeeper version: {}\n", version_string());
    if s.read_only {
        out.push_str("READ-ONLY mode; serving only read-only clients\n");
    }
    out.push_str("Clients:\n");
    for c in &s.connections {
        out.push_str(&connection_line(c, false));
        out.push('\n');
    }
    out.push('\n');
    srvr_tail(s, &mut out);
    out
}

/// One connection as `ServerCnxn.dumpConnectionInfo` prints it (`full` adds the session fields).
pub fn connection_line(c: &ConnectionInfo, full: bool) -> String {
    let mut line = format!(
        " /{}[1](queued={},recved={},sent={}",
        c.remote, c.queued, c.received, c.sent
    );
    if full {
        if let Some(sid) = c.session_id {
            let _ = write!(
                line,
                ",sid=0x{:x},lop={},est={},to={}",
                sid, c.last_op, c.established_ms, c.timeout_ms
            );
            // Java prints lcxid only once the connection has sent an ordinary request; lzxid is -1
            // (0xffffffffffffffff) until its first reply.
            if c.last_cxid >= 0 {
                let _ = write!(line, ",lcxid=0x{:x}", c.last_cxid);
            }
            let _ = write!(
                line,
                ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                c.last_zxid,
                c.last_response_ms,
                c.last_latency_ms,
                c.min_latency_ms,
                c.avg_latency_ms.round() as i64,
                c.max_latency_ms
            );
        }
    }
    line.push(')');
    line
}

/// `cons`: one full line per connection, then a blank line.
pub fn cons(s: &ServerSnapshot) -> String {
    let mut out = String::new();
    for c in &s.connections {
        out.push_str(&connection_line(c, true));
        out.push('\n');
    }
    out.push('\n');
    out
}

/// `mntr`: `zk_<key>\t<value>` lines; the head keys monitoring tools read, in ZooKeeper's order.
pub fn mntr(s: &ServerSnapshot) -> String {
    let mut lines: Vec<(String, String)> = vec![
        ("version".into(), version_string()),
        ("server_state".into(), s.mode.clone()),
        ("avg_latency".into(), java_double(s.avg_latency_ms)),
        ("max_latency".into(), s.max_latency_ms.to_string()),
        ("min_latency".into(), s.min_latency_ms.to_string()),
        ("packets_received".into(), s.packets_received.to_string()),
        ("packets_sent".into(), s.packets_sent.to_string()),
        (
            "num_alive_connections".into(),
            s.connections.len().to_string(),
        ),
        ("outstanding_requests".into(), s.outstanding.to_string()),
        ("uptime".into(), s.uptime_ms.to_string()),
        ("znode_count".into(), s.node_count.to_string()),
        ("watch_count".into(), s.watch_total.to_string()),
        ("ephemerals_count".into(), s.ephemerals.to_string()),
        (
            "approximate_data_size".into(),
            s.approximate_data_size.to_string(),
        ),
        ("global_sessions".into(), s.global_sessions.to_string()),
        ("local_sessions".into(), s.local_sessions.to_string()),
        ("open_file_descriptor_count".into(), s.open_fds.to_string()),
        ("max_file_descriptor_count".into(), s.max_fds.to_string()),
        ("connection_drop_probability".into(), "0.0".into()),
        ("auth_failed_count".into(), "0".into()),
    ];
    lines.extend(s.extra_metrics.iter().cloned());
    let mut out = String::new();
    for (k, v) in lines {
        let _ = writeln!(out, "zk_{k}\t{v}");
    }
    out
}

/// `wchs`.
pub fn wchs(s: &ServerSnapshot) -> String {
    format!(
        "{} connections watching {} paths\nTotal watches:{}\n",
        s.watch_connections, s.watch_paths, s.data_watch_total
    )
}

/// `dirs`.
pub fn dirs(s: &ServerSnapshot) -> String {
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        s.data_dir_size, s.log_dir_size
    )
}

/// `isro`: `ro` or `rw`, no newline.
pub fn isro(s: &ServerSnapshot) -> String {
    if s.read_only { "ro" } else { "rw" }.to_string()
}

/// `envi`: ZooKeeper's keys with this process's values; `java.*` keys report what outpost has instead.
pub fn envi(host_name: &str, user_dir: &str) -> String {
    let mut out = String::from("Environment:\n");
    let os = std::env::consts::OS;
    let arch = std::env::consts::ARCH;
    let pairs = [
        ("zookeeper.version", version_string()),
        ("host.name", host_name.to_string()),
        ("java.version", "n/a (outpost is not a JVM)".to_string()),
        ("java.vendor", "n/a".to_string()),
        ("java.home", "n/a".to_string()),
        ("java.class.path", "n/a".to_string()),
        ("java.library.path", "n/a".to_string()),
        ("java.io.tmpdir", "/tmp".to_string()),
        ("java.compiler", "<NA>".to_string()),
        ("os.name", os.to_string()),
        ("os.arch", arch.to_string()),
        ("os.version", "n/a".to_string()),
        ("user.name", "n/a".to_string()),
        ("user.home", "n/a".to_string()),
        ("user.dir", user_dir.to_string()),
        ("os.memory.free", "n/a".to_string()),
        ("os.memory.max", "n/a".to_string()),
        ("os.memory.total", "n/a".to_string()),
    ];
    for (k, v) in pairs {
        let _ = writeln!(out, "{k}={v}");
    }
    out
}

/// The reply for a known word that the whitelist does not allow.
pub fn not_whitelisted(word: &str) -> String {
    format!("{word} is not executed because it is not in the whitelist.\n")
}

/// `java.util.Date.toString()` in UTC: `Tue Nov 24 14:35:31 UTC 2026`.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
    const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        WD[weekday as usize],
        MON[(month - 1) as usize],
        day,
        h,
        m,
        s,
        year
    )
}

/// `ExpiryQueue.dump` after its caller's prefix (`Session `, `Local Session `): `Sets (buckets)/(sessions):`,
/// then per bucket, soonest first, its size, its expiry time as `java.util.Date` prints it (here
/// always UTC) and its sessions. ZooKeeper can list buckets left empty by touches until they are
/// due; outpost drops empty buckets at once, so its counts can be lower.
pub fn expiry_sets(sets: &[(i64, Vec<SessionId>)]) -> String {
    let total: usize = sets.iter().map(|(_, s)| s.len()).sum();
    let mut out = format!("Sets ({})/({}):\n", sets.len(), total);
    for (at, sessions) in sets {
        let _ = writeln!(out, "{} expire at {}:", sessions.len(), java_date(*at));
        for s in sessions {
            let _ = writeln!(out, "\t0x{:x}", s.0);
        }
    }
    out
}

/// The reply of most words while the server is not serving (election in progress).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The words `4lw.commands.whitelist` enables. ZooKeeper's default is `srvr` only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Whitelist {
    /// `*`: every word.
    pub all: bool,
    /// The enabled words.
    pub words: std::collections::BTreeSet<String>,
}

impl Whitelist {
    /// Parses the key's value: a comma-separated list, `*` for all.
    pub fn parse(value: &str) -> Whitelist {
        let mut list = Whitelist::default();
        for w in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if w == "*" {
                list.all = true;
            } else {
                list.words.insert(w.to_string());
            }
        }
        list
    }

    /// True when `word` may run.
    pub fn allows(&self, word: &str) -> bool {
        self.all || self.words.contains(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dates print as `java.util.Date.toString()` does in UTC.
    #[test]
    fn java_dates() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_530_931_000), "Tue Nov 24 14:35:31 UTC 2026");
    }

    /// The expiry dump has `ExpiryQueue.dump`'s header, one line per bucket (size, date) and a tab
    /// before each session id.
    #[test]
    fn expiry_sets_match_expiry_queue_dump() {
        let sets = vec![
            (1_795_530_932_000, vec![SessionId(0x100), SessionId(0x1ab)]),
            (1_795_530_934_000, vec![SessionId(0x2)]),
        ];
        assert_eq!(
            expiry_sets(&sets),
            "Sets (2)/(3):\n2 expire at Tue Nov 24 14:35:32 UTC 2026:\n\t0x100\n\t0x1ab\n\
             1 expire at Tue Nov 24 14:35:34 UTC 2026:\n\t0x2\n"
        );
        assert_eq!(expiry_sets(&[]), "Sets (0)/(0):\n");
    }

    /// `srvr` has ZooKeeper's lines in ZooKeeper's order, including the `Mode:` line status scripts grep.
    #[test]
    fn srvr_matches_zookeeper_layout() {
        let s = ServerSnapshot {
            mode: "standalone".into(),
            zxid: 0x100000002,
            node_count: 5,
            packets_received: 3,
            packets_sent: 2,
            ..ServerSnapshot::default()
        };
        let text = srvr(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Zookeeper version: 3.8.0-"));
        assert_eq!(
            &lines[1..],
            &[
                "Latency min/avg/max: 0/0.0/0",
                "Received: 3",
                "Sent: 2",
                "Connections: 0",
                "Outstanding: 0",
                "Zxid: 0x100000002",
                "Mode: standalone",
                "Node count: 5",
            ]
        );
    }

    /// The whitelist accepts `*`, exact words, and spaces after commas, and nothing else.
    #[test]
    fn whitelist_rules() {
        assert!(Whitelist::parse("*").allows("mntr"));
        assert!(Whitelist::parse("srvr, mntr").allows("mntr"));
        assert!(!Whitelist::parse("srvr").allows("mntr"));
    }

    /// Java doubles always print a decimal point.
    #[test]
    fn java_double_format() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(1.5), "1.5");
        assert_eq!(java_double(12.0), "12.0");
    }

    /// `mntr` lines are tab separated with the `zk_` prefix.
    #[test]
    fn mntr_format() {
        let s = ServerSnapshot {
            mode: "standalone".into(),
            node_count: 5,
            ..ServerSnapshot::default()
        };
        let text = mntr(&s);
        assert!(text.contains("zk_server_state\tstandalone\n"));
        assert!(text.contains("zk_znode_count\t5\n"));
    }
}
