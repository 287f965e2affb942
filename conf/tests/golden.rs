//! Golden test: the three-server zoo.cfg + zoo.cfg.dynamic that users bring from a ZooKeeper install
//! guide parses verbatim (only the /usr/local/zookeeper prefix is moved to a temporary directory).

use outpost_conf::{HostPort, Mode, QuorumSpec, Role, Source, ZooCfg};
use std::collections::BTreeSet;
use std::fs;

const ZOO_CFG: &str = "# zoo.cfg
dataDir=/usr/local/zookeeper/data
dataLogDir=/usr/local/zookeeper/logs
tickTime=2000
initLimit=10
connectToLearnerMasterLimit=5
syncLimit=5
leaderServes=yes
standaloneEnabled=false
electionAlg=3
cnxTimeout=5
quorumCnxnTimeoutMs=-1
electionPortBindRetry=3
admin.enableServer=true
admin.serverAddress=0.0.0.0
admin.serverPort=8080
admin.idleTimeout=30000
admin.commandURL=/commands
admin.portUnification=enable
dynamicConfigFile=/usr/local/zookeeper/conf/zoo.cfg.dynamic
";

const ZOO_CFG_DYNAMIC: &str = "# zoo.cfg.dynamic
server.1=192.168.1.6:2888:3888:participant;2181
server.2=192.168.1.132:2888:3888:participant;2181
server.3=192.168.1.11:2888:3888:participant;2181
group.1=1:2:3
";

fn load_example(myid: &str) -> (tempfile::TempDir, Result<ZooCfg, outpost_conf::ConfError>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().display().to_string();
    for sub in ["data", "logs", "conf"] {
        fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    let cfg_path = dir.path().join("conf/zoo.cfg");
    fs::write(&cfg_path, ZOO_CFG.replace("/usr/local/zookeeper", &root)).expect("write zoo.cfg");
    fs::write(dir.path().join("conf/zoo.cfg.dynamic"), ZOO_CFG_DYNAMIC).expect("write dynamic");
    fs::write(dir.path().join("data/myid"), myid).expect("write myid");
    let cfg = ZooCfg::load(&cfg_path);
    (dir, cfg)
}

/// Every key of the example gets ZooKeeper's meaning, with its source line, and server 1 is a participant.
#[test]
fn example_parses_with_zookeeper_meaning() {
    let (dir, cfg) = load_example("1\n");
    let cfg = cfg.expect("the example parses");
    assert_eq!(cfg.mode, Mode::Participant);
    assert_eq!(cfg.my_id, Some(1));
    assert_eq!(cfg.data_dir, dir.path().join("data"));
    assert_eq!(cfg.data_log_dir, dir.path().join("logs"));
    assert_eq!(cfg.tick_time_ms, 2000);
    assert_eq!(cfg.init_limit_ticks, 10);
    assert_eq!(cfg.sync_limit_ticks, 5);
    assert_eq!(cfg.connect_to_learner_master_limit_ticks, 5);
    assert!(cfg.leader_serves);
    assert!(!cfg.standalone_enabled);
    assert_eq!(cfg.election_alg, 3);
    assert_eq!(cfg.cnx_timeout_ms, 5);
    assert_eq!(cfg.quorum_cnxn_timeout_ms, -1);
    assert_eq!(cfg.election_port_bind_retry, 3);
    assert!(cfg.admin_enable_server);
    assert_eq!(cfg.admin_server_address, "0.0.0.0");
    assert_eq!(cfg.admin_server_port, 8080);
    assert_eq!(cfg.admin_idle_timeout_ms, 30000);
    assert_eq!(cfg.admin_command_url, "/commands");
    // Boolean.getBoolean("enable") is false in ZooKeeper: accepted, off, and warned about.
    assert!(!cfg.admin_port_unification);
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("admin.portUnification")));
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("cnxTimeout")));
    assert!(cfg.unknown.is_empty(), "unknown keys: {:?}", cfg.unknown);
    // Defaults that were not set.
    assert_eq!(cfg.min_session_timeout_ms, 4000);
    assert_eq!(cfg.max_session_timeout_ms, 40000);
    assert_eq!(cfg.max_client_cnxns, 60);
    assert_eq!(cfg.snap_count, 100000);
    assert!(!cfg.reconfig_enabled);
    // This server's client address comes from its server line.
    assert_eq!(
        cfg.client_address,
        Some(HostPort {
            host: "0.0.0.0".into(),
            port: 2181
        })
    );
    // Sources.
    let tick = cfg.get("tickTime").expect("tickTime");
    assert_eq!(tick.source.location().map(|(_, l)| l), Some(4));
    assert_eq!(
        cfg.get("maxClientCnxns").map(|r| &r.source),
        Some(&Source::Default)
    );
    match &cfg.server_sources[&2] {
        Source::DynamicFile { line, .. } => assert_eq!(*line, 3),
        other => panic!("server.2 source {other:?}"),
    }
    // group.1 makes the quorum hierarchical, one group of three unit weights.
    match &cfg.membership.quorum {
        QuorumSpec::Hierarchical { groups, weights } => {
            assert_eq!(groups.len(), 1);
            assert_eq!(weights.values().copied().collect::<Vec<_>>(), vec![1, 1, 1]);
        }
        other => panic!("expected hierarchical, got {other:?}"),
    }
    let q = &cfg.membership.quorum;
    assert!(q.is_quorum(&BTreeSet::from([1, 3])));
    assert!(!q.is_quorum(&BTreeSet::from([2])));
    assert!(cfg
        .membership
        .servers
        .values()
        .all(|s| s.role == Role::Participant));
}

/// The configuration text is what ZooKeeper would put in /zookeeper/config for this example.
#[test]
fn example_config_text() {
    let (_dir, cfg) = load_example("2");
    let cfg = cfg.expect("parses");
    assert_eq!(
        cfg.config_text(),
        "server.1=192.168.1.6:2888:3888:participant;0.0.0.0:2181\n\
         server.2=192.168.1.132:2888:3888:participant;0.0.0.0:2181\n\
         server.3=192.168.1.11:2888:3888:participant;0.0.0.0:2181\n\
         group.1=1:2:3\n\
         weight.1=1\n\
         weight.2=1\n\
         weight.3=1\n\
         version=0"
    );
}

/// With a myid that is not among the three servers, the example is rejected naming the myid file.
#[test]
fn example_with_foreign_myid_is_rejected() {
    let (_dir, cfg) = load_example("7\n");
    let err = cfg.expect_err("myid 7 is not a server").to_string();
    assert!(
        err.contains("myid: myid 7 is not among the servers (1, 2, 3)"),
        "{err}"
    );
}
