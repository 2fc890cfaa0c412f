// verdict.cc - score_verdict(): the one place where hits become a score and a verdict.
#include "spamgate/verdict.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include <fmt/format.h>

#include "spamgate/snapshot.h"

namespace spamgate {

const char* action_name(Action a) {
  switch (a) {
    case Action::kAccept: return "accept";
    case Action::kTag: return "tag";
    case Action::kReject: return "reject";
    case Action::kTempfail: return "tempfail";
    case Action::kQuarantine: return "quarantine";
    case Action::kHold: return "hold";
    case Action::kSkip: return "skip";
  }
  return "accept";
}

std::string format_tenths(std::int64_t tenths) {
  std::int64_t a = tenths < 0 ? -tenths : tenths;
  std::string s = tenths < 0 ? "-" : "";
  s += std::to_string(a / 10);
  s.push_back('.');
  s.push_back(static_cast<char>('0' + a % 10));
  return s;
}

namespace {

// Rounds thousandths to tenths, halves away from zero.
std::int64_t millis_to_tenths(std::int64_t millis) {
  return millis >= 0 ? (millis + 50) / 100 : -((-millis + 50) / 100);
}

// What a classifier's band says, for the combination below.
struct Classifier {
  std::string name;  // the band's prefix: BAYES, LR
  double p = 0.0;
};

constexpr double kCallsSpam = 0.95;  // a classifier "calls it spam" from its 95 band up

// Issue 19, part 3: how the classifiers' bands combine with the rules, after
// the plain sum. `total` is the sum in thousandths, `rules` its part from
// everything but the classifiers. Adjusts `total` with a visible hit so the
// printed score and the decision still agree.
void combine_classifiers(const BayesConfig& cfg, const std::vector<Classifier>& cls, std::int64_t rules,
                         std::int64_t threshold_tenths, std::int64_t& total, std::vector<ScoredHit>& hits) {
  std::size_t callers = 0;
  const Classifier* caller = nullptr;
  for (const Classifier& c : cls)
    if (c.p >= kCallsSpam) ++callers, caller = &c;
  const std::int64_t at = threshold_tenths * 100;  // millis: exactly the threshold, not spam
  const bool spam = millis_to_tenths(total) > threshold_tenths;
  if (cfg.guard && spam && callers == 1 && rules <= 0 &&
      !(cfg.guard_unless < 1.0 && caller->p >= cfg.guard_unless)) {
    hits.push_back({"CLASSIFIER_GUARD", at - total,
                    fmt::format("the rules score it {:.1f} and only {} calls it spam (p={:.4f}): one classifier alone "
                                "does not tag it{}",
                                static_cast<double>(rules) / 1000.0, caller->name, caller->p,
                                cfg.guard_unless < 1.0 ? fmt::format(" below p={}", cfg.guard_unless) : "")});
    total = at;
  } else if (cfg.agree > 0.0 && !spam && cls.size() >= 2 && rules > -5000 &&  // agree >= kCallsSpam (config)
             std::all_of(cls.begin(), cls.end(), [&](const Classifier& c) { return c.p >= cfg.agree; })) {
    std::string who;
    for (const Classifier& c : cls) who += fmt::format("{}{} p={:.4f}", who.empty() ? "" : ", ", c.name, c.p);
    hits.push_back({"CLASSIFIERS_AGREE", at + 100 - total, "both classifiers call it spam (" + who + "): tagged"});
    total = at + 100;
  }
}

}  // namespace

Verdict score_verdict(const Snapshot& snap, const std::vector<Hit>& hits) {
  return score_verdict(snap, hits, snap.config.threshold_tenths);
}

Verdict score_verdict(const Snapshot& snap, const std::vector<Hit>& hits, std::int64_t threshold_tenths) {
  Verdict v;
  v.threshold_tenths = threshold_tenths;
  std::int64_t total = 0;
  std::unordered_set<std::string> seen;
  const Hit* forced = nullptr;  // the first hit that rejects the message
  std::vector<Classifier> classifiers;
  std::int64_t classifier_total = 0;
  for (const Hit& h : hits) {
    if (forced == nullptr && !h.reject_reply.empty()) forced = &h;
    if (!seen.insert(h.name).second) continue;  // a symbol counts once
    if (h.probability >= 0.0) {  // a classifier's band (BAYES_999 is Bayes's second)
      std::string name = h.name.substr(0, h.name.find('_'));
      auto it = std::find_if(classifiers.begin(), classifiers.end(), [&](const Classifier& c) { return c.name == name; });
      if (it == classifiers.end()) classifiers.push_back({std::move(name), h.probability});
    }
    std::int64_t weight = snap.symbols.score_millis(h.name);
    double factor = std::isfinite(h.factor) ? h.factor : 0.0;  // NaN/inf forced to 0
    std::int64_t score = std::llround(static_cast<double>(weight) * factor);
    // A forced action's symbol is listed even at score 0, so logs say why.
    if ((score == 0 && h.reject_reply.empty()) || h.name.rfind("__", 0) == 0) continue;
    total += score;
    if (h.probability >= 0.0) classifier_total += score;
    v.hits.push_back({h.name, score, h.detail});
  }
  v.rules_millis = total - classifier_total;
  if (!classifiers.empty())
    combine_classifiers(snap.config.bayes, classifiers, total - classifier_total, threshold_tenths, total, v.hits);
  std::sort(v.hits.begin(), v.hits.end(),
            [](const ScoredHit& a, const ScoredHit& b) { return a.name < b.name; });
  v.score_tenths = millis_to_tenths(total);
  v.spam = v.score_tenths > v.threshold_tenths;
  v.action = v.spam ? Action::kTag : Action::kAccept;
  if (forced != nullptr) {  // a forced action wins over the score (Rspamd's passthrough)
    v.action = Action::kReject;
    v.reply = forced->reject_reply;
  }
  return v;
}

}  // namespace spamgate
