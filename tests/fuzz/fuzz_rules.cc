// fuzz_rules.cc - libFuzzer target: any bytes as a rules file (parser, regex
// compiler, meta expressions). Build as fuzz_message.cc says.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "rules/ruleset.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/spamgate-fuzz-rules-" + std::to_string(getpid()) + ".cf";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  spamgate::RuleSet rs;
  std::vector<spamgate::Diagnostic> diags;
  spamgate::parse_rule_files({path}, {}, false, rs, diags);
  return 0;
}
