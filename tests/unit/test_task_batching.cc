// Batched task pushes (docs/performance.md, "Batched pushes"), with this test playing the
// raylet, the owner or the leased workers on a real shared-memory bus (one process, no MPI):
// a backlog goes out several tasks per push; a dead worker's unstarted tasks run again without
// using a retry; tasks a worker hands back run elsewhere, first; and a worker whose task runs
// long hands back the tasks queued behind it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/frame.h"
#include "common/ids.h"
#include "common/shm_bus.h"
#include "node_harness.h"
#include "objects/object_store.h"
#include "raympi/function_registry.h"
#include "worker/core_worker.h"

namespace {

std::atomic<bool> g_release{false};
int BlockUntilReleased(int x) {
  while (!g_release.load()) std::this_thread::yield();
  return x;
}
int Quick(int x) { return x; }
RAYMPI_REMOTE(BlockUntilReleased, Quick);

}  // namespace

namespace raympi {
namespace {

constexpr int kOwnerSlot = 1;
constexpr int kFirstWorker = 2;
constexpr int kSecondWorker = 3;

class TaskBatchingTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (worker_) worker_->Stop();
    if (task_thread_.joinable()) task_thread_.join();
    worker_.reset();
  }
  // A CoreWorker in `slot`: the owner (a driver) or a worker.
  void StartCoreWorker(int slot, bool is_driver) {
    ASSERT_TRUE(node_.ok());
    CoreWorkerConfig config = node_.Config(slot, is_driver);
    config.max_push_batch = 32;
    config.hand_back_after = std::chrono::microseconds(2000);
    auto worker = CoreWorker::Start(config);
    ASSERT_TRUE(worker.ok()) << worker.status().ToString();
    worker_ = std::move(*worker);
    ASSERT_TRUE(Next(kRayletSlot).has_worker_ready());
  }
  rpc::Envelope Next(int slot) { return node_.Next(slot); }
  // The next message of `kind` for `slot`, skipping others (lease returns, releases).
  rpc::Envelope NextOf(int slot, rpc::Envelope::BodyCase kind) {
    for (int i = 0; i < 100; ++i) {
      rpc::Envelope e = Next(slot);
      if (e.body_case() == kind || e.body_case() == rpc::Envelope::BODY_NOT_SET) return e;
    }
    ADD_FAILURE() << "no message of kind " << kind << " for slot " << slot;
    return {};
  }
  void Send(int slot, rpc::Envelope e) { node_.Send(slot, std::move(e)); }
  std::string Submit(int x, int max_retries) {
    internal::TaskArg arg;
    arg.value = internal::Serialize(x);
    arg.type = internal::TypeName<int>();
    internal::TaskOptions options;
    options.max_retries = max_retries;
    return worker_->Submit("Quick", {arg}, internal::TypeName<int>(), options);
  }
  // Answers the owner's lease request `request` with a worker in `slot`.
  void Grant(const rpc::Envelope& request, int slot, uint64_t lease_id) {
    rpc::Envelope reply;
    reply.mutable_lease_reply()->set_lease_request_id(request.request_lease().lease_request_id());
    reply.mutable_lease_reply()->set_lease_id(lease_id);
    *reply.mutable_lease_reply()->mutable_worker() = MakeAddress(0, slot);
    Send(kOwnerSlot, reply);
  }
  static std::vector<rpc::TaskSpec> Specs(const rpc::Envelope& push) {
    std::vector<rpc::TaskSpec> specs{push.push_task().spec()};
    specs.insert(specs.end(), push.push_task().more().begin(), push.push_task().more().end());
    return specs;
  }
  void Done(const rpc::TaskSpec& spec) {
    rpc::Envelope e;
    e.mutable_task_done()->set_task_id(spec.task_id());
    rpc::ObjectValue* v = e.mutable_task_done()->mutable_result();
    v->set_object_id(spec.return_id());
    v->set_data(spec.args(0).value());
    v->set_type(internal::TypeName<int>());
    Send(kOwnerSlot, e);
  }
  // Plays a worker in `slot`: runs every push it gets until `count` tasks are done.
  void RunAll(int slot, int count) {
    for (int done = 0; done < count;) {
      for (const rpc::TaskSpec& spec : Specs(NextOf(slot, rpc::Envelope::kPushTask))) {
        Done(spec);
        ++done;
      }
    }
  }
  // Submits `count` tasks without retries, takes the 8 lease requests they cause and grants the
  // first to kFirstWorker as `lease_id`; returns what that worker was pushed.
  struct Backlog {
    std::vector<std::string> ids;
    std::vector<rpc::Envelope> requests;
    std::vector<rpc::TaskSpec> first_push;
  };
  Backlog SubmitBacklog(int count, uint64_t lease_id) {
    Backlog b;
    for (int i = 0; i < count; ++i) b.ids.push_back(Submit(i, /*max_retries=*/0));
    for (int i = 0; i < 8; ++i) {
      b.requests.push_back(NextOf(kRayletSlot, rpc::Envelope::kRequestLease));
    }
    Grant(b.requests[0], kFirstWorker, lease_id);
    b.first_push = Specs(NextOf(kFirstWorker, rpc::Envelope::kPushTask));
    return b;
  }
  int Value(const std::string& id) {
    internal::FetchedObject got = worker_->Get({id}, 10000).at(0);
    EXPECT_FALSE(got.is_error) << got.error_message;
    return got.is_error ? -1 : internal::Deserialize<int>(got.data);
  }

  NodeHarness node_{"batching"};
  std::unique_ptr<CoreWorker> worker_;
  std::thread task_thread_;
};

TEST_F(TaskBatchingTest, ABacklogIsSplitOverTheLeasesAndADeadWorkersUnstartedTasksRunFree) {
  StartCoreWorker(kOwnerSlot, /*is_driver=*/true);
  // At most 8 lease requests are outstanding; the first grant gets 40 / 8 tasks in one push.
  auto [ids, requests, batch] = SubmitBacklog(40, 101);
  ASSERT_EQ(batch.size(), 5u);
  EXPECT_EQ(batch[0].task_id(), ids[0]);
  EXPECT_EQ(batch[4].task_id(), ids[4]);

  // The worker dies: only the first task may have run (no retries: it fails); the four behind
  // it never started and run on the next worker.
  rpc::Envelope died;
  *died.mutable_worker_died()->mutable_worker() = MakeAddress(0, kFirstWorker);
  died.mutable_worker_died()->add_lease_ids(101);
  died.mutable_worker_died()->set_pid(12345);
  died.mutable_worker_died()->set_cause("was killed by signal 9 (SIGKILL)");
  Send(kOwnerSlot, died);
  Grant(requests[1], kSecondWorker, 102);
  RunAll(kSecondWorker, 39);
  internal::FetchedObject first = worker_->Get({ids[0]}, 10000).at(0);
  EXPECT_TRUE(first.is_error);
  EXPECT_NE(first.error_message.find("no retries were allowed"), std::string::npos)
      << first.error_message;
  for (int i = 1; i < 40; ++i) EXPECT_EQ(Value(ids[i]), i);
}

TEST_F(TaskBatchingTest, TasksHandedBackRunNextOnAnotherLease) {
  StartCoreWorker(kOwnerSlot, /*is_driver=*/true);
  auto [ids, requests, batch] = SubmitBacklog(16, 201);
  ASSERT_EQ(batch.size(), 2u);  // 16 tasks over 1 lease and 7 requests
  rpc::Envelope handed;
  handed.mutable_return_tasks()->set_lease_id(201);
  handed.mutable_return_tasks()->add_task_ids(batch[1].task_id());
  Send(kOwnerSlot, handed);
  Grant(requests[1], kSecondWorker, 202);
  // The handed-back task is at the head of the queue again.
  std::vector<rpc::TaskSpec> next = Specs(NextOf(kSecondWorker, rpc::Envelope::kPushTask));
  EXPECT_EQ(next[0].task_id(), batch[1].task_id());
  EXPECT_EQ(next[0].attempt(), 0);  // uncharged
  Done(batch[0]);
  for (const rpc::TaskSpec& spec : next) Done(spec);
  // The rest goes to whichever lease is free: play both workers.
  int answered = 1 + static_cast<int>(next.size());
  std::atomic<int> left{16 - answered};
  auto play = [&](int slot) {
    while (left.load() > 0) {
      std::string frame;
      auto got = node_.bus().Receive(slot, &frame, std::chrono::milliseconds(10));
      if (!got.ok() || !*got) continue;
      rpc::Envelope e;
      if (!DecodeFrame(frame, &e).ok() || !e.has_push_task()) continue;
      for (const rpc::TaskSpec& spec : Specs(e)) {
        Done(spec);
        --left;
      }
    }
  };
  std::thread a(play, kFirstWorker), b(play, kSecondWorker);
  a.join();
  b.join();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(Value(ids[i]), i);
}

TEST_F(TaskBatchingTest, AWorkerWhoseTaskRunsLongHandsBackTheTasksBehindIt) {
  StartCoreWorker(kFirstWorker, /*is_driver=*/false);
  task_thread_ = std::thread([this] { worker_->RunTaskLoop(); });
  g_release = false;
  rpc::Envelope push;
  push.mutable_push_task()->set_lease_id(301);
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    rpc::TaskSpec* spec =
        i == 0 ? push.mutable_push_task()->mutable_spec() : push.mutable_push_task()->add_more();
    ObjectId id;
    id.owner_node = 0;
    id.owner_slot = kOwnerSlot;
    id.owner_pid = 7;
    id.index = static_cast<uint32_t>(i + 1);
    ids.push_back(id.Binary());
    spec->set_task_id(id.Binary());
    spec->set_return_id(id.Binary());
    spec->set_function(i == 0 ? "BlockUntilReleased" : "Quick");
    spec->set_return_type(internal::TypeName<int>());
    *spec->mutable_owner() = MakeAddress(0, kOwnerSlot);
    rpc::TaskArg* arg = spec->add_args();
    arg->set_value(internal::Serialize(i));
    arg->set_type(internal::TypeName<int>());
  }
  Send(kFirstWorker, push);
  // The first task blocks; past the hand-back time the worker returns the two behind it.
  rpc::Envelope handed = NextOf(kOwnerSlot, rpc::Envelope::kReturnTasks);
  EXPECT_EQ(handed.return_tasks().lease_id(), 301u);
  ASSERT_EQ(handed.return_tasks().task_ids_size(), 2);
  EXPECT_EQ(handed.return_tasks().task_ids(0), ids[1]);
  EXPECT_EQ(handed.return_tasks().task_ids(1), ids[2]);
  g_release = true;
  // Then only the running task's result comes: the others were not run here.
  rpc::Envelope done = NextOf(kOwnerSlot, rpc::Envelope::kTaskDone);
  EXPECT_EQ(done.task_done().task_id(), ids[0]);
  worker_->Stop();
  task_thread_.join();
  std::string frame;
  auto more = node_.bus().TryReceive(kOwnerSlot, &frame);
  while (more.ok() && *more) {
    rpc::Envelope e;
    ASSERT_TRUE(DecodeFrame(frame, &e).ok());
    EXPECT_FALSE(e.has_task_done()) << "a handed-back task ran on the worker too";
    more = node_.bus().TryReceive(kOwnerSlot, &frame);
  }
}

// Submit builds each spec in a finished task's spec (its strings, owner, strategy and resource
// map kept): nothing of the earlier task may reach the next one's push or lease request.
TEST_F(TaskBatchingTest, ASpecBuiltInAFinishedTasksSpecCarriesOnlyItsOwnTask) {
  StartCoreWorker(kOwnerSlot, /*is_driver=*/true);
  auto submit = [&](int x, std::map<std::string, double> resources, int retries,
                    const std::string& name, SchedulingStrategy strategy) {
    internal::TaskArg arg;
    arg.value = internal::Serialize(x);
    arg.type = internal::TypeName<int>();
    internal::TaskOptions options;
    options.resources = std::move(resources);
    options.max_retries = retries;
    options.name = name;
    options.strategy = strategy;
    return worker_->Submit("Quick", {arg}, internal::TypeName<int>(), options);
  };
  auto run = [&](const std::string& id, uint64_t lease_id) {
    rpc::Envelope request = NextOf(kRayletSlot, rpc::Envelope::kRequestLease);
    Grant(request, kFirstWorker, lease_id);
    std::vector<rpc::TaskSpec> specs = Specs(NextOf(kFirstWorker, rpc::Envelope::kPushTask));
    EXPECT_EQ(specs.size(), 1u);
    EXPECT_EQ(specs.at(0).task_id(), id);
    Done(specs.at(0));
    EXPECT_EQ(Value(id), internal::Deserialize<int>(specs.at(0).args(0).value()));
    return std::make_pair(request.request_lease(), specs.at(0));
  };
  auto [first_request, first] =
      run(submit(7, {{"CPU", 2}, {"custom", 1}}, 5, "named", NodeAffinity(0, true)), 41);
  EXPECT_EQ(first.resources().amounts().size(), 2u);
  EXPECT_EQ(first.max_retries(), 5);
  EXPECT_EQ(first.name(), "named");
  EXPECT_EQ(first_request.resources().amounts().at("custom"), 1.0);

  auto [second_request, second] = run(submit(8, {{"CPU", 1}}, 0, "", DefaultStrategy()), 42);
  EXPECT_EQ(second.resources().amounts().size(), 1u);
  EXPECT_EQ(second.resources().amounts().at("CPU"), 1.0);
  EXPECT_EQ(second_request.resources().amounts().size(), 1u);
  EXPECT_EQ(second.max_retries(), 0);
  EXPECT_EQ(second.name(), "");
  EXPECT_EQ(second.strategy().kind(), rpc::SchedulingStrategy::DEFAULT);
  EXPECT_FALSE(second.strategy().soft());
  EXPECT_EQ(second.args_size(), 1);
  EXPECT_EQ(internal::Deserialize<int>(second.args(0).value()), 8);
  EXPECT_EQ(second.owner().slot(), kOwnerSlot);

  // No positive amount at all: no resources, as before any reuse.
  auto [third_request, third] = run(submit(9, {{"CPU", 0}}, 1, "", DefaultStrategy()), 43);
  EXPECT_TRUE(third.resources().amounts().empty());
  EXPECT_TRUE(third_request.resources().amounts().empty());
  EXPECT_EQ(internal::Deserialize<int>(third.args(0).value()), 9);
}

}  // namespace
}  // namespace raympi
