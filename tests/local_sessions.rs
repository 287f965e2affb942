//! Local sessions (`localSessionsEnabled=true`, `localSessionsUpgradingEnabled=true`) in real
//! ensembles of three voters and an observer (issue #5): a client of the observer writes and reads
//! without any session reaching the quorum, an ephemeral create upgrades its session to a global one
//! that the leader tracks and that closing ends everywhere, and a local session cannot move to another
//! server while an upgraded one can. Run on an outpost ensemble and on three Apache ZooKeeper 3.8
//! voters (Debian package) with an outpost observer.
//!
//! The tests run one at a time (a file-wide lock): ensembles are CPU-heavy on two shared cores.

mod support;

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use outpost_core::client::{CreateMode, EventReceiver, KeeperState};
use outpost_core::proto::Stat;

use support::ensemble::scenario::{
    connect, create_on, get_on, logs, runtime, start_all_with, test_root, OP, START,
};
use support::ensemble::{find_leader_all_serving, wait_mode, EnsemblePlan, Member};
use support::mntr_value;
use support::wan::session;

/// One test at a time in this file.
static SERIAL: Mutex<()> = Mutex::new(());

/// zoo.cfg keys of every member: local sessions with upgrading, and session timeouts long enough
/// that an upgraded session outlives its client's move to another server on a loaded machine.
const LOCAL_SESSIONS: &[(&str, &str)] = &[
    ("localSessionsEnabled", "true"),
    ("localSessionsUpgradingEnabled", "true"),
    ("maxSessionTimeout", "20000"),
];
/// The session timeout the clients ask for.
const SESSION: Duration = Duration::from_secs(10);
/// Bound for a client to notice a dead server and finish its reconnect elsewhere.
const MOVE: Duration = Duration::from_secs(20);

/// `mntr`'s `key` at `member`, waiting up to [`OP`] for it to serve (a follower may still be
/// syncing when the election is over); panics when it never answers with a number.
fn mntr(member: &Member, key: &str) -> i64 {
    let deadline = std::time::Instant::now() + OP;
    loop {
        if let Some(v) = mntr_value(member.client_addr(), key) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server {} has no {key} in mntr within {OP:?}",
            member.id
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Stat of `path` at `member` after a sync (so the server has everything committed), through a
/// session of its own.
async fn stat_at(member: &Member, path: &str) -> Option<Stat> {
    let c = connect(member.client).await;
    let stat = tokio::time::timeout(OP, async {
        c.sync(path)
            .await
            .unwrap_or_else(|e| panic!("sync at {}: {e}", member.id))
            .unwrap_or_else(|e| panic!("sync at {}: {e:?}", member.id));
        c.exists(path, false)
            .await
            .unwrap_or_else(|e| panic!("exists {path} at {}: {e}", member.id))
            .unwrap_or_else(|e| panic!("exists {path} at {}: {e:?}", member.id))
    })
    .await
    .unwrap_or_else(|_| panic!("stat {path} at {}: timed out", member.id));
    let _ = c.close().await;
    stat
}

/// Waits on a session's events until it is declared expired (Ok) or `MOVE` passes; reconnecting
/// after its connection dropped means another server took the session (Err).
async fn wait_expired(events: &mut EventReceiver) -> Result<(), String> {
    let mut disconnected = false;
    let deadline = tokio::time::Instant::now() + MOVE;
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .map_err(|_| format!("not expired within {MOVE:?}"))?
            .ok_or("the event stream ended without an expiry")?;
        match event.state {
            KeeperState::Expired => return Ok(()),
            KeeperState::Disconnected => disconnected = true,
            KeeperState::SyncConnected if disconnected => {
                return Err("the session reconnected at another server".into())
            }
            _ => {}
        }
    }
}

/// The scenario, whichever implementation each member runs: members 1-3 vote, member 4 observes.
fn local_sessions_on_the_observer(plan: &EnsemblePlan) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = test_root();
    let mut servers = start_all_with(plan, root.path(), LOCAL_SESSIONS);
    let voters: Vec<Member> = plan.members[..3].to_vec();
    let observer = plan.member(4).clone();
    let leader_id = find_leader_all_serving(&voters, START)
        .unwrap_or_else(|| panic!("no single leader within {START:?}\n{}", logs(&servers)));
    assert_eq!(
        wait_mode(observer.client, START).as_deref(),
        Some("observer"),
        "{}",
        logs(&servers)
    );
    let leader = plan.member(leader_id).clone();
    let follower = voters
        .iter()
        .find(|m| m.id != leader_id)
        .expect("a follower")
        .clone();
    assert_eq!(mntr(&leader, "zk_global_sessions"), 0);
    let rt = runtime();

    // A client of the observer: its session and its persistent write cost the quorum no session.
    rt.block_on(async {
        let (c, _events) = session(&observer.client_addr().to_string(), SESSION).await;
        create_on(&c, "/local-p", b"p", CreateMode::Persistent).await;
        assert_eq!(get_on(&c, "/local-p").await, b"p");
        assert_eq!(mntr(&observer, "zk_local_sessions"), 1);
        // `dump` shows it as Java's LearnerSessionTracker does: the local tracker's expiry buckets
        // first, then the global sessions (none).
        let dump = support::four_letter(observer.client_addr(), "dump").expect("dump");
        let id = format!("\t0x{:x}\n", c.session_id());
        assert!(
            dump.starts_with("SessionTracker dump:\nLocal Session Sets (1)/(1):\n")
                && dump.contains(&id)
                && dump.contains("Global Sessions(0):\n"),
            "{dump}"
        );
        for m in &voters {
            assert_eq!(
                mntr(m, "zk_global_sessions"),
                0,
                "server {}: no createSession went through the quorum",
                m.id
            );
        }
        assert!(stat_at(&leader, "/local-p").await.is_some());

        // An ephemeral upgrades the session: the leader tracks it and the node is the client's.
        create_on(&c, "/local-e", b"e", CreateMode::Ephemeral).await;
        let owner = stat_at(&leader, "/local-e")
            .await
            .map(|s| s.ephemeral_owner);
        assert_eq!(owner, Some(c.session_id()), "ephemeralOwner at the leader");
        assert_eq!(mntr(&leader, "zk_global_sessions"), 1);
        assert_eq!(mntr(&observer, "zk_local_sessions"), 0);

        // Closing the (now global) session removes its ephemeral everywhere.
        c.close().await.expect("close");
        for m in &plan.members {
            assert!(
                stat_at(m, "/local-e").await.is_none(),
                "server {} still has the closed session's ephemeral",
                m.id
            );
        }
    });

    // Two clients of the observer that would move to the follower: one local, one upgraded.
    let hosts = format!("{},{}", observer.client_addr(), follower.client_addr());
    let follower_addr: SocketAddr = follower.client_addr();
    let (local, mut local_events, upgraded) = rt.block_on(async {
        let (local, local_events) = session(&hosts, SESSION).await;
        create_on(&local, "/move-p", b"p", CreateMode::Persistent).await;
        let (upgraded, _) = session(&hosts, SESSION).await;
        create_on(&upgraded, "/move-e", b"e", CreateMode::Ephemeral).await;
        (local, local_events, upgraded)
    });
    servers
        .iter_mut()
        .find(|s| s.member.id == observer.id)
        .expect("observer process")
        .kill_9();
    rt.block_on(async {
        // The upgraded session is global: the follower revalidates it with the leader.
        let deadline = tokio::time::Instant::now() + MOVE;
        let data = loop {
            if let Ok(Ok(Ok((data, stat)))) =
                tokio::time::timeout(OP, upgraded.get_data("/move-e", false)).await
            {
                assert_eq!(stat.ephemeral_owner, upgraded.session_id());
                break data;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the upgraded session did not move within {MOVE:?}\n{}",
                logs(&servers)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(data, b"e");
        assert_eq!(upgraded.connected_host(), follower_addr.to_string());
        // The local session lived on the observer only: elsewhere it is expired.
        if let Err(e) = wait_expired(&mut local_events).await {
            panic!(
                "local session 0x{:x}: {e}\n{}",
                local.session_id(),
                logs(&servers)
            );
        }
        let _ = upgraded.close().await;
    });
}

/// Three outpost voters and an outpost observer, all with local sessions.
#[test]
fn outpost_ensemble_local_sessions() {
    local_sessions_on_the_observer(&EnsemblePlan::new(3, 1).with_outpost(&[1, 2, 3, 4]));
}

/// Three Apache ZooKeeper voters with local sessions and an outpost observer: the Java leader accepts
/// the writes of the observer's local sessions and its forwarded session upgrades.
#[test]
fn java_voters_outpost_observer_local_sessions() {
    local_sessions_on_the_observer(&EnsemblePlan::new(3, 1).with_outpost(&[4]));
}
