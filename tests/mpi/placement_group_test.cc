// Placement groups in a job: bad input, PACK / SPREAD / STRICT_SPREAD placement (checked with
// the node each task runs on), tasks and actors bound to their bundle's PUs, removal freeing
// resources and ending what ran in the group, groups that can never be placed.
// Run with --ranks-per-node 1 on N ranks and --num-cpus 2 (or on one node with its 2 CPUs);
// argument: the number of nodes. The driver's exit code is the number of failed checks.
#include <raympi/raympi.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "check.h"

namespace {

std::vector<int> MyPus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
  }
  return out;
}

int Where() { return raympi::CurrentNodeId(); }
std::vector<int> Pus() { return MyPus(); }
// Says it started (creates `started`), then runs until `stop` exists (at most 60 s).
int RunUntil(std::string started, std::string stop) {
  {
    std::FILE* f = std::fopen(started.c_str(), "w");
    if (f) std::fclose(f);
  }
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(stop) && std::chrono::steady_clock::now() < end) {
    usleep(1000);
  }
  return raympi::CurrentNodeId();
}
// From a worker: a named group is visible to every process.
int BundlesOf(std::string name) {
  return static_cast<int>(raympi::GetPlacementGroup(name).GetBundles().size());
}

class Probe {
 public:
  int Node() { return raympi::CurrentNodeId(); }
  std::vector<int> Pus() { return MyPus(); }
};
Probe* MakeProbe() { return new Probe(); }

RAYMPI_REMOTE(Where, Pus, RunUntil, BundlesOf, MakeProbe, &Probe::Node, &Probe::Pus);

raympi::PlacementGroup Create(std::vector<std::map<std::string, double>> bundles,
                              raympi::PlacementStrategy strategy, std::string name = "") {
  raympi::PlacementGroupCreationOptions options;
  options.bundles = std::move(bundles);
  options.strategy = strategy;
  options.name = std::move(name);
  return raympi::CreatePlacementGroup(options);
}

void BadInput(int nodes) {
  CHECK_THROWS(raympi::Error, "no bundles", Create({}, raympi::PlacementStrategy::PACK));
  CHECK_THROWS(raympi::Error, "bundle 1 asks for no resources",
               Create({{{"CPU", 1}}, {}}, raympi::PlacementStrategy::PACK));
  CHECK_THROWS(raympi::Error, "must be positive",
               Create({{{"CPU", -1}}}, raympi::PlacementStrategy::PACK));
  CHECK_THROWS(raympi::Error, "unknown placement strategy 'FOO'",
               raympi::PlacementStrategyFromName("FOO"));
  CHECK_THROWS(raympi::Error, "unknown strategy 7",
               Create({{{"CPU", 1}}}, static_cast<raympi::PlacementStrategy>(7)));
  CHECK_THROWS(raympi::Error, "fits on no node",
               Create({{{"CPU", 1000}}}, raympi::PlacementStrategy::PACK));
  CHECK_THROWS(raympi::Error, "STRICT_SPREAD needs a node per bundle",
               Create(std::vector<std::map<std::string, double>>(nodes + 1, {{"CPU", 0.5}}),
                      raympi::PlacementStrategy::STRICT_SPREAD));
  CHECK_THROWS(raympi::Error, "no placement group is named 'nope'",
               raympi::GetPlacementGroup("nope"));
  raympi::PlacementGroup pg = Create({{{"CPU", 1}}}, raympi::PlacementStrategy::PACK, "bad");
  CHECK_THROWS(raympi::Error, "bundle index 1 is out of range",
               raympi::Task(Where).SetPlacementGroup(pg, 1));
  CHECK_THROWS(raympi::Error, "bundle index -2 is out of range",
               raympi::Actor(MakeProbe).SetPlacementGroup(pg, -2));
  CHECK_THROWS(raympi::Error, "is taken",
               Create({{{"CPU", 1}}}, raympi::PlacementStrategy::PACK, "bad"));
  CHECK(pg.Wait(60));
  CHECK_THROWS(raympi::Error, "more than bundle 0",
               raympi::Task(Where).SetPlacementGroup(pg, 0).SetResource("CPU", 2).Remote());
  raympi::RemovePlacementGroup(pg);
  CHECK(pg.Removed());
  CHECK_THROWS(raympi::Error, "was removed", raympi::Task(Where).SetPlacementGroup(pg, 0));
  CHECK_THROWS(raympi::Error, "was removed", pg.Wait(1));
  CHECK_THROWS(raympi::Error, "empty", raympi::PlacementGroup().Wait(1));
}

// Every task in bundle i runs on the bundle's node, bound to exactly the bundle's PUs.
void CheckBundles(const raympi::PlacementGroup& pg) {
  for (int i = 0; i < static_cast<int>(pg.GetBundles().size()); ++i) {
    auto node = raympi::Task(Where).SetPlacementGroup(pg, i).Remote();
    auto pus = raympi::Task(Pus).SetPlacementGroup(pg, i).Remote();
    CHECK(*raympi::Get(node) == pg.BundleNodes()[i]);
    CHECK(!pg.BundlePus()[i].empty());
    CHECK(*raympi::Get(pus) == pg.BundlePus()[i]);
  }
  // Any bundle (-1): one of the group's nodes and one bundle's PUs.
  auto any = raympi::Get(raympi::Task(Pus).SetPlacementGroup(pg).Remote());
  CHECK(std::find(pg.BundlePus().begin(), pg.BundlePus().end(), *any) != pg.BundlePus().end());
}

void Pack(int nodes) {
  raympi::PlacementGroup pg =
      Create({{{"CPU", 1}}, {{"CPU", 1}}}, raympi::PlacementStrategy::PACK, "pack");
  CHECK(pg.Wait(60));
  CHECK(pg.Ready());
  CHECK(pg.BundleNodes().size() == 2 && pg.BundleNodes()[0] == pg.BundleNodes()[1]);
  CheckBundles(pg);
  // A task (in the group: it holds every CPU of a 1-node job) looks the group up by name.
  CHECK(*raympi::Get(raympi::Task(BundlesOf).SetPlacementGroup(pg).Remote(std::string("pack"))) ==
        2);
  if (nodes == 1) {
    // Two 1-CPU bundles on a 2-PU node: a PU each.
    CHECK(pg.BundlePus()[0] != pg.BundlePus()[1]);
  }
  pg.Remove();
}

void Spread(int nodes) {
  raympi::PlacementGroup pg =
      Create(std::vector<std::map<std::string, double>>(nodes, {{"CPU", 1}}),
             raympi::PlacementStrategy::STRICT_SPREAD);
  CHECK(pg.Wait(60));
  std::set<int> used(pg.BundleNodes().begin(), pg.BundleNodes().end());
  CHECK(static_cast<int>(used.size()) == nodes);
  CheckBundles(pg);
  pg.Remove();
  raympi::PlacementGroup soft =
      Create(std::vector<std::map<std::string, double>>(nodes, {{"CPU", 1}}),
             raympi::PlacementStrategy::SPREAD);
  CHECK(soft.Wait(60));
  used = std::set<int>(soft.BundleNodes().begin(), soft.BundleNodes().end());
  CHECK(static_cast<int>(used.size()) == nodes);
  CheckBundles(soft);
  soft.Remove();
}

void Actors() {
  raympi::PlacementGroup pg = Create({{{"CPU", 1}}}, raympi::PlacementStrategy::PACK);
  CHECK(pg.Wait(60));
  auto probe = raympi::Actor(MakeProbe).SetPlacementGroup(pg, 0).Remote();
  CHECK(*raympi::Get(probe.Task(&Probe::Node).Remote()) == pg.BundleNodes()[0]);
  CHECK(*raympi::Get(probe.Task(&Probe::Pus).Remote()) == pg.BundlePus()[0]);
  pg.Remove();
  // Removal is asynchronous (as in Ray): calls made before the actor's worker is ended may
  // still run; then every call fails, naming the cause.
  std::string error;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (error.empty() && std::chrono::steady_clock::now() < deadline) {
    try {
      raympi::Get(probe.Task(&Probe::Node).Remote());
    } catch (const raympi::ActorDiedError& e) {
      error = e.what();
    }
  }
  CHECK(error.find("was removed") != std::string::npos);
  if (error.find("was removed") == std::string::npos)
    std::fprintf(stderr, "got: %s\n", error.c_str());
}

// A group that takes every CPU waits while another holds them, and is placed once that one is
// removed; a task running in a removed group fails with an error saying so.
void Removal(int nodes, const std::string& dir) {
  std::vector<std::map<std::string, double>> all(nodes, {{"CPU", 2}});
  raympi::PlacementGroup first = Create(all, raympi::PlacementStrategy::STRICT_SPREAD, "first");
  CHECK(first.Wait(60));
  raympi::PlacementGroup second = Create(all, raympi::PlacementStrategy::STRICT_SPREAD);
  CHECK(!second.Ready());  // no CPU is free while `first` lives
  std::string started = dir + "/started", stop = dir + "/stop";
  auto running =
      raympi::Task(RunUntil).SetPlacementGroup(first, 0).SetMaxRetries(0).Remote(started, stop);
  CHECK(raympi_test::WaitForFile(started));
  raympi::RemovePlacementGroup(first);
  CHECK_THROWS(raympi::TaskError, "placement group 'first' was removed", raympi::Get(running));
  CHECK(second.Wait(60));
  CheckBundles(second);
  second.Remove();
  // Resources are back: ordinary tasks run everywhere again.
  auto ref = raympi::Task(Where).Remote();
  CHECK(*raympi::Get(ref) >= 0);
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  int nodes = argc > 1 ? std::atoi(argv[1]) : 1;
  std::string dir =
      (std::filesystem::temp_directory_path() / ("raympi-pg-" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  BadInput(nodes);
  Pack(nodes);
  Spread(nodes);
  Actors();
  Removal(nodes, dir);
  std::filesystem::remove_all(dir);
  std::printf("placement_group_test: %d failure(s)\n", raympi_test::Failures());
  return raympi_test::Failures();
}
