#!/usr/bin/env bash
# miltertest_e2e.sh - spamgate's milter protocol against miltertest (the
# OpenDKIM project's MTA side of the protocol, scripted in Lua:
# tests/e2e/miltertest/spamgate.lua), so interoperability is proven beyond
# Postfix. DNS goes to a loopback server that answers NXDOMAIN.
# usage: miltertest_e2e.sh BUILD/spamgate SOURCE_DIR
set -u
BIN=$(readlink -f "$1")
SRC=$(readlink -f "$2")
HERE="$SRC/tests/e2e"
source "$HERE/e2e_lib.sh"
command -v miltertest > /dev/null || { echo "miltertest_e2e: miltertest is not installed; skipped"; exit 77; }

T=$(mktemp -d /tmp/spamgate-mt.XXXXXX)
BASE=$((24000 + ($$ % 300) * 4))
MPORT=$BASE; DNSPORT=$((BASE + 1))
MILTER_PID=""; DNS_PID=""
cleanup() {
  [ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2> /dev/null
  [ -n "$DNS_PID" ] && kill "$DNS_PID" 2> /dev/null
  [ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

python3 "$SRC/bench/nxdomain_dns.py" "$DNSPORT" & DNS_PID=$!
echo "mt@example.com messages_per_hour=1" > "$T/limits.conf"
cat > "$T/spamgate.toml" <<CF
rules_dir = "$SRC/rules"
local_rules = ""
hostname = "mx1.gateway.example"
[dns]
nameserver = "127.0.0.1:$DNSPORT"
[clamav]
own_signatures = "$SRC/conf/signatures"
canary_dirs = ["$SRC/corpus/ham"]
spool_dir = "$T"
[bayes]
path = "$T/bayes"
[log]
level = "info"
target = "$T/spamgate.log"
[milter]
socket = "inet:$MPORT@127.0.0.1"
[outbound]
overrides_file = "$T/limits.conf"
hold_action = "quarantine"
CF
start_milter || exit 1

miltertest -s "$HERE/miltertest/spamgate.lua" -D SOCK="inet:$MPORT@127.0.0.1" \
  -D HAM="$SRC/corpus/ham/meeting_notes.eml" -D SPAM="$SRC/corpus/spam/lottery_winner.eml" \
  -D EICAR="$SRC/corpus/malware/eicar_attachment.eml" -D LOGIN="mt@example.com" > "$T/mt.out" 2>&1
rc=$?
cat "$T/mt.out"
if [ "$rc" -ne 0 ]; then echo "--- spamgate.log"; tail -30 "$T/spamgate.log"; fi
check "miltertest: every case passed (exit $rc)" test "$rc" -eq 0
check "miltertest: the milter logged no protocol error" hasnt "$T/spamgate.log" "protocol error"
kill -TERM "$MILTER_PID"; wait "$MILTER_PID"; mrc=$?; MILTER_PID=""
check "SIGTERM after miltertest: exit 0" test "$mrc" -eq 0
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
