// circuit_breaker_test.cc - the breaker's state machine on an injected clock
// (open after N failures in a row, one probe per back-off, doubling back-off,
// closing on an answer), one log line per state change, its metrics, and many
// threads sharing one breaker.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "util/circuit_breaker.h"
#include "util/log.h"
#include "test_util.h"

namespace spamgate {
namespace {

using Admit = CircuitBreaker::Admit;
using Outcome = CircuitBreaker::Outcome;
using State = CircuitBreaker::State;
using ms = std::chrono::milliseconds;

// A clock the test moves by hand.
struct FakeClock {
  std::chrono::steady_clock::time_point t = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  CircuitBreaker::Clock fn() {
    return [this] { return t; };
  }
};

void fail(CircuitBreaker& b, int n) {
  for (int i = 0; i < n; ++i) {
    Admit a = b.admit();
    ASSERT_EQ(a, Admit::kGo);
    b.record(a, Outcome::kFailure);
  }
}

TEST(CircuitBreaker, OpensAfterFailuresInARowAndAnAnswerResetsTheCount) {
  FakeClock clock;
  CircuitBreaker b("test server", "test_count", {3, 1000, 8000}, clock.fn());
  fail(b, 2);
  Admit a = b.admit();
  b.record(a, Outcome::kSuccess);  // an answer (NXDOMAIN counts): the count starts again
  fail(b, 2);
  EXPECT_EQ(b.state(), State::kClosed);
  b.record(b.admit(), Outcome::kInconclusive);  // cut short by its own deadline: says nothing
  EXPECT_EQ(b.state(), State::kClosed);
  fail(b, 1);
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.admit(), Admit::kSkip);
  EXPECT_EQ(b.admit(), Admit::kSkip);
  EXPECT_EQ(b.skipped(), 2u);
}

TEST(CircuitBreaker, AfterTheBackoffOneProbeGoesThroughAndItsAnswerCloses) {
  FakeClock clock;
  CircuitBreaker b("test server", "test_probe", {2, 1000, 8000}, clock.fn());
  fail(b, 2);
  clock.t += ms(999);
  EXPECT_EQ(b.admit(), Admit::kSkip);
  clock.t += ms(1);
  EXPECT_EQ(b.admit(), Admit::kProbe);
  EXPECT_EQ(b.state(), State::kHalfOpen);
  EXPECT_EQ(b.admit(), Admit::kSkip) << "one probe at a time";
  b.record(Admit::kProbe, Outcome::kSuccess);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.admit(), Admit::kGo);
  fail(b, 1);
  EXPECT_EQ(b.state(), State::kClosed) << "closing starts the failure count again";
}

TEST(CircuitBreaker, AFailedProbeDoublesTheBackoffUpToTheMaximum) {
  FakeClock clock;
  CircuitBreaker b("test server", "test_backoff", {1, 1000, 3000}, clock.fn());
  fail(b, 1);
  EXPECT_EQ(b.backoff(), ms(1000));
  for (ms expect : {ms(2000), ms(3000), ms(3000)}) {
    clock.t += b.backoff();
    Admit a = b.admit();
    ASSERT_EQ(a, Admit::kProbe);
    b.record(a, Outcome::kFailure);
    EXPECT_EQ(b.state(), State::kOpen);
    EXPECT_EQ(b.backoff(), expect);
    clock.t += expect - ms(1);
    EXPECT_EQ(b.admit(), Admit::kSkip);
    clock.t += ms(1);
  }
  // A call that started before it opened and answers late closes it too.
  b.record(Admit::kGo, Outcome::kSuccess);
  EXPECT_EQ(b.state(), State::kClosed);
}

TEST(CircuitBreaker, AnInconclusiveProbeLetsTheNextCallProbe) {
  FakeClock clock;
  CircuitBreaker b("test server", "test_inconclusive", {1, 1000, 3000}, clock.fn());
  fail(b, 1);
  clock.t += ms(1000);
  ASSERT_EQ(b.admit(), Admit::kProbe);
  b.record(Admit::kProbe, Outcome::kInconclusive);
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_EQ(b.backoff(), ms(1000));
  EXPECT_EQ(b.admit(), Admit::kProbe);
}

TEST(CircuitBreaker, ZeroFailuresNeverOpens) {
  CircuitBreaker b("test server", "test_off", {0, 1000, 3000});
  for (int i = 0; i < 100; ++i) b.record(b.admit(), Outcome::kFailure);
  EXPECT_EQ(b.state(), State::kClosed);
  EXPECT_EQ(b.admit(), Admit::kGo);
}

TEST(CircuitBreaker, OneLogLinePerStateChangeAndMetrics) {
  FakeClock clock;
  test::LogCapture cap;
  CircuitBreaker b("dns server 127.0.0.1:5353", "test_metrics", {2, 1000, 4000}, clock.fn());
  const std::string state = "spamgate_breaker_state{dependency=\"test_metrics\"}";
  const std::string skipped = "spamgate_breaker_skipped_total{dependency=\"test_metrics\"}";
  EXPECT_EQ(test::metric_value(state), 0);
  fail(b, 2);
  EXPECT_EQ(test::metric_value(state), 1);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(b.admit(), Admit::kSkip);  // 50 messages: no line each
  for (int i = 0; i < 3; ++i) {  // three failed probes: still one line
    clock.t += b.backoff();
    Admit a = b.admit();
    EXPECT_EQ(test::metric_value(state), 2);
    b.record(a, Outcome::kFailure);
  }
  EXPECT_EQ(test::metric_value(skipped), 50);
  clock.t += b.backoff();
  b.record(b.admit(), Outcome::kSuccess);
  EXPECT_EQ(test::metric_value(state), 0);
  std::vector<std::string> lines = cap.lines();
  ASSERT_EQ(lines.size(), 2u) << (lines.empty() ? "" : lines.back());
  EXPECT_EQ(lines[0].rfind("warning dns server 127.0.0.1:5353: 2 calls in a row got no answer", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1], "info dns server 127.0.0.1:5353: answering again; calls resumed (50 skipped while it was down)\n");
}

TEST(CircuitBreaker, ManyThreadsShareOneBreaker) {
  FakeClock clock;  // moved only while no thread runs
  CircuitBreaker b("test server", "test_threads", {5, 1000, 4000}, clock.fn());
  auto run = [&](auto body) {
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t) ts.emplace_back(body);
    for (auto& t : ts) t.join();
  };
  // Eight sessions whose lookups all time out: it opens, and every later call is skipped.
  std::atomic<int> went{0};
  run([&] {
    for (int i = 0; i < 1000; ++i) {
      Admit a = b.admit();
      if (a == Admit::kGo) {
        went.fetch_add(1);
        b.record(a, Outcome::kFailure);
      }
    }
  });
  EXPECT_EQ(b.state(), State::kOpen);
  EXPECT_GE(went.load(), 5);
  EXPECT_LE(went.load(), 5 + 7) << "at most the calls already in flight when it opened";
  EXPECT_EQ(b.skipped(), 8000u - static_cast<unsigned>(went.load()));
  // Past the back-off they race: exactly one is the probe.
  clock.t += b.backoff();
  std::atomic<int> probes{0};
  std::atomic<bool> release{false};
  run([&] {
    for (int i = 0; i < 1000; ++i) {
      if (b.admit() == Admit::kProbe) {
        probes.fetch_add(1);
        while (!release.load()) std::this_thread::yield();  // the probe is slow; the others keep coming
      }
    }
    release.store(true);  // every thread but the prober has finished its calls
  });
  EXPECT_EQ(probes.load(), 1);
  b.record(Admit::kProbe, Outcome::kSuccess);
  EXPECT_EQ(b.state(), State::kClosed);
}

}  // namespace
}  // namespace spamgate
