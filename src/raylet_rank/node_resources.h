// What a node offers, discovered with hwloc and cut into virtual-node slices.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace raympi {

struct NodeResources {
  std::string host;      // hostname
  std::vector<int> pus;  // OS indices of the processing units (logical CPUs) of this node
  // Per entry of `pus`: its core and NUMA domain (hwloc logical indices), so placement-group
  // bundles take PUs that share a core or a domain.
  std::vector<int> pu_cores;
  std::vector<int> pu_numas;
  int num_cores = 0;          // physical cores in the slice
  int num_numa = 0;           // NUMA domains touched by the slice
  uint64_t memory_bytes = 0;  // this slice's share of the machine's memory
  double num_cpus = 0;        // schedulable CPUs (defaults to pus.size(), at least 1)
  int num_gpus = 0;           // GPUs hwloc sees (OS devices), shared out among the slices
};

// Discovers the machine with hwloc, restricted to the process's allowed cpuset (so a Slurm
// allocation is honoured), and returns slice `index` of `count` equal slices: PUs are divided
// in order (every slice gets at least one PU, slices may share PUs when count > PUs), memory is
// divided evenly. count = 1 gives the whole allowed machine.
StatusOr<NodeResources> DiscoverNodeResources(int index, int count);

}  // namespace raympi
