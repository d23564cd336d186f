#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (what CI runs):
#   1. installs what is missing;
#   2. builds the debug preset and runs every CTest test (unit, integration,
#      packaging, docker);
#   3. builds the asan preset (AddressSanitizer + UBSan) and runs the unit and
#      integration tests again under it;
#   4. builds the libFuzzer targets with clang and runs each for a short time.
# Usage: scripts/test.sh [--quick]     --quick: step 2 only
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0
[[ ${1:-} == --quick ]] && quick=1

step() { printf '\n==== %s\n' "$*"; }

step "dependencies"
bash scripts/install-deps.sh systemd monitoring postgresql
step "debug build and the whole suite"
bash scripts/build.sh debug
ctest --preset debug -j2 --timeout 1800
((quick)) && exit 0

step "asan build and the unit, integration and PostgreSQL tests under AddressSanitizer + UBSan"
bash scripts/build.sh asan
ctest --preset asan -j2 --timeout 1800 -L 'unit|integration|postgresql'

if [[ -x scripts/fuzz.sh ]]; then
  step "fuzzing: each target for 20 s"
  bash scripts/fuzz.sh 20
fi
