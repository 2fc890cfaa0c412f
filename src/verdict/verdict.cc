// verdict.cc - score_verdict(): the one place where hits become a score and a verdict.
#include "spamgate/verdict.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

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

}  // namespace

Verdict score_verdict(const Snapshot& snap, const std::vector<Hit>& hits) {
  Verdict v;
  v.threshold_tenths = snap.config.threshold_tenths;
  std::int64_t total = 0;
  std::unordered_set<std::string> seen;
  const Hit* forced = nullptr;  // the first hit that rejects the message
  for (const Hit& h : hits) {
    if (forced == nullptr && !h.reject_reply.empty()) forced = &h;
    if (!seen.insert(h.name).second) continue;  // a symbol counts once
    std::int64_t weight = snap.symbols.score_millis(h.name);
    double factor = std::isfinite(h.factor) ? h.factor : 0.0;  // NaN/inf forced to 0
    std::int64_t score = std::llround(static_cast<double>(weight) * factor);
    // A forced action's symbol is listed even at score 0, so logs say why.
    if ((score == 0 && h.reject_reply.empty()) || h.name.rfind("__", 0) == 0) continue;
    total += score;
    v.hits.push_back({h.name, score, h.detail});
  }
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
