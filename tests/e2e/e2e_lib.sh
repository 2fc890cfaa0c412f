# e2e_lib.sh - helpers shared by the end-to-end scripts. Source it after
# setting T (the test directory), SMTP (Postfix's port), MPORT (the milter's
# port) and BIN (the spamgate binary); start_milter sets MILTER_PID.

pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
has() { grep -qF -- "$2" "$1"; }
hasnt() { ! grep -qF -- "$2" "$1"; }

# Every wait is for readiness (a socket that answers, a log line, a queue
# that empties), polled every 0.1 s up to WAIT_MAX seconds: a generous
# ceiling, reached only when something is broken. A sanitizer build on a busy
# machine took 12 s to listen; nothing here assumes a speed.
WAIT_MAX=${WAIT_MAX:-180}
wait_until() {  # wait_until CMD...: true once CMD succeeds, false after WAIT_MAX seconds
  local end=$((SECONDS + WAIT_MAX))
  while ! "$@"; do
    [ "$SECONDS" -ge "$end" ] && return 1
    sleep 0.1
  done
}
port_answers() { (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null; }

# True while process $1 runs: a child that exited is a zombie until it is
# waited for, and kill -0 still succeeds on it.
alive() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat")" != Z ]; }

start_milter() {  # starts the milter on $T/spamgate.toml and waits until MPORT answers
  # a port already taken would answer for a milter that could not listen
  if port_answers "$MPORT"; then echo "port $MPORT is already in use"; return 1; fi
  "$BIN" milter --config "$T/spamgate.toml" &
  MILTER_PID=$!
  milter_up() { port_answers "$MPORT" || ! alive "$MILTER_PID"; }
  if wait_until milter_up && alive "$MILTER_PID"; then return 0; fi
  echo "milter did not start within ${WAIT_MAX} s"; cat "$T/spamgate.log"; return 1
}

# Sends FILE with swaks (extra args after it) and prints the delivered file.
deliver() {
  local file=$1; shift
  local before after
  before=$(find "$T/sink" -type f | wc -l)
  swaks --timeout 600 --server "127.0.0.1:$SMTP" --from sender@outside.example --to "${TO:-user@example.net}" \
        --data "@$file" "$@" > "$T/swaks.out" 2>&1
  # Only a queued message is waited for; a refused one is not coming.
  grep -q '^<-  250 .*queued' "$T/swaks.out" || return 0
  after=$(pf_wait_delivered "$T" $((before + 1)) "$WAIT_MAX")
  [ "$after" -gt "$before" ] && ls -t "$T"/sink/* | head -n 1
}

# True if the LF-normalised body of message $1 is the start of the delivered
# file $2's body (smtp-sink appends empty lines).
body_intact() {
  python3 - "$1" "$2" <<'PY'
import sys
orig = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
got = open(sys.argv[2], "rb").read()
ob = orig.split(b"\n\n", 1)[1]
# the delivered file: smtp-sink pseudo-headers, then the message
msg = got.split(b"\n", 5)  # skip nothing; find the message's own header end
gb = got.split(b"\n\n", 1)[1]
sys.exit(0 if gb.startswith(ob) and gb[len(ob):].strip(b"\n") == b"" else 1)
PY
}

log_count() { grep -cE -- "$1" "$T/spamgate.log" || true; }
wait_log() {  # wait for the Nth (default 1st) line with TEXT in the milter log
  log_has() { [ "$(grep -cF -- "$1" "$T/spamgate.log")" -ge "${2:-1}" ]; }
  wait_until log_has "$1" "${2:-}"
}
reload_wait() {  # SIGUSR1, then wait until the reload was taken or refused
  local re='reload \(.*\): [0-9]+ rules|reload \(.*\) refused' n
  n=$(log_count "$re")
  kill -USR1 "$MILTER_PID"
  reload_seen() { [ "$(log_count "$re")" -gt "$n" ]; }
  wait_until reload_seen
}
