#include "raylet_rank/node_manager.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "common/frame.h"
#include "common/logging.h"
#include "common/resources.h"

namespace raympi {

namespace {
constexpr int kMaxStartupFailures = 3;
}  // namespace

namespace {
std::vector<PuSlot> PuSlots(const NodeResources& resources) {
  std::vector<PuSlot> out;
  for (size_t i = 0; i < resources.pus.size(); ++i) {
    PuSlot pu;
    pu.os_index = resources.pus[i];
    pu.core = i < resources.pu_cores.size() ? resources.pu_cores[i] : static_cast<int>(i);
    pu.numa = i < resources.pu_numas.size() ? resources.pu_numas[i] : 0;
    out.push_back(pu);
  }
  return out;
}
}  // namespace

NodeManager::NodeManager(const NodeManagerConfig& config, WorkerPool* pool, Send send)
    : config_(config),
      pool_(pool),
      send_(std::move(send)),
      bundles_(PuSlots(config.resources),
               config.process_control ? config.process_control : &linux_control_),
      own_stall_(config.own_stall) {
  if (!config_.now) config_.now = [] { return std::chrono::steady_clock::now(); };
  last_report_ = config_.now();
  (*total_.mutable_amounts())["CPU"] = config.resources.num_cpus;
  (*total_.mutable_amounts())["memory"] = static_cast<double>(config.resources.memory_bytes);
  if (config.resources.num_gpus > 0) {
    (*total_.mutable_amounts())["GPU"] = config.resources.num_gpus;
  }
  for (const auto& [name, amount] : config.custom_resources)
    (*total_.mutable_amounts())[name] = amount;
  available_ = total_;
}

Status NodeManager::Start() {
  last_heard_gcs_ = config_.now();
  rpc::Envelope reg;
  *reg.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  *reg.mutable_dst() = MakeAddress(kGcsNode, 0);
  *reg.mutable_register_node()->mutable_info() = SelfInfo();
  send_(reg);
  if (config_.is_head && config_.num_nodes > 1) return Status::Ok();  // waits for the view
  return LaunchProcesses();
}

Status NodeManager::LaunchProcesses() {
  started_ = true;
  return pool_->Start(config_.initial_workers, config_.is_head);
}

void NodeManager::Handle(rpc::Envelope& envelope) {
  if (envelope.src().node() == kGcsNode) last_heard_gcs_ = config_.now();
  switch (envelope.body_case()) {
    case rpc::Envelope::kRequestLease:
      OnRequestLease(envelope);
      break;
    case rpc::Envelope::kGetNodes:
      OnGetNodes(envelope);
      break;
    case rpc::Envelope::kCancelLeaseRequest:
      OnCancelLeaseRequest(envelope.src(), envelope.cancel_lease_request().lease_request_id());
      break;
    case rpc::Envelope::kReturnLease:
      OnReturnLease(envelope.return_lease().lease_id());
      break;
    case rpc::Envelope::kWorkerReady:
      if (envelope.worker_ready().is_driver()) driver_ready_ = true;
      bundles_.OnWorkerReady(envelope.src().slot(), envelope.worker_ready().pid());
      pool_->OnReady(envelope.src().slot());
      if (config_.same_host_stores.stores_size() > 0) {
        rpc::Envelope stores;
        *stores.mutable_src() = MakeAddress(config_.node, kRayletSlot);
        *stores.mutable_dst() = envelope.src();
        *stores.mutable_same_host_stores() = config_.same_host_stores;
        send_(stores);
      }
      GrantQueued();
      break;
    case rpc::Envelope::kWorkerDied:
      OnWorkerDied(envelope.worker_died());
      break;
    case rpc::Envelope::kNodeDied:
      OnNodeDied(envelope);
      break;
    case rpc::Envelope::kWorkerBlocked:
      OnWorkerBlocked(envelope.src().slot(), envelope.worker_blocked().blocked());
      break;
    case rpc::Envelope::kDriverExit:
      OnDriverExit(envelope);
      break;
    case rpc::Envelope::kClusterView:
      view_.clear();
      for (const auto& n : envelope.cluster_view().nodes()) {
        if (n.node() != config_.node) view_[n.node()] = n;
      }
      SpillQueued();
      if (!started_ && static_cast<int>(view_.size()) + 1 >= config_.num_nodes) {
        Status st = LaunchProcesses();
        if (!st.ok())
          RAYMPI_LOG_ERROR("node {} cannot start its processes: {}", config_.node, st.ToString());
      }
      break;
    case rpc::Envelope::kShutdown:
      OnShutdown(envelope);
      break;
    case rpc::Envelope::kPrepareBundles:
      OnPrepareBundles(envelope);
      break;
    case rpc::Envelope::kCommitBundles:
      OnCommitBundles(envelope);
      break;
    case rpc::Envelope::kReturnBundles:
      OnReturnBundles(envelope.return_bundles());
      break;
    case rpc::Envelope::kWorkerStats:
      OnWorkerStats(envelope.src().slot(), envelope.worker_stats());
      break;
    default:
      RAYMPI_LOG_WARN("raylet {} ignores message type {}", config_.node,
                      static_cast<int>(envelope.body_case()));
  }
}

int NodeManager::FindOtherNode(const rpc::ResourceSet& request, bool by_total) const {
  int best = -1;
  double best_cpus = -1;
  for (const auto& [node, info] : view_) {
    const rpc::ResourceSet& pool = by_total ? info.total() : info.available();
    if (!info.alive() || !Fits(request, pool)) continue;
    auto it = pool.amounts().find("CPU");
    double cpus = it == pool.amounts().end() ? 0 : it->second;
    if (cpus > best_cpus) {
      best = node;
      best_cpus = cpus;
    }
  }
  return best;
}

std::string NodeManager::LargestNodeDescription() const {
  std::string text = "node " + std::to_string(config_.node) + " has " + Describe(total_);
  for (const auto& [node, info] : view_) {
    text += ", node " + std::to_string(node) + " has " + Describe(info.total());
  }
  return text;
}

void NodeManager::OnRequestLease(const rpc::Envelope& envelope) {
  PendingLease request;
  request.owner = envelope.src();
  request.request_id = envelope.request_lease().lease_request_id();
  request.resources = envelope.request_lease().resources();
  const rpc::SchedulingStrategy& strategy = envelope.request_lease().strategy();
  if (strategy.kind() == rpc::SchedulingStrategy::NODE_AFFINITY &&
      PlaceByAffinity(request, strategy)) {
    return;
  }
  bool spilled = envelope.request_lease().spilled();
  bool fits_now = Fits(request.resources, total_) && Fits(request.resources, Unreserved());
  // A spilled request was sent here on a view that may be stale: if this node is busy after
  // all, the owner asks its home raylet again, which knows more by then (as Ray does). So a
  // request never queues on a node that did not pick it, and never bounces between nodes.
  if (spilled && !fits_now) {
    RAYMPI_LOG_DEBUG("node {} rejects a spilled request from {}.{}: {} free", config_.node,
                     request.owner.node(), request.owner.slot(), Describe(available_));
    rpc::LeaseReply reply;
    reply.set_rejected(true);
    return Reply(request, std::move(reply));
  }
  if (!spilled && strategy.kind() == rpc::SchedulingStrategy::SPREAD && PlaceBySpread(request)) {
    return;
  }
  if (!fits_now && TrySpill(request)) return;
  if (!Fits(request.resources, total_) && FindOtherNode(request.resources, true) < 0) {
    std::string group = BundleManager::GroupOf(request.resources);
    if (!group.empty()) {
      return Infeasible(request, "placement group " + group +
                                     " has no bundle with room for it: the group was removed, "
                                     "or the task asks for more than its bundle holds");
    }
    return Infeasible(request, "no node can ever provide " + Describe(request.resources) + " (" +
                                   LargestNodeDescription() + ")");
  }
  // Queued here even when only another node could run it: SpillQueued moves it there as soon
  // as a view shows room.
  Queue(std::move(request));
}

bool NodeManager::PlaceByAffinity(PendingLease& request, const rpc::SchedulingStrategy& strategy) {
  int target = strategy.node();
  const rpc::ResourceSet* target_total = nullptr;
  if (target == config_.node) {
    target_total = &total_;
  } else if (auto it = view_.find(target); it != view_.end() && it->second.alive()) {
    target_total = &it->second.total();
  }
  std::string problem;
  if (target_total == nullptr) {
    problem = "node " + std::to_string(target) + " is not a live node of this job (" +
              LargestNodeDescription() + ")";
  } else if (!Fits(request.resources, *target_total)) {
    problem = "node " + std::to_string(target) + " can never provide " +
              Describe(request.resources) + " (it has " + Describe(*target_total) + ")";
  }
  if (!problem.empty()) {
    if (strategy.soft()) return false;  // soft affinity: schedule as usual
    Infeasible(request, problem);
    return true;
  }
  if (target != config_.node) {
    Spillback(request, target);
    return true;
  }
  // Hard or soft, the node can run it: wait here for room, never move on.
  request.pinned = true;
  Queue(std::move(request));
  return true;
}

bool NodeManager::PlaceBySpread(PendingLease& request) {
  // Candidates: every node whose total fits, in id order; the round-robin takes the next one
  // with room now. With no room anywhere the request queues here like any other.
  std::vector<int> candidates;
  if (Fits(request.resources, total_)) candidates.push_back(config_.node);
  for (const auto& [node, info] : view_) {
    if (info.alive() && Fits(request.resources, info.total())) candidates.push_back(node);
  }
  std::sort(candidates.begin(), candidates.end());
  rpc::ResourceSet unreserved = Unreserved();
  for (size_t i = 0; i < candidates.size(); ++i) {
    size_t index = (spread_next_ + i) % candidates.size();
    int node = candidates[index];
    bool room = node == config_.node ? Fits(request.resources, unreserved)
                                     : Fits(request.resources, view_[node].available());
    if (!room) continue;
    spread_next_ = index + 1;
    if (node == config_.node) {
      Queue(std::move(request));
    } else {
      Subtract(request.resources, view_[node].mutable_available());
      Spillback(request, node);
    }
    return true;
  }
  return false;
}

void NodeManager::Queue(PendingLease request) {
  RAYMPI_LOG_DEBUG("node {} queues a lease request for {} from {}.{} ({} queued, {} free)",
                   config_.node, Describe(request.resources), request.owner.node(),
                   request.owner.slot(), queue_.size(), Describe(available_));
  queue_.push_back(std::move(request));
  GrantQueued();
}

void NodeManager::Infeasible(const PendingLease& request, const std::string& reason) {
  rpc::LeaseReply reply;
  reply.set_infeasible(reason);
  Reply(request, std::move(reply));
}

void NodeManager::Spillback(const PendingLease& request, int node) {
  RAYMPI_LOG_DEBUG("node {} spills a lease request for {} from {}.{} to node {}", config_.node,
                   Describe(request.resources), request.owner.node(), request.owner.slot(), node);
  rpc::LeaseReply reply;
  reply.set_spillback_node(node);
  Reply(request, std::move(reply));
}

rpc::NodeInfo NodeManager::SelfInfo() const {
  rpc::NodeInfo info;
  info.set_node(config_.node);
  info.set_rank(config_.rank);
  info.set_host(config_.resources.host);
  info.set_pid(static_cast<int32_t>(getpid()));
  *info.mutable_total() = total_;
  *info.mutable_available() = available_;
  info.set_alive(true);
  return info;
}

void NodeManager::OnGetNodes(const rpc::Envelope& envelope) {
  rpc::Envelope reply;
  *reply.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  *reply.mutable_dst() = envelope.src();
  reply.set_request_id(envelope.request_id());
  rpc::ClusterView* view = reply.mutable_cluster_view();
  *view->add_nodes() = SelfInfo();
  for (const auto& [node, info] : view_) *view->add_nodes() = info;
  std::sort(view->mutable_nodes()->begin(), view->mutable_nodes()->end(),
            [](const rpc::NodeInfo& a, const rpc::NodeInfo& b) { return a.node() < b.node(); });
  send_(reply);
}

rpc::ResourceSet NodeManager::Unreserved() const {
  rpc::ResourceSet unreserved = available_;
  for (const PendingLease& queued : queue_) {
    if (Fits(queued.resources, unreserved)) Subtract(queued.resources, &unreserved);
  }
  return unreserved;
}

bool NodeManager::TrySpill(const PendingLease& request) {
  int other = FindOtherNode(request.resources, /*by_total=*/false);
  if (other < 0) return false;
  // Count the request against that node until the next view, so a burst of requests spreads
  // over the free nodes instead of piling onto the first.
  Subtract(request.resources, view_[other].mutable_available());
  RAYMPI_LOG_DEBUG("node {} spills a lease request for {} from {}.{} to node {}", config_.node,
                   Describe(request.resources), request.owner.node(), request.owner.slot(), other);
  rpc::LeaseReply reply;
  reply.set_spillback_node(other);
  Reply(request, std::move(reply));
  return true;
}

void NodeManager::SpillQueued() {
  // Requests queued here while every node was busy move on as soon as another node frees up;
  // those this node will grant first keep their place.
  rpc::ResourceSet unreserved = available_;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (Fits(it->resources, total_) && Fits(it->resources, unreserved)) {
      Subtract(it->resources, &unreserved);
      ++it;
    } else if (it->pinned) {
      ++it;
    } else if (TrySpill(*it)) {
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
}

void NodeManager::Reply(const PendingLease& request, rpc::LeaseReply reply) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  *e.mutable_dst() = request.owner;
  reply.set_lease_request_id(request.request_id);
  *e.mutable_lease_reply() = std::move(reply);
  send_(e);
}

void NodeManager::GrantQueued() {
  // Requests that fit but find no idle worker reserve their share here, so only as many
  // workers are started as the free resources can keep busy.
  rpc::ResourceSet unreserved = available_;
  int waiting_for_worker = 0;
  for (auto it = queue_.begin(); it != queue_.end();) {
    // A request for any bundle of a group takes one bundle here with room, or waits.
    if (!Fits(it->resources, unreserved) ||
        !bundles_.ResolveAnyBundle(&it->resources, available_)) {
      ++it;
      continue;
    }
    std::optional<int> slot = pool_->PopIdle();
    if (!slot) {
      ++waiting_for_worker;
      Subtract(it->resources, &unreserved);
      ++it;
      continue;
    }
    // Unique in the cluster: an owner holds leases from several raylets at once.
    uint64_t lease_id = (static_cast<uint64_t>(config_.node) << 40) | ++next_lease_id_;
    leases_[lease_id] = Lease{*slot, it->resources, false, it->owner};
    bundles_.OnLeaseGranted(lease_id, *slot, it->resources);  // binds it to its bundle's PUs
    Subtract(it->resources, &available_);
    Subtract(it->resources, &unreserved);
    ++leases_granted_;
    report_due_ = true;
    rpc::LeaseReply reply;
    *reply.mutable_worker() = MakeAddress(config_.node, *slot);
    reply.set_lease_id(lease_id);
    RAYMPI_LOG_DEBUG("node {} grants lease {} (worker slot {}) to {}.{}", config_.node, lease_id,
                     *slot, it->owner.node(), it->owner.slot());
    Reply(*it, std::move(reply));
    it = queue_.erase(it);
  }
  // Resources are free but every worker is taken (some block in Get, some died): start more.
  int missing = waiting_for_worker - pool_->num_starting();
  if (missing > 0 && startup_failures_ < kMaxStartupFailures) {
    Status st = pool_->Start(missing, false);
    // Said once: the lease requests wait, and this pass runs again for every message.
    if (!st.ok() && !said_start_failure_) RAYMPI_LOG_ERROR("{}", st.ToString());
    said_start_failure_ = !st.ok();
  }
}

void NodeManager::OnCancelLeaseRequest(const rpc::Address& owner, uint64_t request_id) {
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (it->request_id == request_id && it->owner.node() == owner.node() &&
        it->owner.slot() == owner.slot()) {
      queue_.erase(it);
      return;
    }
  }
}

void NodeManager::OnReturnLease(uint64_t lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  RAYMPI_LOG_DEBUG("node {}: lease {} returned", config_.node, lease_id);
  rpc::ResourceSet give_back = it->second.resources;
  if (it->second.blocked) Subtract(CpuPart(give_back), &give_back);
  Add(give_back, &available_);
  const int slot = it->second.worker_slot;
  bool killed = bundles_.IsBeingKilled(slot);  // its group was removed: it is dying
  bundles_.OnLeaseEnded(lease_id, /*worker_alive=*/!killed);
  if (!killed) pool_->Release(slot);
  leases_.erase(it);
  report_due_ = true;
  GrantQueued();
}

rpc::ResourceSet NodeManager::CpuPart(const rpc::ResourceSet& set) const {
  rpc::ResourceSet cpu;
  auto it = set.amounts().find("CPU");
  if (it != set.amounts().end()) (*cpu.mutable_amounts())["CPU"] = it->second;
  return cpu;
}

void NodeManager::OnWorkerBlocked(int slot, bool blocked) {
  for (auto& [id, lease] : leases_) {
    if (lease.worker_slot != slot || lease.blocked == blocked) continue;
    lease.blocked = blocked;
    if (blocked) {
      Add(CpuPart(lease.resources), &available_);
    } else {
      Subtract(CpuPart(lease.resources), &available_);
    }
    report_due_ = true;
  }
  if (blocked) GrantQueued();
}

void NodeManager::OnDriverExit(rpc::Envelope& envelope) {
  // Both the driver (at exit) and its supervisor (when it sees the process end) report it.
  if (driver_exited_) return;
  driver_exited_ = true;
  rpc::Envelope forward = envelope;
  *forward.mutable_dst() = MakeAddress(kGcsNode, 0);
  if (!driver_ready_) {
    int code = forward.driver_exit().exit_code();
    RAYMPI_LOG_ERROR(
        "the driver exited (code {}) before calling raympi::Init: does main return or block "
        "before raympi::Init?",
        code);
    forward.mutable_driver_exit()->set_exit_code(code != 0 ? code : 1);
  }
  send_(forward);
}

void NodeManager::OnWorkerDied(const rpc::WorkerDied& reported) {
  const int slot = reported.worker().slot();
  if (!pool_->IsWorker(slot) || !pool_->IsAlive(slot)) return;
  bool was_ready = pool_->MarkDead(slot);
  if (!was_ready) ++startup_failures_;
  rpc::WorkerDied died = reported;
  // A worker this raylet killed because its placement group was removed: say so.
  if (std::string cause = bundles_.TakeKillCause(slot); !cause.empty()) {
    died.set_cause(cause);
  }
  RAYMPI_LOG_WARN("node {}: worker slot {} (pid {}) {}{}", config_.node, slot, died.pid(),
                  died.cause(), was_ready ? "" : " before raympi::Init");
  // Every lease of the worker ends here; its owners retry or fail the tasks it ran.
  std::map<std::pair<int, int>, rpc::Envelope> notices;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.worker_slot != slot) {
      ++it;
      continue;
    }
    rpc::ResourceSet give_back = it->second.resources;
    if (it->second.blocked) Subtract(CpuPart(give_back), &give_back);
    Add(give_back, &available_);
    bundles_.OnLeaseEnded(it->first, /*worker_alive=*/false);
    const rpc::Address& owner = it->second.owner;
    rpc::Envelope& notice = notices[{owner.node(), owner.slot()}];
    if (!notice.has_worker_died()) {
      *notice.mutable_src() = MakeAddress(config_.node, kRayletSlot);
      *notice.mutable_dst() = owner;
      *notice.mutable_worker_died() = died;
    }
    notice.mutable_worker_died()->add_lease_ids(it->first);
    it = leases_.erase(it);
  }
  for (auto& [owner, notice] : notices) send_(notice);
  rpc::Envelope to_gcs;
  *to_gcs.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  *to_gcs.mutable_dst() = MakeAddress(kGcsNode, 0);
  *to_gcs.mutable_worker_died() = died;
  send_(to_gcs);
  report_due_ = true;
  if (shutting_down_) {
    awaiting_stats_.erase(slot);
    if (awaiting_stats_.empty()) FinishShutdown();
    return;
  }
  if (startup_failures_ == kMaxStartupFailures) {
    RAYMPI_LOG_ERROR("node {}: {} workers died before raympi::Init; starting no more", config_.node,
                     startup_failures_);
  }
  GrantQueued();
}

void NodeManager::OnNodeDied(const rpc::Envelope& envelope) {
  view_.erase(envelope.node_died().node());  // never spill there again
  // Every process of the node may hold leases or objects there.
  rpc::Envelope notice = envelope;
  *notice.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  for (int slot : pool_->StartedSlots()) {
    if (pool_->IsWorker(slot) && !pool_->IsAlive(slot)) continue;
    *notice.mutable_dst() = MakeAddress(config_.node, slot);
    send_(notice);
  }
  SpillQueued();
}

void NodeManager::OnShutdown(const rpc::Envelope& envelope) {
  if (shutting_down_ || done_) return;
  shutting_down_ = true;
  rpc::Envelope stop;
  *stop.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  *stop.mutable_shutdown() = envelope.shutdown();
  for (int slot : pool_->StartedSlots()) {
    *stop.mutable_dst() = MakeAddress(config_.node, slot);
    send_(stop);
    if (pool_->IsWorker(slot) && pool_->IsAlive(slot)) awaiting_stats_.insert(slot);
  }
  // A worker still inside a long task reports late; the summary does not wait for it.
  stats_deadline_ = config_.now() + std::chrono::seconds(2);
  if (awaiting_stats_.empty()) FinishShutdown();
}

void NodeManager::OnWorkerStats(int slot, const rpc::TaskStats& stats) {
  stats_.set_tasks(stats_.tasks() + stats.tasks());
  stats_.set_busy_seconds(stats_.busy_seconds() + stats.busy_seconds());
  if (stats.tasks() > 0) {
    if (stats_.first_start() == 0 || stats.first_start() < stats_.first_start()) {
      stats_.set_first_start(stats.first_start());
    }
    stats_.set_last_end(std::max(stats_.last_end(), stats.last_end()));
  }
  awaiting_stats_.erase(slot);
  if (shutting_down_ && awaiting_stats_.empty()) FinishShutdown();
}

void NodeManager::FinishShutdown() {
  if (done_) return;
  if (!awaiting_stats_.empty()) {
    RAYMPI_LOG_WARN("node {}: {} worker(s) did not report before the deadline", config_.node,
                    awaiting_stats_.size());
  }
  rpc::Envelope summary;
  *summary.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  *summary.mutable_dst() = MakeAddress(kGcsNode, 0);
  rpc::NodeSummary* s = summary.mutable_node_summary();
  s->set_node(config_.node);
  s->set_host(config_.resources.host);
  s->set_cpus(config_.resources.num_cpus);
  s->set_leases(leases_granted_);
  s->set_workers(pool_->StartedSlots().size() - (config_.is_head ? 1 : 0));
  *s->mutable_stats() = stats_;
  if (config_.add_object_stats) config_.add_object_stats(s);
  send_(summary);
  done_ = true;
}

void NodeManager::Tick() {
  auto now = config_.now();
  last_heard_gcs_ += own_stall_.Tick(now);
  if (!config_.is_head && !done_ && now - last_heard_gcs_ > config_.gcs_timeout) {
    double seconds = std::chrono::duration<double>(now - last_heard_gcs_).count();
    RAYMPI_LOG_ERROR(
        "node {}: nothing from the GCS (rank 0) for {:.1f} s: the job lost its control store "
        "and cannot go on; ending this node's processes",
        config_.node, seconds);
    gcs_lost_ = true;
    done_ = true;
    return;
  }
  if (shutting_down_ && !done_ && now > stats_deadline_) FinishShutdown();
  if (done_ || shutting_down_) return;
  if (!report_due_ && now - last_report_ < config_.heartbeat_period) return;
  report_due_ = false;
  last_report_ = now;
  rpc::Envelope report;
  *report.mutable_src() = MakeAddress(config_.node, kRayletSlot);
  *report.mutable_dst() = MakeAddress(kGcsNode, 0);
  report.mutable_resource_report()->set_node(config_.node);
  *report.mutable_resource_report()->mutable_available() = available_;
  if (total_changed_) {  // only bundles change it; the map is large with many of them
    *report.mutable_resource_report()->mutable_total() = total_;
    total_changed_ = false;
  }
  send_(report);
}

}  // namespace raympi
