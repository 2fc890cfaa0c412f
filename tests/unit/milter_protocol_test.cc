// The milter protocol module (src/milter/protocol/): packets, the connection
// state machine against a scripted MTA, and the engine over real sockets.
// The filter here records what the connection hands it; the MTA side is
// built packet by packet as Postfix's milter8.c writes them.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

#include "milter/protocol/connection.h"
#include "milter/protocol/engine.h"
#include "milter/protocol/wire.h"

namespace spamgate::milter {
namespace {

std::string u32(std::uint32_t v) {
  v = htonl(v);
  return std::string(reinterpret_cast<const char*>(&v), 4);
}

std::string packet(char cmd, std::string_view data = {}) {
  std::string out;
  append_packet(out, cmd, data);
  return out;
}

std::string optneg(std::uint32_t version = 6, std::uint32_t actions = 0x1ff, std::uint32_t protocol = 0x1fffff) {
  return packet(SMFIC_OPTNEG, u32(version) + u32(actions) + u32(protocol));
}

std::string strings(std::initializer_list<std::string_view> parts) {
  std::string d;
  for (auto p : parts) {
    d.append(p);
    d.push_back('\0');
  }
  return d;
}

std::string macro(char stage, std::initializer_list<std::string_view> pairs) {
  return packet(SMFIC_MACRO, std::string(1, stage) + strings(pairs));
}

std::string connect_packet(std::string_view host, std::string_view ip, std::uint16_t port) {
  std::string d = strings({host});
  d.push_back(SMFIA_INET);
  d.push_back(static_cast<char>(port >> 8));
  d.push_back(static_cast<char>(port & 0xff));
  d.append(ip);
  d.push_back('\0');
  return packet(SMFIC_CONNECT, d);
}

// The replies in `bytes`, as (command, data) pairs.
std::vector<std::pair<char, std::string>> replies(const std::string& bytes) {
  PacketReader r(1 << 20);
  r.feed(bytes);
  std::vector<std::pair<char, std::string>> out;
  for (;;) {
    auto p = r.next();
    EXPECT_TRUE(p.ok());
    if (!p.ok() || !p.value()) break;
    out.emplace_back(p.value()->cmd, std::string(p.value()->data));
  }
  EXPECT_EQ(r.pending(), 0u);
  return out;
}

std::string commands(const std::vector<std::pair<char, std::string>>& rs) {
  std::string s;
  for (auto& [c, d] : rs) s.push_back(c);
  return s;
}

// What a test wants the filter to do, and what it saw.
struct Script {
  std::uint32_t protocol = SMFIP_NR_HDR | SMFIP_SKIP | SMFIP_HDR_LEADSPC;
  std::uint32_t actions = kActAddHeaders | kActChangeHeaders | kActQuarantine;
  Answer at_mail, at_eom;
  bool skip_body = false, throw_at_helo = false, block_eom = false;
  std::chrono::milliseconds eom_sleep{0};
  std::function<void(Modifications&)> edits;
  // seen
  std::vector<std::string> calls;
  int made = 0, destroyed = 0;
};

class RecordingFilter final : public Filter {
 public:
  explicit RecordingFilter(Script& s) : s_(s), n_(++s.made) {}
  ~RecordingFilter() override { ++s_.destroyed; }
  std::uint32_t protocol_wanted(std::uint32_t) override { return s_.protocol; }
  std::uint32_t actions_wanted() override { return s_.actions; }
  Answer connect(const ConnectInfo& c, const Macros& m) override {
    rec("connect " + c.hostname + " " + c.address + ":" + std::to_string(c.port) + " daemon=" +
        std::string(m.get("daemon_name")));
    return Answer::next();
  }
  Answer helo(std::string_view name, const Macros&) override {
    if (s_.throw_at_helo) throw std::runtime_error("boom");
    rec("helo " + std::string(name));
    return Answer::next();
  }
  Answer mail(const std::vector<std::string_view>& a, const Macros& m) override {
    rec("mail " + std::string(a[0]) + " auth=" + std::string(m.get("{auth_authen}")) + " i=" + std::string(m.get("i")));
    return s_.at_mail;
  }
  Answer rcpt(const std::vector<std::string_view>& a, const Macros&) override {
    rec("rcpt " + std::string(a[0]));
    return Answer::next();
  }
  Answer header(std::string_view n, std::string_view v, const Macros&) override {
    rec("header " + std::string(n) + ":" + std::string(v));
    return Answer::next();
  }
  Answer end_of_headers(const Macros&) override {
    rec("eoh");
    return Answer::next();
  }
  Answer body(std::string_view chunk, const Macros&) override {
    rec("body " + std::string(chunk));
    return s_.skip_body ? Answer::of(Answer::Kind::kSkip) : Answer::next();
  }
  Answer end_of_message(const Macros& m, Modifications& mods) override {
    if (s_.eom_sleep.count() > 0) std::this_thread::sleep_for(s_.eom_sleep);
    rec("eom i=" + std::string(m.get("i")));
    if (s_.edits) s_.edits(mods);
    return s_.at_eom;
  }
  void abort() override { rec("abort"); }
  bool may_block(char cmd, const Macros&) const override { return s_.block_eom && cmd == SMFIC_BODYEOB; }
  Answer failure() override { return Answer::of(Answer::Kind::kTempfail); }
  std::string_view id() const override { return "t"; }

 private:
  void rec(std::string what) { s_.calls.push_back("#" + std::to_string(n_) + " " + what); }
  Script& s_;
  int n_;
};

FilterFactory factory(Script& s) {
  return [&s] { return std::make_unique<RecordingFilter>(s); };
}

// One message as Postfix sends it (macros before their commands).
std::string message(std::string_view queue_id = "4ABC") {
  return macro(SMFIC_MAIL, {"i", queue_id, "{auth_authen}", "alice"}) + packet(SMFIC_MAIL, strings({"<a@example.org>", "SIZE=10"})) +
         packet(SMFIC_RCPT, strings({"<b@example.net>"})) + packet(SMFIC_HEADER, strings({"Subject", " hi"})) +
         packet(SMFIC_EOH) + packet(SMFIC_BODY, "body\r\n") + macro(SMFIC_BODYEOB, {"i", queue_id}) +
         packet(SMFIC_BODYEOB);
}

std::string greeting() {
  return optneg() + macro(SMFIC_CONNECT, {"{daemon_name}", "smtpd"}) + connect_packet("mx.example", "192.0.2.7", 2525) +
         packet(SMFIC_HELO, strings({"mx.example"}));
}

// Feeds `in` to a connection and returns what it answered.
std::string talk(Connection& c, const std::string& in, Connection::Step want = Connection::Step::kNeedInput) {
  c.reader().feed(in);
  EXPECT_EQ(c.step(), want);
  return c.take_output();
}

TEST(MilterWire, FramesAPacketFedOneByteAtATime) {
  std::string bytes = packet(SMFIC_HEADER, strings({"Subject", "x"}));
  PacketReader r(100);
  for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
    r.feed(bytes.substr(i, 1));
    auto p = r.next();
    ASSERT_TRUE(p.ok());
    EXPECT_FALSE(p.value().has_value()) << "complete after " << i + 1 << " bytes";
  }
  r.feed(bytes.substr(bytes.size() - 1));
  auto p = r.next();
  ASSERT_TRUE(p.ok() && p.value());
  EXPECT_EQ(p.value()->cmd, SMFIC_HEADER);
  auto h = parse_header(p.value()->data);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h.value().name, "Subject");
  EXPECT_EQ(h.value().value, "x");
}

TEST(MilterWire, RefusesOversizeAndEmptyPackets) {
  PacketReader big(10);
  big.feed(u32(12) + "B");
  EXPECT_FALSE(big.next().ok());
  PacketReader zero(10);
  zero.feed(u32(0));
  EXPECT_FALSE(zero.next().ok());
  PacketReader fits(10);
  fits.feed(packet(SMFIC_BODY, std::string(10, 'x')));
  auto p = fits.next();
  ASSERT_TRUE(p.ok() && p.value());
  EXPECT_EQ(p.value()->data.size(), 10u);
}

TEST(MilterWire, MalformedCommandDataIsAnErrorNotACrash) {
  EXPECT_FALSE(parse_optneg("short").ok());
  EXPECT_FALSE(parse_header(strings({"OnlyName"})).ok());
  EXPECT_FALSE(parse_header("Name\0value-without-nul").ok());
  EXPECT_FALSE(parse_connect("host-without-nul").ok());
  EXPECT_FALSE(parse_connect(std::string("h\0" "4", 3)).ok());            // no port
  EXPECT_FALSE(parse_connect(std::string("h\0" "4\x01\x02" "1.2", 7)).ok());  // address without NUL
  EXPECT_FALSE(parse_macros("").ok());
  auto unknown = parse_connect(std::string("h\0U", 3));
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown.value().family, SMFIA_UNKNOWN);
}

TEST(MilterWire, ReplyTextIsMadeSafeForTheWire) {
  EXPECT_EQ(reply_text_for_wire("100% spam"), "100%% spam");
  EXPECT_EQ(reply_text_for_wire("a\r\nb"), "a  b");
  EXPECT_EQ(reply_text_for_wire(std::string(600, 'x')).size(), 500u);
  std::string out;
  append_reply_code(out, "550", "5.7.1", "bad\nthing");
  auto r = replies(out);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].first, SMFIR_REPLYCODE);
  EXPECT_EQ(r[0].second, std::string("550 5.7.1 bad thing\0", 20));
}

TEST(MilterConnection, NegotiatesOnlyWhatBothSidesOffer) {
  Script s;
  s.protocol = SMFIP_NR_HDR | SMFIP_SKIP | SMFIP_NR_BODY;
  s.actions = kActAddHeaders | kActQuarantine;
  Connection c(factory(s), 1 << 20);
  auto r = replies(talk(c, optneg(6, kActAddHeaders | kActChangeHeaders, SMFIP_NR_HDR | SMFIP_SKIP)));
  ASSERT_EQ(r.size(), 1u);
  ASSERT_EQ(r[0].first, SMFIC_OPTNEG);
  auto o = parse_optneg(r[0].second);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o.value().version, 6u);
  EXPECT_EQ(o.value().actions, kActAddHeaders);               // quarantine not offered by the MTA
  EXPECT_EQ(o.value().protocol, SMFIP_NR_HDR | SMFIP_SKIP);  // NR_BODY not offered
}

TEST(MilterConnection, AnOlderMtaGetsItsOwnVersionAVersionOneMtaIsRefused) {
  Script s;
  Connection old(factory(s), 1 << 20);
  auto r = replies(talk(old, optneg(2)));
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(parse_optneg(r[0].second).value().version, 2u);
  Connection ancient(factory(s), 1 << 20);
  EXPECT_TRUE(talk(ancient, optneg(1), Connection::Step::kClose).empty());
  EXPECT_NE(ancient.close_reason().find("version 1"), std::string::npos);
}

TEST(MilterConnection, AMessageGetsOneReplyPerStepExceptNoReplySteps) {
  Script s;  // NR_HDR negotiated: headers unanswered
  Connection c(factory(s), 1 << 20);
  auto r = replies(talk(c, greeting() + message()));
  // OPTNEG, CONNECT, HELO, MAIL, RCPT, (no HEADER), EOH, BODY, EOM
  EXPECT_EQ(commands(r), "Occcccc" "c");
  EXPECT_EQ(s.calls, (std::vector<std::string>{"#1 connect mx.example 192.0.2.7:2525 daemon=smtpd", "#1 helo mx.example",
                                               "#1 mail <a@example.org> auth=alice i=4ABC", "#1 rcpt <b@example.net>",
                                               "#1 header Subject: hi", "#1 eoh", "#1 body body\r\n", "#1 eom i=4ABC"}));
}

TEST(MilterConnection, EndOfMessageSendsTheEditsThenTheAnswer) {
  Script s;
  s.edits = [](Modifications& m) {
    EXPECT_TRUE(m.insert_header(0, "X-Spam-Technical-Details", "first"));
    EXPECT_TRUE(m.change_header(2, "Subject", "[SPAM] - hi"));
    EXPECT_TRUE(m.change_header(1, "X-Spam-Flag", ""));  // delete the first X-Spam-Flag
    EXPECT_TRUE(m.add_header("X-Spam-Score", "7.1"));
    EXPECT_TRUE(m.quarantine("held: 100% spam"));
  };
  Connection c(factory(s), 1 << 20);
  talk(c, greeting());
  auto r = replies(talk(c, message()));
  EXPECT_EQ(commands(r), std::string("cccc") + SMFIR_INSHEADER + SMFIR_CHGHEADER + SMFIR_CHGHEADER + SMFIR_ADDHEADER +
                             SMFIR_QUARANTINE + SMFIR_CONTINUE);
  EXPECT_EQ(r[4].second, u32(0) + strings({"X-Spam-Technical-Details", "first"}));
  EXPECT_EQ(r[5].second, u32(2) + strings({"Subject", "[SPAM] - hi"}));
  EXPECT_EQ(r[6].second, u32(1) + strings({"X-Spam-Flag", ""}));
  EXPECT_EQ(r[7].second, strings({"X-Spam-Score", "7.1"}));
  EXPECT_EQ(r[8].second, strings({"held: 100%% spam"}));
}

TEST(MilterConnection, EditsTheMtaDidNotAllowAreNotSent) {
  Script s;
  bool changed = true, quarantined = true;
  s.edits = [&](Modifications& m) {
    changed = m.change_header(1, "Subject", "x");
    quarantined = m.quarantine("why");
  };
  Connection c(factory(s), 1 << 20);
  talk(c, optneg(6, kActAddHeaders));
  auto r = replies(talk(c, message()));
  EXPECT_FALSE(changed);
  EXPECT_FALSE(quarantined);
  EXPECT_EQ(commands(r), "ccccc");
}

TEST(MilterConnection, RejectAndTempfailCarryTheExactReply) {
  Script s;
  s.at_eom = Answer::reply(Answer::Kind::kReject, "550", "5.7.1", "Your email was rejected because it contains the Eicar-Test-Signature");
  s.at_mail = Answer::of(Answer::Kind::kTempfail);
  Connection c(factory(s), 1 << 20);
  talk(c, greeting());
  auto first = replies(talk(c, macro(SMFIC_MAIL, {"i", "Q1"}) + packet(SMFIC_MAIL, strings({"<x@y>"}))));
  EXPECT_EQ(commands(first), std::string(1, SMFIR_TEMPFAIL));
  s.at_mail = Answer::next();
  auto r = replies(talk(c, packet(SMFIC_ABORT) + message()));
  ASSERT_EQ(r.back().first, SMFIR_REPLYCODE);
  EXPECT_EQ(r.back().second, "550 5.7.1 Your email was rejected because it contains the Eicar-Test-Signature" + std::string(1, '\0'));
}

TEST(MilterConnection, SkipIsSentOnlyWhenTheMtaOfferedIt) {
  Script s;
  s.skip_body = true;
  Connection with(factory(s), 1 << 20);
  talk(with, optneg());
  EXPECT_EQ(commands(replies(talk(with, message()))), std::string("cccs") + "c");
  Connection without(factory(s), 1 << 20);
  talk(without, optneg(6, 0x1ff, SMFIP_NR_HDR));
  EXPECT_EQ(commands(replies(talk(without, message()))), "ccccc");
}

TEST(MilterConnection, AbortMidMessageEndsTheMessageAndItsMacros) {
  Script s;
  Connection c(factory(s), 1 << 20);
  talk(c, greeting());
  talk(c, macro(SMFIC_MAIL, {"i", "OLD1", "{auth_authen}", "bob"}) + packet(SMFIC_MAIL, strings({"<a@x>"})) +
                  packet(SMFIC_HEADER, strings({"Subject", "x"})));
  EXPECT_TRUE(c.in_message());
  EXPECT_TRUE(talk(c, packet(SMFIC_ABORT)).empty());  // ABORT is never answered
  EXPECT_FALSE(c.in_message());
  EXPECT_EQ(s.calls.back(), "#1 abort");
  // The next message's MAIL comes without macros: the old ones are gone.
  talk(c, packet(SMFIC_MAIL, strings({"<c@x>"})));
  EXPECT_EQ(s.calls.back(), "#1 mail <c@x> auth= i=");
}

TEST(MilterConnection, QuitNcKeepsTheSocketForANewMtaConnection) {
  Script s;
  Connection c(factory(s), 1 << 20);
  talk(c, greeting() + macro(SMFIC_MAIL, {"i", "Q1"}) + packet(SMFIC_MAIL, strings({"<a@x>"})));
  EXPECT_TRUE(talk(c, packet(SMFIC_QUIT_NC)).empty());
  EXPECT_EQ(s.made, 2);
  EXPECT_EQ(s.destroyed, 1);
  EXPECT_EQ(s.calls.back(), "#1 abort");  // the first filter's message ended with its connection
  // The next connection may negotiate again, or go straight to CONNECT.
  auto r = replies(talk(c, optneg() + connect_packet("b.example", "198.51.100.1", 25) + message("Q2")));
  EXPECT_EQ(commands(r), "Occccc" "c");
  EXPECT_EQ(s.calls[s.calls.size() - 7], "#2 connect b.example 198.51.100.1:25 daemon=");
  EXPECT_EQ(s.calls.back(), "#2 eom i=Q2");
}

TEST(MilterConnection, QuitAndProtocolErrorsCloseTheConnection) {
  Script s;
  {
    Connection c(factory(s), 1 << 20);
    talk(c, greeting());
    talk(c, packet(SMFIC_QUIT), Connection::Step::kClose);
    EXPECT_EQ(c.close_reason(), "");
  }
  auto closes = [&](const std::string& in, const std::string& reason) {
    Connection c(factory(s), 64);
    c.reader().feed(in);
    EXPECT_EQ(c.step(), Connection::Step::kClose) << reason;
    EXPECT_NE(c.close_reason().find(reason), std::string::npos) << c.close_reason();
  };
  closes(connect_packet("h", "1.2.3.4", 1), "before option negotiation");
  closes(optneg() + packet('Z'), "unknown command");
  closes(optneg() + packet(SMFIC_BODY, std::string(65, 'x')), "the limit is 65");
  closes(optneg() + packet(SMFIC_HEADER, strings({"only-a-name"})), "HEADER: malformed");
}

TEST(MilterConnection, AClosedConnectionAbortsItsMessage) {
  Script s;
  {
    Connection c(factory(s), 1 << 20);
    talk(c, greeting() + packet(SMFIC_MAIL, strings({"<a@x>"})));
  }
  EXPECT_EQ(s.calls.back(), "#1 abort");
  EXPECT_EQ(s.destroyed, 1);
}

TEST(MilterConnection, AFilterThatThrowsGetsItsFailureAnswer) {
  Script s;
  s.throw_at_helo = true;
  Connection c(factory(s), 1 << 20);
  auto r = replies(talk(c, greeting()));
  EXPECT_EQ(commands(r), std::string("Oc") + SMFIR_TEMPFAIL);
}

TEST(MilterConnection, ABlockingStepWaitsForRunBlockedThenTheRestFollows) {
  Script s;
  s.block_eom = true;
  Connection c(factory(s), 1 << 20);
  talk(c, greeting());
  // The MTA's next message is already buffered behind the first's EOM.
  std::string out = talk(c, message("M1") + message("M2"), Connection::Step::kBlocked);
  EXPECT_EQ(commands(replies(out)), "cccc");  // MAIL..BODY answered, EOM pending
  EXPECT_EQ(s.calls.back(), "#1 body body\r\n");
  EXPECT_EQ(c.step(), Connection::Step::kBlocked);  // not run yet
  c.run_blocked();
  EXPECT_EQ(c.step(), Connection::Step::kBlocked);  // M2's EOM
  c.run_blocked();
  EXPECT_EQ(c.step(), Connection::Step::kNeedInput);
  EXPECT_EQ(commands(replies(c.take_output())), "c" "cccc" "c");
  EXPECT_EQ(s.calls.back(), "#1 eom i=M2");
}

TEST(MilterMacros, LaterStagesWinAndBothSpellingsMatch) {
  Macros m;
  m.set(SMFIC_CONNECT, {"j", "mx", "{daemon_name}", "smtpd"});
  m.set(SMFIC_MAIL, {"i", "A", "{mail_addr}", "a@x"});
  m.set(SMFIC_BODYEOB, {"i", "B"});
  EXPECT_EQ(m.get("i"), "B");
  EXPECT_EQ(m.get("daemon_name"), "smtpd");
  EXPECT_EQ(m.get("{daemon_name}"), "smtpd");
  EXPECT_EQ(m.get("{j}"), "mx");
  m.set(SMFIC_MAIL, {"i", "C"});  // a new message: its MAIL and later stages replace the old
  EXPECT_EQ(m.get("i"), "C");
  EXPECT_EQ(m.get("mail_addr"), "");
  EXPECT_EQ(m.get("j"), "mx");
}

// --- the engine, over real sockets ---------------------------------------------

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sg-engine-" + std::to_string(getpid()) + "-" +
                                                      std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "m.sock").string();
  }
  void TearDown() override {
    if (engine_) engine_->stop();
    if (thread_.joinable()) thread_.join();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  void start(EngineOptions opt) {
    auto e = Engine::listen("unix:" + path_, opt, factory(script_));
    ASSERT_TRUE(e.ok()) << e.status().message();
    engine_ = std::move(e.value());
    thread_ = std::thread([this] { engine_->run(); });
  }
  int dial() {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, path_.c_str());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }
  static void send_all(int fd, const std::string& s) {
    ASSERT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
  }
  // Reads until `n` replies came, SMFIR_PROGRESS not counted (or the peer
  // closed, or 30 s passed).
  static std::vector<std::pair<char, std::string>> read_replies(int fd, std::size_t n, bool* closed = nullptr) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      {
        PacketReader r(1 << 20);
        r.feed(got);
        std::size_t k = 0;
        while (true) {
          auto p = r.next();
          if (!p.ok() || !p.value()) break;
          if (p.value()->cmd != SMFIR_PROGRESS) ++k;
        }
        if (k >= n) break;
      }
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 1000) <= 0) continue;
      char buf[4096];
      ssize_t k = read(fd, buf, sizeof buf);
      if (k <= 0) {
        if (closed) *closed = true;
        break;
      }
      got.append(buf, static_cast<std::size_t>(k));
    }
    return replies(got);
  }
  std::filesystem::path dir_;
  std::string path_;
  Script script_;
  std::unique_ptr<Engine> engine_;
  std::thread thread_;
};

TEST_F(EngineTest, ServesADialogueAndRunsTheBlockingStepOnAWorker) {
  script_.block_eom = true;
  start({});
  int fd = dial();
  send_all(fd, greeting() + message());
  auto r = read_replies(fd, 8);
  EXPECT_EQ(commands(r), "Occccccc");
  send_all(fd, packet(SMFIC_QUIT));
  bool closed = false;
  read_replies(fd, 1, &closed);
  EXPECT_TRUE(closed);
  close(fd);
}

TEST_F(EngineTest, ALongScanSendsProgressSoTheMtaKeepsWaiting) {
  script_.block_eom = true;
  script_.eom_sleep = std::chrono::milliseconds(3500);
  EngineOptions opt;
  opt.progress_interval = std::chrono::seconds(1);
  start(opt);
  int fd = dial();
  send_all(fd, greeting() + message());
  auto r = read_replies(fd, 8);
  std::string cmds = commands(r);
  ASSERT_GE(cmds.size(), 9u) << cmds;
  EXPECT_EQ(cmds.substr(0, 7), "Occcccc");
  EXPECT_EQ(cmds.back(), SMFIR_CONTINUE);
  EXPECT_NE(cmds.find(SMFIR_PROGRESS), std::string::npos) << cmds;
  close(fd);
}

TEST_F(EngineTest, AnIdleConnectionIsClosedAndItsMessageAborted) {
  EngineOptions opt;
  opt.idle_timeout = std::chrono::seconds(1);
  start(opt);
  int fd = dial();
  send_all(fd, greeting() + packet(SMFIC_MAIL, strings({"<a@x>"})));
  bool closed = false;
  read_replies(fd, 100, &closed);
  EXPECT_TRUE(closed);
  close(fd);
  for (int i = 0; i < 300 && engine_->connections() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(engine_->connections(), 0u);
  EXPECT_EQ(script_.calls.back(), "#1 abort");
}

TEST_F(EngineTest, PastTheHardLimitNewConnectionsAreClosedAtOnce) {
  EngineOptions opt;
  opt.hard_connections = 2;
  start(opt);
  int a = dial(), b = dial();
  send_all(a, optneg());
  send_all(b, optneg());
  EXPECT_EQ(read_replies(a, 1).size(), 1u);
  EXPECT_EQ(read_replies(b, 1).size(), 1u);
  int c = dial();
  bool closed = false;
  // The engine may have closed it already: then the write fails (EPIPE), which is fine.
  const std::string o = optneg();
  [[maybe_unused]] ssize_t n = send(c, o.data(), o.size(), MSG_NOSIGNAL);
  EXPECT_TRUE(read_replies(c, 1, &closed).empty());
  EXPECT_TRUE(closed);
  for (int fd : {a, b, c}) close(fd);
}

TEST_F(EngineTest, StopAnswersTheRunningStepThenCloses) {
  script_.block_eom = true;
  script_.eom_sleep = std::chrono::milliseconds(500);
  start({});
  int fd = dial();
  send_all(fd, greeting() + message());
  auto first = read_replies(fd, 7);  // up to the BODY reply: EOM is running
  EXPECT_EQ(first.size(), 7u);
  engine_->stop();
  bool closed = false;
  auto rest = read_replies(fd, 2, &closed);
  EXPECT_EQ(commands(rest).substr(0, 1), std::string(1, SMFIR_CONTINUE));
  thread_.join();
  EXPECT_FALSE(std::filesystem::exists(path_));  // the socket file is removed
  close(fd);
}

TEST(MilterEngine, RefusesABadSocketSpecWithAClearMessage) {
  Script s;
  auto bad = Engine::listen("inet:notaport@127.0.0.1", {}, factory(s));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("port"), std::string::npos);
  auto nodir = Engine::listen("unix:/nonexistent-dir/x.sock", {}, factory(s));
  ASSERT_FALSE(nodir.ok());
  EXPECT_NE(nodir.status().message().find("cannot listen on unix:/nonexistent-dir/x.sock"), std::string::npos);
}

}  // namespace
}  // namespace spamgate::milter
