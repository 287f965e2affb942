//! Observers in a remote datacenter (issue #5), on the cross-datacenter test bed of
//! `tests/support/wan.rs`: three outpost voters in DC1, outpost observers in DC2, every DC1-DC2 link
//! through a fault proxy with a 40 ms round trip. Where requests are served (reads locally, writes over
//! the WAN), what a WAN cut does to each side and its sessions, and how observers reach a new leader.
//!
//! The tests run one at a time (a file-wide lock): each starts five to seven processes, and the latency
//! test must not share two cores with another ensemble.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use outpost_core::client::{Client, CreateMode, EventReceiver, KeeperState, State};

use support::ensemble::scenario::{create_on as create, get_on as get, set_on as set, ELECT, OP};
use support::wan::{background_runtime, log_times, session, WanBed, WAN_ONE_WAY};

/// One test at a time in this file.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// `127.0.0.1:<client port>` of member `id`.
fn client_addr(bed: &WanBed, id: u64) -> String {
    bed.member(id).client_addr().to_string()
}

/// A fresh session's plain read of `path` at `addr`, or why it failed; bounded by `limit`.
async fn try_read(addr: &str, path: &str, limit: Duration) -> Result<Vec<u8>, String> {
    let attempt = async {
        let (c, _ev) = Client::connect(addr, Duration::from_secs(4))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let r = c
            .get_data(path, false)
            .await
            .map_err(|e| format!("get: {e}"))?
            .map_err(|e| format!("get: {e:?}"))
            .map(|(d, _)| d);
        let _ = c.close().await;
        r
    };
    tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {limit:?}")))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Expiry events a session's event stream delivered so far.
fn expirations(events: &mut EventReceiver) -> usize {
    let mut n = 0;
    while let Ok(e) = events.try_recv() {
        if e.state == KeeperState::Expired {
            n += 1;
        }
    }
    n
}

/// A read at a DC2 observer is answered locally, without a WAN round trip, while a write from DC2 is
/// forwarded to DC1's leader and completes only after crossing the WAN (medians over many ops).
#[test]
fn dc2_reads_are_served_locally_writes_cross_the_wan() {
    let _serial = serial();
    let bed = WanBed::start(3, 2, &[]);
    let observer = bed.dc2[0];
    let rt = background_runtime();
    let rtt = WAN_ONE_WAY * 2;
    let (reads, writes, at_leader) = rt.block_on(async {
        let (c, _ev) = session(&client_addr(&bed, observer), Duration::from_secs(10)).await;
        create(&c, "/wan-latency", b"0", CreateMode::Persistent).await;
        // Warm-up: connections and caches settle before anything is measured.
        for i in 0..5 {
            set(&c, "/wan-latency", format!("warm-{i}").as_bytes()).await;
            get(&c, "/wan-latency").await;
        }
        let mut writes = Vec::new();
        for i in 0..31 {
            let at = Instant::now();
            set(&c, "/wan-latency", format!("w-{i}").as_bytes()).await;
            writes.push(at.elapsed());
        }
        let mut reads = Vec::new();
        for _ in 0..101 {
            let at = Instant::now();
            let data = get(&c, "/wan-latency").await;
            reads.push(at.elapsed());
            assert_eq!(
                data, b"w-30",
                "the observer answers with its session's last write"
            );
        }
        let leader = bed.leader(OP);
        let at_leader = try_read(&client_addr(&bed, leader), "/wan-latency", OP).await;
        (reads, writes, at_leader)
    });
    let (read_median, write_median) = (median(reads), median(writes));
    eprintln!(
        "WAN round trip {rtt:?}: median read at the DC2 observer {read_median:?}, median write from DC2 \
         {write_median:?}; direct cross-DC links: {:?}",
        bed.direct_cross_links()
    );
    assert_eq!(
        at_leader.as_deref(),
        Ok(&b"w-30"[..]),
        "the forwarded writes reached DC1's leader"
    );
    assert!(
        write_median >= rtt,
        "a write from DC2 must cross the WAN (>= {rtt:?}), median {write_median:?}"
    );
    assert!(
        read_median < rtt / 2,
        "a read at the DC2 observer must be served locally (median < {:?}), median {read_median:?}",
        rtt / 2
    );
}

/// Cutting the WAN: DC1 keeps committing writes; after the heal the DC2 observers reconnect within a
/// bound made of the configured delays and the election's back-off, and catch up; no DC1 session
/// expires, and a DC2 session whose timeout outlasts the cut keeps its id and its ephemeral node.
#[test]
fn wan_cut_dc1_keeps_writing_dc2_catches_up_sessions_survive() {
    let _serial = serial();
    const CUT: Duration = Duration::from_secs(6);
    const ELECTION_DELAY_MS: u64 = 500;
    const RECONNECT_DELAY_MS: u64 = 500;
    const DC1_WRITES: usize = 50;
    let election_delay = ELECTION_DELAY_MS.to_string();
    let reconnect_delay = RECONNECT_DELAY_MS.to_string();
    let bed = WanBed::start(
        3,
        2,
        &[
            ("observer.election.DelayMs", &election_delay),
            ("observer.reconnectDelayMs", &reconnect_delay),
            // The DC2 session below asks for 20 s, longer than the cut (20 x tickTime is only 4 s).
            ("maxSessionTimeout", "30000"),
        ],
    );
    let rt = background_runtime();
    let leader = bed.leader(OP);
    let dc2_connect = bed
        .dc2
        .iter()
        .map(|id| client_addr(&bed, *id))
        .collect::<Vec<_>>()
        .join(",");

    let (mut dc1, mut dc2_session) = rt.block_on(async {
        let mut dc1 = Vec::new();
        for id in &bed.dc1 {
            let (c, ev) = session(&client_addr(&bed, *id), Duration::from_secs(4)).await;
            create(&c, &format!("/dc1-eph-{id}"), b"", CreateMode::Ephemeral).await;
            dc1.push((*id, c.session_id(), c, ev));
        }
        let (c, ev) = session(&dc2_connect, Duration::from_secs(20)).await;
        assert_eq!(c.negotiated_timeout(), Duration::from_secs(20));
        create(&c, "/dc2-eph", b"", CreateMode::Ephemeral).await;
        create(&c, "/data", b"before", CreateMode::Persistent).await;
        (dc1, (c.session_id(), c, ev))
    });
    eprintln!(
        "direct cross-DC links before the cut: {:?}",
        bed.direct_cross_links()
    );

    bed.wan.cut();
    let cut_at = Instant::now();
    let writer = bed
        .dc1
        .iter()
        .copied()
        .find(|id| *id != leader)
        .expect("a DC1 follower");
    let written = rt.block_on(async {
        let c = &dc1
            .iter()
            .find(|(id, ..)| *id == writer)
            .expect("writer session")
            .2;
        let mut done = 0;
        for i in 0..DC1_WRITES {
            set(c, "/data", format!("during-cut-{i}").as_bytes()).await;
            done += 1;
        }
        done
    });
    let writes_took = cut_at.elapsed();
    assert!(
        writes_took < CUT,
        "DC1's {DC1_WRITES} writes took {writes_took:?}, longer than the cut itself"
    );
    let links_in_cut = bed.direct_cross_links();
    std::thread::sleep(CUT.saturating_sub(cut_at.elapsed()));
    bed.wan.heal();
    let healed_at = Instant::now();
    let last = format!("during-cut-{}", DC1_WRITES - 1);

    // The bound: after a cut of CUT, the observer's election has backed off to at most 2 x CUT between
    // notification rounds (FastLeaderElection doubles from 200 ms); then observer.election.DelayMs
    // and observer.reconnectDelayMs, plus slack for sync on a loaded machine.
    let bound = CUT * 2
        + Duration::from_millis(ELECTION_DELAY_MS + RECONNECT_DELAY_MS)
        + Duration::from_secs(10);
    let mut caught_up = Vec::new();
    for id in bed.dc2.clone() {
        let addr = client_addr(&bed, id);
        let seen = rt.block_on(async {
            loop {
                if let Ok(data) = try_read(&addr, "/data", Duration::from_secs(2)).await {
                    if data == last.as_bytes() {
                        return Some(healed_at.elapsed());
                    }
                }
                if healed_at.elapsed() > bound {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        caught_up.push((id, seen));
    }
    eprintln!(
        "WAN cut {CUT:?}: DC1 wrote {written} txns in {writes_took:?}; observers caught up after the \
         heal: {caught_up:?} (bound {bound:?}); direct cross-DC links during the cut: {links_in_cut:?}"
    );
    for (id, seen) in &caught_up {
        assert!(
            seen.is_some(),
            "observer {id} did not serve DC1's last write {last:?} within {bound:?} of the heal\n{}",
            bed.logs()
        );
    }

    // Sessions: the DC2 one reconnects with its id and still owns its ephemeral; DC1's never noticed.
    let (dc2_id, dc2_client, dc2_events) = &mut dc2_session;
    let dc2_state = rt.block_on(async {
        let until = Instant::now() + bound;
        while dc2_client.state() != State::Connected && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        dc2_client.state()
    });
    assert_eq!(
        dc2_state,
        State::Connected,
        "the DC2 session (timeout 20 s) did not reconnect after a {CUT:?} cut\n{}",
        bed.logs()
    );
    assert_eq!(dc2_client.session_id(), *dc2_id, "same DC2 session id");
    let owner = rt.block_on(async {
        tokio::time::timeout(OP, dc2_client.exists("/dc2-eph", false))
            .await
            .map_err(|_| "timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map(|r| r.ok().flatten().map(|st| st.ephemeral_owner))
    });
    assert_eq!(
        owner,
        Ok(Some(*dc2_id)),
        "the DC2 session's ephemeral survives the cut"
    );
    assert_eq!(expirations(dc2_events), 0, "the DC2 session saw an expiry");
    for (id, sid, c, events) in &mut dc1 {
        assert_eq!(
            c.state(),
            State::Connected,
            "DC1 session at server {id} is not connected"
        );
        assert_eq!(c.session_id(), *sid);
        assert_eq!(expirations(events), 0, "DC1 session at server {id} expired");
        let path = format!("/dc1-eph-{id}");
        let owner = rt.block_on(async {
            tokio::time::timeout(OP, c.exists(&path, false))
                .await
                .ok()
                .and_then(|r| r.ok())
                .and_then(|r| r.ok().flatten())
                .map(|st| st.ephemeral_owner)
        });
        assert_eq!(owner, Some(*sid), "{path} still owned by its DC1 session");
    }
}

/// During a WAN cut the DC2 observers keep answering their connected clients' reads from their own
/// (stale) tree, so clients in DC2 can still read while DC1 is unreachable (outpost's detached
/// observers; new sessions need the leader and wait for the heal).
#[test]
fn dc2_observers_serve_stale_reads_during_a_wan_cut() {
    let _serial = serial();
    let bed = WanBed::start(3, 2, &[]);
    let rt = background_runtime();
    let leader = bed.leader(OP);
    rt.block_on(async {
        let (c, _ev) = session(&client_addr(&bed, leader), Duration::from_secs(4)).await;
        create(&c, "/stale", b"before", CreateMode::Persistent).await;
        let _ = c.close().await;
    });
    for id in &bed.dc2 {
        let seen = rt.block_on(async {
            let until = Instant::now() + OP;
            loop {
                let r = try_read(&client_addr(&bed, *id), "/stale", OP).await;
                if r.as_deref() == Ok(&b"before"[..]) || Instant::now() > until {
                    return r;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        assert_eq!(seen.as_deref(), Ok(&b"before"[..]), "observer {id} synced");
    }

    // One session per DC2 observer, established before the cut, with a timeout longer than the cut.
    let readers: Vec<(u64, Client, EventReceiver)> = bed
        .dc2
        .iter()
        .map(|id| {
            let (c, ev) = rt.block_on(session(&client_addr(&bed, *id), Duration::from_secs(20)));
            (*id, c, ev)
        })
        .collect();
    bed.wan.cut();
    let cut_at = Instant::now();
    rt.block_on(async {
        let (c, _ev) = session(&client_addr(&bed, leader), Duration::from_secs(4)).await;
        set(&c, "/stale", b"after").await;
        let _ = c.close().await;
    });
    // Samples across the cut: at once, and after syncLimit (3 s), when an observer on a silent (held)
    // link would have given up on the leader too.
    let mut samples = Vec::new();
    for wait_until in [Duration::from_millis(500), Duration::from_secs(4)] {
        std::thread::sleep(wait_until.saturating_sub(cut_at.elapsed()));
        for (id, c, _) in &readers {
            let r = rt.block_on(async {
                match tokio::time::timeout(Duration::from_secs(1), c.get_data("/stale", false))
                    .await
                {
                    Err(_) => Err("no answer within 1s".to_string()),
                    Ok(Err(e)) => Err(format!("get: {e}")),
                    Ok(Ok(Err(e))) => Err(format!("get: {e:?}")),
                    Ok(Ok(Ok((d, _)))) => Ok(d),
                }
            });
            let modes = support::ensemble::srvr_mode(bed.member(*id).client);
            samples.push((cut_at.elapsed(), *id, r, modes));
        }
    }
    bed.wan.heal();
    eprintln!("reads at DC2 during the cut (time, observer, result, srvr mode): {samples:?}");
    let failed: Vec<_> = samples
        .iter()
        .filter(|(_, _, r, _)| r.as_deref() != Ok(&b"before"[..]))
        .collect();
    assert!(
        failed.is_empty(),
        "DC2 observers must keep serving their stale tree during a WAN cut; failed reads \
         (time into the cut, observer, result, srvr mode): {failed:?}\n{}",
        bed.logs()
    );
}

/// After kill -9 of DC1's leader, every DC2 observer finds the new leader and serves again, and with
/// `observer.reconnectDelayMs` their connections to the new leader are spread out in time rather than
/// arriving together (measured from the new leader's "learner N (observer) connected" log lines).
#[test]
fn dc1_leader_failover_observers_reconnect_spread_out() {
    let _serial = serial();
    const RECONNECT_DELAY_MS: u64 = 2000;
    let reconnect_delay = RECONNECT_DELAY_MS.to_string();
    // observer.election.DelayMs 0: observers look for the new leader at once, so any spread in their
    // arrival comes from observer.reconnectDelayMs.
    let mut bed = WanBed::start(
        3,
        4,
        &[
            ("observer.reconnectDelayMs", &reconnect_delay),
            ("observer.election.DelayMs", "0"),
        ],
    );
    let rt = background_runtime();
    let old = bed.leader(OP);
    let killed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    bed.server_mut(old).kill_9();
    let survivors: Vec<u64> = bed.dc1.iter().copied().filter(|id| *id != old).collect();
    let members: Vec<_> = survivors.iter().map(|id| bed.member(*id).clone()).collect();
    let new = support::ensemble::find_leader(&members, ELECT).unwrap_or_else(|| {
        panic!(
            "no new leader within {ELECT:?} after killing {old}\n{}",
            bed.logs()
        )
    });
    for id in bed.dc2.clone() {
        bed.wait_observing(id, ELECT + Duration::from_millis(RECONNECT_DELAY_MS));
    }
    // They serve the new epoch's writes.
    rt.block_on(async {
        let (c, _ev) = session(&client_addr(&bed, new), Duration::from_secs(4)).await;
        create(&c, "/after-failover", b"new", CreateMode::Persistent).await;
        let _ = c.close().await;
    });
    for id in bed.dc2.clone() {
        let addr = client_addr(&bed, id);
        let r = rt.block_on(async {
            let (c, _ev) = session(&addr, Duration::from_secs(4)).await;
            tokio::time::timeout(OP, c.sync("/after-failover"))
                .await
                .ok();
            get(&c, "/after-failover").await
        });
        assert_eq!(r, b"new", "observer {id} serves the new leader's write");
    }

    // When each observer's (last) connection reached the new leader.
    let log = bed.server(new).log_path();
    let mut arrivals: Vec<(u64, f64)> = Vec::new();
    for (t, line) in log_times(&log, "(observer) connected") {
        if t < killed_at {
            continue;
        }
        let sid = line
            .split("learner ")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|s| s.parse::<u64>().ok());
        if let Some(sid) = sid {
            arrivals.retain(|(s, _)| *s != sid);
            arrivals.push((sid, t));
        }
    }
    arrivals.sort_by(|a, b| a.1.total_cmp(&b.1));
    let offsets: Vec<(u64, u64)> = arrivals
        .iter()
        .map(|(sid, t)| (*sid, ((t - killed_at) * 1000.0) as u64))
        .collect();
    eprintln!(
        "observers reached new leader {new} at (sid, ms after kill -9 of {old}): {offsets:?}; \
         direct cross-DC links: {:?}",
        bed.direct_cross_links()
    );
    let mut sids: Vec<u64> = arrivals.iter().map(|(s, _)| *s).collect();
    sids.sort_unstable();
    assert_eq!(
        sids,
        bed.dc2,
        "every observer's connection is logged by the new leader {new}\n{}",
        bed.logs()
    );
    let spread_ms =
        offsets.last().map(|o| o.1).unwrap_or(0) - offsets.first().map(|o| o.1).unwrap_or(0);
    // Four draws from [0, 2000) ms span less than 100 ms with probability about 4 in 10,000; without
    // the delay they arrive within milliseconds of each other.
    assert!(
        spread_ms >= 100,
        "observers reached the new leader within {spread_ms} ms of each other: {offsets:?}"
    );
}

/// After kill -9 of DC1's leader every DC2 observer goes straight to the new leader: a LOOKING voter
/// answers an observer with its previous vote (Java's `WorkerReceiver`, kept on the wire), but an
/// outpost observer decides a round only for a leader it heard from in that round, and a dead server
/// cannot send, so no observer names the killed leader.
#[test]
fn dc1_failover_observers_never_elect_the_dead_leader() {
    let _serial = serial();
    let mut bed = WanBed::start(3, 2, &[]);
    let old = bed.leader(OP);
    let killed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    bed.server_mut(old).kill_9();
    for id in bed.dc2.clone() {
        bed.wait_observing(id, ELECT);
    }
    let needle = format!("election over: leader {old} ");
    let mut stale = Vec::new();
    for id in &bed.dc2 {
        for (t, line) in log_times(&bed.server(*id).log_path(), "election over: leader") {
            if t >= killed_at && line.contains(&needle) {
                stale.push(format!(
                    "observer {id}, {} ms after the kill: {line}",
                    ((t - killed_at) * 1000.0) as u64
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "observers elected the killed leader {old}:\n{}\n{}",
        stale.join("\n"),
        bed.logs()
    );
}

/// A new session requested at a DC2 observer while the WAN is held (its createSession goes to the
/// leader and no answer comes back) has its connection closed when the observer gives up on the
/// leader after syncLimit, so the client can move on instead of waiting for a reply that never comes.
#[test]
fn a_connect_waiting_for_the_leader_is_closed_when_the_observer_detaches() {
    use outpost_core::jute::Record;
    use outpost_core::proto::client::ConnectRequest;
    use std::io::{Read, Write};

    let _serial = serial();
    let bed = WanBed::start(3, 1, &[]);
    bed.leader(OP);
    let observer = bed.dc2[0];
    bed.wait_observing(observer, OP);
    bed.wan.hold();
    let held_at = Instant::now();
    // A raw connect (the Rust client would retry on its own): the frame, then wait for a reply or EOF.
    let mut stream =
        std::net::TcpStream::connect(bed.member(observer).client_addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let req = ConnectRequest {
        timeout: 30_000,
        passwd: vec![0; 16],
        ..ConnectRequest::default()
    };
    stream
        .write_all(&outpost_core::proto::encode_frame(&req.to_bytes()))
        .expect("send the connect request");
    let mut buf = [0u8; 256];
    let outcome = stream.read(&mut buf);
    let waited = held_at.elapsed();
    bed.wan.heal();
    match outcome {
        Ok(0) => {}
        other => panic!(
            "the pending connect should be closed when the observer detaches, got {other:?} after \
             {waited:?}\n{}",
            bed.logs()
        ),
    }
    // syncLimit is 3 s; the close follows the observer's giving up, long before the 30 s timeout.
    assert!(
        waited < Duration::from_secs(12),
        "closed only after {waited:?}"
    );
}
