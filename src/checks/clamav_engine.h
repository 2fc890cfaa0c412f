// clamav_engine.h - a compiled libclamav engine that knows where each
// signature came from, and the canary that vets a new one.
//
// Interface: ClamEngine::load(config) loads our own database directory and
// every configured signature directory file by file, recording through
// libclamav's sigload callback which database file each signature came from,
// so trust is decided per file, not by name: signatures from signed CVD/CLD
// files and from our own directory are trusted (a match rejects), every other
// file is third-party (a match only scores) unless [clamav] trusted_files
// names it. The policy file (support staff) overrides per signature:
// "ignore NAME" (not loaded at all, ClamAV's .ign2 meaning), "score NAME",
// "reject NAME". The result is immutable and shared by every thread
// (libclamav allows concurrent scans on one compiled engine).
// Memory: one engine holds every signature (about 1 GB with the official
// databases); live() counts the engines in memory so a reload can keep it at two.
// DIAGNOSTICS: a missing, empty or corrupt database is an error naming the
// file (and libclamav's line number when it gives one); the policy file's
// errors name file:line; a canary failure names signature, database file and
// message.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "spamgate/snapshot.h"
#include "spamgate/status.h"

struct cl_engine;

namespace spamgate {

struct ClEngineFree { void operator()(cl_engine* e) const; };

enum class SigAction { kReject, kScore, kIgnore };
const char* sig_action_name(SigAction a);

// The per-signature overrides file. Lines: "<ignore|score|reject> NAME",
// '#' comments; NAME with or without libclamav's ".UNOFFICIAL" suffix.
struct SignaturePolicy {
  std::unordered_map<std::string, SigAction> by_name;  // name without the suffix
  // A missing file is an empty policy; a bad line is a Diagnostic (file:line).
  static SignaturePolicy load(const std::string& path, std::vector<Diagnostic>& diags);
};

struct AvMatch {
  std::string name;     // as libclamav reports it, e.g. "Win.Test.EICAR_HDB-1"
  std::string display;  // as shown in the reply (our own: no ".UNOFFICIAL")
  std::string file;     // the database file it came from
  bool trusted = false;
  SigAction action = SigAction::kScore;
};

struct AvResult {
  std::vector<AvMatch> matches;     // every signature that matched, in order
  std::vector<std::string> limits;  // libclamav limits hit (parts not fully scanned)
};

class ClamEngine {
 public:
  ~ClamEngine();
  ClamEngine(const ClamEngine&) = delete;
  ClamEngine& operator=(const ClamEngine&) = delete;

  // Loads and compiles; errors name the file. Thread-safe.
  static Result<std::shared_ptr<const ClamEngine>> load(const ClamavConfig& config,
                                                        std::vector<Diagnostic>& diags);
  // A cheap digest of everything load() reads (file names, sizes, mtimes,
  // the policy file and the [clamav] settings): equal digests, same engine.
  static std::string fingerprint_of(const ClamavConfig& config);
  // Engines alive in this process (a reload waits while two are).
  static int live();

  // Scans `bytes` (a decoded part, or a raw message with `mail` = true).
  Result<AvResult> scan_memory(std::string_view bytes, bool mail) const;
  // Scans the file open at `fd` (from offset 0): a raw message with `mail`
  // = true, else a decoded part.
  Result<AvResult> scan_fd(int fd, bool mail) const;

  unsigned signature_count() const { return signatures_; }
  const std::string& fingerprint() const { return fingerprint_; }
  const std::vector<std::string>& files() const { return files_; }
  double load_ms() const { return load_ms_; }

 private:
  struct SigSource {
    std::uint32_t file = 0;  // index in files_
    bool trusted = false;
    bool own = false;
  };
  friend struct LoadContext;
  ClamEngine();
  AvResult classify(const std::vector<std::string>& names) const;

  std::unique_ptr<cl_engine, ClEngineFree> engine_;
  unsigned signatures_ = 0;
  std::string fingerprint_;
  std::vector<std::string> files_;                        // every database file loaded
  std::unordered_map<std::string, SigSource> unofficial_;  // name (no suffix) -> source
  std::unordered_map<std::string, SigAction> policy_;
  double load_ms_ = 0;
};

// Scans every file in config.canary_dirs (known-good mail) with `engine`.
// Returns ok when at most canary_max_flagged messages matched a signature
// that is not ignored; otherwise an error whose message, and `problems` (one
// line each), name the signature, its database file and the message.
Status run_canary(const ClamEngine& engine, const ClamavConfig& config, std::vector<std::string>& problems);

}  // namespace spamgate
