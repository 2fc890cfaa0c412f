// dnsbl.cc - DnsblCheck (see dnsbl.h).
#include "checks/dnsbl.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>

#include "checks/builtin.h"
#include "spamgate/message.h"
#include "util/cidr.h"
#include "util/log.h"
#include "util/psl.h"
#include "message/addresses.h"

namespace spamgate {

const char* temperror_symbol(DnsListCheck::Kind k) {
  return k == DnsListCheck::Kind::kClientIp ? "DNSBL_TEMPERROR" : "URIBL_TEMPERROR";
}

std::string reverse_ip(const std::string& ip) {
  std::array<unsigned char, 16> b{};
  bool v4 = false;
  if (!parse_ip(ip, b, v4)) return std::string();
  char buf[80];
  if (v4) {
    std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", b[3], b[2], b[1], b[0]);
    return buf;
  }
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out += kHex[b[static_cast<std::size_t>(i)] & 0xf];
    out += '.';
    out += kHex[b[static_cast<std::size_t>(i)] >> 4];
    if (i > 0) out += '.';
  }
  return out;
}

DnsListCheck::DnsListCheck(Kind kind, std::vector<DnsblZone> zones, std::shared_ptr<Resolver> resolver,
                           std::size_t max_uri_lookups, std::vector<std::string> trusted_networks)
    : kind_(kind),
      zones_(std::move(zones)),
      resolver_(std::move(resolver)),
      max_uri_lookups_(max_uri_lookups),
      trusted_networks_(std::move(trusted_networks)),
      error_logged_(new std::atomic<bool>[zones_.size()]) {
  for (std::size_t i = 0; i < zones_.size(); ++i) error_logged_[i] = false;
}

std::vector<SymbolDef> DnsListCheck::symbols(Kind kind, const std::vector<DnsblZone>& zones) {
  const std::string what = kind == Kind::kClientIp ? "Client IP" : "A linked domain";
  std::vector<SymbolDef> out = {{temperror_symbol(kind), 0.0, "A DNS blocklist could not be queried in time"}};
  for (const DnsblZone& z : zones) {
    out.push_back({z.symbol, z.score, what + " is listed in " + z.zone});
    for (const auto& [code, sym] : z.codes) out.push_back({sym, z.score, what + " is listed in " + z.zone + " (" + code + ")"});
  }
  return out;
}

Status DnsListCheck::run(const CheckContext& ctx, std::vector<Hit>& hits, CheckOutput& /*side*/) const {
  if (resolver_ == nullptr) return Status::Ok();
  if (kind_ == Kind::kClientIp) {
    std::string ip = ctx.envelope.client_ip;
    if (ip.empty()) ip = client_ip_from_received(ctx.message, trusted_networks_);
    std::string rev = reverse_ip(ip);
    if (!rev.empty() && is_public_ip(ip)) lookup_all(ctx, rev, ip, hits);
    return Status::Ok();
  }
  // Links: each registered domain (or bare IP) once, at most max_uri_lookups.
  std::vector<std::string> done;
  const std::size_t max = max_uri_lookups_;
  for (const Uri& u : ctx.message.uris) {
    if (done.size() >= max) break;
    std::string name = u.host_is_ip ? reverse_ip(u.host) : registrable_domain(u.host);
    if (name.empty() || std::find(done.begin(), done.end(), name) != done.end()) continue;
    if (u.host_is_ip && !is_public_ip(u.host)) continue;
    done.push_back(name);
    lookup_all(ctx, name, u.host_is_ip ? u.host : name, hits);
  }
  return Status::Ok();
}

void DnsListCheck::lookup_all(const CheckContext& ctx, const std::string& name, const std::string& what,
                              std::vector<Hit>& hits) const {
  Resolver* res = resolver_.get();
  for (std::size_t i = 0; i < zones_.size(); ++i) {
    const DnsblZone& z = zones_[i];
    DnsAnswer a = res->lookup(name + "." + z.zone, DnsType::kA, ctx.dns_deadline);
    if (a.rcode == DnsAnswer::Rcode::kNxDomain || a.rcode == DnsAnswer::Rcode::kNoData) continue;
    if (!a.ok()) {
      hits.push_back({temperror_symbol(kind_), 1.0, z.zone + ": " + rcode_name(a.rcode)});
      continue;
    }
    std::vector<std::string> emitted;
    for (const std::string& rec : a.records) {
      if (rec.rfind("127.255.255.", 0) == 0) {
        if (!error_logged_[i].exchange(true))
          log().error("dnsbl {}: answered {} (the list's error code, e.g. queries via a public resolver or over "
                      "quota); not scored as a listing",
                      z.zone, rec);
        continue;
      }
      auto code = z.codes.find(rec);
      const std::string& sym = code != z.codes.end() ? code->second : z.symbol;
      if (std::find(emitted.begin(), emitted.end(), sym) != emitted.end()) continue;
      emitted.push_back(sym);
      hits.push_back({sym, 1.0, what + " listed in " + z.zone + " as " + rec});
    }
  }
}

}  // namespace spamgate
