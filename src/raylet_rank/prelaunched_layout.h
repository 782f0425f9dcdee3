// No-spawn mode's decisions about the job's ranks, as pure functions of the layout (which node
// and host each rank is on) so they are unit-tested without MPI: whether the layout can run at
// all, how many workers a node has, and which slot each supervisor rank waits at.
#pragma once

#include <string>
#include <vector>

namespace raympi {

struct RankMap {
  std::vector<int> node_of_rank;
  std::vector<int> raylet_rank_of_node;  // each node's lowest rank
  std::vector<int> host_of_rank;         // any id shared by the ranks of one host
  int ranks_per_node = 0;                // --ranks-per-node, 0 if not given
};

// "" if no-spawn mode can run on `map`, else the problem and its fix. `raylet_candidate[r]`:
// rank r chose the raylet role before MPI_Init (and did not fork the program).
std::string CheckPrelaunchedLayout(const RankMap& map, const std::vector<int>& raylet_candidate);

// The workers of `node`: its ranks but its raylet, and the driver on node 0.
int PrelaunchedWorkersOf(const RankMap& map, int node);

// Where supervisor rank `rank` waits for its first program: 1 + its index among its node's
// ranks that are not the raylet (so node 0's first is the driver, at slot 1, and the workers'
// slots are those the pool hands out, 2.. on node 0 and 1.. elsewhere).
struct SupervisorSlot {
  bool driver = false;
  int home_slot = 0;
};
SupervisorSlot SupervisorSlotOf(const RankMap& map, int rank);

}  // namespace raympi
