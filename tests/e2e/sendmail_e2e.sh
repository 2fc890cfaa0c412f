#!/usr/bin/env bash
# sendmail_e2e.sh - spamgate milter behind a real Sendmail 8.17, end to end.
#
# Debian's sendmail-bin conflicts with postfix as an installed package, so it
# runs unpacked: `apt-get download sendmail-bin sendmail-base sendmail-cf
# libwrap0` (once, into BUILD/sendmail/), `dpkg-deb -x` into a private prefix,
# a private .cf made with sendmail-cf's m4 and INPUT_MAIL_FILTER, and
# `sendmail -bD -C FILE` on a loopback port, relaying to smtp-sink. All of it
# runs in network, UTS and mount namespaces of its own (`unshare -n -u -m`):
# Sendmail resolves its own host name through libc, so the namespace gets a
# hosts file naming it and no route to any DNS server but ours on loopback.
# Needs root and the packages of scripts/deps.sh.
# usage: sendmail_e2e.sh BUILD/spamgate SOURCE_DIR
set -u
BIN=$(readlink -f "$1")
SRC=$(readlink -f "$2")
HERE="$SRC/tests/e2e"

if [ "$(id -u)" -ne 0 ]; then
  echo "sendmail_e2e: needs root (Sendmail's daemon, namespaces); skipped"
  exit 77
fi

SM=$(dirname "$BIN")/sendmail
if [ -z "${SPAMGATE_IN_NETNS:-}" ]; then
  # Outside the namespace (it has no network): fetch and unpack Sendmail once.
  if [ ! -x "$SM/root/usr/libexec/sendmail/sendmail" ]; then
    mkdir -p "$SM/debs" && chmod 777 "$SM/debs"
    (cd "$SM/debs" && apt-get download sendmail-bin sendmail-base sendmail-cf libwrap0) > "$SM/download.log" 2>&1 || {
      cat "$SM/download.log"; echo "FAIL sendmail_e2e: cannot download Sendmail (apt-get download)"; exit 1; }
    for d in "$SM"/debs/*.deb; do dpkg-deb -x "$d" "$SM/root"; done
    # Set-group-id programs ignore LD_LIBRARY_PATH (libwrap0 lives in the prefix).
    chmod g-s "$SM/root/usr/libexec/sendmail/sendmail"
  fi
  SPAMGATE_IN_NETNS=1 exec unshare -n -u -m bash "$0" "$@"
fi

source "$HERE/e2e_lib.sh"
T=$(mktemp -d /tmp/spamgate-sm.XXXXXX)
chmod 755 "$T"
SMTP=24825; SINK=24826; MPORT=24827; DNSPORT=24828
MILTER_PID=""; PIDS=()
cleanup() {
  [ -n "$MILTER_PID" ] && kill -9 "$MILTER_PID" 2> /dev/null
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2> /dev/null; done
  [ -f "$T/sendmail.pid" ] && kill "$(head -n 1 "$T/sendmail.pid" 2> /dev/null)" 2> /dev/null
  [ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

# The namespace: loopback up, a host name of our own that the hosts file knows.
ip link set lo up
hostname mx.sendmail.test
printf '127.0.0.1 mx.sendmail.test mx localhost\n' > "$T/hosts"
mount --bind "$T/hosts" /etc/hosts
printf 'hosts files\naliases files\n' > "$T/service.switch"
mkdir -p "$T/queue" "$T/sink" && chmod 700 "$T/queue" && chown postfix "$T/sink"

# The sink listens on 127.0.0.2: a smart host on Sendmail's own address would
# be "mail loops back to me".
cat > "$T/sendmail.mc" <<MC
divert(0)dnl
VERSIONID(\`spamgate e2e')dnl
OSTYPE(\`linux')dnl
define(\`confHOST_STATUS_DIRECTORY', \`')dnl
define(\`QUEUE_DIR', \`$T/queue')dnl
define(\`STATUS_FILE', \`$T/statistics')dnl
define(\`ALIAS_FILE', \`')dnl
define(\`confPID_FILE', \`$T/sendmail.pid')dnl
define(\`confSERVICE_SWITCH_FILE', \`$T/service.switch')dnl
define(\`confDONT_PROBE_INTERFACES', \`True')dnl
define(\`confDONT_BLAME_SENDMAIL', \`GroupWritableDirPathSafe,AssumeSafeChown')dnl
define(\`confDOMAIN_NAME', \`mx.sendmail.test')dnl
define(\`SMART_HOST', \`[127.0.0.2]')dnl
define(\`RELAY_MAILER_ARGS', \`TCP \$h $SINK')dnl
define(\`SMTP_MAILER_ARGS', \`TCP \$h $SINK')dnl
define(\`ESMTP_MAILER_ARGS', \`TCP \$h $SINK')dnl
define(\`confDELIVERY_MODE', \`interactive')dnl
DAEMON_OPTIONS(\`Port=$SMTP, Addr=127.0.0.1, Name=MTA')dnl
INPUT_MAIL_FILTER(\`spamgate', \`S=inet:$MPORT@127.0.0.1, F=T, T=C:30s;S:60s;R:60s;E:5m')dnl
FEATURE(\`promiscuous_relay')dnl
FEATURE(\`accept_unresolvable_domains')dnl
FEATURE(\`accept_unqualified_senders')dnl
MAILER(\`smtp')dnl
MC
CF_DIR="$SM/root/usr/share/sendmail/cf"
m4 -D_CF_DIR_="$CF_DIR/" "$CF_DIR/m4/cf.m4" "$T/sendmail.mc" > "$T/sendmail.cf" 2> "$T/m4.log" || { cat "$T/m4.log"; exit 1; }

python3 "$SRC/bench/nxdomain_dns.py" "$DNSPORT" & PIDS+=($!)
smtp-sink -u postfix -R "$T/sink" -d "%Y%m%d%H%M%S." "127.0.0.2:$SINK" 64 > "$T/sink.log" 2>&1 & PIDS+=($!)
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
CF
start_milter || exit 1
LD_LIBRARY_PATH="$SM/root/usr/lib/x86_64-linux-gnu" "$SM/root/usr/libexec/sendmail/sendmail" -C "$T/sendmail.cf" -bD \
  -L sm-e2e > "$T/sendmail.out" 2>&1 & PIDS+=($!)
if ! wait_until port_answers "$SMTP"; then cat "$T/sendmail.out"; echo "FAIL sendmail did not listen"; exit 1; fi

# send FILE: through Sendmail; prints the delivered file ("" if refused)
send() {
  local before
  before=$(find "$T/sink" -type f | wc -l)
  swaks --timeout 120 --server "127.0.0.1:$SMTP" --from sender@outside.example --to user@example.net \
        --data "@$1" > "$T/swaks.out" 2>&1
  grep -q '^<-  250 .*accepted' "$T/swaks.out" || return 0
  delivered() { [ "$(find "$T/sink" -type f | wc -l)" -gt "$before" ]; }
  wait_until delivered && ls -t "$T"/sink/* | head -n 1
}

f=$(send "$SRC/corpus/spam/lottery_winner.eml")
qid=$(sed -n 's/^<-  250 2.0.0 \([A-Za-z0-9]*\) .*accepted.*/\1/p' "$T/swaks.out")
check "Sendmail: spam delivered" test -n "$f"
check "Sendmail: spam Subject tagged" grep -q '^Subject: \[SPAM\] - CONGRATULATIONS YOU HAVE WON!!!' "${f:-/dev/null}"
check "Sendmail: X-Spam-Technical-Details added" grep -q '^X-Spam-Technical-Details: \[' "${f:-/dev/null}"
check "Sendmail: the verdict line has Sendmail's queue id ({i})" grep -q "info: $qid: conn=.* action=tag" "$T/spamgate.log"

f=$(send "$SRC/corpus/ham/meeting_notes.eml")
check "Sendmail: ham delivered with its body intact" body_intact "$SRC/corpus/ham/meeting_notes.eml" "${f:-/dev/null}"
check "Sendmail: ham not tagged" bash -c "! grep -q '^Subject: \[SPAM\]' '${f:-/dev/null}'"

f=$(send "$SRC/corpus/malware/eicar_attachment.eml")
check "Sendmail: malware refused with the exact reply" \
  grep -q '^<\*\* 550 5.7.1 Your email was rejected because it contains the Spamgate.Test.EICAR$' "$T/swaks.out"
check "Sendmail: malware not delivered" test -z "$f"
check "milter: no protocol error" hasnt "$T/spamgate.log" "protocol error"
kill -TERM "$MILTER_PID"; wait "$MILTER_PID"; rc=$?; MILTER_PID=""
check "milter: SIGTERM, exit 0" test "$rc" -eq 0

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
