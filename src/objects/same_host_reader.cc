#include "objects/same_host_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "common/logging.h"
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

std::string BootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

// Whether `fd` is the file with that device and inode (a peer's described segment); its size.
bool IsFile(int fd, uint64_t device, uint64_t inode, uint64_t* bytes) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return false;
  *bytes = static_cast<uint64_t>(st.st_size);
  return static_cast<uint64_t>(st.st_dev) == device && static_cast<uint64_t>(st.st_ino) == inode;
}

}  // namespace

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
  where.boot_id = BootId();
  if (where.boot_id.empty() || where.boot_id.size() > 64) {
    return Status::NotFound("no kernel boot id to tell this host apart");
  }
  return where;
}

SameHostReader::SameHostReader(RmaReader* fallback) : fallback_(fallback) {}

SameHostReader::~SameHostReader() {
  for (auto& [node, m] : peers_) munmap(const_cast<uint8_t*>(m.arena), m.bytes);
}

StatusOr<bool> SameHostReader::AddPeer(int node, const ArenaLocation& where, bool populate) {
  if (peers_.count(node) != 0) return Status::InvalidArgument("node already mapped");
  if (where.boot_id.empty() || where.boot_id != BootId() ||
      !ShmSegment::ValidateName(where.segment, "object store").ok()) {
    return false;
  }
  const long page = sysconf(_SC_PAGESIZE);
  if (where.arena_bytes == 0 || where.arena_offset % static_cast<uint64_t>(page) != 0) {
    return false;
  }
  // The fallback's idea of the window (exchanged over MPI) must agree, so that a range is
  // valid whichever reader serves it.
  StatusOr<uint64_t> window = fallback_->WindowSize(node);
  if (window.ok() && *window != where.arena_bytes) return false;

  const int fd = shm_open(where.segment.c_str(), O_RDONLY, 0);
  if (fd < 0) return false;  // not in this /dev/shm: another host
  uint64_t file_bytes = 0;
  if (!IsFile(fd, where.device, where.inode, &file_bytes) ||
      file_bytes < where.arena_offset + where.arena_bytes) {
    close(fd);
    return false;  // the same name, another file
  }
  const int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0);
  void* base = mmap(nullptr, where.arena_bytes, PROT_READ, flags, fd,
                    static_cast<off_t>(where.arena_offset));
  const int err = errno;
  close(fd);
  if (base == MAP_FAILED) {
    return Status::IoError("mapping node " + std::to_string(node) + "'s object store " +
                           where.segment + " read-only: " + ErrnoText(err));
  }
  Mapping& mapping = peers_[node];
  mapping.arena = static_cast<const uint8_t*>(base);
  mapping.bytes = where.arena_bytes;
  mapping.segment = where.segment;
  mapping.device = where.device;
  mapping.inode = where.inode;
  return true;
}

StatusOr<uint64_t> SameHostReader::WindowSize(int node) const {
  auto it = peers_.find(node);
  if (it != peers_.end()) return it->second.bytes;
  return fallback_->WindowSize(node);
}

StatusOr<RmaReader::Handle> SameHostReader::StartRead(int node, uint64_t offset, size_t bytes,
                                                      void* dest) {
  auto it = peers_.find(node);
  if (it == peers_.end()) return Forward(fallback_->StartRead(node, offset, bytes, dest));
  RAYMPI_RETURN_IF_ERROR(CheckReadRange(node, it->second.bytes, offset, bytes));
  std::memcpy(dest, it->second.arena + offset, bytes);
  const Handle handle = next_handle_++;
  landed_.insert(handle);
  return handle;
}

StatusOr<RmaReader::Handle> SameHostReader::StartEntryRead(int node, uint64_t table_slot,
                                                           void* dest) {
  return Forward(fallback_->StartEntryRead(node, table_slot, dest));
}

StatusOr<RmaReader::Handle> SameHostReader::Forward(StatusOr<Handle> inner) {
  if (!inner.ok()) return inner.status();
  const Handle handle = next_handle_++;
  forwarded_[handle] = *inner;
  return handle;
}

StatusOr<bool> SameHostReader::Poll(Handle handle) {
  if (landed_.erase(handle) != 0) return true;
  auto it = forwarded_.find(handle);
  if (it == forwarded_.end()) {
    return Status::NotFound("no read in flight with handle " + std::to_string(handle));
  }
  StatusOr<bool> done = fallback_->Poll(it->second);
  if (!done.ok() || *done) forwarded_.erase(it);  // the fallback forgot its handle too
  return done;
}

Status SameHostReader::CopyFromSource(int node, const ObjectId& id, uint8_t* dest, uint64_t size) {
  auto it = peers_.find(node);
  if (it == peers_.end() || it->second.attach_failed) {
    return Status::NotFound("node " + std::to_string(node) + "'s store is not attached here");
  }
  Mapping& m = it->second;
  if (!m.store) {
    Status usable = AttachStore(node, m);
    if (!usable.ok()) {
      m.attach_failed = true;  // for the job: pulls from that node ask its raylet
      RAYMPI_LOG_WARN("pulls from node {} ask its raylet: cannot attach its store {}: {}", node,
                      m.segment, usable.ToString());
      return Status::NotFound("node " + std::to_string(node) + "'s store is not attached here");
    }
  }
  StatusOr<ObjectView> pin = m.store->TryGet(id);
  if (!pin.ok()) return pin.status();
  if (pin->size() != size) {
    return Status::InvalidArgument("object " + id.Hex() + " has " + std::to_string(pin->size()) +
                                   " bytes in node " + std::to_string(node) + "'s store");
  }
  RAYMPI_RETURN_IF_ERROR(CheckReadRange(node, m.bytes, pin->offset(), size));
  // From the populated read-only mapping: the attached one has no page tables for the arena.
  std::memcpy(dest, m.arena + pin->offset(), size);
  return Status::Ok();  // the pin goes with `pin`
}

Status SameHostReader::AttachStore(int node, Mapping& m) {
  // The name must still be the file AddPeer checked (a name is reused only after an unlink).
  const int fd = shm_open(m.segment.c_str(), O_RDONLY, 0);
  if (fd < 0) return Status::NotFound("shm_open " + m.segment + ": " + ErrnoText(errno));
  uint64_t file_bytes = 0;
  const bool same = IsFile(fd, m.device, m.inode, &file_bytes);
  close(fd);
  if (!same) {
    return Status::NotFound(m.segment + " is not the file node " + std::to_string(node) +
                            " described");
  }
  // Pre-faults the store's metadata (some ms, once per node).
  StatusOr<std::unique_ptr<ObjectStore>> store = ObjectStore::Attach(m.segment);
  if (!store.ok()) return store.status();
  if ((*store)->capacity() != m.bytes) {
    return Status::InvalidArgument("its capacity is not the arena mapped at start-up");
  }
  m.store = std::move(*store);
  return Status::Ok();
}

size_t SameHostReader::reads_in_flight() const { return landed_.size() + forwarded_.size(); }

}  // namespace raympi
