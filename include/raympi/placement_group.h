// Placement groups: reserve bundles of resources across nodes, then run tasks and actors in
// them (Ray's placement groups). A bundle asking for k CPUs reserves k processing units of its
// node, and whatever runs in the bundle is bound to them. See docs/placement-groups.md.
//
// @code
//   raympi::PlacementGroupCreationOptions options;
//   options.name = "stage";
//   options.bundles = {{{"CPU", 1}}, {{"CPU", 1}}};
//   options.strategy = raympi::PlacementStrategy::SPREAD;
//   raympi::PlacementGroup pg = raympi::CreatePlacementGroup(options);
//   if (!pg.Wait(60)) { /* not placed within 60 s */ }
//   auto ref = raympi::Task(Work).SetPlacementGroup(pg, 0).Remote(42);  // in bundle 0
//   auto actor = raympi::Actor(MakeCounter).SetPlacementGroup(pg, 1).Remote(0);
//   raympi::RemovePlacementGroup(pg);  // gives the resources back, ends what ran in it
// @endcode
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "raympi/errors.h"
#include "raympi/object_ref.h"
#include "raympi/runtime.h"

namespace raympi {

/// How bundles are spread over nodes (Ray's names).
enum class PlacementStrategy {
  PACK = 0,           ///< as few nodes as possible
  SPREAD = 1,         ///< as many nodes as possible
  STRICT_PACK = 2,    ///< all bundles on one node, or the group waits
  STRICT_SPREAD = 3,  ///< each bundle on a node of its own, or the group waits
};

/// "PACK", "SPREAD", "STRICT_PACK" or "STRICT_SPREAD"; raympi::Error for anything else.
inline PlacementStrategy PlacementStrategyFromName(const std::string& name) {
  if (name == "PACK") return PlacementStrategy::PACK;
  if (name == "SPREAD") return PlacementStrategy::SPREAD;
  if (name == "STRICT_PACK") return PlacementStrategy::STRICT_PACK;
  if (name == "STRICT_SPREAD") return PlacementStrategy::STRICT_SPREAD;
  throw Error("raympi: unknown placement strategy '" + name +
              "'; use PACK, SPREAD, STRICT_PACK or STRICT_SPREAD");
}

struct PlacementGroupCreationOptions {
  std::string name;  ///< optional; unique among live groups (GetPlacementGroup finds it)
  /// One map per bundle, e.g. {{{"CPU", 1}}, {{"CPU", 2}, {"custom", 1}}}.
  std::vector<std::map<std::string, double>> bundles;
  PlacementStrategy strategy = PlacementStrategy::PACK;
};

/// A handle to a placement group. Copies share it: Remove through one is seen by all.
class PlacementGroup {
 public:
  PlacementGroup() = default;

  bool Empty() const { return state_ == nullptr; }
  /// The group's id as hex.
  std::string GetID() const { return internal::HexId(Status().spec.id); }
  const std::string& GetName() const { return Status().spec.name; }
  PlacementStrategy GetStrategy() const {
    return static_cast<PlacementStrategy>(Status().spec.strategy);
  }
  const std::vector<std::map<std::string, double>>& GetBundles() const {
    return Status().spec.bundles;
  }

  /// Waits up to timeout_seconds (-1: no limit) for every bundle to be placed; true once they
  /// are. Throws raympi::Error when the group was removed or can never be placed.
  bool Wait(int timeout_seconds) const {
    int64_t ms = timeout_seconds < 0 ? -1 : static_cast<int64_t>(timeout_seconds) * 1000;
    return Refresh(ms);
  }
  /// True when every bundle is placed (does not wait).
  bool Ready() const { return Refresh(0); }

  /// The node of each bundle and the PUs (OS indices) it reserved there; known once ready.
  const std::vector<int>& BundleNodes() const { return Status().bundle_nodes; }
  const std::vector<std::vector<int>>& BundlePus() const { return Status().bundle_pus; }

  /// Removes the group: its resources go back to the nodes, and tasks and actors running in it
  /// are ended (their Get raises an error saying the group was removed).
  void Remove() const {
    *state_ = internal::CurrentRuntime().RemovePlacementGroup(Status().spec.id);
  }
  bool Removed() const {
    return state_ != nullptr && state_->state == internal::PlacementGroupStatus::State::kRemoved;
  }

  /// Binary id, for the runtime.
  const std::string& BinaryId() const { return Status().spec.id; }
  explicit PlacementGroup(internal::PlacementGroupStatus status)
      : state_(std::make_shared<internal::PlacementGroupStatus>(std::move(status))) {}

 private:
  const internal::PlacementGroupStatus& Status() const {
    if (state_ == nullptr) throw Error("raympi: this PlacementGroup is empty");
    return *state_;
  }
  bool Refresh(int64_t wait_ms) const {
    using State = internal::PlacementGroupStatus::State;
    const internal::PlacementGroupStatus& now = Status();
    if (now.state == State::kCreated) return true;
    if (now.state == State::kPending) {
      *state_ = internal::CurrentRuntime().GetPlacementGroup(now.spec.id, "", wait_ms);
    }
    std::string what =
        "placement group " + (now.spec.name.empty() ? GetID() : "'" + now.spec.name + "'");
    if (state_->state == State::kRemoved) throw Error(what + " was removed");
    if (state_->state == State::kFailed)
      throw Error(what + " cannot be placed: " + state_->failure);
    return state_->state == State::kCreated;
  }

  std::shared_ptr<internal::PlacementGroupStatus> state_;
};

/// Creates a placement group; returns at once (the group is placed in the background: see
/// PlacementGroup::Wait). Throws raympi::Error for no bundles, a bundle with no or negative
/// resources, an unknown strategy, a taken name, or a group that no node could ever hold.
inline PlacementGroup CreatePlacementGroup(const PlacementGroupCreationOptions& options) {
  const std::string what =
      "raympi::CreatePlacementGroup" + (options.name.empty() ? "" : "(\"" + options.name + "\")");
  if (options.bundles.empty()) {
    throw Error(what + ": no bundles; give at least one, e.g. bundles = {{{\"CPU\", 1}}}");
  }
  for (size_t i = 0; i < options.bundles.size(); ++i) {
    bool any = false;
    for (const auto& [name, amount] : options.bundles[i]) {
      if (!(amount >= 0)) {
        throw Error(what + ": bundle " + std::to_string(i) + " asks for " + std::to_string(amount) +
                    " " + name + "; amounts must be positive");
      }
      any = any || amount > 0;
    }
    if (!any) {
      throw Error(what + ": bundle " + std::to_string(i) +
                  " asks for no resources; give it at least one, e.g. {{\"CPU\", 1}}");
    }
  }
  int strategy = static_cast<int>(options.strategy);
  if (strategy < 0 || strategy > 3) {
    throw Error(what + ": unknown strategy " + std::to_string(strategy) +
                "; use PACK, SPREAD, STRICT_PACK or STRICT_SPREAD");
  }
  internal::PlacementGroupSpecification spec;
  spec.name = options.name;
  spec.strategy = strategy;
  spec.bundles = options.bundles;
  return PlacementGroup(internal::CurrentRuntime().CreatePlacementGroup(spec));
}

/// Removes a group (see PlacementGroup::Remove).
inline void RemovePlacementGroup(const PlacementGroup& group) { group.Remove(); }

/// The live group named `name`, from any process; raympi::Error when there is none.
inline PlacementGroup GetPlacementGroup(const std::string& name) {
  if (name.empty()) throw Error("raympi::GetPlacementGroup: the name is empty");
  return PlacementGroup(internal::CurrentRuntime().GetPlacementGroup("", name, 0));
}

namespace internal {
// Checks a (group, bundle index) choice of SetPlacementGroup; throws naming what is wrong.
inline void CheckBundleChoice(const std::string& what, const PlacementGroup& group, int index) {
  if (group.Empty()) throw Error(what + ".SetPlacementGroup: the PlacementGroup is empty");
  if (group.Removed()) {
    throw Error(what + ".SetPlacementGroup: placement group " +
                (group.GetName().empty() ? group.GetID() : "'" + group.GetName() + "'") +
                " was removed");
  }
  int n = static_cast<int>(group.GetBundles().size());
  if (index < -1 || index >= n) {
    throw Error(what + ".SetPlacementGroup: bundle index " + std::to_string(index) +
                " is out of range; the group has " + std::to_string(n) + " bundle(s) (0.." +
                std::to_string(n - 1) + ", or -1 for any)");
  }
}
}  // namespace internal

}  // namespace raympi
