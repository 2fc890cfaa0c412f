// writer.cc - HistoryWriter (see writer.h).
#include "history/writer.h"

#include <chrono>
#include <vector>

#include "spamgate/metrics.h"
#include "util/log.h"
#include "spamgate/outbound.h"

namespace spamgate {

HistoryWriter::HistoryWriter(std::shared_ptr<HistoryStore> store, const HistoryConfig& c)
    : store_(std::move(store)), config_(c), thread_([this] { run(); }) {}

HistoryWriter::~HistoryWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool HistoryWriter::submit(HistoryRecord r) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= config_.queue) {
      note_dropped(1, "the queue is full ([history] queue)");
      return false;
    }
    queue_.push_back(std::move(r));
    // Only the first record of a batch (the thread waits for one) or a full
    // batch wakes the thread: a wake-up per message cost a context switch each.
    wake = queue_.size() == 1 || queue_.size() == kBatch;
  }
  if (wake) cv_.notify_one();
  return true;
}

void HistoryWriter::flush() {
  std::unique_lock lock(mu_);
  flush_ = true;
  cv_.notify_all();
  idle_.wait(lock, [&] { return (queue_.empty() && !writing_) || stop_; });
  flush_ = false;
}

// Called with mu_ held.
void HistoryWriter::note_dropped(std::size_t n, const std::string& why) {
  Metrics::get().history(false, n);
  dropped_since_log_ += n;
  const std::int64_t now = unix_seconds();
  if (now - last_drop_log_ < 60) return;
  log().warn("history: {} record(s) dropped: {}", dropped_since_log_, why);
  dropped_since_log_ = 0;
  last_drop_log_ = now;
}

void HistoryWriter::run() {
  using namespace std::chrono_literals;
  std::int64_t next_expiry = 0;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_for(lock, 60s, [&] { return stop_ || !queue_.empty(); });
    // One commit (one disk sync) a second at most: a record per commit cost
    // the milter a third more CPU a message (bench/RESULTS.md).
    cv_.wait_for(lock, 1s, [&] { return stop_ || flush_ || queue_.size() >= kBatch; });
    if (!queue_.empty()) {
      std::vector<HistoryRecord> batch;
      batch.swap(queue_);
      writing_ = true;
      lock.unlock();
      Status st = Status::Ok();
      try {
        st = store_->put(batch);
      } catch (const std::exception& e) {  // bad_alloc: the batch is lost, the milter is not
        st = Status::Internal(std::string("write failed: ") + e.what());
      }
      lock.lock();
      writing_ = false;
      if (st.ok()) Metrics::get().history(true, batch.size());
      else note_dropped(batch.size(), st.message());
    }
    const std::int64_t now = unix_seconds();
    if (now >= next_expiry && !stop_) {  // a writer being retired leaves expiry to the next one
      lock.unlock();
      // Records past retention, a bounded number a round (the next round
      // comes a minute later while there are more).
      std::size_t removed = 0;
      Status st = Status::Ok();
      try {
        st = store_->expire(now - static_cast<std::int64_t>(config_.retention_days) * 86400, 10000, removed);
      } catch (const std::exception& e) {
        st = Status::Internal(e.what());
      }
      if (!st.ok()) log().warn("history: expiry failed: {}", st.message());
      lock.lock();
      next_expiry = removed >= 10000 ? now + 60 : now + 3600;
    }
    if (queue_.empty()) idle_.notify_all();
    if (stop_ && queue_.empty()) break;
  }
  idle_.notify_all();
}

}  // namespace spamgate
