//! Ensemble mode of `outpost server`: turns a zoo.cfg with `server.N` lines (and a myid) into the peer
//! shell's configuration, with ZooKeeper's meaning for every key (`tickTime`, `initLimit`, `syncLimit`,
//! `cnxTimeout`, `electionPortBindRetry`, `observer.*`, `syncEnabled`, `group.N` / `weight.N`,
//! `leader.maxConcurrentSnapSyncs` / `leader.maxConcurrentDiffSyncs`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, bail, Context};
use outpost_conf::{QuorumConfig, ZooCfg};
use outpost_core::ids::ServerId;
use outpost_core::shell::election_net::ElectionNetConfig;
use outpost_core::shell::quorum_peer::PeerShellConfig;
use outpost_core::shell::standalone::StandaloneConfig;
use outpost_core::zab::peer::PeerConfig;
use outpost_core::zab::quorum::QuorumVerifier;

/// Bytes per chunk of a streamed SNAP sync (`outpost.snapSyncChunkBytes`): with
/// `zab::learner_link::SNAP_WINDOW` chunks in flight, a SNAP holds about 1 MiB of serialized snapshot
/// besides the socket buffers.
const SNAP_CHUNK_BYTES: usize = 256 * 1024;

/// The committed membership as the engine's quorum rule.
pub fn verifier(membership: &QuorumConfig) -> anyhow::Result<QuorumVerifier> {
    outpost_core::zab::reconfig::verifier_of(membership)
        .map_err(|e| anyhow!("hierarchical quorum: {e}"))
}

fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolve {host}:{port}"))?
        .next()
        .ok_or_else(|| anyhow!("{host}:{port} resolves to nothing"))
}

/// A numeric setting ZooKeeper reads as a system property (`commitLogCount` is
/// `zookeeper.commitLogCount`), given in zoo.cfg with or without the prefix, known to outpost-conf or
/// not.
fn property_u64(cfg: &ZooCfg, key: &str) -> Option<u64> {
    let prefixed = format!("zookeeper.{key}");
    cfg.resolved
        .iter()
        .chain(cfg.unknown.iter())
        .find(|r| r.key == key || r.key == prefixed)
        .and_then(|r| r.value.trim().parse().ok())
}

/// `zookeeper.snapshotSizeFactor` (zoo.cfg `snapshotSizeFactor`), as `ZKDatabase` reads it: a number,
/// the default 0.33 when absent or not a number (Java logs the error and keeps the default).
fn snapshot_size_factor(cfg: &ZooCfg) -> f64 {
    let prefixed = "zookeeper.snapshotSizeFactor";
    cfg.resolved
        .iter()
        .chain(cfg.unknown.iter())
        .find(|r| r.key == "snapshotSizeFactor" || r.key == prefixed)
        .and_then(|r| r.value.trim().parse::<f64>().ok())
        .filter(|f| f.is_finite())
        .unwrap_or(0.33)
}

/// Builds the peer shell's configuration from an ensemble zoo.cfg; `base` is what the standalone path
/// built from the same file (client port, directories, limits).
pub fn peer_config(cfg: &ZooCfg, mut base: StandaloneConfig) -> anyhow::Result<PeerShellConfig> {
    let my_id = cfg.my_id.ok_or_else(|| {
        anyhow!(
            "{}: no myid for this ensemble member",
            cfg.config_path.display()
        )
    })?;
    let membership = &cfg.membership;
    let me = membership
        .servers
        .get(&my_id)
        .ok_or_else(|| anyhow!("myid {my_id} has no server.{my_id} line"))?;
    let Some(my_addr) = me.addrs.first() else {
        bail!("server.{my_id} has no address");
    };
    let mut quorum_addrs = BTreeMap::new();
    let mut election_peers = BTreeMap::new();
    for (id, spec) in &membership.servers {
        let Some(a) = spec.addrs.first() else {
            continue;
        };
        quorum_addrs.insert(ServerId(*id), resolve(&a.host, a.quorum_port)?);
        if *id != my_id {
            election_peers.insert(ServerId(*id), resolve(&a.host, a.election_port)?);
        }
    }
    let listen_host = if cfg.quorum_listen_on_all_ips {
        "0.0.0.0".to_string()
    } else {
        my_addr.host.clone()
    };
    let quorum_listen = resolve(&listen_host, my_addr.quorum_port)?;
    // observerMasterPort: one port for every server, on each voter's quorum host (ZooKeeper's form),
    // or outpost's observerMasterPort.N per server (so voters can share a host).
    let om_port = |id: u64| {
        cfg.observer_master_ports
            .get(&id)
            .copied()
            .or(cfg.observer_master_port)
    };
    let mut observer_master_addrs = BTreeMap::new();
    for (id, spec) in &membership.servers {
        if spec.role != outpost_conf::Role::Participant {
            continue;
        }
        let (Some(a), Some(port)) = (spec.addrs.first(), om_port(*id)) else {
            continue;
        };
        observer_master_addrs.insert(ServerId(*id), resolve(&a.host, port)?);
    }
    let observer_master_listen = match om_port(my_id) {
        Some(port) if me.role == outpost_conf::Role::Participant => {
            Some(resolve(&listen_host, port)?)
        }
        _ => None,
    };
    let election_listen = resolve(&listen_host, my_addr.election_port)?;
    // Session ids embed the server id (the top byte), as every ensemble member's do.
    base.settings.server_id = ServerId(my_id);
    let tick_ms = u64::from(cfg.tick_time_ms.max(1));
    let sync_limit = u64::from(cfg.sync_limit_ticks.max(1));
    let quorum_cnxn_timeout = if cfg.quorum_cnxn_timeout_ms > 0 {
        cfg.quorum_cnxn_timeout_ms as u64
    } else {
        tick_ms * sync_limit
    };
    let seed = std::hash::BuildHasher::hash_one(
        &std::collections::hash_map::RandomState::new(),
        (std::process::id(), my_id),
    );
    let peer = PeerConfig {
        my_id: ServerId(my_id),
        verifier: verifier(membership)?,
        config_text: membership.render().into_bytes(),
        tick_ms,
        init_limit: u64::from(cfg.init_limit_ticks.max(1)),
        sync_limit,
        commit_log_count: property_u64(cfg, "commitLogCount").unwrap_or(500) as usize,
        snapshot_size_factor: snapshot_size_factor(cfg),
        observer_reconnect_delay_ms: cfg.observer_reconnect_delay_ms,
        observer_election_delay_ms: cfg.observer_election_delay_ms,
        observer_sync_enabled: cfg.sync_enabled,
        observer_master: cfg.observer_master_port.is_some()
            || !cfg.observer_master_ports.is_empty(),
        observer_serves_detached: cfg
            .resolved
            .iter()
            .find(|r| r.key == "outpost.observerServesWhileDetached")
            .is_none_or(|r| r.value.trim().eq_ignore_ascii_case("true")),
        election_finalize_early: cfg
            .resolved
            .iter()
            .find(|r| r.key == "outpost.election.finalizeEarly")
            .is_none_or(|r| r.value.trim().eq_ignore_ascii_case("true")),
        leader_serves: cfg.leader_serves,
        max_concurrent_snap_syncs: cfg.max_concurrent_snap_syncs as usize,
        max_concurrent_diff_syncs: cfg.max_concurrent_diff_syncs as usize,
        snap_chunk_bytes: property_u64(cfg, "outpost.snapSyncChunkBytes")
            .map_or(SNAP_CHUNK_BYTES, |n| n.clamp(512, 64 << 20) as usize),
        standalone_enabled: cfg.standalone_enabled,
        epoch_start_counter: 0,
        server: base.settings.clone(),
        seed,
    };
    let election = ElectionNetConfig {
        my_id: ServerId(my_id),
        listen: election_listen,
        advertised: format!("{}:{}", my_addr.host, my_addr.election_port),
        peers: election_peers,
        cnx_timeout_ms: u64::from(cfg.cnx_timeout_ms.max(1)),
        handshake_timeout_ms: quorum_cnxn_timeout,
        bind_retries: cfg.election_port_bind_retry,
        tcp_keep_alive: cfg.tcp_keep_alive,
    };
    let max_packet = cfg.jute_max_buffer_bytes as usize;
    Ok(PeerShellConfig {
        base,
        peer,
        quorum_listen,
        quorum_addrs,
        election,
        max_packet_bytes: max_packet,
        // A SNAP body is a whole tree: bounded by memory, not by jute.maxbuffer.
        max_snapshot_bytes: property_u64(cfg, "outpost.maxSnapshotBytes").unwrap_or(16 << 30)
            as usize,
        connect_limit_ticks: u64::from(cfg.connect_to_learner_master_limit_ticks),
        config_file: Some(
            std::fs::canonicalize(&cfg.config_path).unwrap_or_else(|_| cfg.config_path.clone()),
        ),
        observer_master_listen,
        observer_master_addrs,
    })
}
