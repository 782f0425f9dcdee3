// A frame is what travels on the bus and over MPI: an 8-byte routing header (destination node
// and slot) followed by the serialized Envelope. Routers read the header and never parse the
// payload, so forwarding a large message costs one copy, not a decode and an encode.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "raympi.pb.h"

namespace raympi {

constexpr int kGcsNode = -1;
// For a rank with no node role (a spare rank): handled by whichever rank receives it.
constexpr int kThisRankNode = -2;
constexpr int kRayletSlot = 0;

std::string EncodeFrame(const rpc::Envelope& envelope);
// Reads the destination from a frame's header.
Status PeekDestination(std::string_view frame, int* node, int* slot);
// Replaces *envelope with the frame's message, as a fresh parse would. Sub-messages of the kinds
// the frame carries are cleared in place rather than freed, so a thread that decodes into the
// same envelope each time reuses their strings' buffers instead of a malloc per field.
Status DecodeFrame(std::string_view frame, rpc::Envelope* envelope);

rpc::Address MakeAddress(int node, int slot);

}  // namespace raympi
