// redis_replies.h - what the Redis store makes of each reply (redis_store.cc),
// as pure functions of a hiredis reply tree, so hostile or broken replies can
// be tested and fuzzed without a server. Private to src/bayes.
//
// Interface: bound_reader() caps what a reply may make hiredis allocate;
// each other function reads a reply of any shape (any type, any number
// of elements, any length, nested or nil) and returns false when it is not
// the shape its command answers; nothing is read past a reply's elements or
// length. Thread-safe (no state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "spamgate/bayes.h"

struct redisReply;
struct redisReader;

namespace spamgate::bayes_detail {

class TokenTable;

// The most elements a reply array may announce: above any reply the store
// asks for (an HMGET of at most [bayes] max_tokens = 1,000,000 tokens).
constexpr long long kMaxReplyElements = 1 << 21;
// Makes `r` refuse an array reply announcing more than kMaxReplyElements
// elements (the reply fails, hiredis: "Out of memory"), before hiredis
// allocates its pointers: "*2000000000" from a broken or hostile server would
// otherwise cost 16 GB of address space and a walk over all of it.
void bound_reader(redisReader* r);

// One token's "SPAM,HAM" (a string of at most 40 bytes); false otherwise.
bool redis_counts(const redisReply* e, TokenCounts& out);
// HMGET P:meta nspam nham version, then HLEN P:tokens: the totals and the version.
bool redis_totals(const redisReply* hmget, const redisReply* hlen, StoreTotals& out, std::uint64_t* version);
// HMGET P:tokens of `n` tokens: their counts (an entry that is not a count reads as zero).
bool redis_token_counts(const redisReply* r, std::size_t n, std::vector<TokenCounts>& counts);
// One HSCAN page: the next cursor, and every well-formed (8-byte token, count) pair put into `t`.
bool redis_scan_page(const redisReply* r, std::string& cursor, TokenTable& t);
// HMGET P:weights of `n` features (a missing or unreadable weight reads as 0).
bool redis_weights(const redisReply* r, std::size_t n, std::vector<float>& out);
// One HSCAN page of P:weights into t.weights (4-byte index, finite float).
bool redis_scan_weights(const redisReply* r, std::string& cursor, TokenTable& t);
// The learn script's answer ("learned", "moved", ...); anything else that is a string reads as kAlready.
std::optional<LearnOutcome> redis_learn_outcome(const redisReply* r);
// GET of a state record: a string (the value) or nil (none).
bool redis_state_value(const redisReply* r, std::optional<std::string>& value);

}  // namespace spamgate::bayes_detail
