// header_block.cc - splits the header block of a raw message into fields.
//
// Interface: split_header_block() (message.h). Used by the parser (to build
// Header views) and by the rewriter (to edit fields in place), so both agree
// on field boundaries.
// Follows Postfix's cleanup: a leading mbox "From " line is skipped; a line in
// the header block that is neither a field nor a continuation ends the header
// block and starts the body (recorded as bad_line). Works on bytes: NULs and
// 8-bit octets are kept as they are.
#include <algorithm>
#include <cctype>
#include <functional>

#include "spamgate/message.h"

namespace spamgate {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

namespace {

bool is_field_name_char(unsigned char c) { return c > 32 && c < 127 && c != ':'; }

// Length of the field name at the start of `line`, or 0 if the line is no field.
std::size_t field_name_length(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && is_field_name_char(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0) return 0;
  std::size_t name_len = i;
  while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;  // obsolete "Name :"
  if (i >= line.size() || line[i] != ':') return 0;
  return name_len;
}

}  // namespace

HeaderBlock walk_header_block(std::string_view bytes, const std::function<void(const RawField&)>& visit) {
  HeaderBlock hb;
  std::size_t pos = 0;
  if (bytes.substr(0, 5) == "From ") {  // mbox separator line
    std::size_t nl = bytes.find('\n');
    pos = (nl == std::string_view::npos) ? bytes.size() : nl + 1;
  }
  bool crlf_seen = false;
  bool first_line = true;
  bool open = false;  // `current` is a field still taking continuation lines
  RawField current;
  auto close = [&] {
    if (open) visit(current);
    open = false;
  };
  while (pos < bytes.size()) {
    std::size_t nl = bytes.find('\n', pos);
    std::size_t line_end = (nl == std::string_view::npos) ? bytes.size() : nl + 1;
    std::string_view line = bytes.substr(pos, line_end - pos);
    std::string_view content = line;
    if (!content.empty() && content.back() == '\n') content.remove_suffix(1);
    bool has_cr = !content.empty() && content.back() == '\r';
    if (has_cr) content.remove_suffix(1);
    if (first_line && nl != std::string_view::npos) {
      crlf_seen = has_cr;
      first_line = false;
    }
    if (content.empty()) {  // the empty separator line (or a lone CR at the very end)
      if (nl == std::string_view::npos) {
        pos = line_end;
        break;
      }
      close();
      hb.separator_found = true;
      hb.body_offset = line_end;
      hb.crlf = crlf_seen;
      return hb;
    }
    if (content.front() == ' ' || content.front() == '\t') {
      if (!open) {  // continuation before any field: Postfix would take it as body
        hb.bad_line = true;
        break;
      }
      current.length = line_end - current.offset;
      std::size_t value_start = static_cast<std::size_t>(current.value.data() - bytes.data());
      current.value = bytes.substr(value_start, pos + content.size() - value_start);
      pos = line_end;
      continue;
    }
    std::size_t name_len = field_name_length(content);
    if (name_len == 0) {
      hb.bad_line = true;
      break;
    }
    close();
    current.name = content.substr(0, name_len);
    current.offset = pos;
    current.length = line_end - pos;
    current.value = content.substr(content.find(':') + 1);
    open = true;
    ++hb.total_fields;
    pos = line_end;
  }
  close();
  hb.body_offset = pos;
  hb.crlf = crlf_seen;
  return hb;
}

HeaderBlock split_header_block(std::string_view bytes, std::size_t max_fields) {
  std::vector<RawField> fields;
  HeaderBlock hb = walk_header_block(bytes, [&](const RawField& f) {
    if (fields.size() < max_fields) fields.push_back(f);
  });
  hb.fields = std::move(fields);
  return hb;
}

}  // namespace spamgate
