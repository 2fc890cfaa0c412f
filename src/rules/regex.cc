// regex.cc - PCRE2 compile and match (see regex.h).
#include "rules/regex.h"

namespace spamgate {
namespace {

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

Result<Regex> Regex::compile(std::string_view pattern, std::string_view flags) {
  std::uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;
  for (char f : flags) {
    switch (f) {
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
  r.jit_ = pcre2_jit_compile(r.code_.get(), PCRE2_JIT_COMPLETE) == 0;
  r.pattern_.assign(pattern);
  r.flags_.assign(flags);
  return r;
}

Regex::Match Regex::match(std::string_view subject, std::uint32_t match_limit) const {
  Match m;
  Scratch& s = scratch();
  if (!s.md || !s.ctx) {
    m.outcome = Outcome::kError;
    m.error = PCRE2_ERROR_NOMEMORY;
    return m;
  }
  pcre2_set_match_limit(s.ctx.get(), match_limit);
  int rc = pcre2_match(code_.get(), reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(),
                       0, 0, s.md.get(), s.ctx.get());
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

}  // namespace spamgate
