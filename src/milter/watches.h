// watches.h - the daemon's background threads: the signature-file watch
// (reloads on a change that holds still), the memory watch (logs resident
// memory, warns above [memory] warn_mb naming the largest consumers) and
// systemd's watchdog ping. Each loop returns promptly once stop() is called.
#pragma once

#include <systemd/sd-daemon.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "checks/clamav_engine.h"
#include "config/load.h"
#include "milter/daemon.h"
#include "spamgate/metrics.h"
#include "util/log.h"

namespace spamgate {

// A background thread's loop state: it waits on cv_ between rounds and
// returns as soon as stop() is called.
class BackgroundLoop {
 public:
  void stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 protected:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

// Polls a set of files every `interval(snapshot)` seconds; a change that
// holds still for two seconds (an update being copied in) triggers a
// reload. `now(snapshot)` fingerprints the files as they are, `loaded` as
// the snapshot in use read them ("" for nothing to watch); a change already
// loaded (by SIGUSR1) is not reloaded again, a refused one not retried until
// the files change again.
class ChangeWatch : public BackgroundLoop {
 public:
  using Fingerprint = std::string (*)(const Snapshot&);
  ChangeWatch(Daemon& d, const char* why, int (*interval)(const Snapshot&), Fingerprint now, Fingerprint loaded)
      : d_(d), why_(why), interval_(interval), now_(now), loaded_(loaded) {}
  void run() {
    std::string seen = loaded_(*d_.holder().get());
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      int secs = interval_(*d_.holder().get());
      cv_.wait_for(lock, std::chrono::seconds(secs > 0 ? secs : 3600), [this] { return stop_; });
      if (stop_) return;
      auto snap = d_.holder().get();
      if (interval_(*snap) == 0) continue;
      std::string now = now_(*snap);
      if (now.empty() || now == seen) continue;
      if (now == loaded_(*snap)) {  // already loaded (by SIGUSR1)
        seen = now;
        continue;
      }
      if (cv_.wait_for(lock, std::chrono::seconds(2), [this] { return stop_; })) return;
      if (now_(*snap) != now) continue;  // still being written
      seen = now;
      snap.reset();
      lock.unlock();
      try {
        d_.reload(why_);
      } catch (const std::exception& e) {
        log().error("reload failed: {}", e.what());
      }
      lock.lock();
    }
  }

 private:
  Daemon& d_;
  const char* why_;
  int (*interval_)(const Snapshot&);
  Fingerprint now_, loaded_;
};

// The signature files ([clamav] watch_seconds; nothing without an engine).
inline ChangeWatch signature_watch(Daemon& d) {
  return ChangeWatch(
      d, "signature files changed", [](const Snapshot& s) { return s.clamav ? s.config.clamav.watch_seconds : 0; },
      [](const Snapshot& s) { return s.clamav ? ClamEngine::fingerprint_of(s.config.clamav) : std::string(); },
      [](const Snapshot& s) { return s.clamav ? s.clamav->fingerprint() : std::string(); });
}

// The rule files (rules_watch_seconds): an sa-update or an edited local
// file; the reload's rules canary vets them like any other.
inline ChangeWatch rules_watch(Daemon& d) {
  return ChangeWatch(
      d, "rule files changed", [](const Snapshot& s) { return s.config.rules_watch_seconds; },
      [](const Snapshot& s) { return rules_fingerprint_of(s.config); },
      [](const Snapshot& s) { return s.rules_fingerprint; });
}

// Logs resident memory every [memory] log_seconds (debug), and a warning
// naming the largest consumers we know of above [memory] warn_mb (once per
// crossing, then again every 10 minutes while it stays above).
// systemd's watchdog (WatchdogSec= in the unit): pings at half the interval
// while the process can still take the snapshot lock that every message and
// reload takes; a process stuck there is killed and restarted by systemd.
// Without WATCHDOG_USEC (no systemd, or no WatchdogSec) it returns at once.
class Watchdog : public BackgroundLoop {
 public:
  explicit Watchdog(Daemon& d) : d_(d) {}
  void run() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    log().info("systemd watchdog: a ping every {} ms", usec / 2000);
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (cv_.wait_for(lock, std::chrono::microseconds(usec / 2), [this] { return stop_; })) return;
      if (d_.holder().get() != nullptr) sd_notify(0, "WATCHDOG=1");
    }
  }

 private:
  Daemon& d_;
};

class MemoryWatch : public BackgroundLoop {
 public:
  explicit MemoryWatch(Daemon& d) : d_(d) {}
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    std::chrono::steady_clock::time_point last_warn{};
    while (!stop_) {
      auto snap = d_.holder().get();
      const MemoryConfig mc = snap->config.memory;
      int secs = mc.log_seconds > 0 ? mc.log_seconds : 60;
      snap.reset();
      if (cv_.wait_for(lock, std::chrono::seconds(secs), [this] { return stop_; })) return;
      snap = d_.holder().get();
      const std::size_t rss = resident_bytes();
      const std::string who = d_.memory_consumers(*snap);
      if (mc.log_seconds > 0) log().debug("memory: resident {:.1f} MB; {}", static_cast<double>(rss) / 1048576.0, who);
      auto now = std::chrono::steady_clock::now();
      if (rss > mc.warn_bytes && (last_warn == std::chrono::steady_clock::time_point{} ||
                                  now - last_warn > std::chrono::minutes(10))) {
        log().warn("memory: resident {:.1f} MB is above [memory] warn_mb ({} MB); {}", static_cast<double>(rss) / 1048576.0,
                   mc.warn_bytes >> 20, who);
        last_warn = now;
      } else if (rss <= mc.warn_bytes) {
        last_warn = {};
      }
    }
  }

 private:
  Daemon& d_;
};

}  // namespace spamgate
