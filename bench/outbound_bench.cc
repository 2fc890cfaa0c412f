// outbound_bench.cc - what the outbound guard costs one authenticated
// message, without Postfix around it: the MAIL FROM hold lookup, the sender
// tag, and the end-of-message count (windows, spam window for every 10th
// message, Message-ID and tag maps), for N messages from 50 accounts.
// usage: bench_outbound STORE_DIR lmdb|redis [HOST:PORT] [N]   (bench/outbound.sh runs it)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "spamgate/check.h"
#include "spamgate/outbound.h"

int main(int argc, char** argv) {
  using namespace spamgate;
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_outbound STORE_DIR lmdb|redis [HOST:PORT] [N]\n");
    return 2;
  }
  BayesConfig store;
  store.path = std::string(argv[1]) + "/bayes";
  store.store = argv[2];
  if (argc > 3) store.redis = argv[3];
  const int n = argc > 4 ? std::atoi(argv[4]) : 5000;
  OutboundConfig cfg;
  cfg.site_key_file = std::string(argv[1]) + "/site.key";
  cfg.user_limits = RateLimits{};  // no limit, no hold: every message takes the whole path
  cfg.domain_limits = RateLimits{};
  cfg.hold_after_spam = 0;
  OutboundGuard guard(cfg, store, LimitOverrides{});
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    Envelope env;
    env.auth_user = "user" + std::to_string(i % 50) + "@customer.example";
    OutboundSender s = outbound_sender(env);
    std::optional<HoldInfo> hold;
    OutboundCounts counts;
    std::string tag;
    Status st = guard.held(s, hold);
    if (st.ok()) st = guard.tag_of(s.account, tag);
    if (st.ok())
      st = guard.count_message(s, 2, i % 10 == 0, unix_seconds(), "<m" + std::to_string(i) + "@customer.example>",
                               tag, counts, hold);
    if (!st.ok()) {
      std::fprintf(stderr, "bench_outbound: %s\n", st.message().c_str());
      return 1;
    }
  }
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / n;
  std::printf("%s: %d messages, %.0f us per outbound message (%.0f messages/s, one thread)\n", argv[2], n, us,
              1e6 / us);
  return 0;
}
