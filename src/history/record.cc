// record.cc - the history record's JSON form and its reference (see
// history_store.h).
#include <sys/random.h>

#include <nlohmann/json.hpp>

#include "history/history_store.h"

namespace spamgate {

std::string new_history_ref() {
  unsigned char bytes[10] = {};
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
    else if (n < 0 && errno != EINTR) break;
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

}  // namespace spamgate
