#!/usr/bin/env bash
# Formats the C++ sources with the committed .clang-format (clang-format 14,
# Debian's clang-format-14), or with --check lists the files that are not
# formatted and exits 1 (the `format` test runs that).
#
# Usage: scripts/format.sh [--check]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tool=$(command -v clang-format-14 || command -v clang-format || true)
if [[ -z $tool ]]; then
  echo "format.sh: clang-format-14 is missing (scripts/install-deps.sh installs it)" >&2
  # As the `format` test: skipped (77), not failed, in a build without the tool.
  [[ ${1:-} == --check ]] && exit 77
  exit 2
fi
mapfile -t files < <(find lib daemon tests bench fuzz -type f \( -name '*.cpp' -o -name '*.hpp' \) | sort)
if [[ ${1:-} == --check ]]; then
  bad=()
  for f in "${files[@]}"; do
    "$tool" --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
  done
  if ((${#bad[@]})); then
    printf 'not formatted (run scripts/format.sh): %s\n' "${bad[@]}"
    exit 1
  fi
  echo "format: ${#files[@]} files formatted as .clang-format says"
else
  "$tool" -i "${files[@]}"
fi
