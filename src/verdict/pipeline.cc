// pipeline.cc - scan_message(): parse once, run checks, decide, plan.
#include "spamgate/pipeline.h"

#include <chrono>

#include "checks/builtin.h"
#include "spamgate/metrics.h"
#include "spamgate/outbound.h"
#include "util/log.h"

namespace spamgate {

ScanResult scan_message(const Snapshot& snap, std::string_view bytes, const Envelope& env,
                        std::optional<std::size_t> total_size, const PlanOptions& opts, DkimVerifier* dkim, const AvInput* av,
                        const HeaderCensus* census, std::optional<std::chrono::steady_clock::time_point> dns_deadline) {
  auto t0 = std::chrono::steady_clock::now();
  ScanResult r;
  HeaderCensus counted;
  if (census == nullptr) {
    counted = make_census(snap);
    counted.add_block(bytes);
    census = &counted;
  }
  r.message = parse_message(bytes, snap.config.limits, total_size);
  CheckContext ctx{r.message, env, snap,
                   dns_deadline ? *dns_deadline : t0 + std::chrono::milliseconds(snap.config.dns.budget_ms),
                   &r.prepend_headers, &r.auth, bytes, dkim, av, census};
  Metrics& metrics = Metrics::get();
  for (const auto& check : snap.checks) {
    Status s;
    auto c0 = std::chrono::steady_clock::now();
    try {
      s = check->run(ctx, r.hits);
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
  r.verdict = decide(snap, r.hits);
  r.plan = plan_actions(snap.config, r.message, *census, r.verdict, opts, r.prepend_headers);
  r.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

HeaderCensus make_census(const Snapshot& snap) {
  return HeaderCensus(snap.config.auth.authserv_id, snap.outbound ? snap.outbound->config().tag_header : std::string(),
                      snap.config.limits.max_header_deletions);
}

void log_verdict(const ScanResult& r, std::string_view label, std::string_view context) {
  const Header* mid = r.message.first("message-id");
  std::string tests;
  for (const ScoredHit& h : r.verdict.hits) {
    if (!tests.empty()) tests.push_back(',');
    tests += h.name;
  }
  std::string unavailable;  // dependency down (logged once by its breaker): named on the verdict line
  for (const CheckError& e : r.check_errors) {
    if (e.unavailable) unavailable += (unavailable.empty() ? " unavailable=" : ",") + e.check;
    else log().warn("{}: check {} failed, its remaining work skipped: {}", label, e.check, clip(e.message, 300));
  }
  std::string reply;
  if (!r.verdict.reply.empty()) reply = " reply=\"550 5.7.1 " + clip(r.verdict.reply, 300) + "\"";
  log().info("{}: {}{}msgid={} score={} required={} action={}{} tests={}{} ms={:.2f}", label, context,
             context.empty() ? "" : " ",
             mid ? clip(mid->decoded, 100) : std::string("(none)"), format_tenths(r.verdict.score_tenths),
             format_tenths(r.verdict.threshold_tenths), action_name(r.verdict.action), reply,
             tests.empty() ? "none" : tests, unavailable, r.ms);
}

}  // namespace spamgate
