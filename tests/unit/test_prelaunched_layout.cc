// No-spawn mode's checks of the job's layout and the slots of its supervisor ranks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "raylet_rank/prelaunched_layout.h"

namespace raympi {
namespace {

// `sizes[n]` consecutive ranks per node, each node on its own host.
RankMap Nodes(const std::vector<int>& sizes, int ranks_per_node = 0) {
  RankMap map;
  map.ranks_per_node = ranks_per_node;
  for (size_t node = 0; node < sizes.size(); ++node) {
    map.raylet_rank_of_node.push_back(static_cast<int>(map.node_of_rank.size()));
    for (int i = 0; i < sizes[node]; ++i) {
      map.node_of_rank.push_back(static_cast<int>(node));
      map.host_of_rank.push_back(map.raylet_rank_of_node.back());
    }
  }
  return map;
}

// The candidates a well-mapped launch gives: each node's first rank.
std::vector<int> FirstOfEachNode(const RankMap& map) {
  std::vector<int> c(map.node_of_rank.size(), 0);
  for (int r : map.raylet_rank_of_node) c[r] = 1;
  return c;
}

bool Says(const std::string& problem, const std::string& what) {
  return problem.find(what) != std::string::npos;
}

TEST(PrelaunchedLayoutTest, RayletDriverAndWorkersRun) {
  RankMap map = Nodes({4, 3});
  EXPECT_EQ(CheckPrelaunchedLayout(map, FirstOfEachNode(map)), "");
  EXPECT_EQ(PrelaunchedWorkersOf(map, 0), 2);
  EXPECT_EQ(PrelaunchedWorkersOf(map, 1), 2);
}

TEST(PrelaunchedLayoutTest, ANodeZeroWithoutADriverRankSaysHowManyToAskFor) {
  RankMap one = Nodes({1});
  std::string problem = CheckPrelaunchedLayout(one, FirstOfEachNode(one));
  EXPECT_TRUE(Says(problem, "needs at least 2 ranks on node 0")) << problem;
  EXPECT_TRUE(Says(problem, "node 0 has 1")) << problem;
  EXPECT_TRUE(Says(problem, "srun -n 4 raympi ./app")) << problem;
  EXPECT_FALSE(Says(problem, "--ranks-per-node")) << problem;
  RankMap virtual_nodes = Nodes({1, 1, 1, 1}, /*ranks_per_node=*/1);
  problem = CheckPrelaunchedLayout(virtual_nodes, FirstOfEachNode(virtual_nodes));
  EXPECT_TRUE(Says(problem, "--ranks-per-node 2 or more")) << problem;
}

TEST(PrelaunchedLayoutTest, ARayletGuessedWrongBeforeMpiInitIsRefused) {
  RankMap map = Nodes({3, 3});
  std::vector<int> candidates = FirstOfEachNode(map);
  candidates[3] = 0;  // e.g. --map-by node: node 1's first rank was not its host's first
  candidates[4] = 1;
  std::string problem = CheckPrelaunchedLayout(map, candidates);
  EXPECT_TRUE(Says(problem, "rank 3 of node 1 disagrees")) << problem;
  EXPECT_TRUE(Says(problem, "--map-by slot")) << problem;
}

TEST(PrelaunchedLayoutTest, AVirtualNodeAcrossHostsIsRefused) {
  RankMap map = Nodes({3, 3}, /*ranks_per_node=*/3);
  map.host_of_rank = {0, 0, 2, 2, 2, 2};  // 2 ranks on the first host, 4 on the second
  std::string problem = CheckPrelaunchedLayout(map, FirstOfEachNode(map));
  EXPECT_TRUE(Says(problem, "--ranks-per-node 3 puts rank 2 on another host")) << problem;
}

TEST(PrelaunchedLayoutTest, SupervisorsWaitAtThePoolsSlots) {
  RankMap map = Nodes({4, 3});
  // Node 0: rank 0 raylet, rank 1 the driver at slot 1, ranks 2 and 3 workers at 2 and 3.
  EXPECT_TRUE(SupervisorSlotOf(map, 1).driver);
  EXPECT_EQ(SupervisorSlotOf(map, 1).home_slot, 1);
  EXPECT_FALSE(SupervisorSlotOf(map, 2).driver);
  EXPECT_EQ(SupervisorSlotOf(map, 2).home_slot, 2);
  EXPECT_EQ(SupervisorSlotOf(map, 3).home_slot, 3);
  // Node 1: rank 4 raylet, ranks 5 and 6 workers at slots 1 and 2.
  EXPECT_FALSE(SupervisorSlotOf(map, 5).driver);
  EXPECT_EQ(SupervisorSlotOf(map, 5).home_slot, 1);
  EXPECT_EQ(SupervisorSlotOf(map, 6).home_slot, 2);
}

}  // namespace
}  // namespace raympi
