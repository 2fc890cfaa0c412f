// clamav_test.cc - the libclamav engine with the signatures we ship in
// conf/signatures (issue 6, first part): loads, finds, stays quiet on clean
// files, and names the database when it is missing or corrupt.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checks/clamav_engine.h"
#include "test_util.h"

using namespace spamgate;

namespace {

// The names matched in `bytes`, scanned from an anonymous in-memory file.
std::vector<std::string> scan(const ClamEngine& e, const std::string& bytes) {
  int fd = memfd_create("scan", 0);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  lseek(fd, 0, SEEK_SET);
  auto r = e.scan_fd(fd);
  close(fd);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r.value() : std::vector<std::string>{};
}

const std::string kEicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

}  // namespace

TEST(ClamEngine, ShippedSignaturesFindTheirTestFiles) {
  auto e = ClamEngine::load(std::string(SPAMGATE_SOURCE_DIR) + "/conf/signatures");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_GE(e.value()->signature_count(), 2u);
  // libclamav marks every signature not from a signed CVD/CLD ".UNOFFICIAL".
  EXPECT_EQ(scan(*e.value(), kEicar), std::vector<std::string>{"Spamgate.Test.EICAR.UNOFFICIAL"});
  EXPECT_EQ(scan(*e.value(), "header\nSPAMGATE-TEST-MALWARE-PAYLOAD\ntrailer\n"),
            std::vector<std::string>{"Spamgate.Test.Payload.UNOFFICIAL"});
  EXPECT_TRUE(scan(*e.value(), "Dear Bob, the minutes of Tuesday's meeting are below.\n").empty());
}

TEST(ClamEngine, MissingOrCorruptDatabasesAreErrorsNamingThePlace) {
  test::TempDir empty;
  auto none = ClamEngine::load(empty.path() + "/nope");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find(empty.path() + "/nope"), std::string::npos);
  test::TempDir bad;
  bad.file("broken.ndb", "this is not a signature line\n");
  auto corrupt = ClamEngine::load(bad.path());
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.status().message().find(bad.path()), std::string::npos) << corrupt.status().message();
}
