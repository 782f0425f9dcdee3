#include "common/status.h"

namespace raympi {

std::string Status::ToString() const {
  switch (code_) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kInvalidArgument:
      return "invalid argument: " + message_;
    case StatusCode::kNotFound:
      return "not found: " + message_;
    case StatusCode::kIoError:
      return "I/O error: " + message_;
    case StatusCode::kTimedOut:
      return "timed out: " + message_;
    case StatusCode::kUnavailable:
      return "unavailable: " + message_;
    case StatusCode::kAlreadyExists:
      return "already exists: " + message_;
    case StatusCode::kInternal:
      return "internal error: " + message_;
  }
  return message_;
}

}  // namespace raympi
