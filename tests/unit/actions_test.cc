// actions_test.cc - the headers customers and support read, to the byte,
// and every Subject edge case.
#include <gtest/gtest.h>

#include <sstream>

#include "test_util.h"

using namespace spamgate;
using spamgate::test::snapshot_with;

namespace {

const std::string kRules =
    "body SPAMMY /spammy/\nscore SPAMMY 7.2\n"
    "body BIT /bit/\nscore BIT 0.4\n"
    "body NICE /thanks/\nscore NICE -3\n";

struct Out {
  std::string bytes;
  ScanResult r;
  Disposition d;
};

Out rewrite(const std::string& msg, const std::string& toml = "", const std::string& rules = kRules) {
  auto s = snapshot_with(rules, nullptr, toml);
  EXPECT_NE(s, nullptr);
  Handled h = test::handle(*s, msg);
  Out o{"", std::move(*h.scan), std::move(h.disposition)};
  o.bytes = apply_plan(msg, o.d.plan);
  return o;
}

std::string header_block(const std::string& bytes) {
  std::size_t e = bytes.find("\n\n");
  std::size_t c = bytes.find("\r\n\r\n");
  if (c != std::string::npos && (e == std::string::npos || c < e)) return bytes.substr(0, c + 2);
  return bytes.substr(0, e + 1);
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

}  // namespace

TEST(TechnicalDetails, ExactFourLinesWithTabContinuations) {
  Out o = rewrite("Subject: hello\n\nthis is spammy\n");
  const std::string expected =
      "X-Spam-Technical-Details: [Example Gateway] - Support information:\n"
      "\tThis message was scanned by: mx1.gateway.example and received a score of: 7.2\n"
      "\tThis system will flag a message as spam if the score is greater than 5.\n"
      "\tIf you feel this was in error, please visit https://help.example.net/spam\n";
  EXPECT_NE(o.bytes.find(expected), std::string::npos) << o.bytes;
}

TEST(TechnicalDetails, AddedToHamWithNegativeScoreAndDecimalThreshold) {
  Out o = rewrite("Subject: hello\n\nthanks\n", "threshold = 6.5\n");
  EXPECT_NE(o.bytes.find("\tThis message was scanned by: mx1.gateway.example and received a score of: -3.0\n"
                         "\tThis system will flag a message as spam if the score is greater than 6.5.\n"),
            std::string::npos)
      << o.bytes;
  EXPECT_NE(o.bytes.find("Subject: hello\n"), std::string::npos);
  EXPECT_EQ(o.bytes.find("X-Spam-Flag"), std::string::npos);
  EXPECT_NE(o.bytes.find("X-Spam-Status: No, score=-3.0 required=6.5 tests=NICE\n"), std::string::npos) << o.bytes;
  EXPECT_NE(o.bytes.find("X-Spam-Level:\n"), std::string::npos);
}

TEST(SpamStatus, SpamAssassinShapeWithFlagAndLevel) {
  Out o = rewrite("Subject: hello\n\nspammy bit\n");
  EXPECT_NE(o.bytes.find("X-Spam-Flag: YES\n"), std::string::npos);
  EXPECT_NE(o.bytes.find("X-Spam-Status: Yes, score=7.6 required=5.0 tests=BIT,SPAMMY\n"), std::string::npos)
      << o.bytes;
  EXPECT_NE(o.bytes.find("X-Spam-Level: *******\n"), std::string::npos);
}

// tests_with_scores: SpamAssassin's _TESTSSCORES_, each rule with the score it counted.
TEST(SpamStatus, TestsWithScoresWhenAsked) {
  Out o = rewrite("Subject: hello\n\nspammy bit\n", "tests_with_scores = true\n");
  EXPECT_NE(o.bytes.find("X-Spam-Status: Yes, score=7.6 required=5.0 tests=BIT=0.4,SPAMMY=7.2\n"), std::string::npos)
      << o.bytes;
}

TEST(SpamStatus, LongTestListIsFoldedWithNewlineTab) {
  std::string rules, body;
  for (int i = 0; i < 30; ++i) {
    std::string n = "SOME_LONGISH_RULE_NAME_" + std::to_string(i);
    rules += "body " + n + " /w" + std::to_string(i) + "x/\nscore " + n + " 0.5\n";
    body += "w" + std::to_string(i) + "x ";
  }
  Out o = rewrite("Subject: s\n\n" + body + "\n", "", rules);
  std::string hb = header_block(o.bytes);
  std::size_t start = hb.find("X-Spam-Status: ");
  ASSERT_NE(start, std::string::npos);
  std::size_t end = hb.find("\nX-Spam-Level");
  std::vector<std::string> ls = lines(hb.substr(start, end - start));
  ASSERT_GT(ls.size(), 3u);
  std::string unfolded;
  for (std::size_t i = 0; i < ls.size(); ++i) {
    EXPECT_LE(ls[i].size(), 78u) << ls[i];
    if (i > 0) {
      ASSERT_EQ(ls[i][0], '\t');
      unfolded += ls[i].substr(1);
    } else {
      unfolded += ls[i];
    }
  }
  for (int i = 0; i < 30; ++i) EXPECT_NE(unfolded.find("SOME_LONGISH_RULE_NAME_" + std::to_string(i)), std::string::npos);
  EXPECT_EQ(unfolded.find(",,"), std::string::npos);
}

TEST(SpamStatus, LevelIsCappedAtFiftyStars) {
  Out o = rewrite("Subject: s\n\nspammy\n", "", "body SPAMMY /spammy/\nscore SPAMMY 80\n");
  EXPECT_NE(o.bytes.find("X-Spam-Level: " + std::string(50, '*') + "\n"), std::string::npos);
}

TEST(SubjectTag, SpamSubjectGetsTagSpaceOriginal) {
  Out o = rewrite("From: a@b.example\nSubject: Cheap watches\nTo: c@d.example\n\nspammy\n");
  EXPECT_NE(o.bytes.find("From: a@b.example\nSubject: [SPAM] - Cheap watches\nTo: c@d.example\n"), std::string::npos)
      << o.bytes;
}

TEST(SubjectTag, MissingSubjectGetsBareTag) {
  Out o = rewrite("From: a@b.example\n\nspammy\n");
  EXPECT_NE(o.bytes.find("\nSubject: [SPAM] -\n"), std::string::npos) << o.bytes;
}

TEST(SubjectTag, AlreadyTaggedIsNotTaggedTwice) {
  Out o = rewrite("Subject: [SPAM] - Cheap watches\n\nspammy\n");
  EXPECT_NE(o.bytes.find("Subject: [SPAM] - Cheap watches\n"), std::string::npos);
  EXPECT_EQ(o.bytes.find("[SPAM] - [SPAM]"), std::string::npos);
  // Checked on the decoded subject: an encoded tag counts as a tag.
  Out e = rewrite("Subject: =?UTF-8?Q?[SPAM]_-_Cheap?=\n\nspammy\n");
  EXPECT_NE(e.bytes.find("Subject: =?UTF-8?Q?[SPAM]_-_Cheap?=\n"), std::string::npos) << e.bytes;
}

TEST(SubjectTag, EncodedSubjectStaysValid) {
  Out o = rewrite("Subject: =?UTF-8?B?R3LDvMOfZSDigqw=?=\n\nspammy\n");
  EXPECT_NE(o.bytes.find("Subject: [SPAM] - =?UTF-8?B?R3LDvMOfZSDigqw=?=\n"), std::string::npos) << o.bytes;
  Message again = parse_message(o.bytes, Limits{});
  EXPECT_EQ(again.first("subject")->decoded, "[SPAM] - Grüße €");
}

TEST(SubjectTag, FoldedSubjectKeepsItsFolding) {
  Out o = rewrite("Subject: first part\n second part\n\nspammy\n");
  EXPECT_NE(o.bytes.find("Subject: [SPAM] - first part\n second part\n"), std::string::npos) << o.bytes;
}

TEST(SubjectTag, TwoThousandCharacterSubjectStaysUnderTheLineLimit) {
  std::string subj(2000, 'x');
  Out o = rewrite("Subject: " + subj + "\n\nspammy\n");
  Message again = parse_message(o.bytes, Limits{});
  EXPECT_EQ(again.first("subject")->decoded, "[SPAM] - " + subj);
  // The tag line itself is short: the original is folded onto its own line.
  EXPECT_NE(o.bytes.find("Subject: [SPAM] -\n " + subj + "\n"), std::string::npos);
  // A long subject made of words is tagged in place when it fits.
  std::string words;
  for (int i = 0; i < 200; ++i) words += "word" + std::to_string(i) + " ";
  Out w = rewrite("Subject: " + words + "\n\nspammy\n");
  Message w2 = parse_message(w.bytes, Limits{});
  EXPECT_EQ(w2.first("subject")->decoded.substr(0, 15), "[SPAM] - word0 ");
}

TEST(SubjectTag, TagIsConfigurable) {
  Out o = rewrite("Subject: hi\n\nspammy\n", "subject_tag = \"***SPAM***\"\n");
  EXPECT_NE(o.bytes.find("Subject: ***SPAM*** hi\n"), std::string::npos) << o.bytes;
}

TEST(ForeignHeaders, IncomingXSpamHeadersAreRemoved) {
  Out o = rewrite(
      "X-Spam-Status: No, score=-50\nSubject: hi\nx-spam-status: No\nX-Spam-Flag: NO\n"
      "X-Spam-Technical-Details: forged\n\tcontinued\nX-Spamfoo: keep\n\nthanks\n");
  std::string hb = header_block(o.bytes);
  EXPECT_EQ(hb.find("score=-50"), std::string::npos);
  EXPECT_EQ(hb.find("x-spam-status"), std::string::npos);
  EXPECT_EQ(hb.find("X-Spam-Flag"), std::string::npos);  // ham: no flag of ours either
  EXPECT_EQ(hb.find("forged"), std::string::npos);
  EXPECT_EQ(hb.find("continued"), std::string::npos);
  EXPECT_NE(hb.find("X-Spamfoo: keep\n"), std::string::npos);
  std::size_t first = hb.find("X-Spam-Status:");
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(hb.find("X-Spam-Status:", first + 1), std::string::npos);
  // Deletes are planned from the highest index down (Postfix renumbers).
  std::vector<int> status_deletes;
  for (const HeaderEdit& e : o.d.plan.edits) {
    if (e.op == HeaderEdit::Op::kDelete && (e.name == "X-Spam-Status" || e.name == "x-spam-status"))
      status_deletes.push_back(e.index);
  }
  EXPECT_EQ(status_deletes, (std::vector<int>{2, 1}));
}

// Issue 16: `scan --rewrite` parsed only the first max_scan_bytes, so forged
// fields past 1 MB of header block stayed in what it printed.
TEST(ForeignHeaders, ForgedFieldsPastMaxScanBytesAreRemovedToo) {
  std::string msg = "Subject: hi\n";
  for (int i = 0; i < 1600; ++i) msg += "X-Filler-" + std::to_string(i) + ": " + std::string(900, 'f') + "\n";
  msg += "X-Spam-Flag: NO\nX-Spam-Status: No, score=-50\n\nthanks\n";
  ASSERT_GT(msg.size(), 1024u * 1024u);
  Out o = rewrite(msg);
  std::string hb = header_block(o.bytes);
  EXPECT_EQ(hb.find("X-Spam-Flag: NO"), std::string::npos);
  EXPECT_EQ(hb.find("score=-50"), std::string::npos);
  EXPECT_NE(hb.find("X-Spam-Status: No, score="), std::string::npos);  // ours
}

TEST(Rewrite, CrlfMessageStaysCrlfAndBodyIsByteIdentical) {
  const std::string body = "line one\r\nspammy line two\r\n\r\n-- \r\nsig\r\n";
  const std::string msg = "Subject: hi\r\nFrom: a@b.example\r\n\r\n" + body;
  Out o = rewrite(msg);
  ASSERT_GE(o.bytes.size(), body.size());
  EXPECT_EQ(o.bytes.substr(o.bytes.size() - body.size()), body);
  std::string hb = header_block(o.bytes);
  for (std::size_t i = 0; i < hb.size(); ++i) {
    if (hb[i] == '\n') {
      ASSERT_GT(i, 0u);
      EXPECT_EQ(hb[i - 1], '\r') << "bare LF at " << i << " in\n" << hb;
    }
  }
  EXPECT_NE(hb.find("Subject: [SPAM] - hi\r\n"), std::string::npos);
  EXPECT_NE(hb.find("\r\n\tThis system will flag"), std::string::npos);
}

TEST(Outbound, NeverTaggedAndNoTestsList) {
  auto s = snapshot_with(kRules, nullptr, "[milter]\nauthenticated = \"tag\"\n");
  ASSERT_NE(s, nullptr);
  const std::string msg = "Subject: hello\n\nspammy bit\n";
  Envelope env;
  env.auth_user = "alice@customer.example";
  Handled h = test::handle(*s, msg, classify_sender(s->config, env, false), env);
  EXPECT_TRUE(h.scan->verdict.spam);
  EXPECT_EQ(h.disposition.action, Action::kAccept);
  std::string out = apply_plan(msg, h.disposition.plan);
  EXPECT_NE(out.find("Subject: hello\n"), std::string::npos);
  EXPECT_EQ(out.find("X-Spam-Flag"), std::string::npos);
  EXPECT_EQ(out.find("tests="), std::string::npos);
  EXPECT_EQ(out.find("SPAMMY"), std::string::npos);
  EXPECT_NE(out.find("X-Spam-Status: Yes, score=7.6 required=5.0\n"), std::string::npos) << out;
}
