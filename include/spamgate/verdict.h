// verdict.h - hits to a score and an action, decided in one place.
//
// Scores are summed in thousandths and the total is rounded to tenths before
// it is compared, so the printed score and the decision never disagree
// (5.04 prints as 5.0 and is not spam with threshold 5). Spam means strictly
// greater than the threshold. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spamgate/check.h"

namespace spamgate {

struct Snapshot;

enum class Action { kAccept, kTag, kReject, kTempfail };
const char* action_name(Action a);

struct ScoredHit {
  std::string name;
  std::int64_t score_millis = 0;
  std::string detail;
};

struct Verdict {
  std::int64_t score_tenths = 0;
  std::int64_t threshold_tenths = 50;
  bool spam = false;
  Action action = Action::kAccept;
  std::vector<ScoredHit> hits;  // symbols that count: non-zero score, not "__" sub-rules; by name
  std::string reply;            // SMTP reply text for kReject / kTempfail
};

Verdict decide(const Snapshot& snap, const std::vector<Hit>& hits);

// 72 -> "7.2", -959 -> "-95.9", -5 -> "-0.5", 0 -> "0.0".
std::string format_tenths(std::int64_t tenths);

}  // namespace spamgate
