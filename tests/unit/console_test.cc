// console_test.cc - the support console without a socket: password hashes
// and the users file, sessions, the login throttle, CSRF, the audit log,
// the lint-before-save of the local rules, proposals, and what every page
// refuses without a session. (The browser test is tests/e2e/console_e2e.sh.)
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "console/audit.h"
#include "console/auth.h"
#include "console/console.h"
#include "console/local_rules.h"
#include "history/history_store.h"
#include "test_util.h"

using namespace spamgate;
using namespace spamgate::console;
using spamgate::test::TempDir;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string header_of(const Response& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

// A console over a config of its own: rules, an empty local file, a
// history store, two users. `reloads` counts the reload hook's calls.
struct Fixture {
  TempDir dir;
  std::shared_ptr<const Snapshot> snap;
  std::unique_ptr<Console> console;
  int reloads = 0;
  Status reload_answer = Status::Ok();

  explicit Fixture(const std::string& toml = "") {
    std::string users = "# support staff\nalice:" + hash_password("alice-pw") + "\nbob:" + hash_password("bob-pw") +
                        "\nmallory:plaintext\n";
    dir.file("users", users);
    std::string cfg = test::write_config(dir, "body SEO_SUBMIT /submit your site/i\nscore SEO_SUBMIT 2.2\n"
                                              "describe SEO_SUBMIT Offers search engine submission\n",
                                         toml + "[history]\npath = \"history\"\n[console]\nusers_file = \"users\"\n", "\n");
    std::vector<Diagnostic> d;
    auto s = load_snapshot(cfg, d);
    EXPECT_TRUE(s.ok()) << (d.empty() ? s.status().message() : d[0].str());
    snap = s.value();
    ConsoleHooks hooks{[this] { return snap; }, [this](const char*) {
                         ++reloads;
                         return reload_answer;
                       }};
    console = std::make_unique<Console>(snap->config.console, hooks, false);
  }

  Response get(const std::string& path, const std::string& session = "", std::map<std::string, std::string> p = {}) {
    return console->handle({"GET", path, std::move(p), session, "192.0.2.1"});
  }
  Response post(const std::string& path, std::map<std::string, std::string> p, const std::string& session = "",
                const std::string& ip = "192.0.2.1") {
    return console->handle({"POST", path, std::move(p), session, ip});
  }
  // Logs in: the session token and the CSRF token its pages carry.
  std::pair<std::string, std::string> login(const std::string& user, const std::string& pw) {
    Response r = post("/login", {{"user", user}, {"password", pw}});
    std::string cookie = header_of(r, "Set-Cookie");
    std::size_t eq = cookie.find('='), semi = cookie.find(';');
    if (r.status != 303 || eq == std::string::npos) return {};
    std::string token = cookie.substr(eq + 1, semi - eq - 1);
    Response page = get("/rules", token);
    std::size_t at = page.body.find("name=csrf value=\"");
    if (at == std::string::npos) return {token, ""};
    at += 17;
    return {token, page.body.substr(at, page.body.find('"', at) - at)};
  }
  std::string local() const { return slurp(snap->config.local_rules); }
  // A tagged inbound verdict from ann@partner.example (SEO_SUBMIT 2.2, score
  // 7.2 over 5) to `rcpts`, put in the history the console reads.
  HistoryRecord tagged(const std::string& ref, std::vector<std::string> rcpts, const std::string& detail) {
    HistoryRecord r;
    r.ref = ref;
    r.time = 1796600000;
    r.from = "Ann <ann@partner.example>";
    r.direction = "inbound";
    r.score = "7.2";
    r.threshold = "5";
    r.action = "tag";
    r.rcpt_to = std::move(rcpts);
    r.hits = {{"SEO_SUBMIT", "2.2", detail}};
    auto store = open_history_store(snap->config.history);
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (store.ok()) {
      EXPECT_TRUE(store.value()->put({r}).ok());
    }
    return r;
  }
  // The editor's fingerprint of the file as it shows it now.
  std::string base(const std::string& token) {
    Response page = get("/rules", token);
    std::size_t at = page.body.find("name=base value=\"");
    if (at == std::string::npos) return {};
    at += 17;
    return page.body.substr(at, page.body.find('"', at) - at);
  }
};

}  // namespace

TEST(ConsoleAuth, PasswordHashesAreYescryptAndVerify) {
  std::string h = hash_password("correct horse");
  ASSERT_TRUE(h.rfind("$y$", 0) == 0) << h;
  EXPECT_NE(h, hash_password("correct horse"));  // a new salt each time
  EXPECT_TRUE(verify_password(h, "correct horse"));
  EXPECT_FALSE(verify_password(h, "correct horsE"));
  EXPECT_FALSE(verify_password(h, ""));
  EXPECT_FALSE(verify_password("correct horse", "correct horse"));  // a plaintext "hash"
  EXPECT_FALSE(verify_password("$1$abcdefgh$abcdefghijklmnopqrstuv", "x"));  // MD5-crypt is refused
  EXPECT_FALSE(strong_hash("ab01234567890"));  // DES
  EXPECT_TRUE(strong_hash(h));
}

TEST(ConsoleAuth, UsersFileRefusesPlaintextAndNamesTheLine) {
  TempDir dir;
  std::string path = dir.file("users", "# staff\n\nalice:" + hash_password("a") + "\nbob:hunter2\n no-colon\n");
  std::vector<Diagnostic> problems;
  auto users = read_users(path, problems);
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users.value().size(), 1u);
  EXPECT_TRUE(users.value().count("alice"));
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].line, 4);
  EXPECT_NE(problems[0].message.find("user 'bob' has no yescrypt"), std::string::npos);
  EXPECT_EQ(problems[1].line, 5);
  EXPECT_FALSE(read_users(dir.path() + "/absent", problems).ok());
}

TEST(ConsoleAuth, SessionsExpireWhenIdleAndCanBeRemoved) {
  SessionTable t(std::chrono::minutes(30), 3);
  std::string a = t.create("alice");
  ASSERT_EQ(a.size(), 64u);
  auto s = t.find(a);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->user, "alice");
  EXPECT_EQ(s->csrf.size(), 64u);
  EXPECT_NE(s->csrf, a);
  EXPECT_FALSE(t.find("0" + a.substr(1)));
  EXPECT_FALSE(t.find(""));
  t.advance_for_test(std::chrono::minutes(29));
  EXPECT_TRUE(t.find(a));  // used: idle time starts again
  t.advance_for_test(std::chrono::minutes(29));
  EXPECT_TRUE(t.find(a));
  t.advance_for_test(std::chrono::minutes(31));
  EXPECT_FALSE(t.find(a));
  std::string b = t.create("bob");
  t.remove(b);
  EXPECT_FALSE(t.find(b));
  // past the cap the oldest goes
  std::string c1 = t.create("c1");
  t.advance_for_test(std::chrono::seconds(1));
  std::string c2 = t.create("c2");
  t.advance_for_test(std::chrono::seconds(1));
  std::string c3 = t.create("c3");
  t.advance_for_test(std::chrono::seconds(1));
  std::string c4 = t.create("c4");
  EXPECT_FALSE(t.find(c1));
  EXPECT_TRUE(t.find(c4));
}

TEST(ConsoleAuth, ThrottleRefusesAfterFiveFailures) {
  LoginThrottle t(5, std::chrono::minutes(15));
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(t.allowed("192.0.2.1"));
    t.failed("192.0.2.1");
  }
  EXPECT_FALSE(t.allowed("192.0.2.1"));
  EXPECT_TRUE(t.allowed("192.0.2.2"));
  t.succeeded("192.0.2.1");
  EXPECT_TRUE(t.allowed("192.0.2.1"));
}

TEST(ConsoleAudit, EntriesAreAppendedAndReadNewestFirst) {
  TempDir dir;
  AuditLog log(dir.path() + "/audit.log");
  ASSERT_TRUE(log.write({0, "alice", "192.0.2.1", "login", "", ""}).ok());
  ASSERT_TRUE(log.write({0, "alice", "192.0.2.1", "rules-save", "/etc/local.cf", "score X 1\n\xff\x01\"}"}).ok());
  auto tail = log.tail(10);
  ASSERT_EQ(tail.size(), 2u);
  EXPECT_EQ(tail[0].action, "rules-save");
  EXPECT_EQ(tail[1].action, "login");
  EXPECT_GT(tail[0].time, 1700000000);
  EXPECT_NE(tail[0].detail.find("score X 1\n"), std::string::npos);  // hostile bytes kept the line whole
  EXPECT_EQ(log.tail(1).size(), 1u);
  AuditLog bad(dir.path() + "/no/such/dir/audit.log");
  EXPECT_FALSE(bad.write({0, "alice", "", "login", "", ""}).ok());
}

TEST(ConsoleLocalRules, LintNamesTheLocalFileAndSaveIsWhole) {
  Fixture f;
  LintResult lint;
  ASSERT_TRUE(lint_local_rules(f.snap->config, "score SEO_SUBMIT 0.5\n", lint).ok());
  EXPECT_TRUE(lint.errors.empty());
  ASSERT_TRUE(lint_local_rules(f.snap->config, "\nbody BAD /(x/\nscore NO_SUCH_RULE 1\n", lint).ok());
  ASSERT_EQ(lint.errors.size(), 2u);
  EXPECT_EQ(lint.errors[0].file, f.snap->config.local_rules);  // not the temporary file's name
  EXPECT_EQ(lint.errors[0].line, 2);
  ASSERT_TRUE(lint_local_rules(f.snap->config, "welcomelist_from *@partner.example\n", lint).ok());
  EXPECT_TRUE(lint.errors.empty());
  ASSERT_EQ(lint.warnings.size(), 1u);  // the plain form: the safer one is named
  EXPECT_NE(lint.warnings[0].message.find("welcomelist_auth"), std::string::npos);
  // no temporary file is left beside the local file
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(f.dir.path())) files += e.is_regular_file();
  EXPECT_EQ(files, 3);  // spamgate.toml, local.cf, users
  ASSERT_TRUE(save_local_rules(f.snap->config.local_rules, "score SEO_SUBMIT 0.5\n").ok());
  EXPECT_EQ(f.local(), "score SEO_SUBMIT 0.5\n");
  EXPECT_FALSE(save_local_rules(f.dir.path() + "/no/such/dir/local.cf", "x\n").ok());
}

TEST(ConsoleLocalRules, ProposalsForAFalsePositive) {
  Fixture f;
  HistoryRecord r;
  r.ref = "abcdefghijklmnop";
  r.from = "\"Ann\" <Ann@Partner.example>";
  r.mail_from = "bounce@esp.example";
  r.score = "7.2";
  r.threshold = "5";
  r.hits = {{"SEO_SUBMIT", "2.2", "submit your site"}, {"NOT_A_RULE_NOW", "3.0", ""}};
  auto p = false_positive_proposals(r, f.snap->symbols, "alice");
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].id, "welcomelist-domain");
  EXPECT_NE(p[0].lines.find("\nwelcomelist_auth *@partner.example\n"), std::string::npos) << p[0].lines;
  EXPECT_EQ(p[0].lines.rfind("# false positive abcdefghijklmnop (alice, ", 0), 0u);
  EXPECT_NE(p[1].lines.find("\nwelcomelist_auth ann@partner.example\n"), std::string::npos);
  // 2.2 lowered by what the message is over (2.2) and 0.1: 0, where it was set named
  EXPECT_NE(p[2].lines.find("\nscore SEO_SUBMIT 0.0  # was 2.2 at "), std::string::npos) << p[2].lines;
  EXPECT_NE(p[2].lines.find("50_test.cf:2\n"), std::string::npos) << p[2].lines;
  // Each proposal lints clean against the running rules.
  for (const Proposal& q : p) {
    LintResult lint;
    ASSERT_TRUE(lint_local_rules(f.snap->config, q.lines, lint).ok());
    EXPECT_TRUE(lint.errors.empty()) << q.lines;
  }
  // A From that is no plain address (a line break, a '#', a glob, a bare
  // name) gives no welcomelist line: "x@*" would welcome every sender.
  for (const char* from : {"x@evil.example\nscore ALL 100", "x@*", "*@evil.example", "x@localhost", "x@[192.0.2.1]"}) {
    r.from = from;
    r.mail_from = "";
    for (const Proposal& q : false_positive_proposals(r, f.snap->symbols, "alice")) {
      EXPECT_EQ(q.id, "score") << from;
      EXPECT_EQ(q.lines.find("ALL 100"), std::string::npos);
    }
  }
}

TEST(ConsolePages, EveryPageNeedsASession) {
  Fixture f;
  for (const char* path : {"/", "/verdict", "/rules", "/settings", "/audit"}) {
    Response r = f.get(path);
    EXPECT_EQ(r.status, 303) << path;
    EXPECT_EQ(header_of(r, "Location").rfind("/login?next=", 0), 0u) << path;
  }
  EXPECT_EQ(header_of(f.get("/verdict", "", {{"ref", "abcdefghijklmnop"}}), "Location"),
            "/login?next=%2Fverdict%3Fref%3Dabcdefghijklmnop");
  for (const char* path : {"/propose", "/rules/append", "/rules", "/settings", "/logout"})
    EXPECT_EQ(f.post(path, {{"content", "score SEO_SUBMIT 9\n"}, {"lines", "score SEO_SUBMIT 9\n"}}).status, 403) << path;
  EXPECT_EQ(f.get("/rules", std::string(64, 'a')).status, 303);  // a made-up session
  EXPECT_EQ(f.local(), "\n");
  EXPECT_EQ(f.get("/console.css").status, 200);  // the static files need none
}

TEST(ConsolePages, LoginWrongPasswordPlaintextUserAndThrottle) {
  Fixture f;
  EXPECT_EQ(f.post("/login", {{"user", "alice"}, {"password", "wrong"}}).status, 401);
  EXPECT_EQ(f.post("/login", {{"user", "nobody"}, {"password", "alice-pw"}}).status, 401);
  EXPECT_EQ(f.post("/login", {{"user", "mallory"}, {"password", "plaintext"}}).status, 401);
  Response ok = f.post("/login", {{"user", "alice"}, {"password", "alice-pw"}, {"next", "//evil.example/"}});
  EXPECT_EQ(ok.status, 303);
  EXPECT_EQ(header_of(ok, "Location"), "/");  // only our own pages
  EXPECT_NE(header_of(ok, "Set-Cookie").find("HttpOnly; SameSite=Strict"), std::string::npos);
  for (int i = 0; i < 5; ++i) f.post("/login", {{"user", "alice"}, {"password", "guess"}}, "", "198.51.100.7");
  EXPECT_EQ(f.post("/login", {{"user", "alice"}, {"password", "alice-pw"}}, "", "198.51.100.7").status, 429);
  std::string audit = slurp(f.snap->config.console.audit_log);
  EXPECT_NE(audit.find("\"action\":\"login-failed\""), std::string::npos);
  EXPECT_NE(audit.find("\"action\":\"login-throttled\""), std::string::npos);
}

TEST(ConsolePages, ChangesNeedTheSessionsOwnCsrfToken) {
  Fixture f;
  auto [alice, alice_csrf] = f.login("alice", "alice-pw");
  auto [bob, bob_csrf] = f.login("bob", "bob-pw");
  ASSERT_FALSE(alice_csrf.empty());
  ASSERT_FALSE(bob_csrf.empty());
  ASSERT_NE(alice_csrf, bob_csrf);
  const std::map<std::string, std::string> change = {{"content", "score SEO_SUBMIT 0.5\n"}};
  auto with = [&](const std::string& csrf) {
    auto p = change;
    if (!csrf.empty()) p["csrf"] = csrf;
    p["base"] = f.base(alice);
    return p;
  };
  EXPECT_EQ(f.post("/rules", with(""), alice).status, 403);
  EXPECT_EQ(f.post("/rules", with(bob_csrf), alice).status, 403);  // another user's token
  EXPECT_EQ(f.post("/rules", with(alice_csrf.substr(1) + "0"), alice).status, 403);
  EXPECT_EQ(f.local(), "\n");
  EXPECT_EQ(f.reloads, 0);
  Response saved = f.post("/rules", with(alice_csrf), alice);
  EXPECT_EQ(saved.status, 200) << saved.body;
  EXPECT_EQ(f.local(), "score SEO_SUBMIT 0.5\n");
  EXPECT_EQ(f.reloads, 1);
  // logging out ends the session
  EXPECT_EQ(f.post("/logout", with(alice_csrf), alice).status, 303);
  EXPECT_EQ(f.get("/rules", alice).status, 303);
}

TEST(ConsolePages, ABrokenRuleIsNotSavedAndARefusedReloadIsShown) {
  Fixture f;
  auto [s, csrf] = f.login("alice", "alice-pw");
  Response bad = f.post("/rules", {{"csrf", csrf}, {"base", f.base(s)},
                                   {"content", "body LOCAL_BAD /unclosed(/\r\nscore LOCAL_BAD 3\r\n"}}, s);
  EXPECT_EQ(bad.status, 422);
  EXPECT_NE(bad.body.find("local.cf:1: rule &#39;LOCAL_BAD&#39;"), std::string::npos) << bad.body;
  EXPECT_NE(bad.body.find("unclosed("), std::string::npos);  // the edit is shown again to fix
  EXPECT_EQ(f.local(), "\n");
  EXPECT_EQ(f.reloads, 0);
  f.reload_answer = Status::InvalidArgument("the new rules fail the rules canary: ham.eml");
  Response refused = f.post("/rules/append", {{"csrf", csrf}, {"lines", "score SEO_SUBMIT 9\r\n"}}, s);
  EXPECT_EQ(refused.status, 500);
  EXPECT_NE(refused.body.find("The reload was refused; the old rules keep running"), std::string::npos);
  EXPECT_NE(refused.body.find("rules canary: ham.eml"), std::string::npos);
  EXPECT_EQ(f.local(), "\nscore SEO_SUBMIT 9\n");  // CR LF from the form stored as LF
  std::string audit = slurp(f.snap->config.console.audit_log);
  EXPECT_NE(audit.find("\"action\":\"rules-save-refused\""), std::string::npos);
  EXPECT_NE(audit.find("\"action\":\"rules-append\""), std::string::npos);
  EXPECT_NE(audit.find("\"action\":\"reload-refused\""), std::string::npos);
}

// The recipient settings file is edited like the local rules: linted as a
// reload reads it, saved whole, reloaded, audited.
TEST(ConsolePages, RecipientSettingsAreEditedLintedAndReloaded) {
  Fixture f("recipient_settings = \"recipients.cf\"\n");
  f.dir.file("recipients.cf", "example.com threshold 8\n");
  auto [s, csrf] = f.login("alice", "alice-pw");
  Response page = f.get("/settings", s);
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("example.com threshold 8"), std::string::npos);
  std::size_t at = page.body.find("name=base value=\"") + 17;
  const std::string base = page.body.substr(at, page.body.find('"', at) - at);
  Response bad = f.post("/settings", {{"csrf", csrf}, {"base", base},
                                      {"content", "example.com threshold 8\r\nexample.com tag sometimes\r\n"}}, s);
  EXPECT_EQ(bad.status, 422);
  EXPECT_NE(bad.body.find("recipients.cf:2: tag &#39;sometimes&#39; must be on or off"), std::string::npos) << bad.body;
  EXPECT_EQ(slurp(f.snap->config.recipient_settings), "example.com threshold 8\n");
  EXPECT_EQ(f.reloads, 0);
  Response good = f.post("/settings", {{"csrf", csrf}, {"base", base},
                                       {"content", "example.com threshold 8\r\noptout.example skip\r\n"}}, s);
  EXPECT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(slurp(f.snap->config.recipient_settings), "example.com threshold 8\noptout.example skip\n");
  EXPECT_EQ(f.reloads, 1);
  std::string audit = slurp(f.snap->config.console.audit_log);
  EXPECT_NE(audit.find("\"action\":\"settings-save-refused\""), std::string::npos);
  EXPECT_NE(audit.find("\"action\":\"settings-save\""), std::string::npos);
  EXPECT_EQ(f.post("/settings", {{"csrf", csrf}, {"base", base}, {"content", "x.example skip\n"}}, s).status, 409);
  Fixture none;  // no recipient_settings in the config: nothing to edit
  auto [n, ncsrf] = none.login("alice", "alice-pw");
  EXPECT_NE(none.get("/settings", n).body.find("names no such file"), std::string::npos);
  EXPECT_EQ(none.post("/settings", {{"csrf", ncsrf}, {"content", "x.example skip\n"}}, n).status, 404);
}

// With a recipient settings file, the narrowest fix comes first: welcome
// the sender for this message's recipients' domain only, saved to the
// settings file (not the local rules every customer shares).
TEST(ConsolePages, AFalsePositiveCanBeFixedForItsRecipientsDomainOnly) {
  Fixture f("recipient_settings = \"recipients.cf\"\n");
  HistoryRecord r = f.tagged("qrstuvwxyzabcdef", {"<Bob@Customer.example>", "<carol+news@customer.example>"},
                             "Submit your site");
  auto [s, csrf] = f.login("alice", "alice-pw");
  Response v = f.get("/verdict", s, {{"ref", r.ref}});
  ASSERT_EQ(v.status, 200);
  const std::size_t mine = v.body.find("value=\"welcomelist-recipients\""), all = v.body.find("value=\"welcomelist-domain\"");
  ASSERT_NE(mine, std::string::npos) << v.body;
  EXPECT_LT(mine, all);  // offered first, and checked
  EXPECT_NE(v.body.find("customer.example welcomelist_auth *@partner.example"), std::string::npos);
  const std::string lines = "customer.example welcomelist_auth *@partner.example\n";
  Response p = f.post("/propose", {{"csrf", csrf}, {"ref", r.ref}, {"proposal", "welcomelist-recipients"}, {"lines", lines}}, s);
  ASSERT_EQ(p.status, 200) << p.body;
  EXPECT_NE(p.body.find("recipients.cf</code>"), std::string::npos);
  EXPECT_NE(p.body.find("action=\"/settings/append\""), std::string::npos);
  // the same line checked as a rules line would be an error: it is checked as settings
  Response bad = f.post("/propose", {{"csrf", csrf}, {"ref", r.ref}, {"proposal", "welcomelist-recipients"},
                                     {"lines", "customer.example welcomelist_auth partner"}}, s);
  EXPECT_EQ(bad.status, 422);
  Response saved = f.post("/settings/append", {{"csrf", csrf}, {"ref", r.ref}, {"lines", lines}}, s);
  EXPECT_EQ(saved.status, 200) << saved.body;
  EXPECT_EQ(slurp(f.snap->config.recipient_settings), lines);
  EXPECT_EQ(f.local(), "\n");  // the shared local rules untouched
  EXPECT_EQ(f.reloads, 1);
  EXPECT_NE(slurp(f.snap->config.console.audit_log).find("\"action\":\"settings-append\""), std::string::npos);
  EXPECT_EQ(f.post("/settings/append", {{"lines", lines}}, s).status, 403);  // no CSRF token
}

TEST(ConsolePages, AVerdictShowsWhereRulesAreDefinedAndEscapesTheMessage) {
  Fixture f;
  HistoryRecord r;
  r.queue_id = "4F2A1B3C";
  r.subject = "<script>alert(1)</script> offer";
  {
    HistoryRecord base = f.tagged("abcdefghijklmnop", {"user@example.net"}, "Submit your site <b>now</b>");
    base.queue_id = r.queue_id;
    base.subject = r.subject;
    r = base;
    auto store = open_history_store(f.snap->config.history);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE(store.value()->put({r}).ok());  // again, with the queue id and the hostile Subject
  }
  auto [s, csrf] = f.login("alice", "alice-pw");
  Response v = f.get("/verdict", s, {{"ref", r.ref}});
  ASSERT_EQ(v.status, 200) << v.body;
  EXPECT_EQ(v.body.find("<script>alert"), std::string::npos);
  EXPECT_NE(v.body.find("&lt;script&gt;alert(1)&lt;/script&gt; offer"), std::string::npos);
  EXPECT_NE(v.body.find("50_test.cf:1</td>"), std::string::npos);  // the rule's line
  EXPECT_NE(v.body.find("2.2 at "), std::string::npos);             // the score's line
  EXPECT_NE(v.body.find("50_test.cf:2</td>"), std::string::npos);
  EXPECT_NE(v.body.find("welcomelist_auth *@partner.example"), std::string::npos);
  EXPECT_NE(v.body.find("please visit https://help.example.net/spam?ref=abcdefghijklmnop"), std::string::npos);
  // the queue id finds it; the reference opens it directly
  Response q = f.get("/", s, {{"q", "4F2A1B3C"}});
  EXPECT_NE(q.body.find("/verdict?ref=abcdefghijklmnop"), std::string::npos);
  EXPECT_EQ(header_of(f.get("/", s, {{"q", r.ref}}), "Location"), "/verdict?ref=abcdefghijklmnop");
  EXPECT_EQ(f.get("/verdict", s, {{"ref", "zzzzzzzzzzzzzzzz"}}).status, 404);
  EXPECT_EQ(f.get("/", s, {{"since", "yesterday"}}).status, 400);
  // proposing lints, and saves nothing
  Response p = f.post("/propose", {{"csrf", csrf}, {"ref", r.ref}, {"lines", "welcomelist_auth *@partner.example"}}, s);
  EXPECT_EQ(p.status, 200);
  EXPECT_NE(p.body.find("no error"), std::string::npos);
  EXPECT_EQ(f.local(), "\n");
  Response pb = f.post("/propose", {{"csrf", csrf}, {"ref", r.ref}, {"lines", "welcomelist_auth nonsense"}}, s);
  EXPECT_EQ(pb.status, 422);
}

TEST(ConsolePages, HtmlEscapesEverything) {
  EXPECT_EQ(html("<a href=\"x\" onclick='y'>&</a>"), "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  EXPECT_EQ(html(std::string("a\x01" "b\x7f")), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD");
}

TEST(ConsolePages, ASaveOverAnotherChangeIsRefused) {
  Fixture f;
  auto [s, csrf] = f.login("alice", "alice-pw");
  const std::string base = f.base(s);  // alice opens the editor
  auto [b, bcsrf] = f.login("bob", "bob-pw");
  ASSERT_EQ(f.post("/rules/append", {{"csrf", bcsrf}, {"lines", "score SEO_SUBMIT 1.5"}}, b).status, 200);  // bob saves
  Response late = f.post("/rules", {{"csrf", csrf}, {"base", base}, {"content", "score SEO_SUBMIT 0.1\n"}}, s);
  EXPECT_EQ(late.status, 409);
  EXPECT_NE(late.body.find("changed since you opened it"), std::string::npos);
  EXPECT_EQ(f.local(), "\nscore SEO_SUBMIT 1.5\n");  // bob's line kept
  EXPECT_EQ(f.post("/rules", {{"csrf", csrf}, {"base", f.base(s)}, {"content", "score SEO_SUBMIT 0.1\n"}}, s).status, 200);
}

TEST(ConsolePages, LoginRedirectsOnlyToOwnPages) {
  Fixture f;
  for (const char* next : {"//evil.example/", "/\\evil.example", "/\t/evil.example", "https://evil.example/",
                           "/%0d%0aSet-Cookie:x", "javascript:alert(1)"}) {
    Response r = f.post("/login", {{"user", "alice"}, {"password", "alice-pw"}, {"next", next}});
    ASSERT_EQ(r.status, 303);
    const std::string to = header_of(r, "Location");
    EXPECT_TRUE(to == "/" || to == "/%0d%0aSet-Cookie:x") << next << " -> " << to;  // a path of ours, escaped
  }
  Response ok = f.post("/login", {{"user", "alice"}, {"password", "alice-pw"}, {"next", "/verdict?ref=abc"}});
  EXPECT_EQ(header_of(ok, "Location"), "/verdict?ref=abc");
}

TEST(ConsolePages, ASessionEndsWhenItsUserIsRemovedOrGetsANewPassword) {
  Fixture f;
  auto [s, csrf] = f.login("alice", "alice-pw");
  auto [b, bcsrf] = f.login("bob", "bob-pw");
  EXPECT_EQ(f.get("/rules", s).status, 200);
  // alice gets a new password; bob is removed
  f.dir.file("users", "alice:" + hash_password("new-pw") + "\n");
  EXPECT_EQ(f.get("/rules", s).status, 303);
  EXPECT_EQ(f.get("/rules", b).status, 303);
  EXPECT_EQ(f.post("/login", {{"user", "alice"}, {"password", "new-pw"}}).status, 303);
}

TEST(ConsolePages, ALongUserNameIsClippedInTheAuditLog) {
  Fixture f;
  f.post("/login", {{"user", std::string(100000, 'x')}, {"password", "nope"}});
  std::string audit = slurp(f.snap->config.console.audit_log);
  EXPECT_LT(audit.size(), 400u) << audit.size();
  EXPECT_NE(audit.find("\"login-failed\""), std::string::npos);
}
