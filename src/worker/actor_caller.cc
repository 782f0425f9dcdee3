// CoreWorker, caller side of actors: creating them through the GCS, looking them up, and
// sending method calls straight to the actor's worker in submission order (docs/actors.md).
#include <unistd.h>

#include <algorithm>

#include "common/frame.h"
#include "common/logging.h"
#include "raympi/errors.h"
#include "worker/actor_specs.h"
#include "worker/core_worker.h"

namespace raympi {

namespace {

rpc::SchedulingStrategy ToProto(const SchedulingStrategy& s, const std::string& what) {
  rpc::SchedulingStrategy out;
  switch (s.kind) {
    case SchedulingStrategy::Kind::kDefault:
      out.set_kind(rpc::SchedulingStrategy::DEFAULT);
      break;
    case SchedulingStrategy::Kind::kSpread:
      out.set_kind(rpc::SchedulingStrategy::SPREAD);
      break;
    case SchedulingStrategy::Kind::kNodeAffinity:
      if (s.node < 0) {
        throw Error(what + ": NodeAffinity needs a node id (>= 0), got " + std::to_string(s.node));
      }
      out.set_kind(rpc::SchedulingStrategy::NODE_AFFINITY);
      out.set_node(s.node);
      out.set_soft(s.soft);
      break;
  }
  return out;
}

std::string DescribeActor(const rpc::ActorInfo& info, const std::string& actor_id) {
  std::string name;
  if (!info.name().empty()) {
    name = "'" + info.name() + "'";
  } else {
    name = DescribeObjectId(actor_id);
  }
  return "actor " + name + (info.class_name().empty() ? "" : " (" + info.class_name() + ")");
}

}  // namespace

rpc::Envelope CoreWorker::CallGcs(rpc::Envelope request) {
  return Call(std::move(request), MakeAddress(kGcsNode, 0));
}

rpc::Envelope CoreWorker::Call(rpc::Envelope request, const rpc::Address& dst) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) throw Error("raympi: the job is shutting down");
  uint64_t id = ++next_request_id_;
  Waiter waiter;
  waiter.num = 1;
  gcs_calls_[id].waiter = &waiter;
  *request.mutable_src() = MakeAddress(config_.node, config_.slot);
  *request.mutable_dst() = dst;
  request.set_request_id(id);
  Outbox out{std::move(request)};
  lock.unlock();
  SendAll(out);
  lock.lock();
  WaitFor(lock, waiter, std::chrono::steady_clock::time_point::max());
  std::optional<rpc::Envelope> reply = std::move(gcs_calls_[id].reply);
  gcs_calls_.erase(id);
  if (!reply) throw Error("raympi: the job is shutting down");
  return std::move(*reply);
}

std::string CoreWorker::CreateActor(const std::string& factory, const std::string& class_name,
                                    std::vector<internal::TaskArg> args,
                                    const internal::ActorOptions& options) {
  const std::string what = "raympi::Actor(" + factory + ")";
  rpc::Envelope request;
  rpc::ActorSpec* spec = request.mutable_create_actor()->mutable_spec();
  std::string actor_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    actor_id = NextObjectId().Binary();
  }
  spec->set_actor_id(actor_id);
  spec->set_name(options.name);
  spec->set_class_name(class_name);
  spec->set_max_restarts(options.max_restarts);
  spec->set_max_task_retries(options.max_task_retries);
  spec->set_detached(options.detached);
  rpc::TaskSpec* creation = spec->mutable_creation();
  creation->set_task_id(actor_id);
  creation->set_return_id(actor_id);
  creation->set_function(factory);
  creation->set_actor_id(actor_id);
  creation->set_actor_creation(true);
  creation->set_name(options.name);
  if (options.max_concurrency < 1) {
    throw Error(what + ": SetMaxConcurrency needs at least 1, got " +
                std::to_string(options.max_concurrency));
  }
  creation->set_max_concurrency(options.max_concurrency);
  *creation->mutable_owner() = MakeAddress(config_.node, config_.slot);
  *creation->mutable_strategy() = ToProto(options.strategy, what);
  for (const auto& [name, amount] : options.resources) {
    if (amount < 0) {
      throw Error(what + ": resource " + name + " must not be negative, got " +
                  std::to_string(amount));
    }
    if (amount > 0) (*creation->mutable_resources()->mutable_amounts())[name] = amount;
  }
  if (!options.placement_group_id.empty()) {
    *creation->mutable_resources() = PlacementGroupResources(
        what, options.placement_group_id, options.bundle_index, options.resources);
  }
  for (auto& a : args) {
    rpc::TaskArg* arg = creation->add_args();
    arg->set_value(std::move(a.value));
    arg->set_type(std::move(a.type));
  }
  rpc::Envelope reply = CallGcs(std::move(request));
  if (!reply.create_actor_reply().error().empty()) {
    throw Error(what + ": " + reply.create_actor_reply().error());
  }
  std::lock_guard<std::mutex> lock(mu_);
  actor_calls_[actor_id].subscribed = true;  // the GCS tells the creator of every state change
  return actor_id;
}

internal::ActorLookup CoreWorker::GetActor(const std::string& name) {
  if (name.empty()) throw Error("raympi::GetActor: the name is empty");
  rpc::Envelope request;
  request.mutable_get_actor_info()->set_name(name);
  rpc::Envelope reply = CallGcs(std::move(request));
  const rpc::ActorInfo& info = reply.actor_info();
  if (!info.error().empty()) throw Error("raympi::GetActor(\"" + name + "\"): " + info.error());
  return internal::ActorLookup{info.actor_id(), info.class_name()};
}

void CoreWorker::KillActor(const std::string& actor_id) {
  if (actor_id.empty()) throw Error("raympi::Kill: the ActorHandle is empty");
  rpc::Envelope request;
  request.mutable_kill_actor()->set_actor_id(actor_id);
  rpc::Envelope reply = CallGcs(std::move(request));
  if (!reply.actor_info().error().empty()) {
    throw Error("raympi::Kill: " + reply.actor_info().error());
  }
}

std::string CoreWorker::SubmitActorTask(const std::string& actor_id, const std::string& method,
                                        std::vector<internal::TaskArg> args,
                                        const std::string& return_type) {
  Outbox out;
  std::string return_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) throw Error("raympi: cannot call " + method + ": the job is shutting down");
    return_id = NextObjectId().Binary();
    rpc::TaskSpec spec;
    spec.set_task_id(return_id);
    spec.set_return_id(return_id);
    spec.set_function(method);
    spec.set_return_type(return_type);
    spec.set_actor_id(actor_id);
    spec.set_caller_id(caller_id_);
    *spec.mutable_owner() = MakeAddress(config_.node, config_.slot);
    AddArgs([&] { return "raympi: call of " + method; }, return_id, args, spec);
    objects_[return_id].local_refs = 1;  // the ref adopts it
    // Submission order is kept here: a call whose arguments are still pending holds back the
    // later ones, as the actor would run them in this order anyway.
    actor_calls_[actor_id].order.push_back(return_id);
    StartResolving(std::move(spec), out);
    SendActorTasks(actor_id, out);
    FlushReleases(out);
  }
  SendAll(out);
  return return_id;
}

void CoreWorker::EnqueueActorTask(rpc::TaskSpec&& spec, Outbox& out) {
  std::string actor_id = spec.actor_id();
  std::string task_id = spec.task_id();
  actor_calls_[actor_id].resolved[task_id] = std::move(spec);
  SendActorTasks(actor_id, out);
}

void CoreWorker::SendActorTasks(const std::string& actor_id, Outbox& out) {
  ActorCalls& calls = actor_calls_[actor_id];
  if (!calls.subscribed) {
    // A handle we got from elsewhere: ask the GCS where the actor is (and to tell us later).
    calls.subscribed = true;
    rpc::Envelope ask = NewEnvelope(kGcsNode, 0);
    ask.mutable_get_actor_info()->set_actor_id(actor_id);
    out.push_back(std::move(ask));
    return;
  }
  if (!calls.known) return;
  const rpc::ActorInfo& info = calls.info;
  if (info.state() == rpc::ActorInfo::DEAD) {
    std::string message = DescribeActor(info, actor_id) + " is dead: " + info.death_cause();
    while (!calls.order.empty()) {
      std::string id = calls.order.front();
      calls.order.pop_front();
      auto spec = calls.resolved.find(id);
      if (spec != calls.resolved.end()) {
        FailActorTask(spec->second, message, out);
        calls.resolved.erase(spec);
      }
      // Still resolving: it fails when its arguments are ready and it reaches Enqueue again.
    }
    for (auto& [id, spec] : calls.resolved) FailActorTask(spec, message, out);
    calls.resolved.clear();
    return;
  }
  if (info.state() != rpc::ActorInfo::ALIVE) return;
  if (calls.epoch != info.num_restarts()) {
    calls.epoch = info.num_restarts();  // a new instance numbers from 0
    calls.next_sequence = 0;
  }
  while (!calls.order.empty()) {
    const std::string id = calls.order.front();
    auto object = objects_.find(id);
    if (object != objects_.end() && object->second.ready) {  // failed while resolving
      calls.order.pop_front();
      continue;
    }
    auto spec = calls.resolved.find(id);
    if (spec == calls.resolved.end()) break;  // its arguments are not ready yet
    rpc::Envelope push = NewEnvelope(info.worker().node(), info.worker().slot());
    rpc::TaskSpec* s = push.mutable_push_task()->mutable_spec();
    *s = std::move(spec->second);
    calls.resolved.erase(spec);
    calls.order.pop_front();
    uint64_t sequence = calls.next_sequence++;
    s->set_sequence(sequence);
    // Encoded now, so the spec moves into `sent` (kept to send again to a restarted actor)
    // instead of being copied there, as Pump does for tasks.
    out.PushFrame(RouteSlot(push.dst()), EncodeFrame(push));
    calls.sent[sequence] = std::move(*s);
    actor_task_[id] = {actor_id, sequence};
  }
}

void CoreWorker::OnActorInfo(const rpc::ActorInfo& info, Outbox& out) {
  if (!info.error().empty() || info.actor_id().empty()) return;
  // Only actors the GCS subscribed us to (or that we killed, which are final) arrive here.
  ActorCalls& calls = actor_calls_[info.actor_id()];
  calls.subscribed = true;
  calls.known = true;
  calls.info = info;
  // Calls sent to an instance that is gone are retried (SetMaxTaskRetries) or fail.
  bool instance_gone =
      info.state() != rpc::ActorInfo::ALIVE && info.state() != rpc::ActorInfo::PENDING;
  if (info.state() == rpc::ActorInfo::ALIVE && calls.epoch >= 0 &&
      calls.epoch != info.num_restarts()) {
    instance_gone = true;
  }
  if (instance_gone && !calls.sent.empty()) {
    std::deque<std::string> retry;
    for (auto& [sequence, spec] : calls.sent) {
      actor_task_.erase(spec.task_id());
      int& used = calls.retries[spec.task_id()];
      bool can_retry = info.state() != rpc::ActorInfo::DEAD &&
                       (info.max_task_retries() < 0 || used < info.max_task_retries());
      if (can_retry) {
        ++used;
        retry.push_back(spec.task_id());
        calls.resolved[spec.task_id()] = std::move(spec);
      } else {
        std::string why = info.state() == rpc::ActorInfo::DEAD
                              ? " is dead: " + info.death_cause()
                              : " died while running this call (" + info.death_cause() +
                                    "); it is restarting, and the call is not retried "
                                    "(SetMaxTaskRetries)";
        FailActorTask(spec, DescribeActor(info, info.actor_id()) + why, out);
      }
    }
    calls.sent.clear();
    calls.order.insert(calls.order.begin(), retry.begin(), retry.end());
  }
  SendActorTasks(info.actor_id(), out);
}

void CoreWorker::OnActorTaskDone(const std::string& task_id) {
  auto it = actor_task_.find(task_id);
  if (it == actor_task_.end()) return;
  auto calls = actor_calls_.find(it->second.first);
  if (calls != actor_calls_.end()) {
    calls->second.sent.erase(it->second.second);
    calls->second.retries.erase(task_id);
  }
  actor_task_.erase(it);
}

void CoreWorker::FailActorTask(const rpc::TaskSpec& spec, const std::string& message, Outbox& out) {
  rpc::ObjectValue v;
  v.set_object_id(spec.return_id());
  v.set_is_error(true);
  v.set_actor_died(true);
  v.set_error_function(spec.function());
  v.set_error_message(message + " (call of " + spec.function() + ")");
  MarkReady(spec.return_id(), std::move(v), out);
  ReleaseTaskArgs(spec.task_id());
}

}  // namespace raympi
