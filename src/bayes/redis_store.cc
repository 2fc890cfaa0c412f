// redis_store.cc - the Bayes store shared by several gateway nodes (Redis,
// through hiredis).
//
// Keys under [bayes] redis_prefix P:
//   P:tokens  hash  8-byte token hash -> "SPAM,HAM"
//   P:seen    hash  32-byte message digest -> "s" | "h"
//   P:meta    hash  nspam, nham, version (bumped by every change)
//   P:weights hash  4-byte feature index -> float: the logistic regression
//   P:state:KEY  string  a state record (state_store.h), with Redis's own expiry
// A lookup reads the totals and the version; when an in-memory copy of that
// version is at hand (CopyKeeper, token_table.h: HSCAN of P:tokens in the
// background) the counts come from it, otherwise from one HMGET of every
// token. The version is read at most every [bayes] redis_version_check_ms:
// another node's learn counts up to that late, this node's own at once.
// The weights are copied (HSCAN P:weights) with the tokens, the same version.
// Learning runs one Lua script per message, which Redis executes atomically:
// a learner killed half way leaves every message either fully learned or not
// at all; the script also trains the logistic regression (lr_train_step()
// in Lua, the rate and margin passed in). Connections are pooled (hiredis contexts are not thread-safe); a
// connection that failed is dropped and the next call reconnects.
// A CircuitBreaker (util/circuit_breaker.h) stands in front of the server,
// for Bayes and the outbound state alike: after 5 calls in a row that got no
// reply (connect or I/O error, timeout) calls fail at once, without paying
// [bayes] redis_timeout_ms each, until a probe call (once per back-off: 1 s,
// doubling to 30 s) gets a reply. An error reply is a reply.
// DIAGNOSTICS: every failure is an IOError naming the server and the error,
// a call skipped by the open breaker Unavailable; the breaker logs when it
// opens and closes.
#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "bayes/redis_replies.h"
#include "bayes/stores.h"
#include "bayes/token_table.h"
#include "spamgate/state_store.h"
#include "util/circuit_breaker.h"
#include "util/log.h"
#include "util/redis.h"

namespace spamgate {

namespace bayes_detail {

namespace {

// hiredis' own constructor of array replies (redisReader's default functions).
decltype(redisReplyObjectFunctions::createArray) g_hiredis_create_array = nullptr;

redisReplyObjectFunctions* bounded_functions() {
  static redisReplyObjectFunctions fns = [] {
    redisReader* r = redisReaderCreate();
    redisReplyObjectFunctions f = *r->fn;
    redisReaderFree(r);
    g_hiredis_create_array = f.createArray;
    // `n`: int in hiredis 0.14, size_t since 1.0.
    f.createArray = [](const redisReadTask* task, auto n) -> void* {
      if (static_cast<long long>(n) > kMaxReplyElements) return nullptr;  // the reader fails the reply
      return g_hiredis_create_array(task, n);
    };
    return f;
  }();
  return &fns;
}

}  // namespace

void bound_reader(redisReader* r) {
  if (r != nullptr) r->fn = bounded_functions();
}

bool redis_counts(const redisReply* e, TokenCounts& out) {
  if (e == nullptr || e->type != REDIS_REPLY_STRING || e->len > 40) return false;
  char buf[48];
  std::memcpy(buf, e->str, e->len);
  buf[e->len] = 0;
  unsigned long s = 0, h = 0;
  if (std::sscanf(buf, "%lu,%lu", &s, &h) != 2) return false;
  out.spam = static_cast<std::uint32_t>(s);
  out.ham = static_cast<std::uint32_t>(h);
  return true;
}

bool redis_totals(const redisReply* m, const redisReply* n, StoreTotals& out, std::uint64_t* version) {
  out = StoreTotals{};
  if (m == nullptr || m->type != REDIS_REPLY_ARRAY || m->elements != 3) return false;
  auto num = [](const redisReply* e) -> std::uint64_t {
    if (e->type != REDIS_REPLY_STRING) return 0;
    long long v = std::atoll(std::string(e->str, e->len).c_str());
    return v > 0 ? static_cast<std::uint64_t>(v) : 0;
  };
  out.spam = num(m->element[0]);
  out.ham = num(m->element[1]);
  if (version != nullptr) *version = num(m->element[2]);
  if (n == nullptr || n->type != REDIS_REPLY_INTEGER) return false;
  out.tokens = static_cast<std::uint64_t>(n->integer);
  return true;
}

bool redis_token_counts(const redisReply* r, std::size_t n, std::vector<TokenCounts>& counts) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != n) return false;
  counts.assign(n, TokenCounts{});
  for (std::size_t i = 0; i < n; ++i) redis_counts(r->element[i], counts[i]);
  return true;
}

namespace {

// One HSCAN page: the next cursor, and `pair` called with each (field, value).
template <typename Pair>
bool scan_page(const redisReply* r, std::string& cursor, Pair&& pair) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING)
    return false;
  cursor.assign(r->element[0]->str, r->element[0]->len);
  const redisReply* list = r->element[1];
  for (std::size_t i = 0; list->type == REDIS_REPLY_ARRAY && i + 1 < list->elements; i += 2)
    pair(list->element[i], list->element[i + 1]);
  return true;
}

}  // namespace

bool redis_scan_page(const redisReply* r, std::string& cursor, TokenTable& t) {
  return scan_page(r, cursor, [&](const redisReply* k, const redisReply* v) {
    TokenCounts counts;
    if (k->type != REDIS_REPLY_STRING || k->len != sizeof(std::uint64_t) || !redis_counts(v, counts)) return;
    std::uint64_t key;
    std::memcpy(&key, k->str, sizeof key);
    t.insert(key, counts);
  });
}

namespace {

bool redis_float(const redisReply* e, float& out) {
  if (e == nullptr || e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 40) return false;
  char buf[48];
  std::memcpy(buf, e->str, e->len);
  buf[e->len] = 0;
  char* end = nullptr;
  const float v = std::strtof(buf, &end);
  if (end != buf + e->len || !std::isfinite(v)) return false;
  out = v;
  return true;
}

}  // namespace

bool redis_weights(const redisReply* r, std::size_t n, std::vector<float>& out) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != n) return false;
  out.assign(n, 0.0f);
  for (std::size_t i = 0; i < n; ++i) redis_float(r->element[i], out[i]);
  return true;
}

bool redis_scan_weights(const redisReply* r, std::string& cursor, TokenTable& t) {
  return scan_page(r, cursor, [&](const redisReply* k, const redisReply* v) {
    float w = 0;
    if (k->type != REDIS_REPLY_STRING || k->len != sizeof(std::uint32_t) || !redis_float(v, w)) return;
    std::uint32_t f;
    std::memcpy(&f, k->str, sizeof f);
    if (f >= (1u << kLrBits)) return;
    if (t.weights.empty()) t.weights.assign(std::size_t{1} << kLrBits, 0.0f);
    t.weights[f] = w;
  });
}

std::optional<LearnOutcome> redis_learn_outcome(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_STRING) return std::nullopt;
  std::string_view v(r->str, r->len);
  return v == "learned"     ? LearnOutcome::kLearned
         : v == "moved"     ? LearnOutcome::kMoved
         : v == "forgotten" ? LearnOutcome::kForgotten
         : v == "notfound"  ? LearnOutcome::kNotFound
                            : LearnOutcome::kAlready;
}

bool redis_state_value(const redisReply* r, std::optional<std::string>& value) {
  value.reset();
  if (r == nullptr || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_NIL)) return false;
  if (r->type == REDIS_REPLY_STRING) value.emplace(r->str, r->len);
  return true;
}

}  // namespace bayes_detail

namespace {

using namespace bayes_detail;

using Reply = RedisReplyPtr;

constexpr const char* kLearnScript = R"lua(
local cls, forget, digest = ARGV[1], ARGV[2] == '1', ARGV[3]
local rate, margin, nfeat = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local was = redis.call('HGET', KEYS[2], digest)
local function count(c, delta)
  for i = 7 + nfeat, #ARGV do
    local v = redis.call('HGET', KEYS[1], ARGV[i])
    local s, h = 0, 0
    if v then
      local a, b = string.match(v, '(%d+),(%d+)')
      s, h = tonumber(a), tonumber(b)
    end
    if c == 's' then s = math.max(s + delta, 0) else h = math.max(h + delta, 0) end
    if s == 0 and h == 0 then
      redis.call('HDEL', KEYS[1], ARGV[i])
    else
      redis.call('HSET', KEYS[1], ARGV[i], string.format('%d,%d', s, h))
    end
  end
  redis.call('HINCRBY', KEYS[3], (c == 's') and 'nspam' or 'nham', delta)
  redis.call('HINCRBY', KEYS[3], 'version', 1)
end
if forget then
  if not was then return 'notfound' end
  count(was, -1)
  redis.call('HDEL', KEYS[2], digest)
  return 'forgotten'
end
if was == cls then return 'already' end
local out = 'learned'
if was then
  count(was, -1)
  out = 'moved'
end
count(cls, 1)
if nfeat > 0 then
  -- lr_train_step() (bayes.h), on the weights as they are now
  local sum = 0
  for i = 7, 6 + nfeat do sum = sum + (tonumber(redis.call('HGET', KEYS[4], ARGV[i])) or 0) end
  local p = 1 / (1 + math.exp(-sum))
  local right = (cls == 's' and p >= 0.5 + margin) or (cls == 'h' and p <= 0.5 - margin)
  if not right then
    local step = rate * (((cls == 's') and 1 or 0) - p)
    for i = 7, 6 + nfeat do redis.call('HINCRBYFLOAT', KEYS[4], ARGV[i], step) end
  end
end
redis.call('HSET', KEYS[2], digest, cls)
return out
)lua";

class RedisStore final : public BayesStore, public StateStore {
 public:
  explicit RedisStore(const BayesConfig& cfg)
      : server_(cfg.redis),
        timeout_ms_(cfg.redis_timeout_ms),
        k_tokens_(cfg.redis_prefix + ":tokens"),
        k_seen_(cfg.redis_prefix + ":seen"),
        k_meta_(cfg.redis_prefix + ":meta"),
        k_weights_(cfg.redis_prefix + ":weights"),
        k_state_(cfg.redis_prefix + ":state:"),
        version_check_(std::chrono::milliseconds(cfg.redis_version_check_ms)),
        copy_max_tokens_(cfg.cache_max_tokens),
        breaker_("redis " + cfg.redis, "redis", CircuitBreaker::Options{}),
        keeper_(cfg.cache_seconds, "redis " + cfg.redis,
                [this](const std::atomic<bool>& stop) { return make_copy(stop); }) {}

  ~RedisStore() override { keeper_.stop(); }  // its thread uses the pool

  std::string describe() const override {
    std::shared_ptr<const bayes_detail::TokenTable> t = keeper_.latest();
    return "redis " + server_ + " " + k_tokens_.substr(0, k_tokens_.size() - 7) +
           (t ? " (in-memory copy: " + std::to_string(t->size()) + " tokens, version " + std::to_string(t->version) + ")"
              : "");
  }

  Status ping() const {
    Conn c(*this);
    if (!c.ok()) return c.error();
    Reply r(static_cast<redisReply*>(redisCommand(c.get(), "PING")));
    if (!r) return c.fail();
    c.release();
    return Status::Ok();
  }

  Status lookup(const std::vector<std::uint64_t>& tokens, std::vector<TokenCounts>& counts,
                StoreTotals& totals) const override {
    std::shared_ptr<const bayes_detail::TokenTable> t = keeper_.latest();
    // The copy was current a moment ago: no connection, no round trip.
    if (t && version_check_.count() > 0 && checked_version_.load() == t->version &&
        std::chrono::steady_clock::now().time_since_epoch().count() - checked_at_.load() <
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(version_check_).count()) {
      totals = t->totals;
      t->find_all(tokens, counts);
      return Status::Ok();
    }
    Conn c(*this);
    if (!c.ok()) return c.error();
    counts.assign(tokens.size(), TokenCounts{});
    std::uint64_t version = 0;
    if (t) {
      // One small round trip says whether it is current.
      append_totals(c.get());
      if (Status s = read_totals(c, totals, &version); !s.ok()) return s;
      checked_version_ = version;
      checked_at_ = std::chrono::steady_clock::now().time_since_epoch().count();
      if ((t = keeper_.current(version))) {
        c.release();
        t->find_all(tokens, counts);
        return Status::Ok();
      }
      if (Status s = read_tokens(c, tokens, counts, false); !s.ok()) return s;
    } else {
      keeper_.request();
      // No copy yet: the counts and the totals in one pipelined round trip.
      if (Status s = read_tokens(c, tokens, counts, true); !s.ok()) return s;
      if (Status s = read_totals(c, totals, &version); !s.ok()) return s;
    }
    c.release();
    return Status::Ok();
  }

  Status totals(StoreTotals& out) const override {
    Conn c(*this);
    if (!c.ok()) return c.error();
    append_totals(c.get());
    if (Status s = read_totals(c, out); !s.ok()) return s;
    c.release();
    return Status::Ok();
  }

  // From the in-memory copy while lookup() found it current; else HMGET.
  Status lookup_weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) const override {
    std::shared_ptr<const bayes_detail::TokenTable> t = keeper_.latest();
    if (t && checked_version_.load() == t->version) {
      t->find_weights(features, out);
      return Status::Ok();
    }
    out.assign(features.size(), 0.0f);
    if (features.empty()) return Status::Ok();
    Conn c(*this);
    if (!c.ok()) return c.error();
    append_hmget(c.get(), k_weights_, features);
    Reply r = c.reply();
    if (!redis_weights(r.get(), features.size(), out)) return c.fail(r.get());
    c.release();
    return Status::Ok();
  }

  Status learn(const std::vector<LearnItem>& items, LearnClass cls, bool forget,
               std::vector<LearnOutcome>& outcomes) override {
    const std::string rate = fmt::format("{:.9g}", kLrRate), margin = fmt::format("{:.9g}", kLrMargin);
    Conn c(*this);
    if (!c.ok()) return c.error();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const LearnItem& it = items[i];
      const char* cl = it.cls.value_or(cls) == LearnClass::kSpam ? "s" : "h";
      const std::string nfeat = std::to_string(forget ? 0 : it.features.size());
      std::vector<const char*> argv{"EVAL",         kLearnScript,   "4",          k_tokens_.c_str(), k_seen_.c_str(),
                                    k_meta_.c_str(), k_weights_.c_str(), cl,      forget ? "1" : "0",
                                    reinterpret_cast<const char*>(it.digest.data()), rate.c_str(), margin.c_str(),
                                    nfeat.c_str()};
      std::vector<std::size_t> lens{4, std::strlen(kLearnScript), 1, k_tokens_.size(), k_seen_.size(), k_meta_.size(),
                                    k_weights_.size(), 1, 1, it.digest.size(), rate.size(), margin.size(), nfeat.size()};
      for (std::size_t f = 0; !forget && f < it.features.size(); ++f) {
        argv.push_back(reinterpret_cast<const char*>(&it.features[f]));
        lens.push_back(sizeof(std::uint32_t));
      }
      for (const std::uint64_t& t : it.tokens) {
        argv.push_back(reinterpret_cast<const char*>(&t));
        lens.push_back(sizeof t);
      }
      redisAppendCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data());
    }
    outcomes.assign(items.size(), LearnOutcome::kAlready);
    for (std::size_t i = 0; i < items.size(); ++i) {
      Reply r = c.reply();
      std::optional<LearnOutcome> o = redis_learn_outcome(r.get());
      if (!o) return c.fail(r.get());
      outcomes[i] = *o;
    }
    checked_at_ = 0;  // our own learn counts at once: the next lookup asks the version
    checked_version_ = 0;
    c.release();
    return Status::Ok();
  }

  // WATCH the keys, GET them, then MULTI, SET or DEL each, EXEC; EXEC
  // answers nil when another client wrote one of them after WATCH, and the
  // updates run again.
  Status update_many(const std::vector<Update>& updates) override {
    if (updates.empty()) return Status::Ok();
    Conn c(*this);
    if (!c.ok()) return c.error();
    std::vector<std::string> keys;
    for (const Update& u : updates) keys.push_back(k_state_ + u.key);
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::vector<std::string_view> watch{"WATCH"};
      watch.insert(watch.end(), keys.begin(), keys.end());
      c.append(watch);
      for (const std::string& k : keys) c.append({"GET", k});
      if (Reply r = c.reply(); !r || r->type == REDIS_REPLY_ERROR) return c.fail(r.get());
      std::vector<std::optional<std::string>> values(keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) {
        Reply got = c.reply();
        if (!redis_state_value(got.get(), values[i])) return c.fail(got.get());
      }
      for (std::size_t i = 0; i < keys.size(); ++i) updates[i].fn(values[i]);
      redisAppendCommand(c.get(), "MULTI");
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (!values[i]) c.append({"DEL", keys[i]});
        else if (updates[i].ttl_seconds > 0)
          c.append({"SET", keys[i], *values[i], "EX", std::to_string(updates[i].ttl_seconds)});
        else c.append({"SET", keys[i], *values[i]});
      }
      redisAppendCommand(c.get(), "EXEC");
      if (Reply multi = c.reply(); !multi || multi->type == REDIS_REPLY_ERROR) return c.fail(multi.get());
      for (std::size_t i = 0; i < keys.size(); ++i)
        if (Reply queued = c.reply(); !queued || queued->type == REDIS_REPLY_ERROR) return c.fail(queued.get());
      Reply exec = c.reply();
      if (!exec) return c.fail();
      if (exec->type == REDIS_REPLY_ARRAY) {
        c.release();
        return Status::Ok();
      }
      if (exec->type != REDIS_REPLY_NIL) return c.fail(exec.get());
      // Another writer won: wait a random while, longer each time, so that
      // writers of one hot key (a busy domain's counter) take turns instead
      // of one starving (a thread descheduled between WATCH and EXEC on a
      // loaded machine may lose every attempt: the likely cause of a test
      // that failed twice in CI, not reproduced since).
      thread_local std::minstd_rand jitter(static_cast<unsigned>(
          std::hash<std::thread::id>{}(std::this_thread::get_id()) ^
          static_cast<std::size_t>(std::chrono::steady_clock::now().time_since_epoch().count())));
      const int cap_us = 50 * (1 + std::min(attempt, 40));
      std::this_thread::sleep_for(std::chrono::microseconds(jitter() % static_cast<unsigned>(cap_us)));
    }
    return Status::IOError("state: redis " + server_ + ": keys kept changing; gave up");
  }

  Status get(std::string_view key, std::optional<std::string>& value) const override {
    value.reset();
    Conn c(*this);
    if (!c.ok()) return c.error();
    Reply got = c.command({"GET", k_state_ + std::string(key)});
    if (!redis_state_value(got.get(), value)) return c.fail(got.get());
    c.release();
    return Status::Ok();
  }

 private:
  // A pooled connection; returned to the pool by release() only when it
  // worked (a broken one is freed).
  class Conn {
   public:
    explicit Conn(const RedisStore& s) : s_(s), admit_(s.breaker_.admit()) {
      if (admit_ == CircuitBreaker::Admit::kSkip) {
        skipped_ = true;
        err_ = "not answering; skipped until a probe gets a reply";
        return;
      }
      {
        std::lock_guard lock(s_.mu_);
        if (!s_.pool_.empty()) {
          ctx_ = std::move(s_.pool_.back());
          s_.pool_.pop_back();
          return;
        }
      }
      Result<RedisCtx> c = s_.connect();
      if (c.ok()) {
        ctx_ = std::move(c.value());
      } else {
        err_ = c.status().message();
        record(CircuitBreaker::Outcome::kFailure);
      }
    }
    Conn(const Conn&) = delete;
    Conn& operator=(const Conn&) = delete;
    ~Conn() { record(CircuitBreaker::Outcome::kInconclusive); }  // given up half way (a stop)
    bool ok() const { return ctx_ != nullptr; }
    redisContext* get() const { return ctx_.get(); }
    Status error() const {
      std::string msg = "bayes: redis " + s_.server_ + ": " + err_;
      return skipped_ ? Status::Unavailable(std::move(msg)) : Status::IOError(std::move(msg));
    }
    Reply reply() { return redis_reply(ctx_.get()); }
    Status fail(const redisReply* r = nullptr) {
      std::string why = ctx_->err != 0                               ? std::string(ctx_->errstr)
                        : (r != nullptr && r->type == REDIS_REPLY_ERROR) ? std::string(r->str, r->len)
                                                                      : std::string("unexpected reply");
      // No reply (I/O error, timeout, closed) counts against the server; a
      // reply we did not expect is still a reply.
      record(ctx_->err == REDIS_ERR_IO || ctx_->err == REDIS_ERR_EOF ? CircuitBreaker::Outcome::kFailure
                                                                     : CircuitBreaker::Outcome::kSuccess);
      ctx_.reset();  // the pipeline's state is unknown: never reuse it
      return Status::IOError("bayes: redis " + s_.server_ + ": " + why);
    }
    // One command from binary-safe arguments, sent and answered.
    Reply command(std::initializer_list<std::string_view> args) {
      append(args);
      return reply();
    }
    void append(std::initializer_list<std::string_view> args) { append(std::vector<std::string_view>(args)); }
    void append(const std::vector<std::string_view>& args) { redis_append(ctx_.get(), args); }
    void release() {
      record(CircuitBreaker::Outcome::kSuccess);
      std::lock_guard lock(s_.mu_);
      if (s_.pool_.size() < 64) s_.pool_.push_back(std::move(ctx_));
    }

   private:
    void record(CircuitBreaker::Outcome o) {  // once per call
      if (admit_ == CircuitBreaker::Admit::kSkip) return;
      s_.breaker_.record(admit_, o);
      admit_ = CircuitBreaker::Admit::kSkip;
    }
    const RedisStore& s_;
    CircuitBreaker::Admit admit_;
    bool skipped_ = false;  // the breaker is open: not tried
    RedisCtx ctx_;
    std::string err_;
  };

  // A connection (timeouts set, reader bounded), or IOError with hiredis' reason.
  Result<RedisCtx> connect() const { return redis_connect(server_, timeout_ms_); }

  void append_totals(redisContext* c) const {
    redisAppendCommand(c, "HMGET %s nspam nham version", k_meta_.c_str());
    redisAppendCommand(c, "HLEN %s", k_tokens_.c_str());
  }

  Status read_totals(Conn& c, StoreTotals& out, std::uint64_t* version = nullptr) const {
    out = StoreTotals{};
    Reply m = c.reply();
    if (!m || m->type != REDIS_REPLY_ARRAY || m->elements != 3) return c.fail(m.get());
    Reply n = c.reply();
    if (!redis_totals(m.get(), n.get(), out, version)) return c.fail(n.get());
    return Status::Ok();
  }

  // HMGET KEY of binary fields (token hashes, feature indexes), pipelined.
  template <typename Field>
  static void append_hmget(redisContext* c, const std::string& key, const std::vector<Field>& fields) {
    std::vector<const char*> argv{"HMGET", key.c_str()};
    std::vector<std::size_t> lens{5, key.size()};
    for (const Field& f : fields) {
      argv.push_back(reinterpret_cast<const char*>(&f));
      lens.push_back(sizeof f);
    }
    redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
  }

  // HMGET of every token (then, with `and_totals`, the totals pipelined
  // behind it; the caller reads those).
  Status read_tokens(Conn& c, const std::vector<std::uint64_t>& tokens, std::vector<TokenCounts>& counts,
                     bool and_totals) const {
    if (!tokens.empty()) append_hmget(c.get(), k_tokens_, tokens);
    if (and_totals) append_totals(c.get());
    if (tokens.empty()) return Status::Ok();
    Reply r = c.reply();
    if (!redis_token_counts(r.get(), tokens.size(), counts)) return c.fail(r.get());
    return Status::Ok();
  }

  // The whole token table by HSCAN, on the keeper's thread. The version is
  // read before and after: a copy during which something was learned is
  // thrown away (it could mix old and new counts).
  std::shared_ptr<const bayes_detail::TokenTable> make_copy(const std::atomic<bool>& stop) const {
    Conn c(*this);
    if (!c.ok()) return nullptr;
    StoreTotals before;
    std::uint64_t v1 = 0, v2 = 0;
    append_totals(c.get());
    if (!read_totals(c, before, &v1).ok()) return nullptr;
    if (before.tokens > copy_max_tokens_) {
      log().warn("bayes: redis {}: {} tokens are more than [bayes] cache_max_tokens ({}); lookups read Redis", server_,
                 before.tokens, copy_max_tokens_);
      c.release();
      return nullptr;
    }
    auto t = std::make_shared<bayes_detail::TokenTable>(before.tokens);
    // Every page of one hash into the table (false: stopped or failed).
    auto scan = [&](const std::string& key, bool (*page)(const redisReply*, std::string&, TokenTable&)) {
      std::string cursor = "0";
      do {
        if (stop.load()) return false;
        Reply r = c.command({"HSCAN", key, cursor, "COUNT", "10000"});
        if (!page(r.get(), cursor, *t)) {
          (void)c.fail(r.get());
          return false;
        }
      } while (cursor != "0");
      return true;
    };
    if (!scan(k_tokens_, redis_scan_page) || !scan(k_weights_, redis_scan_weights)) return nullptr;
    append_totals(c.get());
    if (!read_totals(c, t->totals, &v2).ok()) return nullptr;
    c.release();
    if (v1 != v2) {
      log().debug("bayes: redis {}: the store changed while it was copied; lookups read Redis", server_);
      return nullptr;
    }
    t->version = v1;
    t->built = std::chrono::steady_clock::now();
    return t;
  }

  std::string server_;
  int timeout_ms_;
  std::string k_tokens_, k_seen_, k_meta_, k_weights_, k_state_;
  mutable std::mutex mu_;
  mutable std::vector<RedisCtx> pool_;
  std::chrono::milliseconds version_check_;
  mutable std::atomic<std::uint64_t> checked_version_{0};  // the version last read ...
  mutable std::atomic<std::int64_t> checked_at_{0};         // ... and when (steady clock ticks)
  std::size_t copy_max_tokens_;
  mutable CircuitBreaker breaker_;
  bayes_detail::CopyKeeper keeper_;  // last: made after, stopped before the rest
};

}  // namespace

Result<std::shared_ptr<BayesStore>> open_redis_store(const BayesConfig& cfg) {
  // Shared within the process while any snapshot uses it, like LMDB's: a
  // reload (new snapshot, same [bayes]) keeps the connections and the
  // in-memory copy instead of copying 2 M tokens again next to the old copy.
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<BayesStore>> open_stores;
  const std::string key = cfg.redis + "\n" + cfg.redis_prefix + "\n" + std::to_string(cfg.redis_timeout_ms) + "\n" +
                          std::to_string(cfg.cache_seconds) + "\n" + std::to_string(cfg.cache_max_tokens) + "\n" +
                          std::to_string(cfg.redis_version_check_ms);
  std::lock_guard lock(mu);
  if (auto it = open_stores.find(key); it != open_stores.end())
    if (auto s = it->second.lock()) return s;
  auto s = std::make_shared<RedisStore>(cfg);
  if (Status st = s->ping(); !st.ok()) return st;
  std::shared_ptr<BayesStore> out = std::move(s);
  open_stores[key] = out;
  return out;
}

}  // namespace spamgate
