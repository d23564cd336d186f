#!/usr/bin/env bash
# `cmake --install` puts the binary, the unit, the sysusers.d entry and the
# example config in their places under the prefix the build was configured
# with (the presets use /usr, which puts the config in /etc; a plain
# `cmake -B build` uses /usr/local and /usr/local/etc).
# Usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$1
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
prefix=$(cache CMAKE_INSTALL_PREFIX)
sysconfdir=$(cache CMAKE_INSTALL_SYSCONFDIR)
case $sysconfdir in
  /*) ;;
  *) # GNUInstallDirs: /usr's etc is /etc; any other prefix keeps it under the prefix.
     if [[ $prefix == /usr ]]; then sysconfdir=/etc; else sysconfdir=$prefix/$sysconfdir; fi ;;
esac
DESTDIR=$root cmake --install "$build" >/dev/null
status=0
for f in "$prefix/bin/incident-syncd" "$prefix/lib/systemd/system/incident-syncd.service" \
         "$prefix/lib/sysusers.d/incident-sync.conf" "$sysconfdir/incident-sync/incident-sync.yaml"; do
  if [[ -e $root$f ]]; then echo "ok: $f"; else echo "MISSING: $f"; status=1; fi
done
[[ -x $root$prefix/bin/incident-syncd ]] || { echo "the binary is not executable"; status=1; }
exit $status
