#!/usr/bin/env python3
"""Observer benchmark: the table ZooKeeper's observer documentation argues for, outpost and Apache
ZooKeeper 3.8 (Debian's jar) measured in one run on one machine.

For each system and each topology (3 voters + {0, 1, 2, 4} observers, then {5, 7} voters alone):
  1. start the members on free loopback ports with fresh data directories and wait until exactly one
     leader, the other voters follow and every observer reports `Mode: observer`;
  2. writes: `outpost bench --workload set` with every session on a VOTER (so only the ensemble's shape
     changes between rows, not where the clients are): throughput and p99;
  3. reads: `outpost bench --workload get` with the sessions spread over EVERY member (observers add
     read capacity): throughput;
  4. voters' CPU per write: `set` again, open loop at --cpu-rate writes/s (the same offered load in every
     row, low enough that the shared cores are not saturated), with each member's CPU time read from
     /proc before and after: CPU microseconds per write for the leader, the busiest follower and the
     observers: what each observer adds to the voters' work, and what it takes from the shared cores.
     (Not a capacity forecast: under contention a delayed leader batches more and spends less per write.)
  5. stop the members.
Topologies alternate which system goes first, and the two systems never run at the same time.

Then time-to-serve: 3 voters preloaded with --znodes znodes of 100 bytes; an observer is started and
timed from process start until it reports `Mode: observer` and its `zk_znode_count` (mntr) reaches the
leader's, i.e. it serves the whole tree. Repeated --serve-rounds times per system.

Usage: scripts/bench-observers.py [--duration S] [--clients N] [--depth D] [--znodes N]
          [--serve-rounds N] [--tick MS] [--out DIR] [--only op|zk] [--topologies 3v0o,3v4o,...]
          [--observer-masters]   (outpost's observers sync from followers' observerMasterPort.N)
          [--cpu-rate N]         (offered writes/s of the CPU-per-write run, default 4000; 0 skips it)
          [--pin]                (voters and the load generator on CPU 0, observers on CPU 1, with taskset:
                                  observers that cannot take the voters' CPU, as on machines of their own)
Env: OUTPOST_BIN=path uses that binary instead of building a release one (copied first).
Needs: java, /usr/share/java/zookeeper.jar (apt-get install zookeeper), cargo.
Results: one JSON file per run, summary.json and summary.md (the README table) in --out.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Set by --pin: taskset prefixes for voters (and the load generator) and for observers.
PIN = {"voter": [], "observer": []}
TOPOLOGIES = [(3, 0), (3, 1), (3, 2), (3, 4), (5, 0), (7, 0)]
ZK_CP = ":".join(
    ["/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar"]
    + [j for j in ("/usr/share/java/slf4j-log4j12.jar", "/usr/share/java/log4j-1.2.jar") if os.path.exists(j)]
)


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def four_letter(port, cmd, timeout=1.0):
    """The reply to a four-letter word, or None when the server does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(cmd.encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data.decode(errors="replace")
    except OSError:
        return None


def mode(port):
    reply = four_letter(port, "srvr")
    if reply is None:
        return None
    for line in reply.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def znode_count(port):
    reply = four_letter(port, "mntr")
    if reply is None:
        return None
    for line in reply.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] == "zk_znode_count":
            return int(parts[1])
    return None


class Ensemble:
    """One system's members for one topology: `voters` participants then `observers` observers."""

    def __init__(self, system, binary, work, voters, observers, tick, extra_observers=0, masters=False):
        self.system, self.binary, self.tick = system, binary, tick
        self.voters, self.observers = voters, observers
        self.dir = tempfile.mkdtemp(prefix=f"{system}-{voters}v{observers}o-", dir=work)
        total = voters + observers + extra_observers
        ports = free_ports(4 * total)
        self.members = []
        for i in range(total):
            sid = i + 1
            client, quorum, election, master = ports[4 * i : 4 * i + 4]
            self.members.append({"sid": sid, "client": client, "quorum": quorum, "election": election,
                                 "master": master, "observer": i >= voters})
        # outpost only: followers serve observers on their own observer-master ports
        # (`observerMasterPort.N`); ZooKeeper's single `observerMasterPort` cannot give several servers
        # on one host different ports.
        self.masters = masters and system == "op"
        self.procs = {}

    def dynamic(self, sids):
        lines = []
        for m in self.members:
            if m["sid"] in sids:
                role = "observer" if m["observer"] else "participant"
                lines.append(f"server.{m['sid']}=127.0.0.1:{m['quorum']}:{m['election']}:{role};"
                             f"127.0.0.1:{m['client']}")
        return "\n".join(lines) + "\n"

    def start(self, sid, members_in_config):
        m = self.members[sid - 1]
        mdir = os.path.join(self.dir, f"m{sid}")
        data = os.path.join(mdir, "data")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write(f"{sid}\n")
        with open(os.path.join(mdir, "zoo.cfg.dynamic"), "w") as f:
            f.write(self.dynamic(members_in_config))
        cfg = [f"tickTime={self.tick}", "initLimit=10", "syncLimit=5", f"dataDir={data}",
               "standaloneEnabled=false", "reconfigEnabled=false", "4lw.commands.whitelist=*",
               "admin.enableServer=false", "metricsProvider.httpPort=0",
               f"dynamicConfigFile={os.path.join(mdir, 'zoo.cfg.dynamic')}"]
        if m["observer"]:
            cfg.append("peerType=observer")
        if self.masters:
            cfg += [f"observerMasterPort.{v['sid']}={v['master']}" for v in self.members if not v["observer"]]
        with open(os.path.join(mdir, "zoo.cfg"), "w") as f:
            f.write("\n".join(cfg) + "\n")
        log = open(os.path.join(mdir, "server.log"), "ab")
        if self.system == "zk":
            # zkServer.sh's default heap (ZK_SERVER_HEAP=1000) and the JVM's default collector.
            cmd = ["java", "-Xmx1000m", "-cp", ZK_CP, f"-Dzookeeper.log.dir={mdir}",
                   "-Dzookeeper.root.logger=INFO,CONSOLE",
                   "org.apache.zookeeper.server.quorum.QuorumPeerMain", os.path.join(mdir, "zoo.cfg")]
            env = dict(os.environ)
        else:
            cmd = [self.binary, "server", "--config", os.path.join(mdir, "zoo.cfg")]
            env = dict(os.environ, RUST_LOG="info")
        cmd = PIN["observer" if m["observer"] else "voter"] + cmd
        self.procs[sid] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self.procs[sid]

    def start_all(self, count=None):
        sids = [m["sid"] for m in self.members[: count or (self.voters + self.observers)]]
        for sid in sids:
            self.start(sid, sids)

    def wait_settled(self, sids, timeout=180):
        end = time.time() + timeout
        modes = []
        while time.time() < end:
            modes = [mode(self.members[s - 1]["client"]) for s in sids]
            want_obs = sum(1 for s in sids if self.members[s - 1]["observer"])
            if (modes.count("leader") == 1 and modes.count("observer") == want_obs
                    and modes.count("follower") == len(sids) - 1 - want_obs):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.system} ensemble did not settle: modes {modes}; logs in {self.dir}")

    def leader_port(self, sids):
        for s in sids:
            if mode(self.members[s - 1]["client"]) == "leader":
                return self.members[s - 1]["client"]
        raise RuntimeError("no leader")

    def servers(self, observers_only=False, voters_only=False, sids=None):
        ms = [m for m in self.members if sids is None or m["sid"] in sids]
        if voters_only:
            ms = [m for m in ms if not m["observer"]]
        if observers_only:
            ms = [m for m in ms if m["observer"]]
        return ",".join(f"127.0.0.1:{m['client']}" for m in ms)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
        for p in self.procs.values():
            p.wait()
        # Keep the logs, drop the data (txn logs are preallocated in 64 MiB files).
        for m in self.members:
            shutil.rmtree(os.path.join(self.dir, f"m{m['sid']}", "data"), ignore_errors=True)


def cpu_seconds(pid):
    """User plus system CPU time of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_write(ens, binary, out, sys_, label, voters, observers, a):
    """CPU microseconds per write of each role at --cpu-rate offered sets/s (open loop)."""
    sids = [m["sid"] for m in ens.members]
    roles = {s: mode(ens.members[s - 1]["client"]) for s in sids}
    pids = {s: ens.procs[s].pid for s in sids}
    before = {s: cpu_seconds(pids[s]) for s in sids}
    w = bench(binary, out, f"cpu-{sys_}-{voters}v{observers}o", ens.servers(voters_only=True), label,
              "--workload", "set", "--rate", str(a.cpu_rate), "--clients", str(a.clients),
              "--depth", str(a.depth), "--duration", str(a.duration))
    used = {s: cpu_seconds(pids[s]) - before[s] for s in sids}
    writes = max(1, w["ops"])
    per = {s: 1e6 * used[s] / writes for s in sids}
    leader = [per[s] for s in sids if roles[s] == "leader"]
    followers = [per[s] for s in sids if roles[s] == "follower"]
    observers_ = [per[s] for s in sids if roles[s] == "observer"]
    return {"rate": a.cpu_rate, "writes": w["ops"], "errors": w["errors"],
            "leader_us": leader[0] if leader else None,
            "follower_max_us": max(followers) if followers else None,
            "observer_mean_us": statistics.mean(observers_) if observers_ else None}


def bench(binary, out, name, servers, label, *args):
    path = os.path.join(out, name + ".json")
    with open(path, "w") as f:
        subprocess.run(PIN["voter"] + [binary, "bench", "--servers", servers, "--label", label, "--json", *args],
                       stdout=f, check=True)
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if l.startswith("{")]
    return json.loads(lines[-1])["results"][0]


def run_topology(sys_, binary, work, out, voters, observers, a):
    label = "outpost" if sys_ == "op" else "zookeeper"
    ens = Ensemble(sys_, binary, work, voters, observers, a.tick, masters=a.observer_masters)
    try:
        ens.start_all()
        ens.wait_settled([m["sid"] for m in ens.members])
        load = ["--clients", str(a.clients), "--depth", str(a.depth), "--duration", str(a.duration)]
        # Warm the JIT (and outpost's allocator) before anything is recorded.
        bench(binary, out, f"warmup-{sys_}-{voters}v{observers}o", ens.servers(), label,
              "--workload", "mixed", "--clients", str(a.clients), "--depth", str(a.depth), "--duration", "3")
        w = bench(binary, out, f"write-{sys_}-{voters}v{observers}o", ens.servers(voters_only=True), label,
                  "--workload", "set", *load)
        r = bench(binary, out, f"read-{sys_}-{voters}v{observers}o", ens.servers(), label,
                  "--workload", "get", *load)
        res = {"write_ops": w["ops_per_sec"], "write_p99_ms": w["p99_us"] / 1000,
               "read_ops": r["ops_per_sec"], "read_p99_ms": r["p99_us"] / 1000}
        if a.cpu_rate > 0:
            res["cpu"] = cpu_per_write(ens, binary, out, sys_, label, voters, observers, a)
        return res
    finally:
        ens.stop()


def time_to_serve(sys_, binary, work, out, a, rnd):
    """Seconds from an observer's process start until it serves the whole preloaded tree."""
    label = "outpost" if sys_ == "op" else "zookeeper"
    ens = Ensemble(sys_, binary, work, 3, 0, a.tick, extra_observers=1)
    try:
        all_sids = [1, 2, 3, 4]
        for sid in (1, 2, 3):
            ens.start(sid, all_sids)
        ens.wait_settled([1, 2, 3])
        bench(binary, out, f"preload-{sys_}-{rnd}", ens.servers(sids=[1, 2, 3]), label, "--workload", "create",
              "--clients", "8", "--depth", "64", "--duration", "600", "--total", str(a.znodes), "--keep")
        want = znode_count(ens.leader_port([1, 2, 3]))
        start = time.time()
        ens.start(4, all_sids)
        port = ens.members[3]["client"]
        end = start + 300
        while time.time() < end:
            if mode(port) == "observer":
                count = znode_count(port)
                if count is not None and count >= want:
                    return {"seconds": time.time() - start, "znodes": want}
            time.sleep(0.02)
        raise RuntimeError(f"{sys_} observer did not serve within 300 s; logs in {ens.dir}")
    finally:
        ens.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--clients", type=int, default=12)
    p.add_argument("--depth", type=int, default=16)
    p.add_argument("--znodes", type=int, default=100000)
    p.add_argument("--serve-rounds", type=int, default=2)
    p.add_argument("--tick", type=int, default=2000)
    p.add_argument("--out")
    p.add_argument("--only", choices=["op", "zk"])
    p.add_argument("--observer-masters", action="store_true",
                   help="outpost's observers sync from followers (observerMasterPort.N), not the leader")
    p.add_argument("--topologies", help="comma-separated subset, e.g. 3v0o,3v4o (default: all)")
    p.add_argument("--cpu-rate", type=int, default=4000,
                   help="offered writes/s of the CPU-per-write run (0 skips it)")
    p.add_argument("--pin", action="store_true",
                   help="voters and the load generator on CPU 0, observers on CPU 1 (taskset)")
    a = p.parse_args()
    if a.pin:
        PIN["voter"] = ["taskset", "-c", "0"]
        PIN["observer"] = ["taskset", "-c", "1"]

    work = tempfile.mkdtemp(prefix="outpost-obs-bench.")
    out = a.out or os.path.join(work, "results")
    os.makedirs(out, exist_ok=True)
    binary = os.environ.get("OUTPOST_BIN")
    if not binary:
        print("building outpost (release)...", file=sys.stderr)
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "outpost"], cwd=ROOT, check=True)
        binary = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "outpost")
    shutil.copy(binary, os.path.join(work, "outpost-bin"))
    binary = os.path.join(work, "outpost-bin")
    load_before = open("/proc/loadavg").read().split()[:3]
    systems = [a.only] if a.only else ["op", "zk"]

    results = {s: {} for s in systems}
    order = list(systems)
    topologies = TOPOLOGIES
    if a.topologies:
        topologies = [t for t in TOPOLOGIES if f"{t[0]}v{t[1]}o" in a.topologies.split(",")]
    for voters, observers in topologies:
        for s in order:
            print(f"== {s}: {voters} voters + {observers} observers ==", file=sys.stderr)
            results[s][f"{voters}v{observers}o"] = run_topology(s, binary, work, out, voters, observers, a)
            print(f"   {results[s][f'{voters}v{observers}o']}", file=sys.stderr)
        order.reverse()
    serve = {s: [] for s in systems}
    for rnd in range(a.serve_rounds):
        for s in order:
            print(f"== {s}: observer time-to-serve, round {rnd + 1} ==", file=sys.stderr)
            serve[s].append(time_to_serve(s, binary, work, out, a, rnd))
            print(f"   {serve[s][-1]}", file=sys.stderr)
        order.reverse()
    load_after = open("/proc/loadavg").read().split()[:3]

    zk_version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "zookeeper"], capture_output=True,
                                text=True).stdout.split("-")[0] or "3.8"
    meta = {"date": time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime()), "cores": os.cpu_count(),
            "load_before": " ".join(load_before), "load_after": " ".join(load_after), "tick_ms": a.tick,
            "clients": a.clients, "depth": a.depth, "duration_s": a.duration, "value_size": 100,
            "znodes": a.znodes, "zookeeper_version": zk_version, "pinned": a.pin}
    summary = {"meta": meta, "topologies": results, "time_to_serve": serve}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)

    names = {"op": "outpost", "zk": f"ZooKeeper {zk_version}"}
    lines = ["| ensemble | " + " | ".join(
        f"{names[s]} writes/s (vs 3 voters) | {names[s]} write p99 ms | {names[s]} reads/s" for s in systems) + " |",
        "| --- |" + " --- | --- | --- |" * len(systems)]
    for voters, observers in topologies:
        key = f"{voters}v{observers}o"
        cells = []
        for s in systems:
            r, base = results[s][key], results[s].get("3v0o", results[s][key])
            cells.append(f"{r['write_ops']:,.0f} ({100 * r['write_ops'] / base['write_ops']:.0f}%) | "
                         f"{r['write_p99_ms']:.1f} | {r['read_ops']:,.0f}")
        shape = f"{voters} voters" + (f" + {observers} observer{'s' if observers > 1 else ''}" if observers else "")
        lines.append(f"| {shape} | " + " | ".join(cells) + " |")
    lines.append("")
    for s in systems:
        secs = [r["seconds"] for r in serve[s]]
        if secs:
            lines.append(f"Observer start to serving {a.znodes:,} znodes, {names[s]}: median "
                         f"{statistics.median(secs):.2f} s (rounds: {', '.join(f'{x:.2f}' for x in secs)}).")
    if "op" in serve and "zk" in serve and serve["op"] and serve["zk"]:
        ratio = statistics.median(r["seconds"] for r in serve["op"]) / statistics.median(
            r["seconds"] for r in serve["zk"])
        lines.append(f"outpost / ZooKeeper time-to-serve ratio: {ratio:.2f}.")
    if all(k in results[s] for s in systems for k in ("3v0o", "3v4o", "7v0o")):
        for s in systems:
            t = results[s]
            keep = t["3v4o"]["write_ops"] / t["3v0o"]["write_ops"]
            seven = t["7v0o"]["write_ops"] / t["3v0o"]["write_ops"]
            lines.append(f"{names[s]}: 3 voters + 4 observers keep {100 * keep:.0f}% of 3 voters' write throughput "
                         f"(target >= 90%: {'met' if keep >= 0.9 else 'not met'}); 7 voters keep {100 * seven:.0f}%.")
    if a.cpu_rate > 0:
        lines.append("")
        lines.append(f"Voters' CPU per write at {a.cpu_rate:,} offered sets/s (open loop, the same load in every row), "
                     "microseconds: leader / busiest follower / mean observer.")
        lines.append("")
        lines.append("| ensemble | " + " | ".join(f"{names[s]} leader / follower / observer" for s in systems) + " |")
        lines.append("| --- |" + " --- |" * len(systems))

        def us(x):
            return "-" if x is None else f"{x:.1f}"
        for voters, observers in topologies:
            key = f"{voters}v{observers}o"
            cells = []
            for s in systems:
                c = results[s][key].get("cpu", {})
                cells.append(f"{us(c.get('leader_us'))} / {us(c.get('follower_max_us'))} / "
                             f"{us(c.get('observer_mean_us'))}")
            shape = f"{voters} voters" + (f" + {observers} observer{'s' if observers > 1 else ''}" if observers else "")
            lines.append(f"| {shape} | " + " | ".join(cells) + " |")
        lines.append("")
    if a.pin:
        lines.append("Pinned (--pin): voters and the load generator on CPU 0, observers on CPU 1.")
    lines.append(f"Run {meta['date']} on {meta['cores']} cores shared with the load generator; load average "
                 f"{meta['load_before']} before, {meta['load_after']} after; tickTime {a.tick} ms; "
                 f"{a.clients} sessions x {a.depth} in flight, {a.duration} s per run, 100-byte values; writes "
                 f"(set) from sessions on voters only, reads (get) from sessions on every member.")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    # The member logs stay; the copied binary (tens of MB per run) does not.
    os.remove(binary)
    print(f"results in {out} (member logs in {work})", file=sys.stderr)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    main()
