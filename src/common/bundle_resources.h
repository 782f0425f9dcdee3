// How placement-group bundles appear to the schedulers: as named resources, as in Ray. A
// committed bundle i of group G on a node adds, for each resource R it holds,
//   "R_group_i_<G hex>" (this bundle) and "R_group_<G hex>" (any bundle of G on the node),
// plus a marker "bundle_group_i_<G hex>" / "bundle_group_<G hex>" of kBundleMarkerCapacity,
// so a task or actor that asks for no resources still lands in the bundle. A task in the group
// asks for the renamed resources, so leases, spillback and infeasibility work unchanged.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "raympi.pb.h"

namespace raympi {

constexpr double kBundleMarkerCapacity = 1000;
constexpr double kBundleMarkerRequest = 0.001;

// Lower-case hex of a binary group id (the part of the resource names that names the group).
std::string GroupHex(const std::string& group_id);

// What a committed bundle adds to its node: indexed and wildcard names, and the markers.
rpc::ResourceSet BundleCapacity(const rpc::ResourceSet& bundle, const std::string& group_id,
                                int index);

// A task's request rewritten for a bundle (index >= 0) or any bundle of the group (index -1).
rpc::ResourceSet BundleRequest(const rpc::ResourceSet& request, const std::string& group_id,
                               int index);

// The group (hex) and bundle index a resource name belongs to; index -1 for a wildcard name.
struct GroupResource {
  std::string base;       // "CPU"
  std::string group_hex;  // "0a1b..."
  int index = -1;
};
std::optional<GroupResource> ParseGroupResource(const std::string& name);

}  // namespace raympi
