// Hdf5SpillStorage: spilled objects in HDF5 files, one file per batch, in one directory per
// job and node. A file holds the batch's bytes back to back in one dataset, plus an index:
//
//   /objects   uint8[total]   the objects' bytes, concatenated
//   /ids       uint8[n][16]   each object's id (ObjectId::Binary)
//   /offsets   uint64[n]      where each object starts in /objects
//   /sizes     uint64[n]      its size
//
// so a file can be inspected with h5dump/h5py after the fact. A batch is written to
// "spill-N.h5.part", flushed and closed, then renamed to "spill-N.h5": no reader ever sees a
// half-written file, and a failed write leaves nothing behind.
//
// Uses the HDF5 library's serial (sec2) driver even in the parallel build: each raylet writes
// its own files. HDF5 is not thread-safe here: one thread makes every call.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "objects/spill_storage.h"

namespace raympi {

class Hdf5SpillStorage : public SpillStorage {
 public:
  // Creates `dir` (with its parents) and checks that a file can be written there; an error
  // names the directory and the cause. The storage owns the directory: the destructor removes
  // it with everything in it.
  static StatusOr<std::unique_ptr<Hdf5SpillStorage>> Create(const std::string& dir);
  ~Hdf5SpillStorage() override;
  Hdf5SpillStorage(const Hdf5SpillStorage&) = delete;
  Hdf5SpillStorage& operator=(const Hdf5SpillStorage&) = delete;

  StatusOr<SpilledBatch> WriteBatch(const std::vector<SpillItem>& items) override;
  Status Read(const std::string& file, uint64_t offset, uint64_t size, uint8_t* dest) override;
  Status Remove(const std::string& file) override;
  std::string Describe() const override;

  const std::string& dir() const { return dir_; }

 private:
  explicit Hdf5SpillStorage(std::string dir) : dir_(std::move(dir)) {}
  // The file last read stays open: restoring the objects of one batch opens it once.
  Status OpenForReading(const std::string& file);
  void CloseReader();

  std::string dir_;
  uint64_t next_file_ = 0;
  std::string reader_path_;
  int64_t reader_file_ = -1;  // hid_t of the open file and of its /objects dataset
  int64_t reader_data_ = -1;
};

}  // namespace raympi
