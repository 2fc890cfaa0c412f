// redis_history.cc - the verdict history in Redis, one history for several
// gateway nodes ([history] store = "redis"; see spamgate/history.h).
//
// Keys under [history] redis_prefix P:
//   P:r:REF       string  the record (history_encode), expiring after retention_days
//   P:time        zset    REF scored by its time (newest first, time ranges, expiry)
//   P:i:KIND:TERM zset    REF scored by time, for each lookup term of the record
//                         (history_index_terms(): queue id, Message-ID, addresses),
//                         expiring with the newest record that names it; entries
//                         past the retention are trimmed at each write to it
// A lookup reads the index sets of its term (and the record of that
// reference), then the records in one MGET; entries whose record has
// expired are skipped. expire() removes what P:time holds before a time.
// Redis's own maxmemory policy bounds its size ([history] max_mb is LMDB's).
// One connection, used by one caller at a time (the writer thread writes a
// batch a second; lookups are a person's); a failed one is dropped and the
// next call connects again.
// DIAGNOSTICS: every failure is an IOError naming the server and the reason.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <mutex>
#include <set>

#include "history/history_store.h"
#include "util/redis.h"

namespace spamgate {

namespace {

class RedisHistory final : public HistoryStore {
 public:
  explicit RedisHistory(const HistoryConfig& c)
      : server_(c.redis),
        prefix_(c.redis_prefix),
        timeout_ms_(c.redis_timeout_ms),
        ttl_(std::to_string(static_cast<long long>(c.retention_days) * 86400)) {}

  std::string describe() const override { return "redis " + server_ + " " + prefix_; }

  Status put(const std::vector<HistoryRecord>& records) override {
    if (records.empty()) return Status::Ok();
    std::lock_guard lock(mu_);
    redisContext* c = nullptr;
    if (Status st = connection(c); !st.ok()) return st;
    std::size_t commands = 0;
    // Index entries older than the retention go as the set is written: a
    // busy address's set never expires as a whole.
    std::int64_t newest = 0;
    for (const HistoryRecord& r : records) newest = std::max(newest, r.time);
    const std::string cutoff = "(" + std::to_string(newest - std::stoll(ttl_));
    for (const HistoryRecord& r : records) {
      const std::string time = std::to_string(r.time);
      redis_append(c, {"SET", record_key(r.ref), history_encode(r), "EX", ttl_});
      redis_append(c, {"ZADD", prefix_ + ":time", time, r.ref});
      commands += 2;
      for (const auto& [kind, term] : history_index_terms(r)) {
        const std::string key = index_key(kind, term);
        redis_append(c, {"ZADD", key, time, r.ref});
        redis_append(c, {"ZREMRANGEBYSCORE", key, "-inf", cutoff});
        redis_append(c, {"EXPIRE", key, ttl_});
        commands += 3;
      }
    }
    for (std::size_t i = 0; i < commands; ++i) {
      RedisReplyPtr r = redis_reply(c);
      if (!r || r->type == REDIS_REPLY_ERROR) return fail(r.get());
    }
    return Status::Ok();
  }

  Status find(const HistoryQuery& q, std::vector<HistoryRecord>& out) const override {
    out.clear();
    std::lock_guard lock(mu_);
    redisContext* c = nullptr;
    if (Status st = connection(c); !st.ok()) return st;
    const std::string max = q.until > 0 ? std::to_string(q.until) : "+inf";
    const std::string min = q.since > 0 ? std::to_string(q.since) : "-inf";
    const std::string limit = std::to_string(q.limit);
    const std::string term = history_term(q.term);
    std::vector<std::string> sets;
    if (term.empty()) sets.push_back(prefix_ + ":time");
    else
      for (char kind : {'q', 'm', 'a'}) sets.push_back(index_key(kind, term));
    for (const std::string& key : sets) redis_append(c, {"ZREVRANGEBYSCORE", key, max, min, "LIMIT", "0", limit});
    std::set<std::string> refs;
    if (!term.empty() && term.size() <= 64) refs.insert(term);  // a reference is its own key
    for (std::size_t i = 0; i < sets.size(); ++i) {
      RedisReplyPtr r = redis_reply(c);
      if (!r || r->type != REDIS_REPLY_ARRAY) return fail(r.get());
      for (std::size_t e = 0; e < r->elements; ++e)
        if (r->element[e]->type == REDIS_REPLY_STRING) refs.emplace(r->element[e]->str, r->element[e]->len);
    }
    if (refs.empty()) return Status::Ok();
    std::vector<std::string> keys;
    for (const std::string& ref : refs) keys.push_back(record_key(ref));
    std::vector<std::string_view> mget{"MGET"};
    mget.insert(mget.end(), keys.begin(), keys.end());
    redis_append(c, mget);
    RedisReplyPtr r = redis_reply(c);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != keys.size()) return fail(r.get());
    for (std::size_t e = 0; e < r->elements; ++e) {
      const redisReply* v = r->element[e];
      if (v->type != REDIS_REPLY_STRING) continue;  // expired, or not a reference
      auto rec = history_decode(std::string_view(v->str, v->len));
      if (!rec.ok()) continue;  // damaged: skipped, as LMDB's
      if ((q.since > 0 && rec->time < q.since) || (q.until > 0 && rec->time > q.until)) continue;
      out.push_back(std::move(rec.value()));
    }
    std::sort(out.begin(), out.end(), [](const HistoryRecord& a, const HistoryRecord& b) {
      return a.time != b.time ? a.time > b.time : a.ref > b.ref;
    });
    if (out.size() > q.limit) out.resize(q.limit);
    return Status::Ok();
  }

  Status expire(std::int64_t before, std::size_t max, std::size_t& removed) override {
    removed = 0;
    std::lock_guard lock(mu_);
    redisContext* c = nullptr;
    if (Status st = connection(c); !st.ok()) return st;
    redis_append(c, {"ZRANGEBYSCORE", prefix_ + ":time", "-inf", "(" + std::to_string(before), "LIMIT", "0",
                     std::to_string(max)});
    RedisReplyPtr r = redis_reply(c);
    if (!r || r->type != REDIS_REPLY_ARRAY) return fail(r.get());
    if (r->elements == 0) return Status::Ok();
    std::vector<std::string> refs, keys;
    for (std::size_t e = 0; e < r->elements; ++e)
      if (r->element[e]->type == REDIS_REPLY_STRING) refs.emplace_back(r->element[e]->str, r->element[e]->len);
    for (const std::string& ref : refs) keys.push_back(record_key(ref));
    std::vector<std::string_view> del{"DEL"}, zrem{"ZREM"};
    const std::string time_key = prefix_ + ":time";
    zrem.push_back(time_key);
    del.insert(del.end(), keys.begin(), keys.end());
    zrem.insert(zrem.end(), refs.begin(), refs.end());
    redis_append(c, del);
    redis_append(c, zrem);
    for (int i = 0; i < 2; ++i) {
      RedisReplyPtr done = redis_reply(c);
      if (!done || done->type == REDIS_REPLY_ERROR) return fail(done.get());
    }
    removed = refs.size();  // their index entries find no record and go with their set's expiry
    return Status::Ok();
  }

  Status stats(std::size_t& records, double& used) const override {
    std::lock_guard lock(mu_);
    redisContext* c = nullptr;
    if (Status st = connection(c); !st.ok()) return st;
    redis_append(c, {"ZCARD", prefix_ + ":time"});
    RedisReplyPtr r = redis_reply(c);
    if (!r || r->type != REDIS_REPLY_INTEGER) return fail(r.get());
    records = static_cast<std::size_t>(r->integer);
    used = 0;  // Redis's maxmemory governs
    return Status::Ok();
  }

 private:
  std::string record_key(std::string_view ref) const { return prefix_ + ":r:" + std::string(ref); }
  std::string index_key(char kind, const std::string& term) const {
    return prefix_ + ":i:" + std::string(1, kind) + ":" + term;
  }

  Status connection(redisContext*& out) const {
    if (!ctx_) {
      auto c = redis_connect(server_, timeout_ms_);
      if (!c.ok()) return Status::IOError("history: redis " + server_ + ": " + c.status().message());
      ctx_ = std::move(c.value());
    }
    out = ctx_.get();
    return Status::Ok();
  }

  // The connection's state is unknown after a failure: dropped.
  Status fail(const redisReply* r) const {
    std::string why = ctx_ && ctx_->err != 0                           ? std::string(ctx_->errstr)
                      : (r != nullptr && r->type == REDIS_REPLY_ERROR) ? std::string(r->str, r->len)
                                                                      : std::string("unexpected reply");
    ctx_.reset();
    return Status::IOError("history: redis " + server_ + ": " + why);
  }

  const std::string server_, prefix_;
  const int timeout_ms_;
  const std::string ttl_;
  mutable std::mutex mu_;
  mutable RedisCtx ctx_;
};

}  // namespace

Result<std::shared_ptr<HistoryStore>> open_redis_history(const HistoryConfig& c) {
  if (c.redis.empty()) return Status::InvalidArgument("history: store = \"redis\" needs [history] redis");
  return std::shared_ptr<HistoryStore>(std::make_shared<RedisHistory>(c));
}

}  // namespace spamgate
