// builtin.h - the checks of the scoring core: regex rules, metas and the
// parser's limit/defect flags.
//
// Each is a Check (check.h). RulesCheck runs header/body/rawbody/full/uri
// rules and the welcome/block lists; MessageFlagsCheck turns limits hit and
// MIME defects into symbols; MetaCheck must run last, after every other check,
// since metas read their hits. All are immutable and thread-safe.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "rules/regex.h"
#include "rules/ruleset.h"
#include "spamgate/check.h"

namespace spamgate {

class Prefilter;

// Body, rawbody and full rules go through a Hyperscan prefilter (one pass
// over each text, rules/prefilter.h); PCRE2 confirms the candidates.
class RulesCheck final : public Check {
 public:
  // `pcre_match_limit`: [limits] pcre_match_limit (a rule past it fails the check).
  // `cache_dir`: rules_cache_dir, where compiled prefilter databases are kept ("" = none).
  RulesCheck(std::shared_ptr<const RuleSet> rules, std::uint32_t pcre_match_limit,
             const std::string& cache_dir = std::string());
  std::string_view name() const override { return "rules"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  // Patterns in the prefilters, and how many of them Hyperscan compiled.
  std::pair<std::size_t, std::size_t> prefiltered() const;
  // Hyperscan databases built for the rules, and how many of them a reload
  // took over from the snapshot in use (their rules unchanged).
  std::pair<std::size_t, std::size_t> databases() const;
  // A warning (file:line) for each text rule left out of the prefilter, with
  // the reason: it still works, but PCRE2 runs it on every message.
  std::vector<Diagnostic> prefilter_warnings() const;
  // Databases read from rules_cache_dir, and what went wrong with it ("" = nothing).
  std::size_t databases_from_disk() const;
  std::string cache_problem() const;

 private:
  std::vector<const Prefilter*> prefilters() const;  // all of them, the header groups' too

  std::shared_ptr<const RuleSet> rules_;
  // body, rawbody, full, and SpamAssassin's body view (sa_body_text()) for
  // the body rules of its own set.
  std::shared_ptr<const Prefilter> pre_[4];
  std::vector<int> slot_;                    // rule index -> its pattern in pre_[kind] (or its header group's), or -1
  // Header rules, grouped by the text they read (field, modifier, pseudo,
  // SpamAssassin's or ours): the text is built once per message, one
  // Hyperscan pass over it tells which of the group's rules can match.
  struct HeaderGroup {
    std::size_t first_rule;                  // builds the group's text
    std::shared_ptr<const Prefilter> pre;    // null for a small group
  };
  std::vector<HeaderGroup> header_groups_;
  std::vector<int> group_;                   // rule index -> its header group, or -1
  // rule index -> how it matches the text an absent field reads as ("" or
  // [if-unset]): the same for every message, so matched once, at load.
  std::vector<Regex::Match> absent_;
  std::vector<char> disabled_;               // rule index -> `score NAME 0` (looked up once, not per message)
  std::vector<std::size_t> templated_;       // rules with capture templates: run last, compiled per message
  std::uint32_t pcre_match_limit_;
};

class MetaCheck final : public Check {
 public:
  explicit MetaCheck(std::shared_ptr<const RuleSet> rules);
  std::string_view name() const override { return "meta"; }
  std::vector<std::string_view> reads() const override { return {"*"}; }  // metas read every hit
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;

 private:
  std::shared_ptr<const RuleSet> rules_;
  std::vector<char> disabled_;  // per meta, as in RulesCheck
  // Each meta flattened once into postfix steps over numbered symbols, so a
  // message evaluates them with array reads (SpamAssassin's set has 1,000+).
  struct Step {
    MetaExpr::Kind kind;
    double num = 0;
    int slot = -1;  // kSym
  };
  std::vector<std::vector<Step>> programs_;  // per meta
  std::vector<int> meta_slot_;               // per meta: its own slot
  std::unordered_map<std::string, int> slots_;
};

class MessageFlagsCheck final : public Check {
 public:
  // `max_headers`: [limits] max_headers (more fields: LIMIT_HEADERS).
  explicit MessageFlagsCheck(std::size_t max_headers) : max_headers_(max_headers) {}
  std::string_view name() const override { return "message"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  static std::vector<SymbolDef> symbols();

 private:
  std::size_t max_headers_;
};

// The sender lists' hits for a message: USER_IN_WELCOMELIST and
// USER_IN_BLOCKLIST (any From, Sender, Return-Path or envelope sender
// listed; RulesCheck), then USER_IN_WELCOMELIST_AUTH (welcomelist_auth
// authenticated, or welcomelist_from_rcvd relayed) or else
// USER_IN_DEF_WELCOMELIST_AUTH (MetaCheck, once SPF, DKIM and DMARC ran).
// The recipients' own lists (recipients.h) go through the same two.
struct AddressLists;
void plain_list_hits(const AddressLists& lists, const Message& m, const Envelope& env, std::vector<Hit>& hits);
void auth_list_hits(const AddressLists& lists, const CheckContext& ctx, std::vector<Hit>& hits);

// Symbols of the rules engine itself (welcome/block lists).
std::vector<SymbolDef> rules_engine_symbols();

}  // namespace spamgate
