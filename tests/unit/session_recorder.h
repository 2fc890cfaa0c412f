// session_recorder.h - a HeaderSink that records what a Session hands to
// the MTA at end of message (header edits and replies), for tests.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "milter/session.h"
#include "spamgate/message.h"

namespace spamgate::test {

struct Edit {
  std::string op, name;
  int index;
  std::string value;
};

class Recorder final : public HeaderSink {
 public:
  bool change(const std::string& name, int index, const std::string* value) override {
    edits.push_back({value ? "change" : "delete", name, index, value ? *value : ""});
    return true;
  }
  bool add(const std::string& name, const std::string& value) override {
    edits.push_back({"add", name, 0, value});
    return true;
  }
  bool insert(const std::string& name, int index, const std::string& value) override {
    edits.push_back({"insert", name, index, value});
    return true;
  }
  bool reply(const std::string& rcode, const std::string& xcode, const std::string& text) override {
    replies.push_back(rcode + " " + xcode + " " + text);
    return true;
  }
  bool quarantine(const std::string& reason) override {
    quarantined.push_back(reason);
    return true;
  }
  const Edit* find(const std::string& op, const std::string& name) const {
    for (const Edit& e : edits) {
      if (e.op == op && e.name == name) return &e;
    }
    return nullptr;
  }
  std::vector<Edit> edits;
  std::vector<std::string> replies;
  std::vector<std::string> quarantined;
};

// Feeds `msg` to `s` as libmilter would, from MAIL FROM to end of message:
// header values with their leading space (LEADSPC), folded with LF, the body
// in chunks of `chunk` bytes until the session asks to skip the rest.
inline EomAction stream_message(Session& s, const std::string& msg, HeaderSink& sink, const std::string& from,
                                const std::string& rcpt, std::size_t chunk, const std::string& queue_id,
                                const std::string& auth_user = "") {
  s.set_leading_space(true);
  if (s.mail_from(from, auth_user)) return EomAction::kTempfail;  // refused at MAIL FROM
  s.rcpt_to(rcpt);
  HeaderBlock hb = split_header_block(msg, static_cast<std::size_t>(-1));
  for (const RawField& f : hb.fields) {
    std::string value(f.value);
    value.erase(std::remove(value.begin(), value.end(), '\r'), value.end());  // libmilter folds with LF
    s.header(std::string(f.name), value);
  }
  s.end_of_headers();
  for (std::size_t i = hb.body_offset; i < msg.size(); i += chunk) {
    std::string part = msg.substr(i, chunk);
    if (!s.body(reinterpret_cast<const unsigned char*>(part.data()), part.size())) {
      s.body_skipped();
      break;
    }
  }
  return s.end_of_message(queue_id, sink);
}

}  // namespace spamgate::test
