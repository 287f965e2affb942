#!/usr/bin/env bash
# Side-by-side benchmark of two three-server voting ensembles on one machine: Apache ZooKeeper 3.8
# (Debian's jar) and outpost, each member on free loopback ports with its own temporary data directory,
# both with the same zoo.cfg timing (tickTime, initLimit, syncLimit: default 2000 / 10 / 5 as in
# ZooKeeper's sample config).
#
# 1. throughput: `outpost bench` create, set and get with --clients sessions spread round robin over the
#    three members (so two thirds of the writes enter at a follower and are forwarded to the leader, and
#    gets are served by every member), each workload against both ensembles back to back, alternating
#    which goes first;
# 2. latency at equal offered load: set and get again with `--rate` at --rate-fraction of the lower of
#    the two throughputs just measured, open loop, so both ensembles get exactly the same load;
# 3. failover: `outpost bench --workload failover` kills the leader with SIGKILL and times the first
#    successful write; the script restarts the killed member and waits for the ensemble to settle;
#    --failovers rounds, alternating between the ensembles.
#
# Usage: scripts/bench-ensemble-vs-zookeeper.sh [--duration S] [--clients N] [--depth D] [--failovers N]
#          [--tick MS] [--rate-fraction F] [--out DIR]
# Env: OUTPOST_BIN=path uses that binary instead of building a release one (it is copied first, so a
#      build elsewhere cannot replace it mid-run).
# Needs: java, /usr/share/java/zookeeper.jar (apt-get install zookeeper), python3, cargo.
# Results: one JSON file per run, summary.json and summary.md (the README table) in --out.

set -euo pipefail

DURATION=10
CLIENTS=12
DEPTH=16
FAILOVERS=3
TICK=2000
RATE_FRACTION=0.5
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --clients) CLIENTS="$2"; shift 2 ;;
        --depth) DEPTH="$2"; shift 2 ;;
        --failovers) FAILOVERS="$2"; shift 2 ;;
        --tick) TICK="$2"; shift 2 ;;
        --rate-fraction) RATE_FRACTION="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/outpost-ens-vs-zk.XXXXXX)"
OUT="${OUT:-$WORK/results}"
mkdir -p "$OUT"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# Pids of the members this script started, by system and id (op1..op3, zk1..zk3).
declare -A PID
cleanup() {
    # Only the processes this script started, by pid.
    for key in "${!PID[@]}"; do
        kill -9 "${PID[$key]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    # Keep the members' logs, drop their data (txn logs are preallocated in 64 MiB files).
    rm -rf "$WORK"/op/m*/data "$WORK"/zk/m*/data "$WORK/outpost-bin"
}
trap cleanup EXIT

# 18 distinct free loopback ports: client, quorum and election port for each of the six members.
read -r -a PORTS <<< "$(python3 -c '
import socket
socks = []
for _ in range(18):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
')"

OUTPOST="${OUTPOST_BIN:-}"
if [ -z "$OUTPOST" ]; then
    echo "building outpost (release)..." >&2
    (cd "$ROOT" && cargo build --release --quiet --bin outpost)
    OUTPOST="${CARGO_TARGET_DIR:-$ROOT/target}/release/outpost"
fi
cp "$OUTPOST" "$WORK/outpost-bin"
OUTPOST="$WORK/outpost-bin"

ZK_CP="/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
for jar in /usr/share/java/slf4j-log4j12.jar /usr/share/java/log4j-1.2.jar; do
    [ -f "$jar" ] && ZK_CP="$ZK_CP:$jar"
done

# Member directories: $WORK/<sys>/m<id>/{zoo.cfg,zoo.cfg.dynamic,data/myid}. $1 = op|zk, $2 = port offset.
write_ensemble() {
    local sys="$1" base="$2" id dyn=""
    for id in 1 2 3; do
        local i=$((base + (id - 1) * 3))
        dyn+="server.$id=127.0.0.1:${PORTS[$((i + 1))]}:${PORTS[$((i + 2))]}:participant;127.0.0.1:${PORTS[$i]}"$'\n'
    done
    for id in 1 2 3; do
        local dir="$WORK/$sys/m$id"
        mkdir -p "$dir/data"
        echo "$id" > "$dir/data/myid"
        printf '%s' "$dyn" > "$dir/zoo.cfg.dynamic"
        cat > "$dir/zoo.cfg" <<EOF
tickTime=$TICK
initLimit=10
syncLimit=5
dataDir=$dir/data
standaloneEnabled=false
reconfigEnabled=false
4lw.commands.whitelist=*
admin.enableServer=false
metricsProvider.httpPort=0
dynamicConfigFile=$dir/zoo.cfg.dynamic
EOF
    done
}

client_port() { echo "${PORTS[$(($2 + ($1 - 1) * 3))]}"; }

start_member() {
    local sys="$1" id="$2" dir="$WORK/$1/m$2"
    if [ "$sys" = zk ]; then
        # zkServer.sh's default heap (ZK_SERVER_HEAP=1000) and the JVM's default collector.
        java -Xmx1000m -cp "$ZK_CP" "-Dzookeeper.log.dir=$dir" -Dzookeeper.root.logger=INFO,CONSOLE \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >> "$dir/zookeeper.out" 2>&1 &
    else
        RUST_LOG=info "$OUTPOST" server --config "$dir/zoo.cfg" >> "$dir/outpost.log" 2>&1 &
    fi
    PID[$sys$id]=$!
}

# Waits until one member reports `Mode: leader` and the two others `follower` (at most 120 s).
wait_settled() {
    local sys="$1" base="$2"
    python3 - "$(client_port 1 "$base")" "$(client_port 2 "$base")" "$(client_port 3 "$base")" <<'EOF' || {
import socket, sys, time
def mode(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"srvr")
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
ports = [int(p) for p in sys.argv[1:]]
end = time.time() + 120
while time.time() < end:
    modes = [mode(p) for p in ports]
    if modes.count("leader") == 1 and modes.count("follower") == len(ports) - 1:
        sys.exit(0)
    time.sleep(0.1)
print("modes:", modes, file=sys.stderr)
sys.exit(1)
EOF
        echo "the $sys ensemble did not settle; logs in $WORK/$sys" >&2
        exit 1
    }
}

connect_string() {
    echo "127.0.0.1:$(client_port 1 "$1"),127.0.0.1:$(client_port 2 "$1"),127.0.0.1:$(client_port 3 "$1")"
}

OP_BASE=0
ZK_BASE=9
write_ensemble op $OP_BASE
write_ensemble zk $ZK_BASE
for id in 1 2 3; do start_member zk $id; done
for id in 1 2 3; do start_member op $id; done
wait_settled zk $ZK_BASE
wait_settled op $OP_BASE
OP_SERVERS="$(connect_string $OP_BASE)"
ZK_SERVERS="$(connect_string $ZK_BASE)"
echo "outpost ensemble: $OP_SERVERS; zookeeper ensemble: $ZK_SERVERS" >&2

rss_sum() {
    local sys="$1" total=0 id
    for id in 1 2 3; do
        total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/${PID[$sys$id]}/status")))
    done
    echo "$total"
}

# bench <sys> <file> <args...>
bench() {
    local sys="$1" file="$2"
    shift 2
    local servers="$OP_SERVERS" label=outpost
    if [ "$sys" = zk ]; then servers="$ZK_SERVERS"; label=zookeeper; fi
    "$OUTPOST" bench --servers "$servers" --label "$label" --json "$@" > "$OUT/$file.json"
}

# Let both JVMs' JIT see some load before anything is measured (not recorded).
for sys in zk op; do
    bench "$sys" "warmup-$sys" --workload mixed --clients "$CLIENTS" --depth "$DEPTH" --duration 5
done

order=(op zk)
flip() { order=("${order[1]}" "${order[0]}"); }
for workload in create set get; do
    echo "== $workload (${order[*]}) ==" >&2
    for sys in "${order[@]}"; do
        bench "$sys" "$workload-$sys" --workload "$workload" --clients "$CLIENTS" --depth "$DEPTH" \
            --duration "$DURATION"
    done
    flip
done
OP_RSS="$(rss_sum op)"
ZK_RSS="$(rss_sum zk)"

ops() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["ops_per_sec"])' "$1"; }
for workload in set get; do
    RATE="$(python3 -c 'import sys; print(int(float(sys.argv[1]) * min(float(sys.argv[2]), float(sys.argv[3]))))' \
        "$RATE_FRACTION" "$(ops "$OUT/$workload-op.json")" "$(ops "$OUT/$workload-zk.json")")"
    echo "== $workload at $RATE ops/s (${order[*]}) ==" >&2
    for sys in "${order[@]}"; do
        bench "$sys" "$workload-rate-$sys" --workload "$workload" --clients "$CLIENTS" --depth "$DEPTH" \
            --duration "$DURATION" --rate "$RATE"
    done
    flip
done

for round in $(seq 1 "$FAILOVERS"); do
    for sys in "${order[@]}"; do
        base=$OP_BASE
        [ "$sys" = zk ] && base=$ZK_BASE
        echo "== failover $round: $sys ==" >&2
        bench "$sys" "failover-$round-$sys" --workload failover --clients 6 \
            --pids "${PID[${sys}1]},${PID[${sys}2]},${PID[${sys}3]}"
        killed="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["killed_pid"])' \
            "$OUT/failover-$round-$sys.json")"
        for id in 1 2 3; do
            if [ "${PID[$sys$id]}" = "$killed" ]; then
                wait "$killed" 2>/dev/null || true
                start_member "$sys" "$id"
            fi
        done
        wait_settled "$sys" "$base"
    done
    flip
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

ZK_VERSION="$(dpkg-query -W -f='${Version}' zookeeper 2>/dev/null | sed 's/-.*//' || true)"
python3 - "$OUT" <<EOF
import json, os, statistics, sys
out = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(out, name + ".json")))["results"][0]
meta = {
    "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
    "machine": "$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)",
    "load_before": "$LOAD_BEFORE", "load_after": "$LOAD_AFTER",
    "tick_ms": $TICK, "init_limit": 10, "sync_limit": 5,
    "clients": $CLIENTS, "depth": $DEPTH, "duration_s": $DURATION, "value_size": 100,
    "rate_fraction": $RATE_FRACTION, "failovers": $FAILOVERS,
    "zookeeper_version": "${ZK_VERSION:-3.8}",
}
rows = []
def row(name, op, zk, fmt, target=None, better="higher"):
    r = op / zk if zk else None
    met = None
    if target is not None and r is not None:
        met = r >= target if better == "higher" else r <= target
    rows.append({"metric": name, "outpost": op, "zookeeper": zk, "ratio": r, "fmt": fmt,
                 "target": target, "better": better, "met": met})
for w, target in (("create", 5), ("set", 5), ("get", 3)):
    row(f"{w} ops/s", load(f"{w}-op")["ops_per_sec"], load(f"{w}-zk")["ops_per_sec"], "{:,.0f}", target)
for w in ("create", "set", "get"):
    row(f"{w} p99 ms at full load", load(f"{w}-op")["p99_us"] / 1000, load(f"{w}-zk")["p99_us"] / 1000,
        "{:.1f}", better="lower")
for w in ("set", "get"):
    o, z = load(f"{w}-rate-op"), load(f"{w}-rate-zk")
    rate = o["offered_rate"]
    meta[f"{w}_rate"] = rate
    row(f"{w} p99 ms at {rate:,.0f} ops/s offered", o["p99_us"] / 1000, z["p99_us"] / 1000, "{:.2f}",
        better="lower")
    row(f"{w} p50 ms at {rate:,.0f} ops/s offered", o["p50_us"] / 1000, z["p50_us"] / 1000, "{:.2f}",
        better="lower")
fo = {"op": [], "zk": []}
for sys_ in fo:
    for i in range(1, $FAILOVERS + 1):
        fo[sys_].append(load(f"failover-{i}-{sys_}"))
def med(sys_, key):
    vals = [r[key] for r in fo[sys_] if r[key] is not None]
    return statistics.median(vals) if vals else float("nan")
def spread(sys_, key):
    vals = [r[key] for r in fo[sys_] if r[key] is not None]
    return ", ".join(f"{v:.0f}" for v in vals)
row("failover: kill -9 of leader to first write, median ms", med("op", "first_write_ms"),
    med("zk", "first_write_ms"), "{:,.0f}", 0.5, better="lower")
row("failover: kill -9 to new leader (srvr), median ms", med("op", "new_leader_ms"), med("zk", "new_leader_ms"),
    "{:,.0f}", better="lower")
row("failover: first write of an established session, median ms", med("op", "session_write_ms"),
    med("zk", "session_write_ms"), "{:,.0f}", better="lower")
row("RSS of the three members after the load, MiB", $OP_RSS / 1024, $ZK_RSS / 1024, "{:,.1f}", better="lower")
meta["failover_first_write_ms"] = {"outpost": spread("op", "first_write_ms"), "zookeeper": spread("zk", "first_write_ms")}
json.dump({"meta": meta, "rows": rows, "failover": fo}, open(os.path.join(out, "summary.json"), "w"), indent=1)
lines = ["| metric | outpost | Apache ZooKeeper " + meta["zookeeper_version"] + " | ratio | target |",
         "| --- | --- | --- | --- | --- |"]
for r in rows:
    t = ""
    if r["target"] is not None:
        t = ("≥ " if r["better"] == "higher" else "≤ ") + str(r["target"])
        t += " met" if r["met"] else " **not met**"
    ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
    lines.append(f"| {r['metric']} | {r['fmt'].format(r['outpost'])} | {r['fmt'].format(r['zookeeper'])} | {ratio} | {t} |")
lines.append("")
lines.append(f"Failover first-write times per round (ms): outpost {meta['failover_first_write_ms']['outpost']}; "
             f"ZooKeeper {meta['failover_first_write_ms']['zookeeper']}.")
lines.append(f"Run {meta['date']} on {meta['machine']}; load average {meta['load_before']} before, "
             f"{meta['load_after']} after; tickTime {meta['tick_ms']} ms, initLimit 10, syncLimit 5; "
             f"{meta['clients']} sessions x {meta['depth']} in flight, {meta['duration_s']} s per run, 100-byte values.")
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "results in $OUT (member logs in $WORK)" >&2
