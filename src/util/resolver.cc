// resolver.cc - Resolver on c-ares (see resolver.h).
//
// One c-ares channel per thread (a channel is not thread-safe), created on
// first use; a shared TTL cache behind a mutex. Lookups are driven by poll()
// on the channel's sockets until the answer, the per-lookup timeout or the
// caller's deadline, whichever comes first. A CircuitBreaker in front of the
// server: a lookup that got no answer within its own timeout is a failure,
// any answer (NXDOMAIN, NODATA, SERVFAIL included) a success; one cut short
// by the message's deadline says nothing about the server. While the
// breaker is open, lookups the cache cannot answer return kTimeout at once;
// once per back-off the lookup that comes first is also sent, as the probe,
// from a prober thread of the resolver's own (started on the first probe),
// so no message waits for it; its answer closes the breaker.
// DIAGNOSTICS: the breaker logs when it opens and closes; callers turn
// kTimeout/kServFail into TEMPERROR symbols.
#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "spamgate/metrics.h"
#include "spamgate/resolver.h"
#include "util/circuit_breaker.h"

namespace spamgate {

const char* rcode_name(DnsAnswer::Rcode r) {
  switch (r) {
    case DnsAnswer::Rcode::kOk: return "ok";
    case DnsAnswer::Rcode::kNxDomain: return "nxdomain";
    case DnsAnswer::Rcode::kNoData: return "nodata";
    case DnsAnswer::Rcode::kServFail: return "servfail";
    case DnsAnswer::Rcode::kTimeout: return "timeout";
    case DnsAnswer::Rcode::kError: return "error";
  }
  return "error";
}

namespace {

struct ChannelFree {
  void operator()(ares_channel c) const { ares_destroy(c); }
};
using Channel = std::unique_ptr<std::remove_pointer_t<ares_channel>, ChannelFree>;

// Reads the TTL of the first answer record of a raw DNS reply (0 if none).
std::uint32_t first_ttl(const unsigned char* buf, int len) {
  if (len < 12) return 0;
  int qd = (buf[4] << 8) | buf[5], an = (buf[6] << 8) | buf[7];
  const unsigned char* p = buf + 12;
  for (int i = 0; i < qd; ++i) {
    char* name = nullptr;
    long enc = 0;
    if (ares_expand_name(p, buf, len, &name, &enc) != ARES_SUCCESS) return 0;
    ares_free_string(name);
    p += enc + 4;
    if (p > buf + len) return 0;
  }
  if (an == 0) return 0;
  char* name = nullptr;
  long enc = 0;
  if (ares_expand_name(p, buf, len, &name, &enc) != ARES_SUCCESS) return 0;
  ares_free_string(name);
  p += enc;
  if (p + 10 > buf + len) return 0;
  return (std::uint32_t(p[4]) << 24) | (std::uint32_t(p[5]) << 16) | (std::uint32_t(p[6]) << 8) | p[7];
}

struct Pending {
  bool done = false;
  DnsAnswer answer;
  DnsType type;
};

void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
  auto* p = static_cast<Pending*>(arg);
  p->done = true;
  DnsAnswer& a = p->answer;
  switch (status) {
    case ARES_SUCCESS: break;
    case ARES_ENOTFOUND: a.rcode = DnsAnswer::Rcode::kNxDomain; return;
    case ARES_ENODATA: a.rcode = DnsAnswer::Rcode::kNoData; return;
    case ARES_ESERVFAIL: case ARES_EREFUSED: a.rcode = DnsAnswer::Rcode::kServFail; return;
    case ARES_ETIMEOUT:
      a.rcode = DnsAnswer::Rcode::kTimeout;
      Metrics::get().dns_timeout();
      return;
    default: a.rcode = DnsAnswer::Rcode::kError; return;
  }
  a.ttl = first_ttl(abuf, alen);
  if (p->type == DnsType::kA || p->type == DnsType::kAaaa) {
    hostent* host = nullptr;
    int r = p->type == DnsType::kA ? ares_parse_a_reply(abuf, alen, &host, nullptr, nullptr)
                                   : ares_parse_aaaa_reply(abuf, alen, &host, nullptr, nullptr);
    if (r != ARES_SUCCESS || host == nullptr) {
      a.rcode = DnsAnswer::Rcode::kNoData;
      return;
    }
    int family = p->type == DnsType::kA ? AF_INET : AF_INET6;
    for (char** addr = host->h_addr_list; addr != nullptr && *addr != nullptr; ++addr) {
      char text[INET6_ADDRSTRLEN];
      inet_ntop(family, *addr, text, sizeof text);
      a.records.emplace_back(text);
    }
    ares_free_hostent(host);
  } else if (p->type == DnsType::kMx) {
    ares_mx_reply* mx = nullptr;
    if (ares_parse_mx_reply(abuf, alen, &mx) != ARES_SUCCESS) {
      a.rcode = DnsAnswer::Rcode::kNoData;
      return;
    }
    std::vector<std::pair<unsigned short, std::string>> hosts;
    for (ares_mx_reply* m = mx; m != nullptr; m = m->next) hosts.emplace_back(m->priority, m->host);
    ares_free_data(mx);
    std::stable_sort(hosts.begin(), hosts.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto& h : hosts) a.records.push_back(std::move(h.second));
  } else if (p->type == DnsType::kPtr) {
    hostent* host = nullptr;
    unsigned char dummy[16] = {0};
    if (ares_parse_ptr_reply(abuf, alen, dummy, 4, AF_INET, &host) != ARES_SUCCESS || host == nullptr) {
      a.rcode = DnsAnswer::Rcode::kNoData;
      return;
    }
    if (host->h_name != nullptr) a.records.emplace_back(host->h_name);
    for (char** al = host->h_aliases; al != nullptr && *al != nullptr; ++al) a.records.emplace_back(*al);
    ares_free_hostent(host);
  } else {
    ares_txt_ext* txt = nullptr;
    if (ares_parse_txt_reply_ext(abuf, alen, &txt) != ARES_SUCCESS) {
      a.rcode = DnsAnswer::Rcode::kNoData;
      return;
    }
    for (ares_txt_ext* t = txt; t != nullptr; t = t->next) {
      std::string chunk(reinterpret_cast<const char*>(t->txt), t->length);
      if (t->record_start || a.records.empty()) a.records.push_back(chunk);
      else a.records.back() += chunk;
    }
    ares_free_data(txt);
  }
  a.rcode = a.records.empty() ? DnsAnswer::Rcode::kNoData : DnsAnswer::Rcode::kOk;
}

class CaresResolver final : public Resolver {
 public:
  explicit CaresResolver(DnsConfig cfg)
      : cfg_(std::move(cfg)),
        serial_(next_serial()),
        breaker_("dns server " + (cfg_.nameserver.empty() ? std::string("(system)") : cfg_.nameserver), "dns",
                 {cfg_.breaker_failures, cfg_.breaker_backoff_ms, cfg_.breaker_max_backoff_ms}) {}

  ~CaresResolver() override {
    {
      std::lock_guard lock(probe_mu_);
      stopping_ = true;
    }
    probe_cv_.notify_all();
    if (prober_.joinable()) prober_.join();  // waits for a probe in flight: at most timeout_ms
  }

  DnsAnswer lookup(std::string_view name, DnsType type, Deadline deadline) override {
    std::string key = cache_key(name, type);
    auto now = std::chrono::steady_clock::now();
    if (auto hit = cached(key, now)) return *hit;
    DnsAnswer a;
    if (now >= deadline || name.empty() || name.size() > 253) {
      a.rcode = now >= deadline ? DnsAnswer::Rcode::kTimeout : DnsAnswer::Rcode::kError;
      return a;
    }
    const CircuitBreaker::Admit admit = breaker_.admit();
    if (admit != CircuitBreaker::Admit::kGo) {
      // The server is not answering: no wait. The probe (this lookup, once
      // per back-off) runs on the prober thread, so no message waits for it.
      if (admit == CircuitBreaker::Admit::kProbe) start_probe(std::string(name), type);
      a.rcode = DnsAnswer::Rcode::kTimeout;
      return a;
    }
    return query(key, name, type, deadline, admit);
  }

 private:
  static std::string cache_key(std::string_view name, DnsType type) {
    static const char* const kKey[] = {"A:", "AAAA:", "TXT:", "MX:", "PTR:"};
    return std::string(kKey[static_cast<int>(type)]) + std::string(name);
  }

  // Asks the server (the breaker admitted it as `admit`), reports the outcome
  // to the breaker and caches the answer.
  DnsAnswer query(const std::string& key, std::string_view name, DnsType type, Deadline deadline,
                  CircuitBreaker::Admit admit) {
    auto now = std::chrono::steady_clock::now();
    ares_channel ch = channel();
    if (ch == nullptr) {
      breaker_.record(admit, CircuitBreaker::Outcome::kInconclusive);
      return DnsAnswer{};
    }
    Pending p;
    p.type = type;
    std::string n(name);
    static const int kType[] = {ns_t_a, ns_t_aaaa, ns_t_txt, ns_t_mx, ns_t_ptr};
    ares_query(ch, n.c_str(), ns_c_in, kType[static_cast<int>(type)], on_answer, &p);
    auto stop = std::min(deadline, now + std::chrono::milliseconds(cfg_.timeout_ms));
    while (!p.done) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(stop - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      ares_socket_t socks[ARES_GETSOCK_MAXNUM];
      int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
      pollfd fds[ARES_GETSOCK_MAXNUM];
      int n_fds = 0;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short ev = 0;
        if (ARES_GETSOCK_READABLE(bits, i)) ev |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(bits, i)) ev |= POLLOUT;
        if (ev == 0) continue;
        fds[n_fds++] = {socks[i], ev, 0};
      }
      int wait = static_cast<int>(std::min<long long>(left.count(), 50));
      int r = poll(fds, static_cast<nfds_t>(n_fds), wait);
      if (r > 0) {
        for (int i = 0; i < n_fds; ++i) {
          ares_process_fd(ch, (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) ? fds[i].fd : ARES_SOCKET_BAD,
                          (fds[i].revents & POLLOUT) ? fds[i].fd : ARES_SOCKET_BAD);
        }
      } else {
        ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // c-ares' own retransmit timers
      }
    }
    if (!p.done) {
      ares_cancel(ch);  // calls on_answer with ARES_ECANCELLED
      // Only a lookup that had its whole timeout tells the server is silent.
      breaker_.record(admit, stop < deadline ? CircuitBreaker::Outcome::kFailure
                                             : CircuitBreaker::Outcome::kInconclusive);
      DnsAnswer t;
      t.rcode = DnsAnswer::Rcode::kTimeout;
      return t;
    }
    const DnsAnswer::Rcode rc = p.answer.rcode;
    breaker_.record(admit, rc == DnsAnswer::Rcode::kTimeout ? CircuitBreaker::Outcome::kFailure
                           : rc == DnsAnswer::Rcode::kError ? CircuitBreaker::Outcome::kInconclusive
                                                            : CircuitBreaker::Outcome::kSuccess);
    store(key, p.answer, std::chrono::steady_clock::now());
    return p.answer;
  }

  // Hands the probe to the prober thread (started on the first probe).
  void start_probe(std::string name, DnsType type) {
    std::lock_guard lock(probe_mu_);
    if (stopping_) {
      breaker_.record(CircuitBreaker::Admit::kProbe, CircuitBreaker::Outcome::kInconclusive);
      return;
    }
    probe_ = {std::move(name), type};
    if (!prober_.joinable()) prober_ = std::thread([this] { probe_loop(); });
    probe_cv_.notify_one();
  }

  void probe_loop() {
    std::unique_lock lock(probe_mu_);
    for (;;) {
      probe_cv_.wait(lock, [this] { return stopping_ || probe_.has_value(); });
      if (stopping_) {
        if (probe_) breaker_.record(CircuitBreaker::Admit::kProbe, CircuitBreaker::Outcome::kInconclusive);
        return;
      }
      auto [name, type] = std::move(*probe_);
      probe_.reset();
      lock.unlock();
      const std::string key = cache_key(name, type);
      query(key, name, type, std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg_.timeout_ms) +
                                 std::chrono::milliseconds(1),  // its own timeout, not a deadline, ends it
            CircuitBreaker::Admit::kProbe);
      lock.lock();
    }
  }

  ares_channel channel() {
    // Keyed by a serial, not the address: a new resolver (after a reload) may
    // be allocated where an old one was, and must not inherit its channel.
    thread_local Channel ch;
    thread_local std::uint64_t owner = 0;
    if (ch && owner == serial_) return ch.get();
    ares_options opts{};
    opts.timeout = std::max(100, cfg_.timeout_ms / std::max(1, cfg_.tries));
    opts.tries = cfg_.tries;
    opts.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    ares_channel c = nullptr;
    if (ares_init_options(&c, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS) != ARES_SUCCESS) return nullptr;
    ch.reset(c);
    owner = serial_;
    if (!cfg_.nameserver.empty() && ares_set_servers_ports_csv(c, cfg_.nameserver.c_str()) != ARES_SUCCESS) {
      ch.reset();
      return nullptr;
    }
    return c;
  }

  std::optional<DnsAnswer> cached(const std::string& key, std::chrono::steady_clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return std::nullopt;
    if (it->second.expires <= now) {
      cache_.erase(it);
      return std::nullopt;
    }
    return it->second.answer;
  }

  void store(const std::string& key, const DnsAnswer& a, std::chrono::steady_clock::time_point now) {
    if (a.rcode == DnsAnswer::Rcode::kTimeout || a.rcode == DnsAnswer::Rcode::kError ||
        a.rcode == DnsAnswer::Rcode::kServFail)
      return;  // failures are not cached
    std::uint32_t ttl = a.ok() ? std::min<std::uint32_t>(a.ttl, 86400) : 300;
    if (ttl == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (cache_.size() >= cfg_.cache_entries) cache_.clear();  // crude bound; keeps memory fixed
    cache_[key] = Entry{a, now + std::chrono::seconds(ttl)};
  }

  struct Entry {
    DnsAnswer answer;
    std::chrono::steady_clock::time_point expires;
  };
  static std::uint64_t next_serial() {
    static std::atomic<std::uint64_t> n{0};
    return ++n;
  }

  DnsConfig cfg_;
  std::uint64_t serial_;
  CircuitBreaker breaker_;
  // The prober thread: one probe at a time (the breaker admits one).
  std::mutex probe_mu_;
  std::condition_variable probe_cv_;
  std::optional<std::pair<std::string, DnsType>> probe_;
  bool stopping_ = false;
  std::thread prober_;  // last: started after the rest, joined before it goes
  std::mutex mu_;
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace

Result<std::unique_ptr<Resolver>> make_resolver(const DnsConfig& cfg) {
  static std::once_flag once;
  static int init = ARES_SUCCESS;
  std::call_once(once, [] { init = ares_library_init(ARES_LIB_INIT_ALL); });
  if (init != ARES_SUCCESS) {
    return Status::Internal(std::string("c-ares: ") + ares_strerror(init));
  }
  if (!cfg.nameserver.empty()) {
    ares_channel raw = nullptr;
    if (ares_init(&raw) != ARES_SUCCESS) {
      return Status::Internal("c-ares: cannot create a channel");
    }
    Channel probe(raw);
    if (ares_set_servers_ports_csv(probe.get(), cfg.nameserver.c_str()) != ARES_SUCCESS) {
      return Status::InvalidArgument("bad nameserver '" + cfg.nameserver + "' (use ADDR or ADDR:PORT)");
    }
  }
  return std::unique_ptr<Resolver>(std::make_unique<CaresResolver>(cfg));
}

}  // namespace spamgate
