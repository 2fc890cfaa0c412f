#!/bin/bash
# sa_reference.sh - SpamAssassin's own rule hits for a set of messages, as the
# reference for `spamgate` with SpamAssassin's rules (issue 20).
#
# Usage: scripts/sa_reference.sh OUT.tsv FILE_OR_DIR|@LIST...
# (@LIST: a file naming one message per line.)
# Runs SpamAssassin as `spamassassin -L -t` does (local tests only: no DNS,
# no network), with no Bayes and no auto-welcomelist (score set 0), in two
# workers (scripts/sa_reference.pl), and writes one line per message: path
# TAB comma-separated rule names. Needs the spamassassin package.
# (Not spamd: it keeps the first message's capture values in
# GB_CUSTOM_HTM_URI's regex, see sa_reference.pl.)
set -euo pipefail
out=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/site"
cp /etc/spamassassin/*.pre "$work/site/"
printf 'use_bayes 0\nbayes_auto_learn 0\nuse_auto_whitelist 0\nskip_rbl_checks 1\ndns_available no\n' > "$work/site/local.cf"
for a in "$@"; do
  if [[ $a == @* ]]; then cat "${a#@}"; else find "$a" -type f -name '*.eml'; fi
done | sort > "$work/list"
split -n l/2 "$work/list" "$work/part."
for p in "$work"/part.??; do perl "$here/sa_reference.pl" "$work/site" < "$p" > "$p.tsv" & done
wait
cat "$work"/part.??.tsv > "$out"
echo "$(wc -l < "$out") messages -> $out"
