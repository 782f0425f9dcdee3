// Object ids. An id names its owner (node, slot, pid) so any process can find who to ask.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace raympi {

struct ObjectId {
  int32_t owner_node = 0;
  int32_t owner_slot = 0;
  uint32_t owner_pid = 0;  // tells a restarted process in the same slot apart
  uint32_t index = 0;      // per-owner counter

  static constexpr size_t kSize = 16;
  std::string Binary() const;
  static StatusOr<ObjectId> FromBinary(std::string_view bytes);
  std::string Hex() const;

  bool operator==(const ObjectId& o) const {
    return owner_node == o.owner_node && owner_slot == o.owner_slot && owner_pid == o.owner_pid &&
           index == o.index;
  }
  bool operator<(const ObjectId& o) const { return Binary() < o.Binary(); }
};

// A binary id as hex for messages, or "<malformed id>" when it does not parse.
std::string DescribeObjectId(std::string_view binary);

}  // namespace raympi
