// server.h - the support console over HTTP(S): its own civetweb listener
// ([console] listen; HTTPS with [console] certificate), each request turned
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
  };

 private:
  ConsoleServer() = default;
  std::unique_ptr<Console> console_;
  Target target_;
  std::string url_;
  CivetContext ctx_;  // last: stopped first
};

}  // namespace spamgate::console
