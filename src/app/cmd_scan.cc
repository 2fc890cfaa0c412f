// cmd_scan.cc - `spamgate scan`: one line (or JSON object) per message, or the
// rewritten message with --rewrite.
//
// Exit: 0 every input scanned; 1 some input could not be read (the others are
// still scanned); 2 usage or config error.
#include <algorithm>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "util/text.h"
#include "app/common.h"
#include "spamgate/pipeline.h"

namespace spamgate::app {

namespace {

const char* kUsage =
    "usage: spamgate scan [--config F] [--json] [--rewrite] [--network] [--verbose] [SENDER OPTIONS] FILE|DIR|- ...\n"
    "Scores message files (directories recursively, mbox files split, - for stdin) and decides\n"
    "exactly as the milter would for the sender the options describe (sender class and policy,\n"
    "failure policies, the outbound guard: looked up, never counted), and prints one line per\n"
    "message: file, spam or ham, score, action, SMTP reply, rules hit.\n"
    "  --json     one JSON object per message (with the header edits and after-effects)\n"
    "  --rewrite  print the message as it would be delivered (several files: FILE.out each);\n"
    "             a message the milter would refuse is printed unchanged, its reply on stderr\n"
    "  --network  run the DNS checks (SPF, DKIM, DMARC, blocklists) too; off by default\n"
    "  --verbose  also the log line of each message (as the milter logs it); --quiet: no log lines\n"
    "{}"
    "Exit: 0 all scanned; 1 some input missing, unreadable, empty or binary; 2 usage/config error.\n";

std::string tests_of(const Verdict& v) {
  std::string t;
  for (const ScoredHit& h : v.hits) t += (t.empty() ? "" : ",") + h.name;
  return t.empty() ? "none" : t;
}

const char* op_name(HeaderEdit::Op op) {
  switch (op) {
    case HeaderEdit::Op::kAdd: return "add";
    case HeaderEdit::Op::kChange: return "change";
    case HeaderEdit::Op::kDelete: return "delete";
    case HeaderEdit::Op::kInsert: return "insert";
  }
  return "add";
}

nlohmann::json to_json(const std::string& path, const Handled& h, const Snapshot& snap) {
  const Disposition& d = h.disposition;
  nlohmann::json j;
  j["file"] = path;
  if (h.scan) {
    const Verdict& v = h.scan->verdict;
    j["score"] = static_cast<double>(v.score_tenths) / 10.0;
    j["spam"] = v.spam;
  }
  j["threshold"] = static_cast<double>(h.scan ? h.scan->verdict.threshold_tenths : snap.config.threshold_tenths) / 10.0;
  if (!d.settings_note.empty()) j["settings"] = d.settings_note.substr(d.settings_note.find('=') + 1);
  j["action"] = action_name(d.action);
  const MilterAnswer answer = milter_answer(d.action);
  j["milter"] = answer == MilterAnswer::kReject ? "reject" : answer == MilterAnswer::kTempfail ? "tempfail" : "accept";
  if (!d.reply.empty()) j["reply"] = d.reply.str();
  if (!d.quarantine_reason.empty()) j["quarantine"] = d.quarantine_reason;
  j["sender_class"] = sender_class_name(d.sender.cls);
  j["why"] = d.why;
  if (!d.outbound_note.empty()) j["outbound"] = d.outbound_note.substr(d.outbound_note.find('=') + 1);
  if (d.autolearn) j["autolearn"] = *d.autolearn == LearnClass::kSpam ? "spam" : "ham";
  j["outcome"] = outcome_name(d.outcome);
  j["rules"] = nlohmann::json::array();
  if (h.scan) {
    for (const ScoredHit& hit : h.scan->verdict.hits) {
      nlohmann::json r = {{"name", hit.name}, {"score", static_cast<double>(hit.score_millis) / 1000.0}};
      if (const SymbolInfo* info = snap.symbols.find(hit.name); info != nullptr && !info->description.empty())
        r["description"] = info->description;
      if (!hit.detail.empty()) r["matched"] = hit.detail;
      j["rules"].push_back(std::move(r));
    }
    if (const Header* mid = h.scan->message.first("message-id"); mid != nullptr) j["message_id"] = clip(mid->decoded, 300);
  }
  j["edits"] = nlohmann::json::array();
  for (const HeaderEdit& e : d.plan.edits) {
    nlohmann::json x = {{"op", op_name(e.op)}, {"name", e.name}};
    if (e.op == HeaderEdit::Op::kChange || e.op == HeaderEdit::Op::kDelete) x["index"] = e.index;
    if (e.op != HeaderEdit::Op::kDelete) x["value"] = e.value;
    j["edits"].push_back(std::move(x));
  }
  if (h.scan) {
    j["ms"] = std::round(h.scan->ms * 1000.0) / 1000.0;
    for (const CheckError& e : h.scan->check_errors) j["errors"].push_back(e.check + ": " + e.message);
  }
  return j;
}

std::string line_of(const std::string& path, const Handled& h) {
  const Disposition& d = h.disposition;
  std::string out = path + ": ";
  if (h.scan) {
    const Verdict& v = h.scan->verdict;
    out += std::string(v.spam ? "spam" : "ham") + " score=" + format_tenths(v.score_tenths);
  } else {
    out += "skipped";
  }
  out += " threshold=" + d.threshold_text + " action=" + action_name(d.action);
  if (!d.reply.empty()) out += " reply=\"" + d.reply.str() + "\"";
  if (!d.quarantine_reason.empty()) out += " quarantine=\"" + d.quarantine_reason + "\"";
  if (d.sender.cls != SenderClass::kInbound) out += std::string(" class=") + sender_class_name(d.sender.cls);
  out += d.outbound_note;
  if (h.scan) out += " tests=" + tests_of(h.scan->verdict);
  return out;
}

}  // namespace

int cmd_scan(int argc, char** argv) {
  static const std::string usage = fmt::format(fmt::runtime(kUsage), kSenderUsage);
  // One line per message on stdout; its log line (the milter's verdict
  // line) only with --verbose, so a terminal does not show each message twice.
  const bool verbose = std::any_of(argv + 2, argv + argc, [](const char* a) { return std::string_view(a) == "--verbose"; });
  CommandFlags flags = sender_flags();
  flags.switches.push_back("--verbose");
  auto started = start_command(argc, argv, usage.c_str(), !verbose, flags);
  if (!started) return 2;
  const Options* opt = &started->opt;
  const auto& snap = started->snap;
  const Replay who = replay_of(*opt, *snap);
  std::vector<std::string> inputs = expand_inputs(opt->args);
  const bool to_files = opt->rewrite && inputs.size() > 1;
  int rc = 0;
  for (const std::string& path : inputs) {
    Input in = read_input(path);
    if (!in.error.empty()) {
      // With --json a file that could not be scanned is a JSON line too.
      if (opt->json)
        std::cout << nlohmann::json{{"file", path}, {"error", in.error}}.dump(-1, ' ', false,
                                                                             nlohmann::json::error_handler_t::replace)
                  << "\n";
      std::cerr << "spamgate: " << path << ": " << in.error << "\n";
      rc = 1;
      continue;
    }
    const std::string label = who.env.queue_id.empty() ? path : who.env.queue_id;
    Handled h = handle_message(*snap, in.bytes, who.env, who.sender, OutboundMode::kLookUp, label);
    log_verdict(h, label, std::string("class=") + sender_class_name(who.sender.cls));
    const Disposition& d = h.disposition;
    if (opt->rewrite) {
      const bool delivered = milter_answer(d.action) == MilterAnswer::kAccept;
      if (!delivered) std::cerr << "spamgate: " << path << ": not delivered: " << d.reply.str() << "\n";
      std::string out = delivered ? apply_plan(in.bytes, d.plan) : in.bytes;
      if (to_files) {
        std::ofstream f(path + ".out", std::ios::binary);
        f << out;
        if (!f) {
          std::cerr << "spamgate: " << path << ".out: cannot write\n";
          rc = 1;
        }
      } else {
        std::cout << out;
      }
      continue;
    }
    if (opt->json) {
      std::cout << to_json(path, h, *snap).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << line_of(path, h) << "\n";
    }
  }
  return rc;
}

}  // namespace spamgate::app
