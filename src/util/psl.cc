// psl.cc - registrable_domain() on libpsl (see psl.h).
#include "util/psl.h"

#include <libpsl.h>

#include <memory>

namespace spamgate {
namespace {

struct PslFree {
  void operator()(psl_ctx_t* p) const { psl_free(p); }
};

const psl_ctx_t* psl() {
  static std::unique_ptr<psl_ctx_t, PslFree> ctx(psl_latest(nullptr));
  return ctx.get();
}

}  // namespace

std::string registrable_domain(std::string_view host) {
  if (host.empty() || host.size() > 253) return std::string();
  std::string h(host);
  for (char& c : h) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  while (!h.empty() && h.back() == '.') h.pop_back();
  const psl_ctx_t* p = psl();
  if (p == nullptr) return std::string();
  const char* reg = psl_registrable_domain(p, h.c_str());
  return reg == nullptr ? std::string() : std::string(reg);
}

}  // namespace spamgate
