// Spilling end to end, in a raympi job (run under the launcher with a store smaller than the
// data, e.g. --object-store-memory 128MiB, and --spill-dir where hdf5_bench writes):
//   spill.put_<S>MiB   Put of --total-mib MiB as objects of S MiB through the small store: the
//                      raylet spills to make room for each Put (MakeRoom), GB/s of Put data
//   spill.get_<S>MiB   GetView of every object (the spilled ones are restored), GB/s
// One warm-up run, then --runs timed ones; medians. Compared with raw HDF5 write and read of
// the same sizes (hdf5_bench) in bench/suite/report.py. Also prints the bytes spilled and
// restored per run, as LocalObjectStoreUsage() reports them.
//   mpirun -n 1 raympi --object-store-memory 128MiB --spill-dir DIR spill_bench
//       [--sizes-mib 1,16,64] [--total-mib 256] [--runs 3]
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
constexpr size_t kMiB = 1 << 20;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Frees reach the raylet as messages: wait (bounded) until no spilled copy is left, so runs do
// not overlap.
bool WaitUntilNothingOnDisk() {
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (raympi::LocalObjectStoreUsage().objects_on_disk > 0) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  std::vector<size_t> sizes = {1, 16, 64};
  size_t total_mib = 256;
  int runs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--sizes-mib") {
      sizes.clear();
      const std::string list = argv[i + 1];
      for (size_t p = 0; p < list.size();) {
        size_t q = list.find(',', p);
        sizes.push_back(std::strtoull(list.substr(p, q - p).c_str(), nullptr, 10));
        p = q == std::string::npos ? list.size() : q + 1;
      }
    }
    if (a == "--total-mib") total_mib = std::strtoull(argv[i + 1], nullptr, 10);
    if (a == "--runs") runs = std::atoi(argv[i + 1]);
  }
  const uint64_t capacity = raympi::LocalObjectStoreUsage().capacity;
  std::fprintf(stderr, "spill_bench: %zu MiB per run through a store of %llu MiB\n", total_mib,
               static_cast<unsigned long long>(capacity / kMiB));
  int failures = 0;
  for (size_t size_mib : sizes) {
    const size_t n = std::max<size_t>(1, total_mib / size_mib);
    const double gb = static_cast<double>(n * size_mib * kMiB) / 1e9;
    const std::vector<char> value(size_mib * kMiB, 's');
    std::vector<double> put, get;
    for (int run = -1; run < runs; ++run) {  // run -1 warms up
      const raympi::ObjectStoreUsage before = raympi::LocalObjectStoreUsage();
      std::vector<raympi::ObjectRef<std::vector<char>>> refs;
      auto start = Clock::now();
      for (size_t i = 0; i < n; ++i) refs.push_back(raympi::Put(value));
      const double put_s = Seconds(start);
      start = Clock::now();
      size_t bad = 0;
      for (auto& ref : refs) {
        raympi::ArrayView<char> view = raympi::GetView(ref);
        bad += view.size() != value.size() || view[0] != 's' || view[view.size() - 1] != 's';
      }
      const double get_s = Seconds(start);
      const raympi::ObjectStoreUsage after = raympi::LocalObjectStoreUsage();
      refs.clear();
      if (bad > 0 || !WaitUntilNothingOnDisk()) {
        std::fprintf(stderr, "spill_bench: %zu objects read back wrong, or never freed\n", bad);
        ++failures;
        break;
      }
      std::fprintf(stderr, "  %zu MiB objects, run %d: spilled %.0f MiB, restored %.0f MiB\n",
                   size_mib, run,
                   static_cast<double>(after.spilled_bytes - before.spilled_bytes) / kMiB,
                   static_cast<double>(after.restored_bytes - before.restored_bytes) / kMiB);
      if (run < 0) continue;
      put.push_back(gb / put_s);
      get.push_back(gb / get_s);
    }
    if (put.empty()) continue;
    std::printf("spill.put_%zuMiB,%.3f,GB/s,,\n", size_mib, Median(put));
    std::printf("spill.get_%zuMiB,%.3f,GB/s,,\n", size_mib, Median(get));
  }
  return failures;
}
