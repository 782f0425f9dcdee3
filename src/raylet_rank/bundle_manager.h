// BundleManager: the placement-group bundles of one node (the raylet's side of the GCS's
// two-phase commit). A prepared bundle takes its resources out of the node's general pool and
// reserves concrete PUs (a bundle asking for k CPUs gets k PUs of its own, of one core or NUMA
// domain where possible); a committed one shows up as named resources
// (common/bundle_resources.h) that tasks of the group lease; a returned one gives everything
// back and ends the workers that ran in it. A worker leased in a bundle runs bound to the
// bundle's PUs until the lease ends.
//
// Thread-safety: single-threaded (the raylet's event loop).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "raylet_rank/process_control.h"
#include "raympi.pb.h"

namespace raympi {

struct PuSlot {
  int os_index = 0;
  int core = 0;  // PUs with the same core share it (hyperthreads)
  int numa = 0;
};

// Positions in `pus` of k PUs for a bundle. Unused PUs first (uses[i] == 0), all from one NUMA
// domain if one has enough, filling whole cores before splitting one; when fewer than k are
// unused (more CPUs than PUs: --num-cpus, or virtual nodes sharing PUs), the least used PUs are
// shared.
std::vector<size_t> PickPus(const std::vector<PuSlot>& pus, const std::vector<int>& uses, int k);

class BundleManager {
 public:
  BundleManager(std::vector<PuSlot> pus, ProcessControl* control);

  // Reserves the bundles out of `available` and picks their PUs (returned in `prepared`), or
  // reserves nothing and says why.
  Status Prepare(const rpc::PrepareBundles& prepare, rpc::ResourceSet* available,
                 std::vector<rpc::Bundle>* prepared);
  // Makes the group's prepared bundles usable: adds their named resources to the node.
  Status Commit(const std::string& group_id, rpc::ResourceSet* total, rpc::ResourceSet* available);
  // Gives the group's bundles back (with prepared_only, those not committed yet). Workers
  // leased in a committed bundle are killed; their lease ids are returned so the caller drops
  // the group's names from those leases.
  std::vector<uint64_t> Return(const rpc::ReturnBundles& ret, rpc::ResourceSet* total,
                               rpc::ResourceSet* available);

  // A request for any bundle of a group (wildcard names only) gets the names of one bundle
  // here that has room in `pool`. False when none has. Other requests are left alone.
  bool ResolveAnyBundle(rpc::ResourceSet* request, const rpc::ResourceSet& pool) const;
  void OnWorkerReady(int slot, int pid) { pids_[slot] = pid; }
  // Binds the worker to its bundle's PUs when the lease is in a bundle.
  void OnLeaseGranted(uint64_t lease_id, int slot, const rpc::ResourceSet& resources);
  // Undoes the binding (when the worker lives on).
  void OnLeaseEnded(uint64_t lease_id, bool worker_alive);
  // Why the worker in `slot` was killed (its group was removed); empty if it was not.
  std::string TakeKillCause(int slot);
  // Killed and not yet reported dead: its returned lease must not put it back in the pool.
  bool IsBeingKilled(int slot) const { return kill_causes_.count(slot) > 0; }
  // The hex of the group whose resources a request names; empty if none.
  static std::string GroupOf(const rpc::ResourceSet& request);

  // The PUs of a bundle on this node; empty when it has none here.
  std::vector<int> BundlePus(const std::string& group_id, int index) const;
  size_t NumBundles() const;

 private:
  struct Reserved {
    rpc::Bundle bundle;             // with its PUs
    std::vector<size_t> positions;  // in pus_
    bool committed = false;
  };
  struct LeaseInBundle {
    int slot = 0;
    std::string group_id;
    int index = -1;
    bool bound = false;
    std::vector<int> previous;  // the worker's PUs before
  };
  Reserved* FindByHex(const std::string& hex, int index);

  std::vector<PuSlot> pus_;
  std::vector<int> uses_;  // bundles holding each PU
  ProcessControl* control_;
  std::map<std::string, std::map<int, Reserved>> groups_;  // group id -> index -> bundle
  std::map<int, int> pids_;                                // slot -> pid
  std::map<uint64_t, LeaseInBundle> leases_;
  std::map<int, std::string> kill_causes_;
};

}  // namespace raympi
