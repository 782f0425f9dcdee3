// SpillManager: the raylet's object spilling (Ray's LocalObjectManager spill/restore half).
// When the node's store runs short of room it writes cold objects (sealed, unpinned, least
// recently used first: ObjectStore::EvictionCandidates) to SpillStorage, several fused into one
// file, frees their store space and remembers where each went. A Get of a spilled object
// restores it; freeing it deletes its spilled copy, and a file goes when none of its objects is
// live. See docs/objects.md, "Spilling".
//
// Thread-safety: single-threaded, driven by the raylet's loop (ObjectManager calls it). Every
// call is synchronous: a spill or restore blocks the loop for the time of its file I/O.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"
#include "objects/object_store.h"
#include "objects/spill_storage.h"

namespace raympi {

struct SpillConfig {
  // Spilling starts when the store's bytes in use exceed this share of its capacity (Ray's
  // object_spilling_threshold). Above 1: only when an object does not fit.
  double threshold = 0.8;
  // A spill writes at least this many bytes, when there are, as one file (Ray's
  // min_spilling_size): fewer, larger writes. Capped at a quarter of the store, so a small
  // store does not spill everything at once.
  uint64_t min_batch_bytes = 100 << 20;
};

struct SpillStats {
  SpillCounters counters;
  uint64_t files_written = 0;
  uint64_t files_removed = 0;
  uint64_t files_live = 0;
  std::string ToString() const;
};

class SpillManager {
 public:
  // `store` and `storage` outlive the manager.
  SpillManager(ObjectStore* store, SpillStorage* storage, SpillConfig config = {});
  ~SpillManager();
  SpillManager(const SpillManager&) = delete;
  SpillManager& operator=(const SpillManager&) = delete;

  // Spills until an object of `bytes` fits in the store (its largest free block). Unavailable
  // when nothing more can be spilled (every object is pinned or being written); IoError when
  // the storage fails (the message names the place and the cause).
  Status MakeRoom(uint64_t bytes);
  // Spills one batch if the store is fuller than the threshold. True if it spilled.
  bool SpillAboveThreshold();

  bool IsSpilled(const ObjectId& id) const { return spilled_.count(id) != 0; }
  // Writes a spilled object back into the store (spilling others if it needs room). The
  // spilled copy stays until the object is freed, so spilling it again costs no write.
  // NotFound if the object was never spilled (or was freed); AlreadyExists while a process of
  // the node is copying it in from another node (it is there once sealed: try again).
  Status Restore(const ObjectId& id);
  // The object was freed: forget its spilled copy; remove its file if that was the last live
  // object in it. No-op for an object that is not spilled (safe to call twice).
  void OnFreed(const ObjectId& id);

  SpillStats stats() const;

 private:
  struct Location {
    std::string file;
    uint64_t offset = 0;
    uint64_t size = 0;
  };
  struct IdLess {
    bool operator()(const ObjectId& a, const ObjectId& b) const;
  };

  // Spills the given store objects (or just evicts those already spilled). Sets *freed to the
  // store bytes it freed.
  Status Spill(const std::vector<ObjectId>& ids, uint64_t* freed);
  uint64_t BatchBytes(uint64_t at_least) const;
  void Publish();

  ObjectStore* store_;
  SpillStorage* storage_;
  SpillConfig config_;
  std::map<ObjectId, Location, IdLess> spilled_;
  std::map<std::string, uint64_t> live_in_file_;  // file -> live objects in it
  SpillStats stats_;
  uint64_t fruitless_at_ = 0;  // bytes in use when a threshold pass last found nothing to spill
  // The store as it was when MakeRoom last found nothing to spill, and what it said: asked
  // again before anything changed (a waiter retrying), it answers at once without a scan.
  bool stuck_ = false;
  ObjectStore::ChangeStamp stuck_at_;
  Status stuck_status_;
};

}  // namespace raympi
