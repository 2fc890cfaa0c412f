// status.h - the result of an operation that can fail, without exceptions.
//
// Status carries a code and a human message; Result<T> carries a value or a
// Status. Module boundaries return these (GCC 12 has std::expected only under
// -std=c++23). Both are plain values: thread-compatible, not shared.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace spamgate {

class Status {
 public:
  enum class Code { kOk, kNotFound, kInvalidArgument, kCorruption, kIOError, kLimit, kInternal, kUnavailable };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status InvalidArgument(std::string msg) { return Status(Code::kInvalidArgument, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status Limit(std::string msg) { return Status(Code::kLimit, std::move(msg)); }
  static Status Internal(std::string msg) { return Status(Code::kInternal, std::move(msg)); }
  // A dependency known to be down (its circuit breaker is open): the call
  // was not even tried. Its outage is logged once, not per call.
  static Status Unavailable(std::string msg) { return Status(Code::kUnavailable, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }

 private:
  Status(Code c, std::string m) : code_(c), msg_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string msg_;
};

// A value or the Status that explains why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(implicit)
  Result(Status error) : v_(std::move(error)) {}     // NOLINT(implicit); must not be ok()

  bool ok() const { return std::holds_alternative<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace spamgate
