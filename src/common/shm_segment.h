// ShmSegment: a mapped POSIX shared-memory segment (shm_open + mmap), shared by the node's
// message bus and object store. Create makes a fresh segment (mode 0600, pages reserved) and
// owns it: the destructor unmaps and unlinks it. Attach maps an existing one (unmap only).
//
// Error messages name the user of the segment through `what` (e.g. "shm bus",
// "object store"), so they read as before the segment handling was shared.
#pragma once

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace raympi {

class ShmSegment {
 public:
  // Longest accepted name, leaving room under NAME_MAX for suffixes such as side segments'.
  static constexpr size_t kMaxNameBytes = 200;

  // InvalidArgument unless `name` is '/' followed by 1 to kMaxNameBytes - 1 characters
  // without '/'.
  static Status ValidateName(const std::string& name, const std::string& what);

  // Creates `name` with O_CREAT | O_EXCL (an existing segment is an error with a hint on
  // removing a stale one), sizes it to `bytes`, reserves its pages in /dev/shm if `reserve`
  // (else only checks that /dev/shm has that much free; pages are then allocated on first
  // touch), and maps it read-write. `reserve_hint` tells how to need fewer bytes.
  // MAP_POPULATE if `populate`. Nothing is left behind on failure.
  static StatusOr<ShmSegment> Create(const std::string& name, uint64_t bytes,
                                     const std::string& what, const std::string& reserve_hint,
                                     bool populate = false, bool reserve = true);

  // Maps the whole existing segment `name` read-write. NotFound if it does not exist;
  // InvalidArgument if it is smaller than `min_bytes` (too small "to be a `kind`").
  static StatusOr<ShmSegment> Attach(const std::string& name, uint64_t min_bytes,
                                     const std::string& what, const std::string& kind,
                                     bool populate = false);

  ShmSegment() = default;
  ~ShmSegment();
  ShmSegment(ShmSegment&& other) noexcept;
  ShmSegment& operator=(ShmSegment&& other) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;

  char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& name() const { return name_; }
  bool owner() const { return owner_; }

 private:
  void Reset();

  std::string name_;
  char* data_ = nullptr;
  size_t size_ = 0;
  bool owner_ = false;
};

// strerror-like text for an errno value.
std::string ErrnoText(int err);

// The /dev/shm entries (names without the leading '/') that start with `prefix`.
std::vector<std::string> ListShm(const std::string& prefix = "");

// Initialises a process-shared robust mutex. Returns 0 or an errno value.
int InitRobustMutex(pthread_mutex_t* mutex);

// Locks a robust mutex. If its previous holder died, marks it consistent and sets
// *owner_died (else clears it): the caller, now holding the lock, repairs the state it
// guards. Returns 0 with the lock held, or an errno value without it.
int LockRobust(pthread_mutex_t* mutex, bool* owner_died);
// The same without waiting: EBUSY (lock not taken) while someone else holds it.
int TryLockRobust(pthread_mutex_t* mutex, bool* owner_died);

}  // namespace raympi
