// similarity.h - near-duplicate messages: a MinHash signature of a message's
// normalised text, and clusters of messages whose signatures say they are
// copies of one another (the same campaign sent to other recipients, a
// newsletter's issues that differ in a line).
//
// Used by `spamgate eval` and scripts/fit_scores.py (through eval's --hits
// file) so that cross-validation never tests a message on a classifier or a
// score fit trained on its copy. Not on the per-message path.
//
// Interface: minhash() is pure and thread-safe; cluster() is pure.
// Limits: at most kMaxTextBytes of text are read per message.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace spamgate {

inline constexpr std::size_t kMinHashSize = 64;
inline constexpr std::size_t kShingleWords = 4;
inline constexpr std::size_t kMaxTextBytes = 64 * 1024;
using MinHash = std::array<std::uint64_t, kMinHashSize>;

// The signature of `text`: its words (runs of letters, digits and non-ASCII
// bytes, ASCII lower-cased; a run of digits counts as one '#', so order
// numbers and per-recipient codes do not tell copies apart), in shingles of
// kShingleWords consecutive words. nullopt when the text has fewer words
// than that: such a message is a cluster of its own.
std::optional<MinHash> minhash(std::string_view text);

// The share of equal positions: an estimate of the Jaccard similarity of
// the two messages' shingle sets (standard error about 0.06).
double similarity(const MinHash& a, const MinHash& b);

// Cluster of each signature: 0, 1, 2, ... numbered in the order of each
// cluster's first member. Two messages are joined when they collide in one
// of 16 bands of 4 positions (likely for a Jaccard similarity over ~0.5) and
// their estimated similarity is at least `min_similarity`; clusters are the
// transitive closure. A message without a signature is alone.
std::vector<std::size_t> cluster(const std::vector<std::optional<MinHash>>& signatures,
                                 double min_similarity = 0.6);

}  // namespace spamgate
