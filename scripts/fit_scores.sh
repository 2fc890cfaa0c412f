#!/usr/bin/env bash
# Refits rules/90_fitted_scores.cf on a labelled corpus, from scratch:
# every rule runs with its hand-set score (the previous fitted file and the
# site's local.cf are left out, since `score NAME 0` would switch a rule off
# and the fit would never see it again), `spamgate eval` writes the
# per-message hits (Bayes cross-validated), scripts/fit_scores.py fits.
# usage: scripts/fit_scores.sh [CORPUS] [fit_scores.py options]   (default ../shared/corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
C=${1:-../shared/corpus}
shift || true
T=$(mktemp -d /tmp/spamgate-fit.XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir "$T/rules"
for f in rules/*.cf; do
  [ "$(basename "$f")" = 90_fitted_scores.cf ] || cp "$f" "$T/rules/"
done
sed -e "s|^rules_dir = .*|rules_dir = \"$T/rules\"|" -e 's|^local_rules = .*|local_rules = ""|' \
  bench/corpus-eval.toml > "$T/eval.toml"
build/spamgate eval --config "$T/eval.toml" --hits "$T/hits.jsonl" \
  --ham "$C/ham/enron" "$C/ham/sa_easy_ham" "$C/ham/sa_hard_ham" \
  --spam "$C/spam/bruceg" "$C/spam/honeypot" "$C/spam/paliouras" "$C/spam/sa_spam" > /dev/null || true
python3 scripts/fit_scores.py "$T/hits.jsonl" --rules-dir rules --out rules/90_fitted_scores.cf "$@"
