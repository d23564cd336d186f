#!/usr/bin/env bash
# `cmake --install` with prefix /usr puts the binary, the unit, the sysusers.d
# entry and the example config in their FHS places.
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
DESTDIR=$root cmake --install "$build" --prefix /usr >/dev/null
status=0
for f in usr/bin/incident-syncd usr/lib/systemd/system/incident-syncd.service \
         usr/lib/sysusers.d/incident-sync.conf etc/incident-sync/incident-sync.yaml; do
  if [[ -e $root/$f ]]; then echo "ok: /$f"; else echo "MISSING: /$f"; status=1; fi
done
[[ -x $root/usr/bin/incident-syncd ]] || { echo "the binary is not executable"; status=1; }
exit $status
