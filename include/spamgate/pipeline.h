// pipeline.h - message -> checks -> verdict -> plan, the same for every mode.
//
// scan_message() parses the bytes once, runs the snapshot's checks in order
// (a failing check is logged and skipped; the message goes on), decides the
// verdict and plans the actions. Thread-safe for concurrent calls.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "spamgate/actions.h"
#include "spamgate/check.h"
#include "spamgate/message.h"
#include "spamgate/snapshot.h"
#include "spamgate/verdict.h"

namespace spamgate {

struct ScanResult {
  Message message;
  std::vector<Hit> hits;  // every hit, sub-rules included
  Verdict verdict;
  Plan plan;
  std::vector<std::string> check_errors;  // "check: message" for checks that failed
  double ms = 0;                          // wall time of the whole scan
};

// `total_size` is the size of the whole message when `bytes` holds only its
// first max_scan_bytes.
ScanResult scan_message(const Snapshot& snap, std::string_view bytes, const Envelope& env,
                        std::optional<std::size_t> total_size = std::nullopt);

// Logs the one verdict line for `r` (Message-ID, score, action, tests, ms).
void log_verdict(const ScanResult& r, std::string_view label);

}  // namespace spamgate
