// ActorManager: the GCS's actor table. It places each actor on a dedicated worker (a lease
// asked from a raylet and held while the actor lives), pushes the actor's creation task to that
// worker, keeps id, name, node, state and restarts, answers lookups by id or name, tells
// subscribed callers of every state change, restarts an actor whose worker died (up to its
// max_restarts) and ends actors that are killed or whose owner died.
//
// Thread-safety: single-threaded, driven by the GCS's event loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raympi.pb.h"

namespace raympi {

class ActorManager {
 public:
  using Send = std::function<void(const rpc::Envelope&)>;
  explicit ActorManager(Send send);

  // True for the envelope types this class handles (see Handle).
  static bool Handles(const rpc::Envelope& envelope);
  // CreateActor, GetActorInfo, KillActor (from callers), LeaseReply (from raylets), TaskDone
  // (the creation task, from the actor's worker) and WorkerDied (from raylets).
  void Handle(const rpc::Envelope& envelope);
  // A node is lost: its actors restart elsewhere (or die), owned actors of its processes die.
  void OnNodeLost(int node, const std::string& cause);

  // The table, for tests and the GCS snapshot. nullptr when unknown.
  const rpc::ActorInfo* Find(const std::string& actor_id) const;
  size_t size() const { return actors_.size(); }

 private:
  struct Actor {
    rpc::ActorSpec spec;
    rpc::ActorInfo info;
    rpc::Address owner;
    uint64_t lease_request_id = 0;  // asking for a worker (0: not asking)
    int lease_node = -1;            // the raylet that holds the request or the lease
    uint64_t lease_id = 0;          // held while the actor lives
    std::vector<rpc::Address> subscribers;
  };

  void OnCreate(const rpc::Envelope& envelope);
  void OnGetInfo(const rpc::Envelope& envelope);
  void OnKill(const rpc::Envelope& envelope);
  void OnLeaseReply(const rpc::LeaseReply& reply);
  void OnCreationDone(const rpc::TaskDone& done);
  void OnWorkerDied(const rpc::WorkerDied& died);
  void RequestWorker(Actor& actor, int node, bool spilled);
  // Restarts the actor if restarts are left, else marks it dead with `cause`.
  void RestartOrDie(Actor& actor, const std::string& cause);
  // DEAD with `cause`: frees its name, ends the instance and returns the lease.
  void Die(Actor& actor, const std::string& cause);
  void Publish(Actor& actor);
  void Subscribe(Actor& actor, const rpc::Address& caller);
  void Reply(const rpc::Envelope& request, rpc::Envelope reply);
  rpc::Envelope NewEnvelope(const rpc::Address& dst) const;

  Send send_;
  std::map<std::string, Actor> actors_;             // by actor id
  std::map<std::string, std::string> names_;        // name -> id of a live actor
  std::set<int> lost_nodes_;                        // never placed on again
  std::map<uint64_t, std::string> lease_requests_;  // lease request id -> actor id
  uint64_t next_lease_request_ = 0;
};

}  // namespace raympi
