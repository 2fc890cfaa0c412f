// session.cc - per-connection milter logic (see session.h).
//
// DIAGNOSTICS: one info line per message (queue id, connection id, client,
// sender, recipient count, class, verdict); a warning per failed check; an
// error when a header edit is refused by the MTA.
#include "milter/session.h"

#include "history/history_store.h"
#include "history/writer.h"

#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "spamgate/metrics.h"
#include "spamgate/pipeline.h"
#include "util/log.h"
#include "util/text.h"

namespace spamgate {

void Session::connect(std::string_view client_name, std::string_view client_ip, bool local) {
  env_ = Envelope{};
  env_.client_name = clipped(client_name);
  env_.client_ip = clipped(client_ip);
  local_ = local;
  reset_message();
}

namespace {
std::atomic<std::size_t> g_buffered{0};  // bytes in every session's buf_
}  // namespace

std::size_t Session::buffered_bytes() { return g_buffered.load(std::memory_order_relaxed); }

void Session::reset_message() {
  snap_.reset();
  g_buffered.fetch_sub(buf_.size(), std::memory_order_relaxed);
  buf_.clear();
  buf_.shrink_to_fit();
  total_ = 0;
  kept_ = 0;
  body_skipped_ = false;
  census_ = HeaderCensus();
  header_fields_ = 0;
  late_mime_fields_ = 0;
  dkim_.reset();
  signed_ = false;
  dns_spent_ = {};
  spool_.reset();
  spooled_ = 0;
  spool_error_.clear();
  env_.mail_from.clear();
  env_.rcpt_to.clear();
  env_.auth_user.clear();
  env_.queue_id.clear();
}

namespace {
// Whether MAIL FROM with this envelope reads the outbound guard's holds.
bool reads_holds_at_mail(const Snapshot& snap, const Envelope& env, bool local) {
  const OutboundGuard* guard = snap.outbound.get();
  return guard != nullptr && !guard->config().hold_quarantine && !local &&
         classify_sender(snap.config, env, local).cls != SenderClass::kInbound;
}
}  // namespace

bool Session::mail_from_may_block(std::string_view auth_user) const noexcept {
  try {
    auto snap = holder_.get();
    if (!snap) return false;
    Envelope e;  // what classify_sender reads: the client and the login
    e.client_ip = env_.client_ip;
    e.auth_user = clipped(auth_user);
    return reads_holds_at_mail(*snap, e, local_);
  } catch (...) {
    return true;  // (out of memory) on a worker, where mail_from() may fail safely
  }
}

std::optional<std::string> Session::mail_from(std::string_view from, std::string_view auth_user,
                                              std::string_view queue_id, bool may_read_store) {
  reset_message();
  snap_ = holder_.get();
  census_ = make_census(*snap_);
  if (from.size() >= 2 && from.front() == '<' && from.back() == '>') from = from.substr(1, from.size() - 2);
  env_.mail_from = clipped(from);
  env_.auth_user = clipped(auth_user);
  if (snap_->dkim) dkim_ = std::make_unique<DkimVerifier>(snap_->dkim, snap_->config.auth.dkim_max_body_bytes);
  // A held sender's mail is refused here, where its login is known, unless
  // holds go to the hold queue or the mail is a local submission (Postfix's
  // MILTER_README: never reject non_smtpd_milters mail at a simulated step).
  const OutboundGuard* guard = snap_->outbound.get();
  if (!reads_holds_at_mail(*snap_, env_, local_)) return std::nullopt;
  if (!may_read_store) {  // a reload between mail_from_may_block() and now
    log().debug("{}: outbound: holds not read at MAIL FROM on the event loop; read at end of message", conn_id_);
    return std::nullopt;
  }
  OutboundSender sender = outbound_sender(env_);
  if (!sender.valid()) return std::nullopt;
  // Postfix knows the queue id at MAIL FROM only when smtpd_delay_open_until_valid_rcpt = no.
  const std::string label = queue_id.empty() ? conn_id_ : clipped(queue_id) + ": conn=" + conn_id_;
  std::optional<HoldInfo> hold;
  if (Status st = guard->held(sender, hold); !st.ok()) {
    log().warn("{}: outbound: cannot read holds at MAIL FROM (checked again at end of message): {}", label,
               st.message());
    return std::nullopt;
  }
  if (!hold) return std::nullopt;
  log().warn("{}: outbound: MAIL FROM <{}> refused with 451 4.7.1: {} is held until {} ({})", label,
             clip(env_.mail_from, 200), hold->who, format_unix_time(hold->until), hold->reason);
  Metrics::get().message(Metrics::Direction::kOutbound, Metrics::Outcome::kTempfail, 0, false);
  reset_message();
  return std::string(reply_text::kHeld);
}

void Session::rcpt_to(std::string_view rcpt) {
  if (env_.rcpt_to.size() < 10000) env_.rcpt_to.push_back(clipped(rcpt));
}

std::size_t Session::av_cap() const {
  return snap_ != nullptr && snap_->clamav ? snap_->config.clamav.max_av_bytes : 0;
}

void Session::append(std::string_view bytes, bool keep) {
  total_ += bytes.size();
  if (!keep) return;
  std::size_t start = kept_;
  kept_ += bytes.size();
  if (snap_ == nullptr) return;
  std::size_t cap = snap_->config.limits.max_scan_bytes;
  if (buf_.size() < cap) {
    std::string_view kept = bytes.substr(0, cap - buf_.size());
    buf_.append(kept);
    g_buffered.fetch_add(kept.size(), std::memory_order_relaxed);
  }
  if (kept_ > cap && av_cap() > cap) spool(start, bytes);
}

// Keeps bytes [0, min(total, max_av_bytes)) in the spool file; `bytes` is
// the chunk that started at offset `start`.
void Session::spool(std::size_t start, std::string_view bytes) {
  if (!spool_error_.empty()) return;
  auto write_all = [&](std::string_view data) {
    if (int err = spamgate::write_all(spool_.get(), data); err != 0) {
      spool_error_ = "cannot write the spool file in " + snap_->config.clamav.spool_dir + ": " + std::strerror(err);
      spool_.reset();
      return false;
    }
    spooled_ += data.size();
    return true;
  };
  if (!spool_) {
    Result<FileDescriptor> opened = open_spool_file(snap_->config.clamav.spool_dir);
    if (!opened.ok()) {
      spool_error_ = opened.status().message();
      return;
    }
    spool_ = std::move(opened.value());
    if (!write_all(buf_)) return;  // buf_ holds bytes [0, max_scan_bytes)
  }
  std::size_t want = std::min(kept_, av_cap());
  if (want <= spooled_ || spooled_ < start) return;
  write_all(bytes.substr(spooled_ - start, want - spooled_));
}

void Session::header(std::string_view name, std::string_view value) {
  census_.add(name, value);
  // Past max_headers a field is counted, not kept: only MIME fields (which
  // shape the malware scan's parse) still go into the buffer and spool.
  ++header_fields_;
  bool keep = snap_ == nullptr || header_fields_ <= snap_->config.limits.max_headers;
  if (!keep && late_mime_fields_ < 100 &&
      ((name.size() > 8 && ascii_lower(name.substr(0, 8)) == "content-") || ascii_lower(name) == "mime-version")) {
    ++late_mime_fields_;
    keep = true;
  }
  // Rebuild the field as it was on the wire: with SMFIP_HDR_LEADSPC the value
  // keeps its own leading white space; otherwise Postfix removed one space.
  std::string line(name);
  line += ':';
  if (!leading_space_) line += ' ';
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r')) line += '\r';
    line += value[i];
  }
  if (dkim_ && header_fields_ <= snap_->config.limits.max_headers) {
    dkim_->header(line);
    signed_ = signed_ || (name.size() == 14 && strncasecmp(name.data(), "DKIM-Signature", 14) == 0);
  }
  line += "\r\n";
  append(line, keep);
}

void Session::end_of_headers() {
  append("\r\n");
  if (dkim_ && snap_ != nullptr) {  // key lookups happen here, from the message's one DNS budget
    auto t0 = std::chrono::steady_clock::now();
    dkim_->end_of_headers(t0 + std::chrono::milliseconds(snap_->config.dns.budget_ms));
    dns_spent_ += std::chrono::steady_clock::now() - t0;
  }
}

bool Session::body(const unsigned char* data, std::size_t len) {
  std::string_view chunk(reinterpret_cast<const char*>(data), len);
  append(chunk);
  if (dkim_) dkim_->body(chunk);
  return snap_ == nullptr || buf_.size() < snap_->config.limits.max_scan_bytes || (dkim_ && dkim_->wants_body()) ||
         (spool_error_.empty() && kept_ < av_cap());
}

bool Session::body_may_block(std::size_t max_chunk) const {
  if (snap_ == nullptr || !spool_error_.empty()) return false;
  const std::size_t cap = snap_->config.limits.max_scan_bytes;
  return av_cap() > cap && kept_ + max_chunk > cap && kept_ < av_cap();
}

SenderClass Session::sender_class() const {
  if (snap_ == nullptr) return classify_sender(Config{}, env_, local_).cls;
  return classify_sender(snap_->config, env_, local_).cls;
}

std::string Session::render_value(const std::string& v) const { return leading_space_ ? " " + v : v; }

EomAction Session::end_of_message(std::string_view queue_id, HeaderSink& sink) {
  if (snap_ == nullptr) {  // MAIL FROM not seen (should not happen)
    snap_ = holder_.get();
    census_ = make_census(*snap_);
  }
  const Snapshot& snap = *snap_;
  env_.queue_id = clipped(queue_id.empty() ? std::string_view(conn_id_) : queue_id);
  const std::string label = env_.queue_id;
  const Sender sender = classify_sender(snap.config, env_, local_);
  const SenderPolicy policy = policy_for(snap.config, sender.cls);
  // After a skip the true size is unknown but larger than what was kept.
  ScanExtras x;
  x.total_size = body_skipped_ ? std::max(total_, buf_.size() + 1) : total_;
  x.dkim = dkim_.get();
  x.census = &census_;
  AvInput av;
  if (spool_ || !spool_error_.empty()) {
    av.fd = spool_.get();
    av.size = spooled_;
    av.complete = !body_skipped_ && kept_ <= spooled_;
    av.error = spool_error_;
    if (spool_ && ::lseek(spool_.get(), 0, SEEK_SET) != 0) av.error = "cannot rewind the spool file";
    x.av = &av;
  }
  // What is left of the DNS budget: counted in time spent in lookups, not
  // since end of headers, so a slow body upload does not eat it.
  x.dns_deadline = std::chrono::steady_clock::now() +
                   std::max<std::chrono::steady_clock::duration>(
                       std::chrono::milliseconds(snap.config.dns.budget_ms) - dns_spent_,
                       std::chrono::steady_clock::duration::zero());
  // The verdict history's reference, also in the header for the customer.
  const std::string ref = snap.history ? new_history_ref() : std::string();
  if (snap.history && snap.config.history.reference != "off") x.reference = ref;  // "" if getrandom failed
  Handled h = handle_message(snap, buf_, env_, sender, OutboundMode::kCount, label, x);
  std::string context = "conn=" + conn_id_ + " client=" + (env_.client_ip.empty() ? "local" : env_.client_ip) +
                        " from=<" + clip(env_.mail_from, 200) + "> rcpts=" + std::to_string(env_.rcpt_to.size()) +
                        " class=" + sender_class_name(sender.cls) +
                        " size=" + (body_skipped_ ? ">" : "") + std::to_string(total_);
  if (h.scan) {
    context += std::string(h.scan->message.limits_hit.scan_bytes ? " scan=partial" : "") +
               " policy=" + (policy == SenderPolicy::kTag ? "tag" : "log");
  }
  log_verdict(h, label, context);
  bool quarantined = apply(h.disposition, sink, label);
  run_after_effects(snap, h, label, quarantined);
  if (snap.history && !ref.empty()) snap.history->submit(history_record(h, env_, sender, ref, total_, unix_seconds()));
  last_ = std::move(h.disposition);
  reset_message();
  return milter_answer(last_.action);
}

bool Session::apply(const Disposition& d, HeaderSink& sink, const std::string& label) {
  for (const HeaderEdit& e : d.plan.edits) {
    bool ok = true;
    switch (e.op) {
      case HeaderEdit::Op::kDelete: ok = sink.change(e.name, e.index, nullptr); break;
      case HeaderEdit::Op::kChange: {
        std::string v = render_value(e.value);
        ok = sink.change(e.name, e.index, &v);
        break;
      }
      case HeaderEdit::Op::kAdd: ok = sink.add(e.name, render_value(e.value)); break;
      case HeaderEdit::Op::kInsert: ok = sink.insert(e.name, e.index, render_value(e.value)); break;
    }
    if (!ok) log().error("{}: the MTA refused to edit header {} (index {})", label, e.name, e.index);
  }
  bool quarantined = false;
  if (d.action == Action::kQuarantine) {
    quarantined = sink.quarantine(d.quarantine_reason);
    if (!quarantined) log().error("{}: the MTA refused to quarantine the message: {}", label, d.quarantine_reason);
  }
  if (!d.reply.empty() && !sink.reply(d.reply.code, d.reply.xcode, d.reply.text))
    log().error("{}: the MTA refused the reply {}", label, d.reply.str());
  return quarantined;
}

}  // namespace spamgate
