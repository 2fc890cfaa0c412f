// wire.cc - milter packet framing, command decoders and reply encoders (see wire.h).
#include "milter/protocol/wire.h"

#include <arpa/inet.h>

#include <cstring>

namespace spamgate::milter {

namespace {

std::uint32_t read_u32(std::string_view d, std::size_t at) {
  std::uint32_t v = 0;
  std::memcpy(&v, d.data() + at, 4);
  return ntohl(v);
}

void put_u32(std::string& out, std::uint32_t v) {
  v = htonl(v);
  out.append(reinterpret_cast<const char*>(&v), 4);
}

void put_string(std::string& out, std::string_view s) {
  // A NUL inside a value would end it early on the MTA's side: cut there.
  out.append(s.substr(0, s.find('\0')));
  out.push_back('\0');
}

// A packet's bytes are built in `body` first, then framed.
void frame(std::string& out, char cmd, const std::string& body) { append_packet(out, cmd, body); }

}  // namespace

// --- framing ------------------------------------------------------------------

void PacketReader::compact() {
  if (pos_ == 0) return;
  if (pos_ == end_) {
    pos_ = end_ = 0;
    return;
  }
  std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
  end_ -= pos_;
  pos_ = 0;
}

char* PacketReader::prepare(std::size_t n) {
  compact();
  if (buf_.size() - end_ < n) buf_.resize(end_ + n);
  return buf_.data() + end_;
}

void PacketReader::feed(std::string_view bytes) {
  char* to = prepare(bytes.size());
  std::memcpy(to, bytes.data(), bytes.size());
  commit(bytes.size());
}

Result<std::optional<Packet>> PacketReader::next() {
  if (end_ - pos_ < 4) return std::optional<Packet>();
  std::uint32_t len = read_u32(std::string_view(buf_.data() + pos_, 4), 0);
  if (len == 0) return Status::InvalidArgument("a packet of length 0");
  if (len - 1 > max_data_)
    return Status::InvalidArgument("a packet of " + std::to_string(len) + " bytes (the limit is " +
                                   std::to_string(max_data_ + 1) + ")");
  if (end_ - pos_ < 4 + static_cast<std::size_t>(len)) return std::optional<Packet>();
  Packet p;
  p.cmd = buf_[pos_ + 4];
  p.data = std::string_view(buf_.data() + pos_ + 5, len - 1);
  pos_ += 4 + len;
  return std::optional<Packet>(p);
}

void append_packet(std::string& out, char cmd, std::string_view data) {
  put_u32(out, static_cast<std::uint32_t>(data.size() + 1));
  out.push_back(cmd);
  out.append(data);
}

// --- command data -----------------------------------------------------------

Result<OptNeg> parse_optneg(std::string_view data) {
  // Version 6 MTAs send 12 bytes; nothing after them is defined for this direction.
  if (data.size() < 12) return Status::InvalidArgument("OPTNEG of " + std::to_string(data.size()) + " bytes");
  return OptNeg{read_u32(data, 0), read_u32(data, 4), read_u32(data, 8)};
}

std::string encode_optneg(const OptNeg& o) {
  std::string d;
  put_u32(d, o.version);
  put_u32(d, o.actions);
  put_u32(d, o.protocol);
  return d;
}

Result<std::vector<std::string_view>> split_strings(std::string_view data) {
  std::vector<std::string_view> out;
  std::size_t at = 0;
  while (at < data.size()) {
    std::size_t nul = data.find('\0', at);
    if (nul == std::string_view::npos) return Status::InvalidArgument("a string without its final NUL");
    out.push_back(data.substr(at, nul - at));
    at = nul + 1;
  }
  return out;
}

Result<ConnectInfo> parse_connect(std::string_view data) {
  ConnectInfo c;
  std::size_t nul = data.find('\0');
  if (nul == std::string_view::npos) return Status::InvalidArgument("CONNECT without a host name");
  c.hostname = std::string(data.substr(0, nul));
  std::string_view rest = data.substr(nul + 1);
  if (rest.empty()) return c;  // family unknown, nothing more
  c.family = rest[0];
  rest.remove_prefix(1);
  if (c.family == SMFIA_UNKNOWN) return c;
  if (c.family != SMFIA_INET && c.family != SMFIA_INET6 && c.family != SMFIA_UNIX)
    return Status::InvalidArgument(std::string("CONNECT with address family '") + c.family + "'");
  if (rest.size() < 2) return Status::InvalidArgument("CONNECT without a port");
  c.port = static_cast<std::uint16_t>((static_cast<unsigned char>(rest[0]) << 8) | static_cast<unsigned char>(rest[1]));
  rest.remove_prefix(2);
  std::size_t end = rest.find('\0');
  if (end == std::string_view::npos) return Status::InvalidArgument("CONNECT address without its final NUL");
  c.address = std::string(rest.substr(0, end));
  return c;
}

Result<HeaderField> parse_header(std::string_view data) {
  auto parts = split_strings(data);
  if (!parts.ok()) return parts.status();
  if (parts.value().size() != 2)
    return Status::InvalidArgument("HEADER with " + std::to_string(parts.value().size()) + " strings, not 2");
  return HeaderField{parts.value()[0], parts.value()[1]};
}

Result<MacroPacket> parse_macros(std::string_view data) {
  if (data.empty()) return Status::InvalidArgument("MACRO without its command");
  MacroPacket m;
  m.stage = data[0];
  auto parts = split_strings(data.substr(1));
  if (!parts.ok()) return parts.status();
  m.pairs = std::move(parts.value());
  if (m.pairs.size() % 2 != 0) m.pairs.pop_back();  // a name without a value: ignored, as libmilter does
  return m;
}

// --- replies ------------------------------------------------------------------

void append_add_header(std::string& out, std::string_view name, std::string_view value) {
  std::string d;
  put_string(d, name);
  put_string(d, value);
  frame(out, SMFIR_ADDHEADER, d);
}

void append_insert_header(std::string& out, std::uint32_t index, std::string_view name, std::string_view value) {
  std::string d;
  put_u32(d, index);
  put_string(d, name);
  put_string(d, value);
  frame(out, SMFIR_INSHEADER, d);
}

void append_change_header(std::string& out, std::uint32_t index, std::string_view name, std::string_view value) {
  std::string d;
  put_u32(d, index);
  put_string(d, name);
  put_string(d, value);
  frame(out, SMFIR_CHGHEADER, d);
}

void append_quarantine(std::string& out, std::string_view reason) {
  std::string d;
  put_string(d, reply_text_for_wire(reason));
  frame(out, SMFIR_QUARANTINE, d);
}

void append_reply_code(std::string& out, std::string_view code, std::string_view xcode, std::string_view text) {
  std::string d(code);
  if (!xcode.empty()) {
    d += ' ';
    d += xcode;
  }
  d += ' ';
  d += reply_text_for_wire(text);
  d.push_back('\0');
  frame(out, SMFIR_REPLYCODE, d);
}

std::string reply_text_for_wire(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 500)) {
    if (c == '%') out += "%%";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) out += ' ';
    else out += c;
  }
  return out;
}

const char* command_name(char cmd) {
  switch (cmd) {
    case SMFIC_ABORT: return "ABORT";
    case SMFIC_BODY: return "BODY";
    case SMFIC_CONNECT: return "CONNECT";
    case SMFIC_MACRO: return "MACRO";
    case SMFIC_BODYEOB: return "EOM";
    case SMFIC_HELO: return "HELO";
    case SMFIC_QUIT_NC: return "QUIT_NC";
    case SMFIC_HEADER: return "HEADER";
    case SMFIC_MAIL: return "MAIL";
    case SMFIC_EOH: return "EOH";
    case SMFIC_OPTNEG: return "OPTNEG";
    case SMFIC_QUIT: return "QUIT";
    case SMFIC_RCPT: return "RCPT";
    case SMFIC_DATA: return "DATA";
    case SMFIC_UNKNOWN: return "UNKNOWN";
    default: return "?";
  }
}

}  // namespace spamgate::milter
