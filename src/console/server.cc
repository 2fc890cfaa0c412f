// server.cc - ConsoleServer (see server.h).
#include "console/server.h"

#include <civetweb.h>

#include <cstring>

#include "console/tls_front.h"
#include "util/log.h"

namespace spamgate::console {

namespace {

// Larger bodies are refused: the local rules file is at most 1 MB, and a
// form encodes a byte in up to 3.
constexpr long long kMaxBody = 4ll << 20;

void parse_pairs(std::string_view s, std::map<std::string, std::string>& out) {
  for (int pairs = 0; !s.empty() && pairs < 200; ++pairs) {  // our forms have a handful
    std::size_t amp = s.find('&');
    std::string_view pair = s.substr(0, amp);
    s = amp == std::string_view::npos ? std::string_view() : s.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string_view k = pair.substr(0, eq), v = eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    auto decode = [](std::string_view in) {
      std::string buf(in.size() + 1, '\0');
      int n = mg_url_decode(in.data(), static_cast<int>(in.size()), buf.data(), static_cast<int>(buf.size()), 1);
      buf.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
      return buf;
    };
    out.emplace(decode(k), decode(v));  // the first of a repeated name counts
  }
}

// The fields of a multipart form, each value whole (civetweb hands them
// over in pieces), kMaxBody in all.
struct Form {
  std::map<std::string, std::string> fields;
  std::size_t total = 0;
  bool too_large = false;
};

int form_field_found(const char* key, const char*, char*, size_t, void* data) noexcept {
  auto* f = static_cast<Form*>(data);
  f->total += key != nullptr ? std::strlen(key) + 64 : 64;  // names and entries count too
  if (f->fields.size() >= 100 || f->total > static_cast<std::size_t>(kMaxBody)) {
    f->too_large = true;
    return MG_FORM_FIELD_STORAGE_ABORT;
  }
  try {
    f->fields[key != nullptr ? key : ""];  // present even when empty
  } catch (...) {
    return MG_FORM_FIELD_STORAGE_ABORT;
  }
  return MG_FORM_FIELD_STORAGE_GET;
}

int form_field_get(const char* key, const char* value, size_t len, void* data) noexcept {
  auto* f = static_cast<Form*>(data);
  f->total += len;
  if (f->total > static_cast<std::size_t>(kMaxBody)) {
    f->too_large = true;
    return MG_FORM_FIELD_HANDLE_ABORT;
  }
  try {
    f->fields[key != nullptr ? key : ""].append(value, len);
  } catch (...) {
    return MG_FORM_FIELD_HANDLE_ABORT;
  }
  return MG_FORM_FIELD_HANDLE_GET;
}

const char* reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    default: return status >= 500 ? "Internal Server Error" : "Status";
  }
}

void write_response(mg_connection* conn, const Response& out, bool https) {
  std::string head = "HTTP/1.1 " + std::to_string(out.status) + " " + reason(out.status) + "\r\n";
  head += "Content-Type: " + out.content_type + "\r\nContent-Length: " + std::to_string(out.body.size()) + "\r\n";
  head += "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
          "Referrer-Policy: no-referrer\r\nContent-Security-Policy: default-src 'none'; script-src 'self'; "
          "style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n";
  if (https) head += "Strict-Transport-Security: max-age=31536000\r\n";
  for (const auto& [k, v] : out.headers) {
    if (k.find_first_of("\r\n") != std::string::npos || v.find_first_of("\r\n") != std::string::npos) continue;
    head += k + ": " + v + "\r\n";
  }
  head += "Connection: close\r\n\r\n";
  mg_write(conn, head.data(), head.size());
  mg_write(conn, out.body.data(), out.body.size());
}

int handle(mg_connection* conn, void* data) noexcept {
  auto* h = static_cast<ConsoleServer::Target*>(data);
  try {
    const mg_request_info* info = mg_get_request_info(conn);
    if (info == nullptr) return 0;
    Request r;
    r.method = info->request_method ? info->request_method : "";
    r.path = info->local_uri ? info->local_uri : "/";
    r.client_ip = info->remote_addr;
    if (h->front != nullptr) {
      // HTTPS: only the relay's connections, with the client's own address.
      r.client_ip = std::strcmp(info->remote_addr, "127.0.0.1") == 0 ? h->front->peer_of(info->remote_port) : "";
      if (r.client_ip.empty()) {
        write_response(conn, Response{403, "text/plain", {}, "Use https."}, h->https);
        return 403;
      }
    }
    if (info->query_string != nullptr) parse_pairs(info->query_string, r.params);
    if (const char* cookie = mg_get_header(conn, "Cookie"); cookie != nullptr) {
      char buf[128];
      if (mg_get_cookie(cookie, "sg_session", buf, sizeof buf) > 0) r.session = buf;
    }
    if (r.method == "POST") {
      // Nothing is read for a stranger: without a session only /login gets
      // its body read, and a body must say its length.
      if (r.path != "/login" && !h->console->has_session(r.session)) {
        write_response(conn, Response{403, "text/plain", {}, "You are not logged in."}, h->https);
        return 403;
      }
      if (info->content_length < 0) {
        write_response(conn, Response{411, "text/plain", {}, "Length required."}, h->https);
        return 411;
      }
      if (r.path == "/login" && info->content_length > 8192) {
        write_response(conn, Response{413, "text/plain", {}, "Too large."}, h->https);
        return 413;
      }
    }
    const char* type = mg_get_header(conn, "Content-Type");
    if (r.method == "POST" && type != nullptr && std::strncmp(type, "multipart/form-data", 19) == 0) {
      // A message file to learn: civetweb reads the parts, we keep the values.
      if (info->content_length > kMaxBody) {
        write_response(conn, Response{413, "text/plain", {}, "Too large."}, h->https);
        return 413;
      }
      Form form;
      mg_form_data_handler fdh{form_field_found, form_field_get, nullptr, &form};
      if (mg_handle_form_request(conn, &fdh) < 0 || form.too_large) {
        write_response(conn, Response{400, "text/plain", {}, "The form could not be read."}, h->https);
        return 400;
      }
      for (auto& [k, v] : form.fields) r.params[k] = std::move(v);  // the form wins over the query
    } else if (r.method == "POST") {
      if (info->content_length > kMaxBody) {
        Response big;
        big.status = 413;
        big.body = "Too large.";
        write_response(conn, big, h->https);
        return 413;
      }
      std::string body;
      char buf[16384];
      int n;
      while ((n = mg_read(conn, buf, sizeof buf)) > 0) {
        body.append(buf, static_cast<std::size_t>(n));
        if (static_cast<long long>(body.size()) > kMaxBody) break;
      }
      if (type != nullptr && std::strncmp(type, "application/x-www-form-urlencoded", 33) == 0) {
        std::map<std::string, std::string> form;
        parse_pairs(body, form);
        for (auto& [k, v] : form) r.params[k] = std::move(v);  // the form wins over the query
      }
    }
    Response out = h->console->handle(r);
    write_response(conn, out, h->https);
    return out.status;
  } catch (...) {  // nothing crosses into civetweb
    mg_printf(conn, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return 500;
  }
}

}  // namespace

Result<std::unique_ptr<ConsoleServer>> ConsoleServer::start(const ConsoleConfig& c, ConsoleHooks hooks) {
  const bool https = !c.certificate.empty();
  std::unique_ptr<ConsoleServer> s(new ConsoleServer());
  s->console_ = std::make_unique<Console>(c, std::move(hooks), https);
  // HTTPS: civetweb on a loopback port the kernel picks, TlsFront in front.
  auto ctx = start_civetweb({"listening_ports", https ? std::string("127.0.0.1:0") : civetweb_ports(c.listen),
                             "num_threads", "4", "enable_keep_alive", "no", "request_timeout_ms", "10000"},
                            "console", https ? "127.0.0.1:0" : c.listen);
  if (!ctx.ok()) return ctx.status();
  s->ctx_ = std::move(ctx.value());
  if (https) {
    mg_server_port ports[2] = {};
    if (mg_get_server_ports(s->ctx_.get(), 2, ports) < 1 || ports[0].port <= 0)
      return Status::Internal("console: civetweb has no port");
    auto front = TlsFront::start(c.listen, c.certificate, ports[0].port);
    if (!front.ok()) return front.status();
    s->front_ = std::move(front.value());
  }
  s->target_ = {s->console_.get(), https, s->front_.get()};
  mg_set_request_handler(s->ctx_.get(), "/", handle, &s->target_);
  s->url_ = (https ? "https://" : "http://") + c.listen;
  return s;
}

ConsoleServer::~ConsoleServer() {
  front_.reset();  // no new relayed request
  ctx_.reset();    // joins civetweb's threads before the console goes
}

}  // namespace spamgate::console
