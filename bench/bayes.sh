#!/usr/bin/env bash
# The classifier's costs on the corpus: learn rate (LMDB and Redis), store
# size after learning all of it, and scan rate with Bayes on versus off
# (the same rules, one thread, `spamgate bench`). Also runs `spamgate eval`
# with leave-one-source-out for the accuracy table.
# usage: bench/bayes.sh [CORPUS]   (default ../shared/corpus; needs redis-server)
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-../shared/corpus}
BIN=build/spamgate
[ -x "$BIN" ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null; cmake --build build -j"$(nproc)"; }
T=$(mktemp -d /tmp/spamgate-bayesbench.XXXXXX)
RPID=""
trap '[ -n "$RPID" ] && kill "$RPID" 2> /dev/null; rm -rf "$T"' EXIT
ROOT=$PWD
HAM="$C/ham/enron $C/ham/sa_easy_ham $C/ham/sa_hard_ham"
SPAM="$C/spam/bruceg $C/spam/honeypot $C/spam/paliouras $C/spam/sa_spam"

config() {  # $1 = file, $2 = extra [bayes] lines
  sed -e "s|^rules_dir = .*|rules_dir = \"$ROOT/rules\"|" -e "s|^local_rules = .*|local_rules = \"$ROOT/conf/local.cf\"|" \
      bench/corpus-eval.toml | sed "/^\[bayes\]/a $2" > "$1"
}
config "$T/lmdb.toml" "path = \"$T/lmdb\""
config "$T/off.toml" "enabled = false"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" > /dev/null & RPID=$!
config "$T/redis.toml" "store = \"redis\"\nredis = \"127.0.0.1:$PORT\""
for i in $(seq 50); do redis-cli -p "$PORT" ping > /dev/null 2>&1 && break; sleep 0.1; done

echo "== learn the whole corpus (ham and spam mixed, one command: Bayes and the logistic regression)"
for store in lmdb redis; do
  # shellcheck disable=SC2086
  "$BIN" learn --config "$T/$store.toml" --ham $HAM --spam $SPAM | sed -n 1,2p | sed "s/^/$store /" || true
done
"$BIN" learn --config "$T/lmdb.toml" --stats
echo "lmdb size on disk: $(du -sh "$T/lmdb" | cut -f1) (data.mdb $(du -h --apparent-size "$T/lmdb/data.mdb" | cut -f1) apparent)"
echo "redis used_memory: $(redis-cli -p "$PORT" info memory | grep '^used_memory_human' | cut -d: -f2 | tr -d '\r')"

echo "== scan, one thread, Bayes off / on (lmdb) / on (redis)"
for cfg in off lmdb redis; do
  echo "-- $cfg"
  # shellcheck disable=SC2086
  "$BIN" bench --config "$T/$cfg.toml" $HAM $SPAM 2>/dev/null | grep -E 'throughput|latency|peak RSS'
done

echo "== the same with the corpus twice (the in-memory copies are built during the first pass)"
for cfg in lmdb redis; do
  echo "-- $cfg x2"
  # shellcheck disable=SC2086
  "$BIN" bench --config "$T/$cfg.toml" $HAM $SPAM $HAM $SPAM 2>/dev/null | grep -E 'throughput|latency'
done

echo "== eval (10-fold, leave one source out)"
# shellcheck disable=SC2086
"$BIN" eval --config bench/corpus-eval.toml --ham $HAM --spam $SPAM --leave-one-source-out || true
