// A node is lost: the driver stops node 1's raylet (SIGSTOP: it stays in the MPI job but says
// nothing more), or with argument "kill" kills it. After the heartbeat timeout the GCS declares
// it lost; a task that was running there runs again on node 0, and an object whose only copy
// was there is made again from its lineage. Run by tests/lost_rank_test.sh, which checks the
// job ends by itself with a message and leaves nothing behind.
#include <raympi/raympi.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "check.h"

namespace {

namespace fs = std::filesystem;

// Says where it ran; on node 1 it first signals that it started, then waits for its node to be
// declared lost (it never finishes there).
int WhereAfter(std::string marker, int ms) {
  if (raympi::CurrentNodeId() == 1) std::ofstream(marker).close();
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return raympi::CurrentNodeId();
}
std::vector<double> MakeBig(int n) { return std::vector<double>(n, 3.0); }
RAYMPI_REMOTE(WhereAfter, MakeBig);

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  std::vector<raympi::NodeInfo> nodes = raympi::Nodes();
  CHECK(nodes.size() == 2);
  int raylet1 = nodes.size() == 2 ? nodes[1].raylet_pid : 0;
  CHECK(raylet1 > 0);

  // An object whose only copy is on node 1 (a task's result: it has lineage).
  auto on_node1 = raympi::NodeAffinity(1, /*soft=*/true);
  auto big = raympi::Task(MakeBig).SetSchedulingStrategy(on_node1).Remote(1 << 20);
  raympi::Wait(std::vector<raympi::ObjectRef<std::vector<double>>>{big}, 1);

  // A task running on node 1 when it is lost.
  std::string marker = "/tmp/raympi-node-loss-" + std::to_string(getpid());
  auto where = raympi::Task(WhereAfter).SetSchedulingStrategy(on_node1).Remote(marker, 300);
  CHECK(raympi_test::WaitForFile(marker));
  fs::remove(marker);
  // "kill": the raylet dies (SIGKILL); otherwise it stops (SIGSTOP) and stays in the job.
  bool dies = argc > 1 && std::string(argv[1]) == "kill";
  if (raylet1 > 0) kill(raylet1, dies ? SIGKILL : SIGSTOP);

  CHECK(*raympi::Get(where) == 0);                        // ran again on node 0
  raympi::ArrayView<double> view = raympi::GetView(big);  // made again on node 0
  CHECK(view.size() == (1u << 20) && view[7] == 3.0);
  nodes = raympi::Nodes();
  CHECK(nodes.size() == 2 && !nodes[1].alive && nodes[0].alive);
  std::fprintf(stderr, "node_loss_test: %d failure(s)\n", raympi_test::Failures());
  return raympi_test::Failures();
}
