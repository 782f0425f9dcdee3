// GcsServer with recording callbacks: the node table, the cluster view it spreads, job end.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/frame.h"
#include "gcs_rank/gcs_server.h"

namespace raympi {
namespace {

double Amount(const rpc::ResourceSet& set, const std::string& name) {
  auto it = set.amounts().find(name);
  return it == set.amounts().end() ? -12345 : it->second;
}

rpc::ResourceSet Cpus(double n) {
  rpc::ResourceSet set;
  (*set.mutable_amounts())["CPU"] = n;
  return set;
}

class GcsServerTest : public ::testing::Test {
 protected:
  GcsServerTest() {
    GcsServer::Callbacks callbacks;
    callbacks.send = [this](const rpc::Envelope& e) { sent_.push_back(e); };
    callbacks.end_job = [this](int code) { end_job_codes_.push_back(code); };
    callbacks.now = [this] { return now_; };  // time moves only when a test says so
    GcsOptions options;
    options.view_refresh_period = kRefresh;
    // Tests jump the clock between ticks; only the stall test below counts such jumps as the
    // GCS's own stalls.
    options.own_stall = std::chrono::hours(24);
    gcs_ = std::make_unique<GcsServer>(callbacks, options);
  }

  void UseOwnStall(std::chrono::milliseconds own_stall) {
    GcsServer::Callbacks callbacks;
    callbacks.send = [this](const rpc::Envelope& e) { sent_.push_back(e); };
    callbacks.end_job = [this](int code) { end_job_codes_.push_back(code); };
    callbacks.now = [this] { return now_; };
    GcsOptions options;
    options.view_refresh_period = kRefresh;
    options.own_stall = own_stall;
    gcs_ = std::make_unique<GcsServer>(callbacks, options);
  }

  static constexpr std::chrono::milliseconds kRefresh{100};

  // What a raylet sends from NodeManager::Start.
  void Register(int node, double cpus) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(node, kRayletSlot);
    *e.mutable_dst() = MakeAddress(kGcsNode, 0);
    rpc::NodeInfo* info = e.mutable_register_node()->mutable_info();
    info->set_node(node);
    info->set_rank(node * 4);
    info->set_host("host" + std::to_string(node));
    *info->mutable_total() = Cpus(cpus);
    *info->mutable_available() = Cpus(cpus);
    gcs_->Handle(e);
  }

  void Report(int node, double available_cpus) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(node, kRayletSlot);
    *e.mutable_dst() = MakeAddress(kGcsNode, 0);
    e.mutable_resource_report()->set_node(node);
    *e.mutable_resource_report()->mutable_available() = Cpus(available_cpus);
    gcs_->Handle(e);
  }

  void DriverExit(int code) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(0, 1);
    *e.mutable_dst() = MakeAddress(kGcsNode, 0);
    e.mutable_driver_exit()->set_exit_code(code);
    gcs_->Handle(e);
  }

  std::vector<rpc::Envelope> TickAndTake() {
    gcs_->Tick();
    std::vector<rpc::Envelope> out;
    out.swap(sent_);
    return out;
  }

  // Checks that `sent` is one ClusterView per registered node, all the same, and returns the
  // view's nodes by id.
  std::map<int, rpc::NodeInfo> CheckBroadcast(const std::vector<rpc::Envelope>& sent,
                                              const std::vector<int>& expected_nodes) {
    std::map<int, rpc::NodeInfo> view;
    std::vector<int> destinations;
    for (const rpc::Envelope& e : sent) {
      EXPECT_TRUE(e.has_cluster_view()) << e.DebugString();
      EXPECT_EQ(e.src().node(), kGcsNode);
      EXPECT_EQ(e.dst().slot(), kRayletSlot);
      destinations.push_back(e.dst().node());
      std::map<int, rpc::NodeInfo> this_view;
      for (const rpc::NodeInfo& n : e.cluster_view().nodes()) this_view[n.node()] = n;
      EXPECT_EQ(this_view.size(), static_cast<size_t>(e.cluster_view().nodes_size()))
          << "a node appears twice in the view";
      if (view.empty()) view = this_view;
      EXPECT_EQ(this_view.size(), view.size()) << "raylets got different views";
      for (const auto& [id, info] : this_view) {
        EXPECT_DOUBLE_EQ(Amount(info.available(), "CPU"), Amount(view[id].available(), "CPU"))
            << "raylets got different views";
      }
    }
    EXPECT_EQ(destinations, expected_nodes);
    return view;
  }

  GcsServer::Clock::time_point now_ = GcsServer::Clock::time_point() + std::chrono::hours(1);
  std::unique_ptr<GcsServer> gcs_;
  std::vector<rpc::Envelope> sent_;
  std::vector<int> end_job_codes_;
};

TEST_F(GcsServerTest, NothingIsSentBeforeATick) {
  Register(0, 2);
  Register(1, 4);
  EXPECT_TRUE(sent_.empty());
  EXPECT_TRUE(end_job_codes_.empty());
  EXPECT_EQ(gcs_->nodes().size(), 2u);
}

TEST_F(GcsServerTest, RegisterThenTickBroadcastsTheViewToEveryNode) {
  Register(0, 2);
  Register(1, 4);
  Register(2, 8);
  std::map<int, rpc::NodeInfo> view = CheckBroadcast(TickAndTake(), {0, 1, 2});
  ASSERT_EQ(view.size(), 3u);
  for (int node : {0, 1, 2}) {
    const rpc::NodeInfo& info = view[node];
    EXPECT_TRUE(info.alive()) << "node " << node;
    EXPECT_EQ(info.rank(), node * 4);
    EXPECT_EQ(info.host(), "host" + std::to_string(node));
    EXPECT_DOUBLE_EQ(Amount(info.total(), "CPU"), 2 << node);
    EXPECT_DOUBLE_EQ(Amount(info.available(), "CPU"), 2 << node);
  }
}

TEST_F(GcsServerTest, NoBroadcastWhenNothingChanged) {
  Register(0, 2);
  Register(1, 2);
  EXPECT_EQ(TickAndTake().size(), 2u);
  EXPECT_TRUE(TickAndTake().empty());
  EXPECT_TRUE(TickAndTake().empty());
}

TEST_F(GcsServerTest, LateRegistrationIsSpreadToEveryone) {
  Register(0, 2);
  EXPECT_EQ(TickAndTake().size(), 1u);
  Register(1, 4);
  std::map<int, rpc::NodeInfo> view = CheckBroadcast(TickAndTake(), {0, 1});
  EXPECT_EQ(view.size(), 2u);
}

TEST_F(GcsServerTest, ReRegistrationReplacesTheEntry) {
  Register(0, 2);
  Register(0, 6);
  ASSERT_EQ(gcs_->nodes().size(), 1u);
  std::map<int, rpc::NodeInfo> view = CheckBroadcast(TickAndTake(), {0});
  EXPECT_DOUBLE_EQ(Amount(view[0].total(), "CPU"), 6);
}

TEST_F(GcsServerTest, ResourceReportUpdatesAvailableInTheNextView) {
  Register(0, 2);
  Register(1, 4);
  TickAndTake();
  Report(1, 1.5);
  std::map<int, rpc::NodeInfo> view = CheckBroadcast(TickAndTake(), {0, 1});
  EXPECT_DOUBLE_EQ(Amount(view[1].available(), "CPU"), 1.5);
  EXPECT_DOUBLE_EQ(Amount(view[1].total(), "CPU"), 4) << "a report changes available only";
  EXPECT_TRUE(view[1].alive());
  EXPECT_DOUBLE_EQ(Amount(view[0].available(), "CPU"), 2);
  EXPECT_DOUBLE_EQ(Amount(gcs_->nodes().at(1).available(), "CPU"), 1.5);
  EXPECT_TRUE(TickAndTake().empty());
}

TEST_F(GcsServerTest, SeveralReportsBetweenTicksMakeOneBroadcastWithTheLatest) {
  Register(0, 2);
  Register(1, 4);
  TickAndTake();
  Report(0, 1);
  Report(1, 3);
  Report(1, 0);
  std::map<int, rpc::NodeInfo> view = CheckBroadcast(TickAndTake(), {0, 1});
  EXPECT_DOUBLE_EQ(Amount(view[0].available(), "CPU"), 1);
  EXPECT_DOUBLE_EQ(Amount(view[1].available(), "CPU"), 0);
}

TEST_F(GcsServerTest, ReportFromAnUnknownNodeIsIgnored) {
  Register(0, 2);
  TickAndTake();
  Report(7, 1);
  EXPECT_TRUE(TickAndTake().empty());
  EXPECT_EQ(gcs_->nodes().size(), 1u);
  EXPECT_EQ(gcs_->nodes().count(7), 0u);
}

TEST_F(GcsServerTest, UnchangedViewIsSpreadAgainOnlyAfterTheRefreshPeriod) {
  Register(0, 2);
  Register(1, 4);
  EXPECT_EQ(TickAndTake().size(), 2u);
  now_ += kRefresh - std::chrono::milliseconds(1);
  EXPECT_TRUE(TickAndTake().empty());
  now_ += std::chrono::milliseconds(1);
  std::map<int, rpc::NodeInfo> view = CheckBroadcast(TickAndTake(), {0, 1});
  EXPECT_DOUBLE_EQ(Amount(view[1].available(), "CPU"), 4);
  EXPECT_TRUE(TickAndTake().empty()) << "the period restarts at a broadcast";
  // A change is spread at once, and restarts the period too.
  now_ += std::chrono::milliseconds(10);
  Report(1, 2);
  EXPECT_EQ(TickAndTake().size(), 2u);
  now_ += kRefresh - std::chrono::milliseconds(1);
  EXPECT_TRUE(TickAndTake().empty());
}

TEST_F(GcsServerTest, NoNodesNoBroadcast) {
  now_ += 10 * kRefresh;
  EXPECT_TRUE(TickAndTake().empty());
}

TEST_F(GcsServerTest, OtherMessagesAreIgnored) {
  Register(0, 2);
  TickAndTake();
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(0, 1);
  e.mutable_request_lease()->set_lease_request_id(1);
  gcs_->Handle(e);
  rpc::Envelope empty;
  gcs_->Handle(empty);
  EXPECT_TRUE(TickAndTake().empty());
  EXPECT_TRUE(end_job_codes_.empty());
  EXPECT_FALSE(gcs_->job_ended());
}

TEST_F(GcsServerTest, DriverExitEndsTheJobOnceWithItsCode) {
  Register(0, 2);
  Register(1, 2);
  TickAndTake();
  EXPECT_FALSE(gcs_->job_ended());
  DriverExit(3);
  EXPECT_EQ(end_job_codes_, std::vector<int>{3});
  EXPECT_TRUE(gcs_->job_ended());
  EXPECT_EQ(gcs_->exit_code(), 3);
  // A second exit (it cannot happen, but a duplicate message can) changes nothing.
  DriverExit(9);
  EXPECT_EQ(end_job_codes_, std::vector<int>{3});
  EXPECT_EQ(gcs_->exit_code(), 3);
}

TEST_F(GcsServerTest, NothingIsSentAfterTheJobEnded) {
  Register(0, 2);
  Register(1, 2);
  Report(1, 0);  // a change not yet spread
  DriverExit(0);
  EXPECT_EQ(end_job_codes_, std::vector<int>{0});
  EXPECT_TRUE(gcs_->job_ended());
  EXPECT_TRUE(TickAndTake().empty());
  Register(2, 2);
  Report(0, 1);
  EXPECT_TRUE(TickAndTake().empty());
  now_ += 10 * kRefresh;  // no periodic refresh either
  EXPECT_TRUE(TickAndTake().empty());
  EXPECT_EQ(end_job_codes_.size(), 1u);
}

// Heartbeats: a node not heard from for node_timeout (10 s by default) is lost, for good.
TEST_F(GcsServerTest, SilentNodeIsLostAndEveryAliveRayletIsTold) {
  Register(0, 1);
  Register(1, 1);
  Register(2, 1);
  now_ += std::chrono::seconds(9);
  Report(0, 1);
  Report(2, 1);
  gcs_->Tick();
  EXPECT_TRUE(gcs_->lost_nodes().empty());
  sent_.clear();
  now_ += std::chrono::milliseconds(1001);  // node 1: 10.001 s of silence
  gcs_->Tick();
  ASSERT_EQ(gcs_->lost_nodes().size(), 1u);
  EXPECT_NE(gcs_->lost_nodes().at(1).find("no heartbeat for 10.0 s"), std::string::npos);
  std::vector<int> told;
  for (const rpc::Envelope& e : sent_) {
    if (e.has_node_died()) {
      EXPECT_EQ(e.node_died().node(), 1);
      told.push_back(e.dst().node());
    }
    if (e.has_cluster_view()) {
      EXPECT_NE(e.dst().node(), 1);  // the lost node gets no view
      for (const auto& n : e.cluster_view().nodes()) EXPECT_EQ(n.alive(), n.node() != 1);
    }
  }
  EXPECT_EQ(told, (std::vector<int>{0, 2}));
  // It stays lost: a late report does not revive it.
  Report(1, 1);
  EXPECT_FALSE(gcs_->nodes().at(1).alive());
  sent_.clear();
  now_ += std::chrono::seconds(20);
  Report(2, 1);
  gcs_->Tick();
  for (const rpc::Envelope& e : sent_) EXPECT_FALSE(e.has_node_died());  // told once
}

// The GCS's rank stalls (a blocking spawn) longer than the timeout: the reports that wait in
// MPI meanwhile were not read, so no node is lost for that time; silence after it still counts.
TEST_F(GcsServerTest, TheGcsOwnStallCountsAgainstNoNode) {
  UseOwnStall(std::chrono::milliseconds(200));
  Register(0, 1);
  Register(1, 1);
  gcs_->Tick();
  now_ += std::chrono::seconds(30);  // one tick 30 s after the previous one
  gcs_->Tick();
  EXPECT_TRUE(gcs_->lost_nodes().empty());
  for (int i = 0; i < 101; ++i) {  // then 10.1 s of ticks every 100 ms, without a report
    now_ += std::chrono::milliseconds(100);
    gcs_->Tick();
  }
  EXPECT_EQ(gcs_->lost_nodes().size(), 1u);
}

TEST_F(GcsServerTest, HeadNodeIsNeverDeclaredLost) {
  Register(0, 1);  // its raylet shares the GCS's rank
  now_ += std::chrono::hours(1);
  gcs_->Tick();
  EXPECT_TRUE(gcs_->lost_nodes().empty());
}

TEST_F(GcsServerTest, JobEndWaitsOnlyForTheSummariesOfNodesAlive) {
  Register(0, 1);
  Register(1, 1);
  now_ += std::chrono::seconds(11);
  Report(0, 1);
  gcs_->Tick();  // node 1 lost
  rpc::Envelope exit;
  exit.mutable_driver_exit()->set_exit_code(0);
  gcs_->Handle(exit);
  rpc::Envelope summary;
  summary.mutable_node_summary()->set_node(0);
  gcs_->Handle(summary);
  gcs_->Tick();
  EXPECT_TRUE(gcs_->finished());
}

}  // namespace
}  // namespace raympi
