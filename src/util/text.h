// text.h - small text helpers every layer uses.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace spamgate {

// `text` shortened to `max` bytes for logs and explain (then "..."),
// control bytes as ' ': hostile text never breaks a log line.
std::string clip(std::string_view text, std::size_t max);

}  // namespace spamgate
