// cidr.cc - CIDR parsing and matching (see cidr.h).
#include "util/cidr.h"

#include <vector>

#include <arpa/inet.h>

#include <cstring>

namespace spamgate {

bool parse_ip(std::string_view text, std::array<unsigned char, 16>& out, bool& v4) {
  if (text.empty() || text.size() > 45) return false;
  char buf[64];
  text.copy(buf, text.size());
  buf[text.size()] = '\0';
  out.fill(0);
  in_addr a4{};
  if (inet_pton(AF_INET, buf, &a4) == 1) {
    std::memcpy(out.data(), &a4, 4);
    v4 = true;
    return true;
  }
  in6_addr a6{};
  if (inet_pton(AF_INET6, buf, &a6) != 1) return false;
  static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(&a6, kMapped, 12) == 0) {
    std::memcpy(out.data(), reinterpret_cast<unsigned char*>(&a6) + 12, 4);
    v4 = true;
    return true;
  }
  std::memcpy(out.data(), &a6, 16);
  v4 = false;
  return true;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  std::size_t slash = text.find('/');
  std::string_view addr = text.substr(0, slash);
  bool v4 = false;
  if (!parse_ip(addr, c.net_, v4)) return std::nullopt;
  c.v6_ = !v4;
  int max = v4 ? 32 : 128;
  c.prefix_ = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3) return std::nullopt;
    int n = 0;
    for (char ch : p) {
      if (ch < '0' || ch > '9') return std::nullopt;
      n = n * 10 + (ch - '0');
    }
    if (n > max) return std::nullopt;
    c.prefix_ = n;
  }
  return c;
}

bool Cidr::contains(std::string_view address) const {
  std::array<unsigned char, 16> a{};
  bool v4 = false;
  if (!parse_ip(address, a, v4) || v4 == v6_) return false;
  int full = prefix_ / 8, rest = prefix_ % 8;
  if (std::memcmp(a.data(), net_.data(), static_cast<std::size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  unsigned char mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[static_cast<std::size_t>(full)] & mask) == (net_[static_cast<std::size_t>(full)] & mask);
}

bool is_public_ip(const std::string& ip) {
  // Parsed once: this runs for every message (and every Received hop).
  static const std::vector<Cidr> kPrivate = [] {
    std::vector<Cidr> nets;
    for (const char* n : {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
                          "100.64.0.0/10", "0.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10"})
      nets.push_back(*Cidr::parse(n));
    return nets;
  }();
  for (const Cidr& net : kPrivate) {
    if (net.contains(ip)) return false;
  }
  return true;
}

}  // namespace spamgate
