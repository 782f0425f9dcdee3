// End-to-end checks of the task API, run under several layouts (1-4 ranks, virtual nodes).
// The driver's exit code is the number of failed checks.
#include <raympi/raympi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "check.h"

namespace {

int Square(int x) { return x * x; }
int Add(int a, int b) { return a + b; }
std::vector<double> Scale(std::vector<double> v, double k) {
  for (double& x : v) x *= k;
  return v;
}
double Sum(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }
std::string Greet(const std::string& name) { return "hello " + name; }
std::map<std::string, int> Count(const std::vector<std::string>& words) {
  std::map<std::string, int> counts;
  for (const auto& w : words) ++counts[w];
  return counts;
}
int Fail(int x) { throw std::runtime_error("bad input " + std::to_string(x)); }
// Nested: a task that submits tasks and waits for them.
int SumOfSquares(int n) {
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < n; ++i) refs.push_back(raympi::Task(Square).Remote(i));
  int total = 0;
  for (const auto& v : raympi::Get(refs)) total += *v;
  return total;
}
int Depth(int d) { return d == 0 ? 0 : 1 + *raympi::Get(raympi::Task(Depth).Remote(d - 1)); }
int FailInside(int x) { return *raympi::Get(raympi::Task(Fail).Remote(x)); }
void Nothing() {}
// Keeps a CPU busy for a while and says where it ran.
int BusyNode(int ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < end) {
  }
  return raympi::CurrentNodeId();
}
int NotRegistered(int x) { return x; }
// Waits until `n` tasks have arrived in `dir` (a rendezvous through the file system), so it
// returns only if n tasks run at the same time; returns its node.
int RendezvousNode(std::string dir, int n) {
  std::string mine = dir + "/" + std::to_string(getpid()) + "-" + std::to_string(std::rand());
  std::fclose(std::fopen(mine.c_str(), "w"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (;;) {
    int count = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      count += entry.is_regular_file();
    if (count >= n) return raympi::CurrentNodeId();
    if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("only " + std::to_string(count) + " of " + std::to_string(n) +
                               " tasks ran at once");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // poll interval
  }
}

struct Particle {
  double x, y, z;
  int id;
};
double SumX(const std::vector<Particle>& ps) {
  double s = 0;
  for (const auto& p : ps) s += p.x;
  return s;
}

// What the worker's glibc was started with (RAYMPI_MALLOC_HUGEPAGES, on by default).
std::string MallocTunables() {
  const char* t = std::getenv("GLIBC_TUNABLES");
  return t == nullptr ? "" : t;
}

RAYMPI_REMOTE(Square, Add, Scale, Sum, Greet, Count, Fail, SumOfSquares, Depth, FailInside, Nothing,
              BusyNode, SumX, RendezvousNode, MallocTunables);

void BasicTasks() {
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < 100; ++i) refs.push_back(raympi::Task(Square).Remote(i));
  auto values = raympi::Get(refs);
  CHECK(values.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(*values[i] == i * i);
  CHECK(*raympi::Get(raympi::Task(Add).Remote(2, 3)) == 5);
  CHECK(*raympi::Get(raympi::Task(Greet).Remote(std::string("mpi"))) == "hello mpi");
  auto counts = raympi::Get(raympi::Task(Count).Remote(std::vector<std::string>{"a", "b", "a"}));
  CHECK(counts->at("a") == 2 && counts->at("b") == 1);
  raympi::Get(raympi::Task(Nothing).Remote());
  // Drivers and workers start with malloc on huge pages (src/raylet_rank/program_environment.h).
  CHECK(MallocTunables().find("glibc.malloc.hugetlb=1") != std::string::npos);
  CHECK(raympi::Get(raympi::Task(MallocTunables).Remote())->find("glibc.malloc.hugetlb=1") !=
        std::string::npos);
}

void ObjectRefArguments() {
  auto data = raympi::Put(std::vector<double>(1 << 20, 1.0));
  auto scaled = raympi::Task(Scale).Remote(data, 2.0);
  auto sum = raympi::Task(Sum).Remote(scaled);
  CHECK(*raympi::Get(sum) == 2.0 * (1 << 20));
  // A chain of pending refs: each task waits for the previous one.
  auto acc = raympi::Task(Add).Remote(0, 1);
  for (int i = 0; i < 20; ++i) acc = raympi::Task(Add).Remote(acc, 1);
  CHECK(*raympi::Get(acc) == 21);
  auto put = raympi::Put(41);
  CHECK(*raympi::Get(raympi::Task(Add).Remote(put, 1)) == 42);
  std::vector<Particle> ps(1000, Particle{1.5, 0, 0, 7});
  CHECK(*raympi::Get(raympi::Task(SumX).Remote(raympi::Put(ps))) == 1500.0);
}

void NestedTasks(int depth) {
  CHECK(*raympi::Get(raympi::Task(SumOfSquares).Remote(10)) == 285);
  // Deeper than the node has CPUs: blocked workers lend their CPU back.
  CHECK(*raympi::Get(raympi::Task(Depth).Remote(depth)) == depth);
}

void Errors() {
  CHECK_THROWS(raympi::TaskError, "Fail", raympi::Get(raympi::Task(Fail).Remote(7)));
  CHECK_THROWS(raympi::TaskError, "bad input 7", raympi::Get(raympi::Task(Fail).Remote(7)));
  // An error travels through nested Gets and through dependent tasks.
  CHECK_THROWS(raympi::TaskError, "bad input 3", raympi::Get(raympi::Task(FailInside).Remote(3)));
  auto failed = raympi::Task(Fail).Remote(1);
  CHECK_THROWS(raympi::TaskError, "bad input 1", raympi::Get(raympi::Task(Add).Remote(failed, 1)));
  CHECK_THROWS(raympi::Error, "not registered", raympi::Task(NotRegistered).Remote(1));
  CHECK_THROWS(raympi::TimeoutError, "not ready",
               raympi::Get(raympi::Task(BusyNode).Remote(300), /*timeout_ms=*/10));
  auto ints = raympi::Put(5);
  raympi::ObjectRef<std::string> wrong(ints.ID());
  CHECK_THROWS(raympi::SerializationError, "type", raympi::Get(wrong));
  CHECK_THROWS(raympi::TaskError, "cannot be scheduled",
               raympi::Get(raympi::Task(Square).SetResource("CPU", 1000).Remote(1)));
  CHECK_THROWS(raympi::Error, "between 0", raympi::Wait(std::vector<raympi::ObjectRef<int>>{}, 1));
}

void Waiting() {
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < 20; ++i) refs.push_back(raympi::Task(Square).Remote(i));
  auto [ready, rest] = raympi::Wait(refs, 10, 10000);
  CHECK(ready.size() == 10);
  CHECK(rest.size() == 10);
  auto all = raympi::Wait(refs, 20, -1);
  CHECK(all.ready.size() == 20);
  // A long task is not ready after a short wait.
  std::vector<raympi::ObjectRef<int>> slow{raympi::Task(BusyNode).Remote(300)};
  auto none = raympi::Wait(slow, 1, 1);
  CHECK(none.ready.empty() && none.unready.size() == 1);
}

// One task per node, each taking all of a node's CPUs: they can only all run at once if the
// first node's raylet spills the rest to the other nodes.
void UsesEveryNode(int nodes) {
  double cpus = raympi::Nodes().at(0).total.at("CPU");
  char pattern[] = "/tmp/raympi-rendezvous-XXXXXX";
  std::string dir = mkdtemp(pattern);
  std::vector<raympi::ObjectRef<int>> refs;
  for (int i = 0; i < nodes; ++i) {
    refs.push_back(raympi::Task(RendezvousNode).SetResource("CPU", cpus).Remote(dir, nodes));
  }
  std::set<int> used;
  try {
    for (const auto& n : raympi::Get(refs)) used.insert(*n);
  } catch (const raympi::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
  }
  CHECK(static_cast<int>(used.size()) == nodes);
  std::filesystem::remove_all(dir);
}

}  // namespace

// Task(...).Map: chunks of calls, results in input order, over every node.
void Maps(int nodes) {
  std::vector<int> inputs(1001);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto parts = raympi::Task(Square).Map(inputs, 64);
  CHECK(parts.size() == 16);  // 15 chunks of 64 and one of 41
  std::vector<int> squares;
  for (const auto& part : raympi::Get(parts))
    squares.insert(squares.end(), part->begin(), part->end());
  CHECK(squares.size() == inputs.size());
  bool all = squares.size() == inputs.size();
  for (size_t i = 0; all && i < squares.size(); ++i) all = squares[i] == static_cast<int>(i * i);
  CHECK(all);
  // Several parameters: a tuple per call, ObjectRefs among them; strings and maps as results.
  auto five = raympi::Put(5);
  auto sums = raympi::Task(Add).Map(
      std::vector<std::tuple<raympi::ObjectRef<int>, int>>{{five, 1}, {five, 2}, {five, 3}}, 2);
  CHECK(sums.size() == 2);
  CHECK(*raympi::Get(sums[0]) == (std::vector<int>{6, 7}) &&
        *raympi::Get(sums[1]) == std::vector<int>{8});
  auto greetings = raympi::Task(Greet).Map(std::vector<std::string>{"a", "b"}, 1);
  CHECK(*raympi::Get(greetings[1]) == std::vector<std::string>{"hello b"});
  auto counted =
      raympi::Task(Count).Map(std::vector<std::vector<std::string>>{{"x", "x"}, {"y"}}, 5);
  auto maps = raympi::Get(counted.at(0));
  CHECK(maps->size() == 2 && maps->at(0).at("x") == 2 && maps->at(1).at("y") == 1);
  // Chunks spread like tasks: with SPREAD every node runs some.
  std::vector<int> ms(4 * nodes, 30);
  std::set<int> where;
  auto spread = raympi::Task(BusyNode).SetSchedulingStrategy(raympi::Spread()).Map(ms, 1);
  for (const auto& part : raympi::Get(spread)) where.insert(part->begin(), part->end());
  CHECK(static_cast<int>(where.size()) == nodes);
  // One call that throws fails its chunk only.
  auto failing = raympi::Task(Fail).Map(std::vector<int>{1, 2, 3}, 2);
  CHECK_THROWS(raympi::TaskError, "bad input 1", raympi::Get(failing[0]));
  CHECK_THROWS(raympi::TaskError, "bad input 3", raympi::Get(failing[1]));
  // Bad input: no chunks of 0 calls, no unregistered functions; nothing to map, nothing sent.
  CHECK_THROWS(raympi::Error, "chunk_size must be at least 1", raympi::Task(Square).Map(inputs, 0));
  CHECK_THROWS(raympi::Error, "not registered", raympi::Task(NotRegistered).Map(inputs, 8));
  CHECK(raympi::Task(Square).Map(std::vector<int>{}, 8).empty());
}

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  int nodes = argc > 1 ? std::atoi(argv[1]) : 1;
  // A fixed pool of pre-launched workers (no-spawn mode) bounds how deep tasks can nest.
  int depth = argc > 2 ? std::atoi(argv[2]) : 5;
  BasicTasks();
  ObjectRefArguments();
  NestedTasks(depth);
  Errors();
  Waiting();
  UsesEveryNode(nodes);
  Maps(nodes);
  std::printf("tasks_test: %d failure(s)\n", raympi_test::Failures());
  return raympi_test::Failures();
}
