// NodeManager (the raylet's lease scheduling) driven by envelopes, with a launcher that only
// records what it was asked to start and a send function that records what the raylet sends.
#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/frame.h"
#include "raylet_rank/node_manager.h"
#include "raylet_rank/worker_launcher.h"
#include "raylet_rank/worker_pool.h"

namespace raympi {
namespace {

constexpr int kMaxSlots = 32;

class FakeLauncher : public WorkerLauncher {
 public:
  Status Launch(const LaunchRequest& request) override {
    launches.push_back(request);
    return Status::Ok();
  }
  void ReleaseAll() override { ++release_all_calls; }

  int WorkersLaunched() const {
    int n = 0;
    for (const LaunchRequest& r : launches) n += r.num_workers;
    return n;
  }

  std::vector<LaunchRequest> launches;
  int release_all_calls = 0;
};

double Cpu(const rpc::ResourceSet& set) {
  auto it = set.amounts().find("CPU");
  return it == set.amounts().end() ? -12345 : it->second;
}

rpc::ResourceSet Cpus(double n) {
  rpc::ResourceSet set;
  (*set.mutable_amounts())["CPU"] = n;
  return set;
}

rpc::NodeInfo NodeEntry(int node, double total_cpus, double available_cpus, bool alive = true) {
  rpc::NodeInfo info;
  info.set_node(node);
  info.set_host("host" + std::to_string(node));
  *info.mutable_total() = Cpus(total_cpus);
  *info.mutable_available() = Cpus(available_cpus);
  info.set_alive(alive);
  return info;
}

// One raylet with its pool, a fake launcher and a record of everything it sent.
class Raylet {
 public:
  Raylet(int node, double cpus, int initial_workers, bool is_head, int own_stall_ms = 0)
      : node_(node), pool_(&launcher, Base(node), is_head ? 2 : 1, kMaxSlots) {
    NodeManagerConfig config;
    config.node = node;
    config.rank = 10 + node;
    config.resources.host = "testhost";
    config.resources.num_cpus = cpus;
    config.resources.memory_bytes = 0;
    config.is_head = is_head;
    config.initial_workers = initial_workers;
    config.now = [this] { return clock; };  // time moves only when a test moves it
    // Clock jumps are not this rank's stalls, unless a test says so.
    config.own_stall = own_stall_ms > 0 ? std::chrono::milliseconds(own_stall_ms)
                                        : std::chrono::milliseconds(std::chrono::hours(24));
    nm = std::make_unique<NodeManager>(config, &pool_,
                                       [this](const rpc::Envelope& e) { sent.push_back(e); });
  }

  std::chrono::steady_clock::time_point clock{std::chrono::hours(1)};

  static LaunchRequest Base(int node) {
    LaunchRequest base;
    base.program = "/bin/app";
    base.driver_args = {"--flag"};
    base.bus_name = "/raympi-test-bus";
    base.node = node;
    return base;
  }

  // Start, then drop the registration from the record.
  void StartAndClear() {
    Status st = nm->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    sent.clear();
  }

  rpc::Envelope To(rpc::Address src) const {
    rpc::Envelope e;
    *e.mutable_src() = src;
    *e.mutable_dst() = MakeAddress(node_, kRayletSlot);
    return e;
  }
  void Ready(int slot) {
    rpc::Envelope e = To(MakeAddress(node_, slot));
    e.mutable_worker_ready()->set_pid(1000 + slot);
    nm->Handle(e);
  }
  void Request(rpc::Address owner, uint64_t id, double cpus, bool spilled = false) {
    rpc::Envelope e = To(owner);
    e.mutable_request_lease()->set_lease_request_id(id);
    *e.mutable_request_lease()->mutable_resources() = Cpus(cpus);
    e.mutable_request_lease()->set_spilled(spilled);
    nm->Handle(e);
  }
  void Return(rpc::Address owner, uint64_t lease_id) {
    rpc::Envelope e = To(owner);
    e.mutable_return_lease()->set_lease_id(lease_id);
    nm->Handle(e);
  }
  void Blocked(int slot, bool blocked) {
    rpc::Envelope e = To(MakeAddress(node_, slot));
    e.mutable_worker_blocked()->set_blocked(blocked);
    nm->Handle(e);
  }
  void Cancel(rpc::Address owner, uint64_t id) {
    rpc::Envelope e = To(owner);
    e.mutable_cancel_lease_request()->set_lease_request_id(id);
    nm->Handle(e);
  }
  void View(const std::vector<rpc::NodeInfo>& nodes) {
    rpc::Envelope e = To(MakeAddress(kGcsNode, 0));
    for (const rpc::NodeInfo& n : nodes) *e.mutable_cluster_view()->add_nodes() = n;
    nm->Handle(e);
  }
  void Stats(int slot, uint64_t tasks, double busy_seconds) {
    rpc::Envelope e = To(MakeAddress(node_, slot));
    e.mutable_worker_stats()->set_tasks(tasks);
    e.mutable_worker_stats()->set_busy_seconds(busy_seconds);
    e.mutable_worker_stats()->set_first_start(100 + slot);
    e.mutable_worker_stats()->set_last_end(200 + slot);
    nm->Handle(e);
  }
  void Shutdown(int code) {
    rpc::Envelope e = To(MakeAddress(kGcsNode, 0));
    e.mutable_shutdown()->set_exit_code(code);
    nm->Handle(e);
  }

  std::vector<rpc::Envelope> Take() {
    std::vector<rpc::Envelope> out;
    out.swap(sent);
    return out;
  }
  // Everything sent since the last Take, which must all be lease replies.
  std::vector<rpc::Envelope> TakeReplies() {
    std::vector<rpc::Envelope> out = Take();
    for (const rpc::Envelope& e : out) {
      EXPECT_TRUE(e.has_lease_reply()) << e.DebugString();
      EXPECT_EQ(e.src().node(), node_);
      EXPECT_EQ(e.src().slot(), kRayletSlot);
    }
    return out;
  }
  // Expects exactly one grant, to `owner` for request `id`; returns its lease id.
  uint64_t ExpectGrant(rpc::Address owner, uint64_t id, int* worker_slot = nullptr) {
    std::vector<rpc::Envelope> replies = TakeReplies();
    EXPECT_EQ(replies.size(), 1u) << "expected one grant for request " << id;
    if (replies.size() != 1) return 0;
    const rpc::Envelope& e = replies[0];
    EXPECT_EQ(e.dst().node(), owner.node());
    EXPECT_EQ(e.dst().slot(), owner.slot());
    EXPECT_EQ(e.lease_reply().lease_request_id(), id);
    EXPECT_TRUE(e.lease_reply().has_worker()) << e.DebugString();
    EXPECT_EQ(e.lease_reply().worker().node(), node_);
    EXPECT_TRUE(pool_.IsWorker(e.lease_reply().worker().slot()));
    EXPECT_NE(e.lease_reply().lease_id(), 0u);
    if (worker_slot) *worker_slot = e.lease_reply().worker().slot();
    return e.lease_reply().lease_id();
  }
  void ExpectNothingSent() {
    std::vector<rpc::Envelope> out = Take();
    EXPECT_TRUE(out.empty()) << out.size()
                             << " unexpected messages, first: " << out.front().DebugString();
  }

  FakeLauncher launcher;
  std::vector<rpc::Envelope> sent;

 private:
  int node_;
  WorkerPool pool_;

 public:
  std::unique_ptr<NodeManager> nm;  // declared last: it uses the pool
};

const rpc::Address kDriver = MakeAddress(0, 1);

// ---- start ------------------------------------------------------------------------------------

TEST(NodeManagerTest, StartOnHeadRegistersAndLaunchesDriverAndPool) {
  Raylet r(/*node=*/0, /*cpus=*/2, /*initial_workers=*/2, /*is_head=*/true);
  EXPECT_TRUE(r.sent.empty()) << "sent before Start";
  EXPECT_TRUE(r.launcher.launches.empty()) << "launched before Start";
  ASSERT_TRUE(r.nm->Start().ok());

  ASSERT_EQ(r.sent.size(), 1u);
  const rpc::Envelope& reg = r.sent[0];
  ASSERT_TRUE(reg.has_register_node()) << reg.DebugString();
  EXPECT_EQ(reg.dst().node(), kGcsNode);
  EXPECT_EQ(reg.src().node(), 0);
  EXPECT_EQ(reg.src().slot(), kRayletSlot);
  const rpc::NodeInfo& info = reg.register_node().info();
  EXPECT_EQ(info.node(), 0);
  EXPECT_EQ(info.rank(), 10);
  EXPECT_EQ(info.host(), "testhost");
  EXPECT_DOUBLE_EQ(Cpu(info.total()), 2);
  EXPECT_DOUBLE_EQ(Cpu(info.available()), 2);

  ASSERT_EQ(r.launcher.launches.size(), 1u);
  const LaunchRequest& launch = r.launcher.launches[0];
  EXPECT_TRUE(launch.with_driver);
  EXPECT_EQ(launch.driver_slot, 1);
  EXPECT_EQ(launch.num_workers, 2);
  EXPECT_EQ(launch.first_worker_slot, 2);
  EXPECT_EQ(launch.program, "/bin/app");
  EXPECT_EQ(launch.driver_args, std::vector<std::string>{"--flag"});
  EXPECT_EQ(launch.node, 0);
  EXPECT_FALSE(r.nm->done());
}

TEST(NodeManagerTest, StartOnOtherNodeLaunchesWorkersOnly) {
  Raylet r(/*node=*/3, /*cpus=*/4, /*initial_workers=*/3, /*is_head=*/false);
  ASSERT_TRUE(r.nm->Start().ok());
  ASSERT_EQ(r.sent.size(), 1u);
  EXPECT_TRUE(r.sent[0].has_register_node());
  EXPECT_EQ(r.sent[0].dst().node(), kGcsNode);
  EXPECT_EQ(r.sent[0].src().node(), 3);
  EXPECT_EQ(r.sent[0].register_node().info().node(), 3);
  EXPECT_DOUBLE_EQ(Cpu(r.sent[0].register_node().info().total()), 4);
  ASSERT_EQ(r.launcher.launches.size(), 1u);
  EXPECT_FALSE(r.launcher.launches[0].with_driver);
  EXPECT_EQ(r.launcher.launches[0].num_workers, 3);
  EXPECT_EQ(r.launcher.launches[0].first_worker_slot, 1);
  EXPECT_EQ(r.launcher.launches[0].node, 3);
}

// ---- granting ---------------------------------------------------------------------------------

TEST(NodeManagerTest, LeaseWaitsForAReadyWorker) {
  Raylet r(0, 2, 2, true);
  r.StartAndClear();
  r.Request(kDriver, 1, 1);
  r.ExpectNothingSent();
  EXPECT_EQ(r.launcher.launches.size(), 1u) << "workers are already starting";
  r.Ready(2);
  int slot = 0;
  r.ExpectGrant(kDriver, 1, &slot);
  EXPECT_EQ(slot, 2);
}

TEST(NodeManagerTest, ReadyWorkerAloneGrantsNothing) {
  Raylet r(0, 2, 2, true);
  r.StartAndClear();
  r.Ready(2);
  r.Ready(3);
  r.Ready(1);  // the driver: not a worker
  r.ExpectNothingSent();
  // Requests are granted at once now.
  r.Request(kDriver, 1, 1);
  r.ExpectGrant(kDriver, 1);
}

TEST(NodeManagerTest, NoMoreLeasesThanCpus) {
  Raylet r(0, 2, 4, true);
  r.StartAndClear();
  for (int slot = 2; slot < 6; ++slot) r.Ready(slot);
  r.ExpectNothingSent();
  for (uint64_t id = 1; id <= 4; ++id) r.Request(kDriver, id, 1);
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  ASSERT_EQ(replies.size(), 2u);
  std::set<int> workers;
  std::set<uint64_t> lease_ids;
  for (const rpc::Envelope& e : replies) {
    EXPECT_TRUE(e.lease_reply().has_worker());
    workers.insert(e.lease_reply().worker().slot());
    lease_ids.insert(e.lease_reply().lease_id());
  }
  EXPECT_EQ(workers.size(), 2u) << "two leases on one worker";
  EXPECT_EQ(lease_ids.size(), 2u) << "two leases with one id";
  EXPECT_EQ(replies[0].lease_reply().lease_request_id(), 1u);
  EXPECT_EQ(replies[1].lease_reply().lease_request_id(), 2u);
  EXPECT_EQ(r.launcher.launches.size(), 1u) << "started workers although no CPU is free";
}

TEST(NodeManagerTest, RequestForTwoCpusTakesTwo) {
  Raylet r(0, 3, 3, true);
  r.StartAndClear();
  for (int slot = 2; slot < 5; ++slot) r.Ready(slot);
  r.Request(kDriver, 1, 2);
  r.ExpectGrant(kDriver, 1);
  r.Request(kDriver, 2, 2);
  r.ExpectNothingSent();
  r.Request(kDriver, 3, 1);  // a smaller request behind it still fits
  r.ExpectGrant(kDriver, 3);
}

TEST(NodeManagerTest, ReturnLeaseFreesTheCpuAndGrantsTheNextQueuedRequest) {
  Raylet r(0, 2, 4, true);
  r.StartAndClear();
  for (int slot = 2; slot < 6; ++slot) r.Ready(slot);
  uint64_t first = 0, second = 0;
  r.Request(kDriver, 1, 1);
  first = r.ExpectGrant(kDriver, 1);
  r.Request(kDriver, 2, 1);
  second = r.ExpectGrant(kDriver, 2);
  r.Request(kDriver, 3, 1);
  r.Request(kDriver, 4, 1);
  r.ExpectNothingSent();

  r.Return(kDriver, first);
  uint64_t third = r.ExpectGrant(kDriver, 3);
  EXPECT_NE(third, first);
  EXPECT_NE(third, second);

  // An unknown lease, or one already returned, frees nothing.
  r.Return(kDriver, 999);
  r.Return(kDriver, first);
  r.ExpectNothingSent();

  r.Return(kDriver, second);
  r.ExpectGrant(kDriver, 4);
}

TEST(NodeManagerTest, ReturnedWorkerIsReused) {
  Raylet r(1, 1, 1, false);
  r.StartAndClear();
  r.Ready(1);
  rpc::Address owner = MakeAddress(0, 1);
  int slot = 0;
  uint64_t lease = 0;
  for (uint64_t id = 1; id <= 5; ++id) {
    r.Request(owner, id, 1);
    lease = r.ExpectGrant(owner, id, &slot);
    EXPECT_EQ(slot, 1);
    r.Return(owner, lease);
    r.ExpectNothingSent();
  }
  EXPECT_EQ(r.launcher.WorkersLaunched(), 1);
}

TEST(NodeManagerTest, StartsOnlyAsManyWorkersAsTheFreeCpusCanKeepBusy) {
  Raylet r(1, 2, /*initial_workers=*/0, false);
  r.StartAndClear();
  EXPECT_EQ(r.launcher.WorkersLaunched(), 0);
  rpc::Address owner = MakeAddress(0, 1);
  for (uint64_t id = 1; id <= 5; ++id) r.Request(owner, id, 1);
  r.ExpectNothingSent();
  EXPECT_EQ(r.launcher.WorkersLaunched(), 2);
  // The new workers take consecutive slots from 1.
  std::set<int> slots;
  for (const LaunchRequest& l : r.launcher.launches) {
    for (int i = 0; i < l.num_workers; ++i) slots.insert(l.first_worker_slot + i);
  }
  EXPECT_EQ(slots, (std::set<int>{1, 2}));
  r.Ready(1);
  r.ExpectGrant(owner, 1);
  r.Ready(2);
  r.ExpectGrant(owner, 2);
  EXPECT_EQ(r.launcher.WorkersLaunched(), 2);
}

// ---- workers blocked in Get -------------------------------------------------------------------

TEST(NodeManagerTest, BlockedWorkerLendsItsCpuToAnIdleWorker) {
  Raylet r(0, 1, 2, true);
  r.StartAndClear();
  r.Ready(2);
  r.Ready(3);
  int slot1 = 0, slot2 = 0;
  r.Request(kDriver, 1, 1);
  uint64_t lease1 = r.ExpectGrant(kDriver, 1, &slot1);
  r.Request(kDriver, 2, 1);
  r.ExpectNothingSent();

  r.Blocked(slot1, true);
  uint64_t lease2 = r.ExpectGrant(kDriver, 2, &slot2);
  EXPECT_NE(slot2, slot1);
  EXPECT_EQ(r.launcher.launches.size(), 1u) << "an idle worker was there";

  // Running again: the node is over-committed until a lease ends.
  r.Blocked(slot1, false);
  r.ExpectNothingSent();
  r.Return(kDriver, lease2);
  r.Request(kDriver, 3, 1);
  r.ExpectNothingSent();
  r.Return(kDriver, lease1);
  r.ExpectGrant(kDriver, 3);
}

TEST(NodeManagerTest, BlockedWorkerStartsANewWorkerWhenNoneIsIdle) {
  Raylet r(0, 1, 1, true);
  r.StartAndClear();
  r.Ready(2);
  r.Request(kDriver, 1, 1);
  r.ExpectGrant(kDriver, 1);
  r.Request(kDriver, 2, 1);
  r.ExpectNothingSent();
  ASSERT_EQ(r.launcher.launches.size(), 1u);

  r.Blocked(2, true);
  r.ExpectNothingSent();  // no worker to grant yet
  ASSERT_EQ(r.launcher.launches.size(), 2u);
  EXPECT_FALSE(r.launcher.launches[1].with_driver);
  EXPECT_EQ(r.launcher.launches[1].num_workers, 1);
  EXPECT_EQ(r.launcher.launches[1].first_worker_slot, 3);

  // The same news twice lends nothing more and starts nothing more.
  r.Blocked(2, true);
  r.ExpectNothingSent();
  EXPECT_EQ(r.launcher.launches.size(), 2u);

  r.Ready(3);
  int slot = 0;
  r.ExpectGrant(kDriver, 2, &slot);
  EXPECT_EQ(slot, 3);
}

TEST(NodeManagerTest, ReturnOfABlockedWorkersLeaseDoesNotFreeItsCpuTwice) {
  Raylet r(1, 1, 2, false);
  r.StartAndClear();
  r.Ready(1);
  r.Ready(2);
  rpc::Address owner = MakeAddress(0, 1);
  int slot1 = 0;
  r.Request(owner, 1, 1);
  uint64_t lease1 = r.ExpectGrant(owner, 1, &slot1);
  r.Blocked(slot1, true);
  r.Request(owner, 2, 1);
  r.ExpectGrant(owner, 2);  // the lent CPU
  r.Return(owner, lease1);  // the blocked lease ends: its CPU is already lent out
  r.Request(owner, 3, 1);
  r.ExpectNothingSent();
}

// ---- requests that cannot run here ------------------------------------------------------------

TEST(NodeManagerTest, InfeasibleRequestIsAnsweredAtOnceAndNamesTheRequest) {
  Raylet r(0, 2, 2, true);
  r.StartAndClear();
  r.View({NodeEntry(0, 2, 2), NodeEntry(1, 8, 8)});
  r.Request(kDriver, 9, 1000);
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  ASSERT_EQ(replies.size(), 1u);
  const rpc::LeaseReply& reply = replies[0].lease_reply();
  EXPECT_EQ(reply.lease_request_id(), 9u);
  EXPECT_EQ(replies[0].dst().node(), kDriver.node());
  EXPECT_EQ(replies[0].dst().slot(), kDriver.slot());
  ASSERT_TRUE(reply.has_infeasible()) << reply.DebugString();
  EXPECT_NE(reply.infeasible().find("{CPU: 1000}"), std::string::npos) << reply.infeasible();
  EXPECT_NE(reply.infeasible().find("node 0 has {CPU: 2"), std::string::npos) << reply.infeasible();
  EXPECT_NE(reply.infeasible().find("node 1 has {CPU: 8"), std::string::npos) << reply.infeasible();
  // It was not queued: free workers do not pick it up.
  r.Ready(2);
  r.Ready(3);
  r.ExpectNothingSent();
  EXPECT_EQ(r.launcher.launches.size(), 1u);
}

TEST(NodeManagerTest, RequestLargerThanThisNodeSpillsToANodeWhereItFits) {
  Raylet r(0, 2, 2, true);
  r.StartAndClear();
  r.View({NodeEntry(0, 2, 2), NodeEntry(1, 1, 1), NodeEntry(2, 8, 8)});
  r.Request(kDriver, 5, 4);
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].lease_reply().lease_request_id(), 5u);
  ASSERT_TRUE(replies[0].lease_reply().has_spillback_node()) << replies[0].DebugString();
  EXPECT_EQ(replies[0].lease_reply().spillback_node(), 2);
}

TEST(NodeManagerTest, DeadNodesAreNotSpillTargets) {
  Raylet r(0, 2, 2, true);
  r.StartAndClear();
  r.View({NodeEntry(0, 2, 2), NodeEntry(1, 8, 8, /*alive=*/false)});
  r.Request(kDriver, 5, 4);
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].lease_reply().has_infeasible()) << replies[0].DebugString();
}

TEST(NodeManagerTest, BusyNodeSpillsToAFreeNode) {
  Raylet r(0, 1, 1, true);
  r.StartAndClear();
  r.Ready(2);
  r.Request(kDriver, 1, 1);
  r.ExpectGrant(kDriver, 1);
  r.View({NodeEntry(0, 1, 0), NodeEntry(1, 4, 0), NodeEntry(2, 4, 3)});
  r.Request(kDriver, 2, 1);
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].lease_reply().lease_request_id(), 2u);
  ASSERT_TRUE(replies[0].lease_reply().has_spillback_node()) << replies[0].DebugString();
  EXPECT_EQ(replies[0].lease_reply().spillback_node(), 2);
}

TEST(NodeManagerTest, BurstOfRequestsSpreadsOverTheFreeNodes) {
  Raylet r(0, 1, 1, true);
  r.StartAndClear();
  r.Ready(2);
  r.Request(kDriver, 1, 1);
  r.ExpectGrant(kDriver, 1);
  // Node 1 has 2 free CPUs, node 2 one, node 3 none.
  r.View({NodeEntry(0, 1, 0), NodeEntry(1, 2, 2), NodeEntry(2, 2, 1), NodeEntry(3, 2, 0)});
  for (uint64_t id = 2; id <= 6; ++id) r.Request(kDriver, id, 1);
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  std::map<int, int> spilled_to;
  for (const rpc::Envelope& e : replies) {
    ASSERT_TRUE(e.lease_reply().has_spillback_node()) << e.DebugString();
    ++spilled_to[e.lease_reply().spillback_node()];
  }
  // Three free CPUs elsewhere: three requests spill, each to a node with room; the rest wait.
  EXPECT_EQ(replies.size(), 3u);
  EXPECT_EQ(spilled_to[1], 2);
  EXPECT_EQ(spilled_to[2], 1);
  EXPECT_EQ(spilled_to.count(3), 0u);
  // The two left are queued here: a returned lease grants the first of them.
  r.Return(kDriver, 1);
  std::vector<rpc::Envelope> granted = r.TakeReplies();
  ASSERT_EQ(granted.size(), 1u);
  EXPECT_TRUE(granted[0].lease_reply().has_worker());
}

TEST(NodeManagerTest, SpilledRequestThatDoesNotFitIsRejectedNeverQueued) {
  Raylet r(1, 1, 1, false);
  r.StartAndClear();
  r.Ready(1);
  rpc::Address local = MakeAddress(1, 5);
  r.Request(local, 1, 1);
  uint64_t lease = r.ExpectGrant(local, 1);
  // Another node is free, but a spilled request is never spilled again.
  r.View({NodeEntry(0, 4, 4), NodeEntry(1, 1, 0), NodeEntry(2, 4, 4)});
  r.Request(kDriver, 7, 1, /*spilled=*/true);
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].dst().node(), kDriver.node());
  EXPECT_EQ(replies[0].dst().slot(), kDriver.slot());
  EXPECT_EQ(replies[0].lease_reply().lease_request_id(), 7u);
  EXPECT_TRUE(replies[0].lease_reply().has_rejected()) << replies[0].DebugString();
  EXPECT_TRUE(replies[0].lease_reply().rejected());
  // Not queued: freeing the CPU grants nothing, and a new view spills nothing.
  r.Return(local, lease);
  r.View({NodeEntry(0, 4, 4), NodeEntry(1, 1, 1), NodeEntry(2, 4, 4)});
  r.ExpectNothingSent();
}

TEST(NodeManagerTest, SpilledRequestThatFitsIsGranted) {
  Raylet r(1, 1, 1, false);
  r.StartAndClear();
  r.Ready(1);
  r.Request(kDriver, 7, 1, /*spilled=*/true);
  int slot = 0;
  r.ExpectGrant(kDriver, 7, &slot);
  EXPECT_EQ(slot, 1);
}

// design.md: "A spilled request is grant-or-reject at its target ... A request therefore never
// queues on a node that did not choose it." Here the node's only CPU is already promised to a
// local request that waits for its worker to start, so the node is busy for the spilled one.
TEST(NodeManagerTest, SpilledRequestIsRejectedWhenTheFreeCpuIsPromisedToAQueuedRequest) {
  Raylet r(1, 1, 1, false);
  r.StartAndClear();
  rpc::Address local = MakeAddress(1, 5);
  r.Request(local, 1, 1);  // queued: its worker is still starting
  r.ExpectNothingSent();
  r.Request(kDriver, 7, 1, /*spilled=*/true);
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  ASSERT_EQ(replies.size(), 1u) << "the spilled request was queued behind a local one";
  EXPECT_EQ(replies[0].lease_reply().lease_request_id(), 7u);
  EXPECT_TRUE(replies[0].lease_reply().has_rejected()) << replies[0].DebugString();
  r.Ready(1);
  r.ExpectGrant(local, 1);
}

TEST(NodeManagerTest, QueuedRequestSpillsWhenANewViewShowsAnotherNodeFree) {
  Raylet r(0, 1, 1, true);
  r.StartAndClear();
  r.Ready(2);
  r.Request(kDriver, 1, 1);
  uint64_t lease = r.ExpectGrant(kDriver, 1);
  r.View({NodeEntry(0, 1, 0), NodeEntry(1, 2, 0)});
  r.Request(kDriver, 2, 1);
  r.Request(kDriver, 3, 1);
  r.ExpectNothingSent();  // every node busy: queued here

  r.View({NodeEntry(0, 1, 0), NodeEntry(1, 2, 1)});
  std::vector<rpc::Envelope> replies = r.TakeReplies();
  ASSERT_EQ(replies.size(), 1u) << "one free CPU elsewhere takes one request";
  EXPECT_EQ(replies[0].lease_reply().lease_request_id(), 2u);
  ASSERT_TRUE(replies[0].lease_reply().has_spillback_node()) << replies[0].DebugString();
  EXPECT_EQ(replies[0].lease_reply().spillback_node(), 1);

  // Request 2 left the queue; request 3 is next here.
  r.Return(kDriver, lease);
  r.ExpectGrant(kDriver, 3);
}

TEST(NodeManagerTest, ViewWithoutRoomElsewhereSpillsNothing) {
  Raylet r(0, 1, 1, true);
  r.StartAndClear();
  r.Ready(2);
  r.Request(kDriver, 1, 1);
  r.ExpectGrant(kDriver, 1);
  r.Request(kDriver, 2, 1);
  r.View({NodeEntry(0, 1, 1), NodeEntry(1, 2, 0), NodeEntry(2, 1, 0.5)});
  r.ExpectNothingSent();
}

// The whole spill protocol with two raylets and an owner that behaves like CoreWorker: on
// `spillback_node` it asks that node with spilled=true, on `rejected` it asks its home raylet
// again. A request too big for the home node while the only node that can run it is busy must
// settle somewhere until that node frees up, not circle between the two raylets.
TEST(NodeManagerTest, RequestThatFitsOnlyABusyNodeDoesNotBounceBetweenRaylets) {
  Raylet home(0, 2, 2, true);
  Raylet big(1, 4, 1, false);
  home.StartAndClear();
  big.StartAndClear();
  home.Ready(2);
  home.Ready(3);
  big.Ready(1);
  rpc::Address other_owner = MakeAddress(1, 9);
  big.Request(other_owner, 1, 4);
  uint64_t big_lease = big.ExpectGrant(other_owner, 1);
  std::vector<rpc::NodeInfo> view = {NodeEntry(0, 2, 2), NodeEntry(1, 4, 0)};
  home.View(view);
  big.View(view);

  std::map<int, Raylet*> raylets = {{0, &home}, {1, &big}};
  std::vector<rpc::LeaseReply> granted, failed;
  // Delivers the raylets' messages for the owner until none is left, or gives up after
  // `max_hops` deliveries; returns the number of deliveries.
  auto run = [&](int max_hops) {
    int hops = 0;
    std::deque<rpc::Envelope> in_flight;
    for (auto& [node, raylet] : raylets) {
      for (rpc::Envelope& e : raylet->Take()) in_flight.push_back(e);
    }
    while (!in_flight.empty() && hops < max_hops) {
      rpc::Envelope e = in_flight.front();
      in_flight.pop_front();
      ++hops;
      if (!e.has_lease_reply()) continue;
      EXPECT_EQ(e.dst().node(), kDriver.node());
      EXPECT_EQ(e.dst().slot(), kDriver.slot());
      const rpc::LeaseReply& reply = e.lease_reply();
      if (reply.has_spillback_node()) {
        Raylet* target = raylets.at(reply.spillback_node());
        target->Request(kDriver, reply.lease_request_id(), 4, /*spilled=*/true);
      } else if (reply.has_rejected()) {
        home.Request(kDriver, reply.lease_request_id(), 4);
      } else if (reply.has_worker()) {
        granted.push_back(reply);
      } else {
        failed.push_back(reply);
      }
      for (auto& [node, raylet] : raylets) {
        for (rpc::Envelope& out : raylet->Take()) in_flight.push_back(out);
      }
    }
    return hops;
  };

  home.Request(kDriver, 42, 4);
  int hops = run(50);
  EXPECT_LT(hops, 50) << "the request circled between node 0 and node 1 while node 1 was busy";
  EXPECT_TRUE(granted.empty());
  EXPECT_TRUE(failed.empty()) << "a request node 1 can run later was failed";

  // Node 1 frees up and says so: the request ends up granted there.
  big.Return(other_owner, big_lease);
  std::vector<rpc::NodeInfo> free_view = {NodeEntry(0, 2, 2), NodeEntry(1, 4, 4)};
  home.View(free_view);
  big.View(free_view);
  run(50);
  ASSERT_EQ(granted.size(), 1u);
  EXPECT_EQ(granted[0].lease_request_id(), 42u);
  EXPECT_EQ(granted[0].worker().node(), 1);
}

// ---- cancel, shutdown, reports, forwarding ------------------------------------------------

TEST(NodeManagerTest, CancelLeaseRequestRemovesTheOwnersQueuedRequest) {
  Raylet r(0, 1, 1, true);
  r.StartAndClear();
  r.Ready(2);
  rpc::Address a = MakeAddress(0, 1), b = MakeAddress(0, 7), c = MakeAddress(1, 3);
  r.Request(a, 1, 1);
  uint64_t lease = r.ExpectGrant(a, 1);
  r.Request(b, 2, 1);
  r.Request(c, 2, 1);  // same request id, another owner
  r.ExpectNothingSent();

  r.Cancel(a, 2);   // not a's request: nothing happens
  r.Cancel(b, 99);  // unknown id: nothing happens
  r.Cancel(b, 2);
  r.ExpectNothingSent();

  r.Return(a, lease);
  r.ExpectGrant(c, 2);  // b's request is gone, c's is next
}

TEST(NodeManagerTest, CancelledRequestStartsNoWorker) {
  Raylet r(1, 2, 0, false);
  r.StartAndClear();
  rpc::Address owner = MakeAddress(0, 1);
  r.Request(owner, 1, 1);
  ASSERT_EQ(r.launcher.WorkersLaunched(), 1);
  r.Cancel(owner, 1);
  r.Ready(1);
  r.ExpectNothingSent();
}

TEST(NodeManagerTest, ShutdownStopsEveryStartedProcess) {
  Raylet r(0, 2, 2, true);
  r.StartAndClear();
  r.Ready(2);  // slot 3 is still starting: it is told too
  r.Request(kDriver, 1, 1);
  r.ExpectGrant(kDriver, 1);
  EXPECT_FALSE(r.nm->done());

  r.Shutdown(3);
  std::vector<rpc::Envelope> out = r.Take();
  std::set<int> slots;
  for (const rpc::Envelope& e : out) {
    ASSERT_TRUE(e.has_shutdown()) << e.DebugString();
    EXPECT_EQ(e.shutdown().exit_code(), 3);
    EXPECT_EQ(e.dst().node(), 0);
    EXPECT_EQ(e.src().node(), 0);
    EXPECT_EQ(e.src().slot(), kRayletSlot);
    slots.insert(e.dst().slot());
  }
  EXPECT_EQ(out.size(), 3u) << "one Shutdown per process";
  EXPECT_EQ(slots, (std::set<int>{1, 2, 3}));
  // Done only once every worker (not the driver) reported what it ran.
  EXPECT_FALSE(r.nm->done());
  r.Stats(2, 5, 0.5);
  EXPECT_FALSE(r.nm->done());
  r.ExpectNothingSent();
  r.Stats(3, 7, 1.5);
  EXPECT_TRUE(r.nm->done());
  out = r.Take();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_node_summary()) << out[0].DebugString();
  EXPECT_EQ(out[0].dst().node(), kGcsNode);
  const rpc::NodeSummary& summary = out[0].node_summary();
  EXPECT_EQ(summary.node(), 0);
  EXPECT_EQ(summary.stats().tasks(), 12u);
  EXPECT_DOUBLE_EQ(summary.stats().busy_seconds(), 2.0);
  EXPECT_DOUBLE_EQ(summary.stats().first_start(), 102);
  EXPECT_DOUBLE_EQ(summary.stats().last_end(), 203);
  EXPECT_EQ(summary.leases(), 1u);
  EXPECT_EQ(summary.workers(), 2u);

  // Once is enough; and a done raylet reports nothing.
  r.Shutdown(3);
  r.nm->Tick();
  r.ExpectNothingSent();
}

TEST(NodeManagerTest, ShutdownOfAWorkerNodeIncludesLaterWorkers) {
  Raylet r(2, 1, 1, false);
  r.StartAndClear();
  r.Ready(1);
  rpc::Address owner = MakeAddress(0, 1);
  r.Request(owner, 1, 1);
  r.ExpectGrant(owner, 1);
  r.Request(owner, 2, 1);
  r.Blocked(1, true);  // starts slot 2
  ASSERT_EQ(r.launcher.WorkersLaunched(), 2);
  r.Shutdown(0);
  std::set<int> slots;
  for (const rpc::Envelope& e : r.Take()) {
    ASSERT_TRUE(e.has_shutdown());
    slots.insert(e.dst().slot());
  }
  EXPECT_EQ(slots, (std::set<int>{1, 2})) << "no driver on this node";
  r.Stats(1, 0, 0);
  r.Stats(2, 0, 0);
  EXPECT_TRUE(r.nm->done());
}

TEST(NodeManagerTest, HeartbeatReportsEvenWithoutAChange) {
  Raylet r(0, 2, 2, true);
  r.StartAndClear();
  r.nm->Tick();
  r.ExpectNothingSent();
  r.clock += std::chrono::milliseconds(999);
  r.nm->Tick();
  r.ExpectNothingSent();
  r.clock += std::chrono::milliseconds(1);
  r.nm->Tick();
  std::vector<rpc::Envelope> out = r.Take();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_resource_report());
  EXPECT_EQ(out[0].dst().node(), kGcsNode);
  r.nm->Tick();
  r.ExpectNothingSent();  // the next one is a period later
}

TEST(NodeManagerTest, TickReportsOnlyAfterAChange) {
  Raylet r(0, 2, 2, true);
  r.StartAndClear();
  r.nm->Tick();
  r.nm->Tick();
  r.ExpectNothingSent();  // nothing changed since registering
  r.Ready(2);
  r.Ready(3);
  r.nm->Tick();
  r.ExpectNothingSent();  // a ready worker changes no resources

  auto expect_report = [&](double cpus) {
    r.nm->Tick();
    std::vector<rpc::Envelope> out = r.Take();
    ASSERT_EQ(out.size(), 1u);
    ASSERT_TRUE(out[0].has_resource_report()) << out[0].DebugString();
    EXPECT_EQ(out[0].dst().node(), kGcsNode);
    EXPECT_EQ(out[0].src().node(), 0);
    EXPECT_EQ(out[0].resource_report().node(), 0);
    EXPECT_DOUBLE_EQ(Cpu(out[0].resource_report().available()), cpus);
    r.nm->Tick();
    r.ExpectNothingSent();  // reported once
  };

  r.Request(kDriver, 1, 1);
  uint64_t lease1 = r.ExpectGrant(kDriver, 1);
  expect_report(1);

  // Several changes in one pass: one report with the end state.
  r.Request(kDriver, 2, 1);
  r.ExpectGrant(kDriver, 2);
  r.Blocked(2, true);
  r.Blocked(3, true);
  expect_report(2);

  r.Blocked(2, false);
  r.Blocked(3, false);
  expect_report(0);

  r.Return(kDriver, lease1);
  expect_report(1);

  // Requests that only queue change nothing.
  r.Request(kDriver, 3, 2);
  r.TakeReplies();
  r.nm->Tick();
  r.ExpectNothingSent();
}

TEST(NodeManagerTest, DriverExitIsForwardedToTheGcs) {
  Raylet r(0, 1, 1, true);
  r.StartAndClear();
  rpc::Envelope e = r.To(kDriver);
  e.mutable_driver_exit()->set_exit_code(5);
  r.nm->Handle(e);
  std::vector<rpc::Envelope> out = r.Take();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has_driver_exit());
  EXPECT_EQ(out[0].driver_exit().exit_code(), 5);
  EXPECT_EQ(out[0].dst().node(), kGcsNode);
  EXPECT_FALSE(r.nm->done()) << "the job ends when the GCS says so";
}

TEST(NodeManagerTest, UnknownMessagesAreIgnored) {
  Raylet r(0, 1, 1, true);
  r.StartAndClear();
  rpc::Envelope e = r.To(kDriver);
  e.mutable_task_done()->set_task_id("x");
  r.nm->Handle(e);
  rpc::Envelope empty;
  r.nm->Handle(empty);
  r.nm->Tick();
  r.ExpectNothingSent();
  EXPECT_FALSE(r.nm->done());
}

// ---- the GCS goes silent ----------------------------------------------------------------------
TEST(NodeManagerTest, SilentGcsEndsTheNodeAfterTheTimeoutButAnyWordFromItResetsTheClock) {
  Raylet r(/*node=*/1, /*cpus=*/2, /*initial_workers=*/1, /*is_head=*/false);
  r.StartAndClear();
  r.clock += std::chrono::seconds(9);
  r.nm->Tick();
  EXPECT_FALSE(r.nm->done());
  r.View({});  // the GCS's periodic view
  r.clock += std::chrono::seconds(9);
  r.nm->Tick();
  EXPECT_FALSE(r.nm->gcs_lost());
  r.clock += std::chrono::seconds(2);  // 11 s since the view: over the 10 s default
  r.nm->Tick();
  EXPECT_TRUE(r.nm->gcs_lost());
  EXPECT_TRUE(r.nm->done());
}

TEST(NodeManagerTest, ItsOwnStallIsNotTheGcsSilence) {
  Raylet r(/*node=*/1, /*cpus=*/2, /*initial_workers=*/1, /*is_head=*/false, /*own_stall_ms=*/200);
  r.StartAndClear();
  r.nm->Tick();
  r.clock += std::chrono::seconds(30);  // a blocking spawn: no tick for 30 s
  r.nm->Tick();
  EXPECT_FALSE(r.nm->gcs_lost());
  for (int i = 0; i < 101; ++i) {  // then 10.1 s of ticks without a view
    r.clock += std::chrono::milliseconds(100);
    r.nm->Tick();
  }
  EXPECT_TRUE(r.nm->gcs_lost());
}

TEST(NodeManagerTest, HeadNeverConcludesItLostTheGcsItSharesARankWith) {
  Raylet r(/*node=*/0, /*cpus=*/2, /*initial_workers=*/1, /*is_head=*/true);
  r.StartAndClear();
  r.clock += std::chrono::minutes(5);
  r.nm->Tick();
  EXPECT_FALSE(r.nm->gcs_lost());
  EXPECT_FALSE(r.nm->done());
}

}  // namespace
}  // namespace raympi
