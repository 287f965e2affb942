//! Interop proof for outpost ensembles (issue #4): Apache ZooKeeper 3.8 servers (Debian package) and
//! outpost servers in one voting ensemble, with either implementation leading, agree byte for byte on
//! every znode's data, full Stat, ACL and children after writes through every server; real third-party
//! clients (kazoo, zkCli.sh) work against an outpost ensemble, kazoo keeping its session when its
//! server is killed; and a session created at a Java follower is kept alive and then expired by an
//! outpost leader, its ephemeral vanishing on every server including an observer.

mod support;

use std::time::{Duration, Instant};

use support::ensemble::interop::{
    arm_watches, assert_round_in_tree, assert_same_tree_everywhere, background_runtime, close_all,
    config_node_view, expect_created, find_settled_leader, implementation, kazoo_script, must,
    outpost_status, planned_implementation, round_created_paths, session_in,
    write_through_every_server, zkcli,
};
use support::ensemble::scenario::{
    connect, logs, start_all, start_all_with, test_root, ELECT, START,
};
use support::ensemble::{wait_mode, EnsemblePlan, JavaServer, Member};

/// Asserts that every member of `members` reports the mode it should with `leader` leading
/// (`leader`, `follower` or `observer`) and runs the implementation its plan says, both read from
/// `srvr`; returns the leader's implementation.
fn assert_roles(members: &[Member], leader: u64, servers: &[JavaServer]) -> &'static str {
    for m in members {
        let want = if m.id == leader {
            "leader"
        } else if m.observer {
            "observer"
        } else {
            "follower"
        };
        assert_eq!(
            wait_mode(m.client, START).as_deref(),
            Some(want),
            "server {}\n{}",
            m.id,
            logs(servers)
        );
        assert_eq!(
            implementation(m.client),
            Some(planned_implementation(m)),
            "srvr of server {} names the wrong implementation",
            m.id
        );
    }
    members
        .iter()
        .find(|m| m.id == leader)
        .map(planned_implementation)
        .expect("the leader is a member")
}

/// The mixed-ensemble proof for one plan. The plan's ids are chosen so that killing the first leader
/// hands leadership to the other implementation: with every survivor at the same (epoch, zxid), the
/// highest surviving id wins (`FastLeaderElection.totalOrderPredicate`). Round `a` is written through
/// every server under the first leader and round `b`, with the old leader restarted as a follower,
/// under the second; during each, every server fires the NodeCreated watches it holds, and after
/// each, every server holds the identical tree.
fn writes_agree_whichever_side_leads(plan: &EnsemblePlan) {
    let root = test_root();
    let mut servers = start_all(plan, root.path());
    let rt = background_runtime();
    let members = plan.members.clone();

    let first = find_settled_leader(&members, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    let first_side = assert_roles(&members, first, &servers);

    let watched = round_created_paths(&members, "a");
    let watchers: Vec<_> = members
        .iter()
        .map(|m| rt.block_on(arm_watches(m, &watched)))
        .collect();
    let sessions = rt.block_on(write_through_every_server(&members, "a"));
    for w in watchers {
        rt.block_on(expect_created(w));
    }
    let tree = rt.block_on(assert_same_tree_everywhere(
        &members,
        &format!("round a, {first_side} server {first} leading"),
    ));
    assert_round_in_tree(&tree, &members, "a", true);
    rt.block_on(close_all(sessions));

    servers
        .iter_mut()
        .find(|s| s.member.id == first)
        .expect("leader process")
        .kill_9();
    let survivors: Vec<Member> = members.iter().filter(|m| m.id != first).cloned().collect();
    let second = find_settled_leader(&survivors, ELECT).unwrap_or_else(|| {
        panic!(
            "no new leader within {ELECT:?} after killing {first}\n{}",
            logs(&servers)
        )
    });
    let second_side = assert_roles(&survivors, second, &servers);
    assert_ne!(
        second_side, first_side,
        "leadership did not move to the other implementation ({first} -> {second})"
    );

    let old = servers
        .iter_mut()
        .find(|s| s.member.id == first)
        .expect("old leader process");
    old.restart();
    assert_roles(&members, second, &servers);

    let watched = round_created_paths(&members, "b");
    let watchers: Vec<_> = members
        .iter()
        .map(|m| rt.block_on(arm_watches(m, &watched)))
        .collect();
    let sessions = rt.block_on(write_through_every_server(&members, "b"));
    for w in watchers {
        rt.block_on(expect_created(w));
    }
    let tree = rt.block_on(assert_same_tree_everywhere(
        &members,
        &format!("round b, {second_side} server {second} leading"),
    ));
    assert_round_in_tree(&tree, &members, "a", false);
    assert_round_in_tree(&tree, &members, "b", true);
    rt.block_on(close_all(sessions));
}

/// Two Java voters and one outpost voter (id 3), plus an outpost observer: whichever side leads first,
/// the other leads after kill -9 of the leader, and under both every server, observer included,
/// returns identical data, Stat, ACLs and children for writes sent through every server (creates,
/// sequential and ephemeral nodes, setData, setACL, delete, a committed and a failed multi,
/// closeSession).
#[test]
fn two_java_one_outpost_agree_under_either_leader() {
    writes_agree_whichever_side_leads(&EnsemblePlan::new(3, 1).with_outpost(&[3, 4]));
}

/// One Java voter (id 3) and two outpost voters, plus a Java observer: the same proof with outpost
/// in the majority.
#[test]
fn one_java_two_outpost_agree_under_either_leader() {
    writes_agree_whichever_side_leads(&EnsemblePlan::new(3, 1).with_outpost(&[1, 2]));
}

/// A voter of the other implementation than the leader (leadership is moved to `leader_side` first)
/// misses a round of writes, restarts and catches up from the leader with a DIFF; then every server
/// holds the identical tree. The round includes a failed multi, whose committed form ZooKeeper's
/// leader sends from its in-memory committed log.
fn lagging_voter_catches_up(plan: &EnsemblePlan, leader_side: &str) {
    let root = test_root();
    let mut servers = start_all(plan, root.path());
    let rt = background_runtime();
    let members = plan.members.clone();
    let first = find_settled_leader(&members, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    assert_roles(&members, first, &servers);
    let leader = move_leadership_to(&members, &mut servers, first, leader_side);

    let sessions = rt.block_on(write_through_every_server(&members, "a"));
    rt.block_on(close_all(sessions));
    let lagging = members
        .iter()
        .find(|m| !m.observer && m.id != leader && planned_implementation(m) != leader_side)
        .expect("a voter of the other implementation")
        .clone();
    servers
        .iter_mut()
        .find(|s| s.member.id == lagging.id)
        .expect("lagging process")
        .kill_9();
    let up: Vec<Member> = members
        .iter()
        .filter(|m| m.id != lagging.id)
        .cloned()
        .collect();
    let sessions = rt.block_on(write_through_every_server(&up, "b"));
    rt.block_on(close_all(sessions));
    servers
        .iter_mut()
        .find(|s| s.member.id == lagging.id)
        .expect("lagging process")
        .restart();
    assert_eq!(
        find_settled_leader(&members, START),
        Some(leader),
        "server {} did not rejoin\n{}",
        lagging.id,
        logs(&servers)
    );
    assert_roles(&members, leader, &servers);
    let tree = rt.block_on(assert_same_tree_everywhere(
        &members,
        &format!("server {} back after missing round b", lagging.id),
    ));
    assert_round_in_tree(&tree, &members, "a", false);
    assert_round_in_tree(&tree, &up, "b", false);
}

/// An outpost follower that missed writes (a failed multi among them) catches up from a Java leader
/// by DIFF and then agrees with every server.
#[test]
fn outpost_follower_catches_up_from_a_java_leader() {
    lagging_voter_catches_up(&EnsemblePlan::new(3, 0).with_outpost(&[1, 2]), "java");
}

/// A Java follower that missed writes (a failed multi among them) catches up from an outpost leader
/// by DIFF and then agrees with every server.
#[test]
fn java_follower_catches_up_from_an_outpost_leader() {
    lagging_voter_catches_up(&EnsemblePlan::new(3, 0).with_outpost(&[3]), "outpost");
}

/// Every server of a 1 Java + 2 outpost ensemble serves `/zookeeper/config` as the Java server does:
/// the same bytes (the dynamic config's server lines and `version=0`), Stat (mtime aside, a local
/// clock reading) and ACL, through getData and through getConfig.
#[test]
fn zookeeper_config_node_agrees_across_implementations() {
    let plan = EnsemblePlan::new(3, 0).with_outpost(&[1, 2]);
    let root = test_root();
    let servers = start_all(&plan, root.path());
    let leader = find_settled_leader(&plan.members, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    assert_roles(&plan.members, leader, &servers);
    let rt = background_runtime();
    let view = |m: &Member| {
        rt.block_on(async {
            let c = connect(m.client).await;
            let v = config_node_view(&c, &format!("server {}", m.id)).await;
            let _ = c.close().await;
            v
        })
    };
    let java = view(plan.member(3));
    let text = String::from_utf8_lossy(&java.0.data).into_owned();
    for m in &plan.members {
        assert!(text.contains(&m.server_line()), "Java's config: {text:?}");
    }
    for m in plan.members.iter().filter(|m| !m.java) {
        let outpost = view(m);
        assert_eq!(
            outpost,
            java,
            "server {} (outpost) serves /zookeeper/config as {:?}, the Java server 3 as {text:?}",
            m.id,
            String::from_utf8_lossy(&outpost.0.data)
        );
    }
}

/// Three outpost voters (no Java server) started for a client test; returns the servers, the leader
/// and the followers.
fn outpost_ensemble(
    root: &std::path::Path,
) -> (EnsemblePlan, Vec<JavaServer>, Member, Vec<Member>) {
    let plan = EnsemblePlan::new(3, 0).with_outpost(&[1, 2, 3]);
    let servers = start_all(&plan, root);
    let leader = find_settled_leader(&plan.members, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    assert_roles(&plan.members, leader, &servers);
    let followers = plan
        .members
        .iter()
        .filter(|m| m.id != leader)
        .cloned()
        .collect();
    let leader = plan.member(leader).clone();
    (plan, servers, leader, followers)
}

/// Moves leadership to a server running `side` by killing the leader and restarting it as a follower,
/// at most twice (ids decide where it goes: see [`writes_agree_whichever_side_leads`]); returns the
/// settled leader.
fn move_leadership_to(
    members: &[Member],
    servers: &mut [JavaServer],
    mut leader: u64,
    side: &str,
) -> u64 {
    for _ in 0..2 {
        let current = members
            .iter()
            .find(|m| m.id == leader)
            .map(planned_implementation);
        if current == Some(side) {
            return leader;
        }
        let old = servers
            .iter_mut()
            .find(|s| s.member.id == leader)
            .expect("leader process");
        old.kill_9();
        old.restart();
        let killed = leader;
        leader = find_settled_leader(members, START).unwrap_or_else(|| {
            panic!(
                "no leader after restarting server {killed}\n{}",
                logs(servers)
            )
        });
        assert_roles(members, leader, servers);
    }
    panic!("leadership did not move to {side}: server {leader} leads")
}

/// kazoo's failover script against `plan`: a multi-host connect string whose first host is the
/// server to kill (the leader when `kill_leader`, else a follower, a Java one when there is one), then
/// the other servers; create/get/set, an ephemeral and a watch fired by a second client on a server
/// that stays up; kill -9 of the first host; kazoo must move to another server with the same session
/// (no LOST state, its ephemeral still owned by it: the new server revalidated the session with the
/// leader) and its watches keep firing. Returns the killed member, the one kazoo moved to and the
/// leader (the new one when the leader was killed). With `leader_side`, leadership is first moved to a
/// server of that implementation.
fn kazoo_survives_the_death_of_its_server(
    plan: &EnsemblePlan,
    kill_leader: bool,
    leader_side: Option<&str>,
) -> (Member, Member, Member) {
    let root = test_root();
    // The session must outlive kazoo's reconnect on a loaded machine: allow 10 s (20 ticks by default).
    let mut servers = start_all_with(plan, root.path(), &[("maxSessionTimeout", "20000")]);
    let mut leader = find_settled_leader(&plan.members, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    assert_roles(&plan.members, leader, &servers);
    if let Some(side) = leader_side {
        leader = move_leadership_to(&plan.members, &mut servers, leader, side);
    }
    let mut order: Vec<Member> = plan.members.clone();
    // First the victim: the leader, or a follower, Java ones first; the leader last otherwise.
    order.sort_by_key(|m| ((m.id == leader) != kill_leader, !m.java));
    let victim = order[0].clone();
    let hosts = order
        .iter()
        .map(|m| m.client_addr().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let other = order[order.len() - 1].client_addr().to_string();
    let mut kazoo = kazoo_script(&["failover", &hosts, &other], root.path());

    let line = kazoo.expect_line("kazoo connected", Duration::from_secs(60));
    assert!(line.contains(&victim.client_addr().to_string()), "{line}");
    let sid = session_in(&line);
    servers
        .iter_mut()
        .find(|s| s.member.id == victim.id)
        .expect("victim process")
        .kill_9();
    kazoo.send_line("killed");

    let line = kazoo.expect_line("kazoo reconnected", Duration::from_secs(90));
    assert_eq!(session_in(&line), sid, "{line}");
    let moved_to = order[1..]
        .iter()
        .find(|m| line.contains(&format!(" {} ", m.client_addr())))
        .unwrap_or_else(|| panic!("kazoo reconnected to an unknown server: {line}"))
        .clone();
    kazoo.expect_line(
        "compat: kazoo ensemble failover ok",
        Duration::from_secs(90),
    );
    let survivors: Vec<Member> = order[1..].to_vec();
    let leader = find_settled_leader(&survivors, ELECT)
        .unwrap_or_else(|| panic!("no leader after the failover\n{}", logs(&servers)));
    (victim, moved_to, plan.member(leader).clone())
}

/// kazoo against three outpost servers keeps its session, ephemeral and watches when the outpost
/// follower it is connected to is killed and it moves to the next outpost follower.
#[test]
fn kazoo_keeps_its_session_when_its_server_is_killed() {
    let (from, to, _) = kazoo_survives_the_death_of_its_server(
        &EnsemblePlan::new(3, 0).with_outpost(&[1, 2, 3]),
        false,
        None,
    );
    assert!(!from.java && !to.java);
}

/// The same across implementations: kazoo's session, created through a Java follower of a Java
/// leader (outpost 1 has the lowest id, so a Java server leads), moves to the outpost follower when
/// the Java follower is killed, so the outpost follower revalidates a session it never saw with a Java
/// leader.
#[test]
fn kazoo_moves_from_a_java_follower_to_an_outpost_follower() {
    let (from, to, leader) = kazoo_survives_the_death_of_its_server(
        &EnsemblePlan::new(3, 0).with_outpost(&[1]),
        false,
        None,
    );
    assert!(
        from.java && !to.java && leader.java,
        "{from:?} -> {to:?}, leader {leader:?}"
    );
}

/// kazoo connected to an outpost leader (id 3, up long before the JVMs) that is killed: a Java server
/// becomes leader and kazoo's session, created by the outpost leader and known to the Java servers
/// only through the replicated createSession txn, survives with its ephemeral and watches.
#[test]
fn kazoo_keeps_its_session_when_the_outpost_leader_dies() {
    let (from, _to, leader) = kazoo_survives_the_death_of_its_server(
        &EnsemblePlan::new(3, 0).with_outpost(&[3]),
        true,
        Some("outpost"),
    );
    assert!(
        !from.java && leader.java,
        "{from:?} died, leader {leader:?}"
    );
}

/// The mirror image: kazoo connected to a Java leader (id 3 of 1 Java + 2 outpost; leadership is
/// moved there first if outpost 2 won the first election) that is killed: outpost 2 becomes leader
/// and kazoo's session, created by the Java leader, survives with its ephemeral and watches.
#[test]
fn kazoo_keeps_its_session_when_the_java_leader_dies() {
    let (from, _to, leader) = kazoo_survives_the_death_of_its_server(
        &EnsemblePlan::new(3, 0).with_outpost(&[1, 2]),
        true,
        Some("java"),
    );
    assert!(
        from.java && !leader.java,
        "{from:?} died, leader {leader:?}"
    );
}

/// Apache ZooKeeper's zkCli.sh connected to an outpost follower creates, reads, lists, stats and
/// updates znodes; the Stat it prints matches what the leader serves, and its ephemeral is gone at
/// the leader once zkCli quits.
#[test]
fn zkcli_through_an_outpost_follower() {
    let root = test_root();
    let (_plan, _servers, leader, followers) = outpost_ensemble(root.path());
    let follower = &followers[0];
    let out = zkcli(
        follower.client_addr(),
        &[
            "create /zkcli-ensemble hello",
            "get /zkcli-ensemble",
            "ls /",
            "stat /zkcli-ensemble",
            "set /zkcli-ensemble world!",
            "create -e /zkcli-ensemble/eph e",
            "ls /zkcli-ensemble",
            "get -s /zkcli-ensemble",
        ],
    );
    for line in [
        "Created /zkcli-ensemble",
        "hello",
        "[zkcli-ensemble, zookeeper]",
        "dataLength = 5",
        "Created /zkcli-ensemble/eph",
        "[eph]",
        "world!",
        "dataVersion = 1",
        "dataLength = 6",
        "numChildren = 1",
    ] {
        assert!(
            out.lines().any(|l| l.trim() == line),
            "zkCli output lacks the line {line:?}:\n{out}"
        );
    }
    assert!(out.contains("state:SyncConnected"), "{out}");
    // The last stat block (after `get -s`) against the leader's view of the node.
    let field = |name: &str| {
        out.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("no {name} in zkCli output:\n{out}"))
            .to_string()
    };
    let rt = background_runtime();
    rt.block_on(async {
        let c = connect(leader.client).await;
        must("sync at the leader", c.sync("/zkcli-ensemble")).await;
        let (data, stat) = must("get at the leader", c.get_data("/zkcli-ensemble", false)).await;
        assert_eq!(data, b"world!");
        assert_eq!(field("cZxid"), format!("0x{:x}", stat.czxid));
        assert_eq!(field("mZxid"), format!("0x{:x}", stat.mzxid));
        assert_eq!(field("dataVersion"), stat.version.to_string());
        // zkCli quit (closing its session) before this read: pzxid and cversion count the
        // ephemeral's create and its removal by closeSession.
        assert_eq!(stat.num_children, 0, "{stat:?}");
        assert_eq!(stat.cversion, 2, "{stat:?}");
        let _ = c.close().await;
    });
}

/// The session timeout kazoo asks for in `hold` mode; 4 s is also this harness's maxSessionTimeout
/// (20 ticks of 200 ms), so it is what the server grants.
const HELD_SESSION_TIMEOUT: Duration = Duration::from_secs(4);

/// `exists` of `path` at `port` after `sync`.
async fn exists_at(port: u16, path: &str) -> Option<outpost_core::proto::Stat> {
    let c = connect(port).await;
    must(&format!("sync at {port}"), c.sync(path)).await;
    let stat = must(&format!("exists {path} at {port}"), c.exists(path, false)).await;
    let _ = c.close().await;
    stat
}

/// The session proof on `plan`, whose leader must run `leader_side`: `outpost status` reports every
/// member's mode; kazoo opens a session at a follower of the other implementation and creates an
/// ephemeral, visible with that owner at every server; the session outlives two timeouts while kazoo
/// pings; after kill -9 of the kazoo process (no closeSession) the leader expires the session and the
/// ephemeral disappears from every server including the observer, whose trees then agree.
fn session_expires_everywhere(plan: &EnsemblePlan, leader_side: &str) {
    let root = test_root();
    let servers = start_all(plan, root.path());
    let rt = background_runtime();
    let voters: Vec<Member> = plan.members[..3].to_vec();
    let leader = find_settled_leader(&voters, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    assert_eq!(
        assert_roles(&plan.members, leader, &servers),
        leader_side,
        "server {leader} leads"
    );
    for s in &servers {
        let (out, ok) = outpost_status(&s.config);
        let want = if s.member.id == leader {
            "Mode: leader"
        } else if s.member.observer {
            "Mode: observer"
        } else {
            "Mode: follower"
        };
        assert!(
            ok && out.lines().any(|l| l == want),
            "outpost status --config {} (server {}): want {want:?}, got:\n{out}",
            s.config.display(),
            s.member.id
        );
    }

    let holder_server = voters
        .iter()
        .find(|m| planned_implementation(m) != leader_side)
        .expect("a follower of the other implementation")
        .clone();
    let path = "/held-by-a-killed-client";
    let mut holder = kazoo_script(
        &["hold", &holder_server.client_addr().to_string(), path],
        root.path(),
    );
    let sid = session_in(&holder.expect_line("kazoo holds", Duration::from_secs(60)));
    let owners = |what: &str| {
        for m in &plan.members {
            let stat = rt.block_on(exists_at(m.client, path));
            assert_eq!(
                stat.map(|s| s.ephemeral_owner),
                Some(sid),
                "{what}: {path} at server {} ({})",
                m.id,
                planned_implementation(m)
            );
        }
    };
    owners("after create");
    rt.block_on(assert_same_tree_everywhere(
        &plan.members,
        "with the ephemeral",
    ));
    // Twice the timeout with the client alive: only the follower's PINGs to the leader of the other
    // implementation carry this session's touches, so a lost touch would expire it here.
    std::thread::sleep(HELD_SESSION_TIMEOUT * 2);
    owners("two session timeouts later, client alive");

    holder.kill_9();
    let killed = Instant::now();
    let still_there = rt.block_on(exists_at(plan.member(leader).client, path));
    if killed.elapsed() < HELD_SESSION_TIMEOUT / 2 {
        // No closeSession was sent: until the timeout only expiry can remove it.
        assert!(still_there.is_some(), "the ephemeral vanished at once");
    }
    let deadline = killed + HELD_SESSION_TIMEOUT + Duration::from_secs(30);
    for m in &plan.members {
        while rt.block_on(exists_at(m.client, path)).is_some() {
            assert!(
                Instant::now() < deadline,
                "{path} still at server {} {:?} after the kill\n{}",
                m.id,
                killed.elapsed(),
                logs(&servers)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    rt.block_on(assert_same_tree_everywhere(
        &plan.members,
        "after the session expired",
    ));
}

/// With an outpost leader (outposts 2 and 3 start in milliseconds, a JVM in seconds, so they elect 3),
/// a Java follower, another outpost follower and an outpost observer: `outpost status` reports each
/// member's mode; a session kazoo creates at the Java follower owns an ephemeral visible everywhere
/// and stays alive past its timeout while kazoo pings; after kill -9 of the kazoo process the outpost
/// leader expires it and the ephemeral disappears from every server, whose trees then agree.
#[test]
fn session_at_a_java_follower_expires_everywhere() {
    session_expires_everywhere(&EnsemblePlan::new(3, 1).with_outpost(&[2, 3, 4]), "outpost");
}

/// The reverse: Java voters 2 and 3 (one leads), an outpost follower holding the session and an
/// outpost observer: the Java leader keeps the session alive on the outpost follower's touches, then
/// expires it, and the outpost follower and observer drop the ephemeral.
#[test]
fn session_at_an_outpost_follower_expires_everywhere() {
    session_expires_everywhere(&EnsemblePlan::new(3, 1).with_outpost(&[1, 4]), "java");
}
