// FakeSpillStorage: SpillStorage in memory, for unit tests of the spill manager. Files are
// strings in a map; a test can make the next writes or reads fail (a full disk, a lost file).
#pragma once

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "objects/spill_storage.h"

namespace raympi {

class FakeSpillStorage : public SpillStorage {
 public:
  StatusOr<SpilledBatch> WriteBatch(const std::vector<SpillItem>& items) override {
    ++write_calls_;
    if (!fail_writes_.empty()) return Status::IoError(fail_writes_);
    SpilledBatch batch;
    batch.file = "fake-" + std::to_string(next_file_++);
    std::string& bytes = files_[batch.file];
    for (const SpillItem& item : items) {
      batch.offsets.push_back(bytes.size());
      bytes.append(reinterpret_cast<const char*>(item.data), item.size);
    }
    return batch;
  }
  Status Read(const std::string& file, uint64_t offset, uint64_t size, uint8_t* dest) override {
    ++read_calls_;
    if (!fail_reads_.empty()) return Status::IoError(fail_reads_);
    auto it = files_.find(file);
    if (it == files_.end()) return Status::NotFound("no spill file " + file);
    if (offset + size > it->second.size()) return Status::IoError("read past the end of " + file);
    std::memcpy(dest, it->second.data() + offset, size);
    return Status::Ok();
  }
  Status Remove(const std::string& file) override {
    if (files_.erase(file) == 0) return Status::NotFound("no spill file " + file);
    return Status::Ok();
  }
  std::string Describe() const override { return "fake spill files"; }

  // Every later write (read) fails with this message, until set back to "".
  void FailWrites(std::string message) { fail_writes_ = std::move(message); }
  void FailReads(std::string message) { fail_reads_ = std::move(message); }
  const std::map<std::string, std::string>& files() const { return files_; }
  int write_calls() const { return write_calls_; }
  int read_calls() const { return read_calls_; }

 private:
  std::map<std::string, std::string> files_;
  int next_file_ = 0;
  int write_calls_ = 0;
  int read_calls_ = 0;
  std::string fail_writes_;
  std::string fail_reads_;
};

}  // namespace raympi
