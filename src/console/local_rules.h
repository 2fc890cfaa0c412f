// local_rules.h - the console's changes to the admin's local rules file
// (config.local_rules): what it proposes for a false positive, the lint of
// an edit against the running rules, and the save (atomic, never half a file).
#pragma once

#include <string>
#include <vector>

#include "spamgate/diagnostic.h"
#include "spamgate/history.h"
#include "spamgate/snapshot.h"
#include "spamgate/status.h"

namespace spamgate::console {

// Largest local file the console reads or writes.
inline constexpr std::size_t kMaxLocalRulesBytes = 1 << 20;

struct Proposal {
  std::string id;     // "welcomelist-recipients", "welcomelist-domain", "welcomelist-address", "score"
  std::string title;  // what it does, for the page
  std::string lines;  // the exact lines to append, each ending in '\n'
  // Where they go: the local rules (every customer), or the recipient
  // settings file (this message's recipients' domains only).
  bool settings = false;
};
// The id of the proposal for the recipient settings file.
inline constexpr const char* kRecipientsProposal = "welcomelist-recipients";

// What would keep this message untagged, narrowest first: with
// `with_settings` (a recipient_settings file is configured), welcomelist_auth
// of the sender's domain for the recipients' domains alone (at most 5), in
// the settings file; then, in the local file, welcomelist_auth for the
// sender's domain and for the address (counted only when SPF, DKIM or DMARC
// authenticates them), and the heaviest rule's score lowered just enough to
// bring the score under the threshold. Each starts with a comment naming
// the reference (or, without one, the Message-ID), `user` and the date.
std::vector<Proposal> false_positive_proposals(const HistoryRecord& r, const SymbolTable& symbols,
                                               const std::string& user, bool with_settings = false);

struct LintResult {
  std::vector<Diagnostic> errors;    // the load would refuse the rules
  std::vector<Diagnostic> warnings;  // of the local file only
};
// Parses the running rules with `content` as the local file, as a reload
// would; file names in the result are config.local_rules.
Status lint_local_rules(const Config& config, const std::string& content, LintResult& out);

// `content` as the recipient_settings file (recipients.h), as a reload
// would read it; file names in the result are config.recipient_settings.
Status lint_recipient_settings(const Config& config, const std::string& content, LintResult& out);

// The local file now ("" when it does not exist yet); an error when it
// cannot be read or is over kMaxLocalRulesBytes.
Status read_local_rules(const std::string& path, std::string& out);
// Replaces the file with `content`: a temporary file beside it, synced,
// renamed over it.
Status save_local_rules(const std::string& path, const std::string& content);

}  // namespace spamgate::console
