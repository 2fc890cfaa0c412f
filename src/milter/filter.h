// filter.h - the milter Filter over a Session (filter.cc): what the protocol
// engine runs for each MTA connection.
#pragma once

#include <cstddef>

#include "milter/daemon.h"
#include "milter/protocol/connection.h"

namespace spamgate {

// Makes one Filter per connection, each with its own Session and the
// daemon's counters. `max_chunk`: the largest body packet (the engine's limit).
milter::FilterFactory session_filters(Daemon& daemon, std::size_t max_chunk);

}  // namespace spamgate
