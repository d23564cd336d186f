#!/usr/bin/env bash
# The benchmark (issue 6): installs what is missing, builds the release preset,
# and prints one table: parse only, store only, incident-syncd end to end
# against incident-sim over HTTPS on loopback, the steady-state re-read, the
# Python peer (bench/peer_sync.py) against the same simulator, idle CPU, and
# 1,000 pairs in one process. Timings are medians of --repeat runs.
# The real-link table (--real-link, also in --full) puts the simulator at
# 100 ms per request with at most 8 requests in flight (more are answered 429 +
# Retry-After) and gzip, over a 30-day span, and runs the daemon with its
# default settings and the peer one request at a time: (a) 20,000 incidents
# over 10 pairs, (b) 10,000 in one pair, (c) a second `once` on (a)'s database
# (steady state), (d) churn: `incident-syncd run` against the simulator in live
# mode. Every run gets a simulator of its own, whose stats (requests, 429s,
# bytes sent, peak in flight) are that run's alone.
#
# Usage: scripts/bench.sh [options]
#   --sizes N,N,...     end-to-end sizes in incidents (default 10000,100000)
#   --full              also 1,000,000 and the real-link table (same as BENCH_FULL=1)
#   --real-link         only the real-link table
#   --repeat R          runs per timing, the median is shown (default 3)
#   --idle SECONDS      how long to measure the idle daemon's CPU (default 60)
#   --quick             --idle 10, --repeat 1, parse/store at 10,000: proves it works, numbers are rough
#   --store-incidents N size for parse only / store only (default 100000)
#   --concurrency N     sync.concurrency for the daemon (default 4)
#   --peer-max N        run the peer only at sizes up to N (default 100000; it is slow)
#   --build-dir DIR     use (and build) the binaries in DIR, an already configured build
#                       directory (default $BENCH_BUILD_DIR, else the release preset's build/release)
#   --gzip              let the loopback table's simulator compress (it does not by
#                       default: on loopback the simulator's gzip and the client's
#                       inflate share this machine's cores, which a real API's
#                       gateway does not; the real-link table always compresses)
#   --postgresql        only the PostgreSQL rows (fresh, re-read) and the failover row
#   --no-deps           do not run scripts/install-deps.sh
#   --keep              keep the temporary directory (databases, logs, configs)
# Environment: BENCH_TMPDIR (default $TMPDIR or /tmp) is where the databases go:
# its filesystem is part of the result. BENCH_BUILD_DIR: as --build-dir.
# BENCH_REVISION: what to print as the revision (default: `git describe` of
# the binaries' source tree, taken after the build).
# The real link: BENCH_RL_LATENCY (default 100ms), BENCH_RL_JITTER (0ms),
# BENCH_RL_MAX_IN_FLIGHT (8); BENCH_PEER_PAGE_SIZE (default: the daemon's
# default api.page_size, read from config/incident-sync.yaml, so both ask for
# the same pages); the churn run: BENCH_CHURN_SECONDS (default 120),
# BENCH_CHURN_INTERVAL (its sync.interval, default 10s), BENCH_CHURN_LIVE
# (incident-sim --live: incidents changed and added before each request,
# default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

sizes=10000,100000
full=${BENCH_FULL:-0}
repeat=3
idle_seconds=60
store_incidents=100000
peer_max=100000
build_dir=${BENCH_BUILD_DIR:-}
deps=1
loopback_gzip=0
main_table=1
real_link=0
postgresql_only=0
keep=0
pairs=10
concurrency=4
big_pairs=1000
big_per_pair=20

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --sizes) sizes=$2; shift 2 ;;
    --full) full=1; shift ;;
    --real-link) main_table=0; real_link=1; shift ;;
    --postgresql) main_table=0; postgresql_only=1; shift ;;
    --repeat) repeat=$2; shift 2 ;;
    --idle) idle_seconds=$2; shift 2 ;;
    --quick) idle_seconds=10; repeat=1; store_incidents=10000; shift ;;
    --store-incidents) store_incidents=$2; shift 2 ;;
    --peer-max) peer_max=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --no-deps) deps=0; shift ;;
    --gzip) loopback_gzip=1; shift ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
[[ $full == 1 ]] && sizes="$sizes,1000000" && real_link=1
IFS=, read -r -a size_list <<<"$sizes"

log() { printf '== %s\n' "$*" >&2; }
die() { echo "bench.sh: $*" >&2; exit 1; }

# --- build ------------------------------------------------------------------
if ((deps)); then bash scripts/install-deps.sh postgresql >&2; fi
targets=(incident-syncd incident-sim)
((main_table)) && targets+=(incident-bench)
if [[ -n $build_dir ]]; then
  cmake --build "$build_dir" --target "${targets[@]}" >&2
  bin=$(cd "$build_dir" && pwd)
else
  bash scripts/build.sh release "${targets[@]}" >&2
  bin=$root/build/release
fi
syncd=$bin/incident-syncd
sim=$bin/tests/incident-sim
bench=$bin/bench/incident-bench
measure=(python3 "$root/bench/measure.py")
# What the binaries were built from, taken now: the tree may change during a long run.
built_from=$(awk -F= '/^CMAKE_HOME_DIRECTORY:/ { print $2 }' "$bin/CMakeCache.txt" 2>/dev/null)
revision=${BENCH_REVISION:-$(git -C "${built_from:-$root}" describe --always --dirty 2>/dev/null || echo unknown)}

# --- scratch space, and stopping what we start ------------------------------
tmp=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/incident-bench.XXXXXX")
started_pids=()  # still running: the exit trap stops these, and only these
# stop PID: SIGTERM, wait for it, and forget it (its id may be reused later);
# its exit status is left in stop_code.
stop() {
  local pid=$1 kept=() p
  kill "$pid" 2>/dev/null || true
  stop_code=0
  wait "$pid" 2>/dev/null || stop_code=$?
  for p in "${started_pids[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  started_pids=("${kept[@]}")
}
cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do stop "$pid"; done
  if ((keep)); then echo "bench.sh: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
results=$tmp/results.tsv
: >"$results"
record() { printf '%s\t%s\n' "$1" "$2" >>"$results"; }
# The value of `key` in a measure.py output file.
metric() { awk -F'\t' -v k="$2" '$1 == k { print $2 }' "$1"; }
count_incidents() { sqlite3 "$1" 'SELECT COUNT(*) FROM incidents'; }
# succeeded LOG WHAT: the last measured command exited 0, or show LOG's tail and stop.
succeeded() { [[ $(metric "$tmp/m" exit_code) == 0 ]] || { tail "$1" >&2; die "$2 failed"; }; }
# CPU seconds (user + system) process PID has used so far.
clock_ticks=$(getconf CLK_TCK)
cpu_seconds() { awk -v t="$clock_ticks" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
# measured KEY [measure.py options] -- COMMAND...: runs COMMAND under
# measure.py into $tmp/m (the caller checks its exit_code there), and records
# under KEY how much CPU the simulator spent serving it.
measured() {
  local key=$1 before
  shift
  before=$(cpu_seconds "$sim_pid")
  "${measure[@]}" --out "$tmp/m" "$@" || true
  record "$key.sim_cpu_s" "$(awk -v a="$(cpu_seconds "$sim_pid")" -v b="$before" 'BEGIN { printf "%.2f", a - b }')"
}

token="bench-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
(umask 077 && printf '%s\n' "$token" >"$tmp/token")

# launch_sim DIR ARGS...: starts incident-sim in the background with ARGS (and
# an ephemeral port, the CA written to $tmp/ca.pem, the bench's token), its
# files in DIR; waits until it listens and sets sim_pid and sim_url.
launch_sim() {
  local dir=$1 waited=0
  shift
  mkdir -p "$dir"
  rm -f "$dir/port"
  "$sim" --port 0 --port-file "$dir/port" --ca-out "$tmp/ca.pem" --token-file "$tmp/token" "$@" >"$dir/log" 2>&1 &
  sim_pid=$!
  started_pids+=("$sim_pid")
  until [[ -s $dir/port ]]; do
    kill -0 "$sim_pid" 2>/dev/null || { cat "$dir/log" >&2; die "incident-sim failed"; }
    sleep 0.1
    ((++waited < 6000)) || die "incident-sim not listening after 10 min"
  done
  sim_url=https://127.0.0.1:$(cat "$dir/port")
}

# Starts incident-sim in the background for `incidents` over `npairs` pairs,
# spread over the 7 days before now; sets sim_pid and sim_url.
start_sim() {
  local incidents=$1 npairs=$2 dir=$tmp/sim-$1-$2
  local compression=(--no-gzip)
  ((loopback_gzip)) && compression=()
  launch_sim "$dir" --incidents "$incidents" --pairs "$npairs" --span 7d "${compression[@]}"
  log "incident-sim: $incidents incidents, $npairs pairs at $sim_url ($(grep -o 'ready in.*' "$dir/log" || true))"
}

stop_sim() { stop "$sim_pid"; }

# write_config FILE DB NPAIRS OVERLAP [INTERVAL]: every incident in the sim's
# 7-day span is inside the first window (initial_lookback 8d, settle 0s). An
# overlap of 8d makes every later pass re-read the whole span.
write_config() {
  local file=$1 db=$2 npairs=$3 overlap=$4 interval=${5:-5m} i
  {
    echo "api:"
    echo "  base_url: $sim_url"
    echo "  token_file: $tmp/token"
    echo "  ca_file: $tmp/ca.pem"
    echo "  page_size: 100"
    echo "sync:"
    echo "  interval: $interval"
    echo "  initial_lookback: 8d"
    echo "  overlap: $overlap"
    echo "  settle: 0s"
    echo "  max_window: 6h"
    echo "  concurrency: $concurrency"
    echo "  pairs:"
    for ((i = 0; i < npairs; i++)); do printf '    - { app_id: PXsim%03d, tld: site%03d.example }\n' "$i" "$i"; done
    echo "database:"
    echo "  path: $db"
  } >"$file"
}

remove_db() { rm -f "$1" "$1-wal" "$1-shm" "$1.lock"; }

# --- the machine --------------------------------------------------------------
fs_type=$(df --output=fstype "$tmp" | tail -1)
fs_source=$(df --output=source "$tmp" | tail -1)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
sqlite_version=$(sqlite3 --version | cut -d' ' -f1)
machine="$(nproc) CPU(s) ($cpu_model), $mem_total RAM, kernel $(uname -r), temp dir on $fs_type ($fs_source),"
machine+=" SQLite $sqlite_version"
log "machine: $machine"

# --- parse only, store only -----------------------------------------------------
parse_store() {
  log "parse only: $store_incidents incidents, $repeat run(s)"
  "$bench" parse --incidents "$store_incidents" --pairs "$pairs" --repeat "$repeat" >"$tmp/parse.tsv"
  cat "$tmp/parse.tsv" >>"$results"
  log "store only: $store_incidents incidents: fresh, unchanged, 10% changed, $repeat run(s)"
  "$bench" store --incidents "$store_incidents" --pairs "$pairs" --repeat "$repeat" --mode all --dir "$tmp/store" \
    >"$tmp/store.tsv"
  cat "$tmp/store.tsv" >>"$results"
}

# --- end to end, steady state, the peer ---------------------------------------

# steady_pass N DB timed|pinned: `once` over the same window again, when nothing
# in it changed. `pinned` holds a reader open on DB for the run, so the WAL can
# be neither checkpointed nor restarted and its final size is exactly what the
# pass appended; that run is not timed (the pin changes what it measures).
steady_pass() {
  local n=$1 db=$2 how=$3 last_run seen written pin=() key=steady.$1
  [[ $how == pinned ]] && pin=(--pin-wal "$db") && key=pinned.$key
  last_run=$(sqlite3 "$db" 'SELECT COALESCE(MAX(run_id), 0) FROM sync_runs')
  measured "$key" "${pin[@]}" -- "$syncd" once --config "$tmp/e2e-$n/incident-sync.yaml" \
    2>>"$tmp/e2e-$n/daemon.log"
  succeeded "$tmp/e2e-$n/daemon.log" "incident-syncd once"
  IFS='|' read -r seen written < <(sqlite3 "$db" \
    "SELECT SUM(incidents_seen), SUM(incidents_new + incidents_changed) FROM sync_runs WHERE run_id > $last_run")
  written=${written:-0}
  record "steady.$n.rows" "$written"
  ((written == 0)) || log "WARNING: the steady-state pass wrote $written incidents (expected 0)"
  if [[ $how == pinned ]]; then
    record "steady.$n.wal_bytes" "$(metric "$tmp/m" wal_bytes)"
  else
    record "steady.$n.seen" "$seen"
    record "steady.$n.wall_s" "$(metric "$tmp/m" wall_s)"
    record "steady.$n.maxrss_kib" "$(metric "$tmp/m" maxrss_kib)"
    record "steady.$n.wchar_bytes" "$(metric "$tmp/m" wchar_bytes)"
    record "steady.$n.cpu_s" "$(metric "$tmp/m" cpu_s)"
  fi
}

end_to_end() {
  idle_db=""
  for n in "${size_list[@]}"; do
    start_sim "$n" "$pairs"
    db=$tmp/e2e-$n/incidents.db
    mkdir -p "$tmp/e2e-$n"
    write_config "$tmp/e2e-$n/incident-sync.yaml" "$db" "$pairs" 8d
    for ((r = 1; r <= repeat; r++)); do
      remove_db "$db"
      log "end to end, fresh: $n incidents, run $r/$repeat"
      measured "e2e.$n" -- "$syncd" once --config "$tmp/e2e-$n/incident-sync.yaml" 2>>"$tmp/e2e-$n/daemon.log"
      succeeded "$tmp/e2e-$n/daemon.log" "incident-syncd once"
      got=$(count_incidents "$db")
      [[ $got == "$n" ]] || die "the daemon stored $got incidents, expected $n"
      record "e2e.$n.wall_s" "$(metric "$tmp/m" wall_s)"
      record "e2e.$n.maxrss_kib" "$(metric "$tmp/m" maxrss_kib)"
      record "e2e.$n.wchar_bytes" "$(metric "$tmp/m" wchar_bytes)"
      record "e2e.$n.cpu_s" "$(metric "$tmp/m" cpu_s)"

      log "steady state (re-read, unchanged): $n incidents, run $r/$repeat"
      steady_pass "$n" "$db" timed
    done
    log "steady state: WAL bytes of one more re-read, with a reader pinning the log"
    steady_pass "$n" "$db" pinned

    # The log shipper's way out: every incident as a JSON line (issue 16).
    log "export: incident-syncd export of $n incidents to /dev/null"
    measured "export.$n" -- "$syncd" export --database "$db" >/dev/null 2>>"$tmp/e2e-$n/export.log"
    succeeded "$tmp/e2e-$n/export.log" "incident-syncd export"
    record "export.$n.wall_s" "$(metric "$tmp/m" wall_s)"
    record "export.$n.maxrss_kib" "$(metric "$tmp/m" maxrss_kib)"
    record "export.$n.cpu_s" "$(metric "$tmp/m" cpu_s)"

    if ((n <= peer_max)); then
      peer_db=$tmp/e2e-$n/peer.db
      peer=(python3 "$root/bench/peer_sync.py" --base-url "$sim_url" --token-file "$tmp/token" --ca-file "$tmp/ca.pem"
            --schema "$root/schema/sqlite/001_initial.sql" --db "$peer_db" --pairs "$pairs" --page-size 100
            --initial-lookback 8d --overlap 8d --max-window 6h)
      for ((r = 1; r <= repeat; r++)); do
        remove_db "$peer_db"
        log "peer, fresh: $n incidents, run $r/$repeat"
        measured "peer.$n" -- "${peer[@]}" >"$tmp/e2e-$n/peer.out" 2>>"$tmp/e2e-$n/peer.log"
        succeeded "$tmp/e2e-$n/peer.log" "the peer"
        got=$(count_incidents "$peer_db")
        daemon_got=$(count_incidents "$db")
        [[ $got == "$daemon_got" ]] || die "the peer stored $got incidents, the daemon $daemon_got"
        record "peer.$n.wall_s" "$(metric "$tmp/m" wall_s)"
        record "peer.$n.maxrss_kib" "$(metric "$tmp/m" maxrss_kib)"
        record "peer.$n.cpu_s" "$(metric "$tmp/m" cpu_s)"
        log "peer, re-read of unchanged data: $n incidents, run $r/$repeat"
        measured "peer_reread.$n" -- "${peer[@]}" >"$tmp/e2e-$n/peer.out" 2>>"$tmp/e2e-$n/peer.log"
        succeeded "$tmp/e2e-$n/peer.log" "the peer"
        record "peer_reread.$n.wall_s" "$(metric "$tmp/m" wall_s)"
        record "peer_reread.$n.maxrss_kib" "$(metric "$tmp/m" maxrss_kib)"
        record "peer_reread.$n.cpu_s" "$(metric "$tmp/m" cpu_s)"
      done
    fi

    # Idle CPU, once, on the smallest size: `run` polls at once (a 15-minute
    # overlap window), then should sleep until the next interval.
    if [[ -z $idle_db ]]; then
      idle_db=$db
      write_config "$tmp/e2e-$n/idle.yaml" "$db" "$pairs" 15m 5m
      log "idle: incident-syncd run, interval 5m, measuring CPU over ${idle_seconds}s after its first poll"
      idle_log=$tmp/e2e-$n/idle.log
      : >"$idle_log"
      "$syncd" run --config "$tmp/e2e-$n/idle.yaml" 2>>"$idle_log" &
      run_pid=$!
      started_pids+=("$run_pid")
      polled=0
      for ((w = 0; w < 3000; w++)); do
        polled=$(grep -c ': synced ' "$idle_log" || true)
        ((${polled:-0} >= pairs)) && break
        kill -0 "$run_pid" 2>/dev/null || { cat "$idle_log" >&2; die "incident-syncd run exited"; }
        sleep 0.1
      done
      ((${polled:-0} >= pairs)) || log "WARNING: the first poll did not finish within 5 min; measuring anyway"
      before=$(cpu_seconds "$run_pid")
      sleep "$idle_seconds"
      after=$(cpu_seconds "$run_pid")
      record idle.seconds "$idle_seconds"
      record idle.cpu_s "$(awk -v a="$after" -v b="$before" 'BEGIN { printf "%.2f", a - b }')"
      record idle.rss_kib "$(awk '/^VmHWM/ { print $2 }' "/proc/$run_pid/status")"
      stop "$run_pid"
    fi
    stop_sim
  done
}

# --- PostgreSQL (issue 14) --------------------------------------------------------
# The same end-to-end runs with database.url: a PostgreSQL 15 on this machine
# with its default durability (fsync on), started for the run by the test
# suite's script as an unprivileged user. The database and the daemon share
# the two cores with the simulator.
postgresql_rows() {
  # Under /tmp itself: the server runs as `nobody` when this runs as root,
  # and cannot enter the benchmark's own (mode 700) scratch directory.
  local n=${size_list[0]} s pg_dir=/tmp/isync-bench-pg.$$ url psql_bin
  for s in "${size_list[@]}"; do ((s <= 100000)) && n=$s; done  # the largest up to 100k (the targets' size)
  psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)/psql
  PG_DURABLE=1 bash "$root/tests/postgresql/pg_server.sh" start "$pg_dir" >"$tmp/pg-start.log" 2>&1 ||
    { cat "$tmp/pg-start.log" >&2; die "could not start PostgreSQL (scripts/install-deps.sh postgresql)"; }
  log "PostgreSQL: $(cat "$tmp/pg-start.log")"
  url=$(sed 's|/postgres$|/bench|' "$pg_dir/url")
  start_sim "$n" "$pairs"
  mkdir -p "$tmp/pg-e2e"
  write_config "$tmp/pg-e2e/incident-sync.yaml" "$tmp/pg-e2e/unused.db" "$pairs" 8d
  echo "  url: $url" >>"$tmp/pg-e2e/incident-sync.yaml"
  for ((r = 1; r <= repeat; r++)); do
    postgresql_pass pg "$n" "$pg_dir" "$psql_bin" "$url" "$tmp/pg-e2e/incident-sync.yaml" "run $r/$repeat"
  done
  postgresql_far_rows "$n" "$pg_dir" "$psql_bin"
  stop_sim
  bash "$root/tests/postgresql/pg_server.sh" stop "$pg_dir" >/dev/null 2>&1 || true
}

# postgresql_pass PREFIX N PG_DIR PSQL URL CONFIG LABEL: a fresh `once` into a
# new database `bench` (PREFIX_e2e.N.*), then a re-read of it (PREFIX_steady.N.*).
postgresql_pass() {
  local prefix=$1 n=$2 pg_dir=$3 psql_bin=$4 url=$5 config=$6 label=$7 got last_run seen written
  "$psql_bin" -q "$(cat "$pg_dir/url")" -c "DROP DATABASE IF EXISTS bench" -c "CREATE DATABASE bench"
  log "PostgreSQL ($label), end to end, fresh: $n incidents"
  measured "${prefix}_e2e.$n" -- "$syncd" once --config "$config" 2>>"$tmp/pg-e2e/daemon.log"
  succeeded "$tmp/pg-e2e/daemon.log" "incident-syncd once (PostgreSQL, $label)"
  got=$("$psql_bin" -qAt "$url" -c "SELECT COUNT(*) FROM incidents")
  [[ $got == "$n" ]] || die "the daemon stored $got incidents in PostgreSQL, expected $n"
  record "${prefix}_e2e.$n.wall_s" "$(metric "$tmp/m" wall_s)"
  record "${prefix}_e2e.$n.maxrss_kib" "$(metric "$tmp/m" maxrss_kib)"
  record "${prefix}_e2e.$n.cpu_s" "$(metric "$tmp/m" cpu_s)"
  log "PostgreSQL ($label), steady state (re-read, unchanged): $n incidents"
  last_run=$("$psql_bin" -qAt "$url" -c "SELECT COALESCE(MAX(run_id), 0) FROM sync_runs")
  measured "${prefix}_steady.$n" -- "$syncd" once --config "$config" 2>>"$tmp/pg-e2e/daemon.log"
  succeeded "$tmp/pg-e2e/daemon.log" "incident-syncd once (PostgreSQL, $label, re-read)"
  IFS='|' read -r seen written < <("$psql_bin" -qAt "$url" -c \
    "SELECT SUM(incidents_seen), SUM(incidents_new + incidents_changed) FROM sync_runs WHERE run_id > $last_run")
  record "${prefix}_steady.$n.seen" "$seen"
  record "${prefix}_steady.$n.rows" "${written:-0}"
  record "${prefix}_steady.$n.wall_s" "$(metric "$tmp/m" wall_s)"
  record "${prefix}_steady.$n.maxrss_kib" "$(metric "$tmp/m" maxrss_kib)"
  record "${prefix}_steady.$n.cpu_s" "$(metric "$tmp/m" cpu_s)"
}

# The same fresh backfill and re-read with the database a network hop away:
# scripts/latency_proxy.py between the daemon and PostgreSQL adds
# $pg_far_delay_ms each way; the round trip it makes is measured (psql,
# median of 20 `SELECT 1`) and printed. What a write costs there is its
# round trips, not the server's time.
pg_far_delay_ms=1
postgresql_far_rows() {
  local n=$1 pg_dir=$2 psql_bin=$3 proxy_pid far_url rtt
  rm -f "$tmp/pg-far.port"
  python3 "$root/scripts/latency_proxy.py" --listen-port-file "$tmp/pg-far.port" \
    --target-port "$(cat "$pg_dir/port")" --delay-ms "$pg_far_delay_ms" &
  proxy_pid=$!
  for _ in $(seq 1 100); do [[ -s $tmp/pg-far.port ]] && break; sleep 0.1; done
  [[ -s $tmp/pg-far.port ]] || die "the latency proxy did not start"
  far_url=$(sed "s|:$(cat "$pg_dir/port")/postgres\$|:$(cat "$tmp/pg-far.port")/bench|" "$pg_dir/url")
  rtt=$( (echo '\timing on'; for _ in $(seq 1 20); do echo 'SELECT 1;'; done) |
    "$psql_bin" -q "$far_url" 2>/dev/null | awk '/^Time:/ {print $2}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  record "pg_far.rtt_ms" "$rtt"
  sed "s|^  url: .*|  url: $far_url|" "$tmp/pg-e2e/incident-sync.yaml" >"$tmp/pg-e2e/far.yaml"
  postgresql_pass pg_far "$n" "$pg_dir" "$psql_bin" "$far_url" "$tmp/pg-e2e/far.yaml" "${rtt} ms away"
  kill "$proxy_pid" 2>/dev/null; wait "$proxy_pid" 2>/dev/null || true
}

# --- failover (issue 14) -----------------------------------------------------------
# Three daemons `run` against one PostgreSQL (lease_ttl 5s) and one simulator;
# once each has committed a slice, one is killed with SIGKILL mid-backfill.
# Measured: the seconds from the kill until another daemon has committed a
# slice of one of its pairs; then the database must hold every incident once.
failover_row() {
  local n=100000 ttl_s=5 pg_dir=/tmp/isync-bench-failover-pg.$$ url psql_bin i pids=() owners=() victim pairs_of t0 t1 got
  psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)/psql
  PG_DURABLE=1 bash "$root/tests/postgresql/pg_server.sh" start "$pg_dir" >"$tmp/failover-pg.log" 2>&1 ||
    { cat "$tmp/failover-pg.log" >&2; die "could not start PostgreSQL"; }
  url=$(sed 's|/postgres$|/failover|' "$pg_dir/url")
  "$psql_bin" -q "$(cat "$pg_dir/url")" -c "CREATE DATABASE failover"
  start_sim "$n" "$pairs"
  mkdir -p "$tmp/failover"
  write_config "$tmp/failover/incident-sync.yaml" "$tmp/failover/unused.db" "$pairs" 15m 1s
  { echo "  url: $url"; echo "  lease_ttl: ${ttl_s}s"; echo "metrics:"; echo "  listen: \"\""; } \
    >>"$tmp/failover/incident-sync.yaml"
  log "failover: 3 daemons, $n incidents, $pairs pairs, lease_ttl ${ttl_s}s; SIGKILL one mid-backfill"
  for i in 0 1 2; do
    "$syncd" run --config "$tmp/failover/incident-sync.yaml" 2>"$tmp/failover/d$i.log" &
    pids+=($!)
    started_pids+=($!)
  done
  q() { "$psql_bin" -qAt "$url" -c "$1" 2>/dev/null; }
  for ((w = 0; w < 1200; w++)); do
    [[ $(q "SELECT COUNT(DISTINCT daemon) FROM sync_runs WHERE status = 'ok'") == 3 ]] && break
    sleep 0.05
  done
  victim=$(q "SELECT owner FROM sync_daemons WHERE pid = ${pids[0]}")
  pairs_of=$(q "SELECT COUNT(*) FROM sync_state WHERE lease_owner = '$victim'")
  got=$(q "SELECT COUNT(*) FROM incidents")
  kill -KILL "${pids[0]}"
  t0=$(date +%s.%N)
  for ((w = 0; w < 1200; w++)); do
    # one of the victim's pairs has a slice committed by another daemon since the kill
    [[ $(q "SELECT COUNT(*) FROM sync_runs r JOIN sync_state s USING (app_id, tld) WHERE r.status = 'ok'
            AND r.daemon <> '$victim' AND r.finished_at > to_timestamp($t0)
            AND s.lease_owner IS DISTINCT FROM '$victim' AND (r.app_id, r.tld) IN
            (SELECT app_id, tld FROM sync_runs WHERE daemon = '$victim')") -gt 0 ]] && break
    sleep 0.05
  done
  t1=$(date +%s.%N)
  for ((w = 0; w < 2400; w++)); do
    [[ $(q "SELECT COUNT(*) FROM incidents") == "$n" ]] && break
    sleep 0.05
  done
  for i in 1 2; do kill -TERM "${pids[$i]}" 2>/dev/null; done
  for i in 1 2; do wait "${pids[$i]}" 2>/dev/null; done
  record failover.lease_ttl_s "$ttl_s"
  record failover.victim_pairs "$pairs_of"
  record failover.incidents_at_kill "$got"
  record failover.takeover_s "$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')"
  record failover.incidents "$(q "SELECT COUNT(*) FROM incidents")"
  record failover.expected "$n"
  record failover.ahead "$(q "SELECT COUNT(*) FROM sync_state WHERE watermark_ms > (extract(epoch FROM now()) * 1000)::bigint")"
  stop_sim
  bash "$root/tests/postgresql/pg_server.sh" stop "$pg_dir" >/dev/null 2>&1 || true
}

# --- 1,000 pairs in one process -------------------------------------------------
pairs_1000() {
  big_incidents=$((big_pairs * big_per_pair))
  start_sim "$big_incidents" "$big_pairs"
  db=$tmp/pairs/incidents.db
  mkdir -p "$tmp/pairs"
  write_config "$tmp/pairs/incident-sync.yaml" "$db" "$big_pairs" 15m
  log "$big_pairs pairs, $big_per_pair incidents each: one pass of incident-syncd once, counting its sockets"
  measured pairs1000 --sample-sockets 20 -- "$syncd" once --config "$tmp/pairs/incident-sync.yaml" \
    2>"$tmp/pairs/daemon.log"
  got=$(count_incidents "$db" 2>/dev/null || echo 0)
  record pairs1000.pairs "$big_pairs"
  record pairs1000.incidents "$big_incidents"
  record pairs1000.wall_s "$(metric "$tmp/m" wall_s)"
  record pairs1000.maxrss_kib "$(metric "$tmp/m" maxrss_kib)"
  record pairs1000.cpu_s "$(metric "$tmp/m" cpu_s)"
  record pairs1000.max_sockets "$(metric "$tmp/m" max_sockets)"
  record pairs1000.concurrency "$concurrency"
  if [[ $(metric "$tmp/m" exit_code) == 0 && $got == "$big_incidents" ]]; then
    record pairs1000.ok "all $got incidents stored"
  else
    record pairs1000.ok "FAILED: exit $(metric "$tmp/m" exit_code), $got of $big_incidents incidents stored"
  fi
  stop_sim
}

# --- the real link ------------------------------------------------------------------
# Every run below gets its own simulator (100 ms per request, at most 8 in
# flight, gzip when asked), stopped after the run so that its stats file holds
# that run's requests, 429s, bytes and peak in flight alone. The daemon runs
# with its default settings (api.page_size, sync.concurrency, settle, overlap,
# max_window, retries): the config names only the simulator, the pairs, the
# database, sync.initial_lookback 30d (the simulator's span) and no metrics
# listener (`once` serves none). The peer asks for the daemon's default page
# size unless BENCH_PEER_PAGE_SIZE says otherwise, one request at a time.
rl_latency=${BENCH_RL_LATENCY:-100ms}
rl_jitter=${BENCH_RL_JITTER:-0ms}
rl_max_in_flight=${BENCH_RL_MAX_IN_FLIGHT:-8}
rl_span=30d
rl_incidents=20000
rl_pairs=10
rl_one_pair_incidents=10000
# The peer reads each pair's window whole (31 days, the daemon's max_window
# default), as the script a user would write does: one request per page, no
# 6-hour slices that cost it a request each (its default, for the loopback table).
rl_peer_window=${BENCH_RL_PEER_WINDOW:-31d}
churn_seconds=${BENCH_CHURN_SECONDS:-120}
churn_interval=${BENCH_CHURN_INTERVAL:-10s}
churn_live=${BENCH_CHURN_LIVE:-2}
daemon_page_size=$(awk '$1 == "page_size:" { print $2; exit }' "$root/config/incident-sync.yaml")
[[ $daemon_page_size =~ ^[0-9]+$ ]] || die "cannot read api.page_size's default from config/incident-sync.yaml"
peer_page_size=${BENCH_PEER_PAGE_SIZE:-$daemon_page_size}

# rl_start_sim NAME INCIDENTS NPAIRS [ARGS...]: a real-link simulator over the
# 30-day span, its files in $tmp/rl/sim-NAME.
rl_start_sim() {
  local name=$1 incidents=$2 npairs=$3
  shift 3
  rl_sim_dir=$tmp/rl/sim-$name
  rm -f "$rl_sim_dir/stats.json"
  launch_sim "$rl_sim_dir" --incidents "$incidents" --pairs "$npairs" --span "$rl_span" --latency "$rl_latency" \
    --latency-jitter "$rl_jitter" --max-in-flight "$rl_max_in_flight" --stats-file "$rl_sim_dir/stats.json" "$@"
}

# rl_stop_sim KEY: stops the simulator and records its stats under KEY.
rl_stop_sim() {
  local key=$1
  stop "$sim_pid"
  [[ -s $rl_sim_dir/stats.json ]] || { cat "$rl_sim_dir/log" >&2; die "incident-sim wrote no stats"; }
  python3 - "$key" "$rl_sim_dir/stats.json" >>"$results" <<'PY'
import json, sys
key, path = sys.argv[1], sys.argv[2]
with open(path) as f:
    s = json.load(f)
counts = s.get("status_counts", {})
for name, value in (("requests", s["requests"]), ("status_429", counts.get("429", 0)),
                    ("not_ok", s["requests"] - counts.get("200", 0)), ("bytes_sent", s["bytes_sent"]),
                    ("body_bytes", s["body_bytes_uncompressed"]), ("peak_in_flight", s["peak_in_flight"]),
                    ("refused_429", s["refused_429"]), ("connections", s.get("connections_accepted", 0))):
    print(f"{key}.{name}\t{value}")
PY
}

# rl_config FILE DB NPAIRS [YAML...]: the daemon's defaults but for what the
# simulator needs; YAML lines are appended (top-level keys).
rl_config() {
  local file=$1 db=$2 npairs=$3 i
  shift 3
  {
    echo "api:"
    echo "  base_url: $sim_url"
    echo "  token_file: $tmp/token"
    echo "  ca_file: $tmp/ca.pem"
    echo "sync:"
    echo "  initial_lookback: $rl_span"
    [[ -n ${rl_interval:-} ]] && echo "  interval: $rl_interval"
    echo "  pairs:"
    for ((i = 0; i < npairs; i++)); do printf '    - { app_id: PXsim%03d, tld: site%03d.example }\n' "$i" "$i"; done
    echo "database:"
    echo "  path: $db"
    echo "metrics:"
    echo "  listen: \"${rl_metrics_listen:-}\""
  } >"$file"
}

# rl_run KEY LOG DB WHAT -- COMMAND...: one measured client run against the
# simulator already started (stopped and recorded here): wall, CPU, incidents
# in DB, and what this run wrote (from sync_runs; the peer's rewrites of
# unchanged rows are not counted there). Its stdout goes to LOG's .out.
rl_run() {
  local key=$1 logfile=$2 db=$3 what=$4 last_run=0 written
  shift 5
  [[ -f $db ]] && last_run=$(sqlite3 "$db" 'SELECT COALESCE(MAX(run_id), 0) FROM sync_runs')
  measured "$key" -- "$@" >>"${logfile%.log}.out" 2>>"$logfile"
  succeeded "$logfile" "$what"
  rl_stop_sim "$key"
  record "$key.wall_s" "$(metric "$tmp/m" wall_s)"
  record "$key.cpu_s" "$(metric "$tmp/m" cpu_s)"
  record "$key.stored" "$(count_incidents "$db")"
  written=$(sqlite3 "$db" "SELECT COALESCE(SUM(incidents_new + incidents_changed), 0) FROM sync_runs
                           WHERE run_id > $last_run")
  record "$key.written" "$written"
}

# rl_pass CASE CLIENT INCIDENTS NPAIRS DB fresh|again: one run of CLIENT
# (daemon or peer) against a new simulator, recorded under rl.CASE.CLIENT.
rl_pass() {
  local case=$1 client=$2 incidents=$3 npairs=$4 db=$5 how=$6 dir=$tmp/rl/$1
  mkdir -p "$dir"
  [[ $how == fresh ]] && remove_db "$db"
  rl_start_sim "$case-$client" "$incidents" "$npairs"
  log "real link ($case): $client, $incidents incidents, $npairs pair(s), $how, at $sim_url"
  if [[ $client == daemon ]]; then
    rl_config "$dir/incident-sync.yaml" "$db" "$npairs"
    rl_run "rl.$case.daemon" "$dir/daemon.log" "$db" "incident-syncd once" -- \
      "$syncd" once --config "$dir/incident-sync.yaml"
  else
    rl_run "rl.$case.peer" "$dir/peer.log" "$db" "the peer" -- \
      python3 "$root/bench/peer_sync.py" --base-url "$sim_url" --token-file "$tmp/token" --ca-file "$tmp/ca.pem" \
      --schema "$root/schema/sqlite/001_initial.sql" --db "$db" --pairs "$npairs" --page-size "$peer_page_size" \
      --initial-lookback "$rl_span" --max-window "$rl_peer_window"
  fi
  record "rl.$case.incidents" "$incidents"
  record "rl.$case.pairs" "$npairs"
}

# churn: `incident-syncd run` on (a)'s synced database for churn_seconds
# against a live simulator; then the slices' outcomes, the watermark lag (from
# sync_state and from /metrics), and the simulator's stats.
rl_churn() {
  local dir=$tmp/rl/d db=$1 last_run port run_pid lag_db lag_metrics now_ms started ok failed error
  mkdir -p "$dir"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rl_start_sim d-daemon "$rl_incidents" "$rl_pairs" --live "$churn_live"
  rl_interval=$churn_interval rl_metrics_listen=127.0.0.1:$port rl_config "$dir/incident-sync.yaml" "$db" "$rl_pairs"
  last_run=$(sqlite3 "$db" 'SELECT COALESCE(MAX(run_id), 0) FROM sync_runs')
  log "real link (d): churn, incident-syncd run for ${churn_seconds}s, interval $churn_interval, --live $churn_live"
  started=$(date +%s.%N)
  "$syncd" run --config "$dir/incident-sync.yaml" 2>"$dir/daemon.log" &
  run_pid=$!
  started_pids+=("$run_pid")
  local deadline=$((SECONDS + churn_seconds))
  while ((SECONDS < deadline)); do
    kill -0 "$run_pid" 2>/dev/null || { tail "$dir/daemon.log" >&2; die "incident-syncd run exited during the churn"; }
    sleep 1
  done
  # The lag at the end, both ways, at the same moment.
  curl -sf "http://127.0.0.1:$port/metrics" >"$dir/metrics.txt" || log "WARNING: could not read /metrics"
  now_ms=$(date +%s%3N)
  lag_db=$(sqlite3 "$db" "SELECT ($now_ms - MIN(COALESCE(watermark_ms, 0))) / 1000.0 FROM sync_state")
  lag_metrics=$(awk '$1 ~ /^incident_sync_watermark_lag_seconds[{ ]/ || $1 == "incident_sync_watermark_lag_seconds" {
                       if (!seen || $NF + 0 > max) max = $NF + 0; seen = 1 }
                     END { if (seen) print max }' "$dir/metrics.txt" 2>/dev/null)
  stop "$run_pid"
  record rl.d.daemon.wall_s "$(awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN { printf "%.1f", a - b }')"
  record rl.d.daemon.exit_code "$stop_code"
  rl_stop_sim rl.d.daemon
  IFS='|' read -r ok failed < <(sqlite3 "$db" "SELECT COALESCE(SUM(status = 'ok'), 0), COALESCE(SUM(status = 'failed'), 0)
                                               FROM sync_runs WHERE run_id > $last_run")
  error=$(sqlite3 "$db" "SELECT error FROM sync_runs WHERE run_id > $last_run AND status = 'failed'
                         GROUP BY error ORDER BY COUNT(*) DESC LIMIT 1")
  record rl.d.daemon.slices_ok "$ok"
  record rl.d.daemon.slices_failed "$failed"
  [[ -n $error ]] && record rl.d.daemon.error "${error:0:80}"
  record rl.d.daemon.written "$(sqlite3 "$db" "SELECT COALESCE(SUM(incidents_new + incidents_changed), 0)
                                                FROM sync_runs WHERE run_id > $last_run")"
  record rl.d.daemon.lag_db_s "$lag_db"
  [[ -n $lag_metrics ]] && record rl.d.daemon.lag_metrics_s "$lag_metrics"
  record rl.d.daemon.stored "$(count_incidents "$db")"
  record rl.d.seconds "$churn_seconds"
  record rl.d.interval "$churn_interval"
  record rl.d.live "$churn_live"
  record rl.d.pairs "$rl_pairs"
}

real_link_table() {
  local r daemon_db=$tmp/rl/a/incidents.db peer_db=$tmp/rl/a/peer.db
  for ((r = 1; r <= repeat; r++)); do
    log "real link: run $r/$repeat"
    rl_pass a daemon "$rl_incidents" "$rl_pairs" "$daemon_db" fresh
    rl_pass c daemon "$rl_incidents" "$rl_pairs" "$daemon_db" again
    rl_pass a peer "$rl_incidents" "$rl_pairs" "$peer_db" fresh
    rl_pass c peer "$rl_incidents" "$rl_pairs" "$peer_db" again
    rl_pass b daemon "$rl_one_pair_incidents" 1 "$tmp/rl/b/incidents.db" fresh
    rl_pass b peer "$rl_one_pair_incidents" 1 "$tmp/rl/b/peer.db" fresh
  done
  rl_churn "$daemon_db"
}

((main_table)) && { parse_store; end_to_end; postgresql_rows; failover_row; pairs_1000; }
((postgresql_only)) && { postgresql_rows; failover_row; }
((real_link)) && real_link_table

# --- the table ------------------------------------------------------------------
echo "incident-sync benchmark, $(date -u +%Y-%m-%dT%H:%MZ), $revision"
echo "machine: $machine"
if ((main_table || postgresql_only)); then
  compressed="no gzip (--gzip to compress)"
  ((loopback_gzip)) && compressed="gzip"
  echo "dataset: incident-sim, $pairs pairs, 7-day span, pages of 100, 6h slices, sync.concurrency $concurrency," \
    "$compressed;" \
    "medians of $repeat run(s) (steady-state WAL, idle and $big_pairs pairs: one run);" \
    "parse/store at $store_incidents incidents"
  echo
  python3 "$root/bench/report.py" "$results"
fi
if ((real_link)); then
  ((main_table)) && echo
  echo "real link: incident-sim at $rl_latency per request (+ up to $rl_jitter), at most $rl_max_in_flight in flight" \
    "(429 + Retry-After beyond), gzip; $rl_span span; daemon: default settings (page_size $daemon_page_size)," \
    "initial_lookback $rl_span; peer: one request at a time, page_size $peer_page_size, windows of $rl_peer_window; a new simulator per run;" \
    "medians of $repeat run(s), churn one run of ${churn_seconds}s (interval $churn_interval, --live $churn_live);" \
    "bytes sent: the simulator's bytes_sent, response bodies as sent (gzip; no headers or TLS);" \
    "(c)'s simulator is a new one whose clock moved on since (a), so the few incidents in the re-read overlap" \
    "window come back with a new last_seen (\"written\")"
  echo
  python3 "$root/bench/report.py" --real-link "$results"
fi
