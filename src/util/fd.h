// fd.h - a file descriptor closed on every path out (RAII); not copied.
#pragma once

#include <unistd.h>

namespace spamgate {

struct UniqueFd {
  int fd = -1;
  explicit UniqueFd(int f = -1) : fd(f) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace spamgate
