// token_table.cc - TokenTable (see token_table.h).
#include "bayes/token_table.h"

#include "util/log.h"

namespace spamgate::bayes_detail {

TokenTable::TokenTable(std::size_t expected) {
  std::size_t cap = 16;
  while (cap * 3 < expected * 4 + 4) cap <<= 1;  // at most 3/4 full
  slots_.resize(cap);
  mask_ = cap - 1;
}

void TokenTable::find_weights(const std::vector<std::uint32_t>& features, std::vector<float>& out) const {
  out.assign(features.size(), 0.0f);
  if (weights.empty()) return;
  const std::size_t mask = weights.size() - 1;
  // 16 MiB of weights: most reads miss the cache; loads issued a few ahead overlap.
  constexpr std::size_t kAhead = 16;
  for (std::size_t i = 0; i < features.size(); ++i) {
    if (i + kAhead < features.size()) __builtin_prefetch(&weights[features[i + kAhead] & mask]);
    out[i] = weights[features[i] & mask];
  }
}

std::size_t TokenTable::slot_of(std::uint64_t key) const {
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 20) & mask_;
}

void TokenTable::insert(std::uint64_t key, TokenCounts counts) {
  if (key == 0) {
    n_ += has_zero_ ? 0 : 1;
    has_zero_ = true;
    zero_ = counts;
    return;
  }
  if ((n_ + 1) * 4 > slots_.size() * 3) {  // keep it at most 3/4 full
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    for (const Slot& s : old) {
      if (s.key == 0) continue;
      std::size_t i = slot_of(s.key);
      while (slots_[i].key != 0) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::size_t i = slot_of(key);
  while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask_;
  if (slots_[i].key == 0) ++n_;
  slots_[i] = Slot{key, counts};
}

TokenCounts TokenTable::find(std::uint64_t key) const {
  if (key == 0) return has_zero_ ? zero_ : TokenCounts{};
  std::size_t i = slot_of(key);
  while (slots_[i].key != 0) {
    if (slots_[i].key == key) return slots_[i].counts;
    i = (i + 1) & mask_;
  }
  return TokenCounts{};
}

}  // namespace spamgate::bayes_detail

namespace spamgate::bayes_detail {

void TokenTable::find_all(const std::vector<std::uint64_t>& keys, std::vector<TokenCounts>& counts) const {
  counts.resize(keys.size());
  constexpr std::size_t kAhead = 16;
  for (std::size_t i = 0; i < keys.size() && i < kAhead; ++i) prefetch(keys[i]);
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (i + kAhead < keys.size()) prefetch(keys[i + kAhead]);
    counts[i] = find(keys[i]);
  }
}

CopyKeeper::CopyKeeper(int period_seconds, std::string what, Make make)
    : period_seconds_(period_seconds), what_(std::move(what)), make_(std::move(make)) {}

CopyKeeper::~CopyKeeper() { stop(); }

void CopyKeeper::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const TokenTable> CopyKeeper::current(std::uint64_t version) const {
  if (!enabled()) return nullptr;
  std::shared_ptr<const TokenTable> t = copy_.load(std::memory_order_acquire);
  if (t && t->version == version) return t;
  request();
  return nullptr;
}

void CopyKeeper::request() const {
  if (!enabled()) return;
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    wanted_ = true;
  }
  cv_.notify_one();
}

void CopyKeeper::loop() const {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait(lock, [&] { return stop_.load() || wanted_; });
    if (stop_) break;
    wanted_ = false;
    lock.unlock();
    auto t0 = std::chrono::steady_clock::now();
    if (std::shared_ptr<const TokenTable> t = make_(stop_)) {
      log().debug("bayes: {}: {} tokens copied to memory ({} MB) in {:.0f} ms", what_, t->size(), t->bytes() >> 20,
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      copy_.store(std::move(t), std::memory_order_release);
    }
    lock.lock();
    // At most one copy per period: wait out the rest of it.
    cv_.wait_until(lock, t0 + std::chrono::seconds(period_seconds_), [&] { return stop_.load(); });
  }
}

}  // namespace spamgate::bayes_detail
