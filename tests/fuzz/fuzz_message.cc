// fuzz_message.cc - libFuzzer target: any bytes through the message parser,
// the shipped rules and the rewriter. Build with clang and SPAMGATE_FUZZ=ON:
//   CXX=clang++ cmake -B build-fuzz -DSPAMGATE_FUZZ=ON -DSPAMGATE_TESTS=OFF && cmake --build build-fuzz
//   build-fuzz/fuzz_message -max_total_time=300 corpus/
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/load.h"
#include "spamgate/pipeline.h"

namespace {

const spamgate::Snapshot& snapshot() {
  static std::shared_ptr<const spamgate::Snapshot> snap = [] {
    std::vector<spamgate::Diagnostic> d;
    auto s = spamgate::load_snapshot(std::string(SPAMGATE_SOURCE_DIR) + "/conf/spamgate.toml", d);
    if (!s.ok()) __builtin_trap();
    return s.value();
  }();
  return *snap;
}

}  // namespace

// The snapshot is loaded before the first input, outside its -timeout.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)snapshot();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  spamgate::Handled h = spamgate::handle_message(snapshot(), bytes, spamgate::Envelope{}, spamgate::Sender{},
                                                 spamgate::OutboundMode::kLookUp, "fuzz");
  std::string out = spamgate::apply_plan(bytes, h.disposition.plan);
  // The rewriter only edits headers: the body is handed on byte for byte.
  spamgate::HeaderBlock hb = spamgate::split_header_block(bytes, static_cast<std::size_t>(-1));
  std::string_view body = bytes.substr(hb.body_offset);
  if (out.size() < body.size() || std::string_view(out).substr(out.size() - body.size()) != body) __builtin_trap();
  return 0;
}
