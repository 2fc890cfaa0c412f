// spool_file.h - owned file descriptors and unlinked temporary files.
//
// open_spool_file() gives a file that has no name from the start (O_TMPFILE,
// or mkstemp + unlink where the file system lacks it): it holds message
// bytes on disk rather than in memory and disappears when closed, even after
// a crash. DIAGNOSTICS: a failure names the directory and errno's text.
#pragma once

#include "spamgate/status.h"

#include <string>
#include <string_view>

namespace spamgate {

// An owned file descriptor, closed on destruction or reset.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  FileDescriptor(FileDescriptor&& o) noexcept : fd_(o.release()) {}
  FileDescriptor& operator=(FileDescriptor&& o) noexcept {
    reset(o.release());
    return *this;
  }
  ~FileDescriptor() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Opens an unlinked temporary file in `dir` for reading and writing
// (O_TMPFILE, or mkstemp + unlink where the file system lacks it).
// IOError naming `dir` and the reason when it cannot.
Result<FileDescriptor> open_spool_file(const std::string& dir);

// Writes all of `data` to `fd` (retrying short writes and EINTR). Returns 0,
// or the errno of the failure (ENOSPC when the disk takes no more).
int write_all(int fd, std::string_view data);

}  // namespace spamgate
