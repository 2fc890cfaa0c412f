// online_lr.h - a discriminative classifier beside Bayes: logistic
// regression over hashed sparse binary features, trained online on errors
// and near-misses (a "thick threshold", the family that won the TREC spam
// tracks: Goodman & Yih 2006, Sculley & Wachman 2007).
//
// Features of a message: its Bayes tokens (words and word pairs of the text
// and of the configured header fields, bayes.h) and the character 4-grams of
// its decoded text (at most kMaxGramBytes), each hashed into 2^bits weights.
//
// Status: measured by `spamgate eval` (cross-validated on the same
// near-duplicate clusters as Bayes); not yet stored, learned or scored by the
// milter (issue 19, part 2).
//
// Thread-safety: features() is thread-safe; an OnlineLogistic is not
// (train() writes; score() only reads and may run in many threads at once
// while nothing trains).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "spamgate/bayes.h"
#include "spamgate/message.h"

namespace spamgate {

inline constexpr std::size_t kMaxGramBytes = 8 * 1024;

// The distinct feature indexes (< 2^bits) of a message, sorted.
std::vector<std::uint32_t> lr_features(const Message& m, const Tokens& tokens, unsigned bits);

class OnlineLogistic {
 public:
  // 2^bits weights (4 bytes each: 16 MiB at 22 bits). `rate`: the step of an
  // update; `margin`: a message is trained on while its probability is
  // within `margin` of the wrong side (0.5 + margin for spam).
  explicit OnlineLogistic(unsigned bits = 22, float rate = 0.01f, float margin = 0.3f);

  // The probability that a message with these features is spam.
  double probability(const std::vector<std::uint32_t>& features) const;
  // Trains on one message if it is misclassified or too close to the
  // threshold. Returns whether it updated.
  bool train(const std::vector<std::uint32_t>& features, bool spam);
  unsigned bits() const { return bits_; }

 private:
  double raw(const std::vector<std::uint32_t>& features) const;
  unsigned bits_;
  float rate_, margin_;
  std::vector<float> w_;
};

}  // namespace spamgate
