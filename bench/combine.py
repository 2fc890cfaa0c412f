#!/usr/bin/env python3
"""combine.py - what combining rules on top of the classifiers' bands would do
(issue 19, part 3), measured before building any: reads `spamgate eval
--leave-one-source-out --hits FILE` (each message's rules-only score and its
cross-validated and leave-one-source-out probabilities of Bayes and the
logistic regression) and the shipped band scores, and prints false positives
and detection at the threshold for each way, cross-validated and with a
whole source unseen.

  guard: a message the rules call clean (rules-only score <= R) that only one
         classifier calls spam (p >= 0.95) is not tagged, unless that one is
         extreme (p >= E);
  agree: a message both call spam (p >= A) is tagged (unless a rule scored
         it -5 or less: a welcomelist).

usage: python3 bench/combine.py HITS.jsonl [--scores rules/90_fitted_scores.cf] [--threshold 5]
"""
import argparse
import json
import re

EDGES = [0.01, 0.05, 0.20, 0.40, 0.60, 0.80, 0.95, 0.99]
NAMES = ["00", "05", "20", "40", "50", "60", "80", "95", "99"]


def band(p):
    i = 0
    while i < len(EDGES) and p >= EDGES[i]:
        i += 1
    return NAMES[i]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hits")
    ap.add_argument("--scores", default="rules/90_fitted_scores.cf")
    ap.add_argument("--threshold", type=float, default=5.0)
    a = ap.parse_args()
    score = {}
    for line in open(a.scores, encoding="utf-8"):
        m = re.match(r"score\s+(\S+)\s+(-?[\d.]+)", line)
        if m:
            score[m.group(1)] = float(m.group(2))
    rows = [json.loads(l) for l in open(a.hits, encoding="utf-8")]

    def rate(kb, kl, guard=None, agree=None):
        fp = det = nh = ns = 0
        for r in rows:
            pb, pl = r.get(kb, -1), r.get(kl, -1)
            if pb is None or pl is None or pb < 0 or pl < 0:
                continue
            rules = r["score_rules"]
            total = rules + score["BAYES_" + band(pb)] + (score["BAYES_999"] if pb >= 0.999 else 0) + score["LR_" + band(pl)]
            if guard and rules <= guard[0] and (pb >= 0.95) != (pl >= 0.95) and max(pb, pl) < guard[1]:
                total = min(total, a.threshold)
            if agree and pb >= agree and pl >= agree and rules > -5:
                total = max(total, a.threshold + 0.1)
            spam = total > a.threshold
            if r["spam"]:
                ns, det = ns + 1, det + spam
            else:
                nh, fp = nh + 1, fp + spam
        return f"FP {fp}/{nh} = {100 * fp / max(nh, 1):.2f}%, detection {det}/{ns} = {100 * det / max(ns, 1):.2f}%"

    ways = [("bands only (shipped)", {}),
            ("guard R=0, E=0.999", {"guard": (0, 0.999)}),
            ("guard R=0, never extreme", {"guard": (0, 1.01)}),
            ("guard R=2, E=0.999", {"guard": (2, 0.999)}),
            ("agree A=0.95", {"agree": 0.95}),
            ("agree A=0.99", {"agree": 0.99}),
            ("guard R=0, E=0.999 + agree A=0.95", {"guard": (0, 0.999), "agree": 0.95})]
    for title, keys in (("cross-validated", ("bayes", "logistic")),
                        ("leave one source out", ("bayes_loso", "logistic_loso"))):
        print(title)
        for name, kw in ways:
            print(f"  {name:36s} {rate(*keys, **kw)}")


if __name__ == "__main__":
    main()
