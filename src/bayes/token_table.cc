// token_table.cc - TokenTable (see token_table.h).
#include "bayes/token_table.h"

namespace spamgate::bayes_detail {

TokenTable::TokenTable(std::size_t expected) {
  std::size_t cap = 16;
  while (cap * 3 < expected * 4 + 4) cap <<= 1;  // at most 3/4 full
  slots_.resize(cap);
  mask_ = cap - 1;
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
