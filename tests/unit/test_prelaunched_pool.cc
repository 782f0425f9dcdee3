// The fixed pool of no-spawn mode: a WorkerPool over a PrelaunchedLauncher whose send records
// the StartProgram messages the pre-launched ranks would get.
#include <gtest/gtest.h>

#include <utility>
#include <vector>

#include "raylet_rank/prelaunched_launcher.h"
#include "raylet_rank/worker_pool.h"

namespace raympi {
namespace {

constexpr int kMaxSlots = 32;

// (mailbox it was sent to, slot the program takes)
using Start = std::pair<int, int>;

class PrelaunchedPoolTest : public ::testing::Test {
 protected:
  // Node 0: the driver's rank waits at slot 1, two workers' ranks at slots 2 and 3.
  PrelaunchedPoolTest()
      : launcher_(0, 1, {2, 3},
                  [this](const rpc::Envelope& e) {
                    EXPECT_TRUE(e.has_start_program());
                    starts_.emplace_back(e.dst().slot(), e.start_program().slot());
                  }),
        pool_(&launcher_, Base(), /*first_slot=*/2, kMaxSlots) {}

  static LaunchRequest Base() {
    LaunchRequest base;
    base.program = "/bin/app";
    base.node = 0;
    return base;
  }

  std::vector<Start> starts_;
  PrelaunchedLauncher launcher_;
  WorkerPool pool_;
};

TEST_F(PrelaunchedPoolTest, StartsEachRankAtItsOwnSlot) {
  ASSERT_TRUE(pool_.Start(2, /*with_driver=*/true).ok());
  EXPECT_EQ(starts_, (std::vector<Start>{{1, 1}, {2, 2}, {3, 3}}));
  EXPECT_EQ(pool_.num_starting(), 2);
  EXPECT_EQ(launcher_.StartableWorkers(), 0);
}

TEST_F(PrelaunchedPoolTest, AFullPoolStartsNothingMoreAndSaysOk) {
  ASSERT_TRUE(pool_.Start(2, true).ok());
  starts_.clear();
  EXPECT_TRUE(pool_.Start(5, false).ok());  // the demand queues: no error, no launch
  EXPECT_TRUE(starts_.empty());
  EXPECT_EQ(pool_.num_starting(), 2);
}

TEST_F(PrelaunchedPoolTest, AStartBeyondTheRanksStartsWhatItCan) {
  ASSERT_TRUE(pool_.Start(1, true).ok());
  ASSERT_TRUE(pool_.Start(4, false).ok());
  EXPECT_EQ(starts_, (std::vector<Start>{{1, 1}, {2, 2}, {3, 3}}));
  EXPECT_EQ(pool_.num_starting(), 2);
}

TEST_F(PrelaunchedPoolTest, ADeadWorkersRankRunsItsReplacementInANewSlot) {
  ASSERT_TRUE(pool_.Start(2, true).ok());
  pool_.OnReady(2);
  pool_.OnReady(3);
  starts_.clear();
  EXPECT_TRUE(pool_.MarkDead(3));
  EXPECT_EQ(launcher_.StartableWorkers(), 1);
  ASSERT_TRUE(pool_.Start(1, false).ok());
  // Told at the dead worker's mailbox (where its supervisor waits), to take slot 4.
  EXPECT_EQ(starts_, (std::vector<Start>{{3, 4}}));
  EXPECT_FALSE(pool_.IsAlive(3));
  EXPECT_TRUE(pool_.IsAlive(4));
  // The replacement dies too: its rank waits at slot 4 now.
  starts_.clear();
  pool_.MarkDead(4);
  ASSERT_TRUE(pool_.Start(1, false).ok());
  EXPECT_EQ(starts_, (std::vector<Start>{{4, 5}}));
}

TEST_F(PrelaunchedPoolTest, ADriverNeedsItsRank) {
  PrelaunchedLauncher no_driver(1, -1, {1}, [](const rpc::Envelope&) {});
  LaunchRequest request = Base();
  request.with_driver = true;
  Status st = no_driver.Launch(request);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no pre-launched rank left for the driver"), std::string::npos);
}

}  // namespace
}  // namespace raympi
