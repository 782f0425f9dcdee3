// The raylet's bundles without processes: PU choice (one core, one NUMA domain, sharing when
// PUs run out), prepare / commit / return against the node's resources, and binding and killing
// workers through a fake ProcessControl that records the calls.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/bundle_resources.h"
#include "common/resources.h"
#include "raylet_rank/bundle_manager.h"

namespace raympi {
namespace {

// Records binds and kills; every process "had" PUs {0..7} before.
class FakeProcessControl : public ProcessControl {
 public:
  StatusOr<std::vector<int>> Bind(int pid, const std::vector<int>& pus) override {
    binds.emplace_back(pid, pus);
    return std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7};
  }
  Status Kill(int pid) override {
    kills.push_back(pid);
    return Status::Ok();
  }
  std::vector<std::pair<int, std::vector<int>>> binds;
  std::vector<int> kills;
};

// 2 NUMA domains x 2 cores x 2 hyperthreads: PU i is on core i / 2 and domain i / 4.
std::vector<PuSlot> Machine() {
  std::vector<PuSlot> pus;
  for (int i = 0; i < 8; ++i) pus.push_back(PuSlot{i, i / 2, i / 4});
  return pus;
}

std::vector<int> OsIndices(const std::vector<PuSlot>& pus, const std::vector<size_t>& positions) {
  std::vector<int> out;
  for (size_t p : positions) out.push_back(pus[p].os_index);
  return out;
}

TEST(PickPus, TakesBothThreadsOfOneCoreAndStaysInOneNumaDomain) {
  auto pus = Machine();
  std::vector<int> uses(8, 0);
  EXPECT_EQ(OsIndices(pus, PickPus(pus, uses, 2)), (std::vector<int>{0, 1}));
  uses = {1, 1, 1, 0, 0, 0, 0, 0};  // domain 0 has one free PU left, domain 1 four
  EXPECT_EQ(OsIndices(pus, PickPus(pus, uses, 1)), (std::vector<int>{3}));  // best fit
  EXPECT_EQ(OsIndices(pus, PickPus(pus, uses, 4)), (std::vector<int>{4, 5, 6, 7}));
  EXPECT_EQ(OsIndices(pus, PickPus(pus, uses, 0)), (std::vector<int>{}));
}

TEST(PickPus, SharesTheLeastUsedPusWhenTooFewAreFree) {
  auto pus = Machine();
  std::vector<int> uses = {2, 1, 2, 2, 2, 2, 2, 0};
  EXPECT_EQ(OsIndices(pus, PickPus(pus, uses, 2)), (std::vector<int>{7, 1}));
}

class BundleManagerTest : public ::testing::Test {
 protected:
  BundleManagerTest() : bundles_(Machine(), &control_) {
    (*total_.mutable_amounts())["CPU"] = 8;
    (*total_.mutable_amounts())["memory"] = 1000;
    available_ = total_;
  }
  rpc::PrepareBundles Prepare(const std::string& id, std::vector<double> cpus) {
    rpc::PrepareBundles p;
    p.set_placement_group_id(id);
    for (size_t i = 0; i < cpus.size(); ++i) {
      rpc::Bundle* b = p.add_bundles();
      b->set_index(static_cast<int>(i));
      (*b->mutable_resources()->mutable_amounts())["CPU"] = cpus[i];
    }
    return p;
  }
  double Amount(const rpc::ResourceSet& set, const std::string& name) {
    auto it = set.amounts().find(name);
    return it == set.amounts().end() ? 0 : it->second;
  }

  const std::string id_ = std::string(16, '\x01');
  FakeProcessControl control_;
  BundleManager bundles_;
  rpc::ResourceSet total_, available_;
};

TEST_F(BundleManagerTest, PrepareReservesCommitPublishesReturnGivesBack) {
  std::vector<rpc::Bundle> prepared;
  ASSERT_TRUE(bundles_.Prepare(Prepare(id_, {2, 1}), &available_, &prepared).ok());
  ASSERT_EQ(prepared.size(), 2u);
  EXPECT_EQ(prepared[0].pus_size(), 2);
  EXPECT_EQ(prepared[1].pus_size(), 1);
  EXPECT_EQ(Amount(available_, "CPU"), 5);  // out of the general pool
  EXPECT_EQ(Amount(total_, "CPU"), 8);
  const std::string hex = GroupHex(id_);
  EXPECT_EQ(Amount(total_, "CPU_group_" + hex), 0);  // not usable before the commit
  ASSERT_TRUE(bundles_.Commit(id_, &total_, &available_).ok());
  EXPECT_EQ(Amount(total_, "CPU_group_" + hex), 3);
  EXPECT_EQ(Amount(available_, "CPU_group_0_" + hex), 2);
  EXPECT_EQ(Amount(available_, "CPU_group_1_" + hex), 1);
  rpc::ReturnBundles ret;
  ret.set_placement_group_id(id_);
  EXPECT_TRUE(bundles_.Return(ret, &total_, &available_).empty());
  EXPECT_EQ(Amount(available_, "CPU"), 8);
  for (const auto& [name, amount] : total_.amounts()) EXPECT_FALSE(ParseGroupResource(name));
  EXPECT_EQ(bundles_.NumBundles(), 0u);
}

TEST_F(BundleManagerTest, APrepareThatDoesNotFitReservesNothing) {
  std::vector<rpc::Bundle> prepared;
  Status st = bundles_.Prepare(Prepare(id_, {4, 5}), &available_, &prepared);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("need {CPU: 9}"), std::string::npos) << st.message();
  EXPECT_EQ(Amount(available_, "CPU"), 8);
  EXPECT_EQ(bundles_.NumBundles(), 0u);
  EXPECT_FALSE(bundles_.Commit(id_, &total_, &available_).ok());
}

TEST_F(BundleManagerTest, ACancelledPrepareKeepsCommittedBundles) {
  std::vector<rpc::Bundle> prepared;
  rpc::PrepareBundles first = Prepare(id_, {1});
  ASSERT_TRUE(bundles_.Prepare(first, &available_, &prepared).ok());
  ASSERT_TRUE(bundles_.Commit(id_, &total_, &available_).ok());
  rpc::PrepareBundles second = Prepare(id_, {1, 1});
  second.mutable_bundles()->erase(second.mutable_bundles()->begin());  // bundle 1 only
  ASSERT_TRUE(bundles_.Prepare(second, &available_, &prepared).ok());
  rpc::ReturnBundles cancel;
  cancel.set_placement_group_id(id_);
  cancel.set_prepared_only(true);
  bundles_.Return(cancel, &total_, &available_);
  EXPECT_EQ(bundles_.NumBundles(), 1u);
  EXPECT_EQ(Amount(available_, "CPU"), 7);
  EXPECT_EQ(Amount(total_, "CPU_group_0_" + GroupHex(id_)), 1);
}

TEST_F(BundleManagerTest, ALeaseInABundleIsBoundToItsPusAndUnboundAfter) {
  std::vector<rpc::Bundle> prepared;
  ASSERT_TRUE(bundles_.Prepare(Prepare(id_, {2}), &available_, &prepared).ok());
  ASSERT_TRUE(bundles_.Commit(id_, &total_, &available_).ok());
  bundles_.OnWorkerReady(/*slot=*/3, /*pid=*/4242);
  rpc::ResourceSet cpu;
  (*cpu.mutable_amounts())["CPU"] = 1;
  rpc::ResourceSet request = BundleRequest(cpu, id_, 0);
  bundles_.OnLeaseGranted(/*lease=*/7, /*slot=*/3, request);
  ASSERT_EQ(control_.binds.size(), 1u);
  EXPECT_EQ(control_.binds[0].first, 4242);
  EXPECT_EQ(control_.binds[0].second, bundles_.BundlePus(id_, 0));
  bundles_.OnLeaseEnded(7, /*worker_alive=*/true);
  ASSERT_EQ(control_.binds.size(), 2u);
  EXPECT_EQ(control_.binds[1].second, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
  // A lease outside any bundle is left alone.
  bundles_.OnLeaseGranted(8, 3, cpu);
  EXPECT_EQ(control_.binds.size(), 2u);
}

TEST_F(BundleManagerTest, AnyBundleRequestsGetABundleWithRoom) {
  std::vector<rpc::Bundle> prepared;
  ASSERT_TRUE(bundles_.Prepare(Prepare(id_, {1, 1}), &available_, &prepared).ok());
  ASSERT_TRUE(bundles_.Commit(id_, &total_, &available_).ok());
  rpc::ResourceSet cpu;
  (*cpu.mutable_amounts())["CPU"] = 1;
  rpc::ResourceSet any = BundleRequest(cpu, id_, -1);
  const std::string hex = GroupHex(id_);
  (*available_.mutable_amounts())["CPU_group_0_" + hex] = 0;  // bundle 0 is busy
  ASSERT_TRUE(bundles_.ResolveAnyBundle(&any, available_));
  EXPECT_EQ(Amount(any, "CPU_group_1_" + hex), 1);
  (*available_.mutable_amounts())["CPU_group_1_" + hex] = 0;
  rpc::ResourceSet none = BundleRequest(cpu, id_, -1);
  EXPECT_FALSE(bundles_.ResolveAnyBundle(&none, available_));
}

TEST_F(BundleManagerTest, RemovalKillsTheWorkersOfTheGroupWithACause) {
  std::vector<rpc::Bundle> prepared;
  ASSERT_TRUE(bundles_.Prepare(Prepare(id_, {1}), &available_, &prepared).ok());
  ASSERT_TRUE(bundles_.Commit(id_, &total_, &available_).ok());
  bundles_.OnWorkerReady(2, 1001);
  bundles_.OnWorkerReady(3, 1002);
  rpc::ResourceSet cpu;
  (*cpu.mutable_amounts())["CPU"] = 1;
  bundles_.OnLeaseGranted(11, 2, BundleRequest(cpu, id_, 0));
  bundles_.OnLeaseGranted(12, 3, cpu);  // not in the group
  rpc::ReturnBundles ret;
  ret.set_placement_group_id(id_);
  ret.set_cause("placement group 'g' was removed");
  EXPECT_EQ(bundles_.Return(ret, &total_, &available_), (std::vector<uint64_t>{11}));
  EXPECT_EQ(control_.kills, (std::vector<int>{1001}));
  EXPECT_TRUE(bundles_.IsBeingKilled(2));  // its lease, if returned, must not free it
  EXPECT_FALSE(bundles_.IsBeingKilled(3));
  EXPECT_EQ(bundles_.TakeKillCause(2), "placement group 'g' was removed");
  EXPECT_FALSE(bundles_.IsBeingKilled(2));
  EXPECT_EQ(bundles_.TakeKillCause(3), "");
}

TEST(BundleResources, NamesRoundTrip) {
  const std::string id(16, '\xab');
  rpc::ResourceSet cpu;
  (*cpu.mutable_amounts())["CPU"] = 2;
  rpc::ResourceSet named = BundleRequest(cpu, id, 3);
  auto parsed = ParseGroupResource("CPU_group_3_" + GroupHex(id));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->base, "CPU");
  EXPECT_EQ(parsed->index, 3);
  EXPECT_EQ(parsed->group_hex, GroupHex(id));
  EXPECT_EQ(named.amounts().at("CPU_group_" + GroupHex(id)), 2);
  EXPECT_FALSE(ParseGroupResource("my_group_ab"));  // a user's resource, not a group's
  EXPECT_FALSE(ParseGroupResource("CPU"));
}

}  // namespace
}  // namespace raympi
