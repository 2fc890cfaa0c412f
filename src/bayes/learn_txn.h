// learn_txn.h - the learning rules every store applies inside its own
// transaction: a message is counted once, re-learning it as the other class
// moves it, forgetting removes it. Private to src/bayes.
#pragma once

#include <cstdint>
#include <optional>

#include "spamgate/bayes.h"

namespace spamgate::bayes_detail {

// One open write transaction of a store.
class LearnTxn {
 public:
  virtual ~LearnTxn() = default;
  virtual Status seen(const Digest& d, std::optional<LearnClass>& cls) = 0;
  virtual Status set_seen(const Digest& d, std::optional<LearnClass> cls) = 0;  // nullopt: delete
  // Adds `delta` (+1/-1) to the class count of `token` (never below zero;
  // a token whose counts both reach zero is removed).
  virtual Status add_token(std::uint64_t token, LearnClass cls, int delta) = 0;
  virtual Status add_messages(LearnClass cls, int delta) = 0;
  // The logistic regression's weights of `features` (same order) ...
  virtual Status weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) = 0;
  // ... and setting them to those weights (`current`, as weights() read them) plus `step`.
  virtual Status add_weights(const std::vector<std::uint32_t>& features, const std::vector<float>& current,
                             float step) = 0;
};

// Applies one item (of class item.cls, else `cls`); the caller commits or
// aborts the transaction.
Status apply_learn(LearnTxn& txn, const LearnItem& item, LearnClass cls, bool forget, LearnOutcome& outcome);

}  // namespace spamgate::bayes_detail
