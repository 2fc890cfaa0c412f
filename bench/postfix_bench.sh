#!/usr/bin/env bash
# postfix_bench.sh - push messages through a private Postfix (loopback only)
# with no milter, with spamgate, and optionally with Rspamd's milter, at a given
# concurrency; report messages/s, p50/p99 SMTP latency per message and the
# milter's peak RSS, side by side. Needs root (Postfix's master) and the packages
# of scripts/deps.sh (plus rspamd for --rspamd).
#
# usage: bench/postfix_bench.sh [--messages N] [--clients C] [--per-connection K]
#                               [--rspamd] [--milter SOCKET NAME] [--compare BIN NAME]
#                               [--compare-toml TOML NAME] [DIR ...]
#                               [--transport unix|inet] [--clamav] [--login USER]
#                               [--dns nxdomain|silent] [--dns-extra TOML] [--redis up|hung] [--direct]
#   --transport: how Postfix reaches spamgate and Rspamd (default unix: over
#   TCP loopback, Postfix's small unanswered macro packets wait for delayed
#   ACKs, ~40 ms each; see bench/RESULTS.md).
#   --dns silent: spamgate's DNS server reads every query and never answers
#   (a dead server; default nxdomain: every name NXDOMAIN at once).
#   --dns-extra TOML: more [dns] lines for spamgate, e.g. "breaker_failures = 0".
#   --redis up|hung: Bayes on a private redis-server (port 24529); "hung"
#   stops it (SIGSTOP) after the warm-up, so the timed run meets a Redis
#   that accepts connections and never replies.
#   --direct: no XCLIENT: Postfix sees the clients' own loopback address (an
#   inbound client all the same, spamgate trusts no network by default) and
#   keeps one milter connection per SMTP session. With XCLIENT (the default,
#   so the checks see an internet client) smtpd reconnects its milters after
#   XCLIENT: two milter connections per message, which real clients never cost.
#   --login: every client authenticates (XCLIENT LOGIN=USER): outbound mail,
#   through the outbound guard (rate windows, tag, Message-ID map) with no
#   limit and no hold, so its per-message store cost is what is measured.
#   --compare BIN NAME: also run the spamgate binary BIN (another build, e.g.
#   the one before a change) in the same run, reported as NAME.
#   --compare-toml TOML NAME: also run this build with TOML appended to its
#   config (e.g. $'[history]\nenabled = false'), reported as NAME.
#   DIR defaults to ../shared/corpus (else corpus/). --milter adds any other
#   milter already listening on SOCKET (e.g. inet:127.0.0.1:11332) under NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
N=0; CLIENTS=8; PER=1; RSPAMD=0; TRANSPORT=unix; EXTRA_SOCK=""; EXTRA_NAME=""; COMPARE_BIN=""; COMPARE_NAME=""; DIRS=(); LOGIN=""; DNSMODE=nxdomain
DNSEXTRA=""; REDIS=""; ADDR=192.0.2.10
while [ $# -gt 0 ]; do
  case $1 in
    --messages) N=$2; shift 2 ;;
    --clients) CLIENTS=$2; shift 2 ;;
    --per-connection) PER=$2; shift 2 ;;
    --rspamd) RSPAMD=1; shift ;;
    --clamav) CLAMAV=1; shift ;;
    --login) LOGIN=$2; shift 2 ;;
    --direct) ADDR=direct; shift ;;
    --dns) DNSMODE=$2; shift 2 ;;
    --dns-extra) DNSEXTRA=$2; shift 2 ;;
    --redis) REDIS=$2; shift 2 ;;
    --transport) TRANSPORT=$2; shift 2 ;;
    --milter) EXTRA_SOCK=$2; EXTRA_NAME=$3; shift 3 ;;
    --compare) COMPARE_BIN=$2; COMPARE_NAME=$3; shift 3 ;;
    --compare-toml) COMPARE_TOML=$2; COMPARE_TOML_NAME=$3; shift 3 ;;
    *) DIRS+=("$1"); shift ;;
  esac
done
if [ ${#DIRS[@]} -eq 0 ]; then
  if [ -d ../shared/corpus ]; then DIRS=(../shared/corpus); else DIRS=(corpus); fi
fi
[ -x build/spamgate ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null; cmake --build build -j"$(nproc)"; }
source tests/e2e/postfix_env.sh

T=$(mktemp -d /tmp/spamgate-bench.XXXXXX); chmod 755 "$T"
SMTP=24525; SINK=24526; SG=24527; RS=24528; DNS=24553
PIDS=()
cleanup() {
  [ -n "${REDIS_PID:-}" ] && kill -CONT "$REDIS_PID" 2> /dev/null || true
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2> /dev/null || true; done
  pkill -f "rspamd.*$T" 2> /dev/null || true
  pf_stop "$T" 2> /dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT

find "${DIRS[@]}" -type f -size +0 | sort > "$T/all.txt"
if [ "$N" -gt 0 ]; then head -n "$N" "$T/all.txt" > "$T/files.txt"; else cp "$T/all.txt" "$T/files.txt"; fi
COUNT=$(wc -l < "$T/files.txt")
MB=$(xargs -d '\n' -a "$T/files.txt" stat -c %s | awk '{s += $1} END {printf "%.1f", s / 1e6}')
echo "messages: $COUNT ($MB MB) from ${DIRS[*]}; $CLIENTS parallel clients, $PER message(s) per connection"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"

cpu_ticks() {  # user+system CPU ticks of the processes matching $1 (threads included)
  local t=0 v
  for p in $(pgrep -f "$1"); do
    v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2> /dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}

ctx_switches() {  # context switches (voluntary + involuntary) of the processes matching $1, every thread
  local t=0 p f
  for p in $(pgrep -f "$1"); do
    for f in /proc/$p/task/*/status; do
      t=$((t + $(awk '/ctxt_switches/ {s += $2} END {print s + 0}' "$f" 2> /dev/null || echo 0)))
    done
  done
  echo "$t"
}

peak_rss_kb() {  # peak RSS (VmHWM) of the processes matching $1, the largest one
  local m=0 v
  for p in $(pgrep -f "$1"); do
    v=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2> /dev/null || echo 0)
    [ "${v:-0}" -gt "$m" ] && m=$v
  done
  echo "$m"
}

run() {  # NAME SOCKET PROCESS_PATTERN
  local name=$1 sock=$2 pat=$3
  rm -rf "$T/pf"; mkdir -p "$T/pf"
  PF_SINK_DUMP=0 pf_start "$T/pf" "$SMTP" "$SINK" "$sock"
  for _ in $(seq 1 100); do (exec 3<> /dev/tcp/127.0.0.1/$SMTP) 2> /dev/null && break; sleep 0.05; done
  head -n 100 "$T/files.txt" > "$T/warm.txt"
  python3 tests/e2e/smtp_send.py --port "$SMTP" --addr "$ADDR" --clients "$CLIENTS" --login "$LOGIN" --files-from "$T/warm.txt" > /dev/null 2>&1 || true
  if [ "$REDIS" = hung ] && [ -n "$pat" ] && [ -n "${REDIS_PID:-}" ]; then kill -STOP "$REDIS_PID"; fi
  local cpu0=0 cpu1=0 cs0=0 cs1=0
  [ -n "$pat" ] && cpu0=$(cpu_ticks "$pat") && cs0=$(ctx_switches "$pat")
  python3 tests/e2e/smtp_send.py --port "$SMTP" --addr "$ADDR" --clients "$CLIENTS" --per-connection "$PER" --login "$LOGIN" \
    --files-from "$T/files.txt" --latency-out "$T/lat.txt" > "$T/send.txt" 2> "$T/send.err" || true
  local rss=0
  [ -n "$pat" ] && rss=$(peak_rss_kb "$pat") && cpu1=$(cpu_ticks "$pat") && cs1=$(ctx_switches "$pat")
  python3 - "$name" "$T/send.txt" "$T/lat.txt" "$rss" "$((cpu1 - cpu0))" "$(getconf CLK_TCK)" "$((cs1 - cs0))" >> "$T/results.txt" <<'PY'
import sys
name, send, lat, rss = sys.argv[1], open(sys.argv[2]).read().split(), sys.argv[3], int(sys.argv[4])
ticks, hz, switches = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
sent, failed, secs = int(send[1]), int(send[3]), float(send[5])
l = sorted(float(x) for x in open(lat) if x.strip())
p = lambda q: l[min(len(l) - 1, int(q * len(l)))] if l else 0.0
cpu = 1000.0 * ticks / hz / sent if sent else 0.0
print("%s %d %d %.3f %.1f %.1f %.1f %.2f %.1f" % (name.replace(" ", "_"), sent, failed, sent / secs if secs else 0, p(0.5),
                                                p(0.99), rss / 1024, cpu, switches / sent if sent else 0.0))
PY
  pf_stop "$T/pf"
}

: > "$T/results.txt"
run "postfix-only" "" ""

# Every DNS question (spamgate's SPF, Rspamd's checks) goes to a loopback
# server that answers NXDOMAIN at once: no query leaves the machine.
# (--dns silent: one that never answers.)
python3 bench/nxdomain_dns.py $( [ "$DNSMODE" = silent ] && echo --silent) "$DNS" & PIDS+=($!)
cat > "$T/sg.toml" <<CF
rules_dir = "$SRC/rules"
local_rules = ""
[dns]
nameserver = "127.0.0.1:$DNS"
$DNSEXTRA
[bayes]
path = "$T/bayes"
[log]
level = "info"
target = "$T/spamgate.log"
[milter]
socket = "$( [ "$TRANSPORT" = unix ] && echo "unix:$T/spamgate.sock" || echo "inet:$SG@127.0.0.1")"
[outbound]
hold_after_spam = 0
overrides_file = "$T/limits.conf"
CF
echo "${LOGIN:-nobody@example.org} unlimited" > "$T/limits.conf"
echo "domain:${LOGIN#*@} unlimited" >> "$T/limits.conf"
if [ -n "$REDIS" ]; then  # --redis: Bayes (and the outbound state) on a private redis-server
  redis-server --port 24529 --bind 127.0.0.1 --save "" --appendonly no --dir "$T" > /dev/null 2>&1 & REDIS_PID=$!
  PIDS+=($REDIS_PID)
  for _ in $(seq 1 1200); do (exec 3<> /dev/tcp/127.0.0.1/24529) 2> /dev/null && break; sleep 0.1; done
  printf '[bayes]\nstore = "redis"\nredis = "127.0.0.1:24529"\n' > "$T/bayes-redis.toml"
  sed -i -e '/^\[bayes\]$/,/^path = /d' "$T/sg.toml"
  cat "$T/bayes-redis.toml" >> "$T/sg.toml"
fi
if [ -n "${CLAMAV:-}" ]; then  # --clamav: our signatures, default [clamav] settings
  cat >> "$T/sg.toml" <<CF
[clamav]
own_signatures = "$SRC/conf/signatures"
canary_dirs = ["$SRC/corpus/ham"]
CF
fi
spamgate_run() {  # BIN LABEL [CONFIG]: start that spamgate build, run the messages through it, stop it
  local bin=$1 label=$2 cfg=${3:-$T/sg.toml}
  rm -f "$T/spamgate.log"
  "$bin" milter --config "$cfg" & PIDS+=($!)
  # Until it listens (at most 120 s: rules compile slowly on a busy machine);
  # a fixed short sleep let Postfix find no milter and accept unscanned.
  for _ in $(seq 1 1200); do
    if [ "$TRANSPORT" = unix ]; then [ -S "$T/spamgate.sock" ] && break; else (exec 3<> /dev/tcp/127.0.0.1/$SG) 2> /dev/null && break; fi
    sleep 0.1
  done
  chmod 666 "$T/spamgate.sock" 2> /dev/null || true
  if [ "$TRANSPORT" = unix ]; then SGSOCK="unix:$T/spamgate.sock"; else SGSOCK="inet:127.0.0.1:$SG"; fi
  run "$label ($TRANSPORT)" "$SGSOCK" "$bin milter --config $cfg"
  kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2> /dev/null || true
  # What the milter did: messages it gave a verdict (warm-up included), and its
  # warnings (a dead DNS server: the breaker's lines).
  echo "$label: $(grep -c ' action=' "$T/spamgate.log" || true) verdict lines (warm-up included)"
  [ -n "${SPAMGATE_BENCH_LOG:-}" ] && cp "$T/spamgate.log" "$SPAMGATE_BENCH_LOG"  # to read it afterwards
  grep -E 'warning|error' "$T/spamgate.log" | sed 's/^/  /' | sort | uniq -c | sort -rn | head -5 || true
  rm -f "$T/spamgate.sock"
}
# --compare BIN NAME: another build (e.g. the one before a change) first, in
# the same run, so both meet the same machine load.
[ -n "$COMPARE_BIN" ] && spamgate_run "$COMPARE_BIN" "$COMPARE_NAME"
if [ -n "${COMPARE_TOML:-}" ]; then
  { cat "$T/sg.toml"; printf '%s\n' "$COMPARE_TOML"; } > "$T/sg-compare.toml"
  spamgate_run "${SPAMGATE_BIN:-build/spamgate}" "$COMPARE_TOML_NAME" "$T/sg-compare.toml"
fi
spamgate_run "${SPAMGATE_BIN:-build/spamgate}" spamgate

# The scan alone, on the same messages with the same config and DNS server
# and envelope (`spamgate bench --network --client-ip ...`, one thread): its
# CPU per message is what the
# milter's CPU per message above is to be compared with. Start-up (rules,
# signatures) is taken out by timing one message first.
python3 - "${SPAMGATE_BIN:-build/spamgate}" "$T/sg.toml" "$T/files.txt" "$ADDR" <<'PY'
import resource, subprocess, sys
binary, cfg, listing, addr = sys.argv[1:5]
files = [l.rstrip("\n") for l in open(listing) if l.strip()]
def cpu(paths):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the envelope smtp_send.py gives every message (XCLIENT ADDR, EHLO, MAIL FROM, RCPT TO)
    who = ["--client-ip", "127.0.0.1" if addr == "direct" else addr, "--helo", "client.test.example", "--mail-from", "sender@outside.example",
           "--rcpt", "user@example.net"]
    subprocess.run([binary, "bench", "--network", "--config", cfg] + who + paths, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
one, every = cpu(files[:1]), cpu(files)
print("scan alone (spamgate bench --network, same messages and config): %.2f ms CPU per message"
      % (1000.0 * (every - one) / max(1, len(files) - 1)))
PY

if [ -n "$EXTRA_SOCK" ]; then run "$EXTRA_NAME" "$EXTRA_SOCK" ""; fi

if [ "$RSPAMD" = 1 ]; then
  command -v rspamd > /dev/null || { echo "rspamd is not installed (apt-get install rspamd)"; exit 1; }
  R="$T/rspamd"; mkdir -p "$R/local.d" "$R/db" "$R/run" "$R/log"; chown -R _rspamd "$R" 2> /dev/null || true
  if [ "$TRANSPORT" = unix ]; then RSBIND="$R/run/proxy.sock mode=0666"; RSSOCK="unix:$R/run/proxy.sock";
  else RSBIND="127.0.0.1:$RS"; RSSOCK="inet:127.0.0.1:$RS"; fi
  cat > "$R/local.d/worker-proxy.inc" <<CF
bind_socket = "$RSBIND";
milter = yes;
timeout = 120s;
upstream "local" { default = yes; self_scan = yes; }
count = 2;
CF
  echo 'enabled = false;' > "$R/local.d/worker-normal.inc"
  echo 'bind_socket = "127.0.0.1:24534";' > "$R/local.d/worker-controller.inc"
  echo 'enabled = false;' > "$R/local.d/worker-fuzzy.inc"
  echo "dns { nameserver = [\"127.0.0.1:$DNS\"]; timeout = 1s; retransmits = 1; }" > "$R/local.d/options.inc"
  echo 'type = "file"; filename = "'"$R"'/log/rspamd.log"; level = "error";' > "$R/local.d/logging.inc"
  rspamd -f -u _rspamd -g _rspamd -c /etc/rspamd/rspamd.conf --var "LOCAL_CONFDIR=$R" --var "DBDIR=$R/db" \
    --var "RUNDIR=$R/run" --var "LOGDIR=$R/log" > "$R/stdout.log" 2>&1 & PIDS+=($!)
  for _ in $(seq 1 600); do
    if [ "$TRANSPORT" = unix ]; then [ -S "$R/run/proxy.sock" ] && break; else (exec 3<> /dev/tcp/127.0.0.1/$RS) 2> /dev/null && break; fi
    sleep 0.5
  done
  sleep 5  # let it finish compiling its rules
  run "rspamd-3.4 ($TRANSPORT)" "$RSSOCK" "rspamd"
fi

python3 - "$T/results.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
base = float(rows[0][3]) if rows and float(rows[0][3]) else 0
base_p99 = float(rows[0][5]) if rows else 0
print("\n| milter | sent | failed | messages/s | vs no milter | p50 ms | p99 ms | added p99 ms | milter peak RSS MB | milter CPU ms/msg | milter context switches/msg |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, sent, failed, rate, p50, p99, rss, cpu, cs in rows:
    name = name.replace("_", " ")
    rel = "%.0f%%" % (100 * float(rate) / base) if base else "-"
    add = "%.1f" % (float(p99) - base_p99)
    none = name == "postfix-only"
    print("| %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s |" % (name, sent, failed, float(rate), rel, p50, p99, add,
                                                                  "-" if none else rss, "-" if none else cpu,
                                                                  "-" if none else cs))
PY
