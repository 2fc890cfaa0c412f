// regex.cc - PCRE2 compile and match (see regex.h).
#include "rules/regex.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace spamgate {
namespace {

// Escapes whose argument is in braces: \x{2019}, \o{101}, \p{L}, \N{U+2019},
// \g{1}, \k{name}. Their braces are never a repeat.
bool braced_escape(char c) {
  return c == 'x' || c == 'o' || c == 'p' || c == 'P' || c == 'N' || c == 'g' || c == 'k';
}

}  // namespace

// Length of the escape at p[i] == '\\': "\Q...\E" (to the end when there is
// no \E), "\x{...}" and its kin, "\cX", else the backslash and one byte.
// 0: an escape that is not closed ("\x{12" at the end).
std::size_t regex_escape_length(std::string_view p, std::size_t i) {
  if (i + 1 >= p.size()) return 1;
  char c = p[i + 1];
  if (c == 'Q') {
    std::size_t e = p.find("\\E", i + 2);
    return e == std::string_view::npos ? p.size() - i : e + 2 - i;
  }
  if (braced_escape(c) && i + 2 < p.size() && p[i + 2] == '{') {
    std::size_t e = p.find('}', i + 3);
    return e == std::string_view::npos ? 0 : e + 1 - i;
  }
  if (c == 'c') return i + 2 < p.size() ? 3 : 0;
  return 2;
}

// Length of the character class at p[i] == '[': "[]...]" and "[^]...]" hold
// a literal ']', "[:alpha:]" (and [.x.] [=x=]) nest, escapes count as one
// item. 0: not closed.
std::size_t regex_class_length(std::string_view p, std::size_t i) {
  std::size_t j = i + 1;
  if (j < p.size() && p[j] == '^') ++j;
  if (j < p.size() && p[j] == ']') ++j;
  while (j < p.size()) {
    char c = p[j];
    if (c == ']') return j + 1 - i;
    if (c == '\\') {
      std::size_t n = regex_escape_length(p, j);
      if (n == 0) return 0;
      j += n;
      continue;
    }
    if (c == '[' && j + 1 < p.size() && (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '=')) {
      const char term[] = {p[j + 1], ']', '\0'};
      std::size_t e = p.find(term, j + 2);
      if (e != std::string_view::npos &&
          std::all_of(p.begin() + static_cast<std::ptrdiff_t>(j + 2), p.begin() + static_cast<std::ptrdiff_t>(e),
                      [](char k) { return std::isalnum(static_cast<unsigned char>(k)) != 0 || k == '^'; })) {
        j = e + 2;
        continue;
      }
    }
    ++j;
  }
  return 0;
}

// "{m}", "{m,}" or "{m,n}" at p[i]: its length, else 0 (a literal brace).
std::size_t regex_counted_repeat(std::string_view p, std::size_t i) {
  std::size_t j = i + 1;
  auto digits = [&] {
    std::size_t s = j;
    while (j < p.size() && std::isdigit(static_cast<unsigned char>(p[j])) != 0) ++j;
    return j > s;
  };
  if (!digits()) return 0;
  if (j < p.size() && p[j] == ',') {
    ++j;
    digits();
  }
  return j < p.size() && p[j] == '}' ? j + 1 - i : 0;
}


std::size_t regex_repeat_length(std::string_view p, std::size_t i, bool& unbounded, bool& optional, bool& possessive) {
  unbounded = optional = possessive = false;
  if (i >= p.size()) return 0;
  std::size_t n = 0;
  if (p[i] == '*' || p[i] == '+' || p[i] == '?') {
    n = 1;
    unbounded = p[i] != '?';
    optional = p[i] != '+';
  } else if (p[i] == '{') {
    n = regex_counted_repeat(p, i);
    if (n == 0) return 0;
    std::string_view q = p.substr(i + 1, n - 2);
    std::size_t comma = q.find(',');
    unbounded = comma != std::string_view::npos && comma + 1 == q.size();
    optional = q.front() == '0';
  } else {
    return 0;
  }
  if (i + n < p.size() && p[i + n] == '+') {
    possessive = true;
    ++n;
  } else if (i + n < p.size() && p[i + n] == '?') {
    ++n;
  }
  return n;
}

std::size_t nested_repeat(std::string_view p) {
  struct Frame {
    int unbounded = 0;  // items repeated without limit
    int mandatory = 0;  // other items that must match
  };
  std::vector<Frame> stack(1);
  for (std::size_t i = 0; i < p.size();) {
    const char c = p[i];
    std::size_t n = 1;
    bool group_loose = false;  // the item is a group of only repeats and optional items
    if (c == '\\') {
      n = regex_escape_length(p, i);
      if (n == 0) return std::string_view::npos;
    } else if (c == '[') {
      n = regex_class_length(p, i);
      if (n == 0) return std::string_view::npos;
    } else if (c == '(') {
      if (p.substr(i, 3) == "(?#") {
        std::size_t e = p.find(')', i);
        if (e == std::string_view::npos) return std::string_view::npos;
        i = e + 1;
        continue;
      }
      std::size_t j = i + 1;
      if (j < p.size() && p[j] == '*') {  // (*VERB)
        std::size_t e = p.find(')', j);
        i = e == std::string_view::npos ? p.size() : e + 1;
        continue;
      }
      if (j < p.size() && p[j] == '?') {  // skip the group's kind: (?: (?= (?<name> (?i:
        ++j;
        if (j < p.size() && (p[j] == '<' || p[j] == '\'' || p[j] == 'P') && j + 1 < p.size() && p[j + 1] != '=' &&
            p[j + 1] != '!') {
          std::size_t e = p.find_first_of(">'", j + 1);
          j = e == std::string_view::npos ? p.size() : e + 1;
        } else if (j < p.size() && p[j] == '<') {
          j += 2;
        } else {
          while (j < p.size() && (std::isalpha(static_cast<unsigned char>(p[j])) != 0 || p[j] == '-' || p[j] == '^')) ++j;
          if (j < p.size() && (p[j] == ':' || p[j] == '=' || p[j] == '!' || p[j] == '>' || p[j] == '|')) ++j;
        }
      }
      stack.emplace_back();
      i = j;
      continue;
    } else if (c == ')') {
      if (stack.size() < 2) return std::string_view::npos;
      Frame inner = stack.back();
      stack.pop_back();
      group_loose = inner.unbounded > 0 && inner.mandatory == 0;
    } else if (c == '|' || c == '^' || c == '$') {
      ++i;
      continue;
    }
    bool unbounded = false, optional = false, possessive = false;
    std::size_t q = regex_repeat_length(p, i + n, unbounded, optional, possessive);
    if (group_loose && unbounded && !possessive) return i + n;
    Frame& f = stack.back();
    if ((unbounded && !possessive) || group_loose) ++f.unbounded;
    else if (!optional) ++f.mandatory;
    i += n + q;
  }
  return std::string_view::npos;
}

namespace {

// SpamAssassin's tag names: [A-Z][A-Z0-9]*(_[A-Z0-9]+)*.
bool is_tag_name(std::string_view n) {
  if (n.empty() || n.front() < 'A' || n.front() > 'Z' || n.back() == '_') return false;
  for (std::size_t i = 0; i < n.size(); ++i) {
    const char c = n[i];
    if (c == '_' ? n[i - 1] == '_' : !((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

// The template at p[i] == '%': the length of "%{NAME}" or "%{NAME(args)}"
// and its name (with the args), or 0.
std::size_t template_at(std::string_view p, std::size_t i, std::string_view& name) {
  if (p.substr(i, 2) != "%{" || (i > 0 && p[i - 1] == '\\')) return 0;
  std::size_t e = p.find('}', i + 2);
  if (e == std::string_view::npos) return 0;
  std::string_view n = p.substr(i + 2, e - i - 2);
  std::string_view base = n.substr(0, n.find('('));
  if (!is_tag_name(base)) return 0;
  if (base.size() < n.size() && (n.back() != ')' || n.find(')') != n.size() - 1)) return 0;
  name = n;
  return e + 1 - i;
}

// Per-thread match scratch: created on first use in each thread.
struct Scratch {
  Pcre2MatchData md{pcre2_match_data_create(1, nullptr)};
  Pcre2MatchContext ctx{pcre2_match_context_create(nullptr)};
  Pcre2JitStack stack{pcre2_jit_stack_create(32 * 1024, 512 * 1024, nullptr)};
  Scratch() {
    if (ctx && stack) pcre2_jit_stack_assign(ctx.get(), nullptr, stack.get());
  }
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

Result<Regex> Regex::compile(std::string_view pattern, std::string_view flags, bool jit) {
  std::uint32_t opts = flags.find('b') == std::string_view::npos ? PCRE2_UTF | PCRE2_MATCH_INVALID_UTF : 0;
  for (char f : flags) {
    switch (f) {
      case 'b': break;
      case 'i': opts |= PCRE2_CASELESS; break;
      case 'm': opts |= PCRE2_MULTILINE; break;
      case 's': opts |= PCRE2_DOTALL; break;
      case 'x': opts |= PCRE2_EXTENDED; break;
      default:
        return Status::InvalidArgument(std::string("unknown regex flag '") + f + "' (use i, m, s, x)");
    }
  }
  int err = 0;
  PCRE2_SIZE off = 0;
  Regex r;
  r.code_.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), opts,
                              &err, &off, nullptr));
  if (!r.code_) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof buf);
    return Status::InvalidArgument("bad regex at offset " + std::to_string(off) + ": " +
                                   reinterpret_cast<const char*>(buf));
  }
  r.jit_ = jit && pcre2_jit_compile(r.code_.get(), PCRE2_JIT_COMPLETE) == 0;
  std::uint32_t count = 0, entry = 0;
  PCRE2_SPTR table = nullptr;
  if (pcre2_pattern_info(r.code_.get(), PCRE2_INFO_NAMECOUNT, &count) == 0 && count > 0 &&
      pcre2_pattern_info(r.code_.get(), PCRE2_INFO_NAMEENTRYSIZE, &entry) == 0 &&
      pcre2_pattern_info(r.code_.get(), PCRE2_INFO_NAMETABLE, &table) == 0 && entry > 2) {
    for (std::uint32_t n = 0; n < count; ++n) {
      const PCRE2_SPTR e = table + static_cast<std::size_t>(n) * entry;
      std::string name(reinterpret_cast<const char*>(e + 2));
      if (is_tag_name(name)) r.names_.emplace_back(std::move(name), (e[0] << 8) | e[1]);
    }
  }
  r.pattern_.assign(pattern);
  r.flags_.assign(flags);
  return r;
}

Regex::Match Regex::match(std::string_view subject, std::uint32_t match_limit, std::size_t start) const {
  Match m;
  if (start > subject.size()) return m;
  Scratch& s = scratch();
  if (!s.md || !s.ctx) {
    m.outcome = Outcome::kError;
    m.error = PCRE2_ERROR_NOMEMORY;
    return m;
  }
  pcre2_set_match_limit(s.ctx.get(), match_limit);
  int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                       start, 0, s.md.get(), s.ctx.get());
  if (rc == PCRE2_ERROR_NOMATCH) return m;
  if (rc < 0) {
    m.outcome = Outcome::kError;
    m.error = rc;
    return m;
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(s.md.get());
  m.outcome = Outcome::kMatch;
  m.begin = ov[0];
  m.end = ov[1] < ov[0] ? ov[0] : ov[1];  // \K can put the end before the start
  if (m.end > subject.size()) m.end = subject.size();
  if (m.begin > m.end) m.begin = m.end;
  return m;
}

Regex::Match Regex::match_group(std::string_view subject, std::uint32_t match_limit, int group) const {
  Match m;
  thread_local Pcre2MatchData md(pcre2_match_data_create(10, nullptr));
  Scratch& s = scratch();
  if (!md || !s.ctx || group < 1 || group > 9) {
    m.outcome = Outcome::kError;
    m.error = PCRE2_ERROR_NOMEMORY;
    return m;
  }
  pcre2_set_match_limit(s.ctx.get(), match_limit);
  int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, md.get(),
                       s.ctx.get());
  if (rc == PCRE2_ERROR_NOMATCH) return m;
  if (rc < 0) {
    m.outcome = Outcome::kError;
    m.error = rc;
    return m;
  }
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
  if (rc != 0 && group >= rc) return m;
  const PCRE2_SIZE b = ov[2 * group], e = ov[2 * group + 1];
  if (b == PCRE2_UNSET || e < b || e > subject.size()) return m;
  m.outcome = Outcome::kMatch;
  m.begin = b;
  m.end = e;
  return m;
}

std::vector<std::pair<std::string, std::string>> Regex::named_captures(std::string_view subject,
                                                                        std::uint32_t match_limit) const {
  std::vector<std::pair<std::string, std::string>> out;
  if (names_.empty()) return out;
  Pcre2MatchData md(pcre2_match_data_create_from_pattern(code_.get(), nullptr));
  Scratch& s = scratch();
  if (!md || !s.ctx) return out;
  pcre2_set_match_limit(s.ctx.get(), match_limit);
  int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0, 0, md.get(),
                       s.ctx.get());
  if (rc < 0) return out;
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
  const std::uint32_t pairs = pcre2_get_ovector_count(md.get());
  for (const auto& [name, group] : names_) {
    if (group < 0 || static_cast<std::uint32_t>(group) >= pairs) continue;
    const PCRE2_SIZE b = ov[2 * group], e = ov[2 * group + 1];
    if (b == PCRE2_UNSET || e <= b || e > subject.size()) continue;
    out.emplace_back(name, std::string(subject.substr(b, e - b)));
  }
  return out;
}

std::vector<std::string> regex_templates(std::string_view pattern) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    std::string_view name;
    if (std::size_t n = template_at(pattern, i, name); n > 0) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.emplace_back(name);
      i += n - 1;
    }
  }
  return names;
}

std::optional<std::string> regex_fill_templates(
    std::string_view pattern, const std::function<std::optional<std::string>(std::string_view)>& value) {
  std::string out;
  out.reserve(pattern.size());
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    std::string_view name;
    if (std::size_t n = template_at(pattern, i, name); n > 0) {
      std::optional<std::string> v = value(name);
      if (!v) return std::nullopt;
      out += *v;
      i += n - 1;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

std::string regex_line_anchors(std::string_view p) {
  std::string out;
  out.reserve(p.size());
  for (std::size_t i = 0; i < p.size();) {
    std::size_t n = 1;
    if (p[i] == '\\') {
      n = regex_escape_length(p, i);
      if (n == 2 && (p[i + 1] == 'A' || p[i + 1] == 'z' || p[i + 1] == 'Z')) {
        out += p[i + 1] == 'A' ? '^' : '$';
        i += 2;
        continue;
      }
    } else if (p[i] == '[') {
      n = regex_class_length(p, i);
    }
    if (n == 0) n = p.size() - i;  // not closed: PCRE2 reports it
    out.append(p.substr(i, n));
    i += n;
  }
  return out;
}

std::string regex_quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && std::isalnum(u) == 0 && c != '_') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace spamgate
