#!/usr/bin/env bash
# soak.sh - the milter behind a private Postfix under load and faults, with a
# ledger: every message a client sent is delivered, refused with a reply
# (counted per code), or still queued; LOST = accepted - delivered - queued
# must be 0. Reports the milter's RSS at start, peak and end.
#
# usage: bench/soak.sh [--messages N] [--clients C] [RUN...]
#   RUN: steady | usr1 (SIGUSR1 every 0.5 s) | kill-accept | kill-tempfail
#        (SIGKILL every 5 s, restarted; Postfix's milter_default_action
#        accept / tempfail) | dns-dead (a DNS server that never answers)
#   default: all of them. Messages from ../shared/corpus (or corpus/).
# Root (Postfix's master). Traffic only on 127.0.0.1. Every wait is for
# readiness with a ceiling; the runs stop by themselves.
set -u
cd "$(dirname "$0")/.."
N=1000; CLIENTS=8; RUNS=()
while [ $# -gt 0 ]; do
  case $1 in
    --messages) N=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    *) RUNS+=("$1"); shift ;;
  esac
done
[ ${#RUNS[@]} -gt 0 ] || RUNS=(steady usr1 kill-accept kill-tempfail dns-dead)
[ -x build/spamgate ] || { echo "build first: cmake --build build"; exit 2; }
BIN=$(readlink -f build/spamgate); SRC=$(pwd)
source tests/e2e/postfix_env.sh
source tests/e2e/e2e_lib.sh
T=$(mktemp -d /tmp/spamgate-soak.XXXXXX); chmod 755 "$T"
SMTP=24625; SINK=24626; MPORT=24627; DNS=24653
DNS_PID=""; MILTER_PID=""
cleanup() {
  [ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2> /dev/null
  [ -n "$DNS_PID" ] && kill "$DNS_PID" 2> /dev/null
  pf_stop "$T/pf" 2> /dev/null
  rm -rf "$T"
}
trap cleanup EXIT
CORPUS=../shared/corpus; [ -d "$CORPUS" ] || CORPUS=corpus
find "$CORPUS" -type f -name '*.eml' -size +0 -size -2M | sort | head -n "$N" > "$T/files.txt"
echo "soak: $(wc -l < "$T/files.txt") messages from $CORPUS, $CLIENTS clients; machine: $(nproc) cores"
rss() { awk -v k="$1:" '$1 == k {print int($2 / 1024)}' "/proc/$MILTER_PID/status" 2> /dev/null || echo 0; }

run() {
  local name=$1 mode=accept dnsflag=""
  [ "$name" = kill-tempfail ] && mode=tempfail
  [ "$name" = dns-dead ] && dnsflag=--silent
  python3 bench/nxdomain_dns.py $dnsflag "$DNS" > /dev/null 2>&1 & DNS_PID=$!
  mkdir -p "$T/pf"; T="$T/pf"
  cat > "$T/spamgate.toml" <<CF
rules_dir = "$SRC/rules"
local_rules = "$SRC/conf/local.cf"
hostname = "mx1.gateway.example"
[dns]
nameserver = "127.0.0.1:$DNS"
[clamav]
own_signatures = "$SRC/conf/signatures"
canary_dirs = ["$SRC/corpus/ham"]
spool_dir = "$T"
[bayes]
path = "$T/bayes"
[log]
target = "$T/spamgate.log"
[metrics]
listen = ""
[milter]
socket = "inet:$MPORT@127.0.0.1"
CF
  start_milter || return 1
  local start_rss; start_rss=$(rss VmRSS)
  pf_start "$T" "$SMTP" "$SINK" "inet:127.0.0.1:$MPORT"
  postconf -c "$T/conf" -e "milter_default_action = $mode" "default_process_limit = 60"
  pf_reload "$T"
  wait_until port_answers "$SMTP" || return 1
  python3 tests/e2e/smtp_send.py --port "$SMTP" --clients "$CLIENTS" --timeout 600 --files-from "$OUTER/files.txt" \
    --codes-out "$T/codes.txt" > "$T/send.txt" 2> /dev/null &
  local sender=$! peak=0 kills=0 v
  while kill -0 "$sender" 2> /dev/null; do  # the fault of this run, until the clients are done
    case $name in
      usr1) kill -USR1 "$MILTER_PID"; sleep 0.5 ;;
      kill-*) sleep 5; kill -0 "$sender" 2> /dev/null || break
              v=$(rss VmHWM); [ "$v" -gt "$peak" ] && peak=$v
              kill -9 "$MILTER_PID"; wait "$MILTER_PID" 2> /dev/null; kills=$((kills + 1))
              start_milter > /dev/null || break ;;
      *) sleep 0.5 ;;
    esac
  done
  wait "$sender"
  v=$(rss VmHWM); [ "$v" -gt "$peak" ] && peak=$v
  # Accepted mail leaves the queue (delivered) or stays (deferred): wait until
  # nothing moves, then count.
  queue_settled() { [ -z "$(find "$T/queue/incoming" "$T/queue/active" "$T/queue/maildrop" -type f 2> /dev/null | head -n 1)" ]; }
  wait_until queue_settled
  local sent accepted delivered queued refused lost
  sent=$(wc -l < "$T/codes.txt")
  accepted=$(grep -c '^250$' "$T/codes.txt")
  delivered=$(grep -l '^X-Rcpt-Args: <user@example.net>' "$T"/sink/* 2> /dev/null | wc -l)
  queued=$(find "$T/queue/deferred" "$T/queue/hold" -type f 2> /dev/null | wc -l)
  refused=$(grep -v '^250$' "$T/codes.txt" | sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
  lost=$((accepted - delivered - queued))
  printf '%-14s sent %5d  delivered %5d  refused %-22s queued %3d  LOST %d  kills %d  RSS MB start %d peak %d end %d  unscanned %d\n' \
    "$name" "$sent" "$delivered" "${refused:-none}" "$queued" "$lost" "$kills" "$start_rss" "$peak" "$(rss VmRSS)" \
    "$(grep -L '^X-Spam-Technical-Details:' $(grep -l '^X-Rcpt-Args: <user@example.net>' "$T"/sink/* 2> /dev/null) 2> /dev/null | wc -l)"
  kill "$MILTER_PID"; wait "$MILTER_PID" 2> /dev/null; MILTER_PID=""
  kill "$DNS_PID" 2> /dev/null; DNS_PID=""
  pf_stop "$T"
  T=$OUTER; rm -rf "$T/pf"
  [ "$lost" -eq 0 ]
}

OUTER=$T; rc=0
for r in "${RUNS[@]}"; do run "$r" || rc=1; done
exit $rc
