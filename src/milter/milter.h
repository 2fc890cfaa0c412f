// milter.h - `spamgate milter`: the milter daemon (our own protocol engine,
// protocol/engine.h).
//
// run_milter() serves until SIGTERM/SIGINT, then drains sessions in flight
// for up to milter.drain_timeout. SIGUSR1 and SIGHUP reload config and rules
// atomically; a broken file keeps the old snapshot and logs file:line. Must be called before any
// other thread exists (it blocks the signals first).
#pragma once

#include <string>

namespace spamgate {

// Returns the process exit code.
int run_milter(const std::string& config_path, bool quiet);

}  // namespace spamgate
