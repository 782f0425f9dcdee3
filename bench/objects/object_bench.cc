// Object-plane microbenchmarks of a raympi job (run under the launcher):
//   put_small   Put of an 8-byte value, calls per second
//   get_small   Get of an 8-byte value, calls per second
//   put_1GiB    Put of a 1 GiB std::vector<char>, GB/s (one copy into the store)
//   get_remote  GetView on node 0 of an object made on node 1 (a pull between raylets), GB/s,
//               for 1 MiB, 64 MiB, 1 GiB (--remote-mib 1,64); needs 2 nodes
//               (--ranks-per-node 1 with mpirun -n 2)
//   get_remote_idle  the same for 1 MiB made --idle-ms (20) before the Get: every runtime
//               process of both nodes has gone back to sleep, as when a result is read later
// Prints rows `name,value,unit,baseline,ratio` (bench/run's format); the baselines (Ray's
// published figures, raw MPI_Get) are compared in bench/suite/report.py.
#include <raympi/raympi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

std::vector<char> MakeBytes(size_t n) { return std::vector<char>(n, 'x'); }
RAYMPI_REMOTE(MakeBytes);

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

void Row(const std::string& name, double value, const std::string& unit) {
  std::printf("%s,%.3f,%s,,\n", name.c_str(), value, unit.c_str());
}

// GetView on node 0 of `mib` MiB made on node 1, `runs` times after one untimed warm-up (as
// mpi_get_bench does for its baseline: the first pull from a node also attaches its store),
// `idle_ms` after the object was made; prints the median run's GB/s as a row (mpi_get_bench's
// baseline is a median too) and its time on stderr. Objects of up to 8 MiB take 5x the runs:
// they are cheap, and the middle of a few runs of ~100 us is mostly the machine's mood.
void GetRemote(const std::string& prefix, size_t mib, int runs, int idle_ms) {
  const size_t bytes = mib << 20;
  if (mib <= 8) runs *= 5;
  std::vector<double> times_us;
  for (int run = -1; run < runs; ++run) {  // run -1 warms up
    auto made =
        raympi::Task(MakeBytes).SetSchedulingStrategy(raympi::NodeAffinity(1)).Remote(bytes);
    raympi::Wait(std::vector<raympi::ObjectRef<std::vector<char>>>{made}, 1);
    if (idle_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms));
    const auto start = Clock::now();
    raympi::ArrayView<char> view = raympi::GetView(made);
    const double s = Seconds(Clock::now() - start);
    if (view.size() != bytes || view[bytes - 1] != 'x') {
      std::fprintf(stderr, "object_bench: the pulled object is wrong\n");
      std::exit(1);
    }
    if (run < 0) continue;
    times_us.push_back(s * 1e6);
  }
  std::sort(times_us.begin(), times_us.end());
  const double median_us = times_us[times_us.size() / 2];
  Row(prefix + std::to_string(mib) + "MiB.GBps", static_cast<double>(bytes) / median_us / 1e3,
      "GB/s");
  std::fprintf(stderr, "object_bench: %s%zu MiB: median %.1f us of %zu runs (best %.1f)\n",
               prefix.c_str(), mib, median_us, times_us.size(), times_us.front());
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  int small_calls = 20000;
  size_t big_mib = 1024;
  std::vector<size_t> remote_sizes = {1, 64, 1024};
  int runs = 3;
  int idle_ms = 20;
  std::string label = "objects";  // row names start with it (bench/run's objects_mpi entry)
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--small-calls") small_calls = std::atoi(argv[i + 1]);
    if (a == "--big-mib") big_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--remote-mib") {  // a comma list
      remote_sizes.clear();
      std::string list = argv[i + 1];
      for (size_t p = 0; p < list.size();) {
        size_t q = list.find(',', p);
        remote_sizes.push_back(std::strtoull(list.substr(p, q - p).c_str(), nullptr, 10));
        p = q == std::string::npos ? list.size() : q + 1;
      }
    }
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
    if (a == "--idle-ms") idle_ms = std::atoi(argv[i + 1]);
    if (a == "--label") label = argv[i + 1];
  }

  auto start = Clock::now();
  std::vector<raympi::ObjectRef<double>> small;
  small.reserve(small_calls);
  for (int i = 0; i < small_calls; ++i) small.push_back(raympi::Put(static_cast<double>(i)));
  Row(label + ".put_small.calls_per_s", small_calls / Seconds(Clock::now() - start), "calls/s");
  start = Clock::now();
  double sum = 0;
  for (const auto& ref : small) sum += *raympi::Get(ref);
  Row(label + ".get_small.calls_per_s", small_calls / Seconds(Clock::now() - start), "calls/s");
  if (sum < 0) return 1;
  small.clear();

  // The best of a few runs: the first touches fresh store pages unless prefaulted.
  std::vector<char> big(big_mib << 20, 'b');
  double best = 0;
  for (int run = 0; run < runs; ++run) {
    start = Clock::now();
    auto ref = raympi::Put(big);
    double s = Seconds(Clock::now() - start);
    best = std::max(best, static_cast<double>(big.size()) / s / 1e9);
  }
  Row(label + ".put_" + std::to_string(big_mib) + "MiB.GBps", best, "GB/s");

  // Cross-node Get of 1 MiB, 64 MiB and 1 GiB (or --remote-mib sizes): the object is made on
  // node 1, then GetView on node 0 pulls it (FetchObject, PullRequest, RMA reads, sealed).
  if (raympi::Nodes().size() > 1) {
    for (size_t mib : remote_sizes) GetRemote(label + ".get_remote_", mib, runs, 0);
    if (idle_ms > 0) GetRemote(label + ".get_remote_idle_", 1, runs, idle_ms);
  }
  return 0;
}
