// cidr.h - IPv4/IPv6 networks in CIDR notation, for trusted_networks.
// Immutable after parsing; thread-safe to read.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace spamgate {

class Cidr {
 public:
  // "10.0.0.0/8", "2001:db8::/32", or a single address. nullopt if invalid.
  static std::optional<Cidr> parse(std::string_view text);
  // True if the address (text form, v4 or v6; v4-mapped v6 counts as v4) is inside.
  bool contains(std::string_view address) const;

 private:
  bool v6_ = false;
  std::array<unsigned char, 16> net_{};
  int prefix_ = 0;
};

// Parses an IP address into 16 bytes; IPv4 (and v4-mapped IPv6) sets *v4.
bool parse_ip(std::string_view text, std::array<unsigned char, 16>& out, bool& v4);

// Whether `ip` is a public address (not private, loopback, link-local,
// shared or unspecified; RFC 1918, 6598, 4193).
bool is_public_ip(const std::string& ip);

}  // namespace spamgate
