// state_store.h - small keyed records with an expiry, kept next to the
// classifier's tokens: outbound rate windows, holds, the Message-ID and
// sender-tag maps (outbound.h).
//
// The state lives in the same store as the classifier ([bayes] store): the
// LMDB database (its "state" table) or Redis (keys under
// "<redis_prefix>:state:"), so several gateway nodes that share a Redis
// share their limits and holds. [outbound] store = "redis" puts only the
// state in Redis while the classifier stays embedded.
//
// update() is an atomic read-modify-write of one key, across threads,
// processes and (Redis) nodes: LMDB runs it in a write transaction, Redis
// under WATCH/MULTI/EXEC (retried when another node wrote the key between).
// A record past its expiry reads as absent; LMDB removes expired records a
// few at a time in later writes, Redis by itself. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spamgate/bayes.h"
#include "spamgate/status.h"

namespace spamgate {

class StateStore {
 public:
  virtual ~StateStore() = default;
  // `fn` sees the current value (nullopt: none, or expired) and leaves the
  // new one (nullopt: delete). The new value expires `ttl_seconds` from now
  // (0: never). `fn` must only compute: it may run more than once (Redis
  // retries) and, for LMDB, runs inside the write transaction.
  using UpdateFn = std::function<void(std::optional<std::string>& value)>;
  struct Update {
    std::string key;
    std::int64_t ttl_seconds = 0;
    UpdateFn fn;
  };
  // Several keys in one atomic change (one LMDB commit, one Redis
  // MULTI/EXEC): a message's windows cost one disk sync, not one per key.
  virtual Status update_many(const std::vector<Update>& updates) = 0;
  Status update(std::string_view key, std::int64_t ttl_seconds, const UpdateFn& fn) {
    return update_many({Update{std::string(key), ttl_seconds, fn}});
  }
  virtual Status get(std::string_view key, std::optional<std::string>& value) const = 0;
  virtual std::string describe() const = 0;
};

// The state store of `cfg` (the classifier's store config, or a copy with
// `store`/`redis` set by [outbound]). LMDB shares the classifier's
// environment (one per database per process).
Result<std::shared_ptr<StateStore>> open_state_store(const BayesConfig& cfg);

}  // namespace spamgate
