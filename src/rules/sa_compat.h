// sa_compat.h - what the rules parser needs to read SpamAssassin's own rule
// set as it is (Debian's /usr/share/spamassassin, or what sa-update writes).
//
// - sa_condition(): the expression of an `if` / `ifplugin` line, evaluated
//   as SpamAssassin 4.0.1 would with only the plugins we implement loaded.
// - sa_directive(): how each SpamAssassin directive that is not a rule
//   definition is taken: used here, or skipped (counted, with the reason).
// - ReplaceTags: the ReplaceTags plugin (replace_tag/_pre/_inter/_post,
//   replace_start/_end, replace_rules) applied to a rule's regex source.
// DIAGNOSTICS: sa_condition() returns an error text for a line it cannot
// read; ReplaceTags::add() one for a malformed directive.
// Everything here is pure and thread-safe.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "spamgate/status.h"

namespace spamgate {

// The SpamAssassin version whose rule set we read (`if (version >= ...)`,
// `require_version`).
inline constexpr std::string_view kSaVersion = "4.000001";

// Whether `plugin` (Mail::SpamAssassin::Plugin::X, or X) counts as loaded:
// true for the plugins whose directives and main eval tests we implement.
bool sa_plugin_loaded(std::string_view plugin);

// Value of the condition after `if` (or "plugin(X)" for `ifplugin X`).
Result<bool> sa_condition(std::string_view expr);

// A directive that defines no rule. kUse: the parser implements it;
// kSkip: accepted and not used (reason says why; lint --verbose counts it).
struct SaDirective {
  enum Kind { kUnknown, kUse, kSkip } kind = kUnknown;
  const char* reason = "";
};
SaDirective sa_directive(std::string_view lower_keyword);

class ReplaceTags {
 public:
  // keyword is replace_tag, replace_pre, replace_inter, replace_post,
  // replace_start, replace_end or replace_rules; `value` the rest of the line.
  Status add(std::string_view keyword, std::string_view value);
  bool wants(const std::string& rule) const { return rules_.count(rule) > 0; }
  // The regex source with its tags replaced, as the plugin does (up to five
  // passes for tags that hold tags).
  std::string apply(std::string_view pattern) const;
  const std::set<std::string>& rules() const { return rules_; }

 private:
  std::map<std::string, std::string> tag_, pre_, inter_, post_;
  std::string start_ = "<", end_ = ">";
  std::set<std::string> rules_;
};

}  // namespace spamgate
