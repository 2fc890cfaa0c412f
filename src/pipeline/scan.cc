// scan.cc - scan_message(): parse once, run the checks, score the verdict.
#include "spamgate/pipeline.h"

#include <chrono>

#include "spamgate/metrics.h"
#include "spamgate/outbound.h"
#include "util/log.h"

namespace spamgate {

ScanResult scan_message(const Snapshot& snap, std::string_view bytes, const Envelope& env, const ScanExtras& x) {
  auto t0 = std::chrono::steady_clock::now();
  ScanResult r;
  if (x.census != nullptr) {
    r.census = *x.census;
  } else {
    r.census = make_census(snap);
    r.census.add_block(bytes);
  }
  r.message = parse_message(bytes, snap.config.limits, x.total_size);
  CheckContext ctx{r.message, env,
                   x.dns_deadline ? *x.dns_deadline : t0 + std::chrono::milliseconds(snap.config.dns.budget_ms),
                   r.auth, bytes, x.dkim, x.av, &r.census};
  Metrics& metrics = Metrics::get();
  for (const auto& check : snap.checks) {
    Status s;
    auto c0 = std::chrono::steady_clock::now();
    try {
      CheckOutput side;
      s = check->run(ctx, r.hits, side);
      // Its side results: prepended fields in order, the methods it decided.
      for (auto& field : side.prepend) r.prepend_headers.push_back(std::move(field));
      if (side.spf) r.auth.spf = std::move(*side.spf);
      if (side.dkim) r.auth.dkim = std::move(*side.dkim);
      if (side.dmarc) r.auth.dmarc = std::move(*side.dmarc);
    } catch (const std::exception& e) {
      s = Status::Internal(e.what());
    }
    metrics.check(check->name(), std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count(), !s.ok());
    if (!s.ok())
      r.check_errors.push_back({std::string(check->name()), s.message(), s.code() == Status::Code::kUnavailable});
  }
  if (r.auth.any())  // RFC 8601: at the top, above what the checks prepended
    r.prepend_headers.emplace_back("Authentication-Results",
                                   authentication_results_value(snap.config.auth.authserv_id, r.auth));
  r.verdict = score_verdict(snap, r.hits);
  r.reference = x.reference;
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

HeaderCensus make_census(const Snapshot& snap) {
  return HeaderCensus(snap.config.auth.authserv_id, snap.outbound ? snap.outbound->config().tag_header : std::string(),
                      snap.config.limits.max_header_deletions);
}

}  // namespace spamgate
