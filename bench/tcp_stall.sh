#!/usr/bin/env bash
# tcp_stall.sh - does the milter dialogue over TCP loopback wait on delayed
# ACKs? One SMTP client sends N messages one after another through a private
# Postfix whose milter is spamgate on inet:PORT@127.0.0.1, with strace timing
# every read the milter makes on its MTA sockets. Reports, per binary, the
# SMTP latency per message (p50/max) and the gaps between consecutive reads
# of one milter connection: Postfix writes a macro packet and then its
# command as two small writes, and when the milter's kernel delays its ACK,
# the second write waits under Nagle (~40 ms). Needs root, strace and the
# packages of scripts/deps.sh.
# usage: bench/tcp_stall.sh [--messages N] BIN [BIN...]   (default: build/spamgate)
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
N=20
[ "${1:-}" = --messages ] && { N=$2; shift 2; }
BINS=("$@")
[ ${#BINS[@]} -gt 0 ] || BINS=(build/spamgate)
command -v strace > /dev/null || { echo "tcp_stall: needs strace (apt-get install strace)"; exit 1; }
source tests/e2e/postfix_env.sh

T=$(mktemp -d /tmp/spamgate-stall.XXXXXX); chmod 755 "$T"
SMTP=24625; SINK=24626; SG=24627; DNS=24653
PIDS=()
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2> /dev/null || true; done
  pf_stop "$T/pf" 2> /dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

find ../shared/corpus corpus -type f -name '*.eml' -size -20k 2> /dev/null | sort | head -n "$N" > "$T/files.txt" || true  # (head closes the pipe)
python3 bench/nxdomain_dns.py "$DNS" & PIDS+=($!)
cat > "$T/sg.toml" <<CF
rules_dir = "$SRC/rules"
local_rules = ""
[dns]
nameserver = "127.0.0.1:$DNS"
[bayes]
path = "$T/bayes"
[log]
target = "$T/spamgate.log"
[milter]
socket = "inet:$SG@127.0.0.1"
CF

for bin in "${BINS[@]}"; do
  "$bin" milter --config "$T/sg.toml" & mp=$!; PIDS+=($mp)
  for _ in $(seq 1 1200); do (exec 3<> /dev/tcp/127.0.0.1/$SG) 2> /dev/null && break; sleep 0.1; done
  rm -rf "$T/pf"; mkdir -p "$T/pf"
  PF_SINK_DUMP=0 pf_start "$T/pf" "$SMTP" "$SINK" "inet:127.0.0.1:$SG"
  for _ in $(seq 1 100); do (exec 3<> /dev/tcp/127.0.0.1/$SMTP) 2> /dev/null && break; sleep 0.05; done
  python3 tests/e2e/smtp_send.py --port "$SMTP" --clients 1 --files-from "$T/files.txt" > /dev/null 2>&1 || true  # warm-up
  strace -f -tt -e trace=read,recvfrom -o "$T/strace.txt" -p "$mp" 2> /dev/null & st=$!
  sleep 1
  python3 tests/e2e/smtp_send.py --port "$SMTP" --clients 1 --files-from "$T/files.txt" --latency-out "$T/lat.txt" > /dev/null 2>&1 || true
  sleep 0.5; kill "$st"; wait "$st" 2> /dev/null || true
  pf_stop "$T/pf"
  kill "$mp"; wait "$mp" 2> /dev/null || true
  python3 - "$bin" "$T/strace.txt" "$T/lat.txt" <<'PY'
import re, sys, collections
name, trace, lat = sys.argv[1:4]
l = sorted(float(x) for x in open(lat) if x.strip())
# "PID HH:MM:SS.micro read(FD, ..." and recvfrom: the reads of each socket fd, in order
reads = collections.defaultdict(list)
for line in open(trace):
    m = re.match(r"(\d+)\s+(\d+):(\d+):(\d+\.\d+) (?:read|recvfrom)\((\d+),.*= (\d+)$", line.strip())
    if not m or int(m.group(6)) <= 0:
        continue
    t = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
    reads[int(m.group(5))].append(t)
gaps = sorted((b - a) * 1000 for ts in reads.values() for a, b in zip(ts, ts[1:]))
stalls = sum(1 for g in gaps if 30 <= g <= 60)
print("%s: %d messages, SMTP latency p50 %.1f ms max %.1f ms; %d reads on MTA sockets, gaps between reads of "
      "one socket: p50 %.2f ms, p90 %.2f ms, max %.1f ms; %d gaps of 30-60 ms (delayed-ACK stalls)"
      % (name, len(l), l[len(l) // 2] if l else 0, l[-1] if l else 0, sum(len(v) for v in reads.values()),
         gaps[len(gaps) // 2] if gaps else 0, gaps[int(len(gaps) * 0.9)] if gaps else 0, gaps[-1] if gaps else 0,
         stalls))
PY
done
