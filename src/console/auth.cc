// auth.cc - password hashes, the users file, sessions, the login throttle
// (see auth.h).
#include "console/auth.h"

#include <crypt.h>
#include <sys/random.h>

#include <fstream>
#include <memory>

namespace spamgate::console {

std::string random_token(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n <= 0) return {};
    got += static_cast<std::size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

bool same_secret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool strong_hash(std::string_view h) {
  for (std::string_view p : {"$y$", "$gy$", "$7$", "$2b$", "$2y$", "$6$"})
    if (h.starts_with(p) && h.size() > p.size() + 8) return true;
  return false;
}

std::string hash_password(std::string_view password) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // null entropy: libxcrypt reads its own (getrandom); count 0 = its default cost.
  if (crypt_gensalt_rn("$y$", 0, nullptr, 0, setting, sizeof setting) == nullptr) return {};
  auto data = std::make_unique<crypt_data>();  // ~32 KB: not on the stack
  std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), setting, data.get(), sizeof *data);
  if (out == nullptr || out[0] == '*') return {};
  return out;
}

bool verify_password(const std::string& hash, std::string_view password) {
  if (!strong_hash(hash) || password.size() > 1024) return false;
  auto data = std::make_unique<crypt_data>();
  std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), hash.c_str(), data.get(), sizeof *data);
  if (out == nullptr || out[0] == '*') return false;
  return same_secret(out, hash);
}

Result<Users> read_users(const std::string& path, std::vector<Diagnostic>& problems) {
  std::ifstream in(path);
  if (!in) return Status::IOError("cannot read the console users file " + path);
  Users users;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    std::size_t colon = line.find(':');
    std::string name = colon == std::string::npos ? "" : line.substr(0, colon);
    std::string hash = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (name.empty() || name.size() > 64 || name.find_first_of(" \t\"<>&'") != std::string::npos) {
      problems.push_back({path, n, "expected NAME:HASH (a name without spaces; `spamgate passwd NAME` writes the line)"});
      continue;
    }
    if (!strong_hash(hash)) {
      problems.push_back({path, n, "user '" + name + "' has no yescrypt/bcrypt/sha512crypt hash (a plaintext "
                                   "password or a weak hash is refused); `spamgate passwd " + name + "` writes one"});
      continue;
    }
    users[name] = hash;
  }
  return users;
}

std::string SessionTable::create(const std::string& user, const std::string& hash) {
  std::string token = random_token(32), csrf = random_token(32);
  if (token.empty() || csrf.empty()) return {};
  std::lock_guard<std::mutex> lock(mu_);
  const auto t = now();
  for (auto it = map_.begin(); it != map_.end();)
    it = t - it->second.last > idle_ || t - it->second.created > max_age_ ? map_.erase(it) : std::next(it);
  while (map_.size() >= cap_) {
    auto oldest = map_.begin();
    for (auto it = map_.begin(); it != map_.end(); ++it)
      if (it->second.last < oldest->second.last) oldest = it;
    map_.erase(oldest);
  }
  map_[token] = {{user, csrf, hash}, t, t};
  return token;
}

std::optional<Session> SessionTable::find(const std::string& token) {
  if (token.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(token);
  if (it == map_.end()) return std::nullopt;
  const auto t = now();
  if (t - it->second.last > idle_ || t - it->second.created > max_age_) {
    map_.erase(it);
    return std::nullopt;
  }
  it->second.last = t;
  return it->second.s;
}

void SessionTable::remove(const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  map_.erase(token);
}

bool LoginThrottle::allowed(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(ip);
  if (it == map_.end()) return true;
  if (Clock::now() - it->second.last > window_) {
    map_.erase(it);
    return true;
  }
  return it->second.failures < max_;
}

void LoginThrottle::failed(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  if (map_.size() > 100000) map_.clear();  // a flood of addresses: forget, do not grow
  Entry& e = map_[ip];
  if (Clock::now() - e.last > window_) e.failures = 0;
  ++e.failures;
  e.last = Clock::now();
}

void LoginThrottle::succeeded(const std::string& ip) {
  std::lock_guard<std::mutex> lock(mu_);
  map_.erase(ip);
}

}  // namespace spamgate::console
