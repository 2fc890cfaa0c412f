#!/usr/bin/env python3
"""sa_agreement.py - do spamgate and SpamAssassin agree on SpamAssassin's plain rules?

Usage: scripts/sa_agreement.py REF.tsv [--spamgate build/spamgate] [--sa-dir /usr/share/spamassassin]
                                [--sample N] [--every K] [--show N] [--differences OUT.tsv]

REF.tsv comes from scripts/sa_reference.sh (SpamAssassin's rule hits per
message, local tests only). This scans the same messages with
`spamgate scan --json` on SpamAssassin's rules alone (an empty rules dir of
ours first, no network, no Bayes) and compares, per message, the set of hits
of SpamAssassin's plain rules: header/body/rawbody/full/uri/mimeheader regex
rules, and metas none of whose dependencies (transitively) is an eval: test
or a rule of a plugin we do not load. Prints the agreement rate and the
rules that differ most (missed by us / extra in us), with example files.
"""
import argparse
import collections
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

RULE_RE = re.compile(r'^\s*(header|body|rawbody|full|uri|mimeheader|meta)\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.*)$')


def sa_rule_kinds(sa_dir):
    """name -> set of kinds ('eval', 'plain', 'meta'), and meta deps, over every file (ignoring conditions)."""
    kinds = collections.defaultdict(set)
    deps = {}
    for path in sorted(glob.glob(os.path.join(sa_dir, '*.cf'))):
        with open(path, encoding='latin-1') as f:
            for line in f:
                line = re.sub(r'(?<!\\)#.*', '', line)
                m = RULE_RE.match(line)
                if not m:
                    continue
                kind, name, rest = m.groups()
                if kind == 'meta':
                    kinds[name].add('meta')
                    # Every definition's names (an if/else may define a rule twice).
                    deps.setdefault(name, set()).update(set(re.findall(r'\b[A-Za-z_][A-Za-z0-9_]*\b', rest)) - {'rules_matching'})
                elif re.match(r'(?:eval|rbleval):', rest.split()[0] if kind == 'header' and rest.split() else rest):
                    kinds[name].add('eval')
                else:
                    kinds[name].add('plain')
    return kinds, deps


def comparable(kinds, deps, loaded, evals_ok=()):
    """Names whose result does not depend on an eval test (other than those in
    evals_ok) or an unloaded rule."""
    memo = {}

    def ok(n, stack=()):
        if n in memo:
            return memo[n]
        if n in stack:
            return False
        k = kinds.get(n)
        if not k or ('eval' in k and n not in evals_ok) or n not in loaded:
            memo[n] = False
        elif 'meta' in k:
            memo[n] = all(ok(d, stack + (n,)) for d in deps.get(n, ()) if not d.isdigit())
        else:
            memo[n] = True
        return memo[n]

    return {n for n in kinds if ok(n)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('ref')
    ap.add_argument('--spamgate', default='build/spamgate')
    ap.add_argument('--sa-dir', default='/usr/share/spamassassin')
    ap.add_argument('--sample', type=int, default=2000)
    ap.add_argument('--every', type=int, default=7)
    ap.add_argument('--differences', help='write each message whose plain-rule hits differ: path, missed, extra')
    ap.add_argument('--show', type=int, default=25)
    ap.add_argument('--evals', action='store_true', help='list differences including the implemented eval tests')
    a = ap.parse_args()

    ref = {}
    with open(a.ref) as f:
        for line in f:
            path, _, rules = line.rstrip('\n').partition('\t')
            ref[path] = set(r for r in rules.split(',') if r)
    paths = sorted(ref)[::a.every][:a.sample]

    tmp = tempfile.mkdtemp()
    os.mkdir(os.path.join(tmp, 'rules'))
    conf = os.path.join(tmp, 'sa.toml')
    with open(conf, 'w') as f:
        f.write('rules_dirs = ["rules", "%s"]\nlocal_rules = ""\n[bayes]\nenabled = false\n' % a.sa_dir)
    out = subprocess.run([a.spamgate, 'scan', '--config', conf, '--json', '--quiet'] + paths,
                         capture_output=True, text=True)
    ours = {}
    for line in out.stdout.splitlines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        ours[j['file']] = set(r['name'] for r in j.get('rules', []))
    if len(ours) != len(paths):
        print('spamgate scanned %d of %d messages; stderr:\n%s' % (len(ours), len(paths), out.stderr[-2000:]))
        sys.exit(1)

    kinds, deps = sa_rule_kinds(a.sa_dir)
    lint = subprocess.run([a.spamgate, 'lint', '--config', conf, '--list-rules'], capture_output=True, text=True)
    loaded = set(l.split('\t')[0] for l in lint.stdout.splitlines() if l.count('\t') >= 3 and l.split('\t')[1] == 'runs')
    names = comparable(kinds, deps, loaded)
    # The eval tests spamgate implements, and what depends only on them and plain rules.
    with_evals = comparable(kinds, deps, loaded, evals_ok={n for n in loaded if 'eval' in kinds.get(n, ())})
    agree_evals = sum(1 for p in paths if {r for r in ref[p] if r in with_evals} == {r for r in ours[p] if r in with_evals})

    agree = 0
    missed = collections.Counter()
    extra = collections.Counter()
    example = {}
    listed = with_evals if a.evals else names
    diff_out = open(a.differences, 'w') if a.differences else None
    for p in paths:
        if {r for r in ref[p] if r in names} == {r for r in ours[p] if r in names}:
            agree += 1
        elif diff_out:
            diff_out.write('%s\t%s\t%s\n' % (p, ','.join(sorted({r for r in ref[p] if r in names} - ours[p])),
                                             ','.join(sorted({r for r in ours[p] if r in names} - ref[p]))))
        s = {r for r in ref[p] if r in listed}
        o = {r for r in ours[p] if r in listed}
        for r in s - o:
            missed[r] += 1
            example.setdefault(('missed', r), p)
        for r in o - s:
            extra[r] += 1
            example.setdefault(('extra', r), p)
    print('messages: %d; comparable rules: %d (plain rules and metas of plain rules)' % (len(paths), len(names)))
    print('identical sets of plain-rule hits: %d (%.2f%%)' % (agree, 100.0 * agree / len(paths)))
    print('with the eval tests spamgate implements (%d rules): %d (%.2f%%)' % (len(with_evals), agree_evals,
                                                                              100.0 * agree_evals / len(paths)))
    print('\nSpamAssassin hits, spamgate does not (rule, messages, example):')
    for r, n in missed.most_common(a.show):
        print('  %-28s %5d  %s' % (r, n, example[('missed', r)]))
    print('\nspamgate hits, SpamAssassin does not:')
    for r, n in extra.most_common(a.show):
        print('  %-28s %5d  %s' % (r, n, example[('extra', r)]))


if __name__ == '__main__':
    main()
