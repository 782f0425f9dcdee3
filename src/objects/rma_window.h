// One-sided reads from other nodes' object-store arenas: how a raylet pulls an object's bytes
// straight from the source node's store into its own, without the source's raylet copying them.
//
// RmaReader is what the ObjectManager needs; MpiRmaWindow implements it with an MPI window over
// every raylet's arena, FakeRmaReader (fake_rma_reader.h) in memory for unit tests.
//
// Thread-safety: not thread-safe. MpiRmaWindow makes MPI calls, so it lives on the thread that
// makes every MPI call of the process (MPI_THREAD_FUNNELED).
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace raympi {

class RmaReader {
 public:
  using Handle = uint64_t;
  virtual ~RmaReader() = default;

  // Bytes in `node`'s window; NotFound if the reader has no window for that node. Every remote
  // offset and size must be checked against it before it is read.
  virtual StatusOr<uint64_t> WindowSize(int node) const = 0;
  // Starts copying `bytes` at `offset` of `node`'s window into `dest` (local memory that must
  // stay valid and untouched until the read completes). InvalidArgument when the range is not
  // inside the window. A started read cannot be cancelled: poll it to the end.
  virtual StatusOr<Handle> StartRead(int node, uint64_t offset, size_t bytes, void* dest) = 0;
  // true: the bytes are in `dest` and the handle is gone. false: still in flight. An error:
  // the read failed (`dest` holds garbage) and the handle is gone; NotFound for an unknown
  // handle.
  virtual StatusOr<bool> Poll(Handle handle) = 0;
  // Reads started and not yet polled to the end.
  virtual size_t reads_in_flight() const = 0;
  // One-sided pulls: bytes in `node`'s object-table window, NotFound without one.
  virtual StatusOr<uint64_t> TableSize(int node) const {
    return Status::NotFound("no object table window for node " + std::to_string(node));
  }
  // Starts reading entry `table_slot` of `node`'s object table (ObjectStore::kEntryBytes) into
  // `dest`, polled like any read.
  virtual StatusOr<Handle> StartEntryRead(int node, uint64_t table_slot, void* dest) {
    (void)table_slot;
    (void)dest;
    return TableSize(node).status();
  }
};

// The reader of a job with a single node: there is no other node's window to read. (Open MPI
// cannot make a window over a single rank with its default component, and needs none.)
class NoRemoteReader : public RmaReader {
 public:
  StatusOr<uint64_t> WindowSize(int node) const override {
    return Status::NotFound("node " + std::to_string(node) + ": this job has a single node");
  }
  StatusOr<Handle> StartRead(int node, uint64_t, size_t, void*) override {
    return WindowSize(node).status();
  }
  StatusOr<bool> Poll(Handle) override { return Status::NotFound("no reads in a one-node job"); }
  size_t reads_in_flight() const override { return 0; }
};

// An MPI window over this raylet's arena, in a passive-target epoch (MPI_Win_lock_all with
// MPI_MODE_NOCHECK) for its whole life; each read is an MPI_Rget, completed by MPI_Test.
//
// Create and Close are COLLECTIVE over `comm`: every raylet calls them, in the same order with
// the other collectives on that communicator. Close (or the destructor) first waits for this
// rank's reads in flight, then unlocks and frees the window; MPI_Win_free blocks until every
// rank has called it, so call it when every raylet is done pulling and serving (at shutdown,
// before MPI_Finalize, after the last message any rank still waits for).
//
// Between hosts over TCP, Open MPI needs `--mca osc pt2pt` and MPI_THREAD_FUNNELED (not
// MULTIPLE), and the source rank must keep making MPI calls (its event loop does) for reads
// from it to progress. Within a host the default (osc rdma over shared memory) works.
class MpiRmaWindow : public RmaReader {
 public:
  // `comm` holds the raylets; `rank_of_node` maps every node id to its raylet's rank in `comm`
  // (this rank included). `arena`/`bytes` is this rank's arena (any size, 0 allowed). Window
  // sizes are exchanged here (MPI_Allgather), so WindowSize knows every node's. With `table`
  // (every rank or none), a second window over this rank's object table serves StartEntryRead
  // (when MPI says the window's memory model is unified: reads see the owner's stores).
  static StatusOr<std::unique_ptr<MpiRmaWindow>> Create(MPI_Comm comm, void* arena, size_t bytes,
                                                        const std::map<int, int>& rank_of_node,
                                                        const void* table = nullptr,
                                                        size_t table_bytes = 0);
  ~MpiRmaWindow() override;
  MpiRmaWindow(const MpiRmaWindow&) = delete;
  MpiRmaWindow& operator=(const MpiRmaWindow&) = delete;

  StatusOr<uint64_t> WindowSize(int node) const override;
  StatusOr<Handle> StartRead(int node, uint64_t offset, size_t bytes, void* dest) override;
  StatusOr<bool> Poll(Handle handle) override;
  size_t reads_in_flight() const override { return requests_.size(); }
  StatusOr<uint64_t> TableSize(int node) const override;
  StatusOr<Handle> StartEntryRead(int node, uint64_t table_slot, void* dest) override;

  // Collective: waits for this rank's reads, ends the epochs and frees the windows. Idempotent.
  Status Close();

 private:
  MpiRmaWindow() = default;
  // MPI_Rget of `bytes` at `offset` of `node`'s part of `win`, after the range check.
  StatusOr<Handle> Read(MPI_Win win, const std::unordered_map<int, uint64_t>& sizes, int node,
                        uint64_t offset, size_t bytes, void* dest);

  MPI_Win win_ = MPI_WIN_NULL;
  MPI_Win table_win_ = MPI_WIN_NULL;  // the object tables, when Create was given one
  std::map<int, int> rank_of_node_;
  std::unordered_map<int, uint64_t> window_size_;  // by node
  std::unordered_map<int, uint64_t> table_size_;   // by node; empty if not unified
  std::unordered_map<Handle, MPI_Request> requests_;
  Handle next_handle_ = 1;
};

// "MPI_Rget: <MPI's error string>": how MPI errors become Status messages.
std::string MpiErrorText(const char* call, int code);

// The range check every reader applies; overflow-safe.
Status CheckReadRange(int node, uint64_t window_bytes, uint64_t offset, uint64_t bytes);

}  // namespace raympi
