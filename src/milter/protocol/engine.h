// engine.h - the milter server: one epoll loop owns the listening socket and
// every connection, reads and writes packets without a thread hand-off per
// step, and runs only the steps that may block (Filter::may_block: the scan,
// DNS, Redis, a spool disk) on a bounded pool of worker threads, whose
// results come back to the loop through an eventfd.
//
// Sockets: "inet:PORT@HOST" / "inet6:PORT@HOST" (HOST a name or an address;
// none = every address) and "unix:PATH" / "local:PATH" (a stale socket file
// is removed first; mode 0660). TCP connections get TCP_NODELAY, and
// TCP_QUICKACK again after each read: the MTA writes a macro packet and the
// command as two small writes, and without an immediate ACK its second write
// waits ~40 ms under Nagle (measured, bench/RESULTS.md).
//
// Limits: packets above max_packet bytes close the connection; a connection
// with no step running and nothing from the MTA for idle_timeout is closed
// (a message in it aborted); more than hard_connections open connections and
// new ones are closed at accept (the filter answers 4xx below that, at its own
// cap). A step running longer than progress_interval gets SMFIR_PROGRESS
// packets so the MTA keeps waiting.
//
// stop() (any thread, e.g. a signal handler thread) ends run(): listeners
// close at once, steps running on workers finish and are answered, then every
// connection is closed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "milter/protocol/connection.h"
#include "spamgate/status.h"

namespace spamgate::milter {

struct EngineOptions {
  std::chrono::seconds idle_timeout{60};
  std::chrono::seconds progress_interval{10};
  std::size_t hard_connections = 2000;
  unsigned workers = 8;
  std::size_t max_packet = 1 << 20;
};

class Engine {
 public:
  // Listens on `socket`; the error names the socket and why.
  static Result<std::unique_ptr<Engine>> listen(const std::string& socket, EngineOptions opt, FilterFactory factory);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Serves until stop(). Call once.
  void run();
  void stop();
  bool tcp() const { return tcp_; }
  // Open connections (for tests and the log).
  std::size_t connections() const;

  struct Impl;

 private:
  Engine(std::unique_ptr<Impl> impl, bool tcp);
  std::unique_ptr<Impl> impl_;
  bool tcp_;
};

}  // namespace spamgate::milter
