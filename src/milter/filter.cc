// filter.cc - the milter protocol's Filter (protocol/connection.h) over a
// Session: one per MTA connection, made by the engine's factory.
//
// Protocol and buffering only: what happens to a message is the Disposition
// the session applies at end of message. The counters the drain and the
// metrics read (Daemon::sessions, messages, in_callback) follow the session.
#include "milter/filter.h"

#include <chrono>
#include <utility>

#include "milter/session.h"
#include "util/log.h"

namespace spamgate {
namespace {

using milter::Answer;
using K = milter::Answer::Kind;

// Encodes a Disposition's edits as the protocol's modification packets; the
// reply is kept for the final answer.
class WireSink final : public HeaderSink {
 public:
  explicit WireSink(milter::Modifications& mods) : mods_(mods) {}
  bool change(const std::string& name, int index, const std::string* value) override {
    return index >= 0 && mods_.change_header(static_cast<std::uint32_t>(index), name, value ? *value : std::string());
  }
  bool add(const std::string& name, const std::string& value) override { return mods_.add_header(name, value); }
  bool insert(const std::string& name, int index, const std::string& value) override {
    return index >= 0 && mods_.insert_header(static_cast<std::uint32_t>(index), name, value);
  }
  bool reply(const std::string& rcode, const std::string& xcode, const std::string& text) override {
    rcode_ = rcode;
    xcode_ = xcode;
    text_ = text;
    return true;
  }
  bool quarantine(const std::string& reason) override { return mods_.quarantine(reason); }

  Answer final_answer(K kind) const { return Answer::reply(kind, rcode_, xcode_, text_); }

 private:
  milter::Modifications& mods_;
  std::string rcode_, xcode_, text_;
};

class SessionFilter final : public milter::Filter {
 public:
  SessionFilter(Daemon& d, std::size_t max_chunk)
      : d_(d), max_chunk_(max_chunk), s_(d.holder(), "c" + std::to_string(++d.conn_seq)) {
    ++d_.sessions;
  }
  ~SessionFilter() override {
    if (s_.in_message()) --d_.messages;
    --d_.sessions;
  }

  std::uint32_t protocol_wanted(std::uint32_t offered) override {
    // Only the steps we use; no reply for the steps that cannot change
    // anything (connect is answered: it says 4xx while draining or over the
    // cap; MAIL FROM too: a held outbound sender gets 451 there). Body
    // chunks go unanswered too: a reply per chunk is a round trip on every
    // message, and only spared the rest of a body past max_scan_bytes
    // (SMFIP_SKIP, still answered to an MTA that offers no NR_BODY).
    std::uint32_t want = SMFIP_NOUNKNOWN | SMFIP_NODATA | SMFIP_HDR_LEADSPC | SMFIP_SKIP | SMFIP_NR_HELO |
                         SMFIP_NR_RCPT | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY;
    const std::uint32_t got = want & offered;
    s_.set_protocol_flags(got);
    s_.set_leading_space((got & SMFIP_HDR_LEADSPC) != 0);
    return got;
  }
  std::uint32_t actions_wanted() override {
    return milter::kActAddHeaders | milter::kActChangeHeaders | milter::kActQuarantine;
  }

  Answer connect(const milter::ConnectInfo& c, const milter::Macros& m) override {
    return step([&] {
      // Local submission (sendmail, pickup: non_smtpd_milters) comes as a
      // connect from "localhost" 127.0.0.1 port 0; a TCP client never has
      // port 0 (XCLIENT keeps the real port).
      const bool inet = c.family == SMFIA_INET || c.family == SMFIA_INET6;
      const bool local = !inet || c.port == 0;
      const std::string ip = inet ? c.address : std::string();
      s_.connect(c.hostname, ip, local);
      if (d_.draining.load()) {
        log().info("{}: connect from [{}] refused with 4xx: stopping", s_.conn_id(), ip);
        return Answer::of(K::kTempfail);
      }
      if (const long cap = d_.max_connections(); cap > 0 && d_.sessions.load() > cap) {
        d_.note_refused_over_cap(cap);
        return Answer::of(K::kTempfail);
      }
      log().debug("{}: connect from {} [{}] daemon={}", s_.conn_id(), c.hostname, ip, m.get("{daemon_name}"));
      return Answer::next();
    });
  }
  Answer helo(std::string_view name, const milter::Macros&) override {
    return step([&] {
      s_.helo(name);
      return Answer::next();
    });
  }
  Answer mail(const std::vector<std::string_view>& args, const milter::Macros& m) override {
    return step([&] {
      const bool on_worker = std::exchange(mail_blocks_, false);
      body_failed_ = false;
      if (auto refused = s_.mail_from(args[0], m.get("{auth_authen}"), m.get("i"), on_worker))
        return Answer::reply(K::kTempfail, "451", "4.7.1", *refused);
      return Answer::next();
    });
  }
  Answer rcpt(const std::vector<std::string_view>& args, const milter::Macros&) override {
    return step([&] {
      s_.rcpt_to(args[0]);
      return Answer::next();
    });
  }
  Answer header(std::string_view name, std::string_view value, const milter::Macros&) override {
    return step([&] {
      s_.header(name, value);
      return Answer::next();
    });
  }
  Answer end_of_headers(const milter::Macros&) override {
    return step([&] {
      s_.end_of_headers();
      return Answer::next();
    });
  }
  Answer body(std::string_view chunk, const milter::Macros&) override {
    // With SMFIP_NR_BODY the MTA reads no answer to a body chunk: a chunk
    // that fails is remembered and answered at end of message instead.
    struct Remember {
      bool& failed;
      bool done = false;
      ~Remember() { failed = failed || !done; }
    } remember{body_failed_};
    Answer a = step([&] {
      // Past max_scan_bytes the rest of the body need not come to us: an MTA
      // that waits for body replies is told to skip it; one that does not
      // (SMFIP_NR_BODY) sends it all, and it is counted, not kept.
      const unsigned long flags = s_.protocol_flags();
      if (s_.body(reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size()) || (flags & SMFIP_SKIP) == 0 ||
          (flags & SMFIP_NR_BODY) != 0)
        return Answer::next();
      s_.body_skipped();
      return Answer::of(K::kSkip);
    });
    remember.done = true;
    return a;
  }
  Answer end_of_message(const milter::Macros& m, milter::Modifications& mods) override {
    if (std::exchange(body_failed_, false)) {
      log().error("{}: a body chunk failed earlier: the message gets the internal-error answer", s_.conn_id());
      return step([&] {
        s_.abort();
        return failure();
      });
    }
    return step([&] {
      WireSink sink(mods);
      switch (s_.end_of_message(m.get("i"), sink)) {
        case EomAction::kTempfail: return sink.final_answer(K::kTempfail);
        case EomAction::kReject: return sink.final_answer(K::kReject);
        case EomAction::kAccept: break;
      }
      return Answer::next();
    });
  }
  void abort() override {
    body_failed_ = false;
    try {
      step([&] {
        s_.abort();
        return Answer::next();
      });
    } catch (...) {
    }
  }
  bool may_block(char cmd, const milter::Macros& m) const override {
    switch (cmd) {
      case SMFIC_BODYEOB: return true;
      case SMFIC_EOH: return s_.end_of_headers_may_block();
      case SMFIC_BODY: return s_.body_may_block(max_chunk_);
      // The outbound guard reads its store (Redis, LMDB), for outgoing mail
      // only: inbound mail's MAIL FROM runs on the loop.
      case SMFIC_MAIL: return mail_blocks_ = s_.mail_from_may_block(m.get("{auth_authen}"));
      default: return false;
    }
  }
  Answer failure() override {
    auto snap = d_.holder().get();
    if (snap && snap->config.milter.on_internal_error == FailureAction::kTempfail) return Answer::of(K::kTempfail);
    return Answer::of(K::kAccept);
  }
  std::string_view id() const override { return s_.conn_id(); }

 private:
  // Runs one step, keeping the daemon's counters in step with the session.
  template <typename Fn>
  Answer step(Fn&& fn) {
    struct Count {
      Daemon& d;
      const Session& s;
      bool before;
      Count(Daemon& dd, const Session& ss) : d(dd), s(ss), before(ss.in_message()) { ++d.in_callback; }
      ~Count() {
        const bool after = s.in_message();
        if (after && !before) ++d.messages;
        if (!after && before) --d.messages;
        --d.in_callback;
      }
    } count(d_, s_);
    return fn();
  }

  Daemon& d_;
  std::size_t max_chunk_;
  mutable bool mail_blocks_ = false;  // may_block said MAIL runs on a worker
  bool body_failed_ = false;          // a body chunk threw (answered at end of message)
  Session s_;
};

}  // namespace

milter::FilterFactory session_filters(Daemon& daemon, std::size_t max_chunk) {
  return [&daemon, max_chunk]() -> std::unique_ptr<milter::Filter> {
    return std::make_unique<SessionFilter>(daemon, max_chunk);
  };
}

}  // namespace spamgate
