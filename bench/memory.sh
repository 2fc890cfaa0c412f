#!/usr/bin/env bash
# memory.sh - the memory watch's target: 100 parallel connections, each
# sending a 25 MB message (a base64 attachment), through a private Postfix
# with spamgate (default config: ClamAV on, Bayes on LMDB, outbound guard).
# Reports the milter's peak resident memory against [memory] warn_mb and
# what the memory watch logged. Needs root (Postfix) and scripts/deps.sh.
# usage: [RAMP_MS=2] bench/memory.sh [CONNECTIONS] [MB]   (clients start RAMP_MS apart)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
CONN=${1:-100}; MB=${2:-25}
[ -x build/spamgate ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null; cmake --build build -j"$(nproc)"; }
source tests/e2e/postfix_env.sh
T=$(mktemp -d /var/tmp/spamgate-mem.XXXXXX); chmod 755 "$T"
SMTP=24625; SINK=24626; DNS=24653
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2> /dev/null || true; done
  pf_stop "$T" 2> /dev/null || true
  [ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
python3 bench/big_message.py "$T/big.eml" "$MB"
for i in $(seq 1 "$CONN"); do echo "$T/big.eml"; done > "$T/files.txt"
python3 bench/nxdomain_dns.py "$DNS" & PIDS+=($!)
WARN_MB=1024
cat > "$T/sg.toml" <<CF
rules_dir = "$SRC/rules"
local_rules = ""
[dns]
nameserver = "127.0.0.1:$DNS"
[clamav]
own_signatures = "$SRC/conf/signatures"
canary_dirs = ["$SRC/corpus/ham"]
spool_dir = "$T"
[bayes]
path = "$T/bayes"
[log]
level = "debug"
target = "$T/spamgate.log"
[milter]
socket = "unix:$T/spamgate.sock"
timeout = 600
[memory]
log_seconds = 2
warn_mb = $WARN_MB
CF
build/spamgate milter --config "$T/sg.toml" & MPID=$!; PIDS+=($MPID)
for _ in $(seq 1 200); do [ -S "$T/spamgate.sock" ] && break; sleep 0.05; done
chmod 666 "$T/spamgate.sock"
# settings before the start (the process limit sizes the listen backlog)
PF_MAIN_EXTRA="default_process_limit = 120
milter_content_timeout = 600s
smtpd_timeout = 600s
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0" PF_SINK_DUMP=0 pf_start "$T" "$SMTP" "$SINK" "unix:$T/spamgate.sock"
for _ in $(seq 1 100); do (exec 3<> /dev/tcp/127.0.0.1/$SMTP) 2> /dev/null && break; sleep 0.05; done
echo "load: $CONN parallel connections x $(du -m "$T/big.eml" | cut -f1) MB message; machine: $(nproc) cores"
start=$(date +%s)
python3 tests/e2e/smtp_send.py --port "$SMTP" --clients "$CONN" --timeout 900 --ramp-ms "${RAMP_MS:-2}" --files-from "$T/files.txt" > "$T/send.txt" 2> "$T/send.err" || true
secs=$(( $(date +%s) - start ))
peak=$(awk '/VmHWM/ {print $2}' "/proc/$MPID/status")
echo "sent: $(cat "$T/send.txt") in ${secs} s"
echo "scanned: $(grep -c ' scan=partial' "$T/spamgate.log") messages logged as partly scanned (past max_scan_bytes)"
echo "milter peak RSS: $((peak / 1024)) MB (warn_mb $WARN_MB): $([ $((peak / 1024)) -lt $WARN_MB ] && echo under || echo OVER) the mark"
echo "memory watch, largest figure it logged:"
grep "memory: resident" "$T/spamgate.log" | sort -t' ' -k6 -n | awk '{ if ($6+0 > m) { m = $6+0; l = $0 } } END { print "  " l }'
echo "warnings: $(grep -c 'above \[memory\] warn_mb' "$T/spamgate.log")"
