// lmdb_history.cc - the verdict history in LMDB (see spamgate/history.h).
//
// Layout: a directory with data.mdb and lock.mdb; named databases:
//   records  ref -> the record (history_encode)
//   bytime   {big-endian uint64 time, ref} -> ""      (range scans, expiry)
//   index    {kind, lower-case term, '\0', big-endian time, ref} -> ""
//            kind 'q' queue id, 'm' Message-ID (without <>), 'a' an address
//            (the envelope sender, each recipient, the From address)
// A lookup by term reads the index entries of every kind for it, newest
// first; a reference is read straight from `records`. LMDB, as for the
// classifier: readers never wait for the writer, a commit is all or
// nothing, and the milter and `spamgate history` may open it together.
// DIAGNOSTICS: every failure is a Status naming the path and LMDB's text;
// Past 70% of [history] max_bytes a write removes the oldest tenth;
// MDB_MAP_FULL removes the oldest records and tries again.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include "history/history_store.h"
#include "spamgate/message.h"
#include "util/lmdb.h"

namespace spamgate {
namespace {

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::uint64_t read_be64(std::string_view s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

std::string index_prefix(char kind, std::string_view term) {
  std::string k(1, kind);
  k += history_term(term);
  k.push_back('\0');
  return k;
}

// The index keys of `r` (without the time and ref suffix).
std::vector<std::string> index_prefixes(const HistoryRecord& r) {
  std::vector<std::string> out;
  for (const auto& [kind, term] : history_index_terms(r)) out.push_back(index_prefix(kind, term));
  return out;
}

class LmdbHistory final : public HistoryStore {
 public:
  static Result<std::shared_ptr<HistoryStore>> open(const HistoryConfig& c, bool read_only);

  Status put(const std::vector<HistoryRecord>& records) override {
    if (read_only_) return Status::IOError("history " + path_ + ": opened read-only");
    std::lock_guard lock(write_mu_);
    for (int attempt = 0;; ++attempt) {
      int rc = write(records);
      std::size_t n = 0, removed = 0;
      double used = 0;
      if (rc == 0) {
        // Past 70% of the map the oldest tenth goes now: LMDB writes copies
        // of the pages it changes, deletes included, so a full map could
        // not even make room.
        if (stats(n, used).ok() && used > 0.7) remove_oldest(INT64_MAX, std::max<std::size_t>(n / 10, 1), removed);
        return Status::Ok();
      }
      if (rc != MDB_MAP_FULL || attempt >= 3) return fail("write", rc);
      int dead = 0;
      mdb_reader_check(env_.get(), &dead);  // a killed reader (spamgate history) pins old pages
      if (Status st = stats(n, used); !st.ok()) return st;
      const std::size_t drop = std::max<std::size_t>(n / 10, 2 * records.size());
      if (int e = remove_oldest(INT64_MAX, std::max<std::size_t>(drop, 1), removed); e != 0 || removed == 0)
        return fail("write", rc);  // no room even to delete: Limit
    }
  }

  Status find(const HistoryQuery& q, std::vector<HistoryRecord>& out) const override {
    out.clear();
    Txn txn;
    if (int rc = txn.begin(env_.get(), MDB_RDONLY); rc != 0) return fail("read", rc);
    const std::int64_t until = q.until > 0 ? q.until : INT64_MAX;
    auto in_range = [&](std::int64_t t) { return t >= q.since && t <= until; };
    // (time, ref) of the candidates, newest first.
    std::vector<std::pair<std::uint64_t, std::string>> hits;
    std::string term = history_term(q.term);
    if (term.empty()) {
      MdbCursor cur;
      if (int rc = open_cursor(txn, bytime_, cur); rc != 0) return fail("read", rc);
      MDB_val k{}, v{};
      int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_LAST);
      for (; rc == 0 && hits.size() < q.limit; rc = mdb_cursor_get(cur.get(), &k, &v, MDB_PREV)) {
        std::string_view key = view_of(k);
        if (key.size() <= 8) continue;  // damaged: not ours
        const auto t = static_cast<std::int64_t>(read_be64(key));
        if (t < q.since) break;
        if (in_range(t)) hits.emplace_back(static_cast<std::uint64_t>(t), std::string(key.substr(8)));
      }
    } else {
      // A reference first (exactly one record).
      MDB_val k = val_of(term), v{};
      if (mdb_get(txn.get(), records_, &k, &v) == 0) {
        if (auto r = history_decode(view_of(v)); r.ok() && in_range(r->time)) out.push_back(std::move(r.value()));
        return Status::Ok();
      }
      // Each kind's entries for the term, newest first from `until`, at
      // most q.limit of them: a busy address costs no more than a rare one.
      for (char kind : {'q', 'm', 'a'}) {
        const std::string prefix = index_prefix(kind, term);
        MdbCursor cur;
        if (int rc = open_cursor(txn, index_, cur); rc != 0) return fail("read", rc);
        const std::string after = prefix + be64(static_cast<std::uint64_t>(until) + (until == INT64_MAX ? 0 : 1));
        MDB_val ik = val_of(after), iv{};
        int rc = mdb_cursor_get(cur.get(), &ik, &iv, MDB_SET_RANGE);
        rc = rc == MDB_NOTFOUND ? mdb_cursor_get(cur.get(), &ik, &iv, MDB_LAST) : rc;
        std::size_t taken = 0;
        for (; rc == 0 && taken < q.limit; rc = mdb_cursor_get(cur.get(), &ik, &iv, MDB_PREV)) {
          std::string_view key = view_of(ik);
          if (key.size() < prefix.size() + 8 || key.substr(0, prefix.size()) != prefix) {
            if (key < std::string_view(prefix)) break;  // before this term's entries
            continue;                                   // the first key past them
          }
          std::string_view rest = key.substr(prefix.size());
          const auto t = static_cast<std::int64_t>(read_be64(rest));
          if (t < q.since) break;
          if (!in_range(t)) continue;
          hits.emplace_back(static_cast<std::uint64_t>(t), std::string(rest.substr(8)));
          ++taken;
        }
      }
      std::sort(hits.begin(), hits.end(), std::greater<>());  // newest first; equal pairs side by side
      hits.erase(std::unique(hits.begin(), hits.end()), hits.end());
    }
    for (const auto& [t, ref] : hits) {
      if (out.size() >= q.limit) break;
      MDB_val k = val_of(ref), v{};
      if (mdb_get(txn.get(), records_, &k, &v) != 0) continue;
      if (auto r = history_decode(view_of(v)); r.ok()) out.push_back(std::move(r.value()));
    }
    return Status::Ok();
  }

  Status expire(std::int64_t before, std::size_t max, std::size_t& removed) override {
    removed = 0;
    if (read_only_) return Status::IOError("history " + path_ + ": opened read-only");
    std::lock_guard lock(write_mu_);
    int dead = 0;
    mdb_reader_check(env_.get(), &dead);  // slots of readers that died
    if (int rc = remove_oldest(before, max, removed); rc != 0) return fail("expire", rc);
    return Status::Ok();
  }

  Status stats(std::size_t& records, double& used) const override {
    Txn txn;
    if (int rc = txn.begin(env_.get(), MDB_RDONLY); rc != 0) return fail("read", rc);
    MDB_stat st{};
    if (int rc = mdb_stat(txn.get(), records_, &st); rc != 0) return fail("stat", rc);
    records = st.ms_entries;
    // Live pages of the three tables (the file's high-water mark never
    // shrinks: freed pages are reused, not returned).
    std::size_t pages = 0;
    for (MDB_dbi dbi : {records_, bytime_, index_}) {
      MDB_stat t{};
      if (int rc = mdb_stat(txn.get(), dbi, &t); rc != 0) return fail("stat", rc);
      pages += t.ms_branch_pages + t.ms_leaf_pages + t.ms_overflow_pages;
    }
    MDB_envinfo info{};
    mdb_env_info(env_.get(), &info);
    used = info.me_mapsize > 0 ? static_cast<double>(pages * st.ms_psize) / static_cast<double>(info.me_mapsize) : 0;
    return Status::Ok();
  }

  std::string describe() const override { return "lmdb " + path_; }

 private:
  Status fail(const char* what, int rc) const {
    std::string msg = "history " + path_ + ": " + what + ": " + mdb_strerror(rc);
    if (rc == MDB_MAP_FULL) return Status::Limit(msg + " (raise [history] max_mb)");
    return Status::IOError(msg);
  }

  int open_cursor(const Txn& txn, MDB_dbi dbi, MdbCursor& cur) const {
    MDB_cursor* raw = nullptr;
    int rc = mdb_cursor_open(txn.get(), dbi, &raw);
    cur.reset(raw);
    return rc;
  }

  int write(const std::vector<HistoryRecord>& records) {
    Txn txn;
    if (int rc = txn.begin(env_.get(), 0); rc != 0) return rc;
    MDB_val empty = val_of("", 0);
    for (const HistoryRecord& r : records) {
      if (r.ref.empty()) continue;
      const std::string bytes = history_encode(r);
      MDB_val k = val_of(r.ref), v = val_of(bytes);
      if (int rc = mdb_put(txn.get(), records_, &k, &v, 0); rc != 0) return rc;
      const std::string suffix = be64(static_cast<std::uint64_t>(std::max<std::int64_t>(r.time, 0))) + r.ref;
      MDB_val tk = val_of(suffix);
      if (int rc = mdb_put(txn.get(), bytime_, &tk, &empty, 0); rc != 0) return rc;
      for (const std::string& p : index_prefixes(r)) {
        const std::string ik = p + suffix;
        MDB_val ikv = val_of(ik);
        if (int rc = mdb_put(txn.get(), index_, &ikv, &empty, 0); rc != 0) return rc;
      }
    }
    return txn.commit();
  }

  // The oldest records (time < before), at most `max`, with their index entries.
  int remove_oldest(std::int64_t before, std::size_t max, std::size_t& removed) {
    Txn txn;
    if (int rc = txn.begin(env_.get(), 0); rc != 0) return rc;
    MdbCursor cur;
    if (int rc = open_cursor(txn, bytime_, cur); rc != 0) return rc;
    MDB_val k{}, v{};
    for (int rc = mdb_cursor_get(cur.get(), &k, &v, MDB_FIRST); rc == 0 && removed < max;
         rc = mdb_cursor_get(cur.get(), &k, &v, MDB_NEXT)) {
      const std::string key(view_of(k));
      if (key.size() > 8 && static_cast<std::int64_t>(read_be64(key)) >= before) break;
      MDB_val rk = val_of(std::string_view(key).substr(std::min<std::size_t>(8, key.size()))), rv{};
      if (mdb_get(txn.get(), records_, &rk, &rv) == 0) {
        if (auto r = history_decode(view_of(rv)); r.ok()) {
          for (const std::string& p : index_prefixes(r.value())) {
            const std::string ik = p + key;
            MDB_val ikv = val_of(ik);
            if (int d = mdb_del(txn.get(), index_, &ikv, nullptr); d != 0 && d != MDB_NOTFOUND) return d;
          }
        }
        if (int d = mdb_del(txn.get(), records_, &rk, nullptr); d != 0 && d != MDB_NOTFOUND) return d;
      }
      if (int d = mdb_cursor_del(cur.get(), 0); d != 0) return d;
      ++removed;
    }
    cur.reset();
    return txn.commit();
  }

  std::string path_;
  bool read_only_ = false;
  MdbEnv env_;
  MDB_dbi records_ = 0, bytime_ = 0, index_ = 0;
  std::mutex write_mu_;  // one writer at a time (LMDB would serialise them too, blocking)
};

Result<std::shared_ptr<HistoryStore>> LmdbHistory::open(const HistoryConfig& c, bool read_only) {
  auto st = std::make_shared<LmdbHistory>();
  st->path_ = c.path;
  st->read_only_ = read_only;
  MDB_env* raw = nullptr;
  if (int rc = mdb_env_create(&raw); rc != 0) return st->fail("open", rc);
  st->env_.reset(raw);
  mdb_env_set_maxdbs(raw, 4);
  mdb_env_set_maxreaders(raw, 256);
  if (!read_only)
    if (int rc = mdb_env_set_mapsize(raw, c.max_bytes); rc != 0) return st->fail("open", rc);
  // MDB_NOMETASYNC: one disk sync per commit; an OS crash may undo the last
  // batch of records but leaves the database consistent. MDB_NOTLS: read
  // transactions are not tied to a thread.
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | MDB_NOMETASYNC | (read_only ? MDB_RDONLY : 0);
  if (int rc = mdb_env_open(raw, c.path.c_str(), flags, 0660); rc != 0) return st->fail("open", rc);
  int dead = 0;
  mdb_reader_check(raw, &dead);
  Txn txn;
  if (int rc = txn.begin(raw, read_only ? MDB_RDONLY : 0); rc != 0) return st->fail("open", rc);
  const unsigned create = read_only ? 0 : MDB_CREATE;
  if (int rc = mdb_dbi_open(txn.get(), "records", create, &st->records_); rc != 0) return st->fail("open records", rc);
  if (int rc = mdb_dbi_open(txn.get(), "bytime", create, &st->bytime_); rc != 0) return st->fail("open bytime", rc);
  if (int rc = mdb_dbi_open(txn.get(), "index", create, &st->index_); rc != 0) return st->fail("open index", rc);
  if (int rc = txn.commit(); rc != 0) return st->fail("open", rc);
  return std::shared_ptr<HistoryStore>(std::move(st));
}

}  // namespace

Result<std::shared_ptr<HistoryStore>> open_history_store(const HistoryConfig& c, bool read_only) {
  if (c.store == "redis") return open_redis_history(c);
  // LMDB: one environment per database per process; shared by canonical
  // path and closed when the last user goes.
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<HistoryStore>> open_stores;
  const std::string key = lmdb_directory(c.path, !read_only);
  std::lock_guard lock(mu);
  if (auto it = open_stores.find(key); it != open_stores.end())
    if (auto s = it->second.lock()) return s;
  auto r = LmdbHistory::open(c, read_only);
  if (r.ok()) open_stores[key] = r.value();
  return r;
}

}  // namespace spamgate
