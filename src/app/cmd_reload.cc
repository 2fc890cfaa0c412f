// cmd_reload.cc - `spamgate reload`: asks the running milter of a config to
// load its config and rules again, and waits for its answer: 0 when the new
// rules are in use, 1 (with the reasons) when it refused them and the old
// rules keep running. systemd's ExecReload runs it, so `systemctl reload
// spamgate` fails when the reload was refused.
//
// The milter writes its pid and the result of each reload to its state file
// (milter_state_path(): milter.state beside the [bayes] path); this sends
// SIGUSR1 and waits until the count of reloads there moves.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "app/commands.h"
#include "app/common.h"
#include "config/config.h"
#include "config/load.h"
#include "milter/daemon.h"

namespace spamgate::app {

namespace {

struct State {
  long pid = 0;
  long reloads = -1;
  long long began_ms = 0;
  std::string result, message;
};

bool read_state(const std::string& path, State& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  out.pid = j.value("pid", 0L);
  out.reloads = j.value("reloads", -1L);
  out.result = j.value("result", "");
  out.message = j.value("message", "");
  out.began_ms = j.value("began_ms", 0LL);
  return out.pid > 0;
}

// True when `pid` runs `spamgate milter` (not a pid reused by another
// program, or by another spamgate command, which SIGUSR1 would end).
bool is_spamgate_milter(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0, argv1;
  if (!std::getline(in, argv0, '\0') || !std::getline(in, argv1, '\0')) return false;
  return argv0.find("spamgate") != std::string::npos && argv1 == "milter";
}

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int cmd_reload(int argc, char** argv) {
  const char* usage =
      "usage: spamgate reload [--config F] [--timeout SECONDS]\n"
      "Asks the running milter of this config to load its config, rules and signatures again\n"
      "(as SIGUSR1 does) and waits for its answer (default 300 s).\n"
      "Exit: 0 the new rules are in use; 1 refused: the old rules keep running (the reasons are\n"
      "printed); 2 usage or config error; 3 no milter runs for this config, or it did not answer.\n";
  CommandFlags own;
  own.values = {"--timeout"};
  auto opt = parse_options(argc, argv, 2, usage, own);
  if (!opt || !opt->args.empty()) {
    if (opt) std::cerr << usage;
    return 2;
  }
  long timeout = 300;
  if (auto it = opt->values.find("--timeout"); it != opt->values.end()) {
    timeout = std::strtol(it->second.c_str(), nullptr, 10);
    if (timeout < 1 || timeout > 86400) {
      std::cerr << "spamgate reload: --timeout takes 1 to 86400 seconds\n";
      return 2;
    }
  }
  const std::string path = opt->config.empty() ? default_config_path() : opt->config;
  std::vector<Diagnostic> diags;
  auto cfg = load_config(path, diags);
  if (!cfg.ok()) {
    for (const Diagnostic& d : diags) std::cerr << d.str() << "\n";
    std::cerr << "spamgate reload: " << cfg.status().message() << "\n";
    return 2;
  }
  const std::string state_path = milter_state_path(cfg.value());
  State before;
  if (!read_state(state_path, before) || !is_spamgate_milter(before.pid)) {
    std::cerr << "spamgate reload: no milter is running for " << path << " (no live pid in " << state_path << ")\n";
    return 3;
  }
  // The answer is the first reload that began reading the files after
  // this signal (one already running may have read them before an edit).
  const long long sent = now_ms() - 1;
  if (kill(static_cast<pid_t>(before.pid), SIGUSR1) != 0) {
    std::cerr << "spamgate reload: cannot signal pid " << before.pid << ": " << std::strerror(errno) << "\n";
    return 3;
  }
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  State now;
  while (std::chrono::steady_clock::now() < end) {
    if (read_state(state_path, now) &&
        (now.pid != before.pid || (now.reloads > before.reloads && now.began_ms >= sent)))
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    now = State{};
  }
  if (now.pid != before.pid) {
    std::cerr << "spamgate reload: the milter (pid " << before.pid << ") "
              << (now.pid > 0 ? "was restarted meanwhile" : "did not answer within " + std::to_string(timeout) + " s")
              << "\n";
    return 3;
  }
  if (now.result == "reloaded") {
    std::cout << "reloaded: " << now.message << " in use (pid " << now.pid << ")\n";
    return 0;
  }
  std::cout << "refused: the old rules keep running (pid " << now.pid << "):\n" << now.message << "\n";
  return 1;
}

}  // namespace spamgate::app
