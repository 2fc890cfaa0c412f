// message.h - one parsed message, read by every check.
//
// A message is parsed once (parse_message) into a const Message that holds the
// raw and the decoded views of its headers, the MIME tree, the decoded text,
// the URIs and the attachments, plus flags for every limit that was hit.
// Parsing never fails: hostile or broken input is scanned as far as it makes
// sense and the damage is recorded in `limits_hit` / `defects`.
// A Message is immutable after parsing and safe to read from many threads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/limits.h"

namespace spamgate {

struct Header {
  std::string name;     // as written, e.g. "Subject"
  std::string lname;    // lower-cased name for lookups
  std::string raw;      // the value as on the wire: after "Name:", folding kept, no final line end
  std::string decoded;  // unfolded, RFC 2047 decoded, UTF-8, leading/trailing white space trimmed
  std::size_t offset = 0;  // offset of the field's first byte in the raw message
  std::size_t length = 0;  // bytes of the field including its final line end
};

struct MimePart {
  // The part's own header fields (of the top-level entity: its Content-*
  // fields), at most kMaxPartHeaders, values clipped to max_header_bytes.
  struct Field {
    std::string lname;    // lower-case name
    std::string raw;      // as on the wire (folding kept)
    std::string decoded;  // unfolded, RFC 2047 decoded
  };
  static constexpr std::size_t kMaxPartHeaders = 64;
  std::vector<Field> headers;
  std::string content_type;  // lower-case "type/subtype"
  std::string filename;      // from Content-Disposition or Content-Type name=
  std::string charset;       // as declared, lower-case
  std::string encoding;      // Content-Transfer-Encoding, lower-case
  int depth = 0;             // 0 for the top-level entity
  std::size_t decoded_size = 0;  // bytes after transfer decoding (of what was scanned)
  bool is_attachment = false;
};

struct Attachment {
  std::string name;
  std::string content_type;
  std::size_t size = 0;  // decoded bytes seen within max_scan_bytes
  bool truncated = false;  // the part went on past max_scan_bytes
};

struct Uri {
  std::string text;    // the URI as found, e.g. "http://192.0.2.1/x"
  std::string scheme;  // lower-case "http", "https", "mailto", or "" for www.-style
  std::string host;    // lower-case host (domain of a mailto), no port
  bool host_is_ip = false;
  bool from_html = false;
};

// Flags for limits that were hit and structural defects found while parsing.
struct LimitsHit {
  bool scan_bytes = false;   // message longer than max_scan_bytes
  bool headers = false;      // more than max_headers fields
  bool header_bytes = false; // a field longer than max_header_bytes
  bool mime_depth = false;   // nesting deeper than max_mime_depth
  bool parts = false;        // more than max_parts leaf parts
  bool uris = false;         // more than max_uris URIs
  bool text_bytes = false;   // decoded text longer than max_text_bytes
  bool any() const {
    return scan_bytes || headers || header_bytes || mime_depth || parts || uris || text_bytes;
  }
};

struct Defects {
  bool no_header_body_separator = false;  // headers never ended with an empty line
  bool bad_header_line = false;           // a line in the header block that is not a field
  bool nul_bytes = false;                 // NUL octets in the scanned bytes
  bool eight_bit_headers = false;         // raw 8-bit octets in a header field
  bool truncated_mime = false;            // a multipart without its closing boundary
  bool mime_epilogue = false;             // text after a multipart's closing boundary (not only spaces and dots)
};

struct Message {
  // The scanned bytes: the first max_scan_bytes of the message, as received.
  std::string raw;
  std::size_t total_size = 0;   // size of the whole message as delivered
  std::size_t header_end = 0;   // offset of the body (after the empty line), or raw.size()
  bool crlf = false;            // the header block uses CRLF line ends

  std::vector<Header> headers;   // in order, at most max_headers
  std::size_t header_count = 0;  // fields seen, including those past max_headers

  std::vector<MimePart> parts;    // pre-order walk of the MIME tree
  std::string text;               // decoded text of text/* parts, HTML rendered to text
  std::string raw_text;           // decoded text of text/* parts, HTML kept as markup
  bool has_text_plain = false;
  bool has_text_html = false;
  // `text` with HTML rendered as SpamAssassin renders it (html_to_text()),
  // for its body rules; only built for a message with an HTML part: use
  // sa_rendered_text().
  std::string sa_text;
  const std::string& sa_rendered_text() const { return has_text_html ? sa_text : text; }
  std::vector<Uri> uris;
  std::vector<Attachment> attachments;
  // Decoded content of every leaf part (text and attachments alike), in
  // order: what the malware scan reads, so it needs no second parse.
  std::vector<std::string> decoded_parts;

  LimitsHit limits_hit;
  Defects defects;

  // All headers named `name` (case-insensitive), in order.
  std::vector<const Header*> find(std::string_view name) const;
  // The first header named `name`, or nullptr.
  const Header* first(std::string_view name) const;
};

// Parses `bytes` (a whole message, or its first bytes when total_size says the
// message is longer) under `limits`. Never fails, never throws for bad input.
// Thread-safe: may be called from many threads at once.
Message parse_message(std::string_view bytes, const Limits& limits,
                      std::optional<std::size_t> total_size = std::nullopt);

// Splits the header block of `bytes` into fields; used by the parser and by
// the rewriter so both agree on where each field is.
struct RawField {
  std::string_view name;
  std::string_view value;  // after the colon, folding kept, final line end excluded
  std::size_t offset = 0;
  std::size_t length = 0;  // with the final line end
};
struct HeaderBlock {
  std::vector<RawField> fields;
  std::size_t total_fields = 0;  // fields seen, including those past max_fields
  std::size_t body_offset = 0;  // first byte of the body
  bool crlf = false;
  bool separator_found = false;
  bool bad_line = false;
};
HeaderBlock split_header_block(std::string_view bytes, std::size_t max_fields);
// The same walk without keeping fields: `visit` sees every field of the
// block, continuation lines included; the result's `fields` is empty.
HeaderBlock walk_header_block(std::string_view bytes, const std::function<void(const RawField&)>& visit);

// The header fields a scan removes from a message on its way through,
// counted as the header block streams by (the milter's header callbacks, or
// a whole file for `scan`): every X-Spam-* field (nobody but us may say what
// our scan found), every Authentication-Results field claiming our
// authserv-id (RFC 8601 section 5), every copy of the outbound sender tag.
// Bounded whatever the message: it keeps per-name counts and at most `cap`
// indexes; past the cap fields are only counted (forged() stays exact).
// Not thread-safe (one per message).
class HeaderCensus {
 public:
  HeaderCensus() = default;
  // `own_authserv_id`/`tag_header` "" = not configured (nothing of that kind
  // is removed); `cap` = limits.max_header_deletions.
  HeaderCensus(std::string own_authserv_id, std::string tag_header, std::size_t cap);
  void add(std::string_view name, std::string_view value);  // one field, value as on the wire
  void add_block(std::string_view bytes);                    // every field of a message's header block

  std::size_t fields() const { return fields_; }  // every field of the block
  std::size_t forged() const { return forged_; }  // fields to remove, past the cap too
  // More to remove than can be (past the cap, or more than 64 X-Spam-* names).
  bool over_cap() const { return forged_ > cap_ || names_dropped_; }
  std::size_t cap() const { return cap_; }
  int tag_fields() const { return tag_fields_; }

  struct Removal {
    std::string name;
    int index = 0;  // 1-based among the fields of that name, case-insensitive
  };
  // At most cap() removals, each valid after the ones before it (an MTA
  // renumbers after a delete): forged Authentication-Results first, then the
  // tag, then X-Spam-*; within a name the first fields, highest index first.
  std::vector<Removal> removals() const;

 private:
  struct Count {
    std::string name;   // first spelling seen
    std::string lname;
    int count = 0;
  };
  std::string own_, tag_, tag_name_;
  std::size_t cap_ = 0;
  std::size_t fields_ = 0;
  std::size_t forged_ = 0;
  std::vector<Count> x_spam_;   // at most 64 distinct names
  std::vector<int> own_ar_;     // indexes among Authentication-Results fields, at most cap_
  int ar_seen_ = 0;
  int tag_fields_ = 0;
  bool names_dropped_ = false;
};

// Lower-cases ASCII letters.
std::string ascii_lower(std::string_view s);

}  // namespace spamgate
