// audit.cc - AuditLog (see audit.h).
#include "console/audit.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/fd.h"

namespace spamgate::console {

Status AuditLog::write(AuditEntry e) {
  if (e.time == 0) e.time = static_cast<std::int64_t>(std::time(nullptr));
  // Bounded: a login form's user name is anyone's text; a saved file is at
  // most 1 MB, of which the log keeps the start.
  auto bound = [](std::string& f, std::size_t max) {
    if (f.size() > max) f = f.substr(0, max) + "...";
  };
  bound(e.user, 64);
  bound(e.ip, 64);
  bound(e.action, 64);
  bound(e.target, 1024);
  bound(e.detail, 65536);
  nlohmann::json j = {{"time", e.time}, {"user", e.user},     {"ip", e.ip},
                      {"action", e.action}, {"target", e.target}, {"detail", e.detail}};
  // Hostile bytes (a Subject, a typed rule) become \uFFFD, not an exception.
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  const UniqueFd file{::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)};
  const int fd = file.fd;
  if (fd < 0) return Status::IOError("audit log " + path_ + ": " + std::strerror(errno));
  const char* p = line.data();
  std::size_t left = line.size();
  Status st = Status::Ok();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      st = Status::IOError("audit log " + path_ + ": " + std::strerror(errno));
      break;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  if (st.ok() && ::fdatasync(fd) != 0) st = Status::IOError("audit log " + path_ + ": " + std::strerror(errno));
  return st;
}

std::vector<AuditEntry> AuditLog::tail(std::size_t n) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ifstream in(path_);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(std::move(line));
    if (last.size() > n) last.pop_front();
  }
  std::vector<AuditEntry> out;
  for (auto it = last.rbegin(); it != last.rend(); ++it) {
    auto j = nlohmann::json::parse(*it, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    AuditEntry e;
    e.time = j.value("time", std::int64_t{0});
    e.user = j.value("user", "");
    e.ip = j.value("ip", "");
    e.action = j.value("action", "");
    e.target = j.value("target", "");
    e.detail = j.value("detail", "");
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace spamgate::console
