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
for key in '"file":' '"score":' '"threshold":5.0' '"spam":true' '"action":"tag"' '"rules":[{"description":' '"ms":'; do
  check "json has $key" has "$T/json" "$key"
done

# Replay: scan decides what the milter would answer for the sender it is told.
# The shipped config with its paths made absolute and the stores in $T.
sed -e "s|^rules_dir = \"../rules\"|rules_dir = \"$SRC/rules\"|" \
    -e "s|^local_rules = \"local.cf\"|local_rules = \"$T/local.cf\"|" \
    -e "s|^own_signatures = \"signatures\"|own_signatures = \"$SRC/conf/signatures\"|" \
    -e "s|^policy_file = .*|policy_file = \"$T/policy.conf\"|" \
    -e "s|^canary_dirs = .*|canary_dirs = [\"$SRC/corpus/ham\"]|" \
    -e "s|^overrides_file = .*|overrides_file = \"$T/limits.conf\"|" \
    -e "s|^path = \"/var/lib/spamgate/bayes\"|path = \"$T/replay-bayes\"|" "$CONF" > "$T/replay.toml"
"$BIN" scan -q --json --config "$T/replay.toml" "$SPAM" > "$T/r_in" 2> "$T/r_in.err"
check "replay: inbound spam is tagged, the milter accepts it" \
  bash -c "grep -qF '\"action\":\"tag\"' '$T/r_in' && grep -qF '\"milter\":\"accept\"' '$T/r_in'"
"$BIN" scan -q --config "$T/replay.toml" --login alice@customer.example --rewrite "$SPAM" > "$T/r_out.eml" 2> "$T/r_out.err"
check "replay: an authenticated sender's spam is not subject-tagged" bash -c "! grep -q 'Subject: \[SPAM\]' '$T/r_out.eml'"
check "replay: ... and carries the outbound sender tag" has "$T/r_out.eml" "X-Spamgate-Sender: "
"$BIN" scan -q --config "$T/replay.toml" --login alice@customer.example "$SPAM" > "$T/r_line" 2>&1
check "replay: the line names the class and the outbound guard" \
  bash -c "grep -q 'action=accept .*class=authenticated outbound=spam' '$T/r_line'"
"$BIN" scan -q --json --config "$T/replay.toml" "$SRC/corpus/malware/eicar_attachment.eml" > "$T/r_av" 2>&1
check "replay: malware gets the milter's 550 reply" \
  bash -c "grep -qF '\"milter\":\"reject\"' '$T/r_av' && grep -qF '\"reply\":\"550 5.7.1 Your email was rejected because it contains the' '$T/r_av'"
"$BIN" scan -q --config "$T/replay.toml" --rewrite "$SRC/corpus/malware/eicar_attachment.eml" > "$T/r_av.eml" 2> "$T/r_av.err"
check "replay: a refused message is printed unchanged, its reply on stderr" \
  bash -c "cmp -s '$SRC/corpus/malware/eicar_attachment.eml' '$T/r_av.eml' && grep -q 'not delivered: 550 5.7.1' '$T/r_av.err'"

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
check "explain names where each rule is defined and where its score is set" \
  grep -q "rule at .*/rules/[0-9a-z_]*\.cf:[0-9]*, score set at .*/rules/[0-9a-z_]*\.cf:[0-9]*" "$T/explain"
check "explain gives ready-made local lines: welcomelist_auth first" grep -q "^        welcomelist_auth \*@" "$T/explain"
check "... and a lowered score with where it was set" grep -q "^        score [A-Z_0-9]* [0-9.]*  # was [0-9.]* at .*\.cf:[0-9]*" "$T/explain"

# issue 22: scan prints each message once; its log line only with --verbose
"$BIN" scan --config "$CONF" "$HAM" > "$T/scan_out" 2> "$T/scan_err"
check "scan: one line on stdout" test "$(wc -l < "$T/scan_out")" -eq 1
check "scan: no log line by default" test ! -s "$T/scan_err"
"$BIN" scan --verbose --config "$CONF" "$HAM" > "$T/scan_out" 2> "$T/scan_err"
check "scan --verbose: the log line too" grep -q "info: .*score=.* action=accept" "$T/scan_err"

# issue 22: [log] target = "journal" (or stderr that systemd connected to the
# journal): journald's native protocol with priorities and facility mail. A
# stand-in for journald's socket in a private mount namespace takes the
# entries; without any journal the lines go to stderr.
printf 'rules_dir = "%s/rules"\n[clamav]\nenabled = false\n[bayes]\npath = "%s/jb/bayes"\n[log]\ntarget = "journal"\n' \
  "$SRC" "$T" > "$T/journal.toml"
if [ "$(id -u)" -eq 0 ] && command -v unshare > /dev/null; then
  mkdir -p /run/systemd
  unshare -m bash -c "mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal &&
    { /usr/bin/python3 '$SRC/tests/cli/journal_listener.py' /run/systemd/journal/socket '$T/journal.out' & } &&
    for i in \$(seq 1 600); do [ -e '$T/journal.out.ready' ] && break; sleep 0.1; done &&
    '$BIN' scan --verbose --config '$T/journal.toml' '$HAM' > /dev/null 2> '$T/journal.err';
    for i in \$(seq 1 600); do grep -qs '^MESSAGE=.*action=' '$T/journal.out' && break; sleep 0.1; done; kill %1" 2> /dev/null
  check "journal: the verdict line is an entry with priority info (6)" \
    bash -c "grep -B3 -A3 '^MESSAGE=.*score=.* action=accept' '$T/journal.out' | grep -q '^PRIORITY=6$'"
  check "journal: facility mail (2), identifier spamgate" \
    bash -c "grep -q '^SYSLOG_FACILITY=2$' '$T/journal.out' && grep -q '^SYSLOG_IDENTIFIER=spamgate$' '$T/journal.out'"
  check "journal: no timestamp or pid in the message (the journal keeps them)" \
    bash -c "! grep -q '^MESSAGE=20[0-9][0-9]-.*spamgate\[' '$T/journal.out'"
  check "journal: nothing on stderr while the journal takes the entries" test ! -s "$T/journal.err"
fi
(unset JOURNAL_STREAM; unshare -m bash -c "mount -t tmpfs tmpfs /run/systemd 2> /dev/null; '$BIN' scan --verbose --config '$T/journal.toml' '$HAM'" > /dev/null 2> "$T/nojournal.err")
check "no journal: the line goes to stderr, not lost" grep -q "spamgate\[[0-9]*\] info: .*action=accept" "$T/nojournal.err"

# issue 22: --opt=value and -- accepted, conflicting options refused
"$BIN" scan --config="$CONF" -- "$HAM" > "$T/eq.out" 2>&1
check "scan --config=F -- FILE works" grep -q "ham score=" "$T/eq.out"
"$BIN" scan --json --rewrite --config "$CONF" "$HAM" > "$T/conflict.out" 2>&1
check "--json with --rewrite: refused (exit 2)" test $? -eq 2
check "... saying why" grep -q "spamgate: --json and --rewrite cannot be combined" "$T/conflict.out"
"$BIN" scan --config "$CONF" --config "$CONF" "$HAM" > "$T/twice.out" 2>&1
check "an option given twice: refused" grep -q "spamgate: --config is given twice" "$T/twice.out"
"$BIN" scan --network=yes --config "$CONF" "$HAM" > "$T/novalue.out" 2>&1
check "a switch given a value: refused" grep -q "spamgate: --network takes no value" "$T/novalue.out"

# issue 22: scan --json carries the Message-ID, each rule's description and
# matched text, and a file it could not read as a JSON line
"$BIN" scan -q --json --config "$CONF" "$SRC/corpus/ham/meeting_notes.eml" "$SPAM" "$T/no-such-file.eml" > "$T/json.out" 2> /dev/null
check "scan --json: the Message-ID" grep -q '"message_id":"<20261103152011.4411@mail.example.org>"' "$T/json.out"
check "scan --json: a rule's description and matched text" \
  grep -q '"description":"Says you won a lottery, prize or sweepstake","matched":"[^"]*","name":"MONEY_LOTTERY"' "$T/json.out"
check "scan --json: an unreadable file is a JSON line with its error" grep -q '^{"error":"[^"]*","file":"[^"]*no-such-file.eml"}$' "$T/json.out"

# lint: broken regex named by file and line, exit 1
printf 'body GOOD /fine/\nbody BROKEN /(unclosed/\n' > "$T/bad.cf"
"$BIN" lint "$T/bad.cf" > "$T/lint" 2>&1
check "lint exits 1 on error" test $? -eq 1
check "lint names file:line" has "$T/lint" "$T/bad.cf:2: rule 'BROKEN': bad regex"
"$BIN" lint --config "$CONF" > "$T/lint_ok" 2>&1
check "lint of shipped config and rules is clean" test $? -eq 0
# issue 22: a local file alone lints with the shipped rules and every check's symbols
printf 'score SPF_FAIL 3\nscore BAYES_99 4\nscore MONEY_LOTTERY 1\nmeta LOCAL_BOTH SPF_FAIL && MONEY_LOTTERY\nscore LOCAL_BOTH 1\nwelcomelist_auth *@partner.example\n' > "$T/local_ok.cf"
"$BIN" lint --config "$CONF" "$T/local_ok.cf" > "$T/lint_local" 2>&1
check "lint FILE: a local file scoring SPF, Bayes and shipped rules is clean" test $? -eq 0
check "... and says so" grep -q "^ok: [0-9]* rules" "$T/lint_local"
printf 'score SEO_SUBMT 1\nbodyy X /y/\n' > "$T/local_typo.cf"
"$BIN" lint --config "$CONF" "$T/local_typo.cf" > "$T/lint_typo" 2>&1
check "lint: a misspelt rule name gets 'did you mean'" has "$T/lint_typo" "$T/local_typo.cf:1: score for unknown symbol 'SEO_SUBMT'; did you mean SEO_SUBMIT?"
check "lint: a misspelt directive gets 'did you mean'" has "$T/lint_typo" "$T/local_typo.cf:2: unknown directive 'bodyy'; did you mean body?"
printf 'required_score 6\nwelcomelist_from *@partner.example\n' > "$T/local_sa.cf"
"$BIN" lint --config "$CONF" "$T/local_sa.cf" > "$T/lint_sa" 2>&1
check "lint: required_score points to the threshold key" has "$T/lint_sa" "$T/local_sa.cf:1: warning: required_score is not read from rules files: set 'threshold' in spamgate.toml"
check "lint: a plain welcomelist_from names the safer form" has "$T/lint_sa" "$T/local_sa.cf:2: warning: welcomelist_from matches a From address anyone can write"
# lint --settings: a copy of the recipient settings file, checked before it goes in place
printf 'example.com threshold 8\nceo@example.com reject_threshold 6\n' > "$T/recipients_new.cf"
"$BIN" lint --config "$CONF" --settings "$T/recipients_new.cf" > "$T/lint_settings" 2>&1
check "lint --settings: a reject level under the recipient's merged threshold is an error" \
  bash -c "[ $? -eq 1 ] && grep -q 'recipients_new.cf:2: for ceo@example.com reject_threshold 6 must be greater than its threshold 8' '$T/lint_settings'"
printf 'example.com threshold 8\nceo@example.com reject_threshold 16\n' > "$T/recipients_new.cf"
"$BIN" lint --config "$CONF" --settings "$T/recipients_new.cf" > "$T/lint_settings" 2>&1
check "lint --settings: a good file passes, counted" \
  bash -c "[ $? -eq 0 ] && grep -q '2 recipient(s) with settings in $T/recipients_new.cf' '$T/lint_settings'"

# config errors: exit 2 with file:line
printf 'rules_dir = "%s/rules"\nthreshhold = 5\n' "$SRC" > "$T/bad.toml"
"$BIN" scan --config "$T/bad.toml" "$HAM" > /dev/null 2> "$T/cfgerr"
check "bad config exits 2" test $? -eq 2
check "bad config names file:line" has "$T/cfgerr" "$T/bad.toml:2: unknown key 'threshhold'"

# bench runs and reports its numbers
"$BIN" bench --config "$CONF" "$SRC/corpus" > "$T/bench"
check "bench reports throughput" grep -q "messages/s" "$T/bench"
check "bench reports peak RSS" grep -q "peak RSS" "$T/bench"

# learn: each message once (by digest), the other class moves it, --forget, --stats
mkdir -p "$T/learn/rules"
printf 'body LOTTERY /lottery/i\nscore LOTTERY 6\nbody MEDS /cheap meds|discount pharmacy/i\nscore MEDS 5.5\n' \
  > "$T/learn/rules/50_eval.cf"
cat "$SRC/rules/70_bayes.cf" > "$T/learn/rules/70_bayes.cf"
cat > "$T/learn/sg.toml" <<CF
rules_dir = "rules"
local_rules = ""
hostname = "mx1.example.net"
[bayes]
path = "db"
min_ham = 2
min_spam = 2
CF
EV="$SRC/corpus/eval"
"$BIN" learn --config "$T/learn/sg.toml" --ham "$EV/ham" > "$T/l1" 2>&1
check "learn: four ham learned" grep -q "ham: 4 messages .*: 4 learned, 0 already learned" "$T/l1"
"$BIN" learn --config "$T/learn/sg.toml" --ham "$EV/ham" > "$T/l2" 2>&1
check "learn: again is not counted twice" grep -q "4 messages .*: 0 learned, 4 already learned" "$T/l2"
check "learn: totals after learning twice" grep -qx "ham: 4" "$T/l2"
"$BIN" learn --config "$T/learn/sg.toml" --spam "$EV/ham/release.eml" "$EV/spam" > "$T/l3" 2>&1
check "learn: the other class moves a message" grep -q "5 messages .*: 4 learned, 0 already learned, 1 moved from ham" "$T/l3"
"$BIN" learn --config "$T/learn/sg.toml" --stats > "$T/l4" 2>&1
check "learn --stats: ham after the move" grep -qx "ham: 3" "$T/l4"
check "learn --stats: spam after the move" grep -qx "spam: 5" "$T/l4"
"$BIN" learn --config "$T/learn/sg.toml" --spam --forget "$EV/ham/release.eml" > "$T/l5" 2>&1
check "learn --forget" grep -q "1 forgotten" "$T/l5"
# an mbox of two messages is two messages
{ printf 'From a@example.org  Mon Nov  2 10:00:00 2026\n'; cat "$EV/ham/budget.eml"; printf '\nFrom b@example.org  Mon Nov  2 10:01:00 2026\n'; cat "$EV/ham/minutes.eml"; } > "$T/two.mbox"
"$BIN" learn --config "$T/learn/sg.toml" --ham "$T/two.mbox" > "$T/l6" 2>&1
check "learn: mbox split into its messages (already learned ones)" grep -q "2 messages .*0 learned, 2 already learned" "$T/l6"
"$BIN" learn --config "$T/learn/sg.toml" --ham > /dev/null 2>&1
check "learn without a path is a usage error" test $? -eq 2
# learn --arf: feedback reports; the originals learned as spam (not a
# headers-only copy, not a not-spam report); other mail refused by name
ARF="$SRC/corpus/arf"
"$BIN" learn --config "$T/learn/sg.toml" --stats > "$T/a0" 2>&1
"$BIN" learn --config "$T/learn/sg.toml" --arf "$ARF/abuse_not_ours.eml" "$ARF/abuse_headers_only.eml" \
  "$ARF/not_spam_report.eml" "$ARF/original_message_id.eml" > "$T/a1" 2> "$T/a1.err"
check "learn --arf: exit 1 when an input is not a report" test $? -eq 1
check "learn --arf: the original learned as spam" grep -q "abuse_not_ours.eml: feedback-type=abuse original <win-77@lotto-board.example>: learned as spam; not sent by one of our accounts" "$T/a1"
check "learn --arf: headers only are not learned" grep -q "abuse_headers_only.eml: .*headers only, not learned" "$T/a1"
check "learn --arf: a not-spam report is not learned" grep -q "not_spam_report.eml: .*not-spam report: not learned, no complaint" "$T/a1"
check "learn --arf: other mail is named and refused" grep -q "original_message_id.eml: not a feedback report: not multipart/report" "$T/a1.err"
check "learn --arf: totals" grep -q "reports: 3 read, 1 learned as spam, 0 complaints counted, 1 unreadable or not reports" "$T/a1"
"$BIN" learn --config "$T/learn/sg.toml" --stats > "$T/a2" 2>&1
check "learn --arf: one more spam in the store" \
  test "$(sed -n 's/^spam: //p' "$T/a2")" -eq $(( $(sed -n 's/^spam: //p' "$T/a0") + 1 ))
"$BIN" learn --config "$T/learn/sg.toml" --arf --ham "$ARF/abuse_not_ours.eml" > /dev/null 2>&1
check "learn --arf with --ham is a usage error" test $? -eq 2
# release: nothing held in a new store; usage errors
"$BIN" release --config "$T/learn/sg.toml" --list > "$T/r1" 2>&1
check "release --list on a new store: no holds" grep -qx "0 hold(s)" "$T/r1"
"$BIN" release --config "$T/learn/sg.toml" > /dev/null 2>&1
check "release without a name is a usage error" test $? -eq 2
"$BIN" release --config "$T/learn/sg.toml" nobody@example.org > "$T/r2" 2>&1
check "release of one not held: exit 1, said so" bash -c "[ $? -eq 1 ] && grep -q 'nobody@example.org was not held' '$T/r2'"
"$BIN" --help > "$T/help" 2>&1
check "--help lists release" grep -q "^  release  lift an outbound hold" "$T/help"
"$BIN" --version > "$T/version" 2>&1
check "--version prints the version" grep -qE "^spamgate [0-9]+\.[0-9]+\.[0-9]+$" "$T/version"
for cmd in milter scan explain lint learn eval bench release; do
  "$BIN" "$cmd" --help > "$T/help-$cmd" 2>&1
  check "$cmd --help: usage on stdout, exit 0" bash -c "[ $? -eq 0 ] && grep -q '^usage: spamgate $cmd' '$T/help-$cmd'"
done

"$BIN" explain --config "$T/learn/sg.toml" "$EV/spam/pills.eml" > "$T/ex" 2>&1
check "explain shows the Bayes band" grep -q "BAYES_9" "$T/ex"
check "explain shows the Bayes probability and strongest tokens" grep -q 'p=[01]\.[0-9]* from [0-9]* tokens; strongest: .*meds' "$T/ex"
check "explain shows the logistic regression's band" grep -qE "LR_(00|05|20|40|50|60|80|95|99)" "$T/ex"
check "explain shows the features that weighed most" grep -qE 'p=[01]\.[0-9]* from [0-9]+ features; heaviest: ' "$T/ex"
# learn --ham and --spam in one command: learned mixed, a summary line per class
sed 's|^path = .*|path = "db2"|' "$T/learn/sg.toml" > "$T/learn/mixed.toml"
"$BIN" learn --config "$T/learn/mixed.toml" --ham "$EV/ham" --spam "$EV/spam" > "$T/m1" 2>&1
check "learn --ham --spam: the ham" grep -q "^ham: 4 messages .*ham and spam mixed): 4 learned" "$T/m1"
check "learn --ham --spam: the spam" grep -q "^spam: 4 messages .*ham and spam mixed): 4 learned" "$T/m1"
# one class alone trains the logistic regression on its first 100 messages only, and says so
for i in $(seq 101); do printf 'From a@example.org  Mon Nov  2 10:00:00 2026\nSubject: note %s\nMessage-ID: <n%s@example.org>\n\nSee you at %s.\n\n' "$i" "$i" "$i"; done > "$T/many.mbox"
"$BIN" learn --config "$T/learn/mixed.toml" --ham "$T/many.mbox" > "$T/m2" 2>&1
check "learn of 101 ham: all learned" grep -q "^ham: 101 messages .*: 101 learned" "$T/m2"
check "learn of 101 ham: the logistic regression only from the first 100" \
  grep -q "^logistic regression: learned from the first 100 messages only; 1 of one class at once" "$T/m2"

# eval: the arithmetic on the tiny labelled set (rules only is exact: LOTTERY
# hits one ham and one spam, MEDS two spam, the loan spam nothing)
"$BIN" eval --config "$T/learn/sg.toml" --ham "$EV/ham" --spam "$EV/spam" --folds 2 --json --hits "$T/hits.jsonl" > "$T/eval.json" 2> "$T/eval.err"
check "eval exits 0" test $? -eq 0
ej() { python3 -c "import json,sys; r=json.load(open('$T/eval.json')); print($1)"; }
check "eval: rules-only false positives 1 of 4" test "$(ej "r['rules']['ham']['false_positives'], r['rules']['ham']['n'], r['rules']['ham']['fp_rate']")" = "1 4 25.0"
check "eval: rules-only detection 3 of 4" test "$(ej "r['rules']['spam']['detected'], r['rules']['spam']['n'], r['rules']['spam']['detection_rate']")" = "3 4 75.0"
check "eval: per directory" test "$(ej "[(s['class'], s['n'], s['over_threshold']) for s in r['rules']['by_source']]")" = "[('ham', 4, 1), ('spam', 4, 3)]"
check "eval: distribution counts every message" test "$(ej "sum(d['ham'] + d['spam'] for d in r['rules']['distribution'])")" = "8"
check "eval: top false-positive rule" test "$(ej "r['top_false_positive_rules'][0]['rule']")" = "LOTTERY"
check "eval: rules+bayes covers every message" test "$(ej "r['rules_bayes']['ham']['n'] + r['rules_bayes']['spam']['n']")" = "8"
check "eval: --hits has one line per message" test "$(wc -l < "$T/hits.jsonl")" -eq 8
check "eval: --hits names the rules of a message" grep -q '"file":"[^"]*winner.eml".*"rules":\["LOTTERY"\]' "$T/hits.jsonl"
# Issue 19: a copy of a campaign (other recipient, other numbers) is one
# near-duplicate cluster with its original, in the same fold; --time-split
# tests each class's newest messages only.
mkdir -p "$T/evdup/spam" && cp "$EV/spam/"*.eml "$T/evdup/spam/"
sed -e 's/^To: team@example.org/To: someone.else@example.net/' -e 's/24 hours/48 hours/' \
    -e 's/^Date: .*/Date: Tue, 3 Nov 2026 09:00:00 +0000/' "$EV/spam/loan.eml" > "$T/evdup/spam/loan_copy.eml"
"$BIN" eval --config "$T/learn/sg.toml" --ham "$EV/ham" --spam "$T/evdup/spam" --folds 3 --time-split --json \
  --hits "$T/hits2.jsonl" > "$T/eval2.json" 2> "$T/eval2.err"
check "eval --time-split exits 0" test $? -eq 0
ej2() { python3 -c "import json,sys; r=json.load(open('$T/eval2.json')); print($1)"; }
check "eval: one cluster of two (the copy), nine messages in eight clusters" \
  test "$(ej2 "r['near_duplicates']['clusters'], r['near_duplicates']['clusters_of_two_or_more'], r['near_duplicates']['messages_in_them']")" = "8 1 2"
hj() { python3 -c "import json; rows={json.loads(l)['file'].rsplit('/',1)[1]: json.loads(l) for l in open('$T/hits2.jsonl')}; print($1)"; }
check "eval: the copy has its original's cluster and fold" test "$(hj "rows['loan.eml']['cluster'] == rows['loan_copy.eml']['cluster'] and rows['loan.eml']['fold'] == rows['loan_copy.eml']['fold']")" = "True"
check "eval: other messages are in other clusters" test "$(hj "len({r['cluster'] for r in rows.values()})")" = "8"
check "eval --time-split: the newest 30% of each class are tested (2 ham, 2 spam)" \
  test "$(ej2 "r['rules_bayes_time_split']['ham']['n'], r['rules_bayes_time_split']['spam']['n'], r['time_split']['spam']['trained']")" = "2 2 3"
check "eval: each classifier alone (bayes, logistic, their mean), cross-validated and by age" \
  test "$(ej2 "sorted({r['classifier'] for r in r['classifiers_alone']}), len(r['classifiers_alone_time_split']), r['classifiers_alone'][0]['ham'] + r['classifiers_alone'][0]['spam']")" = "['bayes', 'logistic', 'mean'] 15 9"
"$BIN" eval --config "$T/learn/sg.toml" --ham "$EV/ham" --spam "$EV/spam" --folds 2 --list 5 > "$T/eval3.txt" 2>&1
check "eval --list: the false positive and its rule" grep -q '^  *[0-9.]*  bayes .*lottery_club.eml  .*LOTTERY' "$T/eval3.txt"
check "eval --list: the missed spam" sh -c "grep -A3 '^MISSED SPAM in' '$T/eval3.txt' | grep -q loan.eml"
"$BIN" eval --config "$T/learn/sg.toml" --ham "$EV/ham" --spam "$EV/spam" --folds-by dates > /dev/null 2>&1
check "eval --folds-by with an unknown way is a usage error" test $? -eq 2
"$BIN" eval --config "$T/learn/sg.toml" --ham "$EV/ham" > /dev/null 2>&1
check "eval without --spam is a usage error" test $? -eq 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
