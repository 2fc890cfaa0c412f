// cmd_history.cc - `spamgate history`: find verdicts in the history.
//
//   spamgate history [--config F] [--since T] [--until T] [--limit N] [--json] [TERM]
// TERM is a reference (from X-Spam-Technical-Details), a queue id, a
// Message-ID or an address (envelope sender, recipient or From); without
// one, the newest records. T is unix seconds, or a date "2026-12-07" /
// "2026-12-07T14:30:00" (UTC). Prints one block per record: when, queue id,
// envelope, From, Subject, score and action, then each rule with its score
// and matched text; --json one object per line.
// Exit: 0 found; 1 nothing found; 2 usage/config error; 3 store error.
#include <cstdio>
#include <ctime>
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "history/history_store.h"
#include "spamgate/outbound.h"

namespace spamgate::app {

namespace {

const char* kUsage =
    "usage: spamgate history [--config F] [--since T] [--until T] [--limit N] [--json] [TERM]\n"
    "  TERM     a reference (X-Spam-Technical-Details), queue id, Message-ID or address; none: the newest\n"
    "  --since, --until  unix seconds or a UTC date: 2026-12-07 or 2026-12-07T14:30:00\n"
    "  --limit  records at most (default 50)\n"
    "  --json   one JSON object per record\n"
    "Reads the milter's verdict history ([history] path).\n";

// Stored text is the message's (hostile): control bytes shown as \xHH, so
// a Subject cannot move the cursor or fake a line of this output.
std::string shown(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

void print_record(const HistoryRecord& in) {
  HistoryRecord r = in;
  for (std::string* f : {&r.queue_id, &r.message_id, &r.client_ip, &r.helo, &r.mail_from, &r.from, &r.subject,
                         &r.direction, &r.account, &r.score, &r.threshold, &r.action, &r.reply, &r.auth})
    *f = shown(*f);
  for (std::string& rc : r.rcpt_to) rc = shown(rc);
  for (HistoryRecord::RuleHit& h : r.hits) {
    h.name = shown(h.name);
    h.score = shown(h.score);
    h.detail = shown(h.detail);
  }
  std::string rcpts;
  for (const std::string& rc : r.rcpt_to) rcpts += (rcpts.empty() ? "" : ", ") + rc;
  std::printf("%s  ref=%s  queue_id=%s\n", format_unix_time(r.time).c_str(), r.ref.c_str(), r.queue_id.c_str());
  std::printf("  client %s (helo %s), %s, from <%s> to %s, %llu bytes\n", r.client_ip.empty() ? "local" : r.client_ip.c_str(),
              r.helo.c_str(), r.direction.c_str(), r.mail_from.c_str(), rcpts.c_str(),
              static_cast<unsigned long long>(r.size));
  std::printf("  From: %s\n  Subject: %s\n  Message-ID: %s\n", r.from.c_str(), r.subject.c_str(), r.message_id.c_str());
  std::printf("  score %s (spam above %s), action %s%s%s\n", r.score.empty() ? "-" : r.score.c_str(),
              r.threshold.empty() ? "-" : r.threshold.c_str(), r.action.c_str(), r.reply.empty() ? "" : ", reply ",
              r.reply.c_str());
  if (!r.auth.empty()) std::printf("  %s\n", r.auth.c_str());
  for (const HistoryRecord::RuleHit& h : r.hits)
    std::printf("  %7s  %-28s %s\n", h.score.c_str(), h.name.c_str(), h.detail.c_str());
}

}  // namespace

int cmd_history(int argc, char** argv) {
  CommandFlags own{{"--json"}, {"--since", "--until", "--limit"}, {}, {}};
  auto opt = parse_options(argc, argv, 2, kUsage, own);
  if (!opt) return 2;
  if (opt->args.size() > 1) {
    std::cerr << "spamgate: history takes one TERM\n" << kUsage;
    return 2;
  }
  HistoryQuery q;
  if (!opt->args.empty()) q.term = opt->args.front();
  for (const char* flag : {"--since", "--until"}) {
    auto it = opt->values.find(flag);
    if (it == opt->values.end()) continue;
    std::int64_t t = parse_history_time(it->second);
    if (t < 0) {
      std::cerr << "spamgate: " << flag << " '" << it->second << "' is not unix seconds nor a date\n";
      return 2;
    }
    (std::string_view(flag) == "--since" ? q.since : q.until) = t;
  }
  if (auto it = opt->values.find("--limit"); it != opt->values.end()) {
    if (it->second.empty() || it->second.size() > 6 || it->second.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(it->second) == 0) {
      std::cerr << "spamgate: --limit must be a number from 1 to 999999\n";
      return 2;
    }
    q.limit = std::stoul(it->second);
  }
  std::optional<Config> loaded = config_or_report(*opt, "warn");
  if (!loaded) return 2;
  auto store = open_history_store(loaded->history, /*read_only=*/true);
  if (!store.ok()) {
    std::cerr << "spamgate: " << store.status().message() << "\n";
    return 3;
  }
  std::vector<HistoryRecord> found;
  if (Status st = store.value()->find(q, found); !st.ok()) {
    std::cerr << "spamgate: " << st.message() << "\n";
    return 3;
  }
  for (const HistoryRecord& r : found) {
    if (opt->has("--json")) std::printf("%s\n", history_to_json(r).c_str());
    else print_record(r);
  }
  if (!opt->has("--json")) std::printf("%zu record(s)\n", found.size());
  return found.empty() ? 1 : 0;
}

}  // namespace spamgate::app
