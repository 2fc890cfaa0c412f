// cmd_explain.cc - `spamgate explain`: why a message got its score, for
// support staff answering a customer: each rule that counted, its score, its
// description and the text it matched; then the total and the threshold.
#include <cstdio>
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "console/local_rules.h"
#include "spamgate/history.h"
#include "spamgate/pipeline.h"

namespace spamgate::app {

int cmd_explain(int argc, char** argv) {
  static const std::string usage = std::string(
      "usage: spamgate explain [--config F] [--network] [SENDER OPTIONS] FILE|- ...\n"
      "Shows why a message scored what it did: every rule and symbol that hit, its score, its\n"
      "description and the text it matched, the Bayes probability and strongest tokens; then\n"
      "what the milter would do with it for that sender (action, SMTP reply, why).\n"
      "Support staff use it to find the rule behind a false positive (then score it in local.cf).\n") +
      kSenderUsage;
  auto started = start_command(argc, argv, usage.c_str(), true, sender_flags());
  if (!started) return 2;
  const Options* opt = &started->opt;
  const auto& snap = started->snap;
  const Replay who = replay_of(*opt, *snap);
  int rc = 0;
  for (const std::string& path : expand_inputs(opt->args)) {
    Input in = read_input(path);
    if (!in.error.empty()) {
      std::cerr << "spamgate: " << path << ": " << in.error << "\n";
      rc = 1;
      continue;
    }
    Handled handled = handle_message(*snap, in.bytes, who.env, who.sender, OutboundMode::kLookUp, path);
    const Disposition& d = handled.disposition;
    if (!handled.scan) {
      std::cout << "File:       " << path << "\n\n  Not scanned: " << d.why << " (action: " << action_name(d.action)
                << ")\n\n";
      continue;
    }
    const ScanResult& r = *handled.scan;
    const Message& m = r.message;
    const Header* subj = m.first("subject");
    const Header* mid = m.first("message-id");
    std::cout << "File:       " << path << "\n";
    std::cout << "Message-ID: " << (mid ? mid->decoded.substr(0, 200) : "(none)") << "\n";
    std::cout << "Subject:    " << (subj ? subj->decoded.substr(0, 200) : "(none)") << "\n\n";
    if (r.verdict.hits.empty()) std::cout << "  No rule hit.\n";
    else std::printf("  %6s  %-28s %s\n", "score", "rule", "description / matched text");
    std::cout << std::flush;
    for (const ScoredHit& h : r.verdict.hits) {
      const SymbolInfo* info = snap->symbols.find(h.name);
      std::string desc = info && !info->description.empty() ? info->description : "(no description)";
      std::printf("  %6.1f  %-28s %s\n", static_cast<double>(h.score_millis) / 1000.0, h.name.c_str(),
                  desc.c_str());
      if (!h.detail.empty()) std::printf("  %6s  %-28s matched: \"%s\"\n", "", "", h.detail.c_str());
      // Where it comes from: a fitted score overriding a hand-written one shows here.
      if (info != nullptr) {
        std::string where = info->file.empty() ? "built-in check" : "rule at " + info->file + ":" + std::to_string(info->line);
        where += info->score_file.empty() ? (info->file.empty() ? ", its default score" : ", default score")
                                          : ", score set at " + info->score_file + ":" + std::to_string(info->score_line);
        std::printf("  %6s  %-28s %s\n", "", "", where.c_str());
      }
    }
    // Results of the checks that count 0 (authentication, lists): why they
    // came out as they did, then the Authentication-Results we would add.
    bool first = true;
    for (const Hit& h : r.hits) {
      if (h.name.rfind("__", 0) == 0 || snap->symbols.score_millis(h.name) != 0) continue;
      if (first) std::printf("\n  Checks that did not change the score:\n");
      first = false;
      std::printf("  %6s  %-28s %s\n", "0.0", h.name.c_str(), h.detail.c_str());
    }
    for (const auto& [name, value] : r.prepend_headers) {
      if (name != "Authentication-Results") continue;
      std::string v = value;
      for (std::size_t p = v.find("\n\t"); p != std::string::npos; p = v.find("\n\t", p)) v.replace(p, 2, "\n      ");
      std::printf("\n  Authentication-Results: %s\n", v.c_str());
    }
    for (const CheckError& e : r.check_errors)
      std::printf("  warning: check %s failed: %s\n", e.check.c_str(), e.message.c_str());
    std::printf("\n  Total %s, threshold %s: %s\n", format_tenths(r.verdict.score_tenths).c_str(),
                d.threshold_text.c_str(),
                r.verdict.spam ? "SPAM (score is greater than the threshold)" : "not spam");
    std::printf("  Action: %s (%s mail): %s\n", action_name(d.action), sender_class_name(d.sender.cls), d.why.c_str());
    if (!d.reply.empty()) std::printf("  SMTP reply: %s\n", d.reply.str().c_str());
    if (!d.quarantine_reason.empty()) std::printf("  Hold queue: %s\n", d.quarantine_reason.c_str());
    if (!d.settings_note.empty())
      std::printf("  Recipient settings: %s (recipient_settings %s)\n", d.settings_note.substr(10).c_str(),
                  snap->config.recipient_settings.c_str());
    if (!d.outbound_note.empty()) std::printf("  Outbound guard: %s\n", d.outbound_note.substr(10).c_str());
    if (d.autolearn)
      std::printf("  Autolearn: as %s (the milter learns it; explain does not)\n",
                  *d.autolearn == LearnClass::kSpam ? "spam" : "ham");
    // Ready-made lines for the local file, should this be a false positive.
    if (r.verdict.spam) {
      HistoryRecord rec = history_record(handled, who.env, who.sender, "", in.bytes.size(), 0);
      auto proposals = console::false_positive_proposals(rec, snap->symbols, "explain",
                                                         !snap->config.recipient_settings.empty());
      if (!proposals.empty()) {
        std::printf("\n  If this is a false positive, one of these (then spamgate reload):\n");
        for (const console::Proposal& p : proposals) {
          std::printf("    - %s, in %s:\n", p.title.c_str(),
                      (p.settings ? snap->config.recipient_settings : snap->config.local_rules).c_str());
          std::string lines = p.lines;
          for (std::size_t at = 0, nl; at < lines.size(); at = nl + 1) {
            nl = lines.find('\n', at);
            if (nl == std::string::npos) nl = lines.size();
            std::printf("        %s\n", lines.substr(at, nl - at).c_str());
          }
        }
      }
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return rc;
}

}  // namespace spamgate::app
