#!/usr/bin/env bash
# The Debian package as a user meets it:
#   - `cpack -G DEB` in BUILD_DIR makes incident-sync_<version>_amd64.deb; its
#     control data (Depends from the shared libraries, the conffile, the
#     maintainer scripts) and contents (binary, unit, sysusers entry, example
#     configuration, README, manual page, bash completion) are checked, and the
#     manual page renders without warnings;
#   - in a fresh debian:bookworm-slim container (buildah), `apt-get install
#     ./incident-sync_*.deb` pulls its dependencies from the Debian archive
#     and makes the incident-sync user and /var/lib/incident-sync;
#   - `incident-syncd once`, run as that user, syncs incident-sim (on the
#     host's 127.0.0.1) into /var/lib/incident-sync/incidents.db;
#   - `apt-get remove` keeps the conffile and the database; `apt-get purge`
#     removes the configuration directory (token included) and keeps the
#     database.
# Usage: deb_test.sh SOURCE_DIR BUILD_DIR INCIDENT_SIM_BINARY     Root (buildah --isolation chroot).
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
sim_bin=$3
base=debian:bookworm-slim

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
die() { echo "FAIL: $*"; exit 1; }
step() { echo "== $* ($(date +%T))"; }
elapsed() { echo $(($(date +%s) - $1)); }

[[ $(id -u) -eq 0 ]] || { echo "SKIP: must run as root (buildah --isolation chroot)"; exit 77; }
# shellcheck source=container_base.sh
source "$(dirname "$0")/container_base.sh"
begin_container_test incident-sync-deb

# ---------------------------------------------------------------- the package
step "cpack -G DEB in $build"
(cd "$build" && cpack -G DEB -B "$work/out" > "$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; die "cpack failed"; }
deb=$(ls "$work"/out/incident-sync_*_amd64.deb 2>/dev/null | head -n1)
[[ -f $deb ]] || die "no incident-sync_*_amd64.deb in $work/out: $(ls "$work/out")"
pass "$(basename "$deb") ($(stat -c %s "$deb") bytes)"

depends=$(dpkg-deb -f "$deb" Depends)
for lib in libssl3 libsqlite3-0 libyaml-cpp0.7 zlib1g ca-certificates; do
  if [[ $depends == *"$lib"* ]]; then pass "Depends names $lib"; else fail "Depends lacks $lib: $depends"; fi
done
# sd_notify is spoken directly (lib/app/systemd_notify.cpp): no libsystemd.
if [[ $depends == *libsystemd* ]]; then fail "Depends names libsystemd: $depends"; else pass "Depends does not name libsystemd"; fi
# libpq is dlopen'ed for database.url only: recommended, not a shared-library dependency.
if [[ $(dpkg-deb -f "$deb" Recommends) == *libpq5* ]]; then pass "Recommends names libpq5"; else
  fail "Recommends lacks libpq5: $(dpkg-deb -f "$deb" Recommends)"; fi
dpkg-deb -e "$deb" "$work/control"
if [[ $(cat "$work/control/conffiles") == /etc/incident-sync/incident-sync.yaml ]]; then
  pass "conffiles: /etc/incident-sync/incident-sync.yaml"
else
  fail "conffiles: $(cat "$work/control/conffiles")"
fi
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/incident-syncd ./usr/lib/systemd/system/incident-syncd.service \
            ./usr/lib/sysusers.d/incident-sync.conf ./etc/incident-sync/incident-sync.yaml \
            ./usr/share/doc/incident-sync/README.md ./usr/share/doc/incident-sync/copyright \
            ./usr/share/man/man1/incident-syncd.1.gz ./usr/share/bash-completion/completions/incident-syncd; do
  if grep -q " $path\$" <<<"$contents"; then pass "ships $path"; else fail "does not ship $path"; fi
done
dpkg-deb -x "$deb" "$work/root"
warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z \
             "$work/root/usr/share/man/man1/incident-syncd.1.gz" 2>&1 >/dev/null)
if [[ -z $warnings ]]; then pass "the manual page renders without warnings"; else fail "man warnings: $warnings"; fi
# The page carries --help's text (it is made from it), e.g. the export flags.
page=$(MANWIDTH=200 man -l "$work/root/usr/share/man/man1/incident-syncd.1.gz" 2>/dev/null)
for text in "--since TIME" "check-config" "EXIT STATUS" "78 configuration error" "/etc/incident-sync/token"; do
  [[ $page == *"$text"* ]] || fail "the manual page lacks \"$text\""
done

# ---------------------------------------------------------------- the fake API
step "starting incident-sim on 127.0.0.1"
token="deb-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
mkdir -p "$work/sim"
(umask 077 && printf '%s\n' "$token" > "$work/sim/token")
"$sim_bin" --port 0 --port-file "$work/sim/port" --ca-out "$work/sim/ca.pem" \
  --incidents 1500 --pairs 2 --span 1d --token-file "$work/sim/token" > "$work/sim/log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 600); do [[ -s $work/sim/port ]] && break; sleep 0.1; done
[[ -s $work/sim/port ]] || die "incident-sim did not start: $(cat "$work/sim/log")"
port=$(cat "$work/sim/port")

# ---------------------------------------------------------------- install in a fresh container
ensure_base_image
ctr=$(buildah from --pull=never --quiet "$base")
in_ctr() { buildah_run "$ctr" -- "$@"; }
buildah copy --quiet "$ctr" "$deb" /tmp/ >/dev/null
buildah copy --quiet "$ctr" "$work/sim/ca.pem" /tmp/sim-ca.pem >/dev/null
step "apt-get install ./$(basename "$deb") in a fresh $base"
t0=$(date +%s)
if in_ctr sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
     /tmp/$(basename "$deb")" > "$work/install.log" 2>&1; then
  pass "installed with its dependencies in $(elapsed "$t0") s"
else
  tail -n 30 "$work/install.log"
  die "apt-get install failed"
fi
ctr_test "id incident-sync >/dev/null 2>&1" && pass "the incident-sync user exists" || fail "no incident-sync user"
state=$(in_ctr stat -c '%U:%G %a' /var/lib/incident-sync 2>&1 || true)
[[ $state == "incident-sync:incident-sync 750" ]] && pass "/var/lib/incident-sync is $state" ||
  fail "/var/lib/incident-sync: $state"
in_ctr incident-syncd --version | grep -q "^incident-syncd " && pass "incident-syncd --version runs" ||
  fail "incident-syncd --version"
if in_ctr bash -c 'source /usr/share/bash-completion/completions/incident-syncd &&
     COMP_WORDS=(incident-syncd exp) COMP_CWORD=1 && _incident_syncd && [[ ${COMPREPLY[*]} == export ]]'; then
  pass "bash completion completes a command"
else
  fail "bash completion"
fi

# The packaged configuration, pointed at the simulator.
cat > "$work/incident-sync.yaml" <<YAML
api:
  base_url: https://127.0.0.1:$port
  ca_file: /tmp/sim-ca.pem
sync:
  initial_lookback: 2d
  settle: 0s
  discover: true
database:
  path: /var/lib/incident-sync/incidents.db
metrics:
  listen: ""
YAML
buildah copy --quiet --chmod 0644 "$ctr" "$work/incident-sync.yaml" /etc/incident-sync/incident-sync.yaml >/dev/null
step "incident-syncd once as the package's user"
if in_ctr env HUMAN_API_TOKEN="$token" setpriv --reuid=incident-sync --regid=incident-sync --init-groups \
     incident-syncd once > "$work/once.log" 2>&1; then
  pass "once exited 0 as incident-sync"
else
  cat "$work/once.log"
  fail "once failed as incident-sync"
fi
grep -q "$token" "$work/once.log" && fail "the token appears in the log"
status=$(in_ctr setpriv --reuid=incident-sync --regid=incident-sync --init-groups incident-syncd status --json 2>&1 || true)
stored=$(python3 -c 'import json,sys; print(sum(p["incidents"] for p in json.load(sys.stdin)["pairs"]))' <<<"$status" 2>/dev/null || echo 0)
if [[ $stored -eq 1500 ]]; then pass "status sees all 1500 incidents"; else fail "status sees $stored incidents: $status"; fi

# ---------------------------------------------------------------- remove, purge
in_ctr sh -c "umask 077 && echo secret > /etc/incident-sync/token"
step "apt-get remove, then purge"
in_ctr sh -c "DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq incident-sync" > "$work/remove.log" 2>&1 ||
  { cat "$work/remove.log"; die "apt-get remove failed"; }
ctr_test "test ! -e /usr/bin/incident-syncd" && pass "remove: the binary is gone" || fail "remove left the binary"
ctr_test "test -f /etc/incident-sync/incident-sync.yaml" && pass "remove: the conffile stays" || fail "remove took the conffile"
in_ctr sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq incident-sync" > "$work/purge.log" 2>&1 ||
  { cat "$work/purge.log"; die "apt-get purge failed"; }
ctr_test "test ! -e /etc/incident-sync" && pass "purge: /etc/incident-sync is gone (token included)" ||
  fail "purge left /etc/incident-sync: $(in_ctr ls -la /etc/incident-sync)"
ctr_test "test -f /var/lib/incident-sync/incidents.db" && pass "purge: the database stays" || fail "purge took the database"
dpkg_state=$(in_ctr dpkg-query -W -f='${db:Status-Status}' incident-sync 2>/dev/null || echo not-installed)
[[ $dpkg_state == not-installed ]] && pass "dpkg: not installed" || fail "dpkg state: $dpkg_state"

print_retries
echo "deb_test: $failures failure(s)"
((failures == 0))
