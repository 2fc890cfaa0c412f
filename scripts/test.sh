#!/usr/bin/env bash
# Installs what is needed, builds spamgate with warnings as errors and runs
# every test twice: in the normal build and under ASan/UBSan, then each fuzz
# target for 30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPAMGATE_WERROR=ON > /dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSPAMGATE_WERROR=ON -DSPAMGATE_SANITIZE=ON > /dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
# Every fuzz target for a short while on its seed corpus (clang, ASan+UBSan,
# build-fuzz/): fails on any crash, leak, timeout or OOM. Longer runs:
# bash bench/fuzz.sh 1800 (bench/RESULTS.md).
SPAMGATE_FUZZ_TIMEOUT=${SPAMGATE_FUZZ_TIMEOUT:-30} bash bench/fuzz.sh "${SPAMGATE_FUZZ_SECONDS:-30}"
