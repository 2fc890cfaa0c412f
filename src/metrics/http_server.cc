// http_server.cc - MetricsServer (see http_server.h).
#include "metrics/http_server.h"

#include <civetweb.h>

#include <cstring>
#include <mutex>

namespace spamgate {

void CivetStop::operator()(mg_context* c) const {
  if (c != nullptr) mg_stop(c);
}

std::string civetweb_ports(const std::string& listen) {
  return listen.rfind("localhost:", 0) == 0 ? "127.0.0.1" + listen.substr(9) : listen;
}

Result<CivetContext> start_civetweb(const std::vector<std::string>& options, const std::string& what,
                                    const std::string& listen) {
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });  // no civetweb TLS: see console/tls_front.h
  std::vector<const char*> opts;
  for (const std::string& o : options) opts.push_back(o.c_str());
  opts.push_back(nullptr);
  mg_callbacks callbacks{};
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.configuration_options = opts.data();
  char err[256] = {0};
  mg_error_data error{};
  unsigned code = 0;
  error.code = &code;
  error.text = err;
  error.text_buffer_size = sizeof err;
  CivetContext ctx(mg_start2(&init, &error));
  if (!ctx) return Status::IOError(what + ": cannot listen on " + listen + ": " + (err[0] ? err : "civetweb failed"));
  return ctx;
}

namespace {

int handle(mg_connection* conn, void* data) {
  auto* render = static_cast<MetricsServer::Render*>(data);
  const mg_request_info* req = mg_get_request_info(conn);
  if (req == nullptr || std::strcmp(req->request_method, "GET") != 0) {
    mg_printf(conn, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return 405;
  }
  std::string body;
  try {
    body = (*render)();
  } catch (...) {
    mg_printf(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return 500;
  }
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            body.size());
  mg_write(conn, body.data(), body.size());
  return 200;
}

}  // namespace

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen, Render render) {
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->render_ = std::move(render);
  auto ctx = start_civetweb({"listening_ports", civetweb_ports(listen), "num_threads", "2", "enable_keep_alive", "no",
                             "request_timeout_ms", "5000"},
                            "metrics", listen);
  if (!ctx.ok()) return ctx.status();
  s->ctx_ = std::move(ctx.value());
  mg_set_request_handler(s->ctx_.get(), "/metrics$", handle, &s->render_);
  return s;
}

MetricsServer::~MetricsServer() { ctx_.reset(); }  // joins civetweb's threads before render_ goes

}  // namespace spamgate
