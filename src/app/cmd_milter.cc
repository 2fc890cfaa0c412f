// cmd_milter.cc - `spamgate milter [--config F]`: run the libmilter daemon
// in the foreground (systemd runs it as a simple service; see conf/).
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "milter/milter.h"

namespace spamgate::app {

int cmd_milter(int argc, char** argv) {
  const char* usage = "usage: spamgate milter [--config F] [--quiet]\n";
  auto opt = parse_options(argc, argv, 2, usage);
  if (!opt) return 2;
  if (!opt->args.empty()) {
    std::cerr << usage;
    return 2;
  }
  return run_milter(opt->config.empty() ? default_config_path() : opt->config, opt->quiet);
}

}  // namespace spamgate::app
