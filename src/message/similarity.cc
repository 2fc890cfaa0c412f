// similarity.cc - MinHash signatures and near-duplicate clusters (see similarity.h).
#include "message/similarity.h"

#include <xxhash.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <unordered_map>

namespace spamgate {

namespace {

// splitmix64's finaliser: one word hash becomes kMinHashSize independent ones.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

bool word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// The hash of each word of `text`, normalised as minhash() says.
std::vector<std::uint64_t> word_hashes(std::string_view text) {
  text = text.substr(0, kMaxTextBytes);
  std::vector<std::uint64_t> out;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) out.push_back(XXH3_64bits(word.data(), word.size()));
    word.clear();
  };
  for (unsigned char c : text) {
    if (!word_byte(c)) {
      flush();
      continue;
    }
    if (c >= '0' && c <= '9') {
      if (word.empty() || word.back() != '#') word.push_back('#');
      continue;
    }
    word.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
  }
  flush();
  return out;
}

struct UnionFind {
  explicit UnionFind(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  std::size_t find(std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void join(std::size_t a, std::size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // the earlier message is the root
  }
  std::vector<std::size_t> parent;
};

}  // namespace

std::optional<MinHash> minhash(std::string_view text) {
  const std::vector<std::uint64_t> words = word_hashes(text);
  if (words.size() < kShingleWords) return std::nullopt;
  MinHash sig;
  sig.fill(~std::uint64_t{0});
  for (std::size_t i = 0; i + kShingleWords <= words.size(); ++i) {
    std::uint64_t shingle = 0;
    for (std::size_t k = 0; k < kShingleWords; ++k) shingle = mix(shingle ^ words[i + k]);
    for (std::size_t j = 0; j < kMinHashSize; ++j) {
      const std::uint64_t h = mix(shingle + j * 0x632be59bd9b4e019ULL);
      if (h < sig[j]) sig[j] = h;
    }
  }
  return sig;
}

double similarity(const MinHash& a, const MinHash& b) {
  std::size_t same = 0;
  for (std::size_t i = 0; i < kMinHashSize; ++i) same += a[i] == b[i];
  return static_cast<double>(same) / static_cast<double>(kMinHashSize);
}

std::vector<std::size_t> cluster(const std::vector<std::optional<MinHash>>& signatures, double min_similarity) {
  constexpr std::size_t kBands = 16, kRows = kMinHashSize / kBands;
  // A bucket's members, compared with at most this many earlier ones: a
  // campaign of thousands of copies costs linear time, not quadratic.
  constexpr std::size_t kCompare = 8;
  const std::size_t n = signatures.size();
  UnionFind uf(n);
  for (std::size_t band = 0; band < kBands; ++band) {
    std::unordered_map<std::uint64_t, std::vector<std::size_t>> buckets;
    for (std::size_t i = 0; i < n; ++i) {
      if (!signatures[i]) continue;
      const std::uint64_t key = XXH3_64bits(signatures[i]->data() + band * kRows, kRows * sizeof(std::uint64_t));
      std::vector<std::size_t>& members = buckets[key];
      const std::size_t from = members.size() > kCompare ? members.size() - kCompare : 0;
      for (std::size_t m = from; m < members.size(); ++m)
        if (uf.find(members[m]) != uf.find(i) && similarity(*signatures[members[m]], *signatures[i]) >= min_similarity)
          uf.join(members[m], i);
      members.push_back(i);
    }
  }
  std::vector<std::size_t> id(n), number(n, n);
  std::size_t next = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t root = uf.find(i);
    if (number[root] == n) number[root] = next++;
    id[i] = number[root];
  }
  return id;
}

}  // namespace spamgate
