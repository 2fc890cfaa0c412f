// dmarc.cc - DmarcCheck on libopendmarc (see dmarc.h).
#include "checks/dmarc.h"

#include <cstring>
#include <memory>
#include <mutex>

extern "C" {
#include <opendmarc/dmarc.h>
}

#include "checks/builtin.h"
#include "checks/dkim.h"
#include "spamgate/message.h"
#include "spamgate/snapshot.h"
#include "util/psl.h"
#include "util/text.h"
#include "message/addresses.h"
#include "spamgate/replies.h"

namespace spamgate {
namespace {

constexpr const char* kPublicSuffixList = "/usr/share/publicsuffix/public_suffix_list.dat";

struct PolicyFree {
  void operator()(DMARC_POLICY_T* p) const { opendmarc_policy_connect_shutdown(p); }
};
using Policy = std::unique_ptr<DMARC_POLICY_T, PolicyFree>;

u_char* uc(const std::string& s) { return reinterpret_cast<u_char*>(const_cast<char*>(s.c_str())); }

struct Record {
  enum class Kind { kFound, kNone, kTempError, kMultiple } kind = Kind::kNone;
  std::string text;
};

// The DMARC record published at _dmarc.<domain>: TXT strings that start
// with "v=DMARC1" (RFC 7489 6.6.3); several of them count as none.
Record fetch(Resolver& r, const std::string& domain, Deadline deadline) {
  Record out;
  DnsAnswer a = r.lookup("_dmarc." + domain, DnsType::kTxt, deadline);
  if (!a.ok()) {
    bool absent = a.rcode == DnsAnswer::Rcode::kNxDomain || a.rcode == DnsAnswer::Rcode::kNoData;
    out.kind = absent ? Record::Kind::kNone : Record::Kind::kTempError;
    return out;
  }
  int n = 0;
  for (const std::string& t : a.records) {
    std::size_t b = t.find_first_not_of(" \t");
    if (b == std::string::npos || ascii_lower(t.substr(b, 8)) != "v=dmarc1") continue;
    std::size_t after = b + 8;
    if (after < t.size() && t[after] != ';' && t[after] != ' ' && t[after] != '\t') continue;
    out.text = t;
    ++n;
  }
  out.kind = n == 1 ? Record::Kind::kFound : n == 0 ? Record::Kind::kNone : Record::Kind::kMultiple;
  return out;
}

int spf_outcome(const std::string& r) {
  if (r == "pass") return DMARC_POLICY_SPF_OUTCOME_PASS;
  if (r == "fail" || r == "softfail") return DMARC_POLICY_SPF_OUTCOME_FAIL;
  if (r == "temperror") return DMARC_POLICY_SPF_OUTCOME_TMPFAIL;
  return DMARC_POLICY_SPF_OUTCOME_NONE;
}

int dkim_outcome(const std::string& r) {
  if (r == "pass") return DMARC_POLICY_DKIM_OUTCOME_PASS;
  if (r == "temperror") return DMARC_POLICY_DKIM_OUTCOME_TMPFAIL;
  return DMARC_POLICY_DKIM_OUTCOME_FAIL;
}

const char* policy_word(int p) {
  switch (p) {
    case DMARC_RECORD_P_REJECT: return "reject";
    case DMARC_RECORD_P_QUARANTINE: return "quarantine";
    default: return "none";
  }
}

}  // namespace

Result<std::unique_ptr<DmarcCheck>> DmarcCheck::create(bool reject, std::shared_ptr<Resolver> resolver) {
  static std::once_flag once;
  static int status = DMARC_PARSE_OKAY;
  std::call_once(once, [] {
    // The Public Suffix List gives libopendmarc organisational domains for
    // relaxed alignment (the same Debian file libpsl reads).
    static OPENDMARC_LIB_T lib{};
    lib.tld_type = OPENDMARC_TLD_TYPE_MOZILLA;
    std::strncpy(reinterpret_cast<char*>(lib.tld_source_file), kPublicSuffixList, sizeof lib.tld_source_file - 1);
    status = opendmarc_policy_library_init(&lib);
  });
  if (status != DMARC_PARSE_OKAY)
    return Status::Internal(std::string("libopendmarc could not start (") + kPublicSuffixList +
                            "): " + opendmarc_policy_status_to_str(status));
  return std::unique_ptr<DmarcCheck>(new DmarcCheck(reject, std::move(resolver)));
}

std::vector<SymbolDef> DmarcCheck::symbols() {
  return {
      {"DMARC_PASS", 0.0, "DMARC: SPF or DKIM passed for a domain aligned with the From domain"},
      {"DMARC_FAIL_NONE", 0.0, "DMARC: fails the From domain's policy, which says p=none (monitor only)"},
      {"DMARC_FAIL_QUARANTINE", 0.0, "DMARC: fails the From domain's policy, which says p=quarantine"},
      {"DMARC_FAIL_REJECT", 0.0, "DMARC: fails the From domain's policy, which says p=reject"},
      {"DMARC_NA", 0.0, "DMARC: the From domain publishes no DMARC policy"},
      {"DMARC_TEMPERROR", 0.0, "DMARC: a DNS failure left the result undecided"},
      {"DMARC_PERMERROR", 0.0, "DMARC: the From domain's DMARC record is broken"},
  };
}

namespace {

// The record that applies to `from`: its own, else its organisational
// domain's (then `org` is set). `where` names it for details.
struct PolicyRecord {
  Record rec;
  std::string org;
  std::string where;
};

PolicyRecord find_record(Resolver& res, const std::string& from, Deadline deadline) {
  PolicyRecord p;
  p.rec = fetch(res, from, deadline);
  if (p.rec.kind == Record::Kind::kNone) {
    std::string o = registrable_domain(from);
    if (!o.empty() && o != from) {
      p.rec = fetch(res, o, deadline);
      p.org = o;
    }
  }
  p.where = "_dmarc." + (p.org.empty() ? from : p.org);
  return p;
}

// Hands SPF's and DKIM's results to libopendmarc for alignment. Returns
// whether either had a DNS failure (then no DMARC failure is certain).
bool store_identifiers(DMARC_POLICY_T* p, const AuthResults& auth) {
  bool dns_failed = false;
  for (const DkimSignatureAuth& s : auth.dkim.sigs) {
    if (s.domain.empty() || s.domain.size() > 253) continue;  // libopendmarc copies into 256-byte buffers
    dns_failed = dns_failed || s.result == "temperror";
    opendmarc_policy_store_dkim(p, uc(s.domain), uc(s.selector), dkim_outcome(s.result), nullptr);
  }
  const SpfAuth& spf = auth.spf;
  if (!spf.result.empty() && !spf.domain.empty() && spf.domain.size() <= 253) {
    dns_failed = dns_failed || spf.result == "temperror";
    int origin = spf.mailfrom.empty() ? DMARC_POLICY_SPF_ORIGIN_HELO : DMARC_POLICY_SPF_ORIGIN_MAILFROM;
    opendmarc_policy_store_spf(p, uc(spf.domain), spf_outcome(spf.result), origin, nullptr);
  }
  return dns_failed;
}

// The policy a failure gets: sp= for a subdomain when given, else p=; with
// pct below 100 the domain asks that only part of its failing mail get it,
// the rest the next lower one (RFC 7489 6.6.4): we take the lower.
int applied_policy(DMARC_POLICY_T* p, bool subdomain, bool for_failure) {
  int pol = 0, sub = 0, pct = 100;
  opendmarc_policy_fetch_p(p, &pol);
  opendmarc_policy_fetch_sp(p, &sub);
  opendmarc_policy_fetch_pct(p, &pct);
  int applied = subdomain && sub != DMARC_RECORD_P_UNSPECIFIED ? sub : pol;
  if (!for_failure || pct >= 100) return applied;
  if (applied == DMARC_RECORD_P_REJECT) return DMARC_RECORD_P_QUARANTINE;
  if (applied == DMARC_RECORD_P_QUARANTINE) return DMARC_RECORD_P_NONE;
  return applied;
}

}  // namespace

Status DmarcCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const {
  Resolver* res = resolver_.get();
  if (res == nullptr) return Status::Ok();
  DmarcAuth& out = side.dmarc.emplace();
  // A result without a policy verdict: the result word, why, and its symbol.
  auto done = [&](const char* result, std::string reason, const char* symbol, const std::string& detail) {
    out.result = result;
    out.reason = std::move(reason);
    hits.push_back({symbol, 1.0, clip(detail, 200)});
    return Status::Ok();
  };
  const std::string from = from_domain(ctx.message);
  out.from_domain = from;
  if (from.empty() || from.size() > 253) return done("none", "no From domain", "DMARC_NA", "no From domain");
  const PolicyRecord pr = find_record(*res, from, ctx.dns_deadline);
  const Record& rec = pr.rec;
  if (rec.kind == Record::Kind::kTempError) {
    const std::string why = "DNS failed for " + pr.where;
    return done("temperror", why, "DMARC_TEMPERROR", why);
  }
  if (rec.kind != Record::Kind::kFound) {
    const std::string why = rec.kind == Record::Kind::kMultiple ? "several DMARC records" : "no DMARC record";
    return done("none", why, "DMARC_NA", why + " for " + from);
  }
  std::string ip = ctx.envelope.client_ip.empty() ? "0.0.0.0" : ctx.envelope.client_ip;
  Policy p(opendmarc_policy_connect_init(uc(ip), ip.find(':') != std::string::npos ? 1 : 0));
  if (!p) return Status::Internal("libopendmarc could not allocate a policy context");
  opendmarc_policy_store_from_domain(p.get(), uc(from));
  int st = opendmarc_policy_store_dmarc(p.get(), uc(rec.text), uc(from), pr.org.empty() ? nullptr : uc(pr.org));
  if (st != DMARC_PARSE_OKAY) {
    const std::string why = std::string("bad record at ") + pr.where + ": " + opendmarc_policy_status_to_str(st);
    return done("permerror", why, "DMARC_PERMERROR", why + ": " + rec.text);
  }
  const bool dns_failed = store_identifiers(p.get(), ctx.auth);
  const int verdict = opendmarc_get_policy_to_enforce(p.get());
  out.policy = policy_word(applied_policy(p.get(), !pr.org.empty(), false));
  const std::string detail = pr.where + " \"" + rec.text + "\"";
  if (verdict == DMARC_POLICY_PASS) return done("pass", "", "DMARC_PASS", detail);
  if (verdict != DMARC_POLICY_REJECT && verdict != DMARC_POLICY_QUARANTINE && verdict != DMARC_POLICY_NONE) {
    const std::string why = opendmarc_policy_status_to_str(verdict);
    return done("permerror", why, "DMARC_PERMERROR", why);
  }
  if (dns_failed)  // SPF or DKIM could not be decided: no failure is certain
    return done("temperror", "SPF or DKIM had a DNS failure", "DMARC_TEMPERROR",
                "SPF or DKIM had a DNS failure; " + detail);
  const int applied = applied_policy(p.get(), !pr.org.empty(), true);
  out.result = "fail";
  out.policy = policy_word(applied);
  Hit h{applied == DMARC_RECORD_P_REJECT       ? "DMARC_FAIL_REJECT"
        : applied == DMARC_RECORD_P_QUARANTINE ? "DMARC_FAIL_QUARANTINE"
                                               : "DMARC_FAIL_NONE",
        1.0, clip(detail, 200), ""};
  if (applied == DMARC_RECORD_P_REJECT && reject_) h.reject_reply = std::string(reply_text::kDmarc) + clip(from, 200);
  hits.push_back(std::move(h));
  return Status::Ok();
}

}  // namespace spamgate
