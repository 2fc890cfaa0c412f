#!/usr/bin/env bash
# bench/clamav.sh - what in-process ClamAV costs.
#
# 1. The scanner (`spamgate bench`, one thread) over a mail directory with
#    ClamAV off, scanning decoded parts (default) and scanning raw mail:
#    messages/s, p50/p99 and peak RSS.
# 2. Engine load time (database load + compile + canary).
# 3. The milter's resident memory before, during and after a signature
#    reload (the new engine is built beside the old one: the peak is about
#    twice one engine).
# With our shipped database only, unless SIGDIRS names more directories,
# e.g. SIGDIRS=/var/lib/clamav when freshclam's official databases are
# installed (they need network, which this machine has not).
# usage: bench/clamav.sh [DIR ...]   (default: ../shared/corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -x build/spamgate ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null; cmake --build build -j"$(nproc)"; }
[ "$#" -eq 0 ] && set -- ../shared/corpus
T=$(mktemp -d /tmp/spamgate-avbench.XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill "$PID" 2> /dev/null; rm -rf "$T"' EXIT
mkdir -p "$T/sigs"
dirs=""
for d in ${SIGDIRS:-}; do dirs="$dirs\"$d\", "; done
dirs="$dirs\"$T/sigs\""

config() {  # $1 = enabled, $2 = scan mode, $3 = file
  sed -e "s|^rules_dir = .*|rules_dir = \"$ROOT/rules\"|" \
      -e "s|^local_rules = .*|local_rules = \"$ROOT/conf/local.cf\"|" \
      -e "s|^enabled = true|enabled = $1|" \
      -e "s|^own_signatures = .*|own_signatures = \"$ROOT/conf/signatures\"|" \
      -e "s|^signature_dirs = .*|signature_dirs = [$dirs]|" \
      -e "s|^policy_file = .*|policy_file = \"$ROOT/conf/signature-policy.conf\"|" \
      -e "s|^scan = .*|scan = \"$2\"|" \
      -e "s|^canary_dirs = .*|canary_dirs = [\"$ROOT/corpus/ham\"]|" \
      -e "s|^watch_seconds = .*|watch_seconds = 0|" \
      -e "s|^level = .*|level = \"debug\"|" \
      -e "s|^target = .*|target = \"$T/log\"|" \
      -e "s|^socket = .*|socket = \"unix:$T/milter.sock\"|" conf/spamgate.toml > "$3"
}
config false parts "$T/off.toml"
config true parts "$T/parts.toml"
config true raw "$T/raw.toml"

echo "== scanner, one thread: $*"
for mode in off parts raw; do
  printf '%-6s ' "$mode"
  build/spamgate bench --config "$T/$mode.toml" "$@" | tr '\n' ' '
  echo
done

sed 's|^temp_dir = .*|temp_dir = "/dev/shm"|' "$T/parts.toml" > "$T/parts-tmpfs.toml"
printf '%-6s ' "parts, libclamav temp_dir on tmpfs:"
build/spamgate bench --config "$T/parts-tmpfs.toml" "$@" | grep throughput

echo "== engine load (databases + compile + canary), spamgate lint"
build/spamgate lint --config "$T/parts.toml"

echo "== milter memory across a signature reload"
rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
build/spamgate milter --config "$T/parts.toml" &
PID=$!
for _ in $(seq 1 600); do grep -q "listening on" "$T/log" 2> /dev/null && break; sleep 0.1; done
echo "before reload: VmRSS $(rss VmRSS) kB, VmHWM $(rss VmHWM) kB"
cp conf/signatures/spamgate.ndb "$T/sigs/extra.ndb"  # a changed directory: a new engine is built
kill -USR1 "$PID"
for _ in $(seq 1 600); do grep -q "new signatures in use" "$T/log" && break; sleep 0.1; done
sleep 0.5
echo "after reload:  VmRSS $(rss VmRSS) kB, VmHWM $(rss VmHWM) kB (peak during the reload)"
grep -o "reload: new signatures in use: .*" "$T/log" | head -n 1
