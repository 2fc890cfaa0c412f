// date.cc - Date header fields through GMime's parser (see date.h).
#include "message/date.h"

#include <gmime/gmime.h>

#include <memory>
#include <string>

namespace spamgate {

namespace {
struct DateTimeUnref {
  void operator()(GDateTime* d) const { g_date_time_unref(d); }
};
}  // namespace

std::optional<std::int64_t> parse_date(std::string_view value, std::int64_t now) {
  const std::string text(value.substr(0, 200));
  std::unique_ptr<GDateTime, DateTimeUnref> d(g_mime_utils_header_decode_date(text.c_str()));
  if (!d) return std::nullopt;
  const std::int64_t t = g_date_time_to_unix(d.get());
  if (t < 315532800 || t > now + 86400) return std::nullopt;  // 1980-01-01
  return t;
}

}  // namespace spamgate
