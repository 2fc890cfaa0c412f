// prefilter.h - one Hyperscan pass over a text tells which regex rules can
// match it, so PCRE2 runs only for those (Rspamd's approach).
//
// Every pattern is compiled into one Hyperscan database in PREFILTER mode,
// with its counted repeats made unbounded ({0,200} -> *): Hyperscan may
// report a match PCRE2 then rejects, never the other way round. Patterns Hyperscan cannot take at
// all (the x flag, constructs even prefilter mode refuses) and very long
// ones (over 1,000 characters: slow to compile) are marked "always run". Patterns are matched as UTF-8, so a text that is not valid
// UTF-8 is not prefiltered (every rule runs).
// Known difference: PCRE2's caseless UTF matching also folds a few non-ASCII
// look-alikes (U+017F for s, U+212A for k); Hyperscan may not.
// DIAGNOSTICS: none at run time; build() reports how many patterns it took.
// A Prefilter is immutable after build(): thread-safe (per-thread scratch).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct hs_database;

namespace spamgate {

class Prefilter {
 public:
  struct Pattern {
    std::string regex;  // PCRE syntax
    std::string flags;  // i m s x
  };
  // Never fails: a pattern (or a database) Hyperscan cannot build runs always.
  static std::shared_ptr<const Prefilter> build(const std::vector<Pattern>& patterns);
  ~Prefilter();

  // out[i] = true when pattern i may match `text` (or always runs). False
  // return: no prefiltering for this text (not UTF-8, scan error): run all.
  bool candidates(std::string_view text, std::vector<char>& out) const;
  std::size_t compiled() const { return compiled_; }
  std::size_t size() const { return always_.size(); }

 private:
  Prefilter() = default;
  std::vector<hs_database*> dbs_;  // patterns in chunks (compile memory stays small)
  std::vector<char> always_;
  std::size_t compiled_ = 0;
  unsigned long serial_ = 0;
};

}  // namespace spamgate
