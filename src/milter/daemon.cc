// daemon.cc - the Daemon (see daemon.h): reload, drain, what holds memory,
// the metrics page.
//
// SIGTERM drain: new connections are answered 4xx, messages in flight
// finish, up to milter.drain_timeout; only then does the engine stop.
// DIAGNOSTICS: info at reload and stop; error for a refused reload (with
// every file:line) and for a drain timeout; warn (once a minute) when
// connections get 4xx over max_connections.
#include "milter/daemon.h"

#include "spamgate/pipeline.h"
#include "spamgate/recipients.h"

#include <cstring>
#include <chrono>
#include <cstring>
#include <thread>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "checks/bayes.h"
#include "checks/clamav.h"
#include "checks/clamav_engine.h"
#include "config/load.h"
#include "milter/session.h"
#include "spamgate/metrics.h"
#include "util/log.h"

namespace spamgate {

Daemon::Daemon(std::string config_path, std::shared_ptr<const Snapshot> first)
    : holder_(std::move(first)), config_path_(std::move(config_path)) {
  state_path_ = milter_state_path(holder_.get()->config);
}

void Daemon::serving() noexcept { write_state("started", "", 0); }

Status Daemon::reload(const char* why) {
  std::lock_guard<std::mutex> lock(reload_mu_);
  const long long began = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
  sd_notify(0, "RELOADING=1");  // systemd (no-op without NOTIFY_SOCKET)
  Status st = reload_now(why);
  // `systemctl status spamgate` says how the last reload went.
  sd_notifyf(0, "READY=1\nSTATUS=%s", st.ok() ? ("reloaded: " + std::to_string(holder_.get()->rule_count) + " rules").c_str()
                                            : ("reload refused, the old rules keep running: " +
                                               st.message().substr(0, st.message().find('\n'))).c_str());
  // Under the lock: the state names this reload, with the rules it loaded.
  write_state(st.ok() ? "reloaded" : "refused",
              st.ok() ? std::to_string(holder_.get()->rule_count) + " rules" : st.message(), began);
  return st;
}

std::string milter_state_path(const Config& c) {
  return (std::filesystem::path(c.bayes.path).parent_path() / "milter.state").string();
}

void Daemon::write_state(const char* result, const std::string& message, long long began_ms) noexcept {
  try {
    std::lock_guard<std::mutex> lock(state_mu_);
    const long n = result == std::string_view("started") ? 0 : ++reload_seq_;
    nlohmann::json j = {{"pid", static_cast<long>(getpid())}, {"reloads", n}, {"result", result},
                        {"message", message}, {"began_ms", began_ms},
                        {"time", static_cast<long long>(std::time(nullptr))}};
    const std::string tmp = state_path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      if (!out) throw std::runtime_error("cannot write " + tmp);
    }
    std::filesystem::rename(tmp, state_path_);
  } catch (const std::exception& e) {
    log().warn("cannot write the milter state file {} (spamgate reload reads it): {}", state_path_, e.what());
  }
}

// At most two signature engines in memory: the one serving and the one being
// built. An engine retired by the previous reload is freed when the last
// message scanned with it ends; wait for that before building another.
namespace {

// False when `limit` passed with them still in memory: a scan that never
// ends must not block every reload after it (the reload is refused, and
// says why).
bool wait_for_retired_engines(std::chrono::milliseconds limit) {
  auto start = std::chrono::steady_clock::now();
  bool warned = false;
  while (ClamEngine::live() > 1) {
    auto waited = std::chrono::steady_clock::now() - start;
    if (waited >= limit) return false;
    if (!warned && waited > std::chrono::seconds(5)) {
      log().warn("reload waits for messages still scanned with the previous signatures ({} engines in memory)",
                 ClamEngine::live());
      warned = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

}  // namespace

// The rules' warnings (as `spamgate lint` prints them), the first few only:
// a generated file may have thousands.
void log_rule_warnings(const char* when, const Snapshot& s) {
  constexpr std::size_t kShown = 20;
  for (std::size_t i = 0; i < s.warnings.size() && i < kShown; ++i)
    log().warn("{}: {}:{}: warning: {}", when, s.warnings[i].file, s.warnings[i].line, s.warnings[i].message);
  if (s.warnings.size() > kShown)
    log().warn("{}: {} more rule warnings; `spamgate lint` lists them all", when, s.warnings.size() - kShown);
}

void log_engine(const char* what, const Snapshot& s) {
  if (!s.clamav) return;
  log().info("{}: {} signatures from {} database file(s), loaded in {:.0f} ms, canary passed", what,
             s.clamav->signature_count(), s.clamav->files().size(), s.clamav->load_ms());
}

Status Daemon::reload_now(const char* why) {
  if (!wait_for_retired_engines(retired_wait_)) {
    Metrics::get().reload(true);
    const std::string why_not = "the previous signatures are still in use after " +
                                std::to_string(retired_wait_.count() / 1000) + " s (" +
                                std::to_string(ClamEngine::live()) +
                                " engines in memory): a message scanned with them has not ended; try again later";
    log().error("reload ({}) refused, the old rules keep running: {}", why, why_not);
    return Status::Unavailable(why_not);
  }
  auto current = holder_.get();
  std::vector<Diagnostic> diags;
  auto snap = load_snapshot(config_path_, diags, {.network = true, .previous = current.get(), .history = true});
  if (!snap.ok()) {
    Metrics::get().reload(true);
    log().error("reload ({}) refused, the old rules keep running: {}", why, snap.status().message());
    std::string all = snap.status().message();
    for (const Diagnostic& d : diags) {
      log().error("reload: {}", d.str());
      all += "\n" + d.str();
    }
    return Status::InvalidArgument(all);
  }
  if (std::vector<std::string> problems; !snap.value()->config.rules_canary_dirs.empty()) {
    if (Status st = run_rules_canary(*snap.value(), problems); !st.ok()) {
      Metrics::get().reload(true);
      log().error("reload ({}) refused, the old rules keep running: the new rules fail the rules canary: {}", why,
                  st.message());
      std::string all = "the new rules fail the rules canary: " + st.message();
      for (const std::string& p : problems) {
        log().error("reload: rules canary: {}", p);
        all += "\n" + p;
      }
      return Status::InvalidArgument(all);
    }
  }
  Metrics::get().reload(false);
  holder_.set(snap.value());
  // The log level is the one setting of [log] a reload changes (the target
  // stays: the service's journal or file is opened once).
  if (const std::string& level = snap.value()->config.log_level; level != current->config.log_level) {
    log().info("reload: log level {} -> {}", current->config.log_level, level);
    log().set_level(spdlog::level::from_str(level));
  }
  const std::size_t settings = snap.value()->recipients ? snap.value()->recipients->size() : 0;
  log().info("reload ({}): {} rules from {} file(s) now in use{}", why, snap.value()->rule_count,
             snap.value()->rule_files.size(),
             settings > 0 ? fmt::format(", settings for {} recipient(s) and domain(s)", settings) : std::string());
  log_rule_warnings("reload", *snap.value());
  if (snap.value()->clamav != current->clamav) log_engine("reload: new signatures in use", *snap.value());
  current.reset();
  return Status::Ok();
}

// What the memory watch and the metrics know about who holds memory.
std::string Daemon::memory_consumers(const Snapshot& snap) const {
  std::string out = fmt::format("messages in flight: {} holding {:.1f} MB", messages.load(),
                                static_cast<double>(Session::buffered_bytes()) / 1048576.0);
  if (snap.clamav)
    out += fmt::format("; clamav engine: {} signatures, {} long-message scans running (cap {})",
                       snap.clamav->signature_count(), large_scans_running(), snap.config.clamav.max_parallel_large_scans);
  for (const auto& c : snap.checks)
    if (const auto* b = dynamic_cast<const BayesCheck*>(c.get())) {
      Status err;
      if (auto st = b->store(err)) out += "; bayes: " + st->describe();
    }
  out += fmt::format("; caps: DNS cache {} entries, bayes copy {} tokens, {} MB kept per message",
                     snap.config.dns.cache_entries, snap.config.bayes.cache_max_tokens,
                     snap.config.limits.max_scan_bytes >> 20);
  return out;
}

std::string Daemon::render_metrics() const {
  Metrics::Gauges g;
  g.resident_bytes = static_cast<double>(resident_bytes());
  g.messages_in_flight = static_cast<double>(messages.load());
  auto snap = holder_.get();
  if (snap->outbound) {
    std::vector<HoldInfo> holds;
    if (snap->outbound->holds(holds).ok()) g.held_accounts = static_cast<double>(holds.size());
  }
  return Metrics::get().render(g);
}

long Daemon::max_connections() const { return holder_.get()->config.milter.max_connections; }

void Daemon::note_refused_over_cap(long cap) {
  using namespace std::chrono;
  const auto now = steady_clock::now().time_since_epoch().count();
  auto last = last_cap_log_.load();
  if (last != 0 && now - last < duration_cast<steady_clock::duration>(minutes(1)).count()) return;
  if (!last_cap_log_.compare_exchange_strong(last, now)) return;
  log().warn("{} connections open, [milter] max_connections is {}: new connections get 4xx", sessions.load(), cap);
}

// Called in the signal thread before the engine stops.
void Daemon::drain_before_stop(int sig) noexcept {
  try {
    draining = true;
    int secs = holder_.get()->config.milter.drain_seconds;
    log().info("stopping ({}): new connections get 4xx; waiting up to {} s for {} message(s) in flight",
               strsignal(sig), secs, messages.load());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(secs);
    while ((messages.load() > 0 || in_callback.load() > 0) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (messages.load() > 0) {
      log().error("drain timeout: {} message(s) still in flight are cut; Postfix applies milter_default_action",
                  messages.load());
    } else {
      log().info("drained: no message in flight");
    }
  } catch (...) {
  }
}

}  // namespace spamgate
