// metrics.h - process-wide counters for the Prometheus endpoint ([metrics]).
//
// Messages by direction and action, a score histogram per direction,
// per-check latency and errors, DNS timeouts, signature-engine loads and
// refusals, configuration reloads, circuit breakers (state per dependency and
// calls skipped while open); gauges (resident memory, messages in
// flight, held accounts) are read when scraped. Updating is lock-free for
// the fixed families and one short mutex for per-check figures; render()
// writes the Prometheus text format (0.0.4). Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace spamgate {

class Metrics {
 public:
  enum class Direction { kInbound, kOutbound };
  // What happened to a message at the milter.
  enum class Outcome { kAccept, kTag, kReject, kTempfail, kQuarantine, kSkip };

  static Metrics& get();

  void message(Direction d, Outcome o, std::int64_t score_tenths, bool scored);
  void check(std::string_view name, double seconds, bool error);
  void dns_timeout() { dns_timeouts_.fetch_add(1, std::memory_order_relaxed); }
  void signatures_loaded() { sig_loaded_.fetch_add(1, std::memory_order_relaxed); }
  void signatures_refused() { sig_refused_.fetch_add(1, std::memory_order_relaxed); }
  void reload(bool refused) { (refused ? reload_refused_ : reload_ok_).fetch_add(1, std::memory_order_relaxed); }
  // Verdict history records written, or dropped (queue full, store failed).
  void history(bool written, std::uint64_t n) {
    (written ? history_written_ : history_dropped_).fetch_add(n, std::memory_order_relaxed);
  }
  // A circuit breaker in front of `dependency` ("dns", "redis"): its state
  // (0 closed, 1 open, 2 half-open) and one call it skipped.
  void breaker_state(std::string_view dependency, int state);
  void breaker_skipped(std::string_view dependency);

  // Values read at scrape time.
  struct Gauges {
    double resident_bytes = 0;
    double messages_in_flight = 0;
    double held_accounts = -1;  // < 0: unknown (store unreachable, guard off)
  };
  std::string render(const Gauges& g) const;

  static constexpr std::array<double, 10> kScoreBuckets = {-5, 0, 2.5, 5, 7.5, 10, 15, 20, 30, 50};
  static constexpr std::array<double, 9> kSecondsBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                             0.025, 0.1, 0.5, 2.5};

 private:
  static constexpr int kDirections = 2, kOutcomes = 6;
  struct Histogram {  // cumulative on render; here one count per bucket (+Inf last)
    std::array<std::atomic<std::uint64_t>, kScoreBuckets.size() + 1> buckets{};
    std::atomic<std::int64_t> sum_tenths{0};
    std::atomic<std::uint64_t> count{0};
  };
  struct CheckStats {
    std::array<std::uint64_t, kSecondsBuckets.size() + 1> buckets{};
    double sum = 0;
    std::uint64_t count = 0, errors = 0;
  };
  std::array<std::atomic<std::uint64_t>, kDirections * kOutcomes> messages_{};
  std::array<Histogram, kDirections> scores_{};
  std::atomic<std::uint64_t> dns_timeouts_{0}, sig_loaded_{0}, sig_refused_{0}, reload_ok_{0}, reload_refused_{0};
  std::atomic<std::uint64_t> history_written_{0}, history_dropped_{0};
  mutable std::mutex mu_;
  std::map<std::string, CheckStats, std::less<>> checks_;
  struct BreakerStats {
    int state = 0;
    std::uint64_t skipped = 0;
  };
  std::map<std::string, BreakerStats, std::less<>> breakers_;
  BreakerStats& breaker(std::string_view dependency);  // under mu_
};

// Resident memory of this process in bytes (/proc/self/statm), 0 if unknown.
std::size_t resident_bytes();

}  // namespace spamgate
