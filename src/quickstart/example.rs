//! The quickstart's example session: create, get, set and delete one znode through the DC2 observer
//! (so each write is forwarded to DC1's leader and comes back committed), then show the events the
//! relay published for that session, from its create_session to its close_session.

use std::time::Duration;

use anyhow::{anyhow, bail};
use outpost_core::client::{Client, CreateMode};
use outpost_core::proto::{Acl, ErrorCode};
use outpost_relay::event::{human_line, session_hex};
use outpost_relay::Event;
use tokio::sync::mpsc;

/// The znode the example session writes.
pub const PATH: &str = "/quickstart";

/// Turns a ZooKeeper error code (a value in the reply) into an error for the session's step `what`.
fn zk<T>(what: &str, r: Result<T, ErrorCode>) -> anyhow::Result<T> {
    r.map_err(|e| anyhow!("{what}: {}", e.name()))
}

/// Runs the example session against `observer` (host:port), printing each step on stderr, then waits
/// up to `wait` for the session's events on `events` and prints them; returns them.
pub async fn run(
    observer: &str,
    events: &mut mpsc::UnboundedReceiver<Event>,
    wait: Duration,
) -> anyhow::Result<Vec<Event>> {
    let (client, _watches) = Client::connect(observer, Duration::from_secs(10))
        .await
        .map_err(|e| anyhow!("connect to the observer {observer}: {e}"))?;
    let session = session_hex(client.session_id());
    eprintln!("example session {session} on the DC2 observer {observer} (writes are forwarded to DC1's leader):");
    let open = Acl::open_unsafe();
    // A node left by an earlier run with the same --data-dir would make the create fail.
    if client.exists(PATH, false).await?.is_ok_and(|s| s.is_some()) {
        zk("delete", client.delete(PATH, -1).await?)?;
    }
    let (_, stat) = zk(
        "create",
        client
            .create2(PATH, b"hello", &open, CreateMode::Persistent)
            .await?,
    )?;
    eprintln!(
        "  create {PATH} \"hello\"        -> czxid 0x{:x}",
        stat.czxid
    );
    let (data, stat) = zk("get", client.get_data(PATH, false).await?)?;
    eprintln!(
        "  get    {PATH}                -> {:?} (version {})",
        String::from_utf8_lossy(&data),
        stat.version
    );
    let stat = zk("set", client.set_data(PATH, b"hello again", -1).await?)?;
    eprintln!(
        "  set    {PATH} \"hello again\"  -> mzxid 0x{:x}, version {}",
        stat.mzxid, stat.version
    );
    zk("delete", client.delete(PATH, stat.version).await?)?;
    eprintln!("  delete {PATH}");
    client.close().await?;
    eprintln!("  close");

    // The relay publishes after the observer applies each commit: collect the session's events up to
    // its close_session.
    let mut mine = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, events.recv()).await;
        let event = match next {
            Ok(Some(e)) => e,
            Ok(None) => bail!("the relay stopped before the example session's events came out"),
            Err(_) => bail!(
                "the example session's events did not all come out of the relay within {wait:?} \
                 ({} so far)",
                mine.len()
            ),
        };
        if event.session_id != session {
            continue;
        }
        let closed = event.kind == "close_session";
        mine.push(event);
        if closed {
            break;
        }
    }
    eprintln!("events the DC2 relay published for it (also on stdout as JSON lines):");
    for e in &mine {
        eprintln!("  {}", human_line(e));
    }
    Ok(mine)
}
