#include "raylet_rank/bundle_manager.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/bundle_resources.h"
#include "common/logging.h"
#include "common/resources.h"

namespace raympi {

namespace {

double Cpus(const rpc::ResourceSet& set) {
  auto it = set.amounts().find("CPU");
  return it == set.amounts().end() ? 0 : it->second;
}

// Erases every name of the group (its hex) from `set`.
void EraseGroup(const std::string& hex, rpc::ResourceSet* set) {
  auto& amounts = *set->mutable_amounts();
  for (auto it = amounts.begin(); it != amounts.end();) {
    auto parsed = ParseGroupResource(it->first);
    if (parsed && parsed->group_hex == hex) {
      it = amounts.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace

std::vector<size_t> PickPus(const std::vector<PuSlot>& pus, const std::vector<int>& uses, int k) {
  std::vector<size_t> out;
  if (k <= 0 || pus.empty()) return out;
  std::vector<size_t> free;
  for (size_t i = 0; i < pus.size(); ++i) {
    if (uses[i] == 0) free.push_back(i);
  }
  if (static_cast<int>(free.size()) >= k) {
    // The NUMA domain with the fewest free PUs that still has k (best fit keeps big domains
    // whole); none: every free PU is a candidate.
    std::map<int, std::vector<size_t>> by_numa;
    for (size_t i : free) by_numa[pus[i].numa].push_back(i);
    std::vector<size_t> candidates = free;
    size_t best = SIZE_MAX;
    for (auto& [numa, list] : by_numa) {
      if (static_cast<int>(list.size()) >= k && list.size() < best) {
        best = list.size();
        candidates = list;
      }
    }
    // Cores: a single core that holds all k if one does (the smallest such), else whole cores
    // with the most free PUs first.
    std::map<int, std::vector<size_t>> by_core;
    for (size_t i : candidates) by_core[pus[i].core].push_back(i);
    const std::vector<size_t>* single = nullptr;
    for (auto& [core, list] : by_core) {
      if (static_cast<int>(list.size()) >= k && (single == nullptr || list.size() < single->size()))
        single = &list;
    }
    if (single != nullptr) return std::vector<size_t>(single->begin(), single->begin() + k);
    std::vector<std::vector<size_t>> cores;
    for (auto& [core, list] : by_core) cores.push_back(list);
    std::stable_sort(cores.begin(), cores.end(),
                     [](const auto& a, const auto& b) { return a.size() > b.size(); });
    for (const auto& list : cores) {
      for (size_t i : list) {
        if (static_cast<int>(out.size()) < k) out.push_back(i);
      }
    }
    return out;
  }
  // Not enough free PUs: all free ones, then the least used (shared with other bundles).
  out = free;
  std::vector<size_t> used;
  for (size_t i = 0; i < pus.size(); ++i) {
    if (uses[i] > 0) used.push_back(i);
  }
  std::stable_sort(used.begin(), used.end(), [&](size_t a, size_t b) { return uses[a] < uses[b]; });
  for (size_t i : used) {
    if (static_cast<int>(out.size()) < k) out.push_back(i);
  }
  return out;  // fewer than k only when k exceeds the node's PUs: every PU is shared then
}

BundleManager::BundleManager(std::vector<PuSlot> pus, ProcessControl* control)
    : pus_(std::move(pus)), uses_(pus_.size(), 0), control_(control) {}

Status BundleManager::Prepare(const rpc::PrepareBundles& prepare, rpc::ResourceSet* available,
                              std::vector<rpc::Bundle>* prepared) {
  const std::string& id = prepare.placement_group_id();
  rpc::ResourceSet sum;
  for (const rpc::Bundle& b : prepare.bundles()) {
    if (groups_.count(id) && groups_[id].count(b.index())) {
      return Status::InvalidArgument("bundle " + std::to_string(b.index()) +
                                     " is already reserved here");
    }
    Add(b.resources(), &sum);
  }
  if (!Fits(sum, *available)) {
    return Status::Unavailable("the bundles need " + Describe(sum) + ", the node has " +
                               Describe(*available) + " free");
  }
  Subtract(sum, available);
  for (const rpc::Bundle& b : prepare.bundles()) {
    Reserved r;
    r.bundle = b;
    r.bundle.clear_pus();
    int k = static_cast<int>(std::ceil(Cpus(b.resources()) - 1e-9));
    r.positions = PickPus(pus_, uses_, std::min<int>(k, static_cast<int>(pus_.size())));
    for (size_t p : r.positions) {
      ++uses_[p];
      r.bundle.add_pus(pus_[p].os_index);
    }
    std::sort(r.bundle.mutable_pus()->begin(), r.bundle.mutable_pus()->end());
    prepared->push_back(r.bundle);
    groups_[id][b.index()] = std::move(r);
  }
  return Status::Ok();
}

Status BundleManager::Commit(const std::string& group_id, rpc::ResourceSet* total,
                             rpc::ResourceSet* available) {
  auto it = groups_.find(group_id);
  int committed = 0;
  if (it != groups_.end()) {
    for (auto& [index, r] : it->second) {
      if (r.committed) continue;
      rpc::ResourceSet capacity = BundleCapacity(r.bundle.resources(), group_id, index);
      Add(capacity, total);
      Add(capacity, available);
      r.committed = true;
      ++committed;
    }
  }
  if (committed == 0) return Status::NotFound("no prepared bundle of this group on the node");
  return Status::Ok();
}

std::vector<uint64_t> BundleManager::Return(const rpc::ReturnBundles& ret, rpc::ResourceSet* total,
                                            rpc::ResourceSet* available) {
  std::vector<uint64_t> ended;
  const std::string& id = ret.placement_group_id();
  auto it = groups_.find(id);
  if (it == groups_.end()) return ended;
  bool any_committed = false;
  for (auto r = it->second.begin(); r != it->second.end();) {
    if (ret.prepared_only() && r->second.committed) {
      ++r;
      continue;
    }
    any_committed = any_committed || r->second.committed;
    Add(r->second.bundle.resources(), available);
    for (size_t p : r->second.positions) --uses_[p];
    r = it->second.erase(r);
  }
  if (it->second.empty()) groups_.erase(it);
  if (!any_committed) return ended;
  // Removal returns every bundle of the group here at once, so all its names go.
  const std::string hex = GroupHex(id);
  EraseGroup(hex, total);
  EraseGroup(hex, available);
  for (auto lease = leases_.begin(); lease != leases_.end();) {
    if (lease->second.group_id != id) {
      ++lease;
      continue;
    }
    ended.push_back(lease->first);
    int slot = lease->second.slot;
    kill_causes_[slot] = ret.cause();
    auto pid = pids_.find(slot);
    if (pid != pids_.end()) {
      Status st = control_->Kill(pid->second);
      if (!st.ok()) RAYMPI_LOG_ERROR("cannot end worker slot {}: {}", slot, st.ToString());
    }
    lease = leases_.erase(lease);
  }
  return ended;
}

BundleManager::Reserved* BundleManager::FindByHex(const std::string& hex, int index) {
  for (auto& [id, bundles] : groups_) {
    if (GroupHex(id) != hex) continue;
    auto it = bundles.find(index);
    return it == bundles.end() ? nullptr : &it->second;
  }
  return nullptr;
}

bool BundleManager::ResolveAnyBundle(rpc::ResourceSet* request,
                                     const rpc::ResourceSet& pool) const {
  std::string hex;
  rpc::ResourceSet base;
  for (const auto& [name, amount] : request->amounts()) {
    auto parsed = ParseGroupResource(name);
    if (!parsed) continue;
    if (parsed->index >= 0) return true;  // already names its bundle
    hex = parsed->group_hex;
    if (parsed->base != "bundle") (*base.mutable_amounts())[parsed->base] = amount;
  }
  if (hex.empty()) return true;
  for (const auto& [id, bundles] : groups_) {
    if (GroupHex(id) != hex) continue;
    for (const auto& [index, r] : bundles) {
      if (!r.committed) continue;
      rpc::ResourceSet named = BundleRequest(base, id, index);
      if (!Fits(named, pool)) continue;
      for (const auto& [name, amount] : named.amounts())
        (*request->mutable_amounts())[name] = amount;
      return true;
    }
  }
  return false;
}

void BundleManager::OnLeaseGranted(uint64_t lease_id, int slot, const rpc::ResourceSet& resources) {
  for (const auto& [name, amount] : resources.amounts()) {
    auto parsed = ParseGroupResource(name);
    if (!parsed || parsed->index < 0) continue;
    Reserved* r = FindByHex(parsed->group_hex, parsed->index);
    if (r == nullptr) return;
    LeaseInBundle lease;
    lease.slot = slot;
    for (const auto& [id, bundles] : groups_) {
      if (GroupHex(id) == parsed->group_hex) lease.group_id = id;
    }
    lease.index = parsed->index;
    auto pid = pids_.find(slot);
    if (r->bundle.pus_size() > 0 && pid != pids_.end()) {
      std::vector<int> pus(r->bundle.pus().begin(), r->bundle.pus().end());
      auto previous = control_->Bind(pid->second, pus);
      if (previous.ok()) {
        lease.bound = true;
        lease.previous = std::move(*previous);
      } else {
        RAYMPI_LOG_ERROR("cannot bind worker slot {} to its bundle's PUs: {}", slot,
                         previous.status().ToString());
      }
    }
    leases_[lease_id] = std::move(lease);
    return;
  }
}

void BundleManager::OnLeaseEnded(uint64_t lease_id, bool worker_alive) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  auto pid = pids_.find(it->second.slot);
  if (worker_alive && it->second.bound && pid != pids_.end()) {
    auto restored = control_->Bind(pid->second, it->second.previous);
    if (!restored.ok()) {
      RAYMPI_LOG_WARN("cannot unbind worker slot {}: {}", it->second.slot,
                      restored.status().ToString());
    }
  }
  leases_.erase(it);
}

std::string BundleManager::TakeKillCause(int slot) {
  auto it = kill_causes_.find(slot);
  if (it == kill_causes_.end()) return "";
  std::string cause = std::move(it->second);
  kill_causes_.erase(it);
  return cause;
}

std::string BundleManager::GroupOf(const rpc::ResourceSet& request) {
  for (const auto& [name, amount] : request.amounts()) {
    auto parsed = ParseGroupResource(name);
    if (parsed) return parsed->group_hex;
  }
  return "";
}

std::vector<int> BundleManager::BundlePus(const std::string& group_id, int index) const {
  auto it = groups_.find(group_id);
  if (it == groups_.end() || !it->second.count(index)) return {};
  const rpc::Bundle& b = it->second.at(index).bundle;
  return std::vector<int>(b.pus().begin(), b.pus().end());
}

size_t BundleManager::NumBundles() const {
  size_t n = 0;
  for (const auto& [id, bundles] : groups_) n += bundles.size();
  return n;
}

}  // namespace raympi
