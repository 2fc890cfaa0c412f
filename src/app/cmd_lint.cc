// cmd_lint.cc - `spamgate lint`: check the config and every rule file (or only
// the rule files and directories given) and print file:line: message for each
// error, then file:line: warning: message for rules that load but deserve a
// look (left out of the prefilter, nested repeats that can backtrack, a
// misspelt header name). Exit 1 if there is any error, 0 otherwise.
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "app/commands.h"
#include "app/common.h"
#include "config/config.h"
#include "config/load.h"
#include "checks/builtin.h"
#include "checks/clamav_engine.h"
#include "rules/ruleset.h"
#include "spamgate/pipeline.h"
#include "spamgate/recipients.h"

namespace spamgate::app {

int cmd_lint(int argc, char** argv) {
  const char* usage =
      "usage: spamgate lint [--config F] [--verbose] [--settings FILE] [RULES_FILE|RULES_DIR ...]\n"
      "Checks the config, every rules file, the signature databases and the outbound overrides\n"
      "(or only the rules files given) and prints file:line: message for each error.\n"
      "--settings FILE reads FILE as the recipient settings file (per-domain settings), e.g. a copy\n"
      "before it goes in place; the config's own recipient_settings file given as a file is read so too.\n"
      "Lines read and not used (SpamAssassin directives spamgate skips, eval tests not\n"
      "implemented) are counted in one line; --verbose lists them by kind, with the first place.\n"
      "With rules_canary_dirs in the config, every known-good message there must stay under the\n"
      "threshold: each one tagged is an error naming it and the rules that hit it.\n"
      "--list-rules prints every rule loaded: NAME TAB runs|not-implemented TAB file:line TAB score.\n"
      "Exit: 0 all good; 1 errors found; 2 usage error.\n";
  CommandFlags own;
  own.switches = {"--verbose", "--list-rules"};
  own.values = {"--settings"};
  auto opt = parse_options(argc, argv, 2, usage, own);
  if (!opt) return 2;
  std::vector<Diagnostic> diags, warnings;
  std::size_t rules = 0, files = 0;
  std::string signatures;  // what the ClamAV engine loaded (config lint only)
  std::map<std::string, SkipCount> skipped;
  SymbolTable symbols;
  const std::string settings = opt->values.count("--settings") ? opt->values.at("--settings") : std::string();
  if (opt->args.empty() && settings.empty()) {
    std::string path = opt->config.empty() ? default_config_path() : opt->config;
    auto snap = load_snapshot(path, diags);
    if (snap.ok()) {
      rules = snap.value()->rule_count;
      files = snap.value()->rule_files.size();
      warnings = snap.value()->warnings;
      skipped = snap.value()->skipped;
      if (snap.value()->recipients && !snap.value()->recipients->empty())
        signatures += "; " + std::to_string(snap.value()->recipients->size()) + " recipient(s) with settings";
      symbols = snap.value()->symbols;
      std::vector<std::string> problems;
      if (Status st = run_rules_canary(*snap.value(), problems); !st.ok()) {
        for (const std::string& p : problems) diags.push_back({path, 0, "rules canary: " + p});
        if (problems.empty()) diags.push_back({path, 0, "rules canary: " + st.message()});
      }
      if (const auto& e = snap.value()->clamav) {
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.0f", e->load_ms());
        signatures = "; clamav: " + std::to_string(e->signature_count()) + " signatures from " +
                     std::to_string(e->files().size()) + " database file(s), loaded in " + ms +
                     " ms, canary passed";
      }
    }
  } else {
    // The files given, read after the config's rules (a local file scores
    // and extends them), with every check's symbols (SPF_FAIL, BAYES_99...).
    std::string path = opt->config.empty() ? default_config_path() : opt->config;
    std::vector<Diagnostic> config_diags;
    auto cfg = load_config(path, config_diags);
    Config config = cfg.ok() ? cfg.value() : Config{};
    if (!cfg.ok()) std::cerr << "spamgate lint: " << path << " not usable (" << cfg.status().message()
                             << "); the files are read alone\n";
    // The settings file is no rules file: read as the milter reads it.
    std::vector<std::string> rule_args, settings_files;
    if (!settings.empty()) settings_files.push_back(settings);
    std::error_code ec;
    for (const std::string& a : opt->args) {
      if (!config.recipient_settings.empty() && std::filesystem::equivalent(a, config.recipient_settings, ec))
        settings_files.push_back(a);
      else
        rule_args.push_back(a);
    }
    for (const std::string& f : settings_files) {
      if (!std::filesystem::exists(f, ec)) {
        diags.push_back({f, 0, "no such file"});
        continue;
      }
      Config one = config;
      one.recipient_settings = f;
      if (auto t = load_recipient_settings(one, diags, warnings))
        signatures += "; " + std::to_string(t->size()) + " recipient(s) with settings in " + f;
    }
    auto rs = parse_rules_with(config, rule_args, diags);
    rules = rs->rules.size() + rs->metas.size();
    files = rs->files.size();
    skipped = rs->skipped;
    symbols = rs->symbols;
    if (diags.empty()) {  // the prefilter is built as a load would build it
      warnings.insert(warnings.end(), rs->warnings.begin(), rs->warnings.end());
      for (Diagnostic& d : RulesCheck(rs, Limits{}.pcre_match_limit).prefilter_warnings()) warnings.push_back(std::move(d));
    }
  }
  if (opt->has("--list-rules")) {
    std::vector<std::pair<std::string, const SymbolInfo*>> rows;
    for (const auto& [name, info] : symbols.all())
      if (!info.file.empty()) rows.emplace_back(name, &info);
    std::sort(rows.begin(), rows.end());
    for (const auto& [name, info] : rows) {
      char score[32];
      std::snprintf(score, sizeof score, "%.3f", static_cast<double>(info->score_millis) / 1000.0);
      std::cout << name << "\t" << (info->runs ? "runs" : "not-implemented") << "\t" << info->file << ":"
                << info->line << "\t" << score << "\n";
    }
  }
  for (const Diagnostic& d : diags) std::cout << d.str() << "\n";
  for (const Diagnostic& d : warnings) std::cout << d.file << ":" << d.line << ": warning: " << d.message << "\n";
  if (!diags.empty()) {
    std::cout << diags.size() << " error(s)\n";
    return 1;
  }
  std::cout << "ok: " << rules << " rules in " << files << " file(s)" << signatures;
  if (!warnings.empty()) std::cout << "; " << warnings.size() << " warning(s)";
  int lines = 0;
  for (const auto& [what, s] : skipped) lines += s.count;
  if (lines > 0)
    std::cout << "; " << lines << " line(s) read and not used, of " << skipped.size() << " kind(s)"
              << (opt->has("--verbose") ? ":" : " (--verbose lists them)");
  std::cout << "\n";
  if (opt->has("--verbose")) {
    std::vector<std::pair<std::string, SkipCount>> rows(skipped.begin(), skipped.end());
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.count > b.second.count; });
    for (const auto& [what, s] : rows)
      std::cout << "  " << s.count << "  " << what << "  (first: " << s.first.file << ":" << s.first.line << ")\n";
  }
  return 0;
}

}  // namespace spamgate::app
