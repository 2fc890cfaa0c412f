// log.cc - logger set-up (see log.h).
#include "util/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>

namespace spamgate {
namespace {

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
  try {
    if (target == "stderr") sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    else if (target == "stdout") sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    else if (target == "syslog") sink = std::make_shared<spdlog::sinks::syslog_sink_mt>("spamgate", LOG_PID, LOG_MAIL, false);
    else sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(target, false);
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IOError("cannot open log target " + target + ": " + e.what());
  }
  auto lg = std::make_shared<spdlog::logger>("spamgate", sink);
  if (target == "syslog") lg->set_pattern("%l: %v");
  else lg->set_pattern("%Y-%m-%dT%H:%M:%S.%e spamgate[%P] %l: %v");
  lg->set_level(spdlog::level::from_str(level));
  // Every line is written out at once: a verdict line must not sit in a
  // buffer when the process dies, nor a debug line an admin turned on.
  lg->flush_on(spdlog::level::trace);
  holder() = lg;
  return Status::Ok();
}

}  // namespace spamgate
