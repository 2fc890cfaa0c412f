// text.cc - see text.h.
#include "util/text.h"

#include <algorithm>

namespace spamgate {

std::string clip(std::string_view text, std::size_t max) {
  std::string out;
  std::size_t n = std::min(text.size(), max);
  out.reserve(n + 3);
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c));
  }
  if (text.size() > max) out += "...";
  return out;
}

}  // namespace spamgate
