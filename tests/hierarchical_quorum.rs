//! Hierarchical quorums (`group.N` / `weight.N` in zoo.cfg.dynamic, ZooKeeper's `QuorumHierarchical`)
//! with real processes: six voters in three groups of two, where a quorum is a weight majority in a
//! majority of groups. Losing a whole group leaves a quorum; losing one member of each of two groups
//! does not, although the same four servers of six are alive, which a majority quorum would accept.
//! Run on outpost alone and mixed with Apache ZooKeeper 3.8, which must agree on the rule.

mod support;

use std::time::{Duration, Instant};

use support::ensemble::scenario::{self, connect, create_on, read, runtime, test_root, ELECT};
use support::ensemble::{find_leader, srvr_mode, start_member, EnsemblePlan, JavaServer, Member};

/// The groups: {1, 2}, {3, 4}, {5, 6}, every voter of weight 1.
const GROUPS: &str = "group.1=1:2\ngroup.2=3:4\ngroup.3=5:6\n\
                      weight.1=1\nweight.2=1\nweight.3=1\nweight.4=1\nweight.5=1\nweight.6=1\n";

/// Starts the six members with the groups in every member's zoo.cfg.dynamic.
fn start(plan: &EnsemblePlan, root: &std::path::Path) -> Vec<JavaServer> {
    let dynamic = format!("{}{GROUPS}", plan.dynamic_config());
    plan.members
        .iter()
        .map(|m| {
            let cfg = plan.write_member_dir_with(m.id, root, &[], &dynamic);
            start_member(&cfg, m)
        })
        .collect()
}

/// The members among `ids`.
fn members(plan: &EnsemblePlan, ids: &[u64]) -> Vec<Member> {
    plan.members
        .iter()
        .filter(|m| ids.contains(&m.id))
        .cloned()
        .collect()
}

/// A leader among `ids` with every other one of them following (a quorum formed), within `timeout`.
fn quorum_among(plan: &EnsemblePlan, ids: &[u64], timeout: Duration) -> Option<u64> {
    let alive = members(plan, ids);
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(leader) = find_leader(&alive, timeout.saturating_sub(start.elapsed())) {
            let following = alive
                .iter()
                .filter(|m| srvr_mode(m.client).as_deref() == Some("follower"))
                .count();
            if following == alive.len() - 1 {
                return Some(leader);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

/// A write through member `port` either fails or does not finish within `limit`.
fn write_fails(port: u16, path: &str, limit: Duration) -> bool {
    let rt = runtime();
    rt.block_on(async {
        let attempt = async {
            let c = outpost_core::client::Client::connect(
                &format!("127.0.0.1:{port}"),
                Duration::from_secs(4),
            )
            .await
            .ok()?
            .0;
            let created = c
                .create(
                    path,
                    b"x",
                    &outpost_core::proto::Acl::open_unsafe(),
                    outpost_core::client::CreateMode::Persistent,
                )
                .await
                .ok()?
                .ok();
            let _ = c.close().await;
            created
        };
        !matches!(tokio::time::timeout(limit, attempt).await, Ok(Some(_)))
    })
}

/// The scenario, for any mix of implementations.
fn groups_decide_the_quorum(plan: &EnsemblePlan) {
    let root = test_root();
    let mut servers = start(plan, root.path());
    let all = [1, 2, 3, 4, 5, 6];
    assert!(
        quorum_among(plan, &all, ELECT).is_some(),
        "six voters did not form a quorum:\n{}",
        scenario::logs(&servers)
    );
    let rt = runtime();
    rt.block_on(async {
        let c = connect(plan.member(6).client).await;
        create_on(
            &c,
            "/h",
            b"before",
            outpost_core::client::CreateMode::Persistent,
        )
        .await;
        let _ = c.close().await;
    });

    // A whole group lost: groups 2 and 3 are a majority of groups, each with its whole weight.
    servers[0].kill_9();
    servers[1].kill_9();
    assert!(
        quorum_among(plan, &[3, 4, 5, 6], ELECT).is_some(),
        "losing group 1 must leave a quorum:\n{}",
        scenario::logs(&servers)
    );
    scenario::create(&rt, plan.member(3).client, "/h/group-1-down", b"ok");
    servers[0].restart();
    servers[1].restart();
    assert!(
        quorum_among(plan, &all, ELECT).is_some(),
        "group 1 did not rejoin:\n{}",
        scenario::logs(&servers)
    );

    // One member of group 1 and one of group 2 lost: four of six alive, but only group 3 keeps a weight
    // majority, and one group of three is not a majority of groups.
    servers[0].kill_9();
    servers[2].kill_9();
    let rest = [2, 4, 5, 6];
    // The old quorum dissolves within syncLimit; after that no quorum may form among the rest.
    let dissolved = Instant::now() + ELECT;
    while quorum_among(plan, &rest, Duration::from_millis(500)).is_some() {
        assert!(
            Instant::now() < dissolved,
            "a quorum stayed among 2, 4, 5, 6:\n{}",
            scenario::logs(&servers)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        quorum_among(plan, &rest, Duration::from_secs(8)).is_none(),
        "2, 4, 5, 6 formed a quorum without a majority of groups:\n{}",
        scenario::logs(&servers)
    );
    assert!(
        write_fails(
            plan.member(5).client,
            "/h/no-quorum",
            Duration::from_secs(6)
        ),
        "a write succeeded without a hierarchical quorum"
    );

    // Member 3 back: group 2 has its weight again, so groups 2 and 3 form a quorum with every write.
    servers[2].restart();
    assert!(
        quorum_among(plan, &[2, 3, 4, 5, 6], ELECT).is_some(),
        "groups 2 and 3 did not form a quorum again:\n{}",
        scenario::logs(&servers)
    );
    assert_eq!(read(&rt, plan.member(2).client, "/h"), b"before");
    assert_eq!(read(&rt, plan.member(4).client, "/h/group-1-down"), b"ok");
}

/// Six outpost voters in three groups follow the hierarchical rule, not a plain majority.
#[test]
fn outpost_hierarchical_quorum() {
    groups_decide_the_quorum(&EnsemblePlan::new(6, 0).with_outpost(&[1, 2, 3, 4, 5, 6]));
}

/// Three outpost and three Apache ZooKeeper voters (one of each in every group) agree on the
/// hierarchical rule.
#[test]
fn mixed_hierarchical_quorum() {
    groups_decide_the_quorum(&EnsemblePlan::new(6, 0).with_outpost(&[2, 4, 6]));
}
