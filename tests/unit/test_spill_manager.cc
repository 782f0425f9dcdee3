// SpillManager with a real store and the in-memory FakeSpillStorage: which objects are
// spilled, fusion into one file, restore, frees deleting files, and failures.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "objects/fake_spill_storage.h"
#include "objects/object_store.h"
#include "objects/spill_dir.h"
#include "objects/spill_manager.h"

namespace raympi {
namespace {

constexpr size_t kMiB = 1 << 20;

ObjectId Id(uint32_t index) {
  ObjectId id;
  id.owner_node = 0;
  id.owner_slot = 1;
  id.owner_pid = 77;
  id.index = index;
  return id;
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class SpillManagerTest : public ::testing::Test {
 protected:
  // A 16 MiB store; batches of at least 4 MiB (a quarter of it).
  void SetUp() override { Build(16 * kMiB, SpillConfig{}); }

  void Build(size_t capacity, SpillConfig config) {
    spill_.reset();
    store_.reset();
    auto store = ObjectStore::Create("/raympi-test-spill-" + std::to_string(getpid()), capacity,
                                     256, /*prefault=*/false);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    spill_ = std::make_unique<SpillManager>(store_.get(), &storage_, config);
  }

  // Puts an object whose every byte is `tag`, and touches it (LRU order is put order).
  void Put(uint32_t index, size_t size, char tag) {
    auto buffer = store_->Create(Id(index), size);
    ASSERT_TRUE(buffer.ok()) << buffer.status().ToString();
    std::memset(buffer->data, tag, size);
    ASSERT_TRUE(store_->Seal(Id(index)).ok());
  }

  // The object is in the store with every byte equal to `tag`.
  bool InStoreAs(uint32_t index, size_t size, char tag) {
    auto view = store_->Get(Id(index));
    if (!view.ok() || view->size() != size) return false;
    for (size_t i = 0; i < size; ++i) {
      if (view->data()[i] != static_cast<uint8_t>(tag)) return false;
    }
    return true;
  }

  FakeSpillStorage storage_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<SpillManager> spill_;
};

TEST_F(SpillManagerTest, MakeRoomSpillsTheColdestObjectsFusedIntoOneFile) {
  for (uint32_t i = 0; i < 8; ++i) Put(i, 2 * kMiB, static_cast<char>('a' + i));
  // Full; 3 MiB must fit: the two oldest objects go (a batch is at least 4 MiB here).
  ASSERT_TRUE(spill_->MakeRoom(3 * kMiB).ok());
  EXPECT_GE(store_->stats(0).largest_free_block, 3 * kMiB);
  EXPECT_EQ(storage_.write_calls(), 1);
  ASSERT_EQ(storage_.files().size(), 1u);
  EXPECT_EQ(storage_.files().begin()->second,
            std::string(2 * kMiB, 'a') + std::string(2 * kMiB, 'b'));
  EXPECT_TRUE(spill_->IsSpilled(Id(0)));
  EXPECT_TRUE(spill_->IsSpilled(Id(1)));
  EXPECT_FALSE(spill_->IsSpilled(Id(2)));
  EXPECT_FALSE(store_->Contains(Id(0)));
  EXPECT_TRUE(InStoreAs(2, 2 * kMiB, 'c'));
  EXPECT_TRUE(InStoreAs(7, 2 * kMiB, 'h'));
  SpillStats stats = spill_->stats();
  EXPECT_EQ(stats.counters.spilled_objects, 2u);
  EXPECT_EQ(stats.counters.spilled_bytes, 4 * kMiB);
  EXPECT_EQ(stats.counters.objects_on_disk, 2u);
  // Published in the store for every process of the node.
  EXPECT_EQ(store_->stats(0).spill.spilled_bytes, 4 * kMiB);
  EXPECT_TRUE(Has(store_->stats(0).ToString(), "spilled: 4.0 MiB in 2 objects"));
}

TEST_F(SpillManagerTest, RestoreIsByteExactAndRespillingCostsNoWrite) {
  for (uint32_t i = 0; i < 4; ++i) Put(i, 3 * kMiB, static_cast<char>('k' + i));
  ASSERT_TRUE(spill_->MakeRoom(12 * kMiB).ok());
  ASSERT_TRUE(spill_->IsSpilled(Id(0)));
  ASSERT_TRUE(spill_->Restore(Id(0)).ok());
  EXPECT_TRUE(InStoreAs(0, 3 * kMiB, 'k'));
  EXPECT_EQ(spill_->stats().counters.restored_objects, 1u);
  EXPECT_EQ(spill_->stats().counters.restored_bytes, 3 * kMiB);
  EXPECT_TRUE(spill_->Restore(Id(0)).ok());  // already there: nothing to do
  EXPECT_EQ(spill_->stats().counters.restored_objects, 1u);
  // The restored object keeps its spilled copy: evicting it again writes nothing.
  const int writes = storage_.write_calls();
  ASSERT_TRUE(spill_->MakeRoom(16 * kMiB).ok());
  EXPECT_FALSE(store_->Contains(Id(0)));
  EXPECT_EQ(storage_.write_calls(), writes);
  for (uint32_t i = 0; i < 4; ++i) {
    ASSERT_TRUE(spill_->Restore(Id(i)).ok());
    EXPECT_TRUE(InStoreAs(i, 3 * kMiB, static_cast<char>('k' + i)));
  }
}

TEST_F(SpillManagerTest, AFileIsRemovedWhenItsLastObjectIsFreed) {
  for (uint32_t i = 0; i < 3; ++i) Put(i, 2 * kMiB, 'x');
  ASSERT_TRUE(spill_->MakeRoom(16 * kMiB).ok());
  ASSERT_EQ(storage_.files().size(), 1u);
  spill_->OnFreed(Id(0));
  spill_->OnFreed(Id(0));  // a second free changes nothing
  spill_->OnFreed(Id(1));
  EXPECT_EQ(storage_.files().size(), 1u);
  EXPECT_EQ(spill_->stats().counters.objects_on_disk, 1u);
  spill_->OnFreed(Id(2));
  EXPECT_TRUE(storage_.files().empty());
  EXPECT_EQ(spill_->stats().counters.objects_on_disk, 0u);
  EXPECT_EQ(spill_->stats().counters.bytes_on_disk, 0u);
  EXPECT_EQ(spill_->stats().files_removed, 1u);
  EXPECT_FALSE(spill_->IsSpilled(Id(2)));
  EXPECT_EQ(spill_->Restore(Id(2)).code(), StatusCode::kNotFound);
}

TEST_F(SpillManagerTest, PinnedObjectsStayAndAllPinnedIsUnavailable) {
  Put(0, 6 * kMiB, 'p');
  Put(1, 6 * kMiB, 'q');
  auto pin0 = store_->Get(Id(0));
  ASSERT_TRUE(pin0.ok());
  // Only object 1 can go.
  ASSERT_TRUE(spill_->MakeRoom(8 * kMiB).ok());
  EXPECT_FALSE(spill_->IsSpilled(Id(0)));
  EXPECT_TRUE(spill_->IsSpilled(Id(1)));
  Status st = spill_->MakeRoom(12 * kMiB);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Has(st.message(), "nothing left to spill")) << st.message();
  EXPECT_TRUE(Has(st.message(), "pinned")) << st.message();
  EXPECT_TRUE(InStoreAs(0, 6 * kMiB, 'p'));
}

TEST_F(SpillManagerTest, WriteFailureKeepsEveryObjectAndSaysWhy) {
  for (uint32_t i = 0; i < 4; ++i) Put(i, 3 * kMiB, 'w');
  storage_.FailWrites("No space left on device");
  Status st = spill_->MakeRoom(8 * kMiB);
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_TRUE(Has(st.message(), "No space left on device")) << st.message();
  EXPECT_TRUE(Has(st.message(), "fake spill files")) << st.message();
  EXPECT_TRUE(Has(st.message(), "--spill-dir")) << st.message();
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_FALSE(spill_->IsSpilled(Id(i)));
    EXPECT_TRUE(InStoreAs(i, 3 * kMiB, 'w'));
  }
  EXPECT_EQ(store_->stats(0).num_pinned, 0u);
  storage_.FailWrites("");
  EXPECT_TRUE(spill_->MakeRoom(8 * kMiB).ok());
}

TEST_F(SpillManagerTest, ReadFailureLeavesNoHalfRestoredObject) {
  for (uint32_t i = 0; i < 4; ++i) Put(i, 3 * kMiB, 'r');
  ASSERT_TRUE(spill_->MakeRoom(16 * kMiB).ok());
  storage_.FailReads("Input/output error");
  Status st = spill_->Restore(Id(0));
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_TRUE(Has(st.message(), "Input/output error")) << st.message();
  EXPECT_FALSE(store_->Contains(Id(0)));
  EXPECT_EQ(store_->stats(0).num_objects, 0u);  // the buffer was aborted
  EXPECT_TRUE(spill_->IsSpilled(Id(0)));        // and the spilled copy is still there
  storage_.FailReads("");
  EXPECT_TRUE(spill_->Restore(Id(0)).ok());
  EXPECT_TRUE(InStoreAs(0, 3 * kMiB, 'r'));
}

TEST_F(SpillManagerTest, RestoreIntoAFullStoreSpillsOthers) {
  for (uint32_t i = 0; i < 5; ++i) Put(i, 3 * kMiB, static_cast<char>('A' + i));
  ASSERT_TRUE(spill_->MakeRoom(16 * kMiB).ok());
  for (uint32_t i = 10; i < 15; ++i) Put(i, 3 * kMiB, 'z');  // full again
  ASSERT_TRUE(spill_->Restore(Id(2)).ok());
  EXPECT_TRUE(InStoreAs(2, 3 * kMiB, 'C'));
  EXPECT_TRUE(spill_->IsSpilled(Id(10)));  // the coldest made room
}

TEST_F(SpillManagerTest, ARestoreThatNeedsAFailingSpillFailsAtOnce) {
  for (uint32_t i = 0; i < 4; ++i) Put(i, 3 * kMiB, 'o');
  ASSERT_TRUE(spill_->MakeRoom(16 * kMiB).ok());
  for (uint32_t i = 10; i < 15; ++i) Put(i, 3 * kMiB, 'n');  // full of objects never spilled
  storage_.FailWrites("No space left on device");
  Status st = spill_->Restore(Id(0));
  EXPECT_EQ(st.code(), StatusCode::kIoError);  // not Unavailable: waiting would not help
  EXPECT_TRUE(Has(st.message(), "No space left on device")) << st.message();
  EXPECT_TRUE(spill_->IsSpilled(Id(0)));
  for (uint32_t i = 10; i < 15; ++i) EXPECT_TRUE(InStoreAs(i, 3 * kMiB, 'n'));
}

TEST_F(SpillManagerTest, ThresholdSpillsOnlyAboveIt) {
  SpillConfig config;
  config.threshold = 0.5;
  config.min_batch_bytes = 1 * kMiB;
  Build(16 * kMiB, config);
  for (uint32_t i = 0; i < 4; ++i) Put(i, 2 * kMiB, 't');  // 8 MiB: at the threshold
  EXPECT_FALSE(spill_->SpillAboveThreshold());
  Put(4, 2 * kMiB, 't');  // 10 MiB: 2 above
  EXPECT_TRUE(spill_->SpillAboveThreshold());
  EXPECT_EQ(spill_->stats().counters.spilled_objects, 1u);
  EXPECT_LE(store_->bytes_in_use(), 8 * kMiB);
  EXPECT_FALSE(spill_->SpillAboveThreshold());
}

TEST_F(SpillManagerTest, ThresholdAboveOneNeverSpillsAhead) {
  SpillConfig config;
  config.threshold = 1.5;
  Build(16 * kMiB, config);
  for (uint32_t i = 0; i < 8; ++i) Put(i, 2 * kMiB, 'n');
  EXPECT_FALSE(spill_->SpillAboveThreshold());
  EXPECT_EQ(storage_.write_calls(), 0);
}

TEST_F(SpillManagerTest, TheDestructorRemovesEveryFile) {
  for (uint32_t i = 0; i < 4; ++i) Put(i, 3 * kMiB, 'd');
  ASSERT_TRUE(spill_->MakeRoom(16 * kMiB).ok());
  ASSERT_FALSE(storage_.files().empty());
  spill_.reset();
  EXPECT_TRUE(storage_.files().empty());
}

TEST(SpillDirTest, OnlyThisHostsDirectoriesOfEndedRayletsAreRemoved) {
  namespace fs = std::filesystem;
  const std::string base =
      (fs::temp_directory_path() / ("raympi-test-spilldir-" + std::to_string(getpid()))).string();
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);  // its pid now names an ended raylet
  const std::string live = SpillDirPath(base, "hostA", getpid(), "job", 0);
  const std::string dead = SpillDirPath(base, "hostA", child, "job", 1);
  const std::string elsewhere = SpillDirPath(base, "hostB", child, "job", 1);
  const std::string unrelated = base + "/keep-me";
  for (const std::string& d : {live, dead, elsewhere, unrelated}) fs::create_directories(d);
  std::fclose(std::fopen((dead + "/spill-0.h5").c_str(), "w"));
  EXPECT_EQ(RemoveStaleSpillDirs(base, "hostA"), 1);
  EXPECT_TRUE(fs::exists(live));
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(elsewhere));
  EXPECT_TRUE(fs::exists(unrelated));
  EXPECT_EQ(RemoveStaleSpillDirs(base + "/missing", "hostA"), 0);
  fs::remove_all(base);
}

}  // namespace
}  // namespace raympi
