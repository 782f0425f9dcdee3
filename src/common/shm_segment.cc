#include "common/shm_segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>

namespace raympi {
namespace {

std::string StaleHint(const std::string& name) {
  return "; if it is left over from a crashed job, remove it with `rm /dev/shm" + name + "`";
}

}  // namespace

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

Status ShmSegment::ValidateName(const std::string& name, const std::string& what) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos ||
      name.size() > kMaxNameBytes) {
    return Status::InvalidArgument(what + " name '" + name + "' must be '/' followed by 1 to " +
                                   std::to_string(kMaxNameBytes - 1) + " characters without '/'");
  }
  return Status::Ok();
}

StatusOr<ShmSegment> ShmSegment::Create(const std::string& name, uint64_t bytes,
                                        const std::string& what, const std::string& reserve_hint,
                                        bool populate, bool reserve) {
  RAYMPI_RETURN_IF_ERROR(ValidateName(name, what));
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) {
    int err = errno;
    if (err == EEXIST) {
      return Status::IoError("shm segment " + name + " already exists (another job on this node " +
                             "uses the name, or it is stale from a crashed job)" + StaleHint(name));
    }
    return Status::IoError(what + ": shm_open(" + name + "): " + ErrnoText(err));
  }
  auto fail = [&](const std::string& step, int err) {
    close(fd);
    shm_unlink(name.c_str());
    return Status::IoError(what + " " + name + ": " + step + ": " + ErrnoText(err));
  };
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) return fail("ftruncate", errno);
  // Reserve the pages now: a too-small /dev/shm (e.g. Docker's 64 MiB default) fails here with
  // a clear error rather than SIGBUS on some later write.
  struct statvfs fs {};
  if (!reserve && fstatvfs(fd, &fs) == 0 &&
      static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < bytes) {
    return fail("/dev/shm has " + std::to_string(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize) +
                    " bytes free, " + std::to_string(bytes) + " needed (" + reserve_hint + ")",
                ENOSPC);
  }
  if (int rc = reserve ? posix_fallocate(fd, 0, static_cast<off_t>(bytes)) : 0; rc != 0) {
    return fail("reserving " + std::to_string(bytes) + " bytes in /dev/shm (" + reserve_hint + ")",
                rc);
  }
  const int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (base == MAP_FAILED) return fail("mmap", errno);
  close(fd);

  ShmSegment segment;
  segment.name_ = name;
  segment.data_ = static_cast<char*>(base);
  segment.size_ = bytes;
  segment.owner_ = true;
  return segment;
}

StatusOr<ShmSegment> ShmSegment::Attach(const std::string& name, uint64_t min_bytes,
                                        const std::string& what, const std::string& kind,
                                        bool populate) {
  int fd = shm_open(name.c_str(), O_RDWR, 0);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) {
      return Status::NotFound(what + " " + name + " does not exist (is the node's raylet up?)");
    }
    return Status::IoError(what + ": shm_open(" + name + "): " + ErrnoText(err));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return Status::IoError(what + " " + name + ": fstat: " + ErrnoText(err));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < min_bytes) {
    close(fd);
    return Status::InvalidArgument("shm segment " + name + " is too small (" +
                                   std::to_string(size) + " bytes) to be a " + kind);
  }
  const int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void* base = mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, fd, 0);
  int err = errno;
  close(fd);
  if (base == MAP_FAILED) return Status::IoError(what + " " + name + ": mmap: " + ErrnoText(err));

  ShmSegment segment;
  segment.name_ = name;
  segment.data_ = static_cast<char*>(base);
  segment.size_ = size;
  return segment;
}

ShmSegment::~ShmSegment() { Reset(); }

ShmSegment::ShmSegment(ShmSegment&& other) noexcept
    : name_(std::move(other.name_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      owner_(std::exchange(other.owner_, false)) {}

ShmSegment& ShmSegment::operator=(ShmSegment&& other) noexcept {
  if (this != &other) {
    Reset();
    name_ = std::move(other.name_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    owner_ = std::exchange(other.owner_, false);
  }
  return *this;
}

void ShmSegment::Reset() {
  if (data_ != nullptr) munmap(data_, size_);
  if (owner_) shm_unlink(name_.c_str());
  data_ = nullptr;
  size_ = 0;
  owner_ = false;
}

int InitRobustMutex(pthread_mutex_t* mutex) {
  pthread_mutexattr_t attr;
  int rc = pthread_mutexattr_init(&attr);
  if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  if (rc == 0) rc = pthread_mutex_init(mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  return rc;
}

namespace {

int MakeConsistentIfOwnerDied(pthread_mutex_t* mutex, int rc, bool* owner_died) {
  *owner_died = false;
  if (rc == EOWNERDEAD) {
    *owner_died = true;
    rc = pthread_mutex_consistent(mutex);
    if (rc != 0) pthread_mutex_unlock(mutex);
  }
  return rc;
}

}  // namespace

int TryLockRobust(pthread_mutex_t* mutex, bool* owner_died) {
  return MakeConsistentIfOwnerDied(mutex, pthread_mutex_trylock(mutex), owner_died);
}

int LockRobust(pthread_mutex_t* mutex, bool* owner_died) {
  return MakeConsistentIfOwnerDied(mutex, pthread_mutex_lock(mutex), owner_died);
}

std::vector<std::string> ListShm(const std::string& prefix) {
  std::vector<std::string> names;
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return names;
  while (dirent* entry = readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    if (name.compare(0, prefix.size(), prefix) == 0) names.push_back(std::move(name));
  }
  closedir(dir);
  return names;
}

}  // namespace raympi
