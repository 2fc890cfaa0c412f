// record.cc - the history record's JSON form and its reference (see
// history_store.h).
#include <sys/random.h>

#include <algorithm>
#include <ctime>

#include <nlohmann/json.hpp>

#include "history/history_store.h"
#include "spamgate/message.h"

namespace spamgate {

std::string new_history_ref() {
  unsigned char bytes[10] = {};
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
    else if (n < 0 && errno != EINTR) return std::string();  // no randomness: no reference, no record
  }
  // Base32 (RFC 4648 alphabet, lower case): 80 bits, 16 characters.
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(acc >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  return out;
}

std::string history_term(std::string_view t) {
  while (!t.empty() && (t.front() == ' ' || t.front() == '<')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '>')) t.remove_suffix(1);
  return ascii_lower(t.substr(0, 250));  // under the records' 300-byte clip: a long Message-ID still matches
}

std::vector<std::pair<char, std::string>> history_index_terms(const HistoryRecord& r) {
  std::vector<std::pair<char, std::string>> out;
  if (!r.queue_id.empty()) out.emplace_back('q', history_term(r.queue_id));
  if (!r.message_id.empty()) out.emplace_back('m', history_term(r.message_id));
  auto address = [&](std::string_view a) {
    if (a.empty()) return;
    std::pair<char, std::string> p('a', history_term(a));
    if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(std::move(p));
  };
  address(r.mail_from);
  for (const std::string& rc : r.rcpt_to) address(rc);
  // The From field's address: "Name <a@b>" -> a@b.
  std::string_view from = r.from;
  if (std::size_t lt = from.rfind('<'); lt != std::string_view::npos) {
    std::size_t gt = from.find('>', lt);
    address(from.substr(lt + 1, gt == std::string_view::npos ? std::string_view::npos : gt - lt - 1));
  } else if (from.find('@') != std::string_view::npos && from.find(' ') == std::string_view::npos) {
    address(from);
  }
  return out;
}

std::int64_t parse_history_time(const std::string& s) {
  if (!s.empty() && s.size() <= 18 && s.find_first_not_of("0123456789") == std::string::npos) return std::stoll(s);
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"}) {
    std::tm tm{};
    const char* end = strptime(s.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') return static_cast<std::int64_t>(timegm(&tm));
  }
  return -1;
}

std::string history_to_json(const HistoryRecord& r) {
  nlohmann::json hits = nlohmann::json::array();
  for (const HistoryRecord::RuleHit& h : r.hits) hits.push_back({{"name", h.name}, {"score", h.score}, {"detail", h.detail}});
  nlohmann::json j = {{"ref", r.ref},         {"time", r.time},       {"queue_id", r.queue_id},
                      {"message_id", r.message_id}, {"client_ip", r.client_ip}, {"helo", r.helo},
                      {"mail_from", r.mail_from}, {"rcpt_to", r.rcpt_to}, {"from", r.from},
                      {"subject", r.subject},   {"size", r.size},       {"direction", r.direction},
                      {"account", r.account},   {"score", r.score},     {"threshold", r.threshold},
                      {"action", r.action},     {"reply", r.reply},     {"auth", r.auth},
                      {"hits", hits}};
  // Hostile text (a Subject with invalid UTF-8) is written with U+FFFD, not refused.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<HistoryRecord> history_from_json(std::string_view json) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption("history record is not a JSON object");
  HistoryRecord r;
  auto str = [&](const char* k, std::string& out) {
    if (auto it = j.find(k); it != j.end() && it->is_string()) out = it->get<std::string>();
  };
  str("ref", r.ref);
  str("queue_id", r.queue_id);
  str("message_id", r.message_id);
  str("client_ip", r.client_ip);
  str("helo", r.helo);
  str("mail_from", r.mail_from);
  str("from", r.from);
  str("subject", r.subject);
  str("direction", r.direction);
  str("account", r.account);
  str("score", r.score);
  str("threshold", r.threshold);
  str("action", r.action);
  str("reply", r.reply);
  str("auth", r.auth);
  if (auto it = j.find("time"); it != j.end() && it->is_number_integer()) r.time = it->get<std::int64_t>();
  if (auto it = j.find("size"); it != j.end() && it->is_number_unsigned()) r.size = it->get<std::uint64_t>();
  if (auto it = j.find("rcpt_to"); it != j.end() && it->is_array())
    for (const auto& v : *it)
      if (v.is_string()) r.rcpt_to.push_back(v.get<std::string>());
  if (auto it = j.find("hits"); it != j.end() && it->is_array())
    for (const auto& v : *it) {
      if (!v.is_object()) continue;
      HistoryRecord::RuleHit h;
      if (auto n = v.find("name"); n != v.end() && n->is_string()) h.name = n->get<std::string>();
      if (auto s = v.find("score"); s != v.end() && s->is_string()) h.score = s->get<std::string>();
      if (auto d = v.find("detail"); d != v.end() && d->is_string()) h.detail = d->get<std::string>();
      r.hits.push_back(std::move(h));
    }
  if (r.ref.empty()) return Status::Corruption("history record without a reference");
  return r;
}

namespace {

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_str(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (b_.empty()) return false;
      const auto c = static_cast<unsigned char>(b_.front());
      b_.remove_prefix(1);
      v |= static_cast<std::uint64_t>(c & 0x7f) << shift;
      if ((c & 0x80) == 0) return true;
    }
    return false;
  }
  bool str(std::string& s) {
    std::uint64_t n = 0;
    if (!varint(n) || n > b_.size()) return false;
    s.assign(b_.substr(0, n));
    b_.remove_prefix(n);
    return true;
  }

 private:
  std::string_view b_;
};

constexpr std::string_view kMagic = "HR1";

}  // namespace

std::string history_encode(const HistoryRecord& r) {
  std::string out(kMagic);
  out.reserve(512);
  for (const std::string* s : {&r.ref, &r.queue_id, &r.message_id, &r.client_ip, &r.helo, &r.mail_from, &r.from,
                               &r.subject, &r.direction, &r.account, &r.score, &r.threshold, &r.action, &r.reply, &r.auth})
    put_str(out, *s);
  put_varint(out, static_cast<std::uint64_t>(std::max<std::int64_t>(r.time, 0)));
  put_varint(out, r.size);
  put_varint(out, r.rcpt_to.size());
  for (const std::string& rc : r.rcpt_to) put_str(out, rc);
  put_varint(out, r.hits.size());
  for (const HistoryRecord::RuleHit& h : r.hits) {
    put_str(out, h.name);
    put_str(out, h.score);
    put_str(out, h.detail);
  }
  return out;
}

Result<HistoryRecord> history_decode(std::string_view bytes) {
  if (bytes.substr(0, kMagic.size()) != kMagic) return Status::Corruption("history record of an unknown format");
  Reader in(bytes.substr(kMagic.size()));
  HistoryRecord r;
  bool ok = true;
  for (std::string* s : {&r.ref, &r.queue_id, &r.message_id, &r.client_ip, &r.helo, &r.mail_from, &r.from,
                         &r.subject, &r.direction, &r.account, &r.score, &r.threshold, &r.action, &r.reply, &r.auth})
    ok = ok && in.str(*s);
  std::uint64_t time = 0, n = 0;
  ok = ok && in.varint(time) && in.varint(r.size) && in.varint(n) && n <= 100000;
  r.time = static_cast<std::int64_t>(time);
  for (std::uint64_t i = 0; ok && i < n; ++i) ok = in.str(r.rcpt_to.emplace_back());
  ok = ok && in.varint(n) && n <= 100000;
  for (std::uint64_t i = 0; ok && i < n; ++i) {
    HistoryRecord::RuleHit& h = r.hits.emplace_back();
    ok = in.str(h.name) && in.str(h.score) && in.str(h.detail);
  }
  if (!ok || r.ref.empty()) return Status::Corruption("history record cut short");
  return r;
}

}  // namespace spamgate
