// fuzz_dns_answers.cc - libFuzzer target: DNS answers as the checks get
// them. A Resolver driven by the input answers every lookup the real SPF
// (libspf2), DKIM (libopendkim key records), DMARC (libopendmarc policy
// records) and DNSBL/URIBL checks make while scanning a small fixed message,
// with a fuzzed rcode, TTL and records (TXT/A/AAAA/MX/PTR text: truncated,
// overlong, malformed). Build as fuzz_message.cc says.
//
// Input: byte 0 picks the message (signed or not, From domain), the client
// IP and HELO; then each lookup, in the order the checks make them (SPF of
// MAIL FROM and its record again for the explanation, the same for HELO,
// the DKIM key, DMARC, the DNSBL, each URIBL name), takes its answer from
// the rest (rcode byte, record count, records as
// FuzzedDataProvider strings); once the input is used up every lookup is
// NXDOMAIN. The DKIM key of the signed message is in the seed corpus
// (sel._domainkey.dkim.test), so DKIM can verify and the DMARC and SPF paths
// behind a pass are reached too.
// Not covered here: DNS packets from the wire into c-ares' own parser (the
// real resolver against a loopback UDP server) -- a separate target.
// Checked: nothing crashes or leaks, and the rewritten message keeps the body
// byte for byte.
#include <fuzzer/FuzzedDataProvider.h>

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/load.h"
#include "checks/dkim.h"
#include "checks/dmarc.h"
#include "checks/dnsbl.h"
#include "checks/spf.h"
#include "spamgate/pipeline.h"

namespace {

FuzzedDataProvider* g_fdp = nullptr;  // the input being run (one thread)

class FuzzResolver final : public spamgate::Resolver {
 public:
  spamgate::DnsAnswer lookup(std::string_view name, spamgate::DnsType type, spamgate::Deadline) override {
    spamgate::DnsAnswer a = answer();
    if (trace_) {  // FUZZ_DNS_TRACE=1: which lookups an input answers, and how
      std::fprintf(stderr, "lookup %.*s type %d -> %s", static_cast<int>(name.size()), name.data(),
                   static_cast<int>(type), spamgate::rcode_name(a.rcode));
      for (const std::string& r : a.records) std::fprintf(stderr, " [%.60s]", r.c_str());
      std::fprintf(stderr, "\n");
    }
    return a;
  }

 private:
  spamgate::DnsAnswer answer() {
    using R = spamgate::DnsAnswer::Rcode;
    spamgate::DnsAnswer a;
    a.rcode = R::kNxDomain;
    if (g_fdp == nullptr || g_fdp->remaining_bytes() == 0) return a;
    static const R kRcodes[] = {R::kOk, R::kOk, R::kOk, R::kNxDomain, R::kNoData, R::kServFail, R::kTimeout, R::kError};
    a.rcode = kRcodes[g_fdp->ConsumeIntegralInRange<int>(0, 7)];
    a.ttl = g_fdp->ConsumeIntegral<std::uint32_t>();
    if (a.rcode != R::kOk) return a;
    int n = g_fdp->ConsumeIntegralInRange<int>(0, 4);
    for (int i = 0; i < n && g_fdp->remaining_bytes() > 0; ++i) a.records.push_back(g_fdp->ConsumeRandomLengthString(1200));
    return a;
  }
  const bool trace_ = std::getenv("FUZZ_DNS_TRACE") != nullptr;
};

// Signed by dkimsign with the key published (in the seeds) as sel._domainkey.dkim.test.
const char kSigned[] =
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/simple; d=dkim.test;\r\n"
    " i=@dkim.test; q=dns/txt; s=sel; t=1795791775; h=from : to : subject :\r\n"
    " date : message-id : from;\r\n"
    " bh=DiBgOJR6fWecPcdfjlwcxfqLaq2Th1I2mBLNeK8gJV8=;\r\n"
    " b=lGcuQaf9GMza6E6l0wWQZ4MAxDyBFkNh+EOdrZlgKChyRCwaF4N9K3N0zKRr/vUZaDOfC\r\n"
    " SpGqMWj7gqeF/0W4s8D8XFasSk6k0c3BNNy/tljdZp/4bxo+i4fk4uNj7HzJPFdjdsY6o+q\r\n"
    " Ya2vTUomMtct4QeQYfKhbQd0wbKv2LI=\r\n"
    "From: Alice <alice@dkim.test>\r\n"
    "To: bob@example.net\r\n"
    "Subject: lunch\r\n"
    "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <lunch-1@dkim.test>\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "see http://www.shop.example.co.uk/x and http://198.51.100.7/y\r\n";

const char kUnsigned[] =
    "Received: from mail.sender.example (mail.sender.example [203.0.113.5])\r\n"
    "\tby mx.example.net with ESMTP id 1; Mon, 23 Nov 2026 10:00:00 +0000\r\n"
    "From: Shop <news@sub.shop.example.co.uk>\r\nTo: bob@example.net\r\nSubject: offer\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; d=shop.example.co.uk; s=s1; c=simple/simple; h=from; "
    "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAA\r\n"
    "\r\nsee https://1.2.3.4/ and http://www.example.com/ and mailto:x@y.example\r\n";

struct Setup {
  std::shared_ptr<spamgate::Snapshot> snap;
  Setup() {
    std::string dir = "/dev/shm/spamgate-fuzz-dns-" + std::to_string(getpid());
    std::string cfg = dir + "/spamgate.toml";
    std::filesystem::create_directories(dir);
    std::ofstream(cfg) << "rules_dir = \"" SPAMGATE_SOURCE_DIR "/tests/data/rules\"\n"
                          "local_rules = \"\"\nhostname = \"mx1.gateway.example\"\nthreshold = 5\n"
                          "[log]\nlevel = \"off\"\n[bayes]\nenabled = false\npath = \"bayes\"\n"
                          "[clamav]\nenabled = false\n[outbound]\nenabled = false\n"
                          "[auth]\ndmarc_reject_policy = \"reject\"\n"
                          "[[dnsbl]]\nzone = \"bl.test\"\nsymbol = \"RCVD_IN_BL\"\nscore = 3.0\n"
                          "codes = { \"127.0.0.2\" = \"RCVD_IN_BL_SBL\", \"127.0.0.4\" = \"RCVD_IN_BL_XBL\" }\n"
                          "[[uribl]]\nzone = \"uribl.test\"\nsymbol = \"URIBL_TEST\"\nscore = 3.0\n";
    std::vector<spamgate::Diagnostic> d;
    auto base = spamgate::load_snapshot(cfg, d);
    std::filesystem::remove_all(dir);
    if (!base.ok()) {
      for (const auto& x : d) std::fprintf(stderr, "%s\n", x.str().c_str());
      __builtin_trap();
    }
    // The network checks as load_snapshot(network=true) builds them, over the fuzzed resolver.
    snap = std::make_shared<spamgate::Snapshot>();
    snap->config = base.value()->config;
    snap->symbols = base.value()->symbols;
    snap->resolver = std::make_shared<FuzzResolver>();
    auto dkim = spamgate::DkimLibrary::create(snap->resolver);
    if (!dkim.ok()) __builtin_trap();
    snap->dkim = dkim.value();
    const spamgate::Config& c = snap->config;
    snap->checks.push_back(
        std::make_unique<spamgate::SpfCheck>(snap->resolver, c.hostname, c.milter.trusted_networks));
    snap->checks.push_back(std::make_unique<spamgate::DkimCheck>(snap->dkim, c.auth.dkim_max_body_bytes));
    auto dmarc = spamgate::DmarcCheck::create(c.auth.dmarc_reject, snap->resolver);
    if (!dmarc.ok()) __builtin_trap();
    snap->checks.push_back(std::move(dmarc.value()));
    snap->checks.push_back(std::make_unique<spamgate::DnsListCheck>(spamgate::DnsListCheck::Kind::kClientIp, c.dnsbl,
                                                                    snap->resolver, c.limits.max_uri_lookups,
                                                                    c.milter.trusted_networks));
    snap->checks.push_back(std::make_unique<spamgate::DnsListCheck>(spamgate::DnsListCheck::Kind::kUris, c.uribl,
                                                                    snap->resolver, c.limits.max_uri_lookups,
                                                                    c.milter.trusted_networks));
  }
};

Setup& setup() {
  static Setup s;
  return s;
}

const char* const kIps[] = {"192.0.2.9", "2001:db8::7", "203.0.113.5", "127.0.0.2"};
const char* const kHelos[] = {"mail.dkim.test", "[192.0.2.9]", "", "dkim.test"};
// As the session keeps MAIL FROM (its angle brackets taken off).
const char* const kFroms[] = {"alice@dkim.test", "", "news@sub.shop.example.co.uk", "bounce@dkim.test"};

}  // namespace

// The snapshot is built before the first input, outside its -timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::uint8_t pick = data[0];
  FuzzedDataProvider fdp(data + 1, size - 1);
  std::string_view msg = (pick & 1) ? std::string_view(kUnsigned, sizeof kUnsigned - 1)
                                    : std::string_view(kSigned, sizeof kSigned - 1);
  spamgate::Envelope env;
  env.client_ip = kIps[(pick >> 1) & 3];
  env.helo = kHelos[(pick >> 3) & 3];
  env.mail_from = kFroms[(pick >> 5) & 3];
  env.rcpt_to = {"<bob@example.net>"};
  g_fdp = &fdp;
  spamgate::Handled h = spamgate::handle_message(*setup().snap, msg, env, spamgate::Sender{},
                                                 spamgate::OutboundMode::kLookUp, "fuzz");
  g_fdp = nullptr;
  std::string out = spamgate::apply_plan(msg, h.disposition.plan);
  spamgate::HeaderBlock hb = spamgate::split_header_block(msg, static_cast<std::size_t>(-1));
  std::string_view body = msg.substr(hb.body_offset);
  if (out.size() < body.size() || std::string_view(out).substr(out.size() - body.size()) != body) __builtin_trap();
  return 0;
}
