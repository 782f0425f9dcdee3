// ObjectRef<T>: a future for a value of type T that lives in the cluster.
#pragma once

#include <string>
#include <type_traits>
#include <utility>

namespace raympi {

namespace internal {
// Reference counting hooks into the runtime of this process (no-ops before Init and after
// Shutdown). Defined in the runtime library.
void AddLocalRef(const std::string& id);
void RemoveLocalRef(const std::string& id);
void OnRefSerialized(const std::string& id);
// Tag for the constructor that adopts a reference the runtime already counted.
struct AdoptRef {};
}  // namespace internal

/// A reference to an object: the return of a task or the result of Put.
/// @code
///   raympi::ObjectRef<int> ref = raympi::Task(Square).Remote(3);
///   int nine = *raympi::Get(ref);
/// @endcode
/// Passing an ObjectRef as a task argument passes its value: the task runs once it is ready.
/// The object lives while any ObjectRef to it exists (or a task that takes it is pending); when
/// the last one is destroyed, every copy of it in the cluster is freed, as in Ray.
template <typename T>
class ObjectRef {
 public:
  ObjectRef() = default;
  /// A new reference to the object `id` (the id of another ObjectRef).
  explicit ObjectRef(std::string id) : id_(std::move(id)) { Add(); }
  ObjectRef(std::string id, internal::AdoptRef) : id_(std::move(id)) {}
  ObjectRef(const ObjectRef& other) : id_(other.id_) { Add(); }
  ObjectRef(ObjectRef&& other) noexcept : id_(std::move(other.id_)) { other.id_.clear(); }
  ObjectRef& operator=(const ObjectRef& other) {
    if (this != &other) {
      Remove();
      id_ = other.id_;
      Add();
    }
    return *this;
  }
  ObjectRef& operator=(ObjectRef&& other) noexcept {
    if (this != &other) {
      Remove();
      id_ = std::move(other.id_);
      other.id_.clear();
    }
    return *this;
  }
  ~ObjectRef() { Remove(); }

  const std::string& ID() const { return id_; }
  bool operator==(const ObjectRef& other) const { return id_ == other.id_; }
  bool operator!=(const ObjectRef& other) const { return id_ != other.id_; }

  // A ref inside a value (Put, a task argument or return) keeps its object alive for the rest
  // of the job: raympi does not yet track references nested in objects (docs/objects.md).
  template <class Archive>
  void save(Archive& archive) const {
    if (!id_.empty()) internal::OnRefSerialized(id_);
    archive(id_);
  }
  template <class Archive>
  void load(Archive& archive) {
    Remove();
    archive(id_);
    Add();
  }

 private:
  void Add() const {
    if (!id_.empty()) internal::AddLocalRef(id_);
  }
  void Remove() const {
    if (!id_.empty()) internal::RemoveLocalRef(id_);
  }
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
