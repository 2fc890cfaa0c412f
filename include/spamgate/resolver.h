// resolver.h - the one DNS resolver spamgate uses, behind an interface so
// tests can inject faults (LevelDB's Env pattern).
//
// Every lookup has its own timeout and a deadline (the message's DNS budget):
// past the deadline a lookup returns kTimeout at once. Answers are cached
// within their TTL across messages. A circuit breaker stands in front of the
// server: after [dns] breaker_failures lookups in a row got no answer, lookups
// that the cache cannot answer return kTimeout at once (so checks give
// TEMPERROR without waiting) until a probe lookup, made once per back-off
// in the background (no message waits for it), gets an answer. NXDOMAIN, NODATA and SERVFAIL are answers. Implementations
// are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/status.h"

namespace spamgate {

enum class DnsType { kA, kAaaa, kTxt, kMx, kPtr };

struct DnsAnswer {
  enum class Rcode { kOk, kNxDomain, kNoData, kServFail, kTimeout, kError };
  Rcode rcode = Rcode::kError;
  // A/AAAA: addresses as text; TXT: the strings of each record joined;
  // MX: exchange host names, best preference first; PTR: host names.
  std::vector<std::string> records;
  std::uint32_t ttl = 0;
  bool ok() const { return rcode == Rcode::kOk; }
};

const char* rcode_name(DnsAnswer::Rcode r);

using Deadline = std::chrono::steady_clock::time_point;

class Resolver {
 public:
  virtual ~Resolver() = default;
  // Looks `name` up; never blocks past `deadline` (returns kTimeout then).
  virtual DnsAnswer lookup(std::string_view name, DnsType type, Deadline deadline) = 0;
};

struct DnsConfig {
  std::string nameserver;   // "ADDR:PORT" or "ADDR"; "" = the system's (/etc/resolv.conf)
  int timeout_ms = 1500;    // one lookup
  int tries = 2;            // attempts per lookup within its timeout
  int budget_ms = 5000;     // all lookups of one message
  std::size_t cache_entries = 20000;
  int breaker_failures = 5;         // lookups in a row with no answer that open the breaker; 0 = no breaker
  int breaker_backoff_ms = 1000;    // then lookups skip the server this long; doubles per failed probe
  int breaker_max_backoff_ms = 30000;  // up to this
  bool operator==(const DnsConfig&) const = default;
};

// A c-ares resolver; InvalidArgument (a bad nameserver) or Internal
// (c-ares cannot start) otherwise.
Result<std::unique_ptr<Resolver>> make_resolver(const DnsConfig& cfg);

}  // namespace spamgate
