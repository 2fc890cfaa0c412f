// pipeline.h - message -> checks -> verdict -> plan, the same for every mode.
//
// scan_message() parses the bytes once, runs the snapshot's checks in order
// (a failing check is logged and skipped; the message goes on), decides the
// verdict and plans the actions. Thread-safe for concurrent calls.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/actions.h"
#include "spamgate/check.h"
#include "spamgate/message.h"
#include "spamgate/snapshot.h"
#include "spamgate/verdict.h"

namespace spamgate {

struct CheckError {
  std::string check;    // Check::name()
  std::string message;  // what went wrong
  // A dependency known to be down was not tried (Status::Unavailable): the
  // verdict line names the check; no warning per message.
  bool unavailable = false;
};

struct ScanResult {
  Message message;
  std::vector<Hit> hits;  // every hit, sub-rules included
  Verdict verdict;
  Plan plan;
  std::vector<CheckError> check_errors;  // checks that failed (their other hits still count)
  std::vector<std::pair<std::string, std::string>> prepend_headers;  // asked for by checks
  AuthResults auth;                       // SPF, DKIM, DMARC (also in Authentication-Results)
  double ms = 0;                          // wall time of the whole scan
};

// `total_size` is the size of the whole message when `bytes` holds only its
// first max_scan_bytes. `dkim`: a verifier the caller fed with the whole
// message (the milter); without one, DKIM reads `bytes`.
// `av`: the spooled message for the malware scan (the milter, past
// max_scan_bytes). Authentication-Results is prepended when an
// authentication check ran.
// `census`: the fields to remove, counted by the caller over the whole
// header block (the milter, as headers stream in); null: counted here from
// `bytes`, which then holds the whole header block (`scan`).
// `dns_deadline`: when the message's DNS lookups must end. A message has one
// DNS budget ([dns] budget_ms): a caller that already spent part of it (the
// milter's DKIM key lookups at end of headers) passes what is left; without
// one the whole budget starts now.
ScanResult scan_message(const Snapshot& snap, std::string_view bytes, const Envelope& env,
                        std::optional<std::size_t> total_size = std::nullopt, const PlanOptions& opts = {},
                        DkimVerifier* dkim = nullptr, const AvInput* av = nullptr,
                        const HeaderCensus* census = nullptr,
                        std::optional<std::chrono::steady_clock::time_point> dns_deadline = std::nullopt);

// An empty census under `snap`'s settings: our authserv-id, the outbound tag
// header (when the outbound guard is on) and limits.max_header_deletions.
HeaderCensus make_census(const Snapshot& snap);

// Logs the one verdict line for `r`: `label` (queue id or file), then
// `context` (e.g. client and envelope), Message-ID, score, action, tests, ms.
// Check errors are logged as warnings with the same label.
void log_verdict(const ScanResult& r, std::string_view label, std::string_view context = {});

}  // namespace spamgate
