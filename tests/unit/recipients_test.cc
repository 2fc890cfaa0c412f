// recipients_test.cc - per-domain and per-recipient settings (recipients.h):
// the file support staff edit, how a recipient's settings are merged, and
// how decide() settles a message with recipients of different settings.
#include <gtest/gtest.h>

#include "config/config.h"
#include "spamgate/pipeline.h"
#include "spamgate/recipients.h"
#include "test_util.h"

namespace spamgate {
namespace {

constexpr const char* kRules =
    "body SPAMMY /spammy/\nscore SPAMMY 7.2\n"
    "body MILD /mild/\nscore MILD 4\n";

std::string errors_of(const std::vector<Diagnostic>& d) {
  std::string out;
  for (const Diagnostic& x : d) out += x.str() + "\n";
  return out;
}

RecipientTable parsed(const std::string& text, std::vector<Diagnostic>& diags, const std::string& toml = "") {
  Config c;
  if (!toml.empty()) {
    std::vector<Diagnostic> cd;
    auto parsed_config = parse_config("rules_dir = \"r\"\n" + toml, "/etc/spamgate/spamgate.toml", cd);
    EXPECT_TRUE(parsed_config.ok()) << errors_of(cd);
    if (parsed_config.ok()) c = parsed_config.value();
  }
  std::vector<Diagnostic> warnings;
  return RecipientTable::parse(text, "recipients.cf", c, diags, warnings);
}

// A support engineer's typo is an error at its line, with the word meant.
TEST(RecipientSettingsFile, BadLinesAreErrorsWithTheirLine) {
  std::vector<Diagnostic> d;
  parsed("example.com threshhold 8\n"            // 1: typo
         "example.com threshold eight\n"         // 2: not a number
         "example.com threshold 8\n"             // 3: fine
         "example.com threshold 9\n"             // 4: twice
         "not a domain!\n"                       // 5: bad recipient
         "quiet.example tag maybe\n"             // 6: not on/off
         "partner.example welcomelist_auth partner\n"  // 7: not an address
         "lonely.example\n"                      // 8: no setting
         "*@example.com threshold 3\n",          // 9: no globs as recipients
         d);
  const std::string all = errors_of(d);
  EXPECT_NE(all.find("recipients.cf:1: unknown setting 'threshhold'; did you mean threshold?"), std::string::npos) << all;
  EXPECT_NE(all.find("recipients.cf:2: threshold 'eight' must be a number"), std::string::npos) << all;
  EXPECT_EQ(all.find("recipients.cf:3:"), std::string::npos) << all;
  EXPECT_NE(all.find("recipients.cf:4: threshold for example.com is set twice (first at line 3)"), std::string::npos) << all;
  EXPECT_NE(all.find("recipients.cf:5: 'not' is not an address, a domain or .domain"), std::string::npos) << all;
  EXPECT_NE(all.find("recipients.cf:6: tag 'maybe' must be on or off"), std::string::npos) << all;
  EXPECT_NE(all.find("recipients.cf:7: 'partner' is not an address or glob"), std::string::npos) << all;
  EXPECT_NE(all.find("recipients.cf:8: 'lonely.example' has no setting"), std::string::npos) << all;
  EXPECT_NE(all.find("recipients.cf:9: '*@example.com' is not an address"), std::string::npos) << all;
  EXPECT_EQ(d.size(), 8u) << all;
}

// A reject level must stay above the threshold the recipient ends up with,
// also when the two come from different lines (address over domain).
TEST(RecipientSettingsFile, RejectLevelMustBeAboveTheRecipientsThreshold) {
  std::vector<Diagnostic> d;
  parsed("example.com reject_threshold 15\nceo@example.com threshold 20\n", d);
  ASSERT_EQ(d.size(), 1u) << errors_of(d);
  EXPECT_EQ(d[0].line, 2);
  EXPECT_NE(d[0].message.find("for ceo@example.com reject_threshold 15 must be greater than its threshold 20"),
            std::string::npos) << d[0].message;
  d.clear();
  parsed("example.com threshold 20\n", d, "reject_threshold = 15\n");  // under spamgate.toml's reject level
  ASSERT_EQ(d.size(), 1u) << errors_of(d);
  d.clear();
  parsed("example.com threshold 20\nexample.com reject_threshold off\n", d, "reject_threshold = 15\n");
  EXPECT_TRUE(d.empty()) << errors_of(d);
}

// The address, then its domain, then .parents: each setting from the most
// specific line that sets it, the rest from spamgate.toml.
TEST(RecipientSettingsFile, AddressOverDomainOverParentEachSettingOnItsOwn) {
  std::vector<Diagnostic> d;
  RecipientTable t = parsed("example.com threshold 8\nexample.com reject_threshold 15\n"
                            "ceo@example.com threshold 3\n.example.com subject_tag off\n"
                            "optout.example skip\nexample.com welcomelist_auth *@partner.example\n",
                            d);
  ASSERT_TRUE(d.empty()) << errors_of(d);
  RecipientSettings ceo = t.resolve("<CEO@Example.COM>");
  EXPECT_EQ(ceo.threshold_text, "3");
  EXPECT_EQ(ceo.reject_text, "15");
  EXPECT_TRUE(ceo.subject_tag);  // ".example.com" is for subdomains only
  EXPECT_EQ(ceo.lists.size(), 1u);
  EXPECT_EQ(ceo.source, "ceo@example.com example.com");
  RecipientSettings sales = t.resolve("ann@sales.example.com");
  EXPECT_EQ(sales.threshold_text, "5");  // spamgate.toml's
  EXPECT_FALSE(sales.subject_tag);
  EXPECT_EQ(sales.source, ".example.com");
  EXPECT_TRUE(t.resolve("bob@optout.example").skip);
  RecipientSettings other = t.resolve("x@elsewhere.example");
  EXPECT_EQ(other.source, "");
  EXPECT_EQ(other.threshold_tenths, 50);
}

// The MTA's forms of one mailbox find its settings: a source route,
// a quoted local part, a trailing dot, a +extension.
TEST(RecipientSettingsFile, TheMailboxIsFoundWhateverFormTheRcptHas) {
  std::vector<Diagnostic> d;
  RecipientTable t = parsed("ceo@example.com threshold 3\n", d);
  ASSERT_TRUE(d.empty()) << errors_of(d);
  for (const char* rcpt : {"<ceo@example.com>", "<@relay.example:ceo@example.com>", "<\"ceo\"@example.com>",
                           "<ceo@example.com.>", "<CEO+news@Example.com>"})
    EXPECT_EQ(t.resolve(rcpt).threshold_text, "3") << rcpt;
  for (const char* rcpt : {"<\"ceo x\"@example.com>", "<ceox@example.com>", "<>", "<@relay.example>"})
    EXPECT_EQ(t.resolve(rcpt).threshold_text, "5") << rcpt;
}

// --- through the pipeline: one message, recipients of different settings --

struct Fixture {
  test::TempDir dir;
  std::shared_ptr<const Snapshot> snap;
  explicit Fixture(const std::string& settings, const std::string& toml = "") {
    std::string path = dir.file("recipients.cf", settings);
    std::vector<Diagnostic> d;
    snap = test::snapshot_with(kRules, &d, "recipient_settings = \"" + path + "\"\n" + toml);
    EXPECT_NE(snap, nullptr) << errors_of(d);
  }
  Handled run(const std::string& msg, std::vector<std::string> rcpts, const std::string& mail_from = "") const {
    Envelope env;
    env.rcpt_to = std::move(rcpts);
    env.mail_from = mail_from;
    return test::handle(*snap, msg, {}, env);
  }
};

std::string delivered(const std::string& msg, const Handled& h) { return apply_plan(msg, h.disposition.plan); }

const std::string kMild = "From: a@sender.example\nSubject: hi\n\nmild\n";      // 4.0
const std::string kSpammy = "From: a@sender.example\nSubject: hi\n\nspammy\n";  // 7.2

TEST(RecipientSettingsDecide, ARecipientsOwnThresholdTagsWithItsNumbersInTheHeaders) {
  Fixture f("strict.example threshold 3\n");
  Handled h = f.run(kMild, {"<ann@strict.example>"});
  EXPECT_EQ(h.disposition.action, Action::kTag);
  const std::string out = delivered(kMild, h);
  EXPECT_NE(out.find("Subject: [SPAM] - hi\n"), std::string::npos) << out;
  EXPECT_NE(out.find("X-Spam-Status: Yes, score=4.0 required=3.0"), std::string::npos) << out;
  EXPECT_NE(out.find("flag a message as spam if the score is greater than 3."), std::string::npos) << out;
  EXPECT_EQ(h.disposition.settings_note, " settings=strict.example");
  // the same message to anyone else: spamgate.toml's threshold 5
  EXPECT_EQ(f.run(kMild, {"<bob@other.example>"}).disposition.action, Action::kAccept);
}

// Strictest for tagging: the RCPT order is the sender's to choose.
TEST(RecipientSettingsDecide, MixedRecipientsTaggedByTheStrictestWhateverTheOrder) {
  Fixture f("strict.example threshold 3\nlenient.example threshold 10\n");
  for (auto rcpts : {std::vector<std::string>{"a@lenient.example", "b@strict.example"},
                     std::vector<std::string>{"b@strict.example", "a@lenient.example"}}) {
    Handled h = f.run(kMild, rcpts);
    EXPECT_EQ(h.disposition.action, Action::kTag);
    EXPECT_EQ(h.scan->verdict.threshold_tenths, 30);
  }
  EXPECT_EQ(f.run(kSpammy, {"a@lenient.example"}).disposition.action, Action::kAccept);  // 7.2 < 10
}

// Reject only when every recipient's settings reject: a reject loses the
// message for all of them.
TEST(RecipientSettingsDecide, RefusedOnlyWhenEveryRecipientRefuses) {
  Fixture f("hard.example reject_threshold 6\nsoft.example threshold 3\n");
  Handled alone = f.run(kSpammy, {"a@hard.example"});
  EXPECT_EQ(alone.disposition.action, Action::kReject);
  EXPECT_EQ(alone.disposition.reply.str(),
            "550 5.7.1 Your email was rejected as spam with a score of 7.2. If you feel this was in error, "
            "please visit https://help.example.net/spam");
  Handled mixed = f.run(kSpammy, {"a@hard.example", "b@soft.example"});
  EXPECT_EQ(mixed.disposition.action, Action::kTag);  // soft.example has no reject level: delivered, tagged
  Handled optout = Fixture("hard.example reject_threshold 6\nfree.example skip\n").run(kSpammy, {"a@hard.example", "b@free.example"});
  EXPECT_EQ(optout.disposition.action, Action::kTag);  // an opted-out recipient is never refused
}

TEST(RecipientSettingsDecide, SkipForEveryRecipientIsNotScannedElseTheOthersDecide) {
  Fixture f("free.example skip\n");
  Handled h = f.run(kSpammy, {"a@free.example", "<B@Free.Example>"});
  EXPECT_FALSE(h.scan.has_value());
  EXPECT_EQ(h.disposition.action, Action::kSkip);
  EXPECT_NE(h.disposition.why.find("every recipient opted out"), std::string::npos) << h.disposition.why;
  EXPECT_EQ(delivered(kSpammy, h).find("X-Spam-"), std::string::npos);  // nothing added
  Handled mixed = f.run(kSpammy, {"a@free.example", "c@other.example"});
  ASSERT_TRUE(mixed.scan.has_value());
  EXPECT_EQ(mixed.disposition.action, Action::kTag);
}

TEST(RecipientSettingsDecide, TagOffNeverFlagsAndSubjectTagOffFlagsOnly) {
  Fixture f("quiet.example tag off\nplain.example subject_tag off\n");
  Handled quiet = f.run(kSpammy, {"a@quiet.example"});
  EXPECT_EQ(quiet.disposition.action, Action::kAccept);
  std::string out = delivered(kSpammy, quiet);
  EXPECT_EQ(out.find("X-Spam-Flag"), std::string::npos) << out;
  EXPECT_NE(out.find("Subject: hi\n"), std::string::npos) << out;
  EXPECT_NE(out.find("score of: 7.2"), std::string::npos) << out;  // still scored for support
  EXPECT_NE(quiet.disposition.why.find("tag is off"), std::string::npos) << quiet.disposition.why;
  Handled plain = f.run(kSpammy, {"a@plain.example"});
  EXPECT_EQ(plain.disposition.action, Action::kTag);
  out = delivered(kSpammy, plain);
  EXPECT_NE(out.find("X-Spam-Flag: YES"), std::string::npos) << out;
  EXPECT_NE(out.find("Subject: hi\n"), std::string::npos) << out;
  // with a recipient who wants the Subject tagged, the Subject is tagged
  out = delivered(kSpammy, f.run(kSpammy, {"a@plain.example", "b@other.example"}));
  EXPECT_NE(out.find("Subject: [SPAM] - hi\n"), std::string::npos) << out;
}

// A recipient's own lists count for its copy of the decision only.
TEST(RecipientSettingsDecide, ARecipientsOwnListsCount) {
  Fixture f("fan.example welcomelist_from_rcvd *@sender.example relay.sender.example\n"
            "shop.example blocklist_from *@sender.example\n");
  Handled blocked = f.run(kMild, {"a@shop.example"});
  EXPECT_EQ(blocked.disposition.action, Action::kTag);
  EXPECT_EQ(blocked.scan->verdict.score_tenths, 1040);
  bool named = false;
  for (const ScoredHit& hit : blocked.scan->verdict.hits)
    named = named || (hit.name == "USER_IN_BLOCKLIST" && hit.detail.find("settings for shop.example") != std::string::npos);
  EXPECT_TRUE(named);
  EXPECT_EQ(f.run(kMild, {"a@other.example"}).disposition.action, Action::kAccept);  // not another's
  Envelope env;
  env.rcpt_to = {"a@fan.example"};
  env.client_name = "out1.relay.sender.example";
  Handled fan = test::handle(*f.snap, kSpammy, {}, env);
  EXPECT_EQ(fan.disposition.action, Action::kAccept);
  EXPECT_LT(fan.scan->verdict.score_tenths, 0);
  env.client_name = "mail.forger.example";  // the same From, another relay: not welcomed
  EXPECT_EQ(test::handle(*f.snap, kSpammy, {}, env).disposition.action, Action::kTag);
}

// An opted-out recipient beside one with its own threshold: the headers
// speak for the one whose settings apply.
TEST(RecipientSettingsDecide, AnOptedOutRecipientNeverSpeaksForTheOthers) {
  Fixture f("lenient.example threshold 8\nfree.example skip\n");
  Handled h = f.run(kSpammy, {"b@free.example", "a@lenient.example"});
  EXPECT_EQ(h.disposition.action, Action::kAccept);
  EXPECT_EQ(h.scan->verdict.threshold_tenths, 80);
  EXPECT_EQ(h.disposition.why, "score 7.2 is not greater than 8");
}

// One classifier alone does not tag (the guard), judged at the recipient's
// own threshold, not spamgate.toml's.
TEST(RecipientSettingsDecide, TheClassifierGuardUsesTheRecipientsThreshold) {
  Fixture f("strict.example threshold 3\n", "");
  ASSERT_NE(f.snap, nullptr);
  auto snap = test::snapshot_with(std::string(kRules) + "score LR_95 4\n", nullptr,
                                  "recipient_settings = \"" + f.dir.path() + "/recipients.cf\"\n");
  ASSERT_NE(snap, nullptr);
  ScanResult scan = scan_message(*snap, "Subject: hi\n\nhello\n", Envelope{});
  Hit lr("LR_95");
  lr.probability = 0.97;
  scan.hits.push_back(lr);
  scan.verdict = score_verdict(*snap, scan.hits);
  ASSERT_FALSE(scan.verdict.spam);  // 4.0, under 5
  Envelope env;
  env.rcpt_to = {"a@strict.example"};
  Disposition d = decide(*snap, scan, Sender{}, {}, recipient_groups(*snap, env));
  EXPECT_EQ(d.action, Action::kAccept);  // 4.0 over 3, but one classifier alone
  ASSERT_TRUE(d.verdict.has_value());
  bool guarded = false;
  for (const ScoredHit& h : d.verdict->hits) guarded = guarded || h.name == "CLASSIFIER_GUARD";
  EXPECT_TRUE(guarded);
}

// A settings file that exists and cannot be read is an error, never "no
// settings" (every customer's opt-out and levels would quietly go).
TEST(RecipientSettingsFile, AnUnreadableFileIsAnErrorNotNone) {
  test::TempDir dir;
  std::filesystem::create_directories(dir.path() + "/recipients.cf");  // a directory where the file should be
  std::vector<Diagnostic> d;
  EXPECT_EQ(test::snapshot_with(kRules, &d, "recipient_settings = \"" + dir.path() + "/recipients.cf\"\n"), nullptr);
  EXPECT_NE(errors_of(d).find("recipients.cf: not a regular file"), std::string::npos) << errors_of(d);
}

// Autolearn judges everyone's mail: a message a recipient's own list
// decided is that customer's opinion and is not learned.
TEST(RecipientSettingsDecide, NoAutolearnOfAMessageARecipientsListDecided) {
  Fixture f("shop.example blocklist_from *@sender.example\n",
            "[bayes]\npath = \"bayes\"\nautolearn = true\nautolearn_spam_above = 7\n");
  ASSERT_NE(f.snap, nullptr);
  EXPECT_EQ(f.run(kSpammy, {"a@other.example"}).disposition.autolearn, LearnClass::kSpam);  // 7.2 over 7
  Handled listed = f.run(kSpammy, {"a@shop.example"});
  EXPECT_EQ(listed.disposition.action, Action::kTag);
  EXPECT_FALSE(listed.disposition.autolearn.has_value());
}

// A broken settings file refuses the load (and so a reload) naming its line.
TEST(RecipientSettingsFile, ABrokenFileRefusesTheSnapshot) {
  test::TempDir dir;
  std::string path = dir.file("recipients.cf", "example.com threshold 8\nexample.com tresh 9\n");
  std::vector<Diagnostic> d;
  EXPECT_EQ(test::snapshot_with(kRules, &d, "recipient_settings = \"" + path + "\"\n"), nullptr);
  EXPECT_NE(errors_of(d).find("recipients.cf:2: unknown setting 'tresh'"), std::string::npos) << errors_of(d);
  // a missing file is no settings, as a missing local rules file
  EXPECT_NE(test::snapshot_with(kRules, nullptr, "recipient_settings = \"" + dir.path() + "/none.cf\"\n"), nullptr);
}

}  // namespace
}  // namespace spamgate
