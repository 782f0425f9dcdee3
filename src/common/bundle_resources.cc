#include "common/bundle_resources.h"

#include <cstdlib>

namespace raympi {

namespace {
constexpr const char* kMarker = "bundle";
constexpr const char* kInfix = "_group_";

std::string Wildcard(const std::string& base, const std::string& hex) {
  return base + kInfix + hex;
}
std::string Indexed(const std::string& base, int index, const std::string& hex) {
  return base + kInfix + std::to_string(index) + "_" + hex;
}
}  // namespace

std::string GroupHex(const std::string& group_id) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : group_id) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

rpc::ResourceSet BundleCapacity(const rpc::ResourceSet& bundle, const std::string& group_id,
                                int index) {
  const std::string hex = GroupHex(group_id);
  rpc::ResourceSet out;
  auto& amounts = *out.mutable_amounts();
  for (const auto& [base, amount] : bundle.amounts()) {
    amounts[Indexed(base, index, hex)] = amount;
    amounts[Wildcard(base, hex)] = amount;
  }
  amounts[Indexed(kMarker, index, hex)] = kBundleMarkerCapacity;
  amounts[Wildcard(kMarker, hex)] = kBundleMarkerCapacity;
  return out;
}

rpc::ResourceSet BundleRequest(const rpc::ResourceSet& request, const std::string& group_id,
                               int index) {
  const std::string hex = GroupHex(group_id);
  rpc::ResourceSet out;
  auto& amounts = *out.mutable_amounts();
  for (const auto& [base, amount] : request.amounts()) {
    if (amount <= 0) continue;
    amounts[Wildcard(base, hex)] = amount;
    if (index >= 0) amounts[Indexed(base, index, hex)] = amount;
  }
  amounts[Wildcard(kMarker, hex)] = kBundleMarkerRequest;
  if (index >= 0) amounts[Indexed(kMarker, index, hex)] = kBundleMarkerRequest;
  return out;
}

std::optional<GroupResource> ParseGroupResource(const std::string& name) {
  size_t at = name.rfind(kInfix);
  if (at == std::string::npos || at == 0) return std::nullopt;
  GroupResource out;
  out.base = name.substr(0, at);
  std::string rest = name.substr(at + std::char_traits<char>::length(kInfix));
  size_t underscore = rest.find('_');
  if (underscore != std::string::npos) {
    std::string index = rest.substr(0, underscore);
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    out.index = std::atoi(index.c_str());
    rest = rest.substr(underscore + 1);
  }
  // Group ids are 16 bytes: 32 hex digits (a user's "x_group_ab" is not a group's).
  if (rest.size() != 32 || rest.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return std::nullopt;
  }
  out.group_hex = rest;
  return out;
}

}  // namespace raympi
