// FakeRmaReader: an RmaReader over in-memory buffers, for unit tests. Reads copy from the
// buffer registered for a node, but only when the test says so (CompleteAll, CompleteOldest),
// so a test decides exactly which reads are in flight at each step: no threads, no timing.
// Failures can be injected at the start of a read or at its completion.
#pragma once

#include <cstring>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "objects/object_store.h"
#include "objects/rma_window.h"

namespace raympi {

class FakeRmaReader : public RmaReader {
 public:
  // What a read asked for, in the order reads were started (for checks of chunking and order).
  struct Started {
    int node;
    uint64_t offset;
    size_t bytes;
  };

  // `base` stays owned by the caller and must outlive the reads (e.g. another store's arena).
  void AddNode(int node, const uint8_t* base, uint64_t bytes) { windows_[node] = {base, bytes}; }
  // The node's object table (ObjectStore::table()), for StartEntryRead.
  void AddTable(int node, const uint8_t* base, uint64_t bytes) { tables_[node] = {base, bytes}; }

  StatusOr<uint64_t> WindowSize(int node) const override {
    auto it = windows_.find(node);
    if (it == windows_.end()) {
      return Status::NotFound("no object window for node " + std::to_string(node));
    }
    return it->second.bytes;
  }

  StatusOr<Handle> StartRead(int node, uint64_t offset, size_t bytes, void* dest) override {
    StatusOr<uint64_t> window = WindowSize(node);
    if (!window.ok()) return window.status();
    return Start(windows_.at(node), node, offset, bytes, dest, /*entry=*/false);
  }

  StatusOr<uint64_t> TableSize(int node) const override {
    auto table = tables_.find(node);
    if (table == tables_.end()) return RmaReader::TableSize(node);
    return table->second.bytes;
  }

  StatusOr<Handle> StartEntryRead(int node, uint64_t table_slot, void* dest) override {
    auto table = tables_.find(node);
    if (table == tables_.end()) return RmaReader::StartEntryRead(node, table_slot, dest);
    ++entry_reads_;
    return Start(table->second, node, table_slot * ObjectStore::kEntryBytes,
                 ObjectStore::kEntryBytes, dest, /*entry=*/true);
  }

  StatusOr<bool> Poll(Handle handle) override {
    auto it = reads_.find(handle);
    if (it == reads_.end()) {
      return Status::NotFound("no read in flight with handle " + std::to_string(handle));
    }
    if (it->second.state == State::kInFlight) return false;
    Status result = it->second.error;
    reads_.erase(it);
    if (!result.ok()) return result;
    return true;
  }

  size_t reads_in_flight() const override { return reads_.size(); }

  // Lands the `n` oldest reads still in flight (copies their bytes); returns how many.
  size_t CompleteOldest(size_t n) { return Finish(n, Status::Ok()); }
  size_t CompleteAll() { return Finish(order_.size(), Status::Ok()); }
  // Fails the `n` oldest reads still in flight with `error` (nothing is copied).
  size_t FailOldest(size_t n, Status error) { return Finish(n, std::move(error)); }
  // The next StartRead (after its range check) returns `error`.
  void FailNextStart(Status error) { fail_next_start_ = std::move(error); }

  const std::vector<Started>& started() const { return started_; }  // data reads only
  size_t entry_reads() const { return entry_reads_; }
  size_t max_in_flight_seen() const { return max_in_flight_seen_; }
  // Reads that neither completed nor failed yet (Poll has not seen them land).
  size_t reads_unfinished() const { return order_.size(); }

 private:
  enum class State { kInFlight, kFinished };
  struct Read {
    const uint8_t* source;  // copied at completion, so it sees the source's bytes of then
    size_t bytes;
    uint8_t* dest;
    State state;
    Status error;
  };
  struct Window {
    const uint8_t* base;
    uint64_t bytes;
  };

  StatusOr<Handle> Start(const Window& window, int node, uint64_t offset, size_t bytes, void* dest,
                         bool entry) {
    RAYMPI_RETURN_IF_ERROR(CheckReadRange(node, window.bytes, offset, bytes));
    if (!fail_next_start_.ok()) {
      Status st = fail_next_start_;
      fail_next_start_ = Status::Ok();
      return st;
    }
    Handle handle = next_handle_++;
    reads_[handle] =
        Read{window.base + offset, bytes, static_cast<uint8_t*>(dest), State::kInFlight, {}};
    order_.push_back(handle);
    if (!entry) started_.push_back(Started{node, offset, bytes});
    if (reads_in_flight() > max_in_flight_seen_) max_in_flight_seen_ = reads_in_flight();
    return handle;
  }

  size_t Finish(size_t n, Status error) {
    size_t finished = 0;
    while (finished < n && !order_.empty()) {
      Read& read = reads_.at(order_.front());
      order_.pop_front();
      if (error.ok()) std::memcpy(read.dest, read.source, read.bytes);
      read.error = error;
      read.state = State::kFinished;
      ++finished;
    }
    return finished;
  }

  std::map<int, Window> windows_;
  std::map<int, Window> tables_;
  size_t entry_reads_ = 0;
  std::map<Handle, Read> reads_;
  std::deque<Handle> order_;  // in flight, oldest first
  Status fail_next_start_;
  Handle next_handle_ = 1;
  std::vector<Started> started_;
  size_t max_in_flight_seen_ = 0;
};

}  // namespace raympi
