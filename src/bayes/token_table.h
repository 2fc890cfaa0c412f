// token_table.h - an immutable in-memory copy of a store's token counts, and
// the keeper that refreshes it in the background.
//
// Open addressing with linear probing over 64-bit token hashes (already
// uniformly distributed; mixed once more with a Fibonacci multiply), at most
// 3/4 full: one cache line per lookup instead of an LMDB B-tree descent or a
// Redis round trip. Built once (insert), then only read: safe from any number
// of threads. Private to src/bayes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "spamgate/bayes.h"

namespace spamgate::bayes_detail {

class TokenTable {
 public:
  explicit TokenTable(std::size_t expected);
  // Build phase only. A key inserted twice keeps the last counts.
  void insert(std::uint64_t key, TokenCounts counts);
  // The counts of `key`; zero counts when it is not in the table.
  TokenCounts find(std::uint64_t key) const;
  // Starts loading the slot of `key` into the CPU cache (find() of many keys:
  // prefetch a few ahead so the cache misses overlap).
  void prefetch(std::uint64_t key) const { __builtin_prefetch(&slots_[slot_of(key)]); }
  // find() of every key into `counts` (same order), with the cache misses
  // overlapped: a message looks up hundreds of random slots.
  void find_all(const std::vector<std::uint64_t>& keys, std::vector<TokenCounts>& counts) const;
  std::size_t size() const { return n_; }
  std::size_t bytes() const { return slots_.size() * sizeof(Slot); }

  // The logistic regression's weights in the same snapshot: all 2^kLrBits
  // (16 MiB), or empty while none is trained.
  std::vector<float> weights;
  // Each feature's weight from `weights` (zeros when it is empty).
  void find_weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) const;

  StoreTotals totals;             // the store's totals in the same snapshot
  std::uint64_t version = 0;      // the store's version it was read at (LMDB txn id, Redis counter)
  std::chrono::steady_clock::time_point built;

 private:
  struct Slot {
    std::uint64_t key = 0;
    TokenCounts counts;
  };
  std::size_t slot_of(std::uint64_t key) const;
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  std::size_t n_ = 0;
  bool has_zero_ = false;  // key 0 marks an empty slot, so it is kept apart
  TokenCounts zero_;
};

// Keeps the newest copy of a store's token table. A lookup asks for the copy
// of the store's current version (which the store reads cheaply: LMDB's last
// transaction id, a counter Redis's learn script bumps): it gets it only when
// nothing was learned since the copy was read, so counts are never stale;
// otherwise it reads the store and a background thread makes a new copy,
// at most one every `period_seconds`.
class CopyKeeper {
 public:
  // make(stop) reads the whole table (null when it cannot, or when `stop`
  // turned true meanwhile); it runs on the keeper's thread.
  using Make = std::function<std::shared_ptr<const TokenTable>(const std::atomic<bool>& stop)>;
  CopyKeeper(int period_seconds, std::string what, Make make);
  ~CopyKeeper();  // stop()
  CopyKeeper(const CopyKeeper&) = delete;
  CopyKeeper& operator=(const CopyKeeper&) = delete;

  bool enabled() const { return period_seconds_ > 0; }
  // The copy if it is of `version`; otherwise null, and a new copy is asked for.
  std::shared_ptr<const TokenTable> current(std::uint64_t version) const;
  // The newest copy, whatever its version (null before the first).
  std::shared_ptr<const TokenTable> latest() const { return copy_.load(std::memory_order_acquire); }
  // Asks for a new copy (no-op when disabled or one is on its way).
  void request() const;
  // Ends the thread; the store calls it before its own handles go.
  void stop();

 private:
  void loop() const;
  int period_seconds_;
  std::string what_;
  Make make_;
  mutable std::atomic<std::shared_ptr<const TokenTable>> copy_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  mutable std::thread thread_;
  mutable bool wanted_ = false;
  std::atomic<bool> stop_{false};
};

}  // namespace spamgate::bayes_detail
