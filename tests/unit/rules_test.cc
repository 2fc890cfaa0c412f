// rules_test.cc - every rule syntax form, its errors, and meta evaluation.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include "rules/ruleset.h"
#include "checks/builtin.h"
#include "rules/prefilter.h"
#include "test_util.h"

using namespace spamgate;
using spamgate::test::hit;
using spamgate::test::snapshot_with;

namespace {

const std::string kMsg =
    "From: \"Sales Team\" <offers@deals.example.com>\n"
    "To: bob@example.net, \"Carol\" <carol@example.net>\n"
    "Cc: dave@example.net\n"
    "Subject: =?UTF-8?Q?Cheap_V=C3=ADagra?= offer\n"
    "Message-ID: <abc@deals.example.com>\n"
    "Content-Type: multipart/alternative; boundary=b\n"
    "\n"
    "--b\nContent-Type: text/plain\n\nBuy now at http://192.0.2.5/shop\n"
    "--b\nContent-Type: text/html\n\n<p>Buy <b>now</b> at <a href=\"https://bit.ly/x\">here</a></p>\n"
    "--b--\n";

std::vector<std::string> errors_of(const std::string& rules, const std::string& local = "") {
  std::vector<Diagnostic> d;
  auto s = snapshot_with(rules, &d, "", local);
  std::vector<std::string> out;
  for (const auto& e : d) out.push_back(e.str());
  if (s != nullptr) {
    EXPECT_TRUE(out.empty());
  }
  return out;
}

// The snapshot's rule warnings as lint prints them (file:line: message).
std::vector<std::string> warnings_of(const Snapshot& s) {
  std::vector<std::string> out;
  for (const Diagnostic& d : s.warnings) out.push_back(d.str());
  return out;
}

const RulesCheck* rules_check_of(const Snapshot& s) {
  for (const auto& c : s.checks)
    if (const auto* rc = dynamic_cast<const RulesCheck*>(c.get())) return rc;
  return nullptr;
}

bool contains(const std::vector<std::string>& v, const std::string& needle) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

}  // namespace

TEST(RuleSyntax, HeaderRuleMatchesDecodedValue) {
  auto s = snapshot_with("header SUBJ_V Subject =~ /v[ií]agra/i\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "SUBJ_V"));
  EXPECT_FALSE(hit(*s, "Subject: hello\n\nx\n", "SUBJ_V"));
}

TEST(RuleSyntax, HeaderRawAddrAndNameModifiers) {
  auto s = snapshot_with(
      "header RAW_ENC Subject:raw =~ /=\\?UTF-8\\?Q\\?/\n"
      "header DEC_ENC Subject =~ /=\\?UTF-8/\n"
      "header FROM_ADDR From:addr =~ /^offers\\@deals\\.example\\.com$/\n"
      "header FROM_NAME From:name =~ /^Sales Team$/\n"
      "header TO_ADDR2 To:addr =~ /^carol\\@example\\.net$/m\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "RAW_ENC"));
  EXPECT_FALSE(hit(*s, kMsg, "DEC_ENC"));
  EXPECT_TRUE(hit(*s, kMsg, "FROM_ADDR"));
  EXPECT_TRUE(hit(*s, kMsg, "FROM_NAME"));
  EXPECT_TRUE(hit(*s, kMsg, "TO_ADDR2"));
}

TEST(RuleSyntax, NegatedHeaderRuleHitsWhenHeaderIsMissingUnlessIfUnset) {
  auto s = snapshot_with(
      "header NO_XM X-Mailer !~ /./\n"
      "header NO_XM_UNSET X-Mailer !~ /./ [if-unset: unset]\n"
      "header XM_UNSET_MATCH X-Mailer =~ /^unset$/ [if-unset: unset]\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "NO_XM"));
  EXPECT_FALSE(hit(*s, kMsg, "NO_XM_UNSET"));
  EXPECT_TRUE(hit(*s, kMsg, "XM_UNSET_MATCH"));
  EXPECT_FALSE(hit(*s, "X-Mailer: Foo\n\nx", "NO_XM"));
}

TEST(RuleSyntax, ExistsAllAndToCc) {
  auto s = snapshot_with(
      "header HAS_CC exists:Cc\n"
      "header HAS_BCC exists:Bcc\n"
      "header ALL_HDRS ALL =~ /^Cc: dave\\@example\\.net$/m\n"
      "header TOCC_DAVE ToCc =~ /dave\\@/\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "HAS_CC"));
  EXPECT_FALSE(hit(*s, kMsg, "HAS_BCC"));
  EXPECT_TRUE(hit(*s, kMsg, "ALL_HDRS"));
  EXPECT_TRUE(hit(*s, kMsg, "TOCC_DAVE"));
}

TEST(RuleSyntax, BodySeesSubjectAndRenderedHtmlRawbodySeesMarkup) {
  auto s = snapshot_with(
      "body BODY_SUBJ /Cheap Víagra offer/\n"
      "body BODY_HTML_TEXT /Buy now at here/\n"
      "body BODY_NO_TAGS /<b>/\n"
      "rawbody RAW_TAGS /<b>now<\\/b>/\n"
      "full FULL_BOUNDARY /^--b--$/m\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "BODY_SUBJ"));
  EXPECT_TRUE(hit(*s, kMsg, "BODY_HTML_TEXT"));
  EXPECT_FALSE(hit(*s, kMsg, "BODY_NO_TAGS"));
  EXPECT_TRUE(hit(*s, kMsg, "RAW_TAGS"));
  EXPECT_TRUE(hit(*s, kMsg, "FULL_BOUNDARY"));
}

TEST(RuleSyntax, UriRulesSeeTextAndHtmlLinks) {
  auto s = snapshot_with(
      "uri URI_IP m{^https?://\\d+\\.\\d+\\.\\d+\\.\\d+}\n"
      "uri URI_SHORT m!bit\\.ly!i\n"
      "uri URI_NONE /example\\.invalid/\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, kMsg, "URI_IP"));
  EXPECT_TRUE(hit(*s, kMsg, "URI_SHORT"));
  EXPECT_FALSE(hit(*s, kMsg, "URI_NONE"));
}

TEST(RuleSyntax, HashNeedsEscapingAndCommentsAreIgnored) {
  auto s = snapshot_with(
      "# a comment line\n"
      "body ENTITY /&\\#\\d+;/   # trailing comment\n"
      "   \n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, "Subject: x\n\nprice &#36;5\n", "ENTITY"));
  EXPECT_FALSE(hit(*s, "Subject: x\n\nprice 5\n", "ENTITY"));
}

TEST(RuleMeta, BooleanOperatorsSumsAndMetasOfMetas) {
  auto s = snapshot_with(
      "body __A /alpha/\nbody __B /beta/\nbody __C /gamma/\n"
      "meta AND_AB __A && __B\n"
      "meta OR_NOT __C || !__A\n"
      "meta TWO_OF_THREE (__A + __B + __C) > 1\n"
      "meta META_OF_META AND_AB && !OR_NOT\n");
  ASSERT_NE(s, nullptr);
  const std::string ab = "Subject: x\n\nalpha beta\n";
  const std::string c = "Subject: x\n\ngamma\n";
  EXPECT_TRUE(hit(*s, ab, "AND_AB"));
  EXPECT_FALSE(hit(*s, ab, "OR_NOT"));
  EXPECT_TRUE(hit(*s, ab, "TWO_OF_THREE"));
  EXPECT_TRUE(hit(*s, ab, "META_OF_META"));
  EXPECT_FALSE(hit(*s, c, "AND_AB"));
  EXPECT_TRUE(hit(*s, c, "OR_NOT"));
  EXPECT_FALSE(hit(*s, c, "TWO_OF_THREE"));
  EXPECT_FALSE(hit(*s, c, "META_OF_META"));
}

TEST(RuleMeta, MetaCanUseBuiltinSymbols) {
  auto s = snapshot_with("body __PILLS /pills/\nmeta PILLS_IN_HTML_ONLY __PILLS && MIME_HTML_ONLY\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, "Content-Type: text/html\n\n<p>pills</p>\n", "PILLS_IN_HTML_ONLY"));
  EXPECT_FALSE(hit(*s, "Content-Type: text/plain\n\npills\n", "PILLS_IN_HTML_ONLY"));
}

TEST(RuleErrors, BadRegexNamesFileAndLine) {
  auto e = errors_of("body OK /fine/\nbody BROKEN /(unclosed/\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(contains(e, "50_test.cf:2: rule 'BROKEN': bad regex")) << e[0];
}

TEST(RuleErrors, EveryErrorIsReportedWithItsLine) {
  auto e = errors_of(
      "body A /a/\n"
      "meta M1 A && MISSING\n"          // 2 dangling reference
      "score NOPE 1\n"                   // 3 unknown symbol
      "frobnicate X /y/\n"               // 4 unknown directive
      "body BADFLAG /x/q\n"              // 5 unknown flag
      "body UNCLOSED /abc\n"             // 6 not closed
      "header H1 Subject /x/\n"          // 7 no operator
      "meta CYC1 CYC2\nmeta CYC2 CYC1\n" // 8, 9 cycle
      "header H2 Subject:bogus =~ /x/\n" // 10 bad modifier
      "score A abc\n"                    // 11 not a number
      "meta BADEXPR (A &&\n");           // 12 bad expression
  EXPECT_TRUE(contains(e, ":2: meta 'M1' refers to unknown rule 'MISSING'"));
  EXPECT_TRUE(contains(e, ":3: score for unknown symbol 'NOPE'"));
  EXPECT_TRUE(contains(e, ":4: unknown directive 'frobnicate'"));
  EXPECT_TRUE(contains(e, ":5: rule 'BADFLAG': unknown regex flag 'q'"));
  EXPECT_TRUE(contains(e, ":6: regex is not closed"));
  EXPECT_TRUE(contains(e, ":7: header rule needs '=~' or '!~'"));
  EXPECT_TRUE(contains(e, "cycle"));
  EXPECT_TRUE(contains(e, ":10: unknown header modifier ':bogus'"));
  EXPECT_TRUE(contains(e, ":11: score for 'A' must be a number"));
  EXPECT_TRUE(contains(e, ":12: meta expression"));
}

TEST(RuleErrors, ScoreForAnErroneousRuleIsNotReportedTwice) {
  auto e = errors_of("body BAD /(/\nscore BAD 2\ndescribe BAD broken\n");
  EXPECT_EQ(e.size(), 1u);
}

TEST(RuleScores, LaterScoreWinsLocalFileLastAndZeroDisables) {
  const std::string rules =
      "body PHRASE /free money/i\nscore PHRASE 2.5\n"
      "body OTHER /free/i\nscore OTHER 1\nscore OTHER 3\n"
      "meta BOTH PHRASE && OTHER\nscore BOTH 1\n";
  auto s = snapshot_with(rules, nullptr, "", "score PHRASE 0\n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->symbols.score_millis("OTHER"), 3000);
  const std::string msg = "Subject: x\n\nfree money\n";
  auto hits = test::hits_of(*s, msg);
  EXPECT_EQ(hits, std::vector<std::string>{"OTHER"});  // PHRASE disabled, so BOTH cannot fire
}

TEST(RuleScores, DefaultScoresFollowSpamAssassin) {
  auto s = snapshot_with("body PLAIN /a/\nbody NICE /b/\ntflags NICE nice\nbody __SUB /c/\n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->symbols.score_millis("PLAIN"), 1000);
  EXPECT_EQ(s->symbols.score_millis("NICE"), -1000);
  EXPECT_EQ(s->symbols.score_millis("__SUB"), 0);
  EXPECT_EQ(s->symbols.score_millis("USER_IN_WELCOMELIST"), -100000);
  EXPECT_EQ(s->symbols.score_millis("USER_IN_BLOCKLIST"), 100000);
}

TEST(RuleLists, WelcomelistAndBlocklistGlobsMatchSenders) {
  auto s = snapshot_with("welcomelist_from *@Partner.example boss@corp.example\nblocklist_from spam?@bad.example\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, "From: Ann <ann@partner.example>\n\nx\n", "USER_IN_WELCOMELIST"));
  EXPECT_TRUE(hit(*s, "From: BOSS@corp.example\n\nx\n", "USER_IN_WELCOMELIST"));
  EXPECT_FALSE(hit(*s, "From: ann@partner.example.evil.test\n\nx\n", "USER_IN_WELCOMELIST"));
  EXPECT_TRUE(hit(*s, "From: spam1@bad.example\n\nx\n", "USER_IN_BLOCKLIST"));
  EXPECT_FALSE(hit(*s, "From: spam12@bad.example\n\nx\n", "USER_IN_BLOCKLIST"));
  ScanResult r = scan_message(*s, "From: ann@partner.example\nSubject: x\n\nx\n", Envelope{});
  EXPECT_EQ(r.verdict.score_tenths, -1000);
}

// blocklist_to / welcomelist_to read the recipients (To, Cc, the
// envelope); un- lines remove what an earlier file listed.
TEST(RuleLists, RecipientListsAndRemovals) {
  auto s = snapshot_with("blocklist_to *@spamtrap.example\nwelcomelist_to abuse@*\n"
                         "blocklist_from *@bad.example\nunblocklist_from *@bad.example\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, "From: a@x.example\nTo: trap1@spamtrap.example\n\nx\n", "USER_IN_BLOCKLIST_TO"));
  // a welcome counts for the envelope only: anyone can write "Cc: abuse@..."
  EXPECT_FALSE(hit(*s, "From: a@x.example\nCc: Abuse <abuse@host.example>\n\nx\n", "USER_IN_WELCOMELIST_TO"));
  Envelope to_abuse;
  to_abuse.rcpt_to = {"<abuse@host.example>"};
  EXPECT_NE(scan_message(*s, "From: a@x.example\nSubject: x\n\nx\n", to_abuse).verdict.score_tenths, 0);
  EXPECT_FALSE(hit(*s, "From: a@x.example\nTo: ann@host.example\n\nx\n", "USER_IN_BLOCKLIST_TO"));
  Envelope env;
  env.rcpt_to = {"<hidden@spamtrap.example>"};  // a Bcc: only the envelope knows it
  ScanResult r = scan_message(*s, "From: a@x.example\nTo: ann@host.example\nSubject: x\n\nx\n", env);
  EXPECT_EQ(r.verdict.score_tenths, 100);
  EXPECT_FALSE(hit(*s, "From: spam@bad.example\n\nx\n", "USER_IN_BLOCKLIST"));  // removed by the later line
  auto rcvd = snapshot_with("welcomelist_from_rcvd *@partner.example relay.partner.example\n"
                            "unwelcomelist_from_rcvd *@partner.example\n");
  ASSERT_NE(rcvd, nullptr);
  Envelope relayed;
  relayed.client_name = "relay.partner.example";
  EXPECT_EQ(scan_message(*rcvd, "From: a@partner.example\nSubject: x\n\nx\n", relayed).verdict.score_tenths, 0);
  std::vector<Diagnostic> d;
  EXPECT_EQ(snapshot_with("blocklist_to nobody\n", &d), nullptr);
  ASSERT_FALSE(d.empty());
  EXPECT_NE(d[0].message.find("'nobody' is not an address or glob"), std::string::npos) << d[0].str();
}

// welcomelist_auth counts only for an address SPF, an aligned DKIM
// signature or DMARC authenticates; a forged From gets nothing.
TEST(RuleLists, WelcomelistAuthNeedsAuthentication) {
  std::vector<Diagnostic> d;
  auto s = snapshot_with("welcomelist_auth *@partner.example\ndef_welcomelist_auth *@bank.example\n", &d);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->symbols.score_millis("USER_IN_WELCOMELIST_AUTH"), -100000);
  const MetaCheck* meta = nullptr;
  for (const auto& c : s->checks)
    if (const auto* m = dynamic_cast<const MetaCheck*>(c.get())) meta = m;
  ASSERT_NE(meta, nullptr);
  auto run = [&](const std::string& from, const std::string& mail_from, const AuthResults& auth) {
    Message m = parse_message("From: " + from + "\nSubject: x\n\nx\n", Limits{});
    Envelope env;
    env.mail_from = mail_from;
    CheckContext ctx{m, env, {}, auth, {}};
    std::vector<Hit> hits;
    CheckOutput side;
    EXPECT_TRUE(meta->run(ctx, hits, side).ok());
    std::string out;
    for (const Hit& h : hits) out += h.name + "=" + h.detail + ";";
    return out;
  };
  AuthResults none;
  EXPECT_EQ(run("ann@partner.example", "ann@partner.example", none), "");  // forged or unchecked: nothing
  AuthResults spf;
  spf.spf.result = "pass";
  spf.spf.domain = "partner.example";
  EXPECT_EQ(run("x@other.example", "ann@partner.example", spf),
            "USER_IN_WELCOMELIST_AUTH=ann@partner.example matches *@partner.example (SPF pass);");
  AuthResults spf_other = spf;
  spf_other.spf.domain = "other.example";  // SPF passed for another domain
  EXPECT_EQ(run("ann@partner.example", "ann@partner.example", spf_other), "");
  AuthResults dkim;
  dkim.dkim.checked = true;
  dkim.dkim.sigs.push_back({"pass", "partner.example", "s1", "abcdefgh", ""});
  EXPECT_EQ(run("Ann <ann@mail.partner.example>", "", dkim), "");  // glob is *@partner.example
  EXPECT_EQ(run("Ann <ann@partner.example>", "", dkim),
            "USER_IN_WELCOMELIST_AUTH=ann@partner.example matches *@partner.example (DKIM pass, d=partner.example);");
  AuthResults parent = dkim;  // a parent domain's signature vouches for a subdomain
  EXPECT_NE(run("Ann <ann@partner.example>", "", parent), "");
  auto sub = snapshot_with("welcomelist_auth *@tenant.github.io *@mail.bank.example\n");
  ASSERT_NE(sub, nullptr);
  for (const auto& c : sub->checks)
    if (const auto* m = dynamic_cast<const MetaCheck*>(c.get())) meta = m;
  AuthResults suffix;
  suffix.dkim.checked = true;
  suffix.dkim.sigs.push_back({"pass", "github.io", "s1", "abcdefgh", ""});  // a public suffix
  EXPECT_EQ(run("x@tenant.github.io", "", suffix), "");
  suffix.dkim.sigs[0].domain = "bank.example";
  EXPECT_NE(run("x@mail.bank.example", "", suffix), "");
  for (const auto& c : s->checks)
    if (const auto* m = dynamic_cast<const MetaCheck*>(c.get())) meta = m;
  AuthResults dkim_fail = dkim;
  dkim_fail.dkim.sigs[0].result = "fail";
  EXPECT_EQ(run("ann@partner.example", "", dkim_fail), "");
  AuthResults dmarc;
  dmarc.dmarc.result = "pass";
  dmarc.dmarc.from_domain = "bank.example";
  EXPECT_EQ(run("b@bank.example", "", dmarc),
            "USER_IN_DEF_WELCOMELIST_AUTH=b@bank.example matches *@bank.example (DMARC pass);");
  // lint names the safer form for a plain welcomelist_from
  auto plain = snapshot_with("welcomelist_from *@partner.example\n");
  ASSERT_NE(plain, nullptr);
  EXPECT_TRUE(contains(warnings_of(*plain), "welcomelist_auth ADDRESS"));
}

// welcomelist_from_rcvd: the address counts only when the SMTP client's
// verified name is the relay domain or under it.
TEST(RuleLists, WelcomelistFromRcvdNeedsTheRelay) {
  auto s = snapshot_with("welcomelist_from_rcvd *@partner.example partner-mail.example\n");
  ASSERT_NE(s, nullptr);
  const MetaCheck* meta = nullptr;
  for (const auto& c : s->checks)
    if (const auto* m = dynamic_cast<const MetaCheck*>(c.get())) meta = m;
  ASSERT_NE(meta, nullptr);
  auto run = [&](const std::string& client_name) {
    Message m = parse_message("From: ann@partner.example\nSubject: x\n\nx\n", Limits{});
    Envelope env;
    env.client_name = client_name;
    AuthResults auth;
    CheckContext ctx{m, env, {}, auth, {}};
    std::vector<Hit> hits;
    CheckOutput side;
    EXPECT_TRUE(meta->run(ctx, hits, side).ok());
    return hits.empty() ? std::string() : hits[0].name + "=" + hits[0].detail;
  };
  EXPECT_EQ(run("out3.partner-mail.example"),
            "USER_IN_WELCOMELIST_AUTH=ann@partner.example matches *@partner.example (relayed by out3.partner-mail.example)");
  EXPECT_EQ(run("partner-mail.example"), run("partner-mail.example"));
  EXPECT_NE(run("partner-mail.example"), "");
  EXPECT_EQ(run("evilpartner-mail.example"), "");  // not under it
  EXPECT_EQ(run("unknown"), "");                   // no verified name
  EXPECT_EQ(run(""), "");
  std::vector<std::string> errs;
  std::vector<Diagnostic> d;
  EXPECT_EQ(snapshot_with("welcomelist_from_rcvd *@partner.example\n", &d), nullptr);  // the relay is required
  ASSERT_FALSE(d.empty());
  EXPECT_NE(d[0].message.find("takes an address (or glob) and a relay domain"), std::string::npos);
}

TEST(RuleLists, GlobMatching) {
  EXPECT_TRUE(glob_match("*@example.com", "a@example.com"));
  EXPECT_TRUE(glob_match("a?c@x", "abc@x"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("*@example.com", "a@example.com.evil"));
  EXPECT_TRUE(glob_match("*@*.example.com", "a@mail.EXAMPLE.com"));
}

// The x flag keeps the rule out of the Hyperscan prefilter (which would see
// at once that it cannot match), so PCRE2 itself has to give up.
TEST(RuleSafety, CatastrophicRegexEndsAtTheMatchLimit) {
  auto s = snapshot_with("body SLOW /(a+)+$/x\nbody FAST /aaa/\n", nullptr, "[limits]\npcre_match_limit = 10000\n");
  ASSERT_NE(s, nullptr);
  ScanResult r = scan_message(*s, "Subject: x\n\n" + std::string(40, 'a') + "!\n", Envelope{});
  ASSERT_EQ(r.check_errors.size(), 1u);
  EXPECT_EQ(r.check_errors[0].check, "rules");
  EXPECT_NE(r.check_errors[0].message.find("SLOW"), std::string::npos);
  bool fast = false;
  for (const Hit& h : r.hits) fast = fast || h.name == "FAST";
  EXPECT_TRUE(fast);  // the other rules still ran
}

// The prefilter only skips rules that cannot match: the same hits with it as
// PCRE2 alone would give, for widened repeats, lookarounds, non-ASCII
// patterns, caseless and multi-line rules, and text that is not UTF-8.
TEST(RulePrefilter, SameHitsAsPcreAlone) {
  const std::string rules =
      "body GAP /\\bcheap\\b.{0,10}\\bpills\\b/i\n"        // gap of at most 10: widened in the prefilter
      "body NOLOOK /\\bviagra\\b(?! free)/i\n"                  // negative lookahead
      "body ACCENT /v[àa]lium/i\n"                                // non-ASCII class
      "body LINES /^(?:>[^\\n]*\\n){2}/m\n"                    // multi-line, counted group
      "rawbody TAG /<font[^>]{0,20}size=1/i\n"
      "full HDR /^X-Test: yes/m\n";
  auto s = snapshot_with(rules);
  ASSERT_NE(s, nullptr);
  const RulesCheck* rc = rules_check_of(*s);
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(rc->prefiltered(), (std::pair<std::size_t, std::size_t>{6, 6}));  // every text rule went to Hyperscan
  struct Case {
    std::string body;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"cheap little pills", {"GAP"}},
      {"cheap, really truly very cheap tiny pills", {"GAP"}},
      {"cheap pills are not cheap at all, I mean the cheapest little blue pills", {"GAP"}},
      {"cheap and honestly rather expensive pills", {}},
      {"VIAGRA here", {"NOLOOK"}},
      {"viagra free", {}},
      {"Vàlium and more", {"ACCENT"}},
      {"> one\n> two\nreply", {"LINES"}},
      {"\xff\xfe not utf-8: cheap pills", {"GAP"}},
  };
  for (const Case& c : cases) {
    std::string msg = "X-Test: yes\nSubject: t\nContent-Type: text/plain; charset=utf-8\n\n" + c.body + "\n";
    std::vector<std::string> got = test::hits_of(*s, msg);
    std::vector<std::string> want = c.want;
    want.push_back("HDR");
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want) << c.body;
  }
  std::string html = "Subject: h\nContent-Type: text/html\n\n<html><font color=red size=1>x</font></html>\n";
  EXPECT_TRUE(test::hit(*s, html, "TAG"));
}

// Issue 16: braces that belong to an escape, a \Q...\E quote or a class
// are not counted repeats; widening them made the prefilter pattern miss
// text PCRE2 matches, so these rules silently never hit.
TEST(RulePrefilter, BracesInEscapesQuotesAndClassesAreNotWidened) {
  auto s = snapshot_with(
      "body APOS /don\\x{2019}t miss/\n"          // \x{...}: the braces are the code point
      "body QUOTED /price\\Q{3}\\E!/\n"            // \Q...\E: literal "{3}"
      "body POSIX /id[[:digit:]{3}]x/\n"          // a class holding [:digit:], '{', '3' and '}'
      "body OCTAL /\\o{101}BC/\n"                  // \o{101} is 'A'
      "body CLOSE /[]{2}]z/\n");                   // "[]...]": ']' first is literal
  ASSERT_NE(s, nullptr);
  const RulesCheck* rc = rules_check_of(*s);
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(rc->prefiltered(), (std::pair<std::size_t, std::size_t>{5, 5}));
  auto body = [](const std::string& text) {
    return "Subject: t\nContent-Type: text/plain; charset=utf-8\n\n" + text + "\n";
  };
  EXPECT_TRUE(hit(*s, body("don\xE2\x80\x99t miss this"), "APOS"));
  EXPECT_FALSE(hit(*s, body("dont miss this"), "APOS"));
  EXPECT_TRUE(hit(*s, body("price{3}!"), "QUOTED"));
  EXPECT_FALSE(hit(*s, body("priceee!"), "QUOTED"));
  EXPECT_TRUE(hit(*s, body("id{x and id7x"), "POSIX"));
  EXPECT_TRUE(hit(*s, body("ABC"), "OCTAL"));
  EXPECT_TRUE(hit(*s, body("}z"), "CLOSE"));
}

TEST(RulePrefilter, WidenRewritesOnlyRealRepeats) {
  struct Case {
    const char* regex;
    const char* flags;
    const char* want;  // "" = not prefiltered
  };
  const Case cases[] = {
      {"a{2}b{1,}c{0,20}?", "", "a+b+c*?"},  // a repeat that may be empty stays optional, one that may not stays required
      {"don\\x{2019}t", "", "don\\x{2019}t"},
      {"\\Q{3}\\E{3}", "", "\\Q{3}\\E+"},
      {"[{3}]{3}", "", "[{3}]+"},
      {"[^]{2}]{2}", "", "[^]{2}]+"},
      {"[[:alpha:]{2}]{2}", "", "[[:alpha:]{2}]+"},
      {"a(?#{2})b{2}", "", "a(?#{2})b+"},
      {"\\p{L}{2}\\N{U+2019}", "", "\\p{L}+\\N{U+2019}"},
      {"\\bword\\b\\B", "i", "word"},
      {"[\\b]x", "", "[\\b]x"},          // in a class \b is a backspace
      {"x{,3}", "", "x{,3}"},            // not a repeat for PCRE2 10.42
      {"a{2}", "x", ""},
      {"(?x) a{2} # {3}", "", ""},
      {"\\x{20", "", ""},
  };
  for (const Case& c : cases) {
    auto w = Prefilter::widen(c.regex, c.flags);
    if (*c.want == '\0') {
      EXPECT_FALSE(w.ok()) << c.regex << " -> " << (w.ok() ? w.value() : "");
    } else {
      ASSERT_TRUE(w.ok()) << c.regex << ": " << w.status().message();
      EXPECT_EQ(w.value(), c.want) << c.regex;
    }
  }
}

// A rule Hyperscan cannot take still works (PCRE2 runs it on every
// message) and lint names it, so a slow local file can be explained.
TEST(RulePrefilter, RuleLeftOutOfThePrefilterStillHitsAndIsReported) {
  auto s = snapshot_with("body OK /plain/\nbody KEEP /price\\K\\d+/\nbody EXT /a b c/x\n");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(hit(*s, "Subject: t\n\nprice42\n", "KEEP"));
  EXPECT_TRUE(hit(*s, "Subject: t\n\nabc\n", "EXT"));
  std::vector<std::string> w = warnings_of(*s);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_TRUE(contains(w, "50_test.cf:2: rule 'KEEP' runs on every message, not prefiltered: Hyperscan: \\K"));
  EXPECT_TRUE(contains(w, "50_test.cf:3: rule 'EXT' runs on every message, not prefiltered: the x flag"));
}

// Issue 20: SpamAssassin's long generated rules (__FILL_THIS_FORM_SHORT2,
// 2,767 characters: a tenth of the scan time with its set) ran on every
// message. A part every match contains is prefiltered instead.
TEST(RulePrefilter, RequiredPartOfALongPattern) {
  struct Case {
    const char* regex;
    const char* want;  // "" = no part
  };
  const Case cases[] = {
      {"x?(?:ab|cd)[0-9]+(?=q)efg", "(?:ab|cd)[0-9]+efg"},    // a run of items; the lookahead left out
      {"(?:foo|bar)?\\s(?:baz|quux)", "\\s(?:baz|quux)"},  // an optional item weighs nothing
      {"a|bcd", "(?:a|bcd)"},                                // each branch gives its part
      {"(a)\\1bc", ""},                                       // a back reference: no part
      {"(?i)abc", ""},                                       // inline options change what follows
      {"(?i:abc)x", "(?i:abc)x"},                            // ...a group with options keeps them
      {"^\\bword\\b$", "word"},
  };
  // An escape is one item: a window never starts or ends inside \x41.
  auto esc = Prefilter::required_part("\\x41" + std::string(997, 'b') + "c", "", 999);
  ASSERT_TRUE(esc.has_value());
  EXPECT_EQ(esc->first.find('4'), std::string::npos) << esc->first.substr(0, 10);
  for (const Case& c : cases) {
    auto part = Prefilter::required_part(c.regex, "i", 100);
    if (*c.want == '\0') {
      EXPECT_FALSE(part.has_value()) << c.regex << " -> " << (part ? part->first : "");
    } else {
      ASSERT_TRUE(part.has_value()) << c.regex;
      EXPECT_EQ(part->first, c.want) << c.regex;
    }
  }
  // Too long for the budget: the heaviest piece that fits, here a part of
  // a group's content, options kept.
  auto part = Prefilter::required_part("(?i:(?:zz|yy)[a-z]{0,9}(?:name|address|phone))_+", "", 30);
  ASSERT_TRUE(part.has_value());
  EXPECT_EQ(part->first, "(?i:(?:name|address|phone))");
}

TEST(RulePrefilter, LongRuleIsPrefilteredOnItsRequiredPartAndStillHits) {
  // Over 1,000 characters: a list of 200 short words, then the phrase.
  std::string words;
  for (int i = 0; i < 200; ++i) words += (i ? "|w" : "w") + std::to_string(i) + "x";
  const std::string rules = "body LONG /(?:" + words + ")?\\s?(?:first|last) name:\\s*_{3,}/i\n"
                            "body FUZZY /(?:" + words + ")(?:" + words + ")/i\n";
  auto s = snapshot_with(rules);
  ASSERT_NE(s, nullptr);
  const RulesCheck* rc = rules_check_of(*s);
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(rc->prefiltered(), (std::pair<std::size_t, std::size_t>{2, 2}));
  auto body = [](const std::string& text) { return "Subject: t\nContent-Type: text/plain\n\n" + text + "\n"; };
  EXPECT_TRUE(hit(*s, body("Please give: First Name: ______"), "LONG"));
  EXPECT_TRUE(hit(*s, body("w17x LAST name: ___"), "LONG"));
  EXPECT_FALSE(hit(*s, body("first name: __ only two"), "LONG"));
  EXPECT_TRUE(hit(*s, body("w3xw150x"), "FUZZY"));
  EXPECT_FALSE(hit(*s, body("w3x w150x"), "FUZZY"));
  EXPECT_TRUE(warnings_of(*s).empty());
}

// Hyperscan refuses a ^ after other items ("Embedded start anchors"): such
// a rule is prefiltered without its anchors instead of running always.
TEST(RulePrefilter, EmbeddedAnchorsAreDroppedForThePrefilter) {
  auto w = Prefilter::widen("^Message-Id:.*?^Received:[$^]x$", "msi", true);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.value(), "Message-Id:.*?Received:[$^]x");
  auto s = snapshot_with("full MSGID_FIRST /^Message-Id:.*?^Received:/msi\n");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(rules_check_of(*s)->prefiltered(), (std::pair<std::size_t, std::size_t>{1, 1}));
  EXPECT_TRUE(warnings_of(*s).empty());
  EXPECT_TRUE(hit(*s, "Message-ID: <a@b>\nReceived: from x\nSubject: t\n\nbody\n", "MSGID_FIRST"));
  EXPECT_FALSE(hit(*s, "Message-ID: <a@b> Received: from x\nSubject: t\n\nbody\n", "MSGID_FIRST"));
  EXPECT_FALSE(hit(*s, "Received: from x\nMessage-ID: <a@b>\nSubject: t\n\nbody\n", "MSGID_FIRST"));
}

// rules_cache_dir: SpamAssassin's set took 8 s to load at every start; with
// the compiled databases on disk a start takes 0.7 s. A damaged or
// unwritable cache costs only time, with a warning.
TEST(RulePrefilter, CompiledDatabasesAreKeptOnDiskAndADamagedFileIsCompiledAgain) {
  test::TempDir dir;
  const std::string cache = dir.path() + "/cache";
  // A pattern unique to this run, so no database of another test is shared in memory.
  const std::string unique = "tok" + std::to_string(std::random_device{}()) + "en";
  const std::vector<Prefilter::Pattern> pats = {{unique + "\\s+pills", "i"}, {"viagra", "ib"}};
  auto scan = [](const Prefilter& pre, const std::string& text) {
    std::vector<char> out;
    pre.candidates(text, out);
    return out;
  };
  {
    auto first = Prefilter::build(pats, cache);
    EXPECT_EQ(first->from_disk(), 0u);
    EXPECT_EQ(first->cache_problem(), "");
    EXPECT_EQ(scan(*first, unique + "  pills"), (std::vector<char>{1, 0}));
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(cache)) files.push_back(e.path());
  ASSERT_EQ(files.size(), 2u);  // one database per mode (UTF-8, bytes)
  {
    auto again = Prefilter::build(pats, cache);  // the first one is gone: read from disk
    EXPECT_EQ(again->from_disk(), 2u);
    EXPECT_EQ(again->compiled(), 2u);
    EXPECT_EQ(scan(*again, unique + "  pills"), (std::vector<char>{1, 0}));
    EXPECT_EQ(scan(*again, "VIAGRA"), (std::vector<char>{0, 1}));
  }
  // One byte of a file changed: that database is compiled again, the file
  // rewritten, and the load says so.
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(files[0]) / 2));
    f.put('\x5a');
  }
  {
    auto damaged = Prefilter::build(pats, cache);
    EXPECT_EQ(damaged->from_disk(), 1u);
    EXPECT_NE(damaged->cache_problem().find("damaged"), std::string::npos) << damaged->cache_problem();
    EXPECT_EQ(scan(*damaged, unique + "  pills"), (std::vector<char>{1, 0}));
    EXPECT_EQ(scan(*damaged, "VIAGRA"), (std::vector<char>{0, 1}));
  }
  EXPECT_EQ(Prefilter::build(pats, cache)->from_disk(), 2u);  // rewritten
  // A cache directory that cannot be made: the rules work, the reason is told.
  std::ofstream(dir.path() + "/a-file") << "x";
  auto nowhere = Prefilter::build({{unique + "nowhere", ""}}, dir.path() + "/a-file/cache");
  EXPECT_EQ(nowhere->compiled(), 1u);
  EXPECT_NE(nowhere->cache_problem().find("cannot write"), std::string::npos) << nowhere->cache_problem();
}

// The config key: a relative rules_cache_dir is next to the config file; a
// restart (a second load) reads every database from it.
TEST(RulePrefilter, RulesCacheDirFromTheConfig) {
  test::TempDir dir;
  const std::string unique = "cfgtok" + std::to_string(std::random_device{}());
  std::string cfg = test::write_config(dir, "body A /" + unique + "\\d+/i\nbody B /another " + unique + "/\n",
                                       "rules_cache_dir = \"hs-cache\"\n");
  std::vector<Diagnostic> d;
  {
    auto first = load_snapshot(cfg, d);
    ASSERT_TRUE(first.ok());
    EXPECT_EQ(first.value()->config.rules_cache_dir, dir.path() + "/hs-cache");
    EXPECT_EQ(rules_check_of(*first.value())->databases_from_disk(), 0u);
  }
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() + "/hs-cache"));
  auto second = load_snapshot(cfg, d);
  ASSERT_TRUE(second.ok());
  const RulesCheck* rc = rules_check_of(*second.value());
  EXPECT_EQ(rc->databases_from_disk(), rc->databases().first);
  EXPECT_GE(rc->databases_from_disk(), 1u);
  EXPECT_TRUE(hit(*second.value(), "Subject: x\n\nsee " + unique + "42\n", "A"));
  EXPECT_TRUE(warnings_of(*second.value()).empty());
}

// With a cache a long pattern is compiled whole (once): a look-alike rule
// with no selective part (each letter a class, each repeat {1,2}) is
// prefiltered instead of running on every message.
TEST(RulePrefilter, WithACacheALongPatternIsCompiledWhole) {
  std::string fuzzy;
  for (char c : std::string("pharmacy")) {
    std::string cls = "(?:[";
    cls += c;
    cls += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    cls += "]";
    for (int k = 0; k < 40; ++k) cls += "|&#" + std::to_string(100 + k * 37 + c) + ";";
    fuzzy += cls + "){1,2}\\W{0,2}";
  }
  ASSERT_GT(fuzzy.size(), 1000u);
  test::TempDir dir;
  auto without = Prefilter::build({{fuzzy, "b"}});
  EXPECT_EQ(without->compiled(), 0u);
  EXPECT_NE(without->problem(0).find("longer than 1000"), std::string::npos);
  auto with = Prefilter::build({{fuzzy, "b"}}, dir.path());
  EXPECT_EQ(with->compiled(), 1u);
  std::vector<char> out;
  ASSERT_TRUE(with->candidates("buy ph&#197;rmacy now", out));  // "&#197;" is one of the a look-alikes
  EXPECT_EQ(out, std::vector<char>{1});
  ASSERT_TRUE(with->candidates("an ordinary letter about a farm", out));
  EXPECT_EQ(out, std::vector<char>{0});
}

// SpamAssassin's rules match bytes: on a text that is not UTF-8 they are
// still prefiltered (they used to run, all 1,500 of them, on 3% of the
// messages), while UTF-8 rules run unfiltered there.
TEST(RulePrefilter, ByteModePatternsArePrefilteredOnTextThatIsNotUtf8) {
  auto pre = Prefilter::build({{"cheap\\s+pills", "ib"}, {"viagra", "ib"}, {"v[àa]lium", "i"}});
  ASSERT_EQ(pre->compiled(), 3u);
  std::vector<char> out;
  ASSERT_TRUE(pre->candidates("\xff\xfe cheap  pills", out));
  EXPECT_EQ(out, (std::vector<char>{1, 0, 1}));  // byte rules filtered; the UTF-8 one must run
  ASSERT_TRUE(pre->candidates("valium", out));
  EXPECT_EQ(out, (std::vector<char>{0, 0, 1}));
}

// Header rules on one field share its text and one prefilter pass; a field
// the message lacks reads as "" or [if-unset] (matched once, at load).
TEST(RulePrefilter, HeaderRulesOfOneFieldGiveTheSameHitsPrefiltered) {
  const std::string rules =
      "header S_CHEAP Subject =~ /cheap/i\n"
      "header S_PILLS Subject =~ /\\bpills?\\b/i\n"
      "header S_NOT_HELLO Subject !~ /hello/i\n"
      "header S_CAPS Subject =~ /^[A-Z ]{10,}$/\n"
      "header S_EMPTY Subject =~ /^$/\n"
      "header S_FREE Subject =~ /free/i\n"
      "header S_WIN Subject =~ /\\bwin\\b/i\n"
      "header S_URGENT Subject =~ /urgent/i\n"
      "header X_UNSET X-Mailer =~ /none/ [if-unset: none]\n"
      "header X_NEG X-Mailer !~ /outlook/i\n"
      "header X_A X-Mailer =~ /a/\n"
      "header X_B X-Mailer =~ /b/\n";
  auto s = snapshot_with(rules);
  ASSERT_NE(s, nullptr);
  // The 8 Subject rules share a prefilter; the 4 X-Mailer ones (too few to
  // be worth a database) run PCRE2 alone.
  EXPECT_EQ(rules_check_of(*s)->prefiltered(), (std::pair<std::size_t, std::size_t>{8, 8}));
  auto hits = [&](const std::string& headers) {
    std::vector<std::string> got = test::hits_of(*s, headers + "\nbody\n");
    std::sort(got.begin(), got.end());
    return got;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(hits("Subject: CHEAP PILLS NOW\n"), (V{"S_CAPS", "S_CHEAP", "S_NOT_HELLO", "S_PILLS", "X_NEG", "X_UNSET"}));
  EXPECT_EQ(hits("Subject: hello there\nX-Mailer: Outlook b\n"), (V{"X_B"}));
  EXPECT_EQ(hits("X-Mailer: abc\n"), (V{"S_EMPTY", "S_NOT_HELLO", "X_A", "X_B", "X_NEG"}));
}

// Issue 16: a 100,000-rule local file took 457 s to load, 418 MB, then
// 206 ms per message: its rules went to Hyperscan 16 at a time (6,250
// databases, each compiled, kept and scanned on its own) and every reload
// compiled them all again. Now a few thousand patterns share a database, and
// a reload compiles only the databases whose rules changed.
TEST(RulePrefilter, LargeRuleFilesUseFewDatabasesAndAReloadReusesThem) {
  auto rules_of = [](int edited) {
    std::string rules;
    for (int i = 0; i < 3000; ++i)
      rules += "body LOCAL_" + std::to_string(i) + " /\\b" + (i == edited ? "edited" : "phrase") + " number " +
               std::to_string(i) + "\\b/i\n";
    return rules;
  };
  test::TempDir dir;
  std::string cfg = test::write_config(dir, rules_of(-1));
  std::vector<Diagnostic> d;
  auto first = load_snapshot(cfg, d);
  ASSERT_TRUE(first.ok());
  const RulesCheck* rc = rules_check_of(*first.value());
  ASSERT_NE(rc, nullptr);
  EXPECT_EQ(rc->prefiltered(), (std::pair<std::size_t, std::size_t>{3000, 3000}));
  const std::size_t dbs = rc->databases().first;
  EXPECT_LE(dbs, 12u);  // was 188 (3000 / 16)
  EXPECT_EQ(rc->databases().second, 0u);
  auto same = load_snapshot(cfg, d);  // a reload with nothing changed compiles nothing
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(rules_check_of(*same.value())->databases(), (std::pair<std::size_t, std::size_t>{dbs, dbs}));
  test::write_config(dir, rules_of(1500));  // one rule edited in the middle
  auto edited = load_snapshot(cfg, d);
  ASSERT_TRUE(edited.ok());
  auto [n, reused] = rules_check_of(*edited.value())->databases();
  EXPECT_GE(reused + 2, n);
  EXPECT_TRUE(hit(*edited.value(), "Subject: x\n\nsee edited number 1500 now\n", "LOCAL_1500"));
  EXPECT_FALSE(hit(*edited.value(), "Subject: x\n\nsee phrase number 1500 now\n", "LOCAL_1500"));
  EXPECT_TRUE(hit(*edited.value(), "Subject: x\n\nsee PHRASE number 2999 now\n", "LOCAL_2999"));
}

// Issue 16: a meta cycle (or a meta naming itself) is an error on every
// meta of the cycle, so lint fails and a reload is refused.
TEST(RuleMeta, CyclesAndSelfReferenceAreErrorsNamingTheCycle) {
  auto e = errors_of(
      "body __X /x/\n"
      "meta LOOP_A __X && LOOP_B\n"
      "meta LOOP_B (LOOP_A)\n"
      "meta SELF SELF || __X\n"
      "meta FINE __X\n"
      "meta USES_LOOP FINE && LOOP_A\n");
  EXPECT_EQ(e.size(), 3u);
  EXPECT_TRUE(contains(e, ":2: meta 'LOOP_A' is part of a cycle of metas: LOOP_A -> LOOP_B -> LOOP_A"));
  EXPECT_TRUE(contains(e, ":3: meta 'LOOP_B' is part of a cycle of metas: LOOP_A -> LOOP_B -> LOOP_A"));
  EXPECT_TRUE(contains(e, ":4: meta 'SELF' refers to itself"));
}

// What the milter's reload does with it: the new snapshot is refused with
// the error, and the one in use keeps scoring.
TEST(RuleMeta, ReloadWithACycleKeepsTheRulesInUse) {
  test::TempDir dir;
  std::string cfg = test::write_config(dir, "body PILLS /pills/\n", "", "score PILLS 6\n");
  std::vector<Diagnostic> d;
  auto first = load_snapshot(cfg, d);
  ASSERT_TRUE(first.ok());
  SnapshotHolder holder(first.value());
  dir.file("local.cf", "meta LOOP_A LOOP_B\nmeta LOOP_B LOOP_A\n");
  auto again = load_snapshot(cfg, d);
  EXPECT_FALSE(again.ok());
  ASSERT_FALSE(d.empty());
  EXPECT_NE(d[0].str().find("local.cf:1: meta 'LOOP_A' is part of a cycle"), std::string::npos) << d[0].str();
  if (again.ok()) holder.set(again.value());
  EXPECT_TRUE(hit(*holder.get(), "Subject: x\n\npills\n", "PILLS"));
}

// Issue 16: a regex that backtracks exponentially, not kept out of the
// prefilter: lint warns, and on a message built for it PCRE2 stops at the
// match limit, quickly; the rule does not hit, the error names it (logged
// and counted as the rules check's error), and the other rules still run.
TEST(RuleSafety, NestedRepeatWarnsAndIsBoundedByTheMatchLimit) {
  std::vector<Diagnostic> d;
  auto s = snapshot_with("body SLOW /(\\w+\\s?)*x/\nbody SLOW2 /(a+)+$/\nbody FAST /aaa/\n"
                         "body SAFE /(?:[a-z]+\\.)+com/\nbody SAFE2 /(a++)+$/\n",
                         &d, "[limits]\npcre_match_limit = 100000\n");
  ASSERT_NE(s, nullptr);
  std::vector<std::string> w = warnings_of(*s);
  EXPECT_EQ(w.size(), 2u);
  EXPECT_TRUE(contains(w, "50_test.cf:1: rule 'SLOW': nested repeat at offset 8 can backtrack exponentially"));
  EXPECT_TRUE(contains(w, "50_test.cf:2: rule 'SLOW2': nested repeat"));
  // 'x' at the very end, after a '!' the \w+\s? words cannot cross: the
  // prefilter lets it through, PCRE2 tries every split of the words first.
  std::string text;
  for (int i = 0; i < 40; ++i) text += "aaa ";
  const std::string msg = "Subject: x\n\n" + text + "!x and aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\na\n";
  auto t0 = std::chrono::steady_clock::now();
  ScanResult r = scan_message(*s, msg, Envelope{});
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 10.0);  // unbounded, this is years; the limit makes it milliseconds
  ASSERT_EQ(r.check_errors.size(), 1u);
  EXPECT_NE(r.check_errors[0].message.find("SLOW hit the match limit"), std::string::npos) << r.check_errors[0].message;
  bool fast = false, slow = false;
  for (const Hit& h : r.hits) {
    fast = fast || h.name == "FAST";
    slow = slow || h.name == "SLOW";
  }
  EXPECT_TRUE(fast);
  EXPECT_FALSE(slow);
}

// Issue 16: lint hints for support staff's typos.
TEST(RuleErrors, HashInARegexAndMisspeltHeaderNames) {
  auto e = errors_of("body HASH /a#b/\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_TRUE(contains(e, ":1: regex is not closed: missing '/' ('#' starts a comment: write \\# for a literal # in a regex)"))
      << e[0];
  std::vector<Diagnostic> d;
  auto s = snapshot_with("header TYPO Subjet =~ /x/\nheader OK Subject =~ /x/\nheader CUSTOM X-Our-Tag =~ /x/\n"
                         "header TYPO2 Form:addr =~ /x/\nheader ESC_HASH Subject =~ /a\\#b/\n", &d);
  ASSERT_NE(s, nullptr);
  std::vector<std::string> w = warnings_of(*s);
  EXPECT_EQ(w.size(), 2u);
  EXPECT_TRUE(contains(w, ":1: rule 'TYPO': 'subjet' is not a header field mail has; did you mean Subject?"));
  EXPECT_TRUE(contains(w, ":4: rule 'TYPO2': 'form' is not a header field mail has; did you mean From?"));
}

TEST(ShippedRules, LintCleanAndEveryRuleDescribed) {
  std::vector<Diagnostic> d;
  auto s = load_snapshot(std::string(SPAMGATE_SOURCE_DIR) + "/conf/spamgate.toml", d);
  for (const auto& e : d) ADD_FAILURE() << e.str();
  ASSERT_TRUE(s.ok());
  std::vector<Diagnostic> d2;
  RuleSet rs;
  parse_rule_files(rule_files_in(std::string(SPAMGATE_SOURCE_DIR) + "/rules", d2), {}, false, rs, d2);
  for (const Rule& r : rs.rules) {
    if (r.name.rfind("__", 0) == 0) continue;
    const SymbolInfo* info = s.value()->symbols.find(r.name);
    ASSERT_NE(info, nullptr);
    EXPECT_FALSE(info->description.empty()) << r.name << " has no describe line";
  }
}
