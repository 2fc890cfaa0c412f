// uri.cc - URI parsing and extraction from text (see uri.h).
//
// A URI's host is lower-cased, stripped of user info and port; a dotted-quad
// or bracketed IPv6 host sets host_is_ip ("bare IP" links, a classic spam sign).
#include "message/uri.h"

#include <arpa/inet.h>

#include <mutex>

#include "util/c_handle.h"

namespace spamgate {
namespace {

bool istarts_with(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

bool is_ipv4(std::string_view host) {
  if (host.empty() || host.size() > 15) return false;
  char buf[16];
  host.copy(buf, host.size());
  buf[host.size()] = '\0';
  in_addr a{};
  return inet_pton(AF_INET, buf, &a) == 1;
}

const pcre2_code* finder() {
  static Pcre2Code code;
  static std::once_flag once;
  std::call_once(once, [] {
    static const char kPattern[] =
        R"((?i)\b(?:https?://|mailto:|www\.|(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?/)[^\s<>"'`{}|\\^\[\]]*)";
    int err = 0;
    PCRE2_SIZE off = 0;
    code.reset(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr));
    if (code) pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
  });
  return code.get();
}

}  // namespace

bool parse_uri(std::string_view text, Uri& out) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\n' ||
                           text.front() == '\r'))
    text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n' ||
                           text.back() == '\r' || text.back() == '.' || text.back() == ',' ||
                           text.back() == ')' || text.back() == ';'))
    text.remove_suffix(1);
  if (text.empty() || text.size() > 4096) return false;
  std::string_view rest;
  // A browser reads "http:/host", "http:host" and "http:\\host" as
  // "http://host" (slashes and backslashes after the scheme, any number):
  // spam writes links so to slip past link checks.
  auto after_scheme = [&](std::size_t n) {
    rest = text.substr(n);
    while (!rest.empty() && (rest.front() == '/' || rest.front() == '\\')) rest.remove_prefix(1);
  };
  if (istarts_with(text, "http:")) {
    out.scheme = "http";
    after_scheme(5);
  } else if (istarts_with(text, "https:")) {
    out.scheme = "https";
    after_scheme(6);
  } else if (istarts_with(text, "mailto:")) {
    out.scheme = "mailto";
    rest = text.substr(7);
    std::size_t end = rest.find_first_of("?#");
    std::string_view addr = rest.substr(0, end);
    std::size_t at = addr.rfind('@');
    out.text = std::string(text);
    out.host = at == std::string_view::npos ? std::string() : ascii_lower(addr.substr(at + 1));
    out.host_is_ip = false;
    return !addr.empty();
  } else if (istarts_with(text, "www.") || (!text.empty() && text[0] >= '0' && text[0] <= '9')) {
    out.scheme = "";  // schemeless: www.example.com/... or 192.0.2.1/...
    rest = text;
  } else {
    return false;
  }
  std::size_t end = rest.find_first_of("/?#\\");
  std::string_view authority = rest.substr(0, end);
  std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority = authority.substr(at + 1);
  std::string_view host = authority;
  if (!host.empty() && host.front() == '[') {
    std::size_t close = host.find(']');
    host = host.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1);
    out.host_is_ip = true;
  } else {
    std::size_t colon = host.find(':');
    if (colon != std::string_view::npos) host = host.substr(0, colon);
    while (!host.empty() && host.back() == '.') host.remove_suffix(1);
    out.host_is_ip = is_ipv4(host);
  }
  if (host.empty()) return false;
  out.text = std::string(text);
  out.host = ascii_lower(host);
  return true;
}

void UriCollector::add(std::string_view text, bool from_html) {
  if (out_.size() >= max_) {
    limit_flag_ = true;
    return;
  }
  Uri u;
  if (!parse_uri(text, u)) return;
  if (!seen_.insert(u.text).second) return;
  u.from_html = from_html;
  out_.push_back(std::move(u));
}

void extract_text_uris(std::string_view text, UriCollector& c) {
  const pcre2_code* re = finder();
  if (re == nullptr || text.empty()) return;
  Pcre2MatchData md(pcre2_match_data_create(1, nullptr));
  if (!md) return;
  PCRE2_SIZE start = 0;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  while (start < text.size()) {
    int rc = pcre2_match(re, subject, text.size(), start, 0, md.get(), nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    if (ov[1] <= ov[0]) break;
    c.add(text.substr(ov[0], ov[1] - ov[0]), false);
    start = ov[1];
  }
}

}  // namespace spamgate
