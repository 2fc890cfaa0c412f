// regex.h - a PCRE2 regex compiled once (JIT when available), matched from
// any thread.
//
// Regexes are compiled with UTF and MATCH_INVALID_UTF, so hostile bytes
// (invalid UTF-8, NULs) in a subject are matched safely. Matching uses a
// per-thread match data, match context and JIT stack, and a match limit so a
// pathological pattern/subject pair ends with kError instead of hanging.
// A Regex is immutable after compile(): thread-safe to match concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spamgate/status.h"
#include "util/c_handle.h"

namespace spamgate {

class Regex {
 public:
  enum class Outcome { kMatch, kNoMatch, kError };
  struct Match {
    Outcome outcome = Outcome::kNoMatch;
    std::size_t begin = 0;  // of the matched text in the subject
    std::size_t end = 0;
    int error = 0;          // PCRE2 error code for kError
  };

  // `flags` are Perl letters: i m s x, and b: match bytes, not UTF-8
  // characters (as Perl does on a byte string; SpamAssassin's rules are
  // written so). Errors name the offset in the pattern.
  // `jit` false: for a pattern matched a few times only (a capture
  // template filled per message), where JIT compiling costs more than it saves.
  static Result<Regex> compile(std::string_view pattern, std::string_view flags, bool jit = true);

  // `start`: where the search starts; what comes before it still counts for
  // ^, \b and lookbehinds (a second match of tflags multiple).
  Match match(std::string_view subject, std::uint32_t match_limit, std::size_t start = 0) const;
  // The span of capture group `group` (1..9) of the first match; kNoMatch
  // also when the group took no part in it.
  Match match_group(std::string_view subject, std::uint32_t match_limit, int group) const;
  // SpamAssassin's capture rules: the named groups spelled in capitals,
  // (?<NAME>...), and their text in the first match (groups that took part,
  // with some text); empty when the pattern has none or does not match.
  bool captures() const { return !names_.empty(); }
  std::vector<std::pair<std::string, std::string>> named_captures(std::string_view subject,
                                                                   std::uint32_t match_limit) const;
  bool jit() const { return jit_; }
  const std::string& pattern() const { return pattern_; }  // as written (for the prefilter)
  const std::string& flags() const { return flags_; }

 private:
  Pcre2Code code_;
  bool jit_ = false;
  std::string pattern_;
  std::string flags_;
  std::vector<std::pair<std::string, int>> names_;  // capture name, group number
};

// SpamAssassin 4's capture templates: %{NAME} in a pattern stands for the
// values a capture rule gave tag NAME in this message. The names a pattern
// uses, once each, in order (a %{ after a backslash is literal).
std::vector<std::string> regex_templates(std::string_view pattern);
// `pattern` with each %{NAME} replaced by value(NAME); nullopt as soon as
// one gives nullopt (SpamAssassin then does not run the rule).
std::optional<std::string> regex_fill_templates(
    std::string_view pattern, const std::function<std::optional<std::string>(std::string_view)>& value);
// SpamAssassin matches a body rule against each paragraph alone; spamgate
// against the paragraphs one per line, multi-line. `pattern` rewritten so
// it anchors the same: \A becomes ^, \z and \Z become $ (escapes and
// classes are left as they are).
std::string regex_line_anchors(std::string_view pattern);
// Perl's quotemeta: every ASCII byte but [A-Za-z0-9_] escaped, so the text
// matches itself (bytes over 0x7F are left as they are).
std::string regex_quote(std::string_view text);

// Pattern syntax as PCRE2 reads it, for the prefilter's rewrite and lint.
// Length of the escape at p[i] == '\': "\Q...\E" (to the end when there is
// no \E), "\x{...}" and its kin (\o \p \P \N \g \k), "\cX", else the
// backslash and one byte; 0 when it is not closed.
std::size_t regex_escape_length(std::string_view p, std::size_t i);
// Length of the class at p[i] == '[' ("[]...]", "[^]...]", "[[:alpha:]]"); 0 when not closed.
std::size_t regex_class_length(std::string_view p, std::size_t i);
// Length of "{m}", "{m,}" or "{m,n}" at p[i], else 0 (a literal brace).
std::size_t regex_counted_repeat(std::string_view p, std::size_t i);
// Length of a repeat ('*', '+', '?', "{m,n}", with a lazy '?' or possessive
// '+' after it) at p[i], 0 if none; `unbounded` when it has no upper limit,
// `optional` when it allows zero, `possessive` with the '+'.
std::size_t regex_repeat_length(std::string_view p, std::size_t i, bool& unbounded, bool& optional, bool& possessive);
// Offset of an unlimited repeat around a group that holds nothing but
// repeats and optional items ((a+)+, (\w+\s?)*): the shape that backtracks
// exponentially on a near miss. npos when there is none.
std::size_t nested_repeat(std::string_view p);

}  // namespace spamgate
