// pipeline.h - message -> checks -> verdict -> disposition, the same for
// every mode.
//
// scan_message() parses the bytes once, runs the snapshot's checks in order
// (a failing check is recorded and skipped; the message goes on) and scores
// the verdict. handle_message() is what the milter and `scan` both run for
// one message: the sender policy, the scan, the outbound step and decide()
// (disposition.h). Only their inputs differ (the milter's buffered message
// and session, `scan`'s file and --client-ip/--login/... options) and what
// they do with the Disposition. Thread-safe for concurrent calls.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/check.h"
#include "spamgate/disposition.h"
#include "spamgate/history.h"
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
  HeaderCensus census;    // the fields to remove, counted over the whole header block
  std::vector<CheckError> check_errors;  // checks that failed (their other hits still count)
  std::vector<std::pair<std::string, std::string>> prepend_headers;  // asked for by checks, A-R first
  AuthResults auth;                       // SPF, DKIM, DMARC (also in Authentication-Results)
  double ms = 0;                          // wall time of the whole scan
  std::string reference;                  // ScanExtras::reference
};

// What the milter hands over besides the bytes; `scan` gives none of it.
struct ScanExtras {
  // The size of the whole message when `bytes` holds only its first max_scan_bytes.
  std::optional<std::size_t> total_size;
  // A DKIM verifier the caller fed with the whole message; without one,
  // DKIM reads `bytes`.
  DkimVerifier* dkim = nullptr;
  // The spooled message for the malware scan (past max_scan_bytes).
  const AvInput* av = nullptr;
  // The fields to remove, counted by the caller over the whole header block
  // as headers streamed in; null: counted here from `bytes`, which then
  // holds the whole header block.
  const HeaderCensus* census = nullptr;
  // The verdict history reference of this message ("" = none): written into
  // X-Spam-Technical-Details as [history] reference says.
  std::string reference;
  // When the message's DNS lookups must end. A message has one DNS budget
  // ([dns] budget_ms): a caller that already spent part of it (the milter's
  // DKIM key lookups at end of headers) passes what is left; without one
  // the whole budget starts now.
  std::optional<std::chrono::steady_clock::time_point> dns_deadline;
};

// Authentication-Results is prepended when an authentication check ran.
ScanResult scan_message(const Snapshot& snap, std::string_view bytes, const Envelope& env,
                        const ScanExtras& extras = {});

// An empty census under `snap`'s settings: our authserv-id, the outbound tag
// header (when the outbound guard is on) and limits.max_header_deletions.
HeaderCensus make_census(const Snapshot& snap);

// Whether the outbound step counts the message in the guard's store (the
// milter) or only looks its sender up (a replay: `scan` never changes a
// sender's counts, so a message that would make a new hold shows as counted).
enum class OutboundMode { kCount, kLookUp };

// The outbound guard's part for the message `scan` of `sender` (class not
// inbound): its sender's hold, or its count and the hold it makes; the
// sender tag. Logs a new hold and store failures under `label`.
OutboundResult outbound_step(const Snapshot& snap, const Envelope& env, const Sender& sender, const ScanResult& scan,
                             OutboundMode mode, std::string_view label);

// The recipients of `env` grouped by their settings (snap.recipients), in
// RCPT order; empty when none has settings of its own.
std::vector<RecipientGroup> recipient_groups(const Snapshot& snap, const Envelope& env);

// One message through the whole pipeline.
struct Handled {
  std::optional<ScanResult> scan;  // empty when the sender policy is skip
  Disposition disposition;
};
// `census` as in ScanExtras (used for a skipped message too).
Handled handle_message(const Snapshot& snap, std::string_view bytes, const Envelope& env, const Sender& sender,
                       OutboundMode mode, std::string_view label, const ScanExtras& extras = {});

// The Disposition's after-effects, for the milter once the MTA took the
// answer: autolearn, the metrics outcome, the held message's queue id
// (`quarantined`: the MTA accepted the quarantine). Failures are logged.
void run_after_effects(const Snapshot& snap, const Handled& h, std::string_view label, bool quarantined);

// The verdict history record of `h` (history.h): envelope, sender class,
// headers, score, action and reply, each scored rule with its matched text.
HistoryRecord history_record(const Handled& h, const Envelope& env, const Sender& sender, std::string ref,
                             std::uint64_t size, std::int64_t time);

// Logs the one line for `h`: `label` (queue id or file), then `context`
// (e.g. client and envelope), Message-ID, score, action, reply, tests, ms.
// Check errors are logged as warnings with the same label.
void log_verdict(const Handled& h, std::string_view label, std::string_view context = {});

// Scans every message of snap.config.rules_canary_dirs (known-good mail)
// with `snap`'s rules, as `scan` would with no network. Ok when none scores
// over the threshold; else InvalidArgument, and `problems` gets one line per
// flagged message naming it, its score and the rules that hit it (heaviest
// first, with the file:line of each). A missing directory is NotFound.
Status run_rules_canary(const Snapshot& snap, std::vector<std::string>& problems);

}  // namespace spamgate
