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

int run_milter(const std::string& config_path, bool quiet) {
  // Block the signals before any thread exists: libmilter's signal thread
  // (HUP, TERM, INT) and our reload thread (USR1) receive them with sigwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<Diagnostic> diags;
  auto snap = load_snapshot(config_path, diags, {.network = true});
  for (const Diagnostic& d : diags) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!snap.ok()) {
    std::fprintf(stderr, "spamgate: cannot load %s: %s\n", config_path.c_str(), snap.status().message().c_str());
    return 2;
  }
  const std::string socket = snap.value()->config.milter.socket;
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
  auto first = daemon.holder().get();
  const Config cfg = first->config;
  const std::size_t rule_count = first->rule_count;
  first.reset();
  Status ls = init_logging(quiet ? "warn" : cfg.log_level, cfg.log_target);
  if (!ls.ok()) {
    std::fprintf(stderr, "spamgate: %s\n", ls.message().c_str());
    return 2;
  }

  smfiDesc desc = milter_description();
  if (unix_socket) {
    unlink(socket.substr(socket.find(':') + 1).c_str());  // a stale socket from a crash
  }
  if (smfi_setconn(const_cast<char*>(socket.c_str())) == MI_FAILURE ||
      smfi_settimeout(cfg.milter.timeout_seconds) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) {
    log().critical("cannot set up the milter on {}", socket);
    return 1;
  }
  if (smfi_opensocket(1) == MI_FAILURE) {
    log().critical("cannot listen on {} (in use, or no permission?)", socket);
    return 1;
  }
  if (unix_socket) {
    // Owner and group may connect: add the MTA's user (postfix) to our group.
    std::string path = socket.substr(socket.find(':') + 1);
    if (chmod(path.c_str(), 0660) != 0) log().warn("cannot chmod 0660 {}: {}", path, std::strerror(errno));
  }

  std::atomic<bool> stopping{false};
  std::thread reloader([&stopping, &daemon] {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    while (true) {
      int sig = 0;
      if (sigwait(&usr1, &sig) != 0) continue;
      if (stopping.load()) return;
      try {
        daemon.reload("SIGUSR1");
      } catch (const std::exception& e) {
        log().error("reload failed: {}", e.what());
      }
    }
  });

  SignatureWatch watch(daemon);
  std::thread watcher([&watch] { watch.run(); });
  MemoryWatch memory(daemon);
  std::thread memory_thread([&memory] { memory.run(); });
  Watchdog watchdog(daemon);
  std::thread watchdog_thread([&watchdog] { watchdog.run(); });
  std::unique_ptr<MetricsServer> metrics;
  if (!cfg.metrics.listen.empty()) {
    auto m = MetricsServer::start(cfg.metrics.listen, [&daemon] { return daemon.render_metrics(); });
    if (m.ok()) {
      metrics = std::move(m.value());
      log().info("metrics: http://{}/metrics", cfg.metrics.listen);
    } else {
      log().error("{}; running without metrics", m.status().message());
    }
  }

  log().info("spamgate milter listening on {} ({} rules, threshold {})", socket, rule_count, cfg.threshold_text);
  log_engine("clamav", *daemon.holder().get());
  log_rule_warnings("rules", *daemon.holder().get());
  // systemd (Type=notify): Postfix, ordered after us, starts only now that
  // the socket answers. A no-op without NOTIFY_SOCKET.
  sd_notifyf(0, "READY=1\nSTATUS=listening on %s (%zu rules)", socket.c_str(), rule_count);
  int rc = smfi_main();
  sd_notify(0, "STOPPING=1");
  // A callback that was running when libmilter stopped still finishes (and
  // answers the MTA); give it a moment rather than cutting it mid-edit.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (daemon.in_callback.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (daemon.messages.load() == 0) log().info("stopped cleanly");
  else log().warn("stopped with {} message(s) cut", daemon.messages.load());
  stopping = true;
  pthread_kill(reloader.native_handle(), SIGUSR1);
  reloader.join();
  watch.stop();
  watcher.join();
  memory.stop();
  memory_thread.join();
  watchdog.stop();
  watchdog_thread.join();
  metrics.reset();
  log().flush();
  return rc == MI_SUCCESS ? 0 : 1;
}

}  // namespace spamgate
