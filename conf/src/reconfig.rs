//! Dynamic reconfiguration as pure functions: parsing a configuration text (`/zookeeper/config`, election
//! notifications, NEWLEADER, a reconfig txn), computing the next membership from a `reconfig` request
//! the way ZooKeeper 3.8's `PrepRequestProcessor` does (incremental `joining`/`leaving` or
//! non-incremental `members`), and the difference between two memberships (for
//! `outpost reconfig --from-file`).
//!
//! The request-level checks that need the running ensemble (`reconfigEnabled`, the session, a reconfig
//! already in progress, the `-v` version, a synced quorum of the new voters, the ACL of
//! `/zookeeper/config`) live with the leader in outpost-core; this module answers "what is the new
//! configuration, or which error code refuses it".

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::Source;
use crate::properties;
use crate::quorum::{QuorumConfig, QuorumSpec};
use crate::server::{Role, ServerSpec};
use crate::zoocfg::parse_membership;

/// Why a reconfig request was refused while computing the new configuration. Each variant is the
/// ZooKeeper error code the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconfigError {
    /// `KeeperException.BadArgumentsException` (BADARGUMENTS, -8): a malformed server line, a config
    /// that does not parse, an incremental change to a hierarchical configuration, too few voters.
    #[error("bad arguments: {0}")]
    BadArguments(String),
    /// A runtime exception inside `PrepRequestProcessor` (a sid that is not a number, observers without
    /// participants), which ZooKeeper answers with MARSHALLINGERROR (-5).
    #[error("marshalling error: {0}")]
    Marshalling(String),
}

/// The three request strings of a `ReconfigRequest` (null fields are `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconfigOps<'a> {
    /// Incremental: comma-separated `server.N=spec` entries to add (or replace).
    pub joining: Option<&'a str>,
    /// Incremental: comma-separated sids to remove.
    pub leaving: Option<&'a str>,
    /// Non-incremental: the whole new membership, entries separated by commas or newlines.
    pub new_members: Option<&'a str>,
}

/// Parses a configuration text (`server.N=…`, `group.G=…`, `weight.N=…` lines and `version=<hex>`) as
/// `QuorumPeer.configFromString` does. The version is the text's `version=` (0 when absent).
pub fn parse_config_text(text: &str) -> Result<QuorumConfig, String> {
    let entries = properties::parse(text).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let file = Path::new("<configuration text>");
    let source = |line| Source::DynamicFile {
        path: file.to_path_buf(),
        line,
    };
    parse_membership(&entries, file, &source, true, None)
        .map(|(qc, _)| qc)
        .map_err(|e| e.to_string())
}

/// `org.apache.zookeeper.common.StringUtils.split`: split on `sep`, trim each part, drop empty ones.
fn zk_split(s: &str, sep: char) -> Vec<&str> {
    s.split(sep)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Computes the configuration a reconfig request proposes, from the last seen one
/// (`PrepRequestProcessor.pRequest2Txn`, `case OpCode.reconfig`), with `version` (the reconfig txn's
/// zxid) as its version. `standalone_enabled` is `standaloneEnabled` (default true): the new
/// configuration must then keep at least two voters, otherwise one.
pub fn next_config(
    last_seen: &QuorumConfig,
    ops: ReconfigOps<'_>,
    standalone_enabled: bool,
    version: u64,
) -> Result<QuorumConfig, ReconfigError> {
    let mut next = match ops.new_members {
        Some(members) => non_incremental(members)?,
        None => incremental(last_seen, ops.joining, ops.leaving)?,
    };
    next.version = version;
    let voters = next.voters().len();
    if standalone_enabled && voters < 2 {
        return Err(ReconfigError::BadArguments(
            "Reconfig failed - new configuration must include at least 2 followers".into(),
        ));
    }
    if voters < 1 {
        return Err(ReconfigError::BadArguments(
            "Reconfig failed - new configuration must include at least 1 follower".into(),
        ));
    }
    Ok(next)
}

/// `-members` / `-file`: `QuorumPeerConfig.parseDynamicConfig(props, …, warnings=true,
/// backwardCompatibility=false)` over the text with commas turned into newlines.
fn non_incremental(members: &str) -> Result<QuorumConfig, ReconfigError> {
    let text = members.replace(',', "\n");
    let entries =
        properties::parse(&text).map_err(|e| ReconfigError::BadArguments(e.message.clone()))?;
    for e in &entries {
        let key = e.key.trim();
        let known = key.starts_with("group")
            || key.starts_with("weight")
            || key.starts_with("server.")
            || key == "version";
        if !known {
            return Err(ReconfigError::BadArguments(format!(
                "Unrecognised parameter: {key}"
            )));
        }
    }
    // Java reads a non-numeric sid with Long.parseLong: a NumberFormatException, not a ConfigException.
    for e in &entries {
        let key = e.key.trim();
        if let Some(id) = key.strip_prefix("server.") {
            if id.parse::<i64>().is_err() {
                return Err(ReconfigError::Marshalling(format!(
                    "For input string: \"{id}\""
                )));
            }
        }
    }
    let file = Path::new("<reconfig members>");
    let source = |line| Source::DynamicFile {
        path: file.to_path_buf(),
        line,
    };
    let (qc, _) = parse_membership(&entries, file, &source, true, None)
        .map_err(|e| ReconfigError::BadArguments(e.to_string()))?;
    // parseDynamicConfig's IllegalArgumentExceptions (not ConfigExceptions: MARSHALLINGERROR).
    if qc.voters().is_empty() && !qc.observers().is_empty() {
        return Err(ReconfigError::Marshalling(
            "Observers w/o participants is an invalid configuration".into(),
        ));
    }
    if qc.voters().len() == 1 && !qc.observers().is_empty() {
        return Err(ReconfigError::Marshalling(
            "Observers w/o quorum is an invalid configuration".into(),
        ));
    }
    Ok(qc)
}

/// `-add` / `-remove`: only for majority configurations; leaving sids are removed first, then each
/// joiner is added or replaces the server with its id (a role or address change).
fn incremental(
    last_seen: &QuorumConfig,
    joining: Option<&str>,
    leaving: Option<&str>,
) -> Result<QuorumConfig, ReconfigError> {
    if !matches!(last_seen.quorum, QuorumSpec::Majority { .. }) {
        return Err(ReconfigError::BadArguments(
            "Incremental reconfiguration requested but last configuration seen has a non-majority quorum system".into(),
        ));
    }
    let mut servers: BTreeMap<u64, ServerSpec> = last_seen.servers.clone();
    for sid in leaving.map(|l| zk_split(l, ',')).unwrap_or_default() {
        let id: i64 = sid
            .parse()
            .map_err(|_| ReconfigError::Marshalling(format!("For input string: \"{sid}\"")))?;
        if let Ok(id) = u64::try_from(id) {
            servers.remove(&id);
        }
    }
    for joiner in joining.map(|j| zk_split(j, ',')).unwrap_or_default() {
        let parts = zk_split(joiner, '=');
        if parts.len() != 2 {
            return Err(ReconfigError::BadArguments(
                "Wrong format of server string".into(),
            ));
        }
        let id_text = &parts[0][parts[0].rfind('.').map_or(0, |i| i + 1)..];
        let id: u64 = id_text
            .parse()
            .map_err(|_| ReconfigError::Marshalling(format!("For input string: \"{id_text}\"")))?;
        let spec = ServerSpec::parse(id, parts[1], true)
            .map_err(|_| ReconfigError::BadArguments("Reconfiguration failed".into()))?;
        if spec.client.is_none() {
            return Err(ReconfigError::BadArguments(
                "Wrong format of server string - each server should have 3 ports specified".into(),
            ));
        }
        for other in servers.values().filter(|o| o.id != id) {
            check_address_duplicate(&spec, other)?;
        }
        servers.insert(id, spec);
    }
    let voters = servers
        .values()
        .filter(|s| s.role == Role::Participant)
        .map(|s| s.id)
        .collect();
    Ok(QuorumConfig {
        servers,
        quorum: QuorumSpec::Majority { voters },
        version: last_seen.version,
    })
}

/// `QuorumServer.checkAddressDuplicate`: a joiner's quorum, election or client address equal to one of
/// another member's, ignoring wildcard and loopback addresses (several servers on one machine share
/// those). Hosts are compared as written: resolution is the driver's business.
fn check_address_duplicate(me: &ServerSpec, other: &ServerSpec) -> Result<(), ReconfigError> {
    fn addrs(s: &ServerSpec) -> Vec<(String, u16)> {
        let mut out = Vec::new();
        for a in &s.addrs {
            out.push((a.host.clone(), a.quorum_port));
            out.push((a.host.clone(), a.election_port));
        }
        if let Some(c) = &s.client {
            out.push((c.host.clone(), c.port));
        }
        out.retain(|(h, _)| !is_special_host(h));
        out
    }
    let theirs = addrs(other);
    for mine in addrs(me) {
        if theirs.contains(&mine) {
            return Err(ReconfigError::BadArguments(format!(
                "{}:{} of server.{} conflicts {}:{} of server.{}",
                mine.0, mine.1, me.id, mine.0, mine.1, other.id
            )));
        }
    }
    Ok(())
}

fn is_special_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_unspecified() || ip.is_loopback(),
        Err(_) => false,
    }
}

/// `QuorumMaj.equals` / `QuorumHierarchical.equals`: the same version, or the same members with the
/// same specs (and, for hierarchical quorums, the same groups and weights).
pub fn java_equals(a: &QuorumConfig, b: &QuorumConfig) -> bool {
    if a.version == b.version {
        return true;
    }
    if a.servers.len() != b.servers.len() {
        return false;
    }
    let same_members = a.servers.iter().all(|(id, s)| {
        b.servers
            .get(id)
            .is_some_and(|o| o.addrs == s.addrs && o.role == s.role && o.client == s.client)
    });
    same_members
        && match (&a.quorum, &b.quorum) {
            (QuorumSpec::Majority { .. }, QuorumSpec::Majority { .. }) => true,
            (x, y) => x == y,
        }
}

/// One change between two memberships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// A server that is new.
    Add(ServerSpec),
    /// A server that goes away.
    Remove(u64),
    /// A server whose role, addresses or client address change (re-added with its new spec).
    Change {
        /// Its spec now.
        from: ServerSpec,
        /// Its spec after.
        to: ServerSpec,
    },
}

/// The plan that turns the running membership into a wanted one: the changes, and the incremental
/// `joining` / `leaving` strings that apply them as one reconfig (or `None` for both when a
/// hierarchical quorum needs a non-incremental `members` request instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigPlan {
    /// Every change, by server id.
    pub changes: Vec<MemberChange>,
    /// The request: incremental when both configurations use majority quorums.
    pub request: PlannedRequest,
}

/// How a plan is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlannedRequest {
    /// Nothing to do.
    Nothing,
    /// `-add` / `-remove`.
    Incremental {
        /// Comma-separated `server.N=spec` entries (new and changed servers).
        joining: Option<String>,
        /// Comma-separated sids.
        leaving: Option<String>,
    },
    /// `-members`: the whole wanted configuration (hierarchical quorums).
    Members(String),
}

/// The spec as a member line's value, including the client address when it came from the file.
fn spec_value(s: &ServerSpec) -> String {
    let mut s = s.clone();
    s.client_from_static = false;
    s.render()
}

/// Compares the running membership with the wanted one (client addresses compared as written; a wanted
/// server without a client address keeps the running one's) and plans one reconfig.
pub fn plan(running: &QuorumConfig, wanted: &QuorumConfig) -> ReconfigPlan {
    let mut changes = Vec::new();
    let ids: BTreeSet<u64> = running
        .servers
        .keys()
        .chain(wanted.servers.keys())
        .copied()
        .collect();
    let mut joining = Vec::new();
    let mut leaving = Vec::new();
    for id in ids {
        match (running.servers.get(&id), wanted.servers.get(&id)) {
            (Some(_), None) => {
                changes.push(MemberChange::Remove(id));
                leaving.push(id.to_string());
            }
            (None, Some(w)) => {
                changes.push(MemberChange::Add(w.clone()));
                joining.push(format!("server.{id}={}", spec_value(w)));
            }
            (Some(r), Some(w)) => {
                let mut w = w.clone();
                if w.client.is_none() {
                    w.client = r.client.clone();
                }
                if r.role != w.role || r.addrs != w.addrs || r.client != w.client {
                    joining.push(format!("server.{id}={}", spec_value(&w)));
                    changes.push(MemberChange::Change {
                        from: r.clone(),
                        to: w,
                    });
                }
            }
            (None, None) => {}
        }
    }
    let hierarchical = !matches!(running.quorum, QuorumSpec::Majority { .. })
        || !matches!(wanted.quorum, QuorumSpec::Majority { .. });
    let request = if hierarchical {
        if changes.is_empty() && running.quorum == wanted.quorum {
            PlannedRequest::Nothing
        } else {
            let mut w = wanted.clone();
            for s in w.servers.values_mut() {
                if s.client.is_none() {
                    s.client = running.servers.get(&s.id).and_then(|r| r.client.clone());
                }
                s.client_from_static = false;
            }
            PlannedRequest::Members(w.render_dynamic_file(false).replace('\n', ","))
        }
    } else if changes.is_empty() {
        PlannedRequest::Nothing
    } else {
        PlannedRequest::Incremental {
            joining: (!joining.is_empty()).then(|| joining.join(",")),
            leaving: (!leaving.is_empty()).then(|| leaving.join(",")),
        }
    };
    ReconfigPlan { changes, request }
}

#[cfg(test)]
mod tests;
