#!/usr/bin/env bash
# Real-client compatibility run against a ZooKeeper-compatible server at HOST:PORT:
#   1. Apache ZooKeeper's own zkCli.sh (Debian package) with commands piped on stdin;
#   2. the C client's cli_mt (Debian's zookeeper-bin), which reads the connect reply as a fixed
#      41-byte block;
#   3. kazoo (Debian's python3-kazoo) recipes and the sequential-ephemeral leader election recipe
#      (tests/compat/kazoo_recipes.py).
# Prints one "compat: <part> ok" line per part and "compat: ALL OK" at the end; exits non-zero on the
# first failure, and with status 2 when a client is not installed (CI installs them via .ci/run, so a
# missing client is a setup error, not a reason to skip).
#
# Usage: tests/compat/run.sh 127.0.0.1:2181
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
server="${1:?usage: run.sh HOST:PORT}"
zkcli=/usr/share/zookeeper/bin/zkCli.sh
cli_mt=/usr/lib/zookeeper/bin/cli_mt
python=/usr/bin/python3

if [ ! -x "$zkcli" ]; then
  echo "compat: $zkcli is missing: apt-get install zookeeper (see .ci/run)" >&2
  exit 2
fi
if [ ! -x "$cli_mt" ]; then
  echo "compat: $cli_mt is missing: apt-get install zookeeper-bin (see .ci/run)" >&2
  exit 2
fi
if ! "$python" -c 'import kazoo' 2>/dev/null; then
  echo "compat: kazoo is missing for $python: apt-get install python3-kazoo (see .ci/run)" >&2
  exit 2
fi

fail() {
  echo "compat: FAIL: $*" >&2
  exit 1
}

# ---- zkCli.sh ------------------------------------------------------------------------------------
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
printf '%s\n' \
  'create /zkcli hello' \
  'ls /' \
  'get /zkcli' \
  'set /zkcli world' \
  'get /zkcli' \
  'create /zkcli/child c' \
  'ls /zkcli' \
  'delete /zkcli' \
  'deleteall /zkcli' \
  'create /election ""' \
  'create -e -s /election/guid-n_ candidate' \
  'create -e -s /election/guid-n_ candidate' \
  'ls /election' \
  'stat /election' \
  'get /nosuch' \
  'quit' |
  timeout 60 "$zkcli" -server "$server" >"$out" 2>&1 && status=0 || status=$?
# zkCli.sh exits with the status of the last failed command (the "get /nosuch" above), so only a
# timeout is a failure here; the output decides the rest.
[ "$status" -ne 124 ] || { cat "$out" >&2; fail "zkCli.sh did not finish within 60 s"; }

expect() {
  grep -qxF -- "$1" "$out" || { cat "$out" >&2; fail "the client output lacks the line: $1"; }
}
expect 'Created /zkcli'
expect '[zkcli, zookeeper]'
expect 'hello'
expect 'world'
expect 'Created /zkcli/child'
expect '[child]'
expect 'Node not empty: /zkcli'
expect 'Created /election'
expect 'Created /election/guid-n_0000000000'
expect 'Created /election/guid-n_0000000001'
expect '[guid-n_0000000000, guid-n_0000000001]'
expect 'numChildren = 2'
expect 'cversion = 2'
expect 'Node does not exist: /nosuch'
grep -q 'state:SyncConnected' "$out" || fail "zkCli.sh never connected"
echo "compat: zkCli.sh ok"

# The 3.5+ commands: container and TTL nodes (the server needs extendedTypesEnabled=true),
# getAllChildrenNumber, getEphemerals, addauth/whoami, auth ACLs, ls -R/-s, sync, stat -w and a
# recursive addWatch (one event per change even with both armed; the session's own ephemeral fires
# NodeDeleted as it closes).
printf '%s\n' \
  'create /zx' \
  'create -c /zx/c' \
  'create -t 100000 /zx/t tt' \
  'create -e /zx/e' \
  'getAllChildrenNumber /zx' \
  'getEphemerals /zx' \
  'addauth digest u:p' \
  'whoami' \
  'create /zx/acl data' \
  'setAcl /zx/acl auth:u:p:cdrwa' \
  'getAcl /zx/acl' \
  'ls -R /zx' \
  'sync /zx' \
  'ls -s /zx' \
  'stat -w /zx/acl' \
  'addWatch -m PERSISTENT_RECURSIVE /zx' \
  'set /zx/acl newdata' \
  'quit' |
  timeout 60 "$zkcli" -server "$server" >"$out" 2>&1 && status=0 || status=$?
[ "$status" -ne 124 ] || { cat "$out" >&2; fail "zkCli.sh did not finish within 60 s"; }
expect 'Created /zx/c'
expect 'Created /zx/t'
expect 'Created /zx/e'
expect '3'
expect '[/zx/e]'
expect 'ip: 127.0.0.1'
expect 'digest: u'
expect "'digest,'u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="
expect ': cdrwa'
expect '/zx/acl'
expect 'Sync is OK'
expect '[acl, c, e, t]'
expect 'numChildren = 4'
expect 'aclVersion = 1'
[ "$(grep -c 'type:NodeDataChanged path:/zx/acl' "$out")" = 1 ] ||
  { cat "$out" >&2; fail "one NodeDataChanged for /zx/acl"; }
expect 'WatchedEvent state:SyncConnected type:NodeDeleted path:/zx/e'
echo "compat: zkCli.sh 3.5+ commands ok"

# Quotas: setquota/listquota/delquota keep /zookeeper/quota's limits and stats nodes as ZooKeeper does.
printf '%s\n' \
  'create /qz' \
  'setquota -n 2 /qz' \
  'create /qz/a' \
  'create /qz/b' \
  'create /qz/c' \
  'listquota /qz' \
  'get /zookeeper/quota/qz/zookeeper_stats' \
  'delquota /qz' \
  'listquota /qz' \
  'deleteall /qz' \
  'quit' |
  timeout 60 "$zkcli" -server "$server" >"$out" 2>&1 && status=0 || status=$?
[ "$status" -ne 124 ] || { cat "$out" >&2; fail "zkCli.sh did not finish within 60 s"; }
expect 'Output quota for /qz count=2,bytes=-1=;byteHardLimit=-1;countHardLimit=-1'
expect 'Output stat for /qz count=4,bytes=0'
expect 'count=4,bytes=0'
expect 'quota for /qz does not exist.'
echo "compat: zkCli.sh quotas ok"

# ---- the C client ------------------------------------------------------------------------------
# cli_mt runs commands asynchronously and exits on "quit"; the sleep keeps stdin open until the
# replies are in.
{
  printf '%s\n' \
    'create /cclient' \
    'set /cclient world' \
    'get /cclient' \
    'create +e /cclient/e' \
    'create +s /cclient/s' \
    'ls /cclient'
  sleep 2
  printf '%s\n' 'delete /cclient' 'exists /nosuch'
  sleep 1
  echo quit
} | timeout 30 "$cli_mt" "$server" >"$out" 2>&1 && status=0 || status=$?
[ "$status" -ne 124 ] || { cat "$out" >&2; fail "cli_mt did not finish within 30 s"; }
grep -q '^Got a new session id: 0x' "$out" || { cat "$out" >&2; fail "cli_mt never got a session"; }
expect '[/cclient]: rc = 0'
expect 'world'
expect '	name = /cclient/e'
expect '	name = /cclient/s0000000001'
expect '	s0000000001'
expect '/cclient: rc = -111'
expect 'Error -101 for /nosuch'
echo "compat: C client (cli_mt) ok"

# ---- kazoo ---------------------------------------------------------------------------------------
timeout 120 "$python" "$here/kazoo_recipes.py" "$server" || fail "kazoo recipes exited with $?"
echo "compat: ALL OK"
