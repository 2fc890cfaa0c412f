// metrics.cc - Metrics (see metrics.h).
#include "spamgate/metrics.h"

#include <unistd.h>

#include <fstream>

#include <fmt/format.h>

namespace spamgate {

namespace {
constexpr const char* kDirectionNames[] = {"inbound", "outbound"};
constexpr const char* kOutcomeNames[] = {"accept", "tag", "reject", "tempfail", "quarantine", "skip"};

std::string number(double v) { return fmt::format("{}", v); }
}  // namespace

Metrics& Metrics::get() {
  static Metrics m;
  return m;
}

void Metrics::message(Direction d, Outcome o, std::int64_t score_tenths, bool scored) {
  const int di = static_cast<int>(d);
  messages_[di * kOutcomes + static_cast<int>(o)].fetch_add(1, std::memory_order_relaxed);
  if (!scored) return;
  Histogram& h = scores_[di];
  std::size_t b = 0;
  while (b < kScoreBuckets.size() && static_cast<double>(score_tenths) / 10.0 > kScoreBuckets[b]) ++b;
  h.buckets[b].fetch_add(1, std::memory_order_relaxed);
  h.sum_tenths.fetch_add(score_tenths, std::memory_order_relaxed);
  h.count.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::check(std::string_view name, double seconds, bool error) {
  std::size_t b = 0;
  while (b < kSecondsBuckets.size() && seconds > kSecondsBuckets[b]) ++b;
  std::lock_guard lock(mu_);
  auto it = checks_.find(name);
  if (it == checks_.end()) it = checks_.emplace(std::string(name), CheckStats{}).first;
  CheckStats& c = it->second;
  ++c.buckets[b];
  c.sum += seconds;
  ++c.count;
  if (error) ++c.errors;
}

Metrics::BreakerStats& Metrics::breaker(std::string_view dependency) {
  auto it = breakers_.find(dependency);
  if (it == breakers_.end()) it = breakers_.emplace(std::string(dependency), BreakerStats{}).first;
  return it->second;
}

void Metrics::breaker_state(std::string_view dependency, int state) {
  std::lock_guard lock(mu_);
  breaker(dependency).state = state;
}

void Metrics::breaker_skipped(std::string_view dependency) {
  std::lock_guard lock(mu_);
  ++breaker(dependency).skipped;
}

std::string Metrics::render(const Gauges& g) const {
  std::string out;
  auto head = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  head("spamgate_messages_total", "counter", "Messages the milter finished, by direction and what it did.");
  for (int d = 0; d < kDirections; ++d)
    for (int o = 0; o < kOutcomes; ++o)
      out += fmt::format("spamgate_messages_total{{direction=\"{}\",action=\"{}\"}} {}\n", kDirectionNames[d],
                         kOutcomeNames[o], messages_[d * kOutcomes + o].load(std::memory_order_relaxed));
  head("spamgate_score", "histogram", "Scores of scanned messages, by direction.");
  for (int d = 0; d < kDirections; ++d) {
    const Histogram& h = scores_[d];
    std::uint64_t cum = 0;
    for (std::size_t b = 0; b <= kScoreBuckets.size(); ++b) {
      cum += h.buckets[b].load(std::memory_order_relaxed);
      std::string le = b < kScoreBuckets.size() ? number(kScoreBuckets[b]) : "+Inf";
      out += fmt::format("spamgate_score_bucket{{direction=\"{}\",le=\"{}\"}} {}\n", kDirectionNames[d], le, cum);
    }
    out += fmt::format("spamgate_score_sum{{direction=\"{}\"}} {}\n", kDirectionNames[d],
                       number(static_cast<double>(h.sum_tenths.load(std::memory_order_relaxed)) / 10.0));
    out += fmt::format("spamgate_score_count{{direction=\"{}\"}} {}\n", kDirectionNames[d],
                       h.count.load(std::memory_order_relaxed));
  }
  {
    std::lock_guard lock(mu_);
    head("spamgate_check_duration_seconds", "histogram", "Time each check took per message.");
    for (const auto& [name, c] : checks_) {
      std::uint64_t cum = 0;
      for (std::size_t b = 0; b <= kSecondsBuckets.size(); ++b) {
        cum += c.buckets[b];
        std::string le = b < kSecondsBuckets.size() ? number(kSecondsBuckets[b]) : "+Inf";
        out += fmt::format("spamgate_check_duration_seconds_bucket{{check=\"{}\",le=\"{}\"}} {}\n", name, le, cum);
      }
      out += fmt::format("spamgate_check_duration_seconds_sum{{check=\"{}\"}} {}\n", name, number(c.sum));
      out += fmt::format("spamgate_check_duration_seconds_count{{check=\"{}\"}} {}\n", name, c.count);
    }
    head("spamgate_check_errors_total", "counter", "Checks that could not finish (their failure policy applied).");
    for (const auto& [name, c] : checks_)
      out += fmt::format("spamgate_check_errors_total{{check=\"{}\"}} {}\n", name, c.errors);
    head("spamgate_breaker_state", "gauge",
         "Circuit breaker in front of a dependency: 0 closed (in use), 1 open (skipped), 2 half-open (probed).");
    for (const auto& [name, b] : breakers_)
      out += fmt::format("spamgate_breaker_state{{dependency=\"{}\"}} {}\n", name, b.state);
    head("spamgate_breaker_skipped_total", "counter", "Calls to a dependency skipped because its breaker was open.");
    for (const auto& [name, b] : breakers_)
      out += fmt::format("spamgate_breaker_skipped_total{{dependency=\"{}\"}} {}\n", name, b.skipped);
  }
  head("spamgate_dns_timeouts_total", "counter", "DNS lookups that timed out.");
  out += fmt::format("spamgate_dns_timeouts_total {}\n", dns_timeouts_.load(std::memory_order_relaxed));
  head("spamgate_signature_engines_total", "counter", "Signature engines built, and updates refused (load error or canary).");
  out += fmt::format("spamgate_signature_engines_total{{result=\"loaded\"}} {}\n", sig_loaded_.load(std::memory_order_relaxed));
  out += fmt::format("spamgate_signature_engines_total{{result=\"refused\"}} {}\n", sig_refused_.load(std::memory_order_relaxed));
  head("spamgate_reloads_total", "counter", "Configuration and rules reloads, taken or refused.");
  out += fmt::format("spamgate_reloads_total{{result=\"taken\"}} {}\n", reload_ok_.load(std::memory_order_relaxed));
  out += fmt::format("spamgate_reloads_total{{result=\"refused\"}} {}\n", reload_refused_.load(std::memory_order_relaxed));
  head("spamgate_history_records_total", "counter", "Verdict history records written, and dropped (queue full, store failed).");
  out += fmt::format("spamgate_history_records_total{{result=\"written\"}} {}\n", history_written_.load(std::memory_order_relaxed));
  out += fmt::format("spamgate_history_records_total{{result=\"dropped\"}} {}\n", history_dropped_.load(std::memory_order_relaxed));
  head("spamgate_resident_memory_bytes", "gauge", "Resident memory of the milter process.");
  out += fmt::format("spamgate_resident_memory_bytes {}\n", number(g.resident_bytes));
  head("spamgate_messages_in_flight", "gauge", "Messages between MAIL FROM and their end.");
  out += fmt::format("spamgate_messages_in_flight {}\n", number(g.messages_in_flight));
  if (g.held_accounts >= 0) {
    head("spamgate_outbound_held", "gauge", "Accounts and domains the outbound guard holds now.");
    out += fmt::format("spamgate_outbound_held {}\n", number(g.held_accounts));
  }
  return out;
}

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  if (!(statm >> pages >> resident)) return 0;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

}  // namespace spamgate
