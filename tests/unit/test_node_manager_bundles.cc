// NodeManager's placement-group path driven by envelopes: the GCS's prepare and commit, a lease
// in a bundle (any bundle, bound to its PUs through a fake ProcessControl), and removal (the
// worker killed, reported with the cause, never handed out again; the group's queued requests
// answered infeasible). A recording launcher and send; no processes, no MPI.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/bundle_resources.h"
#include "common/frame.h"
#include "raylet_rank/node_manager.h"
#include "raylet_rank/worker_launcher.h"
#include "raylet_rank/worker_pool.h"

namespace raympi {
namespace {

class NoLauncher : public WorkerLauncher {
 public:
  Status Launch(const LaunchRequest& request) override {
    launched += request.num_workers;
    return Status::Ok();
  }
  void ReleaseAll() override {}
  int launched = 0;
};

class RecordingControl : public ProcessControl {
 public:
  StatusOr<std::vector<int>> Bind(int pid, const std::vector<int>& pus) override {
    binds.emplace_back(pid, pus);
    return std::vector<int>{0, 1, 2, 3};
  }
  Status Kill(int pid) override {
    kills.push_back(pid);
    return Status::Ok();
  }
  std::vector<std::pair<int, std::vector<int>>> binds;
  std::vector<int> kills;
};

rpc::ResourceSet Cpus(double n) {
  rpc::ResourceSet set;
  (*set.mutable_amounts())["CPU"] = n;
  return set;
}

const rpc::Address kGcs = MakeAddress(kGcsNode, 0);
const rpc::Address kOwner = MakeAddress(0, 1);
const std::string kGroup(16, '\x07');

class NodeManagerBundlesTest : public ::testing::Test {
 protected:
  NodeManagerBundlesTest() : pool_(&launcher_, Base(), 2, 16) {
    NodeManagerConfig config;
    config.node = 0;
    config.resources.host = "testhost";
    config.resources.num_cpus = 4;
    config.resources.pus = {0, 1, 2, 3};
    config.resources.pu_cores = {0, 0, 1, 1};
    config.resources.pu_numas = {0, 0, 0, 0};
    config.process_control = &control_;
    config.initial_workers = 1;  // slot 2
    nm_ = std::make_unique<NodeManager>(config, &pool_,
                                        [this](const rpc::Envelope& e) { sent_.push_back(e); });
    EXPECT_TRUE(nm_->Start().ok());
    Ready(2);
    sent_.clear();
  }
  static LaunchRequest Base() {
    LaunchRequest base;
    base.program = "/bin/app";
    base.bus_name = "/raympi-test-bus";
    return base;
  }
  rpc::Envelope From(const rpc::Address& src) {
    rpc::Envelope e;
    *e.mutable_src() = src;
    *e.mutable_dst() = MakeAddress(0, kRayletSlot);
    return e;
  }
  void Ready(int slot) {
    rpc::Envelope e = From(MakeAddress(0, slot));
    e.mutable_worker_ready()->set_pid(1000 + slot);
    nm_->Handle(e);
  }
  // Prepares and commits two 2-CPU bundles; returns the PUs of each.
  std::vector<std::vector<int>> PlaceGroup() {
    rpc::Envelope prepare = From(kGcs);
    prepare.mutable_prepare_bundles()->set_placement_group_id(kGroup);
    for (int i = 0; i < 2; ++i) {
      rpc::Bundle* b = prepare.mutable_prepare_bundles()->add_bundles();
      b->set_index(i);
      *b->mutable_resources() = Cpus(2);
    }
    nm_->Handle(prepare);
    rpc::Envelope reply = Take(rpc::Envelope::kBundlesReply);
    EXPECT_TRUE(reply.bundles_reply().error().empty()) << reply.DebugString();
    std::vector<std::vector<int>> pus;
    for (const rpc::Bundle& b : reply.bundles_reply().bundles()) {
      pus.emplace_back(b.pus().begin(), b.pus().end());
    }
    rpc::Envelope commit = From(kGcs);
    commit.mutable_commit_bundles()->set_placement_group_id(kGroup);
    nm_->Handle(commit);
    EXPECT_TRUE(Take(rpc::Envelope::kBundlesReply).bundles_reply().error().empty());
    return pus;
  }
  void Request(uint64_t id, const rpc::ResourceSet& resources) {
    rpc::Envelope e = From(kOwner);
    e.mutable_request_lease()->set_lease_request_id(id);
    *e.mutable_request_lease()->mutable_resources() = resources;
    nm_->Handle(e);
  }
  rpc::Envelope Take(rpc::Envelope::BodyCase type) {
    for (auto it = sent_.begin(); it != sent_.end(); ++it) {
      if (it->body_case() != type) continue;
      rpc::Envelope e = *it;
      sent_.erase(it);
      return e;
    }
    ADD_FAILURE() << "nothing of type " << type << " was sent";
    return {};
  }

  NoLauncher launcher_;
  RecordingControl control_;
  WorkerPool pool_;
  std::vector<rpc::Envelope> sent_;
  std::unique_ptr<NodeManager> nm_;
};

TEST_F(NodeManagerBundlesTest, PreparedBundlesHoldPusOfTheirOwnAndLeaveThePool) {
  std::vector<std::vector<int>> pus = PlaceGroup();
  ASSERT_EQ(pus.size(), 2u);
  EXPECT_EQ(pus[0], (std::vector<int>{0, 1}));  // one core each
  EXPECT_EQ(pus[1], (std::vector<int>{2, 3}));
  // Every CPU is in the group: an ordinary 1-CPU request waits (no grant).
  Request(1, Cpus(1));
  for (const auto& e : sent_) EXPECT_FALSE(e.has_lease_reply()) << e.DebugString();
}

TEST_F(NodeManagerBundlesTest, ALeaseInTheGroupBindsItsWorkerToTheBundle) {
  std::vector<std::vector<int>> pus = PlaceGroup();
  Request(7, BundleRequest(Cpus(1), kGroup, -1));  // any bundle
  rpc::Envelope grant = Take(rpc::Envelope::kLeaseReply);
  ASSERT_TRUE(grant.lease_reply().has_worker()) << grant.DebugString();
  ASSERT_EQ(control_.binds.size(), 1u);
  EXPECT_EQ(control_.binds[0].first, 1002);
  EXPECT_TRUE(control_.binds[0].second == pus[0] || control_.binds[0].second == pus[1]);
  rpc::Envelope ret = From(kOwner);
  ret.mutable_return_lease()->set_lease_id(grant.lease_reply().lease_id());
  nm_->Handle(ret);
  ASSERT_EQ(control_.binds.size(), 2u);  // unbound: its old mask back
  EXPECT_EQ(control_.binds[1].second, (std::vector<int>{0, 1, 2, 3}));
}

TEST_F(NodeManagerBundlesTest, RemovalKillsTheGroupsWorkersAndFailsItsRequests) {
  PlaceGroup();
  Request(7, BundleRequest(Cpus(2), kGroup, 0));
  rpc::Envelope grant = Take(rpc::Envelope::kLeaseReply);
  ASSERT_TRUE(grant.lease_reply().has_worker());
  Request(8, BundleRequest(Cpus(2), kGroup, 0));  // queued: bundle 0 is busy
  EXPECT_EQ(control_.kills.size(), 0u);
  rpc::Envelope remove = From(kGcs);
  remove.mutable_return_bundles()->set_placement_group_id(kGroup);
  remove.mutable_return_bundles()->set_cause("placement group 'g' was removed");
  nm_->Handle(remove);
  EXPECT_EQ(control_.kills, (std::vector<int>{1002}));
  rpc::Envelope failed = Take(rpc::Envelope::kLeaseReply);
  EXPECT_EQ(failed.lease_reply().lease_request_id(), 8u);
  EXPECT_NE(failed.lease_reply().infeasible().find("was removed"), std::string::npos);
  // The owner returns the lease before the death is reported: the worker must not be reused.
  rpc::Envelope ret = From(kOwner);
  ret.mutable_return_lease()->set_lease_id(grant.lease_reply().lease_id());
  nm_->Handle(ret);
  sent_.clear();
  Request(9, Cpus(1));
  for (const auto& e : sent_) {
    EXPECT_FALSE(e.has_lease_reply() && e.lease_reply().has_worker() &&
                 e.lease_reply().worker().slot() == 2)
        << "the killed worker was leased again";
  }
  // Its death is reported with the cause, to the GCS.
  rpc::Envelope died = From(MakeAddress(0, 2));
  died.mutable_worker_died()->set_pid(1002);
  *died.mutable_worker_died()->mutable_worker() = MakeAddress(0, 2);
  died.mutable_worker_died()->set_cause("killed by signal 9 (SIGKILL)");
  nm_->Handle(died);
  rpc::Envelope to_gcs = Take(rpc::Envelope::kWorkerDied);
  EXPECT_EQ(to_gcs.worker_died().cause(), "placement group 'g' was removed");
  // A request for the removed group's resources can never be granted now.
  sent_.clear();
  Request(10, BundleRequest(Cpus(1), kGroup, 1));
  rpc::Envelope never = Take(rpc::Envelope::kLeaseReply);
  EXPECT_NE(never.lease_reply().infeasible().find("placement group"), std::string::npos)
      << never.DebugString();
}

}  // namespace
}  // namespace raympi
