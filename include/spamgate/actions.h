// actions.h - a Verdict turned into header edits, applied by milter or scan.
//
// plan_actions() decides every edit: forged fields removed (the census:
// X-Spam-*, Authentication-Results with our authserv-id, the outbound tag;
// for every sender), the Subject tagged on spam, X-Spam-Flag / -Status /
// -Level and X-Spam-Technical-Details added. Values use "\n" + TAB for folding and no
// leading space; apply_plan() writes them with the message's own line ends.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace spamgate {

struct Config;
struct Message;
class HeaderCensus;
struct Verdict;

struct HeaderEdit {
  enum class Op { kAdd, kChange, kDelete, kInsert };  // kInsert: at the top (index 0)
  Op op = Op::kAdd;
  std::string name;
  int index = 0;      // 1-based among fields of this name (case-insensitive); kChange/kDelete
  std::string value;  // kAdd/kChange
};

struct Plan {
  // Deletes come first, each name's highest index first (Postfix renumbers
  // after a delete), then changes, then adds in the order they appear.
  std::vector<HeaderEdit> edits;
};

// What the plan may do. Mail going out (authenticated senders, trusted
// networks) is never subject-tagged and never carries the tests= list.
struct PlanOptions {
  bool annotate = true;     // our fields (X-Spam-*, details, prepended); false: removals only (policy log)
  bool tag_subject = true;  // tag the Subject and add X-Spam-Flag on spam
  bool subject = true;      // with tag_subject: the Subject too (a recipient's subject_tag off: the flag alone)
  bool list_tests = true;   // name the rules in X-Spam-Status
  // The threshold named in X-Spam-Technical-Details, as written ("" =
  // the config's): the deciding recipient's own (recipients.h).
  std::string threshold_text;
  // The verdict history reference for X-Spam-Technical-Details, placed as
  // [history] reference says ("url": ?ref=ID on the support URL, "line": a
  // "Reference: ID" line); "" = none.
  std::string reference;
};

// `prepend`: fields the checks asked for (e.g. Received-SPF), put at the top.
Plan plan_actions(const Config& cfg, const Message& msg, const HeaderCensus& census, const Verdict& v,
                  const PlanOptions& opts = {},
                  const std::vector<std::pair<std::string, std::string>>& prepend = {});

// The value of X-Spam-Technical-Details for a message of score `score`
// ("7.2") under `c`, with the history `reference` ("" = none) and the
// threshold `threshold` ("" = the config's).
std::string technical_details_value(const Config& c, const std::string& score, const std::string& reference,
                                    const std::string& threshold = {});

// The message exactly as it would be delivered: `bytes` (the whole message)
// with the plan's header edits; body bytes unchanged.
std::string apply_plan(std::string_view bytes, const Plan& plan);

// The new Subject value for a spam message whose Subject raw value is `raw`
// (nullptr if it has none), or "" if it is already tagged. Exposed for tests.
std::string tagged_subject(const std::string& tag, const std::string* raw,
                           const std::string* decoded);

}  // namespace spamgate
