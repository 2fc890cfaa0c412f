// config.h - reads spamgate.toml into a Config.
//
// Interface: load_config(), parse_config(). Unknown keys, wrong types and bad values are
// errors with the file and line; all of them are reported, not just the first.
// toml++ exceptions never leave this module.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "spamgate/snapshot.h"

namespace spamgate {

// Reads `path`. Relative paths inside (rules_dir, local_rules, log file) are
// resolved against the directory of `path`.
Result<Config> load_config(const std::string& path, std::vector<Diagnostic>& diags);

// The same from the text of a config file (`path` names it in diagnostics
// and anchors its relative paths; it is not read). For tests and fuzzing.
Result<Config> parse_config(std::string_view text, const std::string& path, std::vector<Diagnostic>& diags);

// Parses a threshold written as text ("5", "5.5", "-1"); false if it has more
// than one decimal or is not a number.
bool parse_tenths(const std::string& text, std::int64_t& tenths);

// This machine's fully qualified name, from gethostname() and /etc/hosts
// (no DNS query).
std::string local_fqdn();

}  // namespace spamgate
