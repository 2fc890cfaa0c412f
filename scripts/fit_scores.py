#!/usr/bin/env python3
"""fit_scores.py - fit the shipped rule scores to labelled mail, rerunnably.

Run it through scripts/fit_scores.sh, which produces the input with every
rule switched on. Reads the per-message rule hits that `spamgate eval --hits FILE` writes and
fits one score per rule, the way SpamAssassin's score generation does in
spirit: a weighted logistic loss with a margin around the threshold (a false
positive costs --ham-weight times a miss), L2-regularised toward zero, each
score kept within bounds (spam rules 0..--max-score, `tflags nice` rules
-5..0), then rounded to 0.1 and polished: a coordinate search in 0.1 steps
on what is finally counted (ham_weight x false positives + missed spam), since
rounding the smooth fit leaves many messages exactly on the threshold. A second stage fits the BAYES_xx band scores
with the rule scores fixed, from the cross-validated Bayes probabilities in
the same file; a third the LR_xx bands of the logistic regression on top.

Rules whose hits this kind of corpus distorts are not fitted and keep their
hand-set score (FIXED below): archives strip or normalise headers (no
Message-ID, no Received, synthetic X-Priority/X-MimeOLE), so a fit would
learn how the mail was collected instead of what spam is.

Honest numbers: --folds K fits on K-1 parts and scores the held-out part, so
the reported false-positive and detection rates are cross-validated; the
scores written are then fitted on everything. The folds keep near-duplicate
messages together (the "cluster" eval writes; --folds-by file: the old
folds by file name, which put copies of one campaign on both sides).

usage: scripts/fit_scores.py HITS.jsonl [--rules-dir rules] [--out rules/90_fitted_scores.cf]
                                        [--folds 5] [--folds-by cluster|file] [--ham-weight 80] [--bayes-ham-weight 20]
                                        [--max-score 3.5] [--repeats N] [--dry-run]
"""
import argparse
import glob
import hashlib
import json
import math
import os
import re
import sys
import time

THRESHOLD = 5.0
BANDS = ["BAYES_00", "BAYES_05", "BAYES_20", "BAYES_40", "BAYES_50", "BAYES_60", "BAYES_80", "BAYES_95",
         "BAYES_99", "BAYES_999"]
BAND_EDGES = [(0.01, "BAYES_00"), (0.05, "BAYES_05"), (0.20, "BAYES_20"), (0.40, "BAYES_40"),
              (0.60, "BAYES_50"), (0.80, "BAYES_60"), (0.95, "BAYES_80"), (0.99, "BAYES_95")]

# Not fitted: what these see in an archive is not what they see on a gateway.
FIXED = {
    "NO_MESSAGE_ID": "archives strip Message-ID (most Paliouras and Honeypot spam has none; all ham does)",
    "MSGID_NO_DOMAIN": "Message-ID rewritten by archives",
    "NO_DATE_HEADER": "Date normalised by archives",
    "DATE_NUMERIC_TZ_BAD": "Date normalised by archives",
    "NO_TO_HEADER": "To stripped or rewritten by archives",
    "TO_UNDISCLOSED": "To rewritten by archives",
    "X_PRIORITY_HIGH": "X-Priority added to every Paliouras spam by its export",
    "MULTIPART_NO_MIME_VERSION": "MIME-Version added or dropped by exports",
    "REPLYTO_DIFF_DOMAIN": "Reply-To dropped by the Enron export",
    "TO_MANY_RCPT": "recipients rewritten by archives",
}


def band(p):
    for edge, name in BAND_EDGES:
        if p < edge:
            return name
    return "BAYES_99"


def read_rules(rules_dir, skip):
    """Rule names with their last `score` and whether they are `tflags nice`."""
    scores, nice, defined = {}, set(), set()
    for path in sorted(glob.glob(os.path.join(rules_dir, "*.cf"))):
        if os.path.abspath(path) == os.path.abspath(skip):
            continue
        for line in open(path, encoding="utf-8", errors="replace"):
            f = line.split()
            if len(f) < 2 or f[0].startswith("#"):
                continue
            if f[0] in ("header", "body", "rawbody", "full", "uri", "meta") and not f[1].startswith("__"):
                defined.add(f[1])
            elif f[0] == "score" and len(f) >= 3:
                try:
                    scores[f[1]] = float(f[2])
                except ValueError:
                    pass
            elif f[0] == "tflags" and "nice" in f[2:]:
                nice.add(f[1])
    return scores, nice, defined


def sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def fit(samples, n_feat, base, bounds, ham_weight, l2=0.002, epochs=300, lr=0.05, margin=0.5, k=1.5):
    """Weighted margin-logistic fit by Adam; samples = (features, spam, index)."""
    w = [0.0] * n_feat
    m = [0.0] * n_feat
    v = [0.0] * n_feat
    n = float(len(samples))
    for t in range(1, epochs + 1):
        g = [0.0] * n_feat
        for feats, spam, i in samples:
            z = base[i] + sum(w[j] for j in feats) - THRESHOLD
            if spam:
                d = -k * sigmoid(-(z - margin) * k)
            else:
                d = ham_weight * k * sigmoid((z + margin) * k)
            for j in feats:
                g[j] += d
        for j in range(n_feat):
            gj = g[j] / n + l2 * w[j]
            m[j] = 0.9 * m[j] + 0.1 * gj
            v[j] = 0.999 * v[j] + 0.001 * gj * gj
            mh = m[j] / (1 - 0.9 ** t)
            vh = v[j] / (1 - 0.999 ** t)
            w[j] -= lr * mh / (math.sqrt(vh) + 1e-8)
            lo, hi = bounds[j]
            w[j] = min(max(w[j], lo), hi)
    return [round(x, 1) for x in w]


def polish(samples, w, base, bounds, ham_weight, passes=20):
    """Coordinate search on the rounded scores, in steps of 0.1, on what is
    finally counted: ham_weight x false positives + missed spam (spam when the
    score, rounded to 0.1, is greater than the threshold). The logistic fit
    ends near this optimum but its rounding leaves many messages exactly on
    the threshold (not spam), which a 0.1 step moves."""
    tenths = [int(round(x * 10)) for x in w]
    lo = [int(round(b[0] * 10)) for b in bounds]
    hi = [int(round(b[1] * 10)) for b in bounds]
    limit = int(round(THRESHOLD * 10))
    score = {}
    users = [[] for _ in w]
    for feats, spam, i in samples:
        score[i] = int(round(base[i] * 10)) + sum(tenths[j] for j in feats)
        for j in feats:
            users[j].append((i, spam))

    def cost(s, spam):
        return (s <= limit) if spam else ham_weight * (s > limit)

    for _ in range(passes):
        changed = False
        for j in range(len(w)):
            for step in (1, -1):
                if not lo[j] <= tenths[j] + step <= hi[j]:
                    continue
                delta = sum(cost(score[i] + step, spam) - cost(score[i], spam) for i, spam in users[j])
                if delta < 0:
                    tenths[j] += step
                    for i, _ in users[j]:
                        score[i] += step
                    changed = True
                    break
        if not changed:
            break
    return [t / 10.0 for t in tenths]


def rates(samples, w, base):
    ham = spam = fp = det = 0
    for feats, is_spam, i in samples:
        s = round(base[i] + sum(w[j] for j in feats), 1)
        over = s > THRESHOLD + 1e-9
        if is_spam:
            spam += 1
            det += over
        else:
            ham += 1
            fp += over
    return fp, ham, det, spam


def fit_polished(train, nfeat, base, bounds, weight, polish_it, epochs=300):
    """The logistic fit, then (unless polish_it is False) the 0.1-step polish."""
    w = fit(train, nfeat, base, bounds, weight, epochs=epochs)
    return polish(train, w, base, bounds, weight) if polish_it else w


def cross_validated(samples, rows, a, nfeat, base, bounds, weight, epochs=300, seed=0):
    """[false positives, ham, detected, spam] over the folds, each scored by a fit on the others."""
    cv = [0, 0, 0, 0]
    fold = {s[2]: fold_of(rows[s[2]], a.folds, a.folds_by, seed) for s in samples}
    for f in range(a.folds):
        train = [s for s in samples if fold[s[2]] != f]
        test = [s for s in samples if fold[s[2]] == f]
        w = fit_polished(train, nfeat, base, bounds, weight, a.polish, epochs)
        cv = [x + y for x, y in zip(cv, rates(test, w, base))]
    return cv


def fold_of(row, folds, by="cluster", seed=0):
    """The cross-validation fold of a message: its near-duplicate cluster's
    (`spamgate eval` writes "cluster"; copies of one campaign are one cluster,
    so a rule whose weight comes from one campaign is not rewarded on a copy
    of it), or with by="file" a hash of its file name (copies on both sides).
    seed > 0: another assignment of the same clusters to folds (--repeats)."""
    if by == "cluster" and "cluster" in row:
        if seed == 0:
            return int(row["cluster"]) % folds
        key = f"{seed}:{row['cluster']}"
    else:
        key = row["file"] if seed == 0 else f"{seed}:{row['file']}"
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % folds


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hits")
    ap.add_argument("--rules-dir", default="rules")
    ap.add_argument("--out", default="rules/90_fitted_scores.cf")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--folds-by", choices=["cluster", "file"], default="cluster",
                    help="cross-validation folds keep near-duplicates together (default) or split by file")
    ap.add_argument("--ham-weight", type=float, default=80.0, help="cost of a false positive vs a miss")
    ap.add_argument("--bayes-ham-weight", type=float, default=20.0, help="the same for the Bayes bands")
    ap.add_argument("--max-score", type=float, default=3.5)
    ap.add_argument("--min-hits", type=int, default=5, help="rules hit fewer times keep their score")
    ap.add_argument("--no-polish", dest="polish", action="store_false",
                    help="skip the 0.1-step search on the counted errors after the logistic fit")
    ap.add_argument("--repeats", type=int, default=1,
                    help="also cross-validate the rules-only fit on N-1 other assignments of the clusters to "
                         "folds and report the mean and range (one rule moves the figure less than one split does)")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()

    hand, nice, defined = read_rules(a.rules_dir, a.out)
    rows = [json.loads(l) for l in open(a.hits, encoding="utf-8")]
    counts = {}
    for r in rows:
        for name in r["rules"]:
            c = counts.setdefault(name, [0, 0])
            c[1 if r["spam"] else 0] += 1
    fitted = sorted(n for n in counts if n in defined and n not in FIXED and not n.startswith(("BAYES_", "LR_"))
                    and sum(counts[n]) >= a.min_hits)
    index = {n: j for j, n in enumerate(fitted)}
    bounds = [(-5.0, 0.0) if n in nice else (0.0, a.max_score) for n in fitted]
    base = []  # score of the rules not fitted (hand scores), per message
    samples = []
    for i, r in enumerate(rows):
        base.append(sum(hand.get(n, 0.0) for n in r["rules"] if n not in index and not n.startswith(("BAYES_", "LR_"))))
        samples.append(([index[n] for n in r["rules"] if n in index], r["spam"], i))

    t0 = time.time()
    # Cross-validated rates of the rules-only fit.
    cv = cross_validated(samples, rows, a, len(fitted), base, bounds, a.ham_weight)
    w = fit_polished(samples, len(fitted), base, bounds, a.ham_weight, a.polish)
    ins = rates(samples, w, base)

    # Stage 2: Bayes bands on top of the (rounded) rule scores.
    rule_score = [base[i] + sum(w[j] for j in feats) for feats, _, i in samples]
    bidx = {b: j for j, b in enumerate(BANDS)}
    bbounds = [(-3.0, 0.0)] * 4 + [(0.0, 2.0), (0.0, 4.0), (0.0, 4.8), (0.0, 5.5), (0.0, 5.5), (0.0, 2.0)]
    bsamples = []
    for feats, spam, i in samples:
        p = rows[i].get("bayes", -1)
        bf = []
        if p is not None and p >= 0:
            bf.append(bidx[band(p)])
            if p >= 0.999:
                bf.append(bidx["BAYES_999"])
        bsamples.append((bf, spam, i))
    bcv = cross_validated(bsamples, rows, a, len(BANDS), rule_score, bbounds, a.bayes_ham_weight, epochs=200)
    bw = fit_polished(bsamples, len(BANDS), rule_score, bbounds, a.bayes_ham_weight, a.polish, epochs=200)
    bins = rates(bsamples, bw, rule_score)

    def pct(x, n):
        return 100.0 * x / n if n else 0.0

    # Stage 3 (issue 19): the online logistic regression's probability
    # (eval's "logistic", trained on the same folds as the product learns:
    # once, ham and spam mixed) as bands LR_xx on top of the rules and the
    # Bayes bands, fitted the same way.
    lbands = ["LR_" + b[len("BAYES_"):] for b in BANDS if b != "BAYES_999"]
    lidx = {b: j for j, b in enumerate(lbands)}
    both = [0.0] * len(rows)
    for bf, _, i in bsamples:
        both[i] = rule_score[i] + sum(bw[j] for j in bf)
    lsamples = []
    for _, spam, i in bsamples:
        p = rows[i].get("logistic", -1)
        lsamples.append(([lidx["LR_" + band(p)[len("BAYES_"):]]] if p is not None and p >= 0 else [], spam, i))
    lbounds = bbounds[:len(lbands)]
    lcv = cross_validated(lsamples, rows, a, len(lbands), both, lbounds, a.bayes_ham_weight, epochs=200)
    lw = fit_polished(lsamples, len(lbands), both, lbounds, a.bayes_ham_weight, a.polish, epochs=200)
    lins = rates(lsamples, lw, both)
    lr_report = (f"\nrules + Bayes + logistic regression, {a.folds}-fold CV of the fit: FP {lcv[0]}/{lcv[1]} = "
                 f"{pct(lcv[0], lcv[1]):.2f}%, detection {lcv[2]}/{lcv[3]} = {pct(lcv[2], lcv[3]):.2f}% (in-sample: "
                 f"FP {pct(lins[0], lins[1]):.2f}%, detection {pct(lins[2], lins[3]):.2f}%)")

    report = (f"folds by {a.folds_by}\n"
              f"rules only, {a.folds}-fold CV of the fit: FP {cv[0]}/{cv[1]} = {pct(cv[0], cv[1]):.2f}%, "
              f"detection {cv[2]}/{cv[3]} = {pct(cv[2], cv[3]):.2f}% (in-sample: FP {pct(ins[0], ins[1]):.2f}%, "
              f"detection {pct(ins[2], ins[3]):.2f}%)\n"
              f"rules + Bayes, {a.folds}-fold CV of the fit: FP {bcv[0]}/{bcv[1]} = {pct(bcv[0], bcv[1]):.2f}%, "
              f"detection {bcv[2]}/{bcv[3]} = {pct(bcv[2], bcv[3]):.2f}% (in-sample: FP {pct(bins[0], bins[1]):.2f}%, "
              f"detection {pct(bins[2], bins[3]):.2f}%)")
    report += lr_report
    if a.repeats > 1:
        runs = [cv] + [cross_validated(samples, rows, a, len(fitted), base, bounds, a.ham_weight, seed=k)
                       for k in range(1, a.repeats)]
        fps = [pct(r[0], r[1]) for r in runs]
        dets = [pct(r[2], r[3]) for r in runs]
        report += (f"\nrules only, {a.folds}-fold CV over {a.repeats} fold assignments: FP mean {sum(fps) / len(fps):.2f}% "
                   f"({min(fps):.2f}-{max(fps):.2f}), detection mean {sum(dets) / len(dets):.2f}% "
                   f"({min(dets):.2f}-{max(dets):.2f})")
    print(report)
    print(f"fitted {len(fitted)} rules + {len(BANDS)} Bayes bands + {len(lbands)} logistic regression bands "
          f"on {len(rows)} messages in {time.time() - t0:.0f} s")
    if a.dry_run:
        for n, s in sorted(zip(fitted, w), key=lambda x: -x[1]):
            print(f"  {n:28s} {s:5.1f}  (hand {hand.get(n, 0):4.1f}; ham {counts[n][0]}, spam {counts[n][1]})")
        for n, s in list(zip(BANDS, bw)) + list(zip(lbands, lw)):
            print(f"  {n:28s} {s:5.1f}")
        return
    with open(a.out, "w", encoding="utf-8") as out:
        out.write("# 90_fitted_scores.cf - GENERATED by scripts/fit_scores.py; do not edit by hand:\n"
                  "# support staff override scores in conf/local.cf (read after every rules file).\n#\n"
                  "# regenerate: scripts/fit_scores.sh [CORPUS] (eval with every rule on, then this fit)\n#\n")
        for line in report.splitlines():
            out.write(f"# {line}\n")
        out.write("#\n# Not fitted (hand score kept), because archives distort them:\n")
        for n, why in sorted(FIXED.items()):
            out.write(f"#   {n}: {why}\n")
        out.write("#\n# score NAME fitted  # hits in ham / spam of the training mail\n")
        for n, s in zip(fitted, w):
            out.write(f"score {n:28s} {s:4.1f}  # {counts[n][0]} / {counts[n][1]}\n")
        for n, s in list(zip(BANDS, bw)) + list(zip(lbands, lw)):
            out.write(f"score {n:28s} {s:4.1f}\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
