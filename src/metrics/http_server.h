// http_server.h - the Prometheus endpoint: GET /metrics over HTTP on a
// loopback address, served by civetweb (Debian's libcivetweb), not by
// hand-written HTTP code.
//
// The page is whatever `render` returns, produced on civetweb's thread at
// each scrape. Start fails (a Status naming the address and civetweb's
// reason) when the port is taken; the milter then logs it and runs without
// metrics. Stopping joins civetweb's threads. Thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "spamgate/status.h"

struct mg_context;

namespace spamgate {

class MetricsServer {
 public:
  using Render = std::function<std::string()>;
  // `listen`: "127.0.0.1:9795" (config-checked loopback).
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen, Render render);
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

 private:
  MetricsServer() = default;
  struct Stop {
    void operator()(mg_context* c) const;
  };
  Render render_;
  std::unique_ptr<mg_context, Stop> ctx_;
};

}  // namespace spamgate
