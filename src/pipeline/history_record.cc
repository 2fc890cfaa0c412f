// history_record.cc - the verdict history record of one handled message
// (see pipeline.h).
#include <fmt/format.h>

#include "spamgate/pipeline.h"
#include "util/text.h"

namespace spamgate {

namespace {

// An envelope address as the MTA gave it, "<a@b>" or "a@b", without the <>.
std::string bare(std::string_view a) {
  if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
  return std::string(a);
}

}  // namespace

HistoryRecord history_record(const Handled& h, const Envelope& env, const Sender& sender, std::string ref,
                             std::uint64_t size, std::int64_t time) {
  constexpr std::size_t kField = 300, kDetail = 200;
  HistoryRecord r;
  r.ref = std::move(ref);
  r.time = time;
  r.queue_id = env.queue_id;
  r.client_ip = env.client_ip;
  r.helo = clip(env.helo, kField);
  r.mail_from = clip(bare(env.mail_from), kField);
  for (const std::string& rc : env.rcpt_to) {
    if (r.rcpt_to.size() >= 100) break;
    r.rcpt_to.push_back(clip(bare(rc), kField));
  }
  r.size = size;
  r.direction = sender_class_name(sender.cls);
  const Disposition& d = h.disposition;
  r.action = action_name(d.action);
  if (!d.reply.empty()) r.reply = clip(d.reply.str(), kField);
  r.account = !env.auth_user.empty() ? clip(env.auth_user, kField) : d.hold_account;  // the SMTP AUTH login
  if (!h.scan) return r;  // skipped by policy: envelope and action only
  const ScanResult& s = *h.scan;
  if (const Header* mid = s.message.first("message-id")) r.message_id = clip(mid->decoded, kField);
  if (const Header* from = s.message.first("from")) r.from = clip(from->decoded, kField);
  if (const Header* subj = s.message.first("subject")) r.subject = clip(subj->decoded, kField);
  r.score = format_tenths(s.verdict.score_tenths);
  r.threshold = format_tenths(s.verdict.threshold_tenths);
  for (const ScoredHit& hit : s.verdict.hits)
    r.hits.push_back({hit.name, fmt::format("{:g}", static_cast<double>(hit.score_millis) / 1000.0), clip(hit.detail, kDetail)});
  const AuthResults& a = s.auth;
  auto add = [&](const std::string& part) { r.auth += (r.auth.empty() ? "" : " ") + part; };
  if (!a.spf.result.empty()) add("spf=" + a.spf.result);
  if (a.dkim.checked) {
    if (a.dkim.sigs.empty()) add("dkim=none");
    for (const DkimSignatureAuth& sig : a.dkim.sigs) add("dkim=" + sig.result + " (" + sig.domain + ")");
  }
  if (!a.dmarc.result.empty()) add("dmarc=" + a.dmarc.result);
  return r;
}

}  // namespace spamgate
