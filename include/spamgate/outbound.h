// outbound.h - protection against spam from the provider's own customers:
// per-account and per-domain rate limits, holds, feedback-loop complaints.
//
// Mail from an authenticated sender ({auth_authen}) or a trusted network is
// "outbound". Its account is the login (or, without one, the envelope
// sender); its domain is the part after '@' (of the login, else of the
// envelope sender). For each message the OutboundGuard counts messages and
// recipients in sliding windows of a minute, an hour and a day, per account
// and per domain, and counts spam verdicts (score over [outbound] threshold)
// and feedback-loop complaints per account in [outbound] spam_window. A
// sender that passes a limit, or reaches hold_after_spam verdicts +
// complaints, is held: the milter answers its further mail 451 4.7.1 at MAIL
// FROM (or puts it in Postfix's hold queue) until `spamgate release` or the
// window of what it passed has passed (a minute, an hour, a day, or
// spam_window; [outbound] hold_seconds > 0: that long instead).
//
// Sliding windows: each window is 60 slots of 1/60 of its length (a second
// for the minute, a minute for the hour, 24 minutes for the day) plus the
// slot that is leaving, counted for the part of it still inside the window,
// so a burst across the top of the hour is seen whole (no fixed buckets).
//
// Where a complaint's account comes from: outbound mail carries [outbound]
// tag_header = an HMAC-SHA256 of the account under the site key (the login
// never leaves the server), and the store maps tag -> account and
// Message-ID -> account for message_id_days.
//
// State lives in a StateStore (state_store.h): the classifier's LMDB or a
// Redis shared by gateway nodes. Every method is thread-safe; a store
// failure is a Status (the milter applies the failure policy of the check
// "outbound"), never an exception.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/bayes.h"
#include "spamgate/state_store.h"
#include "spamgate/status.h"

namespace spamgate {

struct Diagnostic;
struct Envelope;

// One limit per window and quantity; 0 = no limit.
struct RateLimits {
  enum Index { kMessagesMinute, kMessagesHour, kMessagesDay, kRecipientsMinute, kRecipientsHour, kRecipientsDay, kCount };
  std::array<std::uint32_t, kCount> v{};
  static const char* name(int i);            // "messages_per_minute" ...
  static int index_of(std::string_view name);  // -1 if unknown
  static std::int64_t window_seconds(int i);   // 60, 3600, 86400
};

// Per-account and per-domain limits support staff edit ([outbound]
// overrides_file), one line each, '#' comments:
//   alice@example.com  messages_per_hour=1000 recipients_per_day=20000
//   domain:shop.example  messages_per_day=50000
//   newsletter@example.com  unlimited
// A key not given keeps the [outbound] default.
struct LimitOverride {
  std::array<std::int64_t, RateLimits::kCount> v;  // -1 = the default
  LimitOverride() { v.fill(-1); }
};
struct LimitOverrides {
  std::map<std::string, LimitOverride> accounts;  // lower-case account
  std::map<std::string, LimitOverride> domains;   // lower-case domain
};
// Parses `text` (of `file`, for diagnostics); every bad line is a Diagnostic.
LimitOverrides parse_limit_overrides(std::string_view text, const std::string& file, std::vector<Diagnostic>& diags);

// [outbound] in spamgate.toml.
struct OutboundConfig {
  bool enabled = true;
  std::int64_t threshold_tenths = 50;  // outbound mail is spam when its score is greater
  RateLimits user_limits;              // per account
  RateLimits domain_limits;            // per sending domain, all its accounts together
  std::string overrides_file;          // per-account/domain limits; a missing file is not an error
  int hold_after_spam = 3;             // spam verdicts + complaints in spam_window that hold an account
  int spam_window_seconds = 3600;
  // A hold ends by itself when the window of what it passed has passed
  // (0), or after this many seconds (or by `spamgate release`).
  int hold_seconds = 0;
  bool hold_quarantine = false;        // false: 451 4.7.1; true: accept into Postfix's hold queue
  std::string tag_header = "X-Spamgate-Sender";  // HMAC of the account on outbound mail
  std::string site_key_file;           // the HMAC key; created (random, 0600) when missing
  int message_id_days = 30;            // how long tag and Message-ID -> account are kept
  std::string store;                   // "" = the classifier's store; "lmdb" or "redis"
  std::string redis;                   // with store = "redis" (default: [bayes] redis)
  // Login (or "@domain" for every login of a domain) -> the From domains it
  // may use. Without an entry a login "user@d" may use d; a login without
  // '@' and without an entry is not checked.
  std::map<std::string, std::vector<std::string>> sender_domains;
  OutboundConfig() {
    user_limits.v = {30, 300, 2000, 100, 1000, 5000};
    domain_limits.v = {0, 3000, 20000, 0, 10000, 50000};
  }
};

// Who sends an outbound message.
struct OutboundSender {
  std::string account;  // lower-case login, or envelope sender
  std::string domain;   // lower-case
  bool valid() const { return !account.empty(); }
};
OutboundSender outbound_sender(const Envelope& env);

// A hold in force.
struct HoldInfo {
  std::string who;      // "alice@example.com" or "domain example.com"
  std::string reason;   // "messages_per_minute 4/3 in 60 s" or "3 spam verdicts + 1 complaint in 3600 s"
  std::int64_t since = 0, until = 0;  // unix seconds
};

// The counts of one account after a message or complaint.
struct OutboundCounts {
  std::array<double, RateLimits::kCount> user{};    // this account, per limit
  std::array<double, RateLimits::kCount> domain{};  // its domain
  double spam = 0, complaints = 0;                  // in spam_window
  std::string summary() const;  // "msgs 4/min 4/h 4/day rcpts 4/min ... spam 0 complaints 0"
};

class OutboundGuard {
 public:
  // `store_cfg`: the classifier's store config ([outbound] store/redis applied).
  OutboundGuard(OutboundConfig cfg, BayesConfig store_cfg, LimitOverrides overrides);
  const OutboundConfig& config() const { return cfg_; }

  // The hold on this sender (its account, else its domain), if any.
  Status held(const OutboundSender& s, std::optional<HoldInfo>& out) const;
  // Counts one message (not held) and holds its sender when it passes a
  // limit or reaches hold_after_spam. `hold` is set when this message made
  // the hold (then the message itself is held too). Remembers who sent
  // `message_id` and which account `tag` stands for (feedback reports); all
  // of it one atomic store change.
  Status count_message(const OutboundSender& s, std::size_t recipients, bool spam, std::int64_t now,
                       std::string_view message_id, std::string_view tag, OutboundCounts& counts,
                       std::optional<HoldInfo>& hold) const;
  // A feedback-loop complaint against `account` (same effect as a spam verdict).
  Status add_complaint(const std::string& account, std::int64_t now, OutboundCounts& counts,
                       std::optional<HoldInfo>& hold) const;
  // A message of `account` put into Postfix's hold queue as `queue_id`.
  Status note_quarantined(const std::string& account, std::string_view queue_id) const;
  // The account behind a tag header value or a Message-ID ("" if unknown).
  Status account_of_tag(std::string_view tag, std::string& account) const;
  Status account_of_message_id(std::string_view message_id, std::string& account) const;
  // Lifts the hold on `who` (an account, or "domain:d"), clears its counts,
  // and returns the queue ids of its messages in the hold queue.
  Status release(const std::string& who, bool& was_held, std::vector<std::string>& queue_ids) const;
  // Every hold in force.
  Status holds(std::vector<HoldInfo>& out) const;

  // The tag header value for `account`: hex HMAC-SHA256 (128 bits) under the
  // site key, which is read (or created) on first use.
  Status tag_of(const std::string& account, std::string& tag) const;
  // The limits that apply to `account` and to `domain`.
  RateLimits limits_for_account(const std::string& account) const;
  RateLimits limits_for_domain(const std::string& domain) const;

  // How long a hold for passing a limit of `window` seconds lasts.
  std::int64_t hold_length(std::int64_t window) const { return cfg_.hold_seconds > 0 ? cfg_.hold_seconds : window; }

 private:
  Status store(std::shared_ptr<StateStore>& out) const;
  Status site_key(std::string& out) const;
  Status sent_updates(const StateStore& st, const OutboundSender& s, std::string_view message_id,
                      std::string_view tag, std::vector<StateStore::Update>& batch) const;
  Status make_hold(StateStore& st, const std::string& key, HoldInfo info, std::optional<HoldInfo>& hold) const;
  // The spam window of `account` plus these verdicts/complaints; fills `counts`.
  StateStore::Update spam_update(const std::string& account, std::uint32_t spam, std::uint32_t complaints,
                                 std::int64_t now, OutboundCounts& counts) const;
  // Holds `account` when `counts` reached hold_after_spam.
  Status spam_hold(StateStore& st, const std::string& account, std::int64_t now, const OutboundCounts& counts,
                   std::optional<HoldInfo>& hold) const;

  OutboundConfig cfg_;
  BayesConfig store_cfg_;
  LimitOverrides overrides_;
  mutable std::mutex mu_;
  mutable std::shared_ptr<StateStore> store_;
  mutable Status last_error_;
  mutable std::int64_t next_try_ = 0;  // steady seconds
  mutable std::string key_;
};

// The current unix time in seconds.
std::int64_t unix_seconds();
// "2026-11-23 21:40:05 UTC".
std::string format_unix_time(std::int64_t t);

}  // namespace spamgate
