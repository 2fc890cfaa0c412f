// ruleset.h - SpamAssassin-style rule files, parsed and compiled.
//
// parse_rule_files() reads files in the order given (later definitions and
// `score` lines override earlier ones), compiles every regex once (PCRE2 JIT),
// resolves metas (dangling references and cycles are errors) and builds the
// symbol table from the rules plus the built-in checks' symbols. Every error
// is reported as file:line and parsing goes on, so `lint` shows them all.
// A RuleSet is immutable after parsing: thread-safe to read.
#pragma once

#include <map>
#include <unordered_set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rules/meta.h"
#include "rules/regex.h"
#include "rules/sa_evals.h"
#include "spamgate/check.h"
#include "spamgate/symbols.h"

namespace spamgate {

enum class RuleKind { kHeader, kBody, kRawBody, kFull, kUri, kMeta, kMimeHeader, kEval };
enum class HeaderMod { kDecoded, kRaw, kAddr, kName };

struct Rule {
  std::string name;
  RuleKind kind = RuleKind::kBody;
  std::string file;
  int line = 0;
  // header rules
  std::string header;        // lower-case field name, or "all", "tocc", "messageid", "envelopefrom"
  bool pseudo = false;       // `header` is one of those pseudo-fields (SpamAssassin spells ALL and MESSAGEID in capitals)
  HeaderMod mod = HeaderMod::kDecoded;
  bool exists = false;       // header NAME exists:Field
  bool negate = false;       // !~
  bool has_if_unset = false; // [if-unset: TEXT]
  std::string if_unset;
  int maxhits = 1;           // tflags multiple (maxhits=N): each match up to N counts
  bool nosubject = false;    // tflags nosubject: a body rule that skips the subject line
  bool third_party = false;  // read from a rules_dirs entry after the first (SpamAssassin's set)
  std::string pattern, flags;  // the regex as written (before replace_rules), until compiled
  std::shared_ptr<const Regex> re;
  // SpamAssassin's capture templates (%{NAME}, see regex_templates()): the
  // names `pattern` uses. Such a rule has no `re`: it is compiled per
  // message once the capture rules have run, and skipped when a name has no value.
  std::vector<std::string> templates;
  std::shared_ptr<const MetaExpr> meta;
  // kEval: one of SpamAssassin's eval: tests we implement (rules/sa_evals.h).
  SaEvalFn eval = nullptr;
  std::vector<std::string> eval_args;
};

// The sender lists of a rules file, or of one recipient's settings
// (recipients.h): lower-case address globs.
struct AddressLists {
  std::vector<std::string> welcomelist;  // welcomelist_from: any From may claim it
  std::vector<std::string> blocklist;    // blocklist_from
  // welcomelist_auth / def_welcomelist_auth: counts only when SPF, an
  // aligned DKIM signature or DMARC authenticates the address (MetaCheck).
  std::vector<std::string> welcomelist_auth;
  std::vector<std::string> def_welcomelist_auth;
  // welcomelist_from_rcvd ADDRESS RELAY: the address, when the SMTP client's
  // verified name is RELAY or under it ({glob, relay}, lower case).
  std::vector<std::pair<std::string, std::string>> welcomelist_rcvd;
  // welcomelist_to / blocklist_to: a recipient (To, Cc or the envelope)
  // listed, SpamAssassin's USER_IN_WELCOMELIST_TO / USER_IN_BLOCKLIST_TO.
  std::vector<std::string> welcomelist_to;
  std::vector<std::string> blocklist_to;
  bool empty() const {
    return welcomelist.empty() && blocklist.empty() && welcomelist_auth.empty() && def_welcomelist_auth.empty() &&
           welcomelist_rcvd.empty() && welcomelist_to.empty() && blocklist_to.empty();
  }
};

// One list line ("welcomelist_auth *@a.example *@b.example", the keyword
// lower case, `rest` the words after it) added to `lists`. nullopt: the
// keyword is not a list's; else Ok, or the error for this line (`warning`:
// a legal line worth a word, e.g. a plain welcomelist_from).
std::optional<Status> add_list_line(AddressLists& lists, const std::string& keyword, std::string_view rest,
                                    std::string& warning);

// The closest of `names` to `typed` (case aside) for a "did you mean",
// at most two edits away; "" when none is.
std::string closest_name(std::string_view typed, const std::vector<std::string>& names);

struct RuleSet {
  std::vector<Rule> rules;  // regex and header rules, in definition order
  std::vector<Rule> metas;  // meta rules, dependencies first
  AddressLists lists;  // welcomelist_* / blocklist_* entries
  DomainList freemail_domains;  // SpamAssassin's freemail_domains
  // SpamAssassin's originating_ip_headers (lower case): fields whose address
  // counts as the oldest relay (see parse_relays()).
  std::vector<std::string> originating_ip_headers;
  // SpamAssassin's redirector_pattern: a link that matches also gives the
  // link in capture group 1 (rds.yahoo.com/...*-http://target).
  std::vector<std::shared_ptr<const Regex>> redirectors;
  SymbolTable symbols;
  std::vector<std::string> files;  // as read
  std::vector<Diagnostic> warnings;  // legal but suspect lines (lint prints them; loading goes on)
  // What was read and not used (SpamAssassin directives we skip, eval tests
  // not implemented, blocks of plugins not loaded...): one entry per kind,
  // with its count and first place. `lint --verbose` lists them.
  std::map<std::string, SkipCount> skipped;
};

// One rules file to read. `third_party`: a file of a later rules_dirs entry
// (SpamAssassin's own set, as the admin installed it), read as SpamAssassin
// reads it: its regexes match bytes, and a meta may name a rule that does not
// exist (it counts as not hit), where our own files get an error.
struct RuleSource {
  std::string path;
  bool optional = false;  // the admin's local file: may be absent
  bool third_party = false;
};

struct RuleOptions {
  // SpamAssassin's score set, when a `score` line gives four: bit 0 network
  // tests on, bit 1 the Bayes classifier on.
  int score_set = 0;
};

// Symbols of the rule engine itself.
inline constexpr const char* kWelcomelistSymbol = "USER_IN_WELCOMELIST";
inline constexpr const char* kBlocklistSymbol = "USER_IN_BLOCKLIST";
inline constexpr const char* kWelcomelistAuthSymbol = "USER_IN_WELCOMELIST_AUTH";
inline constexpr const char* kDefWelcomelistAuthSymbol = "USER_IN_DEF_WELCOMELIST_AUTH";
inline constexpr const char* kWelcomelistToSymbol = "USER_IN_WELCOMELIST_TO";
inline constexpr const char* kBlocklistToSymbol = "USER_IN_BLOCKLIST_TO";

// Parses `files` in order. `builtins` are the symbols other checks emit (known
// to `score`, `describe` and metas). Errors are appended to `diags`.
// `optional_last` marks the last file as the admin's local file that may be absent.
void parse_rule_files(const std::vector<std::string>& files, const std::vector<SymbolDef>& builtins,
                      bool optional_last, RuleSet& out, std::vector<Diagnostic>& diags);
void parse_rule_files(const std::vector<RuleSource>& files, const std::vector<SymbolDef>& builtins,
                      const RuleOptions& options, RuleSet& out, std::vector<Diagnostic>& diags);

// The rule files of a directory: every *.cf, lexical order. A path that is a
// file is returned as is.
std::vector<std::string> rule_files_in(const std::string& path, std::vector<Diagnostic>& diags);

// Case-insensitive glob (* and ?) on an already lower-cased pattern.
bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace spamgate
