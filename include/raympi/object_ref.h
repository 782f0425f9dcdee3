// ObjectRef<T>: a future for a value of type T that lives in the cluster.
#pragma once

#include <string>

namespace raympi {

/// A reference to an object: the return of a task or the result of Put.
/// @code
///   raympi::ObjectRef<int> ref = raympi::Task(Square).Remote(3);
///   int nine = *raympi::Get(ref);
/// @endcode
/// Passing an ObjectRef as a task argument passes its value: the task runs once it is ready.
template <typename T>
class ObjectRef {
 public:
  ObjectRef() = default;
  explicit ObjectRef(std::string id) : id_(std::move(id)) {}
  const std::string& ID() const { return id_; }
  bool operator==(const ObjectRef& other) const { return id_ == other.id_; }
  bool operator!=(const ObjectRef& other) const { return id_ != other.id_; }

  template <class Archive>
  void serialize(Archive& archive) {
    archive(id_);
  }

 private:
  std::string id_;
};

namespace internal {
// An object id as printable hex, for error messages.
inline std::string HexId(const std::string& id) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : id) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}
}  // namespace internal

template <typename T>
struct IsObjectRef : std::false_type {};
template <typename T>
struct IsObjectRef<ObjectRef<T>> : std::true_type {};

}  // namespace raympi
