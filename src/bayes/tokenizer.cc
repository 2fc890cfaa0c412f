// tokenizer.cc - a parsed Message -> the distinct tokens the classifier counts.
//
// Kinds (the prefix keeps a Subject word apart from the same word in the text):
//   w:WORD  w:A B  w:A * C   text words, adjacent pairs and skip-one pairs (OSB-style)
//   s:WORD  s:A B            Subject words and pairs
//   h:NAME:...               selected header fields (addresses -> domain and
//                            display-name words; Received -> hop host names)
//   mime:TYPE  cs:CHARSET    MIME structure; u:HOST u:dom:DOMAIN links;
//   a:type:TYPE a:ext:EXT    attachments.
// Words: runs of Unicode letters/digits (plus ' $ - _ inside a word),
// lower-cased (ASCII in place, other scripts with GLib's Unicode tables);
// ideographs are words of their own (CJK has no spaces). Long words become
// "sk:" + their first 8 bytes, long digit runs "#N" (their length).
// Everything is bounded: max_text_bytes of text, max_tokens tokens.
#include <glib.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <string>

#include "spamgate/bayes.h"
#include "spamgate/message.h"
#include "util/c_handle.h"
#include "util/psl.h"
#include "message/addresses.h"

namespace spamgate {

std::uint64_t token_hash(std::string_view s) { return XXH3_64bits(s.data(), s.size()); }

std::string_view Tokens::text_of(std::size_t i) const {
  if (i >= text_end.size()) return {};
  std::uint32_t begin = i == 0 ? 0 : text_end[i - 1];
  return std::string_view(text).substr(begin, text_end[i] - begin);
}

namespace {

constexpr std::size_t kMaxWordBytes = 20;

// Collects distinct tokens without allocating per token: the pieces are
// joined in a fixed buffer and hashed once (XXH3), the text is appended to
// one buffer only when kept, and duplicates are found in a small
// open-addressing set of hashes.
class Collector {
 public:
  Collector(std::size_t max, bool keep_text) : max_(max), keep_text_(keep_text) {
    std::size_t cap = 64;
    while (cap < max * 2) cap <<= 1;
    set_.assign(cap, 0);
  }
  bool full() const { return out_.hashes.size() >= max_; }
  void add(std::string_view a, std::string_view b = {}, std::string_view c = {}, std::string_view d = {}) {
    if (full()) return;
    char buf[256];
    std::size_t n = 0;
    for (std::string_view part : {a, b, c, d}) {
      std::size_t k = std::min(part.size(), sizeof buf - n);  // tokens are short; a longer one is cut
      if (k == 0) continue;  // an absent piece has no data pointer
      std::memcpy(buf + n, part.data(), k);
      n += k;
    }
    std::uint64_t h = XXH3_64bits(buf, n);
    if (!insert(h)) return;
    out_.hashes.push_back(h);
    if (keep_text_) {
      out_.text.append(buf, n);
      out_.text_end.push_back(static_cast<std::uint32_t>(out_.text.size()));
    }
  }
  Tokens take() { return std::move(out_); }

 private:
  bool insert(std::uint64_t h) {  // false: seen before
    if (h == 0) {
      if (zero_seen_) return false;
      return zero_seen_ = true;
    }
    std::size_t mask = set_.size() - 1;
    for (std::size_t i = (h * 0x9E3779B97F4A7C15ull) >> 40 & mask;; i = (i + 1) & mask) {
      if (set_[i] == h) return false;
      if (set_[i] == 0) {
        set_[i] = h;
        return true;
      }
    }
  }
  std::size_t max_;
  bool keep_text_;
  std::vector<std::uint64_t> set_;
  bool zero_seen_ = false;
  Tokens out_;
};

bool ascii_alnum(unsigned char c) {  // no locale lookup: this runs per character
  return static_cast<unsigned char>((c | 0x20) - 'a') < 26 || static_cast<unsigned char>(c - '0') < 10;
}

bool ascii_word_char(unsigned char c) { return ascii_alnum(c) || c == '\'' || c == '$' || c == '-' || c == '_'; }

// Normalises one raw word: trims joiners at the ends, lower-cases, shortens.
// Empty: not a token.
// Writes the normalised word into `s` (its capacity is reused: no
// allocation per word); leaves `s` empty when it is not a token.
void normalise(std::string_view w, bool non_ascii, std::string& s) {
  s.clear();
  while (!w.empty() && (w.front() == '\'' || w.front() == '-' || w.front() == '_')) w.remove_prefix(1);
  while (!w.empty() && (w.back() == '\'' || w.back() == '-' || w.back() == '_')) w.remove_suffix(1);
  if (w.empty()) return;
  if (non_ascii) {
    GString_ low(g_utf8_strdown(w.data(), static_cast<gssize>(w.size())));
    s.assign(low ? std::string_view(low.get()) : w);
  } else {
    if (w.size() < 2) return;
    for (unsigned char c : w) s.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c | 0x20 : c));
  }
  bool digits = std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
  if (digits && s.size() > 4) {
    s = "#" + std::to_string(s.size());
    return;
  }
  if (s.size() > kMaxWordBytes) {
    std::size_t cut = 8;
    while (cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) ++cut;  // whole UTF-8 chars
    s.resize(cut);
    s.insert(0, "sk:");
  }
}

// Splits `text` into words, calling `emit(word)` for each; `emit` may take
// the string (std::string&) and keep its buffer.
template <typename F>
void split_words(std::string_view text, F&& emit) {
  std::string w;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (!ascii_word_char(c)) {
        ++i;
        continue;
      }
    }
    // A word starts here: take ASCII word chars and Unicode letters/digits.
    std::size_t start = i;
    bool non_ascii = false;
    while (i < n) {
      unsigned char b = static_cast<unsigned char>(text[i]);
      if (b < 0x80) {
        if (!ascii_word_char(b)) break;
        ++i;
        continue;
      }
      gunichar u = g_utf8_get_char_validated(text.data() + i, static_cast<gssize>(n - i));
      if (u == static_cast<gunichar>(-1) || u == static_cast<gunichar>(-2)) {  // invalid UTF-8: a separator
        if (i == start) ++i;
        break;
      }
      std::size_t len = static_cast<std::size_t>(g_utf8_skip[b]);
      if (!(g_unichar_isalnum(u) || g_unichar_ismark(u))) {
        if (i == start) i += len;
        break;
      }
      if (g_unichar_iswide(u)) {  // an ideograph: a word of its own
        if (i == start) {
          i += len;
          non_ascii = true;
        }
        break;
      }
      non_ascii = true;
      i += len;
    }
    if (i > start) {
      normalise(text.substr(start, i - start), non_ascii, w);
      if (!w.empty()) emit(w);
    }
  }
}

// Words and OSB-style pairs of `text` under `prefix`.
void words_and_pairs(std::string_view text, const char* prefix, Collector& out) {
  std::string prev1, prev2;
  split_words(text, [&](std::string& w) {
    out.add(prefix, w);
    if (!prev1.empty()) out.add(prefix, prev1, " ", w);
    if (!prev2.empty()) out.add(prefix, prev2, " * ", w);
    // Rotate the three buffers: no copy, no allocation once they are warm.
    std::swap(prev2, prev1);
    std::swap(prev1, w);
  });
}

bool is_address_header(std::string_view lname) {
  return lname == "from" || lname == "reply-to" || lname == "to" || lname == "cc" || lname == "return-path" ||
         lname == "sender";
}

std::string domain_of(std::string_view addr) {
  std::size_t at = addr.rfind('@');
  if (at == std::string_view::npos) return {};
  return ascii_lower(addr.substr(at + 1));
}

// A host name's registered domain, or the name itself when it has none.
std::string reduce_host(std::string_view host) {
  std::string d = registrable_domain(host);
  return d.empty() ? std::string(host) : d;
}

void received_tokens(std::string_view value, Collector& out) {
  // Host names (words with a dot and a letter) and IPv4 addresses (first two octets).
  std::string word;
  auto flush = [&] {
    if (word.size() > 3 && word.find('.') != std::string::npos) {
      while (!word.empty() && word.back() == '.') word.pop_back();
      bool has_alpha = std::any_of(word.begin(), word.end(), [](unsigned char c) { return std::isalpha(c) != 0; });
      if (has_alpha) {
        out.add("h:received:host:", reduce_host(word));
      } else {
        std::size_t d1 = word.find('.');
        std::size_t d2 = word.find('.', d1 + 1);
        if (d2 != std::string::npos) out.add("h:received:ip:", std::string_view(word).substr(0, d2));
      }
    }
    word.clear();
  };
  for (unsigned char c : value) {
    if (std::isalnum(c) != 0 || c == '.' || c == '-') {
      if (word.size() < 255) word.push_back(static_cast<char>(std::tolower(c)));
    } else {
      flush();
    }
  }
  flush();
}

void header_tokens(const Message& m, const std::string& lname, Collector& out) {
  for (const Header* h : m.find(lname)) {
    if (out.full()) return;
    std::string_view v = h->decoded;
    if (v.size() > 4096) v = v.substr(0, 4096);
    const std::string prefix = "h:" + lname + ":";
    if (is_address_header(lname)) {
      for (const std::string& a : header_addresses(v)) {
        std::string d = domain_of(a);
        if (!d.empty()) out.add(prefix, "dom:", reduce_host(d));
      }
      for (const std::string& n : header_names(v))
        split_words(n, [&](const std::string& w) { out.add(prefix, "name:", w); });
    } else if (lname == "received") {
      received_tokens(v, out);
    } else if (lname == "message-id") {
      std::string d = domain_of(v);
      while (!d.empty() && (d.back() == '>' || d.back() == ' ')) d.pop_back();
      out.add(prefix, "dom:", d.empty() ? std::string("none") : reduce_host(d));
    } else if (lname == "content-type") {
      // The MIME tree says more than the top field: every part's type and charset.
      for (const MimePart& p : m.parts) {
        out.add("mime:", p.content_type);
        if (!p.charset.empty()) out.add("cs:", p.charset);
        if (!p.encoding.empty()) out.add("cte:", p.encoding);
      }
    } else {
      split_words(v, [&](const std::string& w) { out.add(prefix, w); });
    }
  }
}

}  // namespace

Tokens tokenize(const Message& m, const BayesConfig& cfg, bool keep_text) {
  Collector out(cfg.max_tokens, keep_text);
  if (const Header* s = m.first("subject")) {
    std::string_view v = s->decoded;
    words_and_pairs(v.substr(0, std::min<std::size_t>(v.size(), 1024)), "s:", out);
  }
  for (const std::string& name : cfg.headers) {
    std::string lname = ascii_lower(name);
    bool ignored = std::any_of(cfg.ignore_headers.begin(), cfg.ignore_headers.end(),
                               [&](const std::string& i) { return ascii_lower(i) == lname; });
    if (!ignored && lname != "subject") header_tokens(m, lname, out);
  }
  for (const Uri& u : m.uris) {
    if (out.full()) break;
    if (u.host.empty()) continue;
    if (u.host_is_ip) {
      out.add("u:ip");
      continue;
    }
    out.add("u:", u.host);
    out.add("u:dom:", reduce_host(u.host));
    // Path and query words (SpamBayes's crack_urls): "remove", "cgi", "php", ids.
    std::size_t path = u.text.find('/', u.text.find("//") == std::string::npos ? 0 : u.text.find("//") + 2);
    if (path != std::string::npos) {
      std::string_view p = std::string_view(u.text).substr(path, 200);
      split_words(p, [&](const std::string& w) { out.add("u:p:", w); });
    }
  }
  // HTML tag names in the markup (font, table, img, center ...): the shape
  // of the message, not its words.
  {
    std::string_view html = std::string_view(m.raw_text).substr(0, cfg.max_text_bytes);
    for (std::size_t i = html.find('<'); i != std::string_view::npos && !out.full(); i = html.find('<', i + 1)) {
      std::size_t j = i + 1;
      while (j < html.size() && j - i <= 12 && std::isalpha(static_cast<unsigned char>(html[j])) != 0) ++j;
      if (j - i >= 2 && j - i <= 11) out.add("tag:", ascii_lower(html.substr(i + 1, j - i - 1)));
    }
  }
  for (const Attachment& a : m.attachments) {
    out.add("a:type:", a.content_type);
    std::size_t dot = a.name.rfind('.');
    if (dot != std::string::npos && a.name.size() - dot <= 8) out.add("a:ext:", ascii_lower(a.name.substr(dot + 1)));
  }
  std::string_view text = m.text;
  if (text.size() > cfg.max_text_bytes) {
    std::size_t cut = cfg.max_text_bytes;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    text = text.substr(0, cut);
  }
  words_and_pairs(text, "w:", out);
  return out.take();
}

Digest message_digest(const Message& m) {
  GChecksumPtr sum(g_checksum_new(G_CHECKSUM_SHA256));
  if (const Header* id = m.first("message-id"))
    g_checksum_update(sum.get(), reinterpret_cast<const guchar*>(id->decoded.data()),
                      static_cast<gssize>(id->decoded.size()));
  g_checksum_update(sum.get(), reinterpret_cast<const guchar*>("\n"), 1);
  std::string_view body = std::string_view(m.raw).substr(std::min(m.header_end, m.raw.size()));
  g_checksum_update(sum.get(), reinterpret_cast<const guchar*>(body.data()), static_cast<gssize>(body.size()));
  Digest d{};
  gsize len = d.size();
  g_checksum_get_digest(sum.get(), d.data(), &len);
  return d;
}

}  // namespace spamgate
