#include "objects/arena_location.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "common/shm_segment.h"

namespace raympi {

namespace {

constexpr char kRecordTag[8] = {'r', 'a', 'y', 'a', 'r', 'e', 'n', '1'};

void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }

void PutText(std::string* out, const std::string& text) {
  const uint16_t n = static_cast<uint16_t>(text.size());
  out->append(reinterpret_cast<const char*>(&n), 2);
  out->append(text);
}

// Reads from `record` at `*at`; false when it would run past the end.
bool GetU64(const std::string& record, size_t* at, uint64_t* v) {
  if (*at + 8 > record.size()) return false;
  std::memcpy(v, record.data() + *at, 8);
  *at += 8;
  return true;
}

bool GetText(const std::string& record, size_t* at, std::string* text) {
  uint16_t n = 0;
  if (*at + 2 > record.size()) return false;
  std::memcpy(&n, record.data() + *at, 2);
  *at += 2;
  if (*at + n > record.size()) return false;
  text->assign(record, *at, n);
  *at += n;
  return true;
}

}  // namespace

std::string ThisBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

bool DescribesThisHost(const ArenaLocation& where) {
  return !where.boot_id.empty() && where.boot_id == ThisBootId() && where.arena_bytes > 0 &&
         ShmSegment::ValidateName(where.segment, "object store").ok();
}

bool IsDescribedFile(int fd, const ArenaLocation& where, uint64_t* bytes) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  *bytes = static_cast<uint64_t>(st.st_size);
  return static_cast<uint64_t>(st.st_dev) == where.device &&
         static_cast<uint64_t>(st.st_ino) == where.inode;
}

std::string ArenaLocation::Encode() const {
  std::string out(kRecordTag, sizeof(kRecordTag));
  PutU64(&out, arena_offset);
  PutU64(&out, arena_bytes);
  PutU64(&out, device);
  PutU64(&out, inode);
  PutText(&out, segment);
  PutText(&out, boot_id);
  // DescribeArena keeps both texts short (a valid shm name, a uuid); an empty record then
  // decodes as "no arena" rather than overflowing the fixed size.
  if (out.size() > kEncodedBytes) out.clear();
  out.resize(kEncodedBytes, '\0');
  return out;
}

StatusOr<ArenaLocation> ArenaLocation::Decode(const std::string& record) {
  if (record.size() != kEncodedBytes ||
      std::memcmp(record.data(), kRecordTag, sizeof(kRecordTag)) != 0) {
    return Status::InvalidArgument("not an arena location record");
  }
  ArenaLocation where;
  size_t at = sizeof(kRecordTag);
  if (!GetU64(record, &at, &where.arena_offset) || !GetU64(record, &at, &where.arena_bytes) ||
      !GetU64(record, &at, &where.device) || !GetU64(record, &at, &where.inode) ||
      !GetText(record, &at, &where.segment) || !GetText(record, &at, &where.boot_id)) {
    return Status::InvalidArgument("truncated arena location record");
  }
  return where;
}

StatusOr<ArenaLocation> DescribeArena(const std::string& segment, uint64_t arena_offset,
                                      uint64_t arena_bytes) {
  RAYMPI_RETURN_IF_ERROR(ShmSegment::ValidateName(segment, "object store"));
  const int fd = shm_open(segment.c_str(), O_RDONLY, 0);
  if (fd < 0) return Status::IoError("shm_open " + segment + ": " + ErrnoText(errno));
  struct stat st {};
  const int rc = fstat(fd, &st);
  const int err = errno;
  close(fd);
  if (rc != 0) return Status::IoError("fstat " + segment + ": " + ErrnoText(err));
  ArenaLocation where;
  where.segment = segment;
  where.arena_offset = arena_offset;
  where.arena_bytes = arena_bytes;
  where.device = static_cast<uint64_t>(st.st_dev);
  where.inode = static_cast<uint64_t>(st.st_ino);
  where.boot_id = ThisBootId();
  if (where.boot_id.empty() || where.boot_id.size() > 64) {
    return Status::NotFound("no kernel boot id to tell this host apart");
  }
  return where;
}

StatusOr<std::unique_ptr<ObjectStore>> AttachDescribedStore(const ArenaLocation& where) {
  // The name must still be the file described (a name is reused only after an unlink).
  const int fd = shm_open(where.segment.c_str(), O_RDONLY, 0);
  if (fd < 0) return Status::NotFound("shm_open " + where.segment + ": " + ErrnoText(errno));
  uint64_t file_bytes = 0;
  const bool same = IsDescribedFile(fd, where, &file_bytes);
  close(fd);
  if (!same) return Status::NotFound(where.segment + " is not the file its node described");
  // Pre-faults the store's metadata (some ms, once per node).
  StatusOr<std::unique_ptr<ObjectStore>> store = ObjectStore::Attach(where.segment);
  if (!store.ok()) return store.status();
  if ((*store)->capacity() != where.arena_bytes) {
    return Status::InvalidArgument("its capacity is not the arena described at start-up");
  }
  return store;
}

}  // namespace raympi
