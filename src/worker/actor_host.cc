// CoreWorker, executor side of actors: a worker leased by the GCS runs an actor's factory and
// keeps the instance; method calls run on the task thread, per caller in sequence order
// (early arrivals wait), one at a time (docs/actors.md).
#include <algorithm>

#include "common/frame.h"
#include "common/logging.h"
#include "raympi/errors.h"
#include "worker/actor_specs.h"
#include "worker/core_worker.h"

namespace raympi {

namespace {

std::string ActorName(const std::string& actor_id) { return "actor " + DescribeObjectId(actor_id); }

}  // namespace

void CoreWorker::OnActorPush(rpc::PushTask push, Outbox& out) {
  const rpc::TaskSpec& spec = push.spec();
  auto it = hosted_.find(spec.actor_id());
  if (it == hosted_.end()) {
    auto dead = dead_hosted_.find(spec.actor_id());
    std::string message =
        ActorName(spec.actor_id()) +
        (dead != dead_hosted_.end() ? " is dead: " + dead->second
                                    : " is not on this worker (it moved after a restart, or died)");
    rpc::Envelope reply = NewEnvelope(spec.owner().node(), spec.owner().slot());
    rpc::TaskDone* done = reply.mutable_task_done();
    done->set_task_id(spec.task_id());
    rpc::ObjectValue* v = done->mutable_result();
    v->set_object_id(spec.return_id());
    v->set_is_error(true);
    v->set_actor_died(true);
    v->set_error_function(spec.function());
    v->set_error_message(message + " (call of " + spec.function() + ")");
    out.push_back(std::move(reply));
    return;
  }
  HostedActor& actor = it->second;
  const std::string caller = spec.caller_id();
  uint64_t& expected = actor.expected[caller];
  if (spec.sequence() < expected) {
    RAYMPI_LOG_WARN("{}: dropping call {} of {} (sequence {} already ran)",
                    ActorName(spec.actor_id()), spec.function(), caller, spec.sequence());
    return;
  }
  if (spec.sequence() > expected) {
    actor.early[caller][spec.sequence()] = std::move(push);
    return;
  }
  QueueActorCall(actor, std::move(push));
  ++expected;
  auto& early = actor.early[caller];
  while (!early.empty() && early.begin()->first == expected) {
    QueueActorCall(actor, std::move(early.begin()->second));
    early.erase(early.begin());
    ++expected;
  }
}

void CoreWorker::QueueActorCall(HostedActor& actor, rpc::PushTask push) {
  if (!actor.pool) {
    pushed_.push_back(std::move(push));
    role_.Notify(task_seat_);
    return;
  }
  actor.pool->queue.push_back(std::move(push));
  if (!actor.pool->idle.empty()) {
    Waiter* thread = actor.pool->idle.back();
    actor.pool->idle.pop_back();
    ++thread->ready;
    role_.Notify(*thread);
  }
}

void CoreWorker::RunActorThread(std::shared_ptr<ActorPool> pool) {
  for (;;) {
    rpc::PushTask push;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (pool->queue.empty() && !pool->retired) {
        Waiter waiter;
        waiter.num = 1;
        pool->idle.push_back(&waiter);
        WaitFor(lock, waiter, std::chrono::steady_clock::time_point::max());
        auto& idle = pool->idle;
        idle.erase(std::remove(idle.begin(), idle.end(), &waiter), idle.end());
      }
      if (stopping_ || pool->queue.empty()) {
        if (stopping_ || pool->retired) return;
        continue;
      }
      push = std::move(pool->queue.front());
      pool->queue.pop_front();
    }
    ExecuteTask(push);
  }
}

void CoreWorker::OnDestroyActor(const rpc::DestroyActor& destroy, Outbox& out) {
  dead_hosted_[destroy.actor_id()] = destroy.cause();
  auto it = hosted_.find(destroy.actor_id());
  if (it == hosted_.end()) return;  // still being created: RunActorTask drops the instance
  auto early = std::move(it->second.early);
  retired_[destroy.actor_id()] = std::move(it->second.instance);
  if (std::shared_ptr<ActorPool> pool = it->second.pool) {
    // Its threads fail the calls still queued, then end.
    pool->retired = true;
    for (Waiter* thread : pool->idle) {
      ++thread->ready;
      role_.Notify(*thread);
    }
    pool->idle.clear();
  }
  hosted_.erase(it);
  // Calls that arrived early will never run: fail them now (the actor is no longer hosted).
  for (auto& [caller, calls] : early) {
    for (auto& [sequence, push] : calls) OnActorPush(std::move(push), out);
  }
  // The instance is destroyed on the task thread, after the calls queued before the kill
  // (which now fail), never under mu_: its destructor is user code.
  rpc::PushTask retire;
  retire.mutable_spec()->set_actor_id(destroy.actor_id());
  pushed_.push_back(std::move(retire));
  role_.Notify(task_seat_);
}

void CoreWorker::DestroyRetired(const std::string& actor_id) {
  std::shared_ptr<void> instance;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = retired_.find(actor_id);
    if (it == retired_.end()) return;
    instance = std::move(it->second);
    retired_.erase(it);
  }
  instance.reset();
}

std::string CoreWorker::RunActorTask(const rpc::TaskSpec& spec, const internal::FunctionInfo& info,
                                     const std::vector<std::string_view>& args) {
  if (spec.actor_creation()) {
    if (!info.factory) {
      throw Error("'" + spec.function() + "' is not an actor factory (a function returning T*)");
    }
    std::shared_ptr<void> instance = info.factory(args);
    std::lock_guard<std::mutex> lock(mu_);
    if (dead_hosted_.count(spec.actor_id()) || stopping_) return {};  // killed meanwhile
    HostedActor& actor = hosted_[spec.actor_id()];
    actor.instance = std::move(instance);
    if (spec.max_concurrency() > 1) {
      actor.pool = std::make_shared<ActorPool>();
      for (int i = 0; i < spec.max_concurrency(); ++i) {
        actor_threads_.emplace_back([this, pool = actor.pool] { RunActorThread(pool); });
      }
    }
    return {};
  }
  if (!info.method) {
    throw Error("'" + spec.function() + "' is not a method registered with RAYMPI_REMOTE");
  }
  std::shared_ptr<void> instance;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = hosted_.find(spec.actor_id());
    if (it == hosted_.end()) {
      auto dead = dead_hosted_.find(spec.actor_id());
      throw ActorDiedError(ActorName(spec.actor_id()) + " is dead: " +
                           (dead != dead_hosted_.end() ? dead->second : "unknown cause") +
                           " (call of " + spec.function() + ")");
    }
    instance = it->second.instance;  // kept alive while the call runs
  }
  return info.method(instance.get(), args);
}

}  // namespace raympi
