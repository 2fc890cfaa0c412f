// verdict.h - hits to a score and an action, decided in one place.
//
// Scores are summed in thousandths and the total is rounded to tenths before
// it is compared, so the printed score and the decision never disagree
// (5.04 prints as 5.0 and is not spam with threshold 5). Spam means strictly
// greater than the threshold. The classifiers' bands then combine with the
// rules ([bayes] guard / agree, bayes.h): one classifier alone does not tag a
// message the rules call clean unless it is extreme (CLASSIFIER_GUARD), and
// a message both call spam is tagged (CLASSIFIERS_AGREE); each shows as a
// hit whose score moves the total to just at or over the threshold.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spamgate/check.h"

namespace spamgate {

struct Snapshot;

// What happens to a message. A Verdict holds only kAccept, kTag or kReject
// (the score and forced actions); the Disposition (disposition.h) any.
enum class Action {
  kAccept,      // delivered (our fields added or, under policy log, only the forged ones removed)
  kTag,         // delivered as spam: Subject tagged
  kReject,      // 550 5.7.1 (malware, a forced reject)
  kTempfail,    // 451 4.7.1: a check failed and its policy is tempfail
  kQuarantine,  // delivered into the MTA's hold queue (outbound hold)
  kHold,        // 451 4.7.1: the sender is held (outbound hold)
  kSkip,        // not scanned (sender policy skip)
};
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
  // The score without the classifiers (their bands, the guard, the
  // agreement), in thousandths: what autolearn judges a message by.
  std::int64_t rules_millis = 0;
  std::string reply;            // SMTP reply text for kReject / kTempfail
};

Verdict score_verdict(const Snapshot& snap, const std::vector<Hit>& hits);

// The same under another threshold: a recipient's own (recipients.h), the
// classifiers' guard and agreement (above) judged against it too.
Verdict score_verdict(const Snapshot& snap, const std::vector<Hit>& hits, std::int64_t threshold_tenths);

// 72 -> "7.2", -959 -> "-95.9", -5 -> "-0.5", 0 -> "0.0".
std::string format_tenths(std::int64_t tenths);

}  // namespace spamgate
