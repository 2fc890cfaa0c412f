// prefilter.h - one Hyperscan pass over a text tells which regex rules can
// match it, so PCRE2 runs only for those (Rspamd's approach).
//
// Every pattern is compiled into Hyperscan databases in PREFILTER mode,
// widened first (widen()): counted repeats made unbounded ({0,200} -> *,
// {2,5} -> +), \b and \B dropped. Hyperscan may report a match PCRE2 then
// rejects, never the other way round. A pattern over 1,000 characters (slow
// to compile) is prefiltered on a part of it every match contains
// (required_part(): "name|address|phone" of a long form-filling rule), if
// that part is selective enough. Patterns that cannot be widened safely (the
// x flag, inline (?x), a rewrite PCRE2 does not confirm), that Hyperscan
// cannot take (\K, \R, verbs) and long ones without such a part are marked
// "always run", with the reason in problem(). Patterns
// are matched as UTF-8, except byte-mode ones (flag b: SpamAssassin's set),
// which sit in chunks of their own: a text that is not valid UTF-8 is
// prefiltered for those only (every UTF-8 rule runs).
// Known difference: PCRE2's caseless UTF matching also folds a few non-ASCII
// look-alikes (U+017F for s, U+212A for k); Hyperscan may not.
// DIAGNOSTICS: none at run time; build() reports how many patterns it took
// and why each other one runs always (problem(); `lint` prints them).
// A Prefilter is immutable after build(): thread-safe (per-thread scratch).
#pragma once

#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/status.h"

struct hs_database;

namespace spamgate {

// One Hyperscan database of up to a few thousand patterns (ids 0..n-1) and,
// per pattern, why the compiler refused it ("" = compiled). Shared by the
// Prefilters of successive snapshots while its patterns do not change.
struct PrefilterChunk {
  struct DatabaseFree {
    void operator()(hs_database* db) const;
  };
  std::unique_ptr<hs_database, DatabaseFree> db;  // null when every pattern was refused
  std::vector<std::string> problems;
};

class Prefilter {
 public:
  struct Pattern {
    std::string regex;  // PCRE syntax
    std::string flags;  // i m s x
  };
  // Never fails: a pattern (or a database) Hyperscan cannot build runs always.
  // `cache_dir` (rules_cache_dir; "" = none): compiled databases are read
  // from and saved there (prefilter_cache.h), and long patterns are then
  // compiled whole instead of on a part.
  static std::shared_ptr<const Prefilter> build(const std::vector<Pattern>& patterns,
                                                const std::string& cache_dir = std::string());

  // out[i] = true when pattern i may match `text` (or always runs). False
  // return: no prefiltering for this text (not UTF-8, scan error): run all.
  bool candidates(std::string_view text, std::vector<char>& out) const;
  std::size_t compiled() const { return compiled_; }
  std::size_t size() const { return always_.size(); }
  // Hyperscan databases scanned per text, and how many of them were taken
  // from the previous build (a reload) instead of being compiled.
  std::size_t databases() const { return chunks_.size(); }
  std::size_t reused() const { return reused_; }
  // Databases read from the cache directory instead of compiled.
  std::size_t from_disk() const { return from_disk_; }
  // The first thing that went wrong with the cache directory, "" if none.
  const std::string& cache_problem() const { return cache_problem_; }
  // Why pattern i runs always; "" when Hyperscan took it.
  const std::string& problem(std::size_t i) const { return problems_[i]; }

  // The pattern Hyperscan compiles for `regex`: a superset of what PCRE2
  // matches. Error (with the reason) when it cannot be made safely.
  // `drop_anchors`: ^ and $ left out too (Hyperscan refuses them inside).
  static Result<std::string> widen(std::string_view regex, std::string_view flags, bool drop_anchors = false);
  // A part of `regex` every match of it contains, at most `budget`
  // characters long, and its weight (how rare: ~ its literal bytes); the
  // heaviest found. nullopt when there is none (or the regex holds back
  // references, inline options, recursion or verbs).
  static std::optional<std::pair<std::string, double>> required_part(std::string_view regex, std::string_view flags,
                                                                     std::size_t budget);

 private:
  Prefilter() = default;
  std::vector<std::shared_ptr<const PrefilterChunk>> chunks_;
  std::vector<std::vector<unsigned>> ids_;  // per chunk: its local id -> pattern index
  std::vector<char> utf8_;                  // per chunk: compiled for UTF-8 (else byte mode)
  std::vector<std::string> problems_;
  std::vector<char> always_;
  std::size_t compiled_ = 0;
  std::size_t reused_ = 0;
  std::size_t from_disk_ = 0;
  std::string cache_problem_;
  unsigned long serial_ = 0;
};

}  // namespace spamgate
