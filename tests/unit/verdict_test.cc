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
