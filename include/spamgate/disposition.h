// disposition.h - what happens to a message, decided in one place.
//
// The scan ends at a Verdict (score, spam, a forced reject). decide() takes
// it with who the sender is (sender class, sender policy), the failure
// policy of every check that failed and the outbound guard's answer, and
// returns the Disposition: the final action, the exact SMTP reply, every
// header edit (the outbound sender tag included) and the after-effects
// (autolearn, the metrics outcome, the hold record). The milter applies it;
// `scan`, `scan --json`, `scan --rewrite` and `explain` print it; nobody
// else decides (Rspamd's rspamd_check_action_metric: one function picks the
// action). Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "spamgate/actions.h"
#include "spamgate/bayes.h"
#include "spamgate/metrics.h"
#include "spamgate/outbound.h"
#include "spamgate/recipients.h"
#include "spamgate/replies.h"
#include "spamgate/verdict.h"

namespace spamgate {

struct Config;
struct Envelope;
struct ScanResult;
struct Snapshot;
class HeaderCensus;
enum class SenderPolicy;

// Who sent the message, as the milter sees it. Trusted: a local submission
// (Postfix's non_smtpd_milters: pickup, sendmail) or a client in
// [milter] trusted_networks; authenticated: SMTP AUTH ({auth_authen}).
enum class SenderClass { kInbound, kAuthenticated, kTrusted };
const char* sender_class_name(SenderClass c);

struct Sender {
  SenderClass cls = SenderClass::kInbound;
  bool local = false;  // local submission: never refused, a held sender's mail goes to the hold queue
};

// `local`: the connection is a local submission. Reads auth_user and
// client_ip of `env` and [milter] trusted_networks.
Sender classify_sender(const Config& c, const Envelope& env, bool local);

// [milter] inbound / authenticated / trusted for `cls`.
SenderPolicy policy_for(const Config& c, SenderClass cls);

// The outbound guard's answer for one message of an authenticated or
// trusted sender (pipeline.h outbound_step()).
struct OutboundResult {
  enum class State {
    kNone,     // inbound mail, the guard off, or no sender account
    kOk,       // counted (or, replayed, looked up), not spam
    kSpam,     // counted as spam (score above [outbound] threshold)
    kHeld,     // its sender was held already
    kNewHold,  // this message made the hold
    kError,    // the store failed: the "outbound" check's failure policy applies
  };
  State state = State::kNone;
  std::optional<HoldInfo> hold;  // kHeld / kNewHold
  std::string account;           // the sender's account
  std::string tag;               // the sender tag value to add ("" = none)
  std::string error;             // kError: what failed
};

struct SmtpReply {
  std::string code, xcode, text;  // "550", "5.7.1", text (as is: the milter escapes it)
  bool empty() const { return code.empty(); }
  std::string str() const { return code + " " + xcode + " " + text; }
};

struct Disposition {
  Action action = Action::kAccept;
  Sender sender;
  SenderPolicy policy{};
  SmtpReply reply;                // kReject, kTempfail, kHold
  std::string quarantine_reason;  // kQuarantine: into the MTA's hold queue
  Plan plan;                      // every header edit (nothing is written for reject/tempfail/hold)
  std::string why;                // one phrase: why this action (logs, explain)
  std::string outbound_note;      // " outbound=ok|spam|hold:quarantine|held:tempfail|error" ("" inbound)

  // After-effects, run by the milter once the MTA took the answer (a
  // replay by `scan` prints them and runs none).
  std::optional<LearnClass> autolearn;  // [bayes] autolearn as this class
  Metrics::Direction direction = Metrics::Direction::kInbound;
  Metrics::Outcome outcome = Metrics::Outcome::kAccept;
  bool scored = true;              // false: not scanned (skip)
  // The verdict as the deciding recipients' settings made it (their
  // threshold, their lists' hits); none: spamgate.toml's alone decided.
  // handle_message() puts it in place of the scan's.
  std::optional<Verdict> verdict;
  // " settings=ceo@example.com,example.com" when recipients' settings
  // decided (logs, explain); "" otherwise.
  std::string settings_note;
  // The threshold that decided, as written (spamgate.toml's, or the
  // deciding recipients' own).
  std::string threshold_text;
  std::string hold_account;        // kQuarantine: remember the queue id under this account
};

const char* outcome_name(Metrics::Outcome o);

// Recipients of one message that share their settings (recipients.h), with
// the hits of those settings' own welcome/block lists.
struct RecipientGroup {
  RecipientSettings settings;
  std::vector<std::string> rcpts;  // as the MTA gave them
  std::vector<Hit> hits;
};

// The decision for a scanned message. `scan` is the pipeline's result
// (its verdict, check errors, message, census and prepended fields).
// `groups`: the recipients' own settings (empty: spamgate.toml's for all).
// A message is scored once and delivered as one copy, so for inbound mail
// with groups: it is tagged when any group's settings tag it (the
// strictest: the group that tags, with the Subject before without, then
// the lowest threshold, then the first names the headers' threshold), and
// refused for its score only when every group's settings refuse it (a
// reject loses it for all of them; an opted-out group never refuses). The
// RCPT order is the sender's to choose, so it picks nothing.
Disposition decide(const Snapshot& snap, const ScanResult& scan, const Sender& sender, const OutboundResult& outbound,
                   const std::vector<RecipientGroup>& groups = {});

// The decision for a message that is not scanned: its sender policy is
// skip, or (`why` given) every recipient opted out. Only the forged trust
// fields of `census` are removed.
Disposition decide_skipped(const Snapshot& snap, const HeaderCensus& census, const Sender& sender,
                           std::string why = {});

// What the milter answers at end of message.
enum class MilterAnswer { kAccept, kTempfail, kReject };
MilterAnswer milter_answer(Action a);

}  // namespace spamgate
