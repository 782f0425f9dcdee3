// The caller side of actors in a CoreWorker, with this test playing the raylet, the GCS and
// the actors' workers on a real shared-memory bus (one process, no MPI): calls wait for the
// actor, go straight to its worker in order, and are retried or fail when the GCS reports a
// restart or a death.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "common/frame.h"
#include "common/shm_bus.h"
#include "node_harness.h"
#include "objects/object_store.h"
#include "raympi/actor.h"
#include "worker/core_worker.h"

namespace raympi {
namespace {

constexpr int kDriverSlot = 1;
const rpc::Address kFirstWorker = MakeAddress(0, 2);
const rpc::Address kSecondWorker = MakeAddress(0, 3);

class ActorCallsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(node_.ok());
    auto worker = CoreWorker::Start(node_.Config(kDriverSlot, /*is_driver=*/true));
    ASSERT_TRUE(worker.ok()) << worker.status().ToString();
    worker_ = std::move(*worker);
    ASSERT_TRUE(Next(kRayletSlot).has_worker_ready());
  }
  void TearDown() override {
    if (worker_) worker_->Stop();
    worker_.reset();
  }

  // The next message for `slot` (the raylet's mailbox also gets what goes to the GCS).
  rpc::Envelope Next(int slot) { return node_.Next(slot); }
  void ToDriver(rpc::Envelope e) { node_.Send(kDriverSlot, std::move(e)); }
  void Publish(const std::string& id, rpc::ActorInfo::State state, const rpc::Address& worker,
               int restarts, int max_task_retries = 0, const std::string& cause = "") {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(kGcsNode, 0);
    rpc::ActorInfo* info = e.mutable_actor_info();
    info->set_actor_id(id);
    info->set_name("counter");
    info->set_class_name("Counter");
    info->set_state(state);
    *info->mutable_worker() = worker;
    info->set_num_restarts(restarts);
    info->set_max_task_retries(max_task_retries);
    info->set_death_cause(cause);
    ToDriver(e);
  }
  void Done(const rpc::TaskSpec& spec, int value) {
    rpc::Envelope e;
    e.mutable_task_done()->set_task_id(spec.task_id());
    rpc::ObjectValue* v = e.mutable_task_done()->mutable_result();
    v->set_object_id(spec.return_id());
    v->set_data(internal::Serialize(value));
    v->set_type(internal::TypeName<int>());
    ToDriver(e);
  }
  // Creates an actor: answers the CreateActor the driver sends to the GCS.
  std::string Create() {
    std::string id;
    std::thread gcs([&] {
      rpc::Envelope create = Next(kRayletSlot);
      EXPECT_EQ(create.dst().node(), kGcsNode);
      id = create.create_actor().spec().actor_id();
      rpc::Envelope reply;
      reply.set_request_id(create.request_id());
      reply.mutable_create_actor_reply()->set_actor_id(id);
      ToDriver(reply);
    });
    std::string made = worker_->CreateActor("MakeCounter", "Counter", {}, {});
    gcs.join();
    EXPECT_EQ(made, id);
    return id;
  }
  std::string Call(const std::string& actor, int x) {
    internal::TaskArg arg;
    arg.value = internal::Serialize(x);
    arg.type = internal::TypeName<int>();
    return worker_->SubmitActorTask(actor, "Counter::Add", {arg}, internal::TypeName<int>());
  }
  internal::FetchedObject Result(const std::string& id) { return worker_->Get({id}, 10000).at(0); }

  NodeHarness node_{"actor-calls"};
  std::unique_ptr<CoreWorker> worker_;
};

TEST_F(ActorCallsTest, CallsWaitForTheActorThenGoStraightToItsWorkerInOrder) {
  std::string actor = Create();
  std::string first = Call(actor, 1);
  std::string second = Call(actor, 2);
  Publish(actor, rpc::ActorInfo::ALIVE, kFirstWorker, 0);
  rpc::Envelope a = Next(kFirstWorker.slot());
  rpc::Envelope b = Next(kFirstWorker.slot());
  EXPECT_EQ(a.push_task().spec().task_id(), first);
  EXPECT_EQ(a.push_task().spec().sequence(), 0u);
  EXPECT_EQ(b.push_task().spec().sequence(), 1u);
  EXPECT_EQ(a.push_task().spec().actor_id(), actor);
  Done(a.push_task().spec(), 11);
  Done(b.push_task().spec(), 13);
  EXPECT_EQ(internal::Deserialize<int>(Result(first).data), 11);
  EXPECT_EQ(internal::Deserialize<int>(Result(second).data), 13);
  worker_->RemoveLocalRef(first);
  worker_->RemoveLocalRef(second);
}

TEST_F(ActorCallsTest, ARestartRetriesCallsInFlightOnTheNewInstance) {
  std::string actor = Create();
  Publish(actor, rpc::ActorInfo::ALIVE, kFirstWorker, 0, /*max_task_retries=*/1);
  std::string call = Call(actor, 5);
  std::string call2 = Call(actor, 7);  // also lost with the worker
  EXPECT_EQ(Next(kFirstWorker.slot()).push_task().spec().sequence(), 0u);
  EXPECT_EQ(Next(kFirstWorker.slot()).push_task().spec().sequence(), 1u);
  Publish(actor, rpc::ActorInfo::RESTARTING, MakeAddress(0, 0), 1, 1, "worker died");
  std::string later = Call(actor, 6);  // made while it restarts: waits
  Publish(actor, rpc::ActorInfo::ALIVE, kSecondWorker, 1, 1);
  rpc::Envelope retried = Next(kSecondWorker.slot());
  EXPECT_EQ(retried.push_task().spec().task_id(), call);
  EXPECT_EQ(retried.push_task().spec().sequence(), 0u);  // numbered afresh for the new instance
  rpc::Envelope retried2 = Next(kSecondWorker.slot());
  EXPECT_EQ(retried2.push_task().spec().task_id(), call2);
  rpc::Envelope next = Next(kSecondWorker.slot());
  EXPECT_EQ(next.push_task().spec().task_id(), later);
  EXPECT_EQ(next.push_task().spec().sequence(), 2u);
  Done(retried.push_task().spec(), 5);
  Done(retried2.push_task().spec(), 12);
  Done(next.push_task().spec(), 11);
  EXPECT_EQ(internal::Deserialize<int>(Result(call).data), 5);
  EXPECT_EQ(internal::Deserialize<int>(Result(call2).data), 12);
  EXPECT_EQ(internal::Deserialize<int>(Result(later).data), 11);
}

TEST_F(ActorCallsTest, WithoutRetriesCallsInFlightFailAndDeathFailsTheRest) {
  std::string actor = Create();
  Publish(actor, rpc::ActorInfo::ALIVE, kFirstWorker, 0);
  std::string lost = Call(actor, 1);
  Next(kFirstWorker.slot());
  Publish(actor, rpc::ActorInfo::RESTARTING, MakeAddress(0, 0), 1, 0, "its worker 0.2 died");
  internal::FetchedObject failed = Result(lost);
  EXPECT_TRUE(failed.is_error);
  EXPECT_TRUE(failed.actor_died);
  EXPECT_NE(failed.error_message.find("its worker 0.2 died"), std::string::npos);
  std::string waiting = Call(actor, 2);
  Publish(actor, rpc::ActorInfo::DEAD, MakeAddress(0, 0), 1, 0, "no restarts left");
  internal::FetchedObject dead = Result(waiting);
  EXPECT_TRUE(dead.actor_died);
  EXPECT_NE(dead.error_message.find("actor 'counter' (Counter) is dead: no restarts left"),
            std::string::npos)
      << dead.error_message;
  internal::FetchedObject after = Result(Call(actor, 3));  // fails at once
  EXPECT_TRUE(after.actor_died);
}

}  // namespace
}  // namespace raympi
