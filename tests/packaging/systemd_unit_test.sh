#!/usr/bin/env bash
# Checks systemd/incident-syncd.service: `systemd-analyze verify` must be
# clean and `systemd-analyze security --offline=yes` must score <= 2.5.
# Usage: systemd_unit_test.sh SOURCE_DIR INCIDENT_SYNCD_BINARY
set -euo pipefail
src=$1
binary=$2
max_exposure=2.5

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed (scripts/install-deps.sh systemd)"; exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Verify the unit as shipped, except that ExecStart points at the binary just built.
sed "s|/usr/bin/incident-syncd|$binary|" "$src/systemd/incident-syncd.service" > "$work/incident-syncd.service"

verify_out=$(systemd-analyze verify "$work/incident-syncd.service" 2>&1 || true)
# Lines about the host's other units are not ours to judge.
ours=$(grep -F "incident-syncd.service" <<<"$verify_out" || true)
if [[ -n "$ours" ]]; then
  echo "systemd-analyze verify reported:"; echo "$ours"; exit 1
fi
echo "verify: clean"

security=$(systemd-analyze security --offline=yes "$work/incident-syncd.service" 2>&1)
score=$(grep -oE 'Overall exposure level for [^:]+: [0-9.]+' <<<"$security" | grep -oE '[0-9.]+$')
if [[ -z "$score" ]]; then
  echo "could not read the exposure score:"; echo "$security" | tail -5; exit 1
fi
echo "exposure: $score (limit $max_exposure)"
awk -v s="$score" -v m="$max_exposure" 'BEGIN { exit !(s <= m) }' || { echo "$security" | grep '✗'; exit 1; }

# The unit must keep the promises the README makes about it.
for key in Type=notify LoadCredential= User= Group= StateDirectory= ConfigurationDirectory= UMask=0027 \
           ProtectSystem=strict NoNewPrivileges=yes MemoryDenyWriteExecute=yes "SystemCallFilter=@system-service"; do
  grep -q "^$key" "$src/systemd/incident-syncd.service" || { echo "missing $key"; exit 1; }
done
echo "ok"
