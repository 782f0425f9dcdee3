#include "gcs_rank/placement_policy.h"

#include <algorithm>
#include <functional>

#include "common/bundle_resources.h"
#include "common/resources.h"

namespace raympi {

namespace {

using Pools = std::map<int, rpc::ResourceSet>;

double Cpus(const rpc::ResourceSet& set) {
  auto it = set.amounts().find("CPU");
  return it == set.amounts().end() ? 0 : it->second;
}

// A bounded depth-first search: STRICT_SPREAD is a matching problem, and a greedy choice can
// miss a placement that exists (a big bundle needs the one big node a small one took).
constexpr int kMaxSearchSteps = 100000;

class Placer {
 public:
  Placer(const rpc::PlacementGroupSpec& spec, std::vector<int> fixed, Pools pools)
      : spec_(spec), nodes_(std::move(fixed)), pools_(std::move(pools)) {
    for (int node : nodes_) {
      if (node >= 0) ++count_[node];
    }
  }

  bool Place() {
    switch (spec_.strategy()) {
      case rpc::PlacementGroupSpec::STRICT_PACK:
        return PackOnOneNode();
      case rpc::PlacementGroupSpec::PACK:
        return PackOnOneNode() || Greedy(/*spread=*/false);
      case rpc::PlacementGroupSpec::SPREAD:
        return Greedy(/*spread=*/true);
      case rpc::PlacementGroupSpec::STRICT_SPREAD: {
        int steps = 0;
        return SpreadStrictly(0, steps);
      }
      default:
        return false;
    }
  }
  const std::vector<int>& nodes() const { return nodes_; }

 private:
  const rpc::ResourceSet& Demand(size_t i) const { return spec_.bundles(i).resources(); }

  // Every unplaced bundle on one node: the node the fixed ones are on, else the first with room.
  bool PackOnOneNode() {
    rpc::ResourceSet sum;
    std::vector<size_t> todo;
    int target = -1;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i] >= 0) {
        if (target >= 0 && target != nodes_[i] &&
            spec_.strategy() == rpc::PlacementGroupSpec::STRICT_PACK) {
          return false;
        }
        target = nodes_[i];
      } else {
        Add(Demand(i), &sum);
        todo.push_back(i);
      }
    }
    for (auto& [node, pool] : pools_) {
      if (target >= 0 && node != target) continue;
      if (!Fits(sum, pool)) continue;
      for (size_t i : todo) nodes_[i] = node;
      return true;
    }
    return false;
  }

  // PACK: a node already used if it has room, else the roomiest. SPREAD: the node with the
  // fewest bundles of the group that has room (lowest id first).
  bool Greedy(bool spread) {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (nodes_[i] >= 0) continue;
      int best = -1;
      for (auto& [node, pool] : pools_) {
        if (!Fits(Demand(i), pool)) continue;
        if (best < 0 || Better(node, best, spread)) best = node;
      }
      if (best < 0) return false;
      Take(i, best);
    }
    return true;
  }
  bool Better(int node, int than, bool spread) {
    int used = count_[node], used_than = count_[than];
    if (spread) return used < used_than;
    if ((used > 0) != (used_than > 0)) return used > 0;
    return Cpus(pools_[node]) > Cpus(pools_[than]);
  }

  bool SpreadStrictly(size_t i, int& steps) {
    if (i == nodes_.size()) return true;
    if (nodes_[i] >= 0) return SpreadStrictly(i + 1, steps);
    for (auto& [node, pool] : pools_) {
      if (++steps > kMaxSearchSteps) return false;
      if (count_[node] > 0 || !Fits(Demand(i), pool)) continue;
      Take(i, node);
      if (SpreadStrictly(i + 1, steps)) return true;
      Add(Demand(i), &pools_[node]);
      --count_[node];
      nodes_[i] = -1;
    }
    return false;
  }

  void Take(size_t i, int node) {
    nodes_[i] = node;
    ++count_[node];
    Subtract(Demand(i), &pools_[node]);
  }

  const rpc::PlacementGroupSpec& spec_;
  std::vector<int> nodes_;
  Pools pools_;
  std::map<int, int> count_;  // bundles of the group per node
};

std::string NeverReason(const rpc::PlacementGroupSpec& spec, const std::vector<int>& fixed,
                        const std::map<int, rpc::NodeInfo>& nodes) {
  std::string have;
  int alive = 0;
  for (const auto& [id, info] : nodes) {
    if (!info.alive()) continue;
    ++alive;
    have += (have.empty() ? "" : ", ") + std::string("node ") + std::to_string(id) + " has " +
            DescribePlain(info.total());
  }
  int todo = static_cast<int>(std::count(fixed.begin(), fixed.end(), -1));
  for (int i = 0; i < spec.bundles_size(); ++i) {
    if (fixed[i] >= 0) continue;
    bool fits_somewhere = false;
    for (const auto& [id, info] : nodes) {
      if (info.alive() && Fits(spec.bundles(i).resources(), info.total())) fits_somewhere = true;
    }
    if (!fits_somewhere) {
      return "bundle " + std::to_string(i) + " " + DescribePlain(spec.bundles(i).resources()) +
             " fits on no node (" + have + ")";
    }
  }
  if (spec.strategy() == rpc::PlacementGroupSpec::STRICT_SPREAD && spec.bundles_size() > alive) {
    return "STRICT_SPREAD needs a node per bundle: " + std::to_string(spec.bundles_size()) +
           " bundles, but the job has " + std::to_string(alive) + " node(s)";
  }
  if (spec.strategy() == rpc::PlacementGroupSpec::STRICT_PACK) {
    rpc::ResourceSet sum;
    for (const auto& b : spec.bundles()) Add(b.resources(), &sum);
    return "STRICT_PACK needs one node with " + DescribePlain(sum) + " in all (" + have + ")";
  }
  return std::to_string(todo) + " bundle(s) do not fit together even on empty nodes (" + have + ")";
}

}  // namespace

std::string DescribePlain(const rpc::ResourceSet& set) {
  rpc::ResourceSet plain;
  for (const auto& [name, amount] : set.amounts()) {
    if (!ParseGroupResource(name)) (*plain.mutable_amounts())[name] = amount;
  }
  return Describe(plain);
}

Placement PlaceBundles(const rpc::PlacementGroupSpec& spec, const std::vector<int>& fixed,
                       const std::map<int, rpc::NodeInfo>& nodes) {
  Pools now, empty;
  for (const auto& [id, info] : nodes) {
    if (!info.alive()) continue;
    now[id] = info.available();
    empty[id] = info.total();
  }
  // On empty nodes, bundles that stay where they are still take their share.
  for (size_t i = 0; i < fixed.size(); ++i) {
    if (fixed[i] >= 0 && empty.count(fixed[i])) {
      Subtract(spec.bundles(static_cast<int>(i)).resources(), &empty[fixed[i]]);
    }
  }
  Placement out;
  Placer placer(spec, fixed, now);
  if (placer.Place()) {
    out.kind = Placement::Kind::kPlaced;
    out.nodes = placer.nodes();
    return out;
  }
  Placer on_empty(spec, fixed, empty);
  if (on_empty.Place()) {
    out.kind = Placement::Kind::kNotNow;
    return out;
  }
  out.kind = Placement::Kind::kNever;
  out.reason = NeverReason(spec, fixed, nodes);
  return out;
}

}  // namespace raympi
