// console.h - the support console's pages, as a function of one request:
// login, search of the verdict history, a verdict with every rule and where
// it and its score are defined, a false positive turned into linted local
// rules saved and reloaded, the local rules editor, the audit log.
//
// The HTTP server (server.h, civetweb) turns requests into Request and
// writes the Response; everything that decides is here, so unit tests drive
// it without a socket. Server-rendered HTML; one small script, served from
// here (the Content-Security-Policy allows no inline script).
//
// Every page but /login and the two static files needs a session; every
// POST but /login needs the session's CSRF token. Every change is written
// to the audit log first; a change the audit log cannot record is refused.
// Thread-safe: civetweb calls handle() from several threads.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <vector>

#include "console/audit.h"
#include "console/auth.h"
#include "spamgate/snapshot.h"
#include "spamgate/status.h"

namespace spamgate::console {

struct Request {
  std::string method;  // GET, POST
  std::string path;    // "/verdict"
  std::map<std::string, std::string> params;  // query string and form (urlencoded or multipart), decoded
  std::string session;  // the sg_session cookie
  std::string client_ip;
};

struct Response {
  int status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // Set-Cookie, Location
  std::string body;
};

// What the console needs of the running milter.
struct ConsoleHooks {
  std::function<std::shared_ptr<const Snapshot>()> snapshot;  // the rules and config in use
  // Loads config and rules again; the Status says why a reload was refused
  // (the old rules keep running).
  std::function<Status(const char* why)> reload;
};

class Console {
 public:
  // `https`: the cookie is Secure. Users are read from c.users_file at each
  // login (a user added or removed counts at once).
  Console(ConsoleConfig c, ConsoleHooks hooks, bool https);
  Response handle(const Request& r);
  // True when `token` is a live session (the server reads a request's body
  // only then, but for /login).
  bool has_session(const std::string& token) { return sessions_.find(token).has_value(); }
  // For tests.
  SessionTable& sessions() { return sessions_; }

 private:
  struct Ctx;
  Response login_page(const Request& r, const std::string& error, int status);
  Response login(const Request& r);
  Response search(const Ctx& c);
  Response verdict(const Ctx& c);
  Response propose(const Ctx& c);
  Response learn(const Ctx& c);
  // The files support staff edit here: the local rules, the recipient settings.
  struct EditedFile;
  static const EditedFile& local_rules_file();
  static const EditedFile& settings_file();
  Response file_page(const Ctx& c, const EditedFile& f);
  Response append_file(const Ctx& c, const EditedFile& f);
  Response save_file(const Ctx& c, const EditedFile& f);
  Response audit_page(const Ctx& c);
  // Lints `content` as the new file `f`; if clean, audits, saves and
  // reloads; the page says which step refused it. `action`: "save" or "append".
  Response change_file(const Ctx& c, const EditedFile& f, const std::string& content, const std::string& action,
                       const std::string& target, const std::string& added);
  std::string page(const Ctx& c, const std::string& title, const std::string& body) const;
  // The session's user is still in the users file with the hash it logged in with.
  bool still_allowed(const Session& s) const;

  ConsoleConfig config_;
  ConsoleHooks hooks_;
  bool https_;
  SessionTable sessions_;
  LoginThrottle throttle_;
  AuditLog audit_;
  std::mutex rules_mu_;  // one change of the edited files at a time
};

// Text for HTML (element content and quoted attributes): & < > " ' escaped,
// control bytes shown as U+FFFD.
std::string html(std::string_view text);

}  // namespace spamgate::console
