// auth.h - who may use the support console: password hashes from the users
// file (crypt(3), yescrypt by default: libxcrypt, no plaintext), sessions
// with a CSRF token each, and a throttle on failed logins.
//
// Thread-safe: civetweb's worker threads share one SessionTable and one
// LoginThrottle.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "spamgate/diagnostic.h"
#include "spamgate/status.h"

namespace spamgate::console {

// A new crypt(3) hash of `password` (yescrypt, "$y$..."), a random salt
// each time; "" when libxcrypt fails (no randomness).
std::string hash_password(std::string_view password);
// True when `password` hashes to `hash`; false for any hash libxcrypt
// refuses. Compares in constant time.
bool verify_password(const std::string& hash, std::string_view password);
// A hash method the users file accepts: yescrypt ($y$), gost-yescrypt
// ($gy$), scrypt ($7$), bcrypt ($2b$/$2y$), sha512crypt ($6$).
bool strong_hash(std::string_view hash);

// The users file: "name:hash" lines; '#' comments and blank lines skipped.
// A line without a strong hash (a plaintext password, DES, MD5) is an error
// naming the line, and that user cannot log in.
using Users = std::map<std::string, std::string>;  // name -> hash
Result<Users> read_users(const std::string& path, std::vector<Diagnostic>& problems);

// Equal strings, in time that depends only on their lengths.
bool same_secret(std::string_view a, std::string_view b);
// `bytes` random bytes (getrandom) as lower-case hex; "" on failure.
std::string random_token(std::size_t bytes);

struct Session {
  std::string user;
  std::string csrf;  // sent back in every form that changes something
  std::string hash;  // the user's hash at login: a new password or a removed user ends the session
};

class SessionTable {
 public:
  using Clock = std::chrono::steady_clock;
  // `idle`: a session unused this long ends; `max_age`: every session ends
  // this long after the login; `cap`: sessions kept at most (the oldest go first).
  SessionTable(std::chrono::seconds idle, std::size_t cap = 1000,
               std::chrono::seconds max_age = std::chrono::hours(12))
      : idle_(idle), cap_(cap), max_age_(max_age) {}
  // A new session for `user` (logged in with `hash`): its cookie token ("" when no randomness).
  std::string create(const std::string& user, const std::string& hash = "");
  // The session of `token`, its idle time renewed; nullopt when unknown or expired.
  std::optional<Session> find(const std::string& token);
  void remove(const std::string& token);
  // For tests: as if `by` had passed.
  void advance_for_test(Clock::duration by) { skew_ += by; }

 private:
  Clock::time_point now() const { return Clock::now() + skew_; }
  struct Entry {
    Session s;
    Clock::time_point last;
    Clock::time_point created;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  std::chrono::seconds idle_;
  std::size_t cap_;
  std::chrono::seconds max_age_;
  Clock::duration skew_{};
};

// Failed logins per client address: past `max` failures in `window`, that
// address is refused until the window has passed since its last failure.
class LoginThrottle {
 public:
  using Clock = std::chrono::steady_clock;
  LoginThrottle(int max = 5, std::chrono::seconds window = std::chrono::minutes(15)) : max_(max), window_(window) {}
  bool allowed(const std::string& ip);
  void failed(const std::string& ip);
  void succeeded(const std::string& ip);

 private:
  struct Entry {
    int failures = 0;
    Clock::time_point last;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Entry> map_;
  int max_;
  std::chrono::seconds window_;
};

}  // namespace spamgate::console
