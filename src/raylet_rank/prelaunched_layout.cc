#include "raylet_rank/prelaunched_layout.h"

namespace raympi {

std::string CheckPrelaunchedLayout(const RankMap& map, const std::vector<int>& raylet_candidate) {
  std::vector<int> ranks_of_node(map.raylet_rank_of_node.size(), 0);
  for (int node : map.node_of_rank) ++ranks_of_node[node];
  if (ranks_of_node.empty() || ranks_of_node[0] < 2) {
    return "no-spawn mode (--prelaunched, or srun direct launch) needs at least 2 ranks on "
           "node 0, its raylet and the driver, plus one rank per worker; node 0 has " +
           std::to_string(ranks_of_node.empty() ? 0 : ranks_of_node[0]) +
           ". Ask for more ranks, e.g. 'mpirun -n 4 raympi --prelaunched ./app' or "
           "'srun -n 4 raympi ./app' (raylet, driver and 2 workers)" +
           (map.ranks_per_node > 0 ? ", and --ranks-per-node 2 or more" : "");
  }
  for (size_t r = 0; r < map.node_of_rank.size(); ++r) {
    const int node = map.node_of_rank[r];
    const int raylet = map.raylet_rank_of_node[node];
    if ((static_cast<int>(r) == raylet) != (raylet_candidate[r] != 0)) {
      return "no-spawn mode picks each node's raylet before MPI_Init as the first rank of its "
             "host, but rank " +
             std::to_string(r) + " of node " + std::to_string(node) +
             " disagrees: map the ranks of a host to consecutive ranks (mpirun --map-by slot, "
             "srun --distribution=block)";
    }
    if (map.host_of_rank[r] != map.host_of_rank[raylet]) {
      return "--ranks-per-node " + std::to_string(map.ranks_per_node) + " puts rank " +
             std::to_string(r) + " on another host than its node's raylet (rank " +
             std::to_string(raylet) +
             "); in no-spawn mode a node's ranks share its memory: choose a --ranks-per-node "
             "that divides the ranks of each host";
    }
  }
  return "";
}

int PrelaunchedWorkersOf(const RankMap& map, int node) {
  int ranks = 0;
  for (int n : map.node_of_rank) ranks += n == node;
  return ranks - (node == 0 ? 2 : 1);
}

SupervisorSlot SupervisorSlotOf(const RankMap& map, int rank) {
  const int node = map.node_of_rank[rank];
  const int raylet = map.raylet_rank_of_node[node];
  int index = 0;
  for (int r = 0; r < rank; ++r) index += map.node_of_rank[r] == node && r != raylet;
  return {node == 0 && index == 0, 1 + index};
}

}  // namespace raympi
