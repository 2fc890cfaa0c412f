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
#include <vector>

#include "spamgate/status.h"

struct mg_context;

namespace spamgate {

// A civetweb context, stopped (its threads joined) when it goes.
struct CivetStop {
  void operator()(mg_context* c) const;
};
using CivetContext = std::unique_ptr<mg_context, CivetStop>;
// Starts civetweb with `options` (name, value, ... pairs); an error naming
// `what`, `listen` and civetweb's reason when it cannot listen.
Result<CivetContext> start_civetweb(const std::vector<std::string>& options, const std::string& what,
                                    const std::string& listen);
// civetweb's form of a listen address: "localhost:N" becomes "127.0.0.1:N".
std::string civetweb_ports(const std::string& listen);

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
  Render render_;
  CivetContext ctx_;
};

}  // namespace spamgate
