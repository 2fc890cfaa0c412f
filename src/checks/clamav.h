// clamav.h - the malware check: libclamav signatures, in process.
//
// Interface: ClamavCheck scans the message with the snapshot's ClamEngine.
// What it reads: a message our one parse saw whole is scanned part by part
// (the decoded MIME parts of that parse: no second parse, no temp files; see
// bench/RESULTS.md for the measurement behind this); a longer one, or with
// [clamav] scan = "raw", is scanned raw (libclamav's mail parser) from the
// bytes, up to max_av_bytes; the milter's spool file of a long message is
// split into its decoded parts on disk (GMime, streaming) unless scan = "raw".
// Symbols: CLAMAV_VIRUS (a trusted signature: rejects with "550 5.7.1 Your
// email was rejected because it contains the <name>"), CLAMAV_THIRD_PARTY (a
// third-party signature: scored in rules/60_clamav.cf), CLAMAV_NOT_FULLY_SCANNED
// (past max_av_bytes or a libclamav size limit), CLAMAV_UNSCANNABLE (nesting,
// member count or scan time past libclamav's limits: [clamav] on_unscannable,
// default reject). An engine or spool error is a failed check: the milter
// applies [clamav] on_error (default tempfail).
// Memory: at most [clamav] max_parallel_large_scans spooled (long) messages
// are scanned at once, process-wide; another waits up to large_scan_wait_ms
// for a slot, then the check fails with Limit (its policy: tempfail, the
// client retries). Thread-safe (const; the engine allows concurrent scans).
#pragma once

#include <memory>
#include <vector>

#include "checks/clamav_engine.h"
#include "spamgate/check.h"

namespace spamgate {

class ClamavCheck final : public Check {
 public:
  ClamavCheck(std::shared_ptr<const ClamEngine> engine, const ClamavConfig& config)
      : engine_(std::move(engine)), scan_raw_(config.scan_raw), max_av_bytes_(config.max_av_bytes),
        tmpdir_(config.spool_dir), max_large_(config.max_parallel_large_scans),
        large_wait_ms_(config.large_scan_wait_ms), on_unscannable_(config.on_unscannable) {}
  std::string_view name() const override { return "clamav"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  static std::vector<SymbolDef> symbols();

 private:
  std::shared_ptr<const ClamEngine> engine_;
  bool scan_raw_;
  std::size_t max_av_bytes_;
  std::string tmpdir_;
  int max_large_;
  int large_wait_ms_;
  ClamavConfig::Unscannable on_unscannable_;
};

// A slot among the long-message scans allowed at once, process-wide: waits
// up to `wait_ms` while `limit` are running (limit 0: no cap, always held).
class LargeScanSlot {
 public:
  LargeScanSlot(int limit, int wait_ms);
  ~LargeScanSlot();
  LargeScanSlot(const LargeScanSlot&) = delete;
  LargeScanSlot& operator=(const LargeScanSlot&) = delete;
  bool held() const { return held_; }

 private:
  bool held_ = false;
};

// Long-message scans running now, process-wide (the memory watch reports it).
int large_scans_running();

}  // namespace spamgate
