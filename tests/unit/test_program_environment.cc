// The environment supervisors give the user's program: malloc on huge pages unless told not to.
#include <gtest/gtest.h>

#include "raylet_rank/program_environment.h"

namespace raympi {
namespace {

TEST(ProgramEnvironmentTest, HugePagesAreAskedForWhenNothingIsSet) {
  EXPECT_EQ(TunablesWithMallocHugePages(nullptr), "glibc.malloc.hugetlb=1");
  EXPECT_EQ(TunablesWithMallocHugePages(""), "glibc.malloc.hugetlb=1");
}

TEST(ProgramEnvironmentTest, TheUsersOtherTunablesAreKept) {
  EXPECT_EQ(TunablesWithMallocHugePages("glibc.malloc.arena_max=2"),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
}

TEST(ProgramEnvironmentTest, TheUsersOwnHugePageChoiceStands) {
  EXPECT_EQ(TunablesWithMallocHugePages("glibc.malloc.hugetlb=0"), "glibc.malloc.hugetlb=0");
  EXPECT_EQ(TunablesWithMallocHugePages("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2"),
            "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2");
}

TEST(ProgramEnvironmentTest, PrepareSetsItUnlessTurnedOff) {
  unsetenv("GLIBC_TUNABLES");
  setenv("RAYMPI_MALLOC_HUGEPAGES", "0", 1);
  PrepareProgramEnvironment();
  EXPECT_EQ(std::getenv("GLIBC_TUNABLES"), nullptr);
  unsetenv("RAYMPI_MALLOC_HUGEPAGES");
  PrepareProgramEnvironment();
  ASSERT_NE(std::getenv("GLIBC_TUNABLES"), nullptr);
  EXPECT_STREQ(std::getenv("GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1");
  PrepareProgramEnvironment();  // idempotent: a supervisor's child starts supervisors too
  EXPECT_STREQ(std::getenv("GLIBC_TUNABLES"), "glibc.malloc.hugetlb=1");
}

}  // namespace
}  // namespace raympi
