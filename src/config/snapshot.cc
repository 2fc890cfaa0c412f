// snapshot.cc - load_snapshot(): config + rule files -> immutable Snapshot.
//
// Order of rule files: every *.cf of each rules_dirs entry in lexical order,
// then the local override file (optional: a fresh install need not have
// one). Entries after the first are third-party sets (RuleSource), scored
// with SpamAssassin's score set for our network tests and Bayes. The checks run
// in the order of kCheckTable: message flags, rules, malware, SPF, DKIM,
// DMARC (it reads SPF's and DKIM's results), blocklists, Bayes, sender
// domain, then metas last (they read every other check's hits).
#include <filesystem>
#include <set>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "checks/builtin.h"
#include "checks/bayes.h"
#include "checks/sender_domain.h"
#include "checks/clamav.h"
#include "checks/dkim.h"
#include "checks/dmarc.h"
#include "checks/dnsbl.h"
#include "checks/spf.h"
#include "config/config.h"
#include "rules/ruleset.h"
#include "spamgate/metrics.h"
#include "config/load.h"
#include "history/history_store.h"
#include "history/writer.h"
#include "spamgate/recipients.h"
#include "util/log.h"

#ifndef SPAMGATE_SOURCE_DIR
#define SPAMGATE_SOURCE_DIR "."
#endif

namespace spamgate {

namespace {

// The signature engine for `c`: the previous one when nothing it reads
// changed; a new one that passed the canary; or, on a reload whose new
// signatures fail, the previous one (logged). Null + diags: no engine.
std::shared_ptr<const ClamEngine> signature_engine(const Config& cfg, const Snapshot* previous,
                                                   std::vector<Diagnostic>& diags) {
  const ClamavConfig& c = cfg.clamav;
  std::shared_ptr<const ClamEngine> old = previous != nullptr ? previous->clamav : nullptr;
  if (old && old->fingerprint() == ClamEngine::fingerprint_of(c)) return old;
  std::vector<Diagnostic> errors;
  Status s;
  auto engine = ClamEngine::load(c, errors);
  std::vector<std::string> problems;
  if (!engine.ok()) s = engine.status();
  else s = run_canary(*engine.value(), c, problems);
  if (s.ok()) {
    Metrics::get().signatures_loaded();
    log().debug("clamav: {} signatures from {} database file(s) loaded in {:.0f} ms, canary passed",
               engine.value()->signature_count(), engine.value()->files().size(), engine.value()->load_ms());
    return engine.value();
  }
  const bool canary = engine.ok();
  Metrics::get().signatures_refused();
  if (old) {
    log().error("clamav: signature update refused, the previous signatures stay in use: {}{}",
                canary ? "the new signatures flag known-good mail: " : "", s.message());
    for (const Diagnostic& d : errors) log().error("clamav: {}", d.str());
    for (const std::string& p : problems) log().error("clamav: canary: {}", p);
    return old;
  }
  for (Diagnostic& d : errors) diags.push_back(std::move(d));
  std::string where = cfg.path;
  if (canary) {
    for (const std::string& p : problems) diags.push_back({where, 0, "clamav canary: " + p});
    diags.push_back({where, 0, "clamav: signatures refused: " + s.message() +
                                   " (fix or remove the database file, or add 'ignore NAME' to " +
                                   (c.policy_file.empty() ? std::string("a [clamav] policy_file") : c.policy_file) +
                                   ")"});
  } else {
    diags.push_back({where, 0, "clamav: " + s.message()});
  }
  return nullptr;
}

}  // namespace

std::string default_config_path() {
  std::error_code ec;
  if (std::filesystem::exists("/etc/spamgate/spamgate.toml", ec)) return "/etc/spamgate/spamgate.toml";
  return std::string(SPAMGATE_SOURCE_DIR) + "/conf/spamgate.toml";
}

namespace {

// A support file that may be absent (no settings, no overrides): "" then.
// One that exists and cannot be read is an error, never "none": a file
// made root-only by mistake must not drop every customer's settings.
Status read_optional_file(const std::string& path, std::string& text) {
  text.clear();
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) return Status::IOError("cannot read the file: " + ec.message());
  if (!std::filesystem::exists(st)) return Status::Ok();
  if (!std::filesystem::is_regular_file(st)) return Status::IOError("not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) return Status::IOError(std::string("cannot read the file: ") + std::strerror(errno));
  std::ostringstream all;
  all << in.rdbuf();
  if (in.bad()) return Status::IOError("cannot read the file");
  text = all.str();
  return Status::Ok();
}

}  // namespace

std::shared_ptr<const RecipientTable> load_recipient_settings(const Config& c, std::vector<Diagnostic>& diags,
                                                              std::vector<Diagnostic>& warnings) {
  const std::string& path = c.recipient_settings;
  std::string text;
  if (!path.empty()) {
    if (Status st = read_optional_file(path, text); !st.ok()) {
      diags.push_back({path, 0, st.message()});
      return nullptr;
    }
  }
  std::size_t before = diags.size();
  auto table = std::make_shared<RecipientTable>(RecipientTable::parse(text, path, c, diags, warnings));
  if (diags.size() != before) return nullptr;
  return table;
}

std::shared_ptr<OutboundGuard> make_outbound_guard(const Config& c, std::vector<Diagnostic>& diags) {
  const OutboundConfig& ob = c.outbound;
  LimitOverrides overrides;
  if (!ob.overrides_file.empty()) {
    std::string text;  // a missing file is no error: no overrides
    if (Status st = read_optional_file(ob.overrides_file, text); !st.ok()) {
      diags.push_back({ob.overrides_file, 0, st.message()});
      return nullptr;
    }
    std::size_t before = diags.size();
    overrides = parse_limit_overrides(text, ob.overrides_file, diags);
    if (diags.size() != before) return nullptr;
  }
  BayesConfig store = c.bayes;
  if (!ob.store.empty()) store.store = ob.store;
  if (!ob.redis.empty()) store.redis = ob.redis;
  return std::make_shared<OutboundGuard>(ob, store, std::move(overrides));
}

namespace {

// What building a check may read.
struct Build {
  Snapshot& snap;
  std::shared_ptr<RuleSet> rules;
  const LoadOptions& opts;
  const std::string& config_path;
  std::vector<Diagnostic>& diags;
};

using CheckPtr = std::unique_ptr<const Check>;

// One row per check, in the order they run: its name, the symbols it can
// emit (registered whether or not it runs, so rules files that score them
// lint the same with and without --network) and how it is built (null: off
// under this config; an error: the snapshot cannot be built). A new check
// is added here and nowhere else. The checks whose results a check reads
// (Check::reads) must come before it: load_snapshot refuses an order that
// breaks that.
struct CheckRow {
  std::string_view name;
  std::vector<SymbolDef> (*symbols)(const Config&);
  Result<CheckPtr> (*make)(Build&);
};

Result<CheckPtr> off() { return CheckPtr(); }

Result<CheckPtr> failed(Build& b, const std::string& what, const std::string& err) {
  b.diags.push_back({b.config_path, 0, what + ": " + err});
  return Status::InvalidArgument(what + " cannot start");
}

const CheckRow kCheckTable[] = {
    {"message", [](const Config&) { return MessageFlagsCheck::symbols(); },
     [](Build& b) -> Result<CheckPtr> {
       return CheckPtr(std::make_unique<MessageFlagsCheck>(b.snap.config.limits.max_headers));
     }},
    {"rules", [](const Config&) { return rules_engine_symbols(); },
     [](Build& b) -> Result<CheckPtr> {
       auto check = std::make_unique<RulesCheck>(b.rules, b.snap.config.limits.pcre_match_limit,
                                                 b.snap.config.rules_cache_dir);
       for (Diagnostic& d : check->prefilter_warnings()) b.snap.warnings.push_back(std::move(d));
       if (std::string why = check->cache_problem(); !why.empty())
         b.snap.warnings.push_back({b.config_path, 0, why + " (mail is not affected; the rules load more slowly)"});
       return CheckPtr(std::move(check));
     }},
    {"clamav", [](const Config&) { return ClamavCheck::symbols(); },
     [](Build& b) -> Result<CheckPtr> {
       const ClamavConfig& av = b.snap.config.clamav;
       if (!av.enabled || (av.own_signatures.empty() && av.signature_dirs.empty())) return off();
       b.snap.clamav = signature_engine(b.snap.config, b.opts.previous, b.diags);
       if (!b.snap.clamav) return Status::InvalidArgument("signature databases cannot be used");
       return CheckPtr(std::make_unique<ClamavCheck>(b.snap.clamav, av));
     }},
    {"spf", [](const Config&) { return SpfCheck::symbols(); },
     [](Build& b) -> Result<CheckPtr> {
       if (!b.snap.resolver || !b.snap.config.auth.spf) return off();
       return CheckPtr(std::make_unique<SpfCheck>(b.snap.resolver, b.snap.config.hostname,
                                                  b.snap.config.milter.trusted_networks));
     }},
    {"dkim", [](const Config&) { return DkimCheck::symbols(); },
     [](Build& b) -> Result<CheckPtr> {
       if (!b.snap.resolver || !b.snap.config.auth.dkim) return off();
       auto lib = DkimLibrary::create(b.snap.resolver);
       if (!lib.ok()) return failed(b, "DKIM", lib.status().message());
       b.snap.dkim = lib.value();
       return CheckPtr(std::make_unique<DkimCheck>(b.snap.dkim, b.snap.config.auth.dkim_max_body_bytes));
     }},
    {"dmarc", [](const Config&) { return DmarcCheck::symbols(); },
     [](Build& b) -> Result<CheckPtr> {
       if (!b.snap.resolver || !b.snap.config.auth.dmarc) return off();
       auto dmarc = DmarcCheck::create(b.snap.config.auth.dmarc_reject, b.snap.resolver);
       if (!dmarc.ok()) return failed(b, "DMARC", dmarc.status().message());
       return CheckPtr(std::move(dmarc.value()));
     }},
    {"dnsbl", [](const Config& c) { return DnsListCheck::symbols(DnsListCheck::Kind::kClientIp, c.dnsbl); },
     [](Build& b) -> Result<CheckPtr> {
       if (!b.snap.resolver || b.snap.config.dnsbl.empty()) return off();
       return CheckPtr(std::make_unique<DnsListCheck>(DnsListCheck::Kind::kClientIp, b.snap.config.dnsbl, b.snap.resolver,
                                                      b.snap.config.limits.max_uri_lookups,
                                                      b.snap.config.milter.trusted_networks));
     }},
    {"uribl", [](const Config& c) { return DnsListCheck::symbols(DnsListCheck::Kind::kUris, c.uribl); },
     [](Build& b) -> Result<CheckPtr> {
       if (!b.snap.resolver || b.snap.config.uribl.empty()) return off();
       return CheckPtr(std::make_unique<DnsListCheck>(DnsListCheck::Kind::kUris, b.snap.config.uribl, b.snap.resolver,
                                                      b.snap.config.limits.max_uri_lookups,
                                                      b.snap.config.milter.trusted_networks));
     }},
    {"bayes", [](const Config&) { return BayesCheck::symbols(); },
     [](Build& b) -> Result<CheckPtr> {
       if (!b.opts.bayes || !b.snap.config.bayes.enabled) return off();
       return CheckPtr(std::make_unique<BayesCheck>(b.snap.config.bayes));
     }},
    {"sender_domain", [](const Config&) { return SenderDomainCheck::symbols(); },
     [](Build& b) -> Result<CheckPtr> {
       if (!b.snap.config.outbound.enabled) return off();
       return CheckPtr(std::make_unique<SenderDomainCheck>(b.snap.config.outbound.sender_domains));
     }},
    {"meta", [](const Config&) { return std::vector<SymbolDef>(); },
     [](Build& b) -> Result<CheckPtr> { return CheckPtr(std::make_unique<MetaCheck>(b.rules)); }},
};

}  // namespace

std::string rules_fingerprint_of(const Config& config) {
  std::vector<std::string> files;
  std::vector<Diagnostic> ignored;
  for (const std::string& d : config.rules_dirs)
    for (std::string& f : rule_files_in(d, ignored)) files.push_back(std::move(f));
  if (!config.local_rules.empty()) files.push_back(config.local_rules);
  if (!config.recipient_settings.empty()) files.push_back(config.recipient_settings);
  std::string out;
  for (const std::string& f : files) {
    std::error_code ec;
    auto size = std::filesystem::file_size(f, ec);
    auto when = std::filesystem::last_write_time(f, ec);
    out += f + "\t" + (ec ? std::string("-") : std::to_string(size) + ":" + std::to_string(when.time_since_epoch().count())) + "\n";
  }
  return out;
}

Status check_order(const std::vector<std::unique_ptr<const Check>>& checks) {
  for (std::size_t i = 0; i < checks.size(); ++i) {
    for (std::string_view dep : checks[i]->reads()) {
      for (std::size_t k = i + 1; k < checks.size(); ++k) {
        if (dep == "*" || checks[k]->name() == dep)
          return Status::Internal(std::string(checks[i]->name()) + " reads the results of " +
                                  std::string(checks[k]->name()) + ", which runs after it");
      }
    }
  }
  return Status::Ok();
}

namespace {

// Every check's symbols under `config` (known to score, describe and metas).
std::vector<SymbolDef> builtin_symbols(const Config& config) {
  std::vector<SymbolDef> builtins;
  for (const CheckRow& row : kCheckTable)
    for (SymbolDef& d : row.symbols(config)) builtins.push_back(std::move(d));
  return builtins;
}

// SpamAssassin's score set: network tests on (a DNS list configured), Bayes on.
RuleOptions rule_options(const Config& config) {
  RuleOptions ropts;
  const bool net = !config.dnsbl.empty() || !config.uribl.empty();
  ropts.score_set = (net ? 1 : 0) | (config.bayes.enabled ? 2 : 0);
  return ropts;
}

}  // namespace

std::shared_ptr<RuleSet> parse_config_rules(const Config& config, const std::string& local_path,
                                            std::vector<Diagnostic>& diags) {
  std::vector<RuleSource> files;
  for (std::size_t d = 0; d < config.rules_dirs.size(); ++d) {
    for (std::string& f : rule_files_in(config.rules_dirs[d], diags)) files.push_back({std::move(f), false, d > 0});
  }
  if (!local_path.empty()) files.push_back({local_path, true, false});
  auto rules = std::make_shared<RuleSet>();
  parse_rule_files(files, builtin_symbols(config), rule_options(config), *rules, diags);
  return rules;
}

std::shared_ptr<RuleSet> parse_rules_with(const Config& config, const std::vector<std::string>& files_in,
                                          std::vector<Diagnostic>& diags) {
  auto canonical = [](const std::string& p) {
    std::error_code ec;
    auto c = std::filesystem::weakly_canonical(p, ec);
    return ec ? p : c.string();
  };
  std::vector<std::string> given;
  std::set<std::string> seen;
  for (const std::string& a : files_in)
    for (std::string& f : rule_files_in(a, diags))
      if (seen.insert(canonical(f)).second) given.push_back(std::move(f));
  std::vector<RuleSource> files;
  for (std::size_t d = 0; d < config.rules_dirs.size(); ++d) {
    std::vector<Diagnostic> ignored;  // a config's directory that is missing is the config lint's business
    for (std::string& f : rule_files_in(config.rules_dirs[d], ignored))
      if (!seen.count(canonical(f))) files.push_back({std::move(f), false, d > 0});
  }
  for (std::string& f : given) files.push_back({std::move(f), false, false});
  auto rules = std::make_shared<RuleSet>();
  parse_rule_files(files, builtin_symbols(config), rule_options(config), *rules, diags);
  return rules;
}

Result<std::shared_ptr<const Snapshot>> load_snapshot(const std::string& config_path, std::vector<Diagnostic>& diags,
                                                      const LoadOptions& opts) {
  std::size_t before = diags.size();
  auto cfg = load_config(config_path, diags);
  if (!cfg.ok()) return cfg.status();
  auto snap = std::make_shared<Snapshot>();
  snap->config = std::move(cfg.value());

  auto rules = parse_config_rules(snap->config, snap->config.local_rules, diags);
  if (diags.size() != before) return Status::InvalidArgument("rules have errors");

  snap->recipients = load_recipient_settings(snap->config, diags, rules->warnings);
  if (!snap->recipients) return Status::InvalidArgument("recipient settings have errors");

  snap->rules_fingerprint = rules_fingerprint_of(snap->config);
  snap->symbols = rules->symbols;
  snap->rule_files = rules->files;
  snap->rule_count = rules->rules.size() + rules->metas.size();
  snap->warnings = rules->warnings;
  snap->skipped = rules->skipped;
  if (opts.network) {
    // A reload with the same [dns] keeps the resolver: its cache, and its
    // breaker's knowledge that the server is down.
    if (opts.previous != nullptr && opts.previous->resolver && opts.previous->config.dns == snap->config.dns) {
      snap->resolver = opts.previous->resolver;
    } else {
      auto resolver = make_resolver(snap->config.dns);
      if (!resolver.ok()) {
        diags.push_back({config_path, 0, "DNS resolver: " + resolver.status().message()});
        return Status::InvalidArgument("DNS resolver cannot start");
      }
      snap->resolver = std::move(resolver.value());
    }
  }
  Build build{*snap, rules, opts, config_path, diags};
  for (const CheckRow& row : kCheckTable) {
    Result<CheckPtr> check = row.make(build);
    if (!check.ok()) return check.status();
    if (check.value()) snap->checks.push_back(std::move(check.value()));
  }
  if (Status st = check_order(snap->checks); !st.ok()) {
    diags.push_back({config_path, 0, st.message()});
    return Status::InvalidArgument("checks out of order");
  }
  if (opts.history && snap->config.history.enabled) {
    if (opts.previous != nullptr && opts.previous->history && opts.previous->config.history == snap->config.history) {
      snap->history = opts.previous->history;
    } else if (auto store = open_history_store(snap->config.history); store.ok()) {
      snap->history = std::make_shared<HistoryWriter>(std::move(store.value()), snap->config.history);
    } else {
      // Mail flows without a history: logged, not refused.
      log().error("history: off, its store cannot open: {}", store.status().message());
    }
  }
  if (snap->config.outbound.enabled) {
    snap->outbound = make_outbound_guard(snap->config, diags);
    if (!snap->outbound) return Status::InvalidArgument("outbound limit overrides have errors");
  }
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

}  // namespace spamgate
