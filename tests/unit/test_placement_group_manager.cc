// The GCS's placement groups without MPI or time: the placement policy per strategy, and the
// manager's two-phase commit with the test playing the raylets (a recording send, replies
// released by hand, a fake clock): success, a failed prepare, pending then placed, infeasible,
// removal, wait timeouts and a lost node.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "common/bundle_resources.h"
#include "common/frame.h"
#include "gcs_rank/placement_group_manager.h"
#include "gcs_rank/placement_policy.h"

namespace raympi {
namespace {

using Strategy = rpc::PlacementGroupSpec;

rpc::ResourceSet Cpus(double n) {
  rpc::ResourceSet set;
  (*set.mutable_amounts())["CPU"] = n;
  return set;
}

rpc::NodeInfo Node(int id, double total, double available) {
  rpc::NodeInfo n;
  n.set_node(id);
  n.set_alive(true);
  *n.mutable_total() = Cpus(total);
  *n.mutable_available() = Cpus(available);
  return n;
}

std::map<int, rpc::NodeInfo> Nodes(std::vector<std::pair<double, double>> nodes) {
  std::map<int, rpc::NodeInfo> out;
  for (size_t i = 0; i < nodes.size(); ++i) {
    out[static_cast<int>(i)] = Node(static_cast<int>(i), nodes[i].first, nodes[i].second);
  }
  return out;
}

rpc::PlacementGroupSpec Spec(const std::string& id, Strategy::Strategy strategy,
                             std::vector<double> cpus, const std::string& name = "") {
  rpc::PlacementGroupSpec spec;
  spec.set_placement_group_id(id);
  spec.set_name(name);
  spec.set_strategy(strategy);
  for (size_t i = 0; i < cpus.size(); ++i) {
    rpc::Bundle* b = spec.add_bundles();
    b->set_index(static_cast<int>(i));
    b->set_node(-1);
    *b->mutable_resources() = Cpus(cpus[i]);
  }
  return spec;
}

Placement Place(const rpc::PlacementGroupSpec& spec, const std::map<int, rpc::NodeInfo>& nodes) {
  return PlaceBundles(spec, std::vector<int>(spec.bundles_size(), -1), nodes);
}

// ---- the policy -----------------------------------------------------------------------------

TEST(PlacementPolicy, PackPutsEverythingOnOneNodeWhenOneHasRoom) {
  auto nodes = Nodes({{2, 1}, {4, 4}, {4, 4}});
  Placement p = Place(Spec("g", Strategy::PACK, {1, 1, 1}), nodes);
  ASSERT_EQ(p.kind, Placement::Kind::kPlaced);
  EXPECT_EQ(p.nodes, (std::vector<int>{1, 1, 1}));
}

TEST(PlacementPolicy, PackSplitsOverFewNodesWhenNoneHoldsAll) {
  auto nodes = Nodes({{2, 2}, {2, 2}, {2, 2}});
  Placement p = Place(Spec("g", Strategy::PACK, {1, 1, 1, 1}), nodes);
  ASSERT_EQ(p.kind, Placement::Kind::kPlaced);
  EXPECT_EQ(std::set<int>(p.nodes.begin(), p.nodes.end()).size(), 2u);
}

TEST(PlacementPolicy, SpreadUsesEveryNodeBeforeDoublingUp) {
  auto nodes = Nodes({{4, 4}, {4, 4}, {4, 4}});
  Placement p = Place(Spec("g", Strategy::SPREAD, {1, 1, 1, 1}), nodes);
  ASSERT_EQ(p.kind, Placement::Kind::kPlaced);
  EXPECT_EQ(std::set<int>(p.nodes.begin(), p.nodes.begin() + 3).size(), 3u);
}

TEST(PlacementPolicy, StrictPackWaitsWhenTheNodeIsBusyAndFailsWhenNoNodeIsBigEnough) {
  auto nodes = Nodes({{4, 1}, {2, 2}});
  EXPECT_EQ(Place(Spec("g", Strategy::STRICT_PACK, {2, 2}), nodes).kind, Placement::Kind::kNotNow);
  Placement never = Place(Spec("g", Strategy::STRICT_PACK, {3, 3}), nodes);
  EXPECT_EQ(never.kind, Placement::Kind::kNever);
  EXPECT_NE(never.reason.find("STRICT_PACK needs one node with {CPU: 6}"), std::string::npos)
      << never.reason;
}

TEST(PlacementPolicy, StrictSpreadNeedsANodePerBundle) {
  auto nodes = Nodes({{2, 2}, {2, 2}});
  Placement never = Place(Spec("g", Strategy::STRICT_SPREAD, {1, 1, 1}), nodes);
  EXPECT_EQ(never.kind, Placement::Kind::kNever);
  EXPECT_NE(never.reason.find("3 bundles, but the job has 2 node(s)"), std::string::npos);
  // A greedy choice would put the small bundle on the big node; the search does not.
  auto uneven = Nodes({{4, 4}, {1, 1}});
  Placement p = Place(Spec("g", Strategy::STRICT_SPREAD, {1, 4}), uneven);
  ASSERT_EQ(p.kind, Placement::Kind::kPlaced);
  EXPECT_EQ(p.nodes, (std::vector<int>{1, 0}));
}

TEST(PlacementPolicy, ABundleThatFitsNoNodeIsNeverPlaced) {
  Placement p = Place(Spec("g", Strategy::SPREAD, {1, 8}), Nodes({{2, 2}, {4, 4}}));
  EXPECT_EQ(p.kind, Placement::Kind::kNever);
  EXPECT_NE(p.reason.find("bundle 1 {CPU: 8} fits on no node"), std::string::npos) << p.reason;
}

TEST(PlacementPolicy, DeadNodesAreNotUsed) {
  auto nodes = Nodes({{2, 2}, {2, 2}});
  nodes[1].set_alive(false);
  EXPECT_EQ(Place(Spec("g", Strategy::STRICT_SPREAD, {1, 1}), nodes).kind, Placement::Kind::kNever);
}

// ---- the manager ----------------------------------------------------------------------------

const rpc::Address kDriver = MakeAddress(0, 1);

class PlacementGroupManagerTest : public ::testing::Test {
 protected:
  PlacementGroupManagerTest()
      : nodes_(Nodes({{2, 2}, {2, 2}, {2, 2}})),
        manager_(PlacementGroupManager::Deps{[this](const rpc::Envelope& e) { sent_.push_back(e); },
                                             &nodes_, [this] { ++views_; },
                                             [this] { return now_; }}) {}

  rpc::PlacementGroupInfo Create(const rpc::PlacementGroupSpec& spec) {
    rpc::Envelope e = From(kDriver);
    e.set_request_id(++request_);
    *e.mutable_create_placement_group()->mutable_spec() = spec;
    manager_.Handle(e);
    return TakeInfo(request_);
  }
  // Sends GetPlacementGroup; returns its request id (the reply may come later).
  uint64_t Get(const std::string& id, int64_t wait_ms) {
    rpc::Envelope e = From(kDriver);
    e.set_request_id(++request_);
    e.mutable_get_placement_group()->set_placement_group_id(id);
    e.mutable_get_placement_group()->set_wait_ms(wait_ms);
    manager_.Handle(e);
    return request_;
  }
  rpc::PlacementGroupInfo Remove(const std::string& id) {
    rpc::Envelope e = From(kDriver);
    e.set_request_id(++request_);
    e.mutable_remove_placement_group()->set_placement_group_id(id);
    manager_.Handle(e);
    return TakeInfo(request_);
  }
  // The raylet of `node` answers a prepare (with PUs) or a commit.
  void Answer(int node, const rpc::Envelope& request, const std::string& error = "") {
    rpc::Envelope e = From(MakeAddress(node, kRayletSlot));
    rpc::BundlesReply* reply = e.mutable_bundles_reply();
    reply->set_node(node);
    reply->set_error(error);
    if (request.has_prepare_bundles()) {
      reply->set_placement_group_id(request.prepare_bundles().placement_group_id());
      for (const rpc::Bundle& b : request.prepare_bundles().bundles()) {
        rpc::Bundle* out = reply->add_bundles();
        *out = b;
        out->add_pus(b.index());
      }
    } else {
      reply->set_placement_group_id(request.commit_bundles().placement_group_id());
      reply->set_commit(true);
    }
    manager_.Handle(e);
  }

  rpc::Envelope From(const rpc::Address& src) {
    rpc::Envelope e;
    *e.mutable_src() = src;
    *e.mutable_dst() = MakeAddress(kGcsNode, 0);
    return e;
  }
  // Every sent message of this type, removed from the record.
  std::vector<rpc::Envelope> TakeAll(rpc::Envelope::BodyCase type) {
    std::vector<rpc::Envelope> out, rest;
    for (auto& e : sent_) (e.body_case() == type ? out : rest).push_back(e);
    sent_ = rest;
    return out;
  }
  rpc::PlacementGroupInfo TakeInfo(uint64_t request_id) {
    for (auto it = sent_.begin(); it != sent_.end(); ++it) {
      if (it->has_placement_group_info() && it->request_id() == request_id) {
        rpc::PlacementGroupInfo info = it->placement_group_info();
        sent_.erase(it);
        return info;
      }
    }
    ADD_FAILURE() << "no PlacementGroupInfo for request " << request_id;
    return {};
  }
  bool HasInfo(uint64_t request_id) const {
    for (const auto& e : sent_) {
      if (e.has_placement_group_info() && e.request_id() == request_id) return true;
    }
    return false;
  }
  // Prepares and commits everything sent so far successfully.
  void CommitAll() {
    for (const auto& p : TakeAll(rpc::Envelope::kPrepareBundles)) Answer(p.dst().node(), p);
    for (const auto& c : TakeAll(rpc::Envelope::kCommitBundles)) Answer(c.dst().node(), c);
  }

  std::map<int, rpc::NodeInfo> nodes_;
  std::chrono::steady_clock::time_point now_{};
  int views_ = 0;
  std::vector<rpc::Envelope> sent_;
  uint64_t request_ = 0;
  PlacementGroupManager manager_;
};

TEST_F(PlacementGroupManagerTest, TwoPhaseCommitPreparesEveryNodeThenCommits) {
  rpc::PlacementGroupInfo info = Create(Spec("g1", Strategy::STRICT_SPREAD, {1, 1, 1}, "trio"));
  EXPECT_EQ(info.state(), rpc::PlacementGroupInfo::PENDING);
  uint64_t wait = Get("g1", -1);
  auto prepares = TakeAll(rpc::Envelope::kPrepareBundles);
  ASSERT_EQ(prepares.size(), 3u);
  std::set<int> nodes;
  for (const auto& p : prepares) nodes.insert(p.dst().node());
  EXPECT_EQ(nodes.size(), 3u);
  // No commit before every node prepared.
  Answer(prepares[0].dst().node(), prepares[0]);
  Answer(prepares[1].dst().node(), prepares[1]);
  EXPECT_TRUE(TakeAll(rpc::Envelope::kCommitBundles).empty());
  Answer(prepares[2].dst().node(), prepares[2]);
  auto commits = TakeAll(rpc::Envelope::kCommitBundles);
  ASSERT_EQ(commits.size(), 3u);
  EXPECT_FALSE(HasInfo(wait));
  for (const auto& c : commits) Answer(c.dst().node(), c);
  rpc::PlacementGroupInfo ready = TakeInfo(wait);
  EXPECT_EQ(ready.state(), rpc::PlacementGroupInfo::CREATED);
  for (const rpc::Bundle& b : ready.spec().bundles()) {
    EXPECT_GE(b.node(), 0);
    ASSERT_EQ(b.pus_size(), 1);
    // The bundle's named resources are in the node table before the driver hears of it.
    const auto& total = nodes_[b.node()].total().amounts();
    EXPECT_EQ(total.at("CPU_group_" + std::to_string(b.index()) + "_" + GroupHex("g1")), 1);
  }
  EXPECT_GE(views_, 1);
}

TEST_F(PlacementGroupManagerTest, AFailedPrepareCancelsTheOthersAndRetriesLater) {
  Create(Spec("g1", Strategy::STRICT_SPREAD, {1, 1}));
  auto prepares = TakeAll(rpc::Envelope::kPrepareBundles);
  ASSERT_EQ(prepares.size(), 2u);
  Answer(prepares[0].dst().node(), prepares[0]);
  Answer(prepares[1].dst().node(), prepares[1], "the bundles need {CPU: 1}, the node has 0 free");
  EXPECT_TRUE(TakeAll(rpc::Envelope::kCommitBundles).empty());
  auto returns = TakeAll(rpc::Envelope::kReturnBundles);
  ASSERT_EQ(returns.size(), 1u);  // only the node that reserved gives back
  EXPECT_EQ(returns[0].dst().node(), prepares[0].dst().node());
  EXPECT_TRUE(returns[0].return_bundles().prepared_only());
  EXPECT_EQ(manager_.Find("g1")->state(), rpc::PlacementGroupInfo::PENDING);
  // Not in a tight loop: only when resources change.
  manager_.Tick();
  EXPECT_TRUE(TakeAll(rpc::Envelope::kPrepareBundles).empty());
  manager_.OnResourcesChanged();
  manager_.Tick();
  EXPECT_EQ(TakeAll(rpc::Envelope::kPrepareBundles).size(), 2u);
}

TEST_F(PlacementGroupManagerTest, APendingGroupIsPlacedWhenResourcesFreeUp) {
  nodes_[0].mutable_available()->mutable_amounts()->at("CPU") = 0;
  nodes_[1].mutable_available()->mutable_amounts()->at("CPU") = 0;
  nodes_[2].mutable_available()->mutable_amounts()->at("CPU") = 1;
  Create(Spec("g1", Strategy::STRICT_PACK, {1, 1}));
  EXPECT_TRUE(TakeAll(rpc::Envelope::kPrepareBundles).empty());
  uint64_t wait = Get("g1", 50);
  now_ += std::chrono::milliseconds(60);
  manager_.Tick();
  EXPECT_EQ(TakeInfo(wait).state(), rpc::PlacementGroupInfo::PENDING);  // timed out
  nodes_[1].mutable_available()->mutable_amounts()->at("CPU") = 2;
  manager_.OnResourcesChanged();
  manager_.Tick();
  auto prepares = TakeAll(rpc::Envelope::kPrepareBundles);
  ASSERT_EQ(prepares.size(), 1u);
  EXPECT_EQ(prepares[0].dst().node(), 1);
  EXPECT_EQ(prepares[0].prepare_bundles().bundles_size(), 2);
}

TEST_F(PlacementGroupManagerTest, InfeasibleAndMalformedGroupsAreRefused) {
  EXPECT_NE(Create(Spec("g1", Strategy::PACK, {16})).error().find("can never be placed"),
            std::string::npos);
  EXPECT_NE(Create(Spec("g2", Strategy::STRICT_SPREAD, {1, 1, 1, 1})).error().find("STRICT_SPREAD"),
            std::string::npos);
  EXPECT_NE(Create(Spec("g3", Strategy::PACK, {})).error().find("no bundles"), std::string::npos);
  EXPECT_NE(Create(Spec("g4", Strategy::PACK, {0})).error().find("bundle 0 asks for no resources"),
            std::string::npos);
  EXPECT_NE(Create(Spec("g5", Strategy::PACK, {-1})).error().find("must be positive"),
            std::string::npos);
  rpc::PlacementGroupSpec odd = Spec("g6", Strategy::PACK, {1});
  odd.set_strategy(static_cast<Strategy::Strategy>(9));
  EXPECT_NE(Create(odd).error().find("unknown strategy 9"), std::string::npos);
  EXPECT_TRUE(TakeAll(rpc::Envelope::kPrepareBundles).empty());
  EXPECT_EQ(manager_.Find("g1"), nullptr);
  Create(Spec("n1", Strategy::PACK, {1}, "name"));
  EXPECT_NE(Create(Spec("n2", Strategy::PACK, {1}, "name")).error().find("is taken"),
            std::string::npos);
}

TEST_F(PlacementGroupManagerTest, RemovalReturnsBundlesFreesTheNameAndAnswersWaiters) {
  Create(Spec("g1", Strategy::SPREAD, {1, 1}, "pair"));
  CommitAll();
  ASSERT_EQ(manager_.Find("g1")->state(), rpc::PlacementGroupInfo::CREATED);
  rpc::PlacementGroupInfo removed = Remove("g1");
  EXPECT_EQ(removed.state(), rpc::PlacementGroupInfo::REMOVED);
  auto returns = TakeAll(rpc::Envelope::kReturnBundles);
  EXPECT_EQ(returns.size(), 2u);
  for (const auto& r : returns) {
    EXPECT_FALSE(r.return_bundles().prepared_only());
    EXPECT_NE(r.return_bundles().cause().find("placement group 'pair' was removed"),
              std::string::npos);
    for (const auto& [name, amount] : nodes_[r.dst().node()].total().amounts()) {
      EXPECT_FALSE(ParseGroupResource(name).has_value()) << name;
    }
  }
  // The name is free again; the old id answers REMOVED.
  EXPECT_TRUE(Create(Spec("g2", Strategy::PACK, {1}, "pair")).error().empty());
  EXPECT_EQ(TakeInfo(Get("g1", 0)).state(), rpc::PlacementGroupInfo::REMOVED);
}

TEST_F(PlacementGroupManagerTest, RemovalDuringTheCommitReturnsWhatWasReserved) {
  Create(Spec("g1", Strategy::STRICT_SPREAD, {1, 1}));
  uint64_t wait = Get("g1", -1);
  auto prepares = TakeAll(rpc::Envelope::kPrepareBundles);
  Answer(prepares[0].dst().node(), prepares[0]);
  Remove("g1");
  EXPECT_EQ(TakeInfo(wait).state(), rpc::PlacementGroupInfo::REMOVED);
  EXPECT_EQ(TakeAll(rpc::Envelope::kReturnBundles).size(), 2u);  // reserved and in flight
  Answer(prepares[1].dst().node(), prepares[1]);                 // late: ignored
  EXPECT_TRUE(TakeAll(rpc::Envelope::kCommitBundles).empty());
}

TEST_F(PlacementGroupManagerTest, BundlesOfALostNodeArePlacedAgainElsewhere) {
  Create(Spec("g1", Strategy::SPREAD, {1, 1}));
  CommitAll();
  const rpc::PlacementGroupInfo* info = manager_.Find("g1");
  int lost = info->spec().bundles(1).node();
  int kept = info->spec().bundles(0).node();
  nodes_[lost].set_alive(false);
  manager_.OnNodeLost(lost);
  EXPECT_EQ(manager_.Find("g1")->state(), rpc::PlacementGroupInfo::PENDING);
  auto prepares = TakeAll(rpc::Envelope::kPrepareBundles);
  ASSERT_EQ(prepares.size(), 1u);
  ASSERT_EQ(prepares[0].prepare_bundles().bundles_size(), 1);  // only the lost bundle
  EXPECT_EQ(prepares[0].prepare_bundles().bundles(0).index(), 1);
  EXPECT_NE(prepares[0].dst().node(), lost);
  Answer(prepares[0].dst().node(), prepares[0]);
  for (const auto& c : TakeAll(rpc::Envelope::kCommitBundles)) Answer(c.dst().node(), c);
  EXPECT_EQ(manager_.Find("g1")->state(), rpc::PlacementGroupInfo::CREATED);
  EXPECT_EQ(manager_.Find("g1")->spec().bundles(0).node(), kept);
}

}  // namespace
}  // namespace raympi
