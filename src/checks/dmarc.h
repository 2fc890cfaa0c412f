// dmarc.h - DMARC (RFC 7489) policy evaluation with libopendmarc.
//
// DmarcCheck runs after SpfCheck and DkimCheck and reads their results from
// the AuthResults. It fetches the _dmarc record itself through our Resolver
// (libopendmarc's own DNS has no timeout): first for the From domain, then
// for its organisational domain (Public Suffix List), and hands it to
// libopendmarc, which decides alignment and the policy to apply.
// Symbols: DMARC_PASS, DMARC_FAIL_NONE, DMARC_FAIL_QUARANTINE,
// DMARC_FAIL_REJECT (the policy that applies, pct= taken into account),
// DMARC_NA (no record, no From domain), DMARC_TEMPERROR (DNS failed),
// DMARC_PERMERROR (a broken record). With `reject = true` a p=reject failure
// also rejects the message (550 5.7.1); by default it is only scored.
// Thread-safe: one libopendmarc policy context per call.
#pragma once

#include <vector>

#include <memory>

#include "spamgate/check.h"
#include "spamgate/resolver.h"

namespace spamgate {

class DmarcCheck final : public Check {
 public:
  // `reject`: a p=reject failure rejects the message instead of only scoring.
  // Internal when libopendmarc cannot start.
  static Result<std::unique_ptr<DmarcCheck>> create(bool reject, std::shared_ptr<Resolver> resolver);
  std::string_view name() const override { return "dmarc"; }
  // DMARC's alignment reads SPF's and DKIM's results (ctx.auth).
  std::vector<std::string_view> reads() const override { return {"spf", "dkim"}; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  static std::vector<SymbolDef> symbols();

 private:
  DmarcCheck(bool reject, std::shared_ptr<Resolver> resolver) : reject_(reject), resolver_(std::move(resolver)) {}
  bool reject_;
  std::shared_ptr<Resolver> resolver_;
};

}  // namespace spamgate
