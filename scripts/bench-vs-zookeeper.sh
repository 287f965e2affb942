#!/usr/bin/env bash
# Side-by-side benchmark: a standalone Apache ZooKeeper 3.8 (Debian's jar) and a standalone outpost server,
# each on a free loopback port with its own temporary data directory.
#
# 1. idle RSS of both servers;
# 2. `outpost bench --compare` for each workload (create, set, get, mixed);
# 3. 1,000,000 znodes of 100 bytes created in each, then RSS again.
#
# Usage: scripts/bench-vs-zookeeper.sh [--duration S] [--clients N] [--depth D] [--znodes N] [--out DIR]
# Env: OUTPOST_BIN=path uses that binary instead of building a release one.
# Needs: java, /usr/share/java/zookeeper.jar (apt-get install zookeeper), python3, cargo.
# Results: one JSON file per workload plus rss.json in --out (default: a new temporary directory).

set -euo pipefail

DURATION=10
CLIENTS=8
DEPTH=16
ZNODES=1000000
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --clients) CLIENTS="$2"; shift 2 ;;
        --depth) DEPTH="$2"; shift 2 ;;
        --znodes) ZNODES="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/outpost-vs-zk.XXXXXX)"
OUT="${OUT:-$WORK/results}"
mkdir -p "$OUT"

ZK_PID=""
OP_PID=""
cleanup() {
    # Only the two servers this script started.
    [ -n "$ZK_PID" ] && kill "$ZK_PID" 2>/dev/null || true
    [ -n "$OP_PID" ] && kill "$OP_PID" 2>/dev/null || true
    wait 2>/dev/null || true
    # Keep the logs and results, drop the data: with 1M znodes loaded the two data directories hold
    # about 2.6 GB (snapshots and preallocated txn logs), and a few runs would fill /tmp.
    rm -rf "$WORK/zk/data" "$WORK/outpost/data"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Waits until the server on port $1 answers the `srvr` four-letter word.
wait_srvr() {
    local port="$1" what="$2"
    for _ in $(seq 1 300); do
        if python3 - "$port" <<'EOF' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"srvr")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
sys.exit(0 if b"Mode:" in data else 1)
EOF
        then
            return 0
        fi
        sleep 0.2
    done
    echo "$what did not start on port $port" >&2
    exit 1
}

rss_kib() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# OUTPOST_BIN overrides the binary (e.g. a debug build for a quick dry run of this script).
OUTPOST="${OUTPOST_BIN:-}"
if [ -z "$OUTPOST" ]; then
    echo "building outpost (release)..." >&2
    (cd "$ROOT" && cargo build --release --quiet)
    OUTPOST="$ROOT/target/release/outpost"
fi

ZK_PORT="$(free_port)"
mkdir -p "$WORK/zk/data"
cat > "$WORK/zk/zoo.cfg" <<EOF
tickTime=2000
dataDir=$WORK/zk/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
EOF
java -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar \
    "-Dzookeeper.log.dir=$WORK/zk" \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$WORK/zk/zoo.cfg" > "$WORK/zk/zookeeper.log" 2>&1 &
ZK_PID=$!

OP_PORT="$(free_port)"
mkdir -p "$WORK/outpost/data"
cat > "$WORK/outpost/zoo.cfg" <<EOF
tickTime=2000
dataDir=$WORK/outpost/data
clientPort=$OP_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=*
EOF
"$OUTPOST" server --config "$WORK/outpost/zoo.cfg" > "$WORK/outpost/outpost.log" 2>&1 &
OP_PID=$!

wait_srvr "$ZK_PORT" "Apache ZooKeeper"
wait_srvr "$OP_PORT" "outpost"
sleep 2
ZK_IDLE="$(rss_kib "$ZK_PID")"
OP_IDLE="$(rss_kib "$OP_PID")"
echo "idle RSS: outpost ${OP_IDLE} KiB, zookeeper ${ZK_IDLE} KiB" >&2

for workload in create set get mixed; do
    echo "== $workload ==" >&2
    "$OUTPOST" bench --servers "127.0.0.1:$OP_PORT" --compare "127.0.0.1:$ZK_PORT" \
        --label outpost --compare-label zookeeper --pid "$OP_PID" --compare-pid "$ZK_PID" \
        --workload "$workload" --clients "$CLIENTS" --depth "$DEPTH" --duration "$DURATION" \
        --json > "$OUT/$workload.json"
done

echo "== loading $ZNODES znodes of 100 bytes into each ==" >&2
for target in "outpost:$OP_PORT" "zookeeper:$ZK_PORT"; do
    name="${target%%:*}"
    port="${target##*:}"
    "$OUTPOST" bench --servers "127.0.0.1:$port" --label "$name" --workload create \
        --clients "$CLIENTS" --depth "$DEPTH" --value-size 100 --total "$ZNODES" --keep \
        --json > "$OUT/load-$name.json"
done
sleep 2
ZK_LOADED="$(rss_kib "$ZK_PID")"
OP_LOADED="$(rss_kib "$OP_PID")"

cat > "$OUT/rss.json" <<EOF
{"znodes": $ZNODES, "value_size": 100,
 "outpost": {"idle_kib": $OP_IDLE, "loaded_kib": $OP_LOADED},
 "zookeeper": {"idle_kib": $ZK_IDLE, "loaded_kib": $ZK_LOADED}}
EOF

awk -v n="$ZNODES" -v oi="$OP_IDLE" -v zi="$ZK_IDLE" -v ol="$OP_LOADED" -v zl="$ZK_LOADED" 'BEGIN {
    printf "\n%-16s %12s %12s %8s\n", "RSS (MiB)", "outpost", "zookeeper", "ratio"
    printf "%-16s %12.1f %12.1f %8.2f\n", "idle", oi / 1024, zi / 1024, oi / zi
    printf "%-16s %12.1f %12.1f %8.2f\n", n " znodes", ol / 1024, zl / 1024, ol / zl
}'
echo "results in $OUT" >&2
