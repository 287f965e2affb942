#!/usr/bin/env bash
# The relay benchmark (issue 6): a real nats-server (JetStream in a temp dir) and an outpost ensemble of
# three voters and one observer running the relay, all on loopback with their own temporary data
# directories (release build; tickTime 2000, initLimit 10, syncLimit 5 as ZooKeeper's sample config).
# Each run is `outpost bench --workload relay` (see src/bench/relay.rs for what it measures and how):
# creates of --value-size bytes of compressible text (JSON-like config records) from --clients sessions
# spread round robin over the three voters, and a JetStream ordered consumer on outpost.log in the same
# process matching each event to the create that made it.
#
# 1. peak: closed loop (--depth requests in flight per session) for --duration seconds: the ensemble's
#    peak write rate with the relay running;
# 2. half: open loop at half that rate for --duration seconds: commit-to-subscriber latency
#    (from the writing client holding its reply to the subscriber holding the event; target p99 < 5 ms);
# 3. sustained: closed loop again for --sustain seconds: does the relay keep up at peak (events per
#    second against writes per second, subscriber backlog, relay lag from the observer's mntr, drain time
#    and rate after the load);
# 4. low: open loop at --low-rate creates/s for --duration seconds: the latency floor of the relay path
#    when the machine has CPU to spare.
# Every run also reports the lz4 ratio of the log messages (relay.toml's compress_over_bytes is
# --compress-over, below the value size, so every create's event is compressed) and the CPU time of the
# observer's `outpost-relay` threads (the relay runs on a thread of its own) and of the whole observer.
# Between runs the script waits for the relay's lag (mntr) to reach zero.
#
# Usage: scripts/bench-relay.sh [--duration S] [--sustain S] [--clients N] [--depth D] [--value-size B]
#          [--compress-over B] [--low-rate N] [--out DIR]
# Env: OUTPOST_BIN=path uses that binary instead of building a release one (it is copied first).
# Needs: /usr/sbin/nats-server (apt-get install nats-server), python3, cargo.
# Results: peak.json, half.json, sustained.json, low.json (and *-cpu.json: every process's CPU time
# around each run), summary.json and summary.md (the README table) in --out.

set -euo pipefail

DURATION=15
SUSTAIN=30
CLIENTS=12
DEPTH=16
VALUE_SIZE=1024
COMPRESS_OVER=256
LOW_RATE=500
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --sustain) SUSTAIN="$2"; shift 2 ;;
        --clients) CLIENTS="$2"; shift 2 ;;
        --depth) DEPTH="$2"; shift 2 ;;
        --value-size) VALUE_SIZE="$2"; shift 2 ;;
        --compress-over) COMPRESS_OVER="$2"; shift 2 ;;
        --low-rate) LOW_RATE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

NATS_SERVER=/usr/sbin/nats-server
[ -x "$NATS_SERVER" ] || { echo "$NATS_SERVER is missing: apt-get install nats-server" >&2; exit 1; }
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d /tmp/outpost-bench-relay.XXXXXX)"
OUT="${OUT:-$WORK/results}"
mkdir -p "$OUT"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

# Pids of the processes this script started (nats, m1..m4).
declare -A PID
cleanup() {
    # Only the processes this script started, by pid.
    for key in "${!PID[@]}"; do
        kill -9 "${PID[$key]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    # Keep the logs, drop the data (txn logs are preallocated in 64 MiB files).
    rm -rf "$WORK"/m*/data "$WORK/js" "$WORK/outpost-bin"
}
trap cleanup EXIT

# 13 distinct free loopback ports: client, quorum and election port of each member, then NATS.
read -r -a PORTS <<< "$(python3 -c '
import socket
socks = []
for _ in range(13):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
')"
NATS_PORT="${PORTS[12]}"
NATS_URL="nats://127.0.0.1:$NATS_PORT"

OUTPOST="${OUTPOST_BIN:-}"
if [ -z "$OUTPOST" ]; then
    echo "building outpost (release)..." >&2
    (cd "$ROOT" && cargo build --release --quiet --bin outpost)
    OUTPOST="${CARGO_TARGET_DIR:-$ROOT/target}/release/outpost"
fi
cp "$OUTPOST" "$WORK/outpost-bin"
OUTPOST="$WORK/outpost-bin"

client_port() { echo "${PORTS[$((($1 - 1) * 3))]}"; }

# nats-server with JetStream in $WORK/js.
"$NATS_SERVER" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$WORK/js" > "$WORK/nats.log" 2>&1 &
PID[nats]=$!
for _ in $(seq 100); do
    grep -q "Server is ready" "$WORK/nats.log" && break
    sleep 0.1
done
grep -q "Server is ready" "$WORK/nats.log" || { echo "nats-server did not start" >&2; exit 1; }
NATS_VERSION="$("$NATS_SERVER" --version 2>/dev/null | awk '{print $NF}')"

cat > "$WORK/relay.toml" <<EOF
[nats]
servers = ["$NATS_URL"]
stream = "OUTPOST"
subject_prefix = "outpost"
[events]
encoding = "json"
include_data = true
compress_over_bytes = $COMPRESS_OVER
[sink]
kind = "nats"
EOF

# Member directories $WORK/m<id>: voters 1..3, observer 4 with the relay.
dyn=""
for id in 1 2 3 4; do
    i=$(((id - 1) * 3))
    role=participant
    [ "$id" = 4 ] && role=observer
    dyn+="server.$id=127.0.0.1:${PORTS[$((i + 1))]}:${PORTS[$((i + 2))]}:$role;127.0.0.1:${PORTS[$i]}"$'\n'
done
for id in 1 2 3 4; do
    dir="$WORK/m$id"
    mkdir -p "$dir/data"
    echo "$id" > "$dir/data/myid"
    {
        echo "tickTime=2000"
        echo "initLimit=10"
        echo "syncLimit=5"
        echo "dataDir=$dir/data"
        echo "standaloneEnabled=false"
        echo "reconfigEnabled=false"
        echo "4lw.commands.whitelist=*"
        echo "admin.enableServer=false"
        echo "metricsProvider.httpPort=0"
        printf '%s' "$dyn"
        if [ "$id" = 4 ]; then
            echo "peerType=observer"
            echo "relay.configFile=$WORK/relay.toml"
        fi
    } > "$dir/zoo.cfg"
    RUST_LOG=info "$OUTPOST" server --config "$dir/zoo.cfg" >> "$dir/outpost.log" 2>&1 &
    PID[m$id]=$!
done

# Waits for one leader, two followers and a serving observer (at most 120 s).
python3 - "$(client_port 1)" "$(client_port 2)" "$(client_port 3)" "$(client_port 4)" <<'EOF' || {
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
    if sorted(m or "" for m in modes[:3]) == ["follower", "follower", "leader"] and modes[3] == "observer":
        sys.exit(0)
    time.sleep(0.1)
print("modes:", modes, file=sys.stderr)
sys.exit(1)
EOF
    echo "the ensemble did not settle; logs in $WORK" >&2
    exit 1
}
DC1="127.0.0.1:$(client_port 1),127.0.0.1:$(client_port 2),127.0.0.1:$(client_port 3)"
OBSERVER="127.0.0.1:$(client_port 4)"
echo "ensemble: voters $DC1, observer $OBSERVER (relay pid ${PID[m4]}), NATS $NATS_URL" >&2

# Waits until the observer's mntr says the relay has published everything (relay_lag_zxids 0).
wait_relay_idle() {
    python3 - "$(client_port 4)" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
end = time.time() + 120
while time.time() < end:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"mntr")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        lag = [l.split("\t")[1] for l in data.decode().splitlines() if l.startswith("zk_relay_lag_zxids\t")]
        if lag and int(lag[0]) == 0:
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.5)
print("the relay did not catch up within 120 s", file=sys.stderr)
EOF
}

# CPU seconds (user + system) each process this script started has used so far, as JSON.
CLK_TCK="$(getconf CLK_TCK)"
cpu_json() {
    local key sep="" out="{"
    for key in "${!PID[@]}"; do
        out+="$sep\"$key\": $(awk -v hz="$CLK_TCK" '{print ($14 + $15) / hz}' "/proc/${PID[$key]}/stat")"
        sep=", "
    done
    echo "$out}"
}

# bench <name> <args...>: one relay run, with every process's CPU time before and after it.
bench() {
    local name="$1"
    shift
    wait_relay_idle
    echo "== $name ==" >&2
    local before
    before="$(cpu_json)"
    "$OUTPOST" bench --workload relay --servers "$DC1" --nats "$NATS_URL" --observer "$OBSERVER" \
        --relay-pid "${PID[m4]}" --clients "$CLIENTS" --value-size "$VALUE_SIZE" --json "$@" > "$OUT/$name.json"
    echo "{\"before\": $before, \"after\": $(cpu_json)}" > "$OUT/$name-cpu.json"
}

# Warm up (page cache, the stream's files, allocators); not recorded.
bench warmup --depth "$DEPTH" --duration 5
bench peak --depth "$DEPTH" --duration "$DURATION"
PEAK="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["writes_per_sec"])' "$OUT/peak.json")"
HALF="$(python3 -c 'import sys; print(int(float(sys.argv[1]) / 2))' "$PEAK")"
bench half --depth "$DEPTH" --duration "$DURATION" --rate "$HALF"
bench sustained --depth "$DEPTH" --duration "$SUSTAIN"
bench low --depth "$DEPTH" --duration "$DURATION" --rate "$LOW_RATE"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$OUT" <<EOF
import json, os, sys
out = sys.argv[1]
runs = {n: json.load(open(os.path.join(out, n + ".json"))) for n in ("peak", "half", "sustained", "low")}
meta = {
    "date": "$(date -u +%Y-%m-%dT%H:%MZ)",
    "machine": "$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)",
    "load_before": "$LOAD_BEFORE", "load_after": "$LOAD_AFTER",
    "clients": $CLIENTS, "depth": $DEPTH, "duration_s": $DURATION, "sustain_s": $SUSTAIN,
    "value_size": $VALUE_SIZE, "compress_over_bytes": $COMPRESS_OVER, "low_rate": $LOW_RATE,
    "nats_server": "${NATS_VERSION:-?}",
}
ms = lambda us: us / 1000
p, h, s, lo = runs["peak"], runs["half"], runs["sustained"], runs["low"]
rows = [
    ("ensemble peak write rate (creates/s, closed loop, relay on)", f"{p['writes_per_sec']:,.0f}", ""),
    (f"commit-to-subscriber p50 / p99 ms at {h['offered_rate']:,.0f} creates/s (half of peak)",
     f"{ms(h['commit_to_subscriber']['p50_us']):.2f} / {ms(h['commit_to_subscriber']['p99_us']):.2f}",
     "p99 < 5 ms " + ("met" if ms(h['commit_to_subscriber']['p99_us']) < 5 else "**not met**")),
    ("write-to-subscriber p50 / p99 ms at half of peak (includes the write itself)",
     f"{ms(h['write_to_subscriber']['p50_us']):.2f} / {ms(h['write_to_subscriber']['p99_us']):.2f}", ""),
    ("write ack p50 / p99 ms at half of peak", f"{ms(h['write_ack']['p50_us']):.2f} / {ms(h['write_ack']['p99_us']):.2f}", ""),
    ("events before their write's ack at half of peak", f"{h['before_ack']:,} of {h['matched']:,}", ""),
]
keeps = s["missing"] == 0 and s["events_per_sec_during_load"] >= 0.95 * s["writes_per_sec"] and (s["drain_ms"] or 1e9) < 1000
rows += [
    (f"sustained at peak for {s['elapsed_s']:.0f} s: writes/s vs events/s at the subscriber",
     f"{s['writes_per_sec']:,.0f} vs {s['events_per_sec_during_load']:,.0f}",
     "relay keeps up " + ("met" if keeps else "**not met**")),
    ("sustained at peak: subscriber backlog max / at end (acked creates without their event)",
     f"{s['backlog_max']:,} / {s['backlog_at_end']:,}", ""),
    ("sustained at peak: relay lag from mntr, max zxids / max ms",
     f"{s['relay_lag_zxids_max']} / {s['relay_lag_ms_max']}", ""),
    ("sustained at peak: drain after the load stops, ms", f"{s['drain_ms']:.1f}" if s["drain_ms"] is not None else "did not drain", ""),
    ("sustained at peak: relay throughput while draining after the load (events/s)",
     f"{s['drain_events_per_sec']:,.0f}" if s["drain_events_per_sec"] else "-", ""),
    ("sustained at peak: commit-to-subscriber p50 / p99 ms",
     f"{ms(s['commit_to_subscriber']['p50_us']):.2f} / {ms(s['commit_to_subscriber']['p99_us']):.2f}", ""),
    (f"commit-to-subscriber p50 / p99 ms at {lo['offered_rate']:,.0f} creates/s (CPU to spare)",
     f"{ms(lo['commit_to_subscriber']['p50_us']):.2f} / {ms(lo['commit_to_subscriber']['p99_us']):.2f}", ""),
    (f"write ack p50 / p99 ms at {lo['offered_rate']:,.0f} creates/s",
     f"{ms(lo['write_ack']['p50_us']):.2f} / {ms(lo['write_ack']['p99_us']):.2f}", ""),
    ("missing events (all runs)", f"{p['missing'] + h['missing'] + s['missing'] + lo['missing']}", ""),
    (f"lz4 ratio of log messages ({$VALUE_SIZE}-byte compressible values, compress_over_bytes {$COMPRESS_OVER})",
     f"{s['lz4_ratio']:.2f} ({s['raw_bytes'] / max(s['log_messages'], 1):,.0f} -> {s['payload_bytes'] / max(s['log_messages'], 1):,.0f} bytes per event)", ""),
]
for name, r, run in (("at half of peak", h, "half"), ("at peak", s, "sustained")):
    rows.append((f"relay CPU {name}: share of one core / per event",
                 f"{r['relay_cpu_pct_of_core']:.1f}% / {r['relay_cpu_us_per_event']:.1f} us", ""))
    rows.append((f"relay threads runnable but waiting for a CPU {name}, share of the run",
                 f"{100 * r['relay_wait_s'] / r['elapsed_s']:.0f}%", ""))
    rows.append((f"observer process CPU {name} (relay included): share of one core",
                 f"{r['process_cpu_pct_of_core']:.1f}%", ""))
    cpu = json.load(open(os.path.join(out, run + "-cpu.json")))
    pct = {k: 100 * (cpu["after"][k] - cpu["before"][k]) / r["elapsed_s"] for k in cpu["after"]}
    rows.append((f"other processes' CPU {name}, share of one core: nats-server / voters 1, 2, 3",
                 f"{pct['nats']:.0f}% / {pct['m1']:.0f}%, {pct['m2']:.0f}%, {pct['m3']:.0f}%", ""))
json.dump({"meta": meta, "rows": rows, "runs": runs}, open(os.path.join(out, "summary.json"), "w"), indent=1)
lines = ["| metric | value | target |", "| --- | --- | --- |"]
lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
lines.append("")
lines.append(f"Run {meta['date']} on {meta['machine']}, shared with other work; load average {meta['load_before']} before, "
             f"{meta['load_after']} after; nats-server {meta['nats_server']}; {meta['clients']} sessions over the three "
             f"voters, {meta['depth']} creates in flight each at peak; {meta['duration_s']} s per run, {meta['sustain_s']} s sustained.")
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
echo "results in $OUT (logs in $WORK)" >&2
