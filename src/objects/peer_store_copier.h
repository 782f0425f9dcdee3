// PeerStoreCopier: copies objects out of the stores of other nodes of this host from the process
// that needs them, pinned there for the copy, without asking any raylet.
//
// Why: between virtual nodes (or one raylet per NUMA domain) a Get of another node's object
// asked this node's raylet, which copied it and answered: two hops between processes, each a
// wake-up of a process that may be asleep or waiting for a core on a busy machine. The process
// that calls Get is awake, and the source store is shared memory of this host, so it copies
// the object itself, as MPI_Get copies in the process that calls it (docs/objects.md, "Copies
// by the reader"). Its raylet hands it the locations of the stores it maps (SameHostStores);
// the copy lands in a new object of this node's store, created and sealed by this process.
//
// Nothing is opened before the first copy from a node: a peer's store is attached then (its
// segment checked to be the very file its raylet described), and kept.
//
// Thread-safety: thread-safe; copies from several threads run at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

#include "objects/arena_location.h"
#include "objects/object_store.h"
#include "objects/source_pins.h"

namespace raympi {

class PeerStoreCopier : public SourcePins {
 public:
  // Remembers `node`'s store if `where` lies on this host (the same running kernel, a valid
  // name). Returns whether it did; a node described twice keeps its first description.
  bool AddPeer(int node, const ArenaLocation& where);
  bool Knows(int node) const;

  // SourcePins: pins `id` in `node`'s store (never waiting for its lock), copies, unpins. On any
  // error nothing was copied: ask the raylet. A store that cannot be attached is not tried
  // again (NotFound for every later copy from that node).
  Status CopyFromSource(int node, const ObjectId& id, uint8_t* dest, uint64_t size) override;

 private:
  struct Peer {
    ArenaLocation where;
    std::unique_ptr<ObjectStore> store;  // attached by the first copy; kept until destruction
    bool attach_failed = false;
  };
  // The attached store of `node`, attaching it on first use; nullptr if it cannot be.
  ObjectStore* StoreOf(int node);

  mutable std::mutex mu_;
  std::map<int, Peer> peers_;
};

}  // namespace raympi
