// cmd_release.cc - `spamgate release`: lift an outbound hold.
//
//   spamgate release [--config F] [--postfix-config DIR] ACCOUNT|domain:DOMAIN...
//   spamgate release [--config F] --list
// Releasing clears the hold and the account's (or domain's) rate and spam
// counts, and prints the postsuper command that releases its messages from
// Postfix's hold queue ([outbound] hold_action = "quarantine"). The state is
// the milter's ([outbound] store), so this works on any node sharing it.
// Exit: 0 released (or listed); 1 a name was not held; 2 usage/config error;
// 3 store error.
#include <cstdio>
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "config/load.h"
#include "config/config.h"
#include "spamgate/outbound.h"
#include "util/log.h"

namespace spamgate::app {

namespace {

const char* kUsage =
    "usage: spamgate release [--config F] [--postfix-config DIR] ACCOUNT|domain:DOMAIN...\n"
    "       spamgate release [--config F] --list\n"
    "  ACCOUNT           a held login (e.g. alice@example.com) or envelope sender\n"
    "  domain:DOMAIN     a held sending domain\n"
    "  --list            print every hold in force: who, since, until and why\n"
    "  --postfix-config  the Postfix instance's config directory, for the printed postsuper command\n"
    "Releasing clears the hold and the counts that led to it, and prints the postsuper -H command\n"
    "for the messages the milter put in Postfix's hold queue.\n";

}  // namespace

int cmd_release(int argc, char** argv) {
  CommandFlags own{{"--list"}, {"--postfix-config"}, {}, {}};
  auto opt = parse_options(argc, argv, 2, kUsage, own);
  if (!opt) return 2;
  const bool list = opt->has("--list");
  if (list == !opt->args.empty()) {
    std::cerr << "spamgate: release needs ACCOUNT... or --list\n" << kUsage;
    return 2;
  }
  std::optional<Config> loaded = config_or_report(*opt, "info");
  if (!loaded) return 2;
  std::vector<Diagnostic> diags;
  std::shared_ptr<OutboundGuard> guard = make_outbound_guard(*loaded, diags);
  for (const Diagnostic& d : diags) std::cerr << d.str() << "\n";
  if (!guard) {
    std::cerr << "spamgate: cannot load " << loaded->outbound.overrides_file << "\n";
    return 2;
  }
  if (list) {
    std::vector<HoldInfo> holds;
    if (Status s = guard->holds(holds); !s.ok()) {
      std::cerr << "spamgate: " << s.message() << "\n";
      return 3;
    }
    for (const HoldInfo& h : holds)
      std::printf("%s  held since %s until %s: %s\n", h.who.c_str(), format_unix_time(h.since).c_str(),
                  format_unix_time(h.until).c_str(), h.reason.c_str());
    std::printf("%zu hold(s)\n", holds.size());
    return 0;
  }
  int rc = 0;
  auto pc = opt->values.find("--postfix-config");
  for (const std::string& who : opt->args) {
    bool was_held = false;
    std::vector<std::string> ids;
    if (Status s = guard->release(who, was_held, ids); !s.ok()) {
      std::cerr << "spamgate: " << s.message() << "\n";
      return 3;
    }
    if (was_held) {
      std::printf("released %s; its counts are cleared\n", who.c_str());
      log().warn("outbound: {} released by an admin (spamgate release)", who);
    } else {
      std::printf("%s was not held; its counts are cleared\n", who.c_str());
      rc = 1;
    }
    if (ids.empty()) continue;
    std::string cmd = "postsuper";
    if (pc != opt->values.end()) cmd += " -c " + pc->second;
    for (const std::string& id : ids) cmd += " -H " + id;
    std::printf("%zu message(s) of %s in Postfix's hold queue; release them with:\n%s\n", ids.size(), who.c_str(),
                cmd.c_str());
  }
  return rc;
}

}  // namespace spamgate::app
