// auth_test.cc - DKIM, DMARC and Authentication-Results against a real DNS
// server (dnsmasq) on loopback serving keys made by opendkim-genkey, with
// messages signed by an independent signer (dkimpy's dkimsign).
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include "checks/dkim.h"
#include "dns_server.h"
#include "milter/session.h"
#include "spamgate/auth.h"
#include "session_recorder.h"
#include "test_util.h"

using namespace spamgate;
using spamgate::test::DnsServer;
using spamgate::test::free_udp_port;
using spamgate::test::TempDir;

namespace {

// A 2048-bit key made once for the whole test binary, published as
// sel._domainkey.dkim.test and sel._domainkey.other.test.
struct Keys {
  TempDir dir;
  std::string private_key;
  std::string record;  // "v=DKIM1; h=sha256; k=rsa; p=..."
  bool ok = false;
  Keys() {
    std::string cmd = "opendkim-genkey -b 2048 -d dkim.test -s sel -D " + dir.path() + " 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) return;
    private_key = dir.path() + "/sel.private";
    std::string txt = test::read_file(dir.path() + "/sel.txt");
    std::regex quoted("\"([^\"]*)\"");
    for (auto it = std::sregex_iterator(txt.begin(), txt.end(), quoted); it != std::sregex_iterator(); ++it)
      record += (*it)[1].str();
    ok = !record.empty();
  }
};

const Keys& keys() {
  static Keys k;
  return k;
}

// dnsmasq's --txt-record takes each <=255-byte string as one argument part.
std::string txt(const std::string& name, const std::string& text) {
  std::string out = "--txt-record=" + name;
  for (std::size_t i = 0; i < text.size(); i += 250) out += "," + text.substr(i, 250);
  return out;
}

std::vector<std::string> zone() {
  return {txt("sel._domainkey.dkim.test", keys().record), txt("sel._domainkey.other.test", keys().record),
          "--txt-record=dkim.test,v=spf1 ip4:192.0.2.0/24 -all",
          "--txt-record=_dmarc.dkim.test,v=DMARC1; p=reject; rua=mailto:dmarc@dkim.test",
          "--txt-record=_dmarc.none.test,v=DMARC1; p=none",
          "--txt-record=_dmarc.org.test,v=DMARC1; p=none; sp=quarantine",
          "--txt-record=_dmarc.bad.test,v=DMARC1; p=bogus",
          "--txt-record=_dmarc.pct.test,v=DMARC1; p=reject; pct=50"};
}

// `msg` signed by dkimsign for `domain` with `selector` (the published key).
std::string sign(const std::string& msg, const std::string& domain = "dkim.test",
                 const std::string& selector = "sel") {
  TempDir d;
  std::string in = d.file("in.eml", msg);
  std::string out = d.path() + "/out.eml";
  std::string cmd = "dkimsign " + selector + " " + domain + " " + keys().private_key + " < " + in + " > " + out;
  if (std::system(cmd.c_str()) != 0) return {};
  return test::read_file(out);
}

std::string message(const std::string& from, const std::string& body = "Hello Bob,\r\nsee you at noon.\r\n") {
  return "From: Alice <" + from + ">\r\nTo: bob@example.net\r\nSubject: lunch\r\n"
         "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <lunch-1@example>\r\n\r\n" + body;
}

// Generous DNS limits by default: dnsmasq on loopback answers at once, but a
// busy machine (CI, sanitizers, stress-ng) may take seconds; the dead-server
// tests pass short ones.
constexpr const char* kAnsweringDns = "timeout_ms = 10000\nbudget_ms = 30000\n";

std::shared_ptr<const Snapshot> network_snapshot(const std::string& ns, const std::string& extra = "",
                                                 const std::string& dns_limits = kAnsweringDns) {
  static std::vector<std::unique_ptr<TempDir>> keep;
  keep.push_back(std::make_unique<TempDir>());
  std::string cfg = test::write_config(*keep.back(), "body X /xyzzy/\n",
                                       "[dns]\nnameserver = \"" + ns + "\"\n" + dns_limits + extra);
  std::vector<Diagnostic> d;
  auto s = load_snapshot(cfg, d, {.network = true});
  for (const auto& e : d) ADD_FAILURE() << e.str();
  return s.ok() ? s.value() : nullptr;
}

struct Scan {
  ScanResult r;
  std::string out;  // the message as delivered, CRs dropped for easy matching
  bool has(const std::string& sym) const {
    for (const Hit& h : r.hits) {
      if (h.name == sym) return true;
    }
    return false;
  }
  std::vector<std::string> auth_symbols() const {
    std::vector<std::string> out_syms;
    for (const Hit& h : r.hits) {
      if (h.name.rfind("DKIM_", 0) == 0 || h.name.rfind("DMARC_", 0) == 0) out_syms.push_back(h.name);
    }
    return out_syms;
  }
};

Scan scan(const Snapshot& s, const std::string& msg, const std::string& ip = "", const std::string& from = "") {
  Envelope env;
  env.client_ip = ip;
  env.mail_from = from;
  env.helo = ip.empty() ? "" : "client.example";
  Handled h = test::handle(s, msg, {}, env);
  Scan sc{std::move(*h.scan), ""};
  sc.out = apply_plan(msg, h.disposition.plan);
  sc.out.erase(std::remove(sc.out.begin(), sc.out.end(), '\r'), sc.out.end());
  return sc;
}

#define NEED_DNS_AND_KEYS(dns)                                                  \
  if (!(dns).up()) GTEST_SKIP() << "dnsmasq not installed";                    \
  if (!keys().ok) GTEST_SKIP() << "opendkim-genkey (opendkim-tools) missing"; \
  if (std::system("command -v dkimsign >/dev/null") != 0) GTEST_SKIP() << "dkimsign (python3-dkim) missing"

}  // namespace

TEST(Dkim, ValidSignatureFromTheAuthorsDomainPasses) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  std::string signed_msg = sign(message("alice@dkim.test"));
  ASSERT_NE(signed_msg.find("DKIM-Signature:"), std::string::npos);
  Scan sc = scan(*s, signed_msg);
  EXPECT_EQ(sc.auth_symbols(), (std::vector<std::string>{"DKIM_VALID", "DKIM_VALID_AU", "DMARC_PASS"}));
  EXPECT_EQ(sc.out.rfind("Authentication-Results: mx1.gateway.example;\n\tdkim=pass header.d=dkim.test "
                         "header.s=sel header.b=",
                         0),
            0u)
      << sc.out;
  EXPECT_NE(sc.out.find("\tdmarc=pass (p=reject) header.from=dkim.test\n"), std::string::npos) << sc.out;
}

TEST(Dkim, ABodyChangedAfterSigningFails) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  std::string signed_msg = sign(message("alice@dkim.test"));
  std::string changed = std::regex_replace(signed_msg, std::regex("at noon"), "at one");
  ASSERT_NE(changed, signed_msg);
  Scan sc = scan(*s, changed);
  EXPECT_EQ(sc.auth_symbols(), (std::vector<std::string>{"DKIM_INVALID", "DMARC_FAIL_REJECT"}));
  EXPECT_NE(sc.out.find("dkim=fail (body hash mismatch: the body was changed after signing) header.d=dkim.test"),
            std::string::npos)
      << sc.out;
  EXPECT_NE(sc.r.verdict.action, Action::kReject);  // scored, not rejected, by default
}

TEST(Dkim, AChangedSignedHeaderFails) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  std::string changed = std::regex_replace(sign(message("alice@dkim.test")), std::regex("Subject: lunch"),
                                           "Subject: free money");
  Scan sc = scan(*s, changed);
  EXPECT_TRUE(sc.has("DKIM_INVALID"));
  EXPECT_NE(sc.out.find("dkim=fail (signature did not verify"), std::string::npos) << sc.out;
}

TEST(Dkim, UnsignedMailIsNoneAndAThirdPartySignatureIsNotTheAuthors) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  Scan plain = scan(*s, message("carol@none.test"));
  EXPECT_EQ(plain.auth_symbols(), (std::vector<std::string>{"DKIM_NONE", "DMARC_FAIL_NONE"}));
  EXPECT_NE(plain.out.find("\tdkim=none;\n"), std::string::npos) << plain.out;
  Scan third = scan(*s, sign(message("carol@none.test"), "other.test"));
  EXPECT_EQ(third.auth_symbols(), (std::vector<std::string>{"DKIM_VALID", "DMARC_FAIL_NONE"}));
}

TEST(Dkim, ASelectorWithoutKeyIsPermerror) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  Scan sc = scan(*s, sign(message("alice@dkim.test"), "dkim.test", "gone"));
  EXPECT_TRUE(sc.has("DKIM_INVALID"));
  EXPECT_NE(sc.out.find("dkim=permerror ("), std::string::npos) << sc.out;
  EXPECT_NE(sc.out.find("header.s=gone"), std::string::npos) << sc.out;
}

TEST(Dkim, AtMostTenSignaturesAreVerified) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  std::string msg = message("alice@dkim.test");
  for (int i = 0; i < 11; ++i) msg = sign(msg, "dkim.test", "gone");
  msg = sign(msg, "dkim.test", "sel");  // on top: the first in header order
  Scan sc = scan(*s, msg);
  std::size_t n = 0;
  for (std::size_t p = sc.out.find("\tdkim="); p != std::string::npos; p = sc.out.find("\tdkim=", p + 1)) ++n;
  EXPECT_EQ(n, 10u) << sc.out;
  EXPECT_NE(sc.out.find(";\n\tdkim=pass header.d=dkim.test header.s=sel"), std::string::npos) << sc.out;
  EXPECT_TRUE(sc.has("DKIM_VALID_AU"));
}

TEST(Dkim, DeadResolverGivesTemperrorWithinTheBudget) {
  if (!keys().ok) GTEST_SKIP() << "opendkim-genkey missing";
  std::string signed_msg;
  {
    DnsServer dns(zone());
    if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
    signed_msg = sign(message("alice@dkim.test"));
  }
  int silent = -1;
  int port = free_udp_port(&silent);
  auto s = network_snapshot("127.0.0.1:" + std::to_string(port), "", "timeout_ms = 500\nbudget_ms = 2000\n");
  ASSERT_NE(s, nullptr);
  auto t0 = std::chrono::steady_clock::now();
  Scan sc = scan(*s, signed_msg);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(sc.auth_symbols(), (std::vector<std::string>{"DKIM_TEMPERROR", "DMARC_TEMPERROR"}));
  EXPECT_NE(sc.out.find("dkim=temperror (key DNS query failed)"), std::string::npos) << sc.out;
  EXPECT_LT(ms, 4000);  // the 2 s budget holds (generous bound: no hung thread)
  close(silent);
}

namespace {

class Recorder final : public HeaderSink {
 public:
  bool change(const std::string&, int, const std::string*) override { return true; }
  bool add(const std::string&, const std::string&) override { return true; }
  bool insert(const std::string& name, int, const std::string& value) override {
    inserted.push_back(name + ":" + value);
    return true;
  }
  bool reply(const std::string& rcode, const std::string& xcode, const std::string& text) override {
    replies.push_back(rcode + " " + xcode + " " + text);
    return true;
  }
  bool quarantine(const std::string&) override { return true; }
  std::vector<std::string> inserted;
  std::vector<std::string> replies;
};

// Feeds `msg` to a Session as libmilter would (LEADSPC values, LF folding,
// body in chunks); returns what the MTA was told.
EomAction stream(Session& s, const std::string& msg, Recorder& rec, std::size_t chunk = 700) {
  s.helo("client.example");
  return test::stream_message(s, msg, rec, "<alice@dkim.test>", "<bob@example.net>", chunk, "4QTEST");
}

}  // namespace

TEST(Dkim, TheMilterVerifiesTheStreamedBodyPastMaxScanBytes) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto snap = network_snapshot(dns.address(), "");
  ASSERT_NE(snap, nullptr);
  // A small scan window: the body goes on streaming to DKIM past it.
  std::vector<Diagnostic> d;
  TempDir dir;
  std::string cfg = test::write_config(dir, "body X /xyzzy/\n",
                                       "max_scan_bytes = 1024\n[dns]\nnameserver = \"" + dns.address() + "\"\n");
  auto small = load_snapshot(cfg, d, {.network = true});
  ASSERT_TRUE(small.ok());
  std::string body;
  for (int i = 0; i < 200; ++i) body += "line " + std::to_string(i) + " of a long signed letter\r\n";
  std::string signed_msg = sign(message("alice@dkim.test", body));
  SnapshotHolder holder(small.value());
  Session s(holder, "c1");
  Recorder rec;
  EXPECT_EQ(stream(s, signed_msg, rec), EomAction::kAccept);
  ASSERT_FALSE(rec.inserted.empty());
  EXPECT_EQ(rec.inserted.back().rfind("Authentication-Results: mx1.gateway.example;\n\tdkim=pass header.d=dkim.test", 0),
            0u)
      << rec.inserted.back();
}

// Issue 16: the milter gave a signed message two DNS budgets, one for the
// key lookups at end of headers and a new one at end of message (10 s, not
// 5, with a silent resolver). Here the key lookup is forwarded to a server
// that never answers and uses the whole budget; SPF, asked at end of message
// of a server that answers, must find no budget left.
TEST(Dkim, TheMilterGivesASignedMessageOneDnsBudget) {
  if (!keys().ok) GTEST_SKIP() << "opendkim-genkey missing";
  if (std::system("command -v dkimsign >/dev/null") != 0) GTEST_SKIP() << "dkimsign (python3-dkim) missing";
  int silent = -1;
  int port = free_udp_port(&silent);
  DnsServer dns({"--txt-record=dkim.test,v=spf1 ip4:192.0.2.0/24 -all",
                 "--server=/_domainkey.dkim.test/127.0.0.1#" + std::to_string(port)});
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  TempDir dir;
  std::vector<Diagnostic> d;
  const std::string cfg = test::write_config(dir, "body X /xyzzy/\n",
                                             "[dns]\nnameserver = \"" + dns.address() +
                                                 "\"\ntimeout_ms = 5000\nbudget_ms = 1500\n"
                                                 "[auth]\ndmarc = false\n");
  // The server answers SPF when the budget allows (a snapshot of its own:
  // its own resolver, so the answer is not in the cache below).
  auto other = load_snapshot(cfg, d, {.network = true});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(scan(*other.value(), message("alice@dkim.test"), "192.0.2.10", "alice@dkim.test").has("SPF_PASS"));
  auto snap = load_snapshot(cfg, d, {.network = true});
  ASSERT_TRUE(snap.ok());
  SnapshotHolder holder(snap.value());
  Session s(holder, "c1");
  s.connect("client.example", "192.0.2.11", false);
  Recorder rec;
  stream(s, sign(message("alice@dkim.test")), rec);
  ASSERT_FALSE(rec.inserted.empty());
  const std::string& ar = rec.inserted.back();
  EXPECT_NE(ar.find("dkim=temperror"), std::string::npos) << ar;
  EXPECT_NE(ar.find("spf=temperror"), std::string::npos) << ar;
  close(silent);
}

TEST(Dmarc, RejectPolicyFailureIsScoredByDefaultAndRejectsWhenConfigured) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto scored = network_snapshot(dns.address());
  auto rejecting = network_snapshot(dns.address(), "[auth]\ndmarc_reject_policy = \"reject\"\n");
  ASSERT_NE(scored, nullptr);
  ASSERT_NE(rejecting, nullptr);
  const std::string forged = message("ceo@dkim.test");  // unsigned, from an address SPF forbids
  Scan a = scan(*scored, forged, "198.51.100.5", "ceo@dkim.test");
  EXPECT_TRUE(a.has("SPF_FAIL"));
  EXPECT_TRUE(a.has("DMARC_FAIL_REJECT"));
  EXPECT_NE(a.r.verdict.action, Action::kReject);
  EXPECT_NE(a.out.find("\tdmarc=fail (p=reject) header.from=dkim.test\n"), std::string::npos) << a.out;
  Scan b = scan(*rejecting, forged, "198.51.100.5", "ceo@dkim.test");
  EXPECT_EQ(b.r.verdict.action, Action::kReject);
  EXPECT_EQ(b.r.verdict.reply, "Email rejected per DMARC policy for dkim.test");
  // ... and the milter answers 550 5.7.1 with that text.
  SnapshotHolder holder(rejecting);
  Session s(holder, "c1");
  s.connect("unknown", "198.51.100.5", false);
  Recorder rec;
  EXPECT_EQ(stream(s, forged, rec), EomAction::kReject);
  EXPECT_EQ(rec.replies, std::vector<std::string>{"550 5.7.1 Email rejected per DMARC policy for dkim.test"});
}

TEST(Dmarc, AlignedSpfPassesWithoutASignature) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  Scan sc = scan(*s, message("alice@dkim.test"), "192.0.2.10", "bounces@dkim.test");
  EXPECT_TRUE(sc.has("SPF_PASS"));
  EXPECT_TRUE(sc.has("DMARC_PASS"));
  EXPECT_EQ(sc.out.rfind("Authentication-Results: mx1.gateway.example;\n\tspf=pass smtp.mailfrom=bounces@dkim.test "
                         "smtp.helo=client.example;\n\tdkim=none;\n\tdmarc=pass (p=reject) header.from=dkim.test\n",
                         0),
            0u)
      << sc.out;
}

TEST(Dmarc, PoliciesSubdomainsBrokenAndMissingRecords) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(scan(*s, message("a@mail.org.test")).has("DMARC_FAIL_QUARANTINE"));  // org record, sp=quarantine
  EXPECT_TRUE(scan(*s, message("a@org.test")).has("DMARC_FAIL_NONE"));             // its own p=none
  EXPECT_TRUE(scan(*s, message("a@bad.test")).has("DMARC_PERMERROR"));
  EXPECT_TRUE(scan(*s, message("a@nothing.test")).has("DMARC_NA"));
  EXPECT_TRUE(scan(*s, message("a@pct.test")).has("DMARC_FAIL_QUARANTINE"));  // p=reject, pct=50: the lower policy
  EXPECT_TRUE(scan(*s, "Subject: no from\r\n\r\nhi\r\n").has("DMARC_NA"));
}

TEST(AuthResults, ForgedFieldsWithOurIdAreRemovedOthersKept) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address());
  ASSERT_NE(s, nullptr);
  const std::string msg =
      "Authentication-Results: MX1.Gateway.Example; dkim=pass header.d=bank.example\r\n"
      "Authentication-Results: relay.other.example; spf=pass smtp.mailfrom=a@none.test\r\n"
      "Authentication-Results: (forged) mx1.gateway.example;\r\n dmarc=pass\r\n" +
      message("a@none.test");
  Scan sc = scan(*s, msg);
  std::size_t n = 0;
  for (std::size_t p = sc.out.find("Authentication-Results:"); p != std::string::npos;
       p = sc.out.find("Authentication-Results:", p + 1))
    ++n;
  EXPECT_EQ(n, 2u) << sc.out;  // ours on top, the other host's kept
  EXPECT_EQ(sc.out.rfind("Authentication-Results: mx1.gateway.example;\n\tdkim=none;", 0), 0u) << sc.out;
  EXPECT_NE(sc.out.find("Authentication-Results: relay.other.example;"), std::string::npos);
  EXPECT_EQ(sc.out.find("bank.example"), std::string::npos);
}

TEST(AuthResults, ConfiguredAuthservIdAndChecksTurnedOff) {
  DnsServer dns(zone());
  NEED_DNS_AND_KEYS(dns);
  auto s = network_snapshot(dns.address(), "[auth]\nauthserv_id = \"filter.provider.example\"\ndmarc = false\n");
  ASSERT_NE(s, nullptr);
  Scan sc = scan(*s, sign(message("alice@dkim.test")));
  EXPECT_EQ(sc.auth_symbols(), (std::vector<std::string>{"DKIM_VALID", "DKIM_VALID_AU"}));
  EXPECT_EQ(sc.out.rfind("Authentication-Results: filter.provider.example;\n\tdkim=pass", 0), 0u) << sc.out;
  EXPECT_EQ(sc.out.find("dmarc="), std::string::npos);
  auto off = network_snapshot(dns.address(), "[auth]\nspf = false\ndkim = false\ndmarc = false\n");
  ASSERT_NE(off, nullptr);
  Scan none = scan(*off, sign(message("alice@dkim.test")), "192.0.2.10", "a@dkim.test");
  EXPECT_TRUE(none.auth_symbols().empty());
  EXPECT_EQ(none.out.find("Authentication-Results:"), std::string::npos);
}

TEST(AuthResults, AuthservIdOfAValue) {
  EXPECT_EQ(authserv_id_of(" mx.Example.NET; spf=pass"), "mx.example.net");
  EXPECT_EQ(authserv_id_of(" (comment (nested)) mx.example.net 1; none"), "mx.example.net");
  EXPECT_EQ(authserv_id_of("\r\n\tmx.example.net;"), "mx.example.net");
  EXPECT_EQ(authserv_id_of(" ; none"), "");
  EXPECT_EQ(authserv_id_of(""), "");
}

TEST(AuthResults, ValuesThatAreNotTokensAreQuoted) {
  AuthResults r;
  r.dkim.checked = true;
  r.dkim.sigs.push_back({"fail", "example.org", "s1", "ab/cd+e=", "bad (very) bad"});
  EXPECT_EQ(authentication_results_value("mx", r),
            "mx;\n\tdkim=fail (bad \\(very\\) bad) header.d=example.org header.s=s1 header.b=\"ab/cd+e=\"");
}
