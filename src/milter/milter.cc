// milter.cc - run_milter(): the libmilter daemon's start and stop (see
// milter.h). It builds the Daemon (daemon.h: snapshot holder, counters,
// reload, drain), registers the callbacks (callbacks.cc), starts the reload
// thread and the watches (watches.h) and the metrics server, serves until
// libmilter stops, then joins everything.
// DIAGNOSTICS: info at start and stop; critical when the socket cannot be set up.
#include "milter/milter.h"

#include <libmilter/mfapi.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "config/load.h"
#include "metrics/http_server.h"
#include "milter/daemon.h"
#include "milter/watches.h"
#include "util/log.h"

namespace spamgate {

namespace {

// Blocks the signals before any thread exists: libmilter's signal thread
// (HUP, TERM, INT) and our reload thread (USR1) receive them with sigwait.
void block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

// Registers the callbacks and listens on `socket` (a unix socket: the stale
// one of a crash removed first, then mode 0660). False (logged) on failure.
bool listen_on(const std::string& socket, bool unix_socket, int timeout_seconds) {
  smfiDesc desc = milter_description();
  const std::string path = unix_socket ? socket.substr(socket.find(':') + 1) : std::string();
  if (unix_socket) unlink(path.c_str());
  if (smfi_setconn(const_cast<char*>(socket.c_str())) == MI_FAILURE || smfi_settimeout(timeout_seconds) == MI_FAILURE ||
      smfi_register(desc) == MI_FAILURE) {
    log().critical("cannot set up the milter on {}", socket);
    return false;
  }
  if (smfi_opensocket(1) == MI_FAILURE) {
    log().critical("cannot listen on {} (in use, or no permission?)", socket);
    return false;
  }
  // Owner and group may connect: add the MTA's user (postfix) to our group.
  if (unix_socket && chmod(path.c_str(), 0660) != 0)
    log().warn("cannot chmod 0660 {}: {}", path, std::strerror(errno));
  return true;
}

// The threads beside libmilter's, for as long as it serves: the SIGUSR1
// reloader, the signature, memory and watchdog loops, the metrics server.
// The destructor stops and joins them all.
class Background {
 public:
  Background(Daemon& daemon, const Config& cfg) : watch_(daemon), memory_(daemon), watchdog_(daemon) {
    reloader_ = std::thread([this, &daemon] {
      sigset_t usr1;
      sigemptyset(&usr1);
      sigaddset(&usr1, SIGUSR1);
      while (true) {
        int sig = 0;
        if (sigwait(&usr1, &sig) != 0) continue;
        if (stopping_.load()) return;
        try {
          daemon.reload("SIGUSR1");
        } catch (const std::exception& e) {
          log().error("reload failed: {}", e.what());
        }
      }
    });
    watcher_ = std::thread([this] { watch_.run(); });
    memory_thread_ = std::thread([this] { memory_.run(); });
    watchdog_thread_ = std::thread([this] { watchdog_.run(); });
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
    pthread_kill(reloader_.native_handle(), SIGUSR1);
    reloader_.join();
    watch_.stop();
    watcher_.join();
    memory_.stop();
    memory_thread_.join();
    watchdog_.stop();
    watchdog_thread_.join();
    metrics_.reset();
  }
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

 private:
  std::atomic<bool> stopping_{false};
  SignatureWatch watch_;
  MemoryWatch memory_;
  Watchdog watchdog_;
  std::thread reloader_, watcher_, memory_thread_, watchdog_thread_;
  std::unique_ptr<MetricsServer> metrics_;
};

// A callback that was running when libmilter stopped still finishes (and
// answers the MTA); give it a moment rather than cutting it mid-edit.
void let_callbacks_finish(const Daemon& daemon) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (daemon.in_callback.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  if (daemon.messages.load() == 0) log().info("stopped cleanly");
  else log().warn("stopped with {} message(s) cut", daemon.messages.load());
}

}  // namespace

int run_milter(const std::string& config_path, bool quiet) {
  block_signals();
  std::vector<Diagnostic> diags;
  auto snap = load_snapshot(config_path, diags, {.network = true});
  for (const Diagnostic& d : diags) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!snap.ok()) {
    std::fprintf(stderr, "spamgate: cannot load %s: %s\n", config_path.c_str(), snap.status().message().c_str());
    return 2;
  }
  const Config cfg = snap.value()->config;
  const std::size_t rule_count = snap.value()->rule_count;
  const std::string& socket = cfg.milter.socket;
  const bool unix_socket = socket.rfind("unix:", 0) == 0 || socket.rfind("local:", 0) == 0;
  // Only the holder keeps the snapshot: a local reference would pin its
  // signature engine (up to 1 GB) after the first reload.
  Daemon daemon(config_path, snap.value(), unix_socket);
  snap = Status::Internal("moved to the holder");
  // libmilter's C callbacks and our sigwait() carry no user data: they reach
  // the daemon through this pointer, set for as long as it lives.
  set_current_daemon(&daemon);
  struct Unset {
    ~Unset() { set_current_daemon(nullptr); }
  } unset;
  if (Status ls = init_logging(quiet ? "warn" : cfg.log_level, cfg.log_target); !ls.ok()) {
    std::fprintf(stderr, "spamgate: %s\n", ls.message().c_str());
    return 2;
  }
  if (!listen_on(socket, unix_socket, cfg.milter.timeout_seconds)) return 1;
  int rc = MI_FAILURE;
  {
    Background background(daemon, cfg);
    log().info("spamgate milter listening on {} ({} rules, threshold {})", socket, rule_count, cfg.threshold_text);
    log_engine("clamav", *daemon.holder().get());
    log_rule_warnings("rules", *daemon.holder().get());
    // systemd (Type=notify): Postfix, ordered after us, starts only now that
    // the socket answers. A no-op without NOTIFY_SOCKET.
    sd_notifyf(0, "READY=1\nSTATUS=listening on %s (%zu rules)", socket.c_str(), rule_count);
    rc = smfi_main();
    sd_notify(0, "STOPPING=1");
    let_callbacks_finish(daemon);
  }
  log().flush();
  return rc == MI_SUCCESS ? 0 : 1;
}

}  // namespace spamgate
