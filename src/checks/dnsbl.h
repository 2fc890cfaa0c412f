// dnsbl.h - DNS blocklists ("blacklists"): for the client IP (DNSBL) and
// for the domains the message links to (URIBL).
//
// DnsListCheck(kClientIp) looks the client IP up in every [[dnsbl]] zone
// (reversed octets / nibbles + zone); DnsListCheck(kUris) looks up the
// registered domain (Public Suffix List) of each link host, or the reversed IP
// of a bare-IP link, in every [[uribl]] zone, at most limits.max_uri_lookups
// names per message. All through the snapshot's Resolver, within the
// message's DNS budget. A listing emits the zone's symbol (or the symbol its
// answer code maps to); an answer in 127.255.255.0/24 is the list's own error
// code ("query via a public resolver", "over quota"): logged once per zone as
// an error and never scored as a listing. A lookup that times out or fails
// emits DNSBL_TEMPERROR / URIBL_TEMPERROR. In `scan` mode the client IP is the first untrusted
// hop of the Received headers. Immutable; thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "spamgate/check.h"
#include "spamgate/snapshot.h"

namespace spamgate {

class DnsListCheck final : public Check {
 public:
  enum class Kind { kClientIp, kUris };
  // `max_uri_lookups`: [limits] max_uri_lookups (kUris); `trusted_networks`:
  // [milter] trusted_networks (hops skipped to find the client in `scan`).
  DnsListCheck(Kind kind, std::vector<DnsblZone> zones, std::shared_ptr<Resolver> resolver,
               std::size_t max_uri_lookups, std::vector<std::string> trusted_networks);
  std::string_view name() const override { return kind_ == Kind::kClientIp ? "dnsbl" : "uribl"; }
  Status run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& side) const override;
  // The symbols these zones can emit, with their default scores.
  static std::vector<SymbolDef> symbols(Kind kind, const std::vector<DnsblZone>& zones);

 private:
  // Looks `name` (reversed IP or domain) up in every zone; `what` is for details.
  void lookup_all(const CheckContext& ctx, const std::string& name, const std::string& what,
                  std::vector<Hit>& hits) const;

  Kind kind_;
  std::vector<DnsblZone> zones_;
  std::shared_ptr<Resolver> resolver_;
  std::size_t max_uri_lookups_;
  std::vector<std::string> trusted_networks_;
  std::unique_ptr<std::atomic<bool>[]> error_logged_;  // one per zone
};

// "192.0.2.1" -> "1.2.0.192"; IPv6 -> 32 reversed nibbles; "" if not an IP.
std::string reverse_ip(const std::string& ip);

}  // namespace spamgate
