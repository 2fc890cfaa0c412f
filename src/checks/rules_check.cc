// rules_check.cc - RulesCheck, MetaCheck and MessageFlagsCheck (see builtin.h).
//
// Header values follow SpamAssassin: several fields of one name are joined
// with "\n"; a missing field is "" (so `!~` hits) unless [if-unset: TEXT].
// A regex that hits its match limit is reported as the check's error ("NAME
// hit the match limit": logged per message, counted in the check's error
// metric; the rule counts as not hit) and the other rules still run.
#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "checks/builtin.h"
#include "rules/prefilter.h"
#include "spamgate/message.h"
#include "spamgate/replies.h"
#include "spamgate/snapshot.h"
#include "util/psl.h"
#include "util/text.h"
#include "message/addresses.h"
#include "message/received.h"

namespace spamgate {



namespace {

void join_into(std::string& out, const std::vector<std::string>& parts) {
  for (const std::string& p : parts) {
    if (!out.empty()) out.push_back('\n');
    out += p;
  }
}

// The text a header rule matches, or nullopt when the field is absent.
// SpamAssassin's own rules (Rule::third_party) read values as its header
// tests do (Check.pm joins the list get() returns): each field's value ends
// with "\n"; :addr / :name give every address or name, "\n" between them.
std::optional<std::string> header_subject(const RuleSet& rules, const Rule& r, const Message& m, const Envelope& env,
                                          std::optional<Relays>& relays) {
  const bool sa = r.third_party;
  std::vector<const Header*> fields;
  if (r.pseudo && r.header.rfind("all-", 0) == 0) {
    const bool trusted = r.header == "all-trusted" || r.header == "all-internal";
    if (!relays) relays = parse_relays(m, rules.originating_ip_headers);
    return fields_by_trust(m, *relays, trusted);
  }
  if (r.pseudo && r.header == "all") {
    std::string all;
    for (const Header& h : m.headers) {
      all += h.name;
      all += ": ";
      all += r.mod == HeaderMod::kRaw ? h.raw : h.decoded;
      all.push_back('\n');
    }
    return all;
  }
  if (r.pseudo && r.header.rfind("x-spam-relays-", 0) == 0) {
    // Without trusted_networks SpamAssassin's internal relays are its
    // trusted ones, and external the untrusted.
    const bool trusted = r.header == "x-spam-relays-trusted" || r.header == "x-spam-relays-internal";
    if (!relays) relays = parse_relays(m, rules.originating_ip_headers);
    std::string s = relays_string(relays->relays, trusted);
    if (sa) s.push_back('\n');
    return s;
  }
  if (r.pseudo && r.header == "envelopefrom") {
    if (!env.mail_from.empty()) return env.mail_from;
    fields = m.find("return-path");
  } else if (r.pseudo && r.header == "tocc") {
    fields = m.find("to");
    for (const Header* h : m.find("cc")) fields.push_back(h);
  } else if (r.pseudo && r.header == "messageid") {
    fields = m.find("message-id");
    for (const Header* h : m.find("resent-message-id")) fields.push_back(h);
    for (const Header* h : m.find("x-message-id")) fields.push_back(h);
  } else {
    for (const Header& h : m.headers) {
      if (h.lname == r.header) fields.push_back(&h);
    }
  }
  if (fields.empty()) return std::nullopt;
  std::string out;
  for (const Header* h : fields) {
    switch (r.mod) {
      case HeaderMod::kDecoded:
      case HeaderMod::kRaw:
        if (!out.empty() && !sa) out.push_back('\n');
        out += r.mod == HeaderMod::kRaw ? h->raw : h->decoded;
        if (sa) out.push_back('\n');
        break;
      case HeaderMod::kAddr:
      case HeaderMod::kName: {
        join_into(out, r.mod == HeaderMod::kAddr ? header_addresses(h->decoded) : header_names(h->decoded));
        break;
      }
    }
  }
  return out;
}

// Header rules with the same key read the same text (header_subject()).
std::string header_text_key(const Rule& r) {
  std::string key = r.header;
  key.push_back(static_cast<char>('0' + static_cast<int>(r.mod)));
  if (r.third_party) key.push_back('s');
  if (r.pseudo) key.push_back('p');
  return key;
}

// Every address the message claims to come from, lower-cased.
std::vector<std::string> sender_addresses(const Message& m, const Envelope& env) {
  std::vector<std::string> out;
  for (const char* f : {"from", "sender", "resent-from", "return-path"}) {
    for (const Header* h : m.find(f)) {
      for (std::string& a : header_addresses(h->decoded)) out.push_back(ascii_lower(a));
    }
  }
  if (!env.mail_from.empty()) {
    for (std::string& a : header_addresses(env.mail_from)) out.push_back(ascii_lower(a));
  }
  return out;
}

constexpr std::size_t kDetailBytes = 80;

}  // namespace

namespace {

constexpr int kTextKinds = 4;

int text_kind(const Rule& r) {
  if (r.kind == RuleKind::kBody) return r.third_party ? 3 : 0;
  return r.kind == RuleKind::kRawBody ? 1 : r.kind == RuleKind::kFull ? 2 : -1;
}

// The links SpamAssassin's uri rules see: ours, the targets its
// redirector_pattern lines unwrap, and every bare address in the text as
// "mailto:ADDR" (its URI list holds them too).
std::string percent_decoded(std::string_view u) {
  std::string out;
  out.reserve(u.size());
  auto hex = [](char c) -> int {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  for (std::size_t i = 0; i < u.size(); ++i) {
    if (u[i] == '%' && i + 2 < u.size() && hex(u[i + 1]) >= 0 && hex(u[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(u[i + 1]) * 16 + hex(u[i + 2])));
      i += 2;
    } else {
      out.push_back(u[i]);
    }
  }
  return out;
}

std::vector<std::string> sa_uri_list(const Message& m, const RuleSet& rules, std::uint32_t limit) {
  // Util::uri_list_canonicalize, its main steps: the percent-decoded form,
  // and the link a redirector points to (a redirector_pattern's group 1, or
  // else an http:// URL inside the path), itself decoded; each once.
  std::vector<std::string> out;
  constexpr std::size_t kMaxLinks = 4000;
  auto add = [&](std::string u) {
    if (out.size() < kMaxLinks && std::find(out.begin(), out.end(), u) == out.end()) out.push_back(std::move(u));
  };
  auto canonical = [&](const std::string& u, int depth, auto& self) -> void {
    add(u);
    // Its rewrites, in its order: '\' as '/', "http:/host" and "http:host"
    // as "http://host", %xx decoded, a scheme for "www.host" (ftp:// for
    // "ftp.host"), a '/' before a '?' or '#' right after the host.
    std::string nu = u;
    std::replace(nu.begin(), nu.end(), '\\', '/');
    const std::string head = ascii_lower(std::string_view(nu).substr(0, 6));
    if (std::size_t colon = head.rfind("http:", 0) == 0 ? 5 : head.rfind("https:", 0) == 0 ? 6 : 0; colon > 0) {
      std::size_t slashes = 0;
      while (slashes < 2 && colon + slashes < nu.size() && nu[colon + slashes] == '/') ++slashes;
      nu.replace(colon, slashes, "//");
    }
    if (nu.find('%') != std::string::npos) nu = percent_decoded(nu);
    std::size_t scheme_end = 0;
    while (scheme_end < nu.size() && (std::isalnum(static_cast<unsigned char>(nu[scheme_end])) != 0 ||
                                      nu[scheme_end] == '-' || nu[scheme_end] == '_'))
      ++scheme_end;
    if (scheme_end == 0 || scheme_end >= nu.size() || nu[scheme_end] != ':')
      nu.insert(0, nu.rfind("ftp.", 0) == 0 ? "ftp://" : "http://");
    if (std::string lower = ascii_lower(std::string_view(nu).substr(0, 8));
        lower.rfind("http://", 0) == 0 || lower.rfind("https://", 0) == 0) {
      const std::size_t host = lower[4] == 's' ? 8 : 7;
      std::size_t end = nu.find_first_of("/?#", host);
      if (end != std::string::npos && end > host && nu[end] != '/') nu.insert(end, 1, '/');
    }
    if (nu != u) add(nu);
    if (depth > 0) return;
    bool redirected = false;
    for (const auto& re : rules.redirectors) {
      Regex::Match mt = re->match_group(nu, limit, 1);
      if (mt.outcome != Regex::Outcome::kMatch) continue;
      std::string target = nu.substr(mt.begin, mt.end - mt.begin);
      if (target.find('.') == std::string::npos) continue;
      self(target, depth + 1, self);
      redirected = true;
      break;
    }
    if (redirected) return;
    // The hard-coded redirector: "https?:/{0,2}" after the host.
    std::size_t scheme = nu.find("://");
    std::size_t path = scheme == std::string::npos ? std::string::npos : nu.find('/', scheme + 3);
    if (path == std::string::npos) return;
    std::string lower = ascii_lower(nu);
    for (std::size_t at = lower.find("http", path); at != std::string::npos; at = lower.find("http", at + 4)) {
      std::size_t k = at + 4;
      if (k < lower.size() && lower[k] == 's') ++k;
      if (k >= lower.size() || lower[k] != ':') continue;
      std::size_t e = nu.find_first_of("&#", k);
      std::string target = nu.substr(at, e == std::string::npos ? std::string::npos : e - at);
      if (target.find('.') != std::string::npos) self(target, depth + 1, self);
      break;
    }
  };
  for (const Uri& u : m.uris) canonical(u.text, 0, canonical);
  const std::string& t = m.text;
  auto local_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-' || c == '=';
  };
  auto domain_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'; };
  constexpr std::size_t kMaxAddresses = 200;
  for (std::size_t at = t.find('@'); at != std::string::npos && out.size() < m.uris.size() + kMaxAddresses;
       at = t.find('@', at + 1)) {
    std::size_t b = at, e = at + 1;
    while (b > 0 && at - b < 64 && local_char(t[b - 1])) --b;
    while (e < t.size() && e - at < 255 && domain_char(t[e])) ++e;
    while (e > at + 1 && (t[e - 1] == '.' || t[e - 1] == '-')) --e;
    std::string_view local(t.data() + b, at - b), domain(t.data() + at + 1, e - at - 1);
    if (local.empty() || domain.find('.') == std::string_view::npos) continue;
    std::string uri = "mailto:" + std::string(local) + "@" + std::string(domain);
    if (std::find(out.begin(), out.end(), uri) == out.end()) out.push_back(std::move(uri));
  }
  return out;
}

// The body as SpamAssassin's body rules see it (Message.pm's
// get_body_text_array_common): the subject on the first line, then one line
// per paragraph. A run of white space holding two or more newlines is a
// paragraph break, any other run one space, so a paragraph keeps one
// leading and one trailing space where its text had them; a line over
// 2,048 bytes is cut after its last space before that (or at it). Those
// rules are compiled multi-line so ^ and $ anchor at each line, as in
// SpamAssassin's line by line matching.
std::string sa_body_text(const Message& m) {
  std::string_view text(m.sa_rendered_text());
  std::string out;
  out.reserve(text.size());
  // The first line is the subject, empty without one (tflags nosubject
  // rules start after it).
  if (m.first("subject") != nullptr) {
    std::size_t nl = text.find('\n');
    out.append(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  out.push_back('\n');
  // Perl's \s on a character string: ASCII white space and the Unicode
  // spaces (NBSP, the U+2000 block, ...), here as their UTF-8 bytes.
  auto space_len = [&](std::size_t i) -> std::size_t {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') return 1;
    auto at = [&](std::size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0; };
    if (c == 0xc2 && (at(1) == 0xa0 || at(1) == 0x85)) return 2;
    if (c == 0xe2 && at(1) == 0x80 && (at(2) <= 0x8a || at(2) == 0xa8 || at(2) == 0xa9 || at(2) == 0xaf) && at(2) >= 0x80) return 3;
    if (c == 0xe2 && at(1) == 0x81 && at(2) == 0x9f) return 3;
    if (c == 0xe3 && at(1) == 0x80 && at(2) == 0x80) return 3;
    if (c == 0xe1 && at(1) == 0x9a && at(2) == 0x80) return 3;
    return 0;
  };
  constexpr std::size_t kMaxLine = 2048;  // SpamAssassin's MAX_BODY_LINE_LENGTH
  std::size_t line_start = out.size();
  auto cut_long_line = [&] {
    while (out.size() - line_start > kMaxLine) {
      std::size_t sp = out.rfind(' ', line_start + kMaxLine - 1);
      std::size_t cut = sp != std::string::npos && sp >= line_start ? sp + 1 : line_start + kMaxLine;
      out.insert(cut, 1, '\n');
      line_start = cut + 1;
    }
  };
  std::size_t i = 0;
  while (i < text.size()) {
    if (space_len(i) == 0) {
      out.push_back(text[i++]);
      continue;
    }
    std::size_t j = i, first_nl = std::string_view::npos, last_nl = 0;
    int newlines = 0;
    for (std::size_t n; j < text.size() && (n = space_len(j)) > 0; j += n) {
      if (text[j] != '\n') continue;
      if (newlines++ == 0) first_nl = j;
      last_nl = j;
    }
    if (newlines >= 2) {
      if (first_nl > i) out.push_back(' ');
      cut_long_line();
      out.push_back('\n');
      line_start = out.size();
      if (j > last_nl + 1) out.push_back(' ');
    } else {
      out.push_back(' ');
    }
    i = j;
  }
  cut_long_line();
  return out;
}

// SpamAssassin matches its body rules against one line (paragraph) at a
// time; spamgate first against the whole text, which is one search but lets
// \s or [^x] run on into the next line. A match that does so is looked for
// again line by line, from the line it starts in (no line-local match can
// start before it): that match, or kNoMatch.
Regex::Match within_a_line(const Regex& re, std::string_view text, Regex::Match mt, std::uint32_t limit) {
  const std::size_t nl = text.find('\n', mt.begin);
  if (nl == std::string_view::npos || nl + 1 >= mt.end) return mt;  // within its line (its own '\n' included)
  std::size_t start = mt.begin == 0 ? 0 : text.rfind('\n', mt.begin - 1);
  start = start == std::string_view::npos || mt.begin == 0 ? 0 : start + 1;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    end = end == std::string_view::npos ? text.size() : end + 1;
    Regex::Match m = re.match(text.substr(start, end - start), limit);
    if (m.outcome != Regex::Outcome::kNoMatch) {
      m.begin += start;
      m.end += start;
      return m;
    }
    start = end;
  }
  return Regex::Match{};
}

}  // namespace

RulesCheck::RulesCheck(std::shared_ptr<const RuleSet> rules, std::uint32_t pcre_match_limit,
                       const std::string& cache_dir)
    : rules_(std::move(rules)), pcre_match_limit_(pcre_match_limit) {
  std::vector<Prefilter::Pattern> patterns[kTextKinds];
  slot_.assign(rules_->rules.size(), -1);
  disabled_.assign(rules_->rules.size(), 0);
  for (std::size_t i = 0; i < rules_->rules.size(); ++i) {
    const Rule& r = rules_->rules[i];
    const SymbolInfo* info = rules_->symbols.find(r.name);
    disabled_[i] = info != nullptr && info->disabled ? 1 : 0;
    if (!r.templates.empty() && disabled_[i] == 0) templated_.push_back(i);
    int k = text_kind(r);
    if (k < 0 || !r.re) continue;
    slot_[i] = static_cast<int>(patterns[k].size());
    patterns[k].push_back({r.re->pattern(), r.re->flags()});
  }
  for (int k = 0; k < kTextKinds; ++k)
    if (!patterns[k].empty()) pre_[k] = Prefilter::build(patterns[k], cache_dir);

  group_.assign(rules_->rules.size(), -1);
  absent_.assign(rules_->rules.size(), Regex::Match{});
  std::unordered_map<std::string, int> groups;
  std::vector<std::vector<Prefilter::Pattern>> group_patterns;
  for (std::size_t i = 0; i < rules_->rules.size(); ++i) {
    const Rule& r = rules_->rules[i];
    if (r.kind != RuleKind::kHeader || r.exists || !r.re) continue;
    auto [it, added] = groups.emplace(header_text_key(r), static_cast<int>(header_groups_.size()));
    if (added) {
      header_groups_.push_back({i, nullptr});
      group_patterns.emplace_back();
    }
    group_[i] = it->second;
    auto& pats = group_patterns[static_cast<std::size_t>(it->second)];
    slot_[i] = static_cast<int>(pats.size());
    pats.push_back({r.re->pattern(), r.re->flags()});
    absent_[i] = r.re->match(r.has_if_unset ? std::string_view(r.if_unset) : std::string_view("", 0), pcre_match_limit_);
  }
  // A Hyperscan pass costs about what a few PCRE2 runs on a field do, and
  // each database takes ~20 ms to compile: only groups of 8 or more (with
  // 4, SpamAssassin's set took 2.5 s longer to load for ~3% of the scan).
  constexpr std::size_t kMinGroupForPrefilter = 8;
  for (std::size_t g = 0; g < header_groups_.size(); ++g)
    if (group_patterns[g].size() >= kMinGroupForPrefilter) header_groups_[g].pre = Prefilter::build(group_patterns[g], cache_dir);
}

std::vector<const Prefilter*> RulesCheck::prefilters() const {
  std::vector<const Prefilter*> out;
  for (const auto& p : pre_)
    if (p) out.push_back(p.get());
  for (const HeaderGroup& g : header_groups_)
    if (g.pre) out.push_back(g.pre.get());
  return out;
}

std::pair<std::size_t, std::size_t> RulesCheck::prefiltered() const {
  std::size_t n = 0, c = 0;
  for (const Prefilter* p : prefilters()) {
    n += p->size();
    c += p->compiled();
  }
  return {n, c};
}

std::size_t RulesCheck::databases_from_disk() const {
  std::size_t n = 0;
  for (const Prefilter* p : prefilters()) n += p->from_disk();
  return n;
}

std::string RulesCheck::cache_problem() const {
  for (const Prefilter* p : prefilters())
    if (!p->cache_problem().empty()) return p->cache_problem();
  return std::string();
}

std::pair<std::size_t, std::size_t> RulesCheck::databases() const {
  std::size_t n = 0, reused = 0;
  for (const Prefilter* p : prefilters()) {
    n += p->databases();
    reused += p->reused();
  }
  return {n, reused};
}

std::vector<Diagnostic> RulesCheck::prefilter_warnings() const {
  std::vector<Diagnostic> out;
  for (std::size_t i = 0; i < rules_->rules.size(); ++i) {
    const Rule& r = rules_->rules[i];
    const int k = text_kind(r);
    const Prefilter* pre = k >= 0 ? pre_[k].get() : group_[i] >= 0 ? header_groups_[static_cast<std::size_t>(group_[i])].pre.get() : nullptr;
    if (slot_[i] < 0 || pre == nullptr) continue;
    const std::string& why = pre->problem(static_cast<std::size_t>(slot_[i]));
    if (!why.empty())
      out.push_back({r.file, r.line, "rule '" + r.name + "' runs on every message, not prefiltered: " + why});
  }
  return out;
}

Status RulesCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& /*side*/) const {
  const Message& m = ctx.message;
  // Which text rules can match at all: one Hyperscan pass per text, done
  // when the first rule of that kind comes.
  std::vector<char> cand[kTextKinds];
  bool scanned[kTextKinds] = {}, filtered[kTextKinds] = {};
  std::optional<std::string> sa_body;
  std::optional<std::vector<std::string>> sa_uris;
  const std::uint32_t limit = pcre_match_limit_;
  std::string errors;
  struct HeaderText {
    bool built = false;
    bool filtered = false;
    std::optional<std::string> value;
    std::vector<char> cand;
  };
  std::vector<HeaderText> texts(header_groups_.size());
  std::optional<Relays> relays;  // the Received chain, parsed once when a rule needs it
  std::optional<SaEvalInput> eval_in;  // after `relays`: refers to it
  auto record_error = [&](const Rule& r, int code) {
    if (errors.size() >= 400) return;
    errors += (errors.empty() ? "" : ", ") + r.name;
    errors += code == PCRE2_ERROR_MATCHLIMIT ? std::string(" hit the match limit (limits.pcre_match_limit)")
              : code == 0                    ? std::string(" did not compile with this message's capture values")
                                             : " (pcre2 error " + std::to_string(code) + ")";
  };
  // SpamAssassin's capture rules: the tags their named groups set, for the
  // templated rules run last.
  std::map<std::string, std::vector<std::string>, std::less<>> tags;
  auto capture = [&](const Rule& r, std::string_view text) {
    if (!r.re->captures()) return;
    for (auto& [name, value] : r.re->named_captures(text, limit)) {
      std::vector<std::string>& values = tags[name];
      if (std::find(values.begin(), values.end(), value) == values.end()) values.push_back(std::move(value));
    }
  };
  // One rule. `ri` is its index, or kFilled for a templated rule compiled
  // for this message (it has no prefilter slot nor header group).
  constexpr std::size_t kFilled = static_cast<std::size_t>(-1);
  auto run_rule = [&](const Rule& r, std::size_t ri) {
    if (r.kind == RuleKind::kHeader) {
      if (r.exists) {
        // exists:ToCc and the other pseudo-fields mean "has a value".
        bool present = r.pseudo ? header_subject(*rules_, r, m, ctx.envelope, relays).has_value() : !m.find(r.header).empty();
        if (present) hits.push_back({r.name, 1.0, r.header});
        return;
      }
      // One text per group (field and modifier), however many rules read
      // it, and one prefilter pass over it.
      std::optional<std::string> own;  // a filled rule's text: it has no group
      const std::optional<std::string>* text = &own;
      bool may_match = true;
      if (ri == kFilled) {
        own = header_subject(*rules_, r, m, ctx.envelope, relays);
      } else {
        if (group_[ri] < 0) return;  // no regex (one PCRE2 refused in SpamAssassin's set)
        const auto g = static_cast<std::size_t>(group_[ri]);
        HeaderText& ht = texts[g];
        if (!ht.built) {
          ht.value = header_subject(*rules_, r, m, ctx.envelope, relays);
          ht.built = true;
          const Prefilter* pre = header_groups_[g].pre.get();
          ht.filtered = ht.value && pre != nullptr && pre->candidates(*ht.value, ht.cand);
        }
        text = &ht.value;
        may_match = !ht.filtered || ht.cand[static_cast<std::size_t>(slot_[ri])] != 0;
      }
      Regex::Match mt;
      std::string_view value;
      if (!*text) {
        value = r.has_if_unset ? std::string_view(r.if_unset) : std::string_view("", 0);
        mt = ri == kFilled ? r.re->match(value, limit) : absent_[ri];
      } else {
        value = **text;
        if (may_match) mt = r.re->match(value, limit);
      }
      if (mt.outcome == Regex::Outcome::kError) {
        record_error(r, mt.error);
        return;
      }
      bool matched = mt.outcome == Regex::Outcome::kMatch;
      if (matched && !r.negate) capture(r, value);
      if (matched != r.negate) {
        hits.push_back({r.name, 1.0, r.negate ? std::string("(no match)") : clip(value.substr(mt.begin, mt.end - mt.begin), kDetailBytes)});
      }
      return;
    }
    if (r.kind == RuleKind::kEval) {
      if (!relays) relays = parse_relays(m, rules_->originating_ip_headers);
      if (!eval_in) eval_in.emplace(SaEvalInput{m, ctx.envelope, *relays, rules_->freemail_domains, std::nullopt});
      if (r.eval(*eval_in, r.eval_args)) hits.push_back({r.name, 1.0, "eval"});
      return;
    }
    if (r.kind == RuleKind::kMimeHeader) {
      // SpamAssassin's MIMEHeader: the field (the last of its name) of each
      // MIME part, the top-level entity first; a part without it reads as
      // the [if-unset] text.
      int count = 0;
      std::string seen;
      for (const MimePart& p : m.parts) {
        const MimePart::Field* f = nullptr;
        for (const MimePart::Field& pf : p.headers)
          if (pf.lname == r.header) f = &pf;
        std::string value = f == nullptr ? r.if_unset : (r.mod == HeaderMod::kRaw ? f->raw : f->decoded) + "\n";
        Regex::Match mt = r.re->match(value, limit);
        if (mt.outcome == Regex::Outcome::kError) {
          record_error(r, mt.error);
          break;
        }
        if (mt.outcome == Regex::Outcome::kMatch) {
          if (count++ == 0) seen = clip(std::string_view(value).substr(mt.begin, mt.end - mt.begin), kDetailBytes);
          if (count >= r.maxhits) break;
        }
      }
      if (count > 0) hits.push_back({r.name, static_cast<double>(count), seen});
      return;
    }
    if (r.kind == RuleKind::kUri) {
      if (r.third_party && !sa_uris) sa_uris = sa_uri_list(m, *rules_, limit);
      const std::vector<std::string>* list = r.third_party ? &*sa_uris : nullptr;
      const std::size_t n = list != nullptr ? list->size() : m.uris.size();
      for (std::size_t ui = 0; ui < n; ++ui) {
        const std::string& text = list != nullptr ? (*list)[ui] : m.uris[ui].text;
        Regex::Match mt = r.re->match(text, limit);
        if (mt.outcome == Regex::Outcome::kError) {
          record_error(r, mt.error);
          break;
        }
        if (mt.outcome == Regex::Outcome::kMatch) {
          capture(r, text);
          hits.push_back({r.name, 1.0, clip(text, kDetailBytes)});
          break;
        }
      }
      return;
    }
    if (r.kind == RuleKind::kBody && r.third_party && !sa_body) sa_body = sa_body_text(m);
    std::string_view sa_view = sa_body ? std::string_view(*sa_body) : std::string_view();
    if (r.nosubject && !sa_view.empty()) sa_view.remove_prefix(std::min(sa_view.size(), sa_view.find('\n') + 1));
    std::string_view subject = r.kind == RuleKind::kBody      ? (r.third_party ? sa_view : std::string_view(m.text))
                               : r.kind == RuleKind::kRawBody ? std::string_view(m.raw_text)
                                                              : std::string_view(m.raw);
    if (int k = text_kind(r); k >= 0 && pre_[k] && ri != kFilled && slot_[ri] >= 0) {
      if (!scanned[k]) {
        filtered[k] = pre_[k]->candidates(subject, cand[k]);
        scanned[k] = true;
      }
      if (filtered[k] && cand[k][static_cast<std::size_t>(slot_[ri])] == 0) return;  // cannot match
    }
    if (!r.re) return;
    Regex::Match mt = r.re->match(subject, limit);
    if (mt.outcome == Regex::Outcome::kMatch && r.third_party && r.kind == RuleKind::kBody)
      mt = within_a_line(*r.re, subject, mt, limit);
    if (mt.outcome == Regex::Outcome::kError) {
      record_error(r, mt.error);
    } else if (mt.outcome == Regex::Outcome::kMatch) {
      // tflags multiple: each match counts (and scores), up to maxhits.
      int count = 1;
      for (std::size_t at = mt.end > mt.begin ? mt.end : mt.end + 1; count < r.maxhits && at <= subject.size(); ++count) {
        Regex::Match next = r.re->match(subject, limit, at);  // from `at`, so ^ and \b see what precedes
        if (next.outcome != Regex::Outcome::kMatch) break;
        at = next.end > next.begin ? next.end : next.end + 1;
      }
      capture(r, subject);
      hits.push_back({r.name, static_cast<double>(count), clip(subject.substr(mt.begin, mt.end - mt.begin), kDetailBytes)});
    }
  };
  for (std::size_t ri = 0; ri < rules_->rules.size(); ++ri)
    if (disabled_[ri] == 0 && rules_->rules[ri].templates.empty()) run_rule(rules_->rules[ri], ri);
  // Templated rules, now that the capture rules have run: each %{NAME}
  // becomes the tag's values, quoted, as alternatives (SpamAssassin's
  // Check.pm does the same); a tag no rule set leaves the rule out.
  for (std::size_t ri : templated_) {
    const Rule& r = rules_->rules[ri];
    std::optional<std::string> pattern = regex_fill_templates(r.pattern, [&](std::string_view name) -> std::optional<std::string> {
      auto it = tags.find(name);
      if (it == tags.end() || it->second.empty()) return std::nullopt;
      std::string alt = "(?:";
      for (const std::string& v : it->second) alt += (alt.size() > 3 ? "|" : "") + regex_quote(v);
      return alt + ")";
    });
    if (!pattern) continue;
    auto re = Regex::compile(*pattern, r.flags, /*jit=*/false);
    if (!re.ok()) {
      record_error(r, 0);
      continue;
    }
    Rule filled = r;
    filled.re = std::make_shared<const Regex>(std::move(re.value()));
    run_rule(filled, kFilled);
  }
  plain_list_hits(rules_->lists, m, ctx.envelope, hits);
  if (!errors.empty()) return Status::Limit("regex match failed: " + errors);
  return Status::Ok();
}

MetaCheck::MetaCheck(std::shared_ptr<const RuleSet> rules) : rules_(std::move(rules)) {
  auto slot = [&](const std::string& name) {
    auto [it, added] = slots_.emplace(name, static_cast<int>(slots_.size()));
    return it->second;
  };
  std::function<void(const MetaExpr&, std::vector<Step>&)> flatten = [&](const MetaExpr& e, std::vector<Step>& out) {
    if (e.a) flatten(*e.a, out);
    if (e.b) flatten(*e.b, out);
    Step st{e.kind, e.num, -1};
    if (e.kind == MetaExpr::Kind::kSym) st.slot = slot(e.sym);
    out.push_back(st);
  };
  for (const Rule& r : rules_->metas) {
    const SymbolInfo* info = rules_->symbols.find(r.name);
    disabled_.push_back(info != nullptr && info->disabled ? 1 : 0);
    std::vector<Step> program;
    flatten(*r.meta, program);
    programs_.push_back(std::move(program));
    meta_slot_.push_back(slot(r.name));
  }
}

namespace {

// The signer is the domain, or a parent of it that is itself a registered
// domain (d=github.io, a public suffix, does not vouch for its tenants).
bool same_or_parent(std::string_view domain, std::string_view signer) {
  if (domain == signer) return true;
  return domain.size() > signer.size() && domain.ends_with(signer) &&
         domain[domain.size() - signer.size() - 1] == '.' && !registrable_domain(signer).empty();
}

// welcomelist_auth: the first listed sender that SPF (the envelope sender,
// its domain checked), a DKIM signature of its domain (or a parent), or
// DMARC (the From address) authenticates. "" if none.
std::string authenticated_listed(const std::vector<std::string>& globs, const CheckContext& ctx) {
  if (globs.empty()) return {};
  auto domain_of = [](const std::string& a) { return a.substr(a.rfind('@') + 1); };
  auto listed = [&](const std::string& a) -> const std::string* {
    for (const std::string& g : globs)
      if (glob_match(g, a)) return &g;
    return nullptr;
  };
  const AuthResults& auth = ctx.auth;
  if (auth.spf.result == "pass" && !ctx.envelope.mail_from.empty()) {
    for (std::string& a : header_addresses(ctx.envelope.mail_from)) {
      a = ascii_lower(a);
      if (const std::string* g = listed(a); g && domain_of(a) == ascii_lower(auth.spf.domain))
        return clip(a, kDetailBytes) + " matches " + *g + " (SPF pass)";
    }
  }
  for (const Header* h : ctx.message.find("from")) {
    for (std::string& a : header_addresses(h->decoded)) {
      a = ascii_lower(a);
      const std::string* g = listed(a);
      if (g == nullptr) continue;
      const std::string d = domain_of(a);
      if (auth.dmarc.result == "pass" && ascii_lower(auth.dmarc.from_domain) == d)
        return clip(a, kDetailBytes) + " matches " + *g + " (DMARC pass)";
      for (const DkimSignatureAuth& s : auth.dkim.sigs)
        if (s.result == "pass" && same_or_parent(d, ascii_lower(s.domain)))
          return clip(a, kDetailBytes) + " matches " + *g + " (DKIM pass, d=" + ascii_lower(s.domain) + ")";
    }
    break;  // the first From field only, as DMARC reads it
  }
  return {};
}

// welcomelist_from_rcvd: a listed sender whose mail came from a client
// whose verified name is the relay domain or under it. "" if none.
std::string relayed_listed(const std::vector<std::pair<std::string, std::string>>& list, const CheckContext& ctx) {
  if (list.empty()) return {};
  std::string client = ascii_lower(ctx.envelope.client_name);
  if (!client.empty() && client.back() == '.') client.pop_back();
  if (client.empty() || client == "unknown" || client.front() == '[') return {};  // no verified name
  for (const std::string& a : sender_addresses(ctx.message, ctx.envelope)) {
    for (const auto& [glob, relay] : list) {
      if (!glob_match(glob, a)) continue;
      if (client == relay || (client.size() > relay.size() && client.ends_with(relay) &&
                              client[client.size() - relay.size() - 1] == '.'))
        return clip(a, kDetailBytes) + " matches " + glob + " (relayed by " + clip(client, 100) + ")";
    }
  }
  return {};
}

}  // namespace

void plain_list_hits(const AddressLists& lists, const Message& m, const Envelope& env, std::vector<Hit>& hits) {
  if (!lists.welcomelist_to.empty() || !lists.blocklist_to.empty()) {
    // The envelope's recipients are the MTA's; To and Cc are the sender's
    // to write. A welcome (-6) counts only for the envelope: a spammer who
    // adds "Cc: abuse@..." gets nothing. A block counts for either.
    std::vector<std::string> envelope, headers;
    for (const std::string& r : env.rcpt_to)
      for (std::string& a : header_addresses(r)) envelope.push_back(ascii_lower(a));
    for (const char* f : {"to", "cc"})
      for (const Header* h : m.find(f))
        for (std::string& a : header_addresses(h->decoded)) headers.push_back(ascii_lower(a));
    auto listed_to = [&](const std::vector<std::string>& globs, const char* symbol, bool with_headers) {
      for (const std::vector<std::string>* rcpts : {&envelope, &headers}) {
        if (rcpts == &headers && !with_headers) break;
        for (const std::string& r : *rcpts)
          for (const std::string& g : globs)
            if (glob_match(g, r)) return hits.push_back({symbol, 1.0, clip(r, kDetailBytes) + " matches " + g});
      }
    };
    listed_to(lists.welcomelist_to, kWelcomelistToSymbol, false);
    listed_to(lists.blocklist_to, kBlocklistToSymbol, true);
  }
  if (lists.welcomelist.empty() && lists.blocklist.empty()) return;
  std::vector<std::string> senders = sender_addresses(m, env);
  auto listed = [&](const std::vector<std::string>& globs, const char* symbol) {
    for (const std::string& s : senders) {
      for (const std::string& g : globs) {
        if (glob_match(g, s)) {
          hits.push_back({symbol, 1.0, clip(s, kDetailBytes) + " matches " + g});
          return;
        }
      }
    }
  };
  listed(lists.welcomelist, kWelcomelistSymbol);
  listed(lists.blocklist, kBlocklistSymbol);
}

void auth_list_hits(const AddressLists& lists, const CheckContext& ctx, std::vector<Hit>& hits) {
  std::string why = authenticated_listed(lists.welcomelist_auth, ctx);
  if (why.empty()) why = relayed_listed(lists.welcomelist_rcvd, ctx);
  if (!why.empty())
    hits.push_back({kWelcomelistAuthSymbol, 1.0, std::move(why)});
  else if (std::string def = authenticated_listed(lists.def_welcomelist_auth, ctx); !def.empty())
    hits.push_back({kDefWelcomelistAuthSymbol, 1.0, std::move(def)});
}

Status MetaCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput&) const {
  auth_list_hits(rules_->lists, ctx, hits);
  // A rule's value is its number of matches (tflags multiple), a meta's
  // the value of its expression, as in SpamAssassin; a meta scores once.
  std::vector<double> values(slots_.size(), 0.0);
  for (const Hit& h : hits) {
    auto it = slots_.find(h.name);
    if (it != slots_.end()) values[static_cast<std::size_t>(it->second)] += h.factor > 0 ? h.factor : 1.0;
  }
  std::vector<double> stack;
  for (std::size_t i = 0; i < rules_->metas.size(); ++i) {
    if (disabled_[i] != 0) continue;
    stack.clear();
    for (const Step& st : programs_[i]) {
      using K = MetaExpr::Kind;
      if (st.kind == K::kNum) {
        stack.push_back(st.num);
        continue;
      }
      if (st.kind == K::kSym) {
        stack.push_back(values[static_cast<std::size_t>(st.slot)]);
        continue;
      }
      if (st.kind == K::kNot || st.kind == K::kNeg) {
        stack.back() = st.kind == K::kNot ? (stack.back() == 0 ? 1 : 0) : -stack.back();
        continue;
      }
      const double b = stack.back();
      stack.pop_back();
      double& a = stack.back();
      a = MetaExpr::apply(st.kind, a, b);
    }
    const double v = stack.empty() ? 0 : stack.back();
    if (v != 0) {
      values[static_cast<std::size_t>(meta_slot_[i])] = v > 0 ? v : 1.0;
      hits.push_back({rules_->metas[i].name, 1.0, std::string()});
    }
  }
  return Status::Ok();
}

std::vector<SymbolDef> rules_engine_symbols() {
  return {{kWelcomelistSymbol, -100.0, "From address is in the welcome list (welcomelist_from)"},
          {kBlocklistSymbol, 100.0, "From address is in the block list (blocklist_from)"},
          {kWelcomelistAuthSymbol, -100.0, "Sender is in the welcome list and authenticated by SPF, DKIM or DMARC (welcomelist_auth)"},
          {kDefWelcomelistAuthSymbol, -7.5, "Sender is in the default welcome list and authenticated (def_welcomelist_auth)"},
          {kWelcomelistToSymbol, -6.0, "An envelope recipient is in the welcome list (welcomelist_to)"},
          {kBlocklistToSymbol, 10.0, "A recipient is in the block list (blocklist_to)"}};
}

namespace {

// One row per parser flag: where it is read, its symbol, its description.
struct FlagRow {
  bool (*on)(const Message& m);
  const char* symbol;
  const char* description;
};

const FlagRow kFlagTable[] = {
    {[](const Message& m) { return m.limits_hit.scan_bytes; }, "SCAN_TRUNCATED",
     "Message larger than max_scan_bytes: only its start was scanned"},
    {[](const Message& m) { return m.limits_hit.headers; }, "HEADERS_TOO_MANY", "More header fields than limits.max_headers"},
    {[](const Message& m) { return m.limits_hit.header_bytes; }, "HEADER_TOO_LONG",
     "A header field longer than limits.max_header_bytes"},
    {[](const Message& m) { return m.limits_hit.mime_depth; }, "MIME_TOO_DEEP",
     "MIME parts nested deeper than limits.max_mime_depth"},
    {[](const Message& m) { return m.limits_hit.parts; }, "MIME_TOO_MANY_PARTS", "More MIME parts than limits.max_parts"},
    {[](const Message& m) { return m.limits_hit.uris; }, "URI_TOO_MANY", "More links than limits.max_uris"},
    {[](const Message& m) { return m.limits_hit.text_bytes; }, "TEXT_TRUNCATED",
     "Decoded text longer than limits.max_text_bytes"},
    {[](const Message& m) { return m.defects.truncated_mime; }, "MIME_TRUNCATED",
     "A multipart message whose closing boundary never came"},
    {[](const Message& m) { return m.defects.nul_bytes; }, "NUL_IN_MESSAGE", "NUL bytes in the message"},
    {[](const Message& m) { return m.defects.eight_bit_headers; }, "HEADER_8BIT",
     "Raw 8-bit bytes in a header (not RFC 2047 encoded)"},
    {[](const Message& m) { return m.defects.bad_header_line; }, "HEADER_BAD_LINE",
     "A line in the header block that is not a header field"},
    {[](const Message& m) { return m.has_text_html && !m.has_text_plain; }, "MIME_HTML_ONLY",
     "Message has HTML but no plain-text part"},
};

constexpr const char* kHeadersTooMany = "HEADERS_TOO_MANY";

}  // namespace

std::vector<SymbolDef> MessageFlagsCheck::symbols() {
  std::vector<SymbolDef> out;
  for (const FlagRow& f : kFlagTable) out.push_back({f.symbol, 0.0, f.description});
  out.push_back({"HEADER_FORGED_MANY", 0.0,
                 "More forged X-Spam-*/Authentication-Results/tag fields than limits.max_header_deletions: refused"});
  return out;
}

Status MessageFlagsCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& /*side*/) const {
  const Message& m = ctx.message;
  for (const FlagRow& f : kFlagTable) {
    // The milter keeps no fields past max_headers: its census counted them.
    const bool on = f.on(m) || (f.symbol == std::string_view(kHeadersTooMany) && ctx.census != nullptr &&
                                ctx.census->fields() > max_headers_);
    if (on) hits.push_back({f.symbol, 1.0, std::string()});
  }
  // Removing them all could take down the MTA (Postfix's cleanup panics on
  // tens of thousands of header deletions); delivering them unremoved would
  // pass on forged verdicts. The message is refused: no real mail has this.
  if (ctx.census != nullptr && ctx.census->over_cap()) {
    const std::string n = std::to_string(ctx.census->forged());
    hits.emplace_back("HEADER_FORGED_MANY", 1.0, n + " fields to remove, at most " + std::to_string(ctx.census->cap()),
                      std::string(reply_text::kForgedMany1) + n + std::string(reply_text::kForgedMany2));
  }
  return Status::Ok();
}

}  // namespace spamgate
