// dns_test.cc - the resolver and the DNSBL check against a real DNS server
// (dnsmasq) on loopback, and against one that never answers.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "checks/dnsbl.h"
#include "util/psl.h"
#include "dns_server.h"
#include "test_util.h"

using namespace spamgate;
using spamgate::test::snapshot_with;
using spamgate::test::DnsServer;
using spamgate::test::free_udp_port;


namespace {

Deadline in_ms(int ms) { return std::chrono::steady_clock::now() + std::chrono::milliseconds(ms); }

// A server on loopback answers at once, but on a busy machine (CI, sanitizers,
// stress-ng) an answer may take seconds: tests that expect answers get
// generous limits; the dead-server tests pass a short budget of their own.
std::string dns_toml(const std::string& ns, int budget_ms = 30000) {
  const int timeout_ms = std::min(budget_ms, 10000);
  return "[dns]\nnameserver = \"" + ns + "\"\ntimeout_ms = " + std::to_string(timeout_ms) +
         "\nbudget_ms = " + std::to_string(budget_ms) +
         "\n[[dnsbl]]\nzone = \"bl.test\"\nsymbol = \"RCVD_IN_TESTBL\"\nscore = 2.5\n"
         "codes = { \"127.0.0.4\" = \"RCVD_IN_TESTBL_POLICY\" }\n";
}

std::shared_ptr<const Snapshot> network_snapshot(const std::string& toml) {
  static std::vector<std::unique_ptr<test::TempDir>> keep;
  keep.push_back(std::make_unique<test::TempDir>());
  std::string cfg = test::write_config(*keep.back(), "body X /xyzzy/\n", toml);
  std::vector<Diagnostic> d;
  auto s = load_snapshot(cfg, d, {.network = true});
  return s.ok() ? s.value() : nullptr;
}

std::vector<Hit> dnsbl_hits(const Snapshot& s, const std::string& ip, const std::string& msg = "Subject: x\n\nhi\n") {
  Envelope env;
  env.client_ip = ip;
  ScanResult r = scan_message(s, msg, env);
  std::vector<Hit> out;
  for (const Hit& h : r.hits) {
    if (h.name.rfind("RCVD_IN_", 0) == 0 || h.name == "DNSBL_TEMPERROR") out.push_back(h);
  }
  return out;
}

}  // namespace

TEST(Resolver, AnswersNxdomainTxtAndCaches) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  auto made = make_resolver(DnsConfig{dns.address(), 1500, 3, 5000, 100});
  ASSERT_TRUE(made.ok()) << made.status().message();
  std::unique_ptr<Resolver> r = std::move(made.value());
  DnsAnswer a = r->lookup("1.2.0.192.bl.test", DnsType::kA, in_ms(5000));
  ASSERT_EQ(a.rcode, DnsAnswer::Rcode::kOk);
  EXPECT_EQ(a.records, std::vector<std::string>{"127.0.0.2"});
  EXPECT_EQ(r->lookup("7.2.0.192.bl.test", DnsType::kA, in_ms(5000)).rcode, DnsAnswer::Rcode::kNxDomain);
  DnsAnswer t = r->lookup("spf.test", DnsType::kTxt, in_ms(5000));
  ASSERT_EQ(t.rcode, DnsAnswer::Rcode::kOk);
  EXPECT_EQ(t.records, std::vector<std::string>{"v=spf1 ip4:192.0.2.0/24 -all"});
  dns.stop();  // answers within their TTL come from the cache
  EXPECT_EQ(r->lookup("1.2.0.192.bl.test", DnsType::kA, in_ms(2000)).rcode, DnsAnswer::Rcode::kOk);
}

TEST(Resolver, ASilentServerTimesOutWithinTheDeadline) {
  int silent = -1;
  int port = free_udp_port(&silent);
  auto made = make_resolver(DnsConfig{"127.0.0.1:" + std::to_string(port), 5000, 2, 5000, 100});
  ASSERT_TRUE(made.ok()) << made.status().message();
  std::unique_ptr<Resolver> r = std::move(made.value());
  auto t0 = std::chrono::steady_clock::now();
  DnsAnswer a = r->lookup("1.2.0.192.bl.test", DnsType::kA, in_ms(300));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(a.rcode, DnsAnswer::Rcode::kTimeout);
  EXPECT_LT(ms, 2000);  // the 300 ms deadline wins over the 5 s lookup timeout (generous bound: no hang)
  close(silent);
}

TEST(Resolver, ABreakerSkipsAHungServerAtOnceAndClosesWhenItAnswersAgain) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  DnsConfig cfg{dns.address(), 1000, 2, 60000, 100};
  cfg.breaker_failures = 2;
  cfg.breaker_backoff_ms = 200;
  cfg.breaker_max_backoff_ms = 200;
  auto made = make_resolver(cfg);
  ASSERT_TRUE(made.ok()) << made.status().message();
  std::unique_ptr<Resolver> r = std::move(made.value());
  const std::string state = "spamgate_breaker_state{dependency=\"dns\"}";
  const std::string skipped = "spamgate_breaker_skipped_total{dependency=\"dns\"}";
  ASSERT_EQ(r->lookup("1.2.0.192.bl.test", DnsType::kA, in_ms(60000)).rcode, DnsAnswer::Rcode::kOk);
  EXPECT_EQ(r->lookup("7.2.0.192.bl.test", DnsType::kA, in_ms(60000)).rcode, DnsAnswer::Rcode::kNxDomain);
  EXPECT_EQ(test::metric_value(state), 0) << "NXDOMAIN is an answer";
  dns.hang();
  // Two lookups wait their whole 1 s timeout; then the breaker is open.
  EXPECT_EQ(r->lookup("11.2.0.192.bl.test", DnsType::kA, in_ms(60000)).rcode, DnsAnswer::Rcode::kTimeout);
  EXPECT_EQ(r->lookup("12.2.0.192.bl.test", DnsType::kA, in_ms(60000)).rcode, DnsAnswer::Rcode::kTimeout);
  EXPECT_EQ(test::metric_value(state), 1);
  const double skipped_before = test::metric_value(skipped);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(r->lookup("13.2.0.192.bl.test", DnsType::kA, in_ms(60000)).rcode, DnsAnswer::Rcode::kTimeout);
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(waited, 500) << "skipped at once, not after the 1 s lookup timeout";
  EXPECT_EQ(test::metric_value(skipped), skipped_before + 1);
  EXPECT_EQ(r->lookup("1.2.0.192.bl.test", DnsType::kA, in_ms(60000)).rcode, DnsAnswer::Rcode::kOk)
      << "the cache still answers";
  dns.resume();
  // Within 200 ms of back-off a lookup is the probe; its answer closes the
  // breaker (ceiling: 120 s for a loaded machine).
  DnsAnswer::Rcode rc = DnsAnswer::Rcode::kTimeout;
  for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(120);
       rc != DnsAnswer::Rcode::kNxDomain && std::chrono::steady_clock::now() < end;) {
    rc = r->lookup("14.2.0.192.bl.test", DnsType::kA, in_ms(60000)).rcode;
    if (rc != DnsAnswer::Rcode::kNxDomain) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(rc, DnsAnswer::Rcode::kNxDomain);
  EXPECT_EQ(test::metric_value(state), 0);
  EXPECT_EQ(r->lookup("3.2.0.192.bl.test", DnsType::kA, in_ms(60000)).rcode, DnsAnswer::Rcode::kOk);
}

TEST(Resolver, AReloadWithTheSameDnsSettingsKeepsTheResolverAndItsBreaker) {
  test::TempDir dir;
  std::vector<Diagnostic> d;
  const std::string same = test::write_config(dir, "body X /xyzzy/\n", dns_toml("127.0.0.1:53"));
  auto first = load_snapshot(same, d, {.network = true});
  ASSERT_TRUE(first.ok());
  auto reloaded = load_snapshot(same, d, {.network = true, .previous = first.value().get()});
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded.value()->resolver, first.value()->resolver);
  test::TempDir other_dir;
  const std::string other = test::write_config(other_dir, "body X /xyzzy/\n", dns_toml("127.0.0.1:54"));
  auto changed = load_snapshot(other, d, {.network = true, .previous = first.value().get()});
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed.value()->resolver, first.value()->resolver);
}

TEST(Dnsbl, ListedUnlistedCodesAndErrorAnswers) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  auto s = network_snapshot(dns_toml(dns.address()));
  ASSERT_NE(s, nullptr);
  auto listed = dnsbl_hits(*s, "192.0.2.1");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].name, "RCVD_IN_TESTBL");
  EXPECT_EQ(s->symbols.score_millis("RCVD_IN_TESTBL"), 2500);
  EXPECT_TRUE(dnsbl_hits(*s, "192.0.2.7").empty());
  auto policy = dnsbl_hits(*s, "192.0.2.3");
  ASSERT_EQ(policy.size(), 1u);
  EXPECT_EQ(policy[0].name, "RCVD_IN_TESTBL_POLICY");
  EXPECT_TRUE(dnsbl_hits(*s, "192.0.2.9").empty());  // 127.255.255.254: the list's error, not a listing
  EXPECT_TRUE(dnsbl_hits(*s, "10.1.2.3").empty());   // private addresses are never looked up
}

TEST(Dnsbl, ScanModeUsesTheFirstUntrustedReceivedHop) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  auto s = network_snapshot(dns_toml(dns.address()));
  ASSERT_NE(s, nullptr);
  const std::string msg =
      "Received: from internal (internal [10.0.0.5]) by mx.example.net\n"
      "Received: from bad.example (bad.example [192.0.2.1]) by internal\n"
      "Subject: x\n\nhi\n";
  auto hits = dnsbl_hits(*s, "", msg);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].name, "RCVD_IN_TESTBL");
}

TEST(Dnsbl, DeadServerGivesTemperrorWithinTheMessageBudget) {
  int silent = -1;
  int port = free_udp_port(&silent);
  auto s = network_snapshot(dns_toml("127.0.0.1:" + std::to_string(port), 400));
  ASSERT_NE(s, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  auto hits = dnsbl_hits(*s, "192.0.2.1");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].name, "DNSBL_TEMPERROR");
  EXPECT_LT(ms, 3000);  // generous bound: the message goes on, no hung thread
  close(silent);
}

TEST(Dnsbl, OffWithoutNetworkEmitsNothing) {
  auto s = snapshot_with("body X /xyzzy/\n", nullptr, dns_toml("127.0.0.1:1"));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->resolver, nullptr);
  EXPECT_TRUE(dnsbl_hits(*s, "192.0.2.1").empty());
  // ... yet its symbols are known, so rules files can score them.
  EXPECT_EQ(s->symbols.score_millis("RCVD_IN_TESTBL_POLICY"), 2500);
}

TEST(Dnsbl, ReverseIp) {
  EXPECT_EQ(reverse_ip("192.0.2.1"), "1.2.0.192");
  EXPECT_EQ(reverse_ip("2001:db8::1"), "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2");
  EXPECT_EQ(reverse_ip("not an ip"), "");
}

namespace {

std::string uribl_toml(const std::string& ns, int max_lookups = 20) {
  return "[limits]\nmax_uri_lookups = " + std::to_string(max_lookups) + "\n[dns]\nnameserver = \"" + ns +
         "\"\ntimeout_ms = 10000\nbudget_ms = 30000\n[[uribl]]\nzone = \"uribl.test\"\nsymbol = \"URIBL_TEST\"\nscore = 4\n";
}

int uribl_hits(const Snapshot& s, const std::string& body) {
  ScanResult r = scan_message(s, "Subject: links\n\n" + body + "\n", Envelope{});
  int n = 0;
  for (const Hit& h : r.hits) n += h.name == "URIBL_TEST";
  return n;
}

}  // namespace

TEST(Psl, RegisteredDomains) {
  EXPECT_EQ(registrable_domain("www.shop.example.co.uk"), "example.co.uk");
  EXPECT_EQ(registrable_domain("a.b.Example.COM."), "example.com");
  EXPECT_EQ(registrable_domain("co.uk"), "");
  EXPECT_EQ(registrable_domain(""), "");
}

TEST(Uribl, LinkDomainsAndBareIpsAreLookedUpByRegisteredDomain) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  auto s = network_snapshot(uribl_toml(dns.address()));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(uribl_hits(*s, "Buy at http://www.shop.example.co.uk/cart now"), 1);
  EXPECT_EQ(uribl_hits(*s, "Docs at https://clean.example.org/"), 0);
  EXPECT_EQ(uribl_hits(*s, "Go to http://198.51.100.7/win"), 1);
  EXPECT_EQ(uribl_hits(*s, "<a href=\"http://x.spammy.example/\">x</a> and http://y.spammy.example/"), 1);  // one domain, once
  EXPECT_EQ(s->symbols.score_millis("URIBL_TEST"), 4000);
}

TEST(Uribl, LookupsPerMessageAreBounded) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  const std::string body = "http://www.example.co.uk/ and http://a.spammy.example/";
  auto all = network_snapshot(uribl_toml(dns.address()));
  auto one = network_snapshot(uribl_toml(dns.address(), 1));
  ASSERT_NE(all, nullptr);
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(uribl_hits(*all, body), 2);
  EXPECT_EQ(uribl_hits(*one, body), 1);
}

namespace {

std::vector<std::string> spf_hits(const Snapshot& s, const std::string& ip, const std::string& from,
                                  const std::string& helo = "") {
  Envelope env;
  env.client_ip = ip;
  env.mail_from = from;
  env.helo = helo;
  ScanResult r = scan_message(s, "Subject: x\n\nhi\n", env);
  std::vector<std::string> out;
  for (const Hit& h : r.hits) {
    if (h.name.rfind("SPF_", 0) == 0) out.push_back(h.name);
  }
  return out;
}

}  // namespace

TEST(Spf, ResultsAgainstRealRecords) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  auto s = network_snapshot("[dns]\nnameserver = \"" + dns.address() + "\"\ntimeout_ms = 10000\nbudget_ms = 30000\n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(spf_hits(*s, "192.0.2.10", "a@spf.test"), std::vector<std::string>{"SPF_PASS"});
  EXPECT_EQ(spf_hits(*s, "198.51.100.5", "a@spf.test"), std::vector<std::string>{"SPF_FAIL"});
  EXPECT_EQ(spf_hits(*s, "198.51.100.5", "a@soft.test"), std::vector<std::string>{"SPF_SOFTFAIL"});
  EXPECT_EQ(spf_hits(*s, "198.51.100.5", "a@neutral.test"), std::vector<std::string>{"SPF_NEUTRAL"});
  EXPECT_EQ(spf_hits(*s, "198.51.100.5", "a@nothing.test"), std::vector<std::string>{"SPF_NONE"});
  EXPECT_EQ(spf_hits(*s, "198.51.100.5", "a@perm.test"), std::vector<std::string>{"SPF_PERMERROR"});
  EXPECT_EQ(spf_hits(*s, "192.0.2.20", "a@mx.test"), std::vector<std::string>{"SPF_PASS"});  // mx -> A
  EXPECT_EQ(spf_hits(*s, "192.0.2.30", "a@mx.test", "helo.test"),
            (std::vector<std::string>{"SPF_FAIL", "SPF_HELO_PASS"}));
}

TEST(Spf, NoSenderAndNoHeloIsNotChecked) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  auto s = network_snapshot("[dns]\nnameserver = \"" + dns.address() + "\"\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(spf_hits(*s, "192.0.2.10", "").empty());  // libspf2 would abort on this request
  EXPECT_EQ(spf_hits(*s, "192.0.2.30", "", "helo.test"), (std::vector<std::string>{"SPF_PASS", "SPF_HELO_PASS"}));
}

TEST(Spf, DeadResolverGivesTemperrorWithinTheBudget) {
  int silent = -1;
  int port = free_udp_port(&silent);
  auto s = network_snapshot("[dns]\nnameserver = \"127.0.0.1:" + std::to_string(port) +
                            "\"\ntimeout_ms = 200\nbudget_ms = 400\n");
  ASSERT_NE(s, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(spf_hits(*s, "192.0.2.10", "a@spf.test"), std::vector<std::string>{"SPF_TEMPERROR"});
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ms, 3000);  // generous bound: the message goes on
  close(silent);
}

TEST(Spf, ReceivedSpfHeaderIsPrependedToTheMessage) {
  DnsServer dns;
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  auto s = network_snapshot("[dns]\nnameserver = \"" + dns.address() + "\"\n");
  ASSERT_NE(s, nullptr);
  Envelope env;
  env.client_ip = "198.51.100.5";
  env.mail_from = "a@spf.test";
  env.helo = "client.example";
  const std::string msg = "Subject: x\n\nhi\n";
  std::string out = apply_plan(msg, test::handle(*s, msg, {}, env).disposition.plan);
  // Authentication-Results on top (RFC 8601), Received-SPF right below it.
  EXPECT_EQ(out.rfind("Authentication-Results: mx1.gateway.example;\n\tspf=fail smtp.mailfrom=a@spf.test", 0), 0u) << out;
  EXPECT_NE(out.find("\nReceived-SPF: fail ("), std::string::npos) << out;
  EXPECT_NE(out.find("client-ip=198.51.100.5;"), std::string::npos) << out;
  EXPECT_NE(out.find("envelope-from=a@spf.test;"), std::string::npos) << out;
  EXPECT_NE(out.find("\nSubject: x\n"), std::string::npos);
}
