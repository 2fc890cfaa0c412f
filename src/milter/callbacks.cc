// callbacks.cc - libmilter's xxfi_* callbacks: noexcept trampolines
// around Session (see daemon.h).
//
// Each xxfi_* gets the Session from smfi_getpriv; any exception is logged
// and answered with the configured on_internal_error action, never thrown
// across libmilter. xxfi_close may come without private data; xxfi_abort may
// come at any time. Protocol and buffering only: what happens to a message
// is the Disposition the session applies.
#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>

#include "milter/daemon.h"
#include "milter/session.h"
#include "util/log.h"

namespace spamgate {
namespace {

// The daemon run_milter() set up (callbacks run only while it serves).
Daemon& serving() { return *current_daemon(); }

Session* session_of(SMFICTX* ctx) { return static_cast<Session*>(smfi_getpriv(ctx)); }

sfsistat failure_status() {
  auto snap = serving().holder().get();
  if (snap && snap->config.milter.on_internal_error == FailureAction::kTempfail) return SMFIS_TEMPFAIL;
  return SMFIS_ACCEPT;
}

// Runs `fn` on the session; on any exception logs and returns the failure action.
struct CallbackCount {
  CallbackCount() { ++serving().in_callback; }
  ~CallbackCount() { --serving().in_callback; }
};

// Keeps the daemon's message count in step with the session's message state around a callback.
struct MessageCount {
  explicit MessageCount(const Session& s) : s_(s), before_(s.in_message()) {}
  ~MessageCount() {
    bool after = s_.in_message();
    if (after && !before_) ++serving().messages;
    if (!after && before_) --serving().messages;
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
    s = new Session(serving().holder(), "c" + std::to_string(++serving().conn_seq));
  } catch (...) {
    return nullptr;
  }
  smfi_setpriv(ctx, s);
  ++serving().sessions;
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
    if (serving().unix_socket()) {  // (connect is answered: it says 4xx while draining)
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
    if (serving().draining.load()) {
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
    if (s->in_message()) --serving().messages;
    smfi_setpriv(ctx, nullptr);
    delete s;  // ~Session does not throw
    --serving().sessions;
  }
  return SMFIS_CONTINUE;
}

}  // namespace

smfiDesc milter_description() {
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

  return desc;
}

}  // namespace spamgate
