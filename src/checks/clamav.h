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
// (past max_av_bytes or a libclamav limit). An engine or spool error is a
// failed check: the milter applies [clamav] on_error (default tempfail).
// Thread-safe (const; the engine allows concurrent scans).
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
        tmpdir_(config.spool_dir) {}
  std::string_view name() const override { return "clamav"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits) const override;
  static std::vector<SymbolDef> symbols();

 private:
  std::shared_ptr<const ClamEngine> engine_;
  bool scan_raw_;
  std::size_t max_av_bytes_;
  std::string tmpdir_;
};

}  // namespace spamgate
