#include "common/resources.h"

#include <map>
#include <sstream>

namespace raympi {

namespace {
constexpr double kEpsilon = 1e-9;
}

bool Fits(const rpc::ResourceSet& request, const rpc::ResourceSet& pool) {
  for (const auto& [name, amount] : request.amounts()) {
    auto it = pool.amounts().find(name);
    double have = it == pool.amounts().end() ? 0 : it->second;
    if (amount > have + kEpsilon) return false;
  }
  return true;
}

void Subtract(const rpc::ResourceSet& amount, rpc::ResourceSet* pool) {
  for (const auto& [name, value] : amount.amounts()) (*pool->mutable_amounts())[name] -= value;
}

void Add(const rpc::ResourceSet& amount, rpc::ResourceSet* pool) {
  for (const auto& [name, value] : amount.amounts()) (*pool->mutable_amounts())[name] += value;
}

std::string Describe(const rpc::ResourceSet& set) {
  std::map<std::string, double> sorted(set.amounts().begin(), set.amounts().end());
  std::ostringstream out;
  out << "{";
  bool first = true;
  for (const auto& [name, value] : sorted) {
    out << (first ? "" : ", ") << name << ": " << value;
    first = false;
  }
  out << "}";
  return out.str();
}

}  // namespace raympi
