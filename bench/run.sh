#!/usr/bin/env bash
# Scans a directory of messages with the default config on one thread and
# prints messages/s, MB/s, p50/p99 ms per message and peak RSS.
# usage: bench/run.sh [DIR ...]   (default: ../shared/corpus if present, else corpus/)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x build/spamgate ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
  cmake --build build -j"$(nproc)"
fi
if [ "$#" -eq 0 ]; then
  if [ -d ../shared/corpus ]; then set -- ../shared/corpus; else set -- corpus; fi
fi
build/spamgate bench --config conf/spamgate.toml "$@"
