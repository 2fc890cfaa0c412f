// clamav_engine.h - a compiled libclamav engine (issue 6, first part).
//
// Interface: ClamEngine::load(dir) reads every signature database in `dir`
// (cl_load: .hdb .ndb .ldb ... and signed .cvd/.cld) and compiles it; the
// result is immutable and shared by every thread (libclamav allows
// concurrent scans on one compiled engine). scan_fd() scans an open file in
// all-match mode and returns every signature that matched, in order.
// DIAGNOSTICS: a missing, empty or corrupt database is an error naming the
// directory and libclamav's reason. Not yet wired into the milter (issue 6).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "spamgate/status.h"

struct cl_engine;

namespace spamgate {

struct ClEngineFree { void operator()(cl_engine* e) const; };

class ClamEngine {
 public:
  static Result<std::shared_ptr<const ClamEngine>> load(const std::string& dir);
  // Names of the signatures that match the file open at `fd` (empty: clean).
  Result<std::vector<std::string>> scan_fd(int fd) const;
  unsigned signature_count() const { return signatures_; }

 private:
  std::unique_ptr<cl_engine, ClEngineFree> engine_;
  unsigned signatures_ = 0;
};

}  // namespace spamgate
