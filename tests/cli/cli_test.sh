#!/usr/bin/env bash
# cli_test.sh - the spamgate binary as an admin or support engineer uses it.
# usage: cli_test.sh BUILD/spamgate SOURCE_DIR
set -u
BIN=$1
SRC=$2
CONF="$SRC/conf/spamgate.toml"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
has() { grep -qF -- "$2" "$1"; }

SPAM="$SRC/corpus/spam/lottery_winner.eml"
HAM="$SRC/corpus/ham/meeting_notes.eml"

# scan --rewrite on spam: tagged subject and the three headers, body unchanged
"$BIN" scan --quiet --config "$CONF" --rewrite "$SPAM" > "$T/out.eml" 2> "$T/err"
check "rewrite exits 0" test $? -eq 0
check "rewrite tags the subject" has "$T/out.eml" "Subject: [SPAM] - CONGRATULATIONS YOU HAVE WON!!!"
check "rewrite adds X-Spam-Flag" has "$T/out.eml" "X-Spam-Flag: YES"
check "rewrite adds X-Spam-Status Yes" has "$T/out.eml" "X-Spam-Status: Yes, score="
check "rewrite adds technical details" has "$T/out.eml" "X-Spam-Technical-Details: [Gateway Filtering Service] - Support information:"
check "rewrite keeps the body" bash -c "tail -n 9 '$SPAM' | cmp -s - <(tail -n 9 '$T/out.eml')"

# scan: one line per message
"$BIN" scan -q --config "$CONF" "$SPAM" "$HAM" > "$T/scan" 2>&1
check "scan flags spam" grep -q "lottery_winner.eml: spam score=" "$T/scan"
check "scan passes ham" grep -q "meeting_notes.eml: ham score=" "$T/scan"

# --json: one object per line with the documented fields
"$BIN" scan -q --json --config "$CONF" "$SPAM" > "$T/json"
for key in '"file":' '"score":' '"threshold":5.0' '"spam":true' '"action":"tag"' '"rules":[{"name":' '"ms":'; do
  check "json has $key" has "$T/json" "$key"
done

# stdin
"$BIN" scan -q --config "$CONF" - < "$SPAM" > "$T/stdin"
check "scan reads stdin" grep -q "^-: spam" "$T/stdin"

# bad inputs: clear message, non-zero exit, the others still scanned
: > "$T/empty.eml"
head -c 2000 /dev/urandom > "$T/random.bin"; printf '\0' >> "$T/random.bin"
"$BIN" scan -q --config "$CONF" "$T/missing.eml" "$T/empty.eml" "$T/random.bin" "$HAM" > "$T/mixed" 2> "$T/mixed.err"
rc=$?
check "bad inputs give exit 1" test $rc -eq 1
check "missing file named" has "$T/mixed.err" "missing.eml: no such file"
check "empty file named" has "$T/mixed.err" "empty.eml: empty file"
check "binary file named" has "$T/mixed.err" "random.bin: binary file"
check "good file still scanned" grep -q "meeting_notes.eml: ham" "$T/mixed"

# --rewrite with several files writes FILE.out
cp "$SPAM" "$T/a.eml"; cp "$HAM" "$T/b.eml"
"$BIN" scan -q --config "$CONF" --rewrite "$T/a.eml" "$T/b.eml" > /dev/null
check "several rewrites go to FILE.out" has "$T/a.eml.out" "Subject: [SPAM] -"
check "ham rewrite has technical details" has "$T/b.eml.out" "X-Spam-Technical-Details:"

# explain: rules, scores, descriptions, matched text, total and threshold
"$BIN" explain --config "$CONF" "$SPAM" > "$T/explain"
check "explain lists a rule with its description" has "$T/explain" "Says you won a lottery, prize or sweepstake"
check "explain shows matched text" has "$T/explain" 'matched: "YOU HAVE WON"'
check "explain shows total and threshold" grep -q "Total .*, threshold 5: SPAM" "$T/explain"

# lint: broken regex named by file and line, exit 1
printf 'body GOOD /fine/\nbody BROKEN /(unclosed/\n' > "$T/bad.cf"
"$BIN" lint "$T/bad.cf" > "$T/lint" 2>&1
check "lint exits 1 on error" test $? -eq 1
check "lint names file:line" has "$T/lint" "$T/bad.cf:2: rule 'BROKEN': bad regex"
"$BIN" lint --config "$CONF" > "$T/lint_ok" 2>&1
check "lint of shipped config and rules is clean" test $? -eq 0

# config errors: exit 2 with file:line
printf 'rules_dir = "%s/rules"\nthreshhold = 5\n' "$SRC" > "$T/bad.toml"
"$BIN" scan --config "$T/bad.toml" "$HAM" > /dev/null 2> "$T/cfgerr"
check "bad config exits 2" test $? -eq 2
check "bad config names file:line" has "$T/cfgerr" "$T/bad.toml:2: unknown key 'threshhold'"

# bench runs and reports its numbers
"$BIN" bench --config "$CONF" "$SRC/corpus" > "$T/bench"
check "bench reports throughput" grep -q "messages/s" "$T/bench"
check "bench reports peak RSS" grep -q "peak RSS" "$T/bench"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
