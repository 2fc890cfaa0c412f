// redis.cc - see redis.h.
#include "util/redis.h"

#include <hiredis/hiredis.h>

#include <cstdlib>

#include "bayes/redis_replies.h"

namespace spamgate {

void RedisFree::operator()(redisContext* c) const { redisFree(c); }
void RedisReplyFree::operator()(redisReply* r) const { freeReplyObject(r); }

Result<RedisCtx> redis_connect(const std::string& server, long timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext* raw = nullptr;
  if (server.rfind("unix:", 0) == 0) {
    raw = redisConnectUnixWithTimeout(server.c_str() + 5, tv);
  } else {
    std::string host = server;
    int port = 6379;
    if (std::size_t colon = server.rfind(':'); colon != std::string::npos) {
      host = server.substr(0, colon);
      port = std::atoi(server.c_str() + colon + 1);
    }
    raw = redisConnectWithTimeout(host.c_str(), port, tv);
  }
  RedisCtx c(raw);
  if (!c) return Status::IOError("cannot allocate a connection");
  if (c->err != 0) return Status::IOError(c->errstr);
  redisSetTimeout(c.get(), tv);
  bayes_detail::bound_reader(c->reader);
  return c;
}

void redis_append(redisContext* c, const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
}

RedisReplyPtr redis_reply(redisContext* c) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK) return nullptr;
  return RedisReplyPtr(static_cast<redisReply*>(r));
}

}  // namespace spamgate
