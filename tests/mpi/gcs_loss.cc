// The GCS is lost: the driver kills rank 0 (the GCS and node 0's raylet) with SIGKILL while a
// task runs on node 1. Nothing can go on; tests/gcs_loss_test.sh checks the job ends by itself
// within a bounded time, with a message, and leaves no process and no shared memory behind.
#include <raympi/raympi.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "check.h"

namespace {

// Runs on node 1 until its node ends (it never returns).
int RunLong(std::string marker) {
  std::ofstream(marker).close();
  std::this_thread::sleep_for(std::chrono::minutes(5));
  return 0;
}
RAYMPI_REMOTE(RunLong);

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  std::vector<raympi::NodeInfo> nodes = raympi::Nodes();
  CHECK(nodes.size() == 2);
  if (nodes.size() != 2 || nodes[0].raylet_pid <= 0) return 1;  // kill(0) is the process group
  std::string marker = "/tmp/raympi-gcs-loss-" + std::to_string(getpid());
  auto on_node1 = raympi::NodeAffinity(1, /*soft=*/false);
  auto running = raympi::Task(RunLong).SetSchedulingStrategy(on_node1).Remote(marker);
  CHECK(raympi_test::WaitForFile(marker));
  std::filesystem::remove(marker);
  std::fprintf(stderr, "gcs_loss: killing rank 0 (pid %d)\n", nodes[0].raylet_pid);
  kill(nodes[0].raylet_pid, SIGKILL);
  raympi::Get(running);  // never returns: this driver ends with its node
  std::fprintf(stderr, "gcs_loss: the driver outlived its node\n");
  return 1;
}
