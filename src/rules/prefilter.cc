// prefilter.cc - Prefilter (see prefilter.h).
#include "rules/prefilter.h"

#include <glib.h>
#include <hs/hs.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

#include "rules/prefilter_cache.h"
#include "rules/regex.h"
#include "util/c_handle.h"

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

// Whether PCRE2 itself reads the "{...}" at [at, at+len) of `pattern` as a
// counted repeat: with it replaced by "{2,1}" a repeat fails to compile
// with "numbers out of order", anything else does not. The safety net under
// the scanner above: a rewrite PCRE2 does not confirm is not made.
bool pcre2_says_repeat(std::string_view pattern, std::uint32_t opts, std::size_t at, std::size_t len) {
  std::string probe(pattern.substr(0, at));
  probe += "{2,1}";
  probe += pattern.substr(at + len);
  int err = 0;
  PCRE2_SIZE off = 0;
  Pcre2Code code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(probe.data()), probe.size(), opts, &err, &off, nullptr));
  return !code && err == PCRE2_ERROR_QUANTIFIER_OUT_OF_ORDER;
}

}  // namespace

// Walks the pattern item by item as PCRE2 does: escapes (\x{...}, \Q...\E),
// classes and (?#comments) are copied whole; a counted repeat outside them
// becomes '*' ({0,n}) or '+' once PCRE2 confirms it is one; \b and \B are
// dropped (an assertion left out only widens, and Hyperscan compiles word
// boundaries in UTF-8 mode ten times slower).
Result<std::string> Prefilter::widen(std::string_view p, std::string_view flags, bool drop_anchors) {
  if (flags.find('x') != std::string_view::npos)
    return Status::InvalidArgument("the x flag is not prefiltered");
  std::uint32_t opts = flags.find('b') == std::string_view::npos ? PCRE2_UTF | PCRE2_MATCH_INVALID_UTF : 0;
  if (flags.find('i') != std::string_view::npos) opts |= PCRE2_CASELESS;
  if (flags.find('m') != std::string_view::npos) opts |= PCRE2_MULTILINE;
  if (flags.find('s') != std::string_view::npos) opts |= PCRE2_DOTALL;
  std::string out;
  out.reserve(p.size());
  for (std::size_t i = 0; i < p.size();) {
    const char c = p[i];
    std::size_t n = 1;
    if (c == '\\') {
      n = regex_escape_length(p, i);
      if (n == 0) return Status::InvalidArgument("escape at offset " + std::to_string(i) + " is not closed");
      if (n == 2 && (p[i + 1] == 'b' || p[i + 1] == 'B')) {
        i += 2;
        continue;
      }
    } else if (c == '[') {
      n = regex_class_length(p, i);
      if (n == 0) return Status::InvalidArgument("character class at offset " + std::to_string(i) + " is not closed");
    } else if (c == '(' && p.substr(i, 3) == "(?#") {
      std::size_t e = p.find(')', i);
      if (e == std::string_view::npos) return Status::InvalidArgument("comment is not closed");
      n = e + 1 - i;
    } else if (c == '(' && i + 1 < p.size() && p[i + 1] == '?') {
      // Inline options: (?x) changes what '#' and white space mean.
      std::size_t j = i + 2;
      while (j < p.size() && (std::isalpha(static_cast<unsigned char>(p[j])) != 0 || p[j] == '-' || p[j] == '^')) ++j;
      if (j < p.size() && (p[j] == ')' || p[j] == ':') &&
          p.substr(i + 2, j - i - 2).find('x') != std::string_view::npos)
        return Status::InvalidArgument("inline (?x) is not prefiltered");
    } else if ((c == '^' || c == '$') && drop_anchors) {
      ++i;
      continue;
    } else if (c == '{') {
      n = regex_counted_repeat(p, i);
      if (n > 0) {
        if (!pcre2_says_repeat(p, opts, i, n))
          return Status::InvalidArgument("'" + std::string(p.substr(i, n)) + "' at offset " + std::to_string(i) +
                                         " is a repeat for the prefilter but not for PCRE2");
        // {0,n} may match nothing: '*'; {m,n} with m > 0 must match: '+'.
        out += p[i + 1] == '0' ? '*' : '+';
        i += n;
        continue;
      }
      n = 1;
    }
    out.append(p.substr(i, n));
    i += n;
  }
  return out;
}


namespace {

// required_part(): a part of a regex that every match of it contains, for
// patterns too long to give Hyperscan whole (SpamAssassin's generated
// look-alike rules: FUZZY_*, __FILL_THIS_FORM_*). Any run of adjacent
// items of a sequence, repeats included, matched somewhere inside the
// match, in the same text, with the same flags; its weight counts the items
// that must match (no '?', '*', {0,n}). Zero-width items (^ $ \b
// lookarounds) are left out of a run: that only widens it. A group too long
// gives a part of its content. Of an alternation, each branch gives its part
// and the parts are alternated.
struct Part {
  std::string text;
  double weight = 0;  // how rare a match is, ~ its literal bytes: 0 = no part
};

struct Item {
  std::string_view text;   // atom and repeat
  std::string_view atom;
  std::string_view inner;  // a group's content (after "(?:", "(", "(?i:" ...)
  std::string_view options;  // a group's inline options ("i" of "(?i:"), which its content needs
  std::size_t min = 1;     // repeat minimum
  bool exact = true;       // no repeat
  bool zero_width = false;
  bool group = false;
  double weight = 0;       // of one match of the atom
};

// Items of one branch list: false when the regex holds what this cannot
// reason about (back references, inline options, recursion, verbs).
bool parse_items(std::string_view p, std::vector<std::vector<Item>>& branches);

double branches_weight(const std::vector<std::vector<Item>>& branches) {
  double w = -1;
  for (const auto& items : branches) {
    double sum = 0;
    for (const Item& it : items) sum += it.weight * static_cast<double>(it.min);
    w = w < 0 ? sum : std::min(w, sum);
  }
  return w < 0 ? 0 : w;
}

bool parse_items(std::string_view p, std::vector<std::vector<Item>>& branches) {
  branches.assign(1, {});
  for (std::size_t i = 0; i < p.size();) {
    const char c = p[i];
    Item it;
    std::size_t n = 1;
    if (c == '|') {
      branches.emplace_back();
      ++i;
      continue;
    }
    if (c == '\\') {
      n = regex_escape_length(p, i);
      if (n == 0) return false;
      const char e = p[i + 1];
      // \xhh and \0oo are one item (PCRE2 reads up to two more digits).
      if (n == 2 && (e == 'x' || e == '0')) {
        auto digit = [&](char d) { return e == 'x' ? std::isxdigit(static_cast<unsigned char>(d)) != 0 : d >= '0' && d <= '7'; };
        while (n < 4 && i + n < p.size() && digit(p[i + n])) ++n;
      }
      if (std::isdigit(static_cast<unsigned char>(e)) != 0 && e != '0') return false;  // back reference
      if (e == 'g' || e == 'k') return false;
      if (std::strchr("bBAzZGK", e) != nullptr && n == 2) {
        it.zero_width = true;
      } else if (e == 'Q') {
        it.weight = static_cast<double>(n > 4 ? n - 4 : 0);
      } else if (std::strchr("dwshvRXNCpP", e) != nullptr) {
        it.weight = 0.2;
      } else if (std::strchr("DWSHV", e) != nullptr) {
        it.weight = 0.05;
      } else {
        it.weight = 1;
      }
    } else if (c == '[') {
      n = regex_class_length(p, i);
      if (n == 0) return false;
      it.weight = i + 1 < p.size() && p[i + 1] == '^' ? 0.1 : 0.5;
    } else if (c == '(') {
      if (p.substr(i, 2) == "(*") return false;  // verbs
      if (p.substr(i, 3) == "(?#") {
        std::size_t e = p.find(')', i);
        if (e == std::string_view::npos) return false;
        i = e + 1;
        continue;
      }
      // The group's end, minding escapes, classes and nesting.
      int depth = 0;
      std::size_t j = i;
      for (; j < p.size(); ++j) {
        if (p[j] == '\\') {
          std::size_t k = regex_escape_length(p, j);
          if (k == 0) return false;
          j += k - 1;
        } else if (p[j] == '[') {
          std::size_t k = regex_class_length(p, j);
          if (k == 0) return false;
          j += k - 1;
        } else if (p[j] == '(') {
          ++depth;
        } else if (p[j] == ')' && --depth == 0) {
          break;
        }
      }
      if (j >= p.size()) return false;
      n = j + 1 - i;
      std::string_view body = p.substr(i + 1, n - 2);
      std::size_t head = 0;  // what names the group's kind
      if (!body.empty() && body[0] == '?') {
        if (body.size() < 2) return false;
        const char k = body[1];
        if (k == '=' || k == '!' || (k == '<' && body.size() > 2 && (body[2] == '=' || body[2] == '!'))) {
          it.zero_width = true;
        } else if (k == ':' || k == '>' || k == '|') {
          if (k == '|') return false;  // branch reset renumbers groups
          head = 2;
        } else if (k == 'P' || k == '<' || k == '\'') {
          if (k == 'P' && body.size() > 2 && body[2] != '<') return false;  // (?P=name) (?P>name)
          std::size_t e = body.find_first_of(">'", 2);
          if (e == std::string_view::npos) return false;
          head = e + 1;
        } else {
          std::size_t f = 1;
          while (f < body.size() && (std::isalpha(static_cast<unsigned char>(body[f])) != 0 || body[f] == '-' || body[f] == '^')) ++f;
          if (f == 1 || f >= body.size() || body[f] != ':') return false;  // (?i) (?R) (?1) (?(cond)
          head = f + 1;
          it.options = body.substr(1, f - 1);
        }
      }
      if (!it.zero_width) {
        it.group = true;
        it.inner = body.substr(head);
        std::vector<std::vector<Item>> sub;
        if (!parse_items(it.inner, sub)) return false;
        it.weight = branches_weight(sub);
      }
    } else if (c == '^' || c == '$') {
      it.zero_width = true;
    } else if (c == '.') {
      it.weight = 0.05;
    } else if (c == ')') {
      return false;
    } else {
      it.weight = 1;
    }
    it.atom = p.substr(i, n);
    bool unbounded = false, optional = false, possessive = false;
    const std::size_t q = regex_repeat_length(p, i + n, unbounded, optional, possessive);
    if (q > 0) {
      it.exact = false;
      it.min = optional ? 0 : 1;
      if (p[i + n] == '{') it.min = std::strtoul(std::string(p.substr(i + n + 1, q)).c_str(), nullptr, 10);
      if (it.zero_width) it.min = 0;
    }
    if (it.zero_width) it.weight = 0;
    it.text = p.substr(i, n + q);
    branches.back().push_back(it);
    i += n + q;
  }
  return true;
}

Part best_part(std::string_view p, std::size_t budget, int depth);

Part sequence_part(const std::vector<Item>& items, std::size_t budget, int depth) {
  Part best;
  auto consider = [&](Part cand) {
    if (cand.weight > best.weight && cand.text.size() <= budget) best = std::move(cand);
  };
  for (std::size_t a = 0; a < items.size(); ++a) {
    const Item& first = items[a];
    if (first.zero_width || first.min == 0) continue;
    // A run of adjacent items from here.
    Part run;
    for (std::size_t b = a; b < items.size(); ++b) {
      const Item& it = items[b];
      if (it.zero_width) continue;
      if (run.text.size() + it.text.size() > budget) break;
      run.text += it.text;
      run.weight += it.weight * static_cast<double>(std::min<std::size_t>(it.min, 8));
      consider(run);
    }
    // The atom once (a repeat's), or, too long, a part of a group's content.
    if (first.atom.size() <= budget) {
      consider({std::string(first.atom), first.weight});
    } else if (first.group && depth < 16) {
      const std::size_t wrap = first.options.empty() ? 0 : first.options.size() + 4;
      if (budget <= wrap) continue;
      Part inner = best_part(first.inner, budget - wrap, depth + 1);
      if (wrap > 0 && inner.weight > 0) inner.text = "(?" + std::string(first.options) + ":" + inner.text + ")";
      consider(std::move(inner));
    }
  }
  return best;
}

Part best_part(std::string_view p, std::size_t budget, int depth) {
  std::vector<std::vector<Item>> branches;
  if (!parse_items(p, branches)) return {};
  if (branches.size() == 1) return sequence_part(branches[0], budget, depth);
  const std::size_t overhead = 4 + branches.size();
  if (budget <= overhead) return {};
  const std::size_t each = (budget - overhead) / branches.size();
  Part out{"(?:", -1};
  for (std::size_t b = 0; b < branches.size(); ++b) {
    Part part = sequence_part(branches[b], each, depth);
    if (part.weight <= 0) return {};
    if (b > 0) out.text.push_back('|');
    out.text += part.text;
    out.weight = out.weight < 0 ? part.weight : std::min(out.weight, part.weight);
  }
  out.text.push_back(')');
  return out;
}

}  // namespace

std::optional<std::pair<std::string, double>> Prefilter::required_part(std::string_view regex, std::string_view flags,
                                                                       std::size_t budget) {
  if (flags.find('x') != std::string_view::npos) return std::nullopt;
  Part part = best_part(regex, budget, 0);
  if (part.weight <= 0) return std::nullopt;
  return std::make_pair(std::move(part.text), part.weight);
}

namespace {

// Hyperscan compiles long patterns (generated look-alike lists) slowly: one
// longer than this is prefiltered on a required part of it (required_part())
// no longer than this, or else runs always.
constexpr std::size_t kMaxPrefilterPattern = 1000;
// A part rarer than about three literal bytes; below that nearly every
// text would pass anyway.
constexpr double kMinPartWeight = 3;

struct MatchTarget {
  const std::vector<unsigned>* ids;  // the chunk's local id -> pattern index
  std::vector<char>* out;
};

int on_match(unsigned int id, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  auto* t = static_cast<MatchTarget*>(ctx);
  if (id < t->ids->size()) (*t->out)[(*t->ids)[id]] = 1;
  return 0;
}

// Compiled chunks in use by some snapshot, by content: a reload that finds
// its chunk here shares it instead of compiling it again.
std::mutex g_chunks_mutex;
std::unordered_map<std::string, std::weak_ptr<const PrefilterChunk>> g_chunks;

std::shared_ptr<const PrefilterChunk> cached_chunk(const std::string& key) {
  std::lock_guard<std::mutex> lock(g_chunks_mutex);
  auto it = g_chunks.find(key);
  return it == g_chunks.end() ? nullptr : it->second.lock();
}

void remember_chunk(const std::string& key, const std::shared_ptr<const PrefilterChunk>& chunk) {
  std::lock_guard<std::mutex> lock(g_chunks_mutex);
  for (auto it = g_chunks.begin(); it != g_chunks.end();) {  // chunks no snapshot uses any more
    if (it->second.expired()) it = g_chunks.erase(it);
    else ++it;
  }
  g_chunks[key] = chunk;
}

// One database of `exprs` (ids 0..n-1). A pattern the compiler refuses is
// dropped (the rest compiled again) and marked with the reason.
std::shared_ptr<const PrefilterChunk> compile_chunk(std::vector<const char*> exprs, std::vector<unsigned> flags) {
  auto chunk = std::make_shared<PrefilterChunk>();
  chunk->problems.assign(exprs.size(), std::string());
  std::vector<unsigned> cid(exprs.size());
  for (unsigned i = 0; i < cid.size(); ++i) cid[i] = i;
  while (!cid.empty()) {
    hs_database_t* db = nullptr;
    hs_compile_error_t* raw_err = nullptr;
    hs_error_t rc = hs_compile_multi(exprs.data(), flags.data(), cid.data(), static_cast<unsigned>(cid.size()),
                                     HS_MODE_BLOCK, nullptr, &db, &raw_err);
    std::unique_ptr<hs_compile_error_t, CompileErrorFree> err(raw_err);
    if (rc == HS_SUCCESS) {
      chunk->db.reset(db);
      return chunk;
    }
    if (!err || err->expression < 0 || static_cast<std::size_t>(err->expression) >= cid.size()) {
      for (unsigned i : cid) chunk->problems[i] = std::string("Hyperscan: ") + (err ? err->message : "refused");
      return chunk;
    }
    const auto e = static_cast<std::ptrdiff_t>(err->expression);
    chunk->problems[cid[static_cast<std::size_t>(e)]] = std::string("Hyperscan: ") + err->message;
    cid.erase(cid.begin() + e);
    exprs.erase(exprs.begin() + e);
    flags.erase(flags.begin() + e);
  }
  return chunk;
}

// What Hyperscan refuses outright (\K, \R, verbs, embedded anchors), found
// here one pattern at a time instead of costing a recompile of its chunk;
// "" when it takes the pattern.
std::string hyperscan_refuses(const std::string& pattern, unsigned flags) {
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* raw_err = nullptr;
  if (hs_expression_info(pattern.c_str(), flags, &info, &raw_err) != HS_SUCCESS) {
    std::unique_ptr<hs_compile_error_t, CompileErrorFree> err(raw_err);
    return err ? err->message : "refused";
  }
  std::free(info);  // hs_expression_info allocates with the default (malloc) allocator
  return std::string();
}

}  // namespace

std::shared_ptr<const Prefilter> Prefilter::build(const std::vector<Pattern>& patterns, const std::string& cache_dir) {
  std::shared_ptr<Prefilter> p(new Prefilter());
  p->serial_ = g_serial++;
  p->always_.assign(patterns.size(), 1);
  p->problems_.assign(patterns.size(), std::string());
  std::vector<unsigned> ids;
  std::vector<unsigned> flags;
  std::vector<std::string> widened;
  std::vector<char> whole_long;  // a long pattern compiled whole (with a cache)
  for (unsigned i = 0; i < patterns.size(); ++i) {
    const Pattern& pat = patterns[i];
    std::string regex = pat.regex;
    // With a cache a long pattern is compiled whole, once (~0.1-1 s each);
    // without, on a part of it, at every start.
    const bool whole = regex.size() > kMaxPrefilterPattern && !cache_dir.empty();
    if (regex.size() > kMaxPrefilterPattern && !whole) {
      auto part = required_part(regex, pat.flags, kMaxPrefilterPattern);
      if (!part || part->second < kMinPartWeight) {
        p->problems_[i] = "longer than " + std::to_string(kMaxPrefilterPattern) +
                          " characters, with no short, selective part every match must contain";
        continue;
      }
      regex = std::move(part->first);
    }
    auto w = widen(regex, pat.flags);
    if (!w.ok()) {
      p->problems_[i] = w.status().message();
      continue;
    }
    unsigned f = HS_FLAG_PREFILTER | HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
    if (pat.flags.find('b') == std::string::npos) f |= HS_FLAG_UTF8;
    if (pat.flags.find('i') != std::string::npos) f |= HS_FLAG_CASELESS;
    if (pat.flags.find('s') != std::string::npos) f |= HS_FLAG_DOTALL;
    if (pat.flags.find('m') != std::string::npos) f |= HS_FLAG_MULTILINE;
    std::string refused = hyperscan_refuses(w.value(), f);
    if (refused.find("anchors") != std::string::npos) {
      // "Embedded start anchors not supported" (^ after other items, as in
      // /^Message-Id:.*?^Received:/m): without its anchors the pattern
      // only matches more.
      auto loose = widen(regex, pat.flags, true);
      if (loose.ok() && hyperscan_refuses(loose.value(), f).empty()) {
        w = std::move(loose);
        refused.clear();
      }
    }
    if (!refused.empty()) {
      p->problems_[i] = "Hyperscan: " + refused;
      continue;
    }
    ids.push_back(i);
    flags.push_back(f);
    widened.push_back(std::move(w.value()));
    whole_long.push_back(whole ? 1 : 0);
  }
  // In chunks: Hyperscan's compiler needs memory that grows faster than the
  // pattern count, and one scan per database costs ~0.2 ms per 20 KB text,
  // so chunks hold up to kMaxChunk patterns (compile memory: +20 MB RSS for
  // phrases). A chunk ends where a pattern's hash says so (content-defined,
  // as in rsync), so an edit in a large file changes one chunk, not every
  // chunk after it: a reload reuses the compiled chunks of the snapshot in
  // use and compiles only what changed.
  // Byte-mode patterns (no HS_FLAG_UTF8: SpamAssassin's set) go in chunks
  // of their own, so a text that is not UTF-8 is still prefiltered for them.
  // Long patterns compiled whole go in small chunks of their own: the
  // compiler's time grows faster than their count (49 of SpamAssassin's:
  // 16 s one by one, 33 s in one database).
  auto group_of = [&](std::size_t k) { return ((flags[k] & HS_FLAG_UTF8) != 0 ? 2 : 0) + whole_long[k]; };
  {
    std::vector<std::size_t> order(ids.size());
    for (std::size_t k = 0; k < order.size(); ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return group_of(a) < group_of(b); });
    std::vector<unsigned> ids2, flags2;
    std::vector<std::string> widened2;
    std::vector<char> whole2;
    for (std::size_t k : order) {
      ids2.push_back(ids[k]);
      flags2.push_back(flags[k]);
      widened2.push_back(std::move(widened[k]));
      whole2.push_back(whole_long[k]);
    }
    ids.swap(ids2);
    flags.swap(flags2);
    widened.swap(widened2);
    whole_long.swap(whole2);
  }
  constexpr std::size_t kMinChunk = 64, kMaxChunk = 2048, kBoundary = 512, kMaxLongChunk = 8;
  std::vector<std::size_t> starts;  // into ids
  for (std::size_t k = 0; k < ids.size(); ++k) {
    const std::size_t size = starts.empty() ? 0 : k - starts.back();
    const bool kind_changes = k > 0 && group_of(k) != group_of(k - 1);
    if (starts.empty() || size >= (whole_long[k] != 0 ? kMaxLongChunk : kMaxChunk) || kind_changes ||
        (size >= kMinChunk && std::hash<std::string>{}(widened[k - 1]) % kBoundary == 0))
      starts.push_back(k);
  }
  for (std::size_t c = 0; c < starts.size(); ++c) {
    const std::size_t first = starts[c], last = c + 1 < starts.size() ? starts[c + 1] : ids.size();
    std::string key;
    for (std::size_t k = first; k < last; ++k) {
      key += std::to_string(flags[k]);
      key += '\x1f';
      key += widened[k];
      key += '\x1e';
    }
    std::shared_ptr<const PrefilterChunk> chunk = cached_chunk(key);
    std::string cache_error;
    if (chunk) {
      ++p->reused_;
    } else if (!cache_dir.empty() && (chunk = read_cached_chunk(cache_dir, key, last - first, cache_error))) {
      ++p->from_disk_;
      remember_chunk(key, chunk);
    } else {
      std::vector<const char*> exprs;
      for (std::size_t k = first; k < last; ++k) exprs.push_back(widened[k].c_str());
      chunk = compile_chunk(exprs, std::vector<unsigned>(flags.begin() + static_cast<std::ptrdiff_t>(first),
                                                          flags.begin() + static_cast<std::ptrdiff_t>(last)));
      remember_chunk(key, chunk);
      std::string write_error;
      if (!cache_dir.empty() && !write_cached_chunk(cache_dir, key, *chunk, write_error) && cache_error.empty())
        cache_error = write_error;
    }
    if (!cache_error.empty() && p->cache_problem_.empty()) p->cache_problem_ = cache_error;
    std::vector<unsigned> global(ids.begin() + static_cast<std::ptrdiff_t>(first), ids.begin() + static_cast<std::ptrdiff_t>(last));
    for (std::size_t local = 0; local < global.size(); ++local) {
      if (chunk->problems[local].empty()) {
        p->always_[global[local]] = 0;
        ++p->compiled_;
      } else {
        p->problems_[global[local]] = chunk->problems[local];
      }
    }
    if (chunk->db) {
      p->chunks_.push_back(std::move(chunk));
      p->ids_.push_back(std::move(global));
      p->utf8_.push_back((flags[first] & HS_FLAG_UTF8) != 0 ? 1 : 0);
    }
  }
  return p;
}

void PrefilterChunk::DatabaseFree::operator()(hs_database* db) const { hs_free_database(db); }

bool Prefilter::candidates(std::string_view text, std::vector<char>& out) const {
  out = always_;
  if (chunks_.empty()) return false;
  // Hyperscan's UTF-8 databases must not see invalid UTF-8: their patterns
  // then run (marked candidates); the byte-mode chunks still scan.
  const bool utf8_ok = std::find(utf8_.begin(), utf8_.end(), 1) == utf8_.end() ||
                       g_utf8_validate(text.data(), static_cast<gssize>(text.size()), nullptr);
  if (!utf8_ok && std::find(utf8_.begin(), utf8_.end(), 0) == utf8_.end()) return false;
  ThreadScratch& t = thread_scratch();
  if (std::find(t.fitted.begin(), t.fitted.end(), serial_) == t.fitted.end()) {
    hs_scratch_t* raw = t.scratch.release();
    for (const auto& c : chunks_) {
      if (hs_alloc_scratch(c->db.get(), &raw) != HS_SUCCESS) {
        t.scratch.reset(raw);
        return false;
      }
    }
    t.scratch.reset(raw);
    t.fitted.push_back(serial_);
    if (t.fitted.size() > 64) t.fitted.erase(t.fitted.begin());  // old snapshots
  }
  const unsigned len = static_cast<unsigned>(std::min<std::size_t>(text.size(), 0xFFFFFFFFu));
  for (std::size_t c = 0; c < chunks_.size(); ++c) {
    if (!utf8_ok && utf8_[c] != 0) {
      for (unsigned id : ids_[c]) out[id] = 1;
      continue;
    }
    MatchTarget target{&ids_[c], &out};
    if (hs_scan(chunks_[c]->db.get(), text.data(), len, 0, t.scratch.get(), on_match, &target) != HS_SUCCESS) {
      out = always_;
      std::fill(out.begin(), out.end(), 1);
      return false;
    }
  }
  return true;
}

}  // namespace spamgate
