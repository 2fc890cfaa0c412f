// log.h - the one spamgate logger (spdlog, thread-safe sinks).
//
// init_logging() points it at stderr, stdout, syslog (facility mail) or a file,
// at the configured level. Per-message lines start with the queue id (or the
// file name in scan mode). Hostile text is clipped before it is logged.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "spamgate/status.h"

namespace spamgate {

// Sets up the default logger; returns an error for an unusable target/level.
Status init_logging(const std::string& level, const std::string& target);

// The logger to use (never null).
spdlog::logger& log();

}  // namespace spamgate
