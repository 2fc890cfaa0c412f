// parser.cc - the rules file parser (see ruleset.h).
//
// Syntax, one directive a line; `#` starts a comment (write `\#` for a
// literal hash, as in SpamAssassin):
//   header NAME Field[:raw|:addr|:name] =~ /re/flags [if-unset: TEXT]   (or !~)
//   header NAME exists:Field          header NAME ALL =~ /re/
//   body|rawbody|full|uri NAME /re/flags      (also m{re}, m!re!, ...)
//   meta NAME expression      score NAME n [n n n]      describe NAME text
//   tflags NAME word...       welcomelist_from glob...  blocklist_from glob...
//   welcomelist_auth glob...  def_welcomelist_auth glob... (SPF/DKIM/DMARC must pass)
//   welcomelist_from_rcvd glob relay-domain (the SMTP client's verified name must be under it)
//   welcomelist_to glob...  blocklist_to glob...  (a recipient listed)
//   unwelcomelist_from glob... (and un- for every list: removes what an earlier file listed)
// DIAGNOSTICS: every problem is a Diagnostic with file:line; parsing goes on.
// Lines that load but look wrong (a header name one typo from a well-known
// one, a nested repeat that backtracks) are warnings in RuleSet::warnings.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>

#include "rules/ruleset.h"
#include "rules/sa_compat.h"
#include "spamgate/message.h"

namespace spamgate {

namespace fs = std::filesystem;

const SymbolInfo* SymbolTable::find(std::string_view name) const {
  auto it = map_.find(std::string(name));
  return it == map_.end() ? nullptr : &it->second;
}

std::int64_t SymbolTable::score_millis(std::string_view name) const {
  const SymbolInfo* s = find(name);
  return s == nullptr ? 0 : s->score_millis;
}

bool glob_match(std::string_view p, std::string_view t) {
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, mark = 0;
  while (ti < t.size()) {
    char tc = t[ti];
    if (tc >= 'A' && tc <= 'Z') tc = static_cast<char>(tc - 'A' + 'a');
    if (pi < p.size() && (p[pi] == '?' || p[pi] == tc)) {
      ++pi;
      ++ti;
    } else if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

std::vector<std::string> rule_files_in(const std::string& path, std::vector<Diagnostic>& diags) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.path().extension() == ".cf" && e.is_regular_file(ec)) out.push_back(e.path().string());
    }
    if (ec) diags.push_back({path, 0, "cannot read rules directory: " + ec.message()});
    std::sort(out.begin(), out.end());
  } else if (fs::exists(path, ec)) {
    out.push_back(path);
  } else {
    diags.push_back({path, 0, "no such rules file or directory"});
  }
  return out;
}

namespace {

constexpr std::size_t kMaxLineBytes = 64 * 1024;
// Matches one `tflags multiple` rule counts in a text (SpamAssassin: maxhits=N).
constexpr int kMaxHits = 1000;

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 100) return false;
  if (!(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits off the first white-space separated word.
std::string_view next_word(std::string_view& s) {
  s = trim(s);
  std::size_t e = 0;
  while (e < s.size() && !std::isspace(static_cast<unsigned char>(s[e]))) ++e;
  std::string_view w = s.substr(0, e);
  s = trim(s.substr(e));
  return w;
}

// Removes a comment: an unescaped '#'; "\#" becomes '#'.
std::string strip_comment(std::string_view line) {
  std::string out;
  out.reserve(line.size());
  for (std::size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '#') {
      out.push_back('#');
      ++i;
      continue;
    }
    if (line[i] == '#') break;
    out.push_back(line[i]);
  }
  return out;
}

// A directive's keyword as SpamAssassin reads it: lower case, '-' as '_'.
std::string directive_key(std::string_view w) {
  std::string k = ascii_lower(w);
  std::replace(k.begin(), k.end(), '-', '_');
  return k;
}

// Edit distance (insert, delete, replace, swap two neighbours) of two short
// lower-case names, stopping early past `max`.
std::size_t edit_distance(std::string_view a, std::string_view b, std::size_t max) {
  if ((a.size() > b.size() ? a.size() - b.size() : b.size() - a.size()) > max) return max + 1;
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// A header rule's field that is not a well-known one but one or two typos
// away from one ("subjet"): that well-known name, else "". Unknown names far
// from every known one (X-Anything) are fine.
std::string_view misspelt_header(std::string_view lname) {
  static const char* const kKnown[] = {
      "Subject", "From", "To", "Cc", "Bcc", "Reply-To", "Sender", "Date", "Message-ID", "Received",
      "Return-Path", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version",
      "X-Mailer", "User-Agent", "List-Unsubscribe", "List-Id", "Precedence", "In-Reply-To", "References",
      "Organization", "X-Priority", "Importance", "Errors-To", "Delivered-To", "X-Originating-IP",
      "Authentication-Results", "DKIM-Signature", "Received-SPF", "X-Spam-Flag", "X-Spam-Status",
      "Thread-Index", "Resent-From", "Resent-Message-ID", "Envelope-To"};
  static const char* const kSpecial[] = {"all", "tocc", "messageid", "envelopefrom"};
  for (const char* k : kSpecial)
    if (lname == k) return {};
  std::string_view best;
  std::size_t best_d = 3;
  for (const char* k : kKnown) {
    std::string known = ascii_lower(k);
    if (lname == known) return {};
    const std::size_t max = known.size() <= 4 ? 1 : 2;
    std::size_t d = edit_distance(lname, known, max);
    if (d <= max && d < best_d) {
      best_d = d;
      best = k;
    }
  }
  return best;
}

// The closest of `names` to `typed` (case aside), at most two edits away
// (one for short names); "" when none is.
template <typename Names>
std::string closest(std::string_view typed, const Names& names) {
  const std::string t = ascii_lower(typed);
  std::string best;
  std::size_t best_d = 3;
  for (const auto& n : names) {
    const std::string name(n);
    const std::string low = ascii_lower(name);
    const std::size_t max = low.size() <= 4 ? 1 : 2;
    const std::size_t d = low == t ? 0 : edit_distance(t, low, max);
    if (d <= max && d < best_d) {
      best_d = d;
      best = name;
    }
  }
  return best;
}

struct ParsedRegex {
  std::string pattern;
  std::string flags;
  std::string_view rest;  // text after the flags
};

// Parses "/re/flags" or "m{re}flags" at the start of `s`.
Result<ParsedRegex> parse_regex_literal(std::string_view s) {
  s = trim(s);
  if (s.empty()) return Status::InvalidArgument("missing regex: write it as /pattern/flags");
  std::size_t i = 0;
  if (s[0] == 'm' && s.size() > 1 && !std::isalnum(static_cast<unsigned char>(s[1])) &&
      !std::isspace(static_cast<unsigned char>(s[1])))
    i = 1;
  char open = s[i];
  if (i == 0 && open != '/') return Status::InvalidArgument("regex must start with / or m followed by a delimiter");
  char close = open;
  if (open == '{') close = '}';
  else if (open == '(') close = ')';
  else if (open == '[') close = ']';
  else if (open == '<') close = '>';
  int depth = 0;
  std::size_t j = i + 1;
  for (; j < s.size(); ++j) {
    if (s[j] == '\\' && j + 1 < s.size()) {
      ++j;
      continue;
    }
    if (open != close && s[j] == open) ++depth;
    else if (s[j] == close) {
      if (depth == 0) break;
      --depth;
    }
  }
  if (j >= s.size()) return Status::InvalidArgument(std::string("regex is not closed: missing '") + close + "'");
  ParsedRegex r;
  r.pattern = std::string(s.substr(i + 1, j - i - 1));
  std::size_t k = j + 1;
  while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
  r.flags = std::string(s.substr(j + 1, k - j - 1));
  r.rest = trim(s.substr(k));
  return r;
}

struct Pending {
  std::string name;
  std::string file;
  int line;
  std::string text;  // score value text / description / tflags
  bool third_party = false;
};

class RuleParser {
 public:

  RuleParser(RuleSet& out, std::vector<Diagnostic>& diags, const RuleOptions& options)
      : out_(out), diags_(diags), options_(options) {}

  void file(const RuleSource& src) {
    const std::string& path = src.path;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      std::error_code ec;
      if (src.optional && !fs::exists(path, ec)) return;
      diags_.push_back({path, 0, "cannot read rules file"});
      return;
    }
    third_party_ = src.third_party;
    out_.files.push_back(path);
    // SpamAssassin's conditionals: `if EXPR` / `ifplugin NAME` ... [`else`]
    // `endif`, scoped to the file. Lines under a false condition are counted.
    struct Cond {
      int line;
      bool prev_skip;
      std::string prev_key;
    };
    std::vector<Cond> conds;
    bool skip = false;
    std::string skip_key;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.size() > kMaxLineBytes) {
        error(path, n, "line longer than " + std::to_string(kMaxLineBytes) + " bytes");
        continue;
      }
      if (line.find('\0') != std::string::npos) {
        error(path, n, "NUL byte in rules file (is this a binary file?)");
        continue;
      }
      std::string text = strip_comment(line);
      std::string_view rest = trim(text);
      if (rest.empty()) continue;
      std::string_view after = rest;
      std::string kw = directive_key(next_word(after));
      if (kw == "lang") {  // `lang xx directive...`: a translation
        std::string_view lang = next_word(after);
        if (lang.substr(0, 2) != "en") {
          note("lang: translations of descriptions and reports (only English is used)", path, n);
          continue;
        }
        rest = after;
        kw = directive_key(next_word(after));
      }
      if (kw == "if" || kw == "ifplugin") {
        if (after.empty()) {
          error(path, n, "'" + kw + "' needs a condition");
          continue;
        }
        conds.push_back({n, skip, skip_key});
        auto v = sa_condition(kw == "ifplugin" ? "plugin(" + std::string(after) + ")" : std::string(after));
        if (!v.ok()) error(path, n, v.status().message());
        if (!v.ok() || !v.value()) {
          if (!skip) skip_key = "lines under '" + kw + " " + std::string(after) + "' (false here)";
          skip = true;
        }
        continue;
      }
      if (kw == "else" || kw == "endif") {
        if (!after.empty()) error(path, n, "'" + kw + "' stands alone on its line");
        if (conds.empty()) {
          error(path, n, "'" + kw + "' without an 'if' or 'ifplugin' before it");
          continue;
        }
        if (kw == "endif") {
          skip = conds.back().prev_skip;
          skip_key = conds.back().prev_key;
          conds.pop_back();
        } else if (conds.back().prev_skip) {
          skip = true;
        } else {
          skip = !skip;
          skip_key = "lines under the 'else' of the 'if' at " + path + ":" + std::to_string(conds.back().line);
        }
        continue;
      }
      if (skip) {
        note(skip_key, path, n);
        static const std::set<std::string> kDefines = {"header", "body", "rawbody", "full", "uri", "meta", "mimeheader"};
        if (kDefines.count(kw)) unloaded_.insert(std::string(next_word(after)));
        continue;
      }
      if (kw == "require_version") {
        std::string_view v = trim(after);
        if (v != kSaVersion && v != "@@VERSION@@") {
          out_.warnings.push_back({path, n, "file requires SpamAssassin " + std::string(v) + "; rules are read as of " +
                                                std::string(kSaVersion) + ": the rest of this file is skipped"});
          break;
        }
        continue;
      }
      comment_cut_ = text.size() < line.size() && line.find('#') != std::string::npos;
      directive(path, n, std::string(rest));
    }
    for (const Cond& c : conds) error(path, c.line, "'if' or 'ifplugin' without its 'endif'");
  }

  void finish(const std::vector<SymbolDef>& builtins) {
    for (const SymbolDef& b : builtins) {
      SymbolInfo& s = out_.symbols.upsert(b.name);
      s.score_millis = std::llround(b.default_score * 1000);
      s.description = b.description;
      builtin_.insert(b.name);
    }
    compile_regexes();
    // Rules in definition order; a redefinition replaced the earlier one.
    // Default scores as SpamAssassin's: 1, T_ (testing) rules 0.01, __ rules
    // none; `tflags nice` makes them negative.
    for (auto& [name, rule] : defined_) {
      SymbolInfo& s = out_.symbols.upsert(name);
      s.score_millis = name.rfind("__", 0) == 0 ? 0 : name.rfind("T_", 0) == 0 ? 10 : 1000;
      s.file = rule.file;
      s.line = rule.line;
      s.runs = true;
    }
    for (const auto& [name, at] : inert_) {
      if (defined_.count(name)) continue;
      SymbolInfo& s = out_.symbols.upsert(name);
      s.score_millis = 0;
      s.file = at.file;
      s.line = at.line;
    }
    for (const Pending& p : tflags_) {
      if (!known(p.name)) {
        unknown_target(p, "tflags");
        continue;
      }
      std::istringstream words(p.text);
      std::string w;
      bool nice = false;
      int maxhits = 1;
      while (words >> w) {
        nice = nice || w == "nice";
        if (w == "multiple" && maxhits == 1) maxhits = kMaxHits;
        if (w.rfind("maxhits=", 0) == 0) maxhits = std::clamp(std::atoi(w.c_str() + 8), 1, kMaxHits);
      }
      SymbolInfo& s = out_.symbols.upsert(p.name);
      s.nice = nice;
      if (nice && defined_.count(p.name) && p.name.rfind("__", 0) != 0) s.score_millis = -std::abs(s.score_millis);
      if (auto it = defined_.find(p.name); it != defined_.end()) {
        it->second.maxhits = maxhits;
        it->second.nosubject = p.text.find("nosubject") != std::string::npos;
      }
    }
    for (const Pending& p : describes_) {
      if (!known(p.name)) unknown_target(p, "describe");
      else out_.symbols.upsert(p.name).description = p.text;
    }
    for (const Pending& p : scores_) {
      if (!known(p.name)) {
        unknown_target(p, "score");
        continue;
      }
      SymbolInfo& s = out_.symbols.upsert(p.name);
      s.score_millis = std::llround(std::strtod(p.text.c_str(), nullptr) * 1000);
      s.score_file = p.file;
      s.score_line = p.line;
      s.disabled = s.score_millis == 0 && defined_.count(p.name) > 0;
    }
    resolve_metas();
    for (auto& [order, name] : order_) {
      auto it = defined_.find(name);
      if (it != defined_.end() && it->second.kind != RuleKind::kMeta) out_.rules.push_back(it->second);
    }
  }

 private:
  void error(const std::string& file, int line, std::string msg) {
    diags_.push_back({file, line, std::move(msg)});
  }

  bool known(const std::string& name) const {
    return defined_.count(name) > 0 || builtin_.count(name) > 0 || inert_.count(name) > 0;
  }

  // Counts a line read and not used, under `key` (see RuleSet::skipped).
  void note(const std::string& key, const std::string& file, int line) {
    SkipCount& s = out_.skipped[key];
    if (s.count++ == 0) s.first = {file, line, key};
  }

  // score/describe/tflags for a rule no file defines: an error in our files
  // (a typo); SpamAssassin's own set has many (scores of rules of plugins
  // not loaded) and SpamAssassin ignores them, so do we, counted.
  void unknown_target(const Pending& p, const char* what) {
    if (failed(p.name)) return;
    if (p.third_party || unloaded_.count(p.name)) {
      note(std::string(what) + " for a rule that is not loaded (ignored, as SpamAssassin does)", p.file, p.line);
      return;
    }
    std::vector<std::string> names;
    for (const auto& [name, r] : defined_) names.push_back(name);
    for (const auto& [name, info] : out_.symbols.all()) names.push_back(name);
    const std::string near = closest(p.name, names);
    error(p.file, p.line, std::string(what) + (std::string_view(what) == "score" ? " for unknown symbol '" : " for unknown rule '") +
                              p.name + "'" + (near.empty() || near == p.name ? "" : "; did you mean " + near + "?"));
  }

  // Regexes are compiled once every line is read: replace_rules may come
  // after the rule it rewrites.
  void compile_regexes() {
    for (auto it = defined_.begin(); it != defined_.end();) {
      Rule& r = it->second;
      if (r.kind == RuleKind::kMeta || r.kind == RuleKind::kEval || r.exists || r.re) {
        ++it;
        continue;
      }
      std::string pattern = replace_.wants(r.name) ? replace_.apply(r.pattern) : r.pattern;
      if (r.third_party && r.kind == RuleKind::kBody) pattern = regex_line_anchors(pattern);
      // A rule with capture templates is checked here with an empty group
      // in each (lint reports its syntax) and compiled per message.
      r.templates = regex_templates(pattern);
      std::string checked = r.templates.empty() ? pattern
                                                : *regex_fill_templates(pattern, [](std::string_view) { return "(?:)"; });
      auto re = Regex::compile(checked, r.flags);
      if (!re.ok() && r.flags.find('b') != std::string::npos) {  // \x{263A} and kin need characters
        std::string chars = r.flags;
        chars.erase(chars.find('b'), 1);
        if (auto c = Regex::compile(checked, chars); c.ok()) {
          r.flags = chars;
          re = std::move(c);
        }
      }
      if (!re.ok() && r.third_party && re.status().message().find("too large") != std::string::npos) {
        // Over PCRE2's 64 KB of compiled code (ReplaceTags spells each
        // letter as an alternation of look-alikes; Hyperscan refuses these
        // too): counted, and the rule never hits.
        note("regex too large for PCRE2 once its tags are replaced (the rule never hits)", r.file, r.line);
        inert_[r.name] = {r.file, r.line, "too large"};
        it = defined_.erase(it);
        continue;
      }
      if (!re.ok()) {
        error(r.file, r.line, "rule '" + r.name + "': " + re.status().message());
        failed_.insert(r.name);
        it = defined_.erase(it);
        continue;
      }
      if (std::size_t at = nested_repeat(pattern); at != std::string::npos && !r.third_party)
        out_.warnings.push_back({r.file, r.line, "rule '" + r.name + "': nested repeat at offset " + std::to_string(at) +
                                                     " can backtrack exponentially; on such text PCRE2 stops at "
                                                     "limits.pcre_match_limit and the rule does not hit (make the inner "
                                                     "repeat possessive, e.g. a++, or the group atomic, (?>...))"});
      if (r.templates.empty()) r.re = std::make_shared<const Regex>(std::move(re.value()));
      else r.pattern = std::move(pattern);
      ++it;
    }
  }
  // A rule whose definition had an error: later lines naming it are not
  // reported again (the first error is the one to fix).
  bool failed(const std::string& name) const { return failed_.count(name) > 0 && !known(name); }

  void define(Rule r) {
    auto it = defined_.find(r.name);
    if (it != defined_.end()) {
      // Keep the original position so evaluation order stays stable.
      it->second = std::move(r);
      return;
    }
    order_.emplace(next_order_++, r.name);
    defined_.emplace(r.name, std::move(r));
  }

  void directive(const std::string& file, int line, const std::string& text) {
    std::size_t before = diags_.size();
    std::string name;
    directive_body(file, line, text, name);
    if (diags_.size() != before && !name.empty()) failed_.insert(name);
  }

  // Parses one line; `name_out` gets the rule name it is about, if any.
  void directive_body(const std::string& file, int line, const std::string& text, std::string& name_out) {
    std::string_view rest(text);
    std::string_view kw = next_word(rest);
    if (kw.empty()) return;
    std::string keyword = ascii_lower(kw);
    // SpamAssassin's set names its own symbols for the authenticated
    // lists: left as before (skipped, see sa_compat.cc).
    const bool plain = keyword == "welcomelist_from" || keyword == "whitelist_from" ||
                       keyword == "blocklist_from" || keyword == "blacklist_from";
    if (!third_party_ || plain) {
      std::string warning;
      if (std::optional<Status> st = add_list_line(out_.lists, keyword, rest, warning)) {
        if (!st->ok()) return error(file, line, st->message());
        // Anyone can write a From address: a spammer who guesses a listed
        // sender would get -100. SpamAssassin's set has its own lists.
        if (!warning.empty() && !third_party_) out_.warnings.push_back({file, line, warning});
        return;
      }
    }
    if (keyword.rfind("replace_", 0) == 0 && sa_directive(keyword).kind == SaDirective::kUse) {
      if (Status st = replace_.add(keyword, rest); !st.ok()) error(file, line, st.message());
      return;
    }
    if (keyword == "redirector_pattern") {
      auto lit = parse_regex_literal(rest);
      if (!lit.ok()) return error(file, line, "redirector_pattern: " + lit.status().message());
      auto re = Regex::compile(lit->pattern, lit->flags + (third_party_ ? "b" : ""));
      if (!re.ok()) return error(file, line, "redirector_pattern: " + re.status().message());
      out_.redirectors.push_back(std::make_shared<const Regex>(std::move(re.value())));
      return;
    }
    if (keyword == "freemail_domains") {
      while (!rest.empty()) out_.freemail_domains.add(std::string(next_word(rest)));
      return;
    }
    if (keyword == "originating_ip_headers") {
      std::vector<std::string>& names = out_.originating_ip_headers;
      while (!rest.empty()) {
        std::string name = ascii_lower(next_word(rest));
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
      }
      return;
    }
    if (keyword == "clear_originating_ip_headers") {
      out_.originating_ip_headers.clear();
      return;
    }
    if (SaDirective d = sa_directive(keyword); d.kind == SaDirective::kSkip) {
      note("directive " + keyword + ": " + d.reason, file, line);
      // In our own files a SpamAssassin setting spamgate keeps in its
      // config is a mistake worth a word (required_score: the threshold).
      if (!third_party_ && (keyword == "required_score" || keyword == "required_hits"))
        out_.warnings.push_back({file, line, keyword + " is not read from rules files: set 'threshold' in spamgate.toml"});
      return;
    }
    static const std::set<std::string> kRuleWords = {"header", "body", "rawbody", "full", "uri",
                                                     "meta", "score", "describe", "tflags", "mimeheader"};
    if (!kRuleWords.count(keyword)) {
      static const char* const kOthers[] = {"welcomelist_from", "welcomelist_auth", "def_welcomelist_auth",
                                            "welcomelist_from_rcvd", "welcomelist_to", "blocklist_from",
                                            "blocklist_to", "unwelcomelist_from", "unblocklist_from",
                                            "redirector_pattern", "replace_rules", "replace_tag"};
      std::vector<std::string> words(kRuleWords.begin(), kRuleWords.end());
      words.insert(words.end(), std::begin(kOthers), std::end(kOthers));
      const std::string near = closest(keyword, words);
      return error(file, line, "unknown directive '" + std::string(kw) + "'" +
                                   (near.empty() ? "" : "; did you mean " + near + "?"));
    }
    std::string name(next_word(rest));
    name_out = name;
    if (!valid_name(name)) return error(file, line, "'" + keyword + "' needs a rule name (letters, digits, _)");
    if (keyword == "score") {
      std::string_view v = rest;
      std::vector<std::string> values;
      while (!v.empty()) {
        std::string value(next_word(v));
        // SpamAssassin writes a score it must not change in parentheses.
        if (value.size() > 2 && value.front() == '(' && value.back() == ')') value = value.substr(1, value.size() - 2);
        char* end = nullptr;
        double d = std::strtod(value.c_str(), &end);
        if (value.empty() || end == nullptr || *end != '\0' || !std::isfinite(d) || std::fabs(d) > 1000)
          return error(file, line, values.empty() ? "score for '" + name + "' must be a number between -1000 and 1000"
                                                  : "unexpected '" + value + "' after score");
        values.push_back(value);
      }
      if (values.empty()) return error(file, line, "score for '" + name + "' must be a number between -1000 and 1000");
      if (values.size() != 1 && values.size() != 4)
        return error(file, line, "score for '" + name + "' takes one number, or four (SpamAssassin's score sets)");
      // Four: one per score set (network tests on or off, classifier on or off).
      scores_.push_back({name, file, line, values.size() == 4 ? values[static_cast<std::size_t>(options_.score_set & 3)] : values[0], third_party_});
      return;
    }
    if (keyword == "describe") return describes_.push_back({name, file, line, std::string(rest), third_party_});
    if (keyword == "tflags") return tflags_.push_back({name, file, line, std::string(rest), third_party_});

    Rule r;
    r.name = name;
    r.file = file;
    r.line = line;
    r.third_party = third_party_;
    if (keyword == "meta") {
      r.kind = RuleKind::kMeta;
      if (rest.empty()) return error(file, line, "meta '" + name + "' has no expression");
      if (rest.size() > 8192) return error(file, line, "meta expression longer than 8192 bytes");
      auto m = parse_meta(rest);
      if (!m.ok()) return error(file, line, m.status().message());
      r.meta = std::shared_ptr<const MetaExpr>(std::move(m.value()));
      return define(std::move(r));
    }
    // eval: tests call code; those we have not implemented are counted in
    // SpamAssassin's set (the rule never hits) and refused in our own files.
    std::string_view spec = rest;
    if (keyword == "header") {
      std::string_view probe = rest;
      std::string_view first = next_word(probe);
      // The call may hold spaces: eval:check_for_shifted_date('-6', '-3').
      if (first.rfind("eval:", 0) == 0 || first.rfind("rbleval:", 0) == 0) spec = rest.substr(rest.find(':') + 1);
      else spec = {};
    } else if (rest.rfind("eval:", 0) == 0) {
      spec = rest.substr(5);
    } else {
      spec = {};
    }
    if (!spec.empty()) {
      std::string fn(spec.substr(0, spec.find('(')));
      if (!third_party_) return error(file, line, "eval:" + fn + "() is not implemented; write a regex");
      std::string call_fn;
      std::vector<std::string> args;
      if (parse_eval_call(spec, call_fn, args)) {
        if (SaEvalFn f = sa_eval(call_fn, args)) {
          r.kind = RuleKind::kEval;
          r.eval = f;
          r.eval_args = std::move(args);
          return define(std::move(r));
        }
      }
      inert_[name] = {file, line, fn};
      note("eval " + fn + "(): not implemented (the rule never hits)", file, line);
      return;
    }
    if (keyword == "header" || keyword == "mimeheader") {
      r.kind = keyword == "header" ? RuleKind::kHeader : RuleKind::kMimeHeader;
      if (!header_spec(file, line, rest, r)) return;
      if (std::string_view near = misspelt_header(r.header); !near.empty() && !third_party_)
        out_.warnings.push_back({file, line, "rule '" + name + "': '" + r.header +
                                                 "' is not a header field mail has; did you mean " + std::string(near) + "?"});
      if (r.exists) return define(std::move(r));
    } else {
      r.kind = keyword == "body"      ? RuleKind::kBody
               : keyword == "rawbody" ? RuleKind::kRawBody
               : keyword == "full"    ? RuleKind::kFull
                                      : RuleKind::kUri;
    }
    auto lit = parse_regex_literal(rest);
    if (!lit.ok()) {
      // SpamAssassin's rule: an unescaped '#' starts a comment, even in a regex.
      if (comment_cut_)
        return error(file, line, lit.status().message() + " ('#' starts a comment: write \\# for a literal # in a regex)");
      return error(file, line, lit.status().message());
    }
    std::string_view after = lit->rest;
    if ((r.kind == RuleKind::kHeader || r.kind == RuleKind::kMimeHeader) && !after.empty()) {
      const std::string_view kIfUnset = "[if-unset:";
      if (after.substr(0, kIfUnset.size()) == kIfUnset && after.back() == ']') {
        r.has_if_unset = true;
        r.if_unset = std::string(trim(after.substr(kIfUnset.size(), after.size() - kIfUnset.size() - 1)));
        after = {};
      }
    }
    if (!after.empty()) return error(file, line, "unexpected text after regex: '" + std::string(after.substr(0, 40)) + "'");
    for (char f : lit->flags) {
      if (f != 'i' && f != 'm' && f != 's' && f != 'x')
        return error(file, line, "rule '" + name + "': unknown regex flag '" + std::string(1, f) + "' (use i, m, s, x)");
    }
    r.pattern = lit->pattern;
    // SpamAssassin's regexes match bytes (its tags spell UTF-8 sequences
    // byte by byte); ours match characters.
    r.flags = lit->flags + (third_party_ ? "b" : "");
    // Their body rules match paragraph by paragraph, ours see the
    // paragraphs a line each (sa_body_text in rules_check.cc): multi-line so
    // ^ and $ anchor at each, \A \z \Z turned into them at compile, and no
    // /s (a paragraph holds no newline, so in SpamAssassin it changes
    // nothing; here it would let '.' run on into the next paragraph).
    if (third_party_ && r.kind == RuleKind::kBody) {
      if (r.flags.find('m') == std::string::npos) r.flags += "m";
      if (std::size_t at = r.flags.find('s'); at != std::string::npos) r.flags.erase(at, 1);
    }
    define(std::move(r));
  }

  // ALL, ToCc, MESSAGEID, EnvelopeFrom, X-Spam-Relays-{Trusted,Untrusted,
  // Internal,External}: fields SpamAssassin computes. Its
  // own files are read with its case rules (MESSAGEID and ALL exactly;
  // "MessageID" is a plain field); ours ignore case.
  bool pseudo_field(std::string_view f) const {
    const std::string l = ascii_lower(f);
    if (l.rfind("x-spam-relays-", 0) == 0) return true;
    if (f == "ALL-TRUSTED" || f == "ALL-UNTRUSTED" || f == "ALL-INTERNAL" || f == "ALL-EXTERNAL") return true;
    if (!third_party_) return l == "all" || l == "tocc" || l == "messageid" || l == "envelopefrom";
    return f == "ALL" || f == "MESSAGEID" || l == "tocc" || l == "envelopefrom";
  }

  // "Field[:mod] =~" / "exists:Field"; leaves `rest` at the regex.
  bool header_spec(const std::string& file, int line, std::string_view& rest, Rule& r) {
    if (rest.rfind("exists:", 0) == 0) {
      std::string_view field = rest.substr(7);
      std::string_view f = next_word(field);
      if (f.empty() || !field.empty()) {
        error(file, line, "write 'header NAME exists:Field-Name'");
        return false;
      }
      r.exists = true;
      r.header = ascii_lower(f);
      r.pseudo = pseudo_field(f);
      return true;
    }
    std::size_t op = rest.find("=~");
    std::size_t nop = rest.find("!~");
    if (nop != std::string_view::npos && (op == std::string_view::npos || nop < op)) {
      op = nop;
      r.negate = true;
    }
    if (op == std::string_view::npos) {
      error(file, line, "header rule needs '=~' or '!~' (or exists:Field)");
      return false;
    }
    std::string spec(trim(rest.substr(0, op)));
    rest = rest.substr(op + 2);
    std::size_t colon = spec.find(':');
    std::string field = spec.substr(0, colon);
    // Modifiers, possibly several (From:name:raw): :raw reads the field as
    // on the wire; :addr / :name take the address or the display name.
    bool raw = false;
    while (colon != std::string::npos) {
      std::size_t next = spec.find(':', colon + 1);
      std::string mod = ascii_lower(spec.substr(colon + 1, next == std::string::npos ? next : next - colon - 1));
      colon = next;
      if (mod == "raw") raw = true;
      else if (mod == "addr" && r.kind == RuleKind::kHeader) r.mod = HeaderMod::kAddr;
      else if (mod == "name" && r.kind == RuleKind::kHeader) r.mod = HeaderMod::kName;
      else {
        error(file, line, "unknown header modifier ':" + mod + (r.kind == RuleKind::kHeader ? "' (use :raw, :addr or :name)" : "' (use :raw)"));
        return false;
      }
    }
    if (raw && r.mod == HeaderMod::kDecoded) r.mod = HeaderMod::kRaw;
    if (field.empty() || field.find_first_of(" \t") != std::string::npos) {
      error(file, line, "header rule needs one field name before '=~'");
      return false;
    }
    r.header = ascii_lower(field);
    r.pseudo = pseudo_field(field);
    return true;
  }

  void resolve_metas() {
    std::map<std::string, std::vector<std::string>> deps;
    for (auto& [order, name] : order_) {
      auto found = defined_.find(name);
      if (found == defined_.end() || found->second.kind != RuleKind::kMeta) continue;  // erased: a bad regex
      const Rule& r = found->second;
      std::vector<std::string> syms;
      r.meta->symbols(syms);
      bool ok = true;
      for (const std::string& s : syms) {
        if (known(s) || unloaded_.count(s)) continue;
        if (r.third_party && !failed(s)) {  // SpamAssassin: an undefined rule counts as not hit
          note("meta names a rule no file defines (it counts as not hit, as in SpamAssassin)", r.file, r.line);
          continue;
        }
        if (!failed(s)) error(r.file, r.line, "meta '" + name + "' refers to unknown rule '" + s + "'");
        ok = false;
      }
      if (ok) deps[name] = syms;
      else bad_.insert(name);
    }
    // Depth-first topological order; a back edge is a cycle. Every meta on
    // a cycle is an error naming the whole cycle (A -> B -> A), so the file
    // is refused by lint and by a reload whichever line is looked at.
    std::map<std::string, int> state;  // 0 new, 1 on stack, 2 done
    std::vector<std::string> sorted, stack;
    std::set<std::string> reported;
    std::function<bool(const std::string&)> visit = [&](const std::string& n) -> bool {
      if (state[n] == 2) return !bad_.count(n);
      state[n] = 1;
      stack.push_back(n);
      bool ok = true;
      for (const std::string& d : deps[n]) {
        if (!deps.count(d)) continue;  // a plain rule or built-in symbol
        if (state[d] == 1) {
          auto from = std::find(stack.begin(), stack.end(), d);
          std::string path;
          for (auto it = from; it != stack.end(); ++it) path += *it + " -> ";
          path += d;
          for (auto it = from; it != stack.end(); ++it) {
            if (!reported.insert(*it).second) continue;
            const Rule& r = defined_.at(*it);
            error(r.file, r.line, d == n && from + 1 == stack.end()
                                      ? "meta '" + n + "' refers to itself"
                                      : "meta '" + *it + "' is part of a cycle of metas: " + path);
            bad_.insert(*it);
          }
          ok = false;
        } else if (!visit(d)) {
          ok = false;
        }
      }
      stack.pop_back();
      state[n] = 2;
      if (ok) sorted.push_back(n);
      else bad_.insert(n);
      return ok;
    };
    for (auto& [order, name] : order_) {
      if (deps.count(name) && state[name] == 0) visit(name);
    }
    for (const std::string& n : sorted) out_.metas.push_back(defined_.at(n));
  }

  RuleSet& out_;
  std::vector<Diagnostic>& diags_;
  RuleOptions options_;
  bool third_party_ = false;  // the file being read is SpamAssassin's (see RuleSource)
  ReplaceTags replace_;
  std::map<std::string, Diagnostic> inert_;  // eval rules we do not implement: known, never hit
  std::set<std::string> unloaded_;  // rules under a false if/ifplugin: not loaded
  std::unordered_map<std::string, Rule> defined_;
  std::map<int, std::string> order_;
  int next_order_ = 0;
  std::set<std::string> builtin_;
  std::set<std::string> bad_;
  bool comment_cut_ = false;  // the line being parsed had a '#' comment cut off
  std::set<std::string> failed_;
  std::vector<Pending> scores_, describes_, tflags_;
};

}  // namespace

void parse_rule_files(const std::vector<RuleSource>& files, const std::vector<SymbolDef>& builtins,
                      const RuleOptions& options, RuleSet& out, std::vector<Diagnostic>& diags) {
  RuleParser p(out, diags, options);
  for (const RuleSource& f : files) p.file(f);
  p.finish(builtins);
}

void parse_rule_files(const std::vector<std::string>& files, const std::vector<SymbolDef>& builtins,
                      bool optional_last, RuleSet& out, std::vector<Diagnostic>& diags) {
  std::vector<RuleSource> sources;
  for (std::size_t i = 0; i < files.size(); ++i) sources.push_back({files[i], optional_last && i + 1 == files.size(), false});
  parse_rule_files(sources, builtins, RuleOptions{}, out, diags);
}

std::optional<Status> add_list_line(AddressLists& lists, const std::string& keyword, std::string_view rest,
                                    std::string& warning) {
  auto address = [](const std::string& a) {
    return a.find('@') != std::string::npos || a.find('*') != std::string::npos
               ? Status::Ok()
               : Status::InvalidArgument("'" + a + "' is not an address or glob such as *@example.com");
  };
  if (keyword == "unwelcomelist_from_rcvd" || keyword == "unwhitelist_from_rcvd") {
    if (rest.empty()) return Status::InvalidArgument(keyword + " needs at least one address or glob");
    while (!rest.empty()) {
      const std::string addr = ascii_lower(next_word(rest));
      auto& l = lists.welcomelist_rcvd;
      l.erase(std::remove_if(l.begin(), l.end(), [&](const auto& e) { return e.first == addr; }), l.end());
    }
    return Status::Ok();
  }
  if (keyword == "welcomelist_from_rcvd" || keyword == "whitelist_from_rcvd") {
    std::string addr = ascii_lower(next_word(rest)), relay = ascii_lower(next_word(rest));
    if (addr.empty() || relay.empty() || !rest.empty())
      return Status::InvalidArgument(keyword + " takes an address (or glob) and a relay domain: "
                                               "welcomelist_from_rcvd *@partner.example mail.partner.example");
    if (Status st = address(addr); !st.ok()) return st;
    while (!relay.empty() && relay.front() == '.') relay.erase(0, 1);
    if (relay.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-") != std::string::npos || relay.empty())
      return Status::InvalidArgument("'" + relay + "' is not a domain name");
    lists.welcomelist_rcvd.emplace_back(addr, relay);
    return Status::Ok();
  }
  // SpamAssassin's names and their older ones; un*: removes an entry a
  // file read before added (the local file over a shipped list).
  static const std::map<std::string, std::vector<std::string> AddressLists::*> kLists = {
      {"welcomelist_from", &AddressLists::welcomelist},   {"whitelist_from", &AddressLists::welcomelist},
      {"blocklist_from", &AddressLists::blocklist},       {"blacklist_from", &AddressLists::blocklist},
      {"welcomelist_auth", &AddressLists::welcomelist_auth}, {"whitelist_auth", &AddressLists::welcomelist_auth},
      {"def_welcomelist_auth", &AddressLists::def_welcomelist_auth},
      {"def_whitelist_auth", &AddressLists::def_welcomelist_auth},
      {"welcomelist_to", &AddressLists::welcomelist_to},  {"whitelist_to", &AddressLists::welcomelist_to},
      {"blocklist_to", &AddressLists::blocklist_to},      {"blacklist_to", &AddressLists::blocklist_to}};
  const bool remove = keyword.rfind("un", 0) == 0;
  auto it = kLists.find(remove ? keyword.substr(2) : keyword);
  if (it == kLists.end()) return std::nullopt;
  std::vector<std::string>* list = &(lists.*(it->second));
  if (rest.empty()) return Status::InvalidArgument(keyword + " needs at least one address or glob");
  while (!rest.empty()) {
    std::string addr = ascii_lower(next_word(rest));
    if (Status st = address(addr); !st.ok()) return st;
    if (remove) list->erase(std::remove(list->begin(), list->end(), addr), list->end());
    else list->push_back(addr);
  }
  if (remove) return Status::Ok();
  if (list == &lists.welcomelist)
    warning = keyword + " matches a From address anyone can write; "
                        "'welcomelist_auth ADDRESS' counts only when SPF, DKIM or DMARC authenticates it";
  return Status::Ok();
}

std::string closest_name(std::string_view typed, const std::vector<std::string>& names) {
  return closest(typed, names);
}

}  // namespace spamgate
