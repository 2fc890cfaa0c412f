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
  const char* usage = "usage: spamgate bench [--config F] [--repeat N] DIR|FILE ...\n";
  auto opt = parse_options(argc, argv, 2, usage);
  if (!opt) return 2;
  if (opt->args.empty()) {
    std::cerr << usage;
    return 2;
  }
  opt->quiet = true;
  auto snap = load_or_report(*opt);
  if (!snap) return 2;
  std::vector<std::string> msgs;
  std::size_t bytes = 0, skipped = 0;
  for (const std::string& path : expand_inputs(opt->args)) {
    Input in = read_input(path);
    if (!in.error.empty()) {
      ++skipped;
      continue;
    }
    bytes += in.bytes.size();
    msgs.push_back(std::move(in.bytes));
  }
  if (msgs.empty()) {
    std::cerr << "spamgate bench: no messages found\n";
    return 1;
  }
  std::vector<double> ms;
  ms.reserve(msgs.size() * static_cast<std::size_t>(opt->repeat));
  std::size_t spam = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (int rep = 0; rep < opt->repeat; ++rep) {
    for (const std::string& m : msgs) {
      ScanResult r = scan_message(*snap, m, Envelope{});
      ms.push_back(r.ms);
      if (rep == 0 && r.verdict.spam) ++spam;
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * ms.size()))]; };
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  double n = static_cast<double>(ms.size());
  std::printf("messages      %zu (x%d runs, %zu unreadable skipped), %.1f MB\n", msgs.size(), opt->repeat,
              skipped, static_cast<double>(bytes) / 1e6);
  std::printf("spam verdicts %zu of %zu (%.1f%%)\n", spam, msgs.size(), 100.0 * static_cast<double>(spam) / static_cast<double>(msgs.size()));
  std::printf("throughput    %.0f messages/s, %.1f MB/s (one thread)\n", n / secs,
              static_cast<double>(bytes) * opt->repeat / 1e6 / secs);
  std::printf("latency       p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", pct(0.50), pct(0.99), ms.back());
  std::printf("peak RSS      %.1f MB\n", static_cast<double>(ru.ru_maxrss) / 1024.0);
  return 0;
}

}  // namespace spamgate::app
