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
# Usage: systemd_install_test.sh SOURCE_DIR BUILD_DIR INCIDENT_SIM
set -euo pipefail
src=$1
build=$2
sim_bin=$3
incidents=600

fail() { echo "FAIL: $*"; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "SKIP: must run as root (it creates the unit's user and switches to it)"; exit 77; }
command -v setpriv >/dev/null || fail "setpriv (util-linux) is missing"
command -v sqlite3 >/dev/null || fail "sqlite3 is missing"

root=$(mktemp -d /tmp/isync-install.XXXXXX)
sim_pid=
analyst=isync-analyst-test
cleanup() {
  [[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
  userdel "$analyst" 2>/dev/null || true
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
"$sim_bin" --port 0 --port-file "$work/sim.port" --ca-out "$work/ca.pem" --incidents $incidents --pairs 2 \
  --span 1d --token-file "$work/token" > "$work/sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 600); do
  [[ -s $work/sim.port ]] && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log"; fail "incident-sim did not start"; }
  sleep 0.1
done
port=$(cat "$work/sim.port")
chmod 644 "$work/ca.pem"

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
sed -i -e 's|^  max_attempts: .*|  max_attempts: 1|' "$config"
if as_unit "${argv[@]}" > "$work/failed.log" 2>&1; then fail "a pass without the API succeeded"; fi
read_as_analyst "after a failed pass"
echo "ok"
