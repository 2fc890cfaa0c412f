// circuit_breaker.h - stop paying a dead dependency's timeout on every message.
//
// Interface: a CircuitBreaker stands in front of one dependency (the DNS
// server, a Redis server). Before each call the caller asks admit(); after it
// it reports the outcome with record(). States:
//  - closed: every call goes through; `failures` failures in a row (answers
//    of any kind reset the count) open the breaker.
//  - open: calls are refused at once (kSkip: the caller fails the call the
//    way a timeout would, e.g. TEMPERROR) for a back-off period.
//  - half-open: once the back-off is over, the next call is the probe (kProbe)
//    and the only one let through until it reports; a success closes the
//    breaker, a failure opens it again for twice the back-off (up to
//    `max_backoff`), an inconclusive probe (cut short by its caller's own
//    deadline) lets the next call probe again.
// A success reported by any call closes the breaker (the dependency answered).
// The clock is injectable for tests. Thread-safe: many sessions share one.
// DIAGNOSTICS: one log line per state change, not per call: a warning when it
// opens, info when it closes, debug when a probe fails; the metrics gauge
// spamgate_breaker_state{dependency} (0 closed, 1 open, 2 half-open) and the
// counter spamgate_breaker_skipped_total{dependency}.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

namespace spamgate {

class CircuitBreaker {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  struct Options {
    int failures = 5;             // failures in a row that open it; 0 = never opens
    int backoff_ms = 1000;        // first back-off; doubles after each failed probe
    int max_backoff_ms = 30000;   // up to this
  };
  enum class State { kClosed = 0, kOpen = 1, kHalfOpen = 2 };
  enum class Admit { kGo, kProbe, kSkip };  // call / call as the probe / don't call
  enum class Outcome { kSuccess, kFailure, kInconclusive };

  // `dependency` names it in logs and metrics (e.g. "dns 127.0.0.1:53");
  // `metric` is the dependency label of the metrics (e.g. "dns").
  CircuitBreaker(std::string dependency, std::string metric, Options opts, Clock clock = {});
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Whether to make a call now. kSkip is counted as a skipped call.
  Admit admit();
  // What became of a call admit() let through (`how`: what admit() said).
  void record(Admit how, Outcome outcome);

  State state() const { return static_cast<State>(state_.load(std::memory_order_relaxed)); }
  std::uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }
  std::chrono::milliseconds backoff() const;

 private:
  std::chrono::steady_clock::time_point now() const {
    return clock_ ? clock_() : std::chrono::steady_clock::now();
  }
  void set_state(State s);  // under mu_

  const std::string dependency_, metric_;
  const Options opts_;
  const Clock clock_;
  std::atomic<int> state_{0};  // State; read without the lock on the fast path
  std::atomic<std::uint64_t> skipped_{0};
  mutable std::mutex mu_;
  int failures_ = 0;            // in a row, while closed
  bool probing_ = false;        // a probe is in flight
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point retry_at_{};
  std::uint64_t skipped_at_open_ = 0;
};

}  // namespace spamgate
