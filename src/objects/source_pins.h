// SourcePins: pins an object in another node's store from this process, for a pull that then
// needs nothing from that node's raylet (no PullRequest, PullReply or PullDone).
//
// Why: between two raylets of one host (virtual nodes, one raylet per NUMA domain), the pull's
// round trip to the source raylet cost more than the copy itself on the test VM: the source
// raylet has to be woken or scheduled to pin and answer (20-120 us each way, docs/performance.md,
// "Cross-node Get: where 1 MiB waits now"). Its store is shared memory that this process can
// pin in directly, as any process of that node can.
#pragma once

#include "common/ids.h"
#include "common/status.h"
#include "objects/object_store.h"

namespace raympi {

class SourcePins {
 public:
  virtual ~SourcePins() = default;
  // A pin of `id`, sealed, in `node`'s store; the view's offset is the object's offset in that
  // node's window. NotFound when that store cannot be reached from here, or it does not hold
  // the object (spilled, freed, not sealed yet): ask the node's raylet instead, which can
  // restore a spilled object and says why it cannot serve one. The view must not outlive
  // this object.
  virtual StatusOr<ObjectView> PinAtSource(int node, const ObjectId& id) = 0;
};

}  // namespace raympi
