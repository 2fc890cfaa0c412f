// bayes.h - the statistical classifier: tokens, the store they are counted
// in, and the chi-squared combining that turns counts into a probability.
//
// Tokens come from one parse (Message): words and word pairs of the decoded
// Subject and text, selected header fields, link hosts and attachment types.
// Each token is kept as a stable 64-bit hash (XXH3 of its text with a kind
// prefix such as "s:" for Subject words), so a store never holds message text.
//
// A BayesStore counts, per token, the spam and ham messages it was learned
// from, plus the number of messages of each class and the digests of the
// messages learned (so a message is never counted twice). Implementations:
// LMDB (embedded, the default), Redis (shared by several gateway nodes) and
// an in-memory one (eval's folds and tests). Every implementation is
// thread-safe: many threads may lookup() while one learns; a learn is atomic
// (a learner killed half way leaves the store as before that message or batch).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "spamgate/status.h"

namespace spamgate {

struct Message;

// [bayes] in spamgate.toml.
struct BayesConfig {
  bool enabled = true;
  std::string store = "lmdb";  // "lmdb" (embedded, no server) or "redis" (shared by several nodes)
  std::string path;            // lmdb: the database directory, created on first use
  std::size_t lmdb_map_bytes = std::size_t{1} << 30;  // lmdb: largest size the database may grow to
  // Lookups read an in-memory copy of the token table (16-32 bytes a token),
  // refreshed after a change at most every this many seconds (meanwhile they
  // read the store: never stale counts); 0 = always read the store.
  // (lmdb_cache_seconds / lmdb_cache_max_tokens: the names before Redis had it.)
  int cache_seconds = 60;
  std::size_t cache_max_tokens = 20000000;  // no copy of a larger table
  std::string redis;           // redis: "HOST:PORT" or "unix:/path"
  std::string redis_prefix = "spamgate:bayes";  // redis: key prefix (one database per prefix)
  int redis_timeout_ms = 500;  // redis: connect and per-command timeout
  // redis: while the in-memory copy is current, the store's version is asked
  // at most this often (a round trip per message otherwise): another node's
  // learn shows up to this late; this node's own at once. 0 = every lookup.
  int redis_version_check_ms = 1000;
  int min_ham = 200;           // no verdict until this many ham ...
  int min_spam = 200;          // ... and this many spam messages were learned
  // Header fields tokenized (names, case-insensitive). Subject is always read
  // as text; ignore_headers (SpamAssassin's bayes_ignore_header) drops fields
  // from this list, e.g. those a relay or an archive adds to every message.
  std::vector<std::string> headers = {"From",      "Reply-To",   "To",          "Cc",
                                      "Return-Path", "Received", "Message-ID",  "Content-Type",
                                      "X-Mailer",  "User-Agent", "List-Unsubscribe", "Organization"};
  std::vector<std::string> ignore_headers;
  std::size_t max_text_bytes = 64u << 10;  // bytes of decoded text tokenized per message
  std::size_t max_tokens = 4000;           // distinct tokens per message
  // The logistic regression beside Bayes (LR_xx bands): scored and trained.
  // Off: Bayes alone (a scan costs ~0.1 ms less; bench/RESULTS.md).
  bool logistic = true;
  // How the classifiers' bands combine with the rules (score_verdict(),
  // verdict.h). The guard: a message the rules score at 0 or below that one
  // classifier alone calls spam (p >= 0.95) is not tagged by it, unless that
  // one is at least `guard_unless` sure (1: never; the default, because the
  // exception cost 0.5-0.9 points of false positives on a source the
  // classifiers never saw for 0.2 of detection). Agree: a message both call
  // spam (p >= `agree`) is tagged unless the rules scored it -5 or less (an
  // allow-list entry). Measured in bench/RESULTS.md (issue 19, part 3).
  bool guard = true;
  double guard_unless = 1.0;
  double agree = 0.95;  // 0: off
  bool autolearn = false;                  // the milter learns clear cases itself
  double autolearn_ham_below = -1.0;       // score (rules only) under which a message is learned as ham
  double autolearn_spam_above = 12.0;      // score over which it is learned as spam
};

// The distinct tokens of one message, in first-seen order.
struct Tokens {
  std::vector<std::uint64_t> hashes;
  // With text (explain): token i is text[text_end[i-1] .. text_end[i]).
  std::string text;
  std::vector<std::uint32_t> text_end;
  std::size_t size() const { return hashes.size(); }
  std::string_view text_of(std::size_t i) const;  // "" without text
};

// The distinct tokens of `m` (at most cfg.max_tokens). Thread-safe.
// `keep_text`: also their text (for explain's strongest tokens).
Tokens tokenize(const Message& m, const BayesConfig& cfg, bool keep_text = false);

// XXH3-64 of `s`: the stable token hash (stores depend on it).
std::uint64_t token_hash(std::string_view s);

using Digest = std::array<unsigned char, 32>;
// The identity of a message for learning: SHA-256 of its Message-ID and its
// body as received, so the same message delivered twice is one message.
Digest message_digest(const Message& m);

struct TokenCounts {
  std::uint32_t spam = 0;
  std::uint32_t ham = 0;
};

struct StoreTotals {
  std::uint64_t spam = 0;    // messages learned as spam
  std::uint64_t ham = 0;     // ... as ham
  std::uint64_t tokens = 0;  // distinct tokens stored
};

enum class LearnClass { kHam, kSpam };

// What learn() did with one message.
enum class LearnOutcome {
  kLearned,    // new to the store
  kAlready,    // already learned as this class: nothing changed
  kMoved,      // had been learned as the other class: moved
  kForgotten,  // --forget: removed
  kNotFound,   // --forget of a message never learned
};
const char* learn_outcome_name(LearnOutcome o);

struct LearnItem {
  Digest digest{};
  std::vector<std::uint64_t> tokens;  // distinct
  // The logistic regression's features (lr_features(), sorted);
  // empty: the item does not train it.
  std::vector<std::uint32_t> features;
  // This item's class when it differs from the call's (a batch of ham and
  // spam mixed, in the order they are learned).
  std::optional<LearnClass> cls;
};

// What learning `m` adds: its digest, tokens and (with `lr` and
// cfg.logistic) the logistic regression's features. Thread-safe.
LearnItem learn_item(const Message& m, const BayesConfig& cfg, bool lr = true);

class BayesStore {
 public:
  virtual ~BayesStore() = default;
  virtual std::string describe() const = 0;  // e.g. "lmdb /var/lib/spamgate/bayes"
  // Counts of each token (zero for unknown ones), in the same order, and the
  // totals. IOError/Corruption when the store cannot be read.
  virtual Status lookup(const std::vector<std::uint64_t>& tokens, std::vector<TokenCounts>& counts,
                        StoreTotals& totals) const = 0;
  virtual Status totals(StoreTotals& out) const = 0;
  // The logistic regression's weight of each feature (zero for untrained
  // ones), in the same order; from the same in-memory copy as lookup() when
  // it is current.
  virtual Status lookup_weights(const std::vector<std::uint32_t>& features, std::vector<float>& weights) const = 0;
  // Learns (or, with `forget`, unlearns) every item as one atomic change:
  // all of them or none. `outcomes` gets one entry per item.
  // A learned or moved item with features also trains the logistic
  // regression (lr_train_step(); forgetting leaves its weights).
  virtual Status learn(const std::vector<LearnItem>& items, LearnClass cls, bool forget,
                       std::vector<LearnOutcome>& outcomes) = 0;
};

// Opens (creating on first use where the store can) the store `cfg` names.
// The LMDB store is opened once per process and shared (LMDB forbids two
// handles on one database in a process); the others per call.
Result<std::shared_ptr<BayesStore>> open_bayes_store(const BayesConfig& cfg);

// An in-memory store (eval's folds, tests). Thread-safe.
std::shared_ptr<BayesStore> make_memory_store();

// The classifier's answer for one message.
struct BayesResult {
  bool ready = false;           // enough ham and spam learned
  double probability = 0.5;     // of spam, 0..1 (Fisher-Robinson chi-squared)
  std::size_t tokens_used = 0;  // significant tokens combined
  StoreTotals totals;
  // The strongest significant tokens (text, f(w)), strongest first.
  std::vector<std::pair<std::string, double>> strongest;
};

// Combines the counts of a message's tokens (Robinson's f(w) with
// SpamBayes's constants, then Fisher's chi-squared method on the 150
// strongest). `tokens` (same order as `counts`, with text) is read only to
// name the `strongest` tokens for explain. Pure: no I/O.
BayesResult combine(const std::vector<TokenCounts>& counts, const StoreTotals& totals, const BayesConfig& cfg,
                    const Tokens* tokens = nullptr, std::size_t strongest = 0);

// The SpamAssassin band symbol for a probability: BAYES_00 .. BAYES_99.
const char* bayes_band(double probability);

// The logistic regression beside Bayes (a discriminative classifier over
// hashed sparse features, trained online on errors and near misses: the
// family that won the TREC spam tracks, Goodman & Yih 2006, Sculley &
// Wachman 2007). Its weights live in the same store as the token counts,
// kLrBits-bit feature indexes (16 MiB of float weights at most).
inline constexpr unsigned kLrBits = 22;
inline constexpr float kLrRate = 0.01f;   // the step of one update
inline constexpr float kLrMargin = 0.3f;  // trained while within this of the wrong side of 0.5

// The distinct feature indexes (< 2^kLrBits) of a message, in no set
// order: its Bayes tokens and the character 4-grams of its first 8 KiB of
// decoded text. Thread-safe. With `origins`, also where each came from, so
// that explain can name it (lr_feature_name()).
struct LrOrigins {
  static constexpr std::uint64_t kGram = std::uint64_t{1} << 63;
  std::vector<std::uint64_t> of;  // per feature: a token's index, or kGram | the gram's 4 bytes
};
std::vector<std::uint32_t> lr_features(const Message& m, const Tokens& tokens, LrOrigins* origins = nullptr);
// Feature i's readable name: its token's text (with tokenize(keep_text)), or 'gram'.
std::string lr_feature_name(const LrOrigins& origins, const Tokens& tokens, std::size_t i);

// The probability of spam for the weights of a message's features.
double lr_probability(const std::vector<float>& weights);
// The step to add to every feature weight of a message of class `cls` whose
// probability is `p`: 0 when it is right by more than the margin.
float lr_train_step(double p, LearnClass cls);

// The band symbol: LR_00 .. LR_99 (the same edges as BAYES_xx).
const char* lr_band(double probability);

}  // namespace spamgate
