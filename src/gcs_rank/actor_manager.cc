#include "gcs_rank/actor_manager.h"

#include <algorithm>

#include "common/frame.h"
#include "common/ids.h"
#include "common/logging.h"

namespace raympi {

namespace {

bool SameAddress(const rpc::Address& a, const rpc::Address& b) {
  return a.node() == b.node() && a.slot() == b.slot();
}

std::string Describe(const rpc::ActorInfo& info) {
  return "actor " +
         (info.name().empty() ? DescribeObjectId(info.actor_id()) : "'" + info.name() + "'");
}

}  // namespace

ActorManager::ActorManager(Send send) : send_(std::move(send)) {}

bool ActorManager::Handles(const rpc::Envelope& envelope) {
  switch (envelope.body_case()) {
    case rpc::Envelope::kCreateActor:
    case rpc::Envelope::kGetActorInfo:
    case rpc::Envelope::kKillActor:
    case rpc::Envelope::kLeaseReply:
    case rpc::Envelope::kTaskDone:
    case rpc::Envelope::kWorkerDied:
      return true;
    default:
      return false;
  }
}

void ActorManager::Handle(const rpc::Envelope& envelope) {
  switch (envelope.body_case()) {
    case rpc::Envelope::kCreateActor:
      OnCreate(envelope);
      break;
    case rpc::Envelope::kGetActorInfo:
      OnGetInfo(envelope);
      break;
    case rpc::Envelope::kKillActor:
      OnKill(envelope);
      break;
    case rpc::Envelope::kLeaseReply:
      OnLeaseReply(envelope.lease_reply());
      break;
    case rpc::Envelope::kTaskDone:
      OnCreationDone(envelope.task_done());
      break;
    case rpc::Envelope::kWorkerDied:
      OnWorkerDied(envelope.worker_died());
      break;
    default:
      break;
  }
}

const rpc::ActorInfo* ActorManager::Find(const std::string& actor_id) const {
  auto it = actors_.find(actor_id);
  return it == actors_.end() ? nullptr : &it->second.info;
}

rpc::Envelope ActorManager::NewEnvelope(const rpc::Address& dst) const {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(kGcsNode, 0);
  *e.mutable_dst() = dst;
  return e;
}

void ActorManager::Reply(const rpc::Envelope& request, rpc::Envelope reply) {
  *reply.mutable_src() = MakeAddress(kGcsNode, 0);
  *reply.mutable_dst() = request.src();
  reply.set_request_id(request.request_id());
  send_(reply);
}

void ActorManager::OnCreate(const rpc::Envelope& envelope) {
  const rpc::ActorSpec& spec = envelope.create_actor().spec();
  rpc::Envelope reply;
  reply.mutable_create_actor_reply()->set_actor_id(spec.actor_id());
  if (actors_.count(spec.actor_id())) {
    reply.mutable_create_actor_reply()->set_error("actor id " + DescribeObjectId(spec.actor_id()) +
                                                  " is already registered");
    Reply(envelope, std::move(reply));
    return;
  }
  if (!spec.name().empty()) {
    auto taken = names_.find(spec.name());
    if (taken != names_.end()) {
      reply.mutable_create_actor_reply()->set_error(
          "the actor name '" + spec.name() + "' is already taken by a live actor (" +
          actors_[taken->second].spec.class_name() +
          "); pick another name, or raympi::Kill the other actor first");
      Reply(envelope, std::move(reply));
      return;
    }
    names_[spec.name()] = spec.actor_id();
  }
  Actor& actor = actors_[spec.actor_id()];
  actor.spec = spec;
  actor.owner = envelope.src();
  rpc::ActorInfo& info = actor.info;
  info.set_actor_id(spec.actor_id());
  info.set_name(spec.name());
  info.set_class_name(spec.class_name());
  info.set_state(rpc::ActorInfo::PENDING);
  info.set_max_task_retries(spec.max_task_retries());
  info.set_detached(spec.detached());
  RAYMPI_LOG_INFO("{} ({}) registered by {}.{}", Describe(info), spec.class_name(),
                  actor.owner.node(), actor.owner.slot());
  Subscribe(actor, actor.owner);
  Reply(envelope, std::move(reply));
  // The owner's raylet places it, as at creation; the head's when that node is lost.
  int home = lost_nodes_.count(actor.owner.node()) ? 0 : actor.owner.node();
  RequestWorker(actor, home, /*spilled=*/false);
}

void ActorManager::Subscribe(Actor& actor, const rpc::Address& caller) {
  for (const rpc::Address& a : actor.subscribers) {
    if (SameAddress(a, caller)) return;
  }
  actor.subscribers.push_back(caller);
}

void ActorManager::OnGetInfo(const rpc::Envelope& envelope) {
  const rpc::GetActorInfo& request = envelope.get_actor_info();
  std::string id = request.actor_id();
  rpc::Envelope reply;
  if (id.empty()) {
    auto named = names_.find(request.name());
    if (named == names_.end()) {
      std::string known;
      for (const auto& [name, actor_id] : names_) known += (known.empty() ? "" : ", ") + name;
      reply.mutable_actor_info()->set_name(request.name());
      reply.mutable_actor_info()->set_error(
          "no live actor is named '" + request.name() +
          "' (named actors: " + (known.empty() ? std::string("none") : known) + ")");
      Reply(envelope, std::move(reply));
      return;
    }
    id = named->second;
  }
  auto it = actors_.find(id);
  if (it == actors_.end()) {
    reply.mutable_actor_info()->set_actor_id(id);
    reply.mutable_actor_info()->set_error("actor " + DescribeObjectId(id) +
                                          " is unknown to the GCS");
    Reply(envelope, std::move(reply));
    return;
  }
  Subscribe(it->second, envelope.src());
  *reply.mutable_actor_info() = it->second.info;
  Reply(envelope, std::move(reply));
}

void ActorManager::OnKill(const rpc::Envelope& envelope) {
  rpc::Envelope reply;
  auto it = actors_.find(envelope.kill_actor().actor_id());
  if (it == actors_.end()) {
    reply.mutable_actor_info()->set_actor_id(envelope.kill_actor().actor_id());
    reply.mutable_actor_info()->set_error(
        "actor " + DescribeObjectId(envelope.kill_actor().actor_id()) + " is unknown to the GCS");
    Reply(envelope, std::move(reply));
    return;
  }
  Actor& actor = it->second;
  if (actor.info.state() != rpc::ActorInfo::DEAD) Die(actor, "killed by raympi::Kill");
  *reply.mutable_actor_info() = actor.info;
  Reply(envelope, std::move(reply));
}

void ActorManager::RequestWorker(Actor& actor, int node, bool spilled) {
  if (actor.lease_request_id == 0) {
    actor.lease_request_id = ++next_lease_request_;
    lease_requests_[actor.lease_request_id] = actor.spec.actor_id();
  }
  actor.lease_node = node;
  rpc::Envelope request = NewEnvelope(MakeAddress(node, kRayletSlot));
  rpc::RequestLease* r = request.mutable_request_lease();
  r->set_lease_request_id(actor.lease_request_id);
  *r->mutable_resources() = actor.spec.creation().resources();
  *r->mutable_strategy() = actor.spec.creation().strategy();
  r->set_spilled(spilled);
  send_(request);
}

void ActorManager::OnLeaseReply(const rpc::LeaseReply& reply) {
  auto request = lease_requests_.find(reply.lease_request_id());
  if (request == lease_requests_.end()) {
    // Granted after the actor died: hand the worker back.
    if (reply.result_case() == rpc::LeaseReply::kWorker) {
      rpc::Envelope ret = NewEnvelope(MakeAddress(reply.worker().node(), kRayletSlot));
      ret.mutable_return_lease()->set_lease_id(reply.lease_id());
      send_(ret);
    }
    return;
  }
  Actor& actor = actors_[request->second];
  switch (reply.result_case()) {
    case rpc::LeaseReply::kWorker: {
      lease_requests_.erase(request);
      actor.lease_request_id = 0;
      actor.lease_id = reply.lease_id();
      actor.lease_node = reply.worker().node();
      *actor.info.mutable_worker() = reply.worker();
      rpc::Envelope push = NewEnvelope(reply.worker());
      push.mutable_push_task()->set_lease_id(reply.lease_id());
      rpc::TaskSpec* spec = push.mutable_push_task()->mutable_spec();
      *spec = actor.spec.creation();
      *spec->mutable_owner() = MakeAddress(kGcsNode, 0);  // its TaskDone comes here
      RAYMPI_LOG_DEBUG("{} placed on worker {}.{}", Describe(actor.info), reply.worker().node(),
                       reply.worker().slot());
      send_(push);
      break;
    }
    case rpc::LeaseReply::kSpillbackNode:
      RequestWorker(actor, reply.spillback_node(), /*spilled=*/true);
      break;
    case rpc::LeaseReply::kRejected:
      RequestWorker(actor, actor.owner.node(), /*spilled=*/false);
      break;
    case rpc::LeaseReply::kInfeasible:
      lease_requests_.erase(request);
      actor.lease_request_id = 0;
      Die(actor, "cannot be scheduled: " + reply.infeasible());
      break;
    default:
      break;
  }
}

void ActorManager::OnCreationDone(const rpc::TaskDone& done) {
  auto it = actors_.find(done.task_id());
  if (it == actors_.end()) return;
  Actor& actor = it->second;
  if (actor.info.state() == rpc::ActorInfo::DEAD) return;  // killed while it was created
  if (done.result().is_error()) {
    Die(actor, "its factory " + actor.spec.creation().function() +
                   " failed: " + done.result().error_message());
    return;
  }
  actor.info.set_state(rpc::ActorInfo::ALIVE);
  actor.info.set_death_cause("");
  RAYMPI_LOG_INFO("{} alive on worker {}.{} (restarts: {})", Describe(actor.info),
                  actor.info.worker().node(), actor.info.worker().slot(),
                  actor.info.num_restarts());
  Publish(actor);
}

void ActorManager::OnWorkerDied(const rpc::WorkerDied& died) {
  std::string cause = "its worker " + std::to_string(died.worker().node()) + "." +
                      std::to_string(died.worker().slot()) + " (pid " + std::to_string(died.pid()) +
                      ") died: " + died.cause();
  for (auto& [id, actor] : actors_) {
    if (actor.info.state() == rpc::ActorInfo::DEAD) continue;
    bool on_worker = actor.lease_id != 0 && SameAddress(actor.info.worker(), died.worker());
    for (uint64_t lease : died.lease_ids())
      on_worker |= actor.lease_id != 0 && lease == actor.lease_id;
    if (on_worker) {
      actor.lease_id = 0;  // the raylet reclaims the dead worker's leases
      RestartOrDie(actor, cause);
    } else if (!actor.spec.detached() && SameAddress(actor.owner, died.worker())) {
      Die(actor, "its owner (worker " + std::to_string(died.worker().node()) + "." +
                     std::to_string(died.worker().slot()) + ") died: " + died.cause());
    }
  }
}

void ActorManager::OnNodeLost(int node, const std::string& cause) {
  lost_nodes_.insert(node);
  const std::string what = "node " + std::to_string(node) + " was lost (" + cause + ")";
  for (auto& [id, actor] : actors_) {
    if (actor.info.state() == rpc::ActorInfo::DEAD) continue;
    if (!actor.spec.detached() && actor.owner.node() == node) {
      Die(actor, "its owner's " + what);
    } else if (actor.lease_id != 0 && actor.info.worker().node() == node) {
      actor.lease_id = 0;  // gone with the node
      RestartOrDie(actor, "its " + what);
    }
  }
}

void ActorManager::RestartOrDie(Actor& actor, const std::string& cause) {
  int max = actor.spec.max_restarts();
  if (max >= 0 && actor.info.num_restarts() >= max) {
    Die(actor, cause + (max > 0 ? " (after " + std::to_string(max) + " restarts)" : ""));
    return;
  }
  actor.info.set_state(rpc::ActorInfo::RESTARTING);
  actor.info.set_num_restarts(actor.info.num_restarts() + 1);
  actor.info.set_death_cause(cause);
  actor.info.clear_worker();
  RAYMPI_LOG_INFO("{} restarting ({} of {}): {}", Describe(actor.info), actor.info.num_restarts(),
                  max < 0 ? std::string("unlimited") : std::to_string(max), cause);
  Publish(actor);
  RequestWorker(actor, actor.owner.node(), /*spilled=*/false);
}

void ActorManager::Die(Actor& actor, const std::string& cause) {
  actor.info.set_state(rpc::ActorInfo::DEAD);
  actor.info.set_death_cause(cause);
  RAYMPI_LOG_INFO("{} is dead: {}", Describe(actor.info), cause);
  auto named = names_.find(actor.info.name());
  if (named != names_.end() && named->second == actor.info.actor_id()) names_.erase(named);
  if (actor.lease_request_id != 0) {
    rpc::Envelope cancel = NewEnvelope(MakeAddress(actor.lease_node, kRayletSlot));
    cancel.mutable_cancel_lease_request()->set_lease_request_id(actor.lease_request_id);
    send_(cancel);
    lease_requests_.erase(actor.lease_request_id);
    actor.lease_request_id = 0;
  }
  if (actor.lease_id != 0) {
    // The worker drops the instance before the raylet can lease it again (both go through the
    // worker's raylet, in this order); the worker goes back to the pool.
    rpc::Envelope destroy = NewEnvelope(actor.info.worker());
    destroy.mutable_destroy_actor()->set_actor_id(actor.info.actor_id());
    destroy.mutable_destroy_actor()->set_cause(cause);
    send_(destroy);
    rpc::Envelope ret = NewEnvelope(MakeAddress(actor.lease_node, kRayletSlot));
    ret.mutable_return_lease()->set_lease_id(actor.lease_id);
    send_(ret);
    actor.lease_id = 0;
  }
  Publish(actor);
}

void ActorManager::Publish(Actor& actor) {
  for (const rpc::Address& caller : actor.subscribers) {
    rpc::Envelope update = NewEnvelope(caller);
    *update.mutable_actor_info() = actor.info;
    send_(update);
  }
}

}  // namespace raympi
