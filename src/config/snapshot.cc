// snapshot.cc - load_snapshot(): config + rule files -> immutable Snapshot.
//
// Order of rule files: every rules_dir/*.cf in lexical order, then the local
// override file (optional: a fresh install need not have one). The checks run
// in this order: message flags, rules, then metas last (they read the others).
#include <filesystem>
#include <fstream>

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
#include "spamgate/snapshot.h"
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

std::shared_ptr<OutboundGuard> make_outbound_guard(const Config& c, std::vector<Diagnostic>& diags) {
  const OutboundConfig& ob = c.outbound;
  LimitOverrides overrides;
  if (!ob.overrides_file.empty()) {
    std::ifstream in(ob.overrides_file, std::ios::binary);
    if (in.is_open()) {  // a missing file is no error: no overrides
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      std::size_t before = diags.size();
      overrides = parse_limit_overrides(text, ob.overrides_file, diags);
      if (diags.size() != before) return nullptr;
    }
  }
  BayesConfig store = c.bayes;
  if (!ob.store.empty()) store.store = ob.store;
  if (!ob.redis.empty()) store.redis = ob.redis;
  return std::make_shared<OutboundGuard>(ob, store, std::move(overrides));
}

Result<std::shared_ptr<const Snapshot>> load_snapshot(const std::string& config_path,
                                                      std::vector<Diagnostic>& diags, bool network,
                                                      const Snapshot* previous, bool bayes) {
  std::size_t before = diags.size();
  auto cfg = load_config(config_path, diags);
  if (!cfg.ok()) return cfg.status();
  auto snap = std::make_shared<Snapshot>();
  snap->config = std::move(cfg.value());

  std::vector<SymbolDef> builtins = rules_engine_symbols();
  for (SymbolDef& d : MessageFlagsCheck::symbols()) builtins.push_back(std::move(d));
  // DNS checks register their symbols whether or not they run, so rules files
  // that score them lint the same with and without --network.
  for (SymbolDef& d : DnsListCheck::symbols(DnsListCheck::Kind::kClientIp, snap->config.dnsbl))
    builtins.push_back(std::move(d));
  for (SymbolDef& d : DnsListCheck::symbols(DnsListCheck::Kind::kUris, snap->config.uribl))
    builtins.push_back(std::move(d));
  for (SymbolDef& d : SpfCheck::symbols()) builtins.push_back(std::move(d));
  for (SymbolDef& d : DkimCheck::symbols()) builtins.push_back(std::move(d));
  for (SymbolDef& d : DmarcCheck::symbols()) builtins.push_back(std::move(d));
  for (SymbolDef& d : ClamavCheck::symbols()) builtins.push_back(std::move(d));
  for (SymbolDef& d : BayesCheck::symbols()) builtins.push_back(std::move(d));
  for (SymbolDef& d : SenderDomainCheck::symbols()) builtins.push_back(std::move(d));

  std::vector<std::string> files = rule_files_in(snap->config.rules_dir, diags);
  bool has_local = !snap->config.local_rules.empty();
  if (has_local) files.push_back(snap->config.local_rules);
  auto rules = std::make_shared<RuleSet>();
  parse_rule_files(files, builtins, has_local, *rules, diags);
  if (diags.size() != before) return Status::InvalidArgument("rules have errors");

  snap->symbols = rules->symbols;
  snap->rule_files = rules->files;
  snap->rule_count = rules->rules.size() + rules->metas.size();
  snap->checks.push_back(std::make_unique<MessageFlagsCheck>());
  auto rules_check = std::make_unique<RulesCheck>(rules);
  snap->warnings = rules->warnings;
  for (Diagnostic& d : rules_check->prefilter_warnings()) snap->warnings.push_back(std::move(d));
  snap->checks.push_back(std::move(rules_check));
  const ClamavConfig& av = snap->config.clamav;
  if (av.enabled && (!av.own_signatures.empty() || !av.signature_dirs.empty())) {
    snap->clamav = signature_engine(snap->config, previous, diags);
    if (!snap->clamav) return Status::InvalidArgument("signature databases cannot be used");
    snap->checks.push_back(std::make_unique<ClamavCheck>(snap->clamav, av));
  }
  if (network) {
    std::string err;
    // A reload with the same [dns] keeps the resolver: its cache, and its
    // breaker's knowledge that the server is down.
    if (previous != nullptr && previous->resolver && previous->config.dns == snap->config.dns)
      snap->resolver = previous->resolver;
    else
      snap->resolver = make_resolver(snap->config.dns, err);
    if (!snap->resolver) {
      diags.push_back({config_path, 0, "DNS resolver: " + err});
      return Status::InvalidArgument("DNS resolver cannot start");
    }
    // Authentication first, in this order: DMARC reads SPF's and DKIM's results.
    const AuthConfig& ac = snap->config.auth;
    if (ac.spf) snap->checks.push_back(std::make_unique<SpfCheck>());
    if (ac.dkim) {
      snap->dkim = DkimLibrary::create(snap->resolver, err);
      if (!snap->dkim) {
        diags.push_back({config_path, 0, "DKIM: " + err});
        return Status::InvalidArgument("DKIM cannot start");
      }
      snap->checks.push_back(std::make_unique<DkimCheck>(snap->dkim, ac.dkim_max_body_bytes));
    }
    if (ac.dmarc) {
      auto dmarc = std::make_unique<DmarcCheck>(ac.dmarc_reject, err);
      if (!err.empty()) {
        diags.push_back({config_path, 0, "DMARC: " + err});
        return Status::InvalidArgument("DMARC cannot start");
      }
      snap->checks.push_back(std::move(dmarc));
    }
    if (!snap->config.dnsbl.empty())
      snap->checks.push_back(std::make_unique<DnsListCheck>(DnsListCheck::Kind::kClientIp, snap->config.dnsbl));
    if (!snap->config.uribl.empty())
      snap->checks.push_back(std::make_unique<DnsListCheck>(DnsListCheck::Kind::kUris, snap->config.uribl));
  }
  if (bayes && snap->config.bayes.enabled) snap->checks.push_back(std::make_unique<BayesCheck>(snap->config.bayes));
  if (const OutboundConfig& ob = snap->config.outbound; ob.enabled) {
    snap->checks.push_back(std::make_unique<SenderDomainCheck>(ob.sender_domains));
    snap->outbound = make_outbound_guard(snap->config, diags);
    if (!snap->outbound) return Status::InvalidArgument("outbound limit overrides have errors");
  }
  snap->checks.push_back(std::make_unique<MetaCheck>(rules));
  return std::shared_ptr<const Snapshot>(std::move(snap));
}

}  // namespace spamgate
