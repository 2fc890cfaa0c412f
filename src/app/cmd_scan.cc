// cmd_scan.cc - `spamgate scan`: one line (or JSON object) per message, or the
// rewritten message with --rewrite.
//
// Exit: 0 every input scanned; 1 some input could not be read (the others are
// still scanned); 2 usage or config error.
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "app/common.h"
#include "spamgate/pipeline.h"

namespace spamgate::app {

namespace {

const char* kUsage =
    "usage: spamgate scan [--config F] [--json] [--rewrite] [--network] [--quiet] FILE|DIR|- ...\n"
    "Scores message files (directories recursively, mbox files split, - for stdin) exactly as the\n"
    "milter would, and prints one line per message: file, spam or ham, score, rules hit.\n"
    "  --json     one JSON object per message\n"
    "  --rewrite  print the message as it would be delivered (several files: FILE.out each)\n"
    "  --network  run the DNS checks (SPF, DKIM, DMARC, blocklists) too; off by default\n"
    "  --quiet    no per-message log lines\n"
    "Exit: 0 all scanned; 1 some input missing, unreadable, empty or binary; 2 usage/config error.\n";

std::string tests_of(const Verdict& v) {
  std::string t;
  for (const ScoredHit& h : v.hits) t += (t.empty() ? "" : ",") + h.name;
  return t.empty() ? "none" : t;
}

}  // namespace

int cmd_scan(int argc, char** argv) {
  auto started = start_command(argc, argv, kUsage, false);
  if (!started) return 2;
  const Options* opt = &started->opt;
  const auto& snap = started->snap;
  std::vector<std::string> inputs = expand_inputs(opt->args);
  const bool to_files = opt->rewrite && inputs.size() > 1;
  int rc = 0;
  for (const std::string& path : inputs) {
    Input in = read_input(path);
    if (!in.error.empty()) {
      std::cerr << "spamgate: " << path << ": " << in.error << "\n";
      rc = 1;
      continue;
    }
    Envelope env;
    ScanResult r = scan_message(*snap, in.bytes, env);
    log_verdict(r, path);
    if (opt->rewrite) {
      std::string out = apply_plan(in.bytes, r.plan);
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
    const Verdict& v = r.verdict;
    if (opt->json) {
      nlohmann::json j;
      j["file"] = path;
      j["score"] = static_cast<double>(v.score_tenths) / 10.0;
      j["threshold"] = static_cast<double>(v.threshold_tenths) / 10.0;
      j["spam"] = v.spam;
      j["action"] = action_name(v.action);
      if (!v.reply.empty()) j["reply"] = "550 5.7.1 " + v.reply;
      j["rules"] = nlohmann::json::array();
      for (const ScoredHit& h : v.hits)
        j["rules"].push_back({{"name", h.name}, {"score", static_cast<double>(h.score_millis) / 1000.0}});
      j["ms"] = std::round(r.ms * 1000.0) / 1000.0;
      for (const CheckError& e : r.check_errors) j["errors"].push_back(e.check + ": " + e.message);
      std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      std::cout << path << ": " << (v.spam ? "spam" : "ham") << " score=" << format_tenths(v.score_tenths)
                << " threshold=" << snap->config.threshold_text << " action=" << action_name(v.action)
                << (v.reply.empty() ? "" : " reply=\"550 5.7.1 " + v.reply + "\"") << " tests=" << tests_of(v) << "\n";
    }
  }
  return rc;
}

}  // namespace spamgate::app
