#!/bin/bash
# sa_reference.sh - SpamAssassin's own rule hits for a set of messages, as the
# reference for `spamgate` with SpamAssassin's rules (issue 20).
#
# Usage: scripts/sa_reference.sh OUT.tsv FILE_OR_DIR...
# Starts Debian's spamd on 127.0.0.1 with local tests only (-L: no DNS, no
# network), no Bayes and no auto-welcomelist (score set 0), and writes one
# line per message: path TAB comma-separated rule names (spamc -y).
# Needs the spamassassin and spamc packages.
set -euo pipefail
out=$1; shift
port=${SA_PORT:-27830}
work=$(mktemp -d)
trap 'kill "$(cat "$work/spamd.pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
chmod 755 "$work"; mkdir "$work/site"
cp /etc/spamassassin/*.pre "$work/site/"
printf 'use_bayes 0\nbayes_auto_learn 0\nuse_auto_whitelist 0\nskip_rbl_checks 1\ndns_available no\n' > "$work/site/local.cf"
spamd --listen="127.0.0.1:$port" -L --max-children=2 --min-children=2 -u nobody \
  --siteconfigpath="$work/site" -s "$work/spamd.log" -r "$work/spamd.pid" -d
for _ in $(seq 1 120); do spamc -d 127.0.0.1 -p "$port" -K >/dev/null 2>&1 && break; sleep 1; done
find "$@" -type f -name '*.eml' | sort > "$work/list"
# spamc -y prints the rule names; -s lifts its 500 KB cap (spamgate scans 1 MB).
xargs -a "$work/list" -P 2 -I{} sh -c \
  'printf "%s\t%s\n" "$1" "$(spamc -d 127.0.0.1 -p '"$port"' -y -s 20000000 -t 120 < "$1")"' _ {} > "$out"
echo "$(wc -l < "$out") messages -> $out"
