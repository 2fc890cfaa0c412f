// online_lr.cc - the logistic regression's features, its update rule and
// the in-memory model of eval (see bayes.h, online_lr.h).
#include "bayes/online_lr.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "spamgate/message.h"

namespace spamgate {

namespace {

constexpr std::uint32_t kLrMask = (1u << kLrBits) - 1u;

std::uint32_t token_feature(std::uint64_t h) {
  // Spread so that token and gram features rarely share a weight.
  return static_cast<std::uint32_t>((h ^ (h >> 32)) & kLrMask);
}

// The first kMaxGramBytes of the text, ASCII lower-cased, white space runs as one space.
std::string gram_text(const Message& m) {
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
  return text;
}

// Fibonacci hashing of the 4 bytes (the top kLrBits bits of a 64-bit
// multiply): a tenth of XXH3's cost on 8,000 grams a message.
std::uint32_t gram_feature(const std::string& text, std::size_t i) {
  std::uint32_t x;
  std::memcpy(&x, text.data() + i, 4);
  return static_cast<std::uint32_t>(((x ^ 0x4752414dull) * 0x9E3779B97F4A7C15ull) >> (64 - kLrBits));  // "GRAM"
}

}  // namespace

std::vector<std::uint32_t> lr_features(const Message& m, const Tokens& tokens, LrOrigins* origins) {
  // Distinct through a bitmap of every index (512 KiB a thread), cleared
  // again after; not sorted (a scan sums them in any order; learn_item sorts).
  thread_local std::vector<std::uint64_t> seen((std::size_t{1} << kLrBits) / 64, 0);
  std::string text = gram_text(m);
  std::vector<std::uint32_t> out;
  out.reserve(tokens.hashes.size() + text.size());
  if (origins != nullptr) origins->of.reserve(out.capacity());
  auto add = [&](std::uint32_t f, std::size_t origin) {
    std::uint64_t& word = seen[f >> 6];
    const std::uint64_t bit = std::uint64_t{1} << (f & 63);
    if ((word & bit) == 0) {
      word |= bit;
      out.push_back(f);
      if (origins != nullptr) origins->of.push_back(static_cast<std::uint32_t>(origin));
    }
  };
  for (std::size_t i = 0; i < tokens.hashes.size(); ++i) add(token_feature(tokens.hashes[i]), i);
  for (std::size_t i = 0; i + 4 <= text.size(); ++i) add(gram_feature(text, i), tokens.hashes.size() + i);
  for (std::uint32_t f : out) seen[f >> 6] = 0;  // clean for the next message
  if (origins != nullptr) {
    origins->tokens = tokens.hashes.size();
    origins->grams = std::move(text);
  }
  return out;
}

std::string lr_feature_name(const LrOrigins& origins, const Tokens& tokens, std::size_t i) {
  if (i >= origins.of.size()) return "?";
  const std::size_t o = origins.of[i];
  if (o < origins.tokens) return std::string(tokens.text_of(o));
  return "'" + origins.grams.substr(o - origins.tokens, 4) + "'";
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
