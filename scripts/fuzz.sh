#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 (in build/fuzz, apart from the gcc
# builds) and runs each for a fixed time on a working copy of its seed corpus,
# plus every saved regression input. Exits 1 if any target crashed, leaked,
# hung or ran out of memory, and prints where the reproducer is.
#
# Usage: scripts/fuzz.sh [seconds-per-target]     (default 30; CI uses 20)
#        FUZZ_TARGETS="fuzz_config" scripts/fuzz.sh 600    one target, longer
#
# What a run finds stays in build/fuzz/fuzz/work/<target> and is reused by the
# next run; a crash input goes to build/fuzz/fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
  echo "fuzz.sh: seconds-per-target must be a positive integer, not '$seconds'" >&2
  exit 64
fi
read -r -a targets <<<"${FUZZ_TARGETS:-fuzz_page_parser fuzz_timestamp fuzz_retry_after fuzz_config fuzz_account_settings}"

bash scripts/install-deps.sh fuzz

build=build/fuzz
start=$SECONDS
# CC/CXX only count on the first configure; later runs reuse the cache.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DINCIDENT_SYNC_FUZZ=ON -DINCIDENT_SYNC_TESTS=OFF >/dev/null
cmake --build "$build" -j2 --target fuzzers
echo "fuzz.sh: built in $((SECONDS - start)) s"

# UBSan aborts on the first report (-fno-sanitize-recover); show where.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

failed=()
summary=()
for target in "${targets[@]}"; do
  bin=$build/fuzz/$target
  work=$build/fuzz/work/$target
  artifacts=$build/fuzz/artifacts/$target
  log=$build/fuzz/logs/$target.log
  if [[ ! -x $bin || ! -d fuzz/corpus/$target ]]; then
    echo "fuzz.sh: no fuzz target '$target' (known: fuzz_page_parser fuzz_timestamp fuzz_retry_after fuzz_config fuzz_account_settings)" >&2
    exit 64
  fi
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  # A copy of the seeds: libFuzzer adds what it finds to the first directory.
  for seed in fuzz/corpus/"$target"/*; do
    [[ -e $work/${seed##*/} ]] || cp "$seed" "$work/"
  done
  inputs=("$work")
  if [[ -d fuzz/regressions/$target ]]; then inputs+=("fuzz/regressions/$target"); fi
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
           -artifact_prefix="$artifacts/")
  if [[ -f fuzz/dict/$target.dict ]]; then options+=(-dict="fuzz/dict/$target.dict"); fi

  echo "fuzz.sh: $target for ${seconds}s (log: $log)"
  status=0
  "$bin" "${options[@]}" "${inputs[@]}" >"$log" 2>&1 || status=$?

  # A target that crashes on its first input prints neither line.
  execs_per_sec=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  if ((status == 0)); then
    summary+=("$(printf '%-18s ok      cov %-6s %s exec/s' "$target" "${cov:-?}" "${execs_per_sec:-?}")")
    continue
  fi
  failed+=("$target")
  summary+=("$(printf '%-18s FAILED  cov %-6s (exit %d)' "$target" "${cov:-?}" "$status")")
  echo "fuzz.sh: $target FAILED (exit $status); the end of its log:" >&2
  grep -v '^#[0-9]' "$log" | tail -40 >&2
  # libFuzzer names the file it saved (crash-, leak-, timeout- or oom-<sha1>).
  reproducers=$(sed -n 's/.*Test unit written to //p' "$log")
  for file in $reproducers; do
    echo "fuzz.sh: reproducer: $file" >&2
    echo "         replay:     $bin $file" >&2
    kept=""
    for regression in fuzz/regressions/"$target"/*; do
      if [[ -f $regression ]] && cmp -s "$regression" "$file"; then kept=$regression; fi
    done
    if [[ -n $kept ]]; then
      echo "         known:      the same bytes as $kept, which lib/ does not pass yet" >&2
    else
      echo "         keep it:    cp $file fuzz/regressions/$target/ (and add a case to tests/unit/fuzz/fuzz_regressions_test.cpp)" >&2
    fi
  done
  if [[ -z $reproducers ]]; then echo "fuzz.sh: no reproducer written; see $log" >&2; fi
done

echo
echo "fuzz.sh: ${seconds}s per target, $((SECONDS - start)) s in all"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
