// symbols.h - symbol name -> score and description (the rules files'
// `score` and `describe` lines, the built-in checks' defaults). Immutable
// once the snapshot is built: thread-safe to read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "spamgate/diagnostic.h"

namespace spamgate {

struct SymbolInfo {
  std::int64_t score_millis = 0;  // score in thousandths of a point
  std::string description;
  bool nice = false;              // tflags nice: meant to lower the score
  bool disabled = false;          // an explicit `score NAME 0` on a rule
  // Where a rules file defines it ("" for a built-in check's symbol), and
  // whether that definition runs (false: an eval: test we do not implement).
  std::string file;
  int line = 0;
  bool runs = false;
  // Where the score in effect was set: the last `score` line read for it
  // ("" = no score line: the built-in default, or 1.0 for a rule).
  std::string score_file;
  int score_line = 0;
};

// Symbol name -> score and description. Unknown symbols score 0.
class SymbolTable {
 public:
  const SymbolInfo* find(std::string_view name) const;
  std::int64_t score_millis(std::string_view name) const;
  SymbolInfo& upsert(const std::string& name) { return map_[name]; }
  std::size_t size() const { return map_.size(); }
  const std::unordered_map<std::string, SymbolInfo>& all() const { return map_; }

 private:
  std::unordered_map<std::string, SymbolInfo> map_;
};

}  // namespace spamgate
