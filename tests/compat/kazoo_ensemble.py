"""kazoo (Debian's python3-kazoo) against a ZooKeeper-compatible ensemble, driven by
tests/ensemble_interop.rs over stdin/stdout.

Usage:
  /usr/bin/python3 kazoo_ensemble.py failover HOSTS OTHER
      HOSTS: the multi-host connect string, the server to kill first (kazoo connects to it: hosts are
      not shuffled); OTHER: one server that stays up (it may re-sync if the leader is killed), for a
      second client. Does create/get/set, an
      ephemeral, a one-shot watch fired by OTHER's client, DataWatch/ChildrenWatch recipes; prints
      "kazoo connected HOST:PORT session 0x..", waits for "killed" on stdin, then checks that the
      session survived the move to another server (same session id, ephemeral still owned by it, no
      LOST state) and that the watch recipes still fire. Ends with "compat: kazoo ensemble failover ok".
  /usr/bin/python3 kazoo_ensemble.py hold HOST PATH
      Opens a session on HOST, creates the ephemeral PATH, prints "kazoo holds PATH session 0x..",
      then sleeps until killed (the test kills it with SIGKILL: no close is sent).

Exits 1 with "compat: FAIL: ..." on the first failed check. Every wait is bounded.
"""

import sys
import threading
import time
import uuid

from kazoo.client import KazooClient, KazooState

LIMIT = 30.0
# Reconnect forever, as an application would; retry a call cut by ConnectionLoss for a bounded time.
RECONNECT = {"max_tries": -1, "delay": 0.2, "max_delay": 1.0}
RETRY = {"max_tries": -1, "delay": 0.2, "max_delay": 1.0, "deadline": LIMIT}


def fail(msg):
    print("compat: FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def wait_for(cond, msg, limit=LIMIT):
    deadline = time.time() + limit
    while not cond():
        if time.time() > deadline:
            fail("timed out: " + msg)
        time.sleep(0.05)


def peer(client):
    sock = client._connection._socket
    if sock is None:
        return None
    try:
        host, port = sock.getpeername()[:2]
    except OSError:
        return None
    return "%s:%d" % (host, port)


def failover(hosts, other):
    root = "/kazoo-" + uuid.uuid4().hex[:8]
    states = []
    # The session timeout outlives a leader election; the retry never gives up, as an application's.
    a = KazooClient(hosts=hosts, timeout=10.0, randomize_hosts=False,
                    connection_retry=RECONNECT, command_retry=RETRY)
    a.add_listener(states.append)
    a.start(timeout=LIMIT)
    first = peer(a)
    check(first == hosts.split(",")[0], "kazoo connected to %s, not the first host" % first)
    sid = a.client_id[0]

    a.create(root, b"v0")
    data, stat = a.get(root)
    check(data == b"v0" and stat.version == 0, "get after create: %r %r" % (data, stat))
    stat = a.set(root, b"v1")
    check(stat.version == 1, "set returns version 1: %r" % (stat,))
    a.create(root + "/eph", b"mine", ephemeral=True)
    check(a.exists(root + "/eph").ephemeralOwner == sid, "ephemeral owned by the session")

    b = KazooClient(hosts=other, timeout=10.0, connection_retry=RECONNECT, command_retry=RETRY)
    b.start(timeout=LIMIT)
    check(b.get(root)[0] == b"v1", "the other server reads the write")

    # A one-shot watch at a's server fires when b's client, on another server, changes the node.
    fired = []
    a.get(root, watch=fired.append)
    b.set(root, b"from-b")
    wait_for(lambda: fired, "data watch at %s fired by a write at %s" % (first, other))
    check(fired[0].type == "CHANGED" and fired[0].path == root, "event: %r" % (fired[0],))

    # kazoo 2.8 sends no SetWatches on reconnect; its recipes re-read (and so re-arm) on reconnect.
    seen = []
    kids = []
    a.DataWatch(root, lambda d, s: seen.append(d))
    a.ChildrenWatch(root, lambda c: kids.append(sorted(c)))
    wait_for(lambda: seen and seen[-1] == b"from-b", "DataWatch's first call")

    print("kazoo connected %s session 0x%x" % (first, sid), flush=True)
    line = sys.stdin.readline().strip()
    check(line == "killed", "expected 'killed' on stdin, got %r" % line)

    wait_for(lambda: KazooState.SUSPENDED in states, "kazoo notices the dead server")
    wait_for(lambda: a.connected and peer(a) not in (None, first),
             "kazoo reconnects to another server", limit=2 * LIMIT)
    check(KazooState.LOST not in states, "the session was lost: %r" % states)
    check(a.client_id[0] == sid, "session changed: 0x%x -> 0x%x" % (sid, a.client_id[0]))
    # When the leader died, b's server is re-syncing too: retry b's calls on ConnectionLoss.
    for who, c in (("a", a), ("b", b)):
        st = c.retry(c.exists, root + "/eph")
        check(st is not None and st.ephemeralOwner == sid,
              "ephemeral after the failover, seen by %s: %r" % (who, st))

    b.retry(b.set, root, b"after")
    wait_for(lambda: seen[-1] == b"after", "DataWatch fires after the failover: %r" % seen)
    b.retry(b.ensure_path, root + "/kid")
    wait_for(lambda: kids and "kid" in kids[-1], "ChildrenWatch fires after the failover: %r" % kids)
    fired2 = []
    a.retry(a.get, root, watch=fired2.append)
    b.retry(b.set, root, b"again")
    wait_for(lambda: fired2, "a new one-shot watch fires after the failover")
    a.retry(a.set, root, b"from-a-again")
    b.retry(b.sync, root)
    check(b.retry(b.get, root)[0] == b"from-a-again", "b reads a's write after the failover")

    print("kazoo reconnected %s session 0x%x" % (peer(a), sid), flush=True)
    a.stop()
    a.close()
    b.retry(b.sync, root)
    check(b.retry(b.exists, root + "/eph") is None, "closing the session removes its ephemeral")
    b.retry(b.delete, root, recursive=True)
    b.stop()
    b.close()
    print("compat: kazoo ensemble failover ok", flush=True)


def hold(host, path):
    c = KazooClient(hosts=host, timeout=4.0)
    c.start(timeout=LIMIT)
    c.create(path, b"held", ephemeral=True)
    print("kazoo holds %s session 0x%x" % (path, c.client_id[0]), flush=True)
    while True:
        time.sleep(60)


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "failover":
        failover(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "hold":
        hold(sys.argv[2], sys.argv[3])
    else:
        fail("usage: kazoo_ensemble.py failover HOSTS OTHER | hold HOST PATH")


if __name__ == "__main__":
    main()
