// SourcePins: copies an object out of another node's store from this process, pinned there for
// the copy, for a pull that then needs nothing from that node's raylet (no PullRequest,
// PullReply or PullDone).
//
// Why: between two raylets of one host (virtual nodes, one raylet per NUMA domain) the pull's
// round trip to the source raylet cost more than the copy itself whenever that raylet slept:
// an MPI message cannot wake it, so it noticed the request at its next timed wake-up (up to
// 0.5 ms; docs/performance.md, "Session 8"). Its store is shared memory that this process can
// pin in directly, as any process of that node can.
#pragma once

#include <cstdint>

#include "common/ids.h"
#include "common/status.h"

namespace raympi {

class SourcePins {
 public:
  virtual ~SourcePins() = default;
  // Copies sealed object `id` of `size` bytes from `node`'s store into `dest`: pins it there,
  // copies, unpins, all before returning, so that no pin outlives the call (a raylet that dies
  // later leaves nothing pinned in another node's store). NotFound: that store cannot be
  // reached from here, or does not hold the object (spilled, freed, not sealed yet);
  // Unavailable: its lock is held right now (never waited for: the holder may be stopped);
  // InvalidArgument: it holds another size. On any error nothing was copied: ask the node's
  // raylet, which restores a spilled object and says why it cannot serve one.
  virtual Status CopyFromSource(int node, const ObjectId& id, uint8_t* dest, uint64_t size) = 0;
};

}  // namespace raympi
