// clamav_test.cc - malware scanning with real libclamav and the signatures
// we ship (conf/signatures) or write here: trust per database file, the
// exact reject text, third-party scoring, the policy file, the canary that
// refuses a bad update (the MBL_349876 incident), the milter's spool for long
// messages and its failure policy, and libclamav's limits.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "checks/clamav.h"
#include "checks/clamav_engine.h"
#include "milter/daemon.h"
#include "milter/session.h"
#include "session_recorder.h"
#include "test_util.h"
#include "util/log.h"

using namespace spamgate;
using spamgate::test::Recorder;
using spamgate::test::TempDir;

namespace {

const std::string kSource = SPAMGATE_SOURCE_DIR;
const std::string kOwn = kSource + "/conf/signatures";
const std::string kEicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
const std::string kEicarReply = "Your email was rejected because it contains the Spamgate.Test.EICAR";

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// A message with `attachment` base64-encoded as invoice.com after `filler`
// bytes of text.
std::string with_attachment(const std::string& attachment, std::size_t filler = 0) {
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string enc;
  std::size_t i = 0;
  for (; i + 2 < attachment.size(); i += 3) {
    unsigned v = (static_cast<unsigned char>(attachment[i]) << 16) | (static_cast<unsigned char>(attachment[i + 1]) << 8) |
                 static_cast<unsigned char>(attachment[i + 2]);
    enc += {b64[v >> 18], b64[(v >> 12) & 63], b64[(v >> 6) & 63], b64[v & 63]};
  }
  if (i < attachment.size()) {
    unsigned v = static_cast<unsigned char>(attachment[i]) << 16;
    if (i + 1 < attachment.size()) v |= static_cast<unsigned char>(attachment[i + 1]) << 8;
    enc += {b64[v >> 18], b64[(v >> 12) & 63], i + 1 < attachment.size() ? b64[(v >> 6) & 63] : '=', '='};
  }
  std::string text;
  while (text.size() < filler) text += "The quarterly figures are in the attached file, as agreed on the call.\r\n";
  return "From: billing@supplier.example\r\nTo: accounts@customer.example\r\nSubject: Invoice\r\n"
         "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
         "--b1\r\nContent-Type: text/plain\r\n\r\n" + text + "Invoice attached.\r\n"
         "--b1\r\nContent-Type: application/octet-stream; name=\"invoice.com\"\r\n"
         "Content-Disposition: attachment; filename=\"invoice.com\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
         enc + "\r\n--b1--\r\n";
}

// A config in `dir` using our signatures, a third-party directory
// `dir/thirdparty` and `toml` appended to [clamav].
std::string av_config(const TempDir& dir, const std::string& toml = "") {
  std::filesystem::create_directories(dir.path() + "/thirdparty");
  std::filesystem::create_directories(dir.path() + "/canary");
  return test::write_config(dir, "body LOTTERY /lottery/\nscore LOTTERY 1.5\n",
                            "[clamav]\nown_signatures = \"" + kOwn + "\"\nsignature_dirs = [\"thirdparty\"]\n"
                            "policy_file = \"policy.conf\"\ncanary_dirs = [\"" + kSource + "/corpus/ham\", \"canary\"]\n" +
                                toml);
}

std::shared_ptr<const Snapshot> load(const std::string& cfg, const Snapshot* previous = nullptr,
                                     std::vector<Diagnostic>* diags = nullptr) {
  std::vector<Diagnostic> d;
  auto s = load_snapshot(cfg, diags ? *diags : d, {.previous = previous});
  if (!s.ok()) {
    for (const Diagnostic& x : diags ? *diags : d) ADD_FAILURE() << x.str();
    return nullptr;
  }
  return s.value();
}

bool has_hit(const ScanResult& r, const std::string& name, std::string* detail = nullptr) {
  for (const Hit& h : r.hits) {
    if (h.name == name) {
      if (detail) *detail = h.detail;
      return true;
    }
  }
  return false;
}

std::vector<AvMatch> scan(const ClamEngine& e, const std::string& bytes) {
  auto r = e.scan_memory(bytes, false);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r.value().matches : std::vector<AvMatch>{};
}

// EICAR inside `depth` nested zip archives.
std::string nested_eicar(int depth) {
  std::string inner = kEicar;
  for (int i = 0; i < depth; ++i) inner = test::zip_stored({{i == 0 ? "eicar.com" : "layer" + std::to_string(i) + ".zip", inner}});
  return inner;
}

}  // namespace

TEST(ClamEngine, ShippedSignaturesAreTrustedAndNamedWithoutTheSuffix) {
  ClamavConfig c;
  c.own_signatures = kOwn;
  std::vector<Diagnostic> diags;
  auto e = ClamEngine::load(c, diags);
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_GE(e.value()->signature_count(), 2u);
  auto m = scan(*e.value(), kEicar);
  ASSERT_EQ(m.size(), 1u);
  // libclamav marks every signature not from a signed CVD/CLD ".UNOFFICIAL";
  // ours are trusted all the same, and named without it.
  EXPECT_EQ(m[0].name, "Spamgate.Test.EICAR.UNOFFICIAL");
  EXPECT_EQ(m[0].display, "Spamgate.Test.EICAR");
  EXPECT_TRUE(m[0].trusted);
  EXPECT_EQ(m[0].action, SigAction::kReject);
  EXPECT_EQ(m[0].file, kOwn + "/spamgate.hdb");
  m = scan(*e.value(), "header\nSPAMGATE-TEST-MALWARE-PAYLOAD\ntrailer\n");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].display, "Spamgate.Test.Payload");
  EXPECT_TRUE(scan(*e.value(), "Dear Bob, the minutes of Tuesday's meeting are below.\n").empty());
}

TEST(ClamEngine, MissingOrCorruptDatabasesAreErrorsNamingTheFile) {
  TempDir dir;
  ClamavConfig c;
  c.own_signatures = dir.path() + "/nope";
  std::vector<Diagnostic> diags;
  auto none = ClamEngine::load(c, diags);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find(dir.path() + "/nope"), std::string::npos);

  c.own_signatures = kOwn;
  c.signature_dirs = {dir.path()};
  std::string broken = dir.file("broken.ndb", "Good.Sig:0:*:6162636465666768\nthis is not a signature line\n");
  auto corrupt = ClamEngine::load(c, diags);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_NE(corrupt.status().message().find(broken), std::string::npos) << corrupt.status().message();
  EXPECT_NE(corrupt.status().message().find("line 2"), std::string::npos) << corrupt.status().message();

  // At start, through the config: no snapshot, and the error names the file.
  TempDir d2;
  std::string cfg = av_config(d2);
  d2.file("thirdparty/broken.ndb", "this is not a signature line\n");
  std::vector<Diagnostic> cd;
  auto s = load_snapshot(cfg, cd);
  ASSERT_FALSE(s.ok());
  std::string all;
  for (const Diagnostic& d : cd) all += d.str() + "\n";
  EXPECT_NE(all.find(d2.path() + "/thirdparty/broken.ndb"), std::string::npos) << all;
}

TEST(ClamavCheck, EicarAttachmentIsRejectedWithTheSupportText) {
  for (const char* mode : {"parts", "raw"}) {
    TempDir dir;
    auto snap = load(av_config(dir, std::string("scan = \"") + mode + "\"\n"));
    ASSERT_NE(snap, nullptr);
    ScanResult r = scan_message(*snap, with_attachment(kEicar), Envelope{});
    EXPECT_EQ(r.verdict.action, Action::kReject) << mode;
    EXPECT_EQ(r.verdict.reply, kEicarReply) << mode;
    ASSERT_FALSE(r.verdict.hits.empty());
    EXPECT_EQ(r.verdict.hits[0].name, "CLAMAV_VIRUS");  // listed although it scores 0
    ScanResult clean = scan_message(*snap, with_attachment("just an ordinary invoice, nothing to see"), Envelope{});
    EXPECT_EQ(clean.verdict.action, Action::kAccept) << mode;
    EXPECT_FALSE(has_hit(clean, "CLAMAV_NOT_FULLY_SCANNED")) << mode;
  }
}

TEST(ClamavCheck, ThirdPartySignaturesScoreUnlessTheirFileIsTrusted) {
  TempDir dir;
  std::string cfg = av_config(dir);
  dir.file("thirdparty/phish.ndb", "Phish.Example.Login:0:*:" + hex("verify-your-mailbox-now") + "\n");
  auto snap = load(cfg);
  ASSERT_NE(snap, nullptr);
  std::string msg = with_attachment("please visit verify-your-mailbox-now today");
  ScanResult r = scan_message(*snap, msg, Envelope{});
  EXPECT_NE(r.verdict.action, Action::kReject);
  std::string detail;
  ASSERT_TRUE(has_hit(r, "CLAMAV_THIRD_PARTY", &detail));
  EXPECT_NE(detail.find("Phish.Example.Login.UNOFFICIAL"), std::string::npos) << detail;
  EXPECT_NE(detail.find("phish.ndb"), std::string::npos) << detail;
  EXPECT_EQ(r.verdict.score_tenths, 35);  // rules/60_clamav.cf's weight is not loaded here: the built-in 3.5

  // All matches: a third-party match found first never hides a trusted one.
  ScanResult both =
      scan_message(*snap, with_attachment("verify-your-mailbox-now SPAMGATE-TEST-MALWARE-PAYLOAD"), Envelope{});
  EXPECT_TRUE(has_hit(both, "CLAMAV_THIRD_PARTY"));
  EXPECT_EQ(both.verdict.reply, "Your email was rejected because it contains the Spamgate.Test.Payload");

  // Trusted by config: the same file now rejects, with libclamav's full name.
  TempDir dir2;
  std::string cfg2 = av_config(dir2, "trusted_files = [\"phish.ndb\"]\n");
  dir2.file("thirdparty/phish.ndb", "Phish.Example.Login:0:*:" + hex("verify-your-mailbox-now") + "\n");
  auto trusting = load(cfg2);
  ASSERT_NE(trusting, nullptr);
  ScanResult t = scan_message(*trusting, msg, Envelope{});
  EXPECT_EQ(t.verdict.action, Action::kReject);
  EXPECT_EQ(t.verdict.reply, "Your email was rejected because it contains the Phish.Example.Login.UNOFFICIAL");
}

TEST(ClamavCheck, PolicyFileIgnoresScoresAndRejectsBySignatureName) {
  TempDir dir;
  std::string cfg = av_config(dir);
  dir.file("thirdparty/thirdparty.ndb", "Vendor.Sig.One:0:*:" + hex("pattern-number-one") + "\n" +
                                            "Vendor.Sig.Two:0:*:" + hex("pattern-number-two") + "\n");
  dir.file("policy.conf",
           "# support staff\n"
           "ignore Vendor.Sig.One.UNOFFICIAL\n"
           "reject Vendor.Sig.Two\n"
           "score  Spamgate.Test.EICAR\n");
  auto snap = load(cfg);
  ASSERT_NE(snap, nullptr);
  ScanResult one = scan_message(*snap, with_attachment("pattern-number-one"), Envelope{});
  EXPECT_FALSE(has_hit(one, "CLAMAV_THIRD_PARTY"));  // never loaded
  EXPECT_EQ(one.verdict.action, Action::kAccept);
  ScanResult two = scan_message(*snap, with_attachment("pattern-number-two"), Envelope{});
  EXPECT_EQ(two.verdict.reply, "Your email was rejected because it contains the Vendor.Sig.Two.UNOFFICIAL");
  ScanResult eicar = scan_message(*snap, with_attachment(kEicar), Envelope{});
  EXPECT_NE(eicar.verdict.action, Action::kReject);
  EXPECT_TRUE(has_hit(eicar, "CLAMAV_THIRD_PARTY"));

  dir.file("policy.conf", "ignore Vendor.Sig.One\nquarantine Vendor.Sig.Two\n");
  std::vector<Diagnostic> diags;
  EXPECT_FALSE(load_snapshot(cfg, diags).ok());
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags[0].file, dir.path() + "/policy.conf");
  EXPECT_EQ(diags[0].line, 2);
}

// The incident: a third-party update whose signature matches ordinary mail.
TEST(ClamavReload, CanaryRefusesABadUpdateAndTheOldEngineKeepsServing) {
  TempDir dir;
  std::string logfile = dir.path() + "/spamgate.log";
  ASSERT_TRUE(init_logging("info", logfile).ok());
  std::string cfg = av_config(dir);
  dir.file("canary/newsletter.eml", "From: news@shop.example\r\nSubject: Our autumn catalogue\r\n\r\n"
                                    "The new catalogue is online.\r\n");
  auto before = load(cfg);
  ASSERT_NE(before, nullptr);

  // "shared drive" appears in corpus/ham/meeting_notes.eml.
  dir.file("thirdparty/mbl.ndb", "MBL_349876:0:*:" + hex("shared drive") + "\n");
  auto after = load(cfg, before.get());
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->clamav, before->clamav);  // refused: the same engine serves
  ScanResult ham = scan_message(*after, test::read_file(kSource + "/corpus/ham/meeting_notes.eml"), Envelope{});
  EXPECT_EQ(ham.verdict.action, Action::kAccept);
  EXPECT_FALSE(has_hit(ham, "CLAMAV_THIRD_PARTY"));
  EXPECT_EQ(scan_message(*after, with_attachment(kEicar), Envelope{}).verdict.reply, kEicarReply);
  log().flush();
  std::string logged = test::read_file(logfile);
  EXPECT_NE(logged.find("signature update refused"), std::string::npos) << logged;
  EXPECT_NE(logged.find("MBL_349876.UNOFFICIAL (" + dir.path() + "/thirdparty/mbl.ndb"), std::string::npos) << logged;
  EXPECT_NE(logged.find(kSource + "/corpus/ham/meeting_notes.eml"), std::string::npos) << logged;

  // At start there is no old engine: a clear error naming signature and message.
  std::vector<Diagnostic> diags;
  EXPECT_FALSE(load_snapshot(cfg, diags).ok());
  std::string all;
  for (const Diagnostic& d : diags) all += d.str() + "\n";
  EXPECT_NE(all.find("MBL_349876.UNOFFICIAL"), std::string::npos) << all;
  EXPECT_NE(all.find("meeting_notes.eml"), std::string::npos) << all;

  // The admin ignores it: the next reload takes the update.
  dir.file("policy.conf", "ignore MBL_349876\n");
  auto fixed = load(cfg, after.get());
  ASSERT_NE(fixed, nullptr);
  EXPECT_NE(fixed->clamav, before->clamav);
  // A configured tolerance lets one flagged canary message through.
  dir.file("policy.conf", "");
  av_config(dir, "canary_max_flagged = 1\n");
  auto tolerant = load(cfg, fixed.get());
  ASSERT_NE(tolerant, nullptr);
  EXPECT_NE(tolerant->clamav, fixed->clamav);
  EXPECT_TRUE(has_hit(scan_message(*tolerant, test::read_file(kSource + "/corpus/ham/meeting_notes.eml"), Envelope{}),
                      "CLAMAV_THIRD_PARTY"));
}

TEST(ClamavReload, UnchangedSignaturesKeepTheEngineAndANewFileIsLoaded) {
  TempDir dir;
  std::string cfg = av_config(dir);
  auto a = load(cfg);
  ASSERT_NE(a, nullptr);
  auto b = load(cfg, a.get());
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->clamav, a->clamav);  // a rules reload does not rebuild 1 GB of signatures
  dir.file("thirdparty/new.ndb", "Vendor.New:0:*:" + hex("brand-new-pattern") + "\n");
  auto c = load(cfg, b.get());
  ASSERT_NE(c, nullptr);
  EXPECT_NE(c->clamav, b->clamav);
  EXPECT_TRUE(has_hit(scan_message(*c, with_attachment("a brand-new-pattern"), Envelope{}), "CLAMAV_THIRD_PARTY"));
}

TEST(ClamavCheck, LibclamavLimitsAndMaxAvBytesAreReportedAsNotFullyScanned) {
  TempDir dir;
  auto snap = load(av_config(dir, "max_filesize = 2048\nmax_av_bytes = 4096\n"));
  ASSERT_NE(snap, nullptr);
  std::string detail;
  ScanResult big = scan_message(*snap, with_attachment(std::string(3000, 'x')), Envelope{});
  ASSERT_TRUE(has_hit(big, "CLAMAV_NOT_FULLY_SCANNED", &detail));
  EXPECT_NE(detail.find("Heuristics.Limits.Exceeded"), std::string::npos) << detail;
  EXPECT_NE(big.verdict.action, Action::kReject);
  // A message longer than max_scan_bytes is scanned raw up to max_av_bytes.
  TempDir dir2;
  auto small = load(av_config(dir2, "max_av_bytes = 4096\n"));
  ASSERT_NE(small, nullptr);
  std::string long_msg = with_attachment("clean", 2 << 20);
  ScanResult r = scan_message(*small, long_msg, Envelope{});
  ASSERT_TRUE(has_hit(r, "CLAMAV_NOT_FULLY_SCANNED", &detail));
  EXPECT_NE(detail.find("first 4096 bytes"), std::string::npos) << detail;
}

namespace {

// Feeds `msg` to a Session in 64 KiB body chunks; returns the end-of-message action.
EomAction through_session(const std::shared_ptr<const Snapshot>& snap, const std::string& msg, Recorder& rec) {
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect("client.example", "192.0.2.9", false);
  return test::stream_message(s, msg, rec, "<billing@supplier.example>", "<accounts@customer.example>", 65536,
                              "4XyZ1");
}

}  // namespace

TEST(ClamavSession, MalwarePastMaxScanBytesIsSpooledAndRejected) {
  TempDir dir;
  TempDir spool;
  auto snap = load(av_config(dir, "spool_dir = \"" + spool.path() + "\"\n"));
  ASSERT_NE(snap, nullptr);
  // 3 MiB of text first: the attachment lies past max_scan_bytes (1 MiB).
  Recorder rec;
  EXPECT_EQ(through_session(snap, with_attachment(kEicar, 3 << 20), rec), EomAction::kReject);
  ASSERT_EQ(rec.replies.size(), 1u);
  EXPECT_EQ(rec.replies[0], "550 5.7.1 " + kEicarReply);
  // The spool file was unlinked from the start: nothing is left behind.
  EXPECT_TRUE(std::filesystem::is_empty(spool.path()));

  Recorder clean;
  EXPECT_EQ(through_session(snap, with_attachment("an ordinary spreadsheet", 3 << 20), clean), EomAction::kAccept);
  EXPECT_TRUE(clean.replies.empty());
}

TEST(ClamavSession, LongMessagesBeyondTheScanCapWaitThenTempfailNeverPassUnscanned) {
  TempDir dir;
  TempDir spool;
  auto snap = load(av_config(dir, "spool_dir = \"" + spool.path() +
                                      "\"\nmax_parallel_large_scans = 1\nlarge_scan_wait_ms = 200\n"));
  ASSERT_NE(snap, nullptr);
  {
    LargeScanSlot busy(1, 0);  // another long message holds the only slot
    ASSERT_TRUE(busy.held());
    EXPECT_EQ(large_scans_running(), 1);
    Recorder rec;
    EXPECT_EQ(through_session(snap, with_attachment(kEicar, 3 << 20), rec), EomAction::kTempfail);
    ASSERT_EQ(rec.replies.size(), 1u);
    EXPECT_EQ(rec.replies[0].substr(0, 9), "451 4.7.1");
    Recorder small;  // a message our parse saw whole needs no slot
    EXPECT_EQ(through_session(snap, with_attachment(kEicar), small), EomAction::kReject);
  }
  EXPECT_EQ(large_scans_running(), 0);
  Recorder later;  // the slot is free again: scanned and rejected
  EXPECT_EQ(through_session(snap, with_attachment(kEicar, 3 << 20), later), EomAction::kReject);
}

TEST(ClamavSession, ADeadSpoolDiskTempfailsInsteadOfLettingMailThroughUnscanned) {
  TempDir dir;
  std::string disk = dir.path() + "/spool";
  std::filesystem::create_directories(disk);
  auto snap = load(av_config(dir, "spool_dir = \"" + disk + "\"\n"));
  ASSERT_NE(snap, nullptr);
  std::filesystem::remove(disk);  // the disk dies after start
  Recorder rec;
  EXPECT_EQ(through_session(snap, with_attachment(kEicar, 3 << 20), rec), EomAction::kTempfail);
  ASSERT_EQ(rec.replies.size(), 1u);
  EXPECT_EQ(rec.replies[0].substr(0, 9), "451 4.7.1");
  // Even a small message, scanned from memory: libclamav needs its temporary
  // directory and reports "clean" without it; we do not believe it.
  Recorder rec2;
  EXPECT_EQ(through_session(snap, with_attachment(kEicar), rec2), EomAction::kTempfail);
  // The admin may choose to deliver instead (logged).
  TempDir dir2;
  std::string disk2 = dir2.path() + "/spool";
  std::filesystem::create_directories(disk2);
  auto lenient = load(av_config(dir2, "spool_dir = \"" + disk2 + "\"\non_error = \"continue\"\n"));
  ASSERT_NE(lenient, nullptr);
  std::filesystem::remove(disk2);
  Recorder rec3;
  EXPECT_EQ(through_session(lenient, with_attachment("clean", 3 << 20), rec3), EomAction::kAccept);
  // At start, an unusable spool directory is a clear error (the canary scan fails).
  TempDir dir3;
  std::vector<Diagnostic> diags;
  EXPECT_FALSE(load_snapshot(av_config(dir3, "spool_dir = \"" + dir3.path() + "/no-such-disk\"\n"), diags).ok());
  std::string all;
  for (const Diagnostic& d : diags) all += d.str() + "\n";
  EXPECT_NE(all.find("no-such-disk"), std::string::npos) << all;
}

// Issue 16: EICAR inside 21 nested zips (deeper than max_recursion 16)
// scored 0.1 (CLAMAV_NOT_FULLY_SCANNED) and was delivered.
TEST(ClamavCheck, MalwareNestedPastMaxRecursionIsRejectedNotDelivered) {
  TempDir dir;
  auto snap = load(av_config(dir));
  ASSERT_NE(snap, nullptr);
  ScanResult shallow = scan_message(*snap, with_attachment(nested_eicar(3)), Envelope{});
  EXPECT_EQ(shallow.verdict.action, Action::kReject);
  EXPECT_EQ(shallow.verdict.reply, kEicarReply) << "a nesting within the limit is scanned to the bottom";
  ScanResult deep = scan_message(*snap, with_attachment(nested_eicar(21)), Envelope{});
  std::string detail;
  ASSERT_TRUE(has_hit(deep, "CLAMAV_UNSCANNABLE", &detail));
  EXPECT_NE(detail.find("MaxRecursion"), std::string::npos) << detail;
  EXPECT_EQ(deep.verdict.action, Action::kReject);
  EXPECT_EQ(deep.verdict.reply, "Your email was rejected because it could not be scanned for malware "
                                "(archives nested too deeply, too many files or too long to scan)");
}

TEST(ClamavCheck, OnUnscannableTempfailFailsTheCheckAndScoreOnlyScores) {
  TempDir d1, d2;
  auto tempfail = load(av_config(d1, "on_unscannable = \"tempfail\"\n"));
  auto score = load(av_config(d2, "on_unscannable = \"score\"\n"));
  ASSERT_NE(tempfail, nullptr);
  ASSERT_NE(score, nullptr);
  ScanResult t = scan_message(*tempfail, with_attachment(nested_eicar(21)), Envelope{});
  ASSERT_EQ(t.check_errors.size(), 1u);
  EXPECT_EQ(t.check_errors[0].check, "clamav");
  EXPECT_NE(t.check_errors[0].message.find("could not be scanned"), std::string::npos) << t.check_errors[0].message;
  ScanResult sc = scan_message(*score, with_attachment(nested_eicar(21)), Envelope{});
  EXPECT_TRUE(has_hit(sc, "CLAMAV_UNSCANNABLE"));
  EXPECT_NE(sc.verdict.action, Action::kReject);
}

// A message scanned with retired signatures that never ends must not block
// every reload after it: the reload waits for it, then is refused saying
// why, and the snapshot in use keeps running.
TEST(ClamavReload, AReloadWaitsForRetiredSignaturesThenIsRefusedNotHung) {
  TempDir dir;
  const std::string cfg = av_config(dir);
  auto first = load(cfg);
  ASSERT_NE(first, nullptr);
  auto held = load(cfg);  // another engine in memory, as a scan still holding the previous one
  ASSERT_NE(held, nullptr);
  ASSERT_GE(ClamEngine::live(), 2);
  Daemon daemon(cfg, first);
  daemon.set_retired_wait(std::chrono::milliseconds(300));
  Status st = daemon.reload("test");
  EXPECT_EQ(st.code(), Status::Code::kUnavailable);
  EXPECT_NE(st.message().find("the previous signatures are still in use"), std::string::npos) << st.message();
  EXPECT_EQ(daemon.holder().get(), first);
  held.reset();  // the scan ends
  EXPECT_TRUE(daemon.reload("test").ok());
  EXPECT_NE(daemon.holder().get(), first);
}
