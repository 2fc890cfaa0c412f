// prefilter_cache.h - compiled Hyperscan databases kept on disk
// (rules_cache_dir), so a start or a reload after an sa-update compiles each
// database once, not at every start (Rspamd's hs_cache does the same).
//
// A file per database, named by the SHA-256 of what it was compiled from
// (patterns, flags, Hyperscan's version); it holds, per pattern, why the
// compiler refused it ("" = compiled), the serialized database and a
// SHA-256 of it all. A file that does not read back whole (truncated,
// edited, another Hyperscan) is ignored: the database is compiled again and
// the file rewritten. Writes go to a temporary file renamed into place, so
// a crash never leaves half a file under a real name. Files unused for 30
// days are removed when a new one is written.
// DIAGNOSTICS: every failure comes back as a sentence for the load's
// warnings ("rules cache: cannot write DIR/...: Permission denied"); mail
// never depends on the cache.
#pragma once

#include <memory>
#include <string>

#include "rules/prefilter.h"

namespace spamgate {

// The cached chunk compiled from `key` with `patterns` patterns, or null
// (absent, or unreadable: then `error` says why).
std::shared_ptr<const PrefilterChunk> read_cached_chunk(const std::string& dir, const std::string& key,
                                                        std::size_t patterns, std::string& error);
// Saves `chunk` (compiled from `key`); false with `error` on failure.
bool write_cached_chunk(const std::string& dir, const std::string& key, const PrefilterChunk& chunk,
                        std::string& error);

}  // namespace spamgate
