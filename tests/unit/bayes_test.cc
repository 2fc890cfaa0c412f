// bayes_test.cc - the classifier: tokenizer, combining, both stores
// (LMDB in a temp dir, Redis as a private redis-server on loopback), learn
// rules (once per message, class switch, forget), a learner killed half way.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "bayes/online_lr.h"
#include "bayes/token_table.h"
#include "checks/bayes.h"
#include "dns_server.h"
#include "redis_server.h"
#include "spamgate/bayes.h"
#include "spamgate/message.h"
#include "spamgate/state_store.h"
#include "spamgate/pipeline.h"
#include "test_util.h"

namespace spamgate {
namespace {

std::vector<std::string> token_texts(const std::string& msg, const BayesConfig& cfg = {}) {
  Message m = parse_message(msg, Limits{});
  std::vector<std::string> out;
  Tokens t = tokenize(m, cfg, true);
  for (std::size_t i = 0; i < t.size(); ++i) {
    out.emplace_back(t.text_of(i));
    EXPECT_EQ(t.hashes[i], token_hash(out.back()));
  }
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

TEST(BayesTokenizer, UnicodeWordsAreLowerCasedAndIdeographsSplit) {
  auto t = token_texts(
      "From: a@example.com\r\nSubject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
      "GRÖSSE Straße ПРИВЕТ мир 免费赠品 it's $100 x\r\n");
  EXPECT_TRUE(has(t, "w:grösse"));
  EXPECT_TRUE(has(t, "w:straße"));
  EXPECT_TRUE(has(t, "w:привет"));
  EXPECT_TRUE(has(t, "w:мир"));
  EXPECT_TRUE(has(t, "w:免"));  // each ideograph a word
  EXPECT_TRUE(has(t, "w:费"));
  EXPECT_TRUE(has(t, "w:it's"));
  EXPECT_TRUE(has(t, "w:$100"));
  EXPECT_FALSE(has(t, "w:x"));  // one ASCII letter is not a token
  EXPECT_TRUE(has(t, "w:grösse straße"));  // adjacent pair
  EXPECT_TRUE(has(t, "w:grösse * привет"));  // skip-one pair
}

TEST(BayesTokenizer, HtmlMarkupIsNotTokenizedOnlyItsText) {
  auto t = token_texts(
      "From: a@example.com\r\nSubject: x\r\nContent-Type: text/html\r\n\r\n"
      "<html><body><font color=red><b>Cheap</b> pills</font> &amp; <a href=\"http://shop.example.co.uk/x\">"
      "here</a></body></html>\r\n");
  EXPECT_TRUE(has(t, "w:cheap"));
  EXPECT_TRUE(has(t, "w:cheap pills"));
  EXPECT_FALSE(has(t, "w:font"));
  EXPECT_FALSE(has(t, "w:color"));
  EXPECT_TRUE(has(t, "u:shop.example.co.uk"));
  EXPECT_TRUE(has(t, "u:dom:example.co.uk"));
  EXPECT_TRUE(has(t, "mime:text/html"));
}

TEST(BayesTokenizer, EncodedSubjectAndHeadersAreDecoded) {
  auto t = token_texts(
      "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <j@mail.example.de>\r\n"
      "Subject: =?UTF-8?B?R3JhdGlzIFZJQUdSQQ==?=\r\nX-Mailer: MassMailer Pro 5\r\n\r\nbody text\r\n");
  EXPECT_TRUE(has(t, "s:gratis"));
  EXPECT_TRUE(has(t, "s:viagra"));
  EXPECT_TRUE(has(t, "s:gratis viagra"));
  EXPECT_TRUE(has(t, "h:from:dom:example.de"));
  EXPECT_TRUE(has(t, "h:from:name:jürgen"));
  EXPECT_TRUE(has(t, "h:x-mailer:massmailer"));
}

TEST(BayesTokenizer, IgnoredHeadersAreNotRead) {
  const std::string msg = "From: a@example.com\r\nX-Mailer: MassMailer\r\nReceived: from relay.example.org\r\n\r\nhello there\r\n";
  BayesConfig cfg;
  EXPECT_TRUE(has(token_texts(msg, cfg), "h:x-mailer:massmailer"));
  EXPECT_TRUE(has(token_texts(msg, cfg), "h:received:host:example.org"));
  cfg.ignore_headers = {"x-MAILER", "Received"};
  EXPECT_FALSE(has(token_texts(msg, cfg), "h:x-mailer:massmailer"));
  EXPECT_FALSE(has(token_texts(msg, cfg), "h:received:host:example.org"));
}

TEST(BayesTokenizer, LongWordsAndNumbersAreShortenedAndTokensBounded) {
  auto t = token_texts("Subject: x\r\n\r\nsupercalifragilisticexpialidocious 1234567 99\r\n");
  EXPECT_TRUE(has(t, "w:sk:supercal"));
  EXPECT_TRUE(has(t, "w:#7"));
  EXPECT_TRUE(has(t, "w:99"));
  BayesConfig cfg;
  cfg.max_tokens = 10;
  std::string body;
  for (int i = 0; i < 500; ++i) body += "word" + std::to_string(i) + " ";
  EXPECT_EQ(token_texts("Subject: x\r\n\r\n" + body, cfg).size(), 10u);
}

TEST(BayesCombine, OneTokenGivesRobinsonsF) {
  BayesConfig cfg;
  cfg.min_ham = cfg.min_spam = 10;
  StoreTotals t{10, 10, 1};
  // Seen in 3 of 10 spam, no ham: p = 1, f = (0.45 * 0.5 + 3 * 1) / (0.45 + 3).
  BayesResult r = combine({{3, 0}}, t, cfg);
  ASSERT_TRUE(r.ready);
  EXPECT_NEAR(r.probability, 3.225 / 3.45, 1e-9);
  EXPECT_EQ(r.tokens_used, 1u);
  // A token as common in ham as in spam is not evidence: 0.5, no token used.
  r = combine({{5, 5}}, t, cfg);
  EXPECT_DOUBLE_EQ(r.probability, 0.5);
  EXPECT_EQ(r.tokens_used, 0u);
}

TEST(BayesCombine, ManySpamTokensNearOneMixedEvidenceNearHalf) {
  BayesConfig cfg;
  cfg.min_ham = cfg.min_spam = 100;
  StoreTotals t{100, 100, 0};
  std::vector<TokenCounts> spammy(20, TokenCounts{40, 1}), hammy(20, TokenCounts{1, 40});
  EXPECT_GT(combine(spammy, t, cfg).probability, 0.99);
  EXPECT_LT(combine(hammy, t, cfg).probability, 0.01);
  std::vector<TokenCounts> mixed = spammy;
  mixed.insert(mixed.end(), hammy.begin(), hammy.end());
  EXPECT_NEAR(combine(mixed, t, cfg).probability, 0.5, 0.05);  // unsure, not a coin flip
  EXPECT_STREQ(bayes_band(0.995), "BAYES_99");
  EXPECT_STREQ(bayes_band(0.005), "BAYES_00");
  EXPECT_STREQ(bayes_band(0.5), "BAYES_50");
}

TEST(BayesCombine, NoVerdictBeforeTheMinimumIsLearned) {
  BayesConfig cfg;  // 200 each by default
  BayesResult r = combine({{50, 0}}, StoreTotals{199, 500, 1}, cfg);
  EXPECT_FALSE(r.ready);
  EXPECT_TRUE(combine({{50, 0}}, StoreTotals{200, 200, 1}, cfg).ready);
}

// Runs every store test against both back ends.
class BayesStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cfg_.store = GetParam();
    cfg_.path = dir_.path() + "/bayes";
    if (GetParam() == "redis") {
      redis_ = std::make_unique<test::RedisServer>();
      ASSERT_TRUE(redis_->up()) << "redis-server (Debian package redis-server) is needed for the Redis store tests";
      cfg_.redis = redis_->address();
    }
  }
  std::shared_ptr<BayesStore> open() {
    auto r = open_bayes_store(cfg_);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r.value() : nullptr;
  }
  static LearnItem item(unsigned char id, std::vector<std::uint64_t> tokens) {
    LearnItem it;
    it.digest.fill(id);
    it.tokens = std::move(tokens);
    return it;
  }
  test::TempDir dir_;
  BayesConfig cfg_;
  std::unique_ptr<test::RedisServer> redis_;
};

// Issue 16: LMDB files were created 0644 outside the unit's umask (a
// `spamgate learn` from an admin's shell): tokens and account state readable
// by every local user.
TEST(LmdbStore, StoreFilesAreNotReadableByOtherUsersWhateverTheUmask) {
  test::TempDir dir;
  BayesConfig cfg;
  cfg.store = "lmdb";
  cfg.path = dir.path() + "/bayes";
  mode_t old = umask(022);
  auto st = open_bayes_store(cfg);
  umask(old);
  ASSERT_TRUE(st.ok()) << st.status().message();
  for (const std::string& p : {cfg.path, cfg.path + "/data.mdb", cfg.path + "/lock.mdb"}) {
    struct stat sb {};
    ASSERT_EQ(stat(p.c_str(), &sb), 0) << p;
    EXPECT_EQ(sb.st_mode & 07, 0u) << p << " is open to other users: " << std::oct << (sb.st_mode & 0777);
  }
}

TEST_P(BayesStoreTest, RoundTripCountsAndTotals) {
  auto st = open();
  ASSERT_TRUE(st);
  std::vector<LearnOutcome> out;
  ASSERT_TRUE(st->learn({item(1, {10, 11}), item(2, {11, 12})}, LearnClass::kSpam, false, out).ok());
  EXPECT_EQ(out, (std::vector<LearnOutcome>{LearnOutcome::kLearned, LearnOutcome::kLearned}));
  ASSERT_TRUE(st->learn({item(3, {12, 13})}, LearnClass::kHam, false, out).ok());
  std::vector<TokenCounts> c;
  StoreTotals t;
  ASSERT_TRUE(st->lookup({10, 11, 12, 13, 99}, c, t).ok());
  ASSERT_EQ(c.size(), 5u);
  EXPECT_EQ(c[0].spam, 1u);
  EXPECT_EQ(c[1].spam, 2u);
  EXPECT_EQ(c[2].spam, 1u);
  EXPECT_EQ(c[2].ham, 1u);
  EXPECT_EQ(c[3].ham, 1u);
  EXPECT_EQ(c[4].spam + c[4].ham, 0u);
  EXPECT_EQ(t.spam, 2u);
  EXPECT_EQ(t.ham, 1u);
  EXPECT_EQ(t.tokens, 4u);
  // Persistent: a new handle (LMDB: after the last one closed) sees the same.
  st.reset();
  st = open();
  ASSERT_TRUE(st->totals(t).ok());
  EXPECT_EQ(t.spam, 2u);
  EXPECT_EQ(t.tokens, 4u);
}

TEST_P(BayesStoreTest, LearningTwiceCountsOnceAndTheOtherClassMovesIt) {
  auto st = open();
  ASSERT_TRUE(st);
  std::vector<LearnOutcome> out;
  ASSERT_TRUE(st->learn({item(7, {1, 2, 3})}, LearnClass::kHam, false, out).ok());
  ASSERT_TRUE(st->learn({item(7, {1, 2, 3})}, LearnClass::kHam, false, out).ok());
  EXPECT_EQ(out[0], LearnOutcome::kAlready);
  std::vector<TokenCounts> c;
  StoreTotals t;
  ASSERT_TRUE(st->lookup({1}, c, t).ok());
  EXPECT_EQ(c[0].ham, 1u);
  EXPECT_EQ(t.ham, 1u);
  ASSERT_TRUE(st->learn({item(7, {1, 2, 3})}, LearnClass::kSpam, false, out).ok());
  EXPECT_EQ(out[0], LearnOutcome::kMoved);
  ASSERT_TRUE(st->lookup({1}, c, t).ok());
  EXPECT_EQ(c[0].ham, 0u);
  EXPECT_EQ(c[0].spam, 1u);
  EXPECT_EQ(t.ham, 0u);
  EXPECT_EQ(t.spam, 1u);
  ASSERT_TRUE(st->learn({item(7, {1, 2, 3})}, LearnClass::kSpam, true, out).ok());
  EXPECT_EQ(out[0], LearnOutcome::kForgotten);
  ASSERT_TRUE(st->lookup({1}, c, t).ok());
  EXPECT_EQ(c[0].spam, 0u);
  EXPECT_EQ(t.spam, 0u);
  EXPECT_EQ(t.tokens, 0u);  // tokens at zero are removed
  ASSERT_TRUE(st->learn({item(8, {1})}, LearnClass::kHam, true, out).ok());
  EXPECT_EQ(out[0], LearnOutcome::kNotFound);
}

TEST_P(BayesStoreTest, ALearnerKilledHalfWayLeavesAConsistentStore) {
  // The child learns messages that all share tokens 1..50 plus one token of
  // their own, in batches, until it is killed. Consistent means: every
  // shared token's spam count equals the number of messages learned.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(ready[0]);
    auto r = open_bayes_store(cfg_);
    if (!r.ok()) _exit(1);
    std::vector<std::uint64_t> shared;
    for (std::uint64_t i = 1; i <= 50; ++i) shared.push_back(i);
    for (std::uint64_t n = 0;; n += 20) {
      std::vector<LearnItem> batch;
      for (std::uint64_t k = n; k < n + 20; ++k) {
        LearnItem it;
        std::memcpy(it.digest.data(), &k, sizeof k);
        it.tokens = shared;
        it.tokens.push_back(1000000 + k);
        batch.push_back(std::move(it));
      }
      std::vector<LearnOutcome> out;
      if (!r.value()->learn(batch, LearnClass::kSpam, false, out).ok()) _exit(2);
      if (n == 100 && write(ready[1], "x", 1) != 1) _exit(3);  // a few batches in: kill me now
    }
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1) << "the learner died before its sixth batch";  // readiness, not a time
  close(ready[0]);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the learner stopped by itself: " << status;
  auto st = open();
  ASSERT_TRUE(st);
  StoreTotals t;
  std::vector<TokenCounts> c;
  ASSERT_TRUE(st->lookup({1, 25, 50}, c, t).ok());
  EXPECT_GT(t.spam, 0u);
  EXPECT_EQ(c[0].spam, t.spam);
  EXPECT_EQ(c[1].spam, t.spam);
  EXPECT_EQ(c[2].spam, t.spam);
  EXPECT_EQ(t.tokens, 50 + t.spam);
  // And it goes on: learning after the crash works.
  std::vector<LearnOutcome> out;
  EXPECT_TRUE(st->learn({item(0xEE, {1})}, LearnClass::kHam, false, out).ok());
}

// Both stores keep an in-memory copy of the token table (LMDB: read from the
// file; Redis: by HSCAN); a lookup uses it only while nothing was learned
// since, so counts are never stale.
TEST_P(BayesStoreTest, LookupsUseTheInMemoryCopyButNeverStaleCounts) {
  cfg_.cache_seconds = 1;
  std::shared_ptr<BayesStore> r = open();
  ASSERT_NE(r, nullptr);
  BayesStore& st = *r;
  std::vector<LearnOutcome> out;
  ASSERT_TRUE(st.learn({item(1, {1, 2, 3})}, LearnClass::kSpam, false, out).ok());
  std::vector<TokenCounts> c;
  StoreTotals t;
  for (int i = 0; i < 2400 && st.describe().find("in-memory copy: 3 tokens") == std::string::npos; ++i) {
    ASSERT_TRUE(st.lookup({1, 9}, c, t).ok());  // asks for the copy
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(st.describe().find("in-memory copy: 3 tokens"), std::string::npos) << st.describe();
  ASSERT_TRUE(st.lookup({1, 9}, c, t).ok());
  EXPECT_EQ(c[0].spam, 1u);
  EXPECT_EQ(c[1].spam + c[1].ham, 0u);
  EXPECT_EQ(t.spam, 1u);
  EXPECT_EQ(t.tokens, 3u);
  ASSERT_TRUE(st.learn({item(2, {1, 4})}, LearnClass::kHam, false, out).ok());
  ASSERT_TRUE(st.lookup({1, 4}, c, t).ok());  // at once, not after the next copy
  EXPECT_EQ(c[0].spam, 1u);
  EXPECT_EQ(c[0].ham, 1u);
  EXPECT_EQ(c[1].ham, 1u);
  EXPECT_EQ(t.ham, 1u);
  // The next copy has the new counts, and lookups use it again.
  for (int i = 0; i < 2400 && st.describe().find("in-memory copy: 4 tokens") == std::string::npos; ++i) {
    ASSERT_TRUE(st.lookup({1}, c, t).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(st.describe().find("in-memory copy: 4 tokens"), std::string::npos) << st.describe();
  ASSERT_TRUE(st.lookup({1, 4, 9}, c, t).ok());
  EXPECT_EQ(c[0].ham, 1u);
  EXPECT_EQ(c[1].ham, 1u);
  EXPECT_EQ(c[2].spam + c[2].ham, 0u);
}

// Issue 19: the logistic regression's weights live in the same store, are
// trained by learn() on errors and near misses only, are read from the same
// in-memory copy, and a mixed batch learns each item as its own class.
TEST_P(BayesStoreTest, LogisticRegressionWeightsAreTrainedOnErrorsAndReadBack) {
  cfg_.cache_seconds = 1;
  std::shared_ptr<BayesStore> r = open();
  ASSERT_NE(r, nullptr);
  BayesStore& st = *r;
  auto lr_item = [](unsigned char id, std::vector<std::uint32_t> features, LearnClass cls) {
    LearnItem it = item(id, {id});
    it.features = std::move(features);
    it.cls = cls;
    return it;
  };
  std::vector<LearnOutcome> out;
  std::vector<float> w;
  ASSERT_TRUE(st.lookup_weights({1, 2, 3}, w).ok());
  EXPECT_EQ(w, (std::vector<float>{0, 0, 0}));  // nothing trained
  // One batch, ham and spam mixed: the call's class (ham) is overridden per item.
  ASSERT_TRUE(st.learn({lr_item(1, {1, 2}, LearnClass::kSpam), lr_item(2, {2, 3}, LearnClass::kHam)},
                       LearnClass::kHam, false, out).ok());
  StoreTotals t;
  ASSERT_TRUE(st.totals(t).ok());
  EXPECT_EQ(t.spam, 1u);
  EXPECT_EQ(t.ham, 1u);
  ASSERT_TRUE(st.lookup_weights({1, 2, 3, 4}, w).ok());
  // Spam at p = 0.5: +0.01 * 0.5 on 1 and 2; then ham at p = sigmoid(0.005): -0.01 * 0.50125 on 2 and 3.
  EXPECT_NEAR(w[0], 0.005, 1e-6);
  EXPECT_NEAR(w[1], 0.005 - 0.0050125, 1e-6);
  EXPECT_NEAR(w[2], -0.0050125, 1e-6);
  EXPECT_EQ(w[3], 0.0f);
  // Learning a message again changes nothing; a clearly right one is not trained on.
  ASSERT_TRUE(st.learn({lr_item(1, {1, 2}, LearnClass::kSpam)}, LearnClass::kSpam, false, out).ok());
  EXPECT_EQ(out[0], LearnOutcome::kAlready);
  std::vector<float> again;
  ASSERT_TRUE(st.lookup_weights({1, 2, 3, 4}, again).ok());
  EXPECT_EQ(again, w);
  std::vector<LearnItem> many;  // many spam with feature 7: it grows until they are clearly spam
  for (int i = 0; i < 1500; ++i) {
    LearnItem it = lr_item(0, {7}, LearnClass::kSpam);
    it.digest[0] = static_cast<unsigned char>(i & 0xff);
    it.digest[1] = static_cast<unsigned char>(i >> 8);
    it.digest[2] = 0xAB;
    many.push_back(std::move(it));
  }
  ASSERT_TRUE(st.learn(many, LearnClass::kSpam, false, out).ok());
  ASSERT_TRUE(st.lookup_weights({7}, w).ok());
  const double p = 1.0 / (1.0 + std::exp(-w[0]));
  EXPECT_GE(p, 0.5 + kLrMargin);        // trained until right by the margin ...
  EXPECT_LT(p, 0.5 + kLrMargin + 0.01);  // ... and not further
  // The in-memory copy holds the same weights.
  for (int i = 0; i < 2400 && st.describe().find("in-memory copy") == std::string::npos; ++i) {
    std::vector<TokenCounts> c;
    ASSERT_TRUE(st.lookup({1}, c, t).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(st.describe().find("in-memory copy"), std::string::npos) << st.describe();
  std::vector<TokenCounts> c;
  ASSERT_TRUE(st.lookup({1}, c, t).ok());  // the copy is current
  ASSERT_TRUE(st.lookup_weights({1, 2, 3, 7}, again).ok());
  EXPECT_NEAR(again[0], 0.005, 1e-6);
  EXPECT_NEAR(again[2], -0.0050125, 1e-6);
  EXPECT_FLOAT_EQ(again[3], w[0]);
}

INSTANTIATE_TEST_SUITE_P(Stores, BayesStoreTest, ::testing::Values("lmdb", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(BayesTokenTable, FindsEveryKeyAndZeroForOthers) {
  bayes_detail::TokenTable t(10);  // grows past what it was sized for
  for (std::uint64_t k = 0; k < 50000; ++k) t.insert(k * 0x9E3779B97F4A7C15ull, {static_cast<std::uint32_t>(k), 7});
  EXPECT_EQ(t.size(), 50000u);  // key 0 (k = 0) included
  for (std::uint64_t k = 0; k < 50000; ++k) {
    TokenCounts c = t.find(k * 0x9E3779B97F4A7C15ull);
    ASSERT_EQ(c.spam, k);
    ASSERT_EQ(c.ham, 7u);
  }
  EXPECT_EQ(t.find(12345).spam + t.find(12345).ham, 0u);
}

// Two gateway nodes sharing one Redis: each keeps its own copy; node A sees
// what node B learned within [bayes] redis_version_check_ms.
TEST(BayesRedisCopy, AnotherNodesLearnShowsWithinTheVersionCheck) {
  test::RedisServer redis;
  ASSERT_TRUE(redis.up()) << "redis-server (Debian package redis-server) is needed for the Redis store tests";
  BayesConfig cfg;
  cfg.store = "redis";
  cfg.redis = redis.address();
  cfg.cache_seconds = 1;
  cfg.redis_version_check_ms = 200;
  auto a = open_bayes_store(cfg);
  BayesConfig other = cfg;  // a store is shared in a process per [bayes] settings:
  other.redis_timeout_ms += 1;  // a different setting stands for the other node
  auto b = open_bayes_store(other);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_NE(a.value().get(), b.value().get());
  // A reload (same settings) gets the same store: connections and copy kept.
  EXPECT_EQ(open_bayes_store(cfg).value().get(), a.value().get());
  LearnItem first;
  first.digest.fill(1);
  first.tokens = {1, 2};
  std::vector<LearnOutcome> out;
  ASSERT_TRUE(b.value()->learn({first}, LearnClass::kSpam, false, out).ok());
  std::vector<TokenCounts> c;
  StoreTotals t;
  for (int i = 0; i < 2400 && a.value()->describe().find("in-memory copy: 2 tokens") == std::string::npos; ++i) {
    ASSERT_TRUE(a.value()->lookup({1}, c, t).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(a.value()->describe().find("in-memory copy: 2 tokens"), std::string::npos) << a.value()->describe();
  ASSERT_TRUE(a.value()->lookup({1}, c, t).ok());
  EXPECT_EQ(c[0].spam, 1u);
  LearnItem second;
  second.digest.fill(2);
  second.tokens = {1};
  ASSERT_TRUE(b.value()->learn({second}, LearnClass::kHam, false, out).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // past the version check
  ASSERT_TRUE(a.value()->lookup({1}, c, t).ok());
  EXPECT_EQ(c[0].spam, 1u);
  EXPECT_EQ(c[0].ham, 1u) << "node A still used its old copy after the version check interval";
  EXPECT_EQ(t.ham, 1u);
}

// Issue 16: a hung Redis cost every message the whole redis_timeout_ms (for
// Bayes and again for the outbound state). After 5 calls without a reply
// the store fails at once, and a probe finds it again when it answers.
TEST(BayesRedisBreaker, AHungServerIsSkippedAtOnceAndUsedAgainWhenItAnswers) {
  test::RedisServer redis;
  ASSERT_TRUE(redis.up()) << "redis-server (Debian package redis-server) is needed for the Redis store tests";
  BayesConfig cfg;
  cfg.store = "redis";
  cfg.redis = redis.address();
  cfg.redis_timeout_ms = 300;
  cfg.redis_prefix = "breaker";
  auto st = open_bayes_store(cfg);
  ASSERT_TRUE(st.ok()) << st.status().message();
  auto state = std::dynamic_pointer_cast<StateStore>(st.value());
  ASSERT_TRUE(state);
  StoreTotals t;
  ASSERT_TRUE(st.value()->totals(t).ok());
  const std::string gauge = "spamgate_breaker_state{dependency=\"redis\"}";
  const std::string skipped = "spamgate_breaker_skipped_total{dependency=\"redis\"}";
  redis.hang();
  for (int i = 0; i < 5; ++i) {  // each waits its 300 ms for a reply
    Status s = i % 2 == 0 ? st.value()->totals(t) : [&] {
      std::optional<std::string> v;
      return state->get("hold:u:someone", v);
    }();
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.message().find("skipped"), std::string::npos) << i << ": " << s.message();
  }
  EXPECT_EQ(test::metric_value(gauge), 1);
  const double skipped_before = test::metric_value(skipped);
  auto t0 = std::chrono::steady_clock::now();
  Status s = st.value()->totals(t);
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not answering; skipped"), std::string::npos) << s.message();
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << "logged once by the breaker, not per message";
  EXPECT_LT(waited, 250) << "failed at once, not after the 300 ms timeout";
  EXPECT_EQ(test::metric_value(skipped), skipped_before + 1);
  redis.resume();
  // After the 1 s back-off one call probes; its reply closes the breaker
  // (ceiling 120 s for a loaded machine).
  bool ok = false;
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
       !ok && std::chrono::steady_clock::now() < end;) {
    ok = st.value()->totals(t).ok();
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(ok);
  EXPECT_EQ(test::metric_value(gauge), 0);
}

TEST(BayesCheck, ScoresABandAfterTrainingAndExplainsItsTokens) {
  test::TempDir dir;
  std::string cfg = test::write_config(dir, "score BAYES_99 3.5\nscore BAYES_00 -1\n", "[bayes]\npath = \"db\"\nmin_ham = 20\nmin_spam = 20\n");
  std::vector<Diagnostic> d;
  auto snap = load_snapshot(cfg, d);
  ASSERT_TRUE(snap.ok());
  const Snapshot& s = *snap.value();
  auto msg = [](int i, bool spam) {
    return std::string("From: ") + (spam ? "promo" : "colleague") + std::to_string(i) + "@example.com\r\nSubject: " +
           (spam ? "cheap meds online now" : "minutes of the planning meeting") + "\r\nMessage-ID: <" +
           std::to_string(i) + (spam ? "s" : "h") + "@example.com>\r\n\r\n" +
           (spam ? "buy cheap meds online, no prescription, discount pharmacy\r\n"
                 : "attached are the minutes; the budget review moves to thursday\r\n");
  };
  // Untrained: BAYES_UNTRAINED, no score.
  ScanResult r = scan_message(s, msg(1000, true), Envelope{});
  EXPECT_EQ(r.verdict.score_tenths, 0);
  EXPECT_TRUE(std::any_of(r.hits.begin(), r.hits.end(), [](const Hit& h) { return h.name == "BAYES_UNTRAINED"; }));
  auto opened = open_bayes_store(s.config.bayes);
  ASSERT_TRUE(opened.ok());
  std::vector<LearnItem> items;  // ham and spam mixed, as `learn --ham H --spam S` learns them
  for (int i = 0; i < 20; ++i)
    for (bool spam : {true, false}) {
      LearnItem it = learn_item(parse_message(msg(i, spam), s.config.limits), s.config.bayes);
      it.cls = spam ? LearnClass::kSpam : LearnClass::kHam;
      items.push_back(std::move(it));
    }
  std::vector<LearnOutcome> out;
  ASSERT_TRUE(opened.value()->learn(items, LearnClass::kHam, false, out).ok());
  r = scan_message(s, msg(2000, true), Envelope{});
  auto it = std::find_if(r.hits.begin(), r.hits.end(), [](const Hit& h) { return h.name == "BAYES_99"; });
  ASSERT_NE(it, r.hits.end());
  EXPECT_NE(it->detail.find("strongest: "), std::string::npos) << it->detail;
  EXPECT_NE(it->detail.find("cheap"), std::string::npos) << it->detail;
  EXPECT_EQ(r.verdict.score_tenths, 35);  // LR_xx have no score in this config
  // The logistic regression's band beside it, with the features that weighed most.
  auto lr_of = [](const ScanResult& res) -> const Hit* {
    for (const Hit& h : res.hits)
      if (h.name.rfind("LR_", 0) == 0) return &h;
    return nullptr;
  };
  const Hit* lr = lr_of(r);
  ASSERT_NE(lr, nullptr);
  EXPECT_GE(lr->name, "LR_60") << lr->detail;  // LR_60 .. LR_99: spam side
  EXPECT_NE(lr->detail.find("heaviest: "), std::string::npos) << lr->detail;
  r = scan_message(s, msg(2001, false), Envelope{});
  EXPECT_EQ(r.verdict.score_tenths, -10);
  lr = lr_of(r);
  ASSERT_NE(lr, nullptr);
  EXPECT_LE(lr->name, "LR_40") << lr->detail;  // ham side
  // [bayes] logistic = false: Bayes alone, the same store.
  std::string off = test::write_config(dir, "score BAYES_99 3.5\nscore BAYES_00 -1\n",
                                       "[bayes]\npath = \"db\"\nmin_ham = 20\nmin_spam = 20\nlogistic = false\n");
  auto snap_off = load_snapshot(off, d);
  ASSERT_TRUE(snap_off.ok());
  r = scan_message(*snap_off.value(), msg(2000, true), Envelope{});
  EXPECT_EQ(lr_of(r), nullptr);
  EXPECT_TRUE(std::any_of(r.hits.begin(), r.hits.end(), [](const Hit& h) { return h.name == "BAYES_99"; }));
}

TEST(BayesCheck, AStoreThatCannotOpenIsACheckErrorNotACrash) {
  test::TempDir dir;
  std::string cfg = test::write_config(dir, "", "[bayes]\nstore = \"redis\"\nredis = \"127.0.0.1:1\"\nredis_timeout_ms = 100\n");
  std::vector<Diagnostic> d;
  auto snap = load_snapshot(cfg, d);
  ASSERT_TRUE(snap.ok());
  ScanResult r = scan_message(*snap.value(), "Subject: x\r\n\r\nhello\r\n", Envelope{});
  ASSERT_EQ(r.check_errors.size(), 1u);
  EXPECT_EQ(r.check_errors[0].check, "bayes");
  EXPECT_NE(r.check_errors[0].message.find("127.0.0.1:1"), std::string::npos) << r.check_errors[0].message;
}

TEST(BayesAutolearn, LearnsClearSpamAndHamOnlyWhenOn) {
  test::TempDir dir;
  const std::string rules = "body LOTTERY /lottery/i\nscore LOTTERY 9\nbody MEETING /meeting/i\nscore MEETING -3\n";
  const std::string spam = "Subject: win\r\nMessage-ID: <1@x>\r\n\r\nthe lottery pays\r\n";
  const std::string ham = "Subject: notes\r\nMessage-ID: <2@x>\r\n\r\nthe meeting notes\r\n";
  const std::string unsure = "Subject: hello\r\nMessage-ID: <3@x>\r\n\r\nplain words\r\n";
  for (bool on : {false, true}) {
    std::string cfg = test::write_config(dir, rules, std::string("[bayes]\npath = \"db") + (on ? "on" : "off") +
                                                       "\"\nautolearn = " + (on ? "true" : "false") +
                                                       "\nautolearn_spam_above = 8\nautolearn_ham_below = -1\n");
    std::vector<Diagnostic> d;
    auto snap = load_snapshot(cfg, d);
    ASSERT_TRUE(snap.ok());
    // What the milter does after an inbound message: the Disposition's autolearn.
    for (const std::string& m : {spam, ham, unsure, spam}) {
      Handled h = test::handle(*snap.value(), m);
      EXPECT_EQ(h.disposition.autolearn.has_value(), on && m != unsure) << m;
      run_after_effects(*snap.value(), h, "test", false);
    }
    auto st = open_bayes_store(snap.value()->config.bayes);
    ASSERT_TRUE(st.ok());
    StoreTotals t;
    ASSERT_TRUE(st.value()->totals(t).ok());
    EXPECT_EQ(t.spam, on ? 1u : 0u);  // the same spam twice counts once
    EXPECT_EQ(t.ham, on ? 1u : 0u);
    // The logistic regression learned them too: the spam's features lean spam.
    LearnItem item = learn_item(parse_message(spam, snap.value()->config.limits), snap.value()->config.bayes);
    std::vector<float> w;
    ASSERT_TRUE(st.value()->lookup_weights(item.features, w).ok());
    EXPECT_EQ(lr_probability(w) > 0.5, on) << lr_probability(w);
  }
}

}  // namespace
}  // namespace spamgate

// Issue 19: the online logistic regression beside Bayes (measured by eval).
TEST(OnlineLogistic, LearnsWhatSeparatesTheClassesAndStaysUndecidedOnTheUnknown) {
  spamgate::OnlineLogistic lr;
  const std::vector<std::uint32_t> spam1 = {1, 2, 3, 100}, spam2 = {1, 2, 4, 101}, ham1 = {5, 6, 7, 100},
                                   ham2 = {5, 6, 8, 101}, unknown = {9000, 9001};
  EXPECT_DOUBLE_EQ(lr.probability(spam1), 0.5);
  int updates = 0;
  for (int i = 0; i < 200; ++i)
    updates += lr.train(spam1, true) + lr.train(ham1, false) + lr.train(spam2, true) + lr.train(ham2, false);
  EXPECT_GT(lr.probability(spam1), 0.8);
  EXPECT_LT(lr.probability(ham2), 0.2);
  EXPECT_GT(lr.probability({1, 2}), 0.7);  // the spam-only features alone
  EXPECT_DOUBLE_EQ(lr.probability(unknown), 0.5);
  // Thick threshold: once clearly right it stops updating.
  EXPECT_LT(updates, 800);
  EXPECT_FALSE(lr.train(spam1, true));
}

TEST(OnlineLogistic, FeaturesAreDistinctAndWithinTheTable) {
  using namespace spamgate;
  Message m = parse_message("Subject: cheap meds\r\n\r\nBuy CHEAP meds now, cheap meds online.\r\n", Limits{});
  Tokens t = tokenize(m, BayesConfig{});
  std::vector<std::uint32_t> f = spamgate::lr_features(m, t);
  ASSERT_FALSE(f.empty());
  std::sort(f.begin(), f.end());
  EXPECT_EQ(std::adjacent_find(f.begin(), f.end()), f.end());
  EXPECT_EQ(f, learn_item(m, BayesConfig{}).features);  // what learn stores: the same, sorted
  EXPECT_LT(f.back(), 1u << kLrBits);
  // Case and white space do not make other 4-grams.
  Message m2 = parse_message("Subject: cheap meds\r\n\r\nbuy cheap   meds now, CHEAP meds online.\r\n", Limits{});
  EXPECT_EQ(f, learn_item(m2, BayesConfig{}).features);
}
