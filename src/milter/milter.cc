// milter.cc - run_milter(): the milter daemon's start and stop (see
// milter.h). It builds the Daemon (daemon.h: snapshot holder, counters,
// reload, drain), listens with the protocol engine (protocol/engine.h) whose
// filters are Sessions (filter.h), starts the signal thread, the watches
// (watches.h) and the metrics server, serves until a stop signal has
// drained, then joins everything.
// DIAGNOSTICS: info at start and stop; critical when the socket cannot be set up.
#include "milter/milter.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "config/load.h"
#include "console/server.h"
#include "metrics/http_server.h"
#include "milter/daemon.h"
#include "spamgate/pipeline.h"
#include "milter/filter.h"
#include "milter/protocol/engine.h"
#include "milter/watches.h"
#include "util/log.h"

namespace spamgate {

namespace {

// Blocks the signals before any thread exists: the signal thread receives
// them with sigwait.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  return set;
}

void block_signals() {
  sigset_t set = handled_signals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// The threads beside libmilter's, for as long as it serves: the SIGUSR1
// reloader, the signature, memory and watchdog loops, the metrics server.
// The destructor stops and joins them all.
class Background {
 public:
  Background(Daemon& daemon, const Config& cfg, milter::Engine& engine)
      : watch_(signature_watch(daemon)), rules_watch_(rules_watch(daemon)), memory_(daemon), watchdog_(daemon) {
    // SIGUSR1 and SIGHUP reload; SIGTERM and SIGINT drain, then stop the engine.
    signals_ = std::thread([this, &daemon, &engine] {
      sigset_t set = handled_signals();
      while (true) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (stopping_.load()) return;
        if (sig == SIGTERM || sig == SIGINT) {
          daemon.drain_before_stop(sig);
          engine.stop();
          return;
        }
        try {
          daemon.reload(sig == SIGHUP ? "SIGHUP" : "SIGUSR1");
        } catch (const std::exception& e) {
          log().error("reload failed: {}", e.what());
        }
      }
    });
    watcher_ = std::thread([this] { watch_.run(); });
    rules_watcher_ = std::thread([this] { rules_watch_.run(); });
    memory_thread_ = std::thread([this] { memory_.run(); });
    watchdog_thread_ = std::thread([this] { watchdog_.run(); });
    if (!cfg.console.users_file.empty()) {
      console::ConsoleHooks hooks{[&daemon] { return daemon.holder().get(); },
                                  [&daemon](const char* why) { return daemon.reload(why); }};
      auto c = console::ConsoleServer::start(cfg.console, std::move(hooks));
      if (c.ok()) {
        console_ = std::move(c.value());
        log().info("console: {} (users from {})", console_->url(), cfg.console.users_file);
      } else {
        log().error("{}; running without the console", c.status().message());
      }
    }
    if (cfg.metrics.listen.empty()) return;
    auto m = MetricsServer::start(cfg.metrics.listen, [&daemon] { return daemon.render_metrics(); });
    if (m.ok()) {
      metrics_ = std::move(m.value());
      log().info("metrics: http://{}/metrics", cfg.metrics.listen);
    } else {
      log().error("{}; running without metrics", m.status().message());
    }
  }
  ~Background() {
    stopping_ = true;
    pthread_kill(signals_.native_handle(), SIGUSR1);  // returns at once if the thread has ended
    signals_.join();
    watch_.stop();
    watcher_.join();
    rules_watch_.stop();
    rules_watcher_.join();
    memory_.stop();
    memory_thread_.join();
    watchdog_.stop();
    watchdog_thread_.join();
    metrics_.reset();
    console_.reset();
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

 private:
  std::atomic<bool> stopping_{false};
  ChangeWatch watch_;
  ChangeWatch rules_watch_;
  MemoryWatch memory_;
  Watchdog watchdog_;
  std::thread signals_, watcher_, rules_watcher_, memory_thread_, watchdog_thread_;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<console::ConsoleServer> console_;
};

// The engine has answered every step that was running; a message still
// open was cut by the stop (its connection closed: Postfix applies
// milter_default_action).
void log_stopped(const Daemon& daemon) {
  if (daemon.messages.load() == 0) log().info("stopped cleanly");
  else log().warn("stopped with {} message(s) cut", daemon.messages.load());
}

}  // namespace

int run_milter(const std::string& config_path, bool quiet) {
  block_signals();
  std::vector<Diagnostic> diags;
  auto snap = load_snapshot(config_path, diags, {.network = true, .history = true});
  for (const Diagnostic& d : diags) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!snap.ok()) {
    std::fprintf(stderr, "spamgate: cannot load %s: %s\n", config_path.c_str(), snap.status().message().c_str());
    return 2;
  }
  if (std::vector<std::string> problems; !snap.value()->config.rules_canary_dirs.empty()) {
    if (Status st = run_rules_canary(*snap.value(), problems); !st.ok()) {
      for (const std::string& p : problems) std::fprintf(stderr, "rules canary: %s\n", p.c_str());
      std::fprintf(stderr, "spamgate: cannot start: the rules fail the rules canary: %s\n", st.message().c_str());
      return 2;
    }
  }
  const Config cfg = snap.value()->config;
  const std::size_t rule_count = snap.value()->rule_count;
  const std::string& socket = cfg.milter.socket;
  // Only the holder keeps the snapshot: a local reference would pin its
  // signature engine (up to 1 GB) after the first reload.
  Daemon daemon(config_path, snap.value());
  snap = Status::Internal("moved to the holder");
  if (Status ls = init_logging(quiet ? "warn" : cfg.log_level, cfg.log_target); !ls.ok()) {
    std::fprintf(stderr, "spamgate: %s\n", ls.message().c_str());
    return 2;
  }
  milter::EngineOptions opt;
  opt.idle_timeout = std::chrono::seconds(cfg.milter.timeout_seconds);
  opt.workers = cfg.milter.workers > 0 ? static_cast<unsigned>(cfg.milter.workers)
                                       : 8 * std::max(1u, std::thread::hardware_concurrency());
  // Past max_connections the filter answers 4xx; past twice that (a flood
  // faster than those answers) connections are closed at accept.
  opt.hard_connections = cfg.milter.max_connections > 0 ? 2 * static_cast<std::size_t>(cfg.milter.max_connections)
                                                        : std::size_t{1} << 20;
  auto engine = milter::Engine::listen(socket, opt, session_filters(daemon, opt.max_packet));
  if (!engine.ok()) {
    log().critical("{}", engine.status().message());
    return 1;
  }
  daemon.serving();
  {
    Background background(daemon, cfg, *engine.value());
    log().info("spamgate milter listening on {} ({} rules, threshold {}, {} workers)", socket, rule_count,
               cfg.threshold_text, opt.workers);
    log_engine("clamav", *daemon.holder().get());
    log_rule_warnings("rules", *daemon.holder().get());
    // systemd (Type=notify): Postfix, ordered after us, starts only now that
    // the socket answers. A no-op without NOTIFY_SOCKET.
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s (%zu rules)", socket.c_str(), rule_count);
    engine.value()->run();
    sd_notify(0, "STOPPING=1");
    log_stopped(daemon);
  }
  log().flush();
  return 0;
}

}  // namespace spamgate
