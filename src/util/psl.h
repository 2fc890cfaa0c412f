// psl.h - registered domains from the Public Suffix List (libpsl with the
// Debian publicsuffix data, newest of built-in and system file).
// Thread-safe: the list is loaded once and only read afterwards.
#pragma once

#include <string>
#include <string_view>

namespace spamgate {

// "www.shop.example.co.uk" -> "example.co.uk"; "" if `host` has no registered
// domain (a bare suffix, an IP, or not a domain name).
std::string registrable_domain(std::string_view host);

}  // namespace spamgate
