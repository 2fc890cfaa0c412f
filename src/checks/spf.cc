// spf.cc - SpfCheck on libspf2 (see spf.h).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
extern "C" {
#include <spf2/spf.h>
}

#include <cstring>
#include <memory>

#include "checks/builtin.h"
#include "checks/dnsbl.h"
#include "checks/spf.h"
#include "spamgate/message.h"
#include "spamgate/snapshot.h"
#include "util/text.h"
#include "message/addresses.h"

namespace spamgate {
namespace {

// The resolver and deadline of the message being checked on this thread.
struct DnsContext {
  Resolver* resolver = nullptr;
  Deadline deadline;
  bool dns_failed = false;  // a lookup timed out or failed (SERVFAIL, no answer)
};
thread_local DnsContext t_dns;

SPF_dns_rr_t* lookup(SPF_dns_server_t* server, const char* domain, ns_type type, int /*should_cache*/) {
  DnsType t;
  switch (type) {
    case ns_t_a: t = DnsType::kA; break;
    case ns_t_aaaa: t = DnsType::kAaaa; break;
    case ns_t_txt: t = DnsType::kTxt; break;
    case ns_t_mx: t = DnsType::kMx; break;
    case ns_t_ptr: t = DnsType::kPtr; break;
    default: return SPF_dns_rr_new_init(server, domain, type, 0, NO_DATA);  // e.g. the obsolete SPF RR type
  }
  if (t_dns.resolver == nullptr || domain == nullptr) return SPF_dns_rr_new_init(server, domain, type, 0, TRY_AGAIN);
  DnsAnswer a = t_dns.resolver->lookup(domain, t, t_dns.deadline);
  int herrno = TRY_AGAIN;
  if (!a.ok() && a.rcode != DnsAnswer::Rcode::kNxDomain && a.rcode != DnsAnswer::Rcode::kNoData) t_dns.dns_failed = true;
  if (a.ok()) herrno = NETDB_SUCCESS;
  else if (a.rcode == DnsAnswer::Rcode::kNxDomain) herrno = HOST_NOT_FOUND;
  else if (a.rcode == DnsAnswer::Rcode::kNoData) herrno = NO_DATA;
  SPF_dns_rr_t* rr = SPF_dns_rr_new_init(server, domain, type, static_cast<int>(a.ttl), herrno);
  if (rr == nullptr || !a.ok()) return rr;
  int n = 0;
  for (const std::string& rec : a.records) {
    if (t == DnsType::kA || t == DnsType::kAaaa) {
      if (SPF_dns_rr_buf_realloc(rr, n, sizeof(in6_addr)) != SPF_E_SUCCESS) break;
      int family = t == DnsType::kA ? AF_INET : AF_INET6;
      void* dst = t == DnsType::kA ? static_cast<void*>(&rr->rr[n]->a) : static_cast<void*>(&rr->rr[n]->aaaa);
      if (inet_pton(family, rec.c_str(), dst) != 1) continue;
    } else {
      if (SPF_dns_rr_buf_realloc(rr, n, rec.size() + 1) != SPF_E_SUCCESS) break;
      std::memcpy(rr->rr[n]->txt, rec.c_str(), rec.size() + 1);  // txt, mx and ptr share the buffer
    }
    ++n;
  }
  rr->num_rr = n;
  // An answer with no usable record is NODATA: libspf2 1.2.10 leaks an
  // answer of NETDB_SUCCESS with no records (SPF_request_get_exp, exp=).
  if (n == 0) rr->herrno = NO_DATA;
  return rr;
}

struct ServerFree {
  void operator()(SPF_server_t* s) const { SPF_server_free(s); }
};
struct RequestFree {
  void operator()(SPF_request_t* r) const { SPF_request_free(r); }
};
struct ResponseFree {
  void operator()(SPF_response_t* r) const { SPF_response_free(r); }
};

// One libspf2 server per thread, over our DNS layer (owned here: destroy is
// null, so libspf2 never frees it).
struct PerThread {
  SPF_dns_server_t layer{};
  std::unique_ptr<SPF_server_t, ServerFree> server;
  PerThread() {
    layer.lookup = lookup;
    layer.name = "spamgate";
    server.reset(SPF_server_new_dns(&layer, 0));
  }
};

SPF_server_t* server() {
  thread_local PerThread p;
  return p.server.get();
}

const char* symbol_of(SPF_result_t r, bool helo) {
  switch (r) {
    case SPF_RESULT_PASS: return helo ? "SPF_HELO_PASS" : "SPF_PASS";
    case SPF_RESULT_FAIL: return helo ? "SPF_HELO_FAIL" : "SPF_FAIL";
    case SPF_RESULT_SOFTFAIL: return helo ? "SPF_HELO_SOFTFAIL" : "SPF_SOFTFAIL";
    case SPF_RESULT_NEUTRAL: return helo ? "SPF_HELO_NEUTRAL" : "SPF_NEUTRAL";
    case SPF_RESULT_NONE: return helo ? "SPF_HELO_NONE" : "SPF_NONE";
    case SPF_RESULT_TEMPERROR: return helo ? "SPF_HELO_TEMPERROR" : "SPF_TEMPERROR";
    case SPF_RESULT_PERMERROR: return helo ? "SPF_HELO_PERMERROR" : "SPF_PERMERROR";
    default: return helo ? "SPF_HELO_PERMERROR" : "SPF_PERMERROR";
  }
}

// Evaluates one identity; returns false if libspf2 could not even start.
bool evaluate(const std::string& ip, const std::string& helo, const std::string& from, bool helo_only,
              const std::string& receiver, std::vector<Hit>& hits, std::string* received_spf, SpfAuth* auth) {
  SPF_server_t* srv = server();
  if (srv == nullptr) return false;
  SPF_server_set_rec_dom(srv, receiver.c_str());
  std::unique_ptr<SPF_request_t, RequestFree> req(SPF_request_new(srv));
  if (!req) return false;
  bool v6 = ip.find(':') != std::string::npos;
  if ((v6 ? SPF_request_set_ipv6_str(req.get(), ip.c_str()) : SPF_request_set_ipv4_str(req.get(), ip.c_str())) !=
      SPF_E_SUCCESS)
    return false;
  if (!helo.empty()) SPF_request_set_helo_dom(req.get(), helo.c_str());
  if (!helo_only && !from.empty()) SPF_request_set_env_from(req.get(), from.c_str());
  SPF_response_t* raw = nullptr;
  SPF_request_query_mailfrom(req.get(), &raw);
  std::unique_ptr<SPF_response_t, ResponseFree> resp(raw);
  if (!resp) return false;
  const char* comment = SPF_response_get_header_comment(resp.get());
  SPF_result_t result = SPF_response_result(resp.get());
  // libspf2 1.2.10 reports a DNS timeout as an error/permerror; RFC 7208 2.6.6
  // says temperror: a result that a failed lookup left undecided is temperror.
  if (t_dns.dns_failed && result != SPF_RESULT_PASS && result != SPF_RESULT_FAIL &&
      result != SPF_RESULT_SOFTFAIL && result != SPF_RESULT_NEUTRAL)
    result = SPF_RESULT_TEMPERROR;
  t_dns.dns_failed = false;
  std::string domain = helo_only ? helo : from.substr(from.find('@') == std::string::npos ? 0 : from.find('@') + 1);
  if (domain.empty()) domain = helo;  // the null sender: libspf2 checked the HELO name
  if (auth != nullptr) {
    // RFC 8601's words are the symbols' suffixes: SPF_SOFTFAIL -> softfail.
    std::string word = ascii_lower(symbol_of(result, false) + 4);
    (helo_only ? auth->helo_result : auth->result) = word;
    if (!helo_only) {
      auth->mailfrom = from.find('@') != std::string::npos ? from : std::string();
      auth->domain = ascii_lower(domain);
    }
    auth->helo = helo;
  }
  if (received_spf != nullptr) {
    // RFC 7208 9.1: "Received-SPF: <result> (<comment>) key=value; ...".
    const char* v = SPF_response_get_received_spf_value(resp.get());
    std::string value = v != nullptr ? v : "";
    std::string first = value.substr(0, value.find(' '));
    std::string want = result == SPF_RESULT_TEMPERROR ? "temperror" : first;
    if (!value.empty() && first != want) value = want + value.substr(first.size());  // our temperror mapping
    *received_spf = clip(value, 900);
  }
  // The record itself, for `explain` (libspf2 just fetched it: a cache hit).
  std::string record = "no SPF record";
  if (t_dns.resolver != nullptr && !domain.empty()) {
    DnsAnswer txt = t_dns.resolver->lookup(domain, DnsType::kTxt, t_dns.deadline);
    for (const std::string& r : txt.records) {
      if (ascii_lower(r.substr(0, 7)) == "v=spf1 " || ascii_lower(r) == "v=spf1") record = "record \"" + r + "\"";
    }
  }
  hits.push_back({symbol_of(result, helo_only), 1.0,
                  clip(std::string(helo_only ? "helo=" : "mailfrom=") + domain + ": " + (comment ? comment : "") +
                           "; " + record,
                       300)});
  return true;
}

}  // namespace

std::vector<SymbolDef> SpfCheck::symbols() {
  std::vector<SymbolDef> out;
  for (const char* base : {"SPF_", "SPF_HELO_"}) {
    std::string b = base;
    const char* who = b == "SPF_" ? "sender domain" : "HELO name";
    out.push_back({b + "PASS", 0.0, std::string("SPF: the ") + who + " authorises the client IP"});
    out.push_back({b + "FAIL", 0.0, std::string("SPF: the ") + who + " forbids the client IP"});
    out.push_back({b + "SOFTFAIL", 0.0, std::string("SPF: the ") + who + " discourages the client IP (~all)"});
    out.push_back({b + "NEUTRAL", 0.0, std::string("SPF: the ") + who + " makes no assertion (?all)"});
    out.push_back({b + "NONE", 0.0, std::string("SPF: the ") + who + " publishes no SPF record"});
    out.push_back({b + "TEMPERROR", 0.0, std::string("SPF: DNS failed while checking the ") + who});
    out.push_back({b + "PERMERROR", 0.0, std::string("SPF: the ") + who + "'s SPF record is broken"});
  }
  return out;
}

Status SpfCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const {
  std::string ip = ctx.envelope.client_ip;
  if (ip.empty()) ip = client_ip_from_received(ctx.message, trusted_networks_);
  if (ip.empty()) return Status::Ok();
  std::string from = ctx.envelope.mail_from;
  if (from.empty() && ctx.envelope.client_ip.empty()) {
    if (const Header* rp = ctx.message.first("return-path")) {
      auto addrs = header_addresses(rp->decoded);
      if (!addrs.empty()) from = addrs.front();
    }
  }
  // libspf2 aborts the process on a request with neither sender nor HELO
  // (spf_server.c "domain is NULL"): there is nothing to check then.
  if (from.find('@') == std::string::npos && ctx.envelope.helo.empty()) return Status::Ok();
  t_dns = DnsContext{resolver_.get(), ctx.dns_deadline};
  const std::string& receiver = receiver_;
  std::string received_spf;
  SpfAuth* auth = &side.spf.emplace();
  bool ok = evaluate(ip, ctx.envelope.helo, from, false, receiver, hits, &received_spf, auth);
  if (ok && !received_spf.empty()) side.prepend.emplace_back("Received-SPF", received_spf);
  if (ok && !ctx.envelope.helo.empty()) ok = evaluate(ip, ctx.envelope.helo, "", true, receiver, hits, nullptr, auth);
  t_dns = DnsContext{};
  if (!ok) return Status::Internal("libspf2 could not evaluate the request");
  return Status::Ok();
}

}  // namespace spamgate
