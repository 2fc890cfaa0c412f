// sa_rules_test.cc - SpamAssassin's own rule files read as they are (issue 20):
// a second rules_dirs entry holds them; our first directory stays strict.
#include <gtest/gtest.h>

#include <filesystem>

#include "rules/regex.h"
#include "rules/ruleset.h"
#include "rules/sa_compat.h"
#include "spamgate/pipeline.h"
#include "test_util.h"

using namespace spamgate;
using spamgate::test::hit;
using spamgate::test::TempDir;

namespace {

// A config with our rules (`ours`) first and a SpamAssassin-style directory
// (`sa`) second; `toml` is appended.
std::shared_ptr<const Snapshot> load_with_sa(const std::string& sa, const std::string& ours = "",
                                             std::vector<Diagnostic>* diags = nullptr, const std::string& toml = "") {
  static std::vector<std::unique_ptr<TempDir>> keep;
  keep.push_back(std::make_unique<TempDir>());
  TempDir& d = *keep.back();
  d.file("rules/50_ours.cf", ours);
  d.file("sa/20_theirs.cf", sa);
  std::string cfg = d.file("spamgate.toml", "rules_dirs = [\"rules\", \"sa\"]\nlocal_rules = \"\"\n"
                                            "hostname = \"mx1.gateway.example\"\n" + toml +
                                            (toml.find("[bayes]") == std::string::npos ? "[bayes]\nenabled = false\n" : ""));
  std::vector<Diagnostic> local;
  auto s = load_snapshot(cfg, diags != nullptr ? *diags : local);
  if (!s.ok()) {
    for (const Diagnostic& e : local) ADD_FAILURE() << e.str();  // a test that passes `diags` expects errors
    return nullptr;
  }
  return s.value();
}

int skipped(const Snapshot& s, const std::string& key_part) {
  int n = 0;
  for (const auto& [k, c] : s.skipped)
    if (k.find(key_part) != std::string::npos) n += c.count;
  return n;
}

const std::string kMsg =
    "From: Alice <alice@example.org>\n"
    "To: bob@example.net\n"
    "Subject: caf\xc3\xa9 deals\n"
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "--b\nContent-Type: text/plain; charset=utf-8\n\nFree v1agra for you, free free\n"
    "--b\nContent-Type: application/octet-stream; name=\"a.bin\"\nX-Part-Tag: payload\n\nAAAA\n"
    "--b--\n";

}  // namespace

TEST(SaConditions, PluginsWeImplementLoadOthersAreSkippedAndCounted) {
  auto s = load_with_sa(
      "ifplugin Mail::SpamAssassin::Plugin::ReplaceTags\nbody IN_LOADED /free/i\nendif\n"
      "ifplugin Mail::SpamAssassin::Plugin::Razor2\nbody IN_RAZOR /free/i\nendif\n"
      "if (version >= 3.004000)\n  if !plugin(Mail::SpamAssassin::Plugin::MIMEHeader)\n    body FALLBACK /free/\n"
      "  else\n    body NEWER /free/\n  endif\nendif\n"
      "if (version < 3.000000)\nbody ANCIENT /free/\nelse\nbody MODERN /free/\nendif\n"
      "if can(Mail::SpamAssassin::Conf::feature_bug6558_free)\nbody FEATURE /free/\nendif\n"
      "meta USES_RAZOR IN_RAZOR || IN_LOADED\nscore IN_RAZOR 3\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "IN_LOADED"));
  EXPECT_FALSE(hit(*s, kMsg, "IN_RAZOR"));
  EXPECT_FALSE(hit(*s, kMsg, "FALLBACK"));
  EXPECT_TRUE(hit(*s, kMsg, "NEWER"));
  EXPECT_FALSE(hit(*s, kMsg, "ANCIENT"));
  EXPECT_TRUE(hit(*s, kMsg, "MODERN"));
  EXPECT_TRUE(hit(*s, kMsg, "FEATURE"));
  EXPECT_TRUE(hit(*s, kMsg, "USES_RAZOR"));  // a meta naming an unloaded rule reads it as not hit
  EXPECT_EQ(skipped(*s, "Razor2"), 1);
}

TEST(SaConditions, UnbalancedBlocksAndBadConditionsAreErrors) {
  std::vector<Diagnostic> d;
  EXPECT_EQ(load_with_sa("if (version >= 3.0\nbody A /a/\nendif\nendif\nifplugin Foo\n", "", &d), nullptr);
  std::string all;
  for (const auto& e : d) all += e.str() + "\n";
  EXPECT_NE(all.find("20_theirs.cf:1: cannot read condition"), std::string::npos) << all;
  EXPECT_NE(all.find("20_theirs.cf:4: 'endif' without an 'if'"), std::string::npos) << all;
  EXPECT_NE(all.find("20_theirs.cf:5: 'if' or 'ifplugin' without its 'endif'"), std::string::npos) << all;
  EXPECT_FALSE(sa_condition("version >= 3.004000 && plugin(Mail::SpamAssassin::Plugin::DCC)").value());
  EXPECT_TRUE(sa_condition("!plugin(Mail::SpamAssassin::Plugin::DCC) || can(X::Y)").value());
}

TEST(SaDirectives, LangRequireVersionAndSettingsAreSkippedAndCounted) {
  auto s = load_with_sa(
      "body FREE /free/i\ndescribe FREE Free offer\nlang de describe FREE Gratis\n"
      "util_rb_2tld co.example\nreport_safe 1\ntflags FREE publish\npriority FREE 500\n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->symbols.find("FREE")->description, "Free offer");  // the German line is not used
  EXPECT_EQ(skipped(*s, "lang"), 1);
  EXPECT_EQ(skipped(*s, "util_rb_2tld"), 1);
  EXPECT_EQ(skipped(*s, "report_safe"), 1);
  EXPECT_EQ(skipped(*s, "priority"), 1);
  // A file for another SpamAssassin version: the rest of it is skipped, with a warning.
  auto v = load_with_sa("body BEFORE /free/i\nrequire_version 3.002000\nbody AFTER /free/i\n");
  ASSERT_NE(v, nullptr);
  EXPECT_TRUE(hit(*v, kMsg, "BEFORE"));
  EXPECT_FALSE(hit(*v, kMsg, "AFTER"));
  ASSERT_EQ(v->warnings.size(), 1u);
  EXPECT_NE(v->warnings[0].message.find("requires SpamAssassin 3.002000"), std::string::npos);
}

TEST(SaDirectives, EvalTestsAreCountedThereAndRefusedInOurFiles) {
  auto s = load_with_sa("header DATE_ODD eval:check_for_forged_received_trail()\nscore DATE_ODD 2.5\n"
                        "describe DATE_ODD Date is odd\nmeta ODD_AND_FREE DATE_ODD && __FREE\nbody __FREE /free/i\n");
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(hit(*s, kMsg, "DATE_ODD"));
  EXPECT_FALSE(hit(*s, kMsg, "ODD_AND_FREE"));
  EXPECT_EQ(skipped(*s, "eval check_for_forged_received_trail()"), 1);
  std::vector<Diagnostic> d;
  EXPECT_EQ(load_with_sa("", "body MINE eval:check_stuff()\n", &d), nullptr);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_NE(d[0].str().find("50_ours.cf:1: eval:check_stuff() is not implemented"), std::string::npos);
  // A meta of ours naming a rule nobody defines stays an error; in their files it reads as not hit.
  d.clear();
  EXPECT_EQ(load_with_sa("", "meta MY_META NO_SUCH_RULE\n", &d), nullptr);
  auto t = load_with_sa("meta THEIR_META NO_SUCH_RULE || __FREE\nbody __FREE /free/i\n");
  ASSERT_NE(t, nullptr);
  EXPECT_TRUE(hit(*t, kMsg, "THEIR_META"));
}

TEST(SaReplaceTags, TagsPreInterAndPostAreReplacedInListedRulesOnly) {
  const std::string rules =
      "replace_tag I (?:i|1|!)\nreplace_tag A (?:a|4|@)\nreplace_inter W1 \\W?\nreplace_post P2 {1,2}\n"
      "body VIAGRA_OBFU /<post P2>v<I>agr<A>/i\nbody NOT_LISTED /v<I>agr<A>/i\n"
      "replace_rules VIAGRA_OBFU\n";
  auto s = load_with_sa(rules);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "VIAGRA_OBFU"));   // "v1agra"
  EXPECT_FALSE(hit(*s, kMsg, "NOT_LISTED"));  // its "<I>" stays literal text
  ReplaceTags t;
  ASSERT_TRUE(t.add("replace_tag", "A a").ok());
  ASSERT_TRUE(t.add("replace_tag", "B b").ok());
  ASSERT_TRUE(t.add("replace_inter", "W \\W?").ok());
  // Perl's split leaves an empty piece between adjacent tags: the inter goes there.
  EXPECT_EQ(t.apply("x<inter W><A><B>y"), "xa\\W?by");
}

TEST(SaScores, FourScoresPickTheSetOfOurNetworkAndBayesSettings) {
  const std::string rules = "body FREE /free/i\nscore FREE 1.1 2.2 3.3 4.4\nbody T_TRY /free/i\n";
  auto no_bayes = load_with_sa(rules);
  ASSERT_NE(no_bayes, nullptr);
  EXPECT_EQ(no_bayes->symbols.score_millis("FREE"), 1100);  // set 0: no network tests, no Bayes
  EXPECT_EQ(no_bayes->symbols.score_millis("T_TRY"), 10);   // testing rules score 0.01
  auto bayes = load_with_sa(rules, "", nullptr, "[bayes]\npath = \"bayes\"\n");
  ASSERT_NE(bayes, nullptr);
  EXPECT_EQ(bayes->symbols.score_millis("FREE"), 3300);  // set 2: Bayes on
  std::vector<Diagnostic> d;
  EXPECT_EQ(load_with_sa("body X /x/\nscore X 1 2\n", "", &d), nullptr);
}

TEST(SaRules, MultipleCountsMatchesAndMetasReadTheCount) {
  auto s = load_with_sa("body __FREE_WORD /free/i\ntflags __FREE_WORD multiple maxhits=5\n"
                        "meta MANY_FREE __FREE_WORD > 2\nmeta FEW_FREE __FREE_WORD > 3\n"
                        "meta AND_VALUE (__FREE_WORD && __FREE_WORD) > 2\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "MANY_FREE"));  // three matches
  EXPECT_FALSE(hit(*s, kMsg, "FEW_FREE"));
  EXPECT_TRUE(hit(*s, kMsg, "AND_VALUE"));  // && gives its operand's value, as in Perl
}

TEST(SaRules, MimeheaderReadsEachPartsFields) {
  auto s = load_with_sa("mimeheader PART_TAG X-Part-Tag =~ /^payload$/\n"
                        "mimeheader PART_CT Content-Type =~ /application\\/octet-stream/\n"
                        "mimeheader NO_SUCH X-Nothing =~ /./\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "PART_TAG"));
  EXPECT_TRUE(hit(*s, kMsg, "PART_CT"));
  EXPECT_FALSE(hit(*s, kMsg, "NO_SUCH"));
}

TEST(SaRules, TheirRegexesMatchBytesOursMatchCharacters) {
  // SpamAssassin spells UTF-8 byte by byte: \xc3\xa9 is "é" to it.
  auto s = load_with_sa("header THEIR_E Subject =~ /caf\\xc3\\xa9/\n", "header OUR_E Subject =~ /caf\\xc3\\xa9/\n"
                                                                       "header OUR_CHAR Subject =~ /caf\\x{e9}/\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "THEIR_E"));
  EXPECT_FALSE(hit(*s, kMsg, "OUR_E"));
  EXPECT_TRUE(hit(*s, kMsg, "OUR_CHAR"));
}

TEST(SaRules, ARegexTooLargeForPcre2IsCountedThereAndAnErrorInOurFiles) {
  // As SpamAssassin's FUZZY rules do: each letter a tag of look-alikes, so
  // the expanded regex is over PCRE2's 64 KB of compiled code.
  std::string tag = "(?:[aA]";
  for (int b = 0xc4; b < 0xd8; ++b) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "|[\\x%02x][\\x80-\\x85]", b);
    tag += buf;
  }
  tag += ")";
  std::string rule = "body HUGE /x";
  for (int i = 0; i < 200; ++i) rule += "<L>";
  rule += "y/\nreplace_rules HUGE\nmeta HUGE_OR_FREE HUGE || __FREE\nbody __FREE /free/i\n";
  auto s = load_with_sa("replace_tag L " + tag + "\n" + rule);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(skipped(*s, "too large for PCRE2"), 1);
  EXPECT_FALSE(hit(*s, "Subject: t\n\nsee x" + std::string(200, 'a') + "y now\n", "HUGE"));
  EXPECT_TRUE(hit(*s, kMsg, "HUGE_OR_FREE"));
  std::vector<Diagnostic> d;
  EXPECT_EQ(load_with_sa("", "replace_tag L " + tag + "\n" + rule, &d), nullptr);
}

TEST(SaRules, DebianSpamAssassinRuleSetLoadsWithoutErrors) {
  // The acceptance line: Debian's package as installed by scripts/deps.sh.
  const std::string dir = "/usr/share/spamassassin";
  ASSERT_TRUE(std::filesystem::exists(dir + "/72_active.cf")) << "install Debian's spamassassin package (scripts/deps.sh)";
  TempDir d;
  d.file("rules/00_none.cf", "");
  std::string cfg = d.file("spamgate.toml", "rules_dirs = [\"" + std::string(SPAMGATE_SOURCE_DIR) + "/rules\", \"" + dir +
                                                "\"]\nlocal_rules = \"\"\n[bayes]\nenabled = false\n");
  std::vector<Diagnostic> diags;
  auto s = load_snapshot(cfg, diags);
  for (const Diagnostic& e : diags) ADD_FAILURE() << e.str();
  ASSERT_TRUE(s.ok());
  EXPECT_GT(s.value()->rule_count, 2000u);
  EXPECT_GT(skipped(*s.value(), "eval "), 100);
  // A plain SpamAssassin rule works through the whole pipeline.
  EXPECT_TRUE(hit(*s.value(), "Subject: hi\nFrom: a@b.example\nTo: c@d.example\n\nDear Friend, hello\n", "DEAR_FRIEND"));
}

TEST(SaRelays, ReceivedChainGivesSpamAssassinsRelayFieldsAndTrust) {
  // Newest first: our own hop from a private address (trusted), then the
  // first public relay (untrusted from there on), then older hops.
  const std::string msg =
      "Received: from mx.example.net (mx.example.net [10.0.0.5]) by inbound.example.net (Postfix) with ESMTP id AB12\n"
      "Received: from bigsender (unknown [203.0.113.9]) by mx.example.net (8.12.8/8.12.8) with SMTP id h1; "
      "Mon, 12 Aug 2002 11:46:25 -0400\n"
      "Received: from dsl-1-2-3-4.dyn.example.com ([198.51.100.4] helo=pc1) by bigsender with esmtp (Exim 4.50)\n"
      "Received: from unknown (HELO lap) (192.0.2.77) by smtp.example.org with SMTP\n"
      "From: a@b.example\nTo: c@d.example\nSubject: hi\n\nhello\n";
  auto s = load_with_sa(
      "header __RDNS_NONE X-Spam-Relays-Untrusted =~ /^[^\\]]+ rdns= /\n"
      "header FIRST_EXT_HELO X-Spam-Relays-External =~ /^\\[ ip=203\\.0\\.113\\.9 rdns= helo=bigsender by=mx\\.example\\.net /\n"
      "header EXIM_RELAY X-Spam-Relays-External =~ /\\[ ip=198\\.51\\.100\\.4 rdns=dsl-1-2-3-4\\.dyn\\.example\\.com helo=pc1 /\n"
      "header QMAIL_RELAY X-Spam-Relays-External =~ /\\[ ip=192\\.0\\.2\\.77 rdns= helo=lap /\n"
      "header TRUSTED_OURS X-Spam-Relays-Trusted =~ /^\\[ ip=10\\.0\\.0\\.5 rdns=mx\\.example\\.net .* intl=1 /\n"
      "header __RELAYED_EXT ALL-EXTERNAL =~ /^Received: from bigsender.*\\nReceived: /s\n"
      "header __OURS_IN_EXT ALL-EXTERNAL =~ /inbound\\.example\\.net/\n"
      "meta RDNS_NONE_T __RDNS_NONE\nmeta RELAYED_EXT __RELAYED_EXT && !__OURS_IN_EXT\n");
  ASSERT_NE(s, nullptr);
  for (const char* rule : {"RDNS_NONE_T", "FIRST_EXT_HELO", "EXIM_RELAY", "QMAIL_RELAY", "TRUSTED_OURS", "RELAYED_EXT"})
    EXPECT_TRUE(hit(*s, msg, rule)) << rule;
  // A first public relay with reverse DNS: no RDNS_NONE.
  std::string named = msg;
  named.replace(named.find("(unknown [203"), 9, "(mail.big.example ");
  EXPECT_FALSE(hit(*s, named, "RDNS_NONE_T"));
}

TEST(RulesCanary, NewRulesThatTagKnownGoodMailAreRefusedNamingMessageAndRule) {
  TempDir d;
  d.file("canary/meeting.eml", "From: boss@example.org\nTo: team@example.org\nSubject: planning meeting\n\nSee you at 10.\n");
  d.file("canary/invoice.eml", "From: billing@example.org\nTo: me@example.org\nSubject: invoice\n\nAttached.\n");
  d.file("rules/50_ours.cf", "body MEETING_WORD /meeting/i\nscore MEETING_WORD 0.5\n");
  d.file("sa/60_update.cf", "body BAD_UPDATE /planning/i\nscore BAD_UPDATE 9\n");
  const std::string head = "local_rules = \"\"\nrules_canary_dirs = [\"canary\"]\n[bayes]\nenabled = false\n";
  std::vector<Diagnostic> diags;
  auto good = load_snapshot(d.file("good.toml", "rules_dirs = [\"rules\"]\n" + head), diags);
  ASSERT_TRUE(good.ok());
  std::vector<std::string> problems;
  EXPECT_TRUE(run_rules_canary(*good.value(), problems).ok());
  EXPECT_TRUE(problems.empty());
  auto bad = load_snapshot(d.file("bad.toml", "rules_dirs = [\"rules\", \"sa\"]\n" + head), diags);
  ASSERT_TRUE(bad.ok());
  Status st = run_rules_canary(*bad.value(), problems);
  EXPECT_FALSE(st.ok());
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("canary/meeting.eml scored 9.5 (over 5): BAD_UPDATE=9.0 ("), std::string::npos) << problems[0];
  EXPECT_NE(problems[0].find("sa/60_update.cf:1), MEETING_WORD=0.5"), std::string::npos) << problems[0];
  EXPECT_NE(st.message().find("1 of 2 rules canary message(s) tagged as spam"), std::string::npos) << st.message();
  auto missing = load_snapshot(d.file("missing.toml", "rules_dirs = [\"rules\"]\nlocal_rules = \"\"\n"
                                                     "rules_canary_dirs = [\"nowhere\"]\n[bayes]\nenabled = false\n"), diags);
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(run_rules_canary(*missing.value(), problems).code(), Status::Code::kNotFound);
}

TEST(SaEvals, TheImplementedEvalTestsFollowSpamAssassin) {
  auto s = load_with_sa(
      "freemail_domains gmail.com *.yahoo.com\n"
      "body HTML_MESSAGE eval:html_test('html')\n"
      "body HTML_OTHER eval:html_test('font_low_contrast')\n"
      "header NO_RELAYS eval:check_no_relays()\nheader ALL_TRUSTED eval:check_all_trusted()\n"
      "header RCVD_HELO_IP_MISMATCH eval:helo_ip_mismatch()\n"
      "header MISSING_HEADERS eval:check_for_missing_to_header()\n"
      "header SUBJ_ALL_CAPS eval:subject_is_all_caps()\n"
      "header HEADER_FROM_DIFFERENT_DOMAINS eval:check_equal_from_domains()\n"
      "header DATE_IN_PAST_03_06 eval:check_for_shifted_date('-6', '-3')\n"
      "header DATE_IN_FUTURE_03_06 eval:check_for_shifted_date('3', '6')\n"
      "header FREEMAIL_FROM eval:check_freemail_from()\n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(skipped(*s, "eval html_test()"), 1);  // html_test('font_low_contrast') is not implemented
  const std::string relayed =
      "Return-Path: <bounce@lists.example.org>\n"
      "Received: from mx.example.net (mx.example.net [10.0.0.5]) by in.example.net; Mon, 12 Aug 2002 16:00:00 +0000\n"
      "Received: from [198.51.100.7] (helo=203.0.113.9) by mx.example.net; Mon, 12 Aug 2002 15:59:00 +0000\n"
      "Date: Mon, 12 Aug 2002 11:00:00 +0000\n"
      "From: Big Deals <deals@mail.yahoo.com>\n"
      "Subject: FREE MONEY FOR YOU NOW\n"
      "Content-Type: text/html\n\n<html><b>hi</b></html>\n";
  for (const char* rule : {"HTML_MESSAGE", "RCVD_HELO_IP_MISMATCH", "MISSING_HEADERS", "SUBJ_ALL_CAPS",
                           "HEADER_FROM_DIFFERENT_DOMAINS", "DATE_IN_PAST_03_06", "FREEMAIL_FROM"})
    EXPECT_TRUE(hit(*s, relayed, rule)) << rule;
  for (const char* rule : {"HTML_OTHER", "NO_RELAYS", "ALL_TRUSTED", "DATE_IN_FUTURE_03_06"})
    EXPECT_FALSE(hit(*s, relayed, rule)) << rule;
  // No Received field at all; an empty To is still a To; a one-word subject is never "all caps".
  const std::string bare = "From: a@example.org\nTo:\nSubject: HELLO\n\nhi\n";
  EXPECT_TRUE(hit(*s, bare, "NO_RELAYS"));
  EXPECT_FALSE(hit(*s, bare, "MISSING_HEADERS"));
  EXPECT_FALSE(hit(*s, bare, "SUBJ_ALL_CAPS"));
  EXPECT_FALSE(hit(*s, bare, "HTML_MESSAGE"));
  // Only private hops: all trusted.
  const std::string internal = "Received: from a (a [192.168.1.2]) by b; Mon, 12 Aug 2002 16:00:00 +0000\n"
                               "From: support@gmail.com\nTo: x@example.org\nSubject: hi\n\nhi\n";
  EXPECT_TRUE(hit(*s, internal, "ALL_TRUSTED"));
  EXPECT_FALSE(hit(*s, internal, "FREEMAIL_FROM"));  // a role account, as FreeMail's default welcomelist says
  // An envelope sender rewritten through fetchmail (X-Sender) is not compared.
  std::string fetched = relayed;
  fetched.insert(0, "X-Sender: deals@mail.yahoo.com\nReceived: from pop by localhost with POP3 (fetchmail-5.9.0)\n");
  EXPECT_FALSE(hit(*s, fetched, "HEADER_FROM_DIFFERENT_DOMAINS"));
}

TEST(SaUris, TheirUriRulesSeeRedirectTargetsDecodedLinksAndBareAddresses) {
  auto s = load_with_sa(
      "redirector_pattern /^https?:\\/\\/go\\.example\\.net\\/out\\?u=(.*)$/i\n"
      "uri SPOOF_TARGET m{^https?://(?:\\w+\\.)+?com\\.(?:\\w+\\.)+?com\\b}i\n"
      "uri PATTERN_TARGET m{^http://target\\.example\\.org/}\n"
      "uri DECODED m{^http://www\\.example\\.com/a b}\n"
      "uri UNSUB_ADDR /unsubscribe/i\n",
      "uri OURS_SPOOF m{^https?://(?:\\w+\\.)+?com\\.(?:\\w+\\.)+?com\\b}i\n");
  ASSERT_NE(s, nullptr);
  const std::string msg =
      "From: a@example.org\nTo: b@example.net\nSubject: links\nContent-Type: text/html\n\n"
      "<a href=\"http://rds.yahoo.com/S=1/K=x/*-http://google.com.pr1c3.com/home.asp\">one</a>\n"
      "<a href=\"http://go.example.net/out?u=http://target.example.org/x\">two</a>\n"
      "<a href=\"http://www.example.com/a%20b\">three</a>\n"
      "<p>To stop, write to list-unsubscribe@lists.example.org</p>\n";
  for (const char* rule : {"SPOOF_TARGET", "PATTERN_TARGET", "DECODED", "UNSUB_ADDR"}) EXPECT_TRUE(hit(*s, msg, rule)) << rule;
  EXPECT_FALSE(hit(*s, msg, "OURS_SPOOF"));  // our uri rules see the links as written
}

TEST(SaEvals, FreemailHeaderMimeFlagsEpilogueAndNosubject) {
  auto s = load_with_sa(
      "freemail_domains hotmail.com\n"
      "header FREEMAIL_REPLYTO_END_DIGIT eval:check_freemail_header('Reply-To', '\\d@')\n"
      "header FREEMAIL_REPLYTO eval:check_freemail_header('Reply-To')\n"
      "body T_TVD_MIME_EPI eval:check_msg_parse_flags('mime_epilogue_exists')\n"
      "rawbody __MIME_BASE64 eval:check_for_mime('mime_base64_count')\n"
      "rawbody __MIME_QP eval:check_for_mime('mime_qp_count')\n"
      "body __MIME_ATTACHMENT eval:check_for_mime('mime_attachment')\n"
      "body __NONEMPTY_BODY /\\S/\ntflags __NONEMPTY_BODY nosubject\n"
      "meta MIME_BASE64 __MIME_BASE64\nmeta MIME_QP __MIME_QP\nmeta MIME_ATTACH __MIME_ATTACHMENT\n"
      "meta EMPTY_MESSAGE !__MIME_ATTACHMENT && !__NONEMPTY_BODY\n");
  ASSERT_NE(s, nullptr);
  std::string msg =
      "From: a@example.org\nReply-To: winner77@hotmail.com\nSubject: prize\n"
      "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
      "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nhello=20there\n"
      "--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=x.pdf\n"
      "Content-Transfer-Encoding: base64\n\nJVBERi0=\n"
      "--b--\n";
  msg.push_back('\0');  // an epilogue of one NUL, as spam has
  msg += "\n";
  for (const char* rule : {"FREEMAIL_REPLYTO_END_DIGIT", "FREEMAIL_REPLYTO", "T_TVD_MIME_EPI", "MIME_BASE64", "MIME_QP", "MIME_ATTACH"})
    EXPECT_TRUE(hit(*s, msg, rule)) << rule;
  EXPECT_FALSE(hit(*s, msg, "EMPTY_MESSAGE"));
  const std::string empty = "From: a@example.org\nReply-To: winner@hotmail.com\nSubject: only a subject\n\n \n";
  EXPECT_TRUE(hit(*s, empty, "EMPTY_MESSAGE"));  // the subject is not the body for a nosubject rule
  EXPECT_FALSE(hit(*s, empty, "FREEMAIL_REPLYTO_END_DIGIT"));
  EXPECT_TRUE(hit(*s, empty, "FREEMAIL_REPLYTO"));
  EXPECT_FALSE(hit(*s, empty, "T_TVD_MIME_EPI"));
}

TEST(SaRules, ExistsToCcAndTheirCaseRulesForPseudoFields) {
  // exists:ToCc read a field literally named "tocc" (REPLYTO_WITHOUT_TO_CC hit
  // 427 of 2,000 messages wrongly); "MessageID" is a plain field to
  // SpamAssassin, only "MESSAGEID" the pseudo-field.
  auto s = load_with_sa("header __TOCC_EXISTS exists:ToCc\nheader __HAS_REPLY_TO exists:Reply-To\n"
                        "meta REPLYTO_WITHOUT_TO_CC __HAS_REPLY_TO && !__TOCC_EXISTS\n"
                        "header __HAS_MESSAGEID exists:MessageID\nmeta MSGID_LITERAL __HAS_MESSAGEID\n"
                        "header MSGID_PSEUDO MESSAGEID =~ /\\@/\n");
  ASSERT_NE(s, nullptr);
  const std::string msg = "From: a@example.org\nTo: b@example.net\nReply-To: c@example.org\n"
                          "Message-ID: <1@example.org>\nSubject: hi\n\nhi\n";
  EXPECT_FALSE(hit(*s, msg, "REPLYTO_WITHOUT_TO_CC"));
  EXPECT_FALSE(hit(*s, msg, "MSGID_LITERAL"));
  EXPECT_TRUE(hit(*s, msg, "MSGID_PSEUDO"));
  EXPECT_TRUE(hit(*s, "From: a@example.org\nReply-To: c@example.org\nSubject: hi\n\nhi\n", "REPLYTO_WITHOUT_TO_CC"));
}

TEST(SaRules, CaptureTemplatesMatchTheValuesTheCaptureRuleTookFromThisMessage) {
  // SpamAssassin 4's GB_CUSTOM_HTM_URI: a link carrying the recipient's own
  // address (phishing landing pages). __TO_ADDR captures the To address;
  // %{MY_TO} in the other rules stands for it, quoted, in each message.
  auto s = load_with_sa("header __TO_ADDR To:addr =~ /(?<MY_TO>.*)/\n"
                        "uri LINK_HAS_RCPT m|^https?://.{3,64}\\?email=%{MY_TO}|i\n"
                        "body BODY_HAS_RCPT /Dear %{MY_TO},/i\n"
                        "header SUBJECT_UNSET_TAG Subject =~ /%{NOBODY_SETS_THIS}|.*/\n");
  ASSERT_NE(s, nullptr);
  auto msg = [](const std::string& to, const std::string& link) {
    return "From: a@example.org\nTo: Bob <" + to + ">\nSubject: hi\n\nDear " + to + ",\nsign in at " + link + "\n";
  };
  const std::string link = "http://x.example/landing?email=bob.smith@example.net";
  EXPECT_TRUE(hit(*s, msg("bob.smith@example.net", link), "LINK_HAS_RCPT"));
  EXPECT_TRUE(hit(*s, msg("BOB.smith@example.net", link), "LINK_HAS_RCPT"));  // the rule's /i
  EXPECT_TRUE(hit(*s, msg("bob.smith@example.net", link), "BODY_HAS_RCPT"));
  // Another recipient: the same link does not carry their address.
  EXPECT_FALSE(hit(*s, msg("carol@example.net", link), "LINK_HAS_RCPT"));
  // The value is quoted: the '.' of "bob.smith" matches only a '.'.
  EXPECT_FALSE(hit(*s, msg("bob.smith@example.net", "http://x.example/landing?email=bobxsmith@example.net"),
                   "LINK_HAS_RCPT"));
  // No To: the tag has no value and the templated rules do not run.
  EXPECT_FALSE(hit(*s, "From: a@example.org\nSubject: hi\n\nsee " + link + "\n", "LINK_HAS_RCPT"));
  // A tag no rule sets: the rule never runs, though its other branch matches anything.
  EXPECT_FALSE(hit(*s, msg("bob.smith@example.net", link), "SUBJECT_UNSET_TAG"));

  // The rest of a templated pattern is still checked at load.
  std::vector<Diagnostic> diags;
  load_with_sa("header __TO_ADDR To:addr =~ /(?<MY_TO>.*)/\nuri BROKEN_TEMPLATE m|(%{MY_TO}|\n", "", &diags);
  bool reported = false;
  for (const Diagnostic& d : diags) reported = reported || d.message.find("BROKEN_TEMPLATE") != std::string::npos;
  EXPECT_TRUE(reported);
}

TEST(SaRelays, OriginatingIpHeadersAddTheWebmailClientAsTheOldestRelay) {
  // SpamAssassin's default set lists X-Originating-IP and kin: the address a
  // webmail service recorded is the oldest relay, so RCVD_ILLEGAL_IP sees a
  // forged 252.x client there.
  const std::string rules =
      "originating_ip_headers X-Yahoo-Post-IP X-Originating-IP\n"
      "header ILLEGAL_IP_T X-Spam-Relays-Untrusted =~ / (?:by|ip)=(?:0|2(?:2[4-9]|[3-5]\\d))\\./\n"
      "header CLIENT_LAST X-Spam-Relays-Untrusted =~ /\\[ ip=203\\.0\\.113\\.9 .*\\] \\[ ip=252\\.211\\.13\\.169 rdns= helo= by= /\n";
  const std::string msg =
      "Received: from unknown (HELO pc) (203.0.113.9) by mx.example.net with SMTP\n"
      "X-Originating-IP: [252.211.13.169]\n"
      "From: a@b.example\nTo: c@d.example\nSubject: hi\n\nhello\n";
  auto s = load_with_sa(rules);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, msg, "ILLEGAL_IP_T"));
  EXPECT_TRUE(hit(*s, msg, "CLIENT_LAST"));
  // Not an address (an octet over 255), or a field not listed: no relay.
  std::string bad = msg;
  bad.replace(bad.find("252.211"), 3, "256");
  EXPECT_FALSE(hit(*s, bad, "ILLEGAL_IP_T"));
  std::string other = msg;
  other.replace(other.find("X-Originating-IP"), 16, "X-Client-IP");
  EXPECT_FALSE(hit(*s, other, "ILLEGAL_IP_T"));
  // A webmail hop: "from IP (SquirrelMail authenticated user ...) by HOST
  // with HTTP" (below a public relay: an authenticated first hop is trusted).
  EXPECT_TRUE(hit(*s,
                  "Received: from unknown (HELO pc) (203.0.113.9) by mx.example.net with SMTP\n"
                  "Received: from 203.0.113.7 (SquirrelMail authenticated user jo@example.org); by 0.0.0.0 with HTTP;\n"
                  "  Fri, 24 Jun 2005 05:39:22 -0500\nFrom: a@b.example\nSubject: hi\n\nhello\n",
                  "ILLEGAL_IP_T"));  // by=0.0.0.0
  // clear_originating_ip_headers empties the list.
  auto cleared = load_with_sa(rules + "clear_originating_ip_headers\n");
  ASSERT_NE(cleared, nullptr);
  EXPECT_FALSE(hit(*cleared, msg, "ILLEGAL_IP_T"));
}

TEST(SaRules, BodyRulesSeeEachParagraphAloneAsSpamAssassinDoes) {
  // SpamAssassin matches a body rule against each paragraph (white space
  // collapsed to one space, so a paragraph keeps one leading space where its
  // text had some); \A, \z and a /s '.' stay within it.
  auto s = load_with_sa("body ID_ALONE /^[a-z0-9]{6,24}[-_a-z0-9]{12,36}[a-z0-9]{6,24}\\s*\\z/is\n"
                        "body ENDS_PARA /offer\\z/\nbody STARTS_PARA /\\AClick/\n"
                        "body DOT_S /deal.+unsubscribe/s\n");
  ASSERT_NE(s, nullptr);
  auto msg = [](const std::string& body) { return "From: a@example.org\nTo: b@example.net\nSubject: hi\n\n" + body; };
  const std::string id = "khvd3zRavGc1lQKE2286PxLSY2lC53Hzm";
  EXPECT_TRUE(hit(*s, msg("Great deal.\n\n" + id + "\n\nbye\n"), "ID_ALONE"));       // a paragraph of its own, not the last
  EXPECT_FALSE(hit(*s, msg("Great deal.\n\n   " + id + "\n\nbye\n"), "ID_ALONE"));  // led by a space
  EXPECT_TRUE(hit(*s, msg("A special offer\n\nClick here\n"), "ENDS_PARA"));
  EXPECT_TRUE(hit(*s, msg("A special offer\n\nClick here\n"), "STARTS_PARA"));
  EXPECT_FALSE(hit(*s, msg("A special offer now\n\nPlease Click here\n"), "ENDS_PARA"));
  EXPECT_FALSE(hit(*s, msg("A special offer now\n\nPlease Click here\n"), "STARTS_PARA"));
  EXPECT_TRUE(hit(*s, msg("a deal, to unsubscribe\nwrite\n"), "DOT_S"));  // one newline: the same paragraph
  EXPECT_FALSE(hit(*s, msg("a deal\n\nto unsubscribe write\n"), "DOT_S"));
}

TEST(SaRules, AMatchDoesNotRunIntoTheNextParagraphAndRepeatsSeeWhatPrecedes) {
  // \s and [^x] would cross from one paragraph into the next in one text;
  // SpamAssassin never sees them together ("$174.00" then "20/40GB").
  auto s = load_with_sa("body MONEY_T /\\$\\s?[1-9][\\d.,\\s]{5,20}\\d/\n"
                        "rawbody __HREF_T /^[^>].*?<a href=/im\ntflags __HREF_T multiple maxhits=100\n"
                        "meta TWO_HREF_LINES __HREF_T >= 2\n");
  ASSERT_NE(s, nullptr);
  auto msg = [](const std::string& body) { return "From: a@example.org\nTo: b@example.net\nSubject: hi\n\n" + body; };
  EXPECT_FALSE(hit(*s, msg("TAPE DRIVE\n\n$174.00\n\n20/40GB DRIVE\n"), "MONEY_T"));
  EXPECT_TRUE(hit(*s, msg("a sum of $174 000 000\n"), "MONEY_T"));
  // tflags multiple counts again from where the match ended, not from a new
  // start of line: two links on one line count once (^ anchors the line).
  EXPECT_FALSE(hit(*s, msg("x <a href=1>one</a> <A href=2>two</A>\n"), "TWO_HREF_LINES"));
  EXPECT_TRUE(hit(*s, msg("x <a href=1>one</a>\ny <a href=2>two</a>\n"), "TWO_HREF_LINES"));
}

TEST(RegexSyntax, LineAnchorsReplaceStringAnchorsOutsideClassesAndEscapes) {
  EXPECT_EQ(regex_line_anchors("\\Afoo\\s*\\z"), "^foo\\s*$");
  EXPECT_EQ(regex_line_anchors("a\\Z"), "a$");
  EXPECT_EQ(regex_line_anchors("[\\A\\z]\\\\z\\Q\\z\\E"), "[\\A\\z]\\\\z\\Q\\z\\E");
  EXPECT_EQ(regex_templates("x%{A_B}y\\%{C}%{A_B}%{lower}%{D(arg)}"), (std::vector<std::string>{"A_B", "D(arg)"}));
  EXPECT_EQ(regex_quote("a.b@c-d_e"), "a\\.b\\@c\\-d_e");
}
