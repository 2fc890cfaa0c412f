#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets (clang, ASan+UBSan, SPAMGATE_FUZZ=ON
# in build-fuzz/) if needed and runs each for SECONDS, one at a time, one
# process each (no -jobs/-workers: the machine's cores are shared).
#
#   bash bench/fuzz.sh SECONDS [TARGET...]     e.g. bash bench/fuzz.sh 1800   (30 min each)
#                                                   bash bench/fuzz.sh 30     (CI: 30 s each)
#
# Each target starts from its seed corpus tests/fuzz/corpus/<target>/ (read
# only: new inputs go to build-fuzz/fuzz-work/<target>/corpus/) with its
# dictionary tests/fuzz/<target>.dict when there is one; -timeout=10
# -rss_limit_mb=2048 and a -max_len per target (SPAMGATE_FUZZ_TIMEOUT: another
# -timeout, e.g. for a busy CI machine). Prints per target: seconds,
# execs, exec/s, cov and ft (libFuzzer's final status line), new inputs and
# findings (crash/leak/timeout/oom files in build-fuzz/fuzz-work/<target>/).
# Exits 1 when any target found anything (its log: .../<target>/fuzz.log;
# replay: build-fuzz/<target> FILE), 2 on a usage or build error.
set -uo pipefail
cd "$(dirname "$0")/.."

secs=${1:-}
if [[ ! $secs =~ ^[0-9]+$ ]] || (( secs < 1 )); then
  echo "usage: bash bench/fuzz.sh SECONDS [TARGET...]" >&2
  exit 2
fi
shift

declare -A max_len=(
  [fuzz_message]=65536 [fuzz_rules]=8192 [fuzz_milter_session]=16384 [fuzz_milter_wire]=8192 [fuzz_config]=8192
  [fuzz_policy_files]=4096 [fuzz_arf]=32768 [fuzz_dns_answers]=8192 [fuzz_redis_replies]=4096
)
all=(fuzz_message fuzz_rules fuzz_milter_session fuzz_milter_wire fuzz_config fuzz_policy_files fuzz_arf fuzz_dns_answers
     fuzz_redis_replies)
targets=("$@")
(( ${#targets[@]} )) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  [[ -n ${max_len[$t]:-} ]] || { echo "fuzz.sh: unknown target $t (one of: ${all[*]})" >&2; exit 2; }
done

build=build-fuzz
if [[ ! -f $build/CMakeCache.txt ]]; then
  launcher=()
  command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  CC=clang CXX=clang++ cmake -S . -B $build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPAMGATE_FUZZ=ON \
    -DSPAMGATE_TESTS=OFF "${launcher[@]}" > /dev/null || exit 2
fi
cmake --build $build -j"$(nproc)" --target "${targets[@]}" > $build/fuzz-build.log 2>&1 || {
  tail -30 $build/fuzz-build.log >&2
  echo "fuzz.sh: build failed (log: $build/fuzz-build.log)" >&2
  exit 2
}

failed=0 npass=0 nfail=0
printf '%-20s %6s %12s %9s %7s %8s %6s  %s\n' target secs execs exec/s cov ft new findings
for t in "${targets[@]}"; do
  work=$build/fuzz-work/$t
  mkdir -p "$work/corpus" "tests/fuzz/corpus/$t"
  rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*
  dict=()
  [[ -f tests/fuzz/$t.dict ]] && dict=(-dict="tests/fuzz/$t.dict")
  start=$(date +%s)
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$build/$t" -max_total_time="$secs" -timeout="${SPAMGATE_FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len="${max_len[$t]}" \
    -print_final_stats=1 -artifact_prefix="$work/" "${dict[@]}" "$work/corpus" "tests/fuzz/corpus/$t" \
    > "$work/fuzz.log" 2>&1
  rc=$?
  took=$(( $(date +%s) - start ))
  status=$(grep -aE "^#[0-9]+" "$work/fuzz.log" | grep -a "cov:" | tail -1)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<< "$status")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<< "$status")
  execs=$(sed -nE 's/^stat::number_of_executed_units: +([0-9]+)/\1/p' "$work/fuzz.log" | tail -1)
  rate=$(sed -nE 's/^stat::average_exec_per_sec: +([0-9]+)/\1/p' "$work/fuzz.log" | tail -1)
  added=$(sed -nE 's/^stat::new_units_added: +([0-9]+)/\1/p' "$work/fuzz.log" | tail -1)
  found=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
            -printf '%f ' 2> /dev/null)
  if (( rc != 0 )) && [[ -z $found ]]; then found="exit $rc (see $work/fuzz.log)"; fi
  if [[ -n $found ]]; then failed=1; nfail=$((nfail + 1)); else npass=$((npass + 1)); fi
  printf '%-20s %6s %12s %9s %7s %8s %6s  %s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "${added:-?}" "${found:-none}"
done
echo "fuzz: $npass passed, $nfail failed"
if (( failed )); then
  echo "fuzz.sh: findings above; logs and inputs in $build/fuzz-work/<target>/" >&2
  exit 1
fi
exit 0
