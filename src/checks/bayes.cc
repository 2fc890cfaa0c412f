// bayes.cc - BayesCheck (see bayes.h).
#include "checks/bayes.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "checks/builtin.h"
#include "spamgate/message.h"
#include "spamgate/snapshot.h"
#include "util/log.h"
#include "util/text.h"

namespace spamgate {

BayesCheck::BayesCheck(BayesConfig cfg) : cfg_(std::move(cfg)) {
  Status s;
  if (!store(s)) log().warn("bayes: the classifier is off until its store opens: {}", s.message());
}

std::shared_ptr<BayesStore> BayesCheck::store(Status& error) const {
  std::lock_guard lock(mu_);
  if (store_) return store_;
  auto now = std::chrono::steady_clock::now();
  if (now < next_try_) {
    error = last_error_;
    return nullptr;
  }
  auto r = open_bayes_store(cfg_);
  if (r.ok()) {
    store_ = r.value();
    return store_;
  }
  last_error_ = r.status();
  next_try_ = now + std::chrono::seconds(30);
  error = last_error_;
  return nullptr;
}

std::vector<SymbolDef> BayesCheck::symbols() {
  std::vector<SymbolDef> out;
  const char* bands[] = {"BAYES_00", "BAYES_05", "BAYES_20", "BAYES_40", "BAYES_50",
                         "BAYES_60", "BAYES_80", "BAYES_95", "BAYES_99", "BAYES_999"};
  const char* ranges[] = {"0-1%", "1-5%", "5-20%", "20-40%", "40-60%", "60-80%", "80-95%", "95-99%", "99-100%", "99.9-100%"};
  for (std::size_t i = 0; i < std::size(bands); ++i)
    out.push_back({bands[i], 0.0, fmt::format("Bayes spam probability is {}", ranges[i])});
  out.push_back({"BAYES_UNTRAINED", 0.0, "Bayes has not learned enough ham and spam to give a verdict"});
  const char* lr[] = {"LR_00", "LR_05", "LR_20", "LR_40", "LR_50", "LR_60", "LR_80", "LR_95", "LR_99"};
  for (std::size_t i = 0; i < std::size(lr); ++i)
    out.push_back({lr[i], 0.0, fmt::format("Logistic regression spam probability is {}", ranges[i])});
  // Scored by the verdict itself (score_verdict(), [bayes] guard / agree):
  // a score line for them changes nothing.
  out.push_back({"CLASSIFIER_GUARD", 0.0, "One classifier alone calls spam a message the rules call clean: not tagged"});
  out.push_back({"CLASSIFIERS_AGREE", 0.0, "Both classifiers call it spam: tagged"});
  return out;
}

void bayes_hits(const BayesResult& r, std::vector<Hit>& hits) {
  std::string detail = fmt::format("p={:.4f} from {} tokens", r.probability, r.tokens_used);
  for (std::size_t i = 0; i < r.strongest.size(); ++i)
    detail += fmt::format("{}{} {:.3f}", i == 0 ? "; strongest: " : ", ", clip(r.strongest[i].first, 40),
                          r.strongest[i].second);
  hits.emplace_back(bayes_band(r.probability), 1.0, detail).probability = r.probability;
  if (r.probability >= 0.999)
    hits.emplace_back("BAYES_999", 1.0, fmt::format("p={:.4f}", r.probability)).probability = r.probability;
}

Status BayesCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& /*side*/) const {
  Status err;
  std::shared_ptr<BayesStore> st = store(err);
  if (!st) return err;
  Tokens tokens = tokenize(ctx.message, cfg_, true);
  std::vector<TokenCounts> counts;
  StoreTotals totals;
  if (Status s = st->lookup(tokens.hashes, counts, totals); !s.ok()) return s;
  BayesResult r = combine(counts, totals, cfg_, &tokens, 8);
  if (!r.ready) {
    hits.emplace_back("BAYES_UNTRAINED", 1.0,
                      fmt::format("learned {} ham and {} spam; a verdict needs {} and {}", totals.ham, totals.spam,
                                  cfg_.min_ham, cfg_.min_spam));
    return Status::Ok();
  }
  bayes_hits(r, hits);
  return cfg_.logistic ? lr_hits(*st, ctx.message, tokens, hits) : Status::Ok();
}

Status lr_hits(const BayesStore& store, const Message& m, const Tokens& tokens, std::vector<Hit>& hits) {
  LrOrigins origins;
  const std::vector<std::uint32_t> features = lr_features(m, tokens, &origins);
  std::vector<float> w;
  if (Status s = store.lookup_weights(features, w); !s.ok()) return s;
  // The features that weighed most (explain), heaviest first.
  constexpr std::size_t kTop = 8;
  std::vector<std::size_t> top;
  auto heavier = [&](std::size_t a, std::size_t b) { return std::fabs(w[a]) > std::fabs(w[b]); };
  for (std::size_t i = 0; i < w.size(); ++i) {
    if (w[i] == 0.0f || (top.size() == kTop && !heavier(i, top.back()))) continue;
    if (top.size() == kTop) top.pop_back();
    top.insert(std::upper_bound(top.begin(), top.end(), i, heavier), i);
  }
  if (top.empty()) return Status::Ok();  // not trained yet (a store from before it, or no overlap)
  const double p = lr_probability(w);
  std::string detail = fmt::format("p={:.4f} from {} features", p, features.size());
  for (std::size_t i = 0; i < top.size(); ++i)
    detail += fmt::format("{}{} {:+.3f}", i == 0 ? "; heaviest: " : ", ",
                          clip(lr_feature_name(origins, tokens, top[i]), 40), w[top[i]]);
  hits.emplace_back(lr_band(p), 1.0, detail).probability = p;
  return Status::Ok();
}

Result<LearnOutcome> bayes_learn_message(const Snapshot& snap, const Message& message, LearnClass cls) {
  const BayesCheck* check = nullptr;
  for (const auto& c : snap.checks)
    if ((check = dynamic_cast<const BayesCheck*>(c.get())) != nullptr) break;
  if (check == nullptr) return Status::Unavailable("the classifier is off ([bayes] enabled = false)");
  Status err;
  std::shared_ptr<BayesStore> st = check->store(err);
  if (!st) return Status::Unavailable(err.ok() ? "the classifier's store cannot be opened" : err.message());
  LearnItem item = learn_item(message, snap.config.bayes);
  std::vector<LearnOutcome> out;
  if (Status s = st->learn({item}, cls, false, out); !s.ok()) return s;
  if (out.empty()) return Status::Internal("the store gave no outcome");
  return out[0];
}

void bayes_learn(const Snapshot& snap, const Message& message, LearnClass cls, std::string_view label) {
  const char* name = cls == LearnClass::kSpam ? "spam" : "ham";
  auto r = bayes_learn_message(snap, message, cls);
  if (!r.ok()) {
    // off, or a store the check already reported: only a failed learn is news
    if (r.status().code() != Status::Code::kUnavailable) log().warn("{}: bayes autolearn as {} failed: {}", label, name, r.status().message());
    return;
  }
  log().debug("{}: bayes autolearn: {} as {}", label, learn_outcome_name(r.value()), name);
}

}  // namespace spamgate
