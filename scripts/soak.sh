#!/usr/bin/env bash
# Soak: incident-syncd `run` against incident-sim in live mode (the account
# changes on every request) with mixed faults, polling every 2 s (and
# discovering pairs every 2 s), for a
# bounded time. Samples open file descriptors, RSS and WAL size and fails if
# they do not stay flat after warm-up; then SIGTERM must exit 0 and the
# database must pass integrity_check.
# Usage: scripts/soak.sh [seconds, default 120] [build preset, default debug]
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-120}
preset=${2:-debug}
bin=$PWD/build/$preset
[[ -x $bin/incident-syncd && -x $bin/tests/incident-sim ]] || bash scripts/build.sh "$preset" incident-syncd incident-sim

work=$(mktemp -d)
sim_pid=""; daemon_pid=""
cleanup() {
  [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null || true
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
umask 077; echo "soak-token" > "$work/token"; umask 022

"$bin/tests/incident-sim" --port 0 --port-file "$work/port" --ca-out "$work/ca.pem" --incidents 5000 --pairs 5 \
  --span 2h --token-file "$work/token" --live 2 --fail-every 7 --truncate-every 23 --rate-limit-every 31 \
  --reset-every 37 --stats-file "$work/sim_stats.json" > "$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 600); do [[ -s $work/port ]] && break; sleep 0.1; done
cat > "$work/config.yaml" <<YAML
api: { base_url: "https://127.0.0.1:$(cat "$work/port")", token_file: token, ca_file: ca.pem, timeout: 5s, page_size: 50 }
retry: { max_attempts: 8, base_delay: 10ms, max_delay: 1s }
sync:
  interval: 2s
  initial_lookback: 3h
  settle: 0s
  # Discovery every 2 s under the same faults: it finds the pairs listed
  # below (and a disabled application), fails now and then and keeps them.
  discover: true
  discover_interval: 2s
  pairs:
$(for i in 0 1 2 3 4; do printf '    - { app_id: PXsim%03d, tld: site%03d.example }\n' "$i" "$i"; done)
database: { path: incidents.db }
metrics: { listen: "" }
YAML
"$bin/incident-syncd" run --config "$work/config.yaml" > "$work/daemon.log" 2>&1 &
daemon_pid=$!

samples=$(( duration / 5 ))
printf '%6s %6s %10s %12s\n' "t(s)" "fds" "rss(KiB)" "wal(bytes)"
declare -a fds rss wal
for ((i = 0; i < samples; i++)); do
  sleep 5
  kill -0 "$daemon_pid" || { echo "the daemon died:"; tail -20 "$work/daemon.log"; exit 1; }
  fds[i]=$(ls "/proc/$daemon_pid/fd" | wc -l)
  rss[i]=$(awk '/VmRSS/ {print $2}' "/proc/$daemon_pid/status")
  wal[i]=$(stat -c %s "$work/incidents.db-wal" 2>/dev/null || echo 0)
  printf '%6d %6d %10d %12d\n' $(( (i + 1) * 5 )) "${fds[i]}" "${rss[i]}" "${wal[i]}"
done

# Flat after warm-up. Descriptors: a sample may catch transient ones (a pair's
# socket, SQLite's statement-journal and sort temp files), so a leak shows as
# a rising floor: the second half's fewest may not exceed the first half's
# fewest by more than 2, and its peak may not exceed the first half's by more
# than 6. RSS may not grow by more than 20%; the WAL stays within its bound
# (journal_size_limit, 64 MiB, plus the transaction that triggers a checkpoint).
half=$(( samples / 2 ))
max() { local m=0; for v in "$@"; do (( v > m )) && m=$v; done; echo "$m"; }
min() { local m=$1; for v in "$@"; do (( v < m )) && m=$v; done; echo "$m"; }
fd1=$(max "${fds[@]:0:half}"); fd2=$(max "${fds[@]:half}")
floor1=$(min "${fds[@]:0:half}"); floor2=$(min "${fds[@]:half}")
rss1=$(max "${rss[@]:0:half}"); rss2=$(max "${rss[@]:half}")
wal2=$(max "${wal[@]:half}")
echo "trend: fds $floor1..$fd1 -> $floor2..$fd2, rss ${rss1} KiB -> ${rss2} KiB, wal peak ${wal2} bytes"
status=0
(( floor2 <= floor1 + 2 )) || { echo "FAIL: file descriptors grow (fewest open: $floor1 -> $floor2)"; status=1; }
(( fd2 <= fd1 + 6 )) || { echo "FAIL: file descriptors grow (most open: $fd1 -> $fd2)"; status=1; }
(( rss2 * 10 <= rss1 * 12 )) || { echo "FAIL: RSS grows by more than 20%"; status=1; }
(( wal2 <= 67108864 + 33554432 )) || { echo "FAIL: the WAL exceeds journal_size_limit and a transaction"; status=1; }

kill -TERM "$daemon_pid"
start=$(date +%s)
wait "$daemon_pid" && code=0 || code=$?
daemon_pid=""
(( code == 0 )) || { echo "FAIL: exit $code after SIGTERM"; status=1; }
(( $(date +%s) - start <= 10 )) || { echo "FAIL: SIGTERM took more than 10 s"; status=1; }
integrity=$(sqlite3 "$work/incidents.db" "PRAGMA integrity_check")
[[ $integrity == ok ]] || { echo "FAIL: integrity_check: $integrity"; status=1; }
# Discovery kept asking all along (every 2 s, retries included): at least one every 4 s.
kill -TERM "$sim_pid"
wait "$sim_pid" || true
sim_pid=""
discoveries=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["account_settings_requests"])' \
  "$work/sim_stats.json" 2>/dev/null || echo 0)
(( discoveries >= duration / 4 )) || { echo "FAIL: only $discoveries discoveries in ${duration}s"; status=1; }
polls=$(sqlite3 "$work/incidents.db" "SELECT COUNT(*) FROM sync_runs WHERE status = 'ok'")
failed=$(sqlite3 "$work/incidents.db" "SELECT COUNT(*) FROM sync_runs WHERE status = 'failed'")
echo "soak: ${duration}s, $polls slices ok, $failed failed (retried next poll), $discoveries discoveries, exit $code, integrity $integrity"
((status == 0)) && echo "PASS" || echo "FAIL"
exit $status
