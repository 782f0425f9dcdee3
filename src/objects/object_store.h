// ObjectStore: a node's shared-memory object store (Ray's plasma, simplified). The raylet
// creates one segment per node; every worker of the node attaches to it. An object is created
// (a writable span in the arena), written in place, sealed (immutable from then on) and read
// in place by any process of the node: Get returns a view into the arena, no copy.
//
// Lifecycle of an object:  Create -> CREATED --Seal--> SEALED --Delete--> freed
//                                       \--Abort--> freed        (pinned: freed at last Release)
//
// Thread- and process-safety: every call may be made from any thread of any process that has
// the segment mapped. One robust process-shared mutex guards the table and the allocator; the
// bytes of an object are written and read outside it (a CREATED object has one writer, a
// SEALED one is immutable). See src/objects/README.md for the design.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace raympi {

class ObjectStore;

// The writable span of a CREATED object. Plain data: the writer must Seal or Abort the id.
struct MutableBuffer {
  ObjectId id;
  uint8_t* data = nullptr;  // 64-byte aligned; never null, even for a zero-size object
  size_t size = 0;
  uint64_t offset = 0;  // from the start of the arena (an MPI window displacement)
  // Where its entry is in the object table, and the store's number for this creation: with
  // the offset, what another node needs to read the object one-sided and then check that it
  // was there, sealed, all along (ObjectStore::EntryHolds).
  uint32_t table_slot = 0;
  uint32_t serial = 0;
};

// A pinned, read-only view of a SEALED object. While it lives the object stays in place, even
// if it is deleted meanwhile; destroying it (or Reset) releases the pin. Move-only. It must not
// outlive the ObjectStore that returned it.
class ObjectView {
 public:
  ObjectView() = default;
  ~ObjectView() { Reset(); }
  ObjectView(ObjectView&& other) noexcept;
  ObjectView& operator=(ObjectView&& other) noexcept;
  ObjectView(const ObjectView&) = delete;
  ObjectView& operator=(const ObjectView&) = delete;

  bool valid() const { return store_ != nullptr; }
  const ObjectId& id() const { return id_; }
  const uint8_t* data() const { return data_; }  // 64-byte aligned
  size_t size() const { return size_; }
  uint64_t offset() const { return offset_; }  // from the start of the arena
  std::string_view bytes() const {
    return std::string_view(reinterpret_cast<const char*>(data_), size_);
  }

  // Releases the pin now (no-op on an empty view).
  void Reset();
  // Empties the view without releasing its pin: the caller must call ObjectStore::Release(id)
  // later (a pin that outlives this object, e.g. one handed over in a message).
  void Leak() {
    store_ = nullptr;
    data_ = nullptr;
    size_ = 0;
    offset_ = 0;
  }

 private:
  friend class ObjectStore;
  ObjectView(ObjectStore* store, const ObjectId& id, const uint8_t* data, size_t size,
             uint64_t offset)
      : store_(store), id_(id), data_(data), size_(size), offset_(offset) {}

  ObjectStore* store_ = nullptr;
  ObjectId id_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint64_t offset_ = 0;
};

// What the node's spill manager did (src/objects/spill_manager.h), published in the store's
// header so every process of the node can report it (LocalObjectStoreUsage, like `ray memory`).
struct SpillCounters {
  uint64_t spilled_objects = 0;   // objects written to spill files, in total
  uint64_t spilled_bytes = 0;     // their bytes
  uint64_t restored_objects = 0;  // objects read back into the store, in total
  uint64_t restored_bytes = 0;
  uint64_t objects_on_disk = 0;  // spilled copies that are still live
  uint64_t bytes_on_disk = 0;
};

class ObjectStore {
 public:
  static constexpr uint32_t kDefaultMaxObjects = 64 << 10;
  // Every allocation is a multiple of this and starts at a multiple of it (cache line, AVX-512).
  static constexpr size_t kAlignment = 64;

  struct ObjectInfo {
    ObjectId id;
    size_t size = 0;  // as asked at Create
    bool sealed = false;
    bool delete_pending = false;  // deleted while pinned: freed at the last Release
    uint32_t pin_count = 0;
    pid_t creator_pid = 0;
  };

  struct Stats {
    size_t capacity = 0;            // arena bytes
    size_t bytes_in_use = 0;        // arena bytes held by objects (sizes rounded up to 64)
    size_t pinned_bytes = 0;        // of which held by pinned objects
    size_t largest_free_block = 0;  // the largest object that fits right now
    size_t num_objects = 0;         // every entry, CREATED and delete-pending included
    size_t num_unsealed = 0;        // CREATED
    size_t num_pinned = 0;
    size_t max_objects = 0;           // object table capacity
    std::vector<ObjectInfo> largest;  // the top-k objects by size, largest first
    SpillCounters spill;              // as last published by the spill manager
    uint64_t reader_copies = 0;       // CountReaderCopy calls so far
    // A `ray memory`-like summary, several lines.
    std::string ToString() const;
  };

  // Creates the segment `name` ("/..." as for shm_open, mode 0600) with an arena of
  // `capacity_bytes` (rounded up to 64) and a table for `max_objects` objects, reserves and
  // pre-faults every page, and owns it: the destructor unlinks it. The raylet calls this.
  // Without `prefault`, pages are only reserved when first written (fast start-up, but a first
  // transfer into them runs several times slower, and /dev/shm is only checked for room).
  static StatusOr<std::unique_ptr<ObjectStore>> Create(const std::string& name,
                                                       size_t capacity_bytes,
                                                       uint32_t max_objects = kDefaultMaxObjects,
                                                       bool prefault = true);
  // A view owning a pin that another process of the node took for this one (the raylet, for a
  // FetchObject with pin_for_requester), at `offset` with `size` bytes: no lock, no table
  // lookup. InvalidArgument, and no view, when the range lies outside the arena; the caller
  // then still owns the pin and must Release(id) it.
  StatusOr<ObjectView> AdoptPin(const ObjectId& id, uint64_t offset, size_t size);

  // Maps a segment made by Create (no unlink on destruction). The header, table and block
  // descriptors are always pre-faulted (a first touch of a table page costs tens of us on a
  // virtualised node, in the middle of a Get). `populate` pre-faults this process's page
  // tables for the whole segment: worth it in a process that receives bulk data into the
  // arena (MPI_Get), wasteful in every worker of a large store.
  static StatusOr<std::unique_ptr<ObjectStore>> Attach(const std::string& name,
                                                       bool populate = false);

  ~ObjectStore();
  ObjectStore(const ObjectStore&) = delete;
  ObjectStore& operator=(const ObjectStore&) = delete;

  const std::string& name() const;
  size_t capacity() const;
  uint32_t max_objects() const;
  // The arena in this process: objects live at arena() + offset (expose it as an MPI window).
  uint8_t* arena() const;
  // Where the arena starts in the segment `name()` (page-aligned): another process of the host
  // can map the arena alone (SameHostReader).
  uint64_t arena_offset_in_segment() const;

  // One-sided pulls (docs/objects.md, "Pulls without the source raylet"). The object table in
  // this process, to expose as a second MPI window: slot i's entry is the kEntryBytes at
  // i * kEntryBytes. EntryHolds says whether a copy of one names the creation `serial` of `id`,
  // sealed, at `offset` with `size` bytes. Serials are never 0, and an entry changes before its
  // object's bytes can be reused, so a reader that reads the bytes, then finds the entry still
  // holding them, read the object.
  const uint8_t* table() const;
  uint64_t table_bytes() const;
  static constexpr uint64_t kEntryBytes = 64;
  static bool EntryHolds(const void* entry, const ObjectId& id, uint64_t offset, uint64_t size,
                         uint32_t serial);

  // Allocates `size` bytes for a new object (CREATED: invisible to Get until sealed).
  // AlreadyExists if the id does (in any state); InvalidArgument if size exceeds the
  // capacity; Unavailable when the
  // store or its table is full (free, evict or spill, then retry).
  StatusOr<MutableBuffer> Create(const ObjectId& id, size_t size);
  // CREATED -> SEALED: immutable and visible to Get.
  Status Seal(const ObjectId& id);
  // Frees a CREATED object (its writer failed, or died: see AbortCreatedBy).
  Status Abort(const ObjectId& id);

  // Pins a SEALED object and returns a view of it. NotFound if absent, not sealed yet, or
  // deleted.
  StatusOr<ObjectView> Get(const ObjectId& id);
  // Get, but without waiting for the store's lock: Unavailable while another thread or process
  // holds it. For a process of another node (a raylet pinning at the source), which must not
  // wait on a process it does not supervise.
  StatusOr<ObjectView> TryGet(const ObjectId& id);
  // Drops one pin taken by Get (ObjectView does it for you).
  Status Release(const ObjectId& id);

  // Frees a SEALED object now if unpinned, else at its last Release (Get no longer finds it).
  Status Delete(const ObjectId& id);

  // Frees a SEALED object only if nobody pins it: the spill manager's way to drop an object
  // whose bytes are safe in a spill file. Unavailable if pinned (it stays), NotFound if absent.
  Status Evict(const ObjectId& id);

  // True if Get would find the object (sealed and not deleted).
  bool Contains(const ObjectId& id);

  Stats stats(size_t top_k = 10);
  // Arena bytes held by objects: cheap (no lock, no table scan), for a check on every loop
  // pass; a snapshot that may be stale by the time it returns.
  size_t bytes_in_use();
  // Changes whenever an object is sealed, pinned, released or freed (its LRU clock and its
  // bytes in use): the same stamp means the same spill candidates. Cheap.
  struct ChangeStamp {
    uint64_t clock = 0;
    uint64_t bytes = 0;
    bool operator==(const ChangeStamp& o) const { return clock == o.clock && bytes == o.bytes; }
  };
  ChangeStamp change_stamp();

  // Sealed, unpinned objects, least recently used (Seal, Get or Release) first, until their
  // sizes add up to `bytes_needed`; fewer if there are not enough. The spill hook.
  std::vector<ObjectId> EvictionCandidates(size_t bytes_needed);

  // The spill manager's counters (one writer: the raylet); stats() returns them.
  void PublishSpillCounters(const SpillCounters& counters);
  // Counts an object that a process of this node copied in from another node's store itself
  // (PeerStoreCopier), for the job summary: the raylet never sees those copies.
  void CountReaderCopy();

  // Aborts every CREATED object made by process `pid`: the raylet calls it when a worker dies
  // (a crashed writer leaves its unsealed objects behind). Returns how many it freed.
  size_t AbortCreatedBy(pid_t pid);

  // Testing only: this process _exits (code kCrashExitCode) at `point`, holding the store's
  // lock mid-operation, as if killed there. Lets tests check the recovery deterministically.
  enum class CrashPoint { kNone, kCreateAfterAllocate, kDeleteAfterFree };
  static constexpr int kCrashExitCode = 77;
  static void SetCrashPointForTesting(CrashPoint point);
  // Testing only: the table slot that holds `id` (NotFound if none).
  StatusOr<uint64_t> TableSlotForTesting(const ObjectId& id);
  // Testing only: holds the store's lock until UnlockForTesting (TryGet's Unavailable).
  void LockForTesting();
  void UnlockForTesting();

 private:
  struct Impl;
  explicit ObjectStore(std::unique_ptr<Impl> impl);
  // Locks the store, finds `id`'s table entry and runs `body(impl, index)` under the lock.
  StatusOr<ObjectView> GetPinned(const ObjectId& id, bool try_lock);
  // With `try_lock`, Unavailable instead of waiting when the lock is held.
  template <class Result, class Body>
  Result WithEntry(const ObjectId& id, Body&& body, bool try_lock = false);
  std::unique_ptr<Impl> impl_;
};

}  // namespace raympi
