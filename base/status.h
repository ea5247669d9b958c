// Errors as values, in the style of absl::Status / StatusOr, without the dependency.
//
// Every failure carries a message a user can act on, built where the context is known:
//
//   StatusOr<Target> FindTarget(pid_t pid) {
//     if (!ProcessExists(pid)) return NotFound("no process with pid ", pid);
//     ASSIGN_OR_RETURN(auto exe, ReadExe(pid));
//     ...
//   }
//
// Codes are few on purpose: they select an exit code or a protocol reason, the message
// says the rest.
#pragma once

#include <cassert>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace orion {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,   // the user's input is wrong (pattern, flag, file contents)
  kNotFound,          // a pid, file, node or probe that is not there
  kPermissionDenied,  // not root, no CAP_BPF, cookie file mode
  kFailedPrecondition,  // the system cannot do it (no BTF, JIT flavor, no USDT notes)
  kUnavailable,       // a peer or node that does not answer
  kDeadlineExceeded,  // a bounded wait that ran out
  kResourceExhausted, // a limit was reached (map full, too many requests)
  kInternal,          // a bug or an unexpected kernel/library error
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "not found: no process with pid 42"
  std::string ToString() const;

  // Prepends context: Status(kNotFound, "x").WithContext("attach") -> "attach: x".
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }

namespace status_internal {
template <typename... Args>
std::string StrCat(Args&&... args) {
  std::ostringstream out;
  (out << ... << std::forward<Args>(args));
  return out.str();
}
}  // namespace status_internal

#define ORION_STATUS_FACTORY(Name, Code)                                       \
  template <typename... Args>                                                  \
  Status Name(Args&&... args) {                                                \
    return Status(StatusCode::Code, status_internal::StrCat(std::forward<Args>(args)...)); \
  }
ORION_STATUS_FACTORY(InvalidArgument, kInvalidArgument)
ORION_STATUS_FACTORY(NotFound, kNotFound)
ORION_STATUS_FACTORY(PermissionDenied, kPermissionDenied)
ORION_STATUS_FACTORY(FailedPrecondition, kFailedPrecondition)
ORION_STATUS_FACTORY(Unavailable, kUnavailable)
ORION_STATUS_FACTORY(DeadlineExceeded, kDeadlineExceeded)
ORION_STATUS_FACTORY(ResourceExhausted, kResourceExhausted)
ORION_STATUS_FACTORY(Internal, kInternal)
#undef ORION_STATUS_FACTORY

// A value or the Status that says why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(const T& value) : value_(value) {}             // NOLINT: implicit by design
  StatusOr(T&& value) : value_(std::move(value)) {}       // NOLINT
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "StatusOr built from an OK status");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

#define ORION_STATUS_CONCAT_INNER(a, b) a##b
#define ORION_STATUS_CONCAT(a, b) ORION_STATUS_CONCAT_INNER(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                   \
  do {                                          \
    ::orion::Status _orion_status = (expr);     \
    if (!_orion_status.ok()) return _orion_status; \
  } while (0)

// ASSIGN_OR_RETURN(auto x, Compute()); declares x from the value or returns the status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ORION_ASSIGN_OR_RETURN_IMPL(ORION_STATUS_CONCAT(_orion_statusor_, __LINE__), lhs, expr)
#define ORION_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()

}  // namespace orion
