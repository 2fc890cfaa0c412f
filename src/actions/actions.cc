// actions.cc - plan_actions() and apply_plan() (see actions.h).
//
// Header shapes (customers' Sieve/procmail filters depend on them):
//   X-Spam-Flag: YES                                   (spam only)
//   X-Spam-Status: Yes, score=7.2 required=5.0 tests=A,B,\n\tC   (SpamAssassin's)
//   X-Spam-Level: *******                              (one '*' per whole point)
//   X-Spam-Technical-Details: the four support lines, TAB-continued, unfolded.
#include "spamgate/actions.h"

#include <algorithm>
#include <map>
#include <utility>

#include "spamgate/message.h"
#include "spamgate/snapshot.h"
#include "spamgate/verdict.h"

namespace spamgate {
namespace {

constexpr std::size_t kFoldAt = 78;
constexpr std::size_t kMaxLine = 998;

// SpamAssassin's _TESTSSCORES_ with `scores`: NAME=2.2 (the score with
// which the rule counted here, to three decimals at most).
std::string test_item(const ScoredHit& h, bool scores) {
  if (!scores) return h.name;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(h.score_millis) / 1000.0);
  std::string n = buf;
  while (n.back() == '0') n.pop_back();
  if (n.back() == '.') n.pop_back();
  return h.name + "=" + n;
}

std::string status_value(const Verdict& v, bool list_tests, bool scores) {
  std::string head = std::string(v.spam ? "Yes" : "No") + ", score=" + format_tenths(v.score_tenths) +
                     " required=" + format_tenths(v.threshold_tenths) + " tests=";
  if (!list_tests) return head.substr(0, head.size() - std::string(" tests=").size());
  std::string out = head;
  std::size_t line_len = std::string("X-Spam-Status: ").size() + head.size();
  if (v.hits.empty()) return out + "none";
  for (std::size_t i = 0; i < v.hits.size(); ++i) {
    std::string item = test_item(v.hits[i], scores) + (i + 1 < v.hits.size() ? "," : "");
    if (i > 0 && line_len + item.size() > kFoldAt) {
      out += "\n\t";
      line_len = 1;
    }
    out += item;
    line_len += item.size();
  }
  return out;
}

std::string level_value(const Verdict& v) {
  std::int64_t stars = v.score_tenths > 0 ? v.score_tenths / 10 : 0;
  return std::string(static_cast<std::size_t>(std::min<std::int64_t>(stars, 50)), '*');
}

std::string details_value(const Config& c, const Verdict& v, const PlanOptions& opts) {
  return technical_details_value(c, format_tenths(v.score_tenths), opts.reference, opts.threshold_text);
}

}  // namespace

std::string technical_details_value(const Config& c, const std::string& score, const std::string& reference,
                                    const std::string& threshold) {
  std::string url = c.support_url;
  const bool in_url = !reference.empty() && c.history.reference == "url";
  if (in_url) url += (url.find('?') == std::string::npos ? "?ref=" : "&ref=") + reference;
  std::string out = "[" + c.service_name + "] - Support information:\n\tThis message was scanned by: " +
                    c.hostname + " and received a score of: " + score +
                    "\n\tThis system will flag a message as spam if the score is greater than " +
                    (threshold.empty() ? c.threshold_text : threshold) + ".\n\tIf you feel this was in error, please visit " + url;
  if (!reference.empty() && c.history.reference == "line") out += "\n\tReference: " + reference;
  return out;
}

namespace {

std::string to_lf(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::string tagged_subject(const std::string& tag, const std::string* raw, const std::string* decoded) {
  if (raw == nullptr) return tag;
  std::string_view d = decoded != nullptr ? std::string_view(*decoded) : std::string_view();
  while (!d.empty() && (d.front() == ' ' || d.front() == '\t')) d.remove_prefix(1);
  if (d.substr(0, tag.size()) == tag) return std::string();  // already tagged
  std::string original = to_lf(*raw);
  std::size_t b = original.find_first_not_of(" \t\n");
  original = b == std::string::npos ? std::string() : original.substr(b);
  if (original.empty()) return tag;
  std::size_t first_line = original.find('\n');
  if (first_line == std::string::npos) first_line = original.size();
  // "Subject: " + tag + " " + first line must stay within the line limit;
  // otherwise fold right after the tag (unfolding gives back "tag original").
  if (9 + tag.size() + 1 + first_line > kMaxLine) return tag + "\n " + original;
  return tag + " " + original;
}

Plan plan_actions(const Config& c, const Message& msg, const HeaderCensus& census, const Verdict& v,
                  const PlanOptions& opts, const std::vector<std::pair<std::string, std::string>>& prepend) {
  Plan p;
  // Forged fields go for every sender and policy, bounded by the census' cap
  // (a message over it is refused: HEADER_FORGED_MANY).
  for (HeaderCensus::Removal& r : census.removals())
    p.edits.push_back({HeaderEdit::Op::kDelete, std::move(r.name), r.index, ""});
  if (!opts.annotate) return p;
  for (const auto& [name, value] : prepend) p.edits.push_back({HeaderEdit::Op::kInsert, name, 0, value});
  if (v.spam && opts.tag_subject && opts.subject) {
    const Header* subj = msg.first("subject");
    std::string value = tagged_subject(c.subject_tag, subj ? &subj->raw : nullptr,
                                       subj ? &subj->decoded : nullptr);
    if (!value.empty()) {
      if (subj != nullptr) p.edits.push_back({HeaderEdit::Op::kChange, subj->name, 1, value});
      else p.edits.push_back({HeaderEdit::Op::kAdd, "Subject", 0, value});
    }
  }
  if (v.spam && opts.tag_subject) p.edits.push_back({HeaderEdit::Op::kAdd, "X-Spam-Flag", 0, "YES"});
  p.edits.push_back({HeaderEdit::Op::kAdd, "X-Spam-Status", 0, status_value(v, opts.list_tests, c.tests_with_scores)});
  p.edits.push_back({HeaderEdit::Op::kAdd, "X-Spam-Level", 0, level_value(v)});
  p.edits.push_back({HeaderEdit::Op::kAdd, "X-Spam-Technical-Details", 0, details_value(c, v, opts)});
  return p;
}

std::string apply_plan(std::string_view bytes, const Plan& plan) {
  HeaderBlock hb = split_header_block(bytes, static_cast<std::size_t>(-1));
  const std::string eol = hb.crlf ? "\r\n" : "\n";
  auto render = [&](const std::string& name, const std::string& value) {
    std::string out = name + ":";
    if (!value.empty()) out += " ";
    for (char ch : value) {
      if (ch == '\n') out += eol;
      else out.push_back(ch);
    }
    return out + eol;
  };
  // Live fields of each name, in order; a delete removes its entry, so later
  // indexes count as Postfix's do after it renumbers.
  std::map<std::string, std::vector<std::size_t>> by_name;
  for (std::size_t i = 0; i < hb.fields.size(); ++i) by_name[ascii_lower(hb.fields[i].name)].push_back(i);
  std::map<std::size_t, std::string> replace;  // field index -> new text ("" = deleted)
  std::string added, inserted;
  for (const HeaderEdit& e : plan.edits) {
    if (e.op == HeaderEdit::Op::kAdd) {
      added += render(e.name, e.value);
      continue;
    }
    if (e.op == HeaderEdit::Op::kInsert) {  // each on top of the previous, as smfi_insheader(0) does
      inserted = render(e.name, e.value) + inserted;
      continue;
    }
    auto it = by_name.find(ascii_lower(e.name));
    if (it == by_name.end() || e.index < 1 || static_cast<std::size_t>(e.index) > it->second.size()) continue;
    std::size_t i = it->second[static_cast<std::size_t>(e.index) - 1];
    if (e.op == HeaderEdit::Op::kDelete) {
      replace[i] = std::string();
      it->second.erase(it->second.begin() + (e.index - 1));
    } else {
      replace[i] = render(std::string(hb.fields[i].name), e.value);
    }
  }
  std::string out;
  out.reserve(bytes.size() + added.size() + 64);
  std::size_t pos = 0;
  // Inserted fields go first, after an mbox "From " line if there is one.
  std::size_t top = hb.fields.empty() ? (bytes.substr(0, 5) == "From " ? bytes.find('\n') + 1 : 0) : hb.fields[0].offset;
  if (top > bytes.size()) top = bytes.size();
  out.append(bytes.substr(0, top));
  out += inserted;
  pos = top;
  for (std::size_t i = 0; i < hb.fields.size(); ++i) {
    const RawField& f = hb.fields[i];
    out.append(bytes.substr(pos, f.offset - pos));
    auto it = replace.find(i);
    if (it == replace.end()) out.append(bytes.substr(f.offset, f.length));
    else out += it->second;
    pos = f.offset + f.length;
  }
  // Added fields go at the end of the header block, as smfi_addheader puts them.
  if (!out.empty() && out.back() != '\n') out += eol;  // a last field without line end
  out += added;
  if (!hb.separator_found) {
    out += eol;  // the header block never ended: give the body its empty line
  }
  out.append(bytes.substr(pos));
  return out;
}

}  // namespace spamgate
