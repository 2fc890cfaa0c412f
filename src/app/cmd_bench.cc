// cmd_bench.cc - `spamgate bench DIR...`: scan every message in the
// directories on one thread and report messages/s, MB/s, p50/p99 ms and peak
// RSS. Files are read into memory first so disk speed is not measured.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "spamgate/pipeline.h"

namespace spamgate::app {

int cmd_bench(int argc, char** argv) {
  const std::string usage =
      std::string("usage: spamgate bench [--config F] [--repeat N] [sender options] DIR|FILE ...\n"
                  "Scans the messages (N times) on one thread and prints messages/s, MB/s, p50/p99 latency\n"
                  "and peak resident memory. No network unless --network (then, with --client-ip and\n"
                  "--helo, the client's checks too: SPF, DNSBL).\n") +
      kSenderUsage;
  auto started = start_command(argc, argv, usage.c_str(), true, sender_flags());
  if (!started) return 2;
  const Options* opt = &started->opt;
  const auto& snap = started->snap;
  const Replay who = replay_of(*opt, *snap);
  // Files are read one at a time (as the milter receives them), so peak RSS
  // is the scanner's, not the corpus's; only scan time counts as busy time.
  std::vector<std::string> paths = expand_inputs(opt->args);
  std::vector<double> ms;
  ms.reserve(paths.size() * static_cast<std::size_t>(opt->repeat));
  std::size_t bytes = 0, skipped = 0, spam = 0, scanned = 0;
  double busy_ms = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int rep = 0; rep < opt->repeat; ++rep) {
    for (const std::string& path : paths) {
      Input in = read_input(path);
      if (!in.error.empty()) {
        if (rep == 0) ++skipped;
        continue;
      }
      // The milter's path for inbound mail: the scan and the decision.
      Handled h = handle_message(*snap, in.bytes, who.env, who.sender, OutboundMode::kLookUp, path);
      const ScanResult& r = *h.scan;
      ms.push_back(r.ms);
      busy_ms += r.ms;
      bytes += in.bytes.size();
      if (rep == 0) {
        ++scanned;
        if (r.verdict.spam) ++spam;
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (ms.empty()) {
    std::cerr << "spamgate bench: no messages found\n";
    return 1;
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * ms.size()))]; };
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double n = static_cast<double>(ms.size());
  double mb = static_cast<double>(bytes) / 1e6;
  std::printf("messages      %zu scanned x%d runs (%zu not messages, skipped), %.1f MB scanned\n", scanned,
              opt->repeat, skipped, mb);
  std::printf("spam verdicts %zu of %zu (%.1f%%)\n", spam, scanned,
              100.0 * static_cast<double>(spam) / static_cast<double>(scanned));
  std::printf("throughput    %.0f messages/s, %.1f MB/s on one core (scan time only)\n", n / (busy_ms / 1000.0),
              mb / (busy_ms / 1000.0));
  std::printf("wall clock    %.0f messages/s including reading files\n", n / secs);
  std::printf("latency       p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", pct(0.50), pct(0.99), ms.back());
  std::printf("peak RSS      %.1f MB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}

}  // namespace spamgate::app
