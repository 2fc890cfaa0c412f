// history_store.h - opening the verdict history store, and its record
// format (see spamgate/history.h).
//
// DIAGNOSTICS: every failure is a Status naming the path and LMDB's text.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spamgate/history.h"
#include "spamgate/snapshot.h"

namespace spamgate {

// The store [history] names: LMDB at c.path (created when `read_only` is
// false), mapped up to c.max_bytes; or Redis at c.redis (redis_history.cc).
Result<std::shared_ptr<HistoryStore>> open_history_store(const HistoryConfig& c, bool read_only = false);

// A new reference: 16 characters of [a-z2-7] from 80 bits of getrandom();
// "" when getrandom() fails (then the message gets no record: equal
// references would show one message's record for another).
std::string new_history_ref();

// The Redis store (redis_history.cc); open_history_store() calls it for
// [history] store = "redis".
Result<std::shared_ptr<HistoryStore>> open_redis_history(const HistoryConfig& c);

// A lookup term as the stores index it: lower case, a Message-ID without
// its <>, at most 250 bytes.
std::string history_term(std::string_view t);
// The terms a record is found by: {kind, term}, kind 'q' the queue id, 'm'
// the Message-ID, 'a' an address (envelope sender, each recipient, the From
// field's address), each once.
std::vector<std::pair<char, std::string>> history_index_terms(const HistoryRecord& r);

// Unix seconds from "1733580000", "2026-12-07" or "2026-12-07T14:30:00"
// (UTC; also "2026-12-07T14:30", as an HTML datetime-local field sends it);
// -1 if none of these.
std::int64_t parse_history_time(const std::string& s);

// A record as JSON (`spamgate history --json`), and back.
std::string history_to_json(const HistoryRecord& r);
Result<HistoryRecord> history_from_json(std::string_view json);

// The stored form: "HR1", then every field in order, a string as a varint
// length and its bytes, a number as a varint. Bytes are kept as they are
// (no UTF-8 check, no escaping): a JSON dump cost ~100,000 instructions a
// record, a third of the milter's added CPU. Corruption for a record that
// is cut short or of another version.
std::string history_encode(const HistoryRecord& r);
Result<HistoryRecord> history_decode(std::string_view bytes);

}  // namespace spamgate
