// lmdb_store.cc - the embedded Bayes store (LMDB).
//
// Why LMDB (bench/RESULTS.md has the numbers): a scan looks up a few hundred
// tokens; LMDB reads are memory-mapped B-tree walks without locks or copies,
// readers never wait for the writer, and a writer's transaction either
// commits as a whole or leaves the previous tree (copy-on-write), so a learner
// killed half way leaves a consistent database with nothing to recover.
//
// Layout: a directory with data.mdb and lock.mdb; named databases:
//   tokens  uint64 hash -> {uint32 spam, uint32 ham}
//   seen    32-byte message digest -> 1 byte class ('s' / 'h')
//   meta    "nspam" / "nham" -> uint64
//   weights uint32 feature -> float: the logistic regression (bayes.h)
//   state   key -> {uint64 expiry (unix seconds, 0 = never), value}  (state_store.h)
//   expiry  {big-endian uint64 expiry, key} -> "" : the state records by
//           expiry, so each write removes a few expired ones from the front
// The in-memory copy: a scan looks up about a thousand tokens, and an LMDB
// descent per token was a third of the scan time (bench/RESULTS.md). So a
// background thread copies the token table (and the weights) into a TokenTable (when first
// needed, then again when the database changed, at most every
// [bayes] cache_seconds; CopyKeeper in token_table.h). A lookup uses the copy only while no write
// happened since it was read (LMDB's transaction id says so): counts are
// never stale; after a learn, lookups read LMDB until the next copy.
// DIAGNOSTICS: every failure is a Status naming the path and LMDB's text;
// MDB_MAP_FULL becomes Limit ("raise [bayes] lmdb_map_bytes").
#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "bayes/learn_txn.h"
#include "bayes/stores.h"
#include "bayes/token_table.h"
#include "spamgate/bayes.h"
#include "spamgate/state_store.h"
#include "util/lmdb.h"
#include "util/log.h"

namespace spamgate {

namespace {

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class LmdbStore final : public BayesStore, public StateStore {
 public:
  static Result<std::shared_ptr<BayesStore>> open(const BayesConfig& cfg);
  std::string describe() const override {
    std::shared_ptr<const bayes_detail::TokenTable> t = keeper_ ? keeper_->latest() : nullptr;
    bool current = t && t->version == last_txn_id();
    return "lmdb " + path_ + (current ? " (in-memory copy: " + std::to_string(t->size()) + " tokens)" : "");
  }

  ~LmdbStore() override {
    if (keeper_) keeper_->stop();  // its thread reads env_
  }

  Status lookup(const std::vector<std::uint64_t>& tokens, std::vector<TokenCounts>& counts,
                StoreTotals& totals) const override {
    if (std::shared_ptr<const bayes_detail::TokenTable> t = current_copy()) {
      t->find_all(tokens, counts);
      totals = t->totals;
      return Status::Ok();
    }
    Txn txn;
    if (int rc = txn.begin(env_.get(), MDB_RDONLY); rc != 0) return fail("read", rc);
    counts.assign(tokens.size(), TokenCounts{});
    // In key order: neighbouring keys share B-tree pages, so most of each
    // descent is already in the CPU cache.
    std::vector<std::uint32_t> order(tokens.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return tokens[a] < tokens[b]; });
    for (std::uint32_t i : order) {
      MDB_val k = val_of(&tokens[i], sizeof(std::uint64_t)), v;
      int rc = mdb_get(txn.get(), tokens_, &k, &v);
      if (rc == MDB_NOTFOUND) continue;
      if (rc != 0) return fail("read", rc);
      if (v.mv_size != sizeof(TokenCounts)) return Status::Corruption("bayes: " + path_ + ": bad token record");
      std::memcpy(&counts[i], v.mv_data, sizeof(TokenCounts));
    }
    return read_totals(txn.get(), totals);
  }

  Status totals(StoreTotals& out) const override {
    Txn txn;
    if (int rc = txn.begin(env_.get(), MDB_RDONLY); rc != 0) return fail("read", rc);
    return read_totals(txn.get(), out);
  }

  Status lookup_weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) const override {
    if (std::shared_ptr<const bayes_detail::TokenTable> t = current_copy()) {
      t->find_weights(features, out);
      return Status::Ok();
    }
    Txn txn;
    if (int rc = txn.begin(env_.get(), MDB_RDONLY); rc != 0) return fail("read", rc);
    return read_weights(txn.get(), features, out);
  }

  Status learn(const std::vector<LearnItem>& items, LearnClass cls, bool forget,
               std::vector<LearnOutcome>& outcomes) override {
    if (read_only_) return Status::IOError("bayes: " + path_ + " is read-only for this process");
    Txn txn;
    if (int rc = txn.begin(env_.get(), 0); rc != 0) return fail("write", rc);
    Writer w(*this, txn.get());
    outcomes.assign(items.size(), LearnOutcome::kAlready);
    for (std::size_t i = 0; i < items.size(); ++i)
      if (Status s = bayes_detail::apply_learn(w, items[i], cls, forget, outcomes[i]); !s.ok()) return s;
    if (int rc = txn.commit(); rc != 0) return fail("commit", rc);
    return Status::Ok();
  }

  Status update_many(const std::vector<Update>& updates) override {
    for (const Update& u : updates)
      if (Status s = state_usable(u.key, true); !s.ok()) return s;
    Txn txn;
    if (int rc = txn.begin(env_.get(), 0); rc != 0) return fail("write", rc);
    const std::int64_t now = unix_now();
    for (const Update& u : updates)
      if (Status s = update_one(txn.get(), u, now); !s.ok()) return s;
    if (Status s = prune_expired(txn.get(), now); !s.ok()) return s;
    if (int r = txn.commit(); r != 0) return fail("commit", r);
    return Status::Ok();
  }

  Status get(std::string_view key, std::optional<std::string>& value) const override {
    value.reset();
    if (Status s = state_usable(key, false); !s.ok()) return s;
    Txn txn;
    if (int rc = txn.begin(env_.get(), MDB_RDONLY); rc != 0) return fail("read", rc);
    MDB_val k = val_of(key.data(), key.size()), v;
    int rc = mdb_get(txn.get(), state_, &k, &v);
    if (rc == MDB_NOTFOUND) return Status::Ok();
    if (rc != 0) return fail("read", rc);
    if (auto live = live_value(v, unix_now())) value = std::move(live);
    return Status::Ok();
  }

 private:
  // LMDB keys are at most 511 bytes; the state tables exist unless the
  // database is read-only and older than them.
  Status state_usable(std::string_view key, bool write) const {
    if (!has_state_) return Status::IOError("state: " + path_ + " has no state table and is read-only for this process");
    if (write && read_only_) return Status::IOError("state: " + path_ + " is read-only for this process");
    if (key.size() > 400) return Status::InvalidArgument("state: key longer than 400 bytes");
    return Status::Ok();
  }

  Status update_one(MDB_txn* t, const Update& u, std::int64_t now) {
    MDB_val k = val_of(u.key.data(), u.key.size()), v;
    std::optional<std::string> value;
    std::uint64_t old_expiry = 0;
    int rc = mdb_get(t, state_, &k, &v);
    const bool existed = rc == 0;
    if (rc != 0 && rc != MDB_NOTFOUND) return fail("read", rc);
    if (existed) {
      if (v.mv_size < 8) return Status::Corruption("state: " + path_ + ": bad record");
      std::memcpy(&old_expiry, v.mv_data, 8);
      if (old_expiry == 0 || static_cast<std::int64_t>(old_expiry) > now)
        value.emplace(static_cast<const char*>(v.mv_data) + 8, v.mv_size - 8);
    }
    u.fn(value);
    if (existed && old_expiry != 0) {
      std::string ik = expiry_key(old_expiry, u.key);
      MDB_val ikv = val_of(ik.data(), ik.size());
      if (int r = mdb_del(t, expiry_, &ikv, nullptr); r != 0 && r != MDB_NOTFOUND) return fail("write", r);
    }
    if (!value) {
      if (existed)
        if (int r = mdb_del(t, state_, &k, nullptr); r != 0 && r != MDB_NOTFOUND) return fail("write", r);
      return Status::Ok();
    }
    std::uint64_t expiry = u.ttl_seconds > 0 ? static_cast<std::uint64_t>(now + u.ttl_seconds) : 0;
    std::string rec(8, '\0');
    std::memcpy(rec.data(), &expiry, 8);
    rec += *value;
    MDB_val nv = val_of(rec.data(), rec.size());
    if (int r = mdb_put(t, state_, &k, &nv, 0); r != 0) return fail("write", r);
    if (expiry == 0) return Status::Ok();
    std::string ik = expiry_key(expiry, u.key);
    MDB_val ikv = val_of(ik.data(), ik.size()), empty = val_of("", 0);
    if (int r = mdb_put(t, expiry_, &ikv, &empty, 0); r != 0) return fail("write", r);
    return Status::Ok();
  }

  static std::optional<std::string> live_value(const MDB_val& v, std::int64_t now) {
    if (v.mv_size < 8) return std::nullopt;
    std::uint64_t expiry = 0;
    std::memcpy(&expiry, v.mv_data, 8);
    if (expiry != 0 && static_cast<std::int64_t>(expiry) <= now) return std::nullopt;
    return std::string(static_cast<const char*>(v.mv_data) + 8, v.mv_size - 8);
  }

  static std::string expiry_key(std::uint64_t expiry, std::string_view key) {
    std::string k(8, '\0');
    for (int i = 0; i < 8; ++i) k[i] = static_cast<char>((expiry >> (56 - 8 * i)) & 0xff);
    k += key;
    return k;
  }

  // Removes up to 8 records whose expiry passed (the front of `expiry`).
  Status prune_expired(MDB_txn* t, std::int64_t now) {
    std::vector<std::string> gone;
    {
      MDB_cursor* raw = nullptr;
      if (int rc = mdb_cursor_open(t, expiry_, &raw); rc != 0) return fail("write", rc);
      std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> cur(raw, mdb_cursor_close);
      MDB_val k, v;
      for (int rc = mdb_cursor_get(raw, &k, &v, MDB_FIRST); rc == 0 && gone.size() < 8;
           rc = mdb_cursor_get(raw, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 8) continue;
        std::uint64_t expiry = 0;
        for (int i = 0; i < 8; ++i) expiry = expiry << 8 | static_cast<const unsigned char*>(k.mv_data)[i];
        if (static_cast<std::int64_t>(expiry) > now) break;
        gone.emplace_back(static_cast<const char*>(k.mv_data), k.mv_size);
      }
    }
    for (const std::string& ik : gone) {
      MDB_val ikv = val_of(ik.data(), ik.size());
      if (int rc = mdb_del(t, expiry_, &ikv, nullptr); rc != 0 && rc != MDB_NOTFOUND) return fail("write", rc);
      MDB_val k = val_of(ik.data() + 8, ik.size() - 8), v;
      int rc = mdb_get(t, state_, &k, &v);
      if (rc == 0 && !live_value(v, now)) rc = mdb_del(t, state_, &k, nullptr);
      if (rc != 0 && rc != MDB_NOTFOUND) return fail("write", rc);
    }
    return Status::Ok();
  }

  // Features in order: neighbouring keys share B-tree pages.
  Status read_weights(MDB_txn* t, const std::vector<std::uint32_t>& features, std::vector<float>& out) const {
    out.assign(features.size(), 0.0f);
    if (!has_weights_) return Status::Ok();
    for (std::size_t i = 0; i < features.size(); ++i) {
      MDB_val k = val_of(&features[i], sizeof(std::uint32_t)), v;
      int rc = mdb_get(t, weights_, &k, &v);
      if (rc == MDB_NOTFOUND) continue;
      if (rc != 0) return fail("read", rc);
      if (v.mv_size != sizeof(float)) return Status::Corruption("bayes: " + path_ + ": bad weight record");
      std::memcpy(&out[i], v.mv_data, sizeof(float));
    }
    return Status::Ok();
  }

  class Writer final : public bayes_detail::LearnTxn {
   public:
    Writer(const LmdbStore& st, MDB_txn* t) : st_(st), t_(t) {}
    Status seen(const Digest& d, std::optional<LearnClass>& cls) override {
      MDB_val k = val_of(d.data(), d.size()), v;
      int rc = mdb_get(t_, st_.seen_, &k, &v);
      cls.reset();
      if (rc == MDB_NOTFOUND) return Status::Ok();
      if (rc != 0) return st_.fail("read", rc);
      if (v.mv_size == 1) cls = *static_cast<const char*>(v.mv_data) == 's' ? LearnClass::kSpam : LearnClass::kHam;
      return Status::Ok();
    }
    Status set_seen(const Digest& d, std::optional<LearnClass> cls) override {
      MDB_val k = val_of(d.data(), d.size());
      if (!cls) {
        int rc = mdb_del(t_, st_.seen_, &k, nullptr);
        return rc == 0 || rc == MDB_NOTFOUND ? Status::Ok() : st_.fail("write", rc);
      }
      char c = *cls == LearnClass::kSpam ? 's' : 'h';
      MDB_val v = val_of(&c, 1);
      int rc = mdb_put(t_, st_.seen_, &k, &v, 0);
      return rc == 0 ? Status::Ok() : st_.fail("write", rc);
    }
    Status add_token(std::uint64_t token, LearnClass cls, int delta) override {
      MDB_val k = val_of(&token, sizeof token), v;
      TokenCounts c;
      int rc = mdb_get(t_, st_.tokens_, &k, &v);
      if (rc == 0 && v.mv_size == sizeof c) std::memcpy(&c, v.mv_data, sizeof c);
      else if (rc != 0 && rc != MDB_NOTFOUND) return st_.fail("read", rc);
      std::uint32_t& n = cls == LearnClass::kSpam ? c.spam : c.ham;
      if (delta > 0) ++n;
      else if (n > 0) --n;
      if (c.spam == 0 && c.ham == 0) {
        rc = mdb_del(t_, st_.tokens_, &k, nullptr);
        return rc == 0 || rc == MDB_NOTFOUND ? Status::Ok() : st_.fail("write", rc);
      }
      MDB_val nv = val_of(&c, sizeof c);
      rc = mdb_put(t_, st_.tokens_, &k, &nv, 0);
      return rc == 0 ? Status::Ok() : st_.fail("write", rc);
    }
    Status add_messages(LearnClass cls, int delta) override {
      const char* key = cls == LearnClass::kSpam ? "nspam" : "nham";
      MDB_val k = val_of(key, std::strlen(key)), v;
      std::uint64_t n = 0;
      int rc = mdb_get(t_, st_.meta_, &k, &v);
      if (rc == 0 && v.mv_size == sizeof n) std::memcpy(&n, v.mv_data, sizeof n);
      else if (rc != 0 && rc != MDB_NOTFOUND) return st_.fail("read", rc);
      if (delta > 0) ++n;
      else if (n > 0) --n;
      MDB_val nv = val_of(&n, sizeof n);
      rc = mdb_put(t_, st_.meta_, &k, &nv, 0);
      return rc == 0 ? Status::Ok() : st_.fail("write", rc);
    }
    Status weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) override {
      return st_.read_weights(t_, features, out);
    }
    Status add_weights(const std::vector<std::uint32_t>& features, const std::vector<float>& current,
                       float step) override {
      // In key order (learn_item sorts them): a put mostly touches the last one's pages.
      for (std::size_t i = 0; i < features.size(); ++i) {
        const float nw = current[i] + step;
        MDB_val k = val_of(&features[i], sizeof(std::uint32_t)), v = val_of(&nw, sizeof nw);
        if (int rc = mdb_put(t_, st_.weights_, &k, &v, 0); rc != 0) return st_.fail("write", rc);
      }
      return Status::Ok();
    }

   private:
    const LmdbStore& st_;
    MDB_txn* t_;
  };

  Status read_totals(MDB_txn* t, StoreTotals& out) const {
    out = StoreTotals{};
    for (auto [key, dst] : {std::pair<const char*, std::uint64_t*>{"nspam", &out.spam}, {"nham", &out.ham}}) {
      MDB_val k = val_of(key, std::strlen(key)), v;
      int rc = mdb_get(t, meta_, &k, &v);
      if (rc == 0 && v.mv_size == sizeof(std::uint64_t)) std::memcpy(dst, v.mv_data, sizeof(std::uint64_t));
      else if (rc != 0 && rc != MDB_NOTFOUND) return fail("read", rc);
    }
    MDB_stat st;
    if (int rc = mdb_stat(t, tokens_, &st); rc != 0) return fail("read", rc);
    out.tokens = st.ms_entries;
    return Status::Ok();
  }

  Status fail(const char* what, int rc) const {
    std::string m = "bayes: " + path_ + ": " + what + ": " + mdb_strerror(rc);
    if (rc == MDB_MAP_FULL) return Status::Limit(m + " (raise [bayes] lmdb_map_bytes)");
    return Status::IOError(m);
  }

  std::uint64_t last_txn_id() const {
    MDB_envinfo info;
    mdb_env_info(env_.get(), &info);
    return static_cast<std::uint64_t>(info.me_last_txnid);
  }

  // The in-memory copy if it is as new as the database; otherwise null (and
  // the keeper makes a new one).
  std::shared_ptr<const bayes_detail::TokenTable> current_copy() const {
    return keeper_ ? keeper_->current(last_txn_id()) : nullptr;
  }

  std::shared_ptr<const bayes_detail::TokenTable> make_copy(const std::atomic<bool>& stop) const {
    Txn txn;
    if (txn.begin(env_.get(), MDB_RDONLY) != 0) return nullptr;
    MDB_stat st;
    if (mdb_stat(txn.get(), tokens_, &st) != 0) return nullptr;
    if (st.ms_entries > copy_max_tokens_) {
      log().warn("bayes: {}: {} tokens are more than [bayes] cache_max_tokens ({}); lookups read LMDB", path_,
                 st.ms_entries, copy_max_tokens_);
      return nullptr;
    }
    auto t = std::make_shared<bayes_detail::TokenTable>(st.ms_entries);
    MDB_cursor* raw = nullptr;
    if (mdb_cursor_open(txn.get(), tokens_, &raw) != 0) return nullptr;
    std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> cur(raw, mdb_cursor_close);
    MDB_val k, v;
    std::size_t n = 0;
    for (int rc = mdb_cursor_get(raw, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(raw, &k, &v, MDB_NEXT)) {
      if ((++n & 0xFFFF) == 0 && stop.load()) return nullptr;  // the store is closing
      if (k.mv_size != sizeof(std::uint64_t) || v.mv_size != sizeof(TokenCounts)) continue;
      std::uint64_t key;
      TokenCounts c;
      std::memcpy(&key, k.mv_data, sizeof key);
      std::memcpy(&c, v.mv_data, sizeof c);
      t->insert(key, c);
    }
    cur.reset();
    if (!copy_weights(txn.get(), *t, stop)) return nullptr;
    if (!read_totals(txn.get(), t->totals).ok()) return nullptr;
    t->version = static_cast<std::uint64_t>(mdb_txn_id(txn.get()));
    t->built = std::chrono::steady_clock::now();
    return t;
  }

  // The weights table, dense (2^kLrBits floats) when it holds any.
  bool copy_weights(MDB_txn* t, bayes_detail::TokenTable& table, const std::atomic<bool>& stop) const {
    if (!has_weights_) return true;
    MDB_cursor* raw = nullptr;
    if (mdb_cursor_open(t, weights_, &raw) != 0) return false;
    std::unique_ptr<MDB_cursor, void (*)(MDB_cursor*)> cur(raw, mdb_cursor_close);
    MDB_val k, v;
    std::size_t n = 0;
    for (int rc = mdb_cursor_get(raw, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(raw, &k, &v, MDB_NEXT)) {
      if ((++n & 0xFFFF) == 0 && stop.load()) return false;
      if (k.mv_size != sizeof(std::uint32_t) || v.mv_size != sizeof(float)) continue;
      std::uint32_t f;
      std::memcpy(&f, k.mv_data, sizeof f);
      if (f >= (1u << kLrBits)) continue;
      if (table.weights.empty()) table.weights.assign(std::size_t{1} << kLrBits, 0.0f);
      std::memcpy(&table.weights[f], v.mv_data, sizeof(float));
    }
    return true;
  }

  std::string path_;
  MdbEnv env_;
  MDB_dbi tokens_ = 0, seen_ = 0, meta_ = 0, state_ = 0, expiry_ = 0, weights_ = 0;
  bool read_only_ = false;
  bool has_state_ = false;
  bool has_weights_ = false;

  std::size_t copy_max_tokens_ = 20000000;
  std::unique_ptr<bayes_detail::CopyKeeper> keeper_;  // made in open(), stopped first
};

Result<std::shared_ptr<BayesStore>> LmdbStore::open(const BayesConfig& cfg) {
  auto st = std::make_shared<LmdbStore>();
  st->path_ = cfg.path;
  st->copy_max_tokens_ = cfg.cache_max_tokens;
  // MDB_NOTLS: read transactions are not tied to a thread (libmilter's
  // threads come and go); MDB_NORDAHEAD: lookups are random. A read-only
  // open keeps the size the writer gave the map.
  MDB_env* raw = nullptr;
  auto open_env = [&](unsigned flags) -> int {
    st->env_.reset();
    if (int rc = mdb_env_create(&raw); rc != 0) return rc;
    st->env_.reset(raw);
    mdb_env_set_maxdbs(raw, 8);
    mdb_env_set_maxreaders(raw, 1024);
    if ((flags & MDB_RDONLY) == 0)
      if (int rc = mdb_env_set_mapsize(raw, cfg.lmdb_map_bytes); rc != 0) return rc;
    // 0660: the service's user and group only, whatever the umask of the
    // shell that ran `spamgate learn` first (tokens and account state).
    return mdb_env_open(raw, cfg.path.c_str(), flags, 0660);
  };
  // MDB_NOMETASYNC: one disk sync per commit instead of two; an OS crash
  // may undo the last commit (a few rate-window counts, one learned batch)
  // but leaves the database consistent (LMDB's documented guarantee).
  int rc = open_env(MDB_NOTLS | MDB_NORDAHEAD | MDB_NOMETASYNC);
  if (rc == EACCES || rc == EROFS) {
    rc = open_env(MDB_NOTLS | MDB_NORDAHEAD | MDB_NOMETASYNC | MDB_RDONLY);
    st->read_only_ = true;
  }
  if (rc != 0) return st->fail("open", rc);
  int dead = 0;
  mdb_reader_check(raw, &dead);  // slots of readers that died (a killed process)
  Txn txn;
  if (int r = txn.begin(raw, st->read_only_ ? MDB_RDONLY : 0); r != 0) return st->fail("open", r);
  unsigned create = st->read_only_ ? 0 : MDB_CREATE;
  if (int r = mdb_dbi_open(txn.get(), "tokens", create | MDB_INTEGERKEY, &st->tokens_); r != 0) return st->fail("open tokens", r);
  if (int r = mdb_dbi_open(txn.get(), "seen", create, &st->seen_); r != 0) return st->fail("open seen", r);
  if (int r = mdb_dbi_open(txn.get(), "meta", create, &st->meta_); r != 0) return st->fail("open meta", r);
  // A read-only process may meet a database from before the state tables.
  int rs = mdb_dbi_open(txn.get(), "state", create, &st->state_);
  int re = rs == 0 ? mdb_dbi_open(txn.get(), "expiry", create, &st->expiry_) : rs;
  if (re != 0 && !(st->read_only_ && re == MDB_NOTFOUND)) return st->fail("open state", re);
  st->has_state_ = re == 0;
  int rw = mdb_dbi_open(txn.get(), "weights", create | MDB_INTEGERKEY, &st->weights_);
  if (rw != 0 && !(st->read_only_ && rw == MDB_NOTFOUND)) return st->fail("open weights", rw);
  st->has_weights_ = rw == 0;
  if (int r = txn.commit(); r != 0) return st->fail("open", r);
  const LmdbStore* self = st.get();
  st->keeper_ = std::make_unique<bayes_detail::CopyKeeper>(
      cfg.cache_seconds, "lmdb " + cfg.path, [self](const std::atomic<bool>& stop) { return self->make_copy(stop); });
  return std::shared_ptr<BayesStore>(std::move(st));
}

}  // namespace

Result<std::shared_ptr<BayesStore>> open_lmdb_store(const BayesConfig& cfg) {
  // LMDB: one environment per database per process. Stores are shared by
  // canonical path and closed when the last snapshot using them goes.
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<BayesStore>> open_stores;
  // First use; a failure shows in mdb_env_open. Closed to other users, like
  // the files (see there), whatever the umask.
  const std::string key = lmdb_directory(cfg.path, true);
  std::lock_guard lock(mu);
  if (auto it = open_stores.find(key); it != open_stores.end())
    if (auto s = it->second.lock()) return s;
  auto r = LmdbStore::open(cfg);
  if (r.ok()) open_stores[key] = r.value();
  return r;
}

}  // namespace spamgate
