// IdKey: a 16-byte binary id (ObjectId::Binary, task ids) as a fixed-size hash-map key.
// The core worker looks ids up several times per task; a std::string key costs a string hash
// over 16 bytes, a heap node per entry and a compare through pointers (docs/performance.md,
// "Fewer lookups, copies and allocations per task on the owner"). Two words compare and hash in a
// few instructions.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "common/ids.h"

namespace raympi {

class IdKey {
 public:
  IdKey() = default;
  // Implicit, so maps keyed by IdKey take the binary ids the runtime passes around. A string
  // that is not 16 bytes long (a corrupt id from a message) becomes the invalid key, which no
  // valid id equals: lookups of it find nothing once callers refuse to insert it.
  IdKey(std::string_view binary) {  // NOLINT(google-explicit-constructor)
    if (binary.size() != ObjectId::kSize) {
      lo_ = hi_ = kInvalidWord;
      return;
    }
    std::memcpy(&lo_, binary.data(), 8);
    std::memcpy(&hi_, binary.data() + 8, 8);
  }
  IdKey(const std::string& binary)  // NOLINT(google-explicit-constructor)
      : IdKey(std::string_view(binary)) {}

  bool valid() const { return !(lo_ == kInvalidWord && hi_ == kInvalidWord); }
  // The id's fields (same layout as ObjectId::Binary); meaningful only for a valid key.
  ObjectId ToObjectId() const {
    ObjectId id;
    std::memcpy(&id.owner_node, &lo_, 4);
    std::memcpy(&id.owner_slot, reinterpret_cast<const char*>(&lo_) + 4, 4);
    std::memcpy(&id.owner_pid, &hi_, 4);
    std::memcpy(&id.index, reinterpret_cast<const char*>(&hi_) + 4, 4);
    return id;
  }
  std::string Binary() const {
    std::string out(ObjectId::kSize, '\0');
    std::memcpy(&out[0], &lo_, 8);
    std::memcpy(&out[8], &hi_, 8);
    return out;
  }
  bool operator==(const IdKey& o) const { return lo_ == o.lo_ && hi_ == o.hi_; }
  bool operator!=(const IdKey& o) const { return !(*this == o); }

  // The owner (node, slot) is in the low word and the per-owner counter in the high one, so
  // mixing both spreads the ids of one owner over the buckets.
  size_t Hash() const noexcept {
    uint64_t h = (hi_ ^ (lo_ * 0x9E3779B97F4A7C15ULL)) * 0xBF58476D1CE4E5B9ULL;
    return static_cast<size_t>(h ^ (h >> 31));
  }

 private:
  static constexpr uint64_t kInvalidWord = ~uint64_t{0};
  uint64_t lo_ = kInvalidWord;
  uint64_t hi_ = kInvalidWord;
};

struct IdKeyHash {
  // noexcept and cheap: std::unordered_map then keeps no hash code in its nodes.
  size_t operator()(const IdKey& key) const noexcept { return key.Hash(); }
};

}  // namespace raympi
