//! Dynamic reconfiguration across real outpost processes: an ensemble of three voters grows to three
//! voters and two observers with `reconfig -add` and shrinks back with `reconfig -remove` while a client
//! writes through a voter; every member agrees on `/zookeeper/config`, writes `zoo.cfg.dynamic.<version>`
//! and points zoo.cfg at it (a restarted member reads it back); removed observers stop serving and close
//! their clients' connections; no acknowledged write is lost and the writer's session survives.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outpost_core::client::{Client, CreateMode, KeeperState};
use outpost_core::proto::ErrorCode;
use support::ensemble::scenario::{connect, create_on, logs, runtime, test_root, ELECT, OP, START};
use support::ensemble::{
    find_leader, find_leader_all_serving, start_member, wait_mode, EnsemblePlan, JavaServer, Member,
};

/// `DigestAuthenticationProvider.generateDigest("super:test")`.
const SUPER_DIGEST: &str = "super:D/InIHSb7yEEbrWz8b9l71RjZJU=";

/// zoo.cfg keys of every member: reconfig on, the super user configured as operators do.
const RECONFIG_KEYS: &[(&str, &str)] = &[
    ("reconfigEnabled", "true"),
    ("DigestAuthenticationProvider.superDigest", SUPER_DIGEST),
];

/// A session authenticated as the super user (`addauth digest super:test`).
async fn super_session(port: u16) -> Client {
    let c = connect(port).await;
    tokio::time::timeout(OP, c.add_auth("digest", b"super:test"))
        .await
        .expect("addauth in time")
        .expect("addauth sent")
        .expect("addauth accepted");
    c
}

/// Polls until `f` holds or `timeout` passes; returns whether it held.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `/zookeeper/config` as seen by a fresh session on `port` (after a sync, so it is the latest).
fn config_on(rt: &tokio::runtime::Runtime, port: u16) -> Option<String> {
    rt.block_on(async {
        let (c, _events) = tokio::time::timeout(
            OP,
            Client::connect(&format!("127.0.0.1:{port}"), Duration::from_secs(4)),
        )
        .await
        .ok()?
        .ok()?;
        let _ = tokio::time::timeout(OP, c.sync("/zookeeper/config")).await;
        let (data, _) = tokio::time::timeout(OP, c.get_config(false))
            .await
            .ok()?
            .ok()?
            .ok()?;
        let _ = c.close().await;
        Some(String::from_utf8_lossy(&data).into_owned())
    })
}

/// The version line of a configuration text.
fn version_of(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("version="))
        .unwrap_or_default()
        .to_string()
}

/// Checks what a member persisted after activating `config`: the versioned dynamic file with the
/// sorted server lines and zoo.cfg's `dynamicConfigFile` naming it.
fn assert_persisted(cfg: &std::path::Path, config: &str) {
    let version = version_of(config);
    let dynamic = std::path::PathBuf::from(format!("{}.dynamic.{version}", cfg.display()));
    let text = std::fs::read_to_string(&dynamic)
        .unwrap_or_else(|e| panic!("read {}: {e}", dynamic.display()));
    let mut expected: Vec<&str> = config
        .lines()
        .filter(|l| l.starts_with("server."))
        .collect();
    expected.sort_unstable();
    assert_eq!(text, expected.join("\n"), "{}", dynamic.display());
    let zoo = std::fs::read_to_string(cfg).expect("read zoo.cfg");
    assert!(
        zoo.lines()
            .any(|l| l == format!("dynamicConfigFile={}", dynamic.display())),
        "zoo.cfg does not name {}:\n{zoo}",
        dynamic.display()
    );
    assert!(!zoo.lines().any(|l| l.starts_with("server.")), "{zoo}");
}

/// Writes every member's directory (the first `voters` members know only the voters; each later member
/// knows the voters and itself, ZooKeeper's way of starting a server that is to be added), starts the
/// voters and waits for their leader. Returns the servers, every member's zoo.cfg and the leader.
fn start_voters(
    plan: &EnsemblePlan,
    voters: usize,
    root: &std::path::Path,
) -> (Vec<JavaServer>, Vec<std::path::PathBuf>, u64) {
    let voter_plan = EnsemblePlan {
        members: plan.members[..voters].to_vec(),
    };
    let mut cfgs = Vec::new();
    for (i, m) in plan.members.iter().enumerate() {
        let dynamic = if i >= voters {
            format!("{}{}\n", voter_plan.dynamic_config(), m.server_line())
        } else {
            voter_plan.dynamic_config()
        };
        cfgs.push(plan.write_member_dir_with(m.id, root, RECONFIG_KEYS, &dynamic));
    }
    let servers: Vec<JavaServer> = plan.members[..voters]
        .iter()
        .zip(&cfgs)
        .map(|(m, cfg)| start_member(cfg, m))
        .collect();
    let leader = find_leader_all_serving(&voter_plan.members, START)
        .unwrap_or_else(|| panic!("no leader among the voters\n{}", logs(&servers)));
    (servers, cfgs, leader)
}

/// Starts `observer` (its zoo.cfg names the voters and itself) and waits until it serves as an observer.
fn start_observer(servers: &mut Vec<JavaServer>, cfg: &std::path::Path, observer: &Member) {
    servers.push(start_member(cfg, observer));
    assert_eq!(
        wait_mode(observer.client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(servers)
    );
}

/// Three voters grow to three voters and two observers and back, while a client writes: see the module
/// documentation for everything checked.
#[test]
fn grow_and_shrink_observers_while_writing() {
    let plan = EnsemblePlan::new(3, 2).with_outpost(&[1, 2, 3, 4, 5]);
    let root = test_root();
    let (mut servers, cfgs, leader) = start_voters(&plan, 3, root.path());
    let rt = runtime();

    // A writer on voter 1: sequential creates, each recorded once acknowledged.
    let writer_port = plan.member(1).client;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = runtime();
            rt.block_on(async {
                let c = connect(writer_port).await;
                let session = c.session_id();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    let path = format!("/w{i:06}");
                    match tokio::time::timeout(
                        OP,
                        c.create(
                            &path,
                            b"x",
                            &outpost_core::proto::Acl::open_unsafe(),
                            CreateMode::Persistent,
                        ),
                    )
                    .await
                    {
                        Ok(Ok(Ok(_))) => acked.lock().expect("lock").push(path),
                        Ok(Ok(Err(code))) => panic!("write {path} failed: {code:?}"),
                        Ok(Err(e)) => panic!("write {path} failed: {e}"),
                        Err(_) => panic!("write {path} timed out"),
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // The session lived through both reconfigs.
                create_on(&c, "/writer-done", b"", CreateMode::Persistent).await;
                assert_eq!(c.session_id(), session);
                let _ = c.close().await;
            });
        })
    };

    // The observers start outside the configuration and observe the leader already.
    for m in &plan.members[3..] {
        servers.push(start_member(&cfgs[(m.id - 1) as usize], m));
    }
    for m in &plan.members[3..] {
        assert_eq!(
            wait_mode(m.client, START).as_deref(),
            Some("observer"),
            "observer {} did not start\n{}",
            m.id,
            logs(&servers)
        );
    }

    // Without the super user, reconfig is refused (only the super user may write /zookeeper/config).
    let add = format!(
        "{},{}",
        plan.member(4).server_line(),
        plan.member(5).server_line()
    );
    rt.block_on(async {
        let c = connect(plan.member(2).client).await;
        let r = c.reconfig(Some(&add), None, None, -1).await;
        assert!(matches!(r, Ok(Err(ErrorCode::NoAuth))), "{r:?}");
    });

    // Grow: -add both observers through a follower (it forwards to the leader).
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    let grown = rt.block_on(async {
        let c = super_session(plan.member(follower).client).await;
        let (data, _) = tokio::time::timeout(OP, c.reconfig(Some(&add), None, None, -1))
            .await
            .expect("reconfig in time")
            .expect("reconfig sent")
            .unwrap_or_else(|e| panic!("reconfig -add: {e:?}\n{}", logs(&servers)));
        String::from_utf8(data).expect("utf8")
    });
    assert!(
        grown.contains(&format!("server.4=127.0.0.1:{}", plan.member(4).quorum)),
        "{grown}"
    );
    assert!(grown.contains(":observer;127.0.0.1:"), "{grown}");
    for m in &plan.members {
        assert!(
            eventually(ELECT, || config_on(&rt, m.client).as_deref()
                == Some(grown.as_str())),
            "member {} does not show the grown configuration\n{}",
            m.id,
            logs(&servers)
        );
        assert_persisted(&cfgs[(m.id - 1) as usize], &grown);
    }

    // A client reading through observer 4 sees the writes, then loses its connection at the removal.
    let (observer_client, mut events) = rt.block_on(async {
        let (c, events) = Client::connect(
            &format!("127.0.0.1:{}", plan.member(4).client),
            Duration::from_secs(4),
        )
        .await
        .expect("connect to observer 4");
        let _ = c.sync("/").await;
        let children = c
            .get_children("/", false)
            .await
            .expect("read sent")
            .expect("read on the observer");
        assert!(children.iter().any(|n| n.starts_with('w')), "{children:?}");
        (c, events)
    });

    // Shrink: -remove both observers, with -v naming the grown configuration's version.
    let version = i64::from_str_radix(&version_of(&grown), 16).expect("hex version");
    let shrunk = rt.block_on(async {
        let c = super_session(plan.member(leader).client).await;
        let (data, _) = tokio::time::timeout(OP, c.reconfig(None, Some("4,5"), None, version))
            .await
            .expect("reconfig in time")
            .expect("reconfig sent")
            .unwrap_or_else(|e| panic!("reconfig -remove: {e:?}\n{}", logs(&servers)));
        // The same -v again is stale now.
        let again = c.reconfig(None, Some("4"), None, version).await;
        assert!(matches!(again, Ok(Err(ErrorCode::BadVersion))), "{again:?}");
        String::from_utf8(data).expect("utf8")
    });
    assert!(!shrunk.contains("server.4="), "{shrunk}");
    for m in &plan.members[..3] {
        assert!(
            eventually(ELECT, || config_on(&rt, m.client).as_deref()
                == Some(shrunk.as_str())),
            "voter {} does not show the shrunk configuration\n{}",
            m.id,
            logs(&servers)
        );
        assert_persisted(&cfgs[(m.id - 1) as usize], &shrunk);
    }
    // The removed observers stop serving: their client was disconnected and new sessions are refused.
    let disconnected = rt.block_on(async {
        tokio::time::timeout(ELECT, async {
            while let Some(ev) = events.recv().await {
                if ev.state == KeeperState::Disconnected {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false)
    });
    assert!(
        disconnected,
        "observer 4's client was not disconnected\n{}",
        logs(&servers)
    );
    drop(observer_client);
    for m in &plan.members[3..] {
        assert!(
            eventually(ELECT, || support::ensemble::srvr_mode(m.client).is_none()),
            "removed observer {} still serves\n{}",
            m.id,
            logs(&servers)
        );
    }

    // A follower restarted from its rewritten zoo.cfg (which now names zoo.cfg.dynamic.<version>) comes
    // back with the shrunk configuration.
    let restarted = (1..=3)
        .find(|id| *id != leader && *id != 1)
        .expect("a follower");
    servers[(restarted - 1) as usize].restart();
    assert_eq!(
        wait_mode(plan.member(restarted).client, START).as_deref(),
        Some("follower"),
        "voter {restarted} did not come back\n{}",
        logs(&servers)
    );
    assert_eq!(
        config_on(&rt, plan.member(restarted).client).as_deref(),
        Some(shrunk.as_str())
    );

    // Enough writes to span both reconfigs and some time after.
    assert!(
        eventually(ELECT, || acked.lock().expect("lock").len() >= 30),
        "the writer stalled\n{}",
        logs(&servers)
    );
    stop.store(true, Ordering::SeqCst);
    writer.join().expect("writer thread");
    let acked = acked.lock().expect("lock").clone();
    for m in &plan.members[..3] {
        let children = rt.block_on(async {
            let c = connect(m.client).await;
            let _ = c.sync("/").await;
            c.get_children("/", false)
                .await
                .expect("read sent")
                .expect("children")
        });
        let missing: Vec<&String> = acked
            .iter()
            .filter(|p| !children.contains(&p[1..].to_string()))
            .take(5)
            .collect();
        assert!(
            missing.is_empty(),
            "voter {} lost acknowledged writes {missing:?}",
            m.id
        );
    }
    drop(servers);
}

/// Apache ZooKeeper's zkCli.sh reconfigures an outpost ensemble unchanged: refused without the super
/// user, `-add` of an observer after `addauth digest super:…` prints the committed configuration, a
/// stale `-v` is refused, and `config` shows the new configuration.
#[test]
fn zkcli_reconfig_against_outpost() {
    let plan = EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]);
    let root = test_root();
    let (mut servers, cfgs, _leader) = start_voters(&plan, 3, root.path());
    let observer = plan.member(4);
    start_observer(&mut servers, &cfgs[3], observer);
    let add = format!("reconfig -add {}", observer.server_line());
    let out = support::ensemble::interop::zkcli(
        plan.member(1).client_addr(),
        &[
            add.as_str(),
            "addauth digest super:test",
            add.as_str(),
            "reconfig -v 1 -remove 4",
            "config",
        ],
    );
    assert!(out.contains("Insufficient permission"), "{out}");
    let committed = out
        .find("Committed new configuration:")
        .unwrap_or_else(|| panic!("no committed configuration:\n{out}"));
    let after = &out[committed..];
    assert!(
        after.contains(&format!(
            "server.4=127.0.0.1:{}:{}:observer;127.0.0.1:{}",
            observer.quorum, observer.election, observer.client
        )),
        "{out}"
    );
    assert!(after.contains("version="), "{out}");
    assert!(out.contains("version No is not valid"), "{out}");
    let rt = runtime();
    // The member is asked until it answers: a connection refused while it is busy is not the point here.
    let mut config = None;
    assert!(
        eventually(OP, || {
            config = config_on(&rt, plan.member(2).client);
            config.is_some()
        }),
        "member 2 never answered getConfig\n{}",
        logs(&servers)
    );
    let config = config.unwrap_or_default();
    assert!(config.contains("server.4="), "{config}");
    drop(servers);
}

/// outpost's own zkCli-style client reconfigures the ensemble as zkCli.sh does: commands piped one per
/// line, `reconfig -add` refused before `addauth digest super:…`, accepted after it (printing the
/// committed configuration), then `reconfig -remove 4` and `config` without server 4.
#[test]
fn outpost_cli_reconfig_add_and_remove() {
    let plan = EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]);
    let root = test_root();
    let (mut servers, cfgs, _leader) = start_voters(&plan, 3, root.path());
    let observer = plan.member(4);
    start_observer(&mut servers, &cfgs[3], observer);
    let add = format!("reconfig -add {}", observer.server_line());
    let script = format!("{add}\naddauth digest super:test\n{add}\nreconfig -remove 4\nconfig\n");
    let mut child = std::process::Command::new(support::outpost_bin())
        .args([
            "cli",
            "-server",
            &format!("127.0.0.1:{}", plan.member(2).client),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run outpost cli");
    std::io::Write::write_all(child.stdin.as_mut().expect("cli stdin"), script.as_bytes())
        .expect("write commands");
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("outpost cli output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Insufficient permission"), "{text}");
    let committed = text
        .find("Committed new configuration:")
        .unwrap_or_else(|| panic!("no committed configuration:\n{text}"));
    assert!(text[committed..].contains("server.4="), "{text}");
    let rt = runtime();
    let mut config = None;
    assert!(
        eventually(OP, || {
            config = config_on(&rt, plan.member(1).client);
            config.as_deref().is_some_and(|c| !c.contains("server.4="))
        }),
        "server 4 still in the configuration after -remove: {config:?}\n{text}"
    );
    drop(servers);
}

/// Runs `outpost reconfig` with `args`; returns (success, stdout + stderr).
fn outpost_reconfig(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(support::outpost_bin())
        .arg("reconfig")
        .args(args)
        .output()
        .expect("run outpost reconfig");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `outpost reconfig --from-file`: a dry run prints the plan for an addition, a removal and a role
/// change without changing anything; applying a file that adds an observer commits exactly that, and
/// without the super user's password the ensemble refuses it.
#[test]
fn from_file_plans_and_applies() {
    let plan = EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]);
    let root = test_root();
    let (mut servers, cfgs, _leader) = start_voters(&plan, 3, root.path());
    let observer = plan.member(4);
    start_observer(&mut servers, &cfgs[3], observer);
    let cfg = cfgs[0].display().to_string();
    let edited = root.path().join("edited.dynamic");
    let mut role_changed = plan.member(3).clone();
    role_changed.observer = true;
    let text = format!(
        "{}\n{}\n{}\n",
        plan.member(1).server_line(),
        role_changed.server_line(),
        observer.server_line()
    );
    std::fs::write(&edited, text).expect("write edited file");
    let file = edited.display().to_string();
    let (ok, out) = outpost_reconfig(&["--from-file", &file, "--config", &cfg, "--dry-run"]);
    assert!(ok, "{out}");
    for needle in [
        "running configuration version 0: 3 voters, 0 observers",
        "add     server.4 as observer",
        "remove  server.2 (participant)",
        "change  server.3: participant -> observer",
        "-remove 2 -v 0",
    ] {
        assert!(out.contains(needle), "plan lacks {needle:?}:\n{out}");
    }
    let rt = runtime();
    let before = config_on(&rt, plan.member(1).client).expect("config");
    assert!(
        !before.contains("server.4="),
        "a dry run changed the configuration: {before}"
    );

    // Apply: keep the voters, add the observer.
    let text = format!(
        "{}{}\n",
        EnsemblePlan {
            members: plan.members[..3].to_vec()
        }
        .dynamic_config(),
        observer.server_line()
    );
    std::fs::write(&edited, text).expect("write edited file");
    let (ok, out) = outpost_reconfig(&["--from-file", &file, "--config", &cfg]);
    assert!(!ok, "applied without the super user:\n{out}");
    assert!(out.contains("Insufficient permission"), "{out}");
    let (ok, out) = outpost_reconfig(&[
        "--from-file",
        &file,
        "--config",
        &cfg,
        "--auth",
        "super:test",
    ]);
    assert!(ok, "{out}\n{}", logs(&servers));
    assert!(out.contains("Committed new configuration:"), "{out}");
    let after = config_on(&rt, plan.member(2).client).expect("config");
    assert!(after.contains(":observer;"), "{after}");
    // Applying the same file again is a no-op.
    let (ok, out) = outpost_reconfig(&[
        "--from-file",
        &file,
        "--config",
        &cfg,
        "--auth",
        "super:test",
    ]);
    assert!(ok && out.contains("nothing to change"), "{out}");
    drop(servers);
}

/// A mixed ensemble (one Apache ZooKeeper 3.8 voter, two outpost voters) adds and removes an outpost
/// observer by a reconfig sent through the Java member: every member, Java included, shows each
/// committed configuration, so the reconfig packets and texts are understood both ways.
#[test]
fn mixed_java_outpost_reconfig() {
    add_and_remove_an_observer(&EnsemblePlan::new(3, 1).with_outpost(&[2, 3, 4]), 1, 2);
}

/// The other direction: two Apache ZooKeeper 3.8 voters (one of them leads: the outpost voter has the
/// lowest id) and one outpost voter; the reconfig enters at the outpost follower, so the Java leader's
/// proposal, its COMMITANDACTIVATE to an outpost follower and INFORMANDACTIVATE to an outpost observer
/// carry the change, and the outpost follower persists it as ZooKeeper does.
#[test]
fn java_leader_reconfigures_outpost_members() {
    let plan = EnsemblePlan::new(3, 1).with_outpost(&[1, 4]);
    add_and_remove_an_observer(&plan, 1, 1);
}

/// Adds observer 4 by a reconfig sent to member `add_via`, then removes it through member
/// `remove_via`; every member shows each committed configuration, outpost voters persist it, and the
/// removed observer stops serving.
fn add_and_remove_an_observer(plan: &EnsemblePlan, add_via: u64, remove_via: u64) {
    let root = test_root();
    let (mut servers, cfgs, leader) = start_voters(plan, 3, root.path());
    let observer = plan.member(4);
    start_observer(&mut servers, &cfgs[3], observer);
    let rt = runtime();
    let grown = rt.block_on(async {
        let c = super_session(plan.member(add_via).client).await;
        let (data, _) = tokio::time::timeout(
            OP,
            c.reconfig(Some(&observer.server_line()), None, None, -1),
        )
        .await
        .expect("reconfig in time")
        .expect("reconfig sent")
        .unwrap_or_else(|e| {
            panic!(
                "reconfig -add through {add_via} (leader {leader}): {e:?}\n{}",
                logs(&servers)
            )
        });
        String::from_utf8(data).expect("utf8")
    });
    assert!(grown.contains("server.4="), "{grown}");
    for m in &plan.members {
        assert!(
            eventually(ELECT, || config_on(&rt, m.client).as_deref()
                == Some(grown.as_str())),
            "member {} does not show the grown configuration\n{grown}\n{}",
            m.id,
            logs(&servers)
        );
    }
    for (m, cfg) in plan.members[..3].iter().zip(&cfgs) {
        if !m.java {
            assert_persisted(cfg, &grown);
        }
    }
    let shrunk = rt.block_on(async {
        let c = super_session(plan.member(remove_via).client).await;
        let (data, _) = tokio::time::timeout(OP, c.reconfig(None, Some("4"), None, -1))
            .await
            .expect("reconfig in time")
            .expect("reconfig sent")
            .unwrap_or_else(|e| {
                panic!(
                    "reconfig -remove through {remove_via}: {e:?}\n{}",
                    logs(&servers)
                )
            });
        String::from_utf8(data).expect("utf8")
    });
    for m in &plan.members[..3] {
        assert!(
            eventually(ELECT, || config_on(&rt, m.client).as_deref()
                == Some(shrunk.as_str())),
            "voter {} does not show the shrunk configuration\n{shrunk}\n{}",
            m.id,
            logs(&servers)
        );
    }
    assert!(
        eventually(ELECT, || support::ensemble::srvr_mode(observer.client)
            .is_none()),
        "removed observer still serves\n{}",
        logs(&servers)
    );
    drop(servers);
}

/// A voter joins (it syncs first as a non-voting follower), then the leader is removed: the new
/// configuration's designated leader takes over without an election, the removed leader stops
/// serving, and writes go on.
#[test]
fn add_a_voter_then_remove_the_leader() {
    let mut plan = EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]);
    plan.members[3].observer = false;
    let root = test_root();
    let (mut servers, cfgs, leader) = start_voters(&plan, 3, root.path());
    let joiner = plan.member(4);
    servers.push(start_member(&cfgs[3], joiner));
    assert_eq!(
        wait_mode(joiner.client, START).as_deref(),
        Some("follower"),
        "the joiner did not sync as a non-voting follower\n{}",
        logs(&servers)
    );
    let rt = runtime();
    let follower = (1..=3).find(|id| *id != leader).expect("a follower");
    rt.block_on(async {
        let c = super_session(plan.member(follower).client).await;
        tokio::time::timeout(OP, c.reconfig(Some(&joiner.server_line()), None, None, -1))
            .await
            .expect("reconfig in time")
            .expect("reconfig sent")
            .unwrap_or_else(|e| panic!("reconfig -add a voter: {e:?}\n{}", logs(&servers)));
        tokio::time::timeout(OP, c.reconfig(None, Some(&leader.to_string()), None, -1))
            .await
            .expect("reconfig in time")
            .expect("reconfig sent")
            .unwrap_or_else(|e| panic!("reconfig -remove the leader: {e:?}\n{}", logs(&servers)));
    });
    let remaining: Vec<_> = plan
        .members
        .iter()
        .filter(|m| m.id != leader)
        .cloned()
        .collect();
    let new_leader = find_leader(&remaining, ELECT)
        .unwrap_or_else(|| panic!("no leader after removing {leader}\n{}", logs(&servers)));
    assert_ne!(new_leader, leader);
    assert!(
        eventually(ELECT, || support::ensemble::srvr_mode(
            plan.member(leader).client
        )
        .is_none()),
        "the removed leader still serves\n{}",
        logs(&servers)
    );
    rt.block_on(async {
        let c = connect(plan.member(new_leader).client).await;
        create_on(&c, "/after-handoff", b"x", CreateMode::Persistent).await;
    });
    let handoff = servers.iter().filter(|s| s.member.id != leader).any(|s| {
        std::fs::read_to_string(s.log_path())
            .unwrap_or_default()
            .contains("reconfig hand-off")
    });
    assert!(
        handoff,
        "no member took its role by hand-off\n{}",
        logs(&servers)
    );
    drop(servers);
}
