// tls_front.h - HTTPS for the support console: TLS (OpenSSL, TLS 1.2 and
// later) terminated here, each connection relayed in plain to the console's
// civetweb listener on a loopback port only this process knows.
//
// Why not civetweb's own TLS: Debian 12's civetweb loads OpenSSL at run time
// and looks for SSL_get_peer_certificate, which OpenSSL 3 no longer exports;
// its TLS does not start, and a TLS listener crashes at the first connection.
//
// The console learns the client's real address from the relay: civetweb
// sees 127.0.0.1 and the relay's source port, and peer_of() maps that port
// to the address the TLS connection came from. A connection to the loopback
// port that is not the relay's has no entry (the console refuses it).
// At most kMaxConnections at once (more are closed at accept); a handshake
// or an idle connection ends after 30 s. Stopping closes the listener and
// every connection and joins their threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "spamgate/status.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace spamgate::console {

class TlsFront {
 public:
  static constexpr int kMaxConnections = 64;
  // Listens on `listen` ("HOST:PORT", "[::1]:PORT") with the key and the
  // certificate (chain) of the PEM file `pem`; relays to 127.0.0.1:`backend_port`.
  static Result<std::unique_ptr<TlsFront>> start(const std::string& listen, const std::string& pem, int backend_port);
  ~TlsFront();
  TlsFront(const TlsFront&) = delete;
  TlsFront& operator=(const TlsFront&) = delete;

  // The client address of the relayed connection whose loopback source port
  // is `port`; "" when no relayed connection has it.
  std::string peer_of(int port) const;

 private:
  TlsFront() = default;
  void accept_loop();
  void serve(int client_fd, std::string peer);

  struct CtxFree {
    void operator()(SSL_CTX* c) const;
  };
  std::unique_ptr<SSL_CTX, CtxFree> ctx_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe: written at stop, wakes every poll()
  int backend_port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable idle_;
  int active_ = 0;
  std::map<int, std::string> peers_;  // relay source port -> client address
  std::set<int> fds_;                 // client sockets being served (shut down at stop)
  std::thread acceptor_;
};

}  // namespace spamgate::console
