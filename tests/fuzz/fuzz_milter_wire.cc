// fuzz_milter_wire.cc - libFuzzer target: the byte stream an MTA writes to
// the milter socket, through the protocol state machine (Connection: packet
// framing, every command's decoder, macros, option negotiation, QUIT_NC,
// ABORT, the blocking-step hand-off) and back out through the reply
// encoders. Input: the first byte says where the stream is cut in two
// (as two reads would see it) and which steps block; the rest is the stream.
// Build as fuzz_message.cc says.
// Checked: nothing crashes or leaks; the replies are well-formed packets
// (framed, each within the size limit); nothing is answered after a close.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "milter/protocol/connection.h"
#include "milter/protocol/wire.h"

namespace {

using namespace spamgate::milter;

class FuzzFilter final : public spamgate::milter::Filter {
 public:
  explicit FuzzFilter(std::uint8_t mode) : mode_(mode) {}
  std::uint32_t protocol_wanted(std::uint32_t offered) override { return offered & (mode_ & 1 ? 0xfffffu : 0x400u); }
  std::uint32_t actions_wanted() override { return kActAddHeaders | kActChangeHeaders | kActQuarantine; }
  Answer connect(const ConnectInfo& c, const Macros& m) override {
    return c.hostname.size() + m.get("j").size() == 7 ? Answer::of(Answer::Kind::kTempfail) : Answer::next();
  }
  Answer helo(std::string_view, const Macros&) override { return Answer::next(); }
  Answer mail(const std::vector<std::string_view>& a, const Macros& m) override {
    if (a[0].size() == 3) return Answer::reply(Answer::Kind::kTempfail, "451", "4.7.1", std::string(m.get("{auth_authen}")));
    return Answer::next();
  }
  Answer rcpt(const std::vector<std::string_view>&, const Macros&) override { return Answer::next(); }
  Answer header(std::string_view n, std::string_view v, const Macros&) override {
    last_name_ = std::string(n);
    last_value_ = std::string(v);
    return Answer::next();
  }
  Answer end_of_headers(const Macros&) override { return Answer::next(); }
  Answer body(std::string_view c, const Macros&) override {
    return c.size() > 100 ? Answer::of(Answer::Kind::kSkip) : Answer::next();
  }
  Answer end_of_message(const Macros& m, Modifications& mods) override {
    mods.insert_header(0, last_name_, last_value_);
    mods.change_header(static_cast<std::uint32_t>(last_value_.size()), last_name_, m.get("i"));
    mods.add_header("X-Spam-Score", last_value_);
    mods.quarantine(last_value_);
    if (last_value_.size() % 3 == 1) return Answer::reply(Answer::Kind::kReject, "550", "5.7.1", last_value_);
    return Answer::next();
  }
  void abort() override {}
  bool may_block(char cmd, const Macros&) const override {
    return (mode_ & 2 && cmd == SMFIC_BODYEOB) || (mode_ & 4 && cmd == SMFIC_MAIL) || (mode_ & 8 && cmd == SMFIC_EOH);
  }
  Answer failure() override { return Answer::of(Answer::Kind::kTempfail); }
  std::string_view id() const override { return "fuzz"; }

 private:
  std::uint8_t mode_;
  std::string last_name_, last_value_;
};

constexpr std::size_t kMax = 4096;

void check_replies(const std::string& out) {
  PacketReader r(1 << 20);
  r.feed(out);
  for (;;) {
    auto p = r.next();
    if (!p.ok()) std::abort();
    if (!p.value()) break;
  }
  if (r.pending() != 0) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t mode = data[0];
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t cut = stream.empty() ? 0 : (static_cast<std::size_t>(mode) * 131) % (stream.size() + 1);
  Connection c([mode] { return std::make_unique<FuzzFilter>(mode); }, kMax);
  std::string out;
  bool closed = false;
  for (std::string_view part : {stream.substr(0, cut), stream.substr(cut)}) {
    if (closed) break;
    c.reader().feed(part);
    for (;;) {
      Connection::Step s = c.step();
      out += c.take_output();
      if (s == Connection::Step::kBlocked) {
        c.run_blocked();
        continue;
      }
      if (s == Connection::Step::kClose) closed = true;
      break;
    }
  }
  check_replies(out);
  if (closed && (c.step() != Connection::Step::kClose || c.has_output())) std::abort();
  return 0;
}
