// addresses.cc - see addresses.h.
#include "message/addresses.h"

#include <array>

#include "spamgate/message.h"
#include "util/cidr.h"

namespace spamgate {

namespace {

// Splits a header value at top-level commas (outside quotes, <> and parens).
std::vector<std::string_view> split_mailboxes(std::string_view v) {
  std::vector<std::string_view> out;
  int angle = 0, paren = 0;
  bool quote = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quote) {
      if (c == '\\') ++i;
      else if (c == '"') quote = false;
      continue;
    }
    if (c == '"') quote = true;
    else if (c == '<') ++angle;
    else if (c == '>' && angle > 0) --angle;
    else if (c == '(') ++paren;
    else if (c == ')' && paren > 0) --paren;
    else if (c == ',' && angle == 0 && paren == 0) {
      out.push_back(v.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(v.substr(start));
  return out;
}

std::string strip(std::string_view s) {
  std::size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return std::string();
  std::size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

// Removes (comments) and "quoted strings" from a mailbox without <>.
std::string without_comments(std::string_view s) {
  std::string out;
  int paren = 0;
  bool quote = false;
  for (char c : s) {
    if (quote) {
      if (c == '"') quote = false;
      continue;
    }
    if (c == '"' && paren == 0) quote = true;
    else if (c == '(') ++paren;
    else if (c == ')' && paren > 0) --paren;
    else if (paren == 0) out.push_back(c);
  }
  return out;
}

}  // namespace

std::vector<std::string> header_addresses(std::string_view value) {
  std::vector<std::string> out;
  for (std::string_view mb : split_mailboxes(value)) {
    std::size_t lt = mb.rfind('<');
    std::string addr;
    if (lt != std::string_view::npos) {
      std::size_t gt = mb.find('>', lt);
      addr = strip(mb.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1));
    } else {
      addr = strip(without_comments(mb));
    }
    if (!addr.empty()) out.push_back(addr);
  }
  return out;
}

std::vector<std::string> header_names(std::string_view value) {
  std::vector<std::string> out;
  for (std::string_view mb : split_mailboxes(value)) {
    std::size_t lt = mb.rfind('<');
    std::string name;
    if (lt != std::string_view::npos) {
      name = strip(mb.substr(0, lt));
    } else {
      std::size_t open = mb.find('(');
      std::size_t close = mb.rfind(')');
      if (open != std::string_view::npos && close != std::string_view::npos && close > open)
        name = strip(mb.substr(open + 1, close - open - 1));
    }
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') name = name.substr(1, name.size() - 2);
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

std::string from_domain(const Message& m) {
  const Header* from = m.first("from");
  if (from == nullptr) return {};
  std::vector<std::string> addrs = header_addresses(from->decoded);
  if (addrs.empty()) return {};
  std::size_t at = addrs.front().rfind('@');
  if (at == std::string::npos) return {};
  std::string d = ascii_lower(addrs.front().substr(at + 1));
  while (!d.empty() && d.back() == '.') d.pop_back();
  return d;
}

std::string client_ip_from_received(const Message& m, const std::vector<std::string>& trusted) {
  for (const Header* h : m.find("received")) {
    // "from host (rdns [192.0.2.1])" or "[IPv6:2001:db8::1]": the first bracketed address.
    const std::string& v = h->decoded;
    std::size_t open = v.find('[');
    while (open != std::string::npos) {
      std::size_t close = v.find(']', open);
      if (close == std::string::npos) break;
      std::string ip = v.substr(open + 1, close - open - 1);
      if (ip.rfind("IPv6:", 0) == 0) ip = ip.substr(5);
      std::array<unsigned char, 16> b{};
      bool v4 = false;
      if (parse_ip(ip, b, v4)) {
        bool is_trusted = !is_public_ip(ip);
        for (const std::string& t : trusted) {
          auto c = Cidr::parse(t);
          is_trusted = is_trusted || (c && c->contains(ip));
        }
        if (!is_trusted) return ip;
        break;  // this hop is ours; look at the next Received header
      }
      open = v.find('[', close);
    }
  }
  return std::string();
}

}  // namespace spamgate
