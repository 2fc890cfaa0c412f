// session_recorder.h - a HeaderSink that records what a Session hands to
// the MTA at end of message (header edits and replies), for tests.
#pragma once

#include <string>
#include <vector>

#include "milter/session.h"

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
  const Edit* find(const std::string& op, const std::string& name) const {
    for (const Edit& e : edits) {
      if (e.op == op && e.name == name) return &e;
    }
    return nullptr;
  }
  std::vector<Edit> edits;
  std::vector<std::string> replies;
};

}  // namespace spamgate::test
