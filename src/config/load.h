// load.h - building a Snapshot (snapshot.h) from the config file and the
// rules, signatures and overrides files it names.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "spamgate/snapshot.h"

namespace spamgate {
struct RuleSet;
}

namespace spamgate {

// Reads the config at `config_path` and every rule file it names. On failure
// returns InvalidArgument and fills `diags` with every error found (file:line).
// Thread-safe; does no network I/O.
// `network`: build the checks that query DNS (the milter always does; scan,
// explain and bench only with --network). A check that is off emits no symbol.
// `previous`: the snapshot in use (a reload). Its signature engine is kept
// when the signature files did not change, and kept (with an error logged
// naming the file or the canary message) when the new signatures fail to
// load or flag canary mail; without a previous engine that is an error.
// `bayes`: build the classifier check when [bayes] enables it (eval runs
// the rules without it and classifies with its own per-fold stores).
struct LoadOptions {
  bool network = false;               // build the checks that query DNS
  const Snapshot* previous = nullptr;  // the snapshot in use (a reload)
  bool bayes = true;                  // build the classifier check
  bool history = false;               // open the verdict history writer (the milter)
};
Result<std::shared_ptr<const Snapshot>> load_snapshot(const std::string& config_path, std::vector<Diagnostic>& diags,
                                                      const LoadOptions& opts = {});

// The rules `config` names, parsed as a load parses them, with `local_path`
// read as the local file (the console lints an edit of it, written to a
// temporary file, before it replaces config.local_rules). Errors go to `diags`.
std::shared_ptr<RuleSet> parse_config_rules(const Config& config, const std::string& local_path,
                                            std::vector<Diagnostic>& diags);
// `files` (rules files or directories, read last, in order) after the
// rules of config.rules_dirs that are not among them, with every built-in
// check's symbols known: `spamgate lint FILE...` of a local file that
// scores SPF_FAIL or a shipped rule.
std::shared_ptr<RuleSet> parse_rules_with(const Config& config, const std::vector<std::string>& files,
                                          std::vector<Diagnostic>& diags);
// Ok when every check runs after the checks it reads (Check::reads; "*" =
// every other check); else Internal naming the pair. load_snapshot refuses
// a check order that fails it.
Status check_order(const std::vector<std::unique_ptr<const Check>>& checks);

// The per-recipient settings of `c` (recipient_settings, read now; a
// missing file or none gives an empty table). A bad line is a Diagnostic
// and gives nullptr; `warnings` gets the legal lines worth a word.
std::shared_ptr<const RecipientTable> load_recipient_settings(const Config& c, std::vector<Diagnostic>& diags,
                                                              std::vector<Diagnostic>& warnings);

// The outbound guard of `c` ([outbound], its overrides file read now; a
// bad line is a Diagnostic and gives nullptr). The milter's comes with the
// snapshot; `learn --arf` and `release` build their own.
std::shared_ptr<OutboundGuard> make_outbound_guard(const Config& c, std::vector<Diagnostic>& diags);

// What the rule files look like now: every *.cf of config.rules_dirs and the
// local file, with size and modification time. Equal strings: nothing to
// reload (the rules watch polls this).
std::string rules_fingerprint_of(const Config& config);

// The config file used when none is given: /etc/spamgate/spamgate.toml if it
// exists, else conf/spamgate.toml of the source tree this binary was built from.
std::string default_config_path();

}  // namespace spamgate
