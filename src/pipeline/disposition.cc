// disposition.cc - decide(): a scanned message's verdict, sender and
// outbound answer to its Disposition (see disposition.h).
//
// The order of precedence, first match wins:
//   1. the outbound store failed and the "outbound" policy is tempfail -> 451
//      (a local submission is never refused: it goes on);
//   2. the sender is held -> the hold queue (hold_quarantine, or a local
//      submission) or 451;
//   3. a check failed and its policy is tempfail -> 451 (not for a message
//      going to the hold queue: nothing is lost there);
//   4. a forced reject (malware, DMARC p=reject, too many forged fields) -> 550;
//   5. spam, inbound, policy tag -> the Subject tagged; else delivered.
#include "spamgate/disposition.h"

#include <algorithm>

#include "spamgate/pipeline.h"
#include "spamgate/snapshot.h"
#include "util/cidr.h"

namespace spamgate {

const char* sender_class_name(SenderClass c) {
  switch (c) {
    case SenderClass::kInbound: return "inbound";
    case SenderClass::kAuthenticated: return "authenticated";
    case SenderClass::kTrusted: return "trusted";
  }
  return "inbound";
}

const char* outcome_name(Metrics::Outcome o) {
  switch (o) {
    case Metrics::Outcome::kAccept: return "accept";
    case Metrics::Outcome::kTag: return "tag";
    case Metrics::Outcome::kReject: return "reject";
    case Metrics::Outcome::kTempfail: return "tempfail";
    case Metrics::Outcome::kQuarantine: return "quarantine";
    case Metrics::Outcome::kSkip: return "skip";
  }
  return "accept";
}

Sender classify_sender(const Config& c, const Envelope& env, bool local) {
  Sender s;
  s.local = local;
  if (!env.auth_user.empty()) {
    s.cls = SenderClass::kAuthenticated;
  } else if (local) {
    s.cls = SenderClass::kTrusted;
  } else {
    for (const std::string& net : c.milter.trusted_networks) {
      auto cidr = Cidr::parse(net);
      if (cidr && cidr->contains(env.client_ip)) {
        s.cls = SenderClass::kTrusted;
        break;
      }
    }
  }
  return s;
}

SenderPolicy policy_for(const Config& c, SenderClass cls) {
  switch (cls) {
    case SenderClass::kInbound: return c.milter.inbound;
    case SenderClass::kAuthenticated: return c.milter.authenticated;
    case SenderClass::kTrusted: return c.milter.trusted;
  }
  return c.milter.inbound;
}

MilterAnswer milter_answer(Action a) {
  switch (a) {
    case Action::kReject: return MilterAnswer::kReject;
    case Action::kTempfail:
    case Action::kHold: return MilterAnswer::kTempfail;
    case Action::kAccept:
    case Action::kTag:
    case Action::kQuarantine:
    case Action::kSkip: return MilterAnswer::kAccept;
  }
  return MilterAnswer::kAccept;
}

namespace {

Metrics::Direction direction_of(const Sender& s) {
  return s.cls == SenderClass::kInbound ? Metrics::Direction::kInbound : Metrics::Direction::kOutbound;
}

FailureAction failure_action(const MilterConfig& mc, const std::string& check) {
  auto it = mc.on_check_error_by_check.find(check);
  return it != mc.on_check_error_by_check.end() ? it->second : mc.on_check_error;
}

void refuse(Disposition& d, Action a, std::string code, std::string xcode, std::string_view text, std::string why) {
  d.action = a;
  d.reply = {std::move(code), std::move(xcode), std::string(text)};
  d.why = std::move(why);
  d.outcome = a == Action::kReject ? Metrics::Outcome::kReject : Metrics::Outcome::kTempfail;
  d.plan = {};  // a refused message is not delivered: no edit
}

// [bayes] autolearn: the class to learn `scan` as, if any: scanned whole,
// not rejected, its score without the classifiers (their BAYES_ and LR_
// bands, the guard and the agreement: Verdict::rules_millis) above
// autolearn_spam_above or below autolearn_ham_below: a classifier never
// confirms itself.
std::optional<LearnClass> autolearn_class(const Snapshot& snap, const ScanResult& scan) {
  const BayesConfig& cfg = snap.config.bayes;
  if (!cfg.autolearn || scan.verdict.action == Action::kReject || scan.message.limits_hit.scan_bytes)
    return std::nullopt;
  if (std::none_of(snap.checks.begin(), snap.checks.end(), [](const auto& c) { return c->name() == "bayes"; }))
    return std::nullopt;
  const double score = static_cast<double>(scan.verdict.rules_millis) / 1000.0;
  if (score > cfg.autolearn_spam_above) return LearnClass::kSpam;
  if (score < cfg.autolearn_ham_below) return LearnClass::kHam;
  return std::nullopt;
}

// What the recipients' settings make of a message (decide() says how).
struct Settled {
  Verdict verdict;                        // under the deciding group's settings
  const RecipientSettings* settings;      // the deciding group's
  bool reject = false;                    // every group refuses it for its score
  std::string note;                       // " settings=..." of the deciding group
};

Settled settle(const Snapshot& snap, const ScanResult& scan, const std::vector<RecipientGroup>& groups) {
  struct Seen {
    Verdict verdict;
    const RecipientGroup* group;
    bool reject;
  };
  std::vector<Seen> seen;
  std::vector<Hit> hits;
  for (const RecipientGroup& g : groups) {
    const RecipientSettings& st = g.settings;
    hits = scan.hits;  // the message's, then the group's own lists' (a symbol counts once)
    hits.insert(hits.end(), g.hits.begin(), g.hits.end());
    Verdict gv = score_verdict(snap, hits, st.threshold_tenths);
    if (!st.tag || st.skip) {  // scored, never flagged
      gv.spam = false;
      if (gv.action == Action::kTag) gv.action = Action::kAccept;
    }
    const bool reject = !st.skip && st.reject_tenths && gv.score_tenths > *st.reject_tenths;
    seen.push_back({std::move(gv), &g, reject});
  }
  const bool all_reject = std::all_of(seen.begin(), seen.end(), [](const Seen& x) { return x.reject; });
  // Tagging with the Subject, tagging without, a group that would tag over
  // its threshold, then an opted-out or tag-off one (never the headers'
  // voice while another recipient's settings apply).
  auto rank = [&](const Seen& x) {
    const RecipientSettings& st = x.group->settings;
    return x.verdict.spam ? (st.subject_tag ? 3 : 2) : (st.tag && !st.skip ? 1 : 0);
  };
  const Seen* pick = &seen.front();
  for (const Seen& x : seen) {
    if (all_reject) {  // the most lenient reject level: even it is passed
      if (*x.group->settings.reject_tenths > *pick->group->settings.reject_tenths) pick = &x;
    } else if (rank(x) > rank(*pick) ||
               (rank(x) == rank(*pick) && x.group->settings.threshold_tenths < pick->group->settings.threshold_tenths)) {
      pick = &x;
    }
  }
  std::string source = pick->group->settings.source;
  std::replace(source.begin(), source.end(), ' ', ',');
  return {pick->verdict, &pick->group->settings, all_reject, " settings=" + (source.empty() ? "default" : source)};
}

}  // namespace

Disposition decide_skipped(const Snapshot& snap, const HeaderCensus& census, const Sender& sender, std::string why) {
  Disposition d;
  d.sender = sender;
  d.policy = SenderPolicy::kSkip;
  d.action = Action::kSkip;
  d.why = !why.empty() ? std::move(why) : std::string("sender policy skip for ") + sender_class_name(sender.cls) + " mail";
  d.direction = direction_of(sender);
  d.threshold_text = snap.config.threshold_text;
  d.outcome = Metrics::Outcome::kSkip;
  d.scored = false;
  PlanOptions removals_only;
  removals_only.annotate = false;
  d.plan = plan_actions(snap.config, Message{}, census, Verdict{}, removals_only);
  return d;
}

Disposition decide(const Snapshot& snap, const ScanResult& scan, const Sender& sender, const OutboundResult& ob,
                   const std::vector<RecipientGroup>& groups) {
  const Config& c = snap.config;
  Disposition d;
  d.sender = sender;
  d.policy = policy_for(c, sender.cls);
  d.direction = direction_of(sender);
  const bool inbound = sender.cls == SenderClass::kInbound;

  // The levels: spamgate.toml's, or the deciding recipients' own.
  const Verdict* vp = &scan.verdict;
  std::string threshold_text = c.threshold_text;
  bool reject_for_score = c.reject_threshold_tenths && scan.verdict.score_tenths > *c.reject_threshold_tenths;
  std::string reject_text = c.reject_threshold_text;
  bool subject = true;
  if (inbound && !groups.empty()) {
    Settled s = settle(snap, scan, groups);
    d.verdict = std::move(s.verdict);
    d.settings_note = std::move(s.note);
    vp = &*d.verdict;
    threshold_text = s.settings->threshold_text;
    reject_for_score = s.reject;
    reject_text = s.settings->reject_text;
    subject = s.settings->subject_tag;
  }
  const Verdict& v = *vp;
  d.threshold_text = threshold_text;

  PlanOptions opts;
  opts.annotate = d.policy == SenderPolicy::kTag;
  opts.tag_subject = inbound;  // outgoing mail is never subject-tagged nor lists its tests
  opts.subject = subject;
  opts.list_tests = inbound;
  opts.threshold_text = threshold_text;
  if (inbound) opts.reference = scan.reference;  // for the customer who reads it
  d.plan = plan_actions(c, scan.message, scan.census, v, opts, scan.prepend_headers);

  using State = OutboundResult::State;
  const bool held = ob.state == State::kHeld || ob.state == State::kNewHold;
  const bool to_hold_queue = held && snap.outbound && (snap.outbound->config().hold_quarantine || sender.local);
  const char* hold_word = ob.state == State::kNewHold ? "hold" : "held";
  switch (ob.state) {
    case State::kNone: break;
    case State::kOk: d.outbound_note = " outbound=ok"; break;
    case State::kSpam: d.outbound_note = " outbound=spam"; break;
    case State::kError:
      d.outbound_note = " outbound=error";
      if (failure_action(c.milter, "outbound") == FailureAction::kTempfail && !sender.local) {
        refuse(d, Action::kTempfail, "451", "4.7.1", reply_text::kTempfail,
               "the outbound store failed and its policy is tempfail");
        return d;
      }
      break;
    case State::kHeld:
    case State::kNewHold:
      d.outbound_note = std::string(" outbound=") + hold_word + (to_hold_queue ? ":quarantine" : ":tempfail");
      if (!to_hold_queue) {
        refuse(d, Action::kHold, "451", "4.7.1", reply_text::kHeld,
               "the sender " + ob.hold->who + " is held: " + ob.hold->reason);
        return d;
      }
      break;
  }
  // A message a recipient's own list decided is that customer's opinion,
  // not what the classifier should learn of everyone's mail.
  const bool own_lists = std::any_of(groups.begin(), groups.end(), [](const RecipientGroup& g) { return !g.hits.empty(); });
  if (inbound && !to_hold_queue && !own_lists) d.autolearn = autolearn_class(snap, scan);
  if (!to_hold_queue) {
    for (const CheckError& e : scan.check_errors) {
      if (failure_action(c.milter, e.check) != FailureAction::kTempfail) continue;
      refuse(d, Action::kTempfail, "451", "4.7.1", reply_text::kTempfail,
             "check " + e.check + " failed and its policy is tempfail");
      d.autolearn.reset();  // the client retries: the message comes back
      return d;
    }
    if (v.action == Action::kReject) {
      refuse(d, Action::kReject, "550", "5.7.1", v.reply, "a forced reject");
      d.autolearn.reset();
      return d;
    }
  }
  if (!ob.tag.empty() && snap.outbound)
    d.plan.edits.push_back({HeaderEdit::Op::kAdd, snap.outbound->config().tag_header, 0, ob.tag});
  if (to_hold_queue) {
    d.action = Action::kQuarantine;
    d.quarantine_reason = "spamgate: " + ob.hold->who + " held: " + ob.hold->reason;
    d.hold_account = ob.account;
    d.outcome = Metrics::Outcome::kQuarantine;
    d.why = "the sender " + ob.hold->who + " is held: " + ob.hold->reason;
    return d;
  }
  if (d.policy == SenderPolicy::kTag && inbound && reject_for_score) {
    const std::string score = format_tenths(v.score_tenths);
    std::optional<LearnClass> learn = d.autolearn;  // refused, and still spam to learn
    refuse(d, Action::kReject, "550", "5.7.1",
           std::string(reply_text::kSpamRejected) + score + ". If you feel this was in error, please visit " +
               c.support_url,
           "score " + score + " is greater than the reject threshold " + reject_text);
    d.autolearn = learn;
    return d;
  }
  const bool tagged = d.policy == SenderPolicy::kTag && inbound && v.spam;
  d.action = tagged ? Action::kTag : Action::kAccept;
  d.outcome = tagged ? Metrics::Outcome::kTag : Metrics::Outcome::kAccept;
  if (tagged) d.why = "score " + format_tenths(v.score_tenths) + " is greater than " + threshold_text;
  else if (v.spam && !inbound) d.why = "spam score, but outgoing mail is not tagged";
  else if (v.spam) d.why = "spam score, but the sender policy only logs";
  else if (!groups.empty() && inbound && v.score_tenths > v.threshold_tenths)
    d.why = "score " + format_tenths(v.score_tenths) + " is greater than " + threshold_text + ", but tag is off";
  else d.why = "score " + format_tenths(v.score_tenths) + " is not greater than " + threshold_text;
  return d;
}

}  // namespace spamgate
