#!/usr/bin/env bash
# The bash completion (contrib/bash-completion/incident-syncd) offers exactly
# the commands `incident-syncd --help` lists, and for each command exactly the
# flags its usage line shows; values complete for --log-level and --format.
# Usage: completion_test.sh SOURCE_DIR DAEMON
set -euo pipefail
src=$1 daemon=$2
# shellcheck source=../../contrib/bash-completion/incident-syncd
complete() { :; }  # the file's `complete -F` needs an interactive shell; the function is what is tested
source "$src/contrib/bash-completion/incident-syncd"
unset -f complete

offer() {  # words... -> the sorted completions for the last word
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _incident_syncd
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' '
}

help=$("$daemon" --help)
failures=0
check() {  # what, got, want
  if [[ $2 == "$3" ]]; then echo "PASS: $1"; else echo "FAIL: $1: got [$2], want [$3]"; failures=$((failures + 1)); fi
}

commands=$(sed -n 's/^  incident-syncd \([a-z][a-z-]*\) .*/\1/p' <<<"$help" | sort -u | tr '\n' ' ')
check "commands" "$(offer incident-syncd '' | tr ' ' '\n' | grep -v '^--' | grep -v '^$' | sort | tr '\n' ' ')" "$commands"
for cmd in $commands; do
  usage=$(grep "^  incident-syncd $cmd " <<<"$help")
  want=$(grep -o -- '--[a-z-]*' <<<"$usage" | sort -u | tr '\n' ' ')
  check "flags of $cmd" "$(offer incident-syncd "$cmd" '--')" "$want"
done
check "log levels" "$(offer incident-syncd run --log-level '')" "debug error info trace warn "
check "export formats" "$(offer incident-syncd export --format '')" "jsonl "
check "a command prefix" "$(offer incident-syncd che)" "check-config "
echo "completion: $failures failure(s)"
((failures == 0))
