// sa_evals.h - SpamAssassin's eval: tests that spamgate implements, on its
// own parse of the message.
//
// sa_eval() looks a test up by function name and arguments (html_test is
// implemented for 'html' only, say); nullptr means "not
// implemented": the parser then counts the rule and it never hits. Each
// function follows the SpamAssassin 4.0.1 plugin code it is named after
// (HeaderEval, RelayEval, MIMEEval, HTMLEval, FreeMail), with the relays of
// message/received.h for the trust path.
// Pure functions: thread-safe.
#pragma once

#include <optional>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <string_view>
#include <vector>

#include "message/received.h"
#include "spamgate/message.h"

namespace spamgate {

struct Envelope;

// Domains, lower case: names looked up in a hash set, and a few globs
// ("aol.*", "*.att.ne.jp") tried one by one (SpamAssassin's freemail list
// holds 2,582 names and 29 globs).
class DomainList {
 public:
  void add(std::string domain);  // lower-cased here
  bool contains(std::string_view domain) const;  // `domain` lower case
  bool empty() const { return exact_.empty() && globs_.empty(); }

 private:
  std::unordered_set<std::string> exact_;
  std::vector<std::string> globs_;
};

struct SaEvalInput {
  const Message& message;
  const Envelope& envelope;
  const Relays& relays;
  const DomainList& freemail_domains;
  // What several eval rules of one message read, worked out once.
  mutable std::optional<std::optional<std::int64_t>> date_diff;  // check_for_shifted_date, seconds
};

using SaEvalFn = bool (*)(const SaEvalInput& in, const std::vector<std::string>& args);

SaEvalFn sa_eval(std::string_view function, const std::vector<std::string>& args);

// "fn('a', 'b')" -> fn and {a, b}; false when it is not a call.
bool parse_eval_call(std::string_view text, std::string& function, std::vector<std::string>& args);

}  // namespace spamgate
