// limits.h - every bound the scanner applies to a message, with its default.
//
// A limit that is hit sets a flag on the Message (Message::limits_hit) that
// rules can score; it never truncates or drops delivered mail: limits bound
// what we *scan*, not what Postfix delivers.
#pragma once

#include <cstddef>

namespace spamgate {

struct Limits {
  // Bytes of the raw message (headers + body) that are parsed and scanned.
  std::size_t max_scan_bytes = 1024 * 1024;
  // Header fields kept for rules; the rest are counted but not parsed.
  std::size_t max_headers = 1000;
  // Bytes of one header field (name, value and folding) kept for rules.
  std::size_t max_header_bytes = 16 * 1024;
  // Nesting of multiparts / message/rfc822 parts that is descended into.
  int max_mime_depth = 20;
  // MIME leaf parts that are looked at (text decoded, attachment listed).
  std::size_t max_parts = 256;
  // URIs extracted per message.
  std::size_t max_uris = 1000;
  // Bytes of decoded text (all text parts together) given to body rules.
  std::size_t max_text_bytes = 1024 * 1024;
  // Distinct link domains (or IPs) looked up in the URI blocklists per message.
  std::size_t max_uri_lookups = 20;
  // Header fields the scan may remove from one message (forged X-Spam-*,
  // Authentication-Results with our authserv-id, copies of the outbound tag).
  // Every removal is one milter request and one record in Postfix's queue
  // file: 30,000 made Postfix's cleanup panic ("too many reverse jump
  // records"). A message with more is refused (HEADER_FORGED_MANY).
  std::size_t max_header_deletions = 200;
  // PCRE2 match limit per regex and subject (guards against backtracking blow-up).
  unsigned pcre_match_limit = 1000000;
};

}  // namespace spamgate
