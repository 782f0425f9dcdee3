#include "objects/same_host_peers.h"

#include <string>
#include <vector>

#include "common/logging.h"

namespace raympi {

StatusOr<std::unique_ptr<SameHostReader>> ConnectSameHostPeers(
    MPI_Comm comm, const ObjectStore& store, RmaReader* fallback,
    const std::map<int, int>& rank_of_node, int my_node, const SameHostOptions& options) {
  StatusOr<ArenaLocation> mine =
      DescribeArena(store.name(), store.arena_offset_in_segment(), store.capacity());
  if (!mine.ok()) {
    RAYMPI_LOG_WARN("node {}: other nodes of this host will read its store over MPI: {}", my_node,
                    mine.status().ToString());
  }
  // Always take part in the exchange, so that every raylet makes the same collective calls.
  const std::string record =
      mine.ok() ? mine->Encode() : std::string(ArenaLocation::kEncodedBytes, '\0');
  int size = 0;
  MPI_Comm_size(comm, &size);
  std::vector<char> all(static_cast<size_t>(size) * ArenaLocation::kEncodedBytes);
  const int rc = MPI_Allgather(record.data(), static_cast<int>(record.size()), MPI_BYTE, all.data(),
                               static_cast<int>(record.size()), MPI_BYTE, comm);
  if (rc != MPI_SUCCESS) return Status::Internal(MpiErrorText("MPI_Allgather", rc));

  auto reader = std::make_unique<SameHostReader>(fallback);
  if (!options.enabled) return reader;
  for (const auto& [node, rank] : rank_of_node) {
    if (node == my_node || rank < 0 || rank >= size) continue;
    const std::string theirs(all.data() + static_cast<size_t>(rank) * ArenaLocation::kEncodedBytes,
                             ArenaLocation::kEncodedBytes);
    StatusOr<ArenaLocation> where = ArenaLocation::Decode(theirs);
    if (!where.ok()) continue;  // that raylet could not describe its arena
    StatusOr<bool> mapped = reader->AddPeer(node, *where, options.populate);
    if (!mapped.ok()) {
      RAYMPI_LOG_WARN("node {}: reading node {}'s objects over MPI: {}", my_node, node,
                      mapped.status().ToString());
    } else if (*mapped) {
      RAYMPI_LOG_DEBUG("node {}: reads node {}'s objects through a mapping of {}", my_node, node,
                       where->segment);
    }
  }
  return reader;
}

}  // namespace raympi
