# e2e_lib.sh - helpers shared by the end-to-end scripts. Source it after
# setting T (the test directory), SMTP (Postfix's port), MPORT (the milter's
# port) and BIN (the spamgate binary); start_milter sets MILTER_PID.

pass=0; fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
has() { grep -qF -- "$2" "$1"; }
hasnt() { ! grep -qF -- "$2" "$1"; }

start_milter() {
  "$BIN" milter --config "$T/spamgate.toml" &
  MILTER_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<> /dev/tcp/127.0.0.1/$MPORT) 2> /dev/null && return 0
    sleep 0.05
  done
  echo "milter did not start"; cat "$T/spamgate.log"; return 1
}

# Sends FILE with swaks (extra args after it) and prints the delivered file.
deliver() {
  local file=$1; shift
  local before after
  before=$(find "$T/sink" -type f | wc -l)
  swaks --server "127.0.0.1:$SMTP" --from sender@outside.example --to user@example.net \
        --data "@$file" "$@" > "$T/swaks.out" 2>&1
  after=$(pf_wait_delivered "$T" $((before + 1)) 20)
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

wait_log() {  # wait up to 15 s for the Nth (default 1st) line with TEXT in the milter log
  for _ in $(seq 1 150); do [ "$(grep -cF -- "$1" "$T/spamgate.log")" -ge "${2:-1}" ] && return 0; sleep 0.1; done
  return 1
}
reload_wait() {  # SIGUSR1, then wait (up to 15 s) until the reload was taken or refused
  local n
  n=$(grep -cE 'reload \(.*\): [0-9]+ rules|reload \(.*\) refused' "$T/spamgate.log" || true)
  kill -USR1 "$MILTER_PID"
  for _ in $(seq 1 150); do
    [ "$(grep -cE 'reload \(.*\): [0-9]+ rules|reload \(.*\) refused' "$T/spamgate.log" || true)" -gt "$n" ] && return 0
    sleep 0.1
  done
  return 1
}
