// fuzz_arf.cc - libFuzzer target: what `spamgate learn` and `learn --arf`
// read. Any bytes through the mbox splitter (for_each_message: "From "
// separators, >From unquoting, the per-message read limit), and each message
// it yields through the ARF reader (parse_feedback_report), as learn --arf
// does. Build as fuzz_message.cc says (src/app/common.cc is linked in).
// Checked: nothing crashes or leaks; the splitter yields no empty message,
// none longer than the limit, and no more bytes than it was given; a report
// that parses has its original message.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "app/common.h"
#include "outbound/arf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the read limit ([limits] max_scan_bytes): small ones cut messages short.
  static const std::size_t kLimits[] = {16, 100, 1000, 1 << 20};
  const std::size_t limit = kLimits[data[0] % 4];
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::istringstream in(bytes);
  std::size_t seen = 0, calls = 0;
  std::size_t n = spamgate::app::for_each_message(in, limit, [&](std::string& msg) {
    ++calls;
    if (msg.empty() || msg.size() > limit) __builtin_trap();
    seen += msg.size();
    spamgate::FeedbackReport report;
    spamgate::Status s = spamgate::parse_feedback_report(msg, report);
    if (s.ok() && report.original.empty()) __builtin_trap();
    if (!s.ok() && s.message().empty()) __builtin_trap();
  });
  if (n != calls || seen > bytes.size()) __builtin_trap();
  return 0;
}
