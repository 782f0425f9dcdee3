// SpillStorage: where a node's spill manager puts objects that do not fit in its store. A
// batch of objects is written as one unit (a file); an object is read back by (file, offset,
// size); a file is removed once none of its objects is live. Implementations: HDF5 files
// (hdf5_spill_storage.h) and an in-memory fake for tests (fake_spill_storage.h).
//
// Thread-safety: none; one thread (the raylet's loop) makes every call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/ids.h"
#include "common/status.h"

namespace raympi {

// One object of a batch: its bytes stay valid (pinned in the store) during WriteBatch.
struct SpillItem {
  ObjectId id;
  const uint8_t* data = nullptr;
  uint64_t size = 0;
};

// Where a written batch went: the file, and each item's offset in it (same order as the items).
struct SpilledBatch {
  std::string file;
  std::vector<uint64_t> offsets;
};

class SpillStorage {
 public:
  virtual ~SpillStorage() = default;
  // Writes every item into one new file. Returns only once the whole batch is written and
  // flushed; on an error nothing of the batch is left behind, and the message names the place
  // and the cause (e.g. "No space left on device").
  virtual StatusOr<SpilledBatch> WriteBatch(const std::vector<SpillItem>& items) = 0;
  // Reads `size` bytes of the object at `offset` in `file` into `dest`.
  virtual Status Read(const std::string& file, uint64_t offset, uint64_t size, uint8_t* dest) = 0;
  // Deletes a file written by WriteBatch.
  virtual Status Remove(const std::string& file) = 0;
  // Where the files go, for messages: "HDF5 files in /tmp/raympi-spill-.../node-0".
  virtual std::string Describe() const = 0;
};

}  // namespace raympi
