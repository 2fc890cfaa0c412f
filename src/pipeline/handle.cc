// handle.cc - one message through the pipeline: sender policy, scan,
// outbound step, decide(); the after-effects; the verdict log line.
//
// DIAGNOSTICS: one info line per message (log_verdict); a warning per failed
// check, per outbound store failure and per new hold; a warning when
// autolearn cannot write its store.
#include <fmt/format.h>

#include <unordered_map>

#include "checks/bayes.h"
#include "checks/builtin.h"
#include "rules/ruleset.h"
#include "spamgate/metrics.h"
#include "spamgate/pipeline.h"
#include "util/log.h"
#include "util/text.h"

namespace spamgate {

OutboundResult outbound_step(const Snapshot& snap, const Envelope& env, const Sender& sender, const ScanResult& scan,
                             OutboundMode mode, std::string_view label) {
  OutboundResult out;
  const OutboundGuard* guard = snap.outbound.get();
  if (guard == nullptr || sender.cls == SenderClass::kInbound) return out;
  OutboundSender who = outbound_sender(env);
  if (!who.valid()) return out;
  out.account = who.account;
  auto failed = [&](const Status& st) {
    log().warn("{}: check outbound failed: {}", label, st.message());
    out.state = OutboundResult::State::kError;
    out.error = st.message();
    return out;
  };
  if (Status st = guard->held(who, out.hold); !st.ok()) return failed(st);
  if (out.hold) {
    out.state = OutboundResult::State::kHeld;
    return out;
  }
  if (Status st = guard->tag_of(who.account, out.tag); !st.ok())
    log().warn("{}: outbound: no sender tag: {}", label, st.message());
  const bool spam = scan.verdict.score_tenths > guard->config().threshold_tenths;
  out.state = spam ? OutboundResult::State::kSpam : OutboundResult::State::kOk;
  if (mode == OutboundMode::kLookUp) return out;
  const Header* mid = scan.message.first("Message-ID");
  OutboundCounts counts;
  if (Status st = guard->count_message(who, env.rcpt_to.size(), spam, unix_seconds(),
                                       mid ? std::string_view(mid->decoded) : std::string_view(), out.tag, counts,
                                       out.hold);
      !st.ok()) {
    out.tag.clear();
    return failed(st);
  }
  if (out.hold) {
    out.state = OutboundResult::State::kNewHold;
    log().warn("{}: outbound: HOLD {}: {}; counts: {}; held until {} (spamgate release {})", label, out.hold->who,
               out.hold->reason, counts.summary(), format_unix_time(out.hold->until),
               out.hold->who.rfind("domain ", 0) == 0 ? "domain:" + out.hold->who.substr(7) : out.hold->who);
  }
  return out;
}

std::vector<RecipientGroup> recipient_groups(const Snapshot& snap, const Envelope& env) {
  std::vector<RecipientGroup> groups;
  if (!snap.recipients || snap.recipients->empty()) return groups;
  bool own = false;  // some recipient has settings of its own
  std::unordered_map<std::string, std::size_t> by_source;  // a message may have thousands of recipients
  for (const std::string& rcpt : env.rcpt_to) {
    RecipientSettings st = snap.recipients->resolve(rcpt);
    own = own || !st.source.empty();
    auto [it, fresh] = by_source.emplace(st.source, groups.size());
    if (fresh) groups.push_back(RecipientGroup{std::move(st), {}, {}});
    groups[it->second].rcpts.push_back(rcpt);
  }
  if (!own) groups.clear();  // spamgate.toml's alone: the path without settings
  return groups;
}

namespace {

// Each group's own lists against the scanned message (the hits a rules
// file's lists would give, scored by decide()).
void add_list_hits(const ScanResult& scan, const Envelope& env, std::vector<RecipientGroup>& groups) {
  const CheckContext ctx{scan.message, env, std::chrono::steady_clock::now(), scan.auth, {}, nullptr, nullptr, nullptr};
  // A domain's lists are shared by its addresses' groups: each is matched once.
  std::unordered_map<const AddressLists*, std::vector<Hit>> matched;
  for (RecipientGroup& g : groups) {
    const std::string who = g.settings.source.substr(0, g.settings.source.find(' '));
    for (const AddressLists* lists : g.settings.lists) {
      auto [it, fresh] = matched.try_emplace(lists);
      if (fresh) {
        plain_list_hits(*lists, scan.message, env, it->second);
        auth_list_hits(*lists, ctx, it->second);
      }
      for (const Hit& hit : it->second) {
        g.hits.push_back(hit);
        g.hits.back().detail += " (settings for " + who + ")";
      }
    }
  }
}

}  // namespace

Handled handle_message(const Snapshot& snap, std::string_view bytes, const Envelope& env, const Sender& sender,
                       OutboundMode mode, std::string_view label, const ScanExtras& extras) {
  Handled h;
  std::vector<RecipientGroup> groups;
  if (sender.cls == SenderClass::kInbound) groups = recipient_groups(snap, env);
  std::string skip_why;  // every recipient opted out
  if (!groups.empty() && std::all_of(groups.begin(), groups.end(), [](const RecipientGroup& g) { return g.settings.skip; }))
    skip_why = "every recipient opted out (skip for " + groups.front().settings.source.substr(0, groups.front().settings.source.find(' ')) + ")";
  if (policy_for(snap.config, sender.cls) == SenderPolicy::kSkip || !skip_why.empty()) {
    if (extras.census != nullptr) {
      h.disposition = decide_skipped(snap, *extras.census, sender, skip_why);
    } else {
      HeaderCensus census = make_census(snap);
      census.add_block(bytes);
      h.disposition = decide_skipped(snap, census, sender, skip_why);
    }
    return h;
  }
  h.scan = scan_message(snap, bytes, env, extras);
  OutboundResult ob = outbound_step(snap, env, sender, *h.scan, mode, label);
  if (!groups.empty()) add_list_hits(*h.scan, env, groups);
  h.disposition = decide(snap, *h.scan, sender, ob, groups);
  if (h.disposition.verdict) {  // what the recipients' settings made of it, for every reader
    h.scan->verdict = std::move(*h.disposition.verdict);
    h.disposition.verdict.reset();
  }
  return h;
}

void run_after_effects(const Snapshot& snap, const Handled& h, std::string_view label, bool quarantined) {
  const Disposition& d = h.disposition;
  Metrics::get().message(d.direction, d.outcome, h.scan ? h.scan->verdict.score_tenths : 0, d.scored);
  if (d.autolearn && h.scan) bayes_learn(snap, h.scan->message, *d.autolearn, label);
  if (quarantined && !d.hold_account.empty() && snap.outbound) {
    if (Status st = snap.outbound->note_quarantined(d.hold_account, label); !st.ok())
      log().warn("{}: outbound: cannot remember the held queue id: {}", label, st.message());
  }
}

void log_verdict(const Handled& h, std::string_view label, std::string_view context) {
  const Disposition& d = h.disposition;
  const std::string_view sep = context.empty() ? "" : " ";
  if (!h.scan) {
    const std::size_t forged = d.plan.edits.size();
    log().info("{}: {}{}skipped ({}){}", label, context, sep, d.why,
               forged > 0 ? " forged_fields=" + std::to_string(forged) : std::string());
    return;
  }
  const ScanResult& r = *h.scan;
  const Header* mid = r.message.first("message-id");
  std::string tests;
  for (const ScoredHit& hit : r.verdict.hits) {
    if (!tests.empty()) tests.push_back(',');
    tests += hit.name;
  }
  std::string unavailable;  // dependency down (logged once by its breaker): named on the verdict line
  for (const CheckError& e : r.check_errors) {
    if (e.unavailable) unavailable += (unavailable.empty() ? " unavailable=" : ",") + e.check;
    else log().warn("{}: check {} failed, its remaining work skipped: {}", label, e.check, clip(e.message, 300));
  }
  if (d.action == Action::kTempfail)
    log().warn("{}: tempfail: {}", label, d.why);
  std::string reply;
  if (!d.reply.empty()) reply = " reply=\"" + clip(d.reply.str(), 300) + "\"";
  log().info("{}: {}{}msgid={} score={} required={} action={}{} tests={}{}{} ms={:.2f}", label, context, sep,
             mid ? clip(mid->decoded, 100) : std::string("(none)"), format_tenths(r.verdict.score_tenths),
             format_tenths(r.verdict.threshold_tenths), action_name(d.action), reply,
             tests.empty() ? "none" : tests, unavailable, d.outbound_note + d.settings_note, r.ms);
}

}  // namespace spamgate
