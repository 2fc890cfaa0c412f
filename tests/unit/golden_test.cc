// golden_test.cc - every message in corpus/ rewritten exactly as it would be
// delivered, compared byte for byte with tests/golden/<dir>_<name>.out.
// Regenerate after an intended change with SPAMGATE_UPDATE_GOLDEN=1 and
// review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "test_util.h"

using namespace spamgate;
namespace fs = std::filesystem;

TEST(Golden, CorpusMessagesRewriteToExpectedBytes) {
  const std::string src = SPAMGATE_SOURCE_DIR;
  std::vector<Diagnostic> d;
  auto snap = load_snapshot(src + "/tests/data/golden.toml", d);
  ASSERT_TRUE(snap.ok()) << (d.empty() ? "" : d[0].str());
  const bool update = std::getenv("SPAMGATE_UPDATE_GOLDEN") != nullptr;
  int compared = 0;
  std::vector<fs::path> files;
  for (const auto& e : fs::recursive_directory_iterator(src + "/corpus")) {
    if (e.path().extension() == ".eml") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const fs::path& p : files) {
    std::string msg = test::read_file(p.string());
    std::string out = test::delivered(*snap.value(), msg);
    std::string golden = src + "/tests/golden/" + p.parent_path().filename().string() + "_" + p.stem().string() + ".out";
    if (update) {
      std::ofstream(golden, std::ios::binary) << out;
      continue;
    }
    ASSERT_TRUE(fs::exists(golden)) << golden << " missing; run with SPAMGATE_UPDATE_GOLDEN=1";
    EXPECT_EQ(out, test::read_file(golden)) << p;
    ++compared;
  }
  if (!update) {
    EXPECT_GE(compared, 7);
  }
}
