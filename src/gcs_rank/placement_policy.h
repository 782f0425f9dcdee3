// Where the bundles of a placement group go: a pure function of the group's strategy and the
// nodes' resources, so every strategy is unit-tested without a cluster.
//
//   PACK           as few nodes as possible (all on one when one has room)
//   SPREAD         as many nodes as possible (a node gets a second bundle only when none is left)
//   STRICT_PACK    all bundles on one node, or not placed
//   STRICT_SPREAD  every bundle on a node of its own, or not placed
#pragma once

#include <map>
#include <string>
#include <vector>

#include "raympi.pb.h"

namespace raympi {

struct Placement {
  enum class Kind {
    kPlaced,  // `nodes` holds a node for every bundle
    kNotNow,  // would fit on the nodes' totals: wait for resources to free up
    kNever,   // cannot fit even on empty nodes: `reason` says why
  };
  Kind kind = Kind::kNotNow;
  std::vector<int> nodes;  // per bundle
  std::string reason;
};

// Places the bundles of `spec` whose entry in `fixed` is -1 (every one for a new group; the
// lost ones when a node died), given the others stay where `fixed` says. Only alive nodes are
// used; a fixed bundle's resources are already out of its node's `available`.
Placement PlaceBundles(const rpc::PlacementGroupSpec& spec, const std::vector<int>& fixed,
                       const std::map<int, rpc::NodeInfo>& nodes);

// A resource set without the names of placement-group bundles, for messages.
std::string DescribePlain(const rpc::ResourceSet& set);

}  // namespace raympi
