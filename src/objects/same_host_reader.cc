#include "objects/same_host_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "common/logging.h"
#include "common/shm_segment.h"

namespace raympi {

SameHostReader::SameHostReader(RmaReader* fallback) : fallback_(fallback) {}

SameHostReader::~SameHostReader() {
  for (auto& [node, m] : peers_) munmap(const_cast<uint8_t*>(m.arena), m.bytes);
}

StatusOr<bool> SameHostReader::AddPeer(int node, const ArenaLocation& where, bool populate) {
  if (peers_.count(node) != 0) return Status::InvalidArgument("node already mapped");
  const long page = sysconf(_SC_PAGESIZE);
  if (!DescribesThisHost(where) || where.arena_offset % static_cast<uint64_t>(page) != 0) {
    return false;
  }
  // The fallback's idea of the window (exchanged over MPI) must agree, so that a range is
  // valid whichever reader serves it.
  StatusOr<uint64_t> window = fallback_->WindowSize(node);
  if (window.ok() && *window != where.arena_bytes) return false;

  const int fd = shm_open(where.segment.c_str(), O_RDONLY, 0);
  if (fd < 0) return false;  // not in this /dev/shm: another host
  uint64_t file_bytes = 0;
  if (!IsDescribedFile(fd, where, &file_bytes) ||
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
  mapping.where = where;
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
    StatusOr<std::unique_ptr<ObjectStore>> attached = AttachDescribedStore(m.where);
    if (!attached.ok()) {
      m.attach_failed = true;  // for the job: pulls from that node ask its raylet
      RAYMPI_LOG_WARN("pulls from node {} ask its raylet: cannot attach its store {}: {}", node,
                      m.where.segment, attached.status().ToString());
      return Status::NotFound("node " + std::to_string(node) + "'s store is not attached here");
    }
    m.store = std::move(*attached);
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

std::map<int, ArenaLocation> SameHostReader::MappedPeers() const {
  std::map<int, ArenaLocation> out;
  for (const auto& [node, m] : peers_) out[node] = m.where;
  return out;
}

size_t SameHostReader::reads_in_flight() const { return landed_.size() + forwarded_.size(); }

}  // namespace raympi
