// SameHostReader: reads the arenas of other nodes on this host through read-only mappings of
// their store segments (one memcpy per read), and other nodes' arenas through a fallback
// reader (the MPI window).
//
// Why: within a host, Open MPI's osc rdma reads a window with process_vm_readv, in which the
// kernel looks up and pins every source page of every read. On the test VM a 256 MiB read took
// a median of 176 ms that way and 36 ms as a memcpy from a mapping of the same pages
// (docs/performance.md, "Same-host reads"). Several raylets
// share a host with virtual nodes (--ranks-per-node) and with one raylet per NUMA domain.
// Between hosts nothing changes.
//
// A peer is read directly only if the segment opened here by its name is the very file the
// peer described (same device, inode and kernel boot id): namespace "hosts" with their own
// /dev/shm, or a name reused by another job, fall back to the other reader.
//
// It also copies whole objects out of those stores, pinned there for the copy (SourcePins), so
// that a pull from a node of this host needs no message to or from that node's raylet: the
// store is attached (ObjectStore::Attach) on the first such copy, for its table and lock; the
// bytes are still read from the populated read-only mapping of the arena.
//
// A mapping stays valid after its node is lost (the file is only unlinked, never truncated),
// so a read from a dead node's arena returns bytes instead of an error. Objects pinned there
// are sealed and immutable, so their bytes are right even then.
//
// Thread-safety: not thread-safe; lives on the raylet's loop thread, like the fallback.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/status.h"
#include "objects/arena_location.h"
#include "objects/object_store.h"
#include "objects/rma_window.h"
#include "objects/source_pins.h"

namespace raympi {

class SameHostReader : public RmaReader, public SourcePins {
 public:
  // `fallback` reads every node that is not mapped; it must outlive this reader.
  explicit SameHostReader(RmaReader* fallback);
  ~SameHostReader() override;
  SameHostReader(const SameHostReader&) = delete;
  SameHostReader& operator=(const SameHostReader&) = delete;

  // Maps `node`'s arena read-only if `where` is a segment of this host (MAP_POPULATE if
  // `populate`: worth it when the peer's pages are all allocated, i.e. its store was
  // prefaulted). Returns whether it did; false leaves `node` to the fallback. An error only for
  // a segment of this host that cannot be mapped (the fallback then keeps the node too).
  StatusOr<bool> AddPeer(int node, const ArenaLocation& where, bool populate);
  bool Maps(int node) const { return peers_.count(node) != 0; }
  // The nodes mapped here and where their stores lie: the node's processes may copy from
  // them too (SameHostStores, PeerStoreCopier).
  std::map<int, ArenaLocation> MappedPeers() const;

  StatusOr<uint64_t> WindowSize(int node) const override;
  // For a mapped node the copy is done before this returns; Poll then reports it landed.
  StatusOr<Handle> StartRead(int node, uint64_t offset, size_t bytes, void* dest) override;
  StatusOr<bool> Poll(Handle handle) override;
  size_t reads_in_flight() const override;
  // Always through the fallback (the mapping holds the arena only).
  StatusOr<uint64_t> TableSize(int node) const override { return fallback_->TableSize(node); }
  StatusOr<Handle> StartEntryRead(int node, uint64_t table_slot, void* dest) override;

  // SourcePins, for mapped nodes (their store attached on the first call, if it is still the
  // file described at AddPeer). The pin never waits for the source store's lock; its release
  // does, for the few microseconds of another process's critical section.
  Status CopyFromSource(int node, const ObjectId& id, uint8_t* dest, uint64_t size) override;

 private:
  struct Mapping {
    const uint8_t* arena = nullptr;  // the whole mapping: the arena starts the mapped range
    uint64_t bytes = 0;
    ArenaLocation where;                 // the file AddPeer checked
    std::unique_ptr<ObjectStore> store;  // attached by the first CopyFromSource
    bool attach_failed = false;          // logged once; pulls then ask the raylet
  };

  // A handle of ours for a read the fallback started.
  StatusOr<Handle> Forward(StatusOr<Handle> inner);

  RmaReader* fallback_;
  std::map<int, Mapping> peers_;
  // Our handle -> the fallback's handle; copies from mappings land at once and wait in
  // `landed_` for their Poll.
  std::unordered_map<Handle, Handle> forwarded_;
  std::unordered_set<Handle> landed_;
  Handle next_handle_ = 1;
};

}  // namespace raympi
