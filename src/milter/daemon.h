// daemon.h - the milter daemon's long-lived state, owned by run_milter():
// the snapshot holder, the connection and message counters the drain and
// the metrics read, the reload (one at a time: SIGUSR1 and the signature
// watch) and the drain before a stop.
//
// Everything gets the Daemon by reference (the protocol engine's filters,
// the signal thread, the watches). Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "spamgate/snapshot.h"

namespace spamgate {

class Daemon {
 public:
  Daemon(std::string config_path, std::shared_ptr<const Snapshot> first);
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  SnapshotHolder& holder() { return holder_; }
  const SnapshotHolder& holder() const { return holder_; }

  // Loads the config and rules again; a refused reload (every file:line
  // logged) keeps the old snapshot, and the Status says why (the console
  // shows it). `why` goes into the log line.
  Status reload(const char* why);
  // The milter listens: its pid goes to the state file (spamgate reload
  // signals it). Not before: a second instance that cannot listen must not
  // take the running one's place there.
  void serving() noexcept;
  // Called in the signal thread before the engine stops: new connections
  // get 4xx, messages in flight finish (up to [milter] drain_seconds).
  void drain_before_stop(int sig) noexcept;
  // [milter] max_connections of the serving snapshot (0: no cap).
  long max_connections() const;
  // Logs (once a minute at most) that a connection got 4xx over the cap.
  void note_refused_over_cap(long cap);
  // How long a reload waits for the messages still scanned with retired
  // signatures to end (two engines in memory at most) before it is refused.
  void set_retired_wait(std::chrono::milliseconds d) { retired_wait_ = d; }
  // Who holds memory, for the memory watch's lines.
  std::string memory_consumers(const Snapshot& snap) const;
  // The Prometheus page, gauges read now.
  std::string render_metrics() const;

  std::atomic<long> sessions{0};     // open connections
  std::atomic<long> messages{0};     // messages between MAIL FROM and end/abort
  std::atomic<long> in_callback{0};  // callbacks running right now
  std::atomic<long> conn_seq{0};     // connection ids c1, c2, ...
  std::atomic<bool> draining{false};

 private:
  SnapshotHolder holder_;
  const std::string config_path_;
  std::mutex reload_mu_;
  Status reload_now(const char* why);  // with reload_mu_ held
  // The state file `spamgate reload` reads: {"pid", "reloads" (a count),
  // "result" started|reloaded|refused, "message", "began_ms" (when that
  // reload began reading the files, unix ms), "time"}, replaced whole.
  void write_state(const char* result, const std::string& message, long long began_ms) noexcept;
  std::string state_path_;
  std::mutex state_mu_;
  long reload_seq_ = 0;
  std::atomic<std::chrono::steady_clock::rep> last_cap_log_{0};
  std::chrono::milliseconds retired_wait_{std::chrono::seconds(120)};
};

// Where the milter of config `c` keeps its state file: "milter.state"
// beside the [bayes] path.
std::string milter_state_path(const Config& c);

// Start and reload log lines: the rules' warnings (the first few) and the
// signature engine loaded.
void log_rule_warnings(const char* when, const Snapshot& s);
void log_engine(const char* what, const Snapshot& s);

}  // namespace spamgate
