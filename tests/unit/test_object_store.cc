#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/shm_segment.h"
#include "objects/object_store.h"

namespace raympi {
namespace {

// The same in a forked child as in its parent (so no getpid() here).
ObjectId Id(uint32_t index, int32_t node = 1) {
  ObjectId id;
  id.owner_node = node;
  id.owner_slot = 3;
  id.owner_pid = 4242;
  id.index = index;
  return id;
}

// Deterministic content per (size, seed): a misplaced or overlapping object shows up.
void Fill(uint8_t* p, size_t n, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    p[i] = static_cast<uint8_t>(x >> 24);
  }
}

bool Matches(const uint8_t* p, size_t n, uint32_t seed) {
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    if (p[i] != static_cast<uint8_t>(x >> 24)) return false;
  }
  return true;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Exit status of a child, or -1 if it did not exit normally.
int WaitChild(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class ObjectStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = "raympi-test-store-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-";
  }

  // Every store is destroyed by now (they are locals of the test body): nothing may remain.
  void TearDown() override {
    const std::vector<std::string> left = ListShm(prefix_);
    EXPECT_TRUE(left.empty()) << "leftover segment " << left[0];
    for (const std::string& n : left) shm_unlink(("/" + n).c_str());
  }

  std::string NewName() { return "/" + prefix_ + std::to_string(counter_++); }

  std::unique_ptr<ObjectStore> MustCreate(size_t capacity, uint32_t max_objects = 1024) {
    last_name_ = NewName();
    auto store = ObjectStore::Create(last_name_, capacity, max_objects);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // Create + fill + seal.
  static void Put(ObjectStore* store, const ObjectId& id, size_t size, uint32_t seed) {
    auto buf = store->Create(id, size);
    ASSERT_TRUE(buf.ok()) << buf.status().ToString();
    Fill(buf->data, buf->size, seed);
    ASSERT_TRUE(store->Seal(id).ok());
  }

  std::string prefix_;
  std::string last_name_;
  int counter_ = 0;
};

TEST_F(ObjectStoreTest, CreateSealGetRoundTrip) {
  auto store = MustCreate(1 << 20);
  ASSERT_TRUE(store);
  EXPECT_EQ(store->capacity(), 1u << 20);
  EXPECT_EQ(store->max_objects(), 1024u);

  auto buf = store->Create(Id(1), 100000);
  ASSERT_TRUE(buf.ok()) << buf.status().ToString();
  EXPECT_EQ(buf->size, 100000u);
  EXPECT_EQ(buf->data, store->arena() + buf->offset);
  Fill(buf->data, buf->size, 42);
  EXPECT_FALSE(store->Contains(Id(1)));  // not sealed yet
  ASSERT_TRUE(store->Seal(Id(1)).ok());
  EXPECT_TRUE(store->Contains(Id(1)));

  auto view = store->Get(Id(1));
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_TRUE(view->valid());
  EXPECT_TRUE(view->id() == Id(1));
  EXPECT_EQ(view->size(), 100000u);
  EXPECT_EQ(view->data(), buf->data);  // zero copy: the very bytes the writer wrote
  EXPECT_EQ(view->offset(), buf->offset);
  EXPECT_TRUE(Matches(view->data(), view->size(), 42));
  EXPECT_EQ(view->bytes().size(), 100000u);

  // A second mapping of the same segment (another handle, as a worker has) sees it too.
  auto peer = ObjectStore::Attach(last_name_);
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  auto peer_view = (*peer)->Get(Id(1));
  ASSERT_TRUE(peer_view.ok()) << peer_view.status().ToString();
  EXPECT_EQ(peer_view->offset(), buf->offset);
  EXPECT_TRUE(Matches(peer_view->data(), peer_view->size(), 42));

  EXPECT_TRUE(store->Seal(Id(1)).code() == StatusCode::kInvalidArgument);  // sealed once
}

// A pin taken in one mapping (the raylet's) and handed to another process (a FetchObject
// reply) becomes a view there without a table lookup; a range outside the arena is refused.
TEST_F(ObjectStoreTest, AdoptPinMakesAViewThatReleasesThePin) {
  auto store = MustCreate(1 << 20);
  ASSERT_TRUE(store);
  Put(store.get(), Id(9), 4096, 3);  // so the object of interest is not at offset 0
  Put(store.get(), Id(1), 5000, 11);
  auto taken = store->Get(Id(1));
  ASSERT_TRUE(taken.ok());
  const uint64_t offset = taken->offset();
  taken->Leak();  // handed over

  auto peer = ObjectStore::Attach(last_name_);
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  EXPECT_EQ((*peer)->AdoptPin(Id(1), (1 << 20) - 64, 128).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*peer)->AdoptPin(Id(1), UINT64_MAX - 10, 100).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ((*peer)->AdoptPin(Id(1), offset + 1, 100).status().code(),
            StatusCode::kInvalidArgument);  // not a block boundary
  auto adopted = (*peer)->AdoptPin(Id(1), offset, 5000);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_TRUE(Matches(adopted->data(), adopted->size(), 11));
  EXPECT_EQ(store->stats().num_pinned, 1u);
  ASSERT_TRUE(store->Delete(Id(1)).ok());  // pinned: kept until the adopted view goes
  EXPECT_EQ(store->stats().num_objects, 2u);
  adopted->Reset();
  EXPECT_EQ(store->stats().num_objects, 1u);
  EXPECT_EQ(store->stats().num_pinned, 0u);
}

// Issue 7: objects an owner makes one after another share a page of the table (each new
// table page a process touches cost it 10-60 us on the test VM), and other owners' do not pile
// onto it.
TEST_F(ObjectStoreTest, AnOwnersConsecutiveObjectsShareATablePage) {
  auto store = MustCreate(1 << 20, 4096);
  std::set<uint64_t> pages;
  for (uint32_t i = 128; i < 192; ++i) {  // one aligned run of 64 counters
    ASSERT_TRUE(store->Create(Id(i), 8).ok());
    auto slot = store->TableSlotForTesting(Id(i));
    ASSERT_TRUE(slot.ok()) << slot.status().ToString();
    pages.insert(*slot / 64);
  }
  EXPECT_EQ(pages.size(), 1u);
  std::set<uint64_t> other_owners;
  for (int32_t node = 2; node < 34; ++node) {
    ASSERT_TRUE(store->Create(Id(0, node), 8).ok());
    other_owners.insert(*store->TableSlotForTesting(Id(0, node)) / 64);
  }
  EXPECT_GT(other_owners.size(), 24u);  // spread over the table, not one page
  // Every id is still found after deletes shift entries back.
  for (uint32_t i = 128; i < 192; i += 2) ASSERT_TRUE(store->Abort(Id(i)).ok());
  for (uint32_t i = 129; i < 192; i += 2) EXPECT_TRUE(store->TableSlotForTesting(Id(i)).ok());
  for (int32_t node = 2; node < 34; ++node) {
    EXPECT_TRUE(store->TableSlotForTesting(Id(0, node)).ok());
  }
}

// One-sided pulls: a creation's table entry says it holds that object, sealed, there, and no
// longer once it is freed or made again (a new serial).
TEST_F(ObjectStoreTest, AnEntryHoldsASealedCreationUntilItIsGone) {
  auto store = MustCreate(1 << 20, 64);
  auto holds = [&](const MutableBuffer& b) {
    return ObjectStore::EntryHolds(store->table() + b.table_slot * ObjectStore::kEntryBytes, b.id,
                                   b.offset, b.size, b.serial);
  };
  ASSERT_TRUE(store->Create(Id(7), 64).ok());  // so the object of interest is not at offset 0
  auto made = store->Create(Id(1), 100);
  ASSERT_TRUE(made.ok());
  EXPECT_NE(made->serial, 0u);
  EXPECT_EQ(made->table_slot, *store->TableSlotForTesting(Id(1)));
  EXPECT_LT(uint64_t{made->table_slot} * ObjectStore::kEntryBytes, store->table_bytes());
  EXPECT_FALSE(holds(*made));  // not sealed yet
  ASSERT_TRUE(store->Seal(Id(1)).ok());
  EXPECT_TRUE(holds(*made));
  MutableBuffer wrong = *made;  // every field is checked
  wrong.serial += 1;
  EXPECT_FALSE(holds(wrong));
  wrong = *made;
  wrong.offset += 64;
  EXPECT_FALSE(holds(wrong));
  wrong = *made;
  wrong.size -= 1;
  EXPECT_FALSE(holds(wrong));
  wrong = *made;
  wrong.id = Id(2);
  EXPECT_FALSE(holds(wrong));
  ASSERT_TRUE(store->Delete(Id(1)).ok());
  EXPECT_FALSE(holds(*made));
  auto again = store->Create(Id(1), 100);  // the same id made again (restored, say)
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(store->Seal(Id(1)).ok());
  EXPECT_NE(again->serial, made->serial);
  EXPECT_TRUE(holds(*again));
  EXPECT_FALSE(holds(*made));
}

TEST_F(ObjectStoreTest, GetBeforeSealIsNotFound) {
  auto store = MustCreate(1 << 16);
  ASSERT_TRUE(store);
  auto absent = store->Get(Id(7));
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(absent.status().message(), Id(7).Hex()));

  ASSERT_TRUE(store->Create(Id(7), 10).ok());
  auto early = store->Get(Id(7));
  EXPECT_EQ(early.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(early.status().message(), "not sealed")) << early.status().message();
  ASSERT_TRUE(store->Seal(Id(7)).ok());
  EXPECT_TRUE(store->Get(Id(7)).ok());

  EXPECT_EQ(store->Seal(Id(8)).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Release(Id(8)).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Delete(Id(8)).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Release(Id(7)).code(), StatusCode::kInvalidArgument);  // not pinned
}

TEST_F(ObjectStoreTest, DuplicateIdIsRejected) {
  auto store = MustCreate(1 << 16);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Create(Id(1), 64).ok());
  auto dup = store->Create(Id(1), 64);
  EXPECT_EQ(dup.status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(Contains(dup.status().message(), "already exists")) << dup.status().message();
  EXPECT_TRUE(Contains(dup.status().message(), Id(1).Hex()));
  ASSERT_TRUE(store->Seal(Id(1)).ok());
  EXPECT_EQ(store->Create(Id(1), 1).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store->stats().num_objects, 1u);
}

TEST_F(ObjectStoreTest, FullStoreErrorNamesSizeCapacityAndUse) {
  auto store = MustCreate(64 << 10);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 40 << 10, 1);
  auto full = store->Create(Id(2), 30000);
  ASSERT_EQ(full.status().code(), StatusCode::kUnavailable);
  const std::string& m = full.status().message();
  EXPECT_TRUE(Contains(m, "object store full: cannot allocate 30000 bytes")) << m;
  EXPECT_TRUE(Contains(m, "capacity 65536")) << m;
  EXPECT_TRUE(Contains(m, "in use 40960")) << m;
  EXPECT_TRUE(Contains(m, "largest free block 24576")) << m;
  EXPECT_FALSE(store->Contains(Id(2)));
  EXPECT_EQ(store->stats().num_objects, 1u);  // a failed Create leaves nothing

  // Larger than the whole store: never satisfiable, so not "full" but invalid.
  auto huge = store->Create(Id(3), 1 << 20);
  ASSERT_EQ(huge.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(huge.status().message(), "1048576")) << huge.status().message();
  EXPECT_TRUE(Contains(huge.status().message(), "capacity 65536")) << huge.status().message();
}

TEST_F(ObjectStoreTest, RandomSizesWithFreesCoalesceBackToOneBlock) {
  constexpr size_t kCapacity = 4 << 20;
  auto store = MustCreate(kCapacity, 4096);
  ASSERT_TRUE(store);
  std::mt19937 rng(12345);
  std::map<uint32_t, size_t> live;  // index -> size (the model)
  uint64_t model_bytes = 0;
  uint32_t next = 0;
  int full_errors = 0;
  for (int step = 0; step < 20000; ++step) {
    const bool create = live.empty() || rng() % 100 < 55;
    if (create) {
      // Mostly small, some large: both fragmentation and splitting big blocks.
      const size_t size = rng() % 10 == 0 ? rng() % (256 << 10) : rng() % 4096;
      const uint32_t index = next++;
      auto buf = store->Create(Id(index), size);
      if (!buf.ok()) {
        ASSERT_EQ(buf.status().code(), StatusCode::kUnavailable) << buf.status().ToString();
        ++full_errors;
        continue;
      }
      Fill(buf->data, size, index);
      ASSERT_TRUE(store->Seal(Id(index)).ok());
      live[index] = size;
      model_bytes += (size + 63) / 64 * 64;
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      {
        auto view = store->Get(Id(it->first));
        ASSERT_TRUE(view.ok());
        // Another object written over this one would show here.
        ASSERT_TRUE(Matches(view->data(), view->size(), it->first)) << "object " << it->first;
      }
      ASSERT_TRUE(store->Delete(Id(it->first)).ok());
      model_bytes -= (it->second + 63) / 64 * 64;
      live.erase(it);
    }
    if (step % 1000 == 0) {
      ObjectStore::Stats st = store->stats(0);
      ASSERT_EQ(st.bytes_in_use, model_bytes);
      ASSERT_EQ(st.num_objects, live.size());
    }
  }
  EXPECT_GT(full_errors, 0) << "the workload should have filled the store at times";
  for (const auto& [index, size] : live) {
    auto view = store->Get(Id(index));
    ASSERT_TRUE(view.ok());
    ASSERT_TRUE(Matches(view->data(), size, index));
    view->Reset();
    ASSERT_TRUE(store->Delete(Id(index)).ok());
  }
  ObjectStore::Stats st = store->stats();
  EXPECT_EQ(st.bytes_in_use, 0u);
  EXPECT_EQ(st.num_objects, 0u);
  EXPECT_EQ(st.largest_free_block, kCapacity);  // every free block merged back
  // No allocator overhead in the arena: the whole capacity is one object again.
  auto whole = store->Create(Id(next), kCapacity);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(whole->offset, 0u);
}

TEST_F(ObjectStoreTest, PinnedObjectSurvivesDeleteUntilRelease) {
  auto store = MustCreate(1 << 16);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 5000, 9);
  auto view = store->Get(Id(1));
  ASSERT_TRUE(view.ok());
  auto second = store->Get(Id(1));  // pins count
  ASSERT_TRUE(second.ok());
  ObjectStore::Stats st = store->stats();
  EXPECT_EQ(st.num_pinned, 1u);
  EXPECT_EQ(st.largest.at(0).pin_count, 2u);

  ASSERT_TRUE(store->Delete(Id(1)).ok());
  EXPECT_TRUE(store->Delete(Id(1)).ok());  // already scheduled: no-op
  EXPECT_FALSE(store->Contains(Id(1)));
  EXPECT_EQ(store->Get(Id(1)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Create(Id(1), 10).status().code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(store->stats().largest.at(0).delete_pending);
  // Still there, intact, for those who hold it.
  EXPECT_TRUE(Matches(view->data(), view->size(), 9));
  EXPECT_EQ(store->stats().bytes_in_use, 5056u);

  second->Leak();  // the pin now belongs to whoever calls Release(id)
  EXPECT_FALSE(second->valid());
  ASSERT_TRUE(store->Release(Id(1)).ok());
  EXPECT_EQ(store->stats().num_objects, 1u);  // `view` still pins it
  view->Reset();
  st = store->stats();
  EXPECT_EQ(st.num_objects, 0u);
  EXPECT_EQ(st.bytes_in_use, 0u);
  EXPECT_EQ(store->Release(Id(1)).code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->Create(Id(1), 10).ok());  // the id is free again
}

TEST_F(ObjectStoreTest, RaiiViewReleasesExactlyOnce) {
  auto store = MustCreate(1 << 16);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 100, 1);
  Put(store.get(), Id(2), 200, 2);
  {
    auto view = store->Get(Id(1));
    ASSERT_TRUE(view.ok());
    EXPECT_EQ(store->stats().num_pinned, 1u);
    ObjectView moved = std::move(*view);  // the pin moves, it is not duplicated
    EXPECT_FALSE(view->valid());
    EXPECT_TRUE(moved.valid());
    EXPECT_EQ(store->stats().num_pinned, 1u);

    auto other = store->Get(Id(2));
    ASSERT_TRUE(other.ok());
    EXPECT_EQ(store->stats().num_pinned, 2u);
    moved = std::move(*other);  // releases Id(1), takes over Id(2)
    EXPECT_TRUE(moved.id() == Id(2));
    auto st = store->stats();
    ASSERT_EQ(st.num_pinned, 1u);
    EXPECT_EQ(st.pinned_bytes, 256u);
  }
  EXPECT_EQ(store->stats().num_pinned, 0u);

  // Delete while a view lives: the view's destruction frees the object.
  {
    auto view = store->Get(Id(1));
    ASSERT_TRUE(view.ok());
    ASSERT_TRUE(store->Delete(Id(1)).ok());
    EXPECT_EQ(store->stats().num_objects, 2u);
  }
  EXPECT_EQ(store->stats().num_objects, 1u);
  ObjectView empty;
  empty.Reset();  // harmless
  EXPECT_FALSE(empty.valid());
}

TEST_F(ObjectStoreTest, AbortFreesAnUnsealedObject) {
  auto store = MustCreate(1 << 16);
  ASSERT_TRUE(store);
  ASSERT_TRUE(store->Create(Id(1), 1000).ok());
  EXPECT_EQ(store->Delete(Id(1)).code(), StatusCode::kInvalidArgument);  // writers Abort
  ASSERT_TRUE(store->Abort(Id(1)).ok());
  EXPECT_EQ(store->stats().num_objects, 0u);
  EXPECT_EQ(store->stats().bytes_in_use, 0u);
  EXPECT_EQ(store->Abort(Id(1)).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->Seal(Id(1)).code(), StatusCode::kNotFound);

  Put(store.get(), Id(2), 10, 2);
  EXPECT_EQ(store->Abort(Id(2)).code(), StatusCode::kInvalidArgument);  // sealed: Delete
  EXPECT_TRUE(store->Contains(Id(2)));
  ASSERT_TRUE(store->Create(Id(1), 1000).ok());  // an aborted id can be created again
}

TEST_F(ObjectStoreTest, StatsSummarizeUseAndLargestObjects) {
  auto store = MustCreate(1 << 20);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 1000, 1);
  Put(store.get(), Id(2), 5000, 2);
  ASSERT_TRUE(store->Create(Id(3), 300).ok());  // unsealed
  Put(store.get(), Id(4), 0, 4);
  auto pinned = store->Get(Id(2));
  ASSERT_TRUE(pinned.ok());

  ObjectStore::Stats st = store->stats(2);
  EXPECT_EQ(st.capacity, 1u << 20);
  EXPECT_EQ(st.max_objects, 1024u);
  EXPECT_EQ(st.num_objects, 4u);
  EXPECT_EQ(st.num_unsealed, 1u);
  EXPECT_EQ(st.num_pinned, 1u);
  EXPECT_EQ(st.pinned_bytes, 5056u);
  EXPECT_EQ(st.bytes_in_use, 1024u + 5056u + 320u);
  EXPECT_EQ(st.largest_free_block, (1u << 20) - st.bytes_in_use);
  ASSERT_EQ(st.largest.size(), 2u);
  EXPECT_TRUE(st.largest[0].id == Id(2));
  EXPECT_EQ(st.largest[0].size, 5000u);
  EXPECT_EQ(st.largest[0].pin_count, 1u);
  EXPECT_TRUE(st.largest[0].sealed);
  EXPECT_EQ(st.largest[0].creator_pid, getpid());
  EXPECT_TRUE(st.largest[1].id == Id(1));
  EXPECT_EQ(store->stats(10).largest.size(), 4u);
  EXPECT_TRUE(store->stats(0).largest.empty());

  const std::string text = st.ToString();
  EXPECT_TRUE(Contains(text, "object store:")) << text;
  EXPECT_TRUE(Contains(text, "objects: 4 (1 unsealed, 1 pinned)")) << text;
  EXPECT_TRUE(Contains(text, Id(2).Hex())) << text;
}

TEST_F(ObjectStoreTest, EvictionCandidatesAreUnpinnedSealedInLruOrder) {
  auto store = MustCreate(1 << 20);
  ASSERT_TRUE(store);
  for (uint32_t i = 1; i <= 5; ++i) Put(store.get(), Id(i), 1000 * i, i);  // clock: 1..5
  ASSERT_TRUE(store->Create(Id(6), 100).ok());                             // unsealed: never
  { ASSERT_TRUE(store->Get(Id(1)).ok()); }  // 1 used again: now the most recent
  auto pinned = store->Get(Id(3));          // pinned: never
  ASSERT_TRUE(pinned.ok());
  ASSERT_TRUE(store->Get(Id(4)).ok());  // a temporary: released at once
  {
    auto deleted = store->Get(Id(5));
    ASSERT_TRUE(deleted.ok());
    ASSERT_TRUE(store->Delete(Id(5)).ok());  // delete-pending: never
    auto candidates = store->EvictionCandidates(SIZE_MAX);
    std::vector<ObjectId> expected = {Id(2), Id(1), Id(4)};
    ASSERT_EQ(candidates.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_TRUE(candidates[i] == expected[i]) << i << ": " << candidates[i].Hex();
    }
  }
  // Stops once enough bytes are found (sizes count rounded up to 64).
  auto one = store->EvictionCandidates(2000);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_TRUE(one[0] == Id(2));
  auto two = store->EvictionCandidates(2049);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_TRUE(two[1] == Id(1));
  EXPECT_TRUE(store->EvictionCandidates(0).empty());
}

TEST_F(ObjectStoreTest, ChildProcessWritesParentReads) {
  auto store = MustCreate(1 << 20);
  ASSERT_TRUE(store);
  const std::string name = last_name_;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto peer = ObjectStore::Attach(name);
    if (!peer.ok()) _exit(2);
    auto buf = (*peer)->Create(Id(1), 300000);
    if (!buf.ok()) _exit(3);
    Fill(buf->data, buf->size, 77);
    if (!(*peer)->Seal(Id(1)).ok()) _exit(4);
    _exit(0);
  }
  ASSERT_EQ(WaitChild(pid), 0);
  auto view = store->Get(Id(1));
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->size(), 300000u);
  EXPECT_TRUE(Matches(view->data(), view->size(), 77));
  EXPECT_EQ(store->stats().largest.at(0).creator_pid, pid);
}

TEST_F(ObjectStoreTest, ParentWritesChildReads) {
  auto store = MustCreate(1 << 20);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 123457, 5);
  const std::string name = last_name_;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto peer = ObjectStore::Attach(name, /*populate=*/true);
    if (!peer.ok()) _exit(2);
    {
      auto view = (*peer)->Get(Id(1));
      if (!view.ok()) _exit(3);
      if (view->size() != 123457 || !Matches(view->data(), view->size(), 5)) _exit(4);
      if (reinterpret_cast<uintptr_t>(view->data()) % 64 != 0) _exit(5);
    }
    // The child frees it; the parent must see that.
    if (!(*peer)->Delete(Id(1)).ok()) _exit(6);
    _exit(0);
  }
  ASSERT_EQ(WaitChild(pid), 0);
  EXPECT_FALSE(store->Contains(Id(1)));
  EXPECT_EQ(store->stats().bytes_in_use, 0u);
}

TEST_F(ObjectStoreTest, TableFullIsReportedAndRecovers) {
  auto store = MustCreate(1 << 16, /*max_objects=*/4);
  ASSERT_TRUE(store);
  for (uint32_t i = 0; i < 4; ++i) Put(store.get(), Id(i), i == 0 ? 0 : 64, i);
  auto full = store->Create(Id(4), 0);  // even a zero-size object needs a slot
  ASSERT_EQ(full.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(Contains(full.status().message(), "object table full")) << full.status().message();
  EXPECT_TRUE(Contains(full.status().message(), "max_objects 4")) << full.status().message();
  ASSERT_TRUE(store->Delete(Id(2)).ok());
  EXPECT_TRUE(store->Create(Id(4), 64).ok());
}

TEST_F(ObjectStoreTest, TableChurnKeepsEveryLiveIdReachable) {
  // A tiny table (8 objects, 16 slots): long probe chains, wrap-around and many backward
  // shifts on removal.
  auto store = MustCreate(1 << 16, 8);
  ASSERT_TRUE(store);
  std::mt19937 rng(7);
  std::vector<uint32_t> live;
  for (int step = 0; step < 20000; ++step) {
    if (live.size() < 8 && (live.empty() || rng() % 2 == 0)) {
      const uint32_t index = static_cast<uint32_t>(rng() % 1000);
      if (std::find(live.begin(), live.end(), index) != live.end()) continue;
      Put(store.get(), Id(index), 64, index);
      live.push_back(index);
    } else {
      const size_t k = rng() % live.size();
      ASSERT_TRUE(store->Delete(Id(live[k])).ok());
      live.erase(live.begin() + k);
    }
    for (uint32_t index : live) ASSERT_TRUE(store->Contains(Id(index))) << "step " << step;
  }
  EXPECT_EQ(store->stats().num_objects, live.size());
}

TEST_F(ObjectStoreTest, ZeroSizeObject) {
  auto store = MustCreate(1 << 10);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 1 << 10, 1);  // the arena is full
  auto buf = store->Create(Id(2), 0);   // still fits: it takes no arena bytes
  ASSERT_TRUE(buf.ok()) << buf.status().ToString();
  EXPECT_NE(buf->data, nullptr);
  EXPECT_EQ(buf->size, 0u);
  ASSERT_TRUE(store->Seal(Id(2)).ok());
  auto view = store->Get(Id(2));
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->size(), 0u);
  EXPECT_NE(view->data(), nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(view->data()) % 64, 0u);
  EXPECT_EQ(store->stats().bytes_in_use, 1u << 10);
  view->Reset();
  ASSERT_TRUE(store->Delete(Id(2)).ok());
  EXPECT_EQ(store->stats().num_objects, 1u);
}

TEST_F(ObjectStoreTest, DataIsSixtyFourByteAlignedAndDisjoint) {
  auto store = MustCreate(1 << 20);
  ASSERT_TRUE(store);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(store->arena()) % 4096, 0u);
  const size_t sizes[] = {1, 63, 64, 65, 127, 1000, 4097, 3, 100000};
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  uint32_t i = 0;
  for (size_t size : sizes) {
    auto buf = store->Create(Id(i++), size);
    ASSERT_TRUE(buf.ok());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf->data) % 64, 0u) << "size " << size;
    EXPECT_EQ(buf->offset % 64, 0u);
    ranges.push_back({buf->offset, buf->offset + size});
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t k = 1; k < ranges.size(); ++k) EXPECT_LE(ranges[k - 1].second, ranges[k].first);
  EXPECT_EQ(ObjectStore::kAlignment, 64u);
}

TEST_F(ObjectStoreTest, SegmentErrorsAreClear) {
  EXPECT_EQ(ObjectStore::Create("no-slash", 1 << 16).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ObjectStore::Create(NewName(), 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ObjectStore::Create(NewName(), 1 << 16, 0).status().code(),
            StatusCode::kInvalidArgument);

  auto store = MustCreate(100);  // rounded up to 64
  ASSERT_TRUE(store);
  EXPECT_EQ(store->capacity(), 128u);
  auto again = ObjectStore::Create(last_name_, 1 << 16);
  EXPECT_EQ(again.status().code(), StatusCode::kIoError);
  EXPECT_TRUE(Contains(again.status().message(), "already exists")) << again.status().message();

  auto missing = ObjectStore::Attach(NewName());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status().message(), "raylet")) << missing.status().message();

  // A segment that is not a store.
  const std::string raw = NewName();
  int fd = shm_open(raw.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 1 << 16), 0);
  close(fd);
  auto bogus = ObjectStore::Attach(raw);
  shm_unlink(raw.c_str());
  EXPECT_EQ(bogus.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Contains(bogus.status().message(), "bad magic")) << bogus.status().message();

  // An attached handle does not unlink; the owner does.
  {
    auto peer = ObjectStore::Attach(last_name_);
    ASSERT_TRUE(peer.ok());
  }
  EXPECT_EQ(ListShm(last_name_.substr(1)).size(), 1u);
  store.reset();
  EXPECT_TRUE(ListShm(last_name_.substr(1)).empty());
}

TEST_F(ObjectStoreTest, CrashedWriterLeavesAnUnsealedObjectTheRayletAborts) {
  auto store = MustCreate(1 << 16);
  ASSERT_TRUE(store);
  const std::string name = last_name_;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto peer = ObjectStore::Attach(name);
    if (!peer.ok()) _exit(2);
    if (!(*peer)->Create(Id(1), 1000).ok()) _exit(3);  // dies before Seal
    if (!(*peer)->Create(Id(2), 2000).ok()) _exit(4);
    if (!(*peer)->Seal(Id(2)).ok()) _exit(5);
    _exit(0);
  }
  ASSERT_EQ(WaitChild(pid), 0);
  EXPECT_EQ(store->Get(Id(1)).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->stats().num_unsealed, 1u);
  EXPECT_EQ(store->AbortCreatedBy(getpid()), 0u);  // not ours
  EXPECT_EQ(store->AbortCreatedBy(pid), 1u);
  ObjectStore::Stats st = store->stats();
  EXPECT_EQ(st.num_unsealed, 0u);
  EXPECT_EQ(st.num_objects, 1u);
  EXPECT_TRUE(store->Contains(Id(2)));  // its sealed objects stay
  EXPECT_EQ(st.bytes_in_use, 2048u);
}

TEST_F(ObjectStoreTest, DeathInsideCreateIsRecovered) {
  constexpr size_t kCapacity = 1 << 20;
  auto store = MustCreate(kCapacity);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 1000, 1);
  const std::string name = last_name_;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto peer = ObjectStore::Attach(name);
    if (!peer.ok()) _exit(2);
    ObjectStore::SetCrashPointForTesting(ObjectStore::CrashPoint::kCreateAfterAllocate);
    (void)(*peer)->Create(Id(2), kCapacity / 2);  // dies holding the lock, block taken
    _exit(3);
  }
  ASSERT_EQ(WaitChild(pid), ObjectStore::kCrashExitCode);
  // The next caller finds the lock's owner dead and rebuilds from the table.
  ObjectStore::Stats st = store->stats();
  EXPECT_EQ(st.num_objects, 1u);
  EXPECT_EQ(st.bytes_in_use, 1024u);
  EXPECT_FALSE(store->Contains(Id(2)));
  auto view = store->Get(Id(1));
  ASSERT_TRUE(view.ok());
  EXPECT_TRUE(Matches(view->data(), 1000, 1));
  // The half-allocated block is free again: everything else fits in one piece.
  auto rest = store->Create(Id(3), kCapacity - 1024);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
}

TEST_F(ObjectStoreTest, DeathInsideDeleteIsRecovered) {
  constexpr size_t kCapacity = 1 << 20;
  auto store = MustCreate(kCapacity);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 1000, 1);
  Put(store.get(), Id(2), 5000, 2);
  Put(store.get(), Id(3), 3000, 3);
  const std::string name = last_name_;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto peer = ObjectStore::Attach(name);
    if (!peer.ok()) _exit(2);
    ObjectStore::SetCrashPointForTesting(ObjectStore::CrashPoint::kDeleteAfterFree);
    (void)(*peer)->Delete(Id(2));  // dies with the block freed but the entry still there
    _exit(3);
  }
  ASSERT_EQ(WaitChild(pid), ObjectStore::kCrashExitCode);
  // The table wins: the object is still there and its bytes are reserved again.
  ObjectStore::Stats st = store->stats();
  EXPECT_EQ(st.num_objects, 3u);
  EXPECT_EQ(st.bytes_in_use, 1024u + 5056u + 3008u);
  for (uint32_t i = 1; i <= 3; ++i) {
    auto view = store->Get(Id(i));
    ASSERT_TRUE(view.ok());
    EXPECT_TRUE(Matches(view->data(), view->size(), i));
  }
  auto big = store->Create(Id(4), kCapacity - st.bytes_in_use);  // exactly the free space
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  ASSERT_TRUE(store->Abort(Id(4)).ok());
  for (uint32_t i = 1; i <= 3; ++i) ASSERT_TRUE(store->Delete(Id(i)).ok());
  EXPECT_EQ(store->stats().largest_free_block, kCapacity);
}

TEST_F(ObjectStoreTest, DeathInsideTheLastReleaseOfADeletedObjectFreesIt) {
  constexpr size_t kCapacity = 1 << 20;
  auto store = MustCreate(kCapacity);
  ASSERT_TRUE(store);
  Put(store.get(), Id(1), 1000, 1);
  auto view = store->Get(Id(1));
  ASSERT_TRUE(view.ok());
  ASSERT_TRUE(store->Delete(Id(1)).ok());  // pending: `view` pins it
  view->Leak();                            // the child drops this pin instead
  const std::string name = last_name_;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto peer = ObjectStore::Attach(name);
    if (!peer.ok()) _exit(2);
    ObjectStore::SetCrashPointForTesting(ObjectStore::CrashPoint::kDeleteAfterFree);
    (void)(*peer)->Release(Id(1));  // dies between the last unpin and the removal
    _exit(3);
  }
  ASSERT_EQ(WaitChild(pid), ObjectStore::kCrashExitCode);
  // Unpinned and deleted: nobody would ever free it, so recovery does.
  ObjectStore::Stats st = store->stats();
  EXPECT_EQ(st.num_objects, 0u);
  EXPECT_EQ(st.bytes_in_use, 0u);
  EXPECT_EQ(st.largest_free_block, kCapacity);
  EXPECT_TRUE(store->Create(Id(1), 10).ok());
}

// Threads of this process and a second process hammer the store at once; every object must
// read back intact and the accounting must end at zero.
TEST_F(ObjectStoreTest, ConcurrentThreadsAndProcesses) {
  auto store = MustCreate(8 << 20, 4096);
  ASSERT_TRUE(store);
  Put(store.get(), Id(0, /*node=*/0), 4096, 1234);  // read by everyone
  const std::string name = last_name_;
  constexpr int kIterations = 1500;

  // Returns the number of failures.
  auto work = [](ObjectStore* s, int32_t node) {
    int failures = 0;
    std::mt19937 rng(static_cast<uint32_t>(node));
    for (int i = 0; i < kIterations; ++i) {
      const ObjectId id = Id(static_cast<uint32_t>(i), node);
      const size_t size = rng() % 20000;
      auto buf = s->Create(id, size);
      if (!buf.ok()) {
        ++failures;
        continue;
      }
      Fill(buf->data, size, static_cast<uint32_t>(i * 31 + node));
      if (!s->Seal(id).ok()) ++failures;
      {
        auto view = s->Get(id);
        if (!view.ok() || !Matches(view->data(), size, static_cast<uint32_t>(i * 31 + node))) {
          ++failures;
        }
        auto shared = s->Get(Id(0, 0));
        if (!shared.ok() || !Matches(shared->data(), 4096, 1234)) ++failures;
        if (!s->Delete(id).ok()) ++failures;  // while pinned: freed when `view` goes
      }
      if (s->Contains(id)) ++failures;
    }
    return failures;
  };

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto peer = ObjectStore::Attach(name);
    if (!peer.ok()) _exit(2);
    std::thread t([&] { _exit(work(peer->get(), 100) == 0 ? 0 : 3); });
    t.join();
    _exit(4);
  }
  std::vector<int> failures(3, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] { failures[t] = work(store.get(), t + 1); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(WaitChild(pid), 0);
  for (int t = 0; t < 3; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  ObjectStore::Stats st = store->stats();
  EXPECT_EQ(st.num_objects, 1u);
  EXPECT_EQ(st.num_pinned, 0u);
  EXPECT_EQ(st.bytes_in_use, 4096u);
}

}  // namespace
}  // namespace raympi
