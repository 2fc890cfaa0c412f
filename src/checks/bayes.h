// bayes.h - the classifier as a check: tokens of the one parse, counts from
// the store, probability -> a BAYES_xx band symbol scored in rules/70_bayes.cf;
// and the logistic regression's weights from the same store -> an LR_xx band.
//
// Until the store holds [bayes] min_ham ham and min_spam spam messages the
// check emits only BAYES_UNTRAINED (score 0, for explain). The store is
// opened at construction and, when that fails (Redis down, disk), again at
// most every 30 s; meanwhile run() returns IOError and the pipeline applies
// the failure policy (continue by default). Thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>

#include "spamgate/bayes.h"
#include "spamgate/check.h"

namespace spamgate {

class BayesCheck final : public Check {
 public:
  explicit BayesCheck(BayesConfig cfg);
  std::string_view name() const override { return "bayes"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  static std::vector<SymbolDef> symbols();

  // The store, opening it if it is not open yet (null and `error` set when it
  // cannot be opened).
  std::shared_ptr<BayesStore> store(Status& error) const;
  const BayesConfig& config() const { return cfg_; }

 private:
  BayesConfig cfg_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<BayesStore> store_;
  mutable Status last_error_;
  mutable std::chrono::steady_clock::time_point next_try_{};
};

struct Message;
struct Snapshot;
// Learns `message` as `cls` in the snapshot's classifier store (the
// Disposition's autolearn, decided in disposition.cc). Logs what it did
// under `label`; a store failure is logged, never thrown. No-op when the
// snapshot has no classifier.
void bayes_learn(const Snapshot& snap, const Message& message, LearnClass cls, std::string_view label);
// The same, for a person's request (the console): what the store did, or
// Unavailable when the classifier is off or its store cannot be opened.
Result<LearnOutcome> bayes_learn_message(const Snapshot& snap, const Message& message, LearnClass cls);

// Symbol hits for a probability: the band, plus BAYES_999 at >= 0.999.
void bayes_hits(const BayesResult& r, std::vector<Hit>& hits);

// The logistic regression's band (LR_xx) for `m`, its detail naming the
// features that weighed most; nothing while the store has no weight for any
// of its features.
Status lr_hits(const BayesStore& store, const Message& m, const Tokens& tokens, std::vector<Hit>& hits);

}  // namespace spamgate
