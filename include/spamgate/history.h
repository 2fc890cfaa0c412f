// history.h - the verdict history: a compact record of every message the
// milter scanned, so support can find "this was not spam" without the
// message file: by its reference (the id in X-Spam-Technical-Details), the
// Postfix queue id, the Message-ID, an address (sender or recipient) and a
// time range.
//
// Records are written after the MTA took the answer, by one background
// thread, from a bounded queue: writing never delays or fails mail; a full
// queue or a store error drops the record (counted in the metrics, logged
// at most once a minute). Kept [history] retention_days, and the oldest go
// first when the store nears [history] max_bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "spamgate/status.h"

namespace spamgate {

struct HistoryRecord {
  std::string ref;            // the reference: 16 characters [a-z2-7], unguessable (80 random bits)
  std::int64_t time = 0;      // unix seconds, end of message
  std::string queue_id;       // the MTA's queue id (or the connection id)
  std::string message_id;     // as written, clipped
  std::string client_ip, helo, mail_from;
  std::vector<std::string> rcpt_to;
  std::string from, subject;  // decoded, clipped
  std::uint64_t size = 0;     // bytes as delivered
  std::string direction;      // "inbound" / "authenticated" / "trusted"
  std::string account;        // outbound: the sender's account
  std::string score, threshold;  // as printed ("7.2", "5")
  std::string action;         // accept, tag, reject, tempfail, quarantine, skip
  std::string reply;          // the SMTP reply ("" when accepted)
  std::string auth;           // SPF, DKIM, DMARC results: "spf=pass dkim=none dmarc=fail"
  struct RuleHit {
    std::string name;
    std::string score;        // its score in this verdict ("2.5")
    std::string detail;       // what matched, clipped
  };
  std::vector<RuleHit> hits;  // heaviest first, sub-rules left out
};

struct HistoryQuery {
  // A reference, queue id, Message-ID (with or without <>) or address;
  // "" = every record in the time range. Case does not matter.
  std::string term;
  std::int64_t since = 0, until = 0;  // unix seconds, inclusive; 0 = open
  std::size_t limit = 50;
};

// The store. Thread-safe; several processes may open the same LMDB
// directory (the milter writes, `spamgate history` reads).
class HistoryStore {
 public:
  virtual ~HistoryStore() = default;
  // Writes `records` in one transaction (one sync). A record whose ref is
  // stored already replaces it. When the store is full (or past 70% of
  // [history] max_bytes) the oldest records are removed; Limit when even
  // that leaves no room.
  virtual Status put(const std::vector<HistoryRecord>& records) = 0;
  // Records matching `q`, newest first, at most q.limit.
  virtual Status find(const HistoryQuery& q, std::vector<HistoryRecord>& out) const = 0;
  // Removes the records older than `before` (unix seconds), at most `max`
  // of them, the oldest first; `removed` says how many.
  virtual Status expire(std::int64_t before, std::size_t max, std::size_t& removed) = 0;
  // Records stored, and the share of max_bytes in use (0..1).
  virtual Status stats(std::size_t& records, double& used) const = 0;
  virtual std::string describe() const = 0;
};

}  // namespace spamgate
