// date.h - the time a Date header field names.
//
// Interface: parse_date() is thread-safe once GMime is initialised (as
// parse_message() does). Used by `spamgate eval` to order messages by age.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace spamgate {

// Seconds since the epoch of an RFC 5322 date ("Mon, 23 Nov 2026 10:00:00
// +0000", and the obsolete and sloppy forms GMime accepts); nullopt when
// it cannot be read or lies before 1980 or more than a day after `now`
// (a spammer's clock).
std::optional<std::int64_t> parse_date(std::string_view value, std::int64_t now);

}  // namespace spamgate
