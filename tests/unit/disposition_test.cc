// disposition_test.cc - decide() (disposition.h), and the golden table:
// the milter (a Session driven as libmilter drives it) and `spamgate scan`
// (the binary, with the same sender options) give byte-identical results
// for messages x sender classes x failure cases.
#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dns_server.h"
#include "milter/session.h"
#include "session_recorder.h"
#include "spamgate/pipeline.h"
#include "test_util.h"

namespace spamgate {
namespace {

const std::string kSource = SPAMGATE_SOURCE_DIR;

// --- decide(): precedence, one rule at a time --------------------------------

constexpr const char* kRules =
    "body SPAMMY /spammy/\nscore SPAMMY 7.2\n"
    "body NICE /thanks/\nscore NICE -3\n";

struct Decided {
  std::shared_ptr<const Snapshot> snap;
  ScanResult scan;
};

Decided scanned(const std::string& msg, const std::string& toml = "") {
  Decided d{test::snapshot_with(kRules, nullptr, toml), {}};
  EXPECT_NE(d.snap, nullptr);
  if (d.snap) d.scan = scan_message(*d.snap, msg, Envelope{});
  return d;
}

OutboundResult held(OutboundResult::State st = OutboundResult::State::kHeld) {
  OutboundResult ob;
  ob.state = st;
  ob.hold = HoldInfo{"carol@customer.example", "messages_per_minute passed", 0, 0};
  ob.account = "carol@customer.example";
  ob.tag = "0123abcd";
  return ob;
}

const Sender kInbound{};
const Sender kAuthenticated{SenderClass::kAuthenticated, false};
const Sender kLocal{SenderClass::kTrusted, true};


// Autolearn judges a message by the rules alone: a classifier's band never
// confirms itself (the LR bands once counted as rules here).
TEST(Decide, AutolearnDoesNotCountTheClassifiersBands) {
  auto snap = test::snapshot_with(std::string(kRules) + "score LR_95 2\n", nullptr,
                                  "[bayes]\npath = \"bayes\"\nautolearn = true\nautolearn_spam_above = 8\n");
  ASSERT_NE(snap, nullptr);
  ScanResult scan = scan_message(*snap, "Subject: hi\n\nspammy\n", Envelope{});
  Hit lr("LR_95");
  lr.probability = 0.97;
  scan.verdict = score_verdict(*snap, {Hit("SPAMMY"), lr});
  ASSERT_EQ(scan.verdict.score_tenths, 92);  // 7.2 + 2: tagged ...
  Disposition d = decide(*snap, scan, kInbound, {});
  EXPECT_EQ(d.action, Action::kTag);
  EXPECT_FALSE(d.autolearn.has_value());  // ... but the rules alone (7.2) are not over 8
  scan.verdict = score_verdict(*snap, {Hit("SPAMMY"), Hit("SPAMMY"), lr});
  auto more = test::snapshot_with(std::string(kRules) + "score LR_95 2\n", nullptr,
                                  "[bayes]\npath = \"bayes\"\nautolearn = true\nautolearn_spam_above = 7\n");
  ASSERT_NE(more, nullptr);
  EXPECT_EQ(decide(*more, scan, kInbound, {}).autolearn, LearnClass::kSpam);  // 7.2 over 7
}

TEST(Decide, SpamFromTheInternetIsTaggedAndHamAccepted) {
  Decided spam = scanned("Subject: hi\n\nspammy\n");
  Disposition d = decide(*spam.snap, spam.scan, kInbound, {});
  EXPECT_EQ(d.action, Action::kTag);
  EXPECT_TRUE(d.reply.empty());
  EXPECT_EQ(d.outcome, Metrics::Outcome::kTag);
  EXPECT_EQ(d.why, "score 7.2 is greater than 5");
  EXPECT_NE(apply_plan("Subject: hi\n\nspammy\n", d.plan).find("Subject: [SPAM] - hi\n"), std::string::npos);
  Decided ham = scanned("Subject: hi\n\nthanks\n");
  EXPECT_EQ(decide(*ham.snap, ham.scan, kInbound, {}).action, Action::kAccept);
}

// reject_threshold: inbound mail over it is refused with the score and the
// support URL; between the two levels it is tagged; outgoing mail never.
TEST(Decide, OverTheRejectThresholdInboundSpamIsRefused) {
  Decided spam = scanned("Subject: hi\n\nspammy spammy\n", "reject_threshold = 7\n");
  Disposition d = decide(*spam.snap, spam.scan, kInbound, {});
  EXPECT_EQ(d.action, Action::kReject);
  EXPECT_EQ(d.outcome, Metrics::Outcome::kReject);
  EXPECT_EQ(d.reply.str(), "550 5.7.1 Your email was rejected as spam with a score of 7.2. If you feel this was in error, "
                           "please visit https://help.example.net/spam");
  EXPECT_EQ(d.why, "score 7.2 is greater than the reject threshold 7");
  EXPECT_TRUE(d.plan.edits.empty());
  EXPECT_EQ(decide(*spam.snap, spam.scan, kAuthenticated, {}).action, Action::kAccept);  // outgoing: never refused
  Decided between = scanned("Subject: hi\n\nspammy\n", "reject_threshold = 7.5\n");
  EXPECT_EQ(decide(*between.snap, between.scan, kInbound, {}).action, Action::kTag);
  std::vector<Diagnostic> diags;
  EXPECT_EQ(test::snapshot_with(kRules, &diags, "reject_threshold = 5\n"), nullptr);  // not above the tag level
  ASSERT_FALSE(diags.empty());
  EXPECT_NE(diags[0].message.find("'reject_threshold' must be greater than 'threshold' (5)"), std::string::npos)
      << diags[0].str();
}

TEST(Decide, ACheckFailingWithPolicyTempfailGives451AndNoEditsNoLearning) {
  Decided r = scanned("Subject: hi\n\nspammy\n",
                      "[milter]\non_check_error_by_check = { rules = \"tempfail\" }\n"
                      "[bayes]\npath = \"bayes\"\nautolearn = true\n");
  r.scan.check_errors.push_back({"rules", "match limit", false});
  Disposition d = decide(*r.snap, r.scan, kInbound, {});
  EXPECT_EQ(d.action, Action::kTempfail);
  EXPECT_EQ(d.reply.str(), "451 4.7.1 Temporary failure in spam scanning, please try again later");
  EXPECT_TRUE(d.plan.edits.empty());
  EXPECT_FALSE(d.autolearn.has_value());
  EXPECT_EQ(d.outcome, Metrics::Outcome::kTempfail);
  EXPECT_EQ(milter_answer(d.action), MilterAnswer::kTempfail);
  // Another check's failure under the default policy (continue) changes nothing.
  r.scan.check_errors = {{"dnsbl", "timeout", false}};
  EXPECT_EQ(decide(*r.snap, r.scan, kInbound, {}).action, Action::kTag);
}

TEST(Decide, AForcedRejectWinsOverTheScoreAndCarriesItsReply) {
  Decided r = scanned("Subject: hi\n\nthanks\n");
  r.scan.verdict.action = Action::kReject;
  r.scan.verdict.reply = "Your email was rejected because it contains the Eicar-Test-Signature";
  Disposition d = decide(*r.snap, r.scan, kInbound, {});
  EXPECT_EQ(d.action, Action::kReject);
  EXPECT_EQ(d.reply.str(), "550 5.7.1 Your email was rejected because it contains the Eicar-Test-Signature");
  EXPECT_TRUE(d.plan.edits.empty());
}

TEST(Decide, AHeldSenderGets451OrTheHoldQueueWhichOutranksFailuresAndRejects) {
  Decided r = scanned("Subject: hi\n\nspammy\n", "[milter]\non_check_error_by_check = { rules = \"tempfail\" }\n");
  Disposition d = decide(*r.snap, r.scan, kAuthenticated, held());
  EXPECT_EQ(d.action, Action::kHold);
  EXPECT_EQ(d.reply.str(), "451 4.7.1 " + std::string(reply_text::kHeld));
  EXPECT_EQ(d.outbound_note, " outbound=held:tempfail");
  EXPECT_EQ(d.outcome, Metrics::Outcome::kTempfail);
  // Local submission is never refused: its message goes to the hold queue,
  // with the sender tag, even when a check failed or a reject was forced.
  r.scan.check_errors.push_back({"rules", "match limit", false});
  r.scan.verdict.action = Action::kReject;
  r.scan.verdict.reply = "no";
  Disposition q = decide(*r.snap, r.scan, kLocal, held(OutboundResult::State::kNewHold));
  EXPECT_EQ(q.action, Action::kQuarantine);
  EXPECT_EQ(q.quarantine_reason, "spamgate: carol@customer.example held: messages_per_minute passed");
  EXPECT_EQ(q.outbound_note, " outbound=hold:quarantine");
  EXPECT_EQ(q.hold_account, "carol@customer.example");
  EXPECT_EQ(milter_answer(q.action), MilterAnswer::kAccept);
  ASSERT_FALSE(q.plan.edits.empty());
  EXPECT_EQ(q.plan.edits.back().name, "X-Spamgate-Sender");
  EXPECT_EQ(q.plan.edits.back().value, "0123abcd");
}

TEST(Decide, AnOutboundStoreFailureFollowsTheOutboundPolicyButNeverRefusesLocalMail) {
  Decided r = scanned("Subject: hi\n\nthanks\n", "[milter]\non_check_error_by_check = { outbound = \"tempfail\" }\n");
  OutboundResult down;
  down.state = OutboundResult::State::kError;
  down.error = "redis down";
  EXPECT_EQ(decide(*r.snap, r.scan, kAuthenticated, down).action, Action::kTempfail);
  Disposition local = decide(*r.snap, r.scan, kLocal, down);
  EXPECT_EQ(local.action, Action::kAccept);
  EXPECT_EQ(local.outbound_note, " outbound=error");
}

TEST(Decide, OutgoingSpamIsNeverSubjectTaggedAndPolicyLogOnlyRemovesForgedFields) {
  const std::string msg = "Subject: hi\nX-Spam-Flag: YES\n\nspammy\n";
  Decided r = scanned(msg);
  Disposition d = decide(*r.snap, r.scan, kAuthenticated, {});  // authenticated: policy log by default
  EXPECT_EQ(d.action, Action::kAccept);
  EXPECT_EQ(d.why, "spam score, but outgoing mail is not tagged");
  EXPECT_EQ(apply_plan(msg, d.plan), "Subject: hi\n\nspammy\n");
  EXPECT_FALSE(d.autolearn.has_value()) << "only inbound mail is learned";
}

TEST(Decide, SkippedMailIsNotScannedButForgedFieldsGo) {
  auto snap = test::snapshot_with(kRules, nullptr, "[milter]\ntrusted = \"skip\"\n");
  ASSERT_NE(snap, nullptr);
  const std::string msg = "Subject: hi\nX-Spam-Status: Yes\n\nspammy\n";
  Envelope env;
  Handled h = test::handle(*snap, msg, kLocal, env);
  EXPECT_FALSE(h.scan.has_value());
  EXPECT_EQ(h.disposition.action, Action::kSkip);
  EXPECT_FALSE(h.disposition.scored);
  EXPECT_EQ(apply_plan(msg, h.disposition.plan), "Subject: hi\n\nspammy\n");
}

// --- the golden table: milter == scan ------------------------------------------

// Who sent the message: the milter session's view and the scan options
// that say the same.
struct Who {
  std::string name;
  std::string ip, helo, from, login;
  bool local = false;
  std::vector<std::string> args() const {
    std::vector<std::string> a = {"--client-ip", ip, "--helo", helo, "--mail-from", from,
                                  "--rcpt", "bob@example.net", "--queue-id", "GOLDEN1"};
    if (!login.empty()) a.insert(a.end(), {"--login", login});
    if (local) a.push_back("--local");
    return a;
  }
};

const std::vector<Who> kSenders = {
    {"inbound", "198.51.100.5", "client.example", "ceo@dkim.test", "", false},
    {"authenticated", "203.0.113.5", "laptop.example", "alice@customer.example", "alice@customer.example", false},
    {"authenticated, held", "203.0.113.6", "laptop.example", "carol@customer.example", "carol@customer.example", false},
    {"trusted network", "10.1.2.3", "app.customer.example", "dave@customer.example", "", false},
    {"local submission, held", "127.0.0.1", "localhost", "carol@customer.example", "", true},
};

// What the MTA ends up with: its answer, the reply, the hold queue reason
// and (when accepted) the message with the edits applied.
std::string render(const std::string& answer, const std::string& reply, const std::string& quarantine,
                   const std::string& delivered) {
  return "answer: " + answer + "\nreply: " + reply + "\nquarantine: " + quarantine + "\n\n" +
         (answer == "accept" ? delivered : std::string());
}

// The message through a Session as libmilter drives it: connect, HELO, MAIL
// FROM (a held sender may be refused there), RCPT, each header with its
// leading space (SMFIP_HDR_LEADSPC) folded with LF, end of headers, the body
// in 64 KiB chunks until the session asks to skip, end of message. The
// recorded edits are applied to the message as the MTA applies them.
// `skip`: as with an MTA that offers SMFIP_SKIP but not SMFIP_NR_BODY (the
// session's "enough" is answered with a skip); without it, as Postfix and
// Sendmail 8.17 drive us (no replies to body chunks: the whole body comes).
std::string through_milter(const std::shared_ptr<const Snapshot>& snap, const std::string& msg, const Who& who,
                           bool skip) {
  SnapshotHolder holder(snap);
  Session s(holder, "c1");
  s.connect(who.local ? "localhost" : "client.example", who.ip, who.local);
  s.helo(who.helo);
  s.set_leading_space(true);
  if (auto refused = s.mail_from("<" + who.from + ">", who.login, "")) return render("tempfail", "451 4.7.1 " + *refused, "", "");
  s.rcpt_to("<bob@example.net>");
  HeaderBlock hb = split_header_block(msg, static_cast<std::size_t>(-1));
  for (const RawField& f : hb.fields) {
    std::string value(f.value);
    value.erase(std::remove(value.begin(), value.end(), '\r'), value.end());
    s.header(std::string(f.name), value);
  }
  s.end_of_headers();
  for (std::size_t i = hb.body_offset; i < msg.size(); i += 65536) {
    std::string part = msg.substr(i, 65536);
    if (!s.body(reinterpret_cast<const unsigned char*>(part.data()), part.size()) && skip) {
      s.body_skipped();
      break;
    }
  }
  test::Recorder rec;
  EomAction a = s.end_of_message("GOLDEN1", rec);
  EXPECT_LE(rec.replies.size(), 1u);
  EXPECT_LE(rec.quarantined.size(), 1u);
  Plan plan;
  for (const test::Edit& e : rec.edits) {
    HeaderEdit h;
    h.op = e.op == "delete" ? HeaderEdit::Op::kDelete
           : e.op == "change" ? HeaderEdit::Op::kChange
           : e.op == "insert" ? HeaderEdit::Op::kInsert
                              : HeaderEdit::Op::kAdd;
    h.name = e.name;
    h.index = e.index;
    EXPECT_TRUE(h.op == HeaderEdit::Op::kDelete || e.value.rfind(' ', 0) == 0) << "LEADSPC: " << e.name;
    h.value = h.op == HeaderEdit::Op::kDelete ? "" : e.value.substr(1);
    plan.edits.push_back(std::move(h));
  }
  const char* answer = a == EomAction::kReject ? "reject" : a == EomAction::kTempfail ? "tempfail" : "accept";
  return render(answer, rec.replies.empty() ? "" : rec.replies[0], rec.quarantined.empty() ? "" : rec.quarantined[0],
                apply_plan(msg, plan));
}

// Runs the spamgate binary; its stdout ("" and a test failure when it fails).
std::string run(const std::vector<std::string>& args) {
  std::string cmd = SPAMGATE_BINARY;
  for (const std::string& a : args) {
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    cmd += " " + q + "'";
  }
  cmd += " 2>/dev/null";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[65536];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int rc = pclose(p);
  EXPECT_EQ(rc, 0) << cmd;
  return out;
}

// The same messages through `spamgate scan --network`: --json for the
// answer, reply and hold queue, --rewrite (FILE.out) for the bytes.
std::vector<std::string> through_scan(const std::string& cfg, const std::vector<std::string>& files, const Who& who) {
  std::vector<std::string> base = {"scan", "--config", cfg, "--network", "--quiet"};
  const std::vector<std::string> sender = who.args();
  base.insert(base.end(), sender.begin(), sender.end());
  std::vector<std::string> json_args = base, rewrite_args = base;
  json_args.push_back("--json");
  rewrite_args.push_back("--rewrite");
  for (const std::string& f : files) {
    json_args.push_back(f);
    rewrite_args.push_back(f);
  }
  std::istringstream lines(run(json_args));
  run(rewrite_args);
  std::vector<std::string> out;
  std::string line;
  for (const std::string& f : files) {
    if (!std::getline(lines, line)) {
      ADD_FAILURE() << "scan printed no line for " << f;
      out.emplace_back();
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_EQ(j.value("file", ""), f);
    out.push_back(render(j.value("milter", "?"), j.value("reply", ""), j.value("quarantine", ""),
                         test::read_file(f + ".out")));
  }
  return out;
}

struct FailureCase {
  std::string name;
  std::string toml;  // more config
};

// The config every case shares: rules with a regex that backtracks past the
// match limit on one message (a check error), ClamAV with our own
// signatures, DMARC p=reject enforced, the outbound guard with carol held,
// loopback DNS.
std::string base_toml(const std::string& dns, const std::string& extra) {
  return "[dns]\nnameserver = \"" + dns + "\"\ntimeout_ms = 10000\nbudget_ms = 30000\n" +
         "[limits]\npcre_match_limit = 1000\n"
         "[auth]\ndmarc_reject_policy = \"reject\"\n"
         "[clamav]\nown_signatures = \"" + kSource + "/conf/signatures\"\n" + extra;
}

TEST(DispositionGolden, MilterAndScanGiveByteIdenticalResults) {
  test::DnsServer dns({"--txt-record=dkim.test,v=spf1 ip4:192.0.2.0/24 -all",
                 "--txt-record=_dmarc.dkim.test,v=DMARC1; p=reject"});
  if (!dns.up()) GTEST_SKIP() << "dnsmasq not installed";
  const std::string rules =
      "body LOTTERY /lottery|winner/i\nscore LOTTERY 6\n"
      "body SLOW_RULE /(a+)+$/x\ndescribe SLOW_RULE backtracks past pcre_match_limit\n";
  const std::string milter_common =
      "[milter]\ntrusted_networks = [\"10.0.0.0/8\"]\ninbound = \"tag\"\n";
  const std::string outbound_common =
      "hold_after_spam = 0\noverrides_file = \"limits.conf\"\n";
  const std::vector<FailureCase> cases = {
      {"no failure", milter_common + "on_check_error_by_check = { rules = \"tempfail\" }\n"
                     "[outbound]\n" + outbound_common},
      {"stores down (bayes and outbound on a dead redis)",
       milter_common + "on_check_error_by_check = { bayes = \"tempfail\", outbound = \"tempfail\" }\n"
                       "[bayes]\nstore = \"redis\"\nredis = \"127.0.0.1:1\"\nredis_timeout_ms = 2000\n"
                       "[outbound]\n" + outbound_common},
      {"holds to the hold queue, policy tag for every class",
       "[milter]\ntrusted_networks = [\"10.0.0.0/8\"]\nauthenticated = \"tag\"\ntrusted = \"tag\"\n"
       "[outbound]\nhold_action = \"quarantine\"\n" + outbound_common},
      {"trusted mail skipped", "[milter]\ntrusted_networks = [\"10.0.0.0/8\"]\ntrusted = \"skip\"\n"
                               "[outbound]\n" + outbound_common},
  };
  // The messages: in files, since `scan` reads files (and writes FILE.out).
  test::TempDir msgs;
  std::vector<std::string> files;
  for (const char* p : {"/corpus/ham/meeting_notes.eml", "/corpus/spam/lottery_winner.eml",
                        "/corpus/malware/eicar_attachment.eml", "/corpus/edge/forged_xspam_headers.eml"}) {
    std::string name = std::filesystem::path(p).filename().string();
    files.push_back(msgs.file(name, test::read_file(kSource + p)));
  }
  files.push_back(msgs.file("dmarc_forged.eml",
                            "From: The CEO <ceo@dkim.test>\r\nTo: bob@example.net\r\nSubject: wire transfer\r\n"
                            "Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <ceo-1@example>\r\n\r\n"
                            "Please pay the invoice today.\r\n"));
  files.push_back(msgs.file("backtracking.eml", "From: a@outside.example\r\nTo: bob@example.net\r\nSubject: aaa\r\n"
                                                "Message-ID: <aaa@outside.example>\r\n\r\n"
                                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\r\n"));
  files.push_back(msgs.file("large_attachment.eml", [] {
    // Past max_scan_bytes (1 MiB): the milter keeps the first part and spools the rest for ClamAV.
    std::string m = "From: a@outside.example\r\nTo: bob@example.net\r\nSubject: report\r\n"
                    "Message-ID: <big@outside.example>\r\nMIME-Version: 1.0\r\n"
                    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n";
    for (int i = 0; i < 40000; ++i) m += "quarterly figures, line by line, nothing to see\r\n";
    return m + "--b--\r\n";
  }()));
  std::map<std::string, int> answers;
  int compared = 0;
  for (const FailureCase& fc : cases) {
    test::TempDir dir;
    dir.file("limits.conf",
             "carol@customer.example messages_per_minute=1\n"
             "alice@customer.example messages_per_minute=100000 messages_per_hour=100000 messages_per_day=100000\n"
             "dave@customer.example messages_per_minute=100000 messages_per_hour=100000 messages_per_day=100000\n"
             "domain:customer.example messages_per_minute=100000 messages_per_hour=100000 messages_per_day=100000\n");
    const std::string cfg = test::write_config(dir, rules, base_toml(dns.address(), fc.toml));
    std::vector<Diagnostic> diags;
    auto loaded = load_snapshot(cfg, diags, {.network = true});
    ASSERT_TRUE(loaded.ok()) << fc.name << ": " << (diags.empty() ? loaded.status().message() : diags[0].str());
    auto snap = loaded.value();
    // Carol passes her limit of one message a minute: she is held.
    if (snap->outbound && fc.name.find("stores down") == std::string::npos) {
      OutboundSender carol{"carol@customer.example", "customer.example"};
      std::optional<HoldInfo> hold;
      OutboundCounts counts;
      for (int i = 0; i < 2 && !hold; ++i)
        ASSERT_TRUE(snap->outbound->count_message(carol, 1, false, unix_seconds(), "", "", counts, hold).ok());
      ASSERT_TRUE(hold.has_value()) << fc.name;
    }
    for (const Who& who : kSenders) {
      std::vector<std::string> milter, skipping;
      for (const std::string& f : files) {
        milter.push_back(through_milter(snap, test::read_file(f), who, false));
        skipping.push_back(through_milter(snap, test::read_file(f), who, true));
      }
      std::vector<std::string> scan = through_scan(cfg, files, who);
      ASSERT_EQ(scan.size(), files.size());
      for (std::size_t i = 0; i < files.size(); ++i) {
        EXPECT_EQ(milter[i], scan[i]) << fc.name << " / " << who.name << " / " << files[i];
        EXPECT_EQ(skipping[i], scan[i]) << "(body skipped) " << fc.name << " / " << who.name << " / " << files[i];
        const std::string& m = milter[i];
        const bool to_hold_queue = m.find("\nquarantine: \n") == std::string::npos;
        answers[fc.name + " / " + who.name + " / " + std::filesystem::path(files[i]).filename().string() + ": " +
                m.substr(8, m.find('\n') - 8) + (to_hold_queue ? " (hold queue)" : "")]++;
        ++compared;
      }
    }
  }
  EXPECT_EQ(compared, static_cast<int>(cases.size() * kSenders.size() * files.size()));
  // The table covers what it claims: every answer the milter gives.
  auto count = [&](const std::string& key) {
    int n = 0;
    for (const auto& [k, v] : answers) n += k.find(key) != std::string::npos ? v : 0;
    return n;
  };
  EXPECT_EQ(count("no failure / inbound / eicar_attachment.eml: reject"), 1);
  EXPECT_EQ(count("no failure / inbound / dmarc_forged.eml: reject"), 1);
  EXPECT_EQ(count("no failure / inbound / backtracking.eml: tempfail"), 1);
  EXPECT_EQ(count("no failure / inbound / lottery_winner.eml: accept"), 1);
  EXPECT_EQ(count("no failure / authenticated, held / meeting_notes.eml: tempfail"), 1);
  EXPECT_EQ(count("stores down (bayes and outbound on a dead redis) / inbound / meeting_notes.eml: tempfail"), 1);
  EXPECT_EQ(count("stores down (bayes and outbound on a dead redis) / authenticated / meeting_notes.eml: tempfail"), 1);
  EXPECT_EQ(count("holds to the hold queue, policy tag for every class / authenticated, held / "
                  "eicar_attachment.eml: accept (hold queue)"), 1);
  EXPECT_EQ(count("local submission, held / meeting_notes.eml: accept (hold queue)"), 2);  // skipped in one case
  EXPECT_EQ(count("trusted mail skipped / trusted network / lottery_winner.eml: accept"), 1);
  for (const auto& [k, v] : answers) std::printf("     %s\n", k.c_str());
}

}  // namespace
}  // namespace spamgate
