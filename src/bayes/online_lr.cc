// online_lr.cc - hashed features and the online logistic regression (see online_lr.h).
#include "bayes/online_lr.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>

namespace spamgate {

std::vector<std::uint32_t> lr_features(const Message& m, const Tokens& tokens, unsigned bits) {
  const std::uint32_t mask = (bits >= 32 ? 0xffffffffu : (1u << bits) - 1u);
  std::vector<std::uint32_t> out;
  out.reserve(tokens.hashes.size() + std::min(m.text.size(), kMaxGramBytes));
  // Tokens: their hash, spread so that token and gram features rarely share a weight.
  for (std::uint64_t h : tokens.hashes) out.push_back(static_cast<std::uint32_t>((h ^ (h >> 32)) & mask));
  // Character 4-grams of the text, ASCII lower-cased, white space runs as one space.
  std::string text;
  text.reserve(std::min(m.text.size(), kMaxGramBytes));
  for (unsigned char c : m.text) {
    if (text.size() >= kMaxGramBytes) break;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (!text.empty() && text.back() != ' ') text.push_back(' ');
      continue;
    }
    text.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
  }
  for (std::size_t i = 0; i + 4 <= text.size(); ++i) {
    const std::uint64_t h = XXH3_64bits_withSeed(text.data() + i, 4, 0x4752414d);  // "GRAM"
    out.push_back(static_cast<std::uint32_t>(h & mask));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

OnlineLogistic::OnlineLogistic(unsigned bits, float rate, float margin)
    : bits_(std::clamp(bits, 10u, 28u)), rate_(rate), margin_(margin), w_(std::size_t{1} << bits_, 0.0f) {}

double OnlineLogistic::raw(const std::vector<std::uint32_t>& features) const {
  double sum = 0;
  const std::uint32_t mask = static_cast<std::uint32_t>(w_.size() - 1);
  for (std::uint32_t f : features) sum += w_[f & mask];
  return sum;
}

double OnlineLogistic::probability(const std::vector<std::uint32_t>& features) const {
  return 1.0 / (1.0 + std::exp(-raw(features)));
}

bool OnlineLogistic::train(const std::vector<std::uint32_t>& features, bool spam) {
  const double p = probability(features);
  const double y = spam ? 1.0 : 0.0;
  if (spam ? p >= 0.5 + margin_ : p <= 0.5 - margin_) return false;  // right, and clearly so
  const float step = static_cast<float>(rate_ * (y - p));
  const std::uint32_t mask = static_cast<std::uint32_t>(w_.size() - 1);
  for (std::uint32_t f : features) w_[f & mask] += step;
  return true;
}

}  // namespace spamgate
