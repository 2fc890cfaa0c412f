// cmd_milter.cc - `spamgate milter [--config F]`: run the milter daemon
// in the foreground (systemd runs it as a simple service; see conf/).
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "config/load.h"
#include "milter/milter.h"

namespace spamgate::app {

int cmd_milter(int argc, char** argv) {
  const char* usage =
      "usage: spamgate milter [--config F] [--quiet]\n"
      "Runs the milter daemon for Postfix in the foreground on [milter] socket; logs to [log] target.\n"
      "Every message is scored; inbound mail is tagged, malware rejected, outbound mail watched\n"
      "([outbound]). SIGUSR1 reloads config, rules, signatures and log level; SIGTERM drains.\n"
      "  --quiet  log warnings and errors only\n"
      "Exit: 0 stopped cleanly; 1 cannot listen; 2 config error.\n";
  auto opt = parse_options(argc, argv, 2, usage);
  if (!opt) return 2;
  if (!opt->args.empty()) {
    std::cerr << usage;
    return 2;
  }
  return run_milter(opt->config.empty() ? default_config_path() : opt->config, opt->quiet);
}

}  // namespace spamgate::app
