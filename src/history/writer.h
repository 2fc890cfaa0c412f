// writer.h - HistoryWriter: the milter's records go to the history store
// from one background thread, so writing never delays or fails mail.
//
// submit() only queues (at most [history] queue records; past it the record
// is dropped and counted). The thread writes what is queued in one
// transaction at most once a second (or at kBatch records), so a busy
// gateway pays one disk sync a second, and removes records past
// retention_days once an hour. The destructor writes what is
// still queued and stops the thread.
// DIAGNOSTICS: a store failure or a drop is logged as a warning at most once
// a minute, with the count dropped since; metrics count every record.
// Thread-safe.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "spamgate/history.h"
#include "spamgate/snapshot.h"

namespace spamgate {

class HistoryWriter {
 public:
  HistoryWriter(std::shared_ptr<HistoryStore> store, const HistoryConfig& c);
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;
  ~HistoryWriter();

  // Queues `r`; false when the queue is full (the record is dropped).
  bool submit(HistoryRecord r);
  // Blocks until everything submitted so far was written or dropped (tests,
  // `scan` never needs it).
  void flush();
  const HistoryConfig& config() const { return config_; }
  const std::shared_ptr<HistoryStore>& store() const { return store_; }

 private:
  void run();
  void note_dropped(std::size_t n, const std::string& why);

  const std::shared_ptr<HistoryStore> store_;
  const HistoryConfig config_;
  std::mutex mu_;
  std::condition_variable cv_, idle_;
  std::vector<HistoryRecord> queue_;
  static constexpr std::size_t kBatch = 2000;
  bool stop_ = false;
  bool flush_ = false;
  bool writing_ = false;
  std::size_t dropped_since_log_ = 0;
  std::int64_t last_drop_log_ = 0;
  std::thread thread_;  // last: starts once the members above exist
};

}  // namespace spamgate
