// redis_server.h - a private redis-server on a loopback port for the store
// tests (Debian package redis-server), that can hang and resume; stopped
// with the test.
#pragma once

#include <hiredis/hiredis.h>
#include <sys/socket.h>

#include <chrono>
#include <string>
#include <thread>

#include "dns_server.h"
#include "test_util.h"

namespace spamgate::test {

// A private redis-server on a loopback port, no persistence.
class RedisServer {
 public:
  RedisServer() {
    port_ = free_port(SOCK_STREAM);
    pid_ = spawn_quiet({"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no", "--dir", dir_.path()});
    for (int i = 0; pid_ > 0 && i < 2400; ++i) {  // until it answers (at most 120 s: a busy machine)
      timeval tv{0, 200000};
      redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
      bool up = c != nullptr && c->err == 0;
      if (c != nullptr) redisFree(c);
      if (up) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~RedisServer() {
    if (pid_ > 0) kill(pid_, SIGCONT);  // a hung one must be able to take SIGTERM
    stop_group(pid_);
  }
  // A hung server (SIGSTOP): connections are still accepted by the kernel,
  // commands get no reply. resume() lets it answer again.
  void hang() const { kill(pid_, SIGSTOP); }
  void resume() const { kill(pid_, SIGCONT); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool up() const { return pid_ > 0; }

 private:
  TempDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace spamgate::test
