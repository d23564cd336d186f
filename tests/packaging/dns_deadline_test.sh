#!/usr/bin/env bash
# The name lookup is under api.timeout: with a name server that takes every
# query and never answers (glibc told to wait 30 s per try), `check-config
# --online` and `once` report a timeout within api.timeout (2 s here), not
# after the resolver's own 30 s. The server is a UDP socket on 127.0.0.77:53
# that reads and says nothing; /etc/resolv.conf points at it only inside a
# private mount namespace (unshare -m), so the machine's own lookups are
# untouched. Needs root (unshare, mount --bind).
#
# Usage: dns_deadline_test.sh INCIDENT_SYNCD
set -euo pipefail
syncd=$1
fail() { echo "FAIL: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "SKIP: must run as root (unshare -m and mount --bind)"; exit 77; }
command -v unshare >/dev/null || fail "unshare (util-linux) is missing"
# A container without CAP_SYS_ADMIN cannot make a mount namespace: nothing to test there.
unshare -m true 2>/dev/null || { echo "SKIP: unshare -m is not permitted here (no CAP_SYS_ADMIN)"; exit 77; }

dir=$(mktemp -d /tmp/isync-dns.XXXXXX)
silent_pid=
cleanup() {
  if [[ -n $silent_pid ]]; then kill "$silent_pid" 2>/dev/null; wait "$silent_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

# A name server that never answers.
python3 - "$dir/ready" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.77", 53))
open(sys.argv[1], "w").close()
while True:
    s.recvfrom(4096)
PY
silent_pid=$!
for _ in $(seq 100); do [[ -e $dir/ready ]] && break; sleep 0.05; done
[[ -e $dir/ready ]] || fail "the silent name server did not start"
printf 'nameserver 127.0.0.77\noptions timeout:30 attempts:1\n' >"$dir/resolv.conf"

echo "test-token" >"$dir/token"
chmod 600 "$dir/token"
cat >"$dir/incident-sync.yaml" <<YAML
api:
  base_url: https://api.incident-sync-dns-test.example
  token_file: $dir/token
  timeout: 2s
retry:
  max_attempts: 1
sync:
  pairs:
    - { app_id: PXdns, tld: dns.example }
database:
  path: $dir/incidents.db
metrics:
  listen: ""
YAML

# run_isolated SECONDS_LOG OUT -- COMMAND...: COMMAND in the private namespace; its
# wall time (whole seconds) in SECONDS_LOG, its output in OUT; never fails.
run_isolated() {
  local seconds_log=$1 out=$2
  shift 3
  local start end
  start=$(date +%s.%N)
  timeout 60 unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$dir/resolv.conf" "$@" \
    >"$out" 2>&1 || true
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.1f}')" >"$seconds_log"
}

run_isolated "$dir/online.s" "$dir/online.out" -- "$syncd" check-config --online --config "$dir/incident-sync.yaml"
seconds=$(cat "$dir/online.s")
online_seconds=$seconds
cat "$dir/online.out"
grep -q "no answer within api.timeout" "$dir/online.out" || fail "check-config --online did not report the lookup timeout"
python3 -c "import sys; sys.exit(0 if $seconds < 10 else 1)" || fail "check-config --online took ${seconds} s (api.timeout is 2 s)"

run_isolated "$dir/once.s" "$dir/once.out" -- "$syncd" once --config "$dir/incident-sync.yaml"
seconds=$(cat "$dir/once.s")
grep -q "no answer within api.timeout" "$dir/once.out" || { cat "$dir/once.out"; fail "once did not report the lookup timeout"; }
python3 -c "import sys; sys.exit(0 if $seconds < 10 else 1)" || fail "once took ${seconds} s (api.timeout is 2 s)"
echo "ok: the lookup gave up after api.timeout (check-config --online: ${online_seconds} s, once: ${seconds} s)"
