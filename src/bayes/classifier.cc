// classifier.cc - token counts -> probability of spam; the learning rules;
// the in-memory store.
//
// Combining: Gary Robinson's f(w) (a token's spam probability, shrunk toward
// x = 0.5 with strength s = 0.45 while it has been seen only a few times),
// then Fisher's method: the 150 strongest tokens (|f - 0.5| >= 0.1) are
// combined with the inverse chi-squared function into a spam indication S and
// a ham indication H, and the probability is (1 + S - H) / 2. The constants
// are SpamBayes's defaults, tuned there on large real collections. Unlike
// Graham's naive product, the result stays near 0.5 when the evidence is
// mixed (S and H both high), so "unsure" is an answer and not a coin flip.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "bayes/learn_txn.h"
#include "bayes/stores.h"
#include "spamgate/bayes.h"
#include "spamgate/state_store.h"

namespace spamgate {

namespace {

constexpr double kUnknownWordStrength = 0.45;  // s
constexpr double kUnknownWordProb = 0.5;       // x
constexpr double kMinProbStrength = 0.1;
constexpr std::size_t kMaxDiscriminators = 150;

// Survival function of chi-squared with `v` (even) degrees of freedom at x2.
double chi2q(double x2, std::size_t v) {
  double m = x2 / 2.0;
  double term = std::exp(-m);
  double sum = term;
  for (std::size_t i = 1; i < v / 2; ++i) {
    term *= m / static_cast<double>(i);
    sum += term;
  }
  return std::min(sum, 1.0);
}

}  // namespace

namespace {

// The bands' lower edges (SpamAssassin's BAYES_xx).
constexpr double kBandEdges[] = {0.01, 0.05, 0.20, 0.40, 0.60, 0.80, 0.95, 0.99};

std::size_t band_of(double p) {
  std::size_t i = 0;
  while (i < std::size(kBandEdges) && p >= kBandEdges[i]) ++i;
  return i;
}

}  // namespace

const char* bayes_band(double p) {
  static const char* const names[] = {"BAYES_00", "BAYES_05", "BAYES_20", "BAYES_40", "BAYES_50",
                                      "BAYES_60", "BAYES_80", "BAYES_95", "BAYES_99"};
  return names[band_of(p)];
}

const char* lr_band(double p) {
  static const char* const names[] = {"LR_00", "LR_05", "LR_20", "LR_40", "LR_50", "LR_60", "LR_80", "LR_95", "LR_99"};
  return names[band_of(p)];
}

const char* learn_outcome_name(LearnOutcome o) {
  switch (o) {
    case LearnOutcome::kLearned: return "learned";
    case LearnOutcome::kAlready: return "already learned";
    case LearnOutcome::kMoved: return "moved";
    case LearnOutcome::kForgotten: return "forgotten";
    case LearnOutcome::kNotFound: return "not learned";
  }
  return "?";
}

BayesResult combine(const std::vector<TokenCounts>& counts, const StoreTotals& totals, const BayesConfig& cfg,
                    const Tokens* tokens, std::size_t strongest) {
  BayesResult r;
  r.totals = totals;
  r.ready = totals.ham >= static_cast<std::uint64_t>(cfg.min_ham) &&
            totals.spam >= static_cast<std::uint64_t>(cfg.min_spam) && totals.ham > 0 && totals.spam > 0;
  if (!r.ready) return r;
  const double ns = static_cast<double>(totals.spam);
  const double nh = static_cast<double>(totals.ham);
  struct Clue {
    double f;
    double strength;
    std::size_t index;
  };
  std::vector<Clue> clues;
  clues.reserve(counts.size());
  for (std::size_t i = 0; i < counts.size(); ++i) {
    double s = counts[i].spam;
    double h = counts[i].ham;
    if (s + h == 0) continue;
    double spamratio = s / ns;
    double hamratio = h / nh;
    double p = spamratio / (spamratio + hamratio);
    double n = s + h;
    double f = (kUnknownWordStrength * kUnknownWordProb + n * p) / (kUnknownWordStrength + n);
    double strength = std::fabs(f - 0.5);
    if (strength < kMinProbStrength) continue;
    clues.push_back({f, strength, i});
  }
  // The strongest, strongest first; ties by token order so the answer is
  // deterministic. Only the 150 kept are sorted.
  auto stronger = [](const Clue& a, const Clue& b) {
    return a.strength != b.strength ? a.strength > b.strength : a.index < b.index;
  };
  if (clues.size() > kMaxDiscriminators) {
    std::nth_element(clues.begin(), clues.begin() + kMaxDiscriminators, clues.end(), stronger);
    clues.resize(kMaxDiscriminators);
  }
  std::sort(clues.begin(), clues.end(), stronger);
  r.tokens_used = clues.size();
  if (clues.empty()) return r;
  double sum_ln_f = 0, sum_ln_1f = 0;
  for (const Clue& c : clues) {
    sum_ln_f += std::log(c.f);
    sum_ln_1f += std::log1p(-c.f);
  }
  const std::size_t v = 2 * clues.size();
  double S = 1.0 - chi2q(-2.0 * sum_ln_1f, v);  // spam indication
  double H = 1.0 - chi2q(-2.0 * sum_ln_f, v);   // ham indication
  r.probability = std::clamp((S - H + 1.0) / 2.0, 0.0, 1.0);
  for (std::size_t i = 0; tokens != nullptr && i < clues.size() && i < strongest; ++i)
    if (clues[i].index < tokens->size()) r.strongest.emplace_back(std::string(tokens->text_of(clues[i].index)), clues[i].f);
  return r;
}

LearnItem learn_item(const Message& m, const BayesConfig& cfg, bool lr) {
  LearnItem item;
  item.digest = message_digest(m);
  Tokens tokens = tokenize(m, cfg);
  if (lr && cfg.logistic) {
    item.features = lr_features(m, tokens);
    std::sort(item.features.begin(), item.features.end());  // the stores write them in key order
  }
  item.tokens = std::move(tokens.hashes);
  return item;
}

namespace bayes_detail {

Status apply_learn(LearnTxn& txn, const LearnItem& item, LearnClass call_cls, bool forget, LearnOutcome& outcome) {
  const LearnClass cls = item.cls.value_or(call_cls);
  std::optional<LearnClass> was;
  if (Status s = txn.seen(item.digest, was); !s.ok()) return s;
  auto count = [&](LearnClass c, int delta) -> Status {
    for (std::uint64_t t : item.tokens)
      if (Status s = txn.add_token(t, c, delta); !s.ok()) return s;
    return txn.add_messages(c, delta);
  };
  if (forget) {
    if (!was) {
      outcome = LearnOutcome::kNotFound;
      return Status::Ok();
    }
    if (Status s = count(*was, -1); !s.ok()) return s;
    outcome = LearnOutcome::kForgotten;
    return txn.set_seen(item.digest, std::nullopt);
  }
  if (was && *was == cls) {
    outcome = LearnOutcome::kAlready;
    return Status::Ok();
  }
  if (was) {
    if (Status s = count(*was, -1); !s.ok()) return s;
    outcome = LearnOutcome::kMoved;
  } else {
    outcome = LearnOutcome::kLearned;
  }
  if (Status s = count(cls, +1); !s.ok()) return s;
  if (!item.features.empty()) {  // the logistic regression, on an error or a near miss
    std::vector<float> w;
    if (Status s = txn.weights(item.features, w); !s.ok()) return s;
    if (float step = lr_train_step(lr_probability(w), cls); step != 0.0f)
      if (Status s = txn.add_weights(item.features, w, step); !s.ok()) return s;
  }
  return txn.set_seen(item.digest, cls);
}

}  // namespace bayes_detail

namespace {

class MemoryStore final : public BayesStore, private bayes_detail::LearnTxn {
 public:
  std::string describe() const override { return "memory"; }

  Status lookup(const std::vector<std::uint64_t>& tokens, std::vector<TokenCounts>& counts,
                StoreTotals& totals) const override {
    std::shared_lock lock(mu_);
    counts.assign(tokens.size(), TokenCounts{});
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      auto it = tokens_.find(tokens[i]);
      if (it != tokens_.end()) counts[i] = it->second;
    }
    totals = totals_locked();
    return Status::Ok();
  }

  Status totals(StoreTotals& out) const override {
    std::shared_lock lock(mu_);
    out = totals_locked();
    return Status::Ok();
  }

  Status lookup_weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) const override {
    std::shared_lock lock(mu_);
    read_weights(features, out);
    return Status::Ok();
  }

  Status learn(const std::vector<LearnItem>& items, LearnClass cls, bool forget,
               std::vector<LearnOutcome>& outcomes) override {
    std::unique_lock lock(mu_);
    outcomes.assign(items.size(), LearnOutcome::kAlready);
    for (std::size_t i = 0; i < items.size(); ++i)
      if (Status s = bayes_detail::apply_learn(*this, items[i], cls, forget, outcomes[i]); !s.ok()) return s;
    return Status::Ok();
  }

 private:
  StoreTotals totals_locked() const {
    StoreTotals t = totals_;
    t.tokens = tokens_.size();
    return t;
  }
  Status seen(const Digest& d, std::optional<LearnClass>& cls) override {
    auto it = seen_.find(d);
    cls = it == seen_.end() ? std::nullopt : std::optional<LearnClass>(it->second);
    return Status::Ok();
  }
  Status set_seen(const Digest& d, std::optional<LearnClass> cls) override {
    if (cls) seen_[d] = *cls;
    else seen_.erase(d);
    return Status::Ok();
  }
  Status add_token(std::uint64_t token, LearnClass cls, int delta) override {
    TokenCounts& c = tokens_[token];
    std::uint32_t& n = cls == LearnClass::kSpam ? c.spam : c.ham;
    if (delta > 0) ++n;
    else if (n > 0) --n;
    if (c.spam == 0 && c.ham == 0) tokens_.erase(token);
    return Status::Ok();
  }
  Status add_messages(LearnClass cls, int delta) override {
    std::uint64_t& n = cls == LearnClass::kSpam ? totals_.spam : totals_.ham;
    if (delta > 0) ++n;
    else if (n > 0) --n;
    return Status::Ok();
  }
  void read_weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) const {
    out.assign(features.size(), 0.0f);
    for (std::size_t i = 0; i < features.size(); ++i)
      if (auto it = weights_.find(features[i]); it != weights_.end()) out[i] = it->second;
  }
  Status weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) override {
    read_weights(features, out);
    return Status::Ok();
  }
  Status add_weights(const std::vector<std::uint32_t>& features, const std::vector<float>& current,
                     float step) override {
    for (std::size_t i = 0; i < features.size(); ++i) weights_[features[i]] = current[i] + step;
    return Status::Ok();
  }

  mutable std::shared_mutex mu_;
  std::unordered_map<std::uint64_t, TokenCounts> tokens_;
  std::unordered_map<std::uint32_t, float> weights_;
  std::map<Digest, LearnClass> seen_;
  StoreTotals totals_;
};

}  // namespace

std::shared_ptr<BayesStore> make_memory_store() { return std::make_shared<MemoryStore>(); }

Result<std::shared_ptr<StateStore>> open_state_store(const BayesConfig& cfg) {
  auto r = open_bayes_store(cfg);
  if (!r.ok()) return r.status();
  std::shared_ptr<StateStore> s = std::dynamic_pointer_cast<StateStore>(r.value());
  if (!s) return Status::InvalidArgument("state: store \"" + cfg.store + "\" cannot keep state");
  return s;
}

Result<std::shared_ptr<BayesStore>> open_bayes_store(const BayesConfig& cfg) {
  if (cfg.store == "lmdb") return open_lmdb_store(cfg);
  if (cfg.store == "redis") return open_redis_store(cfg);
  return Status::InvalidArgument("bayes: unknown store \"" + cfg.store + "\" (lmdb or redis)");
}

}  // namespace spamgate
