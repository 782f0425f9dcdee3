// Object spilling end to end (docs/objects.md, "Spilling"). Run with a small store
// (--object-store-memory 64MiB) and --spill-dir BASE; arguments: BASE and the number of
// (virtual) nodes. Puts four times the store's capacity, reads every object back byte-exact on
// its own node and from another node (a pull of a spilled object restores it at the source),
// does the same for objects made on another node, then frees everything and checks that the
// spill files are gone. With a third argument "disk_full": a spill directory on a full file
// system. The driver's exit code is the number of failed checks.
#include <raympi/raympi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "check.h"

namespace {

namespace fs = std::filesystem;

constexpr size_t kWords = 2 << 20;  // 16 MiB per object
constexpr int kObjects = 16;        // 256 MiB: four times a 64 MiB store

std::vector<uint64_t> Make(uint64_t tag) {
  std::vector<uint64_t> v(kWords);
  for (size_t j = 0; j < kWords; ++j) v[j] = tag * 1000000007ULL + j;
  return v;
}
uint64_t Mismatches(const std::vector<uint64_t>& v, uint64_t tag) {
  if (v.size() != kWords) return kWords;
  uint64_t bad = 0;
  for (size_t j = 0; j < kWords; ++j) bad += v[j] != tag * 1000000007ULL + j;
  return bad;
}
RAYMPI_REMOTE(Make, Mismatches);

// Spill files (complete and partial) in the spill directories of this job's nodes.
int SpillFiles(const std::string& base, const std::string& suffix) {
  int n = 0;
  std::error_code ec;
  for (const auto& dir : fs::directory_iterator(base, ec)) {
    if (dir.path().filename().string().rfind("raympi-spill-", 0) != 0) continue;
    for (const auto& f : fs::directory_iterator(dir.path(), ec)) {
      const std::string name = f.path().filename().string();
      if (name.size() >= suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        ++n;
      }
    }
  }
  return n;
}

// Frees travel as messages to the raylets: wait (bounded) until no spill file is left.
bool WaitForNoSpillFiles(const std::string& base) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (SpillFiles(base, ".h5") > 0) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

void SpillOnOneNode(const std::string& base, int nodes) {
  const raympi::ObjectStoreUsage start = raympi::LocalObjectStoreUsage();
  std::vector<raympi::ObjectRef<std::vector<uint64_t>>> refs;
  for (int i = 0; i < kObjects; ++i) refs.push_back(raympi::Put(Make(i)));  // no store-full error
  raympi::ObjectStoreUsage after = raympi::LocalObjectStoreUsage();
  std::fprintf(stderr, "%s", after.summary.c_str());
  CHECK(after.bytes_in_use <= after.capacity);
  CHECK(after.spilled_objects >= kObjects / 2);
  CHECK(after.objects_on_disk >= kObjects / 2);
  CHECK(SpillFiles(base, ".h5") > 0);
  CHECK(SpillFiles(base, ".part") == 0);
  // Every object back, byte-exact, on its own node: Get and GetView restore.
  for (int i = 0; i < kObjects; ++i) CHECK(Mismatches(*raympi::Get(refs[i]), i) == 0);
  for (int i = 0; i < kObjects; i += 5) {
    raympi::ArrayView<uint64_t> view = raympi::GetView(refs[i]);
    CHECK(view.size() == kWords && view[0] == i * 1000000007ULL &&
          view[kWords - 1] == i * 1000000007ULL + kWords - 1);
  }
  CHECK(raympi::LocalObjectStoreUsage().restored_objects > start.restored_objects);
  // From another node: its raylet pulls each object; a spilled one is restored at the source.
  for (int node = 1; node < nodes; ++node) {
    auto there = raympi::NodeAffinity(node);
    std::vector<raympi::ObjectRef<uint64_t>> checks;
    for (int i = 0; i < kObjects; ++i) {
      checks.push_back(raympi::Task(Mismatches).SetSchedulingStrategy(there).Remote(refs[i], i));
    }
    for (auto& c : checks) CHECK(*raympi::Get(c) == 0);
  }
  refs.clear();
  CHECK(WaitForNoSpillFiles(base));
}

// Objects made on another node fill and spill its store; the driver pulls every one of them.
void SpillOnAnotherNode(const std::string& base, int node) {
  auto there = raympi::NodeAffinity(node);
  std::vector<raympi::ObjectRef<std::vector<uint64_t>>> made;
  for (int i = 0; i < kObjects; ++i) {
    made.push_back(raympi::Task(Make).SetSchedulingStrategy(there).Remote(100 + i));
  }
  raympi::Wait(made, kObjects);
  for (int i = 0; i < kObjects; ++i) CHECK(Mismatches(*raympi::Get(made[i]), 100 + i) == 0);
  made.clear();
  CHECK(WaitForNoSpillFiles(base));
}

// Run with a spill directory on a small file system (24 MiB): spilling fails with a clear
// error naming the directory, the cause and the flag; once objects are freed, Put works again.
void SpillDiskFull() {
  std::vector<raympi::ObjectRef<std::vector<uint64_t>>> refs;
  std::string error;
  try {
    for (int i = 0; i < kObjects; ++i) refs.push_back(raympi::Put(Make(i)));
  } catch (const raympi::ObjectStoreFullError& e) {
    error = e.what();
  }
  std::fprintf(stderr, "the error: %s\n", error.c_str());
  CHECK(error.find("spilling failed") != std::string::npos);
  CHECK(error.find("No space left on device") != std::string::npos);
  CHECK(error.find("raympi-spill-") != std::string::npos);
  CHECK(error.find("--spill-dir") != std::string::npos);
  CHECK(refs.size() >= 4);  // the store (64 MiB) and the disk (24 MiB) were used first
  // Nothing was lost. The disk is still full, so room in the store comes from frees: drop the
  // newest objects, then the oldest (spilled) ones are restored without writing anything.
  if (refs.size() > 2) refs.resize(2);
  for (size_t i = 0; i < refs.size(); ++i) CHECK(Mismatches(*raympi::Get(refs[i]), i) == 0);
  refs.clear();
  auto again = raympi::Put(Make(99));  // the frees gave the room back
  CHECK(Mismatches(*raympi::Get(again), 99) == 0);
}

}  // namespace

int main(int argc, char** argv) {
  raympi::Init(argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: spill_test SPILL_BASE NODES\n");
    return 1;
  }
  const std::string base = argv[1];
  const int nodes = std::atoi(argv[2]);
  if (argc > 3 && std::string(argv[3]) == "disk_full") {
    SpillDiskFull();
  } else {
    SpillOnOneNode(base, nodes);
    if (nodes > 1) SpillOnAnotherNode(base, 1);
    CHECK(raympi::LocalObjectStoreUsage().objects_on_disk == 0);
  }
  std::fprintf(stderr, "spill_test: %d failure(s)\n", raympi_test::Failures());
  return raympi_test::Failures();
}
