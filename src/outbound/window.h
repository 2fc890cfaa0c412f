// window.h - sliding-window counters for the outbound guard (outbound.h).
//
// A Series counts two quantities (a, b) over a window of 60 slots of
// `width` seconds. count(now) sums the slots inside (now - 60*width, now]
// and the part of the leaving slot still inside it, so the window slides
// with the clock instead of resetting at fixed times. A record is a list of
// Series, stored as bytes (host byte order: the nodes sharing a Redis are
// assumed to be of one architecture). A record of other widths (the config
// changed) or of the wrong size starts afresh. Plain data; not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spamgate::outbound_detail {

constexpr std::int64_t kSlots = 60;

struct Slot {
  std::uint32_t no = 0;  // slot number: unix time / width
  std::uint32_t a = 0, b = 0;
};

struct Series {
  std::uint32_t width = 1;
  std::array<Slot, kSlots + 1> slots{};  // slot no lives at index no % (kSlots + 1)

  void add(std::int64_t now, std::uint32_t da, std::uint32_t db) {
    auto cur = static_cast<std::uint32_t>(now / width);
    Slot& s = slots[cur % slots.size()];
    if (s.no != cur) s = Slot{cur, 0, 0};
    s.a += da;
    s.b += db;
  }

  std::pair<double, double> count(std::int64_t now) const {
    const std::int64_t cur = now / width;
    const double leaving = 1.0 - static_cast<double>(now % width) / width;  // part of slot cur-60 still inside
    double a = 0, b = 0;
    for (const Slot& s : slots) {
      std::int64_t age = cur - static_cast<std::int64_t>(s.no);
      if (s.a == 0 && s.b == 0) continue;
      double w = age >= 0 && age < kSlots ? 1.0 : age == kSlots ? leaving : 0.0;
      a += w * s.a;
      b += w * s.b;
    }
    return {a, b};
  }
};

inline std::string encode(const std::vector<Series>& series) {
  std::string out;
  for (const Series& s : series) {
    out.append(reinterpret_cast<const char*>(&s.width), sizeof s.width);
    out.append(reinterpret_cast<const char*>(s.slots.data()), sizeof(Slot) * s.slots.size());
  }
  return out;
}

// The record in `bytes` if it has exactly these widths; else fresh series.
inline std::vector<Series> decode(std::string_view bytes, const std::vector<std::uint32_t>& widths) {
  std::vector<Series> out(widths.size());
  for (std::size_t i = 0; i < widths.size(); ++i) out[i].width = widths[i] == 0 ? 1 : widths[i];
  constexpr std::size_t kOne = sizeof(std::uint32_t) + sizeof(Slot) * (kSlots + 1);
  if (bytes.size() != kOne * widths.size()) return out;
  for (std::size_t i = 0; i < widths.size(); ++i) {
    std::uint32_t w = 0;
    std::memcpy(&w, bytes.data() + i * kOne, sizeof w);
    if (w != out[i].width) {
      for (std::size_t j = 0; j < widths.size(); ++j) out[j] = Series{out[j].width, {}};
      return out;
    }
    std::memcpy(out[i].slots.data(), bytes.data() + i * kOne + sizeof w, sizeof(Slot) * out[i].slots.size());
  }
  return out;
}

}  // namespace spamgate::outbound_detail
