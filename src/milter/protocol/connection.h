// connection.h - one milter connection's protocol state machine, free of any
// transport: bytes in (reader()), packets decoded and handed to a Filter one
// command at a time, reply packets out (take_output()).
//
// The dialogue (libmilter/engine.c and Postfix milter8.c agree on it):
//   OPTNEG -> [MACRO] CONNECT -> [MACRO] HELO -> ( [MACRO] MAIL -> RCPT... ->
//   [DATA] -> HEADER... -> EOH -> BODY... -> BODYEOB | ABORT )* -> QUIT
// QUIT_NC ends the MTA-side connection but keeps the socket: the filter is
// closed, a new one made, and the next packet is OPTNEG or CONNECT. ABORT may
// come at any time and ends the message, not the connection.
//
// Replies: every step answers one packet, except MACRO and ABORT (never) and
// the steps whose SMFIP_NR_* flag was negotiated (the MTA does not wait for
// them; their Filter answer is dropped). SKIP is sent only if SMFIP_SKIP was
// negotiated (else CONTINUE). At end of message the modifications come first,
// then the final answer. A Filter that throws gets the configured failure
// answer (tempfail or accept) for that step.
//
// Blocking: a command whose Filter step may block (Filter::may_block: DNS,
// Redis, the scan) is not run by step(): step() returns kBlocked with the
// packet kept, the caller runs run_blocked() elsewhere (a worker thread) and
// calls step() again afterwards. Between the two the caller must not touch
// the Connection. Not thread-safe otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "milter/protocol/wire.h"

namespace spamgate::milter {

// The macros the MTA sent, by the stage they came with. A stage's macros
// replace that stage's previous ones; a new MAIL clears MAIL and later stages,
// as does ABORT. get() looks from the latest stage back (as smfi_getsymval).
class Macros {
 public:
  void set(char stage, const std::vector<std::string_view>& pairs);
  void clear_from(char stage);
  void clear() { stages_.clear(); }
  // The value, or "" when not sent. `name` as the MTA spells it: "i",
  // "{auth_authen}", "{daemon_name}" ("{x}" and "x" both match "{x}").
  std::string_view get(std::string_view name) const;

 private:
  static int rank(char stage);
  struct Stage {
    char stage;
    std::vector<std::pair<std::string, std::string>> values;
  };
  std::vector<Stage> stages_;
};

// A step's answer. kContinue: go on. kAccept: accept the message (or the
// connection, at CONNECT/HELO) without further steps. kReject / kTempfail:
// 5xx / 4xx (with `rcode`: this exact reply, SMFIR_REPLYCODE). kSkip: send
// no more body (SMFIR_SKIP; CONTINUE when the MTA did not offer it).
struct Answer {
  enum class Kind { kContinue, kAccept, kReject, kTempfail, kSkip };
  Kind kind = Kind::kContinue;
  std::string rcode, xcode, text;

  static Answer next() { return {}; }
  static Answer of(Kind k) { return Answer{k, {}, {}, {}}; }
  static Answer reply(Kind k, std::string rcode, std::string xcode, std::string text) {
    return Answer{k, std::move(rcode), std::move(xcode), std::move(text)};
  }
};

// The end-of-message edits, encoded as they are made. Each returns false
// (and sends nothing) when the MTA did not allow that action.
class Modifications {
 public:
  Modifications(std::string& out, std::uint32_t actions) : out_(out), actions_(actions) {}
  bool add_header(std::string_view name, std::string_view value);
  bool insert_header(std::uint32_t index, std::string_view name, std::string_view value);
  // index is 1-based among the fields of that name; an empty value deletes.
  bool change_header(std::uint32_t index, std::string_view name, std::string_view value);
  bool quarantine(std::string_view reason);

 private:
  std::string& out_;
  std::uint32_t actions_;
};

// One MTA connection's filter (one per connection; QUIT_NC makes a new one).
// Values are as the MTA sent them; the views are valid during the call only.
class Filter {
 public:
  virtual ~Filter() = default;
  // The SMFIP_* protocol flags wanted, given the MTA's offer (the connection
  // keeps only flags the MTA offered) and the SMFIF_* actions wanted.
  virtual std::uint32_t protocol_wanted(std::uint32_t offered) = 0;
  virtual std::uint32_t actions_wanted() = 0;
  virtual Answer connect(const ConnectInfo& c, const Macros& m) = 0;
  virtual Answer helo(std::string_view name, const Macros& m) = 0;
  virtual Answer mail(const std::vector<std::string_view>& args, const Macros& m) = 0;
  virtual Answer rcpt(const std::vector<std::string_view>& args, const Macros& m) = 0;
  virtual Answer header(std::string_view name, std::string_view value, const Macros& m) = 0;
  virtual Answer end_of_headers(const Macros& m) = 0;
  virtual Answer body(std::string_view chunk, const Macros& m) = 0;
  virtual Answer end_of_message(const Macros& m, Modifications& mods) = 0;
  // The message ends without EOM (ABORT, or the connection closes mid-message).
  virtual void abort() = 0;
  // Whether this command's step may wait on something (DNS, Redis, a disk,
  // the scan): such steps are run off the event loop. `macros` are those
  // the MTA sent so far, this command's included (e.g. {auth_authen} at MAIL).
  virtual bool may_block(char cmd, const Macros& macros) const = 0;
  // The answer for a step that threw (the configured failure action).
  virtual Answer failure() = 0;
  // For log lines.
  virtual std::string_view id() const = 0;
};

using FilterFactory = std::function<std::unique_ptr<Filter>()>;

class Connection {
 public:
  enum class Step {
    kNeedInput,  // every complete packet handled; read more
    kBlocked,    // a may_block step is pending: run_blocked(), then step()
    kClose,      // the dialogue is over (QUIT, a protocol error): flush output, close
  };
  // Packets whose data is longer than `max_data` are refused (the connection
  // is closed: the stream cannot be trusted after that).
  Connection(FilterFactory factory, std::size_t max_data);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  PacketReader& reader() { return reader_; }
  // Handles buffered packets until input runs out, a step blocks, or the end.
  Step step();
  // Runs the pending blocking step (any thread; see the top of this file).
  void run_blocked();
  // Reply bytes to send (moved out; the connection keeps no copy).
  std::string take_output() { return std::exchange(out_, std::string()); }
  bool has_output() const { return !out_.empty(); }
  // The connection ends (closed by either side, or a timeout): a message in
  // progress is aborted and the filter closed. Idempotent.
  void close();
  // Whether a message is between MAIL and its end (for idle timeouts and drains).
  bool in_message() const { return in_message_; }
  // Why step() returned kClose ("" for QUIT).
  const std::string& close_reason() const { return close_reason_; }
  char pending_command() const { return pending_cmd_; }
  Filter* filter() { return filter_.get(); }

 private:
  bool handle(char cmd, std::string_view data);  // false: close
  Answer dispatch(char cmd, std::string_view data, bool& ok);
  void answer(char cmd, const Answer& a);
  bool no_reply(char cmd) const;
  void protocol_error(char cmd, const std::string& why);
  void new_filter();

  FilterFactory factory_;
  std::unique_ptr<Filter> filter_;
  PacketReader reader_;
  Macros macros_;
  std::string out_;
  std::uint32_t protocol_ = 0, actions_ = 0;
  bool negotiated_ = false, in_message_ = false, closed_ = false;
  std::string close_reason_;
  // The pending blocking command and its data (copied: the reader may move).
  char pending_cmd_ = 0;
  std::string pending_data_;
  bool pending_done_ = false, pending_ok_ = true;
};

}  // namespace spamgate::milter
