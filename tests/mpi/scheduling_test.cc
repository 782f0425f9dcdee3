// Cluster scheduling across nodes: the node table, custom resources, SPREAD and node affinity.
// Run with --ranks-per-node 1 on N ranks, --num-cpus 2 and node N-1 given {"bigmem": 2}.
// The driver's exit code is the number of failed checks.
#include <raympi/raympi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>

#include "check.h"

namespace {

int Where() { return raympi::CurrentNodeId(); }
// Keeps its CPU for `ms` so that a burst of tasks needs several leases.
int BusyWhere(int ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
  }
  return raympi::CurrentNodeId();
}
RAYMPI_REMOTE(Where, BusyWhere);

void NodeTable(int nodes) {
  std::vector<raympi::NodeInfo> table = raympi::Nodes();
  CHECK(static_cast<int>(table.size()) == nodes);
  for (int i = 0; i < static_cast<int>(table.size()); ++i) {
    CHECK(table[i].id == i);
    CHECK(table[i].alive);
    CHECK(!table[i].host.empty());
    CHECK(table[i].total.at("CPU") == 2.0);
    CHECK(table[i].total.count("memory") == 1);
  }
  CHECK(table.back().total.count("bigmem") == 1 && table.back().total.at("bigmem") == 2.0);
  CHECK(table.front().total.count("bigmem") == 0);
}

void CustomResources(int nodes) {
  // Only the last node has bigmem: every such task runs there, whatever the driver's node.
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < 6; ++i) refs.push_back(raympi::Task(Where).SetResource("bigmem", 1).Remote());
  for (const auto& n : raympi::Get(refs)) CHECK(*n == nodes - 1);
  auto both = raympi::Task(Where).SetResources({{"CPU", 2}, {"bigmem", 2}}).Remote();
  CHECK(*raympi::Get(both) == nodes - 1);
  CHECK_THROWS(raympi::TaskError, "bigmem",
               raympi::Get(raympi::Task(Where).SetResource("bigmem", 3).Remote()));
  CHECK_THROWS(raympi::TaskError, "GPU",
               raympi::Get(raympi::Task(Where).SetResource("GPU", 1).Remote()));
  CHECK_THROWS(raympi::Error, "negative", raympi::Task(Where).SetResource("CPU", -1).Remote());
}

void NodeAffinity(int nodes) {
  for (int node = 0; node < nodes; ++node) {
    auto ref = raympi::Task(Where).SetSchedulingStrategy(raympi::NodeAffinity(node)).Remote();
    CHECK(*raympi::Get(ref) == node);
  }
  CHECK_THROWS(
      raympi::TaskError, "not a live node",
      raympi::Get(
          raympi::Task(Where).SetSchedulingStrategy(raympi::NodeAffinity(nodes + 5)).Remote()));
  CHECK_THROWS(raympi::TaskError, "can never provide",
               raympi::Get(raympi::Task(Where)
                               .SetResource("bigmem", 1)
                               .SetSchedulingStrategy(raympi::NodeAffinity(0))
                               .Remote()));
  // Soft: runs anyway, elsewhere.
  auto soft = raympi::Task(Where)
                  .SetResource("bigmem", 1)
                  .SetSchedulingStrategy(raympi::NodeAffinity(0, /*soft=*/true))
                  .Remote();
  CHECK(*raympi::Get(soft) == nodes - 1);
  CHECK_THROWS(raympi::Error, "node must be",
               raympi::Task(Where).SetSchedulingStrategy(raympi::NodeAffinity(-3)).Remote());
}

void Spread(int nodes) {
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < 8 * nodes; ++i) {
    refs.push_back(raympi::Task(BusyWhere).SetSchedulingStrategy(raympi::Spread()).Remote(20));
  }
  std::set<int> used;
  for (const auto& n : raympi::Get(refs)) used.insert(*n);
  CHECK(static_cast<int>(used.size()) == nodes);
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  int nodes = argc > 1 ? std::atoi(argv[1]) : 1;
  NodeTable(nodes);
  CustomResources(nodes);
  NodeAffinity(nodes);
  Spread(nodes);
  std::printf("scheduling_test: %d failure(s)\n", raympi_test::Failures());
  return raympi_test::Failures();
}
