// outbound_test.cc - the outbound guard: sliding windows, limit overrides,
// holds and releases, spam verdicts and complaints, the sender tag, the
// state store (LMDB and a private redis-server, same suite), feedback
// reports, and the milter session's MAIL FROM / end-of-message behaviour.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "milter/session.h"
#include "outbound/arf.h"
#include "outbound/window.h"
#include "redis_server.h"
#include "session_recorder.h"
#include "spamgate/outbound.h"
#include "spamgate/state_store.h"
#include "test_util.h"

namespace spamgate {
namespace {

using outbound_detail::Series;

TEST(SlidingWindow, ABurstAcrossTheTopOfTheHourIsSeenWhole) {
  Series hour;
  hour.width = 60;  // 60 slots of a minute
  const std::int64_t top = 1800000000;  // a whole hour in unix time
  hour.add(top - 30, 100, 0);           // 100 messages at hh:59:30
  hour.add(top + 30, 100, 0);           // 100 more at hh+1:00:30
  // A fixed hourly bucket would say 100 here; the window says 200.
  EXPECT_DOUBLE_EQ(hour.count(top + 30).first, 200);
  // 59 minutes later the first burst is still inside the hour ...
  EXPECT_DOUBLE_EQ(hour.count(top - 30 + 3540).first, 200);
  // ... an hour and half a minute after it, it has left the window ...
  EXPECT_DOUBLE_EQ(hour.count(top + 3600).first, 100);
  // ... and a minute later the second one too.
  EXPECT_DOUBLE_EQ(hour.count(top + 3690).first, 0);
}

TEST(SlidingWindow, TheLeavingSlotCountsForThePartStillInside) {
  Series minute;
  minute.width = 10;  // 60 slots of 10 s: a 10-minute window
  minute.add(1000, 6, 3);
  // At 1600 + 5 the slot [1000, 1010) is half out of (1005 - 600, 1005].
  auto [a, b] = minute.count(1605);
  EXPECT_DOUBLE_EQ(a, 3);
  EXPECT_DOUBLE_EQ(b, 1.5);
}

TEST(SlidingWindow, RecordsRoundTripAndOtherWidthsStartAfresh) {
  std::vector<Series> s(2);
  s[0].width = 1;
  s[1].width = 60;
  s[0].add(5000, 2, 7);
  s[1].add(5000, 2, 7);
  std::string bytes = outbound_detail::encode(s);
  auto back = outbound_detail::decode(bytes, {1, 60});
  EXPECT_DOUBLE_EQ(back[1].count(5000).second, 7);
  auto other = outbound_detail::decode(bytes, {1, 120});  // the config changed
  EXPECT_DOUBLE_EQ(other[0].count(5000).first, 0);
  EXPECT_DOUBLE_EQ(outbound_detail::decode("garbage", {1})[0].count(5000).first, 0);
}

TEST(LimitOverrides, ParsesAccountsDomainsAndUnlimitedAndNamesBadLines) {
  std::vector<Diagnostic> d;
  LimitOverrides o = parse_limit_overrides(
      "# support staff edit this\n"
      "Alice@Example.com  messages_per_hour=1000 recipients_per_day=20000\n"
      "domain:shop.example messages_per_day=50000   # big shop\n"
      "news@example.com unlimited\n",
      "limits.conf", d);
  EXPECT_TRUE(d.empty());
  OutboundConfig cfg;
  OutboundGuard g(cfg, BayesConfig{}, o);
  RateLimits a = g.limits_for_account("alice@example.com");
  EXPECT_EQ(a.v[RateLimits::kMessagesHour], 1000u);
  EXPECT_EQ(a.v[RateLimits::kRecipientsDay], 20000u);
  EXPECT_EQ(a.v[RateLimits::kMessagesMinute], cfg.user_limits.v[RateLimits::kMessagesMinute]);  // default kept
  EXPECT_EQ(g.limits_for_domain("shop.example").v[RateLimits::kMessagesDay], 50000u);
  for (std::uint32_t v : g.limits_for_account("news@example.com").v) EXPECT_EQ(v, 0u);

  parse_limit_overrides("bob@example.com msgs_per_hour=5\ncarol@example.com messages_per_hour=lots\neve@example.com\n",
                        "limits.conf", d);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].str().substr(0, 14), "limits.conf:1:");
  EXPECT_NE(d[0].message.find("msgs_per_hour"), std::string::npos);
  EXPECT_EQ(d[1].line, 2);
  EXPECT_EQ(d[2].line, 3);
}

TEST(LimitOverrides, ABadOverridesFileFailsTheLoadWithFileAndLine) {
  test::TempDir dir;
  dir.file("limits.conf", "alice@example.com messages_per_hour=ten\n");
  std::vector<Diagnostic> d;
  auto snap = test::snapshot_with("", &d, "[outbound]\noverrides_file = \"" + dir.path() + "/limits.conf\"\n");
  EXPECT_EQ(snap, nullptr);
  ASSERT_FALSE(d.empty());
  EXPECT_NE(d[0].str().find("limits.conf:1:"), std::string::npos) << d[0].str();
}

TEST(OutboundSender, LoginElseEnvelopeSender) {
  Envelope e;
  e.auth_user = "Alice@Example.COM";
  e.mail_from = "bounce@lists.example";
  OutboundSender s = outbound_sender(e);
  EXPECT_EQ(s.account, "alice@example.com");
  EXPECT_EQ(s.domain, "example.com");
  e.auth_user = "alice";  // a login without a domain: the envelope's
  EXPECT_EQ(outbound_sender(e).domain, "lists.example");
  e.auth_user.clear();
  EXPECT_EQ(outbound_sender(e).account, "bounce@lists.example");
  e.mail_from = std::string(5000, 'a') + "@example.org";  // hostile: bounded, still usable as a store key
  EXPECT_LE(outbound_sender(e).account.size(), 254u);
}

// Every guard test runs against the classifier's LMDB and a private Redis.
class GuardTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    store_.store = GetParam();
    store_.path = dir_.path() + "/bayes";
    if (GetParam() == "redis") {
      redis_ = std::make_unique<test::RedisServer>();
      ASSERT_TRUE(redis_->up()) << "redis-server (Debian package redis-server) is needed for the Redis tests";
      store_.redis = redis_->address();
      // A live server on loopback: on a busy machine a reply can take longer
      // than the default 500 ms, and a timeout opens the circuit breaker.
      store_.redis_timeout_ms = 10000;
    }
    cfg_.site_key_file = dir_.path() + "/site.key";
  }
  std::unique_ptr<OutboundGuard> guard(const std::string& overrides = "") {
    std::vector<Diagnostic> d;
    return std::make_unique<OutboundGuard>(cfg_, store_, parse_limit_overrides(overrides, "o", d));
  }
  std::optional<HoldInfo> send(const OutboundGuard& g, const std::string& account, std::size_t rcpts = 1,
                               bool spam = false, std::int64_t at = 0) {
    OutboundCounts c;
    std::optional<HoldInfo> h;
    Envelope e;
    e.auth_user = account;
    Status st = g.count_message(outbound_sender(e), rcpts, spam, at ? at : now_, "", "", c, h);
    EXPECT_TRUE(st.ok()) << st.message();
    last_ = c;
    return h;
  }
  static OutboundSender sender(const std::string& account) {
    Envelope e;
    e.auth_user = account;
    return outbound_sender(e);
  }
  test::TempDir dir_;
  BayesConfig store_;
  OutboundConfig cfg_;
  std::unique_ptr<test::RedisServer> redis_;
  std::int64_t now_ = unix_seconds();
  OutboundCounts last_;
};

TEST_P(GuardTest, PassingALimitHoldsTheAccountUntilReleased) {
  auto g = guard("carol@customer.example messages_per_minute=3\n");
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(send(*g, "carol@customer.example")) << i;
  auto h = send(*g, "carol@customer.example");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->who, "carol@customer.example");
  EXPECT_EQ(h->reason, "messages_per_minute passed: 4 > 3 in the last minute");
  EXPECT_EQ(h->until - h->since, 60) << "held until the minute of the limit has passed";
  EXPECT_DOUBLE_EQ(last_.user[RateLimits::kMessagesMinute], 4);

  std::optional<HoldInfo> held;
  ASSERT_TRUE(g->held(sender("carol@customer.example"), held).ok());
  ASSERT_TRUE(held);
  EXPECT_EQ(held->reason, h->reason);
  ASSERT_TRUE(g->held(sender("frank@customer.example"), held).ok());
  EXPECT_FALSE(held) << "another account of the domain is not held";
  std::vector<HoldInfo> all;
  ASSERT_TRUE(g->holds(all).ok());
  ASSERT_EQ(all.size(), 1u);

  ASSERT_TRUE(g->note_quarantined("carol@customer.example", "4AB12C").ok());
  ASSERT_TRUE(g->note_quarantined("carol@customer.example", "5CD34E").ok());
  bool was = false;
  std::vector<std::string> ids;
  ASSERT_TRUE(g->release("carol@customer.example", was, ids).ok());
  EXPECT_TRUE(was);
  EXPECT_EQ(ids, (std::vector<std::string>{"4AB12C", "5CD34E"}));
  ASSERT_TRUE(g->held(sender("carol@customer.example"), held).ok());
  EXPECT_FALSE(held);
  EXPECT_FALSE(send(*g, "carol@customer.example")) << "the counts were cleared with the hold";
  EXPECT_DOUBLE_EQ(last_.user[RateLimits::kMessagesMinute], 1);
  ASSERT_TRUE(g->release("carol@customer.example", was, ids).ok());
  EXPECT_FALSE(was);
}

TEST_P(GuardTest, RecipientsCountAndOldMessagesLeaveTheWindow) {
  auto g = guard("bulk@customer.example recipients_per_hour=10\n");
  EXPECT_FALSE(send(*g, "bulk@customer.example", 6, false, now_ - 3700));  // over an hour ago
  EXPECT_FALSE(send(*g, "bulk@customer.example", 6));
  EXPECT_DOUBLE_EQ(last_.user[RateLimits::kRecipientsHour], 6);
  EXPECT_DOUBLE_EQ(last_.user[RateLimits::kRecipientsDay], 12);
  auto h = send(*g, "bulk@customer.example", 5);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->reason, "recipients_per_hour passed: 11 > 10 in the last hour");
}

TEST_P(GuardTest, ADomainOverItsLimitHoldsEveryAccountOfIt) {
  auto g = guard("domain:shop.example messages_per_hour=3\n");
  EXPECT_FALSE(send(*g, "a@shop.example"));
  EXPECT_FALSE(send(*g, "b@shop.example"));
  EXPECT_FALSE(send(*g, "c@shop.example"));
  auto h = send(*g, "a@shop.example");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->who, "domain shop.example");
  std::optional<HoldInfo> held;
  ASSERT_TRUE(g->held(sender("z@shop.example"), held).ok());
  EXPECT_TRUE(held);
  ASSERT_TRUE(g->held(sender("z@other.example"), held).ok());
  EXPECT_FALSE(held);
  std::vector<HoldInfo> all;
  ASSERT_TRUE(g->holds(all).ok());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].who, "domain shop.example");
  bool was = false;
  std::vector<std::string> ids;
  ASSERT_TRUE(g->release("domain:shop.example", was, ids).ok());
  EXPECT_TRUE(was);
  ASSERT_TRUE(g->held(sender("z@shop.example"), held).ok());
  EXPECT_FALSE(held);
  ASSERT_TRUE(g->holds(all).ok());
  EXPECT_TRUE(all.empty()) << "released: no longer listed";
}

TEST_P(GuardTest, SpamVerdictsAndComplaintsTogetherHoldBeforeAnyRateLimit) {
  cfg_.hold_after_spam = 3;
  auto g = guard();
  EXPECT_FALSE(send(*g, "hank@customer.example", 1, true));
  EXPECT_FALSE(send(*g, "hank@customer.example", 1, false));  // ham does not count
  EXPECT_FALSE(send(*g, "hank@customer.example", 1, true));
  OutboundCounts c;
  std::optional<HoldInfo> h;
  ASSERT_TRUE(g->add_complaint("Hank@Customer.example", now_, c, h).ok());
  EXPECT_DOUBLE_EQ(c.spam, 2);
  EXPECT_DOUBLE_EQ(c.complaints, 1);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->reason, "2 spam verdicts + 1 complaint in the last 3600 s reached hold_after_spam = 3");
  EXPECT_EQ(h->until - h->since, 3600) << "held until the spam window has passed";
  // A later verdict does not make a second hold (nor extend this one).
  EXPECT_FALSE(send(*g, "hank@customer.example", 1, true));
}

// Issue 16: the site key was written in place, so a full disk at first use
// left an empty site.key that disabled tagging for good, restarts included.
TEST_P(GuardTest, AFailedSiteKeyWriteLeavesNoFileAndTheNextUseWritesIt) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // a disk with no room: every write past 0 bytes fails (EFBIG)
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{0, 0};
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) _exit(2);
    std::string tag;
    _exit(guard()->tag_of("dave@customer.example", tag).ok() ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "tagging must fail while the key cannot be written";
  struct stat st{};
  EXPECT_NE(stat(cfg_.site_key_file.c_str(), &st), 0) << "a half-written key file was left behind";
  std::string tag;  // room again
  ASSERT_TRUE(guard()->tag_of("dave@customer.example", tag).ok());
  EXPECT_EQ(tag.size(), 32u);
}

TEST_P(GuardTest, AnEmptySiteKeyLeftByAnOldFailedWriteIsReplaced) {
  { std::ofstream(cfg_.site_key_file).flush(); }  // an empty file
  std::string tag;
  ASSERT_TRUE(guard()->tag_of("dave@customer.example", tag).ok());
  EXPECT_EQ(tag.size(), 32u);
  EXPECT_EQ(test::read_file(cfg_.site_key_file).size(), 65u);  // 64 hex digits and a newline
}

TEST_P(GuardTest, TagAndMessageIdLeadBackToTheAccount) {
  auto g = guard();
  std::string tag, again, other;
  ASSERT_TRUE(g->tag_of("dave@customer.example", tag).ok());
  ASSERT_TRUE(g->tag_of("dave@customer.example", again).ok());
  ASSERT_TRUE(g->tag_of("erin@customer.example", other).ok());
  EXPECT_EQ(tag.size(), 32u);
  EXPECT_EQ(tag, again);
  EXPECT_NE(tag, other);
  EXPECT_EQ(tag.find("dave"), std::string::npos);
  struct stat st{};
  ASSERT_EQ(stat(cfg_.site_key_file.c_str(), &st), 0) << "the site key is created on first use";
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  OutboundCounts c;
  std::optional<HoldInfo> h;
  ASSERT_TRUE(g->count_message(sender("dave@customer.example"), 1, false, now_, " <abc-1@customer.example>", tag, c, h).ok());
  std::string account;
  ASSERT_TRUE(g->account_of_tag(tag, account).ok());
  EXPECT_EQ(account, "dave@customer.example");
  ASSERT_TRUE(g->account_of_message_id("<abc-1@customer.example>", account).ok());
  EXPECT_EQ(account, "dave@customer.example");
  ASSERT_TRUE(g->account_of_tag(other, account).ok());
  EXPECT_EQ(account, "") << "a tag never seen on our outbound mail";
  ASSERT_TRUE(g->account_of_message_id("<nobody@example.net>", account).ok());
  EXPECT_EQ(account, "");
  // A new guard (a reload, or another process) reads the same key.
  std::string reread;
  ASSERT_TRUE(guard()->tag_of("dave@customer.example", reread).ok());
  EXPECT_EQ(reread, tag);
}

TEST_P(GuardTest, AHoldEndsByItselfAfterHoldSeconds) {
  cfg_.hold_seconds = 1;
  auto g = guard("x@customer.example messages_per_minute=1\n");
  send(*g, "x@customer.example");
  ASSERT_TRUE(send(*g, "x@customer.example"));
  std::vector<HoldInfo> all;
  ASSERT_TRUE(g->holds(all).ok());
  EXPECT_EQ(all.size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  std::optional<HoldInfo> held;
  ASSERT_TRUE(g->held(sender("x@customer.example"), held).ok());
  EXPECT_FALSE(held);
  ASSERT_TRUE(g->holds(all).ok());
  EXPECT_TRUE(all.empty()) << "an ended hold is no longer listed (nor counted in the metrics)";
}

TEST_P(GuardTest, StateUpdatesFromManyThreadsAreAtomic) {
  auto r = open_state_store(store_);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::shared_ptr<StateStore> st = r.value();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  std::mutex mu;
  std::string first_error;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto inc = [](std::optional<std::string>& v) { v = std::to_string(std::stoi(v.value_or("0")) + 1); };
        Status s = i % 2 == 0 ? st->update("counter", 0, inc)
                              : st->update_many({{"counter", 0, inc}, {"other", 3600, inc}});  // both or neither
        if (!s.ok() && failures++ == 0) {
          std::lock_guard lock(mu);
          first_error = s.message();
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << first_error;
  std::optional<std::string> v;
  ASSERT_TRUE(st->get("counter", v).ok());
  EXPECT_EQ(v.value_or(""), "200");
  ASSERT_TRUE(st->get("other", v).ok());
  EXPECT_EQ(v.value_or(""), "100");
  // Deleting one record leaves the others.
  ASSERT_TRUE(st->update("hold:u:a", 60, [](std::optional<std::string>& x) { x = "1"; }).ok());
  ASSERT_TRUE(st->update("hold:u:b", 60, [](std::optional<std::string>& x) { x = "2"; }).ok());
  ASSERT_TRUE(st->update("hold:u:b", 60, [](std::optional<std::string>& x) { x.reset(); }).ok());
  ASSERT_TRUE(st->get("hold:u:b", v).ok());
  EXPECT_FALSE(v.has_value());
  ASSERT_TRUE(st->get("hold:u:a", v).ok());
  EXPECT_EQ(v.value_or(""), "1");
}

TEST_P(GuardTest, AnUnreachableStoreIsAnErrorNotAnException) {
  if (GetParam() == "lmdb") {
    store_.path = "/proc/spamgate-no-such-place/bayes";  // cannot be created
  } else {
    redis_.reset();  // the server is gone
  }
  auto g = guard();
  OutboundCounts c;
  std::optional<HoldInfo> h;
  Status st = g->count_message(sender("a@customer.example"), 1, false, now_, "", "", c, h);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(st.message().empty());
  std::optional<HoldInfo> held;
  EXPECT_FALSE(g->held(sender("a@customer.example"), held).ok());
}

INSTANTIATE_TEST_SUITE_P(Stores, GuardTest, ::testing::Values("lmdb", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(FeedbackReport, ReadsTheFieldsAndTheEnclosedOriginal) {
  const std::string src = SPAMGATE_SOURCE_DIR;
  FeedbackReport r;
  ASSERT_TRUE(parse_feedback_report(test::read_file(src + "/corpus/arf/abuse_sender_tag.eml"), r).ok());
  EXPECT_EQ(r.feedback_type, "abuse");
  EXPECT_EQ(r.user_agent, "ExampleISP-FBL/2.1");
  EXPECT_EQ(r.source_ip, "192.0.2.77");
  EXPECT_FALSE(r.headers_only);
  Message m = parse_message(r.original, Limits{});
  ASSERT_NE(m.first("X-Spamgate-Sender"), nullptr);
  EXPECT_EQ(m.first("Message-ID")->decoded, "<reset-8841-a@customer.example>");
  EXPECT_NE(m.text.find("verify your account"), std::string::npos) << "the body came along";

  ASSERT_TRUE(parse_feedback_report(test::read_file(src + "/corpus/arf/abuse_headers_only.eml"), r).ok());
  EXPECT_TRUE(r.headers_only);
  ASSERT_TRUE(parse_feedback_report(test::read_file(src + "/corpus/arf/not_spam_report.eml"), r).ok());
  EXPECT_EQ(r.feedback_type, "not-spam");
}

TEST(FeedbackReport, OtherMailIsRefusedSayingWhy) {
  const std::string src = SPAMGATE_SOURCE_DIR;
  FeedbackReport r;
  Status s = parse_feedback_report(test::read_file(src + "/corpus/arf/original_message_id.eml"), r);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not multipart/report"), std::string::npos);
  s = parse_feedback_report(
      "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n", r);
  EXPECT_NE(s.message().find("delivery-status"), std::string::npos) << s.message();
  s = parse_feedback_report(std::string(5000, '\0'), r);
  EXPECT_FALSE(s.ok());
}

// The milter session: a held login is refused at MAIL FROM; local
// submission never is, and its message goes to the hold queue instead.
class SessionOutbound : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.file("limits.conf", "carol@customer.example messages_per_minute=1\n");
    std::string cfg = test::write_config(dir_, "", "[outbound]\noverrides_file = \"limits.conf\"\n");
    std::vector<Diagnostic> d;
    auto s = load_snapshot(cfg, d);
    ASSERT_TRUE(s.ok()) << (d.empty() ? s.status().message() : d[0].str());
    holder_ = std::make_unique<SnapshotHolder>(s.value());
  }
  EomAction send(Session& s, test::Recorder& r, const std::string& login, const std::string& qid) {
    return test::stream_message(s, "From: carol@customer.example\r\nSubject: hi\r\n\r\nhello\r\n", r,
                                "<carol@customer.example>", "<friend@example.net>", 1000, qid, login);
  }
  test::TempDir dir_;
  std::unique_ptr<SnapshotHolder> holder_;
};

TEST_F(SessionOutbound, AHeldLoginIsRefusedAtMailFromAndLocalSubmissionIsQuarantined) {
  Session smtp(*holder_, "c1");
  smtp.connect("client.example", "203.0.113.5", false);
  test::Recorder r1;
  EXPECT_EQ(send(smtp, r1, "carol@customer.example", "Q1"), EomAction::kAccept);
  const test::Edit* tag = r1.find("add", "X-Spamgate-Sender");
  ASSERT_NE(tag, nullptr) << "outbound mail carries the sender tag";
  test::Recorder r2;
  EXPECT_EQ(send(smtp, r2, "carol@customer.example", "Q2"), EomAction::kTempfail);
  ASSERT_EQ(r2.replies.size(), 1u);
  EXPECT_EQ(r2.replies[0].substr(0, 9), "451 4.7.1");
  EXPECT_TRUE(smtp.mail_from("<carol@customer.example>", "carol@customer.example"))
      << "held: the next message is refused at MAIL FROM";
  Session local(*holder_, "c2");
  local.connect("localhost", "127.0.0.1", true);  // sendmail / pickup: non_smtpd_milters
  EXPECT_FALSE(local.mail_from("<carol@customer.example>", "")) << "local submission is never refused at MAIL FROM";
  test::Recorder r3;
  EXPECT_EQ(send(local, r3, "", "Q3"), EomAction::kAccept);
  ASSERT_EQ(r3.quarantined.size(), 1u);
  EXPECT_NE(r3.quarantined[0].find("carol@customer.example held"), std::string::npos) << r3.quarantined[0];
  EXPECT_TRUE(r3.replies.empty());
}

}  // namespace
}  // namespace spamgate
