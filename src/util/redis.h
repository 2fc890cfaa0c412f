// redis.h - hiredis handles in RAII wrappers and the connection set-up the
// Redis stores share (the classifier's, the outbound state's, the verdict
// history's): "HOST:PORT" or "unix:PATH", connect and I/O timeouts, replies
// bounded in size (a hostile or broken server cannot make one huge reply).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spamgate/status.h"

struct redisContext;
struct redisReply;

namespace spamgate {

struct RedisFree {
  void operator()(redisContext* c) const;
};
using RedisCtx = std::unique_ptr<redisContext, RedisFree>;
struct RedisReplyFree {
  void operator()(redisReply* r) const;
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

// A connection to `server` with `timeout_ms` for connect and each reply, or
// IOError with hiredis' reason.
Result<RedisCtx> redis_connect(const std::string& server, long timeout_ms);
// Queues one command of binary-safe arguments (pipelining).
void redis_append(redisContext* c, const std::vector<std::string_view>& args);
// The next reply; null on an I/O error, a timeout or a closed connection.
RedisReplyPtr redis_reply(redisContext* c);

}  // namespace spamgate
