// session_test.cc - the milter session without libmilter: what it hands to
// the MTA at end of message, and which rules a message in flight uses.
#include <gtest/gtest.h>

#include "milter/session.h"
#include "session_recorder.h"
#include "test_util.h"

using namespace spamgate;
using spamgate::test::snapshot_with;
using spamgate::test::Edit;
using spamgate::test::Recorder;

namespace {

void feed(Session& s, const std::string& body_text, const std::string& subject = "hello",
          const std::string& auth = "") {
  s.mail_from("<sender@outside.example>", auth);
  s.rcpt_to("<user@example.net>");
  s.header("From", " sender@outside.example");
  s.header("Subject", " " + subject);
  s.header("X-Spam-Status", " No, forged");
  s.end_of_headers();
  std::string b = body_text + "\r\n";
  s.body(reinterpret_cast<const unsigned char*>(b.data()), b.size());
}

const std::string kRules = "body SPAMMY /spammy/\nscore SPAMMY 6\n";

}  // namespace

TEST(Session, InboundSpamIsTaggedWithLeadingSpaceValues) {
  auto snap = snapshot_with(kRules);
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.set_leading_space(true);
  s.connect("client.example", "192.0.2.9", false);
  feed(s, "very spammy");
  Recorder r;
  EXPECT_EQ(s.end_of_message("ABC123", r), EomAction::kAccept);
  const Edit* subj = r.find("change", "Subject");
  ASSERT_NE(subj, nullptr);
  EXPECT_EQ(subj->value, " [SPAM] - hello");  // LEADSPC: we write the space ourselves
  ASSERT_NE(r.find("delete", "X-Spam-Status"), nullptr);
  EXPECT_EQ(r.find("delete", "X-Spam-Status")->index, 1);
  ASSERT_NE(r.find("add", "X-Spam-Flag"), nullptr);
  EXPECT_EQ(r.find("add", "X-Spam-Flag")->value, " YES");
  EXPECT_FALSE(s.in_message());  // state reset after the message
}

TEST(Session, WithoutLeadingSpaceValuesHaveNoSpace) {
  auto snap = snapshot_with(kRules);
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("client.example", "192.0.2.9", false);
  s.mail_from("<a@b.example>", "");
  s.header("Subject", "hello");  // Postfix stripped the space
  s.end_of_headers();
  std::string b = "spammy\r\n";
  s.body(reinterpret_cast<const unsigned char*>(b.data()), b.size());
  Recorder r;
  s.end_of_message("Q1", r);
  ASSERT_NE(r.find("change", "Subject"), nullptr);
  EXPECT_EQ(r.find("change", "Subject")->value, "[SPAM] - hello");
}

TEST(Session, AMessageInFlightKeepsTheRulesItStartedWith) {
  auto old_rules = snapshot_with(kRules);
  auto new_rules = snapshot_with("body SPAMMY /spammy/\nscore SPAMMY 0\n");
  ASSERT_NE(old_rules, nullptr);
  ASSERT_NE(new_rules, nullptr);
  SnapshotHolder holder(old_rules);
  Session s(holder, "c1");
  s.connect("client.example", "192.0.2.9", false);
  s.mail_from("<a@b.example>", "");
  holder.set(new_rules);  // reload between MAIL FROM and end of message
  s.header("Subject", " hi");
  s.end_of_headers();
  std::string b = "spammy\r\n";
  s.body(reinterpret_cast<const unsigned char*>(b.data()), b.size());
  EXPECT_EQ(s.snapshot(), old_rules.get());
  Recorder r;
  s.end_of_message("Q1", r);
  EXPECT_NE(r.find("add", "X-Spam-Flag"), nullptr);  // scored with the old rules: spam
  // The next message on the same connection uses the new rules.
  feed(s, "spammy");
  EXPECT_EQ(s.snapshot(), new_rules.get());
  Recorder r2;
  s.end_of_message("Q2", r2);
  EXPECT_EQ(r2.find("add", "X-Spam-Flag"), nullptr);
}

TEST(Session, AuthenticatedAndTrustedSendersAreNotTagged) {
  auto snap = snapshot_with(kRules, nullptr, "[milter]\ntrusted_networks = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n"
                                               "authenticated = \"tag\"\ntrusted = \"tag\"\n");
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  for (const auto& [ip, auth] : std::vector<std::pair<std::string, std::string>>{
           {"192.0.2.9", "alice"}, {"10.1.2.3", ""}, {"2001:db8::7", ""}}) {
    Session s(holder, "c1");
    s.connect("x", ip, false);
    feed(s, "spammy", "hello", auth);
    EXPECT_NE(s.sender_class(), SenderClass::kInbound) << ip;
    Recorder r;
    s.end_of_message("Q", r);
    EXPECT_EQ(r.find("change", "Subject"), nullptr) << ip;
    EXPECT_EQ(r.find("add", "X-Spam-Flag"), nullptr) << ip;
    const Edit* st = r.find("add", "X-Spam-Status");
    ASSERT_NE(st, nullptr) << ip;
    EXPECT_EQ(st->value.find("tests="), std::string::npos) << ip;
    EXPECT_EQ(st->value.find("SPAMMY"), std::string::npos) << ip;
  }
}

TEST(Session, SkipPolicyTouchesNothing) {
  auto snap = snapshot_with(kRules, nullptr, "[milter]\ninbound = \"skip\"\n");
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("x", "192.0.2.9", false);
  feed(s, "spammy");
  Recorder r;
  EXPECT_EQ(s.end_of_message("Q", r), EomAction::kAccept);
  EXPECT_TRUE(r.edits.empty());
}

TEST(Session, OnlyMaxScanBytesAreKept) {
  auto snap = snapshot_with(kRules, nullptr, "max_scan_bytes = 4096\n");
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("x", "192.0.2.9", false);
  s.mail_from("<a@b.example>", "");
  s.header("Subject", " big");
  s.end_of_headers();
  std::string chunk(65536, 'x');
  EXPECT_FALSE(s.body(reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size()));
  std::string tail = " spammy\r\n";  // past the limit: not scanned
  s.body(reinterpret_cast<const unsigned char*>(tail.data()), tail.size());
  Recorder r;
  s.end_of_message("Q", r);
  EXPECT_EQ(r.find("add", "X-Spam-Flag"), nullptr);
}

TEST(Session, CheckErrorWithTempfailPolicyTempfails) {
  auto snap = snapshot_with("body SLOW /(a+)+$/x\n", nullptr,
                            "[limits]\npcre_match_limit = 1000\n[milter]\non_check_error_by_check = { rules = \"tempfail\" }\n");
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("x", "192.0.2.9", false);
  feed(s, std::string(40, 'a') + "!");
  Recorder r;
  EXPECT_EQ(s.end_of_message("Q", r), EomAction::kTempfail);
  ASSERT_EQ(r.replies.size(), 1u);
  EXPECT_EQ(r.replies[0].substr(0, 9), "451 4.7.1");
}

TEST(Session, ReplyTextIsEscapedForSetreply) {
  EXPECT_EQ(escape_reply("100% spam"), "100%% spam");
  EXPECT_EQ(escape_reply("a\r\nb"), "a  b");
  EXPECT_EQ(escape_reply(std::string(600, 'x')).size(), 500u);
}
