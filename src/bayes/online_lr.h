// online_lr.h - the logistic regression held in memory, for `spamgate eval`'s
// folds (the product's weights live in the Bayes store: bayes.h's lr_*
// functions train and score both the same way).
//
// Thread-safety: an OnlineLogistic is not thread-safe (train() writes;
// probability() only reads and may run in many threads while nothing trains).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "spamgate/bayes.h"

namespace spamgate {

inline constexpr std::size_t kMaxGramBytes = 8 * 1024;

class OnlineLogistic {
 public:
  OnlineLogistic() : w_(std::size_t{1} << kLrBits, 0.0f) {}

  // The probability that a message with these features (lr_features()) is spam.
  double probability(const std::vector<std::uint32_t>& features) const;
  // Trains on one message if it is misclassified or too close to the
  // threshold (lr_train_step()). Returns whether it updated.
  bool train(const std::vector<std::uint32_t>& features, bool spam);

 private:
  std::vector<float> weights_of(const std::vector<std::uint32_t>& features) const;
  std::vector<float> w_;
};

}  // namespace spamgate
