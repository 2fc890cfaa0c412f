// parser.cc - parse_message(): raw bytes to the const Message every check reads.
//
// Headers are split by split_header_block() and decoded (RFC 2047, charsets)
// with GMime's header decoder; the MIME tree is parsed by GMime from the same
// bounded buffer; text parts are transfer-decoded and converted to UTF-8 by
// GMime; HTML parts are rendered to text by libxml2 (html.cc).
// DIAGNOSTICS: none; every defect and limit is a flag on the Message.
#include <gmime/gmime.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>

#include "message/gmime_util.h"
#include "message/html.h"
#include "message/uri.h"
#include "spamgate/message.h"
#include "util/c_handle.h"

namespace spamgate {

std::vector<const Header*> Message::find(std::string_view name) const {
  std::string lname = ascii_lower(name);
  std::vector<const Header*> out;
  for (const Header& h : headers) {
    if (h.lname == lname) out.push_back(&h);
  }
  return out;
}

const Header* Message::first(std::string_view name) const {
  std::string lname = ascii_lower(name);
  for (const Header& h : headers) {
    if (h.lname == lname) return &h;
  }
  return nullptr;
}

void init_gmime() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_mime_init();
    init_html();
  });
}

struct ParserOptionsFree {
  void operator()(GMimeParserOptions* o) const { g_mime_parser_options_free(o); }
};

// Options shared by every parse: read-only after creation.
GMimeParserOptions* parser_options() {
  static std::unique_ptr<GMimeParserOptions, ParserOptionsFree> opts = [] {
    GMimeParserOptions* o = g_mime_parser_options_new();
    g_mime_parser_options_set_rfc2047_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(o, GMIME_RFC_COMPLIANCE_LOOSE);
    static const char* kFallback[] = {"utf-8", "windows-1252", nullptr};
    g_mime_parser_options_set_fallback_charsets(o, kFallback);
    return std::unique_ptr<GMimeParserOptions, ParserOptionsFree>(o);
  }();
  return opts.get();
}

namespace {

std::string unfold(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (char c : raw) {
    if (c == '\r' || c == '\n') continue;
    out.push_back(c == '\0' ? ' ' : c);
  }
  std::size_t b = out.find_first_not_of(" \t");
  if (b == std::string::npos) return std::string();
  std::size_t e = out.find_last_not_of(" \t");
  return out.substr(b, e - b + 1);
}

bool has_8bit(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

std::string decode_header_value(std::string_view raw, bool& eight_bit) {
  std::string unfolded = unfold(raw);
  bool high = has_8bit(unfolded);
  if (high) eight_bit = true;
  if (!high && unfolded.find("=?") == std::string::npos) return unfolded;
  GString_ dec(g_mime_utils_header_decode_text(parser_options(), unfolded.c_str()));
  if (!dec) return unfolded;
  return std::string(dec.get());
}

std::string lower_cstr(const char* s) { return s == nullptr ? std::string() : ascii_lower(s); }

// Walks the MIME tree, filling parts, text, attachments and URIs.
class Walker {
 public:
  Walker(Message& m, const Limits& l)
      : m_(m), l_(l), uris_(m.uris, l.max_uris, m.limits_hit.uris) {}

  void walk(GMimeObject* obj, int depth) {
    if (obj == nullptr) return;
    if (depth > l_.max_mime_depth) {
      m_.limits_hit.mime_depth = true;
      return;
    }
    if (GMIME_IS_MULTIPART(obj)) {
      GMimeMultipart* mp = GMIME_MULTIPART(obj);
      record(obj, depth, nullptr);
      if (!m_.defects.mime_epilogue) m_.defects.mime_epilogue = has_epilogue(g_mime_multipart_get_boundary(mp));
      int n = g_mime_multipart_get_count(mp);
      for (int i = 0; i < n; ++i) walk(g_mime_multipart_get_part(mp, i), depth + 1);
      return;
    }
    if (GMIME_IS_MESSAGE_PART(obj)) {
      record(obj, depth, nullptr);
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
      if (inner != nullptr) walk(g_mime_message_get_mime_part(inner), depth + 1);
      return;
    }
    if (GMIME_IS_PART(obj)) leaf(GMIME_PART(obj), depth);
  }

  void finish_text_uris() { extract_text_uris(m_.text, uris_); }

 private:
  // Text after a multipart's closing delimiter ("--B--"), up to the next
  // delimiter line or the end, that is not only white space and dots
  // (SpamAssassin's mime_epilogue_exists). Read from the raw bytes: GMime's
  // epilogue is a C string and stops at a NUL, which spam puts there.
  bool has_epilogue(const char* boundary) const {
    if (boundary == nullptr || *boundary == '\0') return false;
    const std::string close = "--" + std::string(boundary) + "--";
    const std::string& raw = m_.raw;
    std::size_t at = raw.rfind(close);
    if (at == std::string::npos || (at > 0 && raw[at - 1] != '\n')) return false;
    std::size_t from = raw.find('\n', at);
    if (from == std::string::npos) return false;
    std::size_t to = raw.find("\n--", from);
    for (std::size_t i = from + 1; i < (to == std::string::npos ? raw.size() : to); ++i) {
      const char c = raw[i];
      if (!std::isspace(static_cast<unsigned char>(c)) && c != '.') return true;
    }
    return false;
  }

  MimePart& record(GMimeObject* obj, int depth, GMimePart* part) {
    MimePart p;
    GMimeContentType* ct = g_mime_object_get_content_type(obj);
    if (ct != nullptr) {
      GString_ mt(g_mime_content_type_get_mime_type(ct));
      p.content_type = lower_cstr(mt.get());
      p.charset = lower_cstr(g_mime_content_type_get_parameter(ct, "charset"));
    }
    p.depth = depth;
    if (GMimeHeaderList* list = g_mime_object_get_header_list(obj)) {
      const int n = std::min<int>(g_mime_header_list_get_count(list), static_cast<int>(MimePart::kMaxPartHeaders));
      for (int i = 0; i < n; ++i) {
        GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
        if (h == nullptr || g_mime_header_get_name(h) == nullptr) continue;
        const char* raw = g_mime_header_get_raw_value(h);
        std::string_view rv = raw != nullptr ? std::string_view(raw) : std::string_view();
        if (rv.size() > l_.max_header_bytes) rv = rv.substr(0, l_.max_header_bytes);
        while (!rv.empty() && (rv.back() == '\n' || rv.back() == '\r')) rv.remove_suffix(1);
        bool eight_bit = false;
        p.headers.push_back({ascii_lower(g_mime_header_get_name(h)), std::string(rv), decode_header_value(rv, eight_bit)});
      }
    }
    if (part != nullptr) {
      const char* fn = g_mime_part_get_filename(part);
      p.filename = fn != nullptr ? fn : "";
      const char* enc = g_mime_content_encoding_to_string(g_mime_part_get_content_encoding(part));
      p.encoding = lower_cstr(enc);
    }
    m_.parts.push_back(std::move(p));
    return m_.parts.back();
  }

  void leaf(GMimePart* part, int depth) {
    if (leaves_ >= l_.max_parts) {
      m_.limits_hit.parts = true;
      return;
    }
    ++leaves_;
    MimePart& p = record(GMIME_OBJECT(part), depth, part);
    const char* disp = g_mime_object_get_disposition(GMIME_OBJECT(part));
    bool attachment_disp = disp != nullptr && g_ascii_strcasecmp(disp, "attachment") == 0;
    bool is_plain = p.content_type == "text/plain" || p.content_type.empty();
    bool is_html = p.content_type == "text/html";
    if ((is_plain || is_html) && !attachment_disp && p.filename.empty()) {
      text_part(part, is_html, p);
      return;
    }
    p.is_attachment = true;
    Attachment a;
    a.name = p.filename;
    a.content_type = p.content_type;
    GMimeDataWrapper* dw = g_mime_part_get_content(part);
    if (dw != nullptr) {
      GObjectPtr<GMimeStream> mem(g_mime_stream_mem_new());
      g_mime_data_wrapper_write_to_stream(dw, mem.get());
      GByteArray* b = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
      if (b != nullptr) {
        a.size = b->len;
        m_.decoded_parts.emplace_back(reinterpret_cast<const char*>(b->data), b->len);
      }
    }
    p.decoded_size = a.size;
    a.truncated = m_.limits_hit.scan_bytes;
    m_.attachments.push_back(std::move(a));
  }

  // A part that says it is ASCII (or says nothing) but holds 8-bit bytes:
  // GMime's conversion from US-ASCII drops them. They are read as UTF-8 when
  // they are valid UTF-8, else as Latin-1 (what such mail nearly always is),
  // as SpamAssassin's charset normalisation does. Empty: nothing to fix.
  std::string eight_bit_ascii(GMimePart* part, const MimePart& p) {
    if (!(p.charset.empty() || p.charset == "us-ascii" || p.charset == "ascii" || p.charset == "ansi_x3.4-1968"))
      return {};
    GMimeDataWrapper* dw = g_mime_part_get_content(part);
    if (dw == nullptr) return {};
    GObjectPtr<GMimeStream> mem(g_mime_stream_mem_new());
    g_mime_data_wrapper_write_to_stream(dw, mem.get());
    GByteArray* b = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
    if (b == nullptr) return {};
    std::string_view raw(reinterpret_cast<const char*>(b->data), b->len);
    if (std::none_of(raw.begin(), raw.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; })) return {};
    if (g_utf8_validate(raw.data(), static_cast<gssize>(raw.size()), nullptr)) return std::string(raw);
    std::string out;
    out.reserve(raw.size() + raw.size() / 8);
    for (char ch : raw) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (c == 0) continue;
      if (c < 0x80) {
        out.push_back(ch);
      } else {
        out.push_back(static_cast<char>(0xc0 | (c >> 6)));
        out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
      }
    }
    return out;
  }

  void text_part(GMimePart* part, bool is_html, MimePart& p) {
    if (!GMIME_IS_TEXT_PART(part)) return;
    GString_ content(g_mime_text_part_get_text(GMIME_TEXT_PART(part)));
    if (!content) return;
    const std::string fixed = eight_bit_ascii(part, p);
    std::string_view text = fixed.empty() ? std::string_view(content.get()) : std::string_view(fixed);
    p.decoded_size = text.size();
    m_.decoded_parts.emplace_back(text);
    if (!is_html) m_.has_text_plain = true;
    std::size_t room = l_.max_text_bytes > text_bytes_ ? l_.max_text_bytes - text_bytes_ : 0;
    if (text.size() > room) {
      text = text.substr(0, room);
      m_.limits_hit.text_bytes = true;
    }
    text_bytes_ += text.size();
    m_.raw_text.append(text);
    if (!m_.raw_text.empty() && m_.raw_text.back() != '\n') m_.raw_text.push_back('\n');
    if (is_html) {
      if (!m_.has_text_html) m_.sa_text = m_.text;  // the two renderings part here
      m_.has_text_html = true;
      if (!html_to_text(text, m_.text, m_.sa_text, room, uris_)) m_.limits_hit.text_bytes = true;
    } else {
      m_.text.append(text);
      if (!m_.text.empty() && m_.text.back() != '\n') m_.text.push_back('\n');
      if (m_.has_text_html) {
        m_.sa_text.append(text);
        if (!m_.sa_text.empty() && m_.sa_text.back() != '\n') m_.sa_text.push_back('\n');
      }
    }
  }

  Message& m_;
  const Limits& l_;
  UriCollector uris_;
  std::size_t leaves_ = 0;
  std::size_t text_bytes_ = 0;
};

}  // namespace

Message parse_message(std::string_view bytes, const Limits& limits,
                      std::optional<std::size_t> total_size) {
  init_gmime();
  Message m;
  m.total_size = total_size.value_or(bytes.size());
  if (bytes.size() > limits.max_scan_bytes) bytes = bytes.substr(0, limits.max_scan_bytes);
  if (m.total_size > bytes.size()) m.limits_hit.scan_bytes = true;
  m.raw.assign(bytes.data(), bytes.size());
  m.defects.nul_bytes = m.raw.find('\0') != std::string::npos;

  HeaderBlock hb = split_header_block(m.raw, limits.max_headers);
  m.header_end = hb.body_offset;
  m.crlf = hb.crlf;
  m.header_count = hb.total_fields;
  m.limits_hit.headers = hb.total_fields > hb.fields.size();
  m.defects.no_header_body_separator = !hb.separator_found;
  m.defects.bad_header_line = hb.bad_line;
  m.headers.reserve(hb.fields.size());
  for (const RawField& f : hb.fields) {
    Header h;
    h.name = std::string(f.name);
    h.lname = ascii_lower(f.name);
    std::string_view value = f.value;
    if (f.length > limits.max_header_bytes) {
      m.limits_hit.header_bytes = true;
      value = value.substr(0, limits.max_header_bytes);
    }
    h.raw = std::string(value);
    h.decoded = decode_header_value(value, m.defects.eight_bit_headers);
    h.offset = f.offset;
    h.length = f.length;
    m.headers.push_back(std::move(h));
  }

  // Subject first: SpamAssassin's body rules see the subject as the first line.
  if (const Header* subj = m.first("subject")) {
    m.text = subj->decoded;
    m.text.push_back('\n');
  }

  // GMime parses the MIME structure from the same bytes (mbox "From " line skipped).
  std::size_t start = 0;
  if (!hb.fields.empty()) start = hb.fields.front().offset;
  else if (hb.separator_found) start = hb.body_offset > 0 ? hb.body_offset - 1 : 0;
  GObjectPtr<GMimeStream> stream;
  if (!hb.separator_found && hb.bad_line) {
    // Like Postfix, the first non-header line starts the body: give GMime the
    // empty line that was missing so it sees the same split.
    std::string fixed = m.raw.substr(start, hb.body_offset - start);
    fixed += m.crlf ? "\r\n" : "\n";
    fixed.append(m.raw, hb.body_offset, std::string::npos);
    stream.reset(g_mime_stream_mem_new_with_buffer(fixed.data(), fixed.size()));
  } else {
    stream.reset(g_mime_stream_mem_new_with_buffer(m.raw.data() + start, m.raw.size() - start));
  }
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GObjectPtr<GMimeMessage> gm(g_mime_parser_construct_message(parser.get(), parser_options()));
  Walker w(m, limits);
  if (gm) w.walk(g_mime_message_get_mime_part(gm.get()), 0);
  if (!m.parts.empty() && m.parts.front().content_type.rfind("multipart/", 0) == 0 &&
      m.limits_hit.scan_bytes == false) {
    // GMime records a multipart without its end boundary as having no epilogue
    // marker; a short message whose last boundary never came is truncated MIME.
    GMimeObject* top = g_mime_message_get_mime_part(gm.get());
    const char* boundary =
        GMIME_IS_MULTIPART(top) ? g_mime_multipart_get_boundary(GMIME_MULTIPART(top)) : nullptr;
    if (boundary != nullptr) {
      std::string end = std::string("--") + boundary + "--";
      if (m.raw.find(end) == std::string::npos) m.defects.truncated_mime = true;
    }
  }
  w.finish_text_uris();
  return m;
}

}  // namespace spamgate
