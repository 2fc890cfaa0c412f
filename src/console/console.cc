// console.cc - the support console's pages (see console.h).
#include "console/console.h"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "checks/bayes.h"
#include "console/local_rules.h"
#include "history/history_store.h"
#include "spamgate/actions.h"
#include "spamgate/bayes.h"
#include "spamgate/message.h"
#include "spamgate/outbound.h"
#include "util/log.h"
#include "util/text.h"

namespace spamgate::console {

std::string html(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (unsigned char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      case '\n': case '\t': out.push_back(static_cast<char>(c)); break;
      default:
        if (c < 0x20 || c == 0x7f) out += "\xEF\xBF\xBD";
        else out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

namespace {

constexpr const char* kCss = R"(body{font-family:system-ui,sans-serif;margin:0;color:#1d232b;background:#f6f7f9}
header{background:#253447;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;gap:1em;align-items:center}
header a,header button{color:#fff;background:none;border:0;font:inherit;cursor:pointer;text-decoration:underline}
header .who{margin-left:auto}
main{padding:1em;max-width:70em}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{border-bottom:1px solid #dde;padding:.35em .5em;text-align:left;vertical-align:top;word-break:break-word}
th{background:#eef1f5}
pre,textarea{font-family:ui-monospace,monospace;font-size:.9em}
pre{white-space:pre-wrap;background:#fff;border:1px solid #dde;padding:.6em}
textarea{width:100%;box-sizing:border-box}
input,button,select{font:inherit;padding:.35em .6em}
.error{background:#fde8e8;border:1px solid #e0a0a0;padding:.6em}
.ok{background:#e6f6e6;border:1px solid #9c9;padding:.6em}
.warn{background:#fff6dc;border:1px solid #e5c96a;padding:.6em}
.num{text-align:right;white-space:nowrap}
form.inline{display:inline}
label.choice{display:block;margin:.3em 0}
@media (max-width:40em){td,th{display:block}th{display:none}td:first-child{font-weight:bold}}
)";

// Picking a proposal puts its lines into the text area; without the
// script the first proposal's lines are there and can be edited.
constexpr const char* kJs = R"(document.addEventListener('DOMContentLoaded', function () {
  var area = document.getElementById('lines');
  document.querySelectorAll('input[name=proposal]').forEach(function (r) {
    r.addEventListener('change', function () { if (area && r.checked) area.value = r.dataset.lines; });
  });
  document.querySelectorAll('form[data-confirm]').forEach(function (f) {
    f.addEventListener('submit', function (e) { if (!window.confirm(f.dataset.confirm)) e.preventDefault(); });
  });
});
)";

std::string param(const Request& r, const std::string& name) {
  auto it = r.params.find(name);
  return it == r.params.end() ? std::string() : it->second;
}

std::string url_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

Response redirect(const std::string& to) {
  Response r;
  r.status = 303;
  r.headers.push_back({"Location", to});
  r.body = "<a href=\"" + html(to) + "\">" + html(to) + "</a>";
  return r;
}

Response refused(int status, const std::string& why) {
  Response r;
  r.status = status;
  r.body = "<!doctype html><meta charset=utf-8><title>Refused</title><p>" + html(why) +
           "</p><p><a href=\"/login\">Log in</a></p>";
  return r;
}

std::string when(std::int64_t t) { return t > 0 ? format_unix_time(t) : std::string("-"); }

// A defined rule's place, or what else the symbol is.
std::string defined_at(const SymbolInfo* info) {
  if (info == nullptr) return "(not in the rules now)";
  if (info->file.empty()) return "built-in check";
  return info->file + ":" + std::to_string(info->line);
}

std::string score_at(const SymbolInfo* info) {
  if (info == nullptr) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(info->score_millis) / 1000.0);
  std::string out = buf;
  if (!info->score_file.empty()) return out + " at " + info->score_file + ":" + std::to_string(info->score_line);
  return out + (info->file.empty() ? " (the check's default)" : " (default: no score line)");
}

// A form's text as rules-file lines: browsers send CR LF for every line
// break (HTML's form encoding); the rules files are LF. Ends with '\n'.
std::string form_lines(const std::string& text) {
  std::string lf;
  lf.reserve(text.size() + 1);
  for (std::size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) lf.push_back(text[i]);
  if (!lf.empty() && lf.back() != '\n') lf += '\n';
  return lf;
}

// A short digest of the local file as a page showed it (FNV-1a, 64 bits):
// not a secret, only "has it changed since".
std::string fingerprint(std::string_view text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Where a login may send the browser: one of our own pages. A path of
// plain characters only: "/\\evil.example" or a tab would leave the site.
std::string safe_next(const std::string& next) {
  if (next.size() < 1 || next.size() > 300 || next[0] != '/' || (next.size() > 1 && next[1] == '/')) return "/";
  for (unsigned char ch : next)
    if (!std::isalnum(ch) && std::string_view("/_?=&%.-").find(static_cast<char>(ch)) == std::string_view::npos)
      return "/";
  return next;
}

std::string lint_list(const std::vector<Diagnostic>& ds) {
  std::string out;
  for (const Diagnostic& d : ds) out += d.str() + "\n";
  return out;
}

}  // namespace

struct Console::Ctx {
  const Request& req;
  std::string user;
  std::string csrf;
  std::string token;
  // The rules and config in use; dropped before a reload (a reload waits
  // for the snapshots in use to go).
  mutable std::shared_ptr<const Snapshot> snap;
  // A hidden CSRF field for a form.
  std::string csrf_field() const { return "<input type=hidden name=csrf value=\"" + html(csrf) + "\">"; }
};

Console::Console(ConsoleConfig c, ConsoleHooks hooks, bool https)
    : config_(std::move(c)),
      hooks_(std::move(hooks)),
      https_(https),
      sessions_(std::chrono::minutes(config_.session_minutes)),
      audit_(config_.audit_log) {}

std::string Console::page(const Ctx& c, const std::string& title, const std::string& body) const {
  return "<!doctype html><html lang=en><head><meta charset=utf-8>"
         "<meta name=viewport content=\"width=device-width,initial-scale=1\">"
         "<title>" + html(title) + " - spamgate</title><link rel=stylesheet href=\"/console.css\"></head><body>"
         "<header><strong>spamgate</strong><a href=\"/\">Search</a><a href=\"/rules\">Local rules</a>"
         "<a href=\"/settings\">Recipient settings</a>"
         "<a href=\"/audit\">Audit log</a><span class=who>" + html(c.user) + "</span>"
         "<form class=inline method=post action=\"/logout\">" + c.csrf_field() +
         "<button id=logout>Log out</button></form></header><main><h1>" + html(title) + "</h1>" + body +
         "</main><script src=\"/console.js\"></script></body></html>";
}

Response Console::handle(const Request& r) {
  try {
    if (r.method == "GET" && r.path == "/console.css") {
      Response out;
      out.content_type = "text/css; charset=utf-8";
      out.body = kCss;
      return out;
    }
    if (r.method == "GET" && r.path == "/console.js") {
      Response out;
      out.content_type = "text/javascript; charset=utf-8";
      out.body = kJs;
      return out;
    }
    if (r.path == "/login") {
      if (r.method == "POST") return login(r);
      if (r.method == "GET") return login_page(r, "", 200);
      return refused(405, "Method not allowed.");
    }
    auto session = sessions_.find(r.session);
    if (session && !still_allowed(*session)) {  // removed from the users file, or a new password
      sessions_.remove(r.session);
      session.reset();
    }
    if (!session) {
      // A page asked for without a session: the login page, which comes
      // back here (a reference from a customer's header opens directly).
      if (r.method == "GET") {
        std::string next = r.path;
        if (r.path == "/verdict" || r.path == "/") {
          if (std::string ref = param(r, "ref"); !ref.empty()) next = "/verdict?ref=" + url_encode(ref);
        }
        return redirect("/login?next=" + url_encode(next));
      }
      return refused(403, "You are not logged in (or your session has ended).");
    }
    Ctx c{r, session->user, session->csrf, r.session, hooks_.snapshot()};
    if (r.method == "POST") {
      // Every change carries the session's own token: a form on another
      // site, or another user's token, does not.
      if (!same_secret(param(r, "csrf"), session->csrf) || session->csrf.empty()) {
        audit_.write({0, c.user, r.client_ip, "csrf-refused", r.path, ""});
        return refused(403, "This form is out of date or did not come from this console (CSRF token). "
                            "Open the page again and retry.");
      }
      if (r.path == "/logout") {
        sessions_.remove(r.session);
        audit_.write({0, c.user, r.client_ip, "logout", "", ""});
        Response out = redirect("/login");
        out.headers.push_back({"Set-Cookie", std::string("sg_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict") +
                                                 (https_ ? "; Secure" : "")});
        return out;
      }
      if (r.path == "/propose") return propose(c);
      if (r.path == "/rules/append") return append_file(c, local_rules_file());
      if (r.path == "/settings/append") return append_file(c, settings_file());
      if (r.path == "/learn") return learn(c);
      if (r.path == "/rules") return save_file(c, local_rules_file());
      if (r.path == "/settings") return save_file(c, settings_file());
      return refused(404, "No such action.");
    }
    if (r.method != "GET") return refused(405, "Method not allowed.");
    if (r.path == "/") return search(c);
    if (r.path == "/verdict") return verdict(c);
    if (r.path == "/rules") return file_page(c, local_rules_file());
    if (r.path == "/settings") return file_page(c, settings_file());
    if (r.path == "/audit") return audit_page(c);
    return refused(404, "No such page.");
  } catch (const std::exception& e) {
    log().error("console: {} {}: {}", r.method, clip(r.path, 200), e.what());
    return refused(500, "The console failed on this request; the log says why.");
  }
}

bool Console::still_allowed(const Session& s) const {
  std::vector<Diagnostic> ignored;
  auto users = read_users(config_.users_file, ignored);
  if (!users.ok()) return false;
  auto it = users.value().find(s.user);
  return it != users.value().end() && it->second == s.hash;
}

Response Console::login_page(const Request& r, const std::string& error, int status) {
  const std::string next = safe_next(param(r, "next"));
  Response out;
  out.status = status;
  out.body =
      "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport "
      "content=\"width=device-width,initial-scale=1\"><title>Log in - spamgate</title>"
      "<link rel=stylesheet href=\"/console.css\"></head><body><header><strong>spamgate</strong> support console"
      "</header><main><h1>Log in</h1>" +
      (error.empty() ? std::string() : "<p class=error id=error>" + html(error) + "</p>") +
      "<form method=post action=\"/login\"><input type=hidden name=next value=\"" + html(next) +
      "\"><p><label>User <input name=user id=user autocomplete=username required></label></p>"
      "<p><label>Password <input name=password id=password type=password autocomplete=current-password "
      "required></label></p><p><button id=login>Log in</button></p></form></main></body></html>";
  return out;
}

Response Console::login(const Request& r) {
  // Typed by anyone: clipped before it reaches the audit log or the log.
  const std::string user = clip(param(r, "user"), 64), password = param(r, "password");
  if (!throttle_.allowed(r.client_ip) || !throttle_.allowed("user " + user)) {
    audit_.write({0, user, r.client_ip, "login-throttled", "", ""});
    return login_page(r, "Too many failed logins from your address; wait 15 minutes.", 429);
  }
  std::vector<Diagnostic> problems;
  auto users = read_users(config_.users_file, problems);
  if (!users.ok()) {
    log().error("console: {}", users.status().message());
    return login_page(r, "The console cannot read its users file; the log says why.", 500);
  }
  for (const Diagnostic& d : problems) log().warn("console: {}", d.str());
  auto it = users.value().find(user);
  // A user that does not exist costs a hash too: the time does not tell.
  static const std::string kDummy = hash_password("not a password");
  const bool good = verify_password(it != users.value().end() ? it->second : kDummy, password) &&
                    it != users.value().end();
  if (!good) {
    throttle_.failed(r.client_ip);
    throttle_.failed("user " + user);
    audit_.write({0, user, r.client_ip, "login-failed", "", ""});
    log().warn("console: failed login for '{}' from {}", clip(user, 64), r.client_ip);
    return login_page(r, "Wrong user name or password.", 401);
  }
  throttle_.succeeded(r.client_ip);
  std::string token = sessions_.create(user, it->second);
  if (token.empty()) return login_page(r, "No session could be made (no randomness); the log says why.", 500);
  audit_.write({0, user, r.client_ip, "login", "", ""});
  Response out = redirect(safe_next(param(r, "next")));
  out.headers.push_back({"Set-Cookie", "sg_session=" + token + "; Path=/; HttpOnly; SameSite=Strict" +
                                           (https_ ? std::string("; Secure") : std::string())});
  return out;
}

Response Console::search(const Ctx& c) {
  const std::string q = param(c.req, "q"), since = param(c.req, "since"), until = param(c.req, "until");
  std::string body =
      "<form method=get action=\"/\"><p><label>Reference, queue id, Message-ID or address<br><input name=q id=q "
      "size=40 value=\"" + html(q) + "\"></label></p><p><label>From <input name=since id=since "
      "type=datetime-local value=\"" + html(since) + "\"></label> <label>to <input name=until id=until "
      "type=datetime-local value=\"" + html(until) + "\"></label> (UTC)</p><p><button id=search>Search"
      "</button></p></form>";
  if (!c.snap->config.history.enabled) return {200, "text/html; charset=utf-8", {}, page(c, "Search", body + "<p class=warn>The verdict history is off ([history] enabled = false).</p>")};
  HistoryQuery hq;
  hq.term = q;
  hq.limit = 100;
  for (auto [text, out] : {std::pair{&since, &hq.since}, std::pair{&until, &hq.until}}) {
    if (text->empty()) continue;
    std::int64_t t = parse_history_time(*text);
    if (t < 0) return {400, "text/html; charset=utf-8", {}, page(c, "Search", body + "<p class=error>Not a date: " + html(*text) + "</p>")};
    *out = t;
  }
  auto store = open_history_store(c.snap->config.history, true);
  std::vector<HistoryRecord> found;
  Status st = store.ok() ? store.value()->find(hq, found) : store.status();
  if (!st.ok()) return {500, "text/html; charset=utf-8", {}, page(c, "Search", body + "<p class=error>" + html(st.message()) + "</p>")};
  if (found.size() == 1 && !q.empty() && found[0].ref == q) return redirect("/verdict?ref=" + url_encode(q));
  if (found.empty()) {
    body += "<p id=none>No verdict found" + std::string(q.empty() ? "." : " for " + html(q) + ".") + "</p>";
  } else {
    body += "<table id=results><tr><th>Time (UTC)</th><th>Queue id</th><th>From</th><th>To</th><th>Subject</th>"
            "<th>Score</th><th>Action</th></tr>";
    for (const HistoryRecord& h : found) {
      std::string to;
      for (const std::string& rc : h.rcpt_to) to += (to.empty() ? "" : ", ") + rc;
      body += "<tr><td><a href=\"/verdict?ref=" + url_encode(h.ref) + "\">" + html(when(h.time)) + "</a></td><td>" +
              html(h.queue_id) + "</td><td>" + html(h.from.empty() ? h.mail_from : h.from) + "</td><td>" + html(to) +
              "</td><td>" + html(h.subject) + "</td><td class=num>" + html(h.score) + "</td><td>" + html(h.action) +
              "</td></tr>";
    }
    body += "</table>";
    if (found.size() == hq.limit) body += "<p>The newest " + std::to_string(hq.limit) + " shown; narrow the search.</p>";
  }
  return {200, "text/html; charset=utf-8", {}, page(c, "Search", body)};
}

namespace {

// The record of `ref`, or a Status for the page.
Status record_of(const Snapshot& snap, const std::string& ref, HistoryRecord& out) {
  if (ref.empty()) return Status::InvalidArgument("no reference given");
  auto store = open_history_store(snap.config.history, true);
  if (!store.ok()) return store.status();
  HistoryQuery q;
  q.term = ref;
  q.limit = 5;
  std::vector<HistoryRecord> found;
  if (Status st = store.value()->find(q, found); !st.ok()) return st;
  for (HistoryRecord& r : found) {
    if (r.ref == ref) {
      out = std::move(r);
      return Status::Ok();
    }
  }
  return Status::NotFound("no verdict has the reference " + ref);
}

}  // namespace

Response Console::verdict(const Ctx& c) {
  const std::string ref = param(c.req, "ref");
  HistoryRecord r;
  if (Status st = record_of(*c.snap, ref, r); !st.ok())
    return {404, "text/html; charset=utf-8", {}, page(c, "Verdict", "<p class=error id=error>" + html(st.message()) + "</p>")};
  std::string to;
  for (const std::string& rc : r.rcpt_to) to += (to.empty() ? "" : ", ") + rc;
  auto row = [](const std::string& k, const std::string& v, const std::string& id = "") {
    return "<tr><th>" + html(k) + "</th><td" + (id.empty() ? "" : " id=" + id) + ">" + html(v) + "</td></tr>";
  };
  std::string body = "<table id=summary>" + row("Reference", r.ref, "ref") + row("Time (UTC)", when(r.time)) +
                     row("Queue id", r.queue_id, "queue_id") + row("Message-ID", r.message_id) +
                     row("Client", (r.client_ip.empty() ? "local" : r.client_ip) + " (HELO " + r.helo + ")") +
                     row("Envelope", "from <" + r.mail_from + "> to " + to) + row("From", r.from, "from") +
                     row("Subject", r.subject, "subject") + row("Size", std::to_string(r.size) + " bytes") +
                     row("Direction", r.direction + (r.account.empty() ? "" : ", account " + r.account)) +
                     row("Authentication", r.auth.empty() ? "-" : r.auth) +
                     row("Score", r.score + " (spam when greater than " + r.threshold + ")", "score") +
                     row("Action", r.action + (r.reply.empty() ? "" : ": " + r.reply), "action") + "</table>";
  body += "<h2>Rules</h2><table id=hits><tr><th>Rule</th><th>Score here</th><th>Defined at</th>"
          "<th>Score now, set at</th><th>Matched</th></tr>";
  for (const HistoryRecord::RuleHit& h : r.hits) {
    const SymbolInfo* info = c.snap->symbols.find(h.name);
    std::string desc = info != nullptr && !info->description.empty() ? info->description : "";
    body += "<tr><td><strong>" + html(h.name) + "</strong>" + (desc.empty() ? "" : "<br><small>" + html(desc) + "</small>") +
            "</td><td class=num>" + html(h.score) + "</td><td>" + html(defined_at(info)) + "</td><td>" +
            html(score_at(info)) + "</td><td>" + html(h.detail) + "</td></tr>";
  }
  if (r.hits.empty()) body += "<tr><td colspan=5>No rule hit.</td></tr>";
  body += "</table>";
  // The header the recipient got (inbound mail; the settings in use now).
  if (r.direction == "inbound") {
    const Config& cfg = c.snap->config;
    std::string added = "X-Spam-Technical-Details: " +
                        technical_details_value(cfg, r.score, cfg.history.reference == "off" ? "" : r.ref);
    if (r.action == "tag") added = "Subject: " + cfg.subject_tag + " " + r.subject + "\n" + added;
    body += "<h2>Headers we added</h2><pre id=added>" + html(added) + "</pre>";
  }
  auto proposals = false_positive_proposals(r, c.snap->symbols, c.user, !c.snap->config.recipient_settings.empty());
  body += "<h2>False positive</h2>";
  if (proposals.empty()) {
    body += "<p>Nothing to propose for this message: edit the <a href=\"/rules\">local rules</a>.</p>";
  } else {
    body += "<form method=post action=\"/propose\">" + c.csrf_field() + "<input type=hidden name=ref value=\"" +
            html(r.ref) + "\"><p>Choose a fix; the lines are checked against the running rules before anything is "
            "saved.</p>";
    for (std::size_t i = 0; i < proposals.size(); ++i) {
      body += "<label class=choice><input type=radio name=proposal value=\"" + html(proposals[i].id) + "\" id=\"p-" +
              html(proposals[i].id) + "\" data-lines=\"" + html(proposals[i].lines) + "\"" + (i == 0 ? " checked" : "") +
              "> " + html(proposals[i].title) + "</label>";
    }
    body += "<p><textarea name=lines id=lines rows=4>" + html(proposals[0].lines) +
            "</textarea></p><p><button id=check>Check these lines</button></p></form>";
  }
  // Learning needs the message itself (the history keeps no body): the
  // file the customer forwarded, checked to be this verdict's message.
  body += "<h2>Teach the classifier</h2><form method=post action=\"/learn\" enctype=\"multipart/form-data\">" +
          c.csrf_field() + "<input type=hidden name=ref value=\"" + html(r.ref) + "\"><p><label>The message "
          "(.eml, as the customer forwarded it) <input type=file name=message id=message accept=\".eml,message/rfc822"
          "\"></label></p><p><button name=class value=ham id=learn-ham>False positive: learn as ham</button> "
          "<button name=class value=spam id=learn-spam>Missed spam: learn as spam</button></p></form>";
  return {200, "text/html; charset=utf-8", {}, page(c, "Verdict " + r.ref, body)};
}

Response Console::learn(const Ctx& c) {
  const std::string ref = param(c.req, "ref"), cls = param(c.req, "class"), bytes = param(c.req, "message");
  if (cls != "ham" && cls != "spam") return refused(400, "Learn as ham or as spam.");
  auto fail = [&](int status, const std::string& why) {
    return Response{status, "text/html; charset=utf-8", {},
                    page(c, "Learn", "<p class=error id=learned>" + html(why) + "</p><p><a href=\"/verdict?ref=" +
                                         url_encode(ref) + "\">Back to the verdict</a></p>")};
  };
  HistoryRecord r;
  if (Status st = record_of(*c.snap, ref, r); !st.ok()) return fail(404, st.message());
  if (bytes.empty()) return fail(400, "Choose the message file to learn.");
  Message m = parse_message(bytes, c.snap->config.limits);
  // The same message as the verdict: its Message-ID, as the history clipped it.
  const Header* mid = m.first("message-id");
  std::string got = mid != nullptr ? mid->decoded : std::string();
  auto trim = [](std::string s) {
    std::size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  got = trim(got);
  const std::string want = trim(r.message_id);
  if (!want.empty() && got.substr(0, want.size()) != want)
    return fail(422, "This file is not the verdict's message: its Message-ID is " + (got.empty() ? "(none)" : got) +
                         ", the verdict's " + want + ". Nothing was learned.");
  if (Status st = audit_.write({0, c.user, c.req.client_ip, "learn-" + cls, ref, got}); !st.ok())
    return fail(500, "Not learned: " + st.message());
  auto out = bayes_learn_message(*c.snap, m, cls == "spam" ? LearnClass::kSpam : LearnClass::kHam);
  if (!out.ok()) {
    audit_.write({0, c.user, c.req.client_ip, "learn-failed", ref, out.status().message()});
    return fail(500, "Not learned: " + out.status().message());
  }
  return {200, "text/html; charset=utf-8", {},
          page(c, "Learn", "<p class=ok id=learned>Learned as " + cls + " (the classifier's store: " +
                               learn_outcome_name(out.value()) + ").</p><p><a href=\"/verdict?ref=" + url_encode(ref) + "\">Back to the verdict</a></p>")};
}

struct Console::EditedFile {
  const char* url;     // the editor's page and form action; URL + "/append" appends
  const char* title;
  const char* title_lower;  // "the local rules"
  const char* audit;   // the audit log's action prefix
  std::string Config::*path;
  Status (*lint)(const Config&, const std::string&, LintResult&);
  const char* intro;   // what the file is, after its path
  const char* refused; // why a file with errors is not saved
};

Response Console::propose(const Ctx& c) {
  const std::string ref = param(c.req, "ref");
  const std::string lines = form_lines(param(c.req, "lines"));
  // The per-customer proposal goes to the recipient settings, the others
  // to the local rules.
  const EditedFile& f = param(c.req, "proposal") == kRecipientsProposal ? settings_file() : local_rules_file();
  const std::string& path = c.snap->config.*f.path;
  if (path.empty()) return refused(404, "spamgate.toml names no such file.");
  std::string current;
  if (Status st = read_local_rules(path, current); !st.ok())
    return {500, "text/html; charset=utf-8", {}, page(c, "Proposed lines", "<p class=error>" + html(st.message()) + "</p>")};
  std::string joined = current + (current.empty() || current.back() == '\n' ? "" : "\n") + lines;
  LintResult lint;
  if (Status st = f.lint(c.snap->config, joined, lint); !st.ok())
    return {500, "text/html; charset=utf-8", {}, page(c, "Proposed lines", "<p class=error>" + html(st.message()) + "</p>")};
  std::string body = "<p>These lines go at the end of <code>" + html(path) + "</code>:</p><pre id=proposed>" +
                     html(lines) + "</pre>";
  if (!lint.errors.empty()) {
    body += std::string("<div class=error id=lint><p>Not to be saved: ") + f.refused + ".</p><pre>" +
            html(lint_list(lint.errors)) + "</pre></div><p><a href=\"/verdict?ref=" + url_encode(ref) +
            "\">Back to the verdict</a></p>";
    return {422, "text/html; charset=utf-8", {}, page(c, "Proposed lines", body)};
  }
  body += "<p class=ok id=lint>Checked as a reload would read it: no error.</p>";
  if (!lint.warnings.empty()) body += "<div class=warn><pre>" + html(lint_list(lint.warnings)) + "</pre></div>";
  body += std::string("<form method=post action=\"") + f.url + "/append\" data-confirm=\"Save these lines and reload?\">" +
          c.csrf_field() + "<input type=hidden name=ref value=\"" + html(ref) + "\"><input type=hidden name=lines "
          "value=\"" + html(lines) + "\"><button id=save>Save to " + f.title_lower + " and reload</button></form>";
  return {200, "text/html; charset=utf-8", {}, page(c, "Proposed lines", body)};
}


Response Console::change_file(const Ctx& c, const EditedFile& f, const std::string& content, const std::string& action,
                              const std::string& target, const std::string& added) {
  const std::string path = c.snap->config.*f.path;
  const std::string act = std::string(f.audit) + "-" + action;
  LintResult lint;
  if (Status st = f.lint(c.snap->config, content, lint); !st.ok())
    return {500, "text/html; charset=utf-8", {}, page(c, f.title, "<p class=error>" + html(st.message()) + "</p>")};
  if (!lint.errors.empty()) {
    audit_.write({0, c.user, c.req.client_ip, act + "-refused", target, lint_list(lint.errors)});
    std::string body = std::string("<div class=error id=lint><p>Not saved: ") + f.refused + ".</p><pre>" +
                       html(lint_list(lint.errors)) + "</pre></div>";
    if (action == "save")
      body += std::string("<form method=post action=\"") + f.url + "\">" + c.csrf_field() +
              "<p><textarea name=content id=content rows=24>" + html(content) +
              "</textarea></p><input type=hidden name=base value=\"" + fingerprint(content) +
              "\"><p><button id=save>Save and reload</button></p></form>";
    return {422, "text/html; charset=utf-8", {}, page(c, f.title, body)};
  }
  // Written down before it is done: a change the audit log cannot record is not made.
  if (Status st = audit_.write({0, c.user, c.req.client_ip, act, target, added}); !st.ok())
    return {500, "text/html; charset=utf-8", {}, page(c, f.title, "<p class=error>Not saved: " + html(st.message()) + "</p>")};
  if (Status st = save_local_rules(path, content); !st.ok()) {
    audit_.write({0, c.user, c.req.client_ip, act + "-failed", target, st.message()});
    return {500, "text/html; charset=utf-8", {}, page(c, f.title, "<p class=error>Not saved: " + html(st.message()) + "</p>")};
  }
  // A reload waits until no one holds a snapshot that pins a retired
  // signature engine: this request must not be one of them.
  c.snap.reset();
  Status reloaded = hooks_.reload ? hooks_.reload("console") : Status::Internal("no reload here");
  audit_.write({0, c.user, c.req.client_ip, reloaded.ok() ? "reload" : "reload-refused", path,
                reloaded.ok() ? "" : reloaded.message()});
  std::string body = "<p class=ok id=saved>Saved to <code>" + html(path) + "</code>.</p>";
  if (reloaded.ok()) body += "<p class=ok id=reload>Reloaded: the new rules are in use.</p>";
  else body += "<div class=error id=reload><p>The reload was refused; the old rules keep running:</p><pre>" +
               html(reloaded.message()) + "</pre></div>";
  if (!target.empty() && action == "append")
    body += "<p><a href=\"/verdict?ref=" + url_encode(target) + "\">Back to the verdict</a></p>";
  return {reloaded.ok() ? 200 : 500, "text/html; charset=utf-8", {}, page(c, f.title, body)};
}

Response Console::append_file(const Ctx& c, const EditedFile& f) {
  const std::string lines = form_lines(param(c.req, "lines"));
  if (lines.empty()) return refused(400, "No lines to save.");
  const std::string path = c.snap->config.*f.path;
  if (path.empty()) return refused(404, "spamgate.toml names no such file.");
  std::lock_guard lock(rules_mu_);  // read, lint, save and reload: one change at a time
  std::string current;
  if (Status st = read_local_rules(path, current); !st.ok())
    return {500, "text/html; charset=utf-8", {}, page(c, f.title, "<p class=error>" + html(st.message()) + "</p>")};
  std::string joined = current + (current.empty() || current.back() == '\n' ? "" : "\n") + lines;
  return change_file(c, f, joined, "append", param(c.req, "ref"), lines);
}

Response Console::file_page(const Ctx& c, const EditedFile& f) {
  const std::string& path = c.snap->config.*f.path;
  if (path.empty())
    return {200, "text/html; charset=utf-8", {}, page(c, f.title, "<p class=error>spamgate.toml names no such file.</p>")};
  std::string current;
  if (Status st = read_local_rules(path, current); !st.ok())
    return {500, "text/html; charset=utf-8", {}, page(c, f.title, "<p class=error>" + html(st.message()) + "</p>")};
  std::string body = "<p><code>" + html(path) + "</code>" + f.intro +
                     " Saving checks it first, as a reload would; a file with errors is not saved.</p>"
                     "<form method=post action=\"" + f.url + "\">" + c.csrf_field() +
                     "<p><textarea name=content id=content rows=24>" + html(current) +
                     "</textarea></p><input type=hidden name=base value=\"" + fingerprint(current) +
                     "\"><p><button id=save>Save and reload</button></p></form>";
  return {200, "text/html; charset=utf-8", {}, page(c, f.title, body)};
}

Response Console::save_file(const Ctx& c, const EditedFile& f) {
  const std::string lf = form_lines(param(c.req, "content"));
  const std::string path = c.snap->config.*f.path;
  if (path.empty()) return refused(404, "spamgate.toml names no such file.");
  std::lock_guard lock(rules_mu_);
  // The file as the editor showed it: a save over someone else's change
  // since then would lose it.
  std::string current;
  if (Status st = read_local_rules(path, current); !st.ok())
    return {500, "text/html; charset=utf-8", {}, page(c, f.title, "<p class=error>" + html(st.message()) + "</p>")};
  if (param(c.req, "base") != fingerprint(current)) {
    std::string body = std::string("<div class=error id=lint><p>Not saved: the file changed since you opened it (another "
                       "save, or an edit on the server). Your text is below; open the file again and merge it.</p></div>"
                       "<p><textarea id=content rows=24 readonly>") + html(lf) + "</textarea></p>"
                       "<p><a href=\"" + f.url + "\">Open the file again</a></p>";
    return {409, "text/html; charset=utf-8", {}, page(c, f.title, body)};
  }
  return change_file(c, f, lf, "save", path, lf);
}

const Console::EditedFile& Console::local_rules_file() {
  static const Console::EditedFile f{"/rules", "Local rules", "the local rules", "rules", &Config::local_rules,
                                     &lint_local_rules,
                                     ", read last: its lines override the shipped rules.", "the rules would not load"};
  return f;
}

const Console::EditedFile& Console::settings_file() {
  static const Console::EditedFile f{
      "/settings", "Recipient settings", "the recipient settings", "settings", &Config::recipient_settings,
      &lint_recipient_settings,
      ": each customer's own threshold, reject level, tagging, opt-out and lists, one setting a line "
      "(RECIPIENT SETTING VALUE).",
      "the settings would not load"};
  return f;
}

Response Console::audit_page(const Ctx& c) {
  std::string body = "<p><code>" + html(audit_.path()) + "</code>, newest first.</p><table id=audit><tr><th>Time (UTC)"
                     "</th><th>User</th><th>From</th><th>Action</th><th>About</th><th>Detail</th></tr>";
  for (const AuditEntry& e : audit_.tail(200))
    body += "<tr><td>" + html(when(e.time)) + "</td><td>" + html(e.user) + "</td><td>" + html(e.ip) + "</td><td>" +
            html(e.action) + "</td><td>" + html(e.target) + "</td><td><pre>" + html(e.detail) + "</pre></td></tr>";
  body += "</table>";
  return {200, "text/html; charset=utf-8", {}, page(c, "Audit log", body)};
}

}  // namespace spamgate::console
