#include "common/frame.h"

#include <cstdint>
#include <cstring>

namespace raympi {

namespace {
constexpr size_t kHeaderBytes = 8;
}

std::string EncodeFrame(const rpc::Envelope& envelope) {
  std::string out(kHeaderBytes, '\0');
  int32_t node = envelope.dst().node(), slot = envelope.dst().slot();
  std::memcpy(&out[0], &node, 4);
  std::memcpy(&out[4], &slot, 4);
  envelope.AppendToString(&out);
  return out;
}

Status PeekDestination(std::string_view frame, int* node, int* slot) {
  if (frame.size() < kHeaderBytes) {
    return Status::InvalidArgument("frame of " + std::to_string(frame.size()) +
                                   " bytes is shorter than its 8-byte header");
  }
  int32_t n, s;
  std::memcpy(&n, frame.data(), 4);
  std::memcpy(&s, frame.data() + 4, 4);
  *node = n;
  *slot = s;
  return Status::Ok();
}

Status DecodeFrame(std::string_view frame, rpc::Envelope* envelope) {
  int node, slot;
  RAYMPI_RETURN_IF_ERROR(PeekDestination(frame, &node, &slot));
  if (!envelope->ParseFromArray(frame.data() + kHeaderBytes,
                                static_cast<int>(frame.size() - kHeaderBytes))) {
    return Status::InvalidArgument("frame of " + std::to_string(frame.size()) +
                                   " bytes does not hold a valid envelope");
  }
  return Status::Ok();
}

rpc::Address MakeAddress(int node, int slot) {
  rpc::Address a;
  a.set_node(node);
  a.set_slot(slot);
  return a;
}

}  // namespace raympi
