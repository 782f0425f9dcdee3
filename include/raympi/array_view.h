// ArrayView<E>: a read-only, zero-copy view of a std::vector<E> object (raympi::GetView).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "raympi/errors.h"
#include "raympi/serialization.h"

namespace raympi {

/// Elements of a std::vector<E> object where they lie (in the node's object store for a large
/// object). Copies share the pin: the object stays in place until the last copy is gone.
template <typename E>
class ArrayView {
 public:
  ArrayView() = default;

  const E* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const E& operator[](size_t i) const { return data_[i]; }
  const E* begin() const { return data_; }
  const E* end() const { return data_ + size_; }
  /// A copy the caller owns.
  std::vector<E> ToVector() const { return std::vector<E>(begin(), end()); }

  // Decodes the vector encoding (8-byte count + elements) in `bytes`, kept alive by `holder`.
  static ArrayView FromEncoded(std::shared_ptr<const void> holder, std::string_view bytes) {
    using Count = std::uint64_t;
    const std::string type = internal::TypeName<std::vector<E>>();
    if (bytes.size() < sizeof(Count)) {
      throw SerializationError("cannot view " + type + ": " + std::to_string(bytes.size()) +
                               " bytes hold no element count");
    }
    Count n = 0;
    std::memcpy(&n, bytes.data(), sizeof(n));
    const size_t payload = bytes.size() - sizeof(Count);
    if (payload % sizeof(E) != 0 || payload / sizeof(E) != n) {
      throw SerializationError("cannot view " + type + ": element count " + std::to_string(n) +
                               " does not match " + std::to_string(payload) + " payload bytes");
    }
    const char* first = bytes.data() + sizeof(Count);
    if (reinterpret_cast<std::uintptr_t>(first) % alignof(E) != 0) {
      throw SerializationError("cannot view " + type + ": elements are not aligned for the type");
    }
    ArrayView view;
    view.holder_ = std::move(holder);
    view.data_ = reinterpret_cast<const E*>(first);
    view.size_ = static_cast<size_t>(n);
    return view;
  }

 private:
  std::shared_ptr<const void> holder_;
  const E* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace raympi
