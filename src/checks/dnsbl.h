// dnsbl.h - DNS blocklists ("blacklists") for the client IP.
//
// DnsblCheck looks the client IP up in every configured zone (reversed
// octets / nibbles + zone) through the snapshot's Resolver, within the
// message's DNS budget. A listing emits the zone's symbol (or the symbol its
// answer code maps to); an answer in 127.255.255.0/24 is the list's own error
// code ("query via a public resolver", "over quota"): logged once per zone as
// an error and never scored as a listing. A lookup that times out or fails
// emits DNSBL_TEMPERROR. In `scan` mode the client IP is the first untrusted
// hop of the Received headers. Immutable; thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "spamgate/check.h"
#include "spamgate/snapshot.h"

namespace spamgate {

class DnsblCheck final : public Check {
 public:
  explicit DnsblCheck(std::vector<DnsblZone> zones);
  std::string_view name() const override { return "dnsbl"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits) const override;
  // The symbols these zones can emit, with their default scores.
  static std::vector<SymbolDef> symbols(const std::vector<DnsblZone>& zones);

 private:
  std::vector<DnsblZone> zones_;
  std::unique_ptr<std::atomic<bool>[]> error_logged_;  // one per zone
};

// "192.0.2.1" -> "1.2.0.192"; IPv6 -> 32 reversed nibbles; "" if not an IP.
std::string reverse_ip(const std::string& ip);

// The first Received hop whose IP is public and not in `trusted` ("" if none).
std::string client_ip_from_received(const Message& m, const std::vector<std::string>& trusted);

}  // namespace spamgate
