// prefilter.cc - Prefilter (see prefilter.h).
#include "rules/prefilter.h"

#include <glib.h>
#include <hs/hs.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <string>

namespace spamgate {

namespace {

struct ScratchFree {
  void operator()(hs_scratch_t* s) const { hs_free_scratch(s); }
};
struct CompileErrorFree {
  void operator()(hs_compile_error_t* e) const { hs_free_compile_error(e); }
};

// This thread's scratch, grown to fit every database it has scanned with.
struct ThreadScratch {
  std::unique_ptr<hs_scratch_t, ScratchFree> scratch;
  std::vector<unsigned long> fitted;  // serials of the databases it fits
};
ThreadScratch& thread_scratch() {
  thread_local ThreadScratch t;
  return t;
}

std::atomic<unsigned long> g_serial{1};

// The pattern with every counted repeat ({m}, {m,}, {m,n}) made unbounded
// (*): a superset, which is all a prefilter needs, and Hyperscan compiles
// large bounded repeats very slowly (a {0,2000} gap: over a minute).
std::string widen(const std::string& p) {
  std::string out;
  out.reserve(p.size());
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      out += p.substr(i, 2);
      ++i;
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];  // "[]...]": a literal ]
      continue;
    }
    if (c == '{') {
      std::size_t j = i + 1;
      while (j < p.size() && (std::isdigit(static_cast<unsigned char>(p[j])) != 0 || p[j] == ',')) ++j;
      if (j < p.size() && p[j] == '}' && j > i + 1 && std::isdigit(static_cast<unsigned char>(p[i + 1])) != 0) {
        out += '*';
        i = j;
        continue;
      }
    }
    out += c;
  }
  return out;
}

// Long alternations (generated look-alike lists) compile slowly and gain
// little: they run always.
constexpr std::size_t kMaxPrefilterPattern = 1000;

int on_match(unsigned int id, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  (*static_cast<std::vector<char>*>(ctx))[id] = 1;
  return 0;
}

}  // namespace

Prefilter::~Prefilter() {
  for (hs_database_t* db : dbs_) hs_free_database(db);
}

std::shared_ptr<const Prefilter> Prefilter::build(const std::vector<Pattern>& patterns) {
  std::shared_ptr<Prefilter> p(new Prefilter());
  p->serial_ = g_serial++;
  p->always_.assign(patterns.size(), 1);
  std::vector<unsigned> ids;
  std::vector<unsigned> flags;
  for (unsigned i = 0; i < patterns.size(); ++i) {
    const Pattern& pat = patterns[i];
    if (pat.flags.find('x') != std::string::npos || pat.regex.size() > kMaxPrefilterPattern) continue;
    unsigned f = HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY | HS_FLAG_UTF8;
    if (pat.flags.find('i') != std::string::npos) f |= HS_FLAG_CASELESS;
    if (pat.flags.find('s') != std::string::npos) f |= HS_FLAG_DOTALL;
    if (pat.flags.find('m') != std::string::npos) f |= HS_FLAG_MULTILINE;
    ids.push_back(i);
    flags.push_back(f);
  }
  // In chunks of kChunk patterns: Hyperscan's compiler needs memory that
  // grows faster than the pattern count (one database of all ~100 shipped
  // body rules peaked at +22 MB RSS), and a refused pattern costs a
  // recompile of its chunk only. Patterns Hyperscan refuses are dropped one
  // by one and run always.
  constexpr std::size_t kChunk = 16;
  for (std::size_t first = 0; first < ids.size(); first += kChunk) {
    std::vector<unsigned> cid(ids.begin() + static_cast<std::ptrdiff_t>(first),
                              ids.begin() + static_cast<std::ptrdiff_t>(std::min(ids.size(), first + kChunk)));
    std::vector<unsigned> cflags(flags.begin() + static_cast<std::ptrdiff_t>(first),
                                 flags.begin() + static_cast<std::ptrdiff_t>(std::min(flags.size(), first + kChunk)));
    while (!cid.empty()) {
      std::vector<std::string> widened;
      for (unsigned i : cid) widened.push_back(widen(patterns[i].regex));
      std::vector<const char*> exprs;
      for (const std::string& w : widened) exprs.push_back(w.c_str());
      hs_database_t* db = nullptr;
      hs_compile_error_t* raw_err = nullptr;
      hs_error_t rc = hs_compile_multi(exprs.data(), cflags.data(), cid.data(), static_cast<unsigned>(cid.size()),
                                       HS_MODE_BLOCK, nullptr, &db, &raw_err);
      std::unique_ptr<hs_compile_error_t, CompileErrorFree> err(raw_err);
      if (rc == HS_SUCCESS) {
        p->dbs_.push_back(db);
        for (unsigned i : cid) p->always_[i] = 0;
        p->compiled_ += cid.size();
        break;
      }
      if (!err || err->expression < 0 || static_cast<std::size_t>(err->expression) >= cid.size()) break;
      cid.erase(cid.begin() + err->expression);
      cflags.erase(cflags.begin() + err->expression);
    }
  }
  return p;
}

bool Prefilter::candidates(std::string_view text, std::vector<char>& out) const {
  out = always_;
  if (dbs_.empty()) return false;
  if (!g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr)) return false;
  ThreadScratch& t = thread_scratch();
  if (std::find(t.fitted.begin(), t.fitted.end(), serial_) == t.fitted.end()) {
    hs_scratch_t* raw = t.scratch.release();
    for (hs_database_t* db : dbs_) {
      if (hs_alloc_scratch(db, &raw) != HS_SUCCESS) {
        t.scratch.reset(raw);
        return false;
      }
    }
    t.scratch.reset(raw);
    t.fitted.push_back(serial_);
    if (t.fitted.size() > 64) t.fitted.erase(t.fitted.begin());  // old snapshots
  }
  const unsigned len = static_cast<unsigned>(std::min<std::size_t>(text.size(), 0xFFFFFFFFu));
  for (hs_database_t* db : dbs_)
    if (hs_scan(db, text.data(), len, 0, t.scratch.get(), on_match, &out) != HS_SUCCESS) {
      out = always_;
      std::fill(out.begin(), out.end(), 1);
      return false;
    }
  return true;
}

}  // namespace spamgate
