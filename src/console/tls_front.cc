// tls_front.cc - TlsFront (see tls_front.h).
#include "console/tls_front.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <cstring>

#include "util/fd.h"
#include "util/log.h"

namespace spamgate::console {

namespace {

constexpr int kIdleMs = 30000;


struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// "127.0.0.1:9796", "[::1]:9796", "localhost:9796" as a socket address.
bool parse_listen(const std::string& listen, sockaddr_storage& out, socklen_t& len) {
  std::size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = listen.substr(0, colon);
  int port = std::atoi(listen.c_str() + colon + 1);
  if (port < 1 || port > 65535) return false;
  if (host == "localhost") host = "127.0.0.1";
  std::memset(&out, 0, sizeof out);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    auto* a = reinterpret_cast<sockaddr_in6*>(&out);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<std::uint16_t>(port));
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a->sin6_addr) != 1) return false;
    len = sizeof *a;
    return true;
  }
  auto* a = reinterpret_cast<sockaddr_in*>(&out);
  a->sin_family = AF_INET;
  a->sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &a->sin_addr) != 1) return false;
  len = sizeof *a;
  return true;
}

std::string address_of(const sockaddr_storage& a) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof buf);
  } else {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof buf);
  }
  return buf;
}

// Waits until `fd` is ready for `events` or the stop pipe is written;
// false on stop, timeout or error.
bool wait_fd(int fd, short events, int wake, int ms) {
  pollfd p[2] = {{fd, events, 0}, {wake, POLLIN, 0}};
  int n = ::poll(p, 2, ms);
  return n > 0 && p[1].revents == 0 && p[0].revents != 0;
}

}  // namespace

void TlsFront::CtxFree::operator()(SSL_CTX* c) const { SSL_CTX_free(c); }

Result<std::unique_ptr<TlsFront>> TlsFront::start(const std::string& listen, const std::string& pem,
                                                  int backend_port) {
  std::unique_ptr<TlsFront> f(new TlsFront());
  f->backend_port_ = backend_port;
  f->ctx_.reset(SSL_CTX_new(TLS_server_method()));
  if (!f->ctx_) return Status::Internal("console: OpenSSL: " + openssl_error());
  SSL_CTX_set_min_proto_version(f->ctx_.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(f->ctx_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(f->ctx_.get(), pem.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(f->ctx_.get(), pem.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(f->ctx_.get()) != 1)
    return Status::InvalidArgument("console: certificate " + pem + ": " + openssl_error());
  sockaddr_storage addr{};
  socklen_t len = 0;
  if (!parse_listen(listen, addr, len)) return Status::InvalidArgument("console: cannot listen on " + listen);
  f->listen_fd_ = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (f->listen_fd_ < 0 || ::setsockopt(f->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::bind(f->listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(f->listen_fd_, 64) != 0)
    return Status::IOError("console: cannot listen on " + listen + ": " + std::strerror(errno));
  if (::pipe2(f->wake_, O_CLOEXEC | O_NONBLOCK) != 0) return Status::IOError("console: pipe: " + std::string(std::strerror(errno)));
  f->acceptor_ = std::thread([p = f.get()] { p->accept_loop(); });
  return f;
}

TlsFront::~TlsFront() {
  stopping_ = true;
  if (wake_[1] >= 0) {
    char c = 1;
    (void)!::write(wake_[1], &c, 1);  // every poll() sees the pipe readable from now on
  }
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::unique_lock lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);  // a handshake in progress ends now
    idle_.wait(lock, [this] { return active_ == 0; });
  }
  for (int fd : {listen_fd_, wake_[0], wake_[1]})
    if (fd >= 0) ::close(fd);
}

std::string TlsFront::peer_of(int port) const {
  std::lock_guard lock(mu_);
  auto it = peers_.find(port);
  return it == peers_.end() ? std::string() : it->second;
}

void TlsFront::accept_loop() {
  while (!stopping_) {
    if (!wait_fd(listen_fd_, POLLIN, wake_[0], -1)) {
      if (stopping_) return;
      continue;
    }
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    if (active_ >= kMaxConnections) {
      ::close(fd);  // a flood: the console is for a few people
      continue;
    }
    ++active_;
    fds_.insert(fd);
    try {
      std::thread([this, fd, a = address_of(peer)] { serve(fd, a); }).detach();
    } catch (...) {
      --active_;
      fds_.erase(fd);
      ::close(fd);
    }
  }
}

void TlsFront::serve(int client_fd, std::string peer) {
  UniqueFd client(client_fd);
  int relay_port = -1;
  try {
    timeval tv{kIdleMs / 1000, 0};
    ::setsockopt(client.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(client.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx_.get()));
    if (ssl && SSL_set_fd(ssl.get(), client.fd) == 1 && SSL_accept(ssl.get()) == 1) {
      UniqueFd backend(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (backend.fd >= 0) ::setsockopt(backend.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      sockaddr_in b{};
      b.sin_family = AF_INET;
      b.sin_port = htons(static_cast<std::uint16_t>(backend_port_));
      b.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      sockaddr_in local{};
      socklen_t len = sizeof local;
      if (backend.fd >= 0 && ::connect(backend.fd, reinterpret_cast<sockaddr*>(&b), sizeof b) == 0 &&
          ::getsockname(backend.fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
        relay_port = ntohs(local.sin_port);
        {
          std::lock_guard lock(mu_);
          peers_[relay_port] = peer;
        }
        ::fcntl(client.fd, F_SETFL, ::fcntl(client.fd, F_GETFL) | O_NONBLOCK);
        char buf[16384];
        while (!stopping_) {
          // Bytes OpenSSL already decrypted are not visible to poll().
          if (SSL_pending(ssl.get()) == 0) {
            pollfd p[3] = {{client.fd, POLLIN, 0}, {backend.fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
            if (::poll(p, 3, kIdleMs) <= 0 || p[2].revents != 0) break;
            if (p[1].revents != 0) {
              ssize_t n = ::recv(backend.fd, buf, sizeof buf, 0);
              if (n <= 0) break;
              std::size_t off = 0;
              while (off < static_cast<std::size_t>(n)) {
                int w = SSL_write(ssl.get(), buf + off, static_cast<int>(static_cast<std::size_t>(n) - off));
                if (w > 0) {
                  off += static_cast<std::size_t>(w);
                  continue;
                }
                int e = SSL_get_error(ssl.get(), w);
                if ((e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) ||
                    !wait_fd(client.fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, wake_[0], kIdleMs))
                  goto done;
              }
              continue;
            }
            if (p[0].revents == 0) continue;
          }
          int n = SSL_read(ssl.get(), buf, sizeof buf);
          if (n <= 0) {
            int e = SSL_get_error(ssl.get(), n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
            break;  // closed, or a protocol error
          }
          if (::send(backend.fd, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL) != static_cast<ssize_t>(n)) break;
        }
      done:
        SSL_shutdown(ssl.get());
      }
    }
  } catch (...) {  // a thread of ours: nothing may escape it
  }
  ERR_clear_error();
  std::lock_guard lock(mu_);
  if (relay_port >= 0) peers_.erase(relay_port);
  fds_.erase(client.fd);  // closed only after this, outside the lock
  --active_;
  idle_.notify_all();
}

}  // namespace spamgate::console
