// Arithmetic on resource sets ({"CPU": 2, "bigmem": 1}), shared by raylets and the GCS.
#pragma once

#include <string>

#include "raympi.pb.h"

namespace raympi {

// Every amount `request` asks for is present in `pool` (missing names count as 0).
bool Fits(const rpc::ResourceSet& request, const rpc::ResourceSet& pool);
void Subtract(const rpc::ResourceSet& amount, rpc::ResourceSet* pool);
void Add(const rpc::ResourceSet& amount, rpc::ResourceSet* pool);
// "{CPU: 2, bigmem: 1}", sorted by name.
std::string Describe(const rpc::ResourceSet& set);

}  // namespace raympi
