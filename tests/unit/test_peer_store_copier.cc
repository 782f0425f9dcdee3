// PeerStoreCopier: a process's copies out of another node's store of this host (copies by the
// reader): what it accepts as a peer, the copy and its pin, and every case that must leave the
// copy to the raylet (nothing copied, a clear code).
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "objects/arena_location.h"
#include "objects/object_store.h"
#include "objects/peer_store_copier.h"

namespace raympi {
namespace {

constexpr size_t kMiB = 1 << 20;
constexpr int kPeer = 1;

class PeerStoreCopierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "/raympi-p" + std::to_string(getpid()) + "-peer-copier-test";
    auto store = ObjectStore::Create(name_, 4 * kMiB, 64, /*prefault=*/false);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto where =
        DescribeArena(store_->name(), store_->arena_offset_in_segment(), store_->capacity());
    ASSERT_TRUE(where.ok()) << where.status().ToString();
    where_ = *where;
  }

  // A sealed object of `n` bytes of pattern `seed` in the peer's store, as its worker makes
  // it; where it lies (the creator's hints).
  StoredAt Make(const ObjectId& id, size_t n, uint8_t seed) {
    auto buf = store_->Create(id, n);
    EXPECT_TRUE(buf.ok()) << buf.status().ToString();
    if (!buf.ok()) return {};
    for (size_t i = 0; i < n; ++i) buf->data[i] = static_cast<uint8_t>(seed + i * 3);
    EXPECT_TRUE(store_->Seal(id).ok());
    return StoredAt{buf->offset, buf->table_slot, buf->serial};
  }
  static bool Holds(const std::vector<uint8_t>& dest, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; ++i) {
      if (dest[i] != static_cast<uint8_t>(seed + i * 3)) return false;
    }
    return true;
  }

  std::string name_;
  std::unique_ptr<ObjectStore> store_;
  ArenaLocation where_;
};

TEST_F(PeerStoreCopierTest, CopiesWithAndWithoutHintsAndKeepsNoPinThere) {
  PeerStoreCopier copier;
  const ObjectId id{1, 3, 77, 9};
  const StoredAt at = Make(id, 3000, 5);
  std::vector<uint8_t> dest(3000, 0);
  EXPECT_FALSE(copier.Knows(kPeer));
  EXPECT_EQ(copier.Copy(kPeer, id, 3000, at, dest.data()).code(), StatusCode::kNotFound);

  ASSERT_TRUE(copier.AddPeer(kPeer, where_));
  EXPECT_TRUE(copier.Knows(kPeer));
  EXPECT_FALSE(copier.AddPeer(kPeer, where_));  // described once
  ASSERT_TRUE(copier.Copy(kPeer, id, 3000, at, dest.data()).ok());
  EXPECT_TRUE(Holds(dest, 3000, 5));
  dest.assign(3000, 0);
  ASSERT_TRUE(copier.Copy(kPeer, id, 3000, std::nullopt, dest.data()).ok());
  EXPECT_TRUE(Holds(dest, 3000, 5));
  EXPECT_EQ(store_->stats().num_pinned, 0u);  // pinned for the copy only, if at all
}

TEST_F(PeerStoreCopierTest, AHintedCopyTakesNoLockAndChecksTheEntry) {
  PeerStoreCopier copier;
  ASSERT_TRUE(copier.AddPeer(kPeer, where_));
  const ObjectId id{1, 3, 77, 10};
  const StoredAt at = Make(id, 100, 1);
  std::vector<uint8_t> dest(100, 0);
  // That store's lock held (a process of that node in its critical section, or stopped there):
  // a hinted copy does not need it, a pinned one does not wait for it.
  store_->LockForTesting();
  EXPECT_TRUE(copier.Copy(kPeer, id, 100, at, dest.data()).ok());
  EXPECT_EQ(copier.Copy(kPeer, id, 100, std::nullopt, dest.data()).code(),
            StatusCode::kUnavailable);
  store_->UnlockForTesting();
  EXPECT_TRUE(Holds(dest, 100, 1));
  // Hints of another creation (the same id made again elsewhere), or of another size: refused.
  StoredAt stale = at;
  ++stale.serial;
  EXPECT_EQ(copier.Copy(kPeer, id, 100, stale, dest.data()).code(), StatusCode::kNotFound);
  EXPECT_EQ(copier.Copy(kPeer, id, 99, at, dest.data()).code(), StatusCode::kNotFound);
  EXPECT_EQ(copier.Copy(kPeer, id, 99, std::nullopt, dest.data()).code(),
            StatusCode::kInvalidArgument);
  // Hints outside that store: refused before any read.
  StoredAt far = at;
  far.offset = store_->capacity();
  EXPECT_EQ(copier.Copy(kPeer, id, 100, far, dest.data()).code(), StatusCode::kInvalidArgument);
  StoredAt no_slot = at;
  no_slot.table_slot = 1u << 30;
  EXPECT_EQ(copier.Copy(kPeer, id, 100, no_slot, dest.data()).code(), StatusCode::kInvalidArgument);
  // Freed (or spilled) there: its entry says so.
  ASSERT_TRUE(store_->Delete(id).ok());
  EXPECT_EQ(copier.Copy(kPeer, id, 100, at, dest.data()).code(), StatusCode::kNotFound);
  EXPECT_EQ(copier.Copy(kPeer, id, 100, std::nullopt, dest.data()).code(), StatusCode::kNotFound);
  // Made again under the same id at once: a new creation, not the one the hints name.
  const StoredAt again = Make(id, 100, 9);
  EXPECT_NE(again.serial, at.serial);
  EXPECT_EQ(copier.Copy(kPeer, id, 100, at, dest.data()).code(), StatusCode::kNotFound);
  ASSERT_TRUE(copier.Copy(kPeer, id, 100, again, dest.data()).ok());
  EXPECT_TRUE(Holds(dest, 100, 9));
  EXPECT_EQ(store_->stats().num_pinned, 0u);
}

TEST_F(PeerStoreCopierTest, AnObjectBeingWrittenOrAbsentIsLeftToTheRaylet) {
  PeerStoreCopier copier;
  ASSERT_TRUE(copier.AddPeer(kPeer, where_));
  const ObjectId id{1, 3, 77, 12};
  std::vector<uint8_t> dest(100, 0);
  EXPECT_EQ(copier.Copy(kPeer, id, 100, std::nullopt, dest.data()).code(), StatusCode::kNotFound);
  auto buf = store_->Create(id, 100);
  ASSERT_TRUE(buf.ok());
  const StoredAt at{buf->offset, buf->table_slot, buf->serial};
  EXPECT_EQ(copier.Copy(kPeer, id, 100, at, dest.data()).code(), StatusCode::kNotFound);
  EXPECT_EQ(copier.Copy(kPeer, id, 100, std::nullopt, dest.data()).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Abort(id).ok());
  // Another node: not a peer.
  EXPECT_EQ(copier.Copy(kPeer + 1, id, 100, at, dest.data()).code(), StatusCode::kNotFound);
}

TEST_F(PeerStoreCopierTest, ADescriptionOfAnotherHostOrANameOnlyIsRefused) {
  PeerStoreCopier copier;
  ArenaLocation other_host = where_;
  other_host.boot_id = "00000000-0000-0000-0000-000000000000";
  EXPECT_FALSE(copier.AddPeer(kPeer, other_host));
  ArenaLocation bad_name = where_;
  bad_name.segment = "no-slash";
  EXPECT_FALSE(copier.AddPeer(kPeer, bad_name));
  ArenaLocation empty = where_;
  empty.arena_bytes = 0;
  EXPECT_FALSE(copier.AddPeer(kPeer, empty));
  EXPECT_FALSE(copier.Knows(kPeer));
}

TEST_F(PeerStoreCopierTest, AStoreReplacedUnderTheSameNameIsNeverAttached) {
  PeerStoreCopier copier;
  ASSERT_TRUE(copier.AddPeer(kPeer, where_));
  // The peer's store goes and another one takes its name (a later job, say).
  store_.reset();
  auto other = ObjectStore::Create(name_, 4 * kMiB, 64, /*prefault=*/false);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  const ObjectId id{1, 3, 77, 11};
  auto buf = (*other)->Create(id, 10);
  ASSERT_TRUE(buf.ok());
  ASSERT_TRUE((*other)->Seal(id).ok());
  const StoredAt at{buf->offset, buf->table_slot, buf->serial};
  std::vector<uint8_t> dest(10, 0);
  EXPECT_EQ(copier.Copy(kPeer, id, 10, at, dest.data()).code(), StatusCode::kNotFound);
  EXPECT_EQ((*other)->stats().num_pinned, 0u);
  EXPECT_FALSE(copier.Knows(kPeer));  // not tried again: Gets of that node ask the raylet
}

TEST_F(PeerStoreCopierTest, ThreadsCopyAtOnceAndAttachTheStoreOnce) {
  PeerStoreCopier copier;
  ASSERT_TRUE(copier.AddPeer(kPeer, where_));
  constexpr int kThreads = 4;
  std::vector<StoredAt> at;
  for (int t = 0; t < kThreads; ++t) {
    at.push_back(Make(ObjectId{1, 3, 77, 100u + t}, 64 << 10, static_cast<uint8_t>(t)));
  }
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<uint8_t> dest(64 << 10);
      for (int round = 0; round < 50; ++round) {
        const int k = (t + round) % kThreads;
        const ObjectId id{1, 3, 77, 100u + static_cast<uint32_t>(k)};
        if (!copier.Copy(kPeer, id, dest.size(), at[k], dest.data()).ok() ||
            !Holds(dest, dest.size(), static_cast<uint8_t>(k))) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  EXPECT_EQ(store_->stats().num_pinned, 0u);
}

}  // namespace
}  // namespace raympi
