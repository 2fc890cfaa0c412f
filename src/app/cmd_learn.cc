// cmd_learn.cc - `spamgate learn`: teach the Bayes store ham or spam.
//
//   spamgate learn [--forget] [--ham PATH...] [--spam PATH...]   files, directories, mbox files, - (stdin)
//   spamgate learn --stats                           the store's counts
//   spamgate learn --arf FILE...                     feedback-loop abuse reports (RFC 5965)
// Ham and spam given in one command are learned mixed (the order is a hash
// of the path): the logistic regression beside Bayes learns online, in
// order, and one class after the other would tilt it; so one class alone
// trains it on its first 100 messages only (a few corrections).
// Each message is learned once (by digest); learning it as the other class
// moves it; --forget removes it. Messages are written in batches of 100, each
// batch one atomic change of the store. On a terminal, progress (count,
// rate, ETA) is shown on stderr; totals go to stdout.
// --arf: each report's enclosed original is learned as spam, and when our
// sender tag ([outbound] tag_header) or its Message-ID names one of our
// accounts, a complaint counts against it (outbound.h): enough complaints
// and spam verdicts in [outbound] spam_window hold the account.
// Exit: 0 done; 1 some input unreadable (or not a report); 2 usage/config
// error; 3 store error.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "app/commands.h"
#include "app/common.h"
#include "config/load.h"
#include "config/config.h"
#include "spamgate/bayes.h"
#include "outbound/arf.h"
#include "spamgate/message.h"
#include "spamgate/outbound.h"
#include "util/log.h"
#include "util/text.h"

namespace spamgate::app {

namespace {

const char* kUsage =
    "usage: spamgate learn [--config F] [--forget] [--ham PATH...] [--spam PATH...]\n"
    "       spamgate learn [--config F] --stats\n"
    "       spamgate learn [--config F] --arf FILE...\n"
    "  PATH     a message file, a directory of them, an mbox file, or - for stdin\n"
    "  --ham    learn the messages as ham (wanted mail)\n"
    "  --spam   learn them as spam. Both in one command: learned mixed (the logistic regression\n"
    "           learns in order; one class alone trains it on its first 100 messages only)\n"
    "  --forget unlearn them (whichever class they were learned as)\n"
    "  --stats  print how many ham and spam messages and tokens the store holds\n"
    "  --arf    read feedback-loop abuse reports (multipart/report; report-type=feedback-report):\n"
    "           learn each enclosed original as spam and count a complaint against the account that\n"
    "           sent it (found by our sender tag header, else by its Message-ID)\n";

void print_totals(const BayesStore& store, const StoreTotals& t) {
  std::printf("store: %s\nham: %llu\nspam: %llu\ntokens: %llu\n", store.describe().c_str(),
              static_cast<unsigned long long>(t.ham), static_cast<unsigned long long>(t.spam),
              static_cast<unsigned long long>(t.tokens));
}

// The account that sent `original` (our tag header first, then the
// Message-ID map); "" when it is not ours. `how` says which one found it.
Status account_of(const OutboundGuard& guard, const Message& original, std::string& account, std::string& how) {
  account.clear();
  if (const Header* tag = original.first(guard.config().tag_header)) {
    if (Status s = guard.account_of_tag(tag->decoded, account); !s.ok()) return s;
    if (!account.empty()) {
      how = "sender tag";
      return Status::Ok();
    }
  }
  if (const Header* mid = original.first("Message-ID")) {
    if (Status s = guard.account_of_message_id(mid->decoded, account); !s.ok()) return s;
    if (!account.empty()) how = "Message-ID";
  }
  return Status::Ok();
}

int learn_arf(const Config& config, BayesStore& store, const std::vector<std::string>& args) {
  std::vector<Diagnostic> diags;
  std::shared_ptr<OutboundGuard> guard = config.outbound.enabled ? make_outbound_guard(config, diags) : nullptr;
  for (const Diagnostic& d : diags) std::cerr << d.str() << "\n";
  std::size_t reports = 0, bad = 0, learned = 0, complaints = 0;
  for (const std::string& path : expand_inputs(args)) {
    bool store_failed = false;
    auto n = for_each_message_in(path, config.limits.max_scan_bytes, [&](std::string& bytes) {
      if (store_failed) return;
      FeedbackReport report;
      if (Status s = parse_feedback_report(bytes, report); !s.ok()) {
        std::cerr << "spamgate: " << path << ": not a feedback report: " << s.message() << "\n";
        ++bad;
        return;
      }
      ++reports;
      Message original = parse_message(report.original, config.limits);
      const Header* mid = original.first("Message-ID");
      std::string line = path + ": feedback-type=" + (report.feedback_type.empty() ? "?" : report.feedback_type) +
                         " original " + (mid ? clip(mid->decoded, 120) : "(no Message-ID)");
      if (report.feedback_type == "not-spam") {  // RFC 6650: a report that the message was wanted
        std::printf("%s: not-spam report: not learned, no complaint\n", line.c_str());
        return;
      }
      if (report.headers_only) {
        line += ": headers only, not learned";
      } else {
        std::vector<LearnOutcome> outcomes;
        LearnItem item = learn_item(original, config.bayes);
        if (Status s = store.learn({item}, LearnClass::kSpam, false, outcomes); !s.ok()) {
          std::cerr << "spamgate: " << s.message() << "\n";
          store_failed = true;
          return;
        }
        ++learned;
        line += outcomes[0] == LearnOutcome::kAlready ? ": already learned as spam"
                : outcomes[0] == LearnOutcome::kMoved ? ": moved from ham to spam"
                                                      : ": learned as spam";
      }
      std::string account, how;
      if (guard) {
        if (Status s = account_of(*guard, original, account, how); !s.ok()) {
          std::cerr << "spamgate: " << s.message() << "\n";
          store_failed = true;
          return;
        }
      }
      if (account.empty()) {
        std::printf("%s; not sent by one of our accounts\n", line.c_str());
        return;
      }
      OutboundCounts counts;
      std::optional<HoldInfo> hold;
      if (Status s = guard->add_complaint(account, unix_seconds(), counts, hold); !s.ok()) {
        std::cerr << "spamgate: " << s.message() << "\n";
        store_failed = true;
        return;
      }
      ++complaints;
      std::printf("%s; complaint against %s (found by %s): %.0f complaint(s) + %.0f spam verdict(s) in the last %d s, "
                  "hold at %d\n",
                  line.c_str(), account.c_str(), how.c_str(), counts.complaints, counts.spam,
                  config.outbound.spam_window_seconds, config.outbound.hold_after_spam);
      if (hold) {
        std::printf("%s is now held until %s: %s\n", hold->who.c_str(), format_unix_time(hold->until).c_str(),
                    hold->reason.c_str());
        log().warn("outbound: HOLD {}: {} (feedback report {}); held until {} (spamgate release {})", hold->who,
                   hold->reason, path, format_unix_time(hold->until), hold->who);
      }
    });
    if (!n) ++bad;
    if (store_failed) return 3;
  }
  std::printf("reports: %zu read, %zu learned as spam, %zu complaints counted, %zu unreadable or not reports\n",
              reports, learned, complaints, bad);
  return bad > 0 ? 1 : 0;
}

// One class at once trains the logistic regression on this many messages at
// most (a few corrections); more would tilt it toward that class, since it
// learns online, in order (bayes.h).
constexpr std::size_t kLrOneClassMessages = 100;

struct Input {
  std::string path;
  LearnClass cls;
};

// The files of --ham and --spam. Both given: mixed in an order that is the
// same each run (by a hash of the path), as mail arrives: the logistic
// regression learns from them in that order.
std::vector<Input> learn_inputs(const std::vector<std::string>& ham, const std::vector<std::string>& spam) {
  std::vector<Input> out;
  for (const std::string& p : expand_inputs(ham)) out.push_back({p, LearnClass::kHam});
  for (const std::string& p : expand_inputs(spam)) out.push_back({p, LearnClass::kSpam});
  if (!ham.empty() && !spam.empty())
    std::stable_sort(out.begin(), out.end(),
                     [](const Input& a, const Input& b) { return token_hash(a.path) < token_hash(b.path); });
  return out;
}

// Learns (or forgets) every message of `inputs`, in batches of 100,
// streaming mbox files; prints progress on a terminal and a summary line
// per class. Exit code: 0, 1 some input unreadable, 3 the store failed.
int learn_files(const Config& config, BayesStore& store, bool forget, const std::vector<Input>& inputs) {
  const BayesConfig& cfg = config.bayes;
  StoreTotals totals;
  const bool progress = isatty(STDERR_FILENO) != 0;
  bool classes[2] = {false, false};
  for (const Input& in : inputs) classes[in.cls == LearnClass::kSpam] = true;
  const bool mixed = classes[0] && classes[1];
  std::size_t counts[2][5] = {};  // by class, by LearnOutcome
  std::size_t by_class[2] = {0, 0};
  std::size_t unreadable = 0, messages = 0, files_done = 0, lr_trained = 0, lr_skipped = 0;
  std::vector<LearnItem> batch;
  auto t0 = std::chrono::steady_clock::now();
  auto flush = [&]() -> bool {
    if (batch.empty()) return true;
    std::vector<LearnOutcome> outcomes;
    if (Status s = store.learn(batch, LearnClass::kHam, forget, outcomes); !s.ok()) {
      std::cerr << "\nspamgate: " << s.message() << " (the last " << batch.size()
                << " messages were not learned; the store is as before them)\n";
      return false;
    }
    for (std::size_t i = 0; i < outcomes.size(); ++i)
      ++counts[*batch[i].cls == LearnClass::kSpam][static_cast<int>(outcomes[i])];
    batch.clear();
    return true;
  };
  bool store_failed = false;
  for (const Input& in : inputs) {
    ++files_done;
    // Streamed: an mbox of any size holds one message in memory at a time.
    auto n = for_each_message_in(in.path, config.limits.max_scan_bytes, [&](std::string& msg) {
      if (store_failed) return;
      const bool lr = !forget && (mixed || messages < kLrOneClassMessages);
      LearnItem item = learn_item(parse_message(msg, config.limits), cfg, lr);
      item.cls = in.cls;
      ++(lr ? lr_trained : lr_skipped);
      batch.push_back(std::move(item));
      ++messages;
      ++by_class[in.cls == LearnClass::kSpam];
      if (batch.size() >= 100 && !flush()) store_failed = true;
    });
    if (store_failed) return 3;
    if (!n) {
      ++unreadable;
    } else if (*n == 0) {
      std::cerr << "spamgate: " << in.path << ": empty file, not a message\n";
      ++unreadable;
    }
    if (progress && (files_done % 50 == 0 || files_done == inputs.size())) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double rate = secs > 0 ? static_cast<double>(messages) / secs : 0;
      double eta = rate > 0 ? static_cast<double>(inputs.size() - files_done) * (static_cast<double>(messages) / static_cast<double>(files_done)) / rate : 0;
      std::fprintf(stderr, "\r%zu/%zu files, %zu messages, %.0f msg/s, ETA %d:%02d   ", files_done, inputs.size(),
                   messages, rate, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    }
  }
  if (!flush()) return 3;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (progress) std::fprintf(stderr, "\n");
  for (int spam = 0; spam < 2; ++spam) {
    if (!classes[spam]) continue;
    const std::size_t* c = counts[spam];
    std::printf("%s: %zu messages in %.1f s (%.0f msg/s%s): %zu learned, %zu already learned, %zu moved from %s, "
                "%zu forgotten, %zu not learned before, %zu unreadable\n",
                forget ? "forget" : (spam ? "spam" : "ham"), by_class[spam], secs,
                secs > 0 ? static_cast<double>(messages) / secs : 0.0, mixed ? ", ham and spam mixed" : "", c[0], c[1], c[2], spam ? "ham" : "spam", c[3],
                c[4], unreadable);
  }
  if (lr_skipped > 0)
    std::printf("logistic regression: learned from the first %zu messages only; %zu of one class at once would tilt "
                "it (it learns in order): give --ham and --spam in one command\n",
                lr_trained, lr_skipped);
  if (Status s = store.totals(totals); s.ok()) print_totals(store, totals);
  return unreadable > 0 ? 1 : 0;
}

}  // namespace

int cmd_learn(int argc, char** argv) {
  CommandFlags own{{"--forget", "--stats", "--arf"}, {}, {"--ham", "--spam"}, {}};
  auto opt = parse_options(argc, argv, 2, kUsage, own);
  if (!opt) return 2;
  const bool stats = opt->has("--stats"), arf = opt->has("--arf");
  const std::vector<std::string> none;
  auto list = [&](const char* name) -> const std::vector<std::string>& {
    auto it = opt->lists.find(name);
    return it == opt->lists.end() ? none : it->second;
  };
  const std::vector<std::string>&ham = list("--ham"), &spam = list("--spam");
  const bool given = opt->lists.count("--ham") > 0 || opt->lists.count("--spam") > 0;
  if (arf && (given || stats || opt->has("--forget") || opt->args.empty())) {
    std::cerr << "spamgate: learn --arf takes report files only (they are learned as spam)\n" << kUsage;
    return 2;
  }
  if (!stats && !arf &&
      (!opt->args.empty() || ham.size() + spam.size() == 0 || (opt->lists.count("--ham") > 0 && ham.empty()) ||
       (opt->lists.count("--spam") > 0 && spam.empty()))) {
    std::cerr << "spamgate: learn needs --ham PATH... and/or --spam PATH...\n" << kUsage;
    return 2;
  }
  opt->quiet = true;
  // Only the config: learning needs no rules, signatures or DNS.
  std::optional<Config> loaded = config_or_report(*opt, "warn");
  if (!loaded) return 2;
  const Config& config = *loaded;
  const BayesConfig& cfg = config.bayes;
  auto opened = open_bayes_store(cfg);
  if (!opened.ok()) {
    std::cerr << "spamgate: " << opened.status().message() << "\n";
    return 3;
  }
  BayesStore& store = *opened.value();
  StoreTotals totals;
  if (stats) {
    if (Status s = store.totals(totals); !s.ok()) {
      std::cerr << "spamgate: " << s.message() << "\n";
      return 3;
    }
    print_totals(store, totals);
    return 0;
  }

  if (arf) return learn_arf(config, store, opt->args);

  return learn_files(config, store, opt->has("--forget"), learn_inputs(ham, spam));
}

}  // namespace spamgate::app
