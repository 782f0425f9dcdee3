// CoreWorker, placement groups: creating, looking up and removing them through the GCS, and
// the resources a task or actor in a group asks for (docs/placement-groups.md).
#include "common/bundle_resources.h"
#include "common/frame.h"
#include "common/ids.h"
#include "common/resources.h"
#include "raympi/errors.h"
#include "worker/core_worker.h"

namespace raympi {

namespace {

using State = internal::PlacementGroupStatus::State;

internal::PlacementGroupStatus ToStatus(const rpc::PlacementGroupInfo& info) {
  internal::PlacementGroupStatus out;
  const rpc::PlacementGroupSpec& spec = info.spec();
  out.spec.id = spec.placement_group_id();
  out.spec.name = spec.name();
  out.spec.strategy = spec.strategy();
  for (const rpc::Bundle& b : spec.bundles()) {
    out.spec.bundles.emplace_back(b.resources().amounts().begin(), b.resources().amounts().end());
    out.bundle_nodes.push_back(b.node());
    out.bundle_pus.emplace_back(b.pus().begin(), b.pus().end());
  }
  switch (info.state()) {
    case rpc::PlacementGroupInfo::CREATED:
      out.state = State::kCreated;
      break;
    case rpc::PlacementGroupInfo::REMOVED:
      out.state = State::kRemoved;
      break;
    case rpc::PlacementGroupInfo::FAILED:
      out.state = State::kFailed;
      break;
    default:
      out.state = State::kPending;
  }
  out.failure = info.failure();
  return out;
}

std::string DescribeGroup(const rpc::PlacementGroupSpec& spec) {
  return "placement group " + (spec.name().empty() ? DescribeObjectId(spec.placement_group_id())
                                                   : "'" + spec.name() + "'");
}

}  // namespace

internal::PlacementGroupStatus CoreWorker::CreatePlacementGroup(
    const internal::PlacementGroupSpecification& spec) {
  rpc::Envelope request;
  rpc::PlacementGroupSpec* out = request.mutable_create_placement_group()->mutable_spec();
  {
    std::lock_guard<std::mutex> lock(mu_);
    out->set_placement_group_id(spec.id.empty() ? NextObjectId().Binary() : spec.id);
  }
  out->set_name(spec.name);
  out->set_strategy(static_cast<rpc::PlacementGroupSpec::Strategy>(spec.strategy));
  for (size_t i = 0; i < spec.bundles.size(); ++i) {
    rpc::Bundle* b = out->add_bundles();
    b->set_index(static_cast<int>(i));
    b->set_node(-1);
    for (const auto& [name, amount] : spec.bundles[i])
      (*b->mutable_resources()->mutable_amounts())[name] = amount;
  }
  rpc::Envelope reply = CallGcs(std::move(request));
  const rpc::PlacementGroupInfo& info = reply.placement_group_info();
  if (!info.error().empty()) {
    throw Error("raympi::CreatePlacementGroup" +
                (spec.name.empty() ? "" : "(\"" + spec.name + "\")") + ": " + info.error());
  }
  std::lock_guard<std::mutex> lock(mu_);
  placement_groups_[info.spec().placement_group_id()] = info;
  return ToStatus(info);
}

internal::PlacementGroupStatus CoreWorker::GetPlacementGroup(const std::string& id,
                                                             const std::string& name,
                                                             int64_t wait_ms) {
  rpc::Envelope request;
  request.mutable_get_placement_group()->set_placement_group_id(id);
  request.mutable_get_placement_group()->set_name(name);
  request.mutable_get_placement_group()->set_wait_ms(wait_ms);
  rpc::Envelope reply = CallGcs(std::move(request));
  const rpc::PlacementGroupInfo& info = reply.placement_group_info();
  if (!info.error().empty()) {
    throw Error("raympi::GetPlacementGroup" + (name.empty() ? "" : "(\"" + name + "\")") + ": " +
                info.error());
  }
  std::lock_guard<std::mutex> lock(mu_);
  placement_groups_[info.spec().placement_group_id()] = info;
  return ToStatus(info);
}

internal::PlacementGroupStatus CoreWorker::RemovePlacementGroup(const std::string& id) {
  // Asynchronous, as in Ray: the GCS handles this process's messages in order, so a group
  // created after this call already finds the resources returned. Its reply is not awaited.
  rpc::Envelope request = NewEnvelope(kGcsNode, 0);
  request.mutable_remove_placement_group()->set_placement_group_id(id);
  rpc::PlacementGroupInfo info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) throw Error("raympi::RemovePlacementGroup: the job is shutting down");
    info = placement_groups_[id];
    info.mutable_spec()->set_placement_group_id(id);
    info.set_state(rpc::PlacementGroupInfo::REMOVED);
    info.set_failure(DescribeGroup(info.spec()) + " was removed");
    placement_groups_[id] = info;
  }
  Outbox out{std::move(request)};
  SendAll(out);
  return ToStatus(info);
}

rpc::ResourceSet CoreWorker::PlacementGroupResources(
    const std::string& what, const std::string& group_id, int bundle_index,
    const std::map<std::string, double>& resources) {
  rpc::PlacementGroupInfo info;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = placement_groups_.find(group_id);
    if (it != placement_groups_.end()) info = it->second;
  }
  // Ray queues such a task until the group is placed; here Remote() waits for it (once).
  if (info.state() != rpc::PlacementGroupInfo::CREATED) {
    GetPlacementGroup(group_id, "", -1);
    std::lock_guard<std::mutex> lock(mu_);
    info = placement_groups_[group_id];
  }
  const std::string group = DescribeGroup(info.spec());
  if (info.state() == rpc::PlacementGroupInfo::REMOVED) {
    throw Error(what + ": " + group + " was removed");
  }
  if (info.state() == rpc::PlacementGroupInfo::FAILED) {
    throw Error(what + ": " + group + " cannot be placed: " + info.failure());
  }
  if (bundle_index < -1 || bundle_index >= info.spec().bundles_size()) {
    throw Error(what + ": bundle index " + std::to_string(bundle_index) + " is out of range; " +
                group + " has " + std::to_string(info.spec().bundles_size()) + " bundle(s)");
  }
  rpc::ResourceSet request;
  for (const auto& [name, amount] : resources) {
    if (amount < 0) {
      throw Error(what + ": resource " + name + " must not be negative, got " +
                  std::to_string(amount));
    }
    if (amount > 0) (*request.mutable_amounts())[name] = amount;
  }
  bool fits = false;
  for (const rpc::Bundle& b : info.spec().bundles()) {
    if ((bundle_index < 0 || b.index() == bundle_index) && Fits(request, b.resources())) {
      fits = true;
    }
  }
  if (!fits) {
    std::string where = bundle_index < 0
                            ? "any bundle of " + group
                            : "bundle " + std::to_string(bundle_index) + " of " + group + " (" +
                                  Describe(info.spec().bundles(bundle_index).resources()) + ")";
    throw Error(what + ": asks for " + Describe(request) + ", more than " + where +
                " holds; ask for less with SetResources");
  }
  return BundleRequest(request, group_id, bundle_index);
}

}  // namespace raympi
