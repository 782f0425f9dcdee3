// Connects a SameHostReader to the raylets of this host: the MPI side of same_host_reader.h.
#pragma once

#include <mpi.h>

#include <map>
#include <memory>

#include "common/status.h"
#include "objects/object_store.h"
#include "objects/same_host_reader.h"

namespace raympi {

struct SameHostOptions {
  bool enabled = true;    // false: every node through the fallback (RAYMPI_SAME_HOST_READS=0)
  bool populate = false;  // map peers' arenas with MAP_POPULATE (their stores are prefaulted)
};

// COLLECTIVE over `comm` (the raylets; `rank_of_node` maps node ids to ranks in it, this
// rank's node `my_node` included): every raylet describes its store's arena, and each maps the
// arenas of the others that lie on its own host. Returns a reader over `fallback` (which must
// outlive it). Describing or mapping failures only leave nodes to the fallback (logged).
StatusOr<std::unique_ptr<SameHostReader>> ConnectSameHostPeers(
    MPI_Comm comm, const ObjectStore& store, RmaReader* fallback,
    const std::map<int, int>& rank_of_node, int my_node, const SameHostOptions& options);

}  // namespace raympi
