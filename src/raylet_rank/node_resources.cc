#include "raylet_rank/node_resources.h"

#include <hwloc.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <set>
#include <string>

namespace raympi {
namespace {

// RAII owners so every early return still releases hwloc state.
struct TopologyDeleter {
  void operator()(hwloc_topology_t t) const { hwloc_topology_destroy(t); }
};
using TopologyPtr = std::unique_ptr<hwloc_topology, TopologyDeleter>;

struct BitmapDeleter {
  void operator()(hwloc_bitmap_t b) const { hwloc_bitmap_free(b); }
};
using BitmapPtr = std::unique_ptr<hwloc_bitmap_s, BitmapDeleter>;

Status ErrnoStatus(const std::string& call) {
  return Status::Internal(call + " failed: " + std::strerror(errno));
}

StatusOr<std::string> HostName() {
#ifdef HOST_NAME_MAX
  char buf[HOST_NAME_MAX + 1] = {};
#else
  char buf[256] = {};
#endif
  if (gethostname(buf, sizeof(buf) - 1) != 0) return ErrnoStatus("gethostname");
  return std::string(buf);  // buf is zero-filled and one longer than allowed, so terminated
}

uint64_t MachineMemory(hwloc_topology_t topo) {
  hwloc_obj_t root = hwloc_get_root_obj(topo);
  if (root != nullptr && root->total_memory > 0) return root->total_memory;
  // Some platforms report no NUMA memory through hwloc; ask the kernel instead.
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0) return 0;
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
}

// Positions (in the ordered PU list of length n) that belong to slice `index` of `count`.
std::vector<size_t> SliceIndices(size_t n, int index, int count) {
  std::vector<size_t> out;
  const auto c = static_cast<size_t>(count);
  const auto i = static_cast<size_t>(index);
  if (c > n) {
    // More slices than PUs: slices must share, but each still needs something to run on.
    out.push_back(i % n);
    return out;
  }
  for (size_t k = i * n / c; k < (i + 1) * n / c; ++k) out.push_back(k);
  return out;
}

// The NUMA domain whose cpuset holds the PU (in hwloc 2 NUMA nodes are memory children, not
// ancestors of PUs); 0 when hwloc reports none.
int NumaOf(hwloc_topology_t topo, hwloc_obj_t pu) {
  for (hwloc_obj_t numa = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, nullptr);
       numa != nullptr; numa = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, numa)) {
    if (numa->cpuset != nullptr && hwloc_bitmap_isset(numa->cpuset, pu->os_index)) {
      return static_cast<int>(numa->logical_index);
    }
  }
  return 0;
}

}  // namespace

// GPUs as hwloc's OS devices name them. One GPU shows up once per API (cuda0 and opencl0d0 are
// the same card), so the first API that reports any is counted. Slice i of n gets the GPUs whose
// rank r has r % n == i.
int CountGpus(hwloc_topology_t topo, int index, int count) {
  for (const char* api : {"cuda", "rsmi", "ze", "opencl", "card"}) {
    int seen = 0, mine = 0;
    for (hwloc_obj_t dev = hwloc_get_next_osdev(topo, nullptr); dev != nullptr;
         dev = hwloc_get_next_osdev(topo, dev)) {
      if (dev->name == nullptr || std::string(dev->name).rfind(api, 0) != 0) continue;
      if (dev->attr->osdev.type != HWLOC_OBJ_OSDEV_COPROC &&
          dev->attr->osdev.type != HWLOC_OBJ_OSDEV_GPU) {
        continue;
      }
      if (seen++ % count == index) ++mine;
    }
    if (seen > 0) return mine;
  }
  return 0;
}

StatusOr<NodeResources> DiscoverNodeResources(int index, int count) {
  if (count < 1) {
    return Status::InvalidArgument("node slice count must be >= 1, got " + std::to_string(count));
  }
  if (index < 0 || index >= count) {
    return Status::InvalidArgument("node slice index " + std::to_string(index) +
                                   " out of range [0, " + std::to_string(count) + ")");
  }

  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) return ErrnoStatus("hwloc_topology_init");
  TopologyPtr topo(raw);

  // hwloc 2 hides CPUs outside the cgroup cpuset (a Slurm allocation with task/cgroup). The
  // raylet's own CPU binding is deliberately ignored: mpirun binds each rank to one core, yet
  // the node's workers run on all of the node's cores.
  // GPUs are I/O objects, which hwloc leaves out unless asked.
  hwloc_topology_set_io_types_filter(topo.get(), HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
  if (hwloc_topology_set_flags(topo.get(), HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM) != 0) {
    return ErrnoStatus("hwloc_topology_set_flags");
  }
  if (hwloc_topology_load(topo.get()) != 0) return ErrnoStatus("hwloc_topology_load");
  hwloc_const_cpuset_t usable = hwloc_topology_get_allowed_cpuset(topo.get());

  // Topology (logical) order keeps hyperthread siblings and NUMA neighbours adjacent, so
  // contiguous slices stay local.
  std::vector<hwloc_obj_t> all;
  for (hwloc_obj_t pu = hwloc_get_next_obj_by_type(topo.get(), HWLOC_OBJ_PU, nullptr);
       pu != nullptr; pu = hwloc_get_next_obj_by_type(topo.get(), HWLOC_OBJ_PU, pu)) {
    if (hwloc_bitmap_isset(usable, pu->os_index)) all.push_back(pu);
  }
  if (all.empty()) {
    return Status::Internal("hwloc_get_next_obj_by_type found no PU in the allowed cpuset");
  }

  NodeResources res;
  auto host = HostName();
  if (!host.ok()) return host.status();
  res.host = std::move(*host);

  BitmapPtr slice_set(hwloc_bitmap_alloc());
  if (!slice_set) return Status::Internal("hwloc_bitmap_alloc failed");
  std::set<hwloc_obj_t> cores;
  for (size_t k : SliceIndices(all.size(), index, count)) {
    hwloc_obj_t pu = all[k];
    res.pus.push_back(static_cast<int>(pu->os_index));
    hwloc_bitmap_set(slice_set.get(), pu->os_index);
    // Platforms without core information: each PU stands for its own core.
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo.get(), HWLOC_OBJ_CORE, pu);
    cores.insert(core != nullptr ? core : pu);
    res.pu_cores.push_back(
        static_cast<int>(core != nullptr ? core->logical_index : 100000 + pu->logical_index));
    res.pu_numas.push_back(NumaOf(topo.get(), pu));
  }
  res.num_cores = static_cast<int>(cores.size());

  // In hwloc 2 NUMA nodes are memory children, not ancestors of PUs, so match by cpuset.
  for (hwloc_obj_t numa = hwloc_get_next_obj_by_type(topo.get(), HWLOC_OBJ_NUMANODE, nullptr);
       numa != nullptr; numa = hwloc_get_next_obj_by_type(topo.get(), HWLOC_OBJ_NUMANODE, numa)) {
    if (numa->cpuset != nullptr && hwloc_bitmap_intersects(numa->cpuset, slice_set.get())) {
      ++res.num_numa;
    }
  }
  res.num_numa = std::max(res.num_numa, 1);

  res.memory_bytes = MachineMemory(topo.get()) / static_cast<uint64_t>(count);
  res.num_cpus = static_cast<double>(std::max<size_t>(res.pus.size(), 1));
  res.num_gpus = CountGpus(topo.get(), index, count);
  return res;
}

}  // namespace raympi
