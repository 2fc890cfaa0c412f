// fuzz_redis_replies.cc - libFuzzer target: what the Redis store makes of
// the replies it reads. Any bytes through hiredis' reader, bounded as the
// store bounds each connection's (bound_reader): redisReaderFeed builds real
// reply trees (nested arrays, nil, errors, integers). Then every reply goes
// into each interpreter of src/bayes/redis_replies.h as if it answered that
// command (totals, token counts, an HSCAN page of tokens or of the logistic
// regression's weights, an HMGET of weights, a learn outcome, a state
// GET), and every string value into the outbound guard's window decoder
// (window.h), as a state record read back from Redis. Build as
// fuzz_message.cc says. Checked: nothing crashes, reads out of bounds, leaks
// or takes long.
#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "bayes/redis_replies.h"
#include "bayes/token_table.h"
#include "outbound/window.h"

namespace {

struct ReaderFree {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

void interpret(const redisReply* r, const redisReply* next) {
  using namespace spamgate;
  using namespace spamgate::bayes_detail;
  StoreTotals totals;
  std::uint64_t version = 0;
  redis_totals(r, next, totals, &version);
  std::vector<TokenCounts> counts;
  redis_token_counts(r, r->type == REDIS_REPLY_ARRAY ? r->elements : 3, counts);
  TokenTable table(16);
  std::string cursor;
  if (redis_scan_page(r, cursor, table)) (void)table.find(1);
  if (redis_scan_weights(r, cursor, table)) {
    std::vector<float> w;
    table.find_weights({0, 1, (1u << kLrBits) - 1}, w);
  }
  std::vector<float> weights;
  redis_weights(r, r->type == REDIS_REPLY_ARRAY ? r->elements : 2, weights);
  (void)redis_learn_outcome(r);
  std::optional<std::string> value;
  if (redis_state_value(r, value) && value) {
    static const std::vector<std::uint32_t> kWidths = {1, 60, 1440};
    for (const auto& s : outbound_detail::decode(*value, kWidths)) (void)s.count(1795791775);
    (void)outbound_detail::decode(*value, {60});
  }
  TokenCounts one;
  redis_counts(r, one);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::unique_ptr<redisReader, ReaderFree> reader(redisReaderCreate());
  if (!reader) return 0;
  spamgate::bayes_detail::bound_reader(reader.get());  // as every connection of the store
  // Fed in two pieces, as replies arrive over TCP.
  const size_t half = size / 2;
  if (redisReaderFeed(reader.get(), reinterpret_cast<const char*>(data), half) != REDIS_OK) return 0;
  if (redisReaderFeed(reader.get(), reinterpret_cast<const char*>(data) + half, size - half) != REDIS_OK) return 0;
  std::vector<std::unique_ptr<redisReply, ReplyFree>> replies;
  for (int i = 0; i < 64; ++i) {
    void* r = nullptr;
    if (redisReaderGetReply(reader.get(), &r) != REDIS_OK || r == nullptr) break;
    replies.emplace_back(static_cast<redisReply*>(r));
  }
  for (size_t i = 0; i < replies.size(); ++i)
    interpret(replies[i].get(), i + 1 < replies.size() ? replies[i + 1].get() : nullptr);
  return 0;
}
