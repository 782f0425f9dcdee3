// ActorManager (the GCS's actor table) with a recording send function: placement through
// leases, creation, lookups, Kill, restarts after WorkerDied, owned vs detached. No MPI, no time.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/frame.h"
#include "gcs_rank/actor_manager.h"
#include "gcs_rank/gcs_server.h"

namespace raympi {
namespace {

const rpc::Address kOwner = MakeAddress(0, 1);  // the driver
const rpc::Address kWorker = MakeAddress(1, 3);

class ActorManagerTest : public ::testing::Test {
 protected:
  ActorManagerTest() : actors_([this](const rpc::Envelope& e) { sent_.push_back(e); }) {}

  // What a caller sends for raympi::Actor(...).Remote(); returns the reply.
  rpc::CreateActorReply Create(const std::string& id, const std::string& name, int max_restarts = 0,
                               bool detached = false, const rpc::Address& owner = kOwner) {
    rpc::Envelope e = From(owner);
    e.set_request_id(++request_);
    rpc::ActorSpec* spec = e.mutable_create_actor()->mutable_spec();
    spec->set_actor_id(id);
    spec->set_name(name);
    spec->set_class_name("Counter");
    spec->set_max_restarts(max_restarts);
    spec->set_detached(detached);
    spec->mutable_creation()->set_task_id(id);
    spec->mutable_creation()->set_function("MakeCounter");
    spec->mutable_creation()->set_actor_id(id);
    spec->mutable_creation()->set_actor_creation(true);
    actors_.Handle(e);
    rpc::Envelope reply = Take(rpc::Envelope::kCreateActorReply);
    EXPECT_EQ(reply.request_id(), request_);
    return reply.create_actor_reply();
  }

  rpc::Envelope From(const rpc::Address& src) {
    rpc::Envelope e;
    *e.mutable_src() = src;
    *e.mutable_dst() = MakeAddress(kGcsNode, 0);
    return e;
  }

  // Removes and returns the first sent message of this type (fails the test if none).
  rpc::Envelope Take(rpc::Envelope::BodyCase type) {
    for (auto it = sent_.begin(); it != sent_.end(); ++it) {
      if (it->body_case() == type) {
        rpc::Envelope e = *it;
        sent_.erase(it);
        return e;
      }
    }
    ADD_FAILURE() << "no message of type " << type << " was sent";
    return {};
  }
  int Count(rpc::Envelope::BodyCase type) const {
    int n = 0;
    for (const auto& e : sent_) n += e.body_case() == type;
    return n;
  }

  // The raylet grants the pending lease request on `worker`; returns the creation push.
  rpc::Envelope Grant(uint64_t request_id, const rpc::Address& worker, uint64_t lease_id) {
    rpc::Envelope e = From(MakeAddress(worker.node(), kRayletSlot));
    e.mutable_lease_reply()->set_lease_request_id(request_id);
    *e.mutable_lease_reply()->mutable_worker() = worker;
    e.mutable_lease_reply()->set_lease_id(lease_id);
    actors_.Handle(e);
    return Take(rpc::Envelope::kPushTask);
  }

  void CreationDone(const std::string& id, const rpc::Address& worker, std::string error = "") {
    rpc::Envelope e = From(worker);
    e.mutable_task_done()->set_task_id(id);
    if (!error.empty()) {
      e.mutable_task_done()->mutable_result()->set_is_error(true);
      e.mutable_task_done()->mutable_result()->set_error_message(error);
    }
    actors_.Handle(e);
  }

  // Create + lease + creation done: an alive actor on `worker`.
  void MakeAlive(const std::string& id, const std::string& name, int max_restarts = 0,
                 bool detached = false, const rpc::Address& owner = kOwner,
                 const rpc::Address& worker = kWorker, uint64_t lease_id = 77) {
    ASSERT_EQ(Create(id, name, max_restarts, detached, owner).error(), "");
    rpc::Envelope request = Take(rpc::Envelope::kRequestLease);
    Grant(request.request_lease().lease_request_id(), worker, lease_id);
    CreationDone(id, worker);
    ASSERT_EQ(actors_.Find(id)->state(), rpc::ActorInfo::ALIVE);
    sent_.clear();
  }

  rpc::Envelope WorkerDied(const rpc::Address& worker, uint64_t lease_id,
                           const std::string& cause) {
    rpc::Envelope e = From(MakeAddress(worker.node(), kRayletSlot));
    *e.mutable_worker_died()->mutable_worker() = worker;
    e.mutable_worker_died()->set_pid(4242);
    e.mutable_worker_died()->add_lease_ids(lease_id);
    e.mutable_worker_died()->set_cause(cause);
    return e;
  }

  rpc::ActorInfo Lookup(const std::string& name, const rpc::Address& caller) {
    rpc::Envelope e = From(caller);
    e.set_request_id(++request_);
    e.mutable_get_actor_info()->set_name(name);
    actors_.Handle(e);
    rpc::Envelope reply = Take(rpc::Envelope::kActorInfo);
    EXPECT_EQ(reply.request_id(), request_);
    return reply.actor_info();
  }

  std::vector<rpc::Envelope> sent_;
  uint64_t request_ = 0;
  ActorManager actors_;
};

TEST_F(ActorManagerTest, PlacesTheActorOnALeasedWorkerAndPublishesAlive) {
  ASSERT_EQ(Create("a1", "counter").error(), "");
  EXPECT_EQ(actors_.Find("a1")->state(), rpc::ActorInfo::PENDING);
  rpc::Envelope request = Take(rpc::Envelope::kRequestLease);
  EXPECT_EQ(request.dst().node(), kOwner.node());  // the creator's raylet first
  EXPECT_EQ(request.dst().slot(), kRayletSlot);
  rpc::Envelope push = Grant(request.request_lease().lease_request_id(), kWorker, 77);
  EXPECT_EQ(push.dst().node(), kWorker.node());
  EXPECT_EQ(push.dst().slot(), kWorker.slot());
  EXPECT_TRUE(push.push_task().spec().actor_creation());
  EXPECT_EQ(push.push_task().spec().function(), "MakeCounter");
  EXPECT_EQ(push.push_task().spec().owner().node(), kGcsNode);  // its TaskDone comes to the GCS
  CreationDone("a1", kWorker);
  rpc::Envelope alive = Take(rpc::Envelope::kActorInfo);
  EXPECT_EQ(alive.dst().slot(), kOwner.slot());  // the creator is subscribed
  EXPECT_EQ(alive.request_id(), 0u);
  EXPECT_EQ(alive.actor_info().state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(alive.actor_info().worker().slot(), kWorker.slot());
}

TEST_F(ActorManagerTest, SpilledBackLeaseRequestsGoToTheNamedNode) {
  ASSERT_EQ(Create("a1", "").error(), "");
  rpc::Envelope request = Take(rpc::Envelope::kRequestLease);
  rpc::Envelope reply = From(MakeAddress(0, kRayletSlot));
  reply.mutable_lease_reply()->set_lease_request_id(request.request_lease().lease_request_id());
  reply.mutable_lease_reply()->set_spillback_node(2);
  actors_.Handle(reply);
  rpc::Envelope again = Take(rpc::Envelope::kRequestLease);
  EXPECT_EQ(again.dst().node(), 2);
  EXPECT_TRUE(again.request_lease().spilled());
}

TEST_F(ActorManagerTest, NamesAreUniqueAndLookedUpByName) {
  MakeAlive("a1", "counter");
  rpc::CreateActorReply dup = Create("a2", "counter");
  EXPECT_NE(dup.error().find("'counter' is already taken"), std::string::npos) << dup.error();
  EXPECT_EQ(actors_.Find("a2"), nullptr);
  rpc::ActorInfo found = Lookup("counter", MakeAddress(2, 5));
  EXPECT_EQ(found.actor_id(), "a1");
  EXPECT_EQ(found.class_name(), "Counter");
  rpc::ActorInfo missing = Lookup("nope", MakeAddress(2, 5));
  EXPECT_NE(missing.error().find("no live actor is named 'nope' (named actors: counter)"),
            std::string::npos)
      << missing.error();
}

TEST_F(ActorManagerTest, FactoryErrorKillsTheActorAndReturnsItsWorker) {
  ASSERT_EQ(Create("a1", "counter").error(), "");
  rpc::Envelope request = Take(rpc::Envelope::kRequestLease);
  Grant(request.request_lease().lease_request_id(), kWorker, 77);
  CreationDone("a1", kWorker, "start must be >= 0");
  const rpc::ActorInfo* info = actors_.Find("a1");
  EXPECT_EQ(info->state(), rpc::ActorInfo::DEAD);
  EXPECT_NE(info->death_cause().find("factory MakeCounter failed: start must be >= 0"),
            std::string::npos);
  EXPECT_EQ(Take(rpc::Envelope::kReturnLease).return_lease().lease_id(), 77u);
  EXPECT_EQ(Create("a2", "counter").error(), "");  // the name is free again
}

TEST_F(ActorManagerTest, KillEndsTheInstanceReturnsTheLeaseAndFreesTheName) {
  MakeAlive("a1", "counter");
  Lookup("counter", MakeAddress(2, 5));  // a second subscriber
  rpc::Envelope kill = From(kOwner);
  kill.set_request_id(99);
  kill.mutable_kill_actor()->set_actor_id("a1");
  actors_.Handle(kill);
  rpc::Envelope destroy = Take(rpc::Envelope::kDestroyActor);
  EXPECT_EQ(destroy.dst().slot(), kWorker.slot());
  EXPECT_NE(destroy.destroy_actor().cause().find("killed"), std::string::npos);
  EXPECT_EQ(Take(rpc::Envelope::kReturnLease).dst().node(), kWorker.node());
  EXPECT_EQ(Count(rpc::Envelope::kActorInfo), 3);  // two subscribers + the reply
  EXPECT_EQ(actors_.Find("a1")->state(), rpc::ActorInfo::DEAD);
  sent_.clear();
  EXPECT_NE(Lookup("counter", kOwner).error().find("no live actor"), std::string::npos);
}

TEST_F(ActorManagerTest, RestartsAfterWorkerDiedThenDiesAfterTheLastRestart) {
  MakeAlive("a1", "counter", /*max_restarts=*/1);
  actors_.Handle(WorkerDied(kWorker, 77, "killed by signal 9 (SIGKILL)"));
  const rpc::ActorInfo* info = actors_.Find("a1");
  EXPECT_EQ(info->state(), rpc::ActorInfo::RESTARTING);
  EXPECT_EQ(info->num_restarts(), 1);
  EXPECT_EQ(Take(rpc::Envelope::kActorInfo).actor_info().state(), rpc::ActorInfo::RESTARTING);
  EXPECT_EQ(Count(rpc::Envelope::kDestroyActor), 0);  // nothing to tell a dead worker
  EXPECT_EQ(Count(rpc::Envelope::kReturnLease), 0);   // its raylet reclaims the lease
  rpc::Envelope request = Take(rpc::Envelope::kRequestLease);
  const rpc::Address second = MakeAddress(2, 4);
  rpc::Envelope push = Grant(request.request_lease().lease_request_id(), second, 88);
  EXPECT_EQ(push.push_task().spec().function(), "MakeCounter");  // the factory runs again
  CreationDone("a1", second);
  rpc::Envelope alive = Take(rpc::Envelope::kActorInfo);
  EXPECT_EQ(alive.actor_info().state(), rpc::ActorInfo::ALIVE);
  EXPECT_EQ(alive.actor_info().worker().node(), 2);
  EXPECT_EQ(alive.actor_info().num_restarts(), 1);

  actors_.Handle(WorkerDied(second, 88, "exited with code 3"));
  EXPECT_EQ(info->state(), rpc::ActorInfo::DEAD);
  EXPECT_NE(info->death_cause().find("exited with code 3"), std::string::npos);
  EXPECT_EQ(Count(rpc::Envelope::kRequestLease), 0);
  EXPECT_EQ(Take(rpc::Envelope::kActorInfo).actor_info().state(), rpc::ActorInfo::DEAD);
}

TEST_F(ActorManagerTest, ActorsOfALostNodeRestartElsewhere) {
  MakeAlive("a1", "counter", /*max_restarts=*/1);  // on kWorker, node 1
  actors_.OnNodeLost(1, "no heartbeat for 10.0 s");
  const rpc::ActorInfo* info = actors_.Find("a1");
  EXPECT_EQ(info->state(), rpc::ActorInfo::RESTARTING);
  EXPECT_NE(info->death_cause().find("node 1 was lost"), std::string::npos);
  EXPECT_EQ(Take(rpc::Envelope::kRequestLease).dst().node(), kOwner.node());
  actors_.OnNodeLost(1, "again");  // told twice: nothing more happens
  EXPECT_EQ(info->num_restarts(), 1);
}

TEST_F(ActorManagerTest, UnlimitedRestarts) {
  MakeAlive("a1", "", /*max_restarts=*/-1);
  for (int i = 1; i <= 3; ++i) {
    actors_.Handle(WorkerDied(kWorker, 77 + i - 1, "crashed"));
    EXPECT_EQ(actors_.Find("a1")->num_restarts(), i);
    rpc::Envelope request = Take(rpc::Envelope::kRequestLease);
    Grant(request.request_lease().lease_request_id(), kWorker, 77 + i);
    CreationDone("a1", kWorker);
    EXPECT_EQ(actors_.Find("a1")->state(), rpc::ActorInfo::ALIVE);
    sent_.clear();
  }
}

TEST_F(ActorManagerTest, WorkerDeathOfAnotherWorkerIsIgnored) {
  MakeAlive("a1", "counter");
  actors_.Handle(WorkerDied(MakeAddress(1, 9), 12345, "crashed"));
  EXPECT_EQ(actors_.Find("a1")->state(), rpc::ActorInfo::ALIVE);
  EXPECT_TRUE(sent_.empty());
}

TEST_F(ActorManagerTest, OwnedActorsDieWithTheirOwnerDetachedOnesLive) {
  const rpc::Address task_worker = MakeAddress(1, 2);  // a task's worker creates both
  MakeAlive("owned", "", 0, /*detached=*/false, task_worker, MakeAddress(1, 3), 70);
  MakeAlive("detached", "", 0, /*detached=*/true, task_worker, MakeAddress(1, 4), 71);
  actors_.Handle(WorkerDied(task_worker, 5, "killed by signal 11 (SIGSEGV)"));
  EXPECT_EQ(actors_.Find("owned")->state(), rpc::ActorInfo::DEAD);
  EXPECT_NE(actors_.Find("owned")->death_cause().find("owner"), std::string::npos);
  EXPECT_EQ(Take(rpc::Envelope::kDestroyActor).dst().slot(), 3);
  EXPECT_EQ(actors_.Find("detached")->state(), rpc::ActorInfo::ALIVE);
}

TEST_F(ActorManagerTest, InfeasibleActorsDieWithTheReason) {
  ASSERT_EQ(Create("a1", "big").error(), "");
  rpc::Envelope request = Take(rpc::Envelope::kRequestLease);
  rpc::Envelope reply = From(MakeAddress(0, kRayletSlot));
  reply.mutable_lease_reply()->set_lease_request_id(request.request_lease().lease_request_id());
  reply.mutable_lease_reply()->set_infeasible("no node can ever provide {CPU: 1000}");
  actors_.Handle(reply);
  EXPECT_EQ(actors_.Find("a1")->state(), rpc::ActorInfo::DEAD);
  EXPECT_NE(actors_.Find("a1")->death_cause().find("cannot be scheduled"), std::string::npos);
}

TEST_F(ActorManagerTest, KilledWhilePendingCancelsTheRequestAndReturnsALateGrant) {
  ASSERT_EQ(Create("a1", "").error(), "");
  rpc::Envelope request = Take(rpc::Envelope::kRequestLease);
  rpc::Envelope kill = From(kOwner);
  kill.mutable_kill_actor()->set_actor_id("a1");
  actors_.Handle(kill);
  EXPECT_EQ(Take(rpc::Envelope::kCancelLeaseRequest).cancel_lease_request().lease_request_id(),
            request.request_lease().lease_request_id());
  rpc::Envelope late = From(MakeAddress(1, kRayletSlot));
  late.mutable_lease_reply()->set_lease_request_id(request.request_lease().lease_request_id());
  *late.mutable_lease_reply()->mutable_worker() = kWorker;
  late.mutable_lease_reply()->set_lease_id(5);
  actors_.Handle(late);
  EXPECT_EQ(Take(rpc::Envelope::kReturnLease).return_lease().lease_id(), 5u);
  EXPECT_EQ(Count(rpc::Envelope::kPushTask), 0);
}

// The GcsServer hands WorkerDied (from a raylet) to its actor manager.
TEST(GcsServerActors, WorkerDiedRestartsAnActor) {
  std::vector<rpc::Envelope> sent;
  GcsServer::Callbacks callbacks;
  callbacks.send = [&](const rpc::Envelope& e) { sent.push_back(e); };
  callbacks.end_job = [](int) {};
  GcsServer gcs(callbacks);
  rpc::Envelope create;
  *create.mutable_src() = kOwner;
  rpc::ActorSpec* spec = create.mutable_create_actor()->mutable_spec();
  spec->set_actor_id("a1");
  spec->set_max_restarts(2);
  spec->mutable_creation()->set_function("MakeCounter");
  gcs.Handle(create);
  uint64_t request_id = 0;
  for (const auto& e : sent) {
    if (e.has_request_lease()) request_id = e.request_lease().lease_request_id();
  }
  rpc::Envelope grant;
  grant.mutable_lease_reply()->set_lease_request_id(request_id);
  *grant.mutable_lease_reply()->mutable_worker() = kWorker;
  grant.mutable_lease_reply()->set_lease_id(9);
  gcs.Handle(grant);
  rpc::Envelope done;
  done.mutable_task_done()->set_task_id("a1");
  gcs.Handle(done);
  ASSERT_EQ(gcs.actors().Find("a1")->state(), rpc::ActorInfo::ALIVE);
  rpc::Envelope died;
  *died.mutable_worker_died()->mutable_worker() = kWorker;
  died.mutable_worker_died()->add_lease_ids(9);
  died.mutable_worker_died()->set_cause("killed by signal 9 (SIGKILL)");
  gcs.Handle(died);
  EXPECT_EQ(gcs.actors().Find("a1")->state(), rpc::ActorInfo::RESTARTING);
  EXPECT_EQ(gcs.actors().Find("a1")->num_restarts(), 1);
}

}  // namespace
}  // namespace raympi
