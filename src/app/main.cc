// main.cc - the spamgate binary: dispatches to a subcommand.
#include <cstring>
#include <iostream>

#include "app/commands.h"

namespace {

const char* kUsage =
    "usage: spamgate <command> [options]\n"
    "commands:\n"
    "  scan     score messages: one line each, --json, or --rewrite to print the delivered message\n"
    "  explain  show every rule that hit a message, with scores, descriptions and matched text\n"
    "  lint     check the config and rule files; prints file:line: message per error\n"
    "  milter   run the milter daemon for Postfix (socket from [milter] in the config)\n"
    "  learn    teach the Bayes classifier ham or spam (--ham|--spam [--forget] PATH...), --stats,\n"
    "           or read feedback-loop abuse reports (--arf FILE...)\n"
    "  eval     measure false positives and detection on labelled mail (rules only and rules + Bayes)\n"
    "  release  lift an outbound hold on an account or domain (--list: every hold in force)\n"
    "  history  find verdicts by reference, queue id, Message-ID or address (the milter's history)\n"
    "  reload   make the running milter load config and rules again; waits for its answer\n"
    "  passwd   print a users-file line (NAME:yescrypt hash) for the support console\n"
    "  bench    measure messages/s, MB/s, latency and memory on a directory of messages\n"
    "every command takes --config F (default /etc/spamgate/spamgate.toml, else conf/spamgate.toml)\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  std::string cmd = argv[1];
  try {
    if (cmd == "scan") return spamgate::app::cmd_scan(argc, argv);
    if (cmd == "explain") return spamgate::app::cmd_explain(argc, argv);
    if (cmd == "lint") return spamgate::app::cmd_lint(argc, argv);
    if (cmd == "bench") return spamgate::app::cmd_bench(argc, argv);
    if (cmd == "learn") return spamgate::app::cmd_learn(argc, argv);
    if (cmd == "eval") return spamgate::app::cmd_eval(argc, argv);
    if (cmd == "release") return spamgate::app::cmd_release(argc, argv);
    if (cmd == "history") return spamgate::app::cmd_history(argc, argv);
    if (cmd == "reload") return spamgate::app::cmd_reload(argc, argv);
    if (cmd == "passwd") return spamgate::app::cmd_passwd(argc, argv);
    if (cmd == "milter") return spamgate::app::cmd_milter(argc, argv);
    if (cmd == "--version" || cmd == "-V") {
      std::cout << "spamgate " << SPAMGATE_VERSION << "\n";
      return 0;
    }
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
      std::cout << kUsage;
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "spamgate: fatal: " << e.what() << "\n";
    return 3;
  }
  std::cerr << "spamgate: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}
