// Placement-group microbenchmark of a raympi job (run under the launcher), after Ray's
// `placement group create/removal` (ray microbenchmark): batches of groups of one bundle
// {custom: 0.001} are created, waited for and removed; groups per second. Also the latency of
// one group at a time (create, wait until ready, remove), and the same with a 1-CPU bundle
// whose PU is reserved. Start the job with --resources '{"custom": 100}'.
// Prints rows `name,value,unit,,` (bench/run's format).
#include <raympi/raympi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void Row(const std::string& name, double value, const std::string& unit) {
  std::printf("%s,%.1f,%s,,\n", name.c_str(), value, unit.c_str());
  std::fflush(stdout);
}

raympi::PlacementGroupCreationOptions Options(const std::string& resource, double amount) {
  raympi::PlacementGroupCreationOptions options;
  options.bundles = {{{resource, amount}}};
  return options;
}

// Creates `n` groups, waits for all, removes all (Ray's loop body); returns false on a timeout.
bool CreateWaitRemove(int n, const raympi::PlacementGroupCreationOptions& options) {
  std::vector<raympi::PlacementGroup> groups;
  groups.reserve(n);
  for (int i = 0; i < n; ++i) groups.push_back(raympi::CreatePlacementGroup(options));
  bool ok = true;
  for (auto& g : groups) ok = g.Wait(30) && ok;
  for (auto& g : groups) raympi::RemovePlacementGroup(g);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  int batch = 100;  // Ray's NUM_PGS
  int runs = 20;
  int serial = 500;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--batch") batch = std::atoi(argv[i + 1]);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
    if (a == "--serial") serial = std::atoi(argv[i + 1]);
  }
  const auto tiny = Options("custom", 0.001);
  if (!CreateWaitRemove(batch, tiny)) {  // warm-up
    std::fprintf(stderr, "pg_bench: groups were not placed within 30 s\n");
    return 1;
  }
  std::vector<double> rates;
  for (int r = 0; r < runs; ++r) {
    auto start = Clock::now();
    if (!CreateWaitRemove(batch, tiny)) return 1;
    rates.push_back(batch / Seconds(Clock::now() - start));
  }
  std::sort(rates.begin(), rates.end());
  Row("pg.create_removal.groups_per_s", rates[rates.size() / 2], "groups/s");

  for (const auto& [label, options] : {std::make_pair(std::string("custom"), tiny),
                                       std::make_pair(std::string("cpu"), Options("CPU", 1))}) {
    auto start = Clock::now();
    for (int i = 0; i < serial; ++i) {
      if (!CreateWaitRemove(1, options)) return 1;
    }
    Row("pg.sync_" + label + ".us_per_group", 1e6 * Seconds(Clock::now() - start) / serial, "us");
  }
  return 0;
}
