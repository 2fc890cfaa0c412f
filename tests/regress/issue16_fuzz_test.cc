// issue16_fuzz_test.cc - regressions found by the fuzz targets of issue 16
// (tests/fuzz/, bench/fuzz.sh): each test replays what a target found
// through the same code, and failed before its fix.
#include <gtest/gtest.h>
#include "config/config.h"
#include "../unit/test_util.h"

using namespace spamgate;

// fuzz_config: a config whose [outbound] store = "redis" names no server (and
// [bayes] none either) was accepted with a diagnostic left behind: `learn`
// and `release` printed it and went on, the milter then blamed the rules.
TEST(ConfigRegress, OutboundRedisWithoutServerIsAConfigError) {
  test::TempDir dir;
  std::string path = dir.file("spamgate.toml", "rules_dir = \"r\"\n[outbound]\nstore = \"redis\"\n");
  std::vector<Diagnostic> diags;
  auto c = load_config(path, diags);
  EXPECT_FALSE(c.ok());
  ASSERT_EQ(diags.size(), 1u);
  EXPECT_NE(diags[0].message.find("'outbound.redis'"), std::string::npos) << diags[0].str();
  // With [bayes] redis it is taken from there and loads.
  diags.clear();
  path = dir.file("ok.toml", "rules_dir = \"r\"\n[bayes]\nredis = \"127.0.0.1:6379\"\n[outbound]\nstore = \"redis\"\n");
  auto ok = load_config(path, diags);
  ASSERT_TRUE(ok.ok()) << (diags.empty() ? "" : diags[0].str());
  EXPECT_EQ(ok.value().outbound.redis, "127.0.0.1:6379");
  EXPECT_TRUE(diags.empty());
}
