// log.cc - logger set-up (see log.h).
#include "util/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include <spdlog/sinks/base_sink.h>

namespace spamgate {
namespace {

// The journal's native protocol (sd_journal_send): one entry per line with
// PRIORITY from the level, SYSLOG_FACILITY mail (2) and our identifier, so
// `journalctl -p warning -u spamgate` works and no timestamp or pid is
// written twice (the journal records both). When the journal does not take
// an entry, the line goes to stderr instead of being lost.
template <typename Mutex>
class JournalSink final : public spdlog::sinks::base_sink<Mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const int priority = msg.level == spdlog::level::critical ? LOG_CRIT
                         : msg.level == spdlog::level::err    ? LOG_ERR
                         : msg.level == spdlog::level::warn   ? LOG_WARNING
                         : msg.level == spdlog::level::info   ? LOG_INFO
                                                              : LOG_DEBUG;
    const int len = static_cast<int>(std::min<std::size_t>(msg.payload.size(), 1 << 20));
    if (sd_journal_send("MESSAGE=%.*s", len, msg.payload.data(), "PRIORITY=%d", priority, "SYSLOG_FACILITY=%d",
                        LOG_MAIL >> 3, "SYSLOG_IDENTIFIER=spamgate", nullptr) < 0)
      std::fprintf(stderr, "spamgate[%d] %s: %.*s\n", static_cast<int>(::getpid()),
                   spdlog::level::to_string_view(msg.level).data(), len, msg.payload.data());
  }
  void flush_() override {}
};

std::shared_ptr<spdlog::logger>& holder() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = std::make_shared<spdlog::logger>("spamgate", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e spamgate[%P] %l: %v");
    return lg;
  }();
  return l;
}

}  // namespace

spdlog::logger& log() { return *holder(); }

Status init_logging(const std::string& level, const std::string& target) {
  spdlog::sink_ptr sink;
  const bool journal = (target == "journal" || (target == "stderr" && std::getenv("JOURNAL_STREAM") != nullptr)) &&
                       ::access("/run/systemd/journal/socket", W_OK) == 0;
  try {
    // "journal", or stderr that systemd connected to the journal (it says
    // so in JOURNAL_STREAM): the journal's own protocol, with priorities.
    // Without journald, sd_journal_send drops entries and says nothing:
    // stderr then, lines whole.
    if (journal) sink = std::make_shared<JournalSink<std::mutex>>();
    else if (target == "stderr" || target == "journal") sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    else if (target == "stdout") sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    else if (target == "syslog") sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("spamgate", LOG_PID, LOG_MAIL, false);
    else sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(target, false);
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IOError("cannot open log target " + target + ": " + e.what());
  }
  auto lg = std::make_shared<spdlog::logger>("spamgate", sink);
  if (target == "syslog") lg->set_pattern("%l: %v");
  else if (journal) lg->set_pattern("%v");
  else lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e spamgate[%P] %l: %v");
  lg->set_level(spdlog::level::from_str(level));
  // Every line is written out at once: a verdict line must not sit in a
  // buffer when the process dies, nor a debug line an admin turned on.
  lg->flush_on(spdlog::level::trace);
  holder() = lg;
  return Status::Ok();
}

}  // namespace spamgate
