// audit.h - the console's audit log: who changed what, when, from where.
// One JSON object a line, appended and synced before the change is
// reported done; `tail` reads the last entries for the console's page.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "spamgate/status.h"

namespace spamgate::console {

struct AuditEntry {
  std::int64_t time = 0;  // unix seconds
  std::string user, ip;
  std::string action;     // login, login-failed, logout, rules-save, rules-refused, reload, learn...
  std::string target;     // what it was about: a reference, a file
  std::string detail;     // the lines saved, the lint error, the reload's answer
};

class AuditLog {
 public:
  explicit AuditLog(std::string path) : path_(std::move(path)) {}
  // Appends `e` (time 0 = now) and syncs it. An error when the file cannot
  // be written: the console then refuses the change it was about to make.
  Status write(AuditEntry e);
  // The last `n` entries, newest first (lines that do not parse are skipped).
  std::vector<AuditEntry> tail(std::size_t n) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  mutable std::mutex mu_;
};

}  // namespace spamgate::console
