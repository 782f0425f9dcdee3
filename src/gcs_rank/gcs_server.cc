#include "gcs_rank/gcs_server.h"

#include <google/protobuf/util/json_util.h>
#include <spdlog/fmt/fmt.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "common/frame.h"
#include "common/logging.h"
#include "common/resources.h"

namespace raympi {

GcsServer::GcsServer(Callbacks callbacks, GcsOptions options)
    : callbacks_(std::move(callbacks)),
      options_(options),
      own_stall_(options.own_stall),
      actors_([this](const rpc::Envelope& e) { callbacks_.send(e); }),
      placement_groups_(PlacementGroupManager::Deps{
          [this](const rpc::Envelope& e) { callbacks_.send(e); }, &nodes_,
          [this] { BroadcastView(); }, [this] { return callbacks_.now(); }}) {
  if (!callbacks_.now) callbacks_.now = [] { return Clock::now(); };
}

void GcsServer::Handle(rpc::Envelope& envelope) {
  if (ActorManager::Handles(envelope)) {
    actors_.Handle(envelope);
    // A dead worker may matter to more than actors (below); other actor messages are done.
    if (!envelope.has_worker_died()) return;
  }
  if (PlacementGroupManager::Handles(envelope)) return placement_groups_.Handle(envelope);
  switch (envelope.body_case()) {
    case rpc::Envelope::kRegisterNode: {
      const rpc::NodeInfo& info = envelope.register_node().info();
      nodes_[info.node()] = info;
      nodes_[info.node()].set_alive(true);
      last_heard_[info.node()] = callbacks_.now();
      RAYMPI_LOG_INFO("node {} registered from rank {} on {} with {}", info.node(), info.rank(),
                      info.host(), Describe(info.total()));
      view_dirty_ = true;
      break;
    }
    case rpc::Envelope::kResourceReport: {
      auto it = nodes_.find(envelope.resource_report().node());
      if (it == nodes_.end() || !it->second.alive()) break;  // a lost node stays lost
      *it->second.mutable_available() = envelope.resource_report().available();
      if (envelope.resource_report().has_total()) {
        *it->second.mutable_total() = envelope.resource_report().total();
      }
      last_heard_[it->first] = callbacks_.now();
      view_dirty_ = true;
      placement_groups_.OnResourcesChanged();
      break;
    }
    case rpc::Envelope::kDriverExit:
      if (job_ended_) break;
      job_ended_ = true;
      exit_code_ = envelope.driver_exit().exit_code();
      RAYMPI_LOG_INFO("driver exited with code {}; ending the job", exit_code_);
      summary_deadline_ = callbacks_.now() + options_.summary_timeout;
      callbacks_.end_job(exit_code_);
      break;
    case rpc::Envelope::kWorkerDied:  // actors restart above; nothing else to do yet
      break;
    case rpc::Envelope::kNodeSummary:
      summaries_[envelope.node_summary().node()] = envelope.node_summary();
      break;
    default:
      RAYMPI_LOG_WARN("GCS ignores message type {}", static_cast<int>(envelope.body_case()));
  }
}

void GcsServer::Tick() {
  if (job_ended_) {
    if (!finished_ && (summaries_.size() >= NumAlive() || callbacks_.now() >= summary_deadline_)) {
      Finish();
    }
    return;
  }
  if (nodes_.empty()) return;
  Clock::time_point now = callbacks_.now();
  if (Clock::duration stall = own_stall_.Tick(now); stall != Clock::duration::zero()) {
    for (auto& [node, heard] : last_heard_) heard += stall;
  }
  CheckHeartbeats(now);
  placement_groups_.Tick();
  if (view_dirty_ || now - last_broadcast_ >= options_.view_refresh_period) {
    last_broadcast_ = now;
    BroadcastView();
  }
}

void GcsServer::CheckHeartbeats(Clock::time_point now) {
  for (const auto& [node, info] : nodes_) {
    // Node 0's raylet shares this rank: if it stalled, so would the GCS.
    if (node == 0 || !info.alive()) continue;
    auto heard = last_heard_.find(node);
    if (heard == last_heard_.end() || now - heard->second < options_.node_timeout) continue;
    double seconds = std::chrono::duration<double>(now - heard->second).count();
    MarkLost(node, fmt::format("no heartbeat for {:.1f} s", seconds));
  }
}

void GcsServer::MarkLost(int node, const std::string& cause) {
  rpc::NodeInfo& info = nodes_.at(node);
  info.set_alive(false);
  info.clear_available();
  lost_nodes_[node] = cause;
  view_dirty_ = true;
  actors_.OnNodeLost(node, cause);
  placement_groups_.OnNodeLost(node);
  RAYMPI_LOG_ERROR(
      "node {} (rank {}, host {}, raylet pid {}) is lost: {}; its tasks run again "
      "elsewhere",
      node, info.rank(), info.host(), info.pid(), cause);
  rpc::Envelope died;
  *died.mutable_src() = MakeAddress(kGcsNode, 0);
  died.mutable_node_died()->set_node(node);
  died.mutable_node_died()->set_cause(cause);
  for (const auto& [other, other_info] : nodes_) {
    if (!other_info.alive()) continue;
    *died.mutable_dst() = MakeAddress(other, kRayletSlot);
    callbacks_.send(died);
  }
}

size_t GcsServer::NumAlive() const {
  return std::count_if(nodes_.begin(), nodes_.end(),
                       [](const auto& entry) { return entry.second.alive(); });
}

GcsServer::Clock::time_point GcsServer::LastHeard(int node) const {
  auto it = last_heard_.find(node);
  return it == last_heard_.end() ? Clock::time_point{} : it->second;
}

void GcsServer::Finish() {
  finished_ = true;
  if (summaries_.size() < nodes_.size()) {
    RAYMPI_LOG_WARN("job summary: {} of {} nodes reported", summaries_.size(), nodes_.size());
  }
  if (!options_.print_summary && options_.summary_json.empty()) return;
  rpc::JobSummary summary = MakeJobSummary(summaries_);
  if (options_.print_summary) std::fprintf(stderr, "%s", FormatJobSummary(summary).c_str());
  if (!options_.summary_json.empty()) {
    std::string json;
    google::protobuf::util::JsonPrintOptions print;
    print.add_whitespace = true;
    print.always_print_primitive_fields = true;
    print.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(summary, &json, print);
    // Written beside and renamed, so a reader never sees half a file.
    std::string partial = options_.summary_json + ".partial";
    std::ofstream out(partial);
    out << json;
    out.close();
    if (!out || std::rename(partial.c_str(), options_.summary_json.c_str()) != 0) {
      RAYMPI_LOG_ERROR("cannot write the job summary to {}", options_.summary_json);
      std::remove(partial.c_str());
    }
  }
}

rpc::JobSummary MakeJobSummary(const std::map<int, rpc::NodeSummary>& nodes) {
  rpc::JobSummary summary;
  double first = 0, last = 0;
  for (const auto& [id, node] : nodes) {
    summary.set_tasks(summary.tasks() + node.stats().tasks());
    if (node.stats().tasks() == 0) continue;
    if (first == 0 || node.stats().first_start() < first) first = node.stats().first_start();
    last = std::max(last, node.stats().last_end());
  }
  double span = last > first ? last - first : 0;
  summary.set_span_seconds(span);
  summary.set_tasks_per_second(span > 0 ? summary.tasks() / span : 0);
  for (const auto& [id, node] : nodes) {
    rpc::NodeSummary* n = summary.add_nodes();
    *n = node;
    n->set_utilisation(
        span > 0 && node.cpus() > 0 ? node.stats().busy_seconds() / (node.cpus() * span) : 0);
  }
  return summary;
}

std::string FormatJobSummary(const rpc::JobSummary& summary) {
  std::string out = fmt::format(
      "raympi job summary: {} tasks in {:.3f} s ({:.0f} tasks/s) on {} node(s)\n", summary.tasks(),
      summary.span_seconds(), summary.tasks_per_second(), summary.nodes_size());
  out += fmt::format("  {:>4}  {:<16} {:>6} {:>8} {:>8} {:>10} {:>12} {:>16} {:>14}\n", "node",
                     "host", "CPUs", "workers", "tasks", "busy CPU-s", "utilisation",
                     "store left (MiB)", "pulled (MiB)");
  for (const rpc::NodeSummary& n : summary.nodes()) {
    out +=
        fmt::format("  {:>4}  {:<16} {:>6g} {:>8} {:>8} {:>10.3f} {:>11.0f}% {:>16} {:>14}\n",
                    n.node(), n.host(), n.cpus(), n.workers(), n.stats().tasks(),
                    n.stats().busy_seconds(), 100 * n.utilisation(),
                    fmt::format("{:.1f}/{:.0f}", n.store_bytes_in_use() / 1048576.0,
                                n.store_capacity() / 1048576.0),
                    fmt::format("{:.1f} ({})", n.bytes_pulled() / 1048576.0, n.objects_pulled()));
  }
  // Spilling (docs/objects.md), like `ray memory`'s spill stats: only for nodes that spilled.
  for (const rpc::NodeSummary& n : summary.nodes()) {
    if (n.objects_spilled() == 0 && n.objects_restored() == 0) continue;
    out +=
        fmt::format("  node {} spilled {:.1f} MiB ({} objects) to disk, restored {:.1f} MiB ({})\n",
                    n.node(), n.bytes_spilled() / 1048576.0, n.objects_spilled(),
                    n.bytes_restored() / 1048576.0, n.objects_restored());
  }
  return out;
}

void GcsServer::BroadcastView() {
  view_dirty_ = false;
  rpc::Envelope view;
  *view.mutable_src() = MakeAddress(kGcsNode, 0);
  for (const auto& [node, info] : nodes_) *view.mutable_cluster_view()->add_nodes() = info;
  for (const auto& [node, info] : nodes_) {
    if (!info.alive()) continue;
    *view.mutable_dst() = MakeAddress(node, kRayletSlot);
    callbacks_.send(view);
  }
}

}  // namespace raympi
