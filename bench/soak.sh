#!/usr/bin/env bash
# soak.sh - the milter behind a private Postfix under load and faults, with a
# ledger: every message a client sent is delivered, refused with a reply
# (counted per code), or still queued; LOST = accepted - delivered - queued
# must be 0. Reports the milter's RSS at start, peak and end, and how many
# delivered messages carry no X-Spam-Technical-Details (went out unscanned).
#
# usage: bench/soak.sh [--messages N] [--clients C] [RUN...]
#   RUN: steady
#        usr1            SIGUSR1 every 0.5 s
#        files           rules and signatures rewritten on disk every second
#                        (a good rule, a broken rule, a new signature file, a
#                        broken one) with SIGUSR1 and the signature watch
#        kill-accept     SIGKILL every 5 s, restarted; milter_default_action accept
#        kill-tempfail   the same with milter_default_action tempfail
#        dns-dead        a DNS server that never answers
#        dns-slow        a DNS server that answers after 2 s (6 x C clients)
#        redis           Bayes and the outbound store in a private Redis,
#                        SIGKILLed every 3 s and restarted 1 s later; half
#                        the messages come from an authenticated customer
#        spool-full      the ClamAV spool on a full tmpfs; 1 message in 10
#                        is a 3 MB one (past max_scan_bytes: spooled)
#        memcap          the milter in a memory cgroup of MEMCAP_MB (160, a
#                        cap it presses against: it peaks at ~230 MB without)
#                        under a burst of 25 MB messages from 40 clients;
#                        restarted when the kernel kills it (as systemd would)
#        conn500         500 clients at once (Postfix allows 520 smtpd)
#   default: all of them. Messages from ../shared/corpus (or corpus/).
# Root (Postfix's master, tmpfs, cgroup). Traffic only on 127.0.0.1. Every
# wait is for readiness with a ceiling; the runs stop by themselves.
# Exit status 0 when LOST is 0 in every run.
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
ALL=(steady usr1 files kill-accept kill-tempfail dns-dead dns-slow redis spool-full memcap conn500)
[ ${#RUNS[@]} -gt 0 ] || RUNS=("${ALL[@]}")
for r in "${RUNS[@]}"; do
  [[ " ${ALL[*]} " == *" $r "* ]] || { echo "soak.sh: unknown run $r (one of: ${ALL[*]})" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "soak: needs root (Postfix, tmpfs, cgroup); skipped"; exit 77; }
BIN=${SPAMGATE_BIN:-build/spamgate}
[ -x "$BIN" ] || { echo "build first: cmake --build build"; exit 2; }
BIN=$(readlink -f "$BIN"); SRC=$(pwd); MILTER_BIN=$BIN
source tests/e2e/postfix_env.sh
source tests/e2e/e2e_lib.sh
OUTER=$(mktemp -d /tmp/spamgate-soak.XXXXXX); chmod 755 "$OUTER"; T=$OUTER
SMTP=24625; SINK=24626; MPORT=24627; DNS=24653; REDIS=24679
DNS_PID=""; MILTER_PID=""; REDIS_PID=""; CG=""
cleanup() {
  [ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2> /dev/null
  [ -n "$DNS_PID" ] && kill "$DNS_PID" 2> /dev/null
  [ -n "$REDIS_PID" ] && kill -9 "$REDIS_PID" 2> /dev/null
  [ -d "$OUTER/pf" ] && pf_stop "$OUTER/pf" 2> /dev/null
  mountpoint -q "$OUTER/spool" 2> /dev/null && umount "$OUTER/spool"
  [ -n "$CG" ] && [ -d "$CG" ] && rmdir "$CG" 2> /dev/null
  rm -rf "$OUTER"
}
trap cleanup EXIT
CORPUS=../shared/corpus; [ -d "$CORPUS" ] || CORPUS=corpus
find "$CORPUS" -type f -name '*.eml' -size +0 -size -2M | sort | head -n "$N" > "$OUTER/files.txt"
echo "soak: $(wc -l < "$OUTER/files.txt") messages from $CORPUS, $CLIENTS clients; machine: $(nproc) cores"
rss() { awk -v k="$1:" '$1 == k {print int($2 / 1024)}' "/proc/$MILTER_PID/status" 2> /dev/null || echo 0; }

big_message() { python3 bench/big_message.py "$@"; }  # big_message FILE MB

start_redis() {
  redis-server --port "$REDIS" --bind 127.0.0.1 --save "" --appendonly no --dir "$OUTER" > /dev/null 2>&1 &
  REDIS_PID=$!
  redis_up() { port_answers "$REDIS"; }
  wait_until redis_up
}

# The milter, restarted when it is gone (a SIGKILL of ours, or the kernel's
# OOM killer in the memcap run): what systemd's Restart=always does.
ensure_milter() {
  alive "$MILTER_PID" && return 0
  wait "$MILTER_PID" 2> /dev/null
  RESTARTS=$((RESTARTS + 1))
  start_milter > /dev/null
}

# One change on disk per call, in turn: a new rule, a broken rule (the reload
# is refused, the old rules keep serving), a new signature file, a broken
# signature file (refused by the engine build), back to the shipped files.
FILES_STEP=0
change_files() {
  case $((FILES_STEP % 5)) in
    0) printf 'body SOAK_RULE_%d /soak-test-phrase-%d/\nscore SOAK_RULE_%d 0.1\n' "$FILES_STEP" "$FILES_STEP" "$FILES_STEP" \
         >> "$T/local.cf" ;;
    1) printf 'body SOAK_BROKEN /unclosed(/\n' >> "$T/local.cf" ;;
    2) cp "$SRC/conf/local.cf" "$T/local.cf"
       printf 'SoakTest.Sig.%d:0:*:736f616b2d746573742d7369676e61747572652d%04x\n' "$FILES_STEP" "$FILES_STEP" \
         > "$T/signatures/soak.ndb" ;;
    3) printf 'this is not a signature line\n' > "$T/signatures/soak.ndb" ;;
    4) rm -f "$T/signatures/soak.ndb" ;;
  esac
  FILES_STEP=$((FILES_STEP + 1))
  kill -USR1 "$MILTER_PID" 2> /dev/null
}

run() {
  local name=$1 mode=accept dnsflag="" clients=$CLIENTS files=$OUTER/files.txt extra="" bayes_extra="" plimit=60
  RESTARTS=0
  case $name in
    kill-tempfail | memcap | spool-full) mode=tempfail ;;
  esac
  case $name in
    dns-dead) dnsflag=--silent ;;
    dns-slow) dnsflag="--delay 2"; clients=$((CLIENTS * 6)) ;;  # each message waits ~2 s: more in parallel
  esac
  mkdir -p "$OUTER/pf"; T="$OUTER/pf"
  mkdir -p "$T/signatures"; cp "$SRC"/conf/signatures/* "$T/signatures/"; cp "$SRC/conf/local.cf" "$T/local.cf"
  local spool=$T
  case $name in
    redis)
      start_redis || { echo "$name: redis-server did not start"; return 1; }
      bayes_extra="store = \"redis\"
redis = \"127.0.0.1:$REDIS\""
      extra="[outbound]
store = \"redis\"
hold_after_spam = 0
[outbound.user_limits]
messages_per_minute = 0
messages_per_hour = 0
messages_per_day = 0
recipients_per_minute = 0
recipients_per_hour = 0
recipients_per_day = 0" ;;
    spool-full)
      spool=$OUTER/spool; mkdir -p "$spool"
      mount -t tmpfs -o size=1m tmpfs "$spool" || { echo "$name: cannot mount a tmpfs (root?)"; return 1; }
      dd if=/dev/zero of="$spool/filler" bs=64k count=64 2> /dev/null  # fills it: writes fail with ENOSPC
      big_message "$OUTER/big3.eml" 3
      awk -v big="$OUTER/big3.eml" '{print} NR % 9 == 0 {print big}' "$OUTER/files.txt" > "$OUTER/files-spool.txt"
      files=$OUTER/files-spool.txt ;;
    memcap)
      CG=/sys/fs/cgroup/memory$(awk -F: '$2 == "memory" {print $3}' /proc/self/cgroup)/spamgate-soak
      [ -d /sys/fs/cgroup/memory ] || CG=/sys/fs/cgroup$(awk -F: '$1 == "0" {print $3}' /proc/self/cgroup)/spamgate-soak
      mkdir -p "$CG" || { echo "$name: cannot make a cgroup"; return 1; }
      local cap=$(( ${MEMCAP_MB:-160} * 1024 * 1024 ))
      if [ -f "$CG/memory.limit_in_bytes" ]; then
        echo "$cap" > "$CG/memory.limit_in_bytes"; echo "$cap" > "$CG/memory.memsw.limit_in_bytes" 2> /dev/null
      else
        echo "$cap" > "$CG/memory.max"; echo 0 > "$CG/memory.swap.max" 2> /dev/null
      fi
      # start_milter runs $BIN: a wrapper that joins the cgroup and execs the milter (same pid)
      printf '#!/bin/sh\necho $$ > %s/cgroup.procs\nexec %s "$@"\n' "$CG" "$MILTER_BIN" > "$OUTER/in-cgroup.sh"
      chmod 755 "$OUTER/in-cgroup.sh"; BIN=$OUTER/in-cgroup.sh
      big_message "$OUTER/big25.eml" 25
      for _ in $(seq 1 "${MEMCAP_MESSAGES:-120}"); do echo "$OUTER/big25.eml"; done > "$OUTER/files-big.txt"
      files=$OUTER/files-big.txt; clients=40; plimit=60 ;;
    conn500) clients=500; plimit=520 ;;
  esac
  python3 bench/nxdomain_dns.py $dnsflag "$DNS" > /dev/null 2>&1 & DNS_PID=$!
  cat > "$T/spamgate.toml" <<CF
rules_dir = "$SRC/rules"
local_rules = "$T/local.cf"
hostname = "mx1.gateway.example"
[dns]
nameserver = "127.0.0.1:$DNS"
[clamav]
own_signatures = "$T/signatures"
canary_dirs = ["$SRC/corpus/ham"]
spool_dir = "$spool"
temp_dir = "$T"
watch_seconds = 1
[bayes]
path = "$T/bayes"
$bayes_extra
[log]
target = "$T/spamgate.log"
[metrics]
listen = ""
[milter]
socket = "inet:$MPORT@127.0.0.1"
timeout = 600
$extra
CF
  start_milter || { BIN=$MILTER_BIN; return 1; }
  local start_rss; start_rss=$(rss VmRSS)
  # Every setting before the start: default_process_limit also sizes the
  # SMTP port's listen backlog, which a reload keeps (with 20, 500 clients
  # overflowed it and waited for a banner that never came).
  PF_MAIN_EXTRA="default_process_limit = $plimit
milter_default_action = $mode
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
milter_content_timeout = 600s
smtpd_timeout = 600s" pf_start "$T" "$SMTP" "$SINK" "inet:127.0.0.1:$MPORT"
  wait_until port_answers "$SMTP" || return 1
  local senders=()
  if [ "$name" = redis ]; then  # half inbound (Bayes), half from a customer's account (outbound store too)
    awk 'NR % 2 == 1' "$files" > "$OUTER/files-in.txt"; awk 'NR % 2 == 0' "$files" > "$OUTER/files-out.txt"
    python3 tests/e2e/smtp_send.py --port "$SMTP" --clients $((clients / 2)) --timeout 900 \
      --files-from "$OUTER/files-in.txt" --codes-out "$T/codes-in.txt" > /dev/null 2>&1 & senders+=($!)
    python3 tests/e2e/smtp_send.py --port "$SMTP" --clients $((clients / 2)) --timeout 900 --login alice@example.net \
      --files-from "$OUTER/files-out.txt" --codes-out "$T/codes-out.txt" > /dev/null 2>&1 & senders+=($!)
  else
    python3 tests/e2e/smtp_send.py --port "$SMTP" --clients "$clients" --timeout 900 --files-from "$files" \
      --codes-out "$T/codes-in.txt" > /dev/null 2>&1 & senders+=($!)
  fi
  local peak=0 kills=0 v tick=0 t0=$SECONDS conns=0
  sending() { local p; for p in "${senders[@]}"; do kill -0 "$p" 2> /dev/null && return 0; done; return 1; }
  while sending; do  # the fault of this run, until the clients are done
    v=$(rss VmHWM); [ "${v:-0}" -gt "$peak" ] && peak=$v
    case $name in
      usr1) kill -USR1 "$MILTER_PID"; sleep 0.5 ;;
      files) change_files; sleep 1 ;;
      kill-*) sleep 5; sending || break
              v=$(rss VmHWM); [ "${v:-0}" -gt "$peak" ] && peak=$v
              kill -9 "$MILTER_PID"; wait "$MILTER_PID" 2> /dev/null; kills=$((kills + 1))
              start_milter > /dev/null || break ;;
      redis) sleep 1; tick=$((tick + 1))
             if [ $((tick % 3)) -eq 0 ] && [ -n "$REDIS_PID" ]; then
               kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2> /dev/null; REDIS_PID=""; kills=$((kills + 1))
             elif [ -z "$REDIS_PID" ]; then start_redis; fi ;;
      memcap) ensure_milter; sleep 0.2 ;;
      conn500) v=$(ss -Htn state established "( sport = :$MPORT )" | wc -l)
               [ "$v" -gt "$conns" ] && conns=$v; sleep 0.2 ;;
      *) sleep 0.5 ;;
    esac
  done
  for v in "${senders[@]}"; do wait "$v"; done
  local secs=$((SECONDS - t0)); [ "$secs" -gt 0 ] || secs=1
  v=$(rss VmHWM); [ "${v:-0}" -gt "$peak" ] && peak=$v
  # Accepted mail leaves the queue (delivered) or stays (deferred): wait until
  # nothing moves, then count.
  queue_settled() { [ -z "$(find "$T/queue/incoming" "$T/queue/active" "$T/queue/maildrop" -type f 2> /dev/null | head -n 1)" ]; }
  wait_until queue_settled
  cat "$T"/codes-*.txt > "$T/codes.txt"
  local sent accepted delivered queued refused lost unscanned oom=""
  sent=$(wc -l < "$T/codes.txt")
  accepted=$(grep -c '^250$' "$T/codes.txt")
  grep -l '^X-Rcpt-Args: <user@example.net>' "$T"/sink/* 2> /dev/null > "$T/delivered.txt"
  delivered=$(wc -l < "$T/delivered.txt")
  queued=$(find "$T/queue/deferred" "$T/queue/hold" -type f 2> /dev/null | wc -l)
  refused=$(grep -v '^250$' "$T/codes.txt" | sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
  lost=$((accepted - delivered - queued))
  # unscanned: delivered, yet the milter logged no verdict for its Postfix queue id
  sed -nE 's/^.* info: ([0-9A-F]+): conn=.*/\1/p' "$T/spamgate.log" | sort -u > "$T/scanned-ids.txt"
  unscanned=$( (xargs -r sed -nE 's/^[[:space:]]+by mx\.test\.example \(Postfix\) with [A-Z]+ id ([0-9A-F]+).*/\1/p' \
                 < "$T/delivered.txt" 2> /dev/null || true) | sort -u | comm -23 - "$T/scanned-ids.txt" | wc -l)
  if [ "$name" = memcap ]; then
    local cgpeak
    cgpeak=$(cat "$CG/memory.max_usage_in_bytes" 2> /dev/null || cat "$CG/memory.peak" 2> /dev/null || echo 0)
    oom="  cgroup: cap ${MEMCAP_MB:-160} MB, peak $((cgpeak / 1048576)) MB, restarts after an OOM kill $RESTARTS"
  fi
  [ "$name" = files ] && oom="  changes $FILES_STEP, reloads $(log_count 'reload \(.*\): [0-9]+ rules'), refused $(log_count 'refused')"
  [ "$name" = conn500 ] && oom="  most milter connections at once $conns"
  [ "$name" = redis ] && oom="  redis kills $kills; breaker opened $(log_count 'calls in a row got no answer') times"
  printf '%-14s sent %5d  delivered %5d  refused %-26s queued %3d  LOST %d  kills %d  RSS MB start %d peak %d end %d  unscanned %d  %d s, %d msgs/s%s\n' \
    "$name" "$sent" "$delivered" "${refused:-none}" "$queued" "$lost" "$kills" "$start_rss" "$peak" "$(rss VmRSS)" \
    "$unscanned" "$secs" $((sent / secs)) "$oom"
  kill "$MILTER_PID" 2> /dev/null; wait "$MILTER_PID" 2> /dev/null; MILTER_PID=""
  kill "$DNS_PID" 2> /dev/null; wait "$DNS_PID" 2> /dev/null; DNS_PID=""
  [ -n "$REDIS_PID" ] && { kill -9 "$REDIS_PID"; wait "$REDIS_PID" 2> /dev/null; REDIS_PID=""; }
  pf_stop "$T"
  mountpoint -q "$OUTER/spool" && umount "$OUTER/spool"
  [ -n "$CG" ] && { rmdir "$CG" 2> /dev/null; CG=""; }
  BIN=$MILTER_BIN
  [ -n "${SOAK_KEEP:-}" ] && { rm -rf "$OUTER/kept-$name"; mv "$T" "$OUTER/kept-$name"; cp -r "$OUTER/kept-$name" "/tmp/soak-kept-$name"; }
  T=$OUTER; rm -rf "$T/pf"
  [ "$lost" -eq 0 ] && [ "$sent" -gt 0 ]
}

rc=0
for r in "${RUNS[@]}"; do run "$r" || { echo "$r: FAILED (LOST > 0, nothing sent, or a part did not start)"; rc=1; }; done
echo "soak: $([ $rc -eq 0 ] && echo 'LOST 0 in every run' || echo 'a run FAILED')"
exit $rc
