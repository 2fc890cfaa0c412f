// cmd_eval.cc - `spamgate eval`: how many false positives and how much
// detection, on labelled mail, for the rules alone and for rules + the classifiers.
//
//   spamgate eval --ham DIR... --spam DIR... [--folds K] [--folds-by cluster|file]
//                 [--leave-one-source-out] [--time-split] [--train-ham DIR... --train-spam DIR...]
//                 [--hits FILE] [--json] [--network]
//
// Every message is parsed and scanned once with the rules (the config's
// checks without the classifier; no DNS unless --network) and tokenized from
// the same parse. Bayes is then measured without ever scoring a message it
// was trained on: k-fold cross-validation, or a separate training set
// (--train-ham/--train-spam), and with --leave-one-source-out once more per
// input directory (train on every other directory), and with --time-split
// once more by age (each class's newest 30% by Date, trained on its oldest
// 70%; a campaign that goes on across the cut is then rightly known from
// its older copies, as it would be in production). The folds keep near-duplicates together (message/similarity.h:
// copies of one campaign are one cluster, and cluster c goes to fold c mod K),
// so a copy of a test message is never in its training folds; --folds-by file
// gives the old folds (files of each directory, sorted by name, go to fold
// i mod K), which reward memorising campaigns. A message's
// rules + classifiers score is the verdict of its rule hits plus the BAYES_xx
// band and the LR_xx band of the logistic regression (trained in each fold
// once, ham and spam mixed, as `learn --ham --spam` trains the store's),
// scored from the rules files like the milter does.
// Exit: 0 done; 1 some input unreadable; 2 usage/config error.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <optional>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "config/load.h"
#include "app/commands.h"
#include "app/common.h"
#include "checks/bayes.h"
#include "bayes/online_lr.h"
#include "message/date.h"
#include "message/similarity.h"
#include "spamgate/outbound.h"
#include "spamgate/pipeline.h"
#include "util/log.h"

namespace spamgate::app {

namespace {

const char* kUsage =
    "usage: spamgate eval [--config F] --ham DIR... --spam DIR... [options]\n"
    "  --folds K                 K-fold cross-validation for Bayes (default 10)\n"
    "  --folds-by cluster|file   folds keep near-duplicate messages together (default), or\n"
    "                            split each directory's files round-robin (copies on both sides)\n"
    "  --time-split              also: each class's newest 30% (Date) scored by Bayes trained on\n"
    "                            its oldest 70%\n"
    "  --train-ham DIR... --train-spam DIR...\n"
    "                            train Bayes on these instead, test on --ham/--spam\n"
    "  --leave-one-source-out    also: for each input directory, train on all the others, test on it\n"
    "  --list N                  list up to N false positives and N missed spam per directory\n"
    "                            (rules + classifiers; closest to the threshold first), with their rules\n"
    "  --hits FILE               write one JSON line per message (file, class, rules hit, Bayes\n"
    "                            probability) for scripts/fit_scores.py\n"
    "  --json                    the report as JSON\n"
    "  --network                 run the DNS checks too (off by default: eval makes no query)\n";

struct Sample {
  std::string file;
  int source = 0;
  bool spam = false;
  bool train_only = false;  // from --train-ham/--train-spam
  bool unreadable = false;  // neither tested nor trained on
  int fold = 0;
  std::size_t cluster = 0;              // near-duplicates share it (message/similarity.h)
  std::optional<MinHash> signature;
  std::optional<std::int64_t> date;     // the Date field, when it can be read
  bool time_test = false;               // --time-split: among the newest of its class
  std::vector<Hit> hits;                // rules only
  std::vector<std::uint64_t> tokens;
  std::vector<std::uint32_t> lr;        // the online logistic regression's features (bayes/online_lr.h)
  double p_cv = -1;                     // Bayes probability, cross-validated (or held-out set)
  double p_loso = -1;                   // ... leave-one-source-out
  double p_time = -1;                   // ... trained on the older messages (--time-split)
  double lr_cv = -1, lr_time = -1, lr_loso = -1;      // the logistic regression's probability, the same two ways
  Verdict rules, with_bayes, with_loso, with_time;
};

struct Source {
  std::string dir;
  bool spam = false;
  bool train_only = false;
};

using Counts = std::unordered_map<std::uint64_t, TokenCounts>;

void add(Counts& c, StoreTotals& t, const Sample& s, int delta) {
  if (s.unreadable) return;
  for (std::uint64_t h : s.tokens) {
    TokenCounts& tc = c[h];
    std::uint32_t& n = s.spam ? tc.spam : tc.ham;
    n = static_cast<std::uint32_t>(static_cast<std::int64_t>(n) + delta);
  }
  std::uint64_t& n = s.spam ? t.spam : t.ham;
  n = static_cast<std::uint64_t>(static_cast<std::int64_t>(n) + delta);
}

double classify(const Counts& c, const StoreTotals& t, const Sample& s, const BayesConfig& cfg) {
  std::vector<TokenCounts> counts(s.tokens.size());
  for (std::size_t i = 0; i < s.tokens.size(); ++i) {
    auto it = c.find(s.tokens[i]);
    if (it != c.end()) counts[i] = it->second;
  }
  BayesResult r = combine(counts, t, cfg);
  return r.ready ? r.probability : -1;
}

// The rules' hits plus the classifiers' bands (as the check emits them).
Verdict with_bayes(const Snapshot& snap, const Sample& s, double p, double lr) {
  if (p < 0) return s.rules;
  std::vector<Hit> hits = s.hits;
  BayesResult r;
  r.probability = p;
  bayes_hits(r, hits);
  if (lr >= 0) hits.emplace_back(lr_band(lr), 1.0, "").probability = lr;
  return score_verdict(snap, hits);
}

bool positive(const Verdict& v) { return v.spam || v.action == Action::kReject; }

struct Tally {
  std::size_t n = 0, positives = 0;
};

// The report of one mode (rules / rules+bayes / loso) as JSON.
nlohmann::json mode_report(const std::vector<Sample>& samples, const std::vector<Source>& sources,
                           const Verdict Sample::*which, std::int64_t threshold_tenths,
                           const bool Sample::*only = nullptr) {
  std::vector<Tally> by_source(sources.size());
  Tally ham, spam;
  // Score distribution around the threshold: one-point buckets from
  // threshold-5 to threshold+5, plus the tails.
  std::map<int, std::pair<std::size_t, std::size_t>> dist;
  for (const Sample& s : samples) {
    if (s.train_only || (only != nullptr && !(s.*only))) continue;
    const Verdict& v = s.*which;
    bool pos = positive(v);
    Tally& t = s.spam ? spam : ham;
    ++t.n;
    t.positives += pos;
    ++by_source[static_cast<std::size_t>(s.source)].n;
    by_source[static_cast<std::size_t>(s.source)].positives += pos;
    std::int64_t rel = v.score_tenths - threshold_tenths;  // tenths over the threshold
    int bucket = rel > 0 ? static_cast<int>((rel - 1) / 10) : -static_cast<int>((-rel) / 10) - 1;
    bucket = std::clamp(bucket, -6, 5);
    auto& d = dist[bucket];
    (s.spam ? d.second : d.first)++;
  }
  auto rate = [](const Tally& t) { return t.n == 0 ? 0.0 : 100.0 * static_cast<double>(t.positives) / static_cast<double>(t.n); };
  nlohmann::json j;
  j["ham"] = {{"n", ham.n}, {"false_positives", ham.positives}, {"fp_rate", rate(ham)}};
  j["spam"] = {{"n", spam.n}, {"detected", spam.positives}, {"detection_rate", rate(spam)}};
  j["by_source"] = nlohmann::json::array();
  for (std::size_t i = 0; i < sources.size(); ++i) {
    if (sources[i].train_only) continue;
    j["by_source"].push_back({{"source", sources[i].dir},
                              {"class", sources[i].spam ? "spam" : "ham"},
                              {"n", by_source[i].n},
                              {"over_threshold", by_source[i].positives},
                              {"rate", rate(by_source[i])}});
  }
  j["distribution"] = nlohmann::json::array();
  for (const auto& [b, hs] : dist) {
    std::string label = b <= -6 ? "<= -5" : b >= 5 ? "> +5" : (b < 0 ? "(" + std::to_string(b) + "," + std::to_string(b + 1) + "]"
                                                                      : "(+" + std::to_string(b) + ",+" + std::to_string(b + 1) + "]");
    j["distribution"].push_back({{"relative_to_threshold", label}, {"ham", hs.first}, {"spam", hs.second}});
  }
  return j;
}

void print_mode(const char* title, const nlohmann::json& m) {
  std::printf("\n%s\n", title);
  std::printf("  %-44s %6s %8s %8s\n", "source", "n", "over", "rate");
  for (const auto& s : m["by_source"])
    std::printf("  %-44s %6zu %8zu %7.2f%%  %s\n", s["source"].get<std::string>().c_str(), s["n"].get<std::size_t>(),
                s["over_threshold"].get<std::size_t>(), s["rate"].get<double>(),
                s["class"] == "ham" ? "(false positives)" : "(detected)");
  std::printf("  %-44s %6zu %8zu %7.2f%%  false positives\n", "all ham", m["ham"]["n"].get<std::size_t>(),
              m["ham"]["false_positives"].get<std::size_t>(), m["ham"]["fp_rate"].get<double>());
  std::printf("  %-44s %6zu %8zu %7.2f%%  detection\n", "all spam", m["spam"]["n"].get<std::size_t>(),
              m["spam"]["detected"].get<std::size_t>(), m["spam"]["detection_rate"].get<double>());
  std::printf("  score - threshold:");
  for (const auto& d : m["distribution"])
    std::printf(" %s ham %zu spam %zu;", d["relative_to_threshold"].get<std::string>().c_str(),
                d["ham"].get<std::size_t>(), d["spam"].get<std::size_t>());
  std::printf("\n");
}

// The labelled messages of every directory given: file, class, source and
// fold (files of a directory, sorted, go to fold i mod K).
void collect_samples(Options& opt, int folds, std::vector<Source>& sources, std::vector<Sample>& samples) {
  auto add_sources = [&](const char* list, bool spam, bool train_only) {
    for (const std::string& dir : opt.lists[list]) {
      int idx = static_cast<int>(sources.size());
      sources.push_back({dir, spam, train_only});
      int i = 0;
      for (const std::string& f : expand_inputs({dir})) {
        Sample s;
        s.file = f;
        s.source = idx;
        s.spam = spam;
        s.train_only = train_only;
        s.fold = i++ % folds;
        samples.push_back(std::move(s));
      }
    }
  };
  add_sources("--ham", false, false);
  add_sources("--spam", true, false);
  add_sources("--train-ham", false, true);
  add_sources("--train-spam", true, true);
}

// Scans and tokenizes every message once, on every core; the unreadable
// ones are neither tested nor trained on. Returns how many were unreadable.
std::size_t scan_all(const Snapshot& snap, std::vector<Sample>& samples, unsigned nthreads) {
  std::atomic<std::size_t> next{0}, unreadable{0};
  const std::int64_t now = unix_seconds();
  auto worker = [&] {
    for (std::size_t i = next++; i < samples.size(); i = next++) {
      Sample& s = samples[i];
      Input in = read_input(s.file);
      if (!in.error.empty()) {
        std::cerr << "spamgate: " << s.file << ": " << in.error << "\n";
        ++unreadable;
        s.train_only = true;  // not tested ...
        s.unreadable = true;  // ... and not trained on
        continue;
      }
      std::vector<std::string> msgs = split_mbox(in.bytes);  // drops an mbox "From " line
      ScanResult r = scan_message(snap, msgs.empty() ? std::string_view(in.bytes) : std::string_view(msgs[0]), Envelope{});
      Tokens tokens = tokenize(r.message, snap.config.bayes);
      s.lr = lr_features(r.message, tokens);
      s.tokens = std::move(tokens.hashes);
      const Header* subject = r.message.first("subject");
      s.signature = minhash((subject != nullptr ? subject->decoded : std::string()) + "\n" + r.message.text);
      if (const Header* date = r.message.first("date")) s.date = parse_date(date->decoded, now);
      s.hits = std::move(r.hits);
      s.rules = std::move(r.verdict);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < nthreads; ++i) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  return unreadable.load();
}

// Bayes: every tested message is scored by a classifier that never saw it
// (the held-out training set, or the other folds). Returns how many.
std::size_t classify_unseen(std::vector<Sample>& samples, bool held_out, int folds, const BayesConfig& cfg) {
  Counts counts;
  StoreTotals totals;
  for (const Sample& s : samples)
    if (!held_out || s.train_only) add(counts, totals, s, +1);
  std::size_t classified = 0;
  if (held_out) {
    for (Sample& s : samples)
      if (!s.train_only) {
        s.p_cv = classify(counts, totals, s, cfg);
        ++classified;
      }
    return classified;
  }
  for (int f = 0; f < folds; ++f) {
    for (const Sample& s : samples)
      if (s.fold == f) add(counts, totals, s, -1);
    for (Sample& s : samples)
      if (s.fold == f && !s.train_only) {
        s.p_cv = classify(counts, totals, s, cfg);
        ++classified;
      }
    for (const Sample& s : samples)
      if (s.fold == f) add(counts, totals, s, +1);
  }
  return classified;
}

// --leave-one-source-out: each input directory scored by a classifier
// trained on every other one.
void classify_leaving_sources_out(std::vector<Sample>& samples, const std::vector<Source>& sources, bool held_out,
                                  const BayesConfig& cfg) {
  Counts counts;
  StoreTotals totals;
  for (const Sample& s : samples)
    if (!held_out || s.train_only) add(counts, totals, s, +1);
  for (std::size_t src = 0; src < sources.size(); ++src) {
    if (sources[src].train_only) continue;
    for (const Sample& s : samples)
      if (s.source == static_cast<int>(src) && (!held_out || s.train_only)) add(counts, totals, s, -1);
    for (Sample& s : samples)
      if (s.source == static_cast<int>(src)) s.p_loso = classify(counts, totals, s, cfg);
    for (const Sample& s : samples)
      if (s.source == static_cast<int>(src) && (!held_out || s.train_only)) add(counts, totals, s, +1);
  }
}

// Near-duplicate clusters; with --folds-by cluster, cluster c is fold c mod
// K. Returns the clusters' sizes, as JSON, for the report.
nlohmann::json assign_clusters(std::vector<Sample>& samples, const std::vector<Source>& sources, int folds,
                               bool by_cluster) {
  std::vector<std::optional<MinHash>> sigs;
  sigs.reserve(samples.size());
  for (const Sample& s : samples) sigs.push_back(s.signature);
  const std::vector<std::size_t> id = cluster(sigs);
  std::size_t clusters = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    samples[i].cluster = id[i];
    clusters = std::max(clusters, id[i] + 1);
    if (by_cluster) samples[i].fold = static_cast<int>(id[i] % static_cast<std::size_t>(folds));
  }
  struct Size {
    std::size_t n = 0, ham = 0, spam = 0, first = 0;
  };
  // The statistics count the messages read (not the unreadable ones).
  std::vector<Size> size(clusters);
  std::size_t read = 0;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].unreadable) continue;
    ++read;
    Size& z = size[id[i]];
    if (z.n++ == 0) z.first = i;
    (samples[i].spam ? z.spam : z.ham)++;
  }
  std::size_t multi = 0, in_multi = 0, mixed = 0, used = 0;
  for (const Size& z : size) {
    used += z.n > 0;
    if (z.n > 1) ++multi, in_multi += z.n;
    if (z.ham > 0 && z.spam > 0) ++mixed;
  }
  std::vector<std::size_t> order(clusters);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return size[a].n > size[b].n; });
  nlohmann::json j;
  j["folds_by"] = by_cluster ? "cluster" : "file";
  j["messages"] = read;
  j["clusters"] = used;
  j["clusters_of_two_or_more"] = multi;
  j["messages_in_them"] = in_multi;
  j["clusters_with_ham_and_spam"] = mixed;
  j["largest"] = nlohmann::json::array();
  for (std::size_t k = 0; k < order.size() && k < 5 && size[order[k]].n > 1; ++k) {
    const Size& z = size[order[k]];
    j["largest"].push_back({{"messages", z.n}, {"ham", z.ham}, {"spam", z.spam},
                            {"source", sources[static_cast<std::size_t>(samples[z.first].source)].dir},
                            {"first", samples[z.first].file}});
  }
  return j;
}

// --time-split: within each class, the newest 30% of the dated messages are
// scored by a classifier trained on the oldest 70% of both classes. Returns
// how many dated messages there were, and the cut-off dates, as JSON.
nlohmann::json classify_by_age(std::vector<Sample>& samples, const BayesConfig& cfg) {
  nlohmann::json j;
  Counts counts;
  StoreTotals totals;
  std::vector<std::size_t> test;
  for (bool spam : {false, true}) {
    std::vector<std::size_t> dated;
    for (std::size_t i = 0; i < samples.size(); ++i)
      if (samples[i].spam == spam && samples[i].date && !samples[i].train_only) dated.push_back(i);
    std::stable_sort(dated.begin(), dated.end(), [&](std::size_t a, std::size_t b) { return *samples[a].date < *samples[b].date; });
    const std::size_t cut = dated.size() * 7 / 10;
    for (std::size_t k = 0; k < dated.size(); ++k) {
      if (k < cut) add(counts, totals, samples[dated[k]], +1);
      else test.push_back(dated[k]);
    }
    nlohmann::json c;
    c["dated"] = dated.size();
    c["trained"] = cut;
    c["tested"] = dated.size() - cut;
    if (cut > 0 && cut < dated.size()) {
      c["train_until"] = *samples[dated[cut - 1]].date;
      c["test_from"] = *samples[dated[cut]].date;
    }
    j[spam ? "spam" : "ham"] = c;
  }
  for (std::size_t i : test) {
    samples[i].time_test = true;
    samples[i].p_time = classify(counts, totals, samples[i], cfg);
  }
  return j;
}

// The logistic regression, trained online on `train` (in that order, once:
// as `spamgate learn --ham H --spam S` trains the store's) and then scoring
// `test`.
void logistic_unseen(std::vector<Sample>& samples, const std::vector<std::size_t>& train,
                     const std::vector<std::size_t>& test, double Sample::*out) {
  OnlineLogistic lr;
  for (std::size_t i : train) lr.train(samples[i].lr, samples[i].spam);
  for (std::size_t i : test) samples[i].*out = lr.probability(samples[i].lr);
}

// The order messages are trained in: ham and spam mixed, the same each run
// (by a hash of the file name), as mail arrives rather than class by class.
std::vector<std::size_t> training_order(const std::vector<Sample>& samples) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < samples.size(); ++i)
    if (!samples[i].unreadable) order.push_back(i);
  std::vector<std::uint64_t> key(samples.size());
  for (std::size_t i : order) key[i] = token_hash(samples[i].file);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
  return order;
}

// The logistic regression the ways Bayes is measured: cross-validated on the
// same folds (or trained on the held-out set), by source and by age.
void logistic_all(std::vector<Sample>& samples, const std::vector<Source>& sources, bool held_out, int folds,
                  bool by_age, bool loso) {
  const std::vector<std::size_t> order = training_order(samples);
  for (std::size_t src = 0; loso && src < sources.size(); ++src) {
    if (sources[src].train_only) continue;
    std::vector<std::size_t> train, test;
    for (std::size_t i : order) {
      const bool here = samples[i].source == static_cast<int>(src);
      if (here) test.push_back(i);
      else if (!held_out || samples[i].train_only) train.push_back(i);
    }
    logistic_unseen(samples, train, test, &Sample::lr_loso);
  }
  if (held_out) {
    std::vector<std::size_t> train, test;
    for (std::size_t i : order) (samples[i].train_only ? train : test).push_back(i);
    logistic_unseen(samples, train, test, &Sample::lr_cv);
  } else {
    for (int f = 0; f < folds; ++f) {
      std::vector<std::size_t> train, test;
      for (std::size_t i : order) (samples[i].fold == f ? test : train).push_back(i);
      logistic_unseen(samples, train, test, &Sample::lr_cv);
    }
  }
  if (!by_age) return;
  // Trained on the oldest 70% of each class (the dated ones not tested), in
  // the mixed order above: the corpus's ham and spam come from different
  // years, and in date order the model would end on a year of spam alone.
  std::vector<std::size_t> train, test;
  for (std::size_t i : order)
    if (samples[i].date && !samples[i].train_only) (samples[i].time_test ? test : train).push_back(i);
  logistic_unseen(samples, train, test, &Sample::lr_time);
}

// Each classifier alone, and the mean of the two probabilities, over the
// messages `only` selects: false positives and detection at probability
// cut-offs, and the detection at the cut-off that lets through at most 0.1%
// (0.5%) of the ham (a point of the ROC curve: compares classifiers whose
// probabilities are scaled differently).
nlohmann::json classifiers_alone(const std::vector<Sample>& samples, double Sample::*bayes, double Sample::*lr,
                                 const bool Sample::*only) {
  struct Way {
    const char* name;
    std::function<double(const Sample&)> p;
  };
  const Way ways[] = {
      {"bayes", [&](const Sample& s) { return s.*bayes; }},
      {"logistic", [&](const Sample& s) { return s.*lr; }},
      {"mean", [&](const Sample& s) { return (s.*bayes + s.*lr) / 2; }},
  };
  nlohmann::json j = nlohmann::json::array();
  for (const Way& w : ways) {
    std::vector<double> ham, spam;
    for (const Sample& s : samples) {
      if (s.train_only || s.unreadable || (only != nullptr && !(s.*only)) || s.*lr < 0 || s.*bayes < 0) continue;
      (s.spam ? spam : ham).push_back(w.p(s));
    }
    std::sort(ham.begin(), ham.end(), std::greater<>());
    auto row = [&](const std::string& at, double cut) {
      std::size_t fp = 0, det = 0;
      for (double p : ham) fp += p > cut;
      for (double p : spam) det += p > cut;
      j.push_back({{"classifier", w.name}, {"at", at}, {"cut", cut}, {"ham", ham.size()}, {"false_positives", fp},
                   {"fp_rate", ham.empty() ? 0.0 : 100.0 * static_cast<double>(fp) / static_cast<double>(ham.size())},
                   {"spam", spam.size()}, {"detected", det},
                   {"detection_rate", spam.empty() ? 0.0 : 100.0 * static_cast<double>(det) / static_cast<double>(spam.size())}});
    };
    for (double cut : {0.5, 0.9, 0.99}) row("p > " + std::to_string(cut).substr(0, 4), cut);
    for (double rate : {0.001, 0.005}) {
      const std::size_t allowed = static_cast<std::size_t>(rate * static_cast<double>(ham.size()));
      row(rate == 0.001 ? "FP <= 0.1%" : "FP <= 0.5%", allowed < ham.size() ? ham[allowed] : 0.0);
    }
  }
  return j;
}

void print_classifiers(const char* title, const nlohmann::json& rows) {
  std::printf("\n%s\n  %-10s %-12s %8s %18s %20s\n", title, "", "", "cut", "false positives", "detection");
  for (const auto& r : rows)
    std::printf("  %-10s %-12s %8.6f %7zu/%-5zu %5.2f%% %7zu/%-5zu %6.2f%%\n", r["classifier"].get<std::string>().c_str(),
                r["at"].get<std::string>().c_str(), r["cut"].get<double>(), r["false_positives"].get<std::size_t>(),
                r["ham"].get<std::size_t>(), r["fp_rate"].get<double>(), r["detected"].get<std::size_t>(),
                r["spam"].get<std::size_t>(), r["detection_rate"].get<double>());
}

// The rules on most false positives (rules only) and hit most, top 10 each.
struct RuleTops {
  std::size_t tested = 0;
  std::vector<std::pair<std::string, std::size_t>> fp;
  std::vector<std::pair<std::string, std::pair<std::size_t, std::size_t>>> hits;  // ham, spam
};

RuleTops rule_tops(const std::vector<Sample>& samples) {
  RuleTops t;
  std::map<std::string, std::size_t> fp_rules;
  std::map<std::string, std::pair<std::size_t, std::size_t>> rule_hits;
  for (const Sample& s : samples) {
    if (s.train_only) continue;
    ++t.tested;
    for (const ScoredHit& h : s.rules.hits) {
      auto& rh = rule_hits[h.name];
      (s.spam ? rh.second : rh.first)++;
      if (!s.spam && positive(s.rules)) ++fp_rules[h.name];
    }
  }
  t.fp.assign(fp_rules.begin(), fp_rules.end());
  std::stable_sort(t.fp.begin(), t.fp.end(), [](auto& a, auto& b) { return a.second > b.second; });
  if (t.fp.size() > 10) t.fp.resize(10);
  t.hits.assign(rule_hits.begin(), rule_hits.end());
  std::stable_sort(t.hits.begin(), t.hits.end(), [](auto& a, auto& b) {
    return a.second.first + a.second.second > b.second.first + b.second.second;
  });
  if (t.hits.size() > 10) t.hits.resize(10);
  return t;
}

// --hits FILE: one JSON line per tested message for scripts/fit_scores.py.
void write_hits(const std::string& path, const std::vector<Sample>& samples, const std::vector<Source>& sources) {
  std::ofstream out(path);
  for (const Sample& s : samples) {
    if (s.train_only) continue;
    nlohmann::json j;
    j["file"] = s.file;
    j["source"] = sources[static_cast<std::size_t>(s.source)].dir;
    j["spam"] = s.spam;
    std::vector<std::string> names;
    for (const Hit& h : s.hits)
      if (h.name.rfind("__", 0) != 0 && std::find(names.begin(), names.end(), h.name) == names.end())
        names.push_back(h.name);
    j["rules"] = names;
    j["bayes"] = s.p_cv;
    j["bayes_loso"] = s.p_loso;
    j["logistic"] = s.lr_cv;
    j["logistic_loso"] = s.lr_loso;
    j["cluster"] = s.cluster;
    j["fold"] = s.fold;
    j["score_rules"] = static_cast<double>(s.rules.score_tenths) / 10.0;
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  }
  if (!out) std::cerr << "spamgate: cannot write " << path << "\n";
}

// --list N: per directory, the ham over the threshold and the spam under it
// (rules + Bayes), closest to the threshold first: what a support engineer
// or a rule writer reads next.
nlohmann::json listing(const std::vector<Sample>& samples, const std::vector<Source>& sources, std::size_t n) {
  nlohmann::json j = nlohmann::json::array();
  for (std::size_t src = 0; src < sources.size(); ++src) {
    if (sources[src].train_only) continue;
    std::vector<const Sample*> wrong;
    for (const Sample& s : samples)
      if (s.source == static_cast<int>(src) && !s.train_only && positive(s.with_bayes) != s.spam) wrong.push_back(&s);
    const std::int64_t sign = sources[src].spam ? -1 : 1;  // missed spam: highest score first; FPs: lowest first
    std::stable_sort(wrong.begin(), wrong.end(), [&](const Sample* a, const Sample* b) {
      return sign * a->with_bayes.score_tenths < sign * b->with_bayes.score_tenths;
    });
    if (wrong.size() > n) wrong.resize(n);
    nlohmann::json list = nlohmann::json::array();
    for (const Sample* s : wrong) {
      std::string tests;
      for (const ScoredHit& h : s->with_bayes.hits) tests += (tests.empty() ? "" : ",") + h.name;
      list.push_back({{"file", s->file}, {"score", format_tenths(s->with_bayes.score_tenths)},
                      {"bayes", s->p_cv}, {"tests", tests}});
    }
    j.push_back({{"source", sources[src].dir}, {"class", sources[src].spam ? "spam" : "ham"}, {"wrong", list}});
  }
  return j;
}

std::string utc_date(std::int64_t t) { return format_unix_time(t).substr(0, 10); }  // YYYY-MM-DD

void print_report(const nlohmann::json& report, const RuleTops& tops, bool loso, bool by_age) {
  std::printf("eval: %zu messages, threshold %s (spam when score > threshold), Bayes by %s, config %s\n",
              report["messages"].get<std::size_t>(), report["threshold"].get<std::string>().c_str(),
              report["method"].get<std::string>().c_str(), report["config"].get<std::string>().c_str());
  std::printf("speed: scan %.0f msg/s on %u threads (rules, parse, tokenize), Bayes %.0f msg/s\n",
              report["scan_messages_per_second"].get<double>(), report["scan_threads"].get<unsigned>(),
              report["bayes_messages_per_second"].get<double>());
  const nlohmann::json& c = report["near_duplicates"];
  std::printf("near-duplicates: %zu clusters for %zu messages; %zu clusters of 2 or more hold %zu messages "
              "(%zu with ham and spam); folds by %s\n",
              c["clusters"].get<std::size_t>(), c["messages"].get<std::size_t>(),
              c["clusters_of_two_or_more"].get<std::size_t>(), c["messages_in_them"].get<std::size_t>(),
              c["clusters_with_ham_and_spam"].get<std::size_t>(), c["folds_by"].get<std::string>().c_str());
  for (const auto& l : c["largest"])
    std::printf("  largest: %zu messages (%zu ham, %zu spam) in %s, e.g. %s\n", l["messages"].get<std::size_t>(),
                l["ham"].get<std::size_t>(), l["spam"].get<std::size_t>(), l["source"].get<std::string>().c_str(),
                l["first"].get<std::string>().c_str());
  print_mode("RULES ONLY", report["rules"]);
  print_mode("RULES + CLASSIFIERS (BAYES_xx and LR_xx bands)", report["rules_bayes"]);
  if (loso) print_mode("RULES + CLASSIFIERS, LEAVE ONE SOURCE OUT (trained on the other directories)",
                       report["rules_bayes_leave_one_source_out"]);
  if (by_age) {
    const nlohmann::json& t = report["time_split"];
    std::string cuts;
    for (const char* cls : {"ham", "spam"})
      if (t[cls].contains("test_from"))
        cuts += std::string(" ") + cls + ": trained until " + utc_date(t[cls]["train_until"].get<std::int64_t>()) +
                ", tested from " + utc_date(t[cls]["test_from"].get<std::int64_t>()) + ";";
    print_mode(("RULES + CLASSIFIERS, TIME SPLIT (each class's newest 30% by Date, trained on the oldest 70%;" + cuts +
                " undated messages left out)").c_str(),
               report["rules_bayes_time_split"]);
  }
  print_classifiers("EACH CLASSIFIER ALONE, CROSS-VALIDATED (spam when its probability is over the cut)",
                    report["classifiers_alone"]);
  if (by_age)
    print_classifiers("EACH CLASSIFIER ALONE, TIME SPLIT", report["classifiers_alone_time_split"]);
  if (report.contains("listing")) {
    for (const auto& src : report["listing"]) {
      if (src["wrong"].empty()) continue;
      std::printf("\n%s in %s (rules + classifiers, closest to the threshold first):\n",
                  src["class"] == "ham" ? "FALSE POSITIVES" : "MISSED SPAM", src["source"].get<std::string>().c_str());
      for (const auto& w : src["wrong"])
        std::printf("  %6s  bayes %5s  %s  %s\n", w["score"].get<std::string>().c_str(),
                    w["bayes"].get<double>() < 0 ? "-" : std::to_string(w["bayes"].get<double>()).substr(0, 5).c_str(),
                    w["file"].get<std::string>().c_str(), w["tests"].get<std::string>().c_str());
    }
  }
  std::printf("\nrules on most false positives (rules only):\n");
  for (const auto& [name, n] : tops.fp) std::printf("  %-32s %zu\n", name.c_str(), n);
  std::printf("\nrules hit most (ham / spam):\n");
  for (const auto& [name, hs] : tops.hits) std::printf("  %-32s %zu / %zu\n", name.c_str(), hs.first, hs.second);
}

}  // namespace

int cmd_eval(int argc, char** argv) {
  CommandFlags own{{"--leave-one-source-out", "--time-split"},
                   {"--folds", "--folds-by", "--hits", "--list"},
                   {"--ham", "--spam", "--train-ham", "--train-spam"}, {}};
  auto opt = parse_options(argc, argv, 2, kUsage, own);
  if (!opt) return 2;
  int folds = opt->values.count("--folds") ? std::atoi(opt->values["--folds"].c_str()) : 10;
  bool held_out = opt->lists.count("--train-ham") || opt->lists.count("--train-spam");
  const std::string folds_by = opt->values.count("--folds-by") ? opt->values["--folds-by"] : "cluster";
  if (folds_by != "cluster" && folds_by != "file") {
    std::cerr << "spamgate: --folds-by is cluster or file\n" << kUsage;
    return 2;
  }
  if (opt->lists["--ham"].empty() || opt->lists["--spam"].empty() || !opt->args.empty() || folds < 2 ||
      (held_out && (opt->lists["--train-ham"].empty() || opt->lists["--train-spam"].empty()))) {
    std::cerr << "spamgate: eval needs --ham DIR... and --spam DIR... (and both --train-ham and --train-spam, "
                 "or neither; --folds at least 2)\n"
              << kUsage;
    return 2;
  }
  opt->quiet = true;
  // The rules without the classifier: eval classifies with its own per-fold stores.
  std::shared_ptr<const Snapshot> snap = load_or_report(*opt, LoadOptions{.network = opt->network, .bayes = false}, "error");
  if (!snap) return 2;
  const BayesConfig& bcfg = snap->config.bayes;

  std::vector<Source> sources;
  std::vector<Sample> samples;
  collect_samples(*opt, folds, sources, samples);
  const unsigned nthreads = std::max(1u, std::thread::hardware_concurrency());
  auto t0 = std::chrono::steady_clock::now();
  const std::size_t unreadable = scan_all(*snap, samples, nthreads);
  const double scan_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const nlohmann::json near_duplicates = assign_clusters(samples, sources, folds, folds_by == "cluster");
  auto t1 = std::chrono::steady_clock::now();
  const std::size_t classified = classify_unseen(samples, held_out, folds, bcfg);
  const double bayes_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  const bool loso = opt->has("--leave-one-source-out");
  if (loso) classify_leaving_sources_out(samples, sources, held_out, bcfg);
  const bool by_age = opt->has("--time-split");
  nlohmann::json time_split;
  if (by_age) time_split = classify_by_age(samples, bcfg);
  logistic_all(samples, sources, held_out, folds, by_age, loso);
  for (Sample& s : samples) {
    // [bayes] logistic = false: measured alone (below), not scored.
    const bool lr = bcfg.logistic;
    s.with_bayes = with_bayes(*snap, s, s.p_cv, lr ? s.lr_cv : -1);
    s.with_loso = with_bayes(*snap, s, s.p_loso, lr ? s.lr_loso : -1);
    s.with_time = with_bayes(*snap, s, s.p_time, lr ? s.lr_time : -1);
  }
  const RuleTops tops = rule_tops(samples);

  const std::int64_t thr = snap->config.threshold_tenths;
  nlohmann::json report;
  report["threshold"] = snap->config.threshold_text;
  report["config"] = snap->config.path;
  report["method"] = held_out ? "held-out training set"
                              : std::to_string(folds) + "-fold cross-validation, folds by " + folds_by;
  report["near_duplicates"] = near_duplicates;
  report["messages"] = tops.tested;
  report["unreadable"] = unreadable;
  report["scan_messages_per_second"] = scan_secs > 0 ? static_cast<double>(samples.size()) / scan_secs : 0.0;
  report["scan_threads"] = nthreads;
  report["bayes_messages_per_second"] = bayes_secs > 0 ? static_cast<double>(classified) / bayes_secs : 0.0;
  report["rules"] = mode_report(samples, sources, &Sample::rules, thr);
  report["rules_bayes"] = mode_report(samples, sources, &Sample::with_bayes, thr);
  if (loso) report["rules_bayes_leave_one_source_out"] = mode_report(samples, sources, &Sample::with_loso, thr);
  report["classifiers_alone"] = classifiers_alone(samples, &Sample::p_cv, &Sample::lr_cv, nullptr);
  if (by_age) {
    report["classifiers_alone_time_split"] =
        classifiers_alone(samples, &Sample::p_time, &Sample::lr_time, &Sample::time_test);
    report["time_split"] = time_split;
    report["rules_bayes_time_split"] = mode_report(samples, sources, &Sample::with_time, thr, &Sample::time_test);
  }
  report["top_false_positive_rules"] = nlohmann::json::array();
  for (const auto& [name, n] : tops.fp) report["top_false_positive_rules"].push_back({{"rule", name}, {"ham_over_threshold", n}});
  report["top_rules"] = nlohmann::json::array();
  for (const auto& [name, hs] : tops.hits)
    report["top_rules"].push_back({{"rule", name}, {"ham", hs.first}, {"spam", hs.second}});
  if (opt->values.count("--hits")) write_hits(opt->values["--hits"], samples, sources);
  if (opt->values.count("--list"))
    report["listing"] = listing(samples, sources, static_cast<std::size_t>(std::max(0, std::atoi(opt->values["--list"].c_str()))));

  if (opt->json) std::cout << report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else print_report(report, tops, loso, by_age);
  return unreadable > 0 ? 1 : 0;
}

}  // namespace spamgate::app
