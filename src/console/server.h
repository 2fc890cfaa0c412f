// server.h - the support console over HTTP(S): its own civetweb listener
// ([console] listen; with [console] certificate, civetweb listens on an
// ephemeral loopback port behind TlsFront's HTTPS, tls_front.h), each request turned
// into a console::Request for Console::handle (console.h) and its Response
// written with the security headers every page gets. Stopping joins
// civetweb's threads. Thread-safe.
#pragma once

#include <memory>

#include "console/console.h"
#include "metrics/http_server.h"

namespace spamgate::console {

class ConsoleServer {
 public:
  static Result<std::unique_ptr<ConsoleServer>> start(const ConsoleConfig& c, ConsoleHooks hooks);
  ~ConsoleServer();
  ConsoleServer(const ConsoleServer&) = delete;
  ConsoleServer& operator=(const ConsoleServer&) = delete;
  // "http://127.0.0.1:9796" or "https://...", for the log.
  const std::string& url() const { return url_; }
  // What the request handler gets.
  struct Target {
    Console* console = nullptr;
    bool https = false;
    const class TlsFront* front = nullptr;  // HTTPS: the relay that knows each client's address
  };

 private:
  ConsoleServer() = default;
  std::unique_ptr<Console> console_;
  Target target_;
  std::string url_;
  CivetContext ctx_;                   // stopped before the console goes
  std::unique_ptr<class TlsFront> front_;  // last: stopped first (it relays to civetweb)
};

}  // namespace spamgate::console
