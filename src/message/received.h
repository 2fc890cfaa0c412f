// received.h - the relays of a message's Received chain, as SpamAssassin
// sees them, for its X-Spam-Relays-* pseudo-fields.
//
// parse_relays() reads every Received field, newest first, and keeps those
// that name a sending IP (`from ...`); local hand-offs ("with local",
// "from X by Y;") are skipped. Trust is inferred as SpamAssassin does
// without trusted_networks: relays from private IPs (or authenticated) are
// trusted until the first one that is not; from there on every relay is
// untrusted (and external). The parser knows the common formats
// (sendmail/Postfix "from HELO (RDNS [IP])", Exim "from RDNS ([IP]
// helo=HELO)", qmail "from RDNS (HELO HELO) (IP)", Exchange "from HELO
// ([IP])"), not every MTA SpamAssassin knows; IPv4 only.
// DIAGNOSTICS: none; a field it cannot read is skipped.
// Pure functions: thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "spamgate/message.h"

namespace spamgate {

struct Relay {
  std::string ip, rdns, helo, by, ident, id, auth;
  bool trusted = false;
};

struct Relays {
  std::vector<Relay> relays;
  // Received fields, from the top, before the first untrusted relay (the
  // fields skipped while still trusted count): where ALL-EXTERNAL starts.
  std::size_t trusted_fields = 0;
  // "from" fields with no sending IP we could read (SpamAssassin's
  // num_relays_unparseable): not NO_RELAYS, not ALL_TRUSTED.
  std::size_t unparseable = 0;
};
// `originating`: SpamAssassin's originating_ip_headers (lower-case names,
// X-Originating-IP and kin): the first IPv4 address in the last field of
// each name is one more relay, oldest, with no names (as SpamAssassin
// appends "from X-Originating-IP: IP" to the chain).
Relays parse_relays(const Message& m, const std::vector<std::string>& originating = {});

// An IPv4 address in a private, loopback or link-local range (SpamAssassin's
// IS_IP_PRIVATE).
bool private_ipv4(std::string_view ip);

// "[ ip=... rdns=... helo=... by=... ident=... envfrom= intl=0 id=... auth=... msa=0 ] [ ... ]":
// SpamAssassin's string for the trusted (true) or untrusted (false) relays.
std::string relays_string(const std::vector<Relay>& relays, bool trusted);

// SpamAssassin's ALL-EXTERNAL (and ALL-UNTRUSTED): every field, as
// "Name: value\n", from the first untrusted relay's Received field down;
// ALL-TRUSTED / ALL-INTERNAL (trusted = true): every field above it.
std::string fields_by_trust(const Message& m, const Relays& r, bool trusted);

}  // namespace spamgate
