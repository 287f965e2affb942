//! `server.N` lines: parsing as `QuorumPeer.QuorumServer` does in ZooKeeper 3.8, and rendering back in
//! the exact `QuorumServer.toString` form used in `/zookeeper/config` and election notifications.

use std::fmt;

/// A member's role in the ensemble (`:participant` / `:observer`, or `peerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// A voter.
    Participant,
    /// A non-voting learner.
    Observer,
}

impl Role {
    /// Parses a role word as ZooKeeper does: surrounding blanks ignored, case-insensitive.
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().to_ascii_lowercase().as_str() {
            "participant" => Some(Role::Participant),
            "observer" => Some(Role::Observer),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Participant => "participant",
            Role::Observer => "observer",
        })
    }
}

/// A host (name or literal, without IPv6 brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    /// Hostname, IPv4 or IPv6 literal exactly as configured (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl HostPort {
    /// True for the wildcard addresses `0.0.0.0` and `::` (any local address).
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host.as_str(), "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0")
    }
}

/// `host` with brackets when it is an IPv6 literal (`QuorumServer.delimitedHostString`).
pub fn delimited_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The host as Java's `InetSocketAddress.getHostString` prints it in the configuration text: names and
/// IPv4 literals as configured; IPv6 literals in Java's full form (`::1` → `0:0:0:0:0:0:0:1`, in
/// brackets); IPv4-mapped IPv6 literals as the IPv4 address (Java resolves them to `Inet4Address`).
pub fn java_host_string(host: &str) -> String {
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let groups: Vec<String> = v6.segments().iter().map(|g| format!("{g:x}")).collect();
                format!("[{}]", groups.join(":"))
            }
        },
        Err(_) => delimited_host(host),
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", delimited_host(&self.host), self.port)
    }
}

/// One address of a server: quorum (learner↔leader) port and election port on one host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerAddr {
    /// Host, as configured.
    pub host: String,
    /// First port: learner↔leader traffic.
    pub quorum_port: u16,
    /// Second port: leader election.
    pub election_port: u16,
}

/// One `server.N` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server id (N).
    pub id: u64,
    /// Its addresses (more than one only with `multiAddress.enabled=true`).
    pub addrs: Vec<ServerAddr>,
    /// Participant (voter) or observer.
    pub role: Role,
    /// Client address from the line (`;port` means `0.0.0.0:port`), or for this server from the static
    /// `clientPort`/`clientPortAddress` (then `client_from_static` is set).
    pub client: Option<HostPort>,
    /// True when `client` came from the static `clientPort` (not printed in the config text).
    pub client_from_static: bool,
}

/// Java's `String.split`: trailing empty strings are removed (an empty input gives one empty string).
fn java_split(s: &str, sep: char) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// `ConfigUtils.getHostAndPort`: `[v6]:a:b` or `host:a:b` split into host and the remaining fields.
fn host_and_fields(s: &str) -> Result<Vec<String>, String> {
    if let Some(rest) = s.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return Err(format!("{s} starts with '[' but has no matching ']:'"));
        };
        let host = &rest[..close];
        let after = &rest[close + 1..];
        if after.len() == 1 {
            return Err(format!("{s} doesn't have a port after colon"));
        }
        if after.len() > 1 {
            let mut out = vec![host.to_string()];
            // Java skips the character after ']' (normally ':') without checking it.
            let fields = after.get(1..).unwrap_or("");
            out.extend(java_split(fields, ':').into_iter().map(str::to_string));
            return Ok(out);
        }
        return Ok(vec![s.replace(['[', ']'], "")]);
    }
    Ok(java_split(s, ':').into_iter().map(str::to_string).collect())
}

/// Parses a port the way `Integer.parseInt` + `InetSocketAddress` do (no blanks; 0..=65535).
fn parse_port(field: &str, what: &str) -> Result<u16, String> {
    if field != field.trim() {
        return Err(format!(
            "{what} {field:?} is not a number (ZooKeeper does not trim server lines: remove the blanks)"
        ));
    }
    let n: i64 = field
        .parse()
        .map_err(|_| format!("{what} {field:?} is not a number"))?;
    u16::try_from(n).map_err(|_| format!("{what} {n} is out of range 0..65535"))
}

const WRONG_FORMAT: &str = "does not have the form server_config or server_config;client_config \
where server_config is the pipe separated list of host:port:port or host:port:port:type \
and client_config is port or host:port";

impl ServerSpec {
    /// Parses the value of `server.<id>` (untrimmed, as ZooKeeper sees it).
    pub fn parse(id: u64, value: &str, multi_address_enabled: bool) -> Result<ServerSpec, String> {
        let server_client: Vec<&str> = java_split(value, ';');
        let server_part = server_client.first().copied().unwrap_or("");
        let server_addresses = java_split(server_part, '|');
        if server_client.len() > 2 {
            return Err(format!("{value:?} {WRONG_FORMAT}"));
        }
        let mut client = None;
        if server_client.len() == 2 {
            let fields = host_and_fields(server_client[1])?;
            if fields.len() > 2 {
                return Err(format!("{value:?} {WRONG_FORMAT}"));
            }
            let host = if fields.len() == 2 {
                fields[0].clone()
            } else {
                "0.0.0.0".to_string()
            };
            let port = parse_port(&fields[fields.len() - 1], "client port")?;
            client = Some(HostPort { host, port });
        }
        if !multi_address_enabled && server_addresses.len() > 1 {
            return Err(format!(
                "multiple addresses for server {id} but multiAddress.enabled is not true"
            ));
        }
        let mut addrs = Vec::new();
        let mut role: Option<Role> = None;
        for addr in server_addresses {
            let fields = host_and_fields(addr)?;
            if fields.len() < 3 || fields.len() > 4 {
                return Err(format!("{value:?} {WRONG_FORMAT}"));
            }
            let host = fields[0].clone();
            if host.is_empty() {
                return Err(format!("{value:?}: empty host"));
            }
            let quorum_port = parse_port(&fields[1], "quorum port")?;
            let election_port = parse_port(&fields[2], "election port")?;
            if quorum_port == election_port {
                return Err(format!(
                    "quorum and election port must be different (both {quorum_port})"
                ));
            }
            if let Some(word) = fields.get(3) {
                let r =
                    Role::parse(word).ok_or_else(|| format!("unrecognised peer type {word:?}"))?;
                if role.is_some_and(|prev| prev != r) {
                    return Err("multiple addresses should have the same role".to_string());
                }
                role = Some(r);
            }
            addrs.push(ServerAddr {
                host,
                quorum_port,
                election_port,
            });
        }
        Ok(ServerSpec {
            id,
            addrs,
            role: role.unwrap_or(Role::Participant),
            client,
            client_from_static: false,
        })
    }

    /// The `QuorumServer.toString` form: `host:qport:eport[|…]:role[;chost:cport]`.
    pub fn render(&self) -> String {
        let mut addrs = self.addrs.clone();
        // Java sorts the quorum and election address lists separately by host string; both lists hold
        // the same hosts, so sorting the pairs by host gives the same text.
        addrs.sort_by(|a, b| a.host.cmp(&b.host));
        let mut out = addrs
            .iter()
            .map(|a| {
                format!(
                    "{}:{}:{}",
                    java_host_string(&a.host),
                    a.quorum_port,
                    a.election_port
                )
            })
            .collect::<Vec<_>>()
            .join("|");
        out.push(':');
        out.push_str(&self.role.to_string());
        if let Some(client) = &self.client {
            if !self.client_from_static {
                out.push(';');
                out.push_str(&format!(
                    "{}:{}",
                    java_host_string(&client.host),
                    client.port
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 3.5+ form with role and bare client port renders with `0.0.0.0` as ZooKeeper prints it.
    #[test]
    fn modern_form_round_trip() {
        let s = ServerSpec::parse(1, "192.168.1.6:2888:3888:participant;2181", false).expect("ok");
        assert_eq!(s.role, Role::Participant);
        assert_eq!(
            s.client,
            Some(HostPort {
                host: "0.0.0.0".into(),
                port: 2181
            })
        );
        assert_eq!(s.render(), "192.168.1.6:2888:3888:participant;0.0.0.0:2181");
    }

    /// The pre-3.5 form has no client address and renders with the role always printed.
    #[test]
    fn legacy_form() {
        let s = ServerSpec::parse(2, "zk2:2888:3888", false).expect("ok");
        assert_eq!(s.client, None);
        assert_eq!(s.render(), "zk2:2888:3888:participant");
        let o = ServerSpec::parse(3, "zk3:2888:3888: Observer ", false).expect("ok");
        assert_eq!(o.role, Role::Observer);
    }

    /// IPv6 literals in brackets parse without brackets and render with them, client address too.
    #[test]
    fn ipv6() {
        let s = ServerSpec::parse(1, "[::1]:2888:3888:observer;[::1]:2181", false).expect("ok");
        assert_eq!(s.addrs[0].host, "::1");
        assert_eq!(s.client.as_ref().map(|c| c.host.as_str()), Some("::1"));
        // Java prints IPv6 literals in full, as checked against ZooKeeper 3.8.0's QuorumPeerConfig.
        assert_eq!(
            s.render(),
            "[0:0:0:0:0:0:0:1]:2888:3888:observer;[0:0:0:0:0:0:0:1]:2181"
        );
        let m =
            ServerSpec::parse(2, "[::ffff:10.0.0.1]:2888:3888;[fe80::1]:2181", false).expect("ok");
        assert_eq!(
            m.render(),
            "10.0.0.1:2888:3888:participant;[fe80:0:0:0:0:0:0:1]:2181"
        );
    }

    /// Malformed lines are rejected: too few fields, equal ports, bad role, trailing blank after a port,
    /// two `;`, several addresses without multiAddress.
    #[test]
    fn rejects_malformed() {
        for bad in [
            "h:2888",
            "h:2888:2888",
            "h:1:2:voter",
            "h:1:2;2181 ",
            "h:1:2;a;b",
            "a:1:2|b:1:2",
            "h:x:2",
            "h:1:70000",
            "[::1:1:2",
        ] {
            assert!(ServerSpec::parse(1, bad, false).is_err(), "{bad} accepted");
        }
    }

    /// With multiAddress enabled, addresses render sorted by host and joined by `|`.
    #[test]
    fn multi_address() {
        let s = ServerSpec::parse(1, "b:1:2|a:3:4", true).expect("ok");
        assert_eq!(s.render(), "a:3:4|b:1:2:participant");
    }
}
