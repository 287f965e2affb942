//! Validation of zoo.cfg, dynamic files and myid: modes, roles, server-line forms, versions, and the
//! errors (with file, line and key) for each kind of bad configuration.

use outpost_conf::{FourLetterWords, HostPort, Mode, QuorumSpec, Role, Source, ZooCfg};
use std::fs;
use std::path::{Path, PathBuf};

/// A temporary directory holding `data/` and a zoo.cfg whose `DATA` placeholder is the data dir.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("data")).expect("mkdir");
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        let text = text
            .replace("DATA", &self.path("data").display().to_string())
            .replace("DIR", &self.dir.path().display().to_string());
        fs::write(&p, text).expect("write");
        p
    }

    fn myid(&self, text: &str) {
        fs::write(self.path("data/myid"), text).expect("write myid");
    }

    fn load(&self, cfg: &str) -> Result<ZooCfg, outpost_conf::ConfError> {
        let p = self.write("zoo.cfg", cfg);
        ZooCfg::load(&p)
    }

    fn error(&self, cfg: &str) -> String {
        match self.load(cfg) {
            Ok(c) => panic!("accepted: {:?}", c.mode),
            Err(e) => e.to_string(),
        }
    }
}

fn ends(err: &str, tail: &str) {
    assert!(
        err.contains(tail),
        "error {err:?} does not contain {tail:?}"
    );
}

const THREE: &str = "tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir=DATA\nclientPort=2181\n\
server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\nserver.3=10.0.0.3:2888:3888\n";

/// A config without server lines is standalone, with ZooKeeper's defaults and no myid needed.
#[test]
fn no_servers_is_standalone() {
    let f = Fixture::new();
    let cfg = f.load("dataDir=DATA\nclientPort=2181\n").expect("ok");
    assert_eq!(cfg.mode, Mode::Standalone);
    assert_eq!(cfg.tick_time_ms, 3000);
    assert_eq!(cfg.min_session_timeout_ms, 6000);
    assert_eq!(cfg.max_session_timeout_ms, 60000);
    assert_eq!(cfg.data_log_dir, f.path("data"));
    assert_eq!(
        cfg.get("dataLogDir").map(|r| r.source.clone()),
        Some(Source::Default)
    );
    assert_eq!(
        cfg.four_letter_words,
        FourLetterWords::Only(["srvr".to_string()].into())
    );
    assert_eq!(cfg.jute_max_buffer_bytes, 0xfffff);
    assert_eq!(cfg.pre_alloc_size_kb, 65536);
    assert_eq!(cfg.snap_retain_count, 3);
    assert_eq!(cfg.purge_interval_hours, 0);
    assert_eq!(cfg.admin_server_port, 8080);
    assert_eq!(cfg.metrics_provider_http_port, 7000);
    assert!(cfg.force_sync && cfg.leader_serves && !cfg.skip_acl);
    assert_eq!(
        cfg.client_address,
        Some(HostPort {
            host: "0.0.0.0".into(),
            port: 2181
        })
    );
}

/// One participant with standaloneEnabled=true (the default) is standalone; with false it is an ensemble of one.
#[test]
fn single_server_standalone_rules() {
    let f = Fixture::new();
    let one =
        "dataDir=DATA\nclientPort=2181\ninitLimit=5\nsyncLimit=2\nserver.1=127.0.0.1:2888:3888\n";
    assert_eq!(f.load(one).expect("ok").mode, Mode::Standalone);
    f.myid("1\n");
    let cfg = f
        .load(&format!("{one}standaloneEnabled=false\n"))
        .expect("ok");
    assert_eq!(cfg.mode, Mode::Participant);
}

/// The pre-3.5 form takes this server's client port from clientPort, and the config text omits it.
#[test]
fn legacy_server_lines() {
    let f = Fixture::new();
    f.myid("2\n");
    let cfg = f.load(THREE).expect("ok");
    assert_eq!(cfg.mode, Mode::Participant);
    assert_eq!(cfg.my_id, Some(2));
    assert_eq!(cfg.membership.quorum.kind(), "majority");
    let s2 = &cfg.membership.servers[&2];
    assert!(s2.client_from_static);
    assert_eq!(s2.client.as_ref().map(|c| c.port), Some(2181));
    assert_eq!(
        cfg.config_text(),
        "server.1=10.0.0.1:2888:3888:participant\nserver.2=10.0.0.2:2888:3888:participant\n\
         server.3=10.0.0.3:2888:3888:participant\nversion=0"
    );
}

/// An observer is recognised from its server line, and peerType=observer agrees without a warning.
#[test]
fn observer_role() {
    let f = Fixture::new();
    f.myid("4");
    let cfg_text = format!("{THREE}server.4=10.0.0.4:2888:3888:observer\npeerType=observer\n");
    let cfg = f.load(&cfg_text).expect("ok");
    assert_eq!(cfg.mode, Mode::Observer);
    assert!(!cfg
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("peerType")));
    // peerType=observer on a server whose line says participant: the line wins, with a warning.
    f.myid("1");
    let cfg = f.load(&cfg_text).expect("ok");
    assert_eq!(cfg.mode, Mode::Participant);
    assert_eq!(cfg.peer_type, Role::Observer);
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("peerType")));
}

/// A versioned dynamic file (`zoo.cfg.dynamic.100000000`) gives the version; IPv6 literals render as Java prints them.
#[test]
fn versioned_dynamic_file_and_ipv6() {
    let f = Fixture::new();
    f.myid("1\n");
    f.write(
        "zoo.cfg.dynamic.100000000",
        "server.1=[::1]:2888:3888:participant;[::1]:2181\nserver.2=[::1]:2889:3889;2182\n\
         server.3=[::1]:2890:3890:participant;127.0.0.1:2183\n",
    );
    let cfg = f
        .load("dataDir=DATA\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile=DIR/zoo.cfg.dynamic.100000000\n")
        .expect("ok");
    assert_eq!(cfg.membership.version, 0x100000000);
    assert_eq!(
        cfg.config_text(),
        "server.1=[0:0:0:0:0:0:0:1]:2888:3888:participant;[0:0:0:0:0:0:0:1]:2181\n\
         server.2=[0:0:0:0:0:0:0:1]:2889:3889:participant;0.0.0.0:2182\n\
         server.3=[0:0:0:0:0:0:0:1]:2890:3890:participant;127.0.0.1:2183\nversion=100000000"
    );
    assert_eq!(
        cfg.client_address,
        Some(HostPort {
            host: "::1".into(),
            port: 2181
        })
    );
}

/// Continuation lines and escapes work in zoo.cfg, and errors name the line an entry starts on.
#[test]
fn continuation_and_line_numbers() {
    let f = Fixture::new();
    let cfg = f
        .load("dataDir=DATA\n4lw.commands.whitelist=ruok,\\\n    stat , mntr\n")
        .expect("ok");
    assert_eq!(
        cfg.four_letter_words,
        FourLetterWords::Only(
            ["mntr", "ruok", "srvr", "stat"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        )
    );
    let err = f.error("dataDir=DATA\n# comment\nmaxClientCnxns=\\\n  ten\n");
    ends(
        &err,
        "zoo.cfg:3: maxClientCnxns: expected an integer, found \"ten\"",
    );
}

/// `*` enables every four-letter word.
#[test]
fn four_letter_words_star() {
    let f = Fixture::new();
    let cfg = f
        .load("dataDir=DATA\n4lw.commands.whitelist=*\n")
        .expect("ok");
    assert!(cfg.four_letter_words.allows("mntr"));
    assert_eq!(cfg.four_letter_words, FourLetterWords::All);
}

/// Unknown keys are kept as warnings (ZooKeeper would make them system properties), not errors.
#[test]
fn unknown_keys_warn() {
    let f = Fixture::new();
    let cfg = f
        .load("dataDir=DATA\nfancyFeature=on\nmetricsProvider.exportJvmInfo=false\n")
        .expect("ok");
    assert_eq!(cfg.unknown.len(), 1);
    assert_eq!(cfg.unknown[0].key, "fancyFeature");
    assert!(cfg.warnings.iter().any(|w| w
        .to_string()
        .contains("zoo.cfg:2: fancyFeature: unknown key")));
    assert_eq!(
        cfg.metrics_provider
            .get("exportJvmInfo")
            .map(String::as_str),
        Some("false")
    );
}

/// A metrics provider outpost does not have is a warning (no exporter will run); ZooKeeper's default and
/// its Prometheus provider are not.
#[test]
fn unknown_metrics_provider_warns() {
    let f = Fixture::new();
    let known = f
        .load(
            "dataDir=DATA\nmetricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n",
        )
        .expect("ok");
    assert!(known.warnings.is_empty(), "{:?}", known.warnings);
    let other = f
        .load("dataDir=DATA\nmetricsProvider.className=com.example.StatsdProvider\n")
        .expect("ok");
    assert!(
        other.warnings.iter().any(|w| w
            .to_string()
            .contains("metricsProvider.className: outpost knows only")),
        "{:?}",
        other.warnings
    );
}

/// Both superDigest spellings are accepted; the `zookeeper.`-prefixed one with a warning.
#[test]
fn super_digest_forms() {
    let f = Fixture::new();
    let cfg = f
        .load("dataDir=DATA\nDigestAuthenticationProvider.superDigest=super:abc=\n")
        .expect("ok");
    assert_eq!(cfg.super_digest.as_deref(), Some("super:abc="));
    let cfg = f
        .load("dataDir=DATA\nzookeeper.DigestAuthenticationProvider.superDigest=super:xyz=\n")
        .expect("ok");
    assert_eq!(cfg.super_digest.as_deref(), Some("super:xyz="));
    assert!(!cfg.warnings.is_empty());
}

/// The sync throttles default to ZooKeeper's 10 and 100, take the short spellings (with a warning) and
/// refuse values below 1, which ZooKeeper's `LearnerSyncThrottler` would throw on.
#[test]
fn sync_throttle_keys() {
    let f = Fixture::new();
    let cfg = f.load("dataDir=DATA\n").expect("ok");
    assert_eq!(
        (cfg.max_concurrent_snap_syncs, cfg.max_concurrent_diff_syncs),
        (10, 100)
    );
    let cfg = f
        .load("dataDir=DATA\nmaxConcurrentSnapSyncs=2\nleader.maxConcurrentDiffSyncs=0x10\n")
        .expect("ok");
    assert_eq!(
        (cfg.max_concurrent_snap_syncs, cfg.max_concurrent_diff_syncs),
        (2, 16)
    );
    assert!(!cfg.warnings.is_empty());
    ends(
        &f.error("dataDir=DATA\nleader.maxConcurrentSnapSyncs=0\n"),
        "must be positive (at least 1)",
    );
}

/// Lenient ZooKeeper booleans: forceSync/leaderServes are true unless exactly "no", skipACL only for "yes".
#[test]
fn lenient_booleans() {
    let f = Fixture::new();
    let cfg = f
        .load("dataDir=DATA\nforceSync=no\nleaderServes=NO\nskipACL=yes\ntcpKeepAlive=TRUE\n")
        .expect("ok");
    assert!(!cfg.force_sync);
    assert!(
        cfg.leader_serves,
        "only exactly \"no\" turns leaderServes off"
    );
    assert!(cfg.skip_acl);
    assert!(cfg.tcp_keep_alive);
}

/// A non-numeric value is an error in the documented form `file:line: key: message`.
#[test]
fn non_numeric_value() {
    let f = Fixture::new();
    ends(
        &f.error("dataDir=DATA\ntickTime=abc\n"),
        "zoo.cfg:2: tickTime: expected an integer, found \"abc\"",
    );
    ends(
        &f.error("dataDir=DATA\nadmin.serverPort=99999\n"),
        "zoo.cfg:2: admin.serverPort: 99999 is out of range",
    );
}

/// Bad booleans for strictly parsed keys, bad peerType and electionAlg other than 3 are errors.
#[test]
fn bad_enumerations() {
    let f = Fixture::new();
    ends(
        &f.error("dataDir=DATA\nstandaloneEnabled=yes\n"),
        "zoo.cfg:2: standaloneEnabled: expected true or false, found \"yes\"",
    );
    ends(
        &f.error("dataDir=DATA\npeerType=voter\n"),
        "zoo.cfg:2: peerType: expected participant or observer",
    );
    ends(
        &f.error("dataDir=DATA\nelectionAlg=1\n"),
        "zoo.cfg:2: electionAlg: only 3 is supported",
    );
}

/// A missing dataDir, and clientPortAddress without clientPort, are errors.
#[test]
fn missing_required_keys() {
    let f = Fixture::new();
    ends(
        &f.error("tickTime=2000\n"),
        "zoo.cfg: dataDir: dataDir is not set",
    );
    ends(
        &f.error("dataDir=DATA\nclientPortAddress=127.0.0.1\n"),
        "zoo.cfg:2: clientPortAddress: clientPortAddress is set but clientPort is not set",
    );
    ends(
        &f.error("dataDir=DATA\nminSessionTimeout=5000\nmaxSessionTimeout=4000\n"),
        "minSessionTimeout: 5000 must not be larger",
    );
}

/// A multi-server config without myid, or with a myid that is not a server, is rejected.
#[test]
fn myid_rules() {
    let f = Fixture::new();
    ends(&f.error(THREE), "dataDir: ");
    assert!(f.error(THREE).contains("myid is missing"));
    f.myid("9\n");
    ends(&f.error(THREE), "myid 9 is not among the servers (1, 2, 3)");
    f.myid("one\n");
    ends(&f.error(THREE), "myid:1: myid: expected a server id");
    // Blanks are tolerated with a warning (ZooKeeper itself would reject them).
    f.myid(" 3 \n");
    let cfg = f.load(THREE).expect("ok");
    assert_eq!(cfg.my_id, Some(3));
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("myid")));
}

/// initLimit and syncLimit are required for an ensemble.
#[test]
fn limits_required_when_distributed() {
    let f = Fixture::new();
    f.myid("1");
    ends(
        &f.error(&THREE.replace("initLimit=5\n", "")),
        "zoo.cfg: initLimit: initLimit is not set",
    );
}

/// The same host:port used twice (quorum, election or client port) is rejected, naming both servers.
#[test]
fn duplicate_ports() {
    let f = Fixture::new();
    f.myid("1");
    let err = f.error(&THREE.replace("10.0.0.2:2888:3888", "10.0.0.1:3888:3999"));
    ends(
        &err,
        "zoo.cfg:7: server.2: quorum port 10.0.0.1:3888 is already the election port of server.1",
    );
    let err = f.error(
        "dataDir=DATA\ninitLimit=5\nsyncLimit=2\nserver.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;2181\n",
    );
    ends(
        &err,
        "server.2: client port 127.0.0.1:2181 is already the client port of server.1",
    );
}

/// A server listed twice is an error naming both lines.
#[test]
fn server_listed_twice() {
    let f = Fixture::new();
    let err = f.error(&format!("{THREE}server.2=10.0.0.9:2888:3888\n"));
    ends(
        &err,
        "zoo.cfg:9: server.2: server 2 is listed twice (also on line 7)",
    );
}

/// Observers without any voter are rejected.
#[test]
fn observers_only() {
    let f = Fixture::new();
    let err = f.error("dataDir=DATA\nserver.1=10.0.0.1:2888:3888:observer\n");
    ends(&err, "observers without participants");
}

/// Hierarchical quorums: every voter in exactly one group, weights only for known servers.
#[test]
fn group_and_weight_rules() {
    let f = Fixture::new();
    f.myid("1");
    let err = f.error(&format!("{THREE}group.1=1:2\n"));
    ends(&err, "server.3: server 3 is not in any group");
    let err = f.error(&format!("{THREE}group.1=1:2\ngroup.2=2:3\n"));
    ends(
        &err,
        "zoo.cfg:10: group.2: server 2 is in two groups (1 and 2)",
    );
    let err = f.error(&format!("{THREE}group.1=1:2:3\nweight.7=2\n"));
    ends(&err, "zoo.cfg:10: weight.7: server 7 has no server line");
    let cfg = f
        .load(&format!("{THREE}group.1=1:2\ngroup.2=3\nweight.3=0\n"))
        .expect("ok");
    match &cfg.membership.quorum {
        QuorumSpec::Hierarchical { weights, .. } => assert_eq!(weights.get(&3), Some(&0)),
        other => panic!("{other:?}"),
    }
    assert!(cfg.membership.quorum.is_quorum(&[1, 2].into()));
    assert!(!cfg.membership.quorum.is_quorum(&[1, 3].into()));
}

/// With dynamicConfigFile set, server lines in zoo.cfg are an error, and so is a version in the dynamic file.
#[test]
fn dynamic_file_rules() {
    let f = Fixture::new();
    f.myid("1");
    f.write(
        "zoo.cfg.dynamic",
        "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n",
    );
    let base = "dataDir=DATA\ninitLimit=5\nsyncLimit=2\ndynamicConfigFile=DIR/zoo.cfg.dynamic\n";
    assert_eq!(f.load(base).expect("ok").mode, Mode::Participant);
    let err = f.error(&format!("{base}server.3=127.0.0.1:2890:3890\n"));
    ends(
        &err,
        "zoo.cfg:5: server.3: must be in the dynamic config file",
    );
    f.write(
        "zoo.cfg.dynamic",
        "server.1=127.0.0.1:2888:3888\nversion=1\n",
    );
    ends(
        &f.error(base),
        "zoo.cfg.dynamic:2: version: the dynamic file must not contain a version",
    );
    f.write(
        "zoo.cfg.dynamic",
        "server.1=127.0.0.1:2888:3888\ntickTime=1\n",
    );
    ends(
        &f.error(base),
        "zoo.cfg.dynamic:2: tickTime: unrecognised parameter",
    );
    let err = f.error("dataDir=DATA\ndynamicConfigFile=DIR/missing.dynamic\n");
    ends(&err, "missing.dynamic: ");
}

/// A server line with a trailing blank after a port is rejected, as ZooKeeper (which does not trim it) does.
#[test]
fn trailing_blank_in_server_line() {
    let f = Fixture::new();
    let err = f.error("dataDir=DATA\nserver.1=127.0.0.1:2888:3888;2181 \n");
    ends(
        &err,
        "zoo.cfg:2: server.1: client port \"2181 \" is not a number",
    );
}

/// A static clientPort that contradicts this server's line is an error.
#[test]
fn client_port_conflict() {
    let f = Fixture::new();
    f.myid("1");
    let err = f.error(
        "dataDir=DATA\ninitLimit=5\nsyncLimit=2\nclientPort=2182\nserver.1=10.0.0.1:2888:3888;2181\nserver.2=10.0.0.2:2888:3888;2181\n",
    );
    ends(
        &err,
        "zoo.cfg:5: server.1: client address 0.0.0.0:2181 differs from clientPort",
    );
}

/// A relative dataDir is used as given (relative to the working directory) with a warning.
#[test]
fn relative_paths_warn() {
    let f = Fixture::new();
    let cfg = f.load("dataDir=relative/data\n").expect("ok");
    assert_eq!(cfg.data_dir, Path::new("relative/data"));
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.key.as_deref() == Some("dataDir")));
}

/// A `<zoo.cfg>.dynamic.next` file next to a zoo.cfg with a dynamic file is read as the last seen config.
#[test]
fn dynamic_next_is_last_seen() {
    let f = Fixture::new();
    f.myid("1");
    f.write(
        "zoo.cfg.dynamic.100000000",
        "server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;2182\n",
    );
    f.write(
        "zoo.cfg.dynamic.next",
        "server.1=127.0.0.1:2888:3888;2181\nserver.2=127.0.0.1:2889:3889;2182\n\
         server.3=127.0.0.1:2890:3890;2183\nversion=100000005\n",
    );
    let base = "dataDir=DATA\ninitLimit=5\nsyncLimit=2\nstandaloneEnabled=false\n\
                dynamicConfigFile=DIR/zoo.cfg.dynamic.100000000\n";
    let cfg = f.load(base).expect("ok");
    assert_eq!(cfg.membership.version, 0x100000000);
    let next = cfg.last_seen.expect("last seen config");
    assert_eq!(next.version, 0x100000005);
    assert_eq!(next.servers.len(), 3);
    assert_eq!(
        next.render_dynamic_file(true),
        "server.1=127.0.0.1:2888:3888:participant;0.0.0.0:2181\n\
         server.2=127.0.0.1:2889:3889:participant;0.0.0.0:2182\n\
         server.3=127.0.0.1:2890:3890:participant;0.0.0.0:2183\nversion=100000005"
    );
}

/// outpost's `observerMasterPort.N` gives each voter its own observer-master port (so voters can share a
/// host) without a warning; a bad id or port is an error naming the line and key.
#[test]
fn per_server_observer_master_ports() {
    let f = Fixture::new();
    f.myid("1");
    let cfg = f
        .load(&format!(
            "{THREE}observerMasterPort=2890\nobserverMasterPort.2=12890\nobserverMasterPort.3=13890\n"
        ))
        .expect("ok");
    assert_eq!(cfg.observer_master_port, Some(2890));
    assert_eq!(
        cfg.observer_master_ports
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect::<Vec<_>>(),
        vec![(2, 12890), (3, 13890)]
    );
    assert!(cfg.unknown.is_empty(), "{:?}", cfg.unknown);
    assert!(!cfg.warnings.iter().any(|w| w
        .key
        .as_deref()
        .is_some_and(|k| k.starts_with("observerMasterPort"))));
    ends(
        &f.error(&format!("{THREE}observerMasterPort.x=1\n")),
        "observerMasterPort.x: expected observerMasterPort.<server id>",
    );
    ends(
        &f.error(&format!("{THREE}observerMasterPort.2=70000\n")),
        "observerMasterPort.2: expected a port in 1..65535",
    );
}
