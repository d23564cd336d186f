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
#     passes after the sync, and that the database holds every incident.
#
# Usage: docker_test.sh SOURCE_DIR INCIDENT_SIM_BINARY
# Environment: DOCKER_TEST_IMAGE (default incident-sync:test),
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

# ---------------------------------------------------------------- tools
# shellcheck source=container_base.sh
source "$(dirname "$0")/container_base.sh"
begin_container_test incident-sync-docker

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
uid=$(buildah run --isolation chroot "$ctr" -- id -u)
gid=$(buildah run --isolation chroot "$ctr" -- id -g)
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

# What the container sees: /etc/incident-sync (config + CA, read-only),
# /data (owned by the image's user) and the token as a Docker secret, 0400.
{
  echo "api:"
  echo "  base_url: https://127.0.0.1:$port"
  echo "  ca_file: /etc/incident-sync/ca.pem"
  echo "  page_size: 200"
  echo "sync:"
  echo "  initial_lookback: $lookback"
  echo "  settle: 0s"
  echo "  pairs:"
  for ((i = 0; i < pairs; i++)); do printf '    - { app_id: PXsim%03d, tld: site%03d.example }\n' "$i" "$i"; done
  echo "database:"
  echo "  path: /data/incidents.db"
  echo "metrics:"
  echo "  listen: \"\""
} > "$work/cfg/incident-sync.yaml"
chmod 755 "$work/cfg"
chmod 644 "$work/cfg/incident-sync.yaml" "$work/cfg/ca.pem"
printf '%s\n' "$token" > "$work/secrets/human_api_token"
chown "$uid:$gid" "$work/secrets/human_api_token" "$work/data" "$work/empty"
chmod 0400 "$work/secrets/human_api_token"
chmod 0750 "$work/data" "$work/empty"

# run DATA_DIR ARGS...: the image's daemon with the standard mounts.
run() {
  local data=$1
  shift
  buildah run --isolation chroot --network host \
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
  out=$(buildah run --isolation chroot --network host -v "$work/data:/data" -v "$work/cfg:/etc/incident-sync:ro" \
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

echo
if ((failures)); then
  echo "docker_test: $failures check(s) FAILED"
  exit 1
fi
echo "docker_test: all checks passed"
