// milter.cc - libmilter glue: noexcept trampolines around Session, the
// signal/reload thread and the drain on shutdown (see milter.h).
//
// SIGTERM drain: libmilter's signal thread turns TERM/INT/HUP into an
// immediate stop after which its worker pool abandons every session waiting
// for the MTA (sendmail libmilter/worker.c), so messages in flight would be
// cut. We therefore define sigwait() ourselves (libmilter is linked
// statically, so its signal thread calls ours): on TERM/INT/HUP it first
// drains - new connections are answered 4xx, messages in flight finish, up to
// milter.drain_timeout - and only then hands the signal to libmilter.
//
// Each xxfi_* is a noexcept trampoline: the Session comes from
// smfi_getpriv; any exception is logged and answered with the configured
// on_internal_error action, never thrown across libmilter. xxfi_close may
// come without private data; xxfi_abort may come at any time.
// DIAGNOSTICS: info at start, reload and stop; error for a refused reload
// (with every file:line), for a failed callback, and for a drain timeout.
#include "milter/milter.h"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/syscall.h>
#include <systemd/sd-daemon.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "config/load.h"
#include "checks/bayes.h"
#include "checks/clamav.h"
#include "checks/clamav_engine.h"
#include "metrics/http_server.h"
#include "milter/session.h"
#include "spamgate/metrics.h"
#include "spamgate/snapshot.h"
#include "util/log.h"

namespace spamgate {
namespace {

std::unique_ptr<SnapshotHolder> g_holder;  // the only global: the snapshot holder
std::string g_config_path;
std::atomic<long> g_sessions{0};     // open connections
std::atomic<long> g_messages{0};     // messages between MAIL FROM and end/abort
std::atomic<long> g_in_callback{0};  // callbacks running right now
std::atomic<bool> g_draining{false};
std::atomic<long> g_conn_seq{0};
bool g_unix_socket = false;  // set once before smfi_main

Session* session_of(SMFICTX* ctx) { return static_cast<Session*>(smfi_getpriv(ctx)); }

sfsistat failure_status() {
  auto snap = g_holder ? g_holder->get() : nullptr;
  if (snap && snap->config.milter.on_internal_error == FailureAction::kTempfail) return SMFIS_TEMPFAIL;
  return SMFIS_ACCEPT;
}

// Runs `fn` on the session; on any exception logs and returns the failure action.
struct CallbackCount {
  CallbackCount() { ++g_in_callback; }
  ~CallbackCount() { --g_in_callback; }
};

// Keeps g_messages in step with the session's message state around a callback.
struct MessageCount {
  explicit MessageCount(const Session& s) : s_(s), before_(s.in_message()) {}
  ~MessageCount() {
    bool after = s_.in_message();
    if (after && !before_) ++g_messages;
    if (!after && before_) --g_messages;
  }
  const Session& s_;
  bool before_;
};

template <typename Fn>
sfsistat guarded(SMFICTX* ctx, const char* step, Fn&& fn) noexcept {
  CallbackCount running;
  try {
    Session* s = session_of(ctx);
    if (s == nullptr) {
      log().error("milter: {} without a session; answering with on_internal_error", step);
      return failure_status();
    }
    MessageCount counted(*s);
    return fn(*s);
  } catch (const std::exception& e) {
    try {
      log().error("milter: internal error in {}: {}", step, e.what());
    } catch (...) {
    }
    return failure_status();
  } catch (...) {
    return failure_status();
  }
}

std::string macro(SMFICTX* ctx, const char* name) {
  const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
  return v == nullptr ? std::string() : std::string(v);
}

// The session of this connection, created at the first callback (negotiate
// comes before connect). nullptr only when out of memory.
Session* ensure_session(SMFICTX* ctx) noexcept {
  Session* s = session_of(ctx);
  if (s != nullptr) return s;
  try {
    s = new Session(*g_holder, "c" + std::to_string(++g_conn_seq));
  } catch (...) {
    return nullptr;
  }
  smfi_setpriv(ctx, s);
  ++g_sessions;
  return s;
}

// SMFIS_NOREPLY where the step was negotiated as "no reply", else CONTINUE.
sfsistat quiet_continue(const Session& s, unsigned long nr_flag) {
  return (s.protocol_flags() & nr_flag) != 0 ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                      unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) noexcept {
  ensure_session(ctx);
  return guarded(ctx, "negotiate", [&](Session& s) -> sfsistat {
    *pf0 = f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE);
    // Only the steps we use. "No reply" (SMFIP_NR_*) for the steps that
    // cannot change anything saves a round trip each, but only on a unix
    // socket: over TCP the MTA's small unanswered writes then wait for delayed
    // ACKs (Nagle), measured at ~40 ms each, so there every step is answered.
    unsigned long want = SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC | SMFIP_SKIP;
    if (g_unix_socket) {  // (connect is answered: it says 4xx while draining)
      // (MAIL FROM is answered too: a held outbound sender gets 451 there)
      want |= SMFIP_NR_HELO | SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH;
    }
    *pf1 = f1 & want;
    *pf2 = 0;
    *pf3 = 0;
    s.set_protocol_flags(*pf1);
    s.set_leading_space((*pf1 & SMFIP_HDR_LEADSPC) != 0);
    return SMFIS_CONTINUE;
  });
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) noexcept {
  ensure_session(ctx);
  return guarded(ctx, "connect", [&](Session& sess) -> sfsistat {
    char ip[INET6_ADDRSTRLEN] = {0};
    // Local submission (sendmail, pickup: non_smtpd_milters) comes as a
    // connect from "localhost" 127.0.0.1 port 0; a TCP client never has
    // port 0 (XCLIENT keeps the real port).
    bool local = true;
    if (addr != nullptr && addr->sa_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(addr);
      inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
      local = in->sin_port == 0;
    } else if (addr != nullptr && addr->sa_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(addr);
      inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
      local = in6->sin6_port == 0;
    }
    sess.connect(hostname ? hostname : "", ip, local);
    if (g_draining.load()) {
      log().info("{}: connect from [{}] refused with 4xx: stopping", sess.conn_id(), ip);
      return SMFIS_TEMPFAIL;
    }
    log().debug("{}: connect from {} [{}] daemon={}", sess.conn_id(), hostname ? hostname : "", ip,
                macro(ctx, "{daemon_name}"));
    return quiet_continue(sess, SMFIP_NR_CONN);
  });
}

sfsistat on_helo(SMFICTX* ctx, char* helo) noexcept {
  return guarded(ctx, "helo", [&](Session& s) -> sfsistat {
    s.helo(helo ? helo : "");
    return quiet_continue(s, SMFIP_NR_HELO);
  });
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) noexcept {
  return guarded(ctx, "envfrom", [&](Session& s) -> sfsistat {
    if (auto refused = s.mail_from(argv && argv[0] ? argv[0] : "", macro(ctx, "{auth_authen}"), macro(ctx, "i"))) {
      smfi_setreply(ctx, const_cast<char*>("451"), const_cast<char*>("4.7.1"),
                    const_cast<char*>(escape_reply(*refused).c_str()));
      return SMFIS_TEMPFAIL;
    }
    return SMFIS_CONTINUE;
  });
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) noexcept {
  return guarded(ctx, "envrcpt", [&](Session& s) -> sfsistat {
    s.rcpt_to(argv && argv[0] ? argv[0] : "");
    return quiet_continue(s, SMFIP_NR_RCPT);
  });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) noexcept {
  return guarded(ctx, "header", [&](Session& s) -> sfsistat {
    s.header(name ? name : "", value ? value : "");
    return quiet_continue(s, SMFIP_NR_HDR);
  });
}

sfsistat on_eoh(SMFICTX* ctx) noexcept {
  return guarded(ctx, "eoh", [&](Session& s) -> sfsistat {
    s.end_of_headers();
    return quiet_continue(s, SMFIP_NR_EOH);
  });
}

sfsistat on_body(SMFICTX* ctx, unsigned char* data, size_t len) noexcept {
  return guarded(ctx, "body", [&](Session& s) -> sfsistat {
    // Past max_scan_bytes the rest of the body need not come to us.
    if (s.body(data, len) || (s.protocol_flags() & SMFIP_SKIP) == 0) return SMFIS_CONTINUE;
    s.body_skipped();
    return SMFIS_SKIP;
  });
}

class MilterSink final : public HeaderSink {
 public:
  explicit MilterSink(SMFICTX* ctx) : ctx_(ctx) {}
  bool change(const std::string& name, int index, const std::string* value) override {
    return smfi_chgheader(ctx_, const_cast<char*>(name.c_str()), index,
                          value ? const_cast<char*>(value->c_str()) : nullptr) == MI_SUCCESS;
  }
  bool add(const std::string& name, const std::string& value) override {
    return smfi_addheader(ctx_, const_cast<char*>(name.c_str()), const_cast<char*>(value.c_str())) == MI_SUCCESS;
  }
  bool insert(const std::string& name, int index, const std::string& value) override {
    return smfi_insheader(ctx_, index, const_cast<char*>(name.c_str()), const_cast<char*>(value.c_str())) ==
           MI_SUCCESS;
  }
  // libmilter reads the reply text as a format: escape_reply doubles '%'.
  bool reply(const std::string& rcode, const std::string& xcode, const std::string& text) override {
    std::string t = escape_reply(text);
    return smfi_setreply(ctx_, const_cast<char*>(rcode.c_str()), const_cast<char*>(xcode.c_str()),
                         const_cast<char*>(t.c_str())) == MI_SUCCESS;
  }
  bool quarantine(const std::string& reason) override {
    std::string r = escape_reply(reason);
    return smfi_quarantine(ctx_, const_cast<char*>(r.c_str())) == MI_SUCCESS;
  }

 private:
  SMFICTX* ctx_;
};

sfsistat on_eom(SMFICTX* ctx) noexcept {
  return guarded(ctx, "eom", [&](Session& s) -> sfsistat {
    MilterSink sink(ctx);
    switch (s.end_of_message(macro(ctx, "i"), sink)) {
      case EomAction::kTempfail: return SMFIS_TEMPFAIL;
      case EomAction::kReject: return SMFIS_REJECT;
      case EomAction::kAccept: break;
    }
    return SMFIS_CONTINUE;
  });
}

sfsistat on_abort(SMFICTX* ctx) noexcept {
  Session* s = session_of(ctx);
  if (s == nullptr) return SMFIS_CONTINUE;
  try {
    MessageCount counted(*s);
    s->abort();
  } catch (...) {
  }
  return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) noexcept {
  Session* s = session_of(ctx);  // may be null: close can come without negotiate
  if (s != nullptr) {
    if (s->in_message()) --g_messages;
    smfi_setpriv(ctx, nullptr);
    delete s;  // ~Session does not throw
    --g_sessions;
  }
  return SMFIS_CONTINUE;
}

std::mutex g_reload_mutex;  // one reload at a time (SIGUSR1 and the signature watch)

// At most two signature engines in memory: the one serving and the one being
// built. An engine retired by the previous reload is freed when the last
// message scanned with it ends; wait for that before building another.
void wait_for_retired_engines() {
  auto start = std::chrono::steady_clock::now();
  bool warned = false;
  while (ClamEngine::live() > 1) {
    auto waited = std::chrono::steady_clock::now() - start;
    if (!warned && waited > std::chrono::seconds(5)) {
      log().warn("reload waits for messages still scanned with the previous signatures ({} engines in memory)",
                 ClamEngine::live());
      warned = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// The rules' warnings (as `spamgate lint` prints them), the first few only:
// a generated file may have thousands.
void log_rule_warnings(const char* when, const Snapshot& s) {
  constexpr std::size_t kShown = 20;
  for (std::size_t i = 0; i < s.warnings.size() && i < kShown; ++i)
    log().warn("{}: {}:{}: warning: {}", when, s.warnings[i].file, s.warnings[i].line, s.warnings[i].message);
  if (s.warnings.size() > kShown)
    log().warn("{}: {} more rule warnings; `spamgate lint` lists them all", when, s.warnings.size() - kShown);
}

void log_engine(const char* what, const Snapshot& s) {
  if (!s.clamav) return;
  log().info("{}: {} signatures from {} database file(s), loaded in {:.0f} ms, canary passed", what,
             s.clamav->signature_count(), s.clamav->files().size(), s.clamav->load_ms());
}

void reload(const char* why) {
  std::lock_guard<std::mutex> lock(g_reload_mutex);
  wait_for_retired_engines();
  auto current = g_holder->get();
  std::vector<Diagnostic> diags;
  auto snap = load_snapshot(g_config_path, diags, {.network = true, .previous = current.get()});
  if (!snap.ok()) {
    Metrics::get().reload(true);
    log().error("reload ({}) refused, the old rules keep running: {}", why, snap.status().message());
    for (const Diagnostic& d : diags) log().error("reload: {}", d.str());
    return;
  }
  Metrics::get().reload(false);
  g_holder->set(snap.value());
  // The log level is the one setting of [log] a reload changes (the target
  // stays: the service's journal or file is opened once).
  if (const std::string& level = snap.value()->config.log_level; level != current->config.log_level) {
    log().info("reload: log level {} -> {}", current->config.log_level, level);
    log().set_level(spdlog::level::from_str(level));
  }
  log().info("reload ({}): {} rules from {} file(s) now in use", why, snap.value()->rule_count,
             snap.value()->rule_files.size());
  log_rule_warnings("reload", *snap.value());
  if (snap.value()->clamav != current->clamav) log_engine("reload: new signatures in use", *snap.value());
  current.reset();
}

// A background thread's loop state: it waits on cv_ between rounds and
// returns as soon as stop() is called.
class BackgroundLoop {
 public:
  void stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 protected:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

// Polls the signature files every [clamav] watch_seconds; a change that
// holds still for two seconds (an update being copied in) triggers a reload.
class SignatureWatch : public BackgroundLoop {
 public:
  void run() {
    std::string seen;
    if (auto s = g_holder->get(); s->clamav) seen = s->clamav->fingerprint();
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      int secs = g_holder->get()->config.clamav.watch_seconds;
      cv_.wait_for(lock, std::chrono::seconds(secs > 0 ? secs : 3600), [this] { return stop_; });
      if (stop_) return;
      auto snap = g_holder->get();
      if (!snap->clamav || snap->config.clamav.watch_seconds == 0) continue;
      std::string now = ClamEngine::fingerprint_of(snap->config.clamav);
      if (now == seen) continue;
      if (now == snap->clamav->fingerprint()) {  // already loaded (by SIGUSR1)
        seen = now;
        continue;
      }
      if (cv_.wait_for(lock, std::chrono::seconds(2), [this] { return stop_; })) return;
      if (ClamEngine::fingerprint_of(snap->config.clamav) != now) continue;  // still being written
      seen = now;
      snap.reset();
      lock.unlock();
      try {
        reload("signature files changed");
      } catch (const std::exception& e) {
        log().error("reload failed: {}", e.what());
      }
      lock.lock();
    }
  }
};

// What the memory watch and the metrics know about who holds memory.
std::string memory_consumers(const Snapshot& snap) {
  std::string out = fmt::format("messages in flight: {} holding {:.1f} MB", g_messages.load(),
                                static_cast<double>(Session::buffered_bytes()) / 1048576.0);
  if (snap.clamav)
    out += fmt::format("; clamav engine: {} signatures, {} long-message scans running (cap {})",
                       snap.clamav->signature_count(), large_scans_running(), snap.config.clamav.max_parallel_large_scans);
  for (const auto& c : snap.checks)
    if (const auto* b = dynamic_cast<const BayesCheck*>(c.get())) {
      Status err;
      if (auto st = b->store(err)) out += "; bayes: " + st->describe();
    }
  out += fmt::format("; caps: DNS cache {} entries, bayes copy {} tokens, {} MB kept per message",
                     snap.config.dns.cache_entries, snap.config.bayes.cache_max_tokens,
                     snap.config.limits.max_scan_bytes >> 20);
  return out;
}

// Logs resident memory every [memory] log_seconds (debug), and a warning
// naming the largest consumers we know of above [memory] warn_mb (once per
// crossing, then again every 10 minutes while it stays above).
// systemd's watchdog (WatchdogSec= in the unit): pings at half the interval
// while the process can still take the snapshot lock that every message and
// reload takes; a process stuck there is killed and restarted by systemd.
// Without WATCHDOG_USEC (no systemd, or no WatchdogSec) it returns at once.
class Watchdog : public BackgroundLoop {
 public:
  void run() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return;
    log().info("systemd watchdog: a ping every {} ms", usec / 2000);
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (cv_.wait_for(lock, std::chrono::microseconds(usec / 2), [this] { return stop_; })) return;
      if (g_holder->get() != nullptr) sd_notify(0, "WATCHDOG=1");
    }
  }
};

class MemoryWatch : public BackgroundLoop {
 public:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    std::chrono::steady_clock::time_point last_warn{};
    while (!stop_) {
      auto snap = g_holder->get();
      const MemoryConfig mc = snap->config.memory;
      int secs = mc.log_seconds > 0 ? mc.log_seconds : 60;
      snap.reset();
      if (cv_.wait_for(lock, std::chrono::seconds(secs), [this] { return stop_; })) return;
      snap = g_holder->get();
      const std::size_t rss = resident_bytes();
      const std::string who = memory_consumers(*snap);
      if (mc.log_seconds > 0) log().debug("memory: resident {:.1f} MB; {}", static_cast<double>(rss) / 1048576.0, who);
      auto now = std::chrono::steady_clock::now();
      if (rss > mc.warn_bytes && (last_warn == std::chrono::steady_clock::time_point{} ||
                                  now - last_warn > std::chrono::minutes(10))) {
        log().warn("memory: resident {:.1f} MB is above [memory] warn_mb ({} MB); {}", static_cast<double>(rss) / 1048576.0,
                   mc.warn_bytes >> 20, who);
        last_warn = now;
      } else if (rss <= mc.warn_bytes) {
        last_warn = {};
      }
    }
  }
};

std::string render_metrics() {
  Metrics::Gauges g;
  g.resident_bytes = static_cast<double>(resident_bytes());
  g.messages_in_flight = static_cast<double>(g_messages.load());
  auto snap = g_holder->get();
  if (snap->outbound) {
    std::vector<HoldInfo> holds;
    if (snap->outbound->holds(holds).ok()) g.held_accounts = static_cast<double>(holds.size());
  }
  return Metrics::get().render(g);
}

// Called in libmilter's signal thread (through sigwait below) before it stops.
void drain_before_stop(int sig) noexcept {
  try {
    g_draining = true;
    int secs = g_holder ? g_holder->get()->config.milter.drain_seconds : 0;
    log().info("stopping ({}): new connections get 4xx; waiting up to {} s for {} message(s) in flight",
               strsignal(sig), secs, g_messages.load());
    if (sig == SIGHUP) log().warn("SIGHUP stops a libmilter filter; use SIGUSR1 (systemctl reload) to reload");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(secs);
    while ((g_messages.load() > 0 || g_in_callback.load() > 0) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (g_messages.load() > 0) {
      log().error("drain timeout: {} message(s) still in flight are cut; Postfix applies milter_default_action",
                  g_messages.load());
    } else {
      log().info("drained: no message in flight");
    }
  } catch (...) {
  }
}

}  // namespace
}  // namespace spamgate

// libmilter's signal thread waits with sigwait() on {HUP, TERM, INT}; ours
// (the USR1 reloader) on {USR1}. This definition replaces libc's for the whole
// program (libmilter is linked statically) and waits exactly as libc does, but
// drains before it returns a stop signal to libmilter.
extern "C" int sigwait(const sigset_t* set, int* sig) {
  for (;;) {
    long s = syscall(SYS_rt_sigtimedwait, set, nullptr, nullptr, _NSIG / 8);
    if (s < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    int signo = static_cast<int>(s);
    if ((signo == SIGTERM || signo == SIGINT || signo == SIGHUP) && sigismember(set, SIGTERM) == 1) {
      spamgate::drain_before_stop(signo);
    }
    *sig = signo;
    return 0;
  }
}

namespace spamgate {

int run_milter(const std::string& config_path, bool quiet) {
  // Block the signals before any thread exists: libmilter's signal thread
  // (HUP, TERM, INT) and our reload thread (USR1) receive them with sigwait.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  g_config_path = config_path;
  std::vector<Diagnostic> diags;
  auto snap = load_snapshot(config_path, diags, {.network = true});
  for (const Diagnostic& d : diags) std::fprintf(stderr, "%s\n", d.str().c_str());
  if (!snap.ok()) {
    std::fprintf(stderr, "spamgate: cannot load %s: %s\n", config_path.c_str(), snap.status().message().c_str());
    return 2;
  }
  // Only the holder keeps the snapshot: a local reference would pin its
  // signature engine (up to 1 GB) after the first reload.
  g_holder = std::make_unique<SnapshotHolder>(snap.value());
  snap = Status::Internal("moved to the holder");
  auto first = g_holder->get();
  const Config cfg = first->config;
  const std::size_t rule_count = first->rule_count;
  first.reset();
  Status ls = init_logging(quiet ? "warn" : cfg.log_level, cfg.log_target);
  if (!ls.ok()) {
    std::fprintf(stderr, "spamgate: %s\n", ls.message().c_str());
    return 2;
  }

  smfiDesc desc{};
  desc.xxfi_name = const_cast<char*>("spamgate");
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE;
  desc.xxfi_connect = on_connect;
  desc.xxfi_helo = on_helo;
  desc.xxfi_envfrom = on_envfrom;
  desc.xxfi_envrcpt = on_envrcpt;
  desc.xxfi_header = on_header;
  desc.xxfi_eoh = on_eoh;
  desc.xxfi_body = on_body;
  desc.xxfi_eom = on_eom;
  desc.xxfi_abort = on_abort;
  desc.xxfi_close = on_close;
  desc.xxfi_negotiate = on_negotiate;

  const std::string socket = cfg.milter.socket;
  g_unix_socket = socket.rfind("unix:", 0) == 0 || socket.rfind("local:", 0) == 0;
  if (socket.rfind("unix:", 0) == 0 || socket.rfind("local:", 0) == 0) {
    unlink(socket.substr(socket.find(':') + 1).c_str());  // a stale socket from a crash
  }
  if (smfi_setconn(const_cast<char*>(socket.c_str())) == MI_FAILURE ||
      smfi_settimeout(cfg.milter.timeout_seconds) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) {
    log().critical("cannot set up the milter on {}", socket);
    return 1;
  }
  if (smfi_opensocket(1) == MI_FAILURE) {
    log().critical("cannot listen on {} (in use, or no permission?)", socket);
    return 1;
  }
  if (g_unix_socket) {
    // Owner and group may connect: add the MTA's user (postfix) to our group.
    std::string path = socket.substr(socket.find(':') + 1);
    if (chmod(path.c_str(), 0660) != 0) log().warn("cannot chmod 0660 {}: {}", path, std::strerror(errno));
  }

  std::atomic<bool> stopping{false};
  std::thread reloader([&stopping] {
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    while (true) {
      int sig = 0;
      if (sigwait(&usr1, &sig) != 0) continue;
      if (stopping.load()) return;
      try {
        reload("SIGUSR1");
      } catch (const std::exception& e) {
        log().error("reload failed: {}", e.what());
      }
    }
  });

  SignatureWatch watch;
  std::thread watcher([&watch] { watch.run(); });
  MemoryWatch memory;
  std::thread memory_thread([&memory] { memory.run(); });
  Watchdog watchdog;
  std::thread watchdog_thread([&watchdog] { watchdog.run(); });
  std::unique_ptr<MetricsServer> metrics;
  if (!cfg.metrics.listen.empty()) {
    auto m = MetricsServer::start(cfg.metrics.listen, render_metrics);
    if (m.ok()) {
      metrics = std::move(m.value());
      log().info("metrics: http://{}/metrics", cfg.metrics.listen);
    } else {
      log().error("{}; running without metrics", m.status().message());
    }
  }

  log().info("spamgate milter listening on {} ({} rules, threshold {})", socket, rule_count, cfg.threshold_text);
  log_engine("clamav", *g_holder->get());
  log_rule_warnings("rules", *g_holder->get());
  // systemd (Type=notify): Postfix, ordered after us, starts only now that
  // the socket answers. A no-op without NOTIFY_SOCKET.
  sd_notifyf(0, "READY=1\nSTATUS=listening on %s (%zu rules)", socket.c_str(), rule_count);
  int rc = smfi_main();
  sd_notify(0, "STOPPING=1");
  // A callback that was running when libmilter stopped still finishes (and
  // answers the MTA); give it a moment rather than cutting it mid-edit.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (g_in_callback.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (g_messages.load() == 0) log().info("stopped cleanly");
  else log().warn("stopped with {} message(s) cut", g_messages.load());
  stopping = true;
  pthread_kill(reloader.native_handle(), SIGUSR1);
  reloader.join();
  watch.stop();
  watcher.join();
  memory.stop();
  memory_thread.join();
  watchdog.stop();
  watchdog_thread.join();
  metrics.reset();
  log().flush();
  return rc == MI_SUCCESS ? 0 : 1;
}

}  // namespace spamgate
