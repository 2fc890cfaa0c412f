// check.h - the one interface every check implements.
//
// A check reads the const Message and Envelope and its own settings and appends Hits:
// named symbols with a factor and a detail (the "why"). Scores are never in a
// check: they live in the Snapshot's symbol table, so support staff set them
// in rules files (`score NAME n`) and `score NAME 0` works for every symbol.
// Checks are immutable after construction and run concurrently from many
// threads; per-scan scratch is the check's own business (thread_local or
// per-call).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/auth.h"
#include "spamgate/status.h"

namespace spamgate {

struct Message;
class DkimVerifier;
class HeaderCensus;

// What the SMTP session told us (empty in `scan` mode unless given).
struct Envelope {
  std::string client_ip;
  std::string client_name;
  std::string helo;
  std::string mail_from;
  std::vector<std::string> rcpt_to;
  std::string auth_user;  // {auth_authen}; empty for unauthenticated mail
  std::string queue_id;
};

struct Hit {
  Hit() = default;
  Hit(std::string n, double f = 1.0, std::string d = {}, std::string reject = {})
      : name(std::move(n)), factor(f), detail(std::move(d)), reject_reply(std::move(reject)) {}
  std::string name;     // a symbol known to the Snapshot
  double factor = 1.0;  // score = configured weight x factor
  std::string detail;   // what matched, for `explain` and logs (clipped)
  // Non-empty: this hit rejects the message (a forced action, like Rspamd's
  // passthrough) with "550 5.7.1 <reject_reply>", whatever the score.
  std::string reject_reply;
  // A classifier's band (BAYES_xx, LR_xx): its spam probability, which the
  // verdict's classifier guard reads (verdict.h); -1 for every other hit.
  double probability = -1.0;
};

// A symbol a built-in check can emit, with its default score.
struct SymbolDef {
  std::string name;
  double default_score = 0.0;
  std::string description;
};

// The bytes the malware scan reads when the milter spooled the message
// (it was longer than max_scan_bytes): its first max_av_bytes, raw.
struct AvInput {
  int fd = -1;            // an unlinked spool file holding them, from offset 0
  std::size_t size = 0;   // bytes in it
  bool complete = true;   // false: the message went on past max_av_bytes
  std::string error;      // non-empty: spooling failed (e.g. disk full): no trustworthy scan
};

// What a check returns besides its hits: its typed side results, merged
// by the pipeline after it ran (a check never writes into another's).
struct CheckOutput {
  // Header fields to prepend to the message (e.g. Received-SPF), as
  // {name, value}; written only where our headers are (policy tag).
  std::vector<std::pair<std::string, std::string>> prepend;
  // The authentication methods this check decided (SpfCheck, DkimCheck,
  // DmarcCheck): rendered as Authentication-Results after every check ran.
  std::optional<SpfAuth> spf;
  std::optional<DkimAuth> dkim;
  std::optional<DmarcAuth> dmarc;
};

// What a check reads about the message. Its own settings (resolver,
// limits, zones, ...) it was given when it was built, not here.
struct CheckContext {
  const Message& message;
  const Envelope& envelope;
  // All DNS lookups of this message end by then (the per-message DNS budget).
  std::chrono::steady_clock::time_point dns_deadline;
  // The authentication results of the checks that ran before (DMARC reads
  // SPF's and DKIM's: it declares them in Check::reads).
  const AuthResults& auth;
  // The bytes the scan was given: the whole message in `scan` mode, the first
  // max_scan_bytes in the milter (which then hands over `dkim`).
  std::string_view bytes;
  // A DKIM verifier already fed with the whole message by the milter's
  // header and body callbacks; null in `scan` mode (DkimCheck reads `bytes`).
  DkimVerifier* dkim = nullptr;
  // Set by the milter for a spooled message; null: the malware scan reads
  // the parse (or `bytes`).
  const AvInput* av = nullptr;
  // The fields the scan removes (X-Spam-*, our forged Authentication-Results,
  // the outbound tag), counted over the whole header block.
  const HeaderCensus* census = nullptr;
};

class Check {
 public:
  virtual ~Check() = default;
  // Short name for logs and failure policy, e.g. "rules".
  virtual std::string_view name() const = 0;
  // Appends hits, and fills `side` with its side results. `hits` already
  // holds those of the checks that ran before (meta rules read them). A
  // non-ok Status means the check could not finish; hits it appended and
  // side results it gave stay, and the pipeline logs the error and goes on.
  virtual Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const = 0;
  // The checks whose results this one reads (their hits or side results),
  // by name; "*" = every other check. They must run before it: a snapshot
  // whose order breaks this is refused at load.
  virtual std::vector<std::string_view> reads() const { return {}; }
};

}  // namespace spamgate
