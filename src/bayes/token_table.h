// token_table.h - an immutable in-memory copy of a store's token counts.
//
// Open addressing with linear probing over 64-bit token hashes (already
// uniformly distributed; mixed once more with a Fibonacci multiply), at most
// 3/4 full: one cache line per lookup instead of an LMDB B-tree descent.
// Built once (insert), then only read: safe from any number of threads.
// Private to src/bayes.
#pragma once

#include <chrono>
#include <cstdint>
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
  std::size_t size() const { return n_; }
  std::size_t bytes() const { return slots_.size() * sizeof(Slot); }

  StoreTotals totals;             // the store's totals in the same snapshot
  std::uint64_t txn_id = 0;       // LMDB transaction the copy was read in
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

}  // namespace spamgate::bayes_detail
