// End-to-end checks of the object plane: large values in the node's store, zero-copy views,
// reference counting and frees, a full store, wrong types, freed objects. With argument N > 1
// (N virtual nodes) also objects made on and read from other nodes.
// The driver's exit code is the number of failed checks.
#include <raympi/raympi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "check.h"

namespace {

constexpr size_t kBig = 1 << 20;  // doubles: 8 MiB, far above the inline limit

std::vector<double> MakeBig(size_t n, double v) { return std::vector<double>(n, v); }
double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
std::vector<double> Twice(std::vector<double> v) {
  for (double& x : v) x *= 2;
  return v;
}
int Node() { return raympi::CurrentNodeId(); }
int NodeOf(const std::vector<double>& v) { return v.empty() ? -1 : raympi::CurrentNodeId(); }
RAYMPI_REMOTE(MakeBig, Sum, Twice, Node, NodeOf);

uint64_t InUse() { return raympi::LocalObjectStoreUsage().bytes_in_use; }

// Frees of copies on other nodes' stores travel as messages: wait (bounded) until the store
// holds `bytes` again.
bool InUseReturnsTo(uint64_t bytes) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (InUse() != bytes) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "objects_test: %llu bytes in use, %llu expected\n%s\n",
                   static_cast<unsigned long long>(InUse()), static_cast<unsigned long long>(bytes),
                   raympi::LocalObjectStoreUsage().summary.c_str());
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void LocalObjects() {
  uint64_t before = InUse();
  {
    auto ref = raympi::Put(std::vector<double>(kBig, 1.5));
    CHECK(InUse() >= before + kBig * sizeof(double));
    auto value = raympi::Get(ref);
    CHECK(value->size() == kBig && (*value)[kBig - 1] == 1.5);
    // Two views of a stored object are the same bytes in the arena: no copy.
    raympi::ArrayView<double> a = raympi::GetView(ref);
    raympi::ArrayView<double> b = raympi::GetView(ref);
    CHECK(a.size() == kBig && a.data() == b.data() && a[7] == 1.5);
    // A task reads it from the store and returns a large result into it.
    CHECK(*raympi::Get(raympi::Task(Sum).Remote(ref)) == 1.5 * kBig);
    auto doubled = raympi::Get(raympi::Task(Twice).Remote(ref));
    CHECK(doubled->size() == kBig && (*doubled)[3] == 3.0);
    auto made = raympi::Task(MakeBig).Remote(kBig, 2.0);
    CHECK(raympi::GetView(made)[kBig - 1] == 2.0);
    CHECK(raympi::LocalObjectStoreUsage().num_pinned >= 1);  // a and b
  }
  // Every ref and view is gone: the store holds what it held before.
  CHECK(InUse() == before);
  // Small objects stay inline: views still work.
  auto small = raympi::Put(std::vector<double>{1, 2, 3});
  CHECK(raympi::GetView(small).ToVector() == (std::vector<double>{1, 2, 3}));
  CHECK(InUse() == before);
}

void RefCounting() {
  uint64_t before = InUse();
  auto ref = raympi::Put(std::vector<double>(kBig, 1.0));
  raympi::ObjectRef<std::vector<double>> copy = ref;
  ref = {};
  CHECK(InUse() > before);  // the copy keeps it
  // A pending task keeps its argument alive though the caller dropped every ref.
  auto sum = raympi::Task(Sum).Remote(copy);
  copy = {};
  CHECK(*raympi::Get(sum) == static_cast<double>(kBig));
  CHECK(InUse() == before);
  // A ref to a freed object names the problem.
  auto gone = raympi::Put(std::vector<double>(kBig, 1.0));
  std::string id = gone.ID();
  gone = {};
  CHECK_THROWS(raympi::ObjectLostError, "was freed",
               raympi::Get(raympi::ObjectRef<std::vector<double>>(id)));
}

void BadInput() {
  auto ref = raympi::Put(std::vector<double>(kBig, 1.0));
  raympi::ObjectRef<std::vector<int>> wrong(ref.ID());
  CHECK_THROWS(raympi::SerializationError, "but Get asked for", raympi::Get(wrong));
  CHECK_THROWS(raympi::SerializationError, "but GetView asked for", raympi::GetView(wrong));
}

// Run with a 64 MiB store and a short store-full timeout. A pinned object (a live view) cannot
// be spilled, so only it makes the store full; an unpinned one is spilled to make room.
void FullStore() {
  uint64_t capacity = raympi::LocalObjectStoreUsage().capacity;
  CHECK_THROWS(raympi::ObjectStoreFullError, "larger --object-store-memory",
               raympi::Put(std::vector<char>(capacity + 1)));
  auto first = raympi::Put(std::vector<char>(capacity * 6 / 10, 'a'));
  {
    auto pin = raympi::GetView(first);
    CHECK_THROWS(raympi::ObjectStoreFullError, "every object is pinned",
                 raympi::Put(std::vector<char>(capacity * 6 / 10, 'b')));
  }
  first = {};
  auto second = raympi::Put(std::vector<char>(capacity * 6 / 10, 'c'));
  CHECK(raympi::GetView(second)[0] == 'c');
}

void OtherNodes(int nodes) {
  for (int node = 1; node < nodes; ++node) {
    auto strategy = raympi::NodeAffinity(node);
    auto made = raympi::Task(MakeBig).SetSchedulingStrategy(strategy).Remote(kBig, 4.0);
    auto view = raympi::GetView(made);  // pulled into node 0's store
    CHECK(view.size() == kBig && view[0] == 4.0 && view[kBig - 1] == 4.0);
    // More objects of that node, read here by the driver and by a task on node 0 (a borrower,
    // which tells the owner of its copy): every copy here is freed with its last ref.
    const uint64_t before = InUse();
    for (int i = 0; i < 4; ++i) {
      const double v = 10.0 + i;
      auto ref = raympi::Task(MakeBig).SetSchedulingStrategy(strategy).Remote(kBig / 4, v);
      auto copy = raympi::GetView(ref);
      CHECK(copy.size() == kBig / 4 && copy[0] == v && copy[kBig / 4 - 1] == v);
      CHECK((*raympi::Get(ref))[5] == v);  // read again: the copy here
      auto on_node0 = raympi::Task(Sum).SetSchedulingStrategy(raympi::NodeAffinity(0));
      auto fresh = raympi::Task(MakeBig).SetSchedulingStrategy(strategy).Remote(kBig / 4, v);
      CHECK(*raympi::Get(on_node0.Remote(fresh)) == v * (kBig / 4));
    }
    CHECK(InUseReturnsTo(before));
    // The driver's object read on the other node.
    auto mine = raympi::Put(std::vector<double>(kBig, 0.5));
    CHECK(*raympi::Get(raympi::Task(Sum).SetSchedulingStrategy(strategy).Remote(mine)) ==
          0.5 * kBig);
    CHECK(*raympi::Get(raympi::Task(Node).SetSchedulingStrategy(strategy).Remote()) == node);
    // Data locality: a task without a strategy runs where its large argument lies (every node
    // has a spare CPU in this test).
    auto there = raympi::Task(MakeBig).SetSchedulingStrategy(strategy).Remote(kBig, 1.0);
    raympi::Wait(std::vector<raympi::ObjectRef<std::vector<double>>>{there}, 1);
    CHECK(*raympi::Get(raympi::Task(NodeOf).Remote(there)) == node);
  }
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  std::string mode = argc > 1 ? argv[1] : "local";
  if (mode == "full") {
    FullStore();
  } else {
    LocalObjects();
    RefCounting();
    BadInput();
    int nodes = argc > 2 ? std::atoi(argv[2]) : 1;
    if (nodes > 1) OtherNodes(nodes);
  }
  std::fprintf(stderr, "objects_test %s: %d failure(s)\n", mode.c_str(), raympi_test::Failures());
  return raympi_test::Failures();
}
