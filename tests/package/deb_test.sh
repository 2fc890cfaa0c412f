#!/usr/bin/env bash
# deb_test.sh - the .deb as an admin uses it: built with cpack, installed
# with apt-get (README "Install"), checked (files, conffiles, user, man
# page, the unit verified by systemd-analyze), the unit's own ExecStart run
# as the unit's user until it serves metrics, stopped with SIGTERM, then
# purged. Needs root and dpkg; installs into this machine (CI's is fresh).
# usage: deb_test.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=$(readlink -f "$1")
SRC=$(readlink -f "$2")
if [ "$(id -u)" -ne 0 ] || ! command -v dpkg > /dev/null; then
  echo "deb_test: needs root and dpkg; skipped"
  exit 77
fi
if dpkg-query -W -f='${Status}' spamgate 2> /dev/null | grep -q 'install ok installed'; then
  echo "deb_test: a spamgate package is already installed here; not touching it; skipped"
  exit 77
fi
if [ -e /etc/spamgate ]; then
  echo "deb_test: /etc/spamgate exists on this machine (an installed spamgate?); not touching it; skipped"
  exit 77
fi
cd /
T=$(mktemp -d /tmp/spamgate-deb.XXXXXX)
# The source tree's conf/spamgate.toml keeps Bayes in /var/lib/spamgate (the
# CLI test and scripts/run.sh create it): set aside, restored after the purge.
SAVED=""
if [ -e /var/lib/spamgate ]; then mv /var/lib/spamgate "$T/var-lib-spamgate"; SAVED=1; fi
as_spamgate() { setpriv --reuid spamgate --regid spamgate --init-groups -- "$@"; }  # exec, as systemd's User= does
chmod 755 "$T"
PID=""
cleanup() {
  [ -n "$PID" ] && kill -9 "$PID" 2> /dev/null
  pkill -9 -u spamgate 2> /dev/null
  dpkg --purge spamgate > /dev/null 2>&1
  if [ -n "$SAVED" ]; then rm -rf /var/lib/spamgate; mv "$T/var-lib-spamgate" /var/lib/spamgate; fi
  [ -n "${KEEP_T:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }

(cd "$T" && cpack -G DEB --config "$BUILD/CPackConfig.cmake" > "$T/cpack.log" 2>&1)
DEB=$(ls "$T"/spamgate_*_amd64.deb 2> /dev/null | head -n 1)
check "cpack -G DEB builds the package" test -n "$DEB"
[ -n "$DEB" ] || { cat "$T/cpack.log"; exit 1; }
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$DEB" > "$T/install.log" 2>&1
check "apt-get install ./spamgate_*.deb" dpkg-query -W -f='${Status}' spamgate
check "the binary is /usr/sbin/spamgate, stripped" bash -c "[ -x /usr/sbin/spamgate ] && ! readelf -S /usr/sbin/spamgate | grep -q '\.debug_info\|\.symtab'"
check "conf/ is /etc/spamgate, marked conffiles" bash -c "[ -f /etc/spamgate/spamgate.toml ] && grep -qx /etc/spamgate/spamgate.toml /var/lib/dpkg/info/spamgate.conffiles"
check "the config points at the packaged rules" grep -q '^rules_dir = "/usr/share/spamgate/rules"' /etc/spamgate/spamgate.toml
check "its own unprivileged user" bash -c "getent passwd spamgate | grep -q ':/var/lib/spamgate:' && [ \$(id -u spamgate) -lt 1000 ] && [ \$(id -u spamgate) -ne 0 ]"
check "the config is readable by it, not by others" bash -c "setpriv --reuid spamgate --regid spamgate --init-groups -- cat /etc/spamgate/signatures/spamgate.ndb > /dev/null && [ \$(stat -c %a /etc/spamgate/spamgate.toml) = 640 ]"
check "/var/lib/spamgate belongs to it" test "$(stat -c %U /var/lib/spamgate)" = spamgate
check "a man page: spamgate(8) with every subcommand" bash -c "zcat /usr/share/man/man8/spamgate.8.gz | grep -q '^\\.SS release' && zcat /usr/share/man/man8/spamgate.8.gz | grep -q -- '--arf'"
UNIT=/lib/systemd/system/spamgate.service
check "the unit is installed and runs as spamgate" bash -c "grep -qx 'User=spamgate' $UNIT && grep -qx 'NoNewPrivileges=yes' $UNIT && grep -qx 'ProtectSystem=strict' $UNIT"
if command -v systemd-analyze > /dev/null; then
  systemd-analyze verify "$UNIT" > "$T/verify.log" 2>&1
  check "systemd-analyze verify accepts the unit" bash -c "! grep -i 'spamgate.service' '$T/verify.log' | grep -qiv 'Failed to connect\\|bus'"
else
  echo "     (no systemd-analyze on this machine: the unit is not verified by systemd here)"
fi
check "spamgate lint passes on the installed config, as its user" as_spamgate /usr/sbin/spamgate lint

# The unit's command, as the unit's user, logs to stderr (the journal).
CMD=$(sed -n 's/^ExecStart=//p' "$UNIT")
setpriv --reuid spamgate --regid spamgate --init-groups -- $CMD > "$T/milter.log" 2>&1 &
PID=$!  # setpriv execs the command: this is the milter
end=$((SECONDS + 180))  # readiness, not a speed: a busy machine may take long
until grep -q "metrics: http" "$T/milter.log" || ! kill -0 "$PID" 2> /dev/null || [ "$SECONDS" -ge "$end" ]; do sleep 0.1; done
check "the unit's command starts the milter on the configured socket" grep -q "spamgate milter listening on inet:8895@127.0.0.1" "$T/milter.log"
check "... and serves metrics" bash -c "curl -sf http://127.0.0.1:9795/metrics | grep -q '^spamgate_resident_memory_bytes '"
check "... as the spamgate user" test "$(ps -o user= -p "$PID")" = spamgate
# The unit's ExecReload (systemctl reload): waits for the milter's answer,
# fails when the new rules are refused.
RELOAD=$(sed -n 's/^ExecReload=//p' "$UNIT")
check "the unit reloads with spamgate reload" test "${RELOAD%% *}" = /usr/sbin/spamgate
setpriv --reuid spamgate --regid spamgate --init-groups -- $RELOAD > "$T/reload.log" 2>&1
check "... which is taken (exit 0)" bash -c "[ $? -eq 0 ] && grep -q '^reloaded: ' '$T/reload.log'"
cp /etc/spamgate/local.cf "$T/local.cf.orig"
printf 'body PKG_BROKEN /(unclosed/\n' >> /etc/spamgate/local.cf
setpriv --reuid spamgate --regid spamgate --init-groups -- $RELOAD > "$T/reload.log" 2>&1
check "... and fails (exit 1) naming file:line for a broken rule" bash -c "[ $? -eq 1 ] && grep -q 'local.cf:[0-9]*: rule .PKG_BROKEN.' '$T/reload.log'"
cp "$T/local.cf.orig" /etc/spamgate/local.cf
# The per-domain settings file is support staff's too: shipped, a conffile,
# and a broken line fails the reload the same way.
check "recipient settings: /etc/spamgate/recipients.cf, a conffile" \
  bash -c "[ -f /etc/spamgate/recipients.cf ] && grep -qx /etc/spamgate/recipients.cf /var/lib/dpkg/info/spamgate.conffiles"
cp /etc/spamgate/recipients.cf "$T/recipients.cf.orig"
printf 'example.com treshold 8\n' >> /etc/spamgate/recipients.cf
setpriv --reuid spamgate --regid spamgate --init-groups -- $RELOAD > "$T/reload.log" 2>&1
check "... a broken line: the reload fails naming recipients.cf:line and the word meant" \
  bash -c "[ $? -eq 1 ] && grep -q \"recipients.cf:[0-9]*: unknown setting 'treshold'; did you mean threshold?\" '$T/reload.log'"
cp "$T/recipients.cf.orig" /etc/spamgate/recipients.cf
kill -TERM "$PID"; wait "$PID"; rc=$?; PID=""
check "SIGTERM: exits 0, stopped cleanly" bash -c "[ $rc -eq 0 ] && grep -q 'stopped cleanly' '$T/milter.log'"

# Logs under the unit: its stderr goes to the journal (no StandardError=
# elsewhere), and systemd says so in JOURNAL_STREAM; the installed binary
# then writes journal entries with a priority and facility mail, which
# `journalctl -p warning -u spamgate` reads. journald is not on every test
# machine: a stand-in for its socket in a private mount namespace.
check "the unit leaves stderr to the journal" bash -c "! grep -q '^Standard\(Error\|Output\)=' $UNIT"
HAM=$(ls "$SRC"/corpus/ham/*.eml | head -1)
JOURNAL_STREAM=8:1 unshare -m bash -c "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal &&
  chmod 777 /run/systemd/journal &&
  { /usr/bin/python3 '$SRC/tests/cli/journal_listener.py' /run/systemd/journal/socket '$T/journal.out' & } &&
  for i in \$(seq 1 600); do [ -e '$T/journal.out.ready' ] && break; sleep 0.1; done &&
  chmod 666 /run/systemd/journal/socket &&
  setpriv --reuid spamgate --regid spamgate --init-groups -- /usr/sbin/spamgate scan --verbose --config /etc/spamgate/spamgate.toml '$HAM' > /dev/null 2> '$T/journal.err';
    for i in \$(seq 1 600); do grep -qs '^MESSAGE=.*action=' '$T/journal.out' && break; sleep 0.1; done; kill %1" 2> /dev/null
check "journal: the installed binary's verdict line is an entry with priority info (6)" \
  bash -c "grep -B3 -A3 '^MESSAGE=.*score=.* action=' '$T/journal.out' | grep -q '^PRIORITY=6$'"
check "journal: facility mail (2), identifier spamgate, nothing left on stderr" \
  bash -c "grep -q '^SYSLOG_FACILITY=2$' '$T/journal.out' && grep -q '^SYSLOG_IDENTIFIER=spamgate$' '$T/journal.out' && [ ! -s '$T/journal.err' ]"

dpkg --purge spamgate > "$T/purge.log" 2>&1
check "purge removes binary, state and user" bash -c "[ ! -e /usr/sbin/spamgate ] && [ ! -e /var/lib/spamgate ] && ! getent passwd spamgate > /dev/null"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
