// fuzz_policy_files.cc - libFuzzer target: the two files support staff edit.
// The first byte picks the parser, the rest is the file:
//   even: the ClamAV signature policy ("ignore|score|reject NAME" lines,
//         SignaturePolicy::load, which reads a path: written to /dev/shm);
//   odd:  the outbound limit overrides ("ACCOUNT|domain:D NAME=N ...",
//         parse_limit_overrides, from memory).
// Build as fuzz_message.cc says. Checked: nothing crashes or leaks; every
// diagnostic names the file and a line that exists.
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "checks/clamav_engine.h"
#include "spamgate/outbound.h"

namespace {

void check_lines(const std::vector<spamgate::Diagnostic>& diags, const std::string& file, std::string_view text) {
  const long lines = std::count(text.begin(), text.end(), '\n') + 1;
  for (const spamgate::Diagnostic& d : diags) {
    if (d.file != file || d.line < 1 || d.line > lines) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<spamgate::Diagnostic> diags;
  if (data[0] % 2 == 0) {
    static const std::string path = "/dev/shm/spamgate-fuzz-policy-" + std::to_string(getpid()) + ".conf";
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return 0;
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    spamgate::SignaturePolicy p = spamgate::SignaturePolicy::load(path, diags);
    std::remove(path.c_str());
    check_lines(diags, path, text);
    for (const auto& [name, action] : p.by_name) {
      if (name.empty() || name.find_first_of(" \t\n") != std::string::npos) __builtin_trap();
      (void)spamgate::sig_action_name(action);
    }
  } else {
    spamgate::LimitOverrides o = spamgate::parse_limit_overrides(text, "outbound-limits.conf", diags);
    check_lines(diags, "outbound-limits.conf", text);
    for (const auto* m : {&o.accounts, &o.domains}) {
      for (const auto& [who, lim] : *m) {
        if (who.find_first_of(" \t\n") != std::string::npos) __builtin_trap();
        for (std::int64_t v : lim.v) {
          if (v < -1) __builtin_trap();  // -1: the default
        }
      }
    }
  }
  return 0;
}
