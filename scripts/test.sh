#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, builds the debug preset, runs every CTest test.
# Usage: scripts/test.sh [ctest args...]   e.g. scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh systemd
bash scripts/build.sh debug
ctest --preset debug -j2 --timeout 600 "$@"
