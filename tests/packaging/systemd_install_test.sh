#!/usr/bin/env bash
# The README's systemd install, run the way the unit runs it (no PID 1
# systemd is needed): `cmake --install` into a scratch root, the user made
# from the installed sysusers.d entry, the token installed as root mode 600
# at /etc/incident-sync/token exactly as the README says, and then the unit's
# ExecStart run as the unit's User/Group, with its UMask, its
# StateDirectory/StateDirectoryMode and a credentials directory holding the
# LoadCredential= file. Every one of those is read from the installed unit
# file, not copied here, so a change to the unit is tested as shipped.
#
# Then, as systemd's group-member analysts would: a member of the group that
# is not the daemon's user reads the database with `sqlite3 -readonly` and
# `incident-syncd status`, with the daemon stopped, after a clean pass and
# after a failed one (the WAL's -wal/-shm files must always be there).
#
# The scratch root stands in for /: every path of the installed config that
# starts with /etc/incident-sync or /var/lib/incident-sync is moved under it.
# Only the README's own edit (sync.pairs) and what the test needs to reach the
# simulator (base_url, ca_file) are changed.
#
# Last, PostgreSQL as the unit runs it: database.url set in the installed
# config, the password through the credential drop-in the unit file documents
# (its commented LoadCredential= line, saved as `systemctl edit` would), and
# ExecStart's `once` into a fresh database of the fixture's server, counted
# with psql; the password must appear in no output.
#
# Usage: systemd_install_test.sh SOURCE_DIR BUILD_DIR INCIDENT_SIM
# Environment: ISYNC_TEST_PG_DIR (required: the directory `tests/postgresql/pg_server.sh
#              start DIR` made; ctest's fixture `postgresql` sets it).
set -euo pipefail
src=$1
build=$2
sim_bin=$3
incidents=600

fail() { echo "FAIL: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "SKIP: must run as root (it creates the unit's user and switches to it)"; exit 77; }
command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
command -v sqlite3 >/dev/null || fail "sqlite3 is missing"
pg_dir=${ISYNC_TEST_PG_DIR:-}
[[ -n $pg_dir && -s $pg_dir/url && -s $pg_dir/port && -s $pg_dir/pw_password ]] ||
  fail "no PostgreSQL server: ISYNC_TEST_PG_DIR='$pg_dir' lacks url, port or pw_password (run through ctest," \
       "whose fixture postgresql starts one, or tests/postgresql/pg_server.sh start DIR and export ISYNC_TEST_PG_DIR=DIR)"
# psql from the newest server's bin directory (as pg_server.sh picks it), else the PATH's.
psql_bin=$(printf '%s\n' /usr/lib/postgresql/*/bin/psql | sort -V | tail -n1)
[[ -x $psql_bin ]] || psql_bin=$(command -v psql) || fail "psql not found (Debian: postgresql-client)"
pg_admin_url=$(cat "$pg_dir/url")
pg_db=isync_systemd_$$

root=$(mktemp -d /tmp/isync-install.XXXXXX)
sim_pid=
analyst=isync-analyst-test
cleanup() {
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  userdel "$analyst" 2>/dev/null || true
  "$psql_bin" -X -q -d "$pg_admin_url" -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$root"
}
trap cleanup EXIT
chmod 755 "$root"  # the unit's user must traverse it, as it does /

DESTDIR=$root cmake --install "$build" --prefix /usr >/dev/null
unit=$root/usr/lib/systemd/system/incident-syncd.service
config=$root/etc/incident-sync/incident-sync.yaml
[[ -f $unit && -f $config ]] || fail "cmake --install did not install the unit and the config"

# ------------------------------------------------------------ the unit's settings
key() {  # the last value of a [Service] key, as systemd takes it
  awk -v k="$1" -F= '/^\[/{s=($0=="[Service]")} s && $1==k {sub(/^[^=]*=/,""); v=$0} END{print v}' "$unit"
}
user=$(key User); group=$(key Group); umask_value=$(key UMask)
state=$(key StateDirectory); state_mode=$(key StateDirectoryMode)
credential=$(key LoadCredential); exec_start=$(key ExecStart)
for v in user group umask_value state credential exec_start; do
  [[ -n ${!v} ]] || fail "the unit has no value for $v"
done
state_mode=${state_mode:-0755}
cred_name=${credential%%:*}
cred_source=${credential#*:}
echo "unit: User=$user Group=$group UMask=$umask_value StateDirectory=$state ($state_mode) LoadCredential=$credential"

# sysusers.d, as `systemd-sysusers` in the README does.
systemd-sysusers "$root/usr/lib/sysusers.d/incident-sync.conf"
id "$user" >/dev/null || fail "systemd-sysusers did not create $user"

# ------------------------------------------------------------ the simulator
work=$root/work
mkdir -p "$work"
printf 'install-test-%s\n' "$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')" > "$work/token"
# start_sim: incident-sim on a free port (again after the failed pass below);
# sets sim_pid and port.
start_sim() {
  rm -f "$work/sim.port"
  "$sim_bin" --port 0 --port-file "$work/sim.port" --ca-out "$work/ca.pem" --incidents $incidents --pairs 2 \
    --span 1d --token-file "$work/token" > "$work/sim.log" 2>&1 &
  sim_pid=$!
  for _ in $(seq 1 600); do
    [[ -s $work/sim.port ]] && break
    kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log"; fail "incident-sim did not start"; }
    sleep 0.1
  done
  [[ -s $work/sim.port ]] || fail "incident-sim did not write its port"
  port=$(cat "$work/sim.port")
  chmod 644 "$work/ca.pem"
}
start_sim

# ------------------------------------------------------------ the README's steps
# sudo install -m 600 /dev/stdin /etc/incident-sync/token   (the token pasted on stdin)
install -m 600 "$work/token" "$root$cred_source"
# sudoedit /etc/incident-sync/incident-sync.yaml: set sync.pairs (and, here, reach the simulator).
sed -i -e "s|/etc/incident-sync|$root/etc/incident-sync|g" -e "s|/var/lib/incident-sync|$root/var/lib/incident-sync|g" \
  -e "s|^  base_url: .*|  base_url: https://127.0.0.1:$port|" -e "s|^  ca_file: .*|  ca_file: $work/ca.pem|" \
  -e "s|^  initial_lookback: .*|  initial_lookback: 2d|" -e "s|^  settle: .*|  settle: 0s|" \
  -e "s|^  listen: .*|  listen: \"\"|" \
  -e 's|^    - { app_id: PXabc123, tld: example.com }|    - { app_id: PXsim000, tld: site000.example }\n    - { app_id: PXsim001, tld: site001.example }|' \
  "$config"
grep -q PXsim001 "$config" || fail "could not set sync.pairs in the installed config"
db=$(awk '/^database:/{d=1} d && /^  path:/{print $2; exit}' "$config")
[[ $db == "$root/var/lib/$state/"* ]] || fail "the installed config's database is not in the StateDirectory: $db"

# ------------------------------------------------------------ what systemd does at start
install -d -o "$user" -g "$group" -m "$state_mode" "$root/var/lib/$state"
creds=$root/run/credentials/incident-syncd.service
install -d -o "$user" -g "$group" -m 0500 "$creds"
install -o "$user" -g "$group" -m 0400 "$root$cred_source" "$creds/$cred_name"

# ExecStart as the unit's user; `once` instead of `run` so the pass ends by itself.
read -r -a argv <<<"$exec_start"
[[ ${argv[0]} == /usr/bin/incident-syncd && ${argv[1]} == run ]] || fail "unexpected ExecStart: $exec_start"
argv[0]=$root/usr/bin/incident-syncd
argv[1]=once
for i in "${!argv[@]}"; do argv[$i]=${argv[$i]//\/etc\/incident-sync/$root/etc/incident-sync}; done
as_unit() {
  (cd / && umask "$umask_value" && exec env -i PATH=/usr/bin:/bin CREDENTIALS_DIRECTORY="$creds" \
    setpriv --reuid="$user" --regid="$group" --init-groups "$@")
}
if ! as_unit "${argv[@]}" > "$work/once.log" 2>&1; then
  cat "$work/once.log"; fail "ExecStart as $user exited $?"
fi
echo "ok: ExecStart as $user synced ($(grep -o 'token from [^,]*' "$work/once.log" | head -1))"
grep -q 'token from \$CREDENTIALS_DIRECTORY' "$work/once.log" || fail "the token did not come from the credential"

count=$(sqlite3 -readonly "$db" 'SELECT COUNT(*) FROM incidents')
[[ $count == "$incidents" ]] || fail "the database holds $count incidents, expected $incidents"
owner=$(stat -c '%U:%G %a' "$db")
[[ $owner == "$user:$group 640" ]] || fail "database is $owner, expected $user:$group 640 (UMask=$umask_value)"
echo "ok: $count incidents in $db ($owner)"

# ------------------------------------------------------------ an analyst in the group
useradd --no-create-home --shell /usr/sbin/nologin -G "$group" "$analyst" 2>/dev/null || usermod -aG "$group" "$analyst"
as_analyst() { (cd / && exec env -i PATH=/usr/bin:/bin setpriv --reuid="$analyst" --regid="$analyst" --init-groups "$@"); }
read_as_analyst() {
  local when=$1
  local n
  n=$(as_analyst sqlite3 -readonly "$db" 'SELECT COUNT(*) FROM incidents' 2>&1) ||
    fail "$when: a member of $group cannot read the database: $n"
  [[ $n == "$incidents" ]] || fail "$when: the analyst read $n incidents, expected $incidents"
  local st
  st=$(as_analyst "$root/usr/bin/incident-syncd" status --database "$db" 2>&1) ||
    fail "$when: status as a member of $group failed: $st"
  echo "ok: $when: a member of $group reads $n incidents and status"
}
read_as_analyst "after a clean pass"

# While the daemon runs (ExecStart as it is, `run`): its progress file says so.
run_argv=("${argv[@]}")
run_argv[1]=run
# exec all the way down, so that $! is the daemon itself and gets the SIGTERM.
(cd / && umask "$umask_value" && exec env -i PATH=/usr/bin:/bin CREDENTIALS_DIRECTORY="$creds" \
  setpriv --reuid="$user" --regid="$group" --init-groups "${run_argv[@]}") > "$work/run.log" 2>&1 &
run_pid=$!
for _ in $(seq 1 300); do
  grep -q "synced" "$work/run.log" && break
  kill -0 "$run_pid" 2>/dev/null || { cat "$work/run.log"; fail "run exited early"; }
  sleep 0.1
done
grep -q "synced" "$work/run.log" || { cat "$work/run.log"; kill "$run_pid"; fail "run did not finish its first poll"; }
read_as_analyst "while the daemon runs"
as_analyst "$root/usr/bin/incident-syncd" status --database "$db" | grep -q "daemon: running" ||
  fail "status as a member of $group does not see the running daemon"
kill -TERM "$run_pid"
wait "$run_pid" || fail "run did not exit 0 on SIGTERM: $(tail -3 "$work/run.log")"
echo "ok: run stopped cleanly on SIGTERM"

# A failed pass: the simulator is gone, so every request fails.
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=
cp -p "$config" "$work/config.before-failed-pass"
sed -i -e 's|^  max_attempts: .*|  max_attempts: 1|' "$config"
if as_unit "${argv[@]}" > "$work/failed.log" 2>&1; then fail "a pass without the API succeeded"; fi
read_as_analyst "after a failed pass"

# ------------------------------------------------------------ PostgreSQL, as the unit runs it
# The fixture's server on 127.0.0.1: role isync_pw must give its password
# (scram-sha-256); the superuser URL (for the checks here) needs none.
pg_port=$(cat "$pg_dir/port")
pg_password=$(cat "$pg_dir/pw_password")
psql_in() { "$psql_bin" -X -qAt -v ON_ERROR_STOP=1 -d "${pg_admin_url%/*}/$pg_db" -c "$1"; }
PGOPTIONS="-c client_min_messages=warning" "$psql_bin" -X -q -v ON_ERROR_STOP=1 -d "$pg_admin_url" \
  -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" -c "CREATE DATABASE $pg_db OWNER isync_pw" >/dev/null ||
  fail "cannot create database $pg_db on $pg_admin_url"

# `systemctl edit incident-syncd` with the drop-in the unit file documents in
# a comment: its LoadCredential= line, taken from the installed unit.
dropin_line=$(sed -n 's/^#[[:space:]]*\(LoadCredential=.*\)$/\1/p' "$unit")
[[ -n $dropin_line && $(wc -l <<<"$dropin_line") -eq 1 ]] ||
  fail "the unit documents no single commented LoadCredential= drop-in line for the database password: '$dropin_line'"
dropin_dir=$root/etc/systemd/system/incident-syncd.service.d
mkdir -p "$dropin_dir"
printf '[Service]\n%s\n' "$dropin_line" > "$dropin_dir/override.conf"
db_credential=$(awk -F= '/^\[/{s=($0=="[Service]")} s && $1=="LoadCredential" {sub(/^[^=]*=/,""); print}' "$dropin_dir/override.conf")
db_cred_name=${db_credential%%:*}
db_cred_source=${db_credential#*:}
[[ -n $db_cred_name && $db_cred_source == /* ]] || fail "unexpected drop-in credential: $db_credential"
echo "drop-in: $dropin_line"
# The password: root's file, mode 600, as the token is.
printf '%s\n' "$pg_password" | install -m 600 /dev/stdin "$root$db_cred_source"

# The installed config, back to before the failed pass, on a new simulator,
# with database.url (no password in it) instead of database.path.
start_sim
cp -p "$work/config.before-failed-pass" "$config"
sed -i -e "s|^  base_url: .*|  base_url: https://127.0.0.1:$port|" \
  -e "s|^  url: \"\"|  url: postgresql://isync_pw@127.0.0.1:$pg_port/$pg_db|" "$config"
grep -q "^  url: postgresql://isync_pw@127.0.0.1:$pg_port/$pg_db\$" "$config" || fail "could not set database.url in the installed config"

# First without the database credential: the server wants the password, so
# what passes below passes through the credential.
if as_unit "${argv[@]}" > "$work/pg-no-credential.log" 2>&1; then
  fail "once against PostgreSQL succeeded without the database-password credential"
fi
grep -q "no password supplied" "$work/pg-no-credential.log" ||
  { cat "$work/pg-no-credential.log"; fail "once without the credential did not fail for the password"; }
echo "ok: without the $db_cred_name credential the server refuses the unit's user (no password supplied)"

# What systemd does at start with the drop-in: the credential's private copy.
install -o "$user" -g "$group" -m 0400 "$root$db_cred_source" "$creds/$db_cred_name"
cfg_arg=$root/etc/incident-sync/incident-sync.yaml
if ! as_unit "$root/usr/bin/incident-syncd" check-config --config "$cfg_arg" > "$work/pg-check-config.log" 2>&1; then
  cat "$work/pg-check-config.log"; fail "check-config as $user against PostgreSQL failed"
fi
if ! grep -qF "database PostgreSQL isync_pw@127.0.0.1:$pg_port/$pg_db" "$work/pg-check-config.log" ||
   ! grep -qF "password from \$CREDENTIALS_DIRECTORY/database-password" "$work/pg-check-config.log"; then
  cat "$work/pg-check-config.log"; fail "check-config did not connect with the password from the credential"
fi
echo "ok: check-config as $user: $(grep -o 'database PostgreSQL.*' "$work/pg-check-config.log")"

if ! as_unit "${argv[@]}" > "$work/pg-once.log" 2>&1; then
  cat "$work/pg-once.log"; fail "ExecStart (once) as $user against PostgreSQL exited non-zero"
fi
grep -qF "database PostgreSQL isync_pw@127.0.0.1:$pg_port/$pg_db (password from \$CREDENTIALS_DIRECTORY/database-password)" \
  "$work/pg-once.log" || { cat "$work/pg-once.log"; fail "once did not say it used the credential's password"; }
got=$(psql_in "SELECT count(*) || ' ' || count(DISTINCT (app_id, host_domain)) FROM incidents" 2>&1) || true
[[ $got == "$incidents 2" ]] || fail "PostgreSQL database $pg_db: incidents and pairs '$got', expected '$incidents 2'"
echo "ok: ExecStart as $user synced $incidents incidents of 2 pairs into PostgreSQL ($pg_db)"

# The README's check by hand (sudo --preserve-env=HUMAN_API_TOKEN,PGPASSWORD -u
# USER incident-syncd check-config): no credentials directory, the token and
# the password in the environment, read from root's files. Without the
# password it exits 74, as the README says.
by_hand() {
  (cd / && exec env -i PATH=/usr/bin:/bin HUMAN_API_TOKEN="$(cat "$root$cred_source")" "$@")
}
rc=0
by_hand setpriv --reuid="$user" --regid="$group" --init-groups \
  "$root/usr/bin/incident-syncd" check-config --config "$cfg_arg" > "$work/pg-by-hand-no-password.log" 2>&1 || rc=$?
if [[ $rc -ne 74 ]] || ! grep -q "no password supplied" "$work/pg-by-hand-no-password.log"; then
  cat "$work/pg-by-hand-no-password.log"; fail "check-config by hand without the password: exit $rc, expected 74"
fi
for command in check-config status; do
  rc=0
  by_hand PGPASSWORD="$(cat "$root$db_cred_source")" setpriv --reuid="$user" --regid="$group" --init-groups \
    "$root/usr/bin/incident-syncd" "$command" --config "$cfg_arg" > "$work/pg-by-hand-$command.log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] || { cat "$work/pg-by-hand-$command.log"; fail "$command by hand with PGPASSWORD exited $rc"; }
done
grep -qF "password from libpq" "$work/pg-by-hand-check-config.log" ||
  { cat "$work/pg-by-hand-check-config.log"; fail "check-config by hand did not take the password from libpq (PGPASSWORD)"; }
grep -qE "^PXsim001 +site001\.example .* ok " "$work/pg-by-hand-status.log" ||
  { cat "$work/pg-by-hand-status.log"; fail "status by hand does not show the pairs synced"; }
echo "ok: by hand as in the README: without PGPASSWORD exit 74; with it check-config and status as $user work"

# Every output of the daemon in this test (not the simulator's log).
outputs=("$work"/once.log "$work"/run.log "$work"/failed.log "$work"/pg-*.log)
leaks=$(grep -lF -e "$pg_password" -e "$(cat "$work/token")" "${outputs[@]}" || true)
[[ -z $leaks ]] || fail "the database password or the token appears in: $leaks"
echo "ok: neither the database password nor the token appears in the daemon's output (${#outputs[@]} logs)"
echo "ok"
