// arf.cc - parse_feedback_report() (see arf.h).
#include "outbound/arf.h"

#include <gmime/gmime.h>

#include "message/gmime_util.h"
#include "spamgate/message.h"
#include "util/c_handle.h"

namespace spamgate {

namespace {

// The bytes of a leaf part after transfer decoding.
std::string part_content(GMimePart* part) {
  GMimeDataWrapper* dw = g_mime_part_get_content(part);
  if (dw == nullptr) return {};
  GObjectPtr<GMimeStream> mem(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(dw, mem.get());
  GByteArray* b = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  return b == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(b->data), b->len);
}

// An object written out as it would be sent (a message part's message).
std::string object_bytes(GMimeObject* obj) {
  GObjectPtr<GMimeStream> mem(g_mime_stream_mem_new());
  g_mime_object_write_to_stream(obj, nullptr, mem.get());
  GByteArray* b = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  return b == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(b->data), b->len);
}

std::string mime_type(GMimeObject* obj) {
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  if (ct == nullptr) return {};
  GString_ t(g_mime_content_type_get_mime_type(ct));
  return t ? ascii_lower(t.get()) : std::string();
}

void read_fields(std::string_view text, FeedbackReport& out) {
  HeaderBlock hb = split_header_block(text, 200);
  for (const RawField& f : hb.fields) {
    std::string name = ascii_lower(f.name);
    std::string value(f.value);
    std::size_t b = value.find_first_not_of(" \t\r\n"), e = value.find_last_not_of(" \t\r\n");
    value = b == std::string::npos ? std::string() : value.substr(b, e - b + 1);
    if (name == "feedback-type") out.feedback_type = ascii_lower(value);
    else if (name == "user-agent") out.user_agent = value;
    else if (name == "original-mail-from") out.original_mail_from = value;
    else if (name == "source-ip") out.source_ip = value;
  }
}

}  // namespace

Status parse_feedback_report(std::string_view bytes, FeedbackReport& out) {
  out = FeedbackReport{};
  init_gmime();
  GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GObjectPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.get(), parser_options()));
  if (!msg) return Status::InvalidArgument("not a mail message");
  GMimeObject* top = g_mime_message_get_mime_part(msg.get());
  if (top == nullptr || !GMIME_IS_MULTIPART(top) || mime_type(top) != "multipart/report")
    return Status::InvalidArgument("not multipart/report (an ARF report is multipart/report; report-type=feedback-report)");
  const char* rt = g_mime_content_type_get_parameter(g_mime_object_get_content_type(top), "report-type");
  if (rt == nullptr || g_ascii_strcasecmp(rt, "feedback-report") != 0)
    return Status::InvalidArgument(std::string("multipart/report of report-type ") + (rt ? rt : "(none)") +
                                   ", not feedback-report");
  GMimeMultipart* mp = GMIME_MULTIPART(top);
  bool fields = false;
  for (int i = 0; i < g_mime_multipart_get_count(mp); ++i) {
    GMimeObject* part = g_mime_multipart_get_part(mp, i);
    std::string type = mime_type(part);
    if (type == "message/feedback-report") {
      fields = true;
      if (GMIME_IS_PART(part)) read_fields(part_content(GMIME_PART(part)), out);
      else if (GMIME_IS_MESSAGE_PART(part)) {
        GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
        if (inner != nullptr) read_fields(object_bytes(GMIME_OBJECT(inner)), out);
      }
    } else if (type == "message/rfc822" && GMIME_IS_MESSAGE_PART(part) && out.original.empty()) {
      GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
      if (inner != nullptr) out.original = object_bytes(GMIME_OBJECT(inner));
    } else if (type == "text/rfc822-headers" && GMIME_IS_PART(part) && out.original.empty()) {
      out.original = part_content(GMIME_PART(part));
      out.headers_only = true;
    }
  }
  if (!fields) return Status::InvalidArgument("no message/feedback-report part");
  if (out.original.empty()) return Status::InvalidArgument("the original message (message/rfc822 or text/rfc822-headers) is missing");
  return Status::Ok();
}

}  // namespace spamgate
