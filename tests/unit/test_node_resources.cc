#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "raylet_rank/node_resources.h"

namespace raympi {
namespace {

// The CPUs this process may run on, straight from the kernel, to check hwloc against.
std::vector<int> AffinityCpus() {
  std::vector<int> cpus;
  // Dynamically sized so machines with more than CPU_SETSIZE CPUs are handled.
  for (int ncpu = 1024; ncpu <= (1 << 20); ncpu *= 2) {
    cpu_set_t* set = CPU_ALLOC(ncpu);
    size_t size = CPU_ALLOC_SIZE(ncpu);
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) == 0) {
      for (int c = 0; c < ncpu; ++c) {
        if (CPU_ISSET_S(c, size, set)) cpus.push_back(c);
      }
      CPU_FREE(set);
      return cpus;
    }
    CPU_FREE(set);
  }
  return cpus;
}

std::set<int> ToSet(const std::vector<int>& v) { return std::set<int>(v.begin(), v.end()); }

TEST(NodeResourcesTest, WholeMachineMatchesAffinity) {
  std::vector<int> cpus = AffinityCpus();
  ASSERT_FALSE(cpus.empty());

  StatusOr<NodeResources> r = DiscoverNodeResources(0, 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pus.size(), cpus.size());
  EXPECT_EQ(ToSet(r->pus), ToSet(cpus));
  EXPECT_EQ(ToSet(r->pus).size(), r->pus.size()) << "duplicate PUs";
  EXPECT_DOUBLE_EQ(r->num_cpus, static_cast<double>(cpus.size()));
  EXPECT_GE(r->num_cores, 1);
  EXPECT_LE(r->num_cores, static_cast<int>(cpus.size()));
  EXPECT_GE(r->num_numa, 1);
  EXPECT_GT(r->memory_bytes, 0u);
  EXPECT_FALSE(r->host.empty());
}

TEST(NodeResourcesTest, TwoSlicesPartitionThePus) {
  StatusOr<NodeResources> whole = DiscoverNodeResources(0, 1);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  ASSERT_GE(whole->pus.size(), 2u) << "this test needs a machine with at least 2 PUs";

  StatusOr<NodeResources> a = DiscoverNodeResources(0, 2);
  StatusOr<NodeResources> b = DiscoverNodeResources(1, 2);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  ASSERT_FALSE(a->pus.empty());
  ASSERT_FALSE(b->pus.empty());

  std::set<int> sa = ToSet(a->pus);
  std::set<int> sb = ToSet(b->pus);
  for (int pu : sa) EXPECT_EQ(sb.count(pu), 0u) << "PU " << pu << " in both slices";
  std::set<int> u = sa;
  u.insert(sb.begin(), sb.end());
  EXPECT_EQ(u, ToSet(whole->pus));
  EXPECT_EQ(a->pus.size() + b->pus.size(), whole->pus.size());
  // Contiguous slices in the whole-machine order, slice 0 first.
  std::vector<int> joined = a->pus;
  joined.insert(joined.end(), b->pus.begin(), b->pus.end());
  EXPECT_EQ(joined, whole->pus);

  for (const NodeResources* s : {&*a, &*b}) {
    EXPECT_DOUBLE_EQ(s->num_cpus, static_cast<double>(s->pus.size()));
    EXPECT_GE(s->num_cores, 1);
    EXPECT_LE(s->num_cores, whole->num_cores);
    EXPECT_GE(s->num_numa, 1);
    EXPECT_LE(s->num_numa, whole->num_numa);
  }
}

TEST(NodeResourcesTest, MoreSlicesThanPusShare) {
  StatusOr<NodeResources> whole = DiscoverNodeResources(0, 1);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  const std::set<int> all = ToSet(whole->pus);
  const int count = static_cast<int>(whole->pus.size()) + 3;

  std::set<int> seen;
  for (int i = 0; i < count; ++i) {
    StatusOr<NodeResources> s = DiscoverNodeResources(i, count);
    ASSERT_TRUE(s.ok()) << "slice " << i << ": " << s.status().ToString();
    ASSERT_GE(s->pus.size(), 1u) << "slice " << i;
    EXPECT_GE(s->num_cpus, 1.0);
    EXPECT_GE(s->num_cores, 1);
    EXPECT_GE(s->num_numa, 1);
    for (int pu : s->pus) EXPECT_EQ(all.count(pu), 1u) << "slice " << i << " has foreign PU";
    seen.insert(s->pus.begin(), s->pus.end());
  }
  EXPECT_EQ(seen, all) << "sharing should still spread slices over every PU";
}

TEST(NodeResourcesTest, MemoryIsDividedEvenly) {
  StatusOr<NodeResources> whole = DiscoverNodeResources(0, 1);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  ASSERT_GT(whole->memory_bytes, 0u);
  for (int count : {2, 3, 7}) {
    for (int i : {0, count - 1}) {
      StatusOr<NodeResources> s = DiscoverNodeResources(i, count);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      const uint64_t expected = whole->memory_bytes / static_cast<uint64_t>(count);
      EXPECT_EQ(s->memory_bytes, expected) << "slice " << i << " of " << count;
    }
  }
}

TEST(NodeResourcesTest, InvalidArgumentsAreRejected) {
  const std::vector<std::pair<int, int>> bad = {{0, 0}, {0, -1}, {-1, 1}, {1, 1}, {5, 3}};
  for (const auto& [index, count] : bad) {
    StatusOr<NodeResources> r = DiscoverNodeResources(index, count);
    EXPECT_FALSE(r.ok()) << "index " << index << " count " << count;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument)
        << "index " << index << " count " << count << ": " << r.status().ToString();
    EXPECT_FALSE(r.status().message().empty());
  }
}

// What the forked child found, sent back through a pipe.
struct ChildReport {
  int status_ok = 0;
  int num_pus = -1;
  int first_pu = -1;
  int num_cores = -1;
  int num_numa = -1;
};

// mpirun binds each rank to a core, but a raylet speaks for its whole node: its own binding
// must not shrink what it offers.
TEST(NodeResourcesTest, IgnoresTheRayletsOwnBinding) {
  std::vector<int> cpus = AffinityCpus();
  ASSERT_FALSE(cpus.empty());
  // Bind the child to one CPU, as mpirun binds a rank.
  const int target = cpus.back();

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: never return into gtest; report and _exit.
    close(fds[0]);
    ChildReport rep;
    cpu_set_t* set = CPU_ALLOC(target + 1);
    size_t size = CPU_ALLOC_SIZE(target + 1);
    CPU_ZERO_S(size, set);
    CPU_SET_S(target, size, set);
    int rc = sched_setaffinity(0, size, set);
    CPU_FREE(set);
    if (rc != 0) _exit(2);
    StatusOr<NodeResources> r = DiscoverNodeResources(0, 1);
    if (r.ok()) {
      rep.status_ok = 1;
      rep.num_pus = static_cast<int>(r->pus.size());
      rep.first_pu = r->pus.empty() ? -1 : r->pus[0];
      rep.num_cores = r->num_cores;
      rep.num_numa = r->num_numa;
    }
    ssize_t n = write(fds[1], &rep, sizeof(rep));
    close(fds[1]);
    _exit(n == static_cast<ssize_t>(sizeof(rep)) ? 0 : 3);
  }

  close(fds[1]);
  ChildReport rep;
  ssize_t got = 0;
  while (got < static_cast<ssize_t>(sizeof(rep))) {
    ssize_t n = read(fds[0], reinterpret_cast<char*>(&rep) + got, sizeof(rep) - got);
    if (n <= 0) break;  // EOF: child died or failed before writing
    got += n;
  }
  close(fds[0]);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus)) << "child crashed";
  ASSERT_EQ(WEXITSTATUS(wstatus), 0) << "child failed (2 = sched_setaffinity, 3 = pipe write)";
  ASSERT_EQ(got, static_cast<ssize_t>(sizeof(rep)));

  EXPECT_EQ(rep.status_ok, 1) << "discovery failed in the restricted child";
  EXPECT_EQ(rep.num_pus, static_cast<int>(cpus.size()));
  EXPECT_GE(rep.num_numa, 1);
}

}  // namespace
}  // namespace raympi

namespace raympi {
namespace {

// GPUs are dealt out to virtual nodes: the slices hold exactly the machine's GPUs (none on a
// machine without any, which must not invent a GPU resource).
TEST(NodeResourcesTest, GpusAreSharedOutAmongSlices) {
  StatusOr<NodeResources> whole = DiscoverNodeResources(0, 1);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_GE(whole->num_gpus, 0);
  int sum = 0;
  for (int i = 0; i < 3; ++i) {
    StatusOr<NodeResources> slice = DiscoverNodeResources(i, 3);
    ASSERT_TRUE(slice.ok()) << slice.status().ToString();
    sum += slice->num_gpus;
  }
  EXPECT_EQ(sum, whole->num_gpus);
}

}  // namespace
}  // namespace raympi
