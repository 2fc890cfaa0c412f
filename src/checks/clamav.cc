// clamav.cc - ClamavCheck (see clamav.h).
#include "checks/clamav.h"

#include <clamav.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include <gmime/gmime.h>
#include <unistd.h>

#include <cstring>

#include "checks/builtin.h"
#include "spamgate/message.h"
#include "util/c_handle.h"
#include "util/spool_file.h"
#include "util/text.h"
#include "spamgate/replies.h"

namespace spamgate {

namespace {

constexpr int kMaxSpooledParts = 1000;

// A spooled (long) message, part by part: GMime parses the spool file in
// place (a persistent stream: part contents stay on disk, only headers are
// read into memory), each leaf part is decoded into its own unlinked file
// and scanned from there. libclamav's own mail parser would hold the whole
// message in memory, line by line (180 MB for a 25 MB message, measured).
// GMime is initialised by parse_message(), which ran before any check.
Status scan_spooled_parts(const ClamEngine& engine, int fd, const std::string& tmpdir, AvResult& out) {
  int own = ::dup(fd);
  if (own < 0) return Status::IOError("cannot reopen the spool file");
  GObjectPtr<GMimeStream> in(g_mime_stream_fs_new(own));  // owns `own`
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(in.get()));
  g_mime_parser_set_persist_stream(parser.get(), TRUE);
  GObjectPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!msg) return engine.scan_fd(fd, true).status();  // not MIME at all: let libclamav read it
  std::unique_ptr<GMimePartIter, void (*)(GMimePartIter*)> it(g_mime_part_iter_new(GMIME_OBJECT(msg.get())),
                                                              g_mime_part_iter_free);
  int parts = 0;
  do {
    GMimeObject* obj = g_mime_part_iter_get_current(it.get());
    if (obj == nullptr || !GMIME_IS_PART(obj)) continue;
    if (++parts > kMaxSpooledParts) {
      out.limits.push_back("MaxParts: more than " + std::to_string(kMaxSpooledParts) + " parts");
      break;
    }
    GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(obj));
    if (content == nullptr) continue;
    Result<FileDescriptor> opened = open_spool_file(tmpdir);
    if (!opened.ok()) return opened.status();
    FileDescriptor part = std::move(opened.value());
    int wfd = ::dup(part.get());
    if (wfd < 0) return Status::IOError("cannot duplicate a part file");
    GObjectPtr<GMimeStream> outs(g_mime_stream_fs_new(wfd));
    if (g_mime_data_wrapper_write_to_stream(content, outs.get()) < 0 || g_mime_stream_flush(outs.get()) != 0)
      return Status::IOError("cannot write a decoded part to " + tmpdir);
    if (::lseek(part.get(), 0, SEEK_SET) != 0) return Status::IOError("cannot rewind a decoded part");
    auto r = engine.scan_fd(part.get(), false);
    if (!r.ok()) return r.status();
    for (AvMatch& m : r.value().matches) out.matches.push_back(std::move(m));
    for (std::string& l : r.value().limits) out.limits.push_back(std::move(l));
  } while (g_mime_part_iter_next(it.get()));
  return Status::Ok();
}

}  // namespace

std::vector<SymbolDef> ClamavCheck::symbols() {
  return {
      {"CLAMAV_VIRUS", 0.0, "A trusted malware signature matched: the message is rejected"},
      {"CLAMAV_THIRD_PARTY", 3.5, "A third-party (unofficial) ClamAV signature matched"},
      {"CLAMAV_NOT_FULLY_SCANNED", 0.1, "Part of the message was not scanned for malware (a size limit)"},
      {"CLAMAV_UNSCANNABLE", 0.0,
       "libclamav could not scan the message to the end (nesting, member count or time): [clamav] on_unscannable"},
  };
}

namespace {

// The process-wide cap on long-message scans (a counting gate whose limit is
// the caller's: a reload may change it).
std::mutex g_gate_mu;
std::condition_variable g_gate_cv;
int g_large_running = 0;

}  // namespace

LargeScanSlot::LargeScanSlot(int limit, int wait_ms) {
  std::unique_lock lock(g_gate_mu);
  held_ = limit <= 0 || g_gate_cv.wait_for(lock, std::chrono::milliseconds(wait_ms),
                                           [&] { return g_large_running < limit; });
  if (held_) ++g_large_running;
}

LargeScanSlot::~LargeScanSlot() {
  if (!held_) return;
  {
    std::lock_guard lock(g_gate_mu);
    --g_large_running;
  }
  g_gate_cv.notify_one();
}

int large_scans_running() {
  std::lock_guard lock(g_gate_mu);
  return g_large_running;
}

Status ClamavCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const {
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
    LargeScanSlot slot(max_large_, large_wait_ms_);
    if (!slot.held())
      return Status::Limit("clamav: " + std::to_string(max_large_) + " long messages are being scanned; waited " +
                           std::to_string(large_wait_ms_) + " ms for a slot ([clamav] max_parallel_large_scans)");
    if (scan_raw_) s = merge(engine_->scan_fd(ctx.av->fd, true));
    else s = scan_spooled_parts(*engine_, ctx.av->fd, tmpdir_, all);
    if (!ctx.av->complete) partial += (partial.empty() ? "" : ", ") + ("only the first " + std::to_string(ctx.av->size) + " bytes");
  } else if (!scan_raw_ && !m.limits_hit.scan_bytes && !m.limits_hit.parts && !m.limits_hit.mime_depth) {
    for (const std::string& part : m.decoded_parts) {
      s = merge(engine_->scan_memory(part, false));
      if (!s.ok()) break;
    }
  } else {
    std::string_view raw = ctx.bytes.substr(0, max_av_bytes_);
    if (scan_raw_) {
      s = merge(engine_->scan_memory(raw, true));
    } else {  // `scan` of a long file: split it into parts on disk like the milter's spool
      Result<FileDescriptor> opened = open_spool_file(tmpdir_);
      if (!opened.ok()) return opened.status();
      FileDescriptor f = std::move(opened.value());
      if (int err = write_all(f.get(), raw); err != 0)
        return Status::IOError("cannot write a spool file in " + tmpdir_ + ": " + std::strerror(err));
      if (::lseek(f.get(), 0, SEEK_SET) != 0) return Status::IOError("cannot rewind a spool file");
      s = scan_spooled_parts(*engine_, f.get(), tmpdir_, all);
    }
    if (m.total_size > raw.size())
      partial += (partial.empty() ? "" : ", ") + ("only the first " + std::to_string(raw.size()) + " bytes");
  }
  if (!s.ok()) return s;
  // clamav-milter's convention: downstream filters and people see the
  // malware scan ran (a failed scan adds nothing).
  side.prepend.emplace_back("X-Virus-Scanned", std::string("ClamAV ") + cl_retver() + " (spamgate)");

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
                      std::string(reply_text::kMalware) + first_reject->display);
  if (!scores.empty()) hits.emplace_back("CLAMAV_THIRD_PARTY", 1.0, clip(scores, 500));
  // Size limits are normal for large mail; structural ones are what archive
  // bombs and malware buried below max_recursion look like. Running out of
  // time may be the machine's load, not the message: a failed check (its
  // policy: tempfail, the client retries) rather than a final answer.
  std::string unscannable;
  bool out_of_time = false;
  for (const std::string& l : all.limits) {
    const bool structural = l.find("MaxRecursion") != std::string::npos || l.find("MaxFiles") != std::string::npos ||
                            l.find("MaxParts") != std::string::npos;
    out_of_time = out_of_time || l.find("MaxScanTime") != std::string::npos;
    std::string& list = structural ? unscannable : partial;
    if (list.find(l) == std::string::npos) list += (list.empty() ? "" : ", ") + l;
  }
  if (out_of_time && first_reject == nullptr && on_unscannable_ != ClamavConfig::Unscannable::kScore)
    return Status::Limit("clamav: the scan ran out of time ([clamav] max_scantime_ms)");
  if (!partial.empty()) hits.emplace_back("CLAMAV_NOT_FULLY_SCANNED", 1.0, clip(partial, 300));
  if (!unscannable.empty() && first_reject == nullptr) {
    switch (on_unscannable_) {
      case ClamavConfig::Unscannable::kTempfail:
        return Status::Limit("clamav: the message could not be scanned to the end: " + clip(unscannable, 200));
      case ClamavConfig::Unscannable::kReject:
        hits.emplace_back("CLAMAV_UNSCANNABLE", 1.0, clip(unscannable, 300), std::string(reply_text::kUnscannable));
        break;
      case ClamavConfig::Unscannable::kScore: hits.emplace_back("CLAMAV_UNSCANNABLE", 1.0, clip(unscannable, 300)); break;
    }
  }
  return Status::Ok();
}

}  // namespace spamgate
