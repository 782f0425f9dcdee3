// Exceptions of the user API. Inside the runtime errors travel as Status; they become these
// types only when they reach user code.
#pragma once

#include <stdexcept>
#include <string>

namespace raympi {

// Base of every error raympi raises in user code.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// A remote task failed: rethrown by Get in the caller. what() names the function.
class TaskError : public Error {
 public:
  TaskError(std::string function, std::string cause)
      : Error("task " + function + " failed: " + cause),
        function_(std::move(function)),
        cause_(std::move(cause)) {}
  const std::string& function() const { return function_; }
  const std::string& cause() const { return cause_; }

 private:
  std::string function_;
  std::string cause_;
};

// Bytes could not be turned into the type asked for (wrong ObjectRef type, corrupt data).
class SerializationError : public Error {
 public:
  using Error::Error;
};

// Put (or a task's return) found no room in the node's object store: the size asked, the
// capacity and how to fix it are in what().
class ObjectStoreFullError : public Error {
 public:
  using Error::Error;
};

// An object is gone: freed after its last reference was dropped, or lost with its node.
class ObjectLostError : public Error {
 public:
  using Error::Error;
};

// An actor is dead: its factory failed, it was killed (raympi::Kill), its owner died, or its
// worker died after its last restart. Raised by Get of a call's result; what() names the actor
// and the cause.
class ActorDiedError : public Error {
 public:
  using Error::Error;
};

// Get or Wait gave up after its timeout.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

}  // namespace raympi
