#!/usr/bin/env bash
# outbound_e2e.sh - outbound protection through a real Postfix, end to end.
#
# A private Postfix (postfix -c DIR) with spamgate as smtpd and non_smtpd
# milter; authenticated senders come through XCLIENT LOGIN=, local
# submission through Postfix's sendmail. Checks: a sender over its limit is
# held (451 4.7.1 at end of data, then at MAIL FROM) with one log line
# naming account, limit and counts, listed and released by `spamgate
# release`; a hacked account's burst of spam is held before its rate limit;
# the hold queue mode and `postsuper -H`; local submission never refused;
# feedback-loop reports (corpus/arf) count against the right account; the
# From-domain symbol; forged sender tags removed; the same over a private
# redis-server. Needs root and the packages of scripts/deps.sh.
# usage: outbound_e2e.sh BUILD/spamgate SOURCE_DIR
set -u
BIN=$(readlink -f "$1")
SRC=$(readlink -f "$2")
HERE="$SRC/tests/e2e"
source "$HERE/postfix_env.sh"
source "$HERE/e2e_lib.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "outbound_e2e: needs root to run a private Postfix; skipped"
  exit 77
fi

T=$(mktemp -d /tmp/spamgate-out.XXXXXX)
chmod 755 "$T"
BASE=$((24000 + ($$ % 400) * 10))
SMTP=$BASE; SINK=$((BASE + 1)); MPORT=$((BASE + 2)); RPORT=$((BASE + 3)); HPORT=$((BASE + 4))
MILTER_PID=""; REDIS_PID=""
cleanup() {
  [ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2> /dev/null
  [ -n "$REDIS_PID" ] && kill -9 "$REDIS_PID" 2> /dev/null
  pf_stop "$T"
  [ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# $1: extra [outbound] lines. DNS checks and ClamAV are off: this is about
# the outbound guard (milter_e2e.sh covers them).
write_config() {
  cat > "$T/spamgate.toml" <<CF
rules_dir = "$SRC/rules"
local_rules = "$T/local.cf"
hostname = "mx1.gateway.example"
[auth]
spf = false
dkim = false
dmarc = false
[clamav]
enabled = false
[bayes]
path = "$T/bayes"
[log]
level = "info"
target = "$T/spamgate.log"
[milter]
socket = "inet:$MPORT@127.0.0.1"
[metrics]
listen = "127.0.0.1:$HPORT"
[memory]
log_seconds = 1
warn_mb = 16
[outbound]
site_key_file = "$SRC/corpus/arf/test-site.key"
overrides_file = "$T/outbound-limits.conf"
hold_after_spam = 3
$1
CF
}

# send FILE LOGIN [swaks args]: as an authenticated customer; prints the
# delivered file, or nothing (swaks' dialogue is in $T/swaks.out).
send() {
  local file=$1 login=$2; shift 2
  deliver "$file" --xclient-addr 203.0.113.5 --xclient-login "$login" --from "$login" "$@"
}
# attempt FILE LOGIN: the same, for mail that is not to be delivered now
# (refused, or into the hold queue); swaks' dialogue is in $T/swaks.out.
attempt() {
  local file=$1 login=$2; shift 2
  swaks --timeout 600 --server "127.0.0.1:$SMTP" --to friend@example.net --data "@$file" --xclient-addr 203.0.113.5 \
        --xclient-login "$login" --from "$login" "$@" > "$T/swaks.out" 2>&1
}
refused_at_data() { grep -A1 -- '-> \.$' "$T/swaks.out" | grep -q '<\*\* 451 4.7.1'; }
refused_at_mail() { grep -A1 -- '-> MAIL FROM:' "$T/swaks.out" | grep -q '<\*\* 451 4.7.1'; }
ham() {  # ham FILE N: a plain message, numbered
  printf 'From: %s\r\nTo: friend@example.net\r\nSubject: lunch %s\r\nMessage-ID: <lunch-%s-%s@customer.example>\r\n\r\nSee you at noon.\r\n' \
    "$2" "$3" "$3" "$RANDOM" > "$1"
}
held_queue() { postqueue -c "$T/conf" -j 2> /dev/null | grep -c '"queue_name": "hold"'; }
RELEASE=("$BIN" release --config "$T/spamgate.toml")

touch "$T/local.cf"
echo "carol@customer.example  messages_per_minute=3   # support: a tight limit for the test" > "$T/outbound-limits.conf"
write_config ""
start_milter || exit 1
pf_start "$T" "$SMTP" "$SINK" "inet:127.0.0.1:$MPORT"
wait_until port_answers "$SMTP" || { echo "postfix did not start"; exit 1; }

# --- a sender over its limit: held, logged, released ------------------------
for i in 1 2 3; do
  ham "$T/c$i.eml" carol@customer.example "$i"
  f=$(send "$T/c$i.eml" carol@customer.example)
  check "carol's message $i (of her limit 3/min) delivered" test -n "$f"
done
check "outbound mail carries our sender tag" grep -q "^X-Spamgate-Sender: [0-9a-f]\{32\}$" "$f"
check "... which does not show the login" bash -c "! grep -q '^X-Spamgate-Sender:.*carol' '$f'"
check "her messages logged as outbound" grep -q "class=authenticated .*outbound=ok" "$T/spamgate.log"
ham "$T/c4.eml" carol@customer.example 4
attempt "$T/c4.eml" carol@customer.example
check "the 4th in a minute gets 451 4.7.1 at end of data" refused_at_data
check "... saying why" grep -q "^<\*\* 451 4.7.1 Sending from this account is paused" "$T/swaks.out"
check "one log line names account, limit and counts" \
  grep -q "outbound: HOLD carol@customer.example: messages_per_minute passed: 4 > 3 in the last minute; counts: account: msgs 4/min 4/h 4/day rcpts 4/min" "$T/spamgate.log"
attempt "$T/c1.eml" carol@customer.example
check "held: the next message is refused at MAIL FROM" refused_at_mail
check "... logged with the reason" grep -q "MAIL FROM <carol@customer.example> refused with 451 4.7.1: carol@customer.example is held until .* (messages_per_minute passed" "$T/spamgate.log"
ham "$T/f1.eml" frank@customer.example 1
check "another account of the domain still sends" test -n "$(send "$T/f1.eml" frank@customer.example)"
"${RELEASE[@]}" --list > "$T/list.out" 2>&1
check "release --list shows the hold and why" grep -q "^carol@customer.example  held since .* until .*: messages_per_minute passed: 4 > 3" "$T/list.out"
"${RELEASE[@]}" carol@customer.example > "$T/release.out" 2>&1
check "spamgate release lifts it" grep -q "^released carol@customer.example" "$T/release.out"
check "... and says so in the log" wait_log "outbound: carol@customer.example released by an admin"
check "released: carol sends again" test -n "$(send "$T/c4.eml" carol@customer.example)"
"${RELEASE[@]}" carol@customer.example > "$T/release2.out" 2>&1; rc=$?
check "releasing one not held says so (exit 1)" bash -c "[ $rc -eq 1 ] && grep -q 'was not held' '$T/release2.out'"

# --- a hacked account: a burst of spam is held long before its rate limit --
for i in 1 2; do
  f=$(send "$SRC/corpus/spam/lottery_winner.eml" hank@customer.example)
  check "hank's spam $i goes out (counted: $i of hold_after_spam 3)" test -n "$f"
done
check "outbound spam verdicts logged" test "$(grep -c "from=<hank@customer.example>.*outbound=spam" "$T/spamgate.log")" -eq 2
attempt "$SRC/corpus/spam/lottery_winner.eml" hank@customer.example
check "the 3rd spam is held (3 messages, limit 30/min)" refused_at_data
check "... logged with the spam count" grep -q "outbound: HOLD hank@customer.example: 3 spam verdicts + 0 complaints in the last 3600 s reached hold_after_spam = 3" "$T/spamgate.log"
ham "$T/h1.eml" hank@customer.example 1
attempt "$T/h1.eml" hank@customer.example
check "... and even his ham is refused at MAIL FROM now" refused_at_mail

# --- From domain that is not the sender's --------------------------------
printf 'From: Billing <billing@bank.example>\r\nTo: friend@example.net\r\nSubject: invoice\r\nMessage-ID: <invoice-1@customer.example>\r\n\r\nAttached.\r\n' > "$T/forged_from.eml"
f=$(send "$T/forged_from.eml" frank@customer.example)
check "From domain not the login's: AUTH_USER_FROM_MISMATCH" \
  grep -q "msgid=<invoice-1@customer.example>.*AUTH_USER_FROM_MISMATCH" "$T/spamgate.log"
printf 'From: Frank <frank@customer.example>\r\nTo: friend@example.net\r\nSubject: notes\r\nMessage-ID: <notes-1@customer.example>\r\nX-Spamgate-Sender: 00000000000000000000000000000000\r\n\r\nNotes.\r\n' > "$T/forged_tag.eml"
f=$(send "$T/forged_tag.eml" frank@customer.example)
check "a sender's own tag header is replaced by ours" \
  bash -c "[ \$(grep -c '^X-Spamgate-Sender:' '$f') -eq 1 ] && ! grep -q '^X-Spamgate-Sender: 0000' '$f'"
check "its own From domain: no mismatch symbol" bash -c "grep 'msgid=<notes-1@customer.example>' '$T/spamgate.log' | grep -vq AUTH_USER_FROM_MISMATCH"

# --- feedback loops: complaints count against the right account -----------
ham "$T/d1.eml" dave@customer.example 1
check "dave sends (his tag is now known)" test -n "$(send "$T/d1.eml" dave@customer.example)"
check "erin sends the message a report will quote" test -n "$(send "$SRC/corpus/arf/original_message_id.eml" erin@shop.example)"
"$BIN" learn --config "$T/spamgate.toml" --arf "$SRC/corpus/arf/abuse_sender_tag.eml" "$SRC/corpus/arf/abuse_message_id.eml" \
  "$SRC/corpus/arf/abuse_not_ours.eml" > "$T/arf.out" 2>&1
cat "$T/arf.out" | sed 's/^/     /'
check "report with our tag: complaint against dave" \
  grep -q "abuse_sender_tag.eml: .*learned as spam; complaint against dave@customer.example (found by sender tag): 1 complaint(s)" "$T/arf.out"
check "report without it: found by Message-ID, against erin" \
  grep -q "abuse_message_id.eml: .*complaint against erin@shop.example (found by Message-ID)" "$T/arf.out"
check "a report on mail not ours counts against nobody" grep -q "abuse_not_ours.eml: .*not sent by one of our accounts" "$T/arf.out"
"$BIN" learn --config "$T/spamgate.toml" --arf "$SRC/corpus/arf/abuse_sender_tag.eml" "$SRC/corpus/arf/abuse_sender_tag.eml" > "$T/arf2.out" 2>&1
check "three complaints hold dave" grep -q "^dave@customer.example is now held until .*: 0 spam verdicts + 3 complaints" "$T/arf2.out"
attempt "$T/d1.eml" dave@customer.example
check "... and his next message is refused at MAIL FROM" refused_at_mail
check "erin is not held (one complaint)" test -n "$(send "$T/f1.eml" erin@shop.example)"

# --- local submission (non_smtpd_milters) is never refused ------------------
printf 'From: carol@customer.example\nTo: friend@example.net\nSubject: from the web form\n\nhello\n' > "$T/local.eml"
"${RELEASE[@]}" carol@customer.example > /dev/null
echo "carol@customer.example  messages_per_minute=1" > "$T/outbound-limits.conf"
reload_wait
for i in 1 2 3; do sendmail -C "$T/conf" -f carol@customer.example friend@example.net < "$T/local.eml"; done
check "local submission over the limit: into the hold queue, not refused" wait_log "outbound=held:quarantine"
check "... logged as trusted (local) mail of carol" grep -q "client=127.0.0.1 from=<carol@customer.example> .*class=trusted .*outbound=hold:quarantine" "$T/spamgate.log"
held_two() { [ "$(held_queue)" -ge 2 ]; }
wait_until held_two
check "... the held mail is in Postfix's hold queue" test "$(held_queue)" -ge 2

# --- hold queue mode: nothing lost, released with postsuper -H -------------
write_config 'hold_action = "quarantine"'
reload_wait
for i in 1 2 3 4; do
  attempt "$SRC/corpus/spam/lottery_winner.eml" ivan@customer.example
  check "quarantine mode: ivan's spam $i accepted (250)" grep -q "^<- *250 2.0.0 Ok: queued" "$T/swaks.out"
done
check "... his 3rd and 4th into the hold queue" \
  test "$(grep -c "from=<ivan@customer.example>.*outbound=\(hold\|held\):quarantine" "$T/spamgate.log")" -eq 2
"${RELEASE[@]}" --postfix-config "$T/conf" ivan@customer.example > "$T/release3.out" 2>&1
check "release prints the postsuper -H command for his held queue ids" \
  grep -q "^postsuper -c $T/conf -H [0-9A-F]* -H [0-9A-F]*$" "$T/release3.out"
eval "$(grep '^postsuper' "$T/release3.out")"
postqueue -c "$T/conf" -f
delivered_ids() {  # every queue id of the postsuper line found in a delivered Received header
  for id in $(grep '^postsuper' "$T/release3.out" | grep -o '[0-9A-F]\{6,\}'); do
    grep -lqE "\(Postfix\) with [A-Z]+ id $id" "$T"/sink/* 2> /dev/null || return 1
  done
}
check "after postsuper -H the held messages are delivered" wait_until delivered_ids

# --- the metrics endpoint and the memory watch --------------------------------
curl -sf "http://127.0.0.1:$HPORT/metrics" > "$T/metrics.txt"
metric() { awk -v k="$1" '$1 == k {print $2}' "$T/metrics.txt"; }
sent_out=$(grep -c "class=\(authenticated\|trusted\) " "$T/spamgate.log")
refused=$(grep -c "outbound: MAIL FROM <.*> refused" "$T/spamgate.log")
counted=$(awk '/^spamgate_messages_total\{direction="outbound"/ {s += $2} END {print s}' "$T/metrics.txt")
check "metrics: every outbound message of this test counted ($sent_out scanned + $refused refused at MAIL FROM)" \
  test "$counted" -eq $((sent_out + refused))
check "metrics: the tempfails (end of data and MAIL FROM) and quarantines among them" \
  bash -c "[ '$(metric 'spamgate_messages_total{direction="outbound",action="tempfail"}')' -eq $((refused + 2)) ] && [ '$(metric 'spamgate_messages_total{direction="outbound",action="quarantine"}')' -eq 4 ]"
check "metrics: held accounts (hank, dave, carol at least)" test "$(metric spamgate_outbound_held)" -ge 3
check "metrics: score histogram and per-check latency" \
  bash -c "grep -q '^spamgate_score_bucket{direction=\"outbound\",le=\"+Inf\"} $sent_out\$' '$T/metrics.txt' && grep -q '^spamgate_check_duration_seconds_count{check=\"rules\"} ' '$T/metrics.txt'"
check "metrics: resident memory" test "$(metric spamgate_resident_memory_bytes | cut -d. -f1)" -gt 1000000
check "metrics: reloads counted" test "$(metric 'spamgate_reloads_total{result="taken"}')" -ge 2
check "memory watch: a warning above warn_mb with its figures" \
  wait_log "memory: resident"
check "... naming the consumers" grep -q "memory: resident .* MB is above \[memory\] warn_mb (16 MB); messages in flight: [0-9]* holding .* MB; .*bayes: lmdb" "$T/spamgate.log"

# --- the log level changes with a reload --------------------------------------
check "at info, no debug lines" bash -c "! grep -q ' debug: ' '$T/spamgate.log'"
sed -i 's/^level = "info"/level = "debug"/' "$T/spamgate.toml"
reload_wait
check "reload: the new log level is taken and logged" wait_log "reload: log level info -> debug"
check "... and debug lines follow (the memory watch's figures)" wait_log "debug: memory: resident"
sed -i 's/^level = "debug"/level = "info"/' "$T/spamgate.toml"
reload_wait

# --- shared state in Redis ---------------------------------------------------
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no > "$T/redis.log" 2>&1 &
REDIS_PID=$!
redis_up() { redis-cli -p "$RPORT" ping 2> /dev/null | grep -q PONG; }
wait_until redis_up
echo "judy@customer.example  messages_per_minute=2" > "$T/outbound-limits.conf"
write_config "store = \"redis\"
redis = \"127.0.0.1:$RPORT\""
reload_wait
for i in 1 2 3; do ham "$T/j$i.eml" judy@customer.example "$i"; attempt "$T/j$i.eml" judy@customer.example; done
check "redis: over-limit sender held" grep -q "outbound: HOLD judy@customer.example: messages_per_minute passed: 3 > 2" "$T/spamgate.log"
check "redis: the hold is in redis" bash -c "redis-cli -p $RPORT --scan --pattern '*state:hold:u:judy@customer.example' | grep -q judy"
"${RELEASE[@]}" judy@customer.example > "$T/release4.out" 2>&1
check "redis: released by spamgate release" grep -q "^released judy@customer.example" "$T/release4.out"
check "redis: released sender delivers again" test -n "$(send "$T/j1.eml" judy@customer.example)"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
