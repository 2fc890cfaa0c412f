// circuit_breaker.cc - CircuitBreaker (see circuit_breaker.h).
#include "util/circuit_breaker.h"

#include <algorithm>

#include "spamgate/metrics.h"
#include "util/log.h"

namespace spamgate {

CircuitBreaker::CircuitBreaker(std::string dependency, std::string metric, Options opts, Clock clock)
    : dependency_(std::move(dependency)), metric_(std::move(metric)), opts_(opts), clock_(std::move(clock)) {
  Metrics::get().breaker_state(metric_, static_cast<int>(State::kClosed));
}

std::chrono::milliseconds CircuitBreaker::backoff() const {
  std::lock_guard lock(mu_);
  return backoff_;
}

void CircuitBreaker::set_state(State s) {
  state_.store(static_cast<int>(s), std::memory_order_relaxed);
  Metrics::get().breaker_state(metric_, static_cast<int>(s));
}

CircuitBreaker::Admit CircuitBreaker::admit() {
  if (state() == State::kClosed) return Admit::kGo;  // the common case takes no lock
  std::lock_guard lock(mu_);
  if (state() == State::kClosed) return Admit::kGo;
  if (!probing_ && now() >= retry_at_) {
    probing_ = true;
    set_state(State::kHalfOpen);
    return Admit::kProbe;
  }
  skipped_.fetch_add(1, std::memory_order_relaxed);
  Metrics::get().breaker_skipped(metric_);
  return Admit::kSkip;
}

void CircuitBreaker::record(Admit how, Outcome outcome) {
  if (opts_.failures <= 0 || how == Admit::kSkip) return;
  std::lock_guard lock(mu_);
  if (how == Admit::kProbe) {
    probing_ = false;
    if (state() != State::kHalfOpen) how = Admit::kGo;  // another call's answer closed it meanwhile
  }
  switch (outcome) {
    case Outcome::kSuccess:
      failures_ = 0;
      if (state() != State::kClosed) {
        log().info("{}: answering again; calls resumed ({} skipped while it was down)", dependency_,
                   skipped() - skipped_at_open_);
        backoff_ = std::chrono::milliseconds(0);
        set_state(State::kClosed);
      }
      return;
    case Outcome::kFailure:
      if (how == Admit::kProbe) {
        backoff_ = std::min(backoff_ * 2, std::chrono::milliseconds(std::max(opts_.max_backoff_ms, opts_.backoff_ms)));
        retry_at_ = now() + backoff_;
        set_state(State::kOpen);
        log().debug("{}: probe failed, still skipped; next probe in {} ms", dependency_, backoff_.count());
      } else if (state() == State::kClosed && ++failures_ >= opts_.failures) {
        failures_ = 0;
        backoff_ = std::chrono::milliseconds(opts_.backoff_ms);
        retry_at_ = now() + backoff_;
        skipped_at_open_ = skipped();
        set_state(State::kOpen);
        log().warn("{}: {} calls in a row got no answer; calls skipped (they fail at once, as on a timeout) and "
                   "it is probed after {} ms, the wait doubling up to {} ms, until it answers",
                   dependency_, opts_.failures, opts_.backoff_ms, std::max(opts_.max_backoff_ms, opts_.backoff_ms));
      }
      return;  // a failure while open is a call that started before it opened
    case Outcome::kInconclusive:
      if (how == Admit::kProbe) set_state(State::kOpen);  // the back-off is over: the next call probes
      return;
  }
}

}  // namespace spamgate
