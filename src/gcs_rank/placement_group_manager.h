// PlacementGroupManager: the GCS's placement-group table. It places each group's bundles on
// nodes (placement_policy.h) and makes the placement real with Ray's two-phase commit: every
// chosen raylet first reserves its bundles (prepare); once all have, every one makes them
// usable (commit); if any prepare fails, the others give their reservation back (cancel) and
// the group waits for resources to change. One group is in flight at a time, as in Ray.
// Groups that can never fit fail at creation with the reason; removal gives the bundles back
// (the raylets end the tasks and actors running in them); bundles on a lost node are placed
// again on the nodes left.
//
// Thread-safety: single-threaded, driven by the GCS's event loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raympi.pb.h"

namespace raympi {

class PlacementGroupManager {
 public:
  using Clock = std::chrono::steady_clock;
  struct Deps {
    std::function<void(const rpc::Envelope&)> send;
    // The GCS's node table: the policy reads it; committed bundles are written into it at
    // once (their named resources), so raylets learn them before the creator does.
    std::map<int, rpc::NodeInfo>* nodes = nullptr;
    std::function<void()> spread_view;  // broadcast the node table now
    std::function<Clock::time_point()> now;
  };
  explicit PlacementGroupManager(Deps deps);

  // True for the envelope types this class handles.
  static bool Handles(const rpc::Envelope& envelope);
  // CreatePlacementGroup, GetPlacementGroup, RemovePlacementGroup (callers), BundlesReply
  // (raylets).
  void Handle(const rpc::Envelope& envelope);
  // Answers waits whose time is up; places pending groups when resources changed.
  void Tick();
  // Some node's resources changed: pending groups may fit now.
  void OnResourcesChanged() { retry_pending_ = true; }
  // A node is lost: its bundles are placed again elsewhere (the group is PENDING meanwhile).
  void OnNodeLost(int node);

  const rpc::PlacementGroupInfo* Find(const std::string& group_id) const;

 private:
  struct Waiter {
    rpc::Address caller;
    uint64_t request_id = 0;
    Clock::time_point deadline;
  };
  struct Group {
    rpc::PlacementGroupInfo info;
    std::vector<Waiter> waiters;
    // The commit in flight: the nodes chosen for the bundles being placed, by bundle.
    std::vector<int> attempt;
    std::set<int> awaiting;       // nodes whose reply is due
    std::set<int> prepared;       // nodes that reserved their bundles
    std::string prepare_failure;  // first failed prepare
    bool committing = false;
  };

  void OnCreate(const rpc::Envelope& envelope);
  void OnGet(const rpc::Envelope& envelope);
  void OnRemove(const rpc::Envelope& envelope);
  void OnBundlesReply(const rpc::Envelope& envelope);
  // The first pending group that fits starts its two-phase commit.
  void SchedulePending();
  bool TryPlace(Group& group);
  void FinishPrepare(Group& group);
  void FinishCommit(Group& group);
  // Gives back what the attempt in flight reserved; the group waits for resources to change.
  void CancelAttempt(Group& group, const std::string& why);
  void Fail(Group& group, const std::string& why);
  void Answer(Group& group);  // every waiter gets the current info
  void Reply(const rpc::Address& to, uint64_t request_id, const rpc::PlacementGroupInfo& info);
  void SendToRaylet(int node, rpc::Envelope envelope);
  // Sends what the handlers queued. A raylet on the GCS's rank answers within send(), so
  // messages go out only once the state is complete, and a nested answer is queued behind.
  void Flush();
  // Writes (or erases) a committed bundle's named resources in the node table.
  void ShowBundle(const std::string& group_id, const rpc::Bundle& bundle, bool present);
  std::string Describe(const Group& group) const;

  Deps deps_;
  std::map<std::string, Group> groups_;       // by group id, removed ones included
  std::map<std::string, std::string> names_;  // name -> id of a group not removed
  std::vector<std::string> pending_;          // in creation order
  std::set<std::string> waited_on_;           // groups with waiters (Tick checks only these)
  std::deque<std::string> removed_;           // oldest first; the table keeps kMaxRemoved
  std::string in_flight_;                     // the group whose commit is under way
  bool retry_pending_ = false;
  std::vector<rpc::Envelope> outbox_;
  bool flushing_ = false;
  // Creations answered once the handling is over: with the node's raylet on this rank, a
  // group whose bundles all go there is CREATED by then, and the creator needs no wait.
  std::vector<Waiter> created_;
  std::vector<std::string> created_ids_;
};

}  // namespace raympi
