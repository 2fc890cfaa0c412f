// auth_results.cc - the Authentication-Results field (RFC 8601), rendered
// once from the AuthResults the checks filled (see spamgate/auth.h).
//
//   Authentication-Results: mx1.example.net;
//   	spf=pass smtp.mailfrom=a@example.org smtp.helo=mail.example.org;
//   	dkim=pass header.d=example.org header.s=sel1 header.b=AbCd1234;
//   	dmarc=pass (p=reject) header.from=example.org
#include <string>

#include "spamgate/auth.h"
#include "spamgate/message.h"

namespace spamgate {
namespace {

bool tspecial(char c) {
  return c == '(' || c == ')' || c == '<' || c == '>' || c == ',' || c == ';' || c == ':' || c == '\\' ||
         c == '"' || c == '/' || c == '[' || c == ']' || c == '?' || c == '=';
}

// A pvalue: as is when it is a token or local-part@domain, else quoted.
std::string pvalue(std::string_view v) {
  bool plain = !v.empty() && v.size() <= 256;
  for (char c : v) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 32 || u >= 127 || tspecial(c)) plain = false;
  }
  if (plain) return std::string(v);
  std::string out = "\"";
  for (char c : v.substr(0, 256)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 32 || u == 127) continue;
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// A comment: parentheses and backslashes escaped, controls dropped, clipped.
std::string comment(std::string_view text) {
  if (text.empty()) return {};
  std::string out = " (";
  for (char c : text.substr(0, 120)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 32 || u == 127) continue;
    if (c == '(' || c == ')' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + ")";
}

}  // namespace

std::string authentication_results_value(std::string_view authserv_id, const AuthResults& r) {
  std::vector<std::string> items;
  if (!r.spf.result.empty()) {
    std::string s = "spf=" + r.spf.result;
    if (!r.spf.mailfrom.empty()) s += " smtp.mailfrom=" + pvalue(r.spf.mailfrom);
    if (!r.spf.helo.empty()) s += " smtp.helo=" + pvalue(r.spf.helo);
    items.push_back(std::move(s));
  }
  if (r.dkim.checked) {
    if (r.dkim.sigs.empty()) items.push_back("dkim=none");
    for (const DkimSignatureAuth& d : r.dkim.sigs) {
      std::string s = "dkim=" + d.result + (d.result == "pass" ? std::string() : comment(d.reason));
      if (!d.domain.empty()) s += " header.d=" + pvalue(d.domain);
      if (!d.selector.empty()) s += " header.s=" + pvalue(d.selector);
      if (!d.b.empty()) s += " header.b=" + pvalue(d.b);
      items.push_back(std::move(s));
    }
  }
  if (!r.dmarc.result.empty()) {
    std::string why = r.dmarc.policy.empty() ? r.dmarc.reason : "p=" + r.dmarc.policy;
    std::string s = "dmarc=" + r.dmarc.result + comment(why);
    if (!r.dmarc.from_domain.empty()) s += " header.from=" + pvalue(r.dmarc.from_domain);
    items.push_back(std::move(s));
  }
  std::string out(authserv_id);
  if (items.empty()) return out + "; none";
  for (const std::string& i : items) out += ";\n\t" + i;
  return out;
}

std::string authserv_id_of(std::string_view v) {
  std::size_t i = 0;
  for (;;) {
    while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == '\r' || v[i] == '\n')) ++i;
    if (i < v.size() && v[i] == '(') {  // a comment, maybe nested
      int depth = 0;
      for (; i < v.size(); ++i) {
        if (v[i] == '\\') ++i;
        else if (v[i] == '(') ++depth;
        else if (v[i] == ')' && --depth == 0) break;
      }
      ++i;
      continue;
    }
    break;
  }
  if (i < v.size() && v[i] == '"') {  // RFC 8601: a value may be a quoted-string
    std::string id;
    for (++i; i < v.size() && v[i] != '"'; ++i) {
      if (v[i] == '\\' && i + 1 < v.size()) ++i;
      if (v[i] != '\r' && v[i] != '\n') id.push_back(v[i]);
    }
    return ascii_lower(id);
  }
  std::size_t start = i;
  while (i < v.size() && v[i] != ';' && v[i] != ' ' && v[i] != '\t' && v[i] != '\r' && v[i] != '\n' && v[i] != '(')
    ++i;
  return ascii_lower(v.substr(std::min(start, v.size()), i - std::min(start, v.size())));
}

}  // namespace spamgate
