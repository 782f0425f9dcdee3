#include "raylet_rank/program_environment.h"

#include <cstdlib>
#include <cstring>

#include "common/tuning_env.h"

namespace raympi {

std::string TunablesWithMallocHugePages(const char* current) {
  constexpr const char* kHugePages = "glibc.malloc.hugetlb=1";
  if (current == nullptr || *current == '\0') return kHugePages;
  if (std::strstr(current, "glibc.malloc.hugetlb") != nullptr) return current;
  return std::string(current) + ":" + kHugePages;
}

void PrepareProgramEnvironment() {
  if (TuningInt("RAYMPI_MALLOC_HUGEPAGES", 1) == 0) return;
  const std::string tunables = TunablesWithMallocHugePages(std::getenv("GLIBC_TUNABLES"));
  setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
}

}  // namespace raympi
