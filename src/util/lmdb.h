// lmdb.h - RAII for LMDB handles: the environment, a transaction (aborted on
// scope exit unless committed) and a cursor; MDB_val from bytes.
// Shared by the Bayes/state store (bayes/lmdb_store.cc) and the verdict
// history (history/lmdb_history.cc). Not thread-safe by themselves: LMDB's
// rules apply (a transaction belongs to one thread).
#pragma once

#include <lmdb.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace spamgate {

struct MdbEnvClose {
  void operator()(MDB_env* e) const { mdb_env_close(e); }
};
using MdbEnv = std::unique_ptr<MDB_env, MdbEnvClose>;

struct MdbCursorClose {
  void operator()(MDB_cursor* c) const { mdb_cursor_close(c); }
};
using MdbCursor = std::unique_ptr<MDB_cursor, MdbCursorClose>;

// A transaction aborted on scope exit unless committed.
class Txn {
 public:
  Txn() = default;
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn() {
    if (t_ != nullptr) mdb_txn_abort(t_);
  }
  int begin(MDB_env* env, unsigned flags) { return mdb_txn_begin(env, nullptr, flags, &t_); }
  int commit() {
    int rc = mdb_txn_commit(t_);
    t_ = nullptr;
    return rc;
  }
  MDB_txn* get() const { return t_; }

 private:
  MDB_txn* t_ = nullptr;
};

// The directory of an environment: created on first use (when `create`)
// and closed to other users whatever the umask. Returns its canonical path:
// the key of a per-process registry, as LMDB allows one environment per
// database per process.
inline std::string lmdb_directory(const std::string& path, bool create) {
  std::error_code ec;
  if (create && std::filesystem::create_directories(path, ec))
    std::filesystem::permissions(path, std::filesystem::perms::others_all, std::filesystem::perm_options::remove, ec);
  std::string key = std::filesystem::weakly_canonical(path, ec).string();
  return key.empty() ? path : key;
}

inline MDB_val val_of(const void* p, std::size_t n) { return MDB_val{n, const_cast<void*>(p)}; }
inline MDB_val val_of(std::string_view s) { return val_of(s.data(), s.size()); }
inline std::string_view view_of(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

}  // namespace spamgate
