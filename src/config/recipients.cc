// recipients.cc - the per-recipient settings file (see recipients.h).
//
// Hand-written like the rules parser it sits beside: one setting a line,
// the list lines parsed by the rules' own add_list_line(), so a line
// support staff copy from a rules file means the same here.
#include "spamgate/recipients.h"

#include <sstream>

#include "config/config.h"
#include "rules/ruleset.h"
#include "spamgate/message.h"

namespace spamgate {

struct RecipientTable::Entry {
  std::optional<std::int64_t> threshold;
  std::string threshold_text;
  std::optional<std::optional<std::int64_t>> reject;  // set: a level, or off
  std::string reject_text;
  std::optional<bool> tag, subject_tag, skip;
  AddressLists lists;
  std::map<std::string, int> set_at;  // setting -> its line
};

RecipientTable::RecipientTable() = default;
RecipientTable::~RecipientTable() = default;
RecipientTable::RecipientTable(RecipientTable&&) noexcept = default;
RecipientTable& RecipientTable::operator=(RecipientTable&&) noexcept = default;

namespace {

constexpr std::size_t kMaxKey = 254;  // an address is at most 254 bytes

bool domain_chars(std::string_view d) {
  return !d.empty() && d.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789.-_") == std::string_view::npos &&
         d.front() != '.' && d.back() != '.' && d.find("..") == std::string_view::npos &&
         d.find('.') != std::string_view::npos;
}

// "" when `key` is an address, a domain or ".domain"; else why not.
std::string key_problem(const std::string& key) {
  if (key.size() > kMaxKey) return "a recipient is at most 254 bytes";
  std::size_t at = key.rfind('@');
  if (at == std::string::npos) {
    std::string_view d(key);
    if (!d.empty() && d.front() == '.') d.remove_prefix(1);
    if (domain_chars(d)) return {};
    return "'" + key + "' is not an address, a domain or .domain (its subdomains)";
  }
  std::string_view local = std::string_view(key).substr(0, at);
  if (local.empty() || local.find_first_of(" \t<>\"*?") != std::string_view::npos || !domain_chars(key.substr(at + 1)))
    return "'" + key + "' is not an address such as ann@example.com";
  return {};
}

std::optional<bool> on_off(const std::string& w) {
  if (w == "on" || w == "yes" || w == "true" || w == "1") return true;
  if (w == "off" || w == "no" || w == "false" || w == "0") return false;
  return std::nullopt;
}

// The candidates for `key`, most specific first: the address, its domain,
// then ".parent" for the domain and each parent of it.
std::vector<std::string> candidates(const std::string& key) {
  std::vector<std::string> out;
  std::string domain = key;
  if (std::size_t at = key.rfind('@'); at != std::string::npos) {
    out.push_back(key);
    // ceo+news@example.com is ceo@example.com's mailbox (Postfix's
    // recipient_delimiter, '+' by convention).
    if (std::size_t plus = key.find('+'); plus != std::string::npos && plus > 0 && plus < at)
      out.push_back(key.substr(0, plus) + key.substr(at));
    domain = key.substr(at + 1);
  }
  if (domain.empty()) return out;
  if (domain.front() != '.') out.push_back(domain);
  for (std::size_t dot = domain.find('.'); dot != std::string::npos; dot = domain.find('.', dot + 1))
    out.push_back(domain.substr(dot));
  return out;
}

const std::vector<std::string>& setting_names() {
  static const std::vector<std::string> names = {
      "threshold",          "required_score",        "reject_threshold",   "tag",
      "subject_tag",        "skip",                  "welcomelist_from",   "welcomelist_auth",
      "def_welcomelist_auth", "welcomelist_from_rcvd", "blocklist_from",   "welcomelist_to",
      "blocklist_to",       "unwelcomelist_from",    "unblocklist_from"};
  return names;
}

}  // namespace

std::string recipient_key(std::string_view rcpt) {
  rcpt = rcpt.substr(0, 2 * kMaxKey);
  while (!rcpt.empty() && (rcpt.front() == ' ' || rcpt.front() == '<')) rcpt.remove_prefix(1);
  while (!rcpt.empty() && (rcpt.back() == ' ' || rcpt.back() == '>')) rcpt.remove_suffix(1);
  // RFC 5321's source route (<@relay:ceo@example.com>) is for the relays:
  // the mailbox is what follows the colon.
  if (!rcpt.empty() && rcpt.front() == '@') {
    std::size_t colon = rcpt.find(':');
    rcpt.remove_prefix(colon == std::string_view::npos ? rcpt.size() : colon + 1);
  }
  std::string key = ascii_lower(rcpt);
  // "ceo"@example.com is ceo@example.com; a quoted part with odd bytes in it
  // keeps its quotes (it matches no entry: the entries are plain).
  if (std::size_t at = key.rfind('@'); at != std::string::npos && at >= 2 && key.front() == '"' && key[at - 1] == '"' &&
                                         key.find_first_of(" \\\"@", 1) >= at - 1)
    key = key.substr(1, at - 2) + key.substr(at);
  while (!key.empty() && key.back() == '.') key.pop_back();  // example.com. is example.com
  return key.substr(0, kMaxKey);
}

RecipientTable RecipientTable::parse(std::string_view text, const std::string& file, const Config& c,
                                     std::vector<Diagnostic>& diags, std::vector<Diagnostic>& warnings) {
  RecipientTable t;
  t.defaults_.threshold_tenths = c.threshold_tenths;
  t.defaults_.threshold_text = c.threshold_text;
  t.defaults_.reject_tenths = c.reject_threshold_tenths;
  t.defaults_.reject_text = c.reject_threshold_text;
  std::istringstream in{std::string(text)};
  std::string line;
  int n = 0;
  auto bad = [&](const std::string& why) { diags.push_back({file, n, why}); };
  while (std::getline(in, line)) {
    ++n;
    if (std::size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream words(line);
    std::string who, setting;
    if (!(words >> who)) continue;
    who = ascii_lower(who);
    if (std::string why = key_problem(who); !why.empty()) {
      bad(why);
      continue;
    }
    if (!(words >> setting)) {
      bad("'" + who + "' has no setting: e.g. '" + who + " threshold 8' (README \"Per-domain settings\")");
      continue;
    }
    setting = ascii_lower(setting);
    std::string rest, w;
    std::vector<std::string> values;
    while (words >> w) values.push_back(w), rest += (rest.empty() ? "" : " ") + w;
    Entry& e = t.entries_[who];
    std::string warning;
    if (std::optional<Status> st = add_list_line(e.lists, setting, rest, warning)) {
      if (!st->ok()) bad(st->message());
      else if (!warning.empty()) warnings.push_back({file, n, warning});
      continue;
    }
    const std::string name = setting == "required_score" ? "threshold" : setting;
    if (std::find(setting_names().begin(), setting_names().end(), name) == setting_names().end()) {
      const std::string near = closest_name(setting, setting_names());
      bad("unknown setting '" + setting + "'" + (near.empty() ? "" : "; did you mean " + near + "?"));
      continue;
    }
    if (auto it = e.set_at.find(name); it != e.set_at.end()) {
      bad(name + " for " + who + " is set twice (first at line " + std::to_string(it->second) + ")");
      continue;
    }
    const std::string value = values.empty() ? std::string() : ascii_lower(values[0]);
    if (name == "skip" ? values.size() > 1 : values.size() != 1) {
      bad(name + " takes one value: " + (name == "skip" ? "skip, or skip off"
                                         : name == "threshold" || name == "reject_threshold"
                                             ? name + " 8"
                                             : name + " on|off"));
      continue;
    }
    if (name == "threshold" || name == "reject_threshold") {
      std::int64_t tenths = 0;
      if (name == "reject_threshold" && value == "off") {
        e.reject = std::optional<std::int64_t>();
        e.set_at[name] = n;
        continue;
      }
      if (!parse_tenths(value, tenths) || tenths < -10000 || tenths > 10000) {
        bad(name + " '" + values[0] + "' must be a number with at most one decimal, e.g. 8 or 7.5" +
            (name == "reject_threshold" ? ", or off" : ""));
        continue;
      }
      if (name == "threshold") e.threshold = tenths, e.threshold_text = value;
      else e.reject = tenths, e.reject_text = value;
      e.set_at[name] = n;
      continue;
    }
    std::optional<bool> b = name == "skip" && values.empty() ? std::optional<bool>(true) : on_off(value);
    if (!b) {
      bad(name + " '" + values[0] + "' must be on or off");
      continue;
    }
    (name == "tag" ? e.tag : name == "subject_tag" ? e.subject_tag : e.skip) = *b;
    e.set_at[name] = n;
  }
  // A recipient's reject level above its threshold, merged as a message
  // would see it (an address's threshold 20 under its domain's reject 15).
  for (const auto& [key, e] : t.entries_) {
    RecipientSettings s = t.resolve(key);
    if (!s.reject_tenths || *s.reject_tenths > s.threshold_tenths) continue;
    int at = e.set_at.count("reject_threshold") ? e.set_at.at("reject_threshold")
             : e.set_at.count("threshold")      ? e.set_at.at("threshold")
                                                : 0;
    if (at == 0) continue;  // reported at the entry that sets it
    diags.push_back({file, at, "for " + key + " reject_threshold " + s.reject_text +
                                   " must be greater than its threshold " + s.threshold_text +
                                   " (or reject_threshold off)"});
  }
  return t;
}

RecipientSettings RecipientTable::resolve(std::string_view rcpt) const {
  RecipientSettings s = defaults_;
  if (entries_.empty()) return s;
  bool threshold = false, reject = false, tag = false, subject = false, skip = false;
  for (const std::string& k : candidates(recipient_key(rcpt))) {
    auto it = entries_.find(k);
    if (it == entries_.end()) continue;
    const Entry& e = it->second;
    s.source += (s.source.empty() ? "" : " ") + k;
    if (!threshold && e.threshold) threshold = true, s.threshold_tenths = *e.threshold, s.threshold_text = e.threshold_text;
    if (!reject && e.reject) reject = true, s.reject_tenths = *e.reject, s.reject_text = e.reject_text;
    if (!tag && e.tag) tag = true, s.tag = *e.tag;
    if (!subject && e.subject_tag) subject = true, s.subject_tag = *e.subject_tag;
    if (!skip && e.skip) skip = true, s.skip = *e.skip;
    if (!e.lists.empty()) s.lists.push_back(&e.lists);
  }
  return s;
}

bool RecipientTable::empty() const { return entries_.empty(); }
std::size_t RecipientTable::size() const { return entries_.size(); }

}  // namespace spamgate
