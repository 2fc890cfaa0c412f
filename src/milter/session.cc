// session.cc - per-connection milter logic (see session.h).
//
// DIAGNOSTICS: one info line per message (queue id, connection id, client,
// sender, recipient count, class, verdict); a warning per failed check; an
// error when a header edit is refused by the MTA.
#include "milter/session.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "checks/bayes.h"
#include "checks/builtin.h"
#include "spamgate/metrics.h"
#include "util/cidr.h"
#include "util/log.h"

namespace spamgate {

const char* sender_class_name(SenderClass c) {
  switch (c) {
    case SenderClass::kInbound: return "inbound";
    case SenderClass::kAuthenticated: return "authenticated";
    case SenderClass::kTrusted: return "trusted";
  }
  return "inbound";
}

std::string escape_reply(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 500)) {
    if (c == '%') out += "%%";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) out += ' ';
    else out += c;
  }
  return out;
}

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
  dns_spent_ = {};
  spool_.reset();
  spooled_ = 0;
  spool_error_.clear();
  env_.mail_from.clear();
  env_.rcpt_to.clear();
  env_.auth_user.clear();
  env_.queue_id.clear();
}

std::optional<std::string> Session::mail_from(std::string_view from, std::string_view auth_user,
                                              std::string_view queue_id) {
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
  if (guard == nullptr || guard->config().hold_quarantine || local_ || sender_class() == SenderClass::kInbound)
    return std::nullopt;
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
  return std::string("Sending from this account is paused after unusual activity; please contact support");
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
    spool_ = open_spool_file(snap_->config.clamav.spool_dir, spool_error_);
    if (!spool_) return;
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
  if (dkim_ && header_fields_ <= snap_->config.limits.max_headers) dkim_->header(line);
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

SenderClass Session::sender_class() const {
  if (!env_.auth_user.empty()) return SenderClass::kAuthenticated;
  if (local_) return SenderClass::kTrusted;
  if (snap_ != nullptr) {
    for (const std::string& net : snap_->config.milter.trusted_networks) {
      auto c = Cidr::parse(net);
      if (c && c->contains(env_.client_ip)) return SenderClass::kTrusted;
    }
  }
  return SenderClass::kInbound;
}

std::string Session::render_value(const std::string& v) const { return leading_space_ ? " " + v : v; }

EomAction Session::end_of_message(std::string_view queue_id, HeaderSink& sink) {
  if (snap_ == nullptr) {  // MAIL FROM not seen (should not happen)
    snap_ = holder_.get();
    census_ = make_census(*snap_);
  }
  const Snapshot& snap = *snap_;
  const MilterConfig& mc = snap.config.milter;
  env_.queue_id = clipped(queue_id.empty() ? std::string_view(conn_id_) : queue_id);
  const std::string label = env_.queue_id;
  SenderClass cls = sender_class();
  SenderPolicy policy = cls == SenderClass::kInbound         ? mc.inbound
                        : cls == SenderClass::kAuthenticated ? mc.authenticated
                                                             : mc.trusted;
  std::string context = "conn=" + conn_id_ + " client=" + (env_.client_ip.empty() ? "local" : env_.client_ip) +
                        " from=<" + clip(env_.mail_from, 200) + "> rcpts=" + std::to_string(env_.rcpt_to.size()) +
                        " class=" + sender_class_name(cls);
  const Metrics::Direction dir = cls == SenderClass::kInbound ? Metrics::Direction::kInbound : Metrics::Direction::kOutbound;
  if (policy == SenderPolicy::kSkip) {
    // Not scanned, but forged trust fields still go (up to the cap).
    Plan removals;
    for (HeaderCensus::Removal& r : census_.removals())
      removals.edits.push_back({HeaderEdit::Op::kDelete, std::move(r.name), r.index, ""});
    apply(removals, sink, label);
    log().info("{}: {} size={} skipped (policy){}", label, context, total_,
               census_.forged() > 0 ? " forged_fields=" + std::to_string(census_.forged()) : std::string());
    Metrics::get().message(dir, Metrics::Outcome::kSkip, 0, false);
    reset_message();
    return EomAction::kAccept;
  }
  PlanOptions opts;
  opts.annotate = policy == SenderPolicy::kTag;
  opts.tag_subject = cls == SenderClass::kInbound;
  opts.list_tests = cls == SenderClass::kInbound;
  // After a skip the true size is unknown but larger than what was kept.
  std::size_t total = body_skipped_ ? std::max(total_, buf_.size() + 1) : total_;
  AvInput av;
  const bool spooled = spool_ || !spool_error_.empty();
  if (spooled) {
    av.fd = spool_.get();
    av.size = spooled_;
    av.complete = !body_skipped_ && kept_ <= spooled_;
    av.error = spool_error_;
    if (spool_ && ::lseek(spool_.get(), 0, SEEK_SET) != 0) av.error = "cannot rewind the spool file";
  }
  // What is left of the DNS budget: counted in time spent in lookups, not
  // since end of headers, so a slow body upload does not eat it.
  auto dns_left = std::max<std::chrono::steady_clock::duration>(
      std::chrono::milliseconds(snap.config.dns.budget_ms) - dns_spent_, std::chrono::steady_clock::duration::zero());
  ScanResult r = scan_message(snap, buf_, env_, total, opts, dkim_.get(), spooled ? &av : nullptr, &census_,
                              std::chrono::steady_clock::now() + dns_left);
  std::string size = body_skipped_ ? ">" + std::to_string(total_) : std::to_string(total_);
  std::string outbound_note, tag;
  bool quarantined = false;
  EomAction outbound = cls == SenderClass::kInbound ? EomAction::kAccept
                                                    : outbound_eom(snap, r, sink, outbound_note, quarantined, tag);
  log_verdict(r, label, context + " size=" + size + (r.message.limits_hit.scan_bytes ? " scan=partial" : "") +
                            " policy=" + (policy == SenderPolicy::kTag ? "tag" : "log") + outbound_note);
  auto done = [&](EomAction a, Metrics::Outcome o) {
    Metrics::get().message(dir, o, r.verdict.score_tenths, true);
    reset_message();
    return a;
  };
  if (outbound != EomAction::kAccept) return done(outbound, Metrics::Outcome::kTempfail);
  if (cls == SenderClass::kInbound && !quarantined) bayes_autolearn(snap, r, label);
  for (const CheckError& e : r.check_errors) {
    auto it = mc.on_check_error_by_check.find(e.check);
    FailureAction a = it != mc.on_check_error_by_check.end() ? it->second : mc.on_check_error;
    if (a == FailureAction::kTempfail && !quarantined) {
      log().warn("{}: tempfail: check {} failed and its policy is tempfail", label, e.check);
      sink.reply("451", "4.7.1", "Temporary failure in spam scanning, please try again later");
      return done(EomAction::kTempfail, Metrics::Outcome::kTempfail);
    }
  }
  if (r.verdict.action == Action::kReject && !quarantined) {
    sink.reply("550", "5.7.1", escape_reply(r.verdict.reply));
    return done(EomAction::kReject, Metrics::Outcome::kReject);
  }
  apply(r.plan, sink, label);  // removals always; our fields under policy tag
  if (!tag.empty() && !sink.add(snap.outbound->config().tag_header, render_value(tag)))
    log().error("{}: the MTA refused to add header {}", label, snap.outbound->config().tag_header);
  if (quarantined) return done(EomAction::kAccept, Metrics::Outcome::kQuarantine);
  const bool tagged = policy == SenderPolicy::kTag && opts.tag_subject && r.verdict.spam;
  return done(EomAction::kAccept, tagged ? Metrics::Outcome::kTag : Metrics::Outcome::kAccept);
}

void Session::apply(const Plan& plan, HeaderSink& sink, const std::string& label) {
  for (const HeaderEdit& e : plan.edits) {
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
}

EomAction Session::outbound_eom(const Snapshot& snap, const ScanResult& r, HeaderSink& sink, std::string& note,
                                bool& quarantined, std::string& tag) {
  const OutboundGuard* guard = snap.outbound.get();
  if (guard == nullptr) return EomAction::kAccept;
  OutboundSender sender = outbound_sender(env_);
  if (!sender.valid()) return EomAction::kAccept;
  const OutboundConfig& oc = guard->config();
  const std::string& label = env_.queue_id;
  const bool spam = r.verdict.score_tenths > oc.threshold_tenths;
  auto failed = [&](const Status& st) {
    const MilterConfig& mc = snap.config.milter;
    auto it = mc.on_check_error_by_check.find("outbound");
    FailureAction a = it != mc.on_check_error_by_check.end() ? it->second : mc.on_check_error;
    log().warn("{}: check outbound failed: {}", label, st.message());
    note = " outbound=error";
    if (a != FailureAction::kTempfail || local_) return EomAction::kAccept;
    sink.reply("451", "4.7.1", "Temporary failure in spam scanning, please try again later");
    return EomAction::kTempfail;
  };
  std::optional<HoldInfo> hold;
  if (Status st = guard->held(sender, hold); !st.ok()) return failed(st);
  bool new_hold = false;
  if (!hold) {
    if (Status st = guard->tag_of(sender.account, tag); !st.ok())
      log().warn("{}: outbound: no sender tag: {}", label, st.message());
    const Header* mid = r.message.first("Message-ID");
    OutboundCounts counts;
    if (Status st = guard->count_message(sender, env_.rcpt_to.size(), spam, unix_seconds(),
                                         mid ? std::string_view(mid->decoded) : std::string_view(), tag, counts, hold);
        !st.ok())
      return failed(st);
    if (hold) {
      new_hold = true;
      log().warn("{}: outbound: HOLD {}: {}; counts: {}; held until {} (spamgate release {})", label, hold->who,
                 hold->reason, counts.summary(), format_unix_time(hold->until),
                 hold->who.rfind("domain ", 0) == 0 ? "domain:" + hold->who.substr(7) : hold->who);
    }
  }
  if (hold) {
    // The held sender's message: into the hold queue (nothing is lost; local
    // submission always), or 451 so the client retries after the release.
    if (oc.hold_quarantine || local_) {
      std::string reason = escape_reply("spamgate: " + hold->who + " held: " + hold->reason);
      if (!sink.quarantine(reason)) {
        log().error("{}: the MTA refused to quarantine the message of held {}", label, hold->who);
      } else if (Status st = guard->note_quarantined(sender.account, label); !st.ok()) {
        log().warn("{}: outbound: cannot remember the held queue id: {}", label, st.message());
      }
      note = std::string(" outbound=") + (new_hold ? "hold" : "held") + ":quarantine";
      quarantined = true;
      return EomAction::kAccept;
    }
    note = std::string(" outbound=") + (new_hold ? "hold" : "held") + ":tempfail";
    sink.reply("451", "4.7.1", "Sending from this account is paused after unusual activity; please contact support");
    return EomAction::kTempfail;
  }
  note = spam ? " outbound=spam" : " outbound=ok";
  return EomAction::kAccept;
}

}  // namespace spamgate
