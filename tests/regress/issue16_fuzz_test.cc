// issue16_fuzz_test.cc - regressions found by the fuzz targets of issue 16
// (tests/fuzz/, bench/fuzz.sh): each test replays what a target found
// through the same code, and failed before its fix.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "bayes/redis_replies.h"
#include "checks/spf.h"
#include "config/config.h"
#include "spamgate/bayes.h"
#include "spamgate/pipeline.h"
#include "../unit/test_util.h"

using namespace spamgate;

// fuzz_config: a config whose [outbound] store = "redis" names no server (and
// [bayes] none either) was accepted with a diagnostic left behind: `learn`
// and `release` printed it and went on, the milter then blamed the rules.
TEST(ConfigRegress, OutboundRedisWithoutServerIsAConfigError) {
  test::TempDir dir;
  std::string path = dir.file("spamgate.toml", "rules_dir = \"r\"\n[outbound]\nstore = \"redis\"\n");
  std::vector<Diagnostic> diags;
  auto c = load_config(path, diags);
  EXPECT_FALSE(c.ok());
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_NE(diags[0].message.find("'outbound.redis'"), std::string::npos) << diags[0].str();
  // With [bayes] redis it is taken from there and loads.
  diags.clear();
  path = dir.file("ok.toml", "rules_dir = \"r\"\n[bayes]\nredis = \"127.0.0.1:6379\"\n[outbound]\nstore = \"redis\"\n");
  auto ok = load_config(path, diags);
  ASSERT_TRUE(ok.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(ok.value().outbound.redis, "127.0.0.1:6379");
  EXPECT_TRUE(diags.empty());
}

// fuzz_config (UBSan, after 935 s of the 30-minute run): an integer
// threshold of 19 digits overflowed int64 in parse_tenths (times 10); the
// wrapped value could pass the range check as some other threshold.
TEST(ConfigRegress, AHugeIntegerThresholdIsOutOfRangeNotAnOverflow) {
  test::TempDir dir;
  for (const char* value : {"-4444444444444444444", "9223372036854775807", "1000000000000000"}) {
    std::string path = dir.file("spamgate.toml", std::string("rules_dir = \"r\"\nthreshold = ") + value + "\n");
    std::vector<Diagnostic> diags;
    auto c = load_config(path, diags);
    EXPECT_FALSE(c.ok()) << value;
    ASSERT_EQ(diags.size(), 1u) << value;
    EXPECT_NE(diags[0].message.find("'threshold' is out of range"), std::string::npos) << diags[0].str();
  }
  std::int64_t tenths = 0;
  EXPECT_TRUE(parse_tenths("-999999.5", tenths));
  EXPECT_EQ(tenths, -9999995);
  EXPECT_FALSE(parse_tenths("4444444444444444444", tenths));
}

namespace {

// A "Redis" on loopback that answers PING and then announces an array of two
// billion elements to every other command, keeping the connection open.
class HugeArrayServer {
 public:
  HugeArrayServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      return;
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~HugeArrayServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    if (thread_.joinable()) thread_.join();
    for (int c : clients_) close(c);
  }
  int port() const { return port_; }

 private:
  void serve() {
    while (!stop_) {
      int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      clients_.push_back(c);
      char buf[4096];
      for (ssize_t n; (n = read(c, buf, sizeof buf)) > 0;) {
        std::string_view got(buf, static_cast<std::size_t>(n));
        std::string_view answer = got.find("PING") != std::string_view::npos ? "+PONG\r\n" : "*2000000000\r\n";
        if (write(c, answer.data(), answer.size()) < 0) break;
        if (answer[0] == '*') break;  // then silence: the client must not wait for two billion replies
      }
    }
  }
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<int> clients_;
};

}  // namespace

// fuzz_redis_replies: an array reply announcing 212,345,678 elements made
// hiredis allocate 1.7 GB of pointers and the reader take 35 s to free them;
// "*2000000000" costs 16 GB. The store's readers now refuse an array larger
// than any reply it asks for, at once.
TEST(RedisRegress, AHugeArrayReplyFailsAtOnce) {
  std::unique_ptr<redisReader, void (*)(redisReader*)> r(redisReaderCreate(), redisReaderFree);
  bayes_detail::bound_reader(r.get());
  const char huge[] = "*212345678\r\n";
  ASSERT_EQ(redisReaderFeed(r.get(), huge, sizeof huge - 1), REDIS_OK);
  void* reply = nullptr;
  EXPECT_EQ(redisReaderGetReply(r.get(), &reply), REDIS_ERR);
  EXPECT_EQ(reply, nullptr);
  // Replies of the size the store asks for still read.
  std::unique_ptr<redisReader, void (*)(redisReader*)> ok(redisReaderCreate(), redisReaderFree);
  bayes_detail::bound_reader(ok.get());
  const char three[] = "*3\r\n$1\r\n5\r\n$-1\r\n:7\r\n";
  ASSERT_EQ(redisReaderFeed(ok.get(), three, sizeof three - 1), REDIS_OK);
  ASSERT_EQ(redisReaderGetReply(ok.get(), &reply), REDIS_OK);
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(static_cast<redisReply*>(reply)->elements, 3u);
  freeReplyObject(reply);
}

// The same through the store: a server announcing two billion elements is an
// error right away, not a wait for the reply's timeout with 16 GB reserved.
TEST(RedisRegress, TheStoreRefusesAHugeArrayFromTheServer) {
  HugeArrayServer server;
  ASSERT_NE(server.port(), 0);
  BayesConfig cfg;
  cfg.store = "redis";
  cfg.redis = "127.0.0.1:" + std::to_string(server.port());
  cfg.redis_prefix = "regress16";
  cfg.redis_timeout_ms = 30000;
  auto store = open_bayes_store(cfg);
  ASSERT_TRUE(store.ok()) << store.status().message();
  StoreTotals totals;
  auto t0 = std::chrono::steady_clock::now();
  Status s = store.value()->totals(totals);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(s.ok());
  EXPECT_LT(secs, 20) << s.message();  // before: the 30 s reply timeout
}

namespace {

// Answers TXT for dkim.test with an SPF record whose exp= names a domain
// that answers "ok" with no record; NXDOMAIN for anything else.
class EmptyExpResolver final : public Resolver {
 public:
  DnsAnswer lookup(std::string_view name, DnsType type, Deadline) override {
    DnsAnswer a;
    a.rcode = DnsAnswer::Rcode::kNxDomain;
    if (type == DnsType::kTxt && name == "dkim.test") {
      a.rcode = DnsAnswer::Rcode::kOk;
      a.records = {"v=spf1 -all exp=explain.dkim.test"};
    } else if (type == DnsType::kTxt && name == "explain.dkim.test") {
      a.rcode = DnsAnswer::Rcode::kOk;  // and no record
    }
    return a;
  }
};

}  // namespace

// fuzz_dns_answers (a leak): an SPF fail whose exp= TXT lookup answered ok
// with no record leaked libspf2's answer (SPF_request_get_exp frees it only
// for the error codes). Such an answer is handed to libspf2 as NODATA now.
// Fails before the fix only where leaks are checked (the ASan run of
// scripts/test.sh, LeakSanitizer at exit); everywhere it checks the verdict.
TEST(SpfRegress, AnEmptyExplanationAnswerIsNotLeaked) {
  auto base = test::snapshot_with("body X /x/\n", nullptr, "[outbound]\nenabled = false\n");
  ASSERT_NE(base, nullptr);
  Snapshot snap;
  snap.config = base->config;
  snap.symbols = base->symbols;
  snap.resolver = std::make_shared<EmptyExpResolver>();
  snap.checks.push_back(std::make_unique<SpfCheck>(snap.resolver, snap.config.hostname, snap.config.milter.trusted_networks));
  Envelope env;
  env.client_ip = "192.0.2.9";
  env.mail_from = "alice@dkim.test";
  ScanResult r = scan_message(snap, "From: alice@dkim.test\r\nSubject: x\r\n\r\nhi\r\n", env);
  bool fail = false;
  for (const Hit& h : r.hits) fail |= h.name == "SPF_FAIL";
  EXPECT_TRUE(fail);
}
