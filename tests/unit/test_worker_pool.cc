// WorkerPool's slots: how many a node gets, and what happens when they run out.
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "raylet_rank/worker_pool.h"

namespace raympi {
namespace {

class RecordingLauncher : public WorkerLauncher {
 public:
  Status Launch(const LaunchRequest& request) override {
    launches.push_back(request);
    return Status::Ok();
  }
  void ReleaseAll() override {}
  std::vector<LaunchRequest> launches;
};

TEST(NodeProcessSlotsTest, SmallNodesKeepTheMinimum) {
  unsetenv("RAYMPI_NODE_PROCESS_SLOTS");
  EXPECT_EQ(NodeProcessSlots(2, 0), 128);
  EXPECT_EQ(NodeProcessSlots(0.5, 0), 128);
}

TEST(NodeProcessSlotsTest, ManyCoreNodesGetFourSlotsPerCpu) {
  unsetenv("RAYMPI_NODE_PROCESS_SLOTS");
  // A 128-core node used to get 128 slots: 126 workers, fewer than its CPUs.
  EXPECT_EQ(NodeProcessSlots(128, 0), 2 + 4 * 128);
  EXPECT_EQ(NodeProcessSlots(255.5, 0), 2 + 4 * 256);
}

TEST(NodeProcessSlotsTest, PrelaunchedRanksEachGetASlotAndRoomForRestarts) {
  unsetenv("RAYMPI_NODE_PROCESS_SLOTS");
  EXPECT_EQ(NodeProcessSlots(4, 4), 128);
  EXPECT_EQ(NodeProcessSlots(200, 200), 2 * 202);
}

TEST(NodeProcessSlotsTest, TheVariableOverridesButNeverBelowThePrelaunchedRanks) {
  setenv("RAYMPI_NODE_PROCESS_SLOTS", "1000", 1);
  EXPECT_EQ(NodeProcessSlots(2, 0), 1000);
  setenv("RAYMPI_NODE_PROCESS_SLOTS", "10", 1);
  EXPECT_EQ(NodeProcessSlots(2, 0), 10);
  EXPECT_EQ(NodeProcessSlots(64, 64), 66);
  unsetenv("RAYMPI_NODE_PROCESS_SLOTS");
}

TEST(WorkerPoolTest, StartsWhatFitsThenSaysTheSlotsAreUsed) {
  RecordingLauncher launcher;
  LaunchRequest base;
  base.node = 3;
  WorkerPool pool(&launcher, base, /*first_slot=*/1, /*max_slots=*/6);
  ASSERT_TRUE(pool.Start(3, false).ok());  // slots 1-3
  ASSERT_TRUE(pool.Start(4, false).ok());  // only 4 and 5 are left
  ASSERT_EQ(launcher.launches.size(), 2u);
  EXPECT_EQ(launcher.launches[1].first_worker_slot, 4);
  EXPECT_EQ(launcher.launches[1].num_workers, 2);
  EXPECT_EQ(pool.num_starting(), 5);

  Status full = pool.Start(1, false);
  EXPECT_EQ(full.code(), StatusCode::kUnavailable);
  EXPECT_NE(full.message().find("node 3"), std::string::npos) << full.message();
  EXPECT_NE(full.message().find("each of its 6 bus slots"), std::string::npos) << full.message();
  EXPECT_NE(full.message().find("RAYMPI_NODE_PROCESS_SLOTS"), std::string::npos) << full.message();
  EXPECT_EQ(launcher.launches.size(), 2u) << "nothing launched when no slot is left";
}

}  // namespace
}  // namespace raympi
