// SameHostReader: reads of another node's store on this host through a read-only mapping, the
// checks that decide whether a described segment is really this host's, and the fallback
// reader for every other node (a FakeRmaReader whose reads land when the test says so).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/frame.h"
#include "objects/fake_rma_reader.h"
#include "objects/object_manager.h"
#include "objects/object_store.h"
#include "objects/same_host_reader.h"

namespace raympi {
namespace {

constexpr size_t kMiB = 1 << 20;
constexpr int kPeer = 1;     // a node of this host
constexpr int kFarNode = 2;  // a node of another host: the fallback's

class SameHostReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "/raympi-p" + std::to_string(getpid()) + "-same-host-test";
    auto store = ObjectStore::Create(name_, 4 * kMiB, 64, /*prefault=*/false);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    far_.assign(kMiB, 0);
    for (size_t i = 0; i < far_.size(); ++i) far_[i] = static_cast<uint8_t>(i * 7);
    fallback_.AddNode(kFarNode, far_.data(), far_.size());
    auto where =
        DescribeArena(store_->name(), store_->arena_offset_in_segment(), store_->capacity());
    ASSERT_TRUE(where.ok()) << where.status().ToString();
    where_ = *where;
  }

  // Writes `n` bytes of pattern `seed` at `offset` of the peer's arena, as its worker would.
  void Write(uint64_t offset, size_t n, uint8_t seed) {
    for (size_t i = 0; i < n; ++i) store_->arena()[offset + i] = static_cast<uint8_t>(seed + i);
  }

  std::string name_;
  std::unique_ptr<ObjectStore> store_;
  std::vector<uint8_t> far_;
  FakeRmaReader fallback_;
  ArenaLocation where_;
};

TEST_F(SameHostReaderTest, ALocationRecordRoundTripsAndGarbageIsRefused) {
  const std::string record = where_.Encode();
  ASSERT_EQ(record.size(), ArenaLocation::kEncodedBytes);
  auto back = ArenaLocation::Decode(record);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->segment, where_.segment);
  EXPECT_EQ(back->arena_offset, where_.arena_offset);
  EXPECT_EQ(back->arena_bytes, where_.arena_bytes);
  EXPECT_EQ(back->device, where_.device);
  EXPECT_EQ(back->inode, where_.inode);
  EXPECT_EQ(back->boot_id, where_.boot_id);
  // A raylet that could not describe its arena sends zeros; a short record is refused too.
  EXPECT_FALSE(ArenaLocation::Decode(std::string(ArenaLocation::kEncodedBytes, '\0')).ok());
  EXPECT_FALSE(ArenaLocation::Decode(record.substr(0, 20)).ok());
  std::string truncated = record;
  truncated[8 + 32] = '\xff';  // the segment name's length runs past the record
  truncated[8 + 33] = '\xff';
  EXPECT_FALSE(ArenaLocation::Decode(truncated).ok());
}

TEST_F(SameHostReaderTest, ReadsAPeerOfThisHostThroughItsMapping) {
  SameHostReader reader(&fallback_);
  auto mapped = reader.AddPeer(kPeer, where_, /*populate=*/true);
  ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
  ASSERT_TRUE(*mapped);
  EXPECT_TRUE(reader.Maps(kPeer));
  EXPECT_FALSE(reader.Maps(kFarNode));
  EXPECT_EQ(*reader.WindowSize(kPeer), store_->capacity());

  Write(kMiB + 64, 3000, 11);
  std::vector<uint8_t> dest(3000, 0);
  auto handle = reader.StartRead(kPeer, kMiB + 64, dest.size(), dest.data());
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  EXPECT_EQ(reader.reads_in_flight(), 1u);    // landed, not yet polled
  EXPECT_EQ(fallback_.started().size(), 0u);  // MPI never asked
  auto done = reader.Poll(*handle);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(*done);
  EXPECT_EQ(reader.reads_in_flight(), 0u);
  for (size_t i = 0; i < dest.size(); ++i) ASSERT_EQ(dest[i], static_cast<uint8_t>(11 + i)) << i;
  EXPECT_EQ(reader.Poll(*handle).status().code(), StatusCode::kNotFound);

  // Bytes written after the mapping was made are seen: it is the same memory.
  Write(0, 16, 200);
  std::vector<uint8_t> again(16, 0);
  auto second = reader.StartRead(kPeer, 0, again.size(), again.data());
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(*reader.Poll(*second));
  EXPECT_EQ(again[15], static_cast<uint8_t>(215));
}

TEST_F(SameHostReaderTest, ARangeOutsideThePeersArenaIsRefusedWithoutCopying) {
  SameHostReader reader(&fallback_);
  ASSERT_TRUE(*reader.AddPeer(kPeer, where_, false));
  std::vector<uint8_t> dest(64, 0xab);
  auto past_end = reader.StartRead(kPeer, store_->capacity() - 32, 64, dest.data());
  EXPECT_EQ(past_end.status().code(), StatusCode::kInvalidArgument);
  auto overflow = reader.StartRead(kPeer, UINT64_MAX - 8, 64, dest.data());
  EXPECT_EQ(overflow.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(dest[0], 0xab);
  EXPECT_EQ(reader.reads_in_flight(), 0u);
}

TEST_F(SameHostReaderTest, OtherNodesGoThroughTheFallbackAndLandWhenItSays) {
  SameHostReader reader(&fallback_);
  ASSERT_TRUE(*reader.AddPeer(kPeer, where_, false));
  EXPECT_EQ(*reader.WindowSize(kFarNode), far_.size());
  EXPECT_EQ(reader.WindowSize(7).status().code(), StatusCode::kNotFound);

  std::vector<uint8_t> dest(100, 0);
  auto far = reader.StartRead(kFarNode, 10, dest.size(), dest.data());
  ASSERT_TRUE(far.ok()) << far.status().ToString();
  std::vector<uint8_t> near(8, 0);
  auto local = reader.StartRead(kPeer, 0, near.size(), near.data());
  ASSERT_TRUE(local.ok());
  EXPECT_NE(*far, *local);
  EXPECT_EQ(reader.reads_in_flight(), 2u);
  EXPECT_FALSE(*reader.Poll(*far));  // still in flight at the fallback
  EXPECT_TRUE(*reader.Poll(*local));
  fallback_.CompleteAll();
  EXPECT_TRUE(*reader.Poll(*far));
  EXPECT_EQ(reader.reads_in_flight(), 0u);
  EXPECT_EQ(dest[0], far_[10]);
  EXPECT_EQ(dest[99], far_[109]);
  EXPECT_EQ(reader.Poll(*far).status().code(), StatusCode::kNotFound);

  // A failed fallback read reports its error once, then the handle is gone.
  auto failing = reader.StartRead(kFarNode, 0, 10, dest.data());
  ASSERT_TRUE(failing.ok());
  fallback_.FailOldest(1, Status::IoError("MPI_Rget: broken"));
  EXPECT_EQ(reader.Poll(*failing).status().code(), StatusCode::kIoError);
  EXPECT_EQ(reader.Poll(*failing).status().code(), StatusCode::kNotFound);
}

TEST_F(SameHostReaderTest, ASegmentThatIsNotTheOneDescribedIsLeftToTheFallback) {
  SameHostReader reader(&fallback_);
  ArenaLocation other_file = where_;  // same name, another file (another host's /dev/shm)
  other_file.inode += 1;
  EXPECT_FALSE(*reader.AddPeer(kPeer, other_file, false));
  ArenaLocation other_kernel = where_;  // another machine
  other_kernel.boot_id = "00000000-0000-0000-0000-000000000000";
  EXPECT_FALSE(*reader.AddPeer(kPeer, other_kernel, false));
  ArenaLocation missing = where_;  // not in this /dev/shm at all
  missing.segment = name_ + "-gone";
  EXPECT_FALSE(*reader.AddPeer(kPeer, missing, false));
  ArenaLocation too_long = where_;  // larger than the file
  too_long.arena_bytes += 64 * kMiB;
  EXPECT_FALSE(*reader.AddPeer(kPeer, too_long, false));
  ArenaLocation unaligned = where_;
  unaligned.arena_offset += 64;
  EXPECT_FALSE(*reader.AddPeer(kPeer, unaligned, false));
  EXPECT_FALSE(reader.Maps(kPeer));

  // The fallback's window size (exchanged over MPI) must agree with the description.
  fallback_.AddNode(kPeer, store_->arena(), store_->capacity() / 2);
  EXPECT_FALSE(*reader.AddPeer(kPeer, where_, false));
  EXPECT_EQ(*reader.WindowSize(kPeer), store_->capacity() / 2);  // the fallback's
}

TEST_F(SameHostReaderTest, AMappingOutlivesItsStoreSoReadsOfALostNodeDoNotCrash) {
  SameHostReader reader(&fallback_);
  Write(128, 8, 42);
  ASSERT_TRUE(*reader.AddPeer(kPeer, where_, false));
  store_.reset();  // the peer's raylet is gone: its segment unlinked
  std::vector<uint8_t> dest(8, 0);
  auto handle = reader.StartRead(kPeer, 128, dest.size(), dest.data());
  ASSERT_TRUE(handle.ok());
  EXPECT_TRUE(*reader.Poll(*handle));
  EXPECT_EQ(dest[7], 49);
}

TEST_F(SameHostReaderTest, CopiesObjectsOutOfAMappedPeersStoreWithoutKeepingAPin) {
  SameHostReader reader(&fallback_);
  const ObjectId id{1, 3, 77, 9};
  auto buf = store_->Create(id, 1000);
  ASSERT_TRUE(buf.ok()) << buf.status().ToString();
  for (size_t i = 0; i < 1000; ++i) buf->data[i] = static_cast<uint8_t>(i * 3);
  ASSERT_TRUE(store_->Seal(id).ok());
  std::vector<uint8_t> dest(1000, 0);
  // Not mapped (yet): NotFound, nothing copied.
  EXPECT_EQ(reader.CopyFromSource(kPeer, id, dest.data(), 1000).code(), StatusCode::kNotFound);
  EXPECT_EQ(dest[999], 0);
  ASSERT_TRUE(*reader.AddPeer(kPeer, where_, false));

  ASSERT_TRUE(reader.CopyFromSource(kPeer, id, dest.data(), 1000).ok());
  for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(dest[i], static_cast<uint8_t>(i * 3)) << i;
  EXPECT_EQ(store_->stats().num_pinned, 0u);  // pinned for the copy only

  EXPECT_EQ(reader.CopyFromSource(kPeer, id, dest.data(), 999).code(),
            StatusCode::kInvalidArgument);
  store_->LockForTesting();  // a process of that node in its critical section (or stopped)
  EXPECT_EQ(reader.CopyFromSource(kPeer, id, dest.data(), 1000).code(), StatusCode::kUnavailable);
  store_->UnlockForTesting();
  EXPECT_EQ(reader.CopyFromSource(kFarNode, id, dest.data(), 1000).code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->Delete(id).ok());
  EXPECT_EQ(reader.CopyFromSource(kPeer, id, dest.data(), 1000).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->stats().num_objects, 0u);
}

TEST_F(SameHostReaderTest, AStoreReplacedUnderTheSameNameIsNotAttached) {
  SameHostReader reader(&fallback_);
  ASSERT_TRUE(*reader.AddPeer(kPeer, where_, false));
  // The peer's store goes and another one takes its name (a later job, say).
  store_.reset();
  auto other = ObjectStore::Create(name_, 4 * kMiB, 64, /*prefault=*/false);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  const ObjectId id{1, 3, 77, 10};
  ASSERT_TRUE((*other)->Create(id, 10).ok());
  ASSERT_TRUE((*other)->Seal(id).ok());
  std::vector<uint8_t> dest(10, 0);
  EXPECT_EQ(reader.CopyFromSource(kPeer, id, dest.data(), 10).code(), StatusCode::kNotFound);
  EXPECT_EQ((*other)->stats().num_pinned, 0u);
}

// The object plane over a SameHostReader: node 0 pulls from node 1's store on this host. The
// reads land inside StartRead, before the source's PullReply: the pull must still wait for the
// reply (pinned, unmoved) and read again when the object has moved.
class PullOverMappingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int n = 0; n < 2; ++n) {
      auto store = ObjectStore::Create(
          "/raympi-p" + std::to_string(getpid()) + "-same-host-pull" + std::to_string(n), 16 * kMiB,
          64, /*prefault=*/false);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      store_[n] = std::move(*store);
    }
    auto where = DescribeArena(store_[1]->name(), store_[1]->arena_offset_in_segment(),
                               store_[1]->capacity());
    ASSERT_TRUE(where.ok()) << where.status().ToString();
    reader_ = std::make_unique<SameHostReader>(&fallback_);
    ASSERT_TRUE(*reader_->AddPeer(1, *where, false));
    unused_.AddNode(0, store_[0]->arena(), store_[0]->capacity());
    ObjectManagerConfig config;
    config.chunk_bytes = kMiB;
    om_[0] = std::make_unique<ObjectManager>(
        0, store_[0].get(), reader_.get(), [this](const rpc::Envelope& e) { queue_.push_back(e); },
        config);
    om_[1] = std::make_unique<ObjectManager>(
        1, store_[1].get(), &unused_, [this](const rpc::Envelope& e) { queue_.push_back(e); },
        config);
  }

  // Node 1 holds `id`: `size` bytes of pattern `seed`; returns its offset.
  uint64_t Put(const ObjectId& id, size_t size, uint8_t seed) {
    auto buf = store_[1]->Create(id, size);
    EXPECT_TRUE(buf.ok()) << buf.status().ToString();
    for (size_t i = 0; i < size; ++i) buf->data[i] = static_cast<uint8_t>(seed + i * 13);
    EXPECT_TRUE(store_[1]->Seal(id).ok());
    return buf->offset;
  }

  // A process of node 0 fetches `id`; the raylets run until nothing moves. Returns the reply.
  rpc::ObjectFetched Fetch(const ObjectId& id, size_t size, std::optional<uint64_t> hint) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(0, 5);
    *e.mutable_dst() = MakeAddress(0, kRayletSlot);
    e.set_request_id(9);
    e.mutable_fetch_object()->set_object_id(id.Binary());
    e.mutable_fetch_object()->set_node(1);
    e.mutable_fetch_object()->set_size(size);
    if (hint) e.mutable_fetch_object()->set_offset_hint(*hint);
    om_[0]->Handle(e);
    rpc::ObjectFetched reply;
    bool replied = false;
    for (int round = 0; round < 100; ++round) {
      while (!queue_.empty()) {
        rpc::Envelope m = std::move(queue_.front());
        queue_.pop_front();
        if (m.dst().slot() != kRayletSlot) {
          if (m.has_object_fetched()) {
            reply = m.object_fetched();
            replied = true;
          }
          continue;
        }
        om_[m.dst().node()]->Handle(m);
      }
      const bool busy0 = om_[0]->Tick();
      const bool busy1 = om_[1]->Tick();
      const bool busy = busy0 || busy1;
      if (!busy && queue_.empty()) break;
    }
    EXPECT_TRUE(replied) << "no ObjectFetched";
    return reply;
  }

  bool Holds(const ObjectId& id, size_t size, uint8_t seed) {
    auto view = store_[0]->Get(id);
    if (!view.ok() || view->size() != size) return false;
    for (size_t i = 0; i < size; ++i) {
      if (view->data()[i] != static_cast<uint8_t>(seed + i * 13)) return false;
    }
    return true;
  }

  static ObjectId Id(uint32_t index) { return ObjectId{1, 3, 77, index}; }

  std::unique_ptr<ObjectStore> store_[2];
  FakeRmaReader fallback_;  // nodes of other hosts: none here
  FakeRmaReader unused_;    // node 1 pulls nothing
  std::unique_ptr<SameHostReader> reader_;
  std::unique_ptr<ObjectManager> om_[2];
  std::deque<rpc::Envelope> queue_;
};

TEST_F(PullOverMappingTest, EarlyReadsLandAtOnceAndThePullEndsWithTheReply) {
  const size_t size = 3 * kMiB + 100;
  const uint64_t offset = Put(Id(1), size, 5);
  const rpc::ObjectFetched reply = Fetch(Id(1), size, offset);
  EXPECT_EQ(reply.error(), "");
  EXPECT_TRUE(Holds(Id(1), size, 5));
  EXPECT_EQ(fallback_.started().size(), 0u);  // no MPI read
  EXPECT_EQ(om_[0]->stats().early_reads, 1u);
  EXPECT_EQ(om_[0]->stats().early_misses, 0u);
  EXPECT_EQ(om_[1]->stats().objects_pinned_for_peers, 0u);  // PullDone released the pin
  EXPECT_EQ(reader_->reads_in_flight(), 0u);
}

TEST_F(PullOverMappingTest, AWrongHintIsReadAgainFromWhereTheReplySays) {
  const size_t size = 2 * kMiB;
  Put(Id(7), 4 * kMiB, 99);  // other bytes where the hint points
  const uint64_t offset = Put(Id(2), size, 40);
  ASSERT_NE(offset, 0u);
  const rpc::ObjectFetched reply = Fetch(Id(2), size, uint64_t{0});
  EXPECT_EQ(reply.error(), "");
  EXPECT_TRUE(Holds(Id(2), size, 40));
  EXPECT_EQ(om_[0]->stats().early_misses, 1u);
  EXPECT_EQ(om_[1]->stats().objects_pinned_for_peers, 0u);
}

TEST_F(PullOverMappingTest, WithoutAHintTheReadsStartWithTheReply) {
  const size_t size = kMiB / 2 + 7;
  Put(Id(3), size, 200);
  const rpc::ObjectFetched reply = Fetch(Id(3), size, std::nullopt);
  EXPECT_EQ(reply.error(), "");
  EXPECT_TRUE(Holds(Id(3), size, 200));
  EXPECT_EQ(om_[0]->stats().early_reads, 0u);
  EXPECT_EQ(fallback_.started().size(), 0u);
}

TEST_F(PullOverMappingTest, WithSourceCopiesNothingGoesToTheSourceRaylet) {
  om_[0]->SetSourcePins(reader_.get());
  const size_t size = kMiB + 3;
  Put(Id(4), size, 17);
  const rpc::ObjectFetched reply = Fetch(Id(4), size, std::nullopt);
  EXPECT_EQ(reply.error(), "");
  EXPECT_TRUE(Holds(Id(4), size, 17));
  EXPECT_EQ(om_[0]->stats().copied_at_source, 1u);
  EXPECT_EQ(om_[1]->stats().pulls_served, 0u);
  EXPECT_EQ(store_[1]->stats().num_pinned, 0u);
}

}  // namespace
}  // namespace raympi
