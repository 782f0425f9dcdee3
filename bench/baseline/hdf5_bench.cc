// Spilling against raw HDF5 (issue 7): for each object size, N objects (--total-mib in all)
//   raw write:  one HDF5 file, one contiguous dataset, one H5Dwrite per object, close
//   raw read:   open it, one H5Dread per object
//   spill:      the same objects sealed in an ObjectStore, spilled by the raylet's SpillManager
//               into Hdf5SpillStorage (what a node does when its store is full)
//   restore:    SpillManager::Restore of every object back into the store
// in one process, in the same directory (--dir, default $TMPDIR or /tmp), the four taking turns
// within each run. One untimed warm-up run, then --runs timed ones; medians are reported.
// Reads follow writes, so they are mostly served by the page cache, for both alike.
//
//   bench/baseline/hdf5_bench [--dir DIR] [--sizes-mib 1,16,64] [--total-mib 256] [--runs 3]
//
// Rows for bench/run (name,value,unit,baseline,ratio): hdf5.write_<S>MiB, hdf5.read_<S>MiB,
// spill.spill_<S>MiB, spill.restore_<S>MiB, in GB/s.
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "objects/hdf5_spill_storage.h"
#include "objects/object_store.h"
#include "objects/spill_manager.h"

namespace {

using raympi::ObjectId;
using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1 << 20;

struct Options {
  std::string dir;
  std::vector<uint64_t> sizes_mib = {1, 16, 64};
  uint64_t total_mib = 256;
  int runs = 3;
};

bool Parse(int argc, char** argv, Options* o) {
  const char* tmp = std::getenv("TMPDIR");
  o->dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      o->dir = argv[++i];
    } else if (a == "--sizes-mib" && i + 1 < argc) {
      o->sizes_mib.clear();
      std::string list = argv[++i];
      for (size_t at = 0; at <= list.size();) {
        size_t comma = list.find(',', at);
        if (comma == std::string::npos) comma = list.size();
        o->sizes_mib.push_back(std::strtoull(list.substr(at, comma - at).c_str(), nullptr, 10));
        at = comma + 1;
      }
    } else if (a == "--total-mib" && i + 1 < argc) {
      o->total_mib = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--runs" && i + 1 < argc) {
      o->runs = std::atoi(argv[++i]);
    } else {
      return false;
    }
  }
  for (uint64_t s : o->sizes_mib) {
    if (s == 0 || s > o->total_mib) return false;
  }
  return o->runs > 0;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

ObjectId Id(uint32_t i) {
  ObjectId id;
  id.owner_pid = static_cast<uint32_t>(getpid());
  id.index = i;
  return id;
}

bool Check(bool ok, const char* what) {
  if (!ok) std::fprintf(stderr, "hdf5_bench: %s failed\n", what);
  return ok;
}

// Raw HDF5: N objects of `size` from `source` into one dataset, then read back into `dest`.
// Returns {write s, read s}; negative on an error.
std::pair<double, double> RawHdf5(const std::string& path, const uint8_t* source, uint64_t size,
                                  uint64_t n, uint8_t* dest) {
  const hsize_t total[1] = {size * n}, count[1] = {size};
  auto start = Clock::now();
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple(1, total, nullptr);
  hid_t memory = H5Screate_simple(1, count, nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
  hid_t set = H5Dcreate2(file, "objects", H5T_NATIVE_UINT8, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  bool ok = file >= 0 && set >= 0;
  for (uint64_t i = 0; ok && i < n; ++i) {
    const hsize_t at[1] = {i * size};
    ok = H5Sselect_hyperslab(space, H5S_SELECT_SET, at, nullptr, count, nullptr) >= 0 &&
         H5Dwrite(set, H5T_NATIVE_UINT8, memory, space, H5P_DEFAULT, source + i * size) >= 0;
  }
  H5Dclose(set);
  H5Pclose(dcpl);
  ok = H5Fclose(file) >= 0 && ok;
  const double write_s = Seconds(start);
  start = Clock::now();
  file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  set = H5Dopen2(file, "objects", H5P_DEFAULT);
  ok = ok && file >= 0 && set >= 0;
  for (uint64_t i = 0; ok && i < n; ++i) {
    const hsize_t at[1] = {i * size};
    ok = H5Sselect_hyperslab(space, H5S_SELECT_SET, at, nullptr, count, nullptr) >= 0 &&
         H5Dread(set, H5T_NATIVE_UINT8, memory, space, H5P_DEFAULT, dest) >= 0;
  }
  H5Dclose(set);
  H5Fclose(file);
  const double read_s = Seconds(start);
  H5Sclose(memory);
  H5Sclose(space);
  std::filesystem::remove(path);
  if (!Check(ok, "raw HDF5 write/read")) return {-1, -1};
  return {write_s, read_s};
}

// The raylet's path: seal N objects in the store, spill them all, restore them all.
std::pair<double, double> SpillRestore(raympi::ObjectStore& store, raympi::SpillManager& spill,
                                       const uint8_t* source, uint64_t size, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) {
    auto buffer = store.Create(Id(i), size);
    if (!Check(buffer.ok(), "store Create")) return {-1, -1};
    std::memcpy(buffer->data, source + i * size, size);
    if (!Check(store.Seal(Id(i)).ok(), "store Seal")) return {-1, -1};
  }
  auto start = Clock::now();
  raympi::Status spilled = spill.MakeRoom(store.capacity());  // spills every object
  const double spill_s = Seconds(start);
  if (!spilled.ok()) std::fprintf(stderr, "%s\n", spilled.ToString().c_str());
  if (!Check(spilled.ok() && spill.stats().counters.objects_on_disk == n, "spill")) {
    return {-1, -1};
  }
  start = Clock::now();
  bool ok = true;
  for (uint64_t i = 0; ok && i < n; ++i) ok = spill.Restore(Id(i)).ok();
  const double restore_s = Seconds(start);
  for (uint64_t i = 0; ok && i < n; ++i) {
    auto view = store.Get(Id(i));
    ok = view.ok() && std::memcmp(view->data(), source + i * size, size) == 0;
  }
  for (uint64_t i = 0; i < n; ++i) {
    spill.OnFreed(Id(i));
    (void)store.Delete(Id(i));
  }
  if (!Check(ok, "restore (byte-exact)")) return {-1, -1};
  return {spill_s, restore_s};
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!Parse(argc, argv, &options)) {
    std::fprintf(stderr,
                 "usage: hdf5_bench [--dir DIR] [--sizes-mib 1,16,64] [--total-mib 256] "
                 "[--runs 3]\n");
    return 2;
  }
  const uint64_t total = options.total_mib * kMiB;
  const std::string dir = options.dir + "/raympi-hdf5-bench-" + std::to_string(getpid());
  auto storage = raympi::Hdf5SpillStorage::Create(dir + "/spill");
  if (!storage.ok()) {
    std::fprintf(stderr, "hdf5_bench: %s\n", storage.status().ToString().c_str());
    return 1;
  }
  auto store = raympi::ObjectStore::Create("/raympi-hdf5-bench-" + std::to_string(getpid()), total,
                                           1 << 14, /*prefault=*/true);
  if (!store.ok()) {
    std::fprintf(stderr, "hdf5_bench: %s\n", store.status().ToString().c_str());
    return 1;
  }
  raympi::SpillConfig config;
  config.threshold = 2.0;  // spill only when asked
  raympi::SpillManager spill(store->get(), storage->get(), config);
  std::vector<uint8_t> source(total), dest(total);
  for (uint64_t i = 0; i < total; ++i) source[i] = static_cast<uint8_t>(i * 2654435761u >> 13);

  std::fprintf(stderr,
               "HDF5 in %s, %llu MiB per run, median GB/s of %d runs after a warm-up\n"
               "%8s %10s %10s %10s %10s\n",
               dir.c_str(), static_cast<unsigned long long>(options.total_mib), options.runs,
               "object", "raw write", "spill", "raw read", "restore");
  int failures = 0;
  for (uint64_t size_mib : options.sizes_mib) {
    const uint64_t size = size_mib * kMiB, n = total / size;
    std::vector<double> write, read, spilled, restored;
    for (int run = -1; run < options.runs; ++run) {  // run -1 warms up
      auto raw = RawHdf5(dir + "/raw.h5", source.data(), size, n, dest.data());
      auto ours = SpillRestore(**store, spill, source.data(), size, n);
      if (raw.first < 0 || ours.first < 0) {
        ++failures;
        break;
      }
      if (run < 0) continue;
      const double gb = static_cast<double>(n * size) / 1e9;
      write.push_back(gb / raw.first);
      read.push_back(gb / raw.second);
      spilled.push_back(gb / ours.first);
      restored.push_back(gb / ours.second);
    }
    if (write.empty()) continue;
    const std::string label = std::to_string(size_mib) + "MiB";
    std::fprintf(stderr, "%8s %10.2f %10.2f %10.2f %10.2f\n", label.c_str(), Median(write),
                 Median(spilled), Median(read), Median(restored));
    std::printf("hdf5.write_%s,%.3f,GB/s,,\n", label.c_str(), Median(write));
    std::printf("hdf5.read_%s,%.3f,GB/s,,\n", label.c_str(), Median(read));
    std::printf("spill.spill_%s,%.3f,GB/s,,\n", label.c_str(), Median(spilled));
    std::printf("spill.restore_%s,%.3f,GB/s,,\n", label.c_str(), Median(restored));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return failures;
}
