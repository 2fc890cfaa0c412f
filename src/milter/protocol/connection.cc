// connection.cc - the milter protocol state machine (see connection.h).
// DIAGNOSTICS: warn for a protocol error (the connection is closed), error
// for a filter step that threw (answered with the failure action).
#include "milter/protocol/connection.h"

#include <algorithm>

#include "util/log.h"

namespace spamgate::milter {

// --- macros -------------------------------------------------------------------

int Macros::rank(char stage) {
  switch (stage) {
    case SMFIC_CONNECT: return 0;
    case SMFIC_HELO: return 1;
    case SMFIC_MAIL: return 2;
    case SMFIC_RCPT: return 3;
    case SMFIC_DATA: return 4;
    case SMFIC_HEADER: return 5;
    case SMFIC_EOH: return 6;
    case SMFIC_BODY: return 7;
    case SMFIC_BODYEOB: return 8;
    default: return 9;  // SMFIC_UNKNOWN and anything else: the latest
  }
}

void Macros::clear_from(char stage) {
  const int r = rank(stage);
  std::erase_if(stages_, [r](const Stage& s) { return rank(s.stage) >= r; });
}

void Macros::set(char stage, const std::vector<std::string_view>& pairs) {
  // A new MAIL's macros start a new message: the old message's go.
  if (stage == SMFIC_MAIL) clear_from(SMFIC_MAIL);
  else std::erase_if(stages_, [stage](const Stage& s) { return s.stage == stage; });
  Stage s{stage, {}};
  for (std::size_t i = 0; i + 1 < pairs.size(); i += 2) s.values.emplace_back(pairs[i], pairs[i + 1]);
  auto at = std::find_if(stages_.begin(), stages_.end(), [&](const Stage& o) { return rank(o.stage) > rank(stage); });
  stages_.insert(at, std::move(s));
}

std::string_view Macros::get(std::string_view name) const {
  auto bare = [](std::string_view n) {
    if (n.size() >= 2 && n.front() == '{' && n.back() == '}') n = n.substr(1, n.size() - 2);
    return n;
  };
  const std::string_view want = bare(name);
  for (auto s = stages_.rbegin(); s != stages_.rend(); ++s)
    for (const auto& [k, v] : s->values)
      if (bare(k) == want) return v;
  return {};
}

// --- modifications ------------------------------------------------------------

bool Modifications::add_header(std::string_view name, std::string_view value) {
  if ((actions_ & kActAddHeaders) == 0) return false;
  append_add_header(out_, name, value);
  return true;
}

bool Modifications::insert_header(std::uint32_t index, std::string_view name, std::string_view value) {
  if ((actions_ & kActAddHeaders) == 0) return false;
  append_insert_header(out_, index, name, value);
  return true;
}

bool Modifications::change_header(std::uint32_t index, std::string_view name, std::string_view value) {
  if ((actions_ & kActChangeHeaders) == 0) return false;
  append_change_header(out_, index, name, value);
  return true;
}

bool Modifications::quarantine(std::string_view reason) {
  if ((actions_ & kActQuarantine) == 0) return false;
  append_quarantine(out_, reason);
  return true;
}

// --- the connection -------------------------------------------------------------

Connection::Connection(FilterFactory factory, std::size_t max_data)
    : factory_(std::move(factory)), reader_(max_data) {
  new_filter();
}

Connection::~Connection() { close(); }

void Connection::new_filter() {
  try {
    filter_ = factory_();
  } catch (...) {
    filter_.reset();
  }
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  if (filter_ && in_message_) {
    try {
      filter_->abort();
    } catch (...) {
    }
  }
  in_message_ = false;
  filter_.reset();
}

Connection::Step Connection::step() {
  if (closed_) return Step::kClose;
  if (pending_cmd_ != 0) {
    if (!pending_done_) return Step::kBlocked;
    pending_cmd_ = 0;
    pending_done_ = false;
    pending_data_.clear();
    if (!pending_ok_) {
      close();
      return Step::kClose;
    }
  }
  for (;;) {
    auto p = reader_.next();
    if (!p.ok()) {
      protocol_error(0, p.status().message());
      close();
      return Step::kClose;
    }
    if (!p.value()) return Step::kNeedInput;
    const Packet pkt = *p.value();
    if (filter_ && negotiated_ && filter_->may_block(pkt.cmd, macros_)) {
      pending_cmd_ = pkt.cmd;
      pending_data_.assign(pkt.data);
      pending_ok_ = true;
      return Step::kBlocked;
    }
    if (!handle(pkt.cmd, pkt.data)) {
      close();
      return Step::kClose;
    }
  }
}

void Connection::run_blocked() {
  pending_ok_ = handle(pending_cmd_, pending_data_);
  pending_done_ = true;
}

void Connection::protocol_error(char cmd, const std::string& why) {
  close_reason_ = cmd == 0 ? why : std::string(command_name(cmd)) + ": " + why;
  try {
    log().warn("{}: milter protocol error, closing the connection: {}", filter_ ? filter_->id() : "milter",
               close_reason_);
  } catch (...) {
  }
}

bool Connection::no_reply(char cmd) const {
  switch (cmd) {
    case SMFIC_CONNECT: return (protocol_ & SMFIP_NR_CONN) != 0;
    case SMFIC_HELO: return (protocol_ & SMFIP_NR_HELO) != 0;
    case SMFIC_MAIL: return (protocol_ & SMFIP_NR_MAIL) != 0;
    case SMFIC_RCPT: return (protocol_ & SMFIP_NR_RCPT) != 0;
    case SMFIC_DATA: return (protocol_ & SMFIP_NR_DATA) != 0;
    case SMFIC_HEADER: return (protocol_ & SMFIP_NR_HDR) != 0;
    case SMFIC_EOH: return (protocol_ & SMFIP_NR_EOH) != 0;
    case SMFIC_BODY: return (protocol_ & SMFIP_NR_BODY) != 0;
    case SMFIC_UNKNOWN: return (protocol_ & SMFIP_NR_UNKN) != 0;
    default: return false;
  }
}

void Connection::answer(char cmd, const Answer& a) {
  if (no_reply(cmd)) return;  // the MTA does not wait for one (SMFIP_NR_*)
  using K = Answer::Kind;
  switch (a.kind) {
    case K::kContinue: append_packet(out_, SMFIR_CONTINUE); return;
    case K::kAccept: append_packet(out_, SMFIR_ACCEPT); return;
    case K::kSkip: append_packet(out_, (protocol_ & SMFIP_SKIP) != 0 ? SMFIR_SKIP : SMFIR_CONTINUE); return;
    case K::kReject:
    case K::kTempfail:
      if (!a.rcode.empty()) append_reply_code(out_, a.rcode, a.xcode, a.text);
      else append_packet(out_, a.kind == K::kReject ? SMFIR_REJECT : SMFIR_TEMPFAIL);
      return;
  }
}

// Runs one filter step; an exception becomes the filter's failure answer.
Answer Connection::dispatch(char cmd, std::string_view data, bool& ok) {
  Filter& f = *filter_;
  try {
    switch (cmd) {
      case SMFIC_CONNECT: {
        auto c = parse_connect(data);
        if (!c.ok()) break;
        return f.connect(c.value(), macros_);
      }
      case SMFIC_HELO: {
        auto s = split_strings(data);
        if (!s.ok()) break;
        return f.helo(s.value().empty() ? std::string_view() : s.value()[0], macros_);
      }
      case SMFIC_MAIL:
      case SMFIC_RCPT: {
        auto s = split_strings(data);
        if (!s.ok() || s.value().empty()) break;
        if (cmd == SMFIC_RCPT) return f.rcpt(s.value(), macros_);
        in_message_ = true;
        return f.mail(s.value(), macros_);
      }
      case SMFIC_HEADER: {
        auto h = parse_header(data);
        if (!h.ok()) break;
        return f.header(h.value().name, h.value().value, macros_);
      }
      case SMFIC_EOH: return f.end_of_headers(macros_);
      case SMFIC_BODY: return f.body(data, macros_);
      case SMFIC_BODYEOB: {
        if (!data.empty()) f.body(data, macros_);  // the last chunk may come with it
        Modifications mods(out_, actions_);
        in_message_ = false;
        return f.end_of_message(macros_, mods);
      }
      default: return Answer::next();
    }
  } catch (const std::exception& e) {
    try {
      log().error("{}: internal error in {}: {}", f.id(), command_name(cmd), e.what());
    } catch (...) {
    }
    return f.failure();
  } catch (...) {
    return f.failure();
  }
  protocol_error(cmd, "malformed data");
  ok = false;
  return Answer::next();
}

bool Connection::handle(char cmd, std::string_view data) {
  if (!filter_) {
    protocol_error(cmd, "no filter (out of memory)");
    return false;
  }
  switch (cmd) {
    case SMFIC_OPTNEG: {
      auto o = parse_optneg(data);
      if (!o.ok()) {
        protocol_error(cmd, o.status().message());
        return false;
      }
      if (o.value().version < 2) {
        protocol_error(cmd, "protocol version " + std::to_string(o.value().version) + " (at least 2 is needed)");
        return false;
      }
      protocol_ = filter_->protocol_wanted(o.value().protocol) & o.value().protocol;
      actions_ = filter_->actions_wanted() & o.value().actions;
      negotiated_ = true;
      append_packet(out_, SMFIC_OPTNEG,
                    encode_optneg({std::min<std::uint32_t>(o.value().version, 6), actions_, protocol_}));
      return true;
    }
    case SMFIC_QUIT: return false;
    case SMFIC_MACRO: {
      auto m = parse_macros(data);
      if (!m.ok()) {
        protocol_error(cmd, m.status().message());
        return false;
      }
      macros_.set(m.value().stage, m.value().pairs);
      return true;
    }
    default: break;
  }
  if (!negotiated_) {
    protocol_error(cmd, "before option negotiation");
    return false;
  }
  switch (cmd) {
    case SMFIC_ABORT:
      if (in_message_) filter_->abort();  // (Filter::abort does not throw)
      in_message_ = false;
      macros_.clear_from(SMFIC_MAIL);
      return true;
    case SMFIC_QUIT_NC:  // the MTA's connection ends, ours stays for the next one
      if (in_message_) filter_->abort();
      in_message_ = false;
      macros_.clear();
      new_filter();
      return true;
    case SMFIC_DATA:
    case SMFIC_UNKNOWN: answer(cmd, Answer::next()); return true;
    case SMFIC_CONNECT:
    case SMFIC_HELO:
    case SMFIC_MAIL:
    case SMFIC_RCPT:
    case SMFIC_HEADER:
    case SMFIC_EOH:
    case SMFIC_BODY:
    case SMFIC_BODYEOB: {
      bool ok = true;
      Answer a = dispatch(cmd, data, ok);
      if (!ok) return false;
      answer(cmd, a);
      return true;
    }
    default:
      protocol_error(cmd, std::string("unknown command '") + (cmd >= 0x20 && cmd < 0x7f ? cmd : '?') + "'");
      return false;
  }
}

}  // namespace spamgate::milter
