// rules_canary.cc - run_rules_canary() (see pipeline.h): a new set of rules
// (an sa-update, a support engineer's edit) must not tag known-good mail.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "spamgate/pipeline.h"
#include "spamgate/snapshot.h"
#include "spamgate/verdict.h"

namespace spamgate {

namespace fs = std::filesystem;

Status run_rules_canary(const Snapshot& snap, std::vector<std::string>& problems) {
  constexpr std::size_t kMaxFiles = 10000;
  std::size_t scanned = 0, flagged = 0;
  for (const std::string& dir : snap.config.rules_canary_dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) return Status::NotFound("rules canary directory " + dir + ": no such directory");
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec) && files.size() < kMaxFiles) files.push_back(it->path().string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      ++scanned;
      ScanResult r = scan_message(snap, bytes, Envelope{});
      if (!r.verdict.spam) continue;
      ++flagged;
      std::vector<const ScoredHit*> by_score;
      for (const ScoredHit& h : r.verdict.hits)
        if (h.score_millis > 0) by_score.push_back(&h);
      std::sort(by_score.begin(), by_score.end(),
                [](const ScoredHit* a, const ScoredHit* b) { return a->score_millis > b->score_millis; });
      std::string why;
      for (std::size_t i = 0; i < by_score.size() && i < 5; ++i) {
        const ScoredHit& h = *by_score[i];
        const SymbolInfo* info = snap.symbols.find(h.name);
        char score[32];
        std::snprintf(score, sizeof score, "%.1f", static_cast<double>(h.score_millis) / 1000.0);
        why += (i ? ", " : "") + h.name + "=" + score;
        if (info != nullptr && !info->file.empty()) why += " (" + info->file + ":" + std::to_string(info->line) + ")";
      }
      const std::string total = format_tenths(r.verdict.score_tenths);
      problems.push_back("known-good message " + f + " scored " + total + " (over " + snap.config.threshold_text +
                         "): " + why);
    }
  }
  if (flagged > 0)
    return Status::InvalidArgument(std::to_string(flagged) + " of " + std::to_string(scanned) +
                                   " rules canary message(s) tagged as spam: " + problems.front());
  return Status::Ok();
}

}  // namespace spamgate
