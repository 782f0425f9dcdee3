#include "gcs_rank/placement_group_manager.h"

#include <algorithm>

#include "common/bundle_resources.h"
#include "common/frame.h"
#include "common/ids.h"
#include "common/logging.h"
#include "common/resources.h"
#include "gcs_rank/placement_policy.h"

namespace raympi {

namespace {

// Removed groups stay in the table (a lookup by id says "removed") up to this many.
constexpr size_t kMaxRemoved = 1000;

// Empty when the spec is well formed, else what is wrong.
std::string CheckSpec(const rpc::PlacementGroupSpec& spec) {
  if (spec.placement_group_id().empty()) return "the group has no id";
  if (!rpc::PlacementGroupSpec::Strategy_IsValid(spec.strategy())) {
    return "unknown strategy " + std::to_string(spec.strategy());
  }
  if (spec.bundles().empty()) return "the group has no bundles; give at least one";
  for (int i = 0; i < spec.bundles_size(); ++i) {
    bool any = false;
    for (const auto& [name, amount] : spec.bundles(i).resources().amounts()) {
      if (amount < 0 || amount != amount) {
        return "bundle " + std::to_string(i) + " asks for " + std::to_string(amount) + " " + name +
               "; amounts must be positive";
      }
      if (ParseGroupResource(name)) {
        return "bundle " + std::to_string(i) + " names the resource " + name +
               ", which belongs to a placement group";
      }
      any = any || amount > 0;
    }
    if (!any) {
      return "bundle " + std::to_string(i) + " asks for no resources; give it at least one, " +
             "e.g. {{\"CPU\", 1}}";
    }
  }
  return "";
}

}  // namespace

PlacementGroupManager::PlacementGroupManager(Deps deps) : deps_(std::move(deps)) {
  if (!deps_.now) deps_.now = [] { return Clock::now(); };
}

bool PlacementGroupManager::Handles(const rpc::Envelope& envelope) {
  switch (envelope.body_case()) {
    case rpc::Envelope::kCreatePlacementGroup:
    case rpc::Envelope::kGetPlacementGroup:
    case rpc::Envelope::kRemovePlacementGroup:
    case rpc::Envelope::kBundlesReply:
      return true;
    default:
      return false;
  }
}

void PlacementGroupManager::Handle(const rpc::Envelope& envelope) {
  switch (envelope.body_case()) {
    case rpc::Envelope::kCreatePlacementGroup:
      OnCreate(envelope);
      break;
    case rpc::Envelope::kGetPlacementGroup:
      OnGet(envelope);
      break;
    case rpc::Envelope::kRemovePlacementGroup:
      OnRemove(envelope);
      break;
    case rpc::Envelope::kBundlesReply:
      OnBundlesReply(envelope);
      break;
    default:
      break;
  }
  Flush();
  if (flushing_) return;  // a nested reply: the outer Handle answers creations
  for (size_t i = 0; i < created_.size(); ++i) {
    Reply(created_[i].caller, created_[i].request_id, groups_.at(created_ids_[i]).info);
  }
  created_.clear();
  created_ids_.clear();
  Flush();
}

void PlacementGroupManager::Flush() {
  if (flushing_) return;
  flushing_ = true;
  while (!outbox_.empty()) {
    std::vector<rpc::Envelope> batch;
    batch.swap(outbox_);
    for (const rpc::Envelope& e : batch) deps_.send(e);
  }
  flushing_ = false;
}

const rpc::PlacementGroupInfo* PlacementGroupManager::Find(const std::string& group_id) const {
  auto it = groups_.find(group_id);
  return it == groups_.end() ? nullptr : &it->second.info;
}

std::string PlacementGroupManager::Describe(const Group& group) const {
  const rpc::PlacementGroupSpec& spec = group.info.spec();
  return "placement group " + (spec.name().empty() ? DescribeObjectId(spec.placement_group_id())
                                                   : "'" + spec.name() + "'");
}

void PlacementGroupManager::OnCreate(const rpc::Envelope& envelope) {
  rpc::PlacementGroupInfo reply;
  const rpc::PlacementGroupSpec& spec = envelope.create_placement_group().spec();
  std::string problem = CheckSpec(spec);
  if (problem.empty() && groups_.count(spec.placement_group_id())) problem = "duplicate id";
  if (problem.empty() && !spec.name().empty() && names_.count(spec.name())) {
    problem = "the name '" + spec.name() + "' is taken by a live placement group";
  }
  std::vector<int> unplaced(spec.bundles_size(), -1);
  if (problem.empty()) {
    Placement placement = PlaceBundles(spec, unplaced, *deps_.nodes);
    if (placement.kind == Placement::Kind::kNever) {
      problem = "it can never be placed: " + placement.reason;
    }
  }
  if (!problem.empty()) {
    reply.set_error(problem);
    return Reply(envelope.src(), envelope.request_id(), reply);
  }
  Group& group = groups_[spec.placement_group_id()];
  *group.info.mutable_spec() = spec;
  *group.info.mutable_spec()->mutable_creator() = envelope.src();
  for (int i = 0; i < spec.bundles_size(); ++i) {
    rpc::Bundle* b = group.info.mutable_spec()->mutable_bundles(i);
    b->set_index(i);
    b->set_node(-1);
    b->clear_pus();
  }
  group.info.set_state(rpc::PlacementGroupInfo::PENDING);
  if (!spec.name().empty()) names_[spec.name()] = spec.placement_group_id();
  pending_.push_back(spec.placement_group_id());
  RAYMPI_LOG_INFO("{}: {} bundle(s), strategy {}", Describe(group), spec.bundles_size(),
                  rpc::PlacementGroupSpec::Strategy_Name(spec.strategy()));
  created_.push_back(Waiter{envelope.src(), envelope.request_id(), Clock::time_point{}});
  created_ids_.push_back(spec.placement_group_id());
  retry_pending_ = true;
  SchedulePending();
}

void PlacementGroupManager::OnGet(const rpc::Envelope& envelope) {
  const rpc::GetPlacementGroup& get = envelope.get_placement_group();
  std::string id = get.placement_group_id();
  if (id.empty()) {
    auto named = names_.find(get.name());
    if (named == names_.end()) {
      std::string known;
      for (const auto& [name, gid] : names_) known += (known.empty() ? "" : ", ") + name;
      rpc::PlacementGroupInfo reply;
      reply.set_error("no placement group is named '" + get.name() +
                      "' (named groups: " + (known.empty() ? "none" : known) + ")");
      return Reply(envelope.src(), envelope.request_id(), reply);
    }
    id = named->second;
  }
  auto it = groups_.find(id);
  if (it == groups_.end()) {
    rpc::PlacementGroupInfo reply;
    reply.set_error("unknown placement group " + DescribeObjectId(id));
    return Reply(envelope.src(), envelope.request_id(), reply);
  }
  Group& group = it->second;
  if (group.info.state() != rpc::PlacementGroupInfo::PENDING || get.wait_ms() == 0) {
    return Reply(envelope.src(), envelope.request_id(), group.info);
  }
  Waiter waiter;
  waiter.caller = envelope.src();
  waiter.request_id = envelope.request_id();
  waiter.deadline = get.wait_ms() < 0 ? Clock::time_point::max()
                                      : deps_.now() + std::chrono::milliseconds(get.wait_ms());
  group.waiters.push_back(waiter);
  waited_on_.insert(id);
}

void PlacementGroupManager::OnRemove(const rpc::Envelope& envelope) {
  auto it = groups_.find(envelope.remove_placement_group().placement_group_id());
  if (it == groups_.end()) {
    rpc::PlacementGroupInfo reply;
    reply.set_error("unknown placement group " +
                    DescribeObjectId(envelope.remove_placement_group().placement_group_id()));
    return Reply(envelope.src(), envelope.request_id(), reply);
  }
  Group& group = it->second;
  const std::string& id = it->first;
  if (group.info.state() != rpc::PlacementGroupInfo::REMOVED) {
    std::string cause = Describe(group) + " was removed";
    // Every node that holds or may be reserving a bundle gives it back; the raylet ends the
    // tasks and actors that run in it. Replies still in flight are ignored.
    std::set<int> holders(group.awaiting.begin(), group.awaiting.end());
    holders.insert(group.prepared.begin(), group.prepared.end());
    for (const rpc::Bundle& b : group.info.spec().bundles()) {
      if (b.node() >= 0) holders.insert(b.node());
      if (b.node() >= 0) ShowBundle(id, b, false);
    }
    for (int node : holders) {
      rpc::Envelope ret;
      ret.mutable_return_bundles()->set_placement_group_id(id);
      ret.mutable_return_bundles()->set_cause(cause);
      SendToRaylet(node, std::move(ret));
    }
    if (in_flight_ == id) in_flight_.clear();
    pending_.erase(std::remove(pending_.begin(), pending_.end(), id), pending_.end());
    if (!group.info.spec().name().empty()) names_.erase(group.info.spec().name());
    group.awaiting.clear();
    group.prepared.clear();
    group.committing = false;
    group.info.set_state(rpc::PlacementGroupInfo::REMOVED);
    group.info.set_failure(cause);
    RAYMPI_LOG_INFO("{}", cause);
    Answer(group);
    removed_.push_back(id);
    // No view is spread here: the raylets drop the group's resources themselves, and others
    // see it with the next periodic view (a view is large with many groups).
    retry_pending_ = true;
  }
  Reply(envelope.src(), envelope.request_id(), group.info);
  SchedulePending();
  while (removed_.size() > kMaxRemoved) {
    groups_.erase(removed_.front());
    removed_.pop_front();
  }
}

void PlacementGroupManager::Tick() {
  Clock::time_point now = deps_.now();
  for (auto id = waited_on_.begin(); id != waited_on_.end();) {
    Group& group = groups_.at(*id);
    for (auto w = group.waiters.begin(); w != group.waiters.end();) {
      if (now < w->deadline) {
        ++w;
        continue;
      }
      Reply(w->caller, w->request_id, group.info);
      w = group.waiters.erase(w);
    }
    id = group.waiters.empty() ? waited_on_.erase(id) : std::next(id);
  }
  SchedulePending();
  Flush();
}

void PlacementGroupManager::SchedulePending() {
  if (!in_flight_.empty() || !retry_pending_) return;
  retry_pending_ = false;
  // In creation order; a group that does not fit now does not hold up the ones behind it.
  std::vector<std::string> order = pending_;
  for (const std::string& id : order) {
    auto it = groups_.find(id);
    if (it == groups_.end()) continue;
    if (TryPlace(it->second)) return;
  }
}

bool PlacementGroupManager::TryPlace(Group& group) {
  const rpc::PlacementGroupSpec& spec = group.info.spec();
  std::vector<int> fixed;
  for (const rpc::Bundle& b : spec.bundles()) fixed.push_back(b.node());
  Placement placement = PlaceBundles(spec, fixed, *deps_.nodes);
  if (placement.kind == Placement::Kind::kNever) {
    Fail(group, "it can no longer be placed: " + placement.reason);
    return false;
  }
  if (placement.kind == Placement::Kind::kNotNow) return false;
  const std::string& id = spec.placement_group_id();
  in_flight_ = id;
  group.attempt = placement.nodes;
  group.prepared.clear();
  group.prepare_failure.clear();
  group.committing = false;
  std::map<int, rpc::Envelope> prepares;
  for (int i = 0; i < spec.bundles_size(); ++i) {
    if (fixed[i] >= 0) continue;  // stays where it is
    rpc::Envelope& prepare = prepares[placement.nodes[i]];
    prepare.mutable_prepare_bundles()->set_placement_group_id(id);
    *prepare.mutable_prepare_bundles()->add_bundles() = spec.bundles(i);
  }
  group.awaiting.clear();
  for (auto& [node, prepare] : prepares) {
    group.awaiting.insert(node);
    SendToRaylet(node, std::move(prepare));
  }
  RAYMPI_LOG_DEBUG("{}: preparing bundles on {} node(s)", Describe(group), prepares.size());
  return true;
}

void PlacementGroupManager::OnBundlesReply(const rpc::Envelope& envelope) {
  const rpc::BundlesReply& reply = envelope.bundles_reply();
  auto it = groups_.find(reply.placement_group_id());
  // A reply for a removed group or an abandoned attempt: the return already went out.
  if (it == groups_.end() || in_flight_ != it->first) return;
  Group& group = it->second;
  int node = envelope.src().node();
  if (!group.awaiting.erase(node)) return;
  if (!reply.commit()) {
    if (reply.error().empty()) {
      group.prepared.insert(node);
      for (const rpc::Bundle& b : reply.bundles()) {
        rpc::Bundle* mine = group.info.mutable_spec()->mutable_bundles(b.index());
        *mine->mutable_pus() = b.pus();
      }
    } else if (group.prepare_failure.empty()) {
      group.prepare_failure = "node " + std::to_string(node) + ": " + reply.error();
    }
    if (group.awaiting.empty()) FinishPrepare(group);
    return;
  }
  if (!reply.error().empty()) {
    // A commit fails only if the raylet lost track of the reservation: start over.
    return CancelAttempt(group, "node " + std::to_string(node) + ": " + reply.error());
  }
  if (group.awaiting.empty()) FinishCommit(group);
}

void PlacementGroupManager::FinishPrepare(Group& group) {
  if (!group.prepare_failure.empty()) return CancelAttempt(group, group.prepare_failure);
  group.committing = true;
  for (int node : group.prepared) {
    rpc::Envelope commit;
    commit.mutable_commit_bundles()->set_placement_group_id(group.info.spec().placement_group_id());
    group.awaiting.insert(node);
    SendToRaylet(node, std::move(commit));
  }
}

void PlacementGroupManager::FinishCommit(Group& group) {
  const std::string id = group.info.spec().placement_group_id();
  for (int i = 0; i < group.info.spec().bundles_size(); ++i) {
    rpc::Bundle* b = group.info.mutable_spec()->mutable_bundles(i);
    if (b->node() < 0) b->set_node(group.attempt[i]);
    ShowBundle(id, *b, true);
  }
  in_flight_.clear();
  group.prepared.clear();
  group.committing = false;
  pending_.erase(std::remove(pending_.begin(), pending_.end(), id), pending_.end());
  group.info.set_state(rpc::PlacementGroupInfo::CREATED);
  RAYMPI_LOG_INFO("{} is created", Describe(group));
  // Raylets get the bundles' resources before the creator hears the group is ready, so its
  // first task finds them wherever its request goes (messages from the GCS keep their order).
  // Alone, the raylet knows its own bundles.
  if (deps_.spread_view && deps_.nodes->size() > 1) deps_.spread_view();
  Answer(group);
  retry_pending_ = true;
  SchedulePending();
}

void PlacementGroupManager::CancelAttempt(Group& group, const std::string& why) {
  const std::string& id = group.info.spec().placement_group_id();
  RAYMPI_LOG_DEBUG("{}: two-phase commit cancelled ({}); it waits for resources", Describe(group),
                   why);
  std::set<int> holders = group.prepared;
  holders.insert(group.awaiting.begin(), group.awaiting.end());
  for (int node : holders) {
    rpc::Envelope ret;
    ret.mutable_return_bundles()->set_placement_group_id(id);
    ret.mutable_return_bundles()->set_cause("cancelled: " + why);
    ret.mutable_return_bundles()->set_prepared_only(true);
    SendToRaylet(node, std::move(ret));
  }
  for (int i = 0; i < group.info.spec().bundles_size(); ++i) {
    rpc::Bundle* b = group.info.mutable_spec()->mutable_bundles(i);
    if (b->node() < 0) b->clear_pus();
  }
  group.prepared.clear();
  group.awaiting.clear();
  group.committing = false;
  in_flight_.clear();
  // Retried when a resource report or a removal changes the picture, not in a tight loop.
}

void PlacementGroupManager::Fail(Group& group, const std::string& why) {
  const std::string& id = group.info.spec().placement_group_id();
  group.info.set_state(rpc::PlacementGroupInfo::FAILED);
  group.info.set_failure(why);
  pending_.erase(std::remove(pending_.begin(), pending_.end(), id), pending_.end());
  RAYMPI_LOG_ERROR("{} failed: {}", Describe(group), why);
  Answer(group);
}

void PlacementGroupManager::OnNodeLost(int node) {
  for (auto& [id, group] : groups_) {
    if (group.info.state() == rpc::PlacementGroupInfo::REMOVED ||
        group.info.state() == rpc::PlacementGroupInfo::FAILED) {
      continue;
    }
    if (in_flight_ == id && (group.awaiting.count(node) || group.prepared.count(node) ||
                             std::count(group.attempt.begin(), group.attempt.end(), node))) {
      group.awaiting.erase(node);
      group.prepared.erase(node);
      CancelAttempt(group, "node " + std::to_string(node) + " was lost");
    }
    bool lost_any = false;
    for (int i = 0; i < group.info.spec().bundles_size(); ++i) {
      rpc::Bundle* b = group.info.mutable_spec()->mutable_bundles(i);
      if (b->node() != node) continue;
      b->set_node(-1);
      b->clear_pus();
      lost_any = true;
    }
    if (!lost_any) continue;
    // The bundles left keep running; the lost ones are placed again (Ray does the same).
    RAYMPI_LOG_WARN("{}: bundles on lost node {} are placed again", Describe(group), node);
    group.info.set_state(rpc::PlacementGroupInfo::PENDING);
    if (std::find(pending_.begin(), pending_.end(), id) == pending_.end()) {
      pending_.insert(pending_.begin(), id);
    }
  }
  retry_pending_ = true;
  SchedulePending();
  Flush();
}

void PlacementGroupManager::Answer(Group& group) {
  for (const Waiter& w : group.waiters) Reply(w.caller, w.request_id, group.info);
  group.waiters.clear();
  waited_on_.erase(group.info.spec().placement_group_id());
}

void PlacementGroupManager::Reply(const rpc::Address& to, uint64_t request_id,
                                  const rpc::PlacementGroupInfo& info) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(kGcsNode, 0);
  *e.mutable_dst() = to;
  e.set_request_id(request_id);
  *e.mutable_placement_group_info() = info;
  outbox_.push_back(std::move(e));
}

void PlacementGroupManager::SendToRaylet(int node, rpc::Envelope envelope) {
  *envelope.mutable_src() = MakeAddress(kGcsNode, 0);
  *envelope.mutable_dst() = MakeAddress(node, kRayletSlot);
  outbox_.push_back(std::move(envelope));
}

void PlacementGroupManager::ShowBundle(const std::string& group_id, const rpc::Bundle& bundle,
                                       bool present) {
  auto it = deps_.nodes->find(bundle.node());
  if (it == deps_.nodes->end()) return;
  // Set, not added: the node's own report may already carry the bundle (idempotent). The
  // wildcard names sum over the group's bundles on the node.
  rpc::ResourceSet capacity = BundleCapacity(bundle.resources(), group_id, bundle.index());
  for (auto* set : {it->second.mutable_total(), it->second.mutable_available()}) {
    auto& amounts = *set->mutable_amounts();
    for (const auto& [name, amount] : capacity.amounts()) {
      if (!present) {
        amounts.erase(name);
        continue;
      }
      auto parsed = ParseGroupResource(name);
      if (parsed && parsed->index < 0) {
        // Wildcard: the sum over this group's committed bundles on the node.
        double sum = 0;
        const Group& group = groups_.at(group_id);
        for (const rpc::Bundle& b : group.info.spec().bundles()) {
          if (b.node() != bundle.node()) continue;
          rpc::ResourceSet part = BundleCapacity(b.resources(), group_id, b.index());
          auto found = part.amounts().find(name);
          if (found != part.amounts().end()) sum += found->second;
        }
        amounts[name] = sum;
      } else {
        amounts[name] = amount;
      }
    }
  }
}

}  // namespace raympi
