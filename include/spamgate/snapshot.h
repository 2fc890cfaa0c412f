// snapshot.h - configuration, symbol scores and checks, frozen together.
//
// A Snapshot is built once (load_snapshot) from the config file, every
// rules/*.cf in lexical order and then the admin's local rules file, and is
// immutable afterwards: shared as shared_ptr<const Snapshot>, safe to read from
// any number of threads. A message is scanned with the snapshot it started
// with, so a reload never changes the rules mid-message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "spamgate/check.h"
#include "spamgate/limits.h"
#include "spamgate/status.h"

namespace spamgate {

// Every option has a default; conf/spamgate.toml documents each one.
struct Config {
  std::string path;                    // the file this was read from; "" = built-in defaults
  std::int64_t threshold_tenths = 50;  // spam when score > threshold (kept in tenths)
  std::string threshold_text = "5";    // the threshold as printed: shortest form
  std::string subject_tag = "[SPAM] -";  // Subject becomes "<tag> <original>"
  std::string service_name = "Gateway Filtering Service";
  std::string hostname;                // "" in the file = this machine's FQDN
  std::string support_url = "https://support.example.com/spam";
  std::string rules_dir;               // every *.cf in it, lexical order
  std::string local_rules;             // read last; a missing file is not an error
  Limits limits;
  std::string log_level = "info";      // trace debug info warn error critical off
  std::string log_target = "stderr";   // stderr | stdout | syslog | a file path
};

// A place in a rules or config file, for error messages.
struct Diagnostic {
  std::string file;
  int line = 0;  // 0 = the whole file
  std::string message;
  std::string str() const;  // "file:line: message"
};

struct SymbolInfo {
  std::int64_t score_millis = 0;  // score in thousandths of a point
  std::string description;
  bool nice = false;              // tflags nice: meant to lower the score
  bool disabled = false;          // an explicit `score NAME 0` on a rule
};

// Symbol name -> score and description. Unknown symbols score 0.
class SymbolTable {
 public:
  const SymbolInfo* find(std::string_view name) const;
  std::int64_t score_millis(std::string_view name) const;
  SymbolInfo& upsert(const std::string& name) { return map_[name]; }
  std::size_t size() const { return map_.size(); }

 private:
  std::unordered_map<std::string, SymbolInfo> map_;
};

struct Snapshot {
  Config config;
  SymbolTable symbols;
  std::vector<std::unique_ptr<const Check>> checks;  // run in this order
  std::vector<std::string> rule_files;                // as loaded, for logs
  std::size_t rule_count = 0;
};

// Reads the config at `config_path` and every rule file it names. On failure
// returns InvalidArgument and fills `diags` with every error found (file:line).
// Thread-safe; does no network I/O.
Result<std::shared_ptr<const Snapshot>> load_snapshot(const std::string& config_path,
                                                      std::vector<Diagnostic>& diags);

// The config file used when none is given: /etc/spamgate/spamgate.toml if it
// exists, else conf/spamgate.toml of the source tree this binary was built from.
std::string default_config_path();

}  // namespace spamgate
