// http_server.cc - MetricsServer (see http_server.h).
#include "metrics/http_server.h"

#include <civetweb.h>

#include <cstring>
#include <mutex>

namespace spamgate {

void MetricsServer::Stop::operator()(mg_context* c) const {
  if (c != nullptr) mg_stop(c);
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
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->render_ = std::move(render);
  // civetweb wants "127.0.0.1:9795" or "[::1]:9795"; "localhost" is ours.
  std::string ports = listen.rfind("localhost:", 0) == 0 ? "127.0.0.1" + listen.substr(9) : listen;
  const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "2", "enable_keep_alive", "no",
                           "request_timeout_ms", "5000", nullptr};
  mg_callbacks callbacks{};
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.configuration_options = options;
  char err[256] = {0};
  mg_error_data error{};
  unsigned code = 0;
  error.code = &code;
  error.text = err;
  error.text_buffer_size = sizeof err;
  s->ctx_.reset(mg_start2(&init, &error));
  if (!s->ctx_) return Status::IOError("metrics: cannot listen on " + listen + ": " + (err[0] ? err : "civetweb failed"));
  mg_set_request_handler(s->ctx_.get(), "/metrics$", handle, &s->render_);
  return s;
}

MetricsServer::~MetricsServer() { ctx_.reset(); }  // joins civetweb's threads before render_ goes

}  // namespace spamgate
