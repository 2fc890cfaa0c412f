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

Status DmarcCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const {
  Resolver* res = resolver_.get();
  if (res == nullptr) return Status::Ok();
  DmarcAuth& out = side.dmarc.emplace();
  const std::string from = from_domain(ctx.message);
  out.from_domain = from;
  if (from.empty() || from.size() > 253) {
    out.result = "none";
    out.reason = "no From domain";
    hits.push_back({"DMARC_NA", 1.0, "no From domain"});
    return Status::Ok();
  }
  Record rec = fetch(*res, from, ctx.dns_deadline);
  std::string org;  // set when the record came from the organisational domain
  if (rec.kind == Record::Kind::kNone) {
    std::string o = registrable_domain(from);
    if (!o.empty() && o != from) {
      rec = fetch(*res, o, ctx.dns_deadline);
      org = o;
    }
  }
  std::string where = "_dmarc." + (org.empty() ? from : org);
  if (rec.kind == Record::Kind::kTempError) {
    out.result = "temperror";
    out.reason = "DNS failed for " + where;
    hits.push_back({"DMARC_TEMPERROR", 1.0, clip(out.reason, 200)});
    return Status::Ok();
  }
  if (rec.kind != Record::Kind::kFound) {
    out.result = "none";
    out.reason = rec.kind == Record::Kind::kMultiple ? "several DMARC records" : "no DMARC record";
    hits.push_back({"DMARC_NA", 1.0, clip(out.reason + " for " + from, 200)});
    return Status::Ok();
  }
  std::string ip = ctx.envelope.client_ip.empty() ? "0.0.0.0" : ctx.envelope.client_ip;
  Policy p(opendmarc_policy_connect_init(uc(ip), ip.find(':') != std::string::npos ? 1 : 0));
  if (!p) return Status::Internal("libopendmarc could not allocate a policy context");
  opendmarc_policy_store_from_domain(p.get(), uc(from));
  int st = opendmarc_policy_store_dmarc(p.get(), uc(rec.text), uc(from), org.empty() ? nullptr : uc(org));
  if (st != DMARC_PARSE_OKAY) {
    out.result = "permerror";
    out.reason = std::string("bad record at ") + where + ": " + opendmarc_policy_status_to_str(st);
    hits.push_back({"DMARC_PERMERROR", 1.0, clip(out.reason + ": " + rec.text, 200)});
    return Status::Ok();
  }
  bool dns_failed = false;
  for (const DkimSignatureAuth& s : ctx.auth.dkim.sigs) {
    if (s.domain.empty() || s.domain.size() > 253) continue;  // libopendmarc copies into 256-byte buffers
    dns_failed = dns_failed || s.result == "temperror";
    opendmarc_policy_store_dkim(p.get(), uc(s.domain), uc(s.selector), dkim_outcome(s.result), nullptr);
  }
  const SpfAuth& spf = ctx.auth.spf;
  if (!spf.result.empty() && !spf.domain.empty() && spf.domain.size() <= 253) {
    dns_failed = dns_failed || spf.result == "temperror";
    int origin = spf.mailfrom.empty() ? DMARC_POLICY_SPF_ORIGIN_HELO : DMARC_POLICY_SPF_ORIGIN_MAILFROM;
    opendmarc_policy_store_spf(p.get(), uc(spf.domain), spf_outcome(spf.result), origin, nullptr);
  }
  int verdict = opendmarc_get_policy_to_enforce(p.get());
  int pol = 0, sub = 0, pct = 100;
  opendmarc_policy_fetch_p(p.get(), &pol);
  opendmarc_policy_fetch_sp(p.get(), &sub);
  opendmarc_policy_fetch_pct(p.get(), &pct);
  int applied = !org.empty() && sub != DMARC_RECORD_P_UNSPECIFIED ? sub : pol;
  out.policy = policy_word(applied);
  std::string detail = where + " \"" + rec.text + "\"";
  if (verdict == DMARC_POLICY_PASS) {
    out.result = "pass";
    hits.push_back({"DMARC_PASS", 1.0, clip(detail, 200)});
    return Status::Ok();
  }
  if (verdict != DMARC_POLICY_REJECT && verdict != DMARC_POLICY_QUARANTINE && verdict != DMARC_POLICY_NONE) {
    out.result = "permerror";
    out.reason = opendmarc_policy_status_to_str(verdict);
    hits.push_back({"DMARC_PERMERROR", 1.0, clip(out.reason, 200)});
    return Status::Ok();
  }
  if (dns_failed) {  // SPF or DKIM could not be decided: no failure is certain
    out.result = "temperror";
    out.reason = "SPF or DKIM had a DNS failure";
    hits.push_back({"DMARC_TEMPERROR", 1.0, clip(out.reason + "; " + detail, 200)});
    return Status::Ok();
  }
  // pct below 100: the domain asks that only part of its failing mail get the
  // policy, the rest the next lower one (RFC 7489 6.6.4); we take the lower.
  if (pct < 100 && applied == DMARC_RECORD_P_REJECT) applied = DMARC_RECORD_P_QUARANTINE;
  else if (pct < 100 && applied == DMARC_RECORD_P_QUARANTINE) applied = DMARC_RECORD_P_NONE;
  out.result = "fail";
  out.policy = policy_word(applied);
  Hit h{applied == DMARC_RECORD_P_REJECT       ? "DMARC_FAIL_REJECT"
        : applied == DMARC_RECORD_P_QUARANTINE ? "DMARC_FAIL_QUARANTINE"
                                               : "DMARC_FAIL_NONE",
        1.0, clip(detail, 200), ""};
  if (applied == DMARC_RECORD_P_REJECT && reject_)
    h.reject_reply = std::string(reply_text::kDmarc) + clip(from, 200);
  hits.push_back(std::move(h));
  return Status::Ok();
}

}  // namespace spamgate
