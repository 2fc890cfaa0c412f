#!/usr/bin/env bash
# outbound.sh - the outbound guard's cost per authenticated message, on the
# embedded LMDB store (in a directory on this machine's disk) and on a
# private redis-server on loopback. One thread; see bench/outbound_bench.cc.
# usage: bench/outbound.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
[ -x build/bench_outbound ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null; cmake --build build -j"$(nproc)" --target bench_outbound; }
T=$(mktemp -d /var/tmp/spamgate-outbound.XXXXXX)
PORT=26399
cleanup() { redis-cli -p "$PORT" shutdown nosave > /dev/null 2>&1 || true; rm -rf "$T"; }
trap cleanup EXIT
echo "disk: $(df -T "$T" | awk 'NR==2 {print $2}') ($T)"
mkdir -p "$T/lmdb" "$T/redis"
build/bench_outbound "$T/lmdb" lmdb "" "$N"
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes > /dev/null
for _ in $(seq 1 100); do redis-cli -p "$PORT" ping 2> /dev/null | grep -q PONG && break; sleep 0.05; done
build/bench_outbound "$T/redis" redis "127.0.0.1:$PORT" "$N"
