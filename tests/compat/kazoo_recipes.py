"""kazoo's recipes (Lock, Election, Counter, Queue, LockingQueue) and the leader-election-by-sequential-
ephemerals recipe (operators guide section 8) against a ZooKeeper-compatible server.

Usage: /usr/bin/python3 kazoo_recipes.py HOST:PORT

Prints "compat: kazoo <recipe> ok" per recipe; exits 1 on the first failure. Every wait is bounded.
"""

import subprocess
import sys
import threading
import time
import uuid

from kazoo.client import KazooClient
from kazoo.exceptions import LockTimeout, NodeExistsError

HOSTS = sys.argv[1]
LIMIT = 15.0
ROOT = "/compat-" + uuid.uuid4().hex[:8]


def fail(msg):
    print("compat: FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def client(timeout=10.0):
    c = KazooClient(hosts=HOSTS, timeout=timeout)
    c.start(timeout=LIMIT)
    return c


def wait_for(cond, msg, limit=LIMIT):
    deadline = time.time() + limit
    while not cond():
        if time.time() > deadline:
            fail("timed out: " + msg)
        time.sleep(0.05)


def ok(name):
    print("compat: kazoo " + name + " ok", flush=True)


def lock_recipe(a, b):
    la = a.Lock(ROOT + "/lock", "a")
    lb = b.Lock(ROOT + "/lock", "b")
    check(la.acquire(timeout=LIMIT), "a acquires the free lock")
    check(not lb.acquire(blocking=False), "b cannot take a held lock")
    try:
        lb.acquire(timeout=0.5)
        fail("b acquired a held lock")
    except LockTimeout:
        pass
    got = threading.Event()

    def waiter():
        if lb.acquire(timeout=LIMIT):
            got.set()

    t = threading.Thread(target=waiter)
    t.start()
    wait_for(lambda: len(la.contenders()) == 2, "b queues behind a")
    check(la.contenders() == ["a", "b"], "contenders in order: %r" % la.contenders())
    check(not got.is_set(), "b waits while a holds")
    la.release()
    check(got.wait(LIMIT), "b gets the lock once a releases")
    t.join(LIMIT)
    lb.release()
    check(la.contenders() == [], "no contenders left")
    ok("lock")


def election_recipe(a, b):
    leaders = []
    release = {"a": threading.Event(), "b": threading.Event()}

    def lead(name):
        leaders.append(name)
        release[name].wait(LIMIT)

    ea = a.Election(ROOT + "/election", "a")
    eb = b.Election(ROOT + "/election", "b")
    ta = threading.Thread(target=ea.run, args=(lead, "a"))
    ta.start()
    wait_for(lambda: leaders == ["a"], "a leads")
    tb = threading.Thread(target=eb.run, args=(lead, "b"))
    tb.start()
    wait_for(lambda: eb.contenders() == ["a", "b"], "b contends")
    time.sleep(0.2)
    check(leaders == ["a"], "only a leads: %r" % leaders)
    release["a"].set()
    wait_for(lambda: leaders == ["a", "b"], "b leads after a")
    release["b"].set()
    ta.join(LIMIT)
    tb.join(LIMIT)
    ok("election")


def counter_recipe(a, b):
    ca = a.Counter(ROOT + "/counter")
    cb = b.Counter(ROOT + "/counter")

    def bump(counter, n):
        for _ in range(n):
            counter += 1

    threads = [threading.Thread(target=bump, args=(c, 40)) for c in (ca, cb, ca, cb)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LIMIT)
    check(ca.value == 160, "160 increments from 4 threads: %r" % ca.value)
    cb -= 10
    check(ca.value == 150, "decrement: %r" % ca.value)
    fc = a.Counter(ROOT + "/fcounter", default=0.5)
    fc += 1.25
    check(b.Counter(ROOT + "/fcounter", default=0.5).value == 1.75, "float counter")
    ok("counter")


def queue_recipe(a, b):
    qa = a.Queue(ROOT + "/queue")
    qb = b.Queue(ROOT + "/queue")
    for i in range(5):
        qa.put(b"item-%d" % i)
    # Lower values mean higher priority (the default is 100).
    qa.put(b"urgent", priority=10)
    check(len(qb) == 6, "6 queued: %d" % len(qb))
    got = [qb.get() for _ in range(6)]
    check(
        got == [b"urgent", b"item-0", b"item-1", b"item-2", b"item-3", b"item-4"],
        "priority first, then FIFO: %r" % got,
    )
    check(qb.get() is None, "empty queue")

    la = a.LockingQueue(ROOT + "/lqueue")
    lb = b.LockingQueue(ROOT + "/lqueue")
    la.put_all([b"x", b"y"])
    check(lb.get(LIMIT) == b"x", "locking queue head")
    check(lb.consume(), "consume the head")
    check(la.get(LIMIT) == b"y", "next item")
    check(la.consume(), "consume")
    check(len(la) == 0, "locking queue empty")
    ok("queue")


CRASHER = """
import sys, time
from kazoo.client import KazooClient
c = KazooClient(hosts=sys.argv[1], timeout=float(sys.argv[3]))
c.start(timeout=15)
print(c.create(sys.argv[2] + "/guid-n_", b"crasher", ephemeral=True, sequence=True), flush=True)
time.sleep(120)
"""


class Candidate:
    """The recipe: create /election/guid-n_ (ephemeral, sequential); the smallest sequence leads; every
    other candidate watches only the next-smaller node and re-checks when it goes."""

    def __init__(self, zk, base, name):
        self.zk = zk
        self.base = base
        self.name = name
        self.node = zk.create(base + "/guid-n_", name.encode(), ephemeral=True, sequence=True)
        self.leader = False
        self.watching = None
        self.watch_fired = 0
        self.changed = threading.Event()

    def _on_watch(self, event):
        self.watch_fired += 1
        self.changed.set()

    def check(self):
        me = self.node.rsplit("/", 1)[1]
        while True:
            kids = sorted(self.zk.get_children(self.base), key=lambda k: int(k.rsplit("_", 1)[1]))
            i = kids.index(me)
            if i == 0:
                self.leader = True
                self.watching = None
                return
            prev = self.base + "/" + kids[i - 1]
            if self.zk.exists(prev, watch=self._on_watch) is not None:
                self.watching = prev
                return
            # The next-smaller node went between the listing and the watch: look again.


def leader_election_recipe():
    setup = client()
    base = ROOT + "/election-recipe"
    setup.ensure_path(base)
    # Candidate 0 runs in another process and is killed with SIGKILL: its session must expire.
    crasher = subprocess.Popen(
        [sys.executable, "-c", CRASHER, HOSTS, base, "1.0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = crasher.stdout.readline().strip()
        check(first.startswith(base + "/guid-n_"), "crasher created its node: %r" % first)
        c1 = Candidate(client(), base, "c1")
        c2 = Candidate(client(), base, "c2")
        c3 = Candidate(client(), base, "c3")
        cands = [c1, c2, c3]
        for c in cands:
            c.check()
        check(not any(c.leader for c in cands), "the crasher (smallest sequence) leads")
        check(c1.watching == first, "c1 watches the crasher: %r" % c1.watching)
        check(c2.watching == c1.node and c3.watching == c2.node, "each watches only the next-smaller")

        crasher.kill()
        crasher.wait(LIMIT)
        killed = time.time()
        check(c1.changed.wait(LIMIT), "c1's watch fires when the crasher's session expires")
        took = time.time() - killed
        c1.changed.clear()
        c1.check()
        check(c1.leader, "c1 leads after the crash")
        check(0.5 < took < 10, "the crashed leader's node went after its session timeout: %.2fs" % took)
        check(setup.exists(first) is None, "the crasher's ephemeral is gone")
        time.sleep(0.2)
        check(c2.watch_fired == 0 and c3.watch_fired == 0, "no herd effect: only c1 was notified")

        # The leader leaves cleanly (closeSession): c2 takes over at once.
        c1.zk.stop()
        c1.zk.close()
        check(c2.changed.wait(LIMIT), "c2's watch fires when c1 leaves")
        c2.changed.clear()
        c2.check()
        check(c2.leader and not c3.leader, "c2 leads, c3 follows")
        check(c3.watch_fired == 0, "c3 was not notified")
        kids = setup.get_children(base)
        check(len(kids) == 2, "two candidates left: %r" % kids)
        for c in (c2, c3):
            c.zk.stop()
            c.zk.close()
    finally:
        if crasher.poll() is None:
            crasher.kill()
    setup.stop()
    setup.close()
    ok("leader election recipe")


def main():
    a = client()
    b = client()
    try:
        a.create(ROOT)
    except NodeExistsError:
        pass
    check(a.server_version()[:2] == (3, 8), "server_version: %r" % (a.server_version(),))
    lock_recipe(a, b)
    election_recipe(a, b)
    counter_recipe(a, b)
    queue_recipe(a, b)
    leader_election_recipe()
    # Watches and transactions as kazoo applications use them.
    seen = []
    a.DataWatch(ROOT + "/dw", func=lambda data, stat: seen.append(data))
    wait_for(lambda: seen == [None], "DataWatch starts on a missing node")
    b.create(ROOT + "/dw", b"1")
    wait_for(lambda: seen == [None, b"1"], "DataWatch sees the creation")
    b.set(ROOT + "/dw", b"2")
    wait_for(lambda: seen == [None, b"1", b"2"], "DataWatch sees the change")
    tx = b.transaction()
    tx.create(ROOT + "/tx", b"")
    tx.check(ROOT + "/dw", 1)
    tx.set_data(ROOT + "/dw", b"3")
    results = tx.commit()
    check(results[0] == ROOT + "/tx" and results[1] is True, "transaction results: %r" % results)
    a.delete(ROOT, recursive=True)
    a.stop()
    b.stop()
    ok("watches and transactions")


if __name__ == "__main__":
    main()
