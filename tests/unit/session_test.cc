// session_test.cc - the milter session without libmilter: what it hands to
// the MTA at end of message, and which rules a message in flight uses.
#include <gtest/gtest.h>

#include "milter/filter.h"
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

TEST(Session, SkipPolicyScansNothingButRemovesForgedFields) {
  auto snap = snapshot_with(kRules, nullptr, "[milter]\ninbound = \"skip\"\n");
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("x", "192.0.2.9", false);
  feed(s, "spammy");
  Recorder r;
  EXPECT_EQ(s.end_of_message("Q", r), EomAction::kAccept);
  ASSERT_EQ(r.edits.size(), 1u);
  EXPECT_EQ(r.edits[0].op, "delete");
  EXPECT_EQ(r.edits[0].name, "X-Spam-Status");
}

// Issue 16: forged trust fields were removed only under policy tag, so a
// customer's account could deliver "our" dkim=pass and X-Spam-Flag: NO.
TEST(Session, ForgedTrustFieldsAreRemovedForEverySenderClass) {
  auto snap = snapshot_with(kRules, nullptr, "[milter]\ntrusted_networks = [\"10.0.0.0/8\"]\n");
  ASSERT_NE(snap, nullptr);
  ASSERT_NE(snap->outbound, nullptr);
  SnapshotHolder holder(snap);
  for (const auto& [ip, auth] : std::vector<std::pair<std::string, std::string>>{
           {"192.0.2.9", ""}, {"192.0.2.9", "alice"}, {"10.1.2.3", ""}}) {
    Session s(holder, "c1");
    s.connect("x", ip, false);
    s.mail_from("<alice@customer.example>", auth);
    s.rcpt_to("<friend@example.net>");
    s.header("Authentication-Results", " \"mx1.gateway.example\"; dkim=pass header.d=bank.example; dmarc=pass");
    s.header("X-Spam-Flag", " NO");
    s.header("X-Spamgate-Sender", " 00000000000000000000000000000000");
    s.header("Subject", " hello");
    s.end_of_headers();
    std::string b = "hello\r\n";
    s.body(reinterpret_cast<const unsigned char*>(b.data()), b.size());
    Recorder r;
    EXPECT_EQ(s.end_of_message("Q", r), EomAction::kAccept) << ip << auth;
    EXPECT_NE(r.find("delete", "Authentication-Results"), nullptr) << ip << auth;
    EXPECT_NE(r.find("delete", "X-Spam-Flag"), nullptr) << ip << auth;
    const Edit* tag = r.find("delete", "X-Spamgate-Sender");
    ASSERT_NE(tag, nullptr) << ip << auth << ": a forged sender tag is what learn --arf charges complaints to";
    EXPECT_EQ(tag->index, 1);
  }
}

// Issue 16: 30,000 X-Spam-Status fields made the milter ask for 30,000
// deletions and Postfix's cleanup panicked. Now: refused, nothing edited.
TEST(Session, ThirtyThousandForgedFieldsAreRefusedWithoutEdits) {
  auto snap = snapshot_with(kRules);
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("x", "192.0.2.9", false);
  s.mail_from("<a@outside.example>", "");
  s.rcpt_to("<user@example.net>");
  for (int i = 0; i < 30000; ++i) s.header("X-Spam-Status", " No");
  s.header("Subject", " hello");
  s.end_of_headers();
  Recorder r;
  EXPECT_EQ(s.end_of_message("Q", r), EomAction::kReject);
  EXPECT_TRUE(r.edits.empty()) << r.edits.size() << " edits";
  ASSERT_EQ(r.replies.size(), 1u);
  EXPECT_EQ(r.replies[0], "550 5.7.1 Your email was rejected because it carries 30000 X-Spam or "
                          "Authentication-Results header fields");
}

TEST(Session, TwoHundredForgedFieldsAreAllRemoved) {
  auto snap = snapshot_with(kRules);
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("x", "192.0.2.9", false);
  s.mail_from("<a@outside.example>", "");
  for (int i = 0; i < 200; ++i) s.header("X-Spam-Status", " No");
  s.end_of_headers();
  Recorder r;
  EXPECT_EQ(s.end_of_message("Q", r), EomAction::kAccept);
  int deletes = 0;
  for (const Edit& e : r.edits) deletes += e.op == "delete";
  EXPECT_EQ(deletes, 200);
  EXPECT_EQ(r.edits.front().index, 200);  // highest first
}

// Issue 16: every header field was kept for DKIM (libopendkim copies each)
// and spooled for the malware scan's GMime parse: 2.4 million tiny fields
// took the milter to 1.19 GB. Past max_headers they are counted only.
TEST(Session, HeaderFieldsPastMaxHeadersAreNotKept) {
  auto snap = snapshot_with(kRules + "score HEADERS_TOO_MANY 1.0\n", nullptr, "max_scan_bytes = 65536\n");
  ASSERT_NE(snap, nullptr);
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("x", "192.0.2.9", false);
  s.mail_from("<a@outside.example>", "");
  const std::size_t before = Session::buffered_bytes();
  for (int i = 0; i < 200000; ++i) s.header("X-Junk", " v");
  s.header("Subject", " spammy");  // past max_headers: not scanned
  s.end_of_headers();
  EXPECT_LE(Session::buffered_bytes() - before, 65536u);
  std::string b = "hello\r\n";
  s.body(reinterpret_cast<const unsigned char*>(b.data()), b.size());
  Recorder r;
  EXPECT_EQ(s.end_of_message("Q", r), EomAction::kAccept);
  const Edit* st = r.find("add", "X-Spam-Status");
  ASSERT_NE(st, nullptr);
  EXPECT_NE(st->value.find("HEADERS_TOO_MANY"), std::string::npos) << st->value;
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


// Issue 18: MAIL FROM runs on the event loop unless it may read the
// outbound guard's store (Redis, LMDB), which only outgoing mail does.
TEST(Session, OnlyOutgoingMailFromMayWaitOnTheOutboundStore) {
  auto snap = snapshot_with(kRules, nullptr, "[milter]\ntrusted_networks = [\"10.0.0.0/8\"]\n");
  ASSERT_NE(snap, nullptr);
  ASSERT_NE(snap->outbound, nullptr);
  SnapshotHolder holder(snap);
  Session inbound(holder, "c1");
  inbound.connect("x", "192.0.2.9", false);
  EXPECT_FALSE(inbound.mail_from_may_block(""));
  EXPECT_TRUE(inbound.mail_from_may_block("alice"));  // authenticated: outgoing
  Session trusted(holder, "c2");
  trusted.connect("x", "10.1.2.3", false);
  EXPECT_TRUE(trusted.mail_from_may_block(""));
  Session local(holder, "c3");
  local.connect("localhost", "127.0.0.1", true);  // held local mail goes to the hold queue at end of message
  EXPECT_FALSE(local.mail_from_may_block("alice"));

  auto quarantining = snapshot_with(kRules, nullptr, "[outbound]\nhold_action = \"quarantine\"\n");
  ASSERT_NE(quarantining, nullptr);
  SnapshotHolder qholder(quarantining);
  Session q(qholder, "c4");
  q.connect("x", "192.0.2.9", false);
  EXPECT_FALSE(q.mail_from_may_block("alice"));  // holds are applied at end of message
}

// Issue 18: Postfix and Sendmail offer SMFIP_NR_BODY and SMFIP_SKIP both; we
// take NR_BODY, so past max_scan_bytes the body keeps coming and the message
// must not be taken for skipped (its true size, a complete spool for ClamAV).
// An MTA that waits for body replies is told to skip.
TEST(SessionFilter, PastMaxScanBytesOnlyAnMtaThatWaitsForBodyRepliesIsToldToSkip) {
  auto snap = snapshot_with(kRules, nullptr, "max_scan_bytes = 1024\n[clamav]\nenabled = false\n");
  ASSERT_NE(snap, nullptr);
  Daemon daemon("", snap);
  milter::FilterFactory make = session_filters(daemon, 65536);
  for (bool nr_body : {false, true}) {
    std::unique_ptr<milter::Filter> f = make();
    const std::uint32_t offered = SMFIP_SKIP | SMFIP_HDR_LEADSPC | SMFIP_NR_HELO | SMFIP_NR_RCPT | SMFIP_NR_HDR |
                                  SMFIP_NR_EOH | (nr_body ? SMFIP_NR_BODY : 0u);
    EXPECT_EQ((f->protocol_wanted(offered) & SMFIP_NR_BODY) != 0, nr_body);
    milter::Macros m;
    milter::ConnectInfo client{"client.example", SMFIA_INET, 25, "192.0.2.9"};
    f->connect(client, m);
    f->mail({"<a@outside.example>"}, m);
    f->rcpt({"<b@example.net>"}, m);
    f->header("Subject", " hello", m);
    f->end_of_headers(m);
    const std::string chunk = std::string(800, 'a') + "\r\n";
    EXPECT_EQ(f->body(chunk, m).kind, milter::Answer::Kind::kContinue);
    EXPECT_EQ(f->body(chunk, m).kind, nr_body ? milter::Answer::Kind::kContinue : milter::Answer::Kind::kSkip)
        << (nr_body ? "NR_BODY" : "SKIP only");
    f->abort();
  }
}
