// uri.h - URI extraction from text and from HTML attribute values.
//
// UriCollector gathers distinct URIs up to a limit; extract_text_uris() finds
// http(s)://, mailto: and www. forms in plain text. Thread-safe: the finder
// regex is compiled once and shared read-only.
#pragma once

#include <string_view>
#include <unordered_set>
#include <string>
#include <vector>

#include "spamgate/message.h"

namespace spamgate {

class UriCollector {
 public:
  UriCollector(std::vector<Uri>& out, std::size_t max, bool& limit_flag)
      : out_(out), max_(max), limit_flag_(limit_flag) {}
  // Adds `text` if it parses as a URI we track (http, https, mailto, www.).
  void add(std::string_view text, bool from_html);

 private:
  std::vector<Uri>& out_;
  std::size_t max_;
  bool& limit_flag_;
  std::unordered_set<std::string> seen_;
};

// Finds URIs in decoded plain text and hands them to `c`.
void extract_text_uris(std::string_view text, UriCollector& c);

// Parses one URI; false if it is not one we track.
bool parse_uri(std::string_view text, Uri& out);

}  // namespace spamgate
