// fuzz_config.cc - libFuzzer target: any bytes as spamgate.toml through the
// config loader (toml++ and every key's checks), from memory
// (parse_config(): the file is never written). Build as fuzz_message.cc says.
// Checked: nothing crashes, throws or leaks; a config that loads has a
// rules_dir and absolute paths where the loader resolves them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<spamgate::Diagnostic> diags;
  auto c = spamgate::parse_config(text, "/etc/spamgate/spamgate.toml", diags);
  if (c.ok()) {
    if (!diags.empty()) __builtin_trap();  // loaded with errors
    if (c.value().rules_dirs.empty() || c.value().rules_dirs[0][0] != '/') __builtin_trap();
  } else if (diags.empty()) {
    __builtin_trap();  // refused without saying why
  }
  return 0;
}
