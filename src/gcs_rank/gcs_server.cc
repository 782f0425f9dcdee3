#include "gcs_rank/gcs_server.h"

#include "common/frame.h"
#include "common/logging.h"
#include "common/resources.h"

namespace raympi {

GcsServer::GcsServer(Callbacks callbacks, GcsOptions options)
    : callbacks_(std::move(callbacks)), options_(options) {
  if (!callbacks_.now) callbacks_.now = [] { return Clock::now(); };
}

void GcsServer::Handle(rpc::Envelope& envelope) {
  switch (envelope.body_case()) {
    case rpc::Envelope::kRegisterNode: {
      const rpc::NodeInfo& info = envelope.register_node().info();
      nodes_[info.node()] = info;
      nodes_[info.node()].set_alive(true);
      RAYMPI_LOG_INFO("node {} registered from rank {} on {} with {}", info.node(), info.rank(),
                      info.host(), Describe(info.total()));
      view_dirty_ = true;
      break;
    }
    case rpc::Envelope::kResourceReport: {
      auto it = nodes_.find(envelope.resource_report().node());
      if (it == nodes_.end()) break;
      *it->second.mutable_available() = envelope.resource_report().available();
      view_dirty_ = true;
      break;
    }
    case rpc::Envelope::kDriverExit:
      if (job_ended_) break;
      job_ended_ = true;
      exit_code_ = envelope.driver_exit().exit_code();
      RAYMPI_LOG_INFO("driver exited with code {}; ending the job", exit_code_);
      callbacks_.end_job(exit_code_);
      break;
    default:
      RAYMPI_LOG_WARN("GCS ignores message type {}", static_cast<int>(envelope.body_case()));
  }
}

void GcsServer::Tick() {
  if (job_ended_ || nodes_.empty()) return;
  Clock::time_point now = callbacks_.now();
  if (view_dirty_ || now - last_broadcast_ >= options_.view_refresh_period) {
    last_broadcast_ = now;
    BroadcastView();
  }
}

void GcsServer::BroadcastView() {
  view_dirty_ = false;
  rpc::Envelope view;
  *view.mutable_src() = MakeAddress(kGcsNode, 0);
  for (const auto& [node, info] : nodes_) *view.mutable_cluster_view()->add_nodes() = info;
  for (const auto& [node, info] : nodes_) {
    *view.mutable_dst() = MakeAddress(node, kRayletSlot);
    callbacks_.send(view);
  }
}

}  // namespace raympi
