#!/usr/bin/env python3
"""sa_eval_rank.py - SpamAssassin's eval: rules ranked by their hits on a corpus.

Usage: scripts/sa_eval_rank.py REF.tsv [--sa-dir /usr/share/spamassassin] [--spamgate build/spamgate] [--config F]

REF.tsv comes from scripts/sa_reference.sh (SpamAssassin's rule hits per
message). Prints each eval rule SpamAssassin reported (sub-rules "__" are
never reported), its eval function, its hits, whether spamgate implements it
(`spamgate lint --list-rules` says "runs"), and the line the issue asks for:
"eval rules implemented: N of M, carrying X% of SpamAssassin's hits".
"""
import argparse
import collections
import glob
import os
import re
import subprocess
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument('ref')
ap.add_argument('--sa-dir', default='/usr/share/spamassassin')
ap.add_argument('--spamgate', default='build/spamgate')
ap.add_argument('--top', type=int, default=40)
a = ap.parse_args()

evals = {}
for path in sorted(glob.glob(os.path.join(a.sa_dir, '*.cf'))):
    with open(path, encoding='latin-1') as f:
        for line in f:
            m = re.match(r'^\s*(header|body|rawbody|full|uri)\s+([A-Za-z_][A-Za-z0-9_]*)\s+(?:eval|rbleval):(\w+)', line)
            if m:
                evals[m.group(2)] = m.group(3)
hits = collections.Counter()
with open(a.ref) as f:
    for line in f:
        _, _, rules = line.rstrip('\n').partition('\t')
        for r in rules.split(','):
            if r in evals:
                hits[r] += 1
tmp = tempfile.mkdtemp()
os.mkdir(os.path.join(tmp, 'rules'))
conf = os.path.join(tmp, 'sa.toml')
with open(conf, 'w') as f:
    f.write('rules_dirs = ["rules", "%s"]\nlocal_rules = ""\n[bayes]\nenabled = false\n' % a.sa_dir)
out = subprocess.run([a.spamgate, 'lint', '--config', conf, '--list-rules'], capture_output=True, text=True).stdout
runs = set(l.split('\t')[0] for l in out.splitlines() if l.count('\t') >= 3 and l.split('\t')[1] == 'runs')
total = sum(hits.values())
done = sum(n for r, n in hits.items() if r in runs)
names = set(evals)
print('eval rules implemented: %d of %d, carrying %.1f%% of SpamAssassin\'s eval-rule hits on the corpus (%d of %d)'
      % (len(names & runs), len(names), 100.0 * done / max(1, total), done, total))
print('\n%-28s %-40s %6s  %s' % ('rule', 'eval', 'hits', 'spamgate'))
for r, n in hits.most_common(a.top):
    print('%-28s %-40s %6d  %s' % (r, evals[r], n, 'runs' if r in runs else '-'))
