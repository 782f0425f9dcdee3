// NodeManager, placement-group bundles: the raylet's side of the GCS's two-phase commit
// (bundle_manager.h keeps the bundles; this file answers the GCS and fixes up leases).
#include "common/bundle_resources.h"
#include "common/frame.h"
#include "common/logging.h"
#include "common/resources.h"
#include "raylet_rank/node_manager.h"

namespace raympi {

void NodeManager::ReplyBundles(const rpc::Envelope& request, rpc::BundlesReply reply) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  *e.mutable_dst() = request.src();
  e.set_request_id(request.request_id());
  reply.set_node(config_.node);
  *e.mutable_bundles_reply() = std::move(reply);
  send_(e);
}

void NodeManager::OnPrepareBundles(const rpc::Envelope& envelope) {
  const rpc::PrepareBundles& prepare = envelope.prepare_bundles();
  rpc::BundlesReply reply;
  reply.set_placement_group_id(prepare.placement_group_id());
  std::vector<rpc::Bundle> prepared;
  Status st = bundles_.Prepare(prepare, &available_, &prepared);
  if (!st.ok()) {
    reply.set_error(st.message());
  } else {
    for (rpc::Bundle& b : prepared) *reply.add_bundles() = std::move(b);
    report_due_ = true;
  }
  RAYMPI_LOG_DEBUG("node {}: prepare of {} bundle(s): {}", config_.node, prepare.bundles_size(),
                   st.ok() ? "reserved" : st.message());
  ReplyBundles(envelope, std::move(reply));
}

void NodeManager::OnCommitBundles(const rpc::Envelope& envelope) {
  const std::string& id = envelope.commit_bundles().placement_group_id();
  rpc::BundlesReply reply;
  reply.set_placement_group_id(id);
  reply.set_commit(true);
  Status st = bundles_.Commit(id, &total_, &available_);
  if (!st.ok()) reply.set_error(st.message());
  report_due_ = true;
  total_changed_ = true;
  ReplyBundles(envelope, std::move(reply));
  GrantQueued();
}

void NodeManager::OnReturnBundles(const rpc::ReturnBundles& ret) {
  std::vector<uint64_t> ended = bundles_.Return(ret, &total_, &available_);
  // Leases in the group end with their (killed) workers; what they held of the group is gone
  // with it, so only the rest goes back to the pool when the supervisor reports the death.
  const std::string hex = GroupHex(ret.placement_group_id());
  for (uint64_t id : ended) {
    auto lease = leases_.find(id);
    if (lease == leases_.end()) continue;
    auto& amounts = *lease->second.resources.mutable_amounts();
    for (auto it = amounts.begin(); it != amounts.end();) {
      auto parsed = ParseGroupResource(it->first);
      it = parsed && parsed->group_hex == hex ? amounts.erase(it) : std::next(it);
    }
  }
  // Requests queued for the group can never be granted now.
  if (!ret.prepared_only()) {
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (BundleManager::GroupOf(it->resources) != hex) {
        ++it;
        continue;
      }
      Infeasible(*it, ret.cause().empty() ? "its placement group was removed" : ret.cause());
      it = queue_.erase(it);
    }
  }
  report_due_ = true;
  total_changed_ = true;
  GrantQueued();
}

}  // namespace raympi
