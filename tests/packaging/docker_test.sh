#!/usr/bin/env bash
# Builds the Docker image with buildah (no Docker engine needed) and runs the
# image's daemon `once` against incident-sim on 127.0.0.1, then checks the
# database it wrote on the host.
#
#   - installs buildah, podman, mmdebstrap and sqlite3 when missing (root, apt);
#   - makes debian:bookworm-slim with mmdebstrap + podman import when it is not
#     in the local store (there may be no registry access);
#   - buildah bud --isolation chroot --format docker -t incident-sync:test SOURCE_DIR;
#   - checks the image's User (non-root), STOPSIGNAL and HEALTHCHECK;
#   - runs the daemon in the image with /data and /etc/incident-sync mounted and
#     the token as a Docker secret file (/run/secrets/human_api_token, mode 0400);
#   - checks `incident-syncd status --check` (the HEALTHCHECK) fails before and
#     passes after the sync, and that the database holds every incident;
#   - then the same against PostgreSQL (the server of the ctest fixture
#     `postgresql`, reached over --network host): database.url without a
#     password, the password as the Docker secret /run/secrets/database_password
#     (mode 0400); check-config, once, status --check and the HEALTHCHECK in the
#     container, the rows counted with psql on the host;
#   - and the README's two daemons on one database: the image's ENTRYPOINT and
#     CMD (`run`) started twice on a fresh database, checked in SQL (every
#     incident once, both daemons' heartbeats and sync runs), stopped with
#     SIGTERM sent to each daemon itself (a signal to `buildah run` kills its
#     child instead of passing the signal on), each exiting 0 and leaving no
#     heartbeat or lease behind.
#
# Usage: docker_test.sh SOURCE_DIR INCIDENT_SIM_BINARY
# Environment: ISYNC_TEST_PG_DIR (required: the directory `tests/postgresql/pg_server.sh
#                start DIR` made; ctest's fixture `postgresql` sets it),
#              DOCKER_TEST_IMAGE (default incident-sync:test),
#              DOCKER_TEST_MIRROR (Debian mirror for mmdebstrap; default deb.debian.org).
# Must run as root. Idempotent: a second run reuses the base image and the
# build's layer cache.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 SOURCE_DIR INCIDENT_SIM_BINARY" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
sim_bin=$2
image=${DOCKER_TEST_IMAGE:-incident-sync:test}
base=debian:bookworm-slim
incidents=3000
pairs=3
span=2d
lookback=3d

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
die() { echo "FAIL: $*"; exit 1; }
step() { echo "== $* ($(date +%T))"; }
elapsed() { echo $(($(date +%s) - $1)); }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: must run as root (buildah --isolation chroot)"; exit 77; }
[[ -x $sim_bin ]] || die "incident-sim not executable: $sim_bin"
[[ -f $src/Dockerfile ]] || die "no Dockerfile in $src"
pg_dir=${ISYNC_TEST_PG_DIR:-}
[[ -n $pg_dir && -s $pg_dir/url && -s $pg_dir/port && -s $pg_dir/pw_password ]] ||
  die "no PostgreSQL server: ISYNC_TEST_PG_DIR='$pg_dir' lacks url, port or pw_password (run through ctest," \
      "whose fixture postgresql starts one, or tests/postgresql/pg_server.sh start DIR and export ISYNC_TEST_PG_DIR=DIR)"
# psql from the newest server's bin directory (as pg_server.sh picks it), else the PATH's.
psql_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n1)
[[ -x $psql_bin ]] || psql_bin=$(command -v psql) || die "psql not found (Debian: postgresql-client)"

# ---------------------------------------------------------------- tools
# shellcheck source=container_base.sh
source "$(dirname "$0")/container_base.sh"
begin_container_test incident-sync-docker

# The PostgreSQL phase's `run` daemons (the pids of their `buildah_run`s) and databases.
pg_runs=()
pg_run_status=()
pg_databases=()
# daemon_pid_under PID: the incident-syncd process below PID (buildah run ->
# buildah-chroot-runtime -> buildah-chroot-exec -> the daemon; chroot
# isolation keeps the host's PID namespace).
daemon_pid_under() {
  local kid
  for kid in $(pgrep -P "$1"); do
    if [[ $(cat "/proc/$kid/comm" 2>/dev/null) == incident-syncd ]]; then echo "$kid"; return 0; fi
    daemon_pid_under "$kid" && return 0
  done
  return 1
}
# stop_pg_daemons SECONDS: SIGTERM to each `run` daemon itself (a SIGTERM to
# `buildah run` kills its child rather than pass the signal on), then up to
# SECONDS for all to end; SIGKILL for what is left. pg_run_status[i] is each
# `buildah run`'s exit status, which is the daemon's.
stop_pg_daemons() {
  local i pid deadline=$(($(date +%s) + $1))
  for i in "${!pg_runs[@]}"; do
    if pid=$(daemon_pid_under "${pg_runs[$i]}"); then kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for i in "${!pg_runs[@]}"; do
    while kill -0 "${pg_runs[$i]}" 2>/dev/null && (($(date +%s) < deadline)); do sleep 0.1; done
    if kill -0 "${pg_runs[$i]}" 2>/dev/null; then
      if pid=$(daemon_pid_under "${pg_runs[$i]}"); then kill -KILL "$pid" 2>/dev/null || true; fi
      kill -KILL "${pg_runs[$i]}" 2>/dev/null || true
    fi
    pg_run_status[i]=0
    wait "${pg_runs[$i]}" || pg_run_status[i]=$?
  done
  pg_runs=()
}
# Daemons and databases go before the container and the simulator do
# (end_container_test, which exits with the test's status).
docker_test_exit() {
  local rc=$? d
  set +e  # clean up whatever fails; `(exit "$rc")` below must not end the trap
  stop_pg_daemons 10 >/dev/null 2>&1 || true
  for d in "${pg_databases[@]}"; do
    "$psql_bin" -X -q -d "$(cat "$pg_dir/url")" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
  (exit "$rc")
  end_container_test
}
trap docker_test_exit EXIT

# ---------------------------------------------------------------- base image
ensure_base_image

# ---------------------------------------------------------------- build
step "buildah bud -t $image $src"
old_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image" 2>/dev/null || true)
t0=$(date +%s)
# --format docker keeps HEALTHCHECK (OCI image configs have no such field);
# --layers caches each step, so an unchanged tree rebuilds in seconds.
if ! buildah bud --isolation chroot --format docker --layers --pull=never \
     -t "$image" "$src" > "$work/build.log" 2>&1; then
  tail -n 60 "$work/build.log"
  die "image build failed (log above)"
fi
new_id=$(buildah inspect --type image --format '{{.FromImageID}}' "$image")
# The image this tag pointed at before is now nameless; drop it (not the layer cache).
if [[ -n $old_id && $old_id != "$new_id" ]]; then buildah rmi "$old_id" >/dev/null 2>&1 || true; fi
pass "image $image built in $(elapsed "$t0") s, size $(buildah images --format '{{.Size}}' "$image" | head -n1)"

# ---------------------------------------------------------------- image metadata
inspect() { buildah inspect --type image --format "$1" "$image"; }
user=$(inspect '{{.Docker.Config.User}}')
stop_signal=$(inspect '{{.Docker.Config.StopSignal}}')
health=$(inspect '{{if .Docker.Config.Healthcheck}}{{range .Docker.Config.Healthcheck.Test}}{{.}} {{end}}{{end}}')
# shellcheck disable=SC2016 # a Go template, not shell
volumes=$(inspect '{{range $k, $v := .Docker.Config.Volumes}}{{$k}} {{end}}')

if [[ -n $user && $user != root && $user != 0 && $user != 0:* ]]; then pass "image User is $user"; else fail "image User is '${user}' (want a non-root user)"; fi
if [[ $stop_signal == SIGTERM ]]; then pass "STOPSIGNAL SIGTERM"; else fail "STOPSIGNAL is '$stop_signal' (want SIGTERM)"; fi
if [[ $health == *"incident-syncd status --check"* ]]; then pass "HEALTHCHECK: ${health% }"; else fail "HEALTHCHECK is '${health}' (want incident-syncd status --check)"; fi
if [[ " $volumes" == *" /data "* ]]; then pass "VOLUME /data"; else fail "volumes are '$volumes' (want /data)"; fi

ctr=$(buildah from --pull=never --quiet "$image")
# The image's VOLUME /data is checked above; drop it from this working
# container only. buildah 1.28 `run` mounts both the anonymous volume it makes
# for VOLUME and our `-v HOST:/data` at /data, and which one ends up on top
# varies from run to run (the daemon then writes to one and `status` reads the
# other). `docker run -v` replaces the volume; this makes buildah do the same.
buildah config --volume /data- "$ctr"
uid=$(buildah_run "$ctr" -- id -u)
gid=$(buildah_run "$ctr" -- id -g)
if [[ $uid =~ ^[0-9]+$ && $uid -ne 0 ]]; then pass "processes in the image run as uid $uid"; else fail "id -u in the image printed '$uid'"; fi
[[ $uid =~ ^[0-9]+$ ]] || die "cannot go on without the image's uid"

# ---------------------------------------------------------------- the fake API
step "starting incident-sim ($incidents incidents, $pairs pairs) on 127.0.0.1"
mkdir -p "$work/sim" "$work/cfg" "$work/data" "$work/empty" "$work/secrets"
token="docker-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
(umask 077 && printf '%s\n' "$token" > "$work/sim/token")
"$sim_bin" --port 0 --port-file "$work/sim/port" --ca-out "$work/cfg/ca.pem" \
  --incidents "$incidents" --pairs "$pairs" --span "$span" --token-file "$work/sim/token" \
  > "$work/sim/log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 600); do
  [[ -s $work/sim/port ]] && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim/log"; die "incident-sim exited"; }
  sleep 0.1
done
[[ -s $work/sim/port ]] || die "incident-sim did not write its port"
port=$(cat "$work/sim/port")

# write_config DIR DATABASE_LINES [SYNC_LINES]: DIR/incident-sync.yaml, mounted
# as /etc/incident-sync beside DIR/ca.pem, for the simulator's pairs.
write_config() {
  {
    echo "api:"
    echo "  base_url: https://127.0.0.1:$port"
    echo "  ca_file: /etc/incident-sync/ca.pem"
    echo "  page_size: 200"
    echo "sync:"
    echo "  initial_lookback: $lookback"
    echo "  settle: 0s"
    if [[ -n ${3:-} ]]; then echo "$3"; fi
    echo "  pairs:"
    for ((i = 0; i < pairs; i++)); do printf '    - { app_id: PXsim%03d, tld: site%03d.example }\n' "$i" "$i"; done
    echo "database:"
    echo "$2"
    echo "metrics:"
    echo "  listen: \"\""
  } > "$1/incident-sync.yaml"
  chmod 755 "$1"
  chmod 644 "$1/incident-sync.yaml" "$1/ca.pem"
}

# What the container sees: /etc/incident-sync (config + CA, read-only),
# /data (owned by the image's user) and the token as a Docker secret, 0400.
write_config "$work/cfg" "  path: /data/incidents.db"
printf '%s\n' "$token" > "$work/secrets/human_api_token"
chown "$uid:$gid" "$work/secrets/human_api_token" "$work/data" "$work/empty"
chmod 0400 "$work/secrets/human_api_token"
chmod 0750 "$work/data" "$work/empty"

# run DATA_DIR ARGS...: the image's daemon with the standard mounts.
run() {
  local data=$1
  shift
  buildah_run --network host \
    -v "$data:/data" \
    -v "$work/cfg:/etc/incident-sync:ro" \
    -v "$work/secrets/human_api_token:/run/secrets/human_api_token:ro" \
    "$ctr" -- /usr/bin/incident-syncd "$@"
}
cfg=/etc/incident-sync/incident-sync.yaml

# ---------------------------------------------------------------- checks in the container
rc=0
out=$(run "$work/empty" check-config --config "$cfg" 2>&1) || rc=$?
if [[ $rc -eq 0 && $out == *"token from /run/secrets/human_api_token"* ]]; then
  pass "check-config takes the token from the mounted secret /run/secrets/human_api_token"
else
  fail "check-config (exit $rc): $out"
fi

rc=0
out=$(run "$work/empty" status --check --config "$cfg" 2>&1) || rc=$?
if [[ $rc -ne 0 && $out == *database* ]]; then pass "HEALTHCHECK command fails before any sync (exit $rc: no database yet)"; else fail "status --check with no database: exit $rc: $out"; fi

step "incident-syncd once in the container"
t0=$(date +%s)
rc=0
run "$work/data" once --config "$cfg" > "$work/once.log" 2>&1 || rc=$?
if [[ $rc -eq 0 ]]; then
  pass "incident-syncd once in the container exits 0 ($(elapsed "$t0") s)"
else
  tail -n 40 "$work/once.log"
  echo "-- incident-sim log:"; tail -n 20 "$work/sim/log"
  fail "incident-syncd once in the container exited $rc"
fi
if grep -qF "$token" "$work/once.log"; then fail "the token appears in the daemon's output"; else pass "the token appears nowhere in the output"; fi

rc=0
out=$(run "$work/data" status --check --config "$cfg" 2>&1) || rc=$?
if [[ $rc -eq 0 ]]; then pass "incident-syncd status --check exits 0 after the sync"; else echo "$out"; fail "status --check exited $rc after the sync"; fi

# The exact HEALTHCHECK the image declares (CMD form), run in the container.
read -r -a hc <<<"$health"
if [[ ${hc[0]:-} == CMD ]]; then
  rc=0
  out=$(buildah_run --network host -v "$work/data:/data" -v "$work/cfg:/etc/incident-sync:ro" \
        "$ctr" -- "${hc[@]:1}" 2>&1) || rc=$?
  if [[ $rc -eq 0 ]]; then pass "the image's HEALTHCHECK command exits 0"; else echo "$out"; fail "the image's HEALTHCHECK exited $rc"; fi
else
  fail "HEALTHCHECK is not in CMD form: $health"
fi

# ---------------------------------------------------------------- the database, from the host
db=$work/data/incidents.db
if [[ -f $db ]]; then
  owner=$(stat -c %u "$db")
  if [[ $owner == "$uid" ]]; then pass "incidents.db is owned by uid $uid (written by the image's user)"; else fail "incidents.db owned by uid $owner, not $uid"; fi
  count=$(sqlite3 "$db" 'SELECT COUNT(*) FROM incidents;' 2>&1 || true)
  if [[ $count == "$incidents" ]]; then pass "incidents in the database: $count = simulator's $incidents"; else fail "incidents in the database: '$count', simulator has $incidents"; fi
  npairs=$(sqlite3 "$db" 'SELECT COUNT(DISTINCT app_id) FROM incidents;' 2>&1 || true)
  if [[ $npairs == "$pairs" ]]; then pass "all $pairs pairs present"; else fail "pairs in the database: '$npairs', want $pairs"; fi
  integrity=$(sqlite3 "$db" 'PRAGMA integrity_check;' 2>&1 || true)
  if [[ $integrity == ok ]]; then pass "PRAGMA integrity_check = ok"; else fail "PRAGMA integrity_check: $integrity"; fi
else
  fail "no database at /data/incidents.db (host: $db)"
fi

# ---------------------------------------------------------------- PostgreSQL
# The fixture's server listens on 127.0.0.1, which the container shares
# (--network host). Role isync_pw must give its password (scram-sha-256);
# the host-side checks use the superuser URL, which needs none.
step "PostgreSQL: the image against the fixture's server on 127.0.0.1:$(cat "$pg_dir/port")"
pg_port=$(cat "$pg_dir/port")
pg_admin_url=$(cat "$pg_dir/url")
pg_password=$(cat "$pg_dir/pw_password")
mkdir -p "$work/pg"

# psql_in DATABASE SQL: the result, unaligned, as the superuser.
psql_in() { "$psql_bin" -X -qAt -v ON_ERROR_STOP=1 -d "${pg_admin_url%/*}/$1" -c "$2"; }
# create_database NAME: a fresh database owned by isync_pw, dropped at exit.
create_database() {
  PGOPTIONS="-c client_min_messages=warning" "$psql_bin" -X -q -v ON_ERROR_STOP=1 -d "$pg_admin_url" \
    -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1 OWNER isync_pw" >/dev/null ||
    die "cannot create database $1 on $pg_admin_url"
  pg_databases+=("$1")
}
# write_pg_config DIR DATABASE [SYNC_LINE] [DATABASE_LINE]: DIR/incident-sync.yaml
# (mounted as /etc/incident-sync) for the fixture's server, and the CA.
write_pg_config() {
  mkdir -p "$1"
  cp "$work/cfg/ca.pem" "$1/ca.pem"
  local database="  url: postgresql://isync_pw@127.0.0.1:$pg_port/$2"
  if [[ -n ${4:-} ]]; then database+=$'\n'"$4"; fi
  write_config "$1" "$database" "${3:-}"
}
# run_pg CONFIG_DIR DATA_DIR [--no-db-secret] ARGV...: ARGV in the container
# with CONFIG_DIR as /etc/incident-sync and both secrets mounted.
run_pg() {
  local cfgdir=$1 data=$2
  shift 2
  local db_secret=(-v "$work/secrets/database_password:/run/secrets/database_password:ro")
  if [[ $1 == --no-db-secret ]]; then db_secret=(); shift; fi
  buildah_run --network host \
    -v "$data:/data" \
    -v "$cfgdir:/etc/incident-sync:ro" \
    -v "$work/secrets/human_api_token:/run/secrets/human_api_token:ro" \
    "${db_secret[@]}" "$ctr" -- "$@"
}

# The password as the Docker secret database_password, as the token is: 0400, the image's uid.
printf '%s\n' "$pg_password" > "$work/secrets/database_password"
chown "$uid:$gid" "$work/secrets/database_password"
chmod 0400 "$work/secrets/database_password"
mkdir -p "$work/pgdata"
chown "$uid:$gid" "$work/pgdata"
chmod 0750 "$work/pgdata"

db_once=isync_docker_once_$$
create_database "$db_once"
write_pg_config "$work/cfg-pg" "$db_once"
syncd=/usr/bin/incident-syncd

# Without the secret the server refuses the role: what check-config reports
# below is the secret's doing, not a trusting server's.
rc=0
run_pg "$work/cfg-pg" "$work/pgdata" --no-db-secret $syncd check-config --config "$cfg" > "$work/pg/check-config-no-secret.log" 2>&1 || rc=$?
out=$(cat "$work/pg/check-config-no-secret.log")
if [[ $rc -ne 0 && $out == *"no password supplied"* ]]; then
  pass "PostgreSQL: without /run/secrets/database_password, check-config fails (exit $rc: the server wants the password)"
else
  fail "PostgreSQL: check-config without the password secret: exit $rc: $out"
fi

rc=0
run_pg "$work/cfg-pg" "$work/pgdata" $syncd check-config --config "$cfg" > "$work/pg/check-config.log" 2>&1 || rc=$?
out=$(cat "$work/pg/check-config.log")
if [[ $rc -eq 0 && $out == *"database PostgreSQL isync_pw@127.0.0.1:$pg_port/$db_once"* &&
      $out == *"password from /run/secrets/database_password"* && $out == *"token from /run/secrets/human_api_token"* ]]; then
  pass "PostgreSQL: check-config connects as isync_pw, the password from the secret /run/secrets/database_password"
else
  fail "PostgreSQL: check-config (exit $rc): $out"
fi

rc=0
run_pg "$work/cfg-pg" "$work/pgdata" $syncd status --check --config "$cfg" > "$work/pg/status-before.log" 2>&1 || rc=$?
out=$(cat "$work/pg/status-before.log")
if [[ $rc -ne 0 && $out == *"no incident-sync schema yet"* ]]; then
  pass "PostgreSQL: status --check fails before any sync (exit $rc: no schema yet)"
else
  fail "PostgreSQL: status --check on an empty database: exit $rc: $out"
fi

step "PostgreSQL: incident-syncd once in the container"
t0=$(date +%s)
rc=0
run_pg "$work/cfg-pg" "$work/pgdata" $syncd once --config "$cfg" > "$work/pg/once.log" 2>&1 || rc=$?
if [[ $rc -eq 0 ]]; then
  pass "PostgreSQL: incident-syncd once in the container exits 0 ($(elapsed "$t0") s)"
else
  tail -n 40 "$work/pg/once.log"
  fail "PostgreSQL: incident-syncd once in the container exited $rc"
fi

rc=0
run_pg "$work/cfg-pg" "$work/pgdata" $syncd status --check --config "$cfg" > "$work/pg/status.log" 2>&1 || rc=$?
if [[ $rc -eq 0 ]]; then
  pass "PostgreSQL: status --check exits 0 after the sync"
else
  cat "$work/pg/status.log"
  fail "PostgreSQL: status --check exited $rc after the sync"
fi
if [[ ${hc[0]:-} == CMD ]]; then
  rc=0
  run_pg "$work/cfg-pg" "$work/pgdata" "${hc[@]:1}" > "$work/pg/healthcheck.log" 2>&1 || rc=$?
  if [[ $rc -eq 0 ]]; then
    pass "PostgreSQL: the image's HEALTHCHECK command exits 0"
  else
    cat "$work/pg/healthcheck.log"
    fail "PostgreSQL: the image's HEALTHCHECK exited $rc"
  fi
fi

got=$(psql_in "$db_once" "SELECT count(*) || ' ' || count(DISTINCT (app_id, host_domain)) FROM incidents" 2>&1 || true)
if [[ $got == "$incidents $pairs" ]]; then
  pass "PostgreSQL: psql on the host counts $incidents incidents in $pairs pairs, as the simulator has"
else
  fail "PostgreSQL: incidents and pairs in $db_once: '$got', want '$incidents $pairs'"
fi

# ---------------------------------------------------------------- two daemons, one database
# The README's "Several daemons, one database", as its compose file runs it:
# the image's own ENTRYPOINT and CMD twice, the same configuration, a
# database neither has seen. lease_ttl 3s (the least allowed) and a 2 s
# interval make the sharing visible within seconds.
step "PostgreSQL: two daemons (the image's ENTRYPOINT and CMD) on one database"
read -r -a entrypoint <<<"$(inspect '{{range .Docker.Config.Entrypoint}}{{.}} {{end}}')"
read -r -a command <<<"$(inspect '{{range .Docker.Config.Cmd}}{{.}} {{end}}')"
if [[ ${entrypoint[*]:-} == "$syncd" && ${command[*]:-} == "run --config $cfg" ]]; then
  pass "ENTRYPOINT + CMD: ${entrypoint[*]} ${command[*]}"
else
  fail "ENTRYPOINT '${entrypoint[*]:-}' CMD '${command[*]:-}' (want $syncd run --config $cfg)"
fi
db_pair=isync_docker_pair_$$
create_database "$db_pair"
write_pg_config "$work/cfg-pg2" "$db_pair" "  interval: 2s" "  lease_ttl: 3s"
names=(a b)
for name in "${names[@]}"; do
  # Each its own /data, as each compose service gets its own anonymous volume.
  mkdir -p "$work/pgdata-$name"
  chown "$uid:$gid" "$work/pgdata-$name"
  chmod 0750 "$work/pgdata-$name"
  run_pg "$work/cfg-pg2" "$work/pgdata-$name" "${entrypoint[@]}" "${command[@]}" > "$work/pg/run-$name.log" 2>&1 &
  pg_runs+=("$!")
done

# pairs_shared: both `buildah run`s still going, and in SQL: every incident
# stored, two daemons' heartbeats, sync runs written by two daemons.
pairs_shared() {
  local r
  for r in "${pg_runs[@]}"; do kill -0 "$r" 2>/dev/null || return 1; done
  [[ $(psql_in "$db_pair" "SELECT (SELECT count(*) FROM incidents) = $incidents
                             AND (SELECT count(*) FROM sync_daemons) = 2
                             AND (SELECT count(DISTINCT daemon) FROM sync_runs WHERE status = 'ok') = 2" 2>/dev/null) == t ]]
}
t0=$(date +%s)
limit=120
until pairs_shared || (($(date +%s) - t0 >= limit)); do
  for i in "${!pg_runs[@]}"; do
    kill -0 "${pg_runs[$i]}" 2>/dev/null || { tail -n 30 "$work/pg/run-${names[$i]}.log"; break 2; }
  done
  sleep 0.2
done
if pairs_shared; then
  pass "PostgreSQL: both daemons synced into the database within $(elapsed "$t0") s (two heartbeats in sync_daemons, sync_runs.daemon names both)"
else
  fail "PostgreSQL: after $(elapsed "$t0") s the two daemons do not both sync (limit $limit s)"
fi
echo "   sync_runs by daemon (runs, new incidents):" \
  "$(psql_in "$db_pair" "SELECT string_agg(daemon || ': ' || n || ', ' || new, '; ' ORDER BY daemon)
                         FROM (SELECT daemon, count(*) n, sum(incidents_new) new FROM sync_runs GROUP BY daemon) d" 2>&1 || true)"
echo "   pair_leases: $(psql_in "$db_pair" "SELECT string_agg(app_id || ' ' || coalesce(host || ':' || pid, '-'), ', ' ORDER BY app_id) FROM pair_leases" 2>&1 || true)"

# Every incident once: as many rows as the simulator has, each id once, and
# each counted new by exactly one successful sync run of one daemon. (A
# failed run's counts include pages its rolled-back transaction never
# stored, which the pair's next run stores and counts again.)
got=$(psql_in "$db_pair" "SELECT count(*) || ' ' || count(DISTINCT id) || ' '
                            || (SELECT coalesce(sum(incidents_new), 0) FROM sync_runs WHERE status = 'ok')
                            || ' ' || count(DISTINCT (app_id, host_domain)) FROM incidents" 2>&1 || true)
if [[ $got == "$incidents $incidents $incidents $pairs" ]]; then
  pass "PostgreSQL: two daemons stored each of the $incidents incidents once (rows, distinct ids, new in ok sync_runs all $incidents; $pairs pairs)"
else
  fail "PostgreSQL: two daemons: rows, distinct ids, new in ok sync_runs, pairs = '$got', want '$incidents $incidents $incidents $pairs'"
  echo "   sync_runs (run_id|daemon|app_id|status|from_ms|to_ms|pages|seen|new|changed|error):"
  psql_in "$db_pair" "SELECT run_id, daemon, app_id, status, from_ms, to_ms, pages, incidents_seen, incidents_new,
                             incidents_changed, error FROM sync_runs ORDER BY run_id" 2>&1 | sed 's/^/     /' || true
  for name in "${names[@]}"; do echo "   -- run-$name.log:"; sed 's/^/     /' "$work/pg/run-$name.log"; done
fi
# Not a failure of this test, but worth seeing: a sync run that failed (the
# pair is polled again at the next interval). Two daemons writing their first
# pages together can deadlock on unknown_fields rows inserted in different orders.
failed_runs=$(psql_in "$db_pair" "SELECT app_id || ': ' || split_part(error, E'\n', 1) FROM sync_runs WHERE status <> 'ok'" 2>&1 || true)
if [[ -n $failed_runs ]]; then
  echo "NOTE: PostgreSQL: sync runs that failed (retried at the next interval):"
  mapfile -t failed_lines <<<"$failed_runs"
  printf '   %s\n' "${failed_lines[@]}"
fi

# SIGTERM, as `docker stop` sends it, to each daemon itself.
stop_pg_daemons 30
for i in "${!names[@]}"; do
  log=$work/pg/run-${names[$i]}.log
  if [[ ${pg_run_status[$i]} == 0 ]] && grep -q "SIGTERM: stopping" "$log"; then
    pass "PostgreSQL: daemon ${names[$i]} stopped on SIGTERM and exited 0"
  else
    tail -n 20 "$log"
    fail "PostgreSQL: daemon ${names[$i]} after SIGTERM: exit ${pg_run_status[$i]}"
  fi
done
got=$(psql_in "$db_pair" "SELECT (SELECT count(*) FROM sync_daemons) || ' ' || (SELECT count(*) FROM sync_state WHERE lease_owner IS NOT NULL)" 2>&1 || true)
if [[ $got == "0 0" ]]; then
  pass "PostgreSQL: the stopped daemons left no heartbeat (sync_daemons) and no lease (sync_state.lease_owner)"
else
  fail "PostgreSQL: after both stopped: heartbeats, leases held = '$got', want '0 0'"
fi

# ---------------------------------------------------------------- secrets in the output
leaks=$(grep -rlF -e "$pg_password" -e "$token" "$work/pg" || true)
if [[ -z $leaks ]]; then
  logs=("$work"/pg/*.log)
  pass "PostgreSQL: neither the database password nor the token appears in any output (${#logs[@]} logs)"
else
  fail "PostgreSQL: the database password or the token appears in: $leaks"
fi

echo
print_retries
if ((failures)); then
  echo "docker_test: $failures check(s) FAILED"
  exit 1
fi
echo "docker_test: all checks passed"
