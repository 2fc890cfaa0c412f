// dns_server.h - a real DNS server (dnsmasq) on loopback for tests, serving
// the test zones, that can hang and resume; and a UDP port that never
// answers (a dead resolver).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

extern char** environ;

namespace spamgate::test {

// Starts args[0] with args in its own process group, stdout/stderr to
// /dev/null (a lingering helper must not hold CTest's pipe) and a clean
// signal state (the test runner may have blocked or ignored signals).
// -1 when it cannot be started.
inline pid_t spawn_quiet(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGTERM);
  sigaddset(&defaults, SIGCHLD);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  if (access(args[0].c_str(), X_OK) != 0 || posix_spawn(&pid, args[0].c_str(), &fa, &attr, argv.data(), environ) != 0)
    pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  return pid;
}

// Stops a process group started by spawn_quiet: TERM, then KILL after 1 s.
inline void stop_group(pid_t pid) {
  if (pid <= 0) return;
  kill(-pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid || kill(pid, 0) != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(-pid, SIGKILL);
  waitpid(pid, nullptr, WNOHANG);
}

// A free loopback port of `type` (SOCK_DGRAM, SOCK_STREAM).
inline int free_port(int type, int* keep_fd = nullptr) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  if (keep_fd != nullptr) *keep_fd = fd;  // a server that never answers
  else close(fd);
  return port;
}

inline int free_udp_port(int* keep_fd = nullptr) { return free_port(SOCK_DGRAM, keep_fd); }

// dnsmasq serving the test zone: 192.0.2.1 listed in bl.test as 127.0.0.2,
// 192.0.2.3 as 127.0.0.4, 192.0.2.9 answered with the list's error code, any
// other name in bl.test NXDOMAIN; TXT records for spf.test.
class DnsServer {
 public:
  // `extra`: more dnsmasq options (records) for the test at hand.
  explicit DnsServer(const std::vector<std::string>& extra = {}) {
    // The port is free when picked but may be taken before dnsmasq binds it
    // (a busy machine's DNS clients take ephemeral UDP ports all the time):
    // then dnsmasq exits, and another port is tried.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_udp_port();
      pid_ = spawn_quiet(args_for(extra));
      if (pid_ <= 0 || wait_ready() || attempt == 4) return;  // the last one stays: its test fails
      if (!exited_) stop_group(pid_);  // (an exited one was reaped: its group id may be another's now)
      pid_ = -1;
      exited_ = false;
    }
  }

 private:
  std::vector<std::string> args_for(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {"/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                                      "--bind-interfaces", "--listen-address=127.0.0.1",
                                      "--port=" + std::to_string(port_), "--conf-file=/dev/null", "--pid-file=" + pid_file_.path() + "/dnsmasq.pid",
                                      "--local-ttl=300", "--log-facility=-", "--user=root", "--address=/1.2.0.192.bl.test/127.0.0.2",
                                      "--address=/3.2.0.192.bl.test/127.0.0.4",
                                      "--address=/9.2.0.192.bl.test/127.255.255.254", "--address=/bl.test/",
                                      "--address=/example.co.uk.uribl.test/127.0.0.2",
                                      "--address=/spammy.example.uribl.test/127.0.0.2",
                                      "--address=/7.100.51.198.uribl.test/127.0.0.2", "--address=/uribl.test/",
                                      "--txt-record=spf.test,v=spf1 ip4:192.0.2.0/24 -all",
                                      "--txt-record=soft.test,v=spf1 ~all", "--txt-record=neutral.test,v=spf1 ?all",
                                      "--txt-record=perm.test,v=spf1 ip4:999.1.1.1 -all",
                                      "--txt-record=mx.test,v=spf1 mx -all", "--mx-host=mx.test,mail.mx.test,10",
                                      "--host-record=mail.mx.test,192.0.2.20",
                                      "--txt-record=helo.test,v=spf1 a -all", "--host-record=helo.test,192.0.2.30",
                                      "--local=/test/"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  // Until dnsmasq answers a query (at most 120 s): a loaded machine (parallel
  // CTest, sanitizers) may take longer than any fixed sleep to start it.
  // False when it exited (its port was taken) or never answered.
  bool wait_ready() {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    timeval tv{0, 100000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port_));
    // A query for "ready.test" A: header (id 1, RD), one question.
    const unsigned char q[] = {0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 'r', 'e', 'a', 'd', 'y',
                               4, 't', 'e', 's', 't', 0, 0, 1, 0, 1};
    bool ready = false;
    for (int i = 0; i < 1200 && !ready; ++i) {
      sendto(fd, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
      unsigned char buf[512];
      ready = recv(fd, buf, sizeof buf, 0) > 0;
      if (!ready && waitpid(pid_, nullptr, WNOHANG) == pid_) {  // it exited
        exited_ = true;
        break;
      }
    }
    close(fd);
    return ready;
  }

 public:
  ~DnsServer() { stop(); }
  bool up() const { return pid_ > 0; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void stop() {
    if (pid_ > 0 && !exited_) kill(pid_, SIGCONT);  // a hung one must be able to take SIGTERM
    if (!exited_) stop_group(pid_);
    pid_ = -1;
  }
  // A hung server: its socket stays open and queries go unanswered (SIGSTOP),
  // unlike a stopped one, whose closed port answers "refused" at once.
  void hang() const { kill(pid_, SIGSTOP); }
  void resume() const { kill(pid_, SIGCONT); }

 private:
  TempDir pid_file_;  // never --pid-file=/dev/null: dnsmasq (root) replaces it with a file
  int port_ = 0;
  pid_t pid_ = -1;
  bool exited_ = false;  // wait_ready() reaped it
};


}  // namespace spamgate::test
