// verdict_test.cc - score arithmetic in tenths and the strictly-greater rule.
#include <gtest/gtest.h>

#include "test_util.h"

using namespace spamgate;
using spamgate::test::snapshot_with;

namespace {

Verdict verdict_for(const std::string& rules, const std::string& body, const std::string& toml = "") {
  auto s = snapshot_with(rules, nullptr, toml);
  EXPECT_NE(s, nullptr);
  if (s == nullptr) return Verdict{};
  return scan_message(*s, "Subject: t\nMessage-ID: <1@x>\n\n" + body + "\n", Envelope{}).verdict;
}

}  // namespace

TEST(VerdictFormat, TenthsPrintWithOneDecimal) {
  EXPECT_EQ(format_tenths(72), "7.2");
  EXPECT_EQ(format_tenths(-959), "-95.9");
  EXPECT_EQ(format_tenths(-5), "-0.5");
  EXPECT_EQ(format_tenths(0), "0.0");
  EXPECT_EQ(format_tenths(50), "5.0");
}

TEST(VerdictScore, ScoreExactlyAtThresholdIsNotSpam) {
  Verdict v = verdict_for("body A /aaa/\nscore A 5\n", "aaa");
  EXPECT_EQ(v.score_tenths, 50);
  EXPECT_FALSE(v.spam);
  EXPECT_EQ(v.action, Action::kAccept);
  Verdict w = verdict_for("body A /aaa/\nscore A 5.1\n", "aaa");
  EXPECT_TRUE(w.spam);
  EXPECT_EQ(w.action, Action::kTag);
}

TEST(VerdictScore, FivePointZeroFourPrintsFiveAndIsNotSpam) {
  Verdict v = verdict_for("body A /aaa/\nscore A 2.52\nbody B /bbb/\nscore B 2.52\n", "aaa bbb");
  EXPECT_EQ(v.score_tenths, 50);  // 5.04 rounds to 5.0 ...
  EXPECT_FALSE(v.spam);           // ... and the decision agrees with what is printed
}

TEST(VerdictScore, FivePointZeroFiveRoundsUpAndIsSpam) {
  Verdict v = verdict_for("body A /aaa/\nscore A 2.525\nbody B /bbb/\nscore B 2.525\n", "aaa bbb");
  EXPECT_EQ(v.score_tenths, 51);
  EXPECT_TRUE(v.spam);
}

TEST(VerdictScore, DecimalThresholdAndNegativeScores) {
  Verdict v = verdict_for("body A /aaa/\nscore A 5.5\nbody N /nnn/\nscore N -0.3\n", "aaa nnn", "threshold = 5.1\n");
  EXPECT_EQ(v.threshold_tenths, 51);
  EXPECT_EQ(v.score_tenths, 52);
  EXPECT_TRUE(v.spam);
}

TEST(VerdictScore, SubRulesAndZeroScoresAreNotListed) {
  Verdict v = verdict_for("body __SUB /aaa/\nbody ZERO /aaa/\nscore ZERO 0\nbody REAL /aaa/\nscore REAL 1.5\n", "aaa");
  ASSERT_EQ(v.hits.size(), 1u);
  EXPECT_EQ(v.hits[0].name, "REAL");
  EXPECT_EQ(v.score_tenths, 15);
}

TEST(VerdictScore, ASymbolHitTwiceCountsOnce) {
  auto s = snapshot_with("body A /aaa/\nscore A 2\n");
  ASSERT_NE(s, nullptr);
  std::vector<Hit> hits = {{"A", 1.0, ""}, {"A", 1.0, ""}, {"UNKNOWN_SYMBOL", 1.0, ""}};
  Verdict v = score_verdict(*s, hits);
  EXPECT_EQ(v.score_tenths, 20);
}

TEST(VerdictScore, NanFactorIsForcedToZero) {
  auto s = snapshot_with("body A /aaa/\nscore A 2\n");
  ASSERT_NE(s, nullptr);
  Verdict v = score_verdict(*s, {{"A", std::nan(""), ""}});
  EXPECT_EQ(v.score_tenths, 0);
}

// Issue 16: while a dependency is down (its breaker open) every message
// would log a warning for its failed check; the breaker logs the outage
// once, and the verdict line names the check.
TEST(VerdictLog, ACheckSkippedForADependencyDownIsNamedOnTheVerdictLineNotWarned) {
  auto s = snapshot_with("body A /aaa/\nscore A 2\n");
  ASSERT_NE(s, nullptr);
  Handled h = test::handle(*s, "Subject: t\nMessage-ID: <1@x>\n\naaa\n");
  ScanResult& r = *h.scan;
  r.check_errors.push_back({"bayes", "bayes: redis 127.0.0.1:6379: not answering; skipped until a probe gets a reply", true});
  r.check_errors.push_back({"clamav", "cannot rewind the spool file", false});
  test::LogCapture cap;
  log_verdict(h, "Q1");
  std::vector<std::string> lines = cap.lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "warning Q1: check clamav failed, its remaining work skipped: cannot rewind the spool file\n");
  EXPECT_NE(lines[1].find(" tests=A unavailable=bayes ms="), std::string::npos) << lines[1];
}

// Issue 19, part 3: how the classifiers' bands combine with the rules.
namespace {

const char* kBands =
    "body SPAMMY /sss/\nscore SPAMMY 0.5\nbody ALLOW /www/\nscore ALLOW -10\n"
    "score BAYES_95 5.5\nscore BAYES_99 5.5\nscore BAYES_999 1.0\nscore BAYES_00 -1\n"
    "score LR_95 2.0\nscore LR_50 0\nscore BAYES_80 2.0\n";

Hit band(const char* name, double p) {
  Hit h(name, 1.0, "");
  h.probability = p;
  return h;
}

const ScoredHit* find_hit(const Verdict& v, const std::string& name) {
  for (const ScoredHit& h : v.hits)
    if (h.name == name) return &h;
  return nullptr;
}

}  // namespace

TEST(VerdictClassifiers, OneClassifierAloneDoesNotTagWhatTheRulesCallClean) {
  auto s = snapshot_with(kBands);
  ASSERT_NE(s, nullptr);
  // No rule hit, Bayes at 0.97 (5.5 points), the logistic regression unsure.
  Verdict v = score_verdict(*s, {band("BAYES_95", 0.97), band("LR_50", 0.52)});
  EXPECT_FALSE(v.spam);
  EXPECT_EQ(v.score_tenths, 50);  // held at the threshold, and the header says so
  const ScoredHit* g = find_hit(v, "CLASSIFIER_GUARD");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->score_millis, -500);
  EXPECT_NE(g->detail.find("only BAYES calls it spam (p=0.9700)"), std::string::npos) << g->detail;

  // A rule that scores it above 0: the rules do not call it clean.
  Verdict r = score_verdict(*s, {Hit("SPAMMY"), band("BAYES_95", 0.97), band("LR_50", 0.52)});
  EXPECT_TRUE(r.spam);
  EXPECT_EQ(r.score_tenths, 60);
  EXPECT_EQ(find_hit(r, "CLASSIFIER_GUARD"), nullptr);
  // What autolearn judges by: the rules alone, never the classifiers.
  EXPECT_EQ(v.rules_millis, 0);
  EXPECT_EQ(r.rules_millis, 500);
}

TEST(VerdictClassifiers, AnExtremeClassifierTagsAloneOnlyWhenConfigured) {
  const std::vector<Hit> extreme = {band("BAYES_99", 0.9995), band("BAYES_999", 0.9995), band("LR_50", 0.5)};
  // The default: not even an extreme one (guard_unless = 1).
  auto strict = snapshot_with(kBands);
  ASSERT_NE(strict, nullptr);
  Verdict g = score_verdict(*strict, extreme);
  EXPECT_FALSE(g.spam);
  EXPECT_NE(find_hit(g, "CLASSIFIER_GUARD"), nullptr);
  // guard_unless = 0.999: Bayes at 0.9995 tags it alone.
  auto s = snapshot_with(kBands, nullptr, "[bayes]\npath = \"bayes\"\nguard_unless = 0.999\n");
  ASSERT_NE(s, nullptr);
  Verdict v = score_verdict(*s, extreme);
  EXPECT_TRUE(v.spam);
  EXPECT_EQ(v.score_tenths, 65);
  EXPECT_EQ(find_hit(v, "CLASSIFIER_GUARD"), nullptr);
  // ... and not at 0.998.
  EXPECT_FALSE(score_verdict(*s, {band("BAYES_99", 0.998), band("LR_50", 0.5)}).spam);
  // The guard off: Bayes alone tags it.
  auto off = snapshot_with(kBands, nullptr, "[bayes]\npath = \"bayes\"\nguard = false\n");
  ASSERT_NE(off, nullptr);
  EXPECT_TRUE(score_verdict(*off, {band("BAYES_95", 0.97), band("LR_50", 0.52)}).spam);
}

TEST(VerdictClassifiers, WhatBothCallSpamIsTaggedUnlessAllowListed) {
  auto s = snapshot_with(kBands);
  ASSERT_NE(s, nullptr);
  // Both at 0.95 or more but their bands sum to 4.0 (BAYES_80's score for
  // this test's sake, as Bayes at 0.95 after a refit could score).
  Verdict v = score_verdict(*s, {band("BAYES_80", 0.96), band("LR_95", 0.97)});
  EXPECT_TRUE(v.spam);
  EXPECT_EQ(v.score_tenths, 51);
  const ScoredHit* a = find_hit(v, "CLASSIFIERS_AGREE");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->score_millis, 1100);
  EXPECT_NE(a->detail.find("BAYES p=0.9600, LR p=0.9700"), std::string::npos) << a->detail;
  EXPECT_EQ(v.rules_millis, 0);  // tagged by the classifiers: autolearn does not learn it from this
  // An LR band alone does not count toward autolearn either.
  EXPECT_EQ(score_verdict(*s, {Hit("SPAMMY"), band("LR_95", 0.97)}).rules_millis, 500);
  // The same with an allow-list entry (-10): the admin's word wins.
  Verdict w = score_verdict(*s, {Hit("ALLOW"), band("BAYES_80", 0.96), band("LR_95", 0.97)});
  EXPECT_FALSE(w.spam);
  EXPECT_EQ(w.score_tenths, -60);
  // One of them below 0.95: no agreement.
  EXPECT_FALSE(score_verdict(*s, {band("BAYES_80", 0.90), band("LR_95", 0.97)}).spam);
  // agree = 0: off.
  auto off = snapshot_with(kBands, nullptr, "[bayes]\npath = \"bayes\"\nagree = 0\n");
  ASSERT_NE(off, nullptr);
  EXPECT_FALSE(score_verdict(*off, {band("BAYES_80", 0.96), band("LR_95", 0.97)}).spam);
}

TEST(VerdictClassifiers, BadCombineSettingsAreRefused) {
  std::vector<Diagnostic> d;
  EXPECT_EQ(snapshot_with(kBands, &d, "[bayes]\npath = \"bayes\"\nagree = 1.5\n"), nullptr);
  EXPECT_EQ(snapshot_with(kBands, &d, "[bayes]\npath = \"bayes\"\nguard_unless = 0.3\n"), nullptr);
  EXPECT_EQ(snapshot_with(kBands, &d, "[bayes]\npath = \"bayes\"\nagree = 0.5\n"), nullptr);
  EXPECT_EQ(snapshot_with(kBands, &d, "[bayes]\npath = \"bayes\"\nguard_unless = nan\n"), nullptr);
}
