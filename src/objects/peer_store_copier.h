// PeerStoreCopier: copies objects out of the stores of other nodes of this host from the process
// that needs them, without asking any raylet.
//
// Why: between virtual nodes (or one raylet per NUMA domain) a Get of another node's object
// asked this node's raylet, which copied it and answered: two hops between processes, each a
// wake-up of a process that may be asleep or waiting for a core on a busy machine. The process
// that calls Get is awake, and the source store is shared memory of this host, so it copies
// the object itself, as MPI_Get copies in the process that calls it (docs/objects.md, "Copies
// by the reader"). Its raylet hands it the locations of the stores it maps (SameHostStores);
// the copy lands in a new object of this node's store, created and sealed by this process.
//
// With the creator's hints (offset, table slot, serial) a copy takes no lock and no pin there:
// it checks the object's table entry, copies, and checks the entry again, as a one-sided pull
// does (a free or spill changes the entry under the store's lock before its bytes can be
// reused). So a process killed mid-copy leaves nothing behind in the other store. Without
// hints it pins the object for the copy (never waiting for that store's lock).
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
#include <optional>

#include "objects/arena_location.h"
#include "objects/object_store.h"

namespace raympi {

// Where the creator put an object in its store (ObjectValue's offset, table_slot, serial).
struct StoredAt {
  uint64_t offset = 0;
  uint32_t table_slot = 0;
  uint32_t serial = 0;
};

class PeerStoreCopier {
 public:
  // Remembers `node`'s store if `where` lies on this host (the same running kernel, a valid
  // name). Returns whether it did; a node described twice keeps its first description.
  bool AddPeer(int node, const ArenaLocation& where);
  // Whether copies from `node` may be tried (described, and not failed to attach).
  bool Knows(int node) const;

  // Copies `id` (`size` bytes) from `node`'s store into `dest`. On any error the bytes in
  // `dest` mean nothing: ask the raylet. NotFound: not there as described (moved, spilled,
  // freed, not sealed) or that store cannot be reached from here (then never tried again);
  // Unavailable: without hints, that store's lock is held right now; InvalidArgument: the
  // object or the hints do not fit that store.
  Status Copy(int node, const ObjectId& id, uint64_t size, const std::optional<StoredAt>& at,
              uint8_t* dest);

 private:
  struct Peer {
    ArenaLocation where;
    std::unique_ptr<ObjectStore> store;  // attached by the first copy; kept until destruction
    bool attach_failed = false;
  };
  // The attached store of `node`, attaching it on first use (outside the lock: that pre-faults
  // the store's metadata, some ms); nullptr if it cannot be.
  ObjectStore* StoreOf(int node);

  mutable std::mutex mu_;
  std::map<int, Peer> peers_;
};

}  // namespace raympi
