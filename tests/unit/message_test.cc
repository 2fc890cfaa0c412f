// message_test.cc - the message model: headers, MIME decoding, HTML, URIs,
// attachments, limits and hostile input.
#include <gtest/gtest.h>

#include <algorithm>

#include <optional>
#include <string>
#include <vector>

#include "spamgate/message.h"
#include "message/date.h"
#include "message/similarity.h"

using spamgate::HeaderCensus;
using spamgate::Limits;
using spamgate::Message;
using spamgate::parse_message;

namespace {

std::string crlf(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') out += "\r\n";
    else out.push_back(c);
  }
  return out;
}

const char* kPlain =
    "From: Alice <alice@example.org>\n"
    "To: bob@example.net\n"
    "Subject: Lunch\n"
    "  tomorrow?\n"
    "Message-ID: <1@example.org>\n"
    "\n"
    "Shall we meet at noon?\n";

}  // namespace

TEST(MessageHeaders, LfAndCrlfGiveTheSameDecodedHeaders) {
  Limits l;
  Message a = parse_message(kPlain, l);
  Message b = parse_message(crlf(kPlain), l);
  ASSERT_EQ(a.headers.size(), 4u);
  ASSERT_EQ(b.headers.size(), 4u);
  EXPECT_FALSE(a.crlf);
  EXPECT_TRUE(b.crlf);
  for (std::size_t i = 0; i < a.headers.size(); ++i) {
    EXPECT_EQ(a.headers[i].decoded, b.headers[i].decoded);
  }
  EXPECT_EQ(a.first("subject")->decoded, "Lunch  tomorrow?");  // unfolded: CRLF removed, WSP kept
  EXPECT_EQ(b.first("SUBJECT")->raw, " Lunch\r\n  tomorrow?");
  EXPECT_EQ(a.text, "Lunch  tomorrow?\nShall we meet at noon?\n");
}

TEST(MessageHeaders, Rfc2047EncodedWordsAreDecodedToUtf8) {
  Limits l;
  Message m = parse_message(
      "Subject: =?ISO-8859-1?Q?Caf=E9_cr=E8me?= and =?UTF-8?B?8J+YgCBzbWlsZQ==?=\n"
      "From: =?utf-8?q?J=C3=B6rg?= <j@example.de>\n\nx\n",
      l);
  EXPECT_EQ(m.first("subject")->decoded, "Café crème and 😀 smile");
  EXPECT_EQ(m.first("from")->decoded, "Jörg <j@example.de>");
  EXPECT_EQ(m.first("subject")->raw, " =?ISO-8859-1?Q?Caf=E9_cr=E8me?= and =?UTF-8?B?8J+YgCBzbWlsZQ==?=");
}

TEST(MessageHeaders, MboxFromLineIsSkipped) {
  Limits l;
  Message m = parse_message(std::string("From someone@example.org Mon Jan  1 00:00:00 2024\n") + kPlain, l);
  ASSERT_EQ(m.headers.size(), 4u);
  EXPECT_EQ(m.headers[0].name, "From");
  EXPECT_FALSE(m.defects.bad_header_line);
}

TEST(MessageMime, Base64AndQuotedPrintableAreDecoded) {
  Limits l;
  Message m = parse_message(
      "Subject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
      "--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
      "SGVsbG8gYmFzZTY0IHdvcmxk\n"
      "--b1\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\n"
      "Gr=FC=DFe aus M=FCnchen, a soft=\n line break\n"
      "--b1--\n",
      l);
  EXPECT_NE(m.text.find("Hello base64 world"), std::string::npos) << m.text;
  EXPECT_NE(m.text.find("Grüße aus München, a soft line break"), std::string::npos) << m.text;
  EXPECT_TRUE(m.has_text_plain);
  EXPECT_FALSE(m.defects.truncated_mime);
}

TEST(MessageMime, CharsetsAreConvertedToUtf8) {
  Limits l;
  Message m = parse_message(
      "Subject: t\nContent-Type: text/plain; charset=windows-1251\nContent-Transfer-Encoding: 8bit\n\n"
      "\xcf\xf0\xe8\xe2\xe5\xf2\n",
      l);
  EXPECT_NE(m.text.find("Привет"), std::string::npos) << m.text;
}

TEST(MessageMime, EightBitBytesInAPartThatSaysAsciiAreReadAsLatin1OrUtf8) {
  // GMime's US-ASCII conversion dropped them: "Espa\xf1a" read as "Espaa".
  Limits l;
  Message latin1 = parse_message("Subject: t\nContent-Type: text/plain; charset=us-ascii\n\nEspa\xf1" "a\n", l);
  EXPECT_NE(latin1.text.find("España"), std::string::npos) << latin1.text;
  EXPECT_NE(latin1.raw_text.find("España"), std::string::npos);
  Message utf8 = parse_message("Subject: t\n\nEspa\xc3\xb1" "a\n", l);  // no charset: valid UTF-8 stays
  EXPECT_NE(utf8.text.find("España"), std::string::npos) << utf8.text;
  Message ascii = parse_message("Subject: t\nContent-Type: text/plain; charset=us-ascii\n\nplain\n", l);
  EXPECT_NE(ascii.text.find("plain"), std::string::npos);
}

TEST(MessageMime, HtmlIsRenderedToTextAndKeptRawForRawbody) {
  Limits l;
  Message m = parse_message(
      "Subject: h\nContent-Type: text/html; charset=utf-8\n\n"
      "<html><head><style>p{color:red}</style><script>var secret=1;</script></head>"
      "<body><p>Caf&eacute; &amp; <b>bold</b></p><p>Next<br>line "
      "<a href=\"https://shop.example.com/buy?x=1\">shop</a></p></body></html>\n",
      l);
  EXPECT_TRUE(m.has_text_html);
  EXPECT_FALSE(m.has_text_plain);
  EXPECT_NE(m.text.find("Café & bold"), std::string::npos) << m.text;
  EXPECT_NE(m.text.find("Next\nline"), std::string::npos) << m.text;
  EXPECT_EQ(m.text.find("color:red"), std::string::npos);
  EXPECT_EQ(m.text.find("secret"), std::string::npos);
  EXPECT_NE(m.raw_text.find("<b>bold</b>"), std::string::npos);
  ASSERT_EQ(m.uris.size(), 1u);
  EXPECT_EQ(m.uris[0].host, "shop.example.com");
  EXPECT_TRUE(m.uris[0].from_html);
}

TEST(MessageMime, HtmlIsAlsoRenderedAsSpamAssassinRendersIt) {
  // For SpamAssassin's body rules: source line breaks are white space, a
  // <br> a line, a <p> a paragraph, a cell a space, <pre> kept as written.
  Limits l;
  Message m = parse_message(
      "Subject: h\nContent-Type: multipart/alternative; boundary=b\n\n"
      "--b\nContent-Type: text/plain\n\nplain part\n"
      "--b\nContent-Type: text/html\n\n"
      "<html><body><p>Sign up\n   now</p>84330<br>\nThailandXYZ <table><tr><td>a</td><td>b</td></tr></table>"
      "<pre>x  y</pre>&nbsp;end</body></html>\n--b--\n",
      l);
  const std::string& sa = m.sa_rendered_text();
  EXPECT_EQ(sa.rfind("h\nplain part\n", 0), 0u) << sa;  // the subject and the plain part as they are
  EXPECT_NE(sa.find("\n\nSign up now\n\n84330\nThailandXYZ a  b "), std::string::npos) << sa;
  // After an element's space a text loses its leading one (the NBSP here).
  EXPECT_NE(sa.find("\n\nx  y\n\nend\n"), std::string::npos) << sa;
  // The text our own rules read keeps the source's line breaks.
  EXPECT_NE(m.text.find("Sign up\n   now"), std::string::npos) << m.text;
  // Without HTML both are the same text.
  Message plain = parse_message("Subject: p\n\nhello\n", l);
  EXPECT_EQ(&plain.sa_rendered_text(), &plain.text);
}

TEST(MessageMime, BogusCommentsHidingWordsAreDroppedAsBrowsersDo) {
  // "<!xyz>" is a comment to a browser: the reader sees "sildenafil". A real
  // comment's content (an Outlook "<![endif]-->") is not cut short.
  Limits l;
  Message m = parse_message(
      "Subject: h\nContent-Type: text/html\n\n"
      "<html><body><!DOCTYPE html><p>si<!cdo>ldena<!asyrvaw>fil</p>"
      "<!--[if !mso]><style>x{}</style><![endif]--><![if !vml]><p>shown</p><![endif]>"
      "<a href=\"http://after.example/\">link</a></body></html>\n",
      l);
  EXPECT_NE(m.text.find("sildenafil"), std::string::npos) << m.text;
  EXPECT_NE(m.sa_rendered_text().find("sildenafil"), std::string::npos) << m.sa_rendered_text();
  EXPECT_NE(m.text.find("shown"), std::string::npos) << m.text;
  ASSERT_EQ(m.uris.size(), 1u);
  EXPECT_EQ(m.uris[0].host, "after.example");
}

TEST(MessageUris, LinksBrowsersFollowAreCollected) {
  // "http:/host" (one slash) is still a link to host for a browser; a
  // background sound, a cell's background image are fetched too.
  Limits l;
  Message m = parse_message(
      "Subject: h\nContent-Type: text/html\n\n"
      "<html><body><a href=\"http:/one-slash.example/?id=1\">a</a><a href=\"https:\\\\back.example/\">b</a>"
      "<bgsound src=\"http://203.0.113.5/sound.php\"><table><tr><td background=\"http://bg.example/i.gif\">x</td></tr>"
      "</table></body></html>\n",
      l);
  std::vector<std::string> hosts;
  for (const auto& u : m.uris) hosts.push_back(u.host);
  for (const char* h : {"one-slash.example", "back.example", "203.0.113.5", "bg.example"})
    EXPECT_NE(std::find(hosts.begin(), hosts.end(), h), hosts.end()) << h;
}

TEST(MessageUris, TextUrisMailtoWwwAndBareIpsAreExtracted) {
  Limits l;
  Message m = parse_message(
      "Subject: links\n\nSee http://192.0.2.10/login.php, https://user@Example.COM:8080/x "
      "or www.example.org/page. Write mailto:sales@example.net?subject=hi (not ftp://x.example).\n"
      "Bare: 198.51.100.7/promo or 198.51.100.8:8080/x but not version 1.2.3.4 alone.\n",
      l);
  ASSERT_EQ(m.uris.size(), 6u);
  EXPECT_EQ(m.uris[0].text, "http://192.0.2.10/login.php");
  EXPECT_TRUE(m.uris[0].host_is_ip);
  EXPECT_EQ(m.uris[1].host, "example.com");
  EXPECT_FALSE(m.uris[1].host_is_ip);
  EXPECT_EQ(m.uris[2].host, "www.example.org");
  EXPECT_EQ(m.uris[3].scheme, "mailto");
  EXPECT_EQ(m.uris[3].host, "example.net");
  EXPECT_EQ(m.uris[4].text, "198.51.100.7/promo");
  EXPECT_TRUE(m.uris[4].host_is_ip);
  EXPECT_EQ(m.uris[5].host, "198.51.100.8");
  EXPECT_TRUE(m.uris[5].host_is_ip);
}

TEST(MessageMime, AttachmentsAreListedWithNameTypeAndSize) {
  Limits l;
  Message m = parse_message(
      "Subject: a\nContent-Type: multipart/mixed; boundary=XX\n\n"
      "--XX\nContent-Type: text/plain\n\nsee attached\n"
      "--XX\nContent-Type: application/pdf; name=\"invoice.pdf\"\n"
      "Content-Disposition: attachment; filename=\"invoice.pdf\"\nContent-Transfer-Encoding: base64\n\n"
      "JVBERi0xLjQKJcfsj6IK\n"
      "--XX\nContent-Type: text/plain; name=notes.txt\nContent-Disposition: attachment\n\nsecret notes\n"
      "--XX--\n",
      l);
  ASSERT_EQ(m.attachments.size(), 2u);
  EXPECT_EQ(m.attachments[0].name, "invoice.pdf");
  EXPECT_EQ(m.attachments[0].content_type, "application/pdf");
  EXPECT_EQ(m.attachments[0].size, 15u);  // "%PDF-1.4\n%\xc7\xec\x8f\xa2\n"
  EXPECT_EQ(m.attachments[1].name, "notes.txt");
  EXPECT_EQ(m.text.find("secret notes"), std::string::npos);  // attachments are not body text
  EXPECT_NE(m.text.find("see attached"), std::string::npos);
}

TEST(MessageLimits, MaxScanBytesBoundsWhatIsScannedAndFlagsIt) {
  Limits l;
  l.max_scan_bytes = 4096;
  std::string big = "Subject: big\n\n" + std::string(100000, 'a') + "\nTAILMARKER\n";
  Message m = parse_message(big, l);
  EXPECT_EQ(m.raw.size(), 4096u);
  EXPECT_EQ(m.total_size, big.size());
  EXPECT_TRUE(m.limits_hit.scan_bytes);
  EXPECT_EQ(m.text.find("TAILMARKER"), std::string::npos);
}

// --- hostile input -------------------------------------------------------

TEST(MessageHostile, TenThousandHeadersAreCappedAndCounted) {
  Limits l;
  std::string msg;
  for (int i = 0; i < 10000; ++i) msg += "X-Junk-" + std::to_string(i) + ": v\n";
  msg += "X-Spam-Status: No\nSubject: last\n\nbody\n";
  Message m = parse_message(msg, l);
  EXPECT_EQ(m.headers.size(), l.max_headers);
  EXPECT_EQ(m.header_count, 10002u);
  EXPECT_TRUE(m.limits_hit.headers);
  // A forged X-Spam header past the cap is still found, so it can be removed.
  HeaderCensus c("mx1.gateway.example", "", l.max_header_deletions);
  c.add_block(msg);
  ASSERT_EQ(c.removals().size(), 1u);
  EXPECT_EQ(c.removals()[0].name, "X-Spam-Status");
  EXPECT_EQ(c.removals()[0].index, 1);
}

// --- the census of fields a scan removes (issue 16) --------------------------

TEST(HeaderCensus, ForgedResultsWithOurIdAfterTenThousandOthersAreFound) {
  std::string msg;
  for (int i = 0; i < 10000; ++i) msg += "Authentication-Results: relay" + std::to_string(i) + ".example; spf=pass\n";
  msg += "Authentication-Results: MX1.Gateway.Example; dkim=pass header.d=bank.example\nSubject: s\n\nbody\n";
  HeaderCensus c("mx1.gateway.example", "", 200);
  c.add_block(msg);
  EXPECT_EQ(c.forged(), 1u);
  ASSERT_EQ(c.removals().size(), 1u);
  EXPECT_EQ(c.removals()[0].name, "Authentication-Results");
  EXPECT_EQ(c.removals()[0].index, 10001);
}

TEST(HeaderCensus, QuotedFoldedAndCommentedAuthservIdsAreOurs) {
  HeaderCensus c("mx1.gateway.example", "", 200);
  c.add("Authentication-Results", " \"mx1.gateway.example\"; dkim=pass");
  c.add("Authentication-Results", "\r\n\t(forged) mx1.gateway.example;\r\n\tdmarc=pass");
  c.add("Authentication-Results", " \"mx1.gateway.example.evil\"; dkim=pass");
  c.add("Authentication-Results", " other.example; dkim=pass");
  EXPECT_EQ(c.forged(), 2u);
  auto r = c.removals();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].index, 2);  // highest first: no removal renumbers the next
  EXPECT_EQ(r[1].index, 1);
}

TEST(HeaderCensus, ThirtyThousandForgedFieldsAreCountedAndRemovalsCapped) {
  HeaderCensus c("mx1.gateway.example", "X-Spamgate-Sender", 200);
  for (int i = 0; i < 30000; ++i) c.add(i % 2 ? "X-Spam-Status" : "x-spam-flag", " NO");
  c.add("X-Spamgate-Sender", " 0123456789abcdef");
  EXPECT_EQ(c.forged(), 30001u);
  EXPECT_TRUE(c.over_cap());
  auto r = c.removals();
  ASSERT_EQ(r.size(), 200u);
  EXPECT_EQ(r[0].name, "X-Spamgate-Sender");  // what complaints are charged to, before X-Spam-*
  EXPECT_EQ(r[1].name, "x-spam-flag");
  EXPECT_EQ(r[1].index, 199);  // the first 199 of that name, highest index first
  EXPECT_EQ(r[199].index, 1);
}

TEST(HeaderCensus, MoreDistinctXSpamNamesThanItKeepsIsOverTheCap) {
  HeaderCensus c("", "", 200);
  for (int i = 0; i < 100; ++i) c.add("X-Spam-N" + std::to_string(i), " x");
  EXPECT_EQ(c.forged(), 100u);
  EXPECT_TRUE(c.over_cap()) << "names it cannot remember cannot be removed: refuse, do not deliver them";
}

TEST(MessageHostile, HundredDeepNestingStopsAtTheDepthLimit) {
  Limits l;
  std::string msg = "Subject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n";
  for (int i = 0; i < 100; ++i) {
    msg += "--b" + std::to_string(i) + "\nContent-Type: multipart/mixed; boundary=b" + std::to_string(i + 1) + "\n\n";
  }
  msg += "--b100\nContent-Type: text/plain\n\ndeepest text\n--b100--\n";
  for (int i = 99; i >= 0; --i) msg += "--b" + std::to_string(i) + "--\n";
  Message m = parse_message(msg, l);
  EXPECT_TRUE(m.limits_hit.mime_depth);
  EXPECT_EQ(m.text.find("deepest text"), std::string::npos);
  EXPECT_LE(m.parts.size(), static_cast<std::size_t>(l.max_mime_depth) + 2);
}

TEST(MessageHostile, NulBytesAreScannedAndFlagged) {
  Limits l;
  std::string msg("Subject: nul\0here\n\nbody with \0 nul and viagra\n", 46);
  Message m = parse_message(msg, l);
  EXPECT_TRUE(m.defects.nul_bytes);
  EXPECT_NE(m.raw.find("viagra"), std::string::npos);
  EXPECT_EQ(m.first("subject")->decoded, "nul here");
}

TEST(MessageHostile, BrokenBase64DecodesAsFarAsItCan) {
  Limits l;
  Message m = parse_message(
      "Subject: b\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
      "SGVsbG8g!!!@@@d29y***bGQ=\n====\nnot base64 at all ~~~\n",
      l);
  EXPECT_NE(m.text.find("Hello"), std::string::npos) << m.text;
}

TEST(MessageHostile, EightBitHeadersAreKeptAndFlagged) {
  Limits l;
  Message m = parse_message("Subject: Gr\xfc\xdf Gott \xe2\x82\xac\nFrom: x@example.org\n\nb\n", l);
  EXPECT_TRUE(m.defects.eight_bit_headers);
  ASSERT_NE(m.first("subject"), nullptr);
  EXPECT_FALSE(m.first("subject")->decoded.empty());
}

TEST(MessageHostile, TruncatedMimeIsFlaggedAndPartsStillRead) {
  Limits l;
  Message m = parse_message(
      "Subject: t\nContent-Type: multipart/alternative; boundary=zz\n\n"
      "--zz\nContent-Type: text/plain\n\nfirst part text\n--zz\nContent-Type: text/html\n\n<p>cut he",
      l);
  EXPECT_TRUE(m.defects.truncated_mime);
  EXPECT_NE(m.text.find("first part text"), std::string::npos);
}

TEST(MessageHostile, HugeHeaderLineIsCapped) {
  Limits l;
  std::string msg = "Subject: " + std::string(200000, 'A') + "\n\nbody\n";
  Message m = parse_message(msg, l);
  EXPECT_TRUE(m.limits_hit.header_bytes);
  EXPECT_LE(m.first("subject")->raw.size(), l.max_header_bytes);
}

TEST(MessageHostile, DegenerateInputsDoNotCrash) {
  Limits l;
  const std::string cases[] = {
      "", "\n", "\r\n\r\n", "no colon line\n\nbody", ": empty name\n\n", "Subject: only headers",
      "Subject: x\n\n", std::string(5000, '\n'), "Content-Type: multipart/mixed\n\n--\n--\n",
      "Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\n--\n", "\r", " folded-first\nSubject: x\n\nb",
      "Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: inner\n\nhello\n",
      "Content-Type: text/html\n\n<" + std::string(100000, '<') + ">",
      "Content-Type: text/html\n\n" + [] { std::string s; for (int i = 0; i < 5000; ++i) s += "<div>"; return s; }(),
  };
  for (const std::string& c : cases) {
    Message m = parse_message(c, l);
    EXPECT_LE(m.raw.size(), c.size());
  }
}

TEST(MessageHostile, HeaderBlockWithoutSeparatorEndsAtFirstNonHeaderLine) {
  Limits l;
  Message m = parse_message("Subject: s\nFrom: a@b.example\nthis is body text\nmore\n", l);
  EXPECT_EQ(m.headers.size(), 2u);
  EXPECT_TRUE(m.defects.bad_header_line);
  EXPECT_NE(m.text.find("this is body text"), std::string::npos) << m.text;
}

// Deterministic mutation run: our own corpus messages with random bytes
// flipped, inserted, deleted and spliced must parse (and rewrite) without a
// crash or a sanitizer report. Not a replacement for fuzzing, but it runs in CI.
#include <filesystem>
#include <fstream>
#include <random>

#include "spamgate/actions.h"

TEST(MessageHostile, MutatedCorpusMessagesNeverCrash) {
  std::vector<std::string> seeds;
  for (const auto& e : std::filesystem::recursive_directory_iterator(std::string(SPAMGATE_SOURCE_DIR) + "/corpus")) {
    if (e.path().extension() != ".eml") continue;
    std::ifstream f(e.path(), std::ios::binary);
    seeds.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  ASSERT_FALSE(seeds.empty());
  std::mt19937 rng(20261123);
  const std::string tokens[] = {"\n", "\r\n", "\n\n", "--", "=?", "?=", "=?UTF-8?B?", "boundary=", "<a href=", ":",
                                std::string(1, '\0'), "\xff", "Content-Type: multipart/mixed; boundary=x\n",
                                "Content-Transfer-Encoding: base64\n", "<", ">"};
  Limits l;
  l.max_scan_bytes = 64 * 1024;
  for (int iter = 0; iter < 5000; ++iter) {
    std::string m = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 20);
    for (int k = 0; k < edits && !m.empty(); ++k) {
      std::size_t pos = rng() % m.size();
      switch (rng() % 4) {
        case 0: m[pos] = static_cast<char>(rng() % 256); break;
        case 1: m.insert(pos, tokens[rng() % (sizeof tokens / sizeof *tokens)]); break;
        case 2: m.erase(pos, rng() % 64); break;
        default: m.insert(pos, m.substr(rng() % m.size(), rng() % 256)); break;
      }
    }
    Message parsed = parse_message(m, l);
    EXPECT_LE(parsed.raw.size(), l.max_scan_bytes);
    spamgate::Plan p;
    p.edits.push_back({spamgate::HeaderEdit::Op::kDelete, "Subject", 1, ""});
    p.edits.push_back({spamgate::HeaderEdit::Op::kAdd, "X-Spam-Status", 0, "No"});
    std::string out = spamgate::apply_plan(m, p);
    EXPECT_NE(out.find("X-Spam-Status: No"), std::string::npos);
  }
}

// Issue 19: near-duplicates (message/similarity.h) for evaluation folds.
using spamgate::cluster;
using spamgate::MinHash;
using spamgate::minhash;
using spamgate::parse_date;
using spamgate::similarity;

TEST(Similarity, CopiesOfACampaignAreOneClusterAndOtherMailIsNot) {
  const std::string campaign =
      "Dear {name}, your account {n} has been selected for a special offer. Reply today to claim your "
      "reward of {n} dollars before the offer ends. This offer is valid for account holders only and "
      "cannot be combined with other promotions. Unsubscribe at any time.";
  auto copy = [&](const std::string& name, const std::string& n) {
    std::string s = campaign;
    for (std::size_t at; (at = s.find("{name}")) != std::string::npos;) s.replace(at, 6, name);
    for (std::size_t at; (at = s.find("{n}")) != std::string::npos;) s.replace(at, 3, n);
    return s;
  };
  std::vector<std::optional<MinHash>> sigs = {
      minhash(copy("Alice", "1234")),
      minhash("Minutes of the budget meeting: we agreed to move the release to March and to hire two more "
              "people for the support team; Bob will send the figures by Friday."),
      minhash(copy("Bob", "98765")),  // other numbers count as the same word
      minhash("hi there"),            // too short for a signature: alone
      minhash(copy("Carol", "5") + " P.S. one more line at the end"),
  };
  ASSERT_TRUE(sigs[0] && sigs[2] && sigs[4]);
  EXPECT_FALSE(sigs[3].has_value());
  EXPECT_GT(similarity(*sigs[0], *sigs[2]), 0.8);  // only the name differs: numbers are one word
  EXPECT_LT(similarity(*sigs[0], *sigs[1]), 0.2);
  const std::vector<std::size_t> id = cluster(sigs);
  // Numbered in order of first appearance; the copies join the first.
  EXPECT_EQ(id, (std::vector<std::size_t>{0, 1, 0, 2, 0}));
}

TEST(Similarity, EmptyInputHasNoClusters) { EXPECT_TRUE(cluster({}).empty()); }

TEST(DateField, ReadsRfc5322DatesAndRefusesTheUnreadableAndTheFuture) {
  parse_message("Subject: x\r\n\r\nx\r\n", Limits{});  // initialises GMime
  const std::int64_t now = 1796000000;                 // 2026-11-30
  EXPECT_EQ(parse_date("Mon, 2 Nov 2026 10:00:00 +0000", now), std::optional<std::int64_t>(1793613600));
  EXPECT_EQ(parse_date("2 Nov 2026 11:00:00 +0100", now), std::optional<std::int64_t>(1793613600));
  EXPECT_FALSE(parse_date("yesterday, around noon", now).has_value());
  EXPECT_FALSE(parse_date("Thu, 1 Jan 1970 00:00:00 +0000", now).has_value());  // before 1980
  EXPECT_FALSE(parse_date("Fri, 1 Jan 2038 00:00:00 +0000", now).has_value());  // a spammer's clock
}
