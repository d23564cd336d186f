#!/usr/bin/env bash
# The README's first Quick start command, run as a test: scripts/demo.sh must
# sync the simulator, show what landed, and make the second pass incremental.
# Usage: quickstart_test.sh SOURCE_DIR
set -euo pipefail
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$work/demo.out
DEMO_PRESET=debug DEMO_DIR=$work/demo bash "$src/scripts/demo.sh" 3000 3 > "$out" 2>&1 || { cat "$out"; exit 1; }

fail() { echo "FAIL: $1"; cat "$out"; exit 1; }
grep -q "done: .* 3000 incidents (3000 new" "$out" || fail "the first pass did not land 3000 new incidents"
grep -q "^-- incidents per pair and risk level" "$out" || fail "no per-pair summary"
grep -q "^-- the newest open high-risk incidents" "$out" || fail "no high-risk listing"
# The second pass re-reads only the overlap: nothing new, nothing changed.
second=$(grep "done: " "$out" | tail -1)
[[ $second == *"(0 new, 0 changed"* ]] || fail "second pass was not incremental: $second"
count=$(sqlite3 "$work/demo/incidents.db" "SELECT COUNT(*) FROM incidents")
[[ $count == 3000 ]] || fail "database holds $count incidents, expected 3000"
# The simulator it started is gone.
if pgrep -f "incident-sim .*$work/demo" >/dev/null; then fail "incident-sim still running"; fi
echo "ok: 3000 incidents, incremental second pass, simulator stopped"
