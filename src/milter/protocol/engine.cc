// engine.cc - the epoll loop and the worker pool (see engine.h).
// DIAGNOSTICS: warn when connections are refused at accept (once a minute at
// most) and when an idle connection is closed; error when accept or epoll fail.
#include "milter/protocol/engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "util/log.h"
#include "util/spool_file.h"

namespace spamgate::milter {

namespace {

using Clock = std::chrono::steady_clock;

struct Client {
  explicit Client(FileDescriptor f, FilterFactory factory, std::size_t max_packet)
      : fd(std::move(f)), conn(std::move(factory), max_packet) {}
  FileDescriptor fd;
  Connection conn;
  std::string out;           // bytes not yet written
  bool busy = false;         // a step runs on a worker: only the worker touches conn
  bool closing = false;      // close once `out` is written (or at once when the peer went)
  bool registered = false;   // in the epoll set
  bool want_write = false;   // EPOLLOUT asked for
  Clock::time_point last_input = Clock::now();
  Clock::time_point last_progress{};
};

// "inet:PORT@HOST", "inet6:PORT@HOST" or "unix:PATH" / "local:PATH".
struct Address {
  bool unix_path = false;
  std::string path;
  int family = AF_INET;
  std::string port, host;
};

Result<Address> parse_address(const std::string& spec) {
  Address a;
  std::size_t colon = spec.find(':');
  if (colon == std::string::npos) return Status::InvalidArgument("socket '" + spec + "' has no type (inet:, unix:)");
  std::string type = spec.substr(0, colon), rest = spec.substr(colon + 1);
  if (type == "unix" || type == "local") {
    if (rest.empty() || rest.size() >= sizeof(sockaddr_un{}.sun_path))
      return Status::InvalidArgument("socket '" + spec + "': the path is empty or too long");
    a.unix_path = true;
    a.path = rest;
    return a;
  }
  if (type != "inet" && type != "inet6") return Status::InvalidArgument("socket '" + spec + "': unknown type");
  a.family = type == "inet" ? AF_INET : AF_INET6;
  std::size_t at = rest.find('@');
  a.port = rest.substr(0, at);
  if (at != std::string::npos) a.host = rest.substr(at + 1);
  if (a.port.empty() || a.port.find_first_not_of("0123456789") != std::string::npos)
    return Status::InvalidArgument("socket '" + spec + "': the port must be a number");
  return a;
}


Result<FileDescriptor> open_listener(const Address& a, const std::string& spec) {
  if (a.unix_path) {
    FileDescriptor fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return Status::Internal("socket: " + std::string(std::strerror(errno)));
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, a.path.c_str(), a.path.size() + 1);
    struct stat st{};
    if (lstat(a.path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(a.path.c_str());  // a crash's stale socket
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0)
      return Status::Unavailable("cannot listen on " + spec + ": " + std::strerror(errno));
    // Owner and group may connect: add the MTA's user (postfix) to our group.
    if (chmod(a.path.c_str(), 0660) != 0) log().warn("cannot chmod 0660 {}: {}", a.path, std::strerror(errno));
    if (::listen(fd.get(), SOMAXCONN) != 0)
      return Status::Unavailable("cannot listen on " + spec + ": " + std::strerror(errno));
    return fd;
  }
  addrinfo hints{};
  hints.ai_family = a.family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(a.host.empty() ? nullptr : a.host.c_str(), a.port.c_str(), &hints, &res); rc != 0)
    return Status::InvalidArgument("cannot listen on " + spec + ": " + gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  FileDescriptor fd(socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Status::Internal("socket: " + std::string(std::strerror(errno)));
  int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // The MTA writes its option negotiation as soon as it connects: accept
  // wakes us only once that has come (one wake-up less per connection).
  int defer = 5;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
  if (bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd.get(), SOMAXCONN) != 0)
    return Status::Unavailable("cannot listen on " + spec + " (in use, or no permission?): " + std::strerror(errno));
  return fd;
}

}  // namespace

struct Engine::Impl {
  Impl(FileDescriptor l, Address a, EngineOptions o, FilterFactory f)
      : listener(std::move(l)), addr(std::move(a)), opt(o), factory(std::move(f)) {}

  std::atomic<std::size_t> open{0};
  FileDescriptor listener, epoll, wake;
  Address addr;
  EngineOptions opt;
  FilterFactory factory;
  std::unordered_map<int, std::unique_ptr<Client>> clients;
  std::atomic<bool> stopping{false};
  Clock::time_point last_refusal_log{};

  // The worker pool: jobs in, finished clients out (the loop is woken).
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Client*> jobs, done;
  bool workers_quit = false;
  std::vector<std::thread> workers;

  void start_workers() {
    for (unsigned i = 0; i < opt.workers; ++i) workers.emplace_back([this] { work(); });
  }
  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mu);
      workers_quit = true;
    }
    cv.notify_all();
    for (auto& t : workers) t.join();
    workers.clear();
  }
  void work() {
    for (;;) {
      Client* c = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [this] { return workers_quit || !jobs.empty(); });
        if (jobs.empty()) return;
        c = jobs.front();
        jobs.pop_front();
      }
      c->conn.run_blocked();  // never throws: filter exceptions become answers
      {
        std::lock_guard<std::mutex> lock(mu);
        done.push_back(c);
      }
      std::uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(wake.get(), &one, sizeof one);
    }
  }

  void watch(Client& c, bool add) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (c.want_write ? EPOLLOUT : 0u);
    ev.data.fd = c.fd.get();
    epoll_ctl(epoll.get(), add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c.fd.get(), &ev);
    c.registered = true;
  }
  void unwatch(Client& c) {
    if (c.registered) epoll_ctl(epoll.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
    c.registered = false;
  }

  void destroy(int fd) {
    auto it = clients.find(fd);
    if (it == clients.end()) return;
    unwatch(*it->second);
    it->second->conn.close();
    clients.erase(it);  // closes the socket
    open.fetch_sub(1);
  }

  // Writes what can be written now. False when the socket is dead.
  bool flush(Client& c) {
    while (!c.out.empty()) {
      ssize_t n = send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.out.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      return false;
    }
    bool want = !c.out.empty();
    if (want != c.want_write && c.registered) {
      c.want_write = want;
      watch(c, false);
    } else {
      c.want_write = want;
    }
    return true;
  }

  // Runs the connection's packets until it needs input, blocks or ends.
  void advance(Client& c) {
    Connection::Step s = c.conn.step();
    c.out += c.conn.take_output();
    if (!flush(c)) return destroy(c.fd.get());
    switch (s) {
      case Connection::Step::kNeedInput: return;
      case Connection::Step::kClose:
        c.closing = true;
        if (c.out.empty()) destroy(c.fd.get());
        return;
      case Connection::Step::kBlocked:
        // Nothing more is read until the step is answered: the MTA waits
        // for it, and its socket buffer holds anything it sent after.
        unwatch(c);
        c.busy = true;
        c.last_progress = Clock::now();
        {
          std::lock_guard<std::mutex> lock(mu);
          jobs.push_back(&c);
        }
        cv.notify_one();
        return;
    }
  }

  void on_readable(Client& c) {
    const int fd = c.fd.get();
    if (c.closing) {  // only its last replies are still written: input is dropped
      char scratch[4096];
      ssize_t n = recv(fd, scratch, sizeof scratch, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) destroy(fd);
      return;
    }
    constexpr std::size_t kChunk = 64 * 1024, kRound = 1024 * 1024;
    std::size_t got_total = 0;
    bool eof = false;
    while (got_total < kRound) {
      char* to = c.conn.reader().prepare(kChunk);
      ssize_t n = recv(c.fd.get(), to, kChunk, 0);
      if (n > 0) {
        c.conn.reader().commit(static_cast<std::size_t>(n));
        got_total += static_cast<std::size_t>(n);
        if (static_cast<std::size_t>(n) < kChunk) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      eof = true;  // 0: the MTA closed; <0: the connection broke
      break;
    }
    if (got_total > 0) {
      c.last_input = Clock::now();
      if (!addr.unix_path) {
        // Delayed ACKs come back after every read: ACK now, so the MTA's
        // next small write is not held by Nagle.
        int one = 1;
        setsockopt(c.fd.get(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
      }
      advance(c);
    }
    // (advance may have destroyed c: look it up again)
    if (auto it = clients.find(fd); eof && it != clients.end() && !it->second->busy) destroy(fd);
  }

  void accept_all() {
    for (;;) {
      FileDescriptor fd(accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
      if (!fd) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) log().error("milter: accept: {}", std::strerror(errno));
        return;
      }
      if (open.load() >= opt.hard_connections) {
        auto now = Clock::now();
        if (now - last_refusal_log > std::chrono::minutes(1)) {
          log().warn("milter: {} connections open, the hard limit: new ones are closed at once", opt.hard_connections);
          last_refusal_log = now;
        }
        continue;  // fd closes here
      }
      if (!addr.unix_path) {
        int one = 1;
        setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      int raw = fd.get();
      auto c = std::make_unique<Client>(std::move(fd), factory, opt.max_packet);
      Client& ref = *c;
      clients.emplace(raw, std::move(c));
      open.fetch_add(1);
      watch(ref, true);
      // Its option negotiation is usually there already (over TCP, with
      // TCP_DEFER_ACCEPT, unless the MTA sent nothing for 5 s): read it now
      // rather than on the next wake-up.
      on_readable(ref);
    }
  }

  void on_finished() {
    std::uint64_t n = 0;
    [[maybe_unused]] ssize_t r = read(wake.get(), &n, sizeof n);
    std::deque<Client*> finished;
    {
      std::lock_guard<std::mutex> lock(mu);
      finished.swap(done);
    }
    for (Client* c : finished) {
      c->busy = false;
      if (c->closing) {
        destroy(c->fd.get());
        continue;
      }
      watch(*c, true);
      c->last_input = Clock::now();
      advance(*c);
    }
  }

  // Once a second: progress for long steps, idle connections closed.
  void tick() {
    auto now = Clock::now();
    std::vector<int> idle;
    for (auto& [fd, c] : clients) {
      if (c->busy) {
        if (now - c->last_progress >= opt.progress_interval && !c->closing) {
          append_packet(c->out, SMFIR_PROGRESS);
          c->last_progress = now;
          if (!flush(*c)) c->closing = true;  // destroyed when its step returns
        }
      } else if (now - c->last_input >= opt.idle_timeout) {
        idle.push_back(fd);
      }
    }
    for (int fd : idle) {
      Client& c = *clients.at(fd);
      log().warn("{}: nothing from the MTA for {} s; closing the connection{}", c.conn.filter() ? c.conn.filter()->id() : "milter",
                 opt.idle_timeout.count(), c.conn.in_message() ? " (its message is aborted)" : "");
      destroy(fd);
    }
  }

  void loop() {
    std::vector<epoll_event> events(256);
    auto next_tick = Clock::now() + std::chrono::seconds(1);
    bool listening = true;
    for (;;) {
      if (stopping.load() && listening) {
        epoll_ctl(epoll.get(), EPOLL_CTL_DEL, listener.get(), nullptr);
        listener.reset();
        if (addr.unix_path) unlink(addr.path.c_str());
        listening = false;
      }
      if (!listening) {
        bool any_busy = false;
        for (auto& [fd, c] : clients) any_busy = any_busy || c->busy;
        if (!any_busy) break;
      }
      int n = epoll_wait(epoll.get(), events.data(), static_cast<int>(events.size()), 200);
      if (n < 0 && errno != EINTR) {
        log().error("milter: epoll_wait: {}", std::strerror(errno));
        break;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (listening && fd == listener.get()) {
          accept_all();
          continue;
        }
        if (fd == wake.get()) {
          on_finished();
          continue;
        }
        auto it = clients.find(fd);
        if (it == clients.end() || it->second->busy) continue;
        Client& c = *it->second;
        if (events[i].events & EPOLLOUT) {
          if (!flush(c)) {
            destroy(fd);
            continue;
          }
          if (c.closing && c.out.empty()) {
            destroy(fd);
            continue;
          }
        }
        if (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c);
      }
      if (Clock::now() >= next_tick) {
        tick();
        next_tick = Clock::now() + std::chrono::seconds(1);
      }
    }
    // Every step answered: close what is left.
    std::vector<int> fds;
    for (auto& [fd, c] : clients) fds.push_back(fd);
    for (int fd : fds) destroy(fd);
  }
};

Engine::Engine(std::unique_ptr<Impl> impl, bool tcp) : impl_(std::move(impl)), tcp_(tcp) {}

Engine::~Engine() {
  if (impl_) impl_->stop_workers();
}

Result<std::unique_ptr<Engine>> Engine::listen(const std::string& socket, EngineOptions opt, FilterFactory factory) {
  auto addr = parse_address(socket);
  if (!addr.ok()) return addr.status();
  auto l = open_listener(addr.value(), socket);
  if (!l.ok()) return l.status();
  if (opt.workers == 0) opt.workers = 1;
  const bool tcp = !addr.value().unix_path;
  auto impl = std::make_unique<Impl>(std::move(l.value()), std::move(addr.value()), opt, std::move(factory));
  impl->epoll = FileDescriptor(epoll_create1(EPOLL_CLOEXEC));
  impl->wake = FileDescriptor(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!impl->epoll || !impl->wake) return Status::Internal("epoll/eventfd: " + std::string(std::strerror(errno)));
  for (int fd : {impl->listener.get(), impl->wake.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (epoll_ctl(impl->epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
      return Status::Internal("epoll_ctl: " + std::string(std::strerror(errno)));
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl), tcp));
}

void Engine::run() {
  Impl& m = *impl_;
  m.start_workers();
  m.loop();
  m.stop_workers();
}

std::size_t Engine::connections() const { return impl_->open.load(); }

void Engine::stop() {
  impl_->stopping = true;
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(impl_->wake.get(), &one, sizeof one);
}

}  // namespace spamgate::milter
