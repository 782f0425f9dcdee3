#include "common/ids.h"

#include <cstring>

namespace raympi {

std::string ObjectId::Binary() const {
  std::string out(kSize, '\0');
  std::memcpy(&out[0], &owner_node, 4);
  std::memcpy(&out[4], &owner_slot, 4);
  std::memcpy(&out[8], &owner_pid, 4);
  std::memcpy(&out[12], &index, 4);
  return out;
}

StatusOr<ObjectId> ObjectId::FromBinary(std::string_view bytes) {
  if (bytes.size() != kSize) {
    return Status::InvalidArgument("object id must be " + std::to_string(kSize) + " bytes, got " +
                                   std::to_string(bytes.size()));
  }
  ObjectId id;
  std::memcpy(&id.owner_node, bytes.data(), 4);
  std::memcpy(&id.owner_slot, bytes.data() + 4, 4);
  std::memcpy(&id.owner_pid, bytes.data() + 8, 4);
  std::memcpy(&id.index, bytes.data() + 12, 4);
  return id;
}

std::string ObjectId::Hex() const {
  static const char* kDigits = "0123456789abcdef";
  std::string bin = Binary(), out;
  for (unsigned char c : bin) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::string DescribeObjectId(std::string_view binary) {
  auto parsed = ObjectId::FromBinary(binary);
  return parsed.ok() ? parsed->Hex() : "<malformed id>";
}

}  // namespace raympi
