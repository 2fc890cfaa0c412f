#!/usr/bin/env bash
# console_e2e.sh - the support console, end to end: a real Postfix with
# spamgate as its milter, dnsmasq for SPF, and the console driven in a real
# browser (Debian's chromium + chromedriver, headless, through Selenium) by
# console_browser.py, which also sends the mail and reads what was delivered.
# Every process started here is stopped on exit. Needs root (Postfix) and
# the packages of scripts/deps.sh.
# usage: console_e2e.sh BUILD/spamgate SOURCE_DIR
set -u
BIN=$(readlink -f "$1")
SRC=$(readlink -f "$2")
HERE="$SRC/tests/e2e"
source "$HERE/postfix_env.sh"
source "$HERE/e2e_lib.sh"

if [ "$(id -u)" -ne 0 ]; then
  echo "console_e2e: needs root to run a private Postfix; skipped"
  exit 77
fi
for need in chromium chromedriver; do
  command -v "$need" > /dev/null || { echo "console_e2e: $need is not installed (scripts/deps.sh)"; exit 1; }
done
/usr/bin/python3 -c 'import selenium' 2> /dev/null || { echo "console_e2e: python3-selenium is not installed"; exit 1; }

T=$(mktemp -d /tmp/spamgate-console.XXXXXX)
chmod 755 "$T"
BASE=$((24000 + ($$ % 400) * 10))
SMTP=$BASE; SINK=$((BASE + 1)); MPORT=$((BASE + 2)); DNSPORT=$((BASE + 3)); CPORT=$((BASE + 4))
MILTER_PID=""
DNS_PID=""
if ldd "$BIN" | grep -q libasan; then export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"; fi
cleanup() {
  [ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2> /dev/null
  [ -n "$DNS_PID" ] && kill "$DNS_PID" 2> /dev/null
  pkill -f "dnsmasq.*--port=$DNSPORT " 2> /dev/null
  pkill -f "chromedriver.*--port=$((BASE + 5))" 2> /dev/null
  pf_stop "$T"
  [ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# SPF for outside.example: 192.0.2.0/24 may send its mail.
dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces --listen-address=127.0.0.1 \
  --port="$DNSPORT" --conf-file=/dev/null --pid-file="$T/dnsmasq.pid" --user=root --log-facility=- \
  --local=/example/ --local=/example.net/ --local=/test/ \
  --txt-record=outside.example,"v=spf1 ip4:192.0.2.0/24 -all" > "$T/dnsmasq.log" 2>&1 &
DNS_PID=$!

# Two support users; their passwords only ever go through standard input.
echo 'alice-secret-1' | "$BIN" passwd alice > "$T/users" || exit 1
echo 'bob-secret-2' | "$BIN" passwd bob >> "$T/users" || exit 1
touch "$T/local.cf"
# HTTPS, as a console off loopback must be: a self-signed certificate made here.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/console.key" -out "$T/console.crt" -days 2 \
  -subj "/CN=127.0.0.1" > "$T/openssl.log" 2>&1 || { cat "$T/openssl.log"; exit 1; }
cat "$T/console.key" "$T/console.crt" > "$T/console.pem"
cat > "$T/spamgate.toml" <<CF
rules_dir = "$SRC/rules"
local_rules = "$T/local.cf"
hostname = "mx1.gateway.example"
support_url = "https://support.example.com/spam"
[dns]
nameserver = "127.0.0.1:$DNSPORT"
timeout_ms = 5000
budget_ms = 20000
[clamav]
enabled = false
[bayes]
path = "$T/bayes"
[log]
level = "info"
target = "$T/spamgate.log"
[milter]
socket = "inet:$MPORT@127.0.0.1"
[console]
listen = "127.0.0.1:$CPORT"
users_file = "$T/users"
certificate = "$T/console.pem"
session_minutes = 30
CF
start_milter || exit 1
wait_until port_answers "$CPORT" || { echo "console did not listen"; cat "$T/spamgate.log"; exit 1; }
pf_start "$T" "$SMTP" "$SINK" "inet:127.0.0.1:$MPORT"
wait_until port_answers "$SMTP" || { echo "postfix did not start"; exit 1; }

check "plain HTTP to the HTTPS console gets no page" bash -c "! curl -s --max-time 20 http://127.0.0.1:$CPORT/login | grep -q password"
check "the console answers over HTTPS (TLS 1.2 or later)" bash -c "curl -sk --tlsv1.2 --max-time 60 https://127.0.0.1:$CPORT/login | grep -q password"
check "... and refuses TLS 1.1" bash -c "! curl -sk --tlsv1.1 --tls-max 1.1 --max-time 20 https://127.0.0.1:$CPORT/login > /dev/null 2>&1"
check "a login body without a length (chunked) gets 411, a huge one 413: nothing read for a stranger" bash -c \
  "[ \"\$(printf 'user=a&password=b' | curl -sk --max-time 60 -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @- https://127.0.0.1:$CPORT/login)\" = 411 ] &&
   [ \"\$(head -c 9000 /dev/zero | tr -c x a | curl -sk --max-time 60 -o /dev/null -w '%{http_code}' --data-binary @- https://127.0.0.1:$CPORT/login)\" = 413 ]"
/usr/bin/python3 "$HERE/console_browser.py" --console "https://127.0.0.1:$CPORT" --smtp "$SMTP" --dir "$T" \
  --bin "$BIN" --config "$T/spamgate.toml" --spam "$SRC/corpus/spam/lottery_winner.eml" \
  --chromedriver-port $((BASE + 5))
rc=$?

# The same from the shell: spamgate reload waits for the milter's answer.
"$BIN" reload --config "$T/spamgate.toml" > "$T/reload.out" 2>&1
check "spamgate reload: taken (exit 0)" test $? -eq 0
check "... and says so" grep -q "^reloaded: [0-9]* rules in use (pid $MILTER_PID)" "$T/reload.out"
cp "$T/local.cf" "$T/local.cf.good"
printf 'body SHELL_BROKEN /(unclosed/\n' >> "$T/local.cf"
"$BIN" reload --config "$T/spamgate.toml" > "$T/reload.out" 2>&1
check "spamgate reload of a broken rule: refused (exit 1)" test $? -eq 1
check "... naming the file and line" grep -q "local.cf:[0-9]*: rule 'SHELL_BROKEN'" "$T/reload.out"
check "... the milter keeps running" alive "$MILTER_PID"
cp "$T/local.cf.good" "$T/local.cf"
"$BIN" reload --config "$T/spamgate.toml" > "$T/reload.out" 2>&1
check "fixed: reloaded again" test $? -eq 0
mkdir -p "$T/other"
sed "s|^path = \"$T/bayes\"|path = \"$T/other/bayes\"|" "$T/spamgate.toml" > "$T/other.toml"
"$BIN" reload --config "$T/other.toml" > "$T/reload.out" 2>&1
check "no milter runs for another config: exit 3" test $? -eq 3
check "... and it says so" grep -q "no milter is running for $T/other.toml" "$T/reload.out"
check "the milter still runs" alive "$MILTER_PID"
check "no console request failed in the log" bash -c "! grep -q 'console: .* failed\|console failed' '$T/spamgate.log'"
echo "console_e2e: browser script exit $rc; $pass passed, $fail failed"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
