// spf.h - SPF (RFC 7208) with libspf2 on spamgate's own resolver.
//
// SpfCheck evaluates the client IP against the MAIL FROM domain (or, for the
// null sender, the HELO name) and, when a HELO name is known, the HELO
// domain. Results are symbols scored in rules files like any rule:
// SPF_PASS SPF_FAIL SPF_SOFTFAIL SPF_NEUTRAL SPF_NONE SPF_TEMPERROR
// SPF_PERMERROR and the SPF_HELO_* twins. libspf2's DNS goes through a custom
// SPF_dns_server_t layer that calls our Resolver with the message's DNS
// deadline, so a dead resolver ends in SPF_TEMPERROR within the budget.
// In `scan` mode the client IP is the first untrusted Received hop and the
// sender the Return-Path. Thread-safe: one libspf2 server per thread.
#pragma once

#include <string>
#include <vector>

#include "spamgate/check.h"
#include "spamgate/resolver.h"

namespace spamgate {

class SpfCheck final : public Check {
 public:
  // `receiver`: our host name (Received-SPF's receiver=); `trusted_networks`:
  // [milter] trusted_networks (hops skipped to find the client in `scan`).
  SpfCheck(std::shared_ptr<Resolver> resolver, std::string receiver, std::vector<std::string> trusted_networks)
      : resolver_(std::move(resolver)), receiver_(std::move(receiver)), trusted_networks_(std::move(trusted_networks)) {}
  std::string_view name() const override { return "spf"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  static std::vector<SymbolDef> symbols();

 private:
  std::shared_ptr<Resolver> resolver_;
  std::string receiver_;
  std::vector<std::string> trusted_networks_;
};

}  // namespace spamgate
