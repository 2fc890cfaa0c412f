// clamav.cc - ClamavCheck (see clamav.h).
#include "checks/clamav.h"

#include "checks/builtin.h"
#include "spamgate/message.h"

namespace spamgate {

std::vector<SymbolDef> ClamavCheck::symbols() {
  return {
      {"CLAMAV_VIRUS", 0.0, "A trusted malware signature matched: the message is rejected"},
      {"CLAMAV_THIRD_PARTY", 3.5, "A third-party (unofficial) ClamAV signature matched"},
      {"CLAMAV_NOT_FULLY_SCANNED", 0.1, "Part of the message was not scanned for malware (size or libclamav limit)"},
  };
}

Status ClamavCheck::run(const CheckContext& ctx, std::vector<Hit>& hits) const {
  const Message& m = ctx.message;
  AvResult all;
  std::string partial;  // why the scan did not cover everything
  auto merge = [&](Result<AvResult> r) -> Status {
    if (!r.ok()) return r.status();
    for (AvMatch& x : r.value().matches) all.matches.push_back(std::move(x));
    for (std::string& x : r.value().limits) all.limits.push_back(std::move(x));
    return Status::Ok();
  };
  Status s;
  if (ctx.av != nullptr) {  // the milter spooled a long message
    if (!ctx.av->error.empty()) return Status::IOError(ctx.av->error);
    s = merge(engine_->scan_fd(ctx.av->fd));
    if (!ctx.av->complete) partial = "only the first " + std::to_string(ctx.av->size) + " bytes";
  } else if (!scan_raw_ && !m.limits_hit.scan_bytes && !m.limits_hit.parts && !m.limits_hit.mime_depth) {
    for (const std::string& part : m.decoded_parts) {
      s = merge(engine_->scan_memory(part, false));
      if (!s.ok()) break;
    }
  } else {
    std::string_view raw = ctx.bytes.substr(0, max_av_bytes_);
    s = merge(engine_->scan_memory(raw, true));
    if (m.total_size > raw.size()) partial = "only the first " + std::to_string(raw.size()) + " bytes";
  }
  if (!s.ok()) return s;

  std::string rejects, scores;
  const AvMatch* first_reject = nullptr;
  for (const AvMatch& x : all.matches) {
    std::string& list = x.action == SigAction::kReject ? rejects : scores;
    if (x.action == SigAction::kReject && first_reject == nullptr) first_reject = &x;
    if (list.find(x.name) != std::string::npos) continue;
    list += (list.empty() ? "" : ", ") + x.name + " (" + x.file + ")";
  }
  if (first_reject != nullptr)
    hits.emplace_back("CLAMAV_VIRUS", 1.0, clip(rejects, 500),
                      "Your email was rejected because it contains the " + first_reject->display);
  if (!scores.empty()) hits.emplace_back("CLAMAV_THIRD_PARTY", 1.0, clip(scores, 500));
  for (const std::string& l : all.limits) partial += (partial.empty() ? "" : ", ") + l;
  if (!partial.empty()) hits.emplace_back("CLAMAV_NOT_FULLY_SCANNED", 1.0, clip(partial, 300));
  return Status::Ok();
}

}  // namespace spamgate
