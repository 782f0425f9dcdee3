// ArenaLocation: where a node's object store lies on its host (shm segment, arena range, the
// file's identity and the running kernel), so that another process of the same host can find
// and check that very file. Raylets exchange these at start-up (same_host_peers.h) and hand
// them to their node's processes (SameHostStores), which copy objects of those nodes
// themselves (PeerStoreCopier).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"
#include "objects/object_store.h"

namespace raympi {

// Where a node's arena lies in its store segment, and which file that segment is.
struct ArenaLocation {
  std::string segment;        // shm_open name, "/..."
  uint64_t arena_offset = 0;  // from the start of the segment; page-aligned
  uint64_t arena_bytes = 0;
  uint64_t device = 0;  // st_dev and st_ino of the segment's file
  uint64_t inode = 0;
  std::string boot_id;  // /proc/sys/kernel/random/boot_id: which running kernel

  // A fixed-size record for MPI_Allgather (kEncodedBytes); Decode checks it.
  static constexpr size_t kEncodedBytes = 384;
  std::string Encode() const;
  static StatusOr<ArenaLocation> Decode(const std::string& record);
};

// Describes this process's segment `segment` (fstat of the shm file, the boot id).
StatusOr<ArenaLocation> DescribeArena(const std::string& segment, uint64_t arena_offset,
                                      uint64_t arena_bytes);

// This running kernel's boot id ("" if unknown): tells hosts apart where /dev/shm names do not.
std::string ThisBootId();

// Whether `where` can be a store of this host: described by this running kernel, with a valid
// segment name and an arena (the file itself is checked when it is opened: IsDescribedFile).
bool DescribesThisHost(const ArenaLocation& where);

// Whether `fd` is the file `where` describes (device and inode); its size in `*bytes`.
bool IsDescribedFile(int fd, const ArenaLocation& where, uint64_t* bytes);

// Attaches the store `where` describes, if its segment is still that file and holds an arena of
// that size. NotFound: another file now (or none); InvalidArgument: another capacity.
StatusOr<std::unique_ptr<ObjectStore>> AttachDescribedStore(const ArenaLocation& where);

}  // namespace raympi
