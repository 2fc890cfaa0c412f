// wire.h - the milter protocol's packets (version 6, as Postfix and Sendmail
// speak it): framing, the data layouts of each command, and the encoders of
// each reply. The wire constants are libmilter's own (libmilter/mfdef.h and
// the SMFIF_* action flags of mfapi.h); nothing of libmilter is linked.
//
// A packet is a 4-byte big-endian length (command byte + data), the command
// byte, then the data. PacketReader frames a byte stream incrementally and
// refuses a length above its limit (the stream cannot be trusted after that:
// the connection is closed). Decoders take a packet's data and never read past
// it: a malformed packet is an error, not a crash. Pure functions; no I/O.
#pragma once

#include <libmilter/mfdef.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/status.h"

namespace spamgate::milter {

// The SMFIF_* actions a filter may ask for (libmilter/mfapi.h; repeated here
// because mfapi.h declares libmilter's whole C API, which we do not link).
inline constexpr std::uint32_t kActAddHeaders = 0x01;   // SMFIF_ADDHDRS
inline constexpr std::uint32_t kActChangeHeaders = 0x10;  // SMFIF_CHGHDRS
inline constexpr std::uint32_t kActQuarantine = 0x20;   // SMFIF_QUARANTINE

struct Packet {
  char cmd = 0;
  std::string_view data;  // valid until the reader is fed or compacted
};

// Frames a byte stream into packets. feed() appends; next() returns the next
// complete packet (its data points into the reader), nullopt when more bytes
// are needed, or an error (length 0 or above max_data + 1) after which the
// stream is unusable.
class PacketReader {
 public:
  explicit PacketReader(std::size_t max_data) : max_data_(max_data) {}
  void feed(std::string_view bytes);
  // Where the caller may read() straight into the reader: at least `n`
  // writable bytes; then commit(got).
  char* prepare(std::size_t n);
  void commit(std::size_t got) { end_ += got; }
  Result<std::optional<Packet>> next();
  // Bytes received but not yet returned as packets.
  std::size_t pending() const { return end_ - pos_; }
  std::size_t capacity() const { return buf_.size(); }

 private:
  void compact();
  std::size_t max_data_;
  std::string buf_;
  std::size_t pos_ = 0, end_ = 0;
};

// Appends one packet to `out`.
void append_packet(std::string& out, char cmd, std::string_view data = {});

// --- command data -----------------------------------------------------------

struct OptNeg {
  std::uint32_t version = 0, actions = 0, protocol = 0;
};
Result<OptNeg> parse_optneg(std::string_view data);
std::string encode_optneg(const OptNeg& o);

struct ConnectInfo {
  std::string hostname;
  char family = SMFIA_UNKNOWN;  // SMFIA_INET, SMFIA_INET6, SMFIA_UNIX or SMFIA_UNKNOWN
  std::uint16_t port = 0;
  std::string address;          // the client IP (or socket path)
};
Result<ConnectInfo> parse_connect(std::string_view data);

// NUL-terminated strings, one after another (MAIL/RCPT arguments, HELO,
// the macro pairs). A missing final NUL is an error.
Result<std::vector<std::string_view>> split_strings(std::string_view data);

struct HeaderField {
  std::string_view name, value;
};
Result<HeaderField> parse_header(std::string_view data);

// SMFIC_MACRO: the command the macros belong to, then name/value pairs.
struct MacroPacket {
  char stage = 0;
  std::vector<std::string_view> pairs;  // name, value, name, value, ...
};
Result<MacroPacket> parse_macros(std::string_view data);

// --- replies ------------------------------------------------------------------

void append_add_header(std::string& out, std::string_view name, std::string_view value);
void append_insert_header(std::string& out, std::uint32_t index, std::string_view name, std::string_view value);
// An empty value deletes the index-th field of that name (1-based).
void append_change_header(std::string& out, std::uint32_t index, std::string_view name, std::string_view value);
void append_quarantine(std::string& out, std::string_view reason);
// "550 5.7.1 text": code and enhanced code as given, text sanitised (see
// reply_text_for_wire). Sent instead of SMFIR_REJECT/TEMPFAIL.
void append_reply_code(std::string& out, std::string_view code, std::string_view xcode, std::string_view text);

// Makes a reply text safe on the wire: '%' doubled (Sendmail reads the text
// as a format; Postfix undoes the doubling), CR, LF, NUL and other controls
// become spaces, at most 500 bytes kept.
std::string reply_text_for_wire(std::string_view text);

// The name of a command byte for log lines ("MAIL", "BODY", ...).
const char* command_name(char cmd);

}  // namespace spamgate::milter
