#!/usr/bin/env bash
# Installs what is needed, builds spamgate and runs the main job on the
# default config: lint the config and rules, then score messages.
# usage: scripts/run.sh [FILE|DIR ...]   (default: the messages in corpus/)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build -j"$(nproc)"
build/spamgate lint --config conf/spamgate.toml
if [ "$#" -eq 0 ]; then set -- corpus; fi
build/spamgate scan --config conf/spamgate.toml "$@"
