// config_test.cc - spamgate.toml: defaults, errors with line numbers.
#include <gtest/gtest.h>

#include "config/config.h"
#include "test_util.h"

using namespace spamgate;
using spamgate::test::TempDir;

namespace {

std::vector<std::string> config_errors(const std::string& toml) {
  TempDir d;
  d.file("rules/x.cf", "");
  std::string path = d.file("c.toml", toml);
  std::vector<Diagnostic> diags;
  auto c = load_config(path, diags);
  std::vector<std::string> out;
  for (const auto& e : diags) out.push_back(e.str().substr(e.str().find("c.toml")));
  return out;
}

}  // namespace

TEST(Config, ShippedConfigLoadsWithDocumentedDefaults) {
  std::vector<Diagnostic> diags;
  auto c = load_config(std::string(SPAMGATE_SOURCE_DIR) + "/conf/spamgate.toml", diags);
  ASSERT_TRUE(c.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(c->threshold_tenths, 50);
  EXPECT_EQ(c->threshold_text, "5");
  EXPECT_EQ(c->subject_tag, "[SPAM] -");
  EXPECT_EQ(c->limits.max_scan_bytes, 1048576u);
  EXPECT_FALSE(c->hostname.empty());
  ASSERT_EQ(c->rules_dirs.size(), 1u);
  EXPECT_NE(c->rules_dirs[0].find("/rules"), std::string::npos);
  EXPECT_EQ(c->rules_cache_dir, "");  // off unless the admin names a directory
  EXPECT_TRUE(c->history.enabled);
  EXPECT_EQ(c->history.path, "/var/lib/spamgate/history");  // beside [bayes] path
  EXPECT_EQ(c->history.retention_days, 30);
  EXPECT_EQ(c->history.reference, "url");
}

TEST(Config, HistorySectionIsValidated) {
  test::TempDir d;
  std::vector<Diagnostic> diags;
  auto c = load_config(d.file("a.toml", "rules_dir = \"rules\"\n[bayes]\npath = \"state/bayes\"\n[history]\n"
                                        "retention_days = 7\nmax_mb = 64\nqueue = 500\nreference = \"line\"\n"), diags);
  ASSERT_TRUE(c.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(c->history.path, d.path() + "/state/history");  // beside the Bayes directory
  EXPECT_EQ(c->history.retention_days, 7);
  EXPECT_EQ(c->history.max_bytes, std::size_t{64} << 20);
  EXPECT_EQ(c->history.queue, 500u);
  EXPECT_EQ(c->history.reference, "line");
  auto e = config_errors("rules_dir = \"rules\"\n[history]\nreference = \"header\"\nretention_days = 0\nmax_mb = 1\n");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0], "c.toml:3: 'history.reference' must be one of url, line, off");
  EXPECT_EQ(e[1], "c.toml:4: 'history.retention_days' must be between 1 and 3650");
  EXPECT_EQ(e[2], "c.toml:5: 'history.max_mb' must be between 16 and 1048576");
  // Redis: its address, or [bayes] redis's.
  auto r = load_config(d.file("r.toml", "rules_dir = \"rules\"\n[bayes]\nredis = \"127.0.0.1:6390\"\n"
                                        "[history]\nstore = \"redis\"\nredis_prefix = \"gw\"\n"), diags);
  ASSERT_TRUE(r.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(r->history.redis, "127.0.0.1:6390");
  EXPECT_EQ(r->history.redis_prefix, "gw");
  e = config_errors("rules_dir = \"rules\"\n[history]\nstore = \"mongo\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0], "c.toml:3: 'history.store' must be \"lmdb\" or \"redis\"");
  e = config_errors("rules_dir = \"rules\"\n[history]\nstore = \"redis\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("'history.redis' (HOST:PORT or unix:PATH) is required"), std::string::npos) << e[0];
}

TEST(Config, ConsoleSectionIsValidated) {
  test::TempDir d;
  std::vector<Diagnostic> diags;
  auto c = load_config(d.file("a.toml", "rules_dir = \"rules\"\n[bayes]\npath = \"state/bayes\"\n[console]\n"
                                        "users_file = \"users\"\nsession_minutes = 15\n"), diags);
  ASSERT_TRUE(c.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(c->console.listen, "127.0.0.1:9796");  // loopback by default
  EXPECT_EQ(c->console.users_file, d.path() + "/users");
  EXPECT_EQ(c->console.audit_log, d.path() + "/state/console-audit.log");
  EXPECT_EQ(c->console.session_minutes, 15);
  auto e = config_errors("rules_dir = \"rules\"\n[console]\nlisten = \"0.0.0.0:9796\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("not a loopback address: set console.certificate"), std::string::npos) << e[0];
  e = config_errors("rules_dir = \"rules\"\n[console]\nlisten = \"127.0.0.1:99999\"\nsession_minutes = 0\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_NE(e[0].find("'console.listen' must be one address and port"), std::string::npos) << e[0];
  EXPECT_TRUE(config_errors("rules_dir = \"rules\"\n[console]\nlisten = \"0.0.0.0:9796\"\ncertificate = \"c.pem\"\n")
                  .empty());
}

TEST(Config, BayesCacheKeysAndTheirOldNames) {
  test::TempDir d;
  std::vector<Diagnostic> diags;
  auto now = load_config(d.file("a.toml", "rules_dir = \"rules\"\n[bayes]\ncache_seconds = 7\ncache_max_tokens = 99\n"
                                          "redis_version_check_ms = 0\n"), diags);
  ASSERT_TRUE(now.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(now->bayes.cache_seconds, 7);
  EXPECT_EQ(now->bayes.cache_max_tokens, 99u);
  EXPECT_EQ(now->bayes.redis_version_check_ms, 0);
  // 0.9.0's names still work: an upgraded site's config keeps loading.
  auto old = load_config(d.file("b.toml", "rules_dir = \"rules\"\n[bayes]\nlmdb_cache_seconds = 5\nlmdb_cache_max_tokens = 42\n"), diags);
  ASSERT_TRUE(old.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(old->bayes.cache_seconds, 5);
  EXPECT_EQ(old->bayes.cache_max_tokens, 42u);
}

TEST(Config, UnknownKeysAndWrongTypesNameTheLine) {
  auto e = config_errors(
      "rules_dir = \"rules\"\n"
      "threshhold = 5\n"
      "max_scan_bytes = \"big\"\n"
      "[log]\n"
      "level = \"loud\"\n"
      "colour = 1\n");
  ASSERT_EQ(e.size(), 4u);
  EXPECT_EQ(e[0], "c.toml:2: unknown key 'threshhold'");
  EXPECT_EQ(e[1], "c.toml:3: 'max_scan_bytes' must be an integer");
  EXPECT_EQ(e[2], "c.toml:5: 'log.level' must be one of trace, debug, info, warn, error, critical, off");
  EXPECT_EQ(e[3], "c.toml:6: unknown key 'log.colour'");
}

TEST(Config, DnsBreakerKeysDefaultsAndLimits) {
  std::vector<Diagnostic> diags;
  auto shipped = load_config(std::string(SPAMGATE_SOURCE_DIR) + "/conf/spamgate.toml", diags);
  ASSERT_TRUE(shipped.ok());
  EXPECT_EQ(shipped->dns, DnsConfig{}) << "conf/spamgate.toml states the built-in defaults";
  EXPECT_EQ(shipped->dns.breaker_failures, 5);
  test::TempDir d;
  auto c = load_config(d.file("a.toml", "rules_dir = \"rules\"\n[dns]\nbreaker_failures = 0\n"
                                        "breaker_backoff_ms = 250\nbreaker_max_backoff_ms = 250\n"), diags);
  ASSERT_TRUE(c.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(c->dns.breaker_failures, 0);
  EXPECT_EQ(c->dns.breaker_backoff_ms, 250);
  auto e = config_errors(
      "rules_dir = \"rules\"\n"
      "[dns]\n"
      "breaker_failures = -1\n"
      "breaker_backoff_ms = 5000\n"
      "breaker_max_backoff_ms = 2000\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0], "c.toml:2: 'dns.breaker_max_backoff_ms' (2000) must not be less than 'dns.breaker_backoff_ms' (5000)");
  EXPECT_EQ(e[1], "c.toml:3: 'dns.breaker_failures' must be between 0 and 1000");
}

TEST(Config, SyntaxErrorNamesTheLine) {
  auto e = config_errors("rules_dir = \"rules\"\nthreshold = = 5\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].rfind("c.toml:2:", 0), 0u) << e[0];
}

TEST(Config, ThresholdIsKeptInTenthsAndPrintedShortest) {
  struct Case {
    std::string value;
    std::int64_t tenths;
    std::string text;
  } cases[] = {{"5", 50, "5"}, {"5.0", 50, "5"}, {"5.5", 55, "5.5"}, {"-1", -10, "-1"}, {"12.3", 123, "12.3"}};
  for (const auto& c : cases) {
    TempDir d;
    d.file("rules/x.cf", "");
    std::vector<Diagnostic> diags;
    auto cfg = load_config(d.file("c.toml", "rules_dir = \"rules\"\nthreshold = " + c.value + "\n"), diags);
    ASSERT_TRUE(cfg.ok()) << c.value;
    EXPECT_EQ(cfg->threshold_tenths, c.tenths) << c.value;
    EXPECT_EQ(cfg->threshold_text, c.text) << c.value;
  }
  auto e = config_errors("rules_dir = \"rules\"\nthreshold = 5.25\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("at most one decimal"), std::string::npos);
}

TEST(Config, HeaderTextMustBePrintable) {
  auto e = config_errors("rules_dir = \"rules\"\nservice_name = \"Evil\\r\\nX-Spam-Flag: NO\"\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_NE(e[0].find("'service_name' must be printable"), std::string::npos);
}

// Issue 16: "127.0.0.1:9795,0.0.0.0:19796" passed (it starts with 127.) and
// civetweb then served metrics on every interface.
TEST(Config, MetricsListenIsOneLoopbackAddress) {
  for (const char* bad : {"127.0.0.1:9795,0.0.0.0:19796", "0.0.0.0:9795", "127.0.0.1:99999", "127.0.0.1:",
                          "127.0.0.1.evil.example:9795", "[::]:9795"}) {
    auto e = config_errors(std::string("rules_dir = \"rules\"\n[metrics]\nlisten = \"") + bad + "\"\n");
    ASSERT_EQ(e.size(), 1u) << bad;
    EXPECT_NE(e[0].find("'metrics.listen' must be a loopback address"), std::string::npos) << bad << ": " << e[0];
  }
  for (const char* good : {"127.0.0.1:9795", "127.0.0.2:1", "[::1]:9795", "localhost:9795", ""})
    EXPECT_TRUE(config_errors(std::string("rules_dir = \"rules\"\n[metrics]\nlisten = \"") + good + "\"\n").empty())
        << good;
}

TEST(Config, MissingFileIsAClearError) {
  std::vector<Diagnostic> diags;
  auto c = load_config("/nonexistent/spamgate.toml", diags);
  EXPECT_FALSE(c.ok());
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_EQ(diags[0].str(), "/nonexistent/spamgate.toml: cannot read config: no such file");
}

TEST(Config, MilterSectionIsValidated) {
  auto e = config_errors(
      "rules_dir = \"rules\"\n"
      "[milter]\n"
      "socket = \"8895\"\n"
      "trusted_networks = [\"10.0.0.0/8\", \"300.1.1.1/8\"]\n"
      "inbound = \"quarantine\"\n"
      "on_check_error_by_check = { rules = \"explode\" }\n"
      "on_internal_error = \"continue\"\n");
  ASSERT_EQ(e.size(), 5u);
  EXPECT_NE(e[0].find("c.toml:3: 'milter.socket' must look like inet:PORT@HOST"), std::string::npos) << e[0];
  EXPECT_NE(e[1].find("c.toml:4: 'milter.trusted_networks' entry is not a CIDR"), std::string::npos) << e[1];
  EXPECT_NE(e[2].find("c.toml:5: 'milter.inbound' must be"), std::string::npos) << e[2];
  EXPECT_NE(e[3].find("c.toml:6: 'milter.on_check_error_by_check.rules' must be"), std::string::npos) << e[3];
  EXPECT_NE(e[4].find("c.toml:7: 'milter.on_internal_error' must be \"accept\" or \"tempfail\""), std::string::npos) << e[4];
}

#include "util/cidr.h"

TEST(Cidr, MatchesV4V6AndMappedAddresses) {
  auto v4 = Cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->contains("10.255.1.2"));
  EXPECT_FALSE(v4->contains("11.0.0.1"));
  EXPECT_TRUE(v4->contains("::ffff:10.1.1.1"));
  EXPECT_FALSE(v4->contains("2001:db8::1"));
  auto odd = Cidr::parse("192.0.2.128/25");
  ASSERT_TRUE(odd);
  EXPECT_TRUE(odd->contains("192.0.2.200"));
  EXPECT_FALSE(odd->contains("192.0.2.100"));
  auto v6 = Cidr::parse("2001:db8::/32");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("2001:db8:ffff::1"));
  EXPECT_FALSE(v6->contains("2001:db9::1"));
  auto host = Cidr::parse("198.51.100.7");
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->contains("198.51.100.7"));
  EXPECT_FALSE(host->contains("198.51.100.8"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
  EXPECT_FALSE(Cidr::parse("nonsense"));
  EXPECT_FALSE(Cidr::parse("10.0.0.0/"));
}

namespace spamgate {
namespace {

// A check that reads `deps` (Check::reads), for check_order.
class Reader final : public Check {
 public:
  Reader(std::string_view name, std::vector<std::string_view> deps) : name_(name), deps_(std::move(deps)) {}
  std::string_view name() const override { return name_; }
  Status run(const CheckContext&, std::vector<Hit>&, CheckOutput&) const override { return Status::Ok(); }
  std::vector<std::string_view> reads() const override { return deps_; }

 private:
  std::string_view name_;
  std::vector<std::string_view> deps_;
};

std::vector<std::unique_ptr<const Check>> checks(std::initializer_list<std::pair<std::string_view, std::vector<std::string_view>>> list) {
  std::vector<std::unique_ptr<const Check>> out;
  for (const auto& [name, deps] : list) out.push_back(std::make_unique<Reader>(name, deps));
  return out;
}

TEST(CheckOrder, ACheckMustRunAfterTheChecksItReads) {
  EXPECT_TRUE(check_order(checks({{"spf", {}}, {"dkim", {}}, {"dmarc", {"spf", "dkim"}}, {"meta", {"*"}}})).ok());
  Status st = check_order(checks({{"spf", {}}, {"dmarc", {"spf", "dkim"}}, {"dkim", {}}}));
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "dmarc reads the results of dkim, which runs after it");
  EXPECT_FALSE(check_order(checks({{"meta", {"*"}}, {"rules", {}}})).ok());
  // A check that is off (not in the list) is no dependency.
  EXPECT_TRUE(check_order(checks({{"dmarc", {"spf", "dkim"}}})).ok());
}

TEST(CheckOrder, ANetworkSnapshotRunsDmarcAfterSpfAndDkimAndMetasLast) {
  test::TempDir dir;
  // No query is made while loading: the nameserver need not answer.
  std::string cfg = test::write_config(dir, "body X /xyzzy/\n", "[dns]\nnameserver = \"127.0.0.1:9\"\n");
  std::vector<Diagnostic> d;
  auto snap = load_snapshot(cfg, d, {.network = true});
  ASSERT_TRUE(snap.ok()) << (d.empty() ? "" : d[0].str());
  std::string order;
  for (const auto& c : snap.value()->checks) order += std::string(c->name()) + " ";
  EXPECT_EQ(order, "message rules spf dkim dmarc bayes sender_domain meta ");
  EXPECT_TRUE(check_order(snap.value()->checks).ok());
}

}  // namespace
}  // namespace spamgate

// issue 22: values that used to be accepted and failed only at start.
TEST(Config, PortsAndNameserversAreChecked) {
  auto e = config_errors("rules_dir = \"rules\"\n[milter]\nsocket = \"inet:99999@127.0.0.1\"\n[dns]\nnameserver = \"8.8.8.8:abc\"\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_NE(e[0].find("'milter.socket' must look like inet:PORT@HOST with a port from 1 to 65535"), std::string::npos) << e[0];
  EXPECT_NE(e[1].find("'dns.nameserver' must be an IP address"), std::string::npos) << e[1];
  for (const char* ok : {"127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1"})
    EXPECT_TRUE(config_errors(std::string("rules_dir = \"rules\"\n[dns]\nnameserver = \"") + ok + "\"\n").empty()) << ok;
  EXPECT_TRUE(config_errors("rules_dir = \"rules\"\n[milter]\nsocket = \"inet:8895@127.0.0.1\"\n").empty());
  EXPECT_FALSE(config_errors("rules_dir = \"rules\"\n[milter]\nsocket = \"inet:8895\"\n").empty());
}
