// history_test.cc - the verdict history (issue 21, part 1): records, the
// LMDB store's lookups, retention and size cap, the background writer, and
// the reference in X-Spam-Technical-Details.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <regex>
#include <set>

#include "config/config.h"
#include "history/history_store.h"
#include "history/writer.h"
#include "spamgate/actions.h"
#include "spamgate/message.h"
#include "spamgate/metrics.h"
#include "spamgate/outbound.h"
#include "spamgate/snapshot.h"
#include "spamgate/verdict.h"
#include <hiredis/hiredis.h>

#include "redis_server.h"
#include "util/redis.h"
#include "test_util.h"

using namespace spamgate;
using spamgate::test::TempDir;

namespace {

HistoryRecord record(const std::string& ref, std::int64_t time, const std::string& queue_id,
                     const std::string& rcpt = "bob@example.net") {
  HistoryRecord r;
  r.ref = ref;
  r.time = time;
  r.queue_id = queue_id;
  r.message_id = "<" + queue_id + "@mail.example.org>";
  r.client_ip = "203.0.113.9";
  r.helo = "mail.example.org";
  r.mail_from = "alice@example.org";
  r.rcpt_to = {rcpt};
  r.from = "Alice <Alice.Sender@Example.org>";
  r.subject = "hello " + queue_id;
  r.size = 1234;
  r.direction = "inbound";
  r.score = "7.2";
  r.threshold = "5";
  r.action = "tag";
  r.auth = "spf=pass dkim=none";
  r.hits = {{"FREE_MONEY", "3.5", "free money"}, {"URI_SPAMMY_TLD", "1.2", "http://x.top/"}};
  return r;
}

HistoryConfig config_in(const TempDir& d, std::size_t max_bytes = std::size_t{64} << 20) {
  HistoryConfig c;
  c.path = d.path() + "/history";
  c.max_bytes = max_bytes;
  return c;
}

std::vector<std::string> refs_of(const std::vector<HistoryRecord>& rs) {
  std::vector<std::string> out;
  for (const HistoryRecord& r : rs) out.push_back(r.ref);
  return out;
}

// Each store (LMDB and Redis) answers lookups alike.
void expect_lookups(HistoryStore& s) {
  ASSERT_TRUE(s.put({record("aaaaaaaaaaaaaaa1", 1000, "QA1"), record("aaaaaaaaaaaaaaa2", 2000, "QA2"),
                     record("aaaaaaaaaaaaaaa3", 3000, "QB3", "carol@example.net")})
                  .ok());
  std::vector<HistoryRecord> out;
  auto find = [&](const std::string& term, std::int64_t since = 0, std::int64_t until = 0, std::size_t limit = 50) {
    EXPECT_TRUE(s.find({term, since, until, limit}, out).ok());
    return refs_of(out);
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(find("aaaaaaaaaaaaaaa2"), V{"aaaaaaaaaaaaaaa2"});                   // the reference
  EXPECT_EQ(out.front().subject, "hello QA2");
  EXPECT_EQ(find("qa2"), V{"aaaaaaaaaaaaaaa2"});                                 // queue id, any case
  EXPECT_EQ(find("<QB3@mail.example.org>"), V{"aaaaaaaaaaaaaaa3"});             // Message-ID with <>
  EXPECT_EQ(find("QB3@mail.example.org"), V{"aaaaaaaaaaaaaaa3"});               // and without
  EXPECT_EQ(find("bob@example.net"), (V{"aaaaaaaaaaaaaaa2", "aaaaaaaaaaaaaaa1"}));  // recipient, newest first
  EXPECT_EQ(find("carol@example.net"), V{"aaaaaaaaaaaaaaa3"});
  EXPECT_EQ(find("ALICE@example.org").size(), 3u);                              // envelope sender
  EXPECT_EQ(find("alice.sender@example.org").size(), 3u);                       // the From address
  EXPECT_EQ(find("bob@example.net", 1500), V{"aaaaaaaaaaaaaaa2"});              // a time range
  EXPECT_EQ(find("bob@example.net", 0, 1500), V{"aaaaaaaaaaaaaaa1"});
  EXPECT_EQ(find("bob@example.net", 0, 0, 1), V{"aaaaaaaaaaaaaaa2"});             // the newest of a term
  EXPECT_EQ(find("bob@example.net", 0, 2000), (V{"aaaaaaaaaaaaaaa2", "aaaaaaaaaaaaaaa1"}));  // until is inclusive
  EXPECT_EQ(find("", 0, 0, 2), (V{"aaaaaaaaaaaaaaa3", "aaaaaaaaaaaaaaa2"}));    // the newest, limited
  EXPECT_TRUE(find("nobody@example.net").empty());
  EXPECT_TRUE(find("aaaaaaaaaaaaaaa9").empty());
}


void expect_retention(HistoryStore& s) {
  ASSERT_TRUE(s.put({record("bbbbbbbbbbbbbbb1", 1000, "OLD1"), record("bbbbbbbbbbbbbbb2", 5000, "NEW2")}).ok());
  std::size_t removed = 0;
  ASSERT_TRUE(s.expire(2000, 100, removed).ok());
  EXPECT_EQ(removed, 1u);
  std::vector<HistoryRecord> out;
  ASSERT_TRUE(s.find({"OLD1"}, out).ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(s.find({"bbbbbbbbbbbbbbb1"}, out).ok());
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(s.find({"bob@example.net"}, out).ok());
  EXPECT_EQ(refs_of(out), std::vector<std::string>{"bbbbbbbbbbbbbbb2"});
  std::size_t n = 0;
  double used = 0;
  ASSERT_TRUE(s.stats(n, used).ok());
  EXPECT_EQ(n, 1u);
}


}  // namespace

TEST(HistoryRecordFormat, JsonRoundTripKeepsEveryFieldAndSurvivesHostileText) {
  HistoryRecord r = record("abcdefghijklmnop", 1765000000, "4XYZ12");
  r.reply = "550 5.7.1 Your email was rejected because it contains the Eicar-Signature";
  r.account = "carol@example.net";
  auto back = history_from_json(history_to_json(r));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(history_to_json(back.value()), history_to_json(r));
  EXPECT_EQ(back->hits.size(), 2u);
  EXPECT_EQ(back->rcpt_to, r.rcpt_to);
  EXPECT_EQ(back->reply, r.reply);
  // A Subject that is not UTF-8 (spam writes them) is stored, not refused.
  r.subject = "caf\xe9 \xff\xfe";
  auto hostile = history_from_json(history_to_json(r));
  ASSERT_TRUE(hostile.ok());
  EXPECT_NE(hostile->subject.find("caf"), std::string::npos);
  EXPECT_FALSE(history_from_json("{not json").ok());
  EXPECT_FALSE(history_from_json("{\"time\": 5}").ok());  // no reference
  // The stored form: every field back, bytes as they were; a record cut
  // short (a damaged page) is an error, never a crash or a wrong record.
  const std::string bytes = history_encode(r);
  auto stored = history_decode(bytes);
  ASSERT_TRUE(stored.ok()) << stored.status().message();
  EXPECT_EQ(history_encode(stored.value()), bytes);
  EXPECT_EQ(stored->subject, r.subject);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) EXPECT_FALSE(history_decode(bytes.substr(0, cut)).ok()) << cut;
  EXPECT_FALSE(history_decode("HR2" + bytes.substr(3)).ok());
}

TEST(HistoryRecordFormat, ReferencesAreSixteenBase32CharactersAndDoNotRepeat) {
  std::set<std::string> seen;
  const std::regex shape("[a-z2-7]{16}");
  for (int i = 0; i < 1000; ++i) {
    std::string ref = new_history_ref();
    EXPECT_TRUE(std::regex_match(ref, shape)) << ref;
    seen.insert(ref);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(HistoryStoreLmdb, FindsByReferenceQueueIdMessageIdAndAddressNewestFirst) {
  TempDir d;
  auto store = open_history_store(config_in(d));
  ASSERT_TRUE(store.ok()) << store.status().message();
  expect_lookups(*store.value());
}

TEST(HistoryStoreLmdb, RetentionRemovesOldRecordsAndTheirIndexEntries) {
  TempDir d;
  auto store = open_history_store(config_in(d));
  ASSERT_TRUE(store.ok());
  expect_retention(*store.value());
}

// One history for several nodes: the same lookups and retention in a
// private redis-server; records expire on their own after retention_days.
TEST(HistoryStoreRedis, FindsAndExpiresAsLmdbDoes) {
  test::RedisServer redis;
  HistoryConfig c;
  c.store = "redis";
  c.redis = redis.address();
  c.redis_prefix = "t1";
  auto store = open_history_store(c);
  ASSERT_TRUE(store.ok()) << store.status().message();
  expect_lookups(*store.value());
  c.redis_prefix = "t2";
  auto second = open_history_store(c);
  ASSERT_TRUE(second.ok());
  expect_retention(*second.value());
  // A second node's handle sees the first node's records.
  c.redis_prefix = "t1";
  auto node2 = open_redis_history(c);
  ASSERT_TRUE(node2.ok());
  std::vector<HistoryRecord> out;
  ASSERT_TRUE(node2.value()->find({"QA2"}, out).ok());
  EXPECT_EQ(refs_of(out), std::vector<std::string>{"aaaaaaaaaaaaaaa2"});
  auto conn = redis_connect(redis.address(), 5000);
  ASSERT_TRUE(conn.ok());
  redis_append(conn.value().get(), {"TTL", "t1:r:aaaaaaaaaaaaaaa2"});
  RedisReplyPtr ttl = redis_reply(conn.value().get());
  ASSERT_TRUE(ttl && ttl->type == REDIS_REPLY_INTEGER);
  EXPECT_GT(ttl->integer, 30 * 86400 - 60);  // retention_days (30) from the write
  EXPECT_LE(ttl->integer, 30 * 86400);
}

TEST(HistoryStoreRedis, AServerThatIsDownOrHungIsAnErrorNotAHang) {
  HistoryConfig c;
  c.store = "redis";
  c.redis = "127.0.0.1:1";  // nothing listens
  auto store = open_history_store(c);
  ASSERT_TRUE(store.ok());
  std::vector<HistoryRecord> out;
  Status st = store.value()->find({"x"}, out);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("history: redis 127.0.0.1:1"), std::string::npos) << st.message();
  EXPECT_FALSE(store.value()->put({record("ccccccccccccccc1", 1, "Q")}).ok());
  // A hung server: the call fails at redis_timeout_ms; once it answers
  // again, the next call connects again and works.
  test::RedisServer redis;
  c.redis = redis.address();
  c.redis_timeout_ms = 300;
  auto hung = open_history_store(c);
  ASSERT_TRUE(hung.ok());
  ASSERT_TRUE(hung.value()->put({record("ccccccccccccccc2", 5, "Q2")}).ok());
  redis.hang();
  EXPECT_FALSE(hung.value()->put({record("ccccccccccccccc3", 6, "Q3")}).ok());
  redis.resume();
  ASSERT_TRUE(hung.value()->find({"Q2"}, out).ok());
  EXPECT_EQ(refs_of(out), std::vector<std::string>{"ccccccccccccccc2"});
}

TEST(HistoryStoreLmdb, AFullStoreDropsItsOldestRecordsAndKeepsWriting) {
  TempDir d;
  auto store = open_history_store(config_in(d, std::size_t{16} << 20));  // the smallest max_mb
  ASSERT_TRUE(store.ok());
  HistoryStore& s = *store.value();
  // ~2 KB a record with its index: 15,000 of them do not fit in 16 MB.
  for (int batch = 0; batch < 150; ++batch) {
    std::vector<HistoryRecord> rs;
    for (int i = 0; i < 100; ++i) {
      const int n = batch * 100 + i;
      HistoryRecord r = record(new_history_ref(), 10000 + n, "Q" + std::to_string(n));
      r.subject = std::string(600, 'x');
      r.hits[0].detail = std::string(600, 'y');
      rs.push_back(std::move(r));
    }
    Status st = s.put(rs);
    ASSERT_TRUE(st.ok()) << "batch " << batch << ": " << st.message();
  }
  std::vector<HistoryRecord> out;
  ASSERT_TRUE(s.find({"Q14999"}, out).ok());
  EXPECT_EQ(out.size(), 1u);  // the newest is there
  ASSERT_TRUE(s.find({"Q0"}, out).ok());
  EXPECT_TRUE(out.empty());   // the oldest went
  std::size_t n = 0;
  double used = 0;
  ASSERT_TRUE(s.stats(n, used).ok());
  EXPECT_LT(used, 0.8);
  EXPECT_GT(n, 1000u);
}

namespace {

// A store whose put() waits until the test opens the gate: the writer's
// thread is then busy, so the queue fills.
class GatedStore final : public HistoryStore {
 public:
  explicit GatedStore(std::shared_ptr<HistoryStore> real) : real_(std::move(real)) {}
  Status put(const std::vector<HistoryRecord>& rs) override {
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    return real_->put(rs);
  }
  Status find(const HistoryQuery& q, std::vector<HistoryRecord>& out) const override { return real_->find(q, out); }
  Status expire(std::int64_t before, std::size_t max, std::size_t& removed) override {
    return real_->expire(before, max, removed);
  }
  Status stats(std::size_t& n, double& used) const override { return real_->stats(n, used); }
  std::string describe() const override { return "gated"; }
  void wait_for_put() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return waiting_ > 0; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::shared_ptr<HistoryStore> real_;
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

std::string metric_line(const std::string& page, const std::string& name) {
  std::size_t at = page.find(name + " ");
  return at == std::string::npos ? std::string() : page.substr(at, page.find('\n', at) - at);
}

}  // namespace

TEST(HistoryWriterQueue, RecordsAreWrittenInTheBackgroundAndAFullQueueDropsAndCounts) {
  TempDir d;
  HistoryConfig c = config_in(d);
  c.queue = 2;
  auto real = open_history_store(c);
  ASSERT_TRUE(real.ok());
  auto gated = std::make_shared<GatedStore>(real.value());
  const std::string before = Metrics::get().render({});
  {
    HistoryWriter w(gated, c);
    const std::int64_t now = unix_seconds();  // within retention
    ASSERT_TRUE(w.submit(record("ccccccccccccccc1", now - 3, "W1")));
    gated->wait_for_put();  // the thread holds W1 and waits
    EXPECT_TRUE(w.submit(record("ccccccccccccccc2", now - 2, "W2")));
    EXPECT_TRUE(w.submit(record("ccccccccccccccc3", now - 1, "W3")));
    EXPECT_FALSE(w.submit(record("ccccccccccccccc4", now, "W4")));  // queue of 2 full: dropped, mail goes on
    gated->open();
    w.flush();
    std::vector<HistoryRecord> out;
    ASSERT_TRUE(real.value()->find({"", 0, 0, 10}, out).ok());
    EXPECT_EQ(refs_of(out), (std::vector<std::string>{"ccccccccccccccc3", "ccccccccccccccc2", "ccccccccccccccc1"}));
  }
  const std::string after = Metrics::get().render({});
  EXPECT_NE(metric_line(after, "spamgate_history_records_total{result=\"dropped\"}"),
            metric_line(before, "spamgate_history_records_total{result=\"dropped\"}"));
}

TEST(HistoryReference, TechnicalDetailsCarryTheReferenceAsConfigured) {
  Config c;
  c.service_name = "Gateway";
  c.hostname = "mx1.example.net";
  c.support_url = "https://support.example.net/spam";
  Verdict v;
  v.score_tenths = 72;
  PlanOptions opts;
  opts.reference = "abcdefghijklmnop";
  auto details = [&](const Config& cfg) {
    Plan p = plan_actions(cfg, Message{}, HeaderCensus{}, v, opts);
    for (const HeaderEdit& e : p.edits)
      if (e.name == "X-Spam-Technical-Details") return e.value;
    return std::string();
  };
  EXPECT_NE(details(c).find("please visit https://support.example.net/spam?ref=abcdefghijklmnop"), std::string::npos)
      << details(c);
  c.support_url = "https://support.example.net/?lang=en";
  EXPECT_NE(details(c).find("?lang=en&ref=abcdefghijklmnop"), std::string::npos) << details(c);
  c.history.reference = "line";
  EXPECT_NE(details(c).find("please visit https://support.example.net/?lang=en\n\tReference: abcdefghijklmnop"),
            std::string::npos)
      << details(c);
  c.history.reference = "off";
  EXPECT_EQ(details(c).find("abcdefghijklmnop"), std::string::npos);
  // No reference (scan, explain): the four lines as they always were.
  c.history.reference = "url";
  opts.reference.clear();
  EXPECT_EQ(details(c).substr(details(c).rfind('\t')), "\tIf you feel this was in error, please visit https://support.example.net/?lang=en");
}
