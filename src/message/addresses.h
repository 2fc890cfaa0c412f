// addresses.h - who a parsed message says it is from: addresses and
// display names of address fields, the From domain, the client of the
// first untrusted Received hop. Read by several checks (rules, DKIM, DMARC,
// blocklists, sender domain, Bayes) from the one parse. Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace spamgate {

struct Message;

// Addresses of a header value ("A <a@x>, b@y" -> a@x, b@y) and display names.
std::vector<std::string> header_addresses(std::string_view value);
std::vector<std::string> header_names(std::string_view value);

// The domain of the first address in the From header ("" if none), lower-case.
std::string from_domain(const Message& m);

// The first Received hop whose IP is public and not in `trusted` ("" if none).
std::string client_ip_from_received(const Message& m, const std::vector<std::string>& trusted);

}  // namespace spamgate
