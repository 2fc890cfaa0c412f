// milter.h - `spamgate milter`: the libmilter daemon.
//
// run_milter() serves until SIGTERM/SIGINT (or SIGHUP: libmilter's signal
// thread treats it as a stop), then drains sessions in flight for up to
// milter.drain_timeout. SIGUSR1 reloads config and rules atomically; a broken
// file keeps the old snapshot and logs file:line. Must be called before any
// other thread exists (it blocks the signals first).
#pragma once

#include <string>

namespace spamgate {

// Returns the process exit code.
int run_milter(const std::string& config_path, bool quiet);

}  // namespace spamgate
