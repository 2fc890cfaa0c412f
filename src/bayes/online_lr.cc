// online_lr.cc - the logistic regression's features, its update rule and
// the in-memory model of eval (see bayes.h, online_lr.h).
#include "bayes/online_lr.h"

#include <algorithm>
#include <cmath>

#include "spamgate/message.h"

namespace spamgate {

namespace {

constexpr std::uint32_t kLrMask = (1u << kLrBits) - 1u;

std::uint32_t token_feature(std::uint64_t h) {
  // Spread so that token and gram features rarely share a weight.
  return static_cast<std::uint32_t>((h ^ (h >> 32)) & kLrMask);
}

// Calls gram(window) for each 4-gram of the first kMaxGramBytes of the text,
// ASCII lower-cased, white space runs as one space; `window` holds its 4
// bytes, the first in the low byte (as a little-endian load of them).
template <typename Gram>
void for_each_gram(const Message& m, Gram&& gram) {
  std::uint32_t window = 0;
  std::size_t n = 0;  // bytes of the folded text so far
  unsigned char last = ' ';
  for (unsigned char c : m.text) {
    if (n >= kMaxGramBytes) break;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (n == 0 || last == ' ') continue;
      c = ' ';
    } else if (c >= 'A' && c <= 'Z') {
      c = static_cast<unsigned char>(c - 'A' + 'a');
    }
    last = c;
    window = (window >> 8) | (static_cast<std::uint32_t>(c) << 24);
    if (++n >= 4) gram(window);
  }
}

// Fibonacci hashing of the 4 bytes (the top kLrBits bits of a 64-bit
// multiply): a tenth of XXH3's cost on 8,000 grams a message.
std::uint32_t gram_feature(std::uint32_t window) {
  return static_cast<std::uint32_t>(((window ^ 0x4752414dull) * 0x9E3779B97F4A7C15ull) >> (64 - kLrBits));  // "GRAM"
}

}  // namespace

std::vector<std::uint32_t> lr_features(const Message& m, const Tokens& tokens, LrOrigins* origins) {
  // Distinct through a small open-addressing set (at most half full, ~64
  // KiB for a long message: it stays in the CPU cache, where a bitmap of
  // every index did not).
  const std::size_t most = tokens.hashes.size() + std::min(m.text.size(), kMaxGramBytes);
  std::size_t cap = 64;
  while (cap < 2 * most) cap <<= 1;
  thread_local std::vector<std::uint32_t> set;
  constexpr std::uint32_t kEmpty = 0xffffffffu;  // no feature index is this large
  set.assign(cap, kEmpty);
  const std::size_t mask = cap - 1;
  std::vector<std::uint32_t> out;
  out.reserve(most);
  if (origins != nullptr) origins->of.reserve(most);
  auto add = [&](std::uint32_t f, std::uint64_t origin) {
    std::size_t i = (f * 0x9E3779B1u) & mask;
    while (set[i] != kEmpty) {
      if (set[i] == f) return;
      i = (i + 1) & mask;
    }
    set[i] = f;
    out.push_back(f);
    if (origins != nullptr) origins->of.push_back(origin);
  };
  for (std::size_t i = 0; i < tokens.hashes.size(); ++i) add(token_feature(tokens.hashes[i]), i);
  for_each_gram(m, [&](std::uint32_t window) { add(gram_feature(window), LrOrigins::kGram | window); });
  return out;
}

std::string lr_feature_name(const LrOrigins& origins, const Tokens& tokens, std::size_t i) {
  if (i >= origins.of.size()) return "?";
  const std::uint64_t o = origins.of[i];
  if ((o & LrOrigins::kGram) == 0) return o < tokens.size() ? std::string(tokens.text_of(o)) : "?";
  std::string gram = "'....'";
  for (int b = 0; b < 4; ++b) gram[1 + b] = static_cast<char>((o >> (8 * b)) & 0xff);
  return gram;
}

double lr_probability(const std::vector<float>& weights) {
  double sum = 0;
  for (float w : weights) sum += w;
  return 1.0 / (1.0 + std::exp(-sum));
}

float lr_train_step(double p, LearnClass cls) {
  const bool spam = cls == LearnClass::kSpam;
  if (spam ? p >= 0.5 + kLrMargin : p <= 0.5 - kLrMargin) return 0.0f;  // right, and clearly so
  return static_cast<float>(kLrRate * ((spam ? 1.0 : 0.0) - p));
}

std::vector<float> OnlineLogistic::weights_of(const std::vector<std::uint32_t>& features) const {
  std::vector<float> w;
  w.reserve(features.size());
  for (std::uint32_t f : features) w.push_back(w_[f & kLrMask]);
  return w;
}

double OnlineLogistic::probability(const std::vector<std::uint32_t>& features) const {
  return lr_probability(weights_of(features));
}

bool OnlineLogistic::train(const std::vector<std::uint32_t>& features, bool spam) {
  const float step = lr_train_step(probability(features), spam ? LearnClass::kSpam : LearnClass::kHam);
  if (step == 0.0f) return false;
  for (std::uint32_t f : features) w_[f & kLrMask] += step;
  return true;
}

}  // namespace spamgate
