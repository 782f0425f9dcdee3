// ObjectManager (the raylet's object plane): two nodes, each with a real ObjectStore, wired
// through a message queue that the test delivers, and FakeRmaReaders whose reads land only when
// the test says so. Time is a fake clock. Nothing sleeps, nothing races.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/frame.h"
#include "common/shm_segment.h"
#include "objects/fake_rma_reader.h"
#include "objects/fake_spill_storage.h"
#include "objects/object_manager.h"
#include "objects/spill_manager.h"

namespace raympi {
namespace {

constexpr size_t kMiB = 1 << 20;
constexpr int kProcessSlot = 5;  // a worker of node 0
constexpr int kOtherProcessSlot = 6;

ObjectId Id(uint32_t index) {
  ObjectId id;
  id.owner_node = 1;
  id.owner_slot = 3;
  id.owner_pid = 4242;
  id.index = index;
  return id;
}
rpc::Address Owner() { return MakeAddress(1, 3); }

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

bool Has(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Copies out of another node's real store, pinned there, as SameHostReader does for a node of
// this host.
class StorePins : public SourcePins {
 public:
  StorePins(int node, ObjectStore* store) : node_(node), store_(store) {}
  Status CopyFromSource(int node, const ObjectId& id, uint8_t* dest, uint64_t size) override {
    ++calls;
    if (node != node_) return Status::NotFound("not a node of this host");
    StatusOr<ObjectView> pin = store_->TryGet(id);
    if (!pin.ok()) return pin.status();
    if (pin->size() != size) return Status::InvalidArgument("another size there");
    std::memcpy(dest, pin->data(), size);
    return Status::Ok();
  }
  int calls = 0;

 private:
  int node_;
  ObjectStore* store_;
};

class ObjectManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = "raympi-test-objmgr-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-";
  }

  void TearDown() override {
    for (auto& m : om_) m.reset();
    pins_.reset();
    for (auto& m : spill_) m.reset();
    for (auto& s : store_) s.reset();
    const std::vector<std::string> left = ListShm(prefix_);
    EXPECT_TRUE(left.empty()) << "leftover segment " << left[0];
    for (const std::string& n : left) shm_unlink(("/" + n).c_str());
  }

  static ObjectManagerConfig SmallChunks() {
    ObjectManagerConfig config;
    config.chunk_bytes = kMiB;
    config.max_chunks_in_flight = 4;
    config.store_full_wait = std::chrono::seconds(5);
    return config;
  }

  // Two nodes; each reader sees the other node's arena as that node's window.
  void Build(size_t capacity0 = 32 * kMiB, size_t capacity1 = 32 * kMiB,
             ObjectManagerConfig config = SmallChunks()) {
    const size_t capacity[2] = {capacity0, capacity1};
    for (int n = 0; n < 2; ++n) {
      auto store = ObjectStore::Create("/" + prefix_ + std::to_string(n), capacity[n], 256);
      ASSERT_TRUE(store.ok()) << store.status().ToString();
      store_[n] = std::move(*store);
    }
    for (int n = 0; n < 2; ++n) {
      reader_[n].AddNode(1 - n, store_[1 - n]->arena(), store_[1 - n]->capacity());
      om_[n] = std::make_unique<ObjectManager>(
          n, store_[n].get(), &reader_[n], [this](const rpc::Envelope& e) { queue_.push_back(e); },
          config, [this] { return clock_; });
    }
  }

  // Both nodes spill into fake storage (after Build).
  void EnableSpill(SpillConfig config = {}) {
    for (int n = 0; n < 2; ++n) {
      spill_[n] = std::make_unique<SpillManager>(store_[n].get(), &spill_storage_[n], config);
      om_[n]->SetSpillManager(spill_[n].get());
    }
  }

  // Node 0 pins node 1's objects in node 1's store itself (after Build).
  void EnableSourcePins() {
    pins_ = std::make_unique<StorePins>(1, store_[1].get());
    om_[0]->SetSourcePins(pins_.get());
  }

  // A process of node 0 asks its raylet for room; returns the reply.
  rpc::MakeRoomReply MakeRoom(uint64_t bytes) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(0, kProcessSlot);
    *e.mutable_dst() = MakeAddress(0, kRayletSlot);
    e.set_request_id(42);
    e.mutable_make_room()->set_bytes(bytes);
    om_[0]->Handle(e);
    DeliverAll();
    for (auto it = to_processes_.rbegin(); it != to_processes_.rend(); ++it) {
      if (it->has_make_room_reply() && it->request_id() == 42) return it->make_room_reply();
    }
    ADD_FAILURE() << "no MakeRoomReply";
    return {};
  }

  void Put(int node, const ObjectId& id, size_t size, uint32_t seed) {
    auto buf = store_[node]->Create(id, size);
    ASSERT_TRUE(buf.ok()) << buf.status().ToString();
    Fill(buf->data, buf->size, seed);
    ASSERT_TRUE(store_[node]->Seal(id).ok());
  }

  void Fetch(int slot, const ObjectId& id, int from_node, uint64_t size, uint64_t request_id = 1,
             bool pin = false, std::optional<uint64_t> offset_hint = std::nullopt) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(0, slot);
    *e.mutable_dst() = MakeAddress(0, kRayletSlot);
    e.set_request_id(request_id);
    rpc::FetchObject* m = e.mutable_fetch_object();
    m->set_object_id(id.Binary());
    m->set_node(from_node);
    m->set_size(size);
    *m->mutable_owner() = Owner();
    m->set_pin_for_requester(pin);
    if (offset_hint) m->set_offset_hint(*offset_hint);
    om_[0]->Handle(e);
  }

  // Fills and seals an object on `node`; returns where the store put it (the creator's hints).
  MutableBuffer PutAndTell(int node, const ObjectId& id, size_t size, uint32_t seed) {
    auto buf = store_[node]->Create(id, size);
    EXPECT_TRUE(buf.ok()) << buf.status().ToString();
    if (!buf.ok()) return {};
    Fill(buf->data, buf->size, seed);
    EXPECT_TRUE(store_[node]->Seal(id).ok());
    return *buf;
  }

  // A process of node 0 asks for `made` (on node 1) with every hint its creator gave.
  void FetchWithHints(const MutableBuffer& made, uint64_t request_id = 1) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(0, kProcessSlot);
    *e.mutable_dst() = MakeAddress(0, kRayletSlot);
    e.set_request_id(request_id);
    rpc::FetchObject* m = e.mutable_fetch_object();
    m->set_object_id(made.id.Binary());
    m->set_node(1);
    m->set_size(made.size);
    *m->mutable_owner() = Owner();
    m->set_offset_hint(made.offset);
    m->set_slot_hint(made.table_slot);
    m->set_serial_hint(made.serial);
    om_[0]->Handle(e);
  }

  // Exactly one ObjectFetched reached the process, a success, and node 0 holds the object's
  // bytes (`seed` as Put and PutAndTell fill them).
  void ExpectOneGoodFetch(const ObjectId& id, size_t size, uint32_t seed) {
    ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
    EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
    auto view = store_[0]->Get(id);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    EXPECT_TRUE(Matches(view->data(), size, seed));
  }

  // Node 0 pulls one-sided: it reads node 1's table too (after Build with one_sided_pulls).
  void ExposeTables() { reader_[0].AddTable(1, store_[1]->table(), store_[1]->table_bytes()); }

  void Free(int node, const std::vector<std::string>& ids) {
    rpc::Envelope e;
    *e.mutable_src() = Owner();
    *e.mutable_dst() = MakeAddress(node, kRayletSlot);
    for (const std::string& id : ids) e.mutable_free_objects()->add_object_ids(id);
    om_[node]->Handle(e);
  }

  // Delivers one queued message: to a raylet's manager (through `tamper_`, which may change or
  // drop it), or into `to_processes_`. Returns false when the queue is empty.
  bool DeliverOne() {
    if (queue_.empty()) return false;
    rpc::Envelope e = std::move(queue_.front());
    queue_.pop_front();
    if (e.dst().slot() != kRayletSlot) {
      to_processes_.push_back(e);
      return true;
    }
    ++raylet_messages_[e.body_case()];
    if (tamper_ && !tamper_(e)) return true;
    om_[e.dst().node()]->Handle(e);
    return true;
  }
  void DeliverAll() {
    while (DeliverOne()) {
    }
  }

  // Runs both nodes until nothing moves: messages delivered, reads landed, ticks idle.
  void Pump() {
    for (int round = 0; round < 1000; ++round) {
      DeliverAll();
      size_t landed = reader_[0].CompleteAll() + reader_[1].CompleteAll();
      bool busy = om_[0]->Tick();
      busy = om_[1]->Tick() || busy;
      if (queue_.empty() && landed == 0 && !busy) return;
    }
    FAIL() << "the object plane did not settle in 1000 rounds";
  }

  // The ObjectFetched replies that reached processes, in order.
  std::vector<rpc::ObjectFetched> Fetched(int slot) const {
    std::vector<rpc::ObjectFetched> out;
    for (const rpc::Envelope& e : to_processes_) {
      if (e.has_object_fetched() && e.dst().node() == 0 && e.dst().slot() == slot) {
        out.push_back(e.object_fetched());
      }
    }
    return out;
  }
  int Locations() const {
    int n = 0;
    for (const rpc::Envelope& e : to_processes_) {
      if (e.has_object_location()) {
        EXPECT_EQ(e.dst().node(), Owner().node());
        EXPECT_EQ(e.dst().slot(), Owner().slot());
        EXPECT_EQ(e.object_location().node(), 0);
        ++n;
      }
    }
    return n;
  }
  int Sent(rpc::Envelope::BodyCase type) { return raylet_messages_[type]; }

  // Neither node holds anything for a pull any more: no pins, no buffers, no reads.
  void ExpectNothingHeld() {
    EXPECT_EQ(om_[0]->stats().pulls_in_flight, 0u);
    EXPECT_EQ(om_[1]->stats().objects_pinned_for_peers, 0u);
    EXPECT_EQ(store_[1]->stats().num_pinned, 0u);
    EXPECT_EQ(store_[0]->stats().num_unsealed, 0u);
    EXPECT_EQ(reader_[0].reads_in_flight(), 0u);
  }

  std::string prefix_;
  std::unique_ptr<ObjectStore> store_[2];
  FakeRmaReader reader_[2];
  FakeSpillStorage spill_storage_[2];
  std::unique_ptr<SpillManager> spill_[2];
  std::unique_ptr<StorePins> pins_;
  std::unique_ptr<ObjectManager> om_[2];
  std::deque<rpc::Envelope> queue_;
  std::vector<rpc::Envelope> to_processes_;
  std::map<int, int> raylet_messages_;
  std::function<bool(rpc::Envelope&)> tamper_;
  std::chrono::steady_clock::time_point clock_{std::chrono::hours(1)};
};

TEST_F(ObjectManagerTest, LocalObjectIsFetchedAtOnce) {
  Build();
  Put(0, Id(1), 1000, 7);
  Fetch(kProcessSlot, Id(1), 0, 1000, 42);
  ASSERT_EQ(queue_.size(), 1u);  // the reply, nothing sent to another raylet
  EXPECT_EQ(queue_.front().request_id(), 42u);
  DeliverAll();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_EQ(fetched[0].error(), "");
  EXPECT_EQ(fetched[0].object_id(), Id(1).Binary());
  EXPECT_EQ(om_[0]->stats().pulls_started, 0u);
}

TEST_F(ObjectManagerTest, RemotePullCopiesEveryChunkAndCleansUp) {
  Build();
  Put(1, Id(100), 3 * kMiB + 5, 1);      // so the object of interest is not at offset 0
  const size_t size = 6 * kMiB + 12345;  // 7 chunks, the last one short
  Put(1, Id(1), size, 99);

  Fetch(kProcessSlot, Id(1), 1, size);
  EXPECT_FALSE(om_[0]->Tick());  // waiting for the reply: nothing to poll
  DeliverAll();                  // PullRequest -> node 1, PullReply -> node 0, reads start
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
  EXPECT_EQ(Sent(rpc::Envelope::kPullReply), 1);
  EXPECT_EQ(om_[1]->stats().objects_pinned_for_peers, 1u);
  EXPECT_TRUE(om_[1]->Tick());                  // being read: the source keeps making MPI calls
  EXPECT_EQ(reader_[0].reads_in_flight(), 4u);  // the budget
  EXPECT_TRUE(om_[0]->Tick());                  // bytes moving: keep polling

  // Pipelined: each landed chunk lets the next one start.
  reader_[0].CompleteOldest(1);
  EXPECT_TRUE(om_[0]->Tick());
  EXPECT_EQ(reader_[0].reads_in_flight(), 4u);
  EXPECT_EQ(reader_[0].started().size(), 5u);
  EXPECT_TRUE(Fetched(kProcessSlot).empty());

  Pump();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_EQ(fetched[0].error(), "");
  EXPECT_EQ(reader_[0].max_in_flight_seen(), 4u);
  ASSERT_EQ(reader_[0].started().size(), 7u);
  auto view1 = store_[1]->Get(Id(1));
  ASSERT_TRUE(view1.ok());
  uint64_t expected_offset = view1->offset();
  for (const auto& read : reader_[0].started()) {  // contiguous chunks of chunk_bytes
    EXPECT_EQ(read.node, 1);
    EXPECT_EQ(read.offset, expected_offset);
    expected_offset += read.bytes;
  }
  EXPECT_EQ(expected_offset, view1->offset() + size);
  view1->Reset();

  auto view = store_[0]->Get(Id(1));
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->size(), size);
  EXPECT_TRUE(Matches(view->data(), size, 99));
  EXPECT_EQ(Locations(), 1);
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 1);
  view->Reset();
  ExpectNothingHeld();
  EXPECT_FALSE(om_[1]->Tick());  // the source is idle again
  EXPECT_FALSE(om_[0]->Tick());

  ObjectManagerStats stats = om_[0]->stats();
  EXPECT_EQ(stats.pulls_started, 1u);
  EXPECT_EQ(stats.pulls_completed, 1u);
  EXPECT_EQ(stats.pulls_failed, 0u);
  EXPECT_EQ(stats.bytes_pulled, size);
  EXPECT_EQ(om_[1]->stats().pulls_served, 1u);
  EXPECT_EQ(stats.messages_rejected + om_[1]->stats().messages_rejected, 0u);
  EXPECT_TRUE(Has(stats.ToString(), "1 completed"));

  // Now local: a second fetch is answered at once.
  Fetch(kOtherProcessSlot, Id(1), 1, size);
  Pump();
  EXPECT_EQ(Fetched(kOtherProcessSlot).size(), 1u);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
}

// Issue 7 (cross-node Get latency): a requester that asks for it gets the object pinned for it
// with its offset, so its Get needs no store lookup; the pin is its to release.
TEST_F(ObjectManagerTest, PinForRequesterHandsAPinOverAfterAPull) {
  Build();
  Put(1, Id(1), 2 * kMiB + 3, 5);
  Fetch(kProcessSlot, Id(1), 1, 2 * kMiB + 3, 1, /*pin=*/true);
  Pump();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_EQ(fetched[0].error(), "");
  ASSERT_TRUE(fetched[0].pinned());
  EXPECT_EQ(fetched[0].size(), 2 * kMiB + 3);
  EXPECT_EQ(store_[0]->stats().num_pinned, 1u);  // held for the requester, nobody else
  auto adopted = store_[0]->AdoptPin(Id(1), fetched[0].offset(), fetched[0].size());
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_TRUE(Matches(adopted->data(), adopted->size(), 5));
  // The pin keeps a freed object until the requester lets go, as any view does.
  Free(0, {Id(1).Binary()});
  EXPECT_EQ(store_[0]->stats().num_objects, 1u);
  adopted->Reset();
  EXPECT_EQ(store_[0]->stats().num_objects, 0u);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, PinForRequesterOfALocalObjectAndOnlyWhenAsked) {
  Build();
  Put(0, Id(1), 1000, 7);
  Fetch(kProcessSlot, Id(1), 0, 1000, 1, /*pin=*/false);
  Fetch(kOtherProcessSlot, Id(1), 0, 1000, 2, /*pin=*/true);
  DeliverAll();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_FALSE(Fetched(kProcessSlot)[0].pinned());
  ASSERT_EQ(Fetched(kOtherProcessSlot).size(), 1u);
  rpc::ObjectFetched pinned = Fetched(kOtherProcessSlot)[0];
  ASSERT_TRUE(pinned.pinned());
  EXPECT_EQ(store_[0]->stats().num_pinned, 1u);
  auto view = store_[0]->Get(Id(1));
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(pinned.offset(), view->offset());
  EXPECT_EQ(pinned.size(), 1000u);
  view->Reset();
  ASSERT_TRUE(store_[0]->Release(Id(1)).ok());  // the requester's release
  EXPECT_EQ(store_[0]->stats().num_pinned, 0u);
}

TEST_F(ObjectManagerTest, FailedFetchHandsNoPinOver) {
  Build();
  Fetch(kProcessSlot, Id(7), 1, 1000, 1, /*pin=*/true);  // not on node 1
  Pump();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_NE(fetched[0].error(), "");
  EXPECT_FALSE(fetched[0].pinned());
  EXPECT_EQ(store_[0]->stats().num_pinned, 0u);
  ExpectNothingHeld();
}

// Issue 7 (cross-node Get latency): with the creator's offset in the FetchObject, the puller
// reads at once, beside the PullRequest; the reply only confirms.
TEST_F(ObjectManagerTest, EarlyReadsAtTheCreatorsOffsetAreNotDoneTwice) {
  Build();
  Put(1, Id(100), 3 * kMiB + 5, 1);  // so the object of interest is not at offset 0
  Put(1, Id(1), 3 * kMiB, 99);
  const uint64_t offset = store_[1]->Get(Id(1))->offset();
  Fetch(kProcessSlot, Id(1), 1, 3 * kMiB, 1, false, offset);
  EXPECT_EQ(reader_[0].reads_in_flight(), 3u);  // before any message was delivered
  reader_[0].CompleteAll();
  EXPECT_FALSE(om_[0]->Tick());  // all landed; the reply decides
  EXPECT_TRUE(Fetched(kProcessSlot).empty());
  Pump();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_EQ(fetched[0].error(), "");
  EXPECT_EQ(reader_[0].started().size(), 3u);
  EXPECT_EQ(reader_[0].started().front().offset, offset);
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 3 * kMiB, 99));
  EXPECT_EQ(om_[0]->stats().early_reads, 1u);
  EXPECT_EQ(om_[0]->stats().early_misses, 0u);
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 1);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, EarlyReadsAtAWrongOffsetAreDoneAgainOnceLanded) {
  Build();
  Put(1, Id(100), 3 * kMiB + 5, 1);
  Put(1, Id(1), 3 * kMiB, 99);
  const uint64_t wrong = store_[1]->Get(Id(100))->offset();
  Fetch(kProcessSlot, Id(1), 1, 3 * kMiB, 1, false, wrong);
  EXPECT_EQ(reader_[0].reads_in_flight(), 3u);
  reader_[0].CompleteOldest(1);
  DeliverAll();  // the reply names another offset while two early reads are still in flight
  EXPECT_EQ(reader_[0].started().size(), 3u);  // nothing new until they have landed
  reader_[0].CompleteAll();
  Pump();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_EQ(fetched[0].error(), "");
  ASSERT_EQ(reader_[0].started().size(), 6u);
  EXPECT_EQ(reader_[0].started()[3].offset, store_[1]->Get(Id(1))->offset());
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 3 * kMiB, 99));
  EXPECT_EQ(om_[0]->stats().early_misses, 1u);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, EarlyReadsOfAnObjectSpilledSinceAreDoneAgain) {
  Build(8 * kMiB, 8 * kMiB);
  EnableSpill();
  Put(1, Id(1), 6 * kMiB, 7);
  const uint64_t offset = store_[1]->Get(Id(1))->offset();
  ASSERT_TRUE(spill_[1]->MakeRoom(8 * kMiB).ok());  // spilled: its bytes there are gone
  ASSERT_FALSE(store_[1]->Contains(Id(1)));
  Fetch(kProcessSlot, Id(1), 1, 6 * kMiB, 1, false, offset);
  Pump();  // restored at the source, maybe at the same offset: read again all the same
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_EQ(fetched[0].error(), "");
  EXPECT_EQ(reader_[0].started().size(), 10u);  // 4 early (the budget), then all 6 again
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 6 * kMiB, 7));
  EXPECT_EQ(om_[0]->stats().early_misses, 1u);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, AnErrorReplyAfterEarlyReadsFailsOnceTheyLanded) {
  Build();
  Put(1, Id(100), kMiB, 1);
  Fetch(kProcessSlot, Id(7), 1, kMiB, 1, false, 0);  // id 7 is not there; offset 0 is in range
  EXPECT_EQ(reader_[0].reads_in_flight(), 1u);
  DeliverAll();
  EXPECT_TRUE(Fetched(kProcessSlot).empty());  // its buffer still receives bytes
  reader_[0].CompleteAll();
  om_[0]->Tick();
  DeliverAll();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_TRUE(Has(fetched[0].error(), "freed or lost")) << fetched[0].error();
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 0);  // the source pinned nothing
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, AnOffsetHintOutsideTheWindowIsNotUsed) {
  Build();
  Put(1, Id(1), kMiB, 3);
  Fetch(kProcessSlot, Id(1), 1, kMiB, 1, false, 32 * kMiB - 64);
  EXPECT_EQ(reader_[0].reads_in_flight(), 0u);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), kMiB, 3));
  EXPECT_EQ(om_[0]->stats().early_reads, 0u);
}

TEST_F(ObjectManagerTest, TwoWaitersShareOnePull) {
  Build();
  Put(1, Id(1), 2 * kMiB, 5);
  Fetch(kProcessSlot, Id(1), 1, 2 * kMiB, 10);
  Fetch(kOtherProcessSlot, Id(1), 1, 2 * kMiB, 20);
  Pump();
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
  EXPECT_EQ(reader_[0].started().size(), 2u);  // the bytes moved once
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  ASSERT_EQ(Fetched(kOtherProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_EQ(Fetched(kOtherProcessSlot)[0].error(), "");
  for (const rpc::Envelope& e : to_processes_) {  // each reply carries its request id
    if (e.has_object_fetched()) {
      EXPECT_EQ(e.request_id(), e.dst().slot() == kProcessSlot ? 10u : 20u);
    }
  }
  EXPECT_EQ(om_[0]->stats().pulls_started, 1u);
  EXPECT_EQ(Locations(), 1);
}

TEST_F(ObjectManagerTest, PullsShareTheReadBudgetInTurn) {
  ObjectManagerConfig config = SmallChunks();
  config.max_chunks_in_flight = 2;
  Build(32 * kMiB, 32 * kMiB, config);
  Put(1, Id(1), 4 * kMiB, 1);
  Put(1, Id(2), 4 * kMiB, 2);
  const uint64_t offset1 = store_[1]->Get(Id(1))->offset();
  Fetch(kProcessSlot, Id(1), 1, 4 * kMiB);
  Fetch(kProcessSlot, Id(2), 1, 4 * kMiB);
  DeliverAll();
  // Object 1's reply came first and took the whole budget; from then on the two alternate.
  while (reader_[0].CompleteOldest(1) == 1) om_[0]->Tick();
  Pump();
  std::string order;
  for (const auto& read : reader_[0].started()) {
    const bool first = read.offset >= offset1 && read.offset < offset1 + 4 * kMiB;
    order += first ? '1' : '2';
  }
  EXPECT_EQ(order, "11121222");
  EXPECT_EQ(reader_[0].max_in_flight_seen(), 2u);
  ASSERT_EQ(Fetched(kProcessSlot).size(), 2u);
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 4 * kMiB, 1));
  EXPECT_TRUE(Matches(store_[0]->Get(Id(2))->data(), 4 * kMiB, 2));
}

TEST_F(ObjectManagerTest, MissingObjectFailsWithTheSourcesWords) {
  Build();
  Fetch(kProcessSlot, Id(7), 1, 1000);
  Pump();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_TRUE(Has(fetched[0].error(),
                  "object " + Id(7).Hex() + " is not in node 1's store (freed or lost)"))
      << fetched[0].error();
  EXPECT_FALSE(store_[0]->Contains(Id(7)));
  EXPECT_EQ(store_[0]->stats().num_objects, 0u);  // the buffer was aborted
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 0);   // nothing was pinned
  EXPECT_EQ(Locations(), 0);
  EXPECT_EQ(om_[0]->stats().pulls_failed, 1u);
  ExpectNothingHeld();

  // A failed pull is forgotten: the next fetch tries again.
  Put(1, Id(7), 1000, 3);
  Fetch(kProcessSlot, Id(7), 1, 1000);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 2u);
  EXPECT_EQ(Fetched(kProcessSlot)[1].error(), "");
}

TEST_F(ObjectManagerTest, FullStoreFailsAfterTheDeadline) {
  Build(2 * kMiB);
  Put(0, Id(50), 2 * kMiB, 1);  // node 0's store is full
  Put(1, Id(1), kMiB, 2);
  Fetch(kProcessSlot, Id(1), 1, kMiB);
  Pump();
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 0);
  EXPECT_TRUE(Fetched(kProcessSlot).empty());  // still waiting for room

  clock_ += std::chrono::seconds(4);
  Pump();
  EXPECT_TRUE(Fetched(kProcessSlot).empty());
  clock_ += std::chrono::seconds(2);
  Pump();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_TRUE(Has(fetched[0].error(), "(1048576 bytes)")) << fetched[0].error();
  EXPECT_TRUE(Has(fetched[0].error(), "capacity 2097152 bytes")) << fetched[0].error();
  EXPECT_TRUE(Has(fetched[0].error(), "stayed full for 5 s")) << fetched[0].error();
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 0);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, FullStorePullGoesOnWhenRoomIsMade) {
  Build(2 * kMiB);
  Put(0, Id(50), 2 * kMiB, 1);
  Put(1, Id(1), kMiB, 2);
  Fetch(kProcessSlot, Id(1), 1, kMiB);
  Pump();
  clock_ += std::chrono::seconds(3);
  Free(0, {Id(50).Binary()});
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), kMiB, 2));
}

// Copies by the reader: a process of node 0 is copying node 1's object into node 0's store
// itself (CREATED there) when another process asks the raylet for it.
TEST_F(ObjectManagerTest, AFetchWaitsForAProcesssOwnCopyAndEndsWithItsSeal) {
  Build();
  Put(1, Id(1), kMiB, 2);
  auto copy = store_[0]->Create(Id(1), kMiB);  // the process's copy, in progress
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  Fetch(kProcessSlot, Id(1), 1, kMiB, 1, /*pin=*/true);
  Pump();
  EXPECT_TRUE(Fetched(kProcessSlot).empty());  // waits; no error, no pull of its own
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 0);
  Fill(copy->data, kMiB, 2);
  ASSERT_TRUE(store_[0]->Seal(Id(1)).ok());
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Fetched(kProcessSlot)[0].pinned());
  EXPECT_EQ(Locations(), 0);  // the process that copied it tells the owner, not the raylet
  EXPECT_EQ(om_[0]->stats().pulls_completed, 0u);
  EXPECT_EQ(om_[0]->stats().pulls_in_flight, 0u);
  ASSERT_TRUE(store_[0]->Release(Id(1)).ok());  // the requester's pin
}

TEST_F(ObjectManagerTest, AFetchPullsItselfWhenTheProcesssCopyIsAborted) {
  Build();
  Put(1, Id(1), kMiB, 2);
  ASSERT_TRUE(store_[0]->Create(Id(1), kMiB).ok());
  Fetch(kProcessSlot, Id(1), 1, kMiB);
  Pump();
  EXPECT_TRUE(Fetched(kProcessSlot).empty());
  // The copy failed (or its process died and the raylet aborted what it had created).
  ASSERT_TRUE(store_[0]->Abort(Id(1)).ok());
  Pump();
  ExpectOneGoodFetch(Id(1), kMiB, 2);
  EXPECT_EQ(Locations(), 1);
  EXPECT_EQ(om_[0]->stats().pulls_completed, 1u);
}

TEST_F(ObjectManagerTest, AFetchThatMeetsACopyNeverSealedFailsAfterTheDeadline) {
  Build();
  Put(1, Id(1), kMiB, 2);
  ASSERT_TRUE(store_[0]->Create(Id(1), kMiB).ok());  // a process stopped mid-copy
  Fetch(kProcessSlot, Id(1), 1, kMiB);
  Pump();
  clock_ += std::chrono::seconds(6);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "did not finish within 5 s"))
      << Fetched(kProcessSlot)[0].error();
  EXPECT_EQ(om_[0]->stats().pulls_in_flight, 0u);
  ASSERT_TRUE(store_[0]->Abort(Id(1)).ok());  // still the stopped process's
}

TEST_F(ObjectManagerTest, AFreeWhileWaitingForAProcesssCopyDeletesThatCopy) {
  Build();
  Put(1, Id(1), kMiB, 2);
  auto copy = store_[0]->Create(Id(1), kMiB);
  ASSERT_TRUE(copy.ok());
  Fetch(kProcessSlot, Id(1), 1, kMiB);
  Pump();
  ASSERT_TRUE(store_[0]->Seal(Id(1)).ok());  // sealed, but the raylet has not looked yet
  Free(0, {Id(1).Binary()});
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "was freed"))
      << Fetched(kProcessSlot)[0].error();
  EXPECT_FALSE(store_[0]->Contains(Id(1)));
  EXPECT_EQ(store_[0]->stats().num_objects, 0u);
}

TEST_F(ObjectManagerTest, ARestoreThatMeetsAProcesssCopyWaitsForItsSeal) {
  Build(8 * kMiB);
  EnableSpill();
  Put(0, Id(1), 4 * kMiB, 1);
  Put(0, Id(2), 4 * kMiB, 2);
  ASSERT_TRUE(MakeRoom(4 * kMiB).room_made());
  ASSERT_TRUE(spill_[0]->IsSpilled(Id(1)));
  // A process that did not know of the spilled copy is copying it in from node 1.
  auto copy = store_[0]->Create(Id(1), 4 * kMiB);
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  Fetch(kProcessSlot, Id(1), 0, 4 * kMiB);
  Pump();
  EXPECT_TRUE(Fetched(kProcessSlot).empty());
  Fill(copy->data, 4 * kMiB, 1);
  ASSERT_TRUE(store_[0]->Seal(Id(1)).ok());
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_EQ(spill_[0]->stats().counters.restored_objects, 0u);
}

TEST_F(ObjectManagerTest, ObjectLargerThanTheStoreFailsAtOnce) {
  Build(2 * kMiB);
  Put(1, Id(1), 3 * kMiB, 2);
  Fetch(kProcessSlot, Id(1), 1, 3 * kMiB);
  DeliverAll();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "3145728")) << Fetched(kProcessSlot)[0].error();
}

TEST_F(ObjectManagerTest, FreeDuringTransferDrainsReadsThenFreesTheBuffer) {
  Build();
  Put(1, Id(1), 8 * kMiB, 4);
  Fetch(kProcessSlot, Id(1), 1, 8 * kMiB);
  DeliverAll();
  reader_[0].CompleteOldest(1);
  om_[0]->Tick();
  ASSERT_EQ(reader_[0].reads_in_flight(), 4u);

  Free(0, {Id(1).Binary()});
  // Reads into the buffer are still in flight: it must stay allocated, and no new read starts.
  EXPECT_EQ(store_[0]->stats().num_unsealed, 1u);
  EXPECT_TRUE(Fetched(kProcessSlot).empty());
  reader_[0].CompleteOldest(2);
  om_[0]->Tick();
  EXPECT_EQ(store_[0]->stats().num_unsealed, 1u);
  EXPECT_EQ(reader_[0].started().size(), 5u);

  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "freed while it was pulled"));
  EXPECT_EQ(store_[0]->stats().num_objects, 0u);
  EXPECT_EQ(store_[0]->stats().bytes_in_use, 0u);
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 1);
  EXPECT_EQ(Locations(), 0);
  ExpectNothingHeld();
  EXPECT_EQ(om_[0]->stats().messages_rejected + om_[1]->stats().messages_rejected, 0u);
}

TEST_F(ObjectManagerTest, FreeBeforeTheReplyAbandonsThePullCleanly) {
  Build();
  Put(1, Id(1), 2 * kMiB, 4);
  Fetch(kProcessSlot, Id(1), 1, 2 * kMiB);
  Free(0, {Id(1).Binary()});  // the PullRequest has not even been delivered
  ASSERT_EQ(Fetched(kProcessSlot).size(), 0u);
  Pump();  // node 1 pins and replies; the reply is dropped; the PullDone unpins
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "freed"));
  EXPECT_EQ(store_[0]->stats().num_objects, 0u);
  EXPECT_TRUE(reader_[0].started().empty());
  ExpectNothingHeld();
  EXPECT_EQ(om_[0]->stats().messages_rejected + om_[1]->stats().messages_rejected, 0u);
}

TEST_F(ObjectManagerTest, FreeAtTheSourceWhileServedKeepsBytesUntilPullDone) {
  Build();
  Put(1, Id(1), 2 * kMiB, 8);
  Fetch(kProcessSlot, Id(1), 1, 2 * kMiB);
  DeliverAll();  // pinned at node 1, reads in flight
  Free(1, {Id(1).Binary()});
  EXPECT_FALSE(store_[1]->Contains(Id(1)));
  EXPECT_EQ(store_[1]->stats().num_objects, 1u);  // delete-pending, still pinned
  Pump();
  EXPECT_EQ(Fetched(kProcessSlot).at(0).error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 2 * kMiB, 8));
  EXPECT_EQ(store_[1]->stats().num_objects, 0u);  // freed at the PullDone
}

TEST_F(ObjectManagerTest, ReadErrorFailsThePullAndFreesEverything) {
  Build();
  Put(1, Id(1), 6 * kMiB, 4);
  Fetch(kProcessSlot, Id(1), 1, 6 * kMiB);
  DeliverAll();
  reader_[0].CompleteOldest(1);
  reader_[0].FailOldest(1, Status::IoError("MPI_Rget completion: link down"));
  Pump();
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_TRUE(Has(fetched[0].error(), "link down")) << fetched[0].error();
  EXPECT_TRUE(Has(fetched[0].error(), "from node 1")) << fetched[0].error();
  EXPECT_LE(reader_[0].started().size(), 5u);  // no read started after the failure
  EXPECT_EQ(store_[0]->stats().num_objects, 0u);
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 1);
  EXPECT_EQ(om_[0]->stats().pulls_failed, 1u);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, ReadThatCannotStartFailsThePull) {
  Build();
  Put(1, Id(1), 2 * kMiB, 4);
  reader_[0].FailNextStart(Status::IoError("MPI_Rget: out of resources"));
  Fetch(kProcessSlot, Id(1), 1, 2 * kMiB);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "out of resources"));
  EXPECT_EQ(store_[0]->stats().num_objects, 0u);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, BadFetchRequestsGetAnErrorAtOnce) {
  Build();
  auto fetch_raw = [&](const std::string& id, int node, uint64_t size) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(0, kProcessSlot);
    e.mutable_fetch_object()->set_object_id(id);
    e.mutable_fetch_object()->set_node(node);
    e.mutable_fetch_object()->set_size(size);
    om_[0]->Handle(e);
    DeliverAll();
    EXPECT_FALSE(Fetched(kProcessSlot).empty());
    return Fetched(kProcessSlot).empty() ? std::string() : Fetched(kProcessSlot).back().error();
  };
  EXPECT_TRUE(Has(fetch_raw("short", 1, 10), "16 bytes"));
  EXPECT_TRUE(Has(fetch_raw(Id(1).Binary(), 1, 0), "size 0"));
  EXPECT_TRUE(Has(fetch_raw(Id(1).Binary(), 7, 10), "no object window for node 7"));
  EXPECT_TRUE(Has(fetch_raw(Id(1).Binary(), -1, 10), "no object window for node -1"));
  EXPECT_TRUE(Has(fetch_raw(Id(1).Binary(), 0, 10), "not in node 0's store"));
  EXPECT_TRUE(Has(fetch_raw(Id(1).Binary(), 1, 1ull << 40), "exceeds that node's whole store"));
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 0);
  EXPECT_EQ(store_[0]->stats().num_objects, 0u);
  EXPECT_GE(om_[0]->stats().messages_rejected, 5u);
}

TEST_F(ObjectManagerTest, CorruptPeerMessagesAreRejected) {
  Build();
  auto to = [&](int node, int from) {
    rpc::Envelope e;
    *e.mutable_src() = MakeAddress(from, kRayletSlot);
    *e.mutable_dst() = MakeAddress(node, kRayletSlot);
    return e;
  };
  // A PullRequest with a corrupt id: answered with an error, nothing pinned.
  rpc::Envelope request = to(1, 0);
  request.mutable_pull_request()->set_object_id("xyz");
  request.mutable_pull_request()->set_pull_id(77);
  om_[1]->Handle(request);
  ASSERT_EQ(queue_.size(), 1u);
  EXPECT_FALSE(queue_.front().pull_reply().error().empty());
  queue_.clear();
  // A PullRequest from a process, not a raylet.
  rpc::Envelope from_worker = request;
  from_worker.mutable_src()->set_slot(4);
  om_[1]->Handle(from_worker);
  EXPECT_TRUE(queue_.empty());
  // Replies and dones for pulls nobody made, an unknown message, a corrupt free.
  rpc::Envelope reply = to(0, 1);
  reply.mutable_pull_reply()->set_pull_id(12345);
  reply.mutable_pull_reply()->set_object_id(Id(1).Binary());
  reply.mutable_pull_reply()->set_size(10);
  om_[0]->Handle(reply);
  rpc::Envelope done = to(1, 0);
  done.mutable_pull_done()->set_pull_id(999);
  om_[1]->Handle(done);
  rpc::Envelope shutdown = to(0, 1);
  shutdown.mutable_shutdown();
  om_[0]->Handle(shutdown);
  Free(0, {"not an id", ""});
  EXPECT_TRUE(queue_.empty());
  EXPECT_EQ(om_[0]->stats().messages_rejected, 4u);
  EXPECT_EQ(om_[1]->stats().messages_rejected, 3u);
  EXPECT_EQ(store_[1]->stats().num_pinned, 0u);
}

// A real pull whose PullReply is changed on its way by `edit`: the pull must fail with
// `expected` in its error, free its buffer and unpin at the source.
class TamperedReplyTest : public ObjectManagerTest {
 protected:
  void RunTampered(const std::function<void(rpc::PullReply*)>& edit, const std::string& expected) {
    Build();
    Put(1, Id(1), 2 * kMiB, 4);
    tamper_ = [&](rpc::Envelope& e) {
      if (e.has_pull_reply()) edit(e.mutable_pull_reply());
      return true;
    };
    Fetch(kProcessSlot, Id(1), 1, 2 * kMiB);
    Pump();
    ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
    EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), expected))
        << Fetched(kProcessSlot)[0].error();
    EXPECT_TRUE(reader_[0].started().empty());  // nothing was read
    EXPECT_EQ(store_[0]->stats().num_objects, 0u);
    ExpectNothingHeld();
  }
};

TEST_F(TamperedReplyTest, OffsetBeyondTheWindow) {
  RunTampered([](rpc::PullReply* r) { r->set_offset(32 * kMiB - 100); },
              "outside node 1's window of 33554432 bytes");
}
TEST_F(TamperedReplyTest, OffsetThatWouldWrapAround) {
  RunTampered([](rpc::PullReply* r) { r->set_offset(~0ull - 10); }, "outside node 1's window");
}
TEST_F(TamperedReplyTest, SizeMismatch) {
  RunTampered([](rpc::PullReply* r) { r->set_size(r->size() + 1); },
              "it has 2097153 bytes there, but 2097152 were asked for");
}
TEST_F(TamperedReplyTest, AnotherObjectsId) {
  RunTampered([](rpc::PullReply* r) { r->set_object_id(Id(9).Binary()); },
              "answered with object " + Id(9).Hex());
}
TEST_F(TamperedReplyTest, TruncatedId) {
  RunTampered([](rpc::PullReply* r) { r->set_object_id("abc"); }, "invalid id of 3 bytes");
}

TEST_F(ObjectManagerTest, DuplicateReplyIsIgnoredAndThePullCompletes) {
  Build();
  Put(1, Id(1), 3 * kMiB, 6);
  tamper_ = [&](rpc::Envelope& e) {
    if (e.has_pull_reply()) {
      rpc::Envelope copy = e;
      om_[0]->Handle(copy);  // the same reply twice
    }
    return true;
  };
  Fetch(kProcessSlot, Id(1), 1, 3 * kMiB);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 3 * kMiB, 6));
  EXPECT_EQ(reader_[0].started().size(), 3u);
  EXPECT_EQ(om_[0]->stats().messages_rejected, 1u);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, DuplicatePullRequestKeepsOnePin) {
  Build();
  Put(1, Id(1), kMiB, 6);
  tamper_ = [&](rpc::Envelope& e) {
    if (e.has_pull_request()) {
      rpc::Envelope copy = e;
      om_[1]->Handle(copy);
    }
    return true;
  };
  Fetch(kProcessSlot, Id(1), 1, kMiB);
  Pump();
  EXPECT_EQ(Fetched(kProcessSlot).at(0).error(), "");
  EXPECT_EQ(om_[1]->stats().messages_rejected, 1u);
  ExpectNothingHeld();  // the single PullDone released the single pin
}

// ---- spilling (SpillManager attached, fake spill files) ------------------------------------

TEST_F(ObjectManagerTest, MakeRoomSpillsAndAFetchRestoresByteExact) {
  Build(8 * kMiB);
  EnableSpill();
  Put(0, Id(1), 4 * kMiB, 1);
  Put(0, Id(2), 4 * kMiB, 2);
  rpc::MakeRoomReply reply = MakeRoom(4 * kMiB);
  EXPECT_TRUE(reply.room_made());
  EXPECT_EQ(reply.error(), "");
  EXPECT_FALSE(store_[0]->Contains(Id(1)));  // the colder one went
  EXPECT_TRUE(spill_[0]->IsSpilled(Id(1)));
  // A process of the node fetches it: restored in place, no pull.
  Fetch(kProcessSlot, Id(1), 0, 4 * kMiB);
  DeliverAll();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 0);
  ASSERT_TRUE(store_[0]->Contains(Id(1)));
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 4 * kMiB, 1));
  EXPECT_EQ(spill_[0]->stats().counters.restored_objects, 1u);
}

TEST_F(ObjectManagerTest, APullOfASpilledObjectRestoresItAtTheSource) {
  Build(8 * kMiB, 8 * kMiB);
  EnableSpill();
  Put(1, Id(1), 6 * kMiB, 7);
  ASSERT_TRUE(spill_[1]->MakeRoom(8 * kMiB).ok());
  ASSERT_FALSE(store_[1]->Contains(Id(1)));
  Fetch(kProcessSlot, Id(1), 1, 6 * kMiB);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 6 * kMiB, 7));
  EXPECT_EQ(spill_[1]->stats().counters.restored_objects, 1u);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, APullIntoAFullStoreSpillsToMakeRoom) {
  Build(8 * kMiB, 8 * kMiB);
  EnableSpill();
  Put(0, Id(50), 8 * kMiB, 1);  // node 0 is full of an unpinned object
  Put(1, Id(1), 2 * kMiB, 2);
  Fetch(kProcessSlot, Id(1), 1, 2 * kMiB);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(spill_[0]->IsSpilled(Id(50)));
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 2 * kMiB, 2));
}

TEST_F(ObjectManagerTest, MakeRoomWithEverythingPinnedSaysWaitAndADiskErrorSaysWhy) {
  Build(8 * kMiB);
  EnableSpill();
  Put(0, Id(1), 6 * kMiB, 1);
  {
    auto pin = store_[0]->Get(Id(1));
    ASSERT_TRUE(pin.ok());
    rpc::MakeRoomReply reply = MakeRoom(4 * kMiB);
    EXPECT_FALSE(reply.room_made());
    EXPECT_EQ(reply.error(), "");  // nothing to spill now: the process waits for frees
  }
  spill_storage_[0].FailWrites("No space left on device");
  rpc::MakeRoomReply reply = MakeRoom(4 * kMiB);
  EXPECT_FALSE(reply.room_made());
  EXPECT_TRUE(Has(reply.error(), "No space left on device")) << reply.error();
  EXPECT_TRUE(store_[0]->Contains(Id(1)));  // nothing lost
}

TEST_F(ObjectManagerTest, FreeObjectsDeletesTheSpilledCopyAndItsFile) {
  Build(8 * kMiB);
  EnableSpill();
  Put(0, Id(1), 4 * kMiB, 1);
  ASSERT_TRUE(spill_[0]->MakeRoom(8 * kMiB).ok());
  ASSERT_EQ(spill_storage_[0].files().size(), 1u);
  Free(0, {Id(1).Binary()});
  EXPECT_TRUE(spill_storage_[0].files().empty());
  EXPECT_FALSE(spill_[0]->IsSpilled(Id(1)));
  Fetch(kProcessSlot, Id(1), 0, 4 * kMiB);
  DeliverAll();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "freed or lost"));
}

TEST_F(ObjectManagerTest, TickSpillsAboveTheThreshold) {
  Build(8 * kMiB);
  SpillConfig config;
  config.threshold = 0.5;
  config.min_batch_bytes = kMiB;
  EnableSpill(config);
  Put(0, Id(1), 3 * kMiB, 1);
  om_[0]->Tick();
  EXPECT_EQ(spill_[0]->stats().counters.spilled_objects, 0u);
  Put(0, Id(2), 3 * kMiB, 2);  // 6 of 8 MiB: above half
  om_[0]->Tick();
  EXPECT_TRUE(spill_[0]->IsSpilled(Id(1)));
  EXPECT_FALSE(spill_[0]->IsSpilled(Id(2)));
}

TEST_F(ObjectManagerTest, ARestoreWaitsForRoomWhileEverythingIsPinned) {
  Build(8 * kMiB);
  EnableSpill();
  Put(0, Id(1), 6 * kMiB, 1);
  ASSERT_TRUE(spill_[0]->MakeRoom(8 * kMiB).ok());
  Put(0, Id(2), 6 * kMiB, 2);
  {
    auto pin = store_[0]->Get(Id(2));  // the only other object is pinned: no room to restore
    ASSERT_TRUE(pin.ok());
    Fetch(kProcessSlot, Id(1), 0, 6 * kMiB);
    Fetch(kOtherProcessSlot, Id(1), 0, 6 * kMiB);
    Pump();
    EXPECT_TRUE(Fetched(kProcessSlot).empty());  // waiting, not failed
    clock_ += std::chrono::seconds(3);
    Pump();
    EXPECT_TRUE(Fetched(kProcessSlot).empty());
  }
  Pump();  // the pin is gone: object 2 is spilled, object 1 restored
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  ASSERT_EQ(Fetched(kOtherProcessSlot).size(), 1u);
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 6 * kMiB, 1));
  EXPECT_TRUE(spill_[0]->IsSpilled(Id(2)));
}

TEST_F(ObjectManagerTest, ARestoreThatFindsNoRoomFailsAfterTheDeadline) {
  Build(8 * kMiB);
  EnableSpill();
  Put(0, Id(1), 6 * kMiB, 1);
  ASSERT_TRUE(spill_[0]->MakeRoom(8 * kMiB).ok());
  Put(0, Id(2), 6 * kMiB, 2);
  auto pin = store_[0]->Get(Id(2));
  ASSERT_TRUE(pin.ok());
  Fetch(kProcessSlot, Id(1), 0, 6 * kMiB);
  Pump();
  clock_ += std::chrono::seconds(6);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "nothing left to spill"))
      << Fetched(kProcessSlot)[0].error();
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "stayed full for 5 s"))
      << Fetched(kProcessSlot)[0].error();
  EXPECT_EQ(store_[0]->stats(0).num_unsealed, 0u);
}

// Issue 7 (cross-node Get of 1 MiB): with the source's store reachable (a node of this host),
// the pull copies the object out of it, pinned there for the copy, with no message to or from
// the source raylet, and answers at once.
TEST_F(ObjectManagerTest, ACopyAtTheSourceNeedsNoMessageToItsRaylet) {
  Build();
  EnableSourcePins();
  Put(1, Id(100), 3 * kMiB + 5, 1);  // so the object of interest is not at offset 0
  const size_t size = 3 * kMiB + 7;  // within one burst: 4 chunks of 1 MiB
  Put(1, Id(1), size, 99);
  Fetch(kProcessSlot, Id(1), 1, size, 1, /*pin=*/true);
  EXPECT_EQ(pins_->calls, 1);
  EXPECT_EQ(store_[1]->stats().num_pinned, 0u);  // no pin outlives the call
  EXPECT_TRUE(reader_[0].started().empty());     // no read through the window
  DeliverAll();  // only the ObjectFetched and the owner's ObjectLocation
  auto fetched = Fetched(kProcessSlot);
  ASSERT_EQ(fetched.size(), 1u);
  EXPECT_EQ(fetched[0].error(), "");
  EXPECT_TRUE(fetched[0].pinned());
  auto view = store_[0]->AdoptPin(Id(1), fetched[0].offset(), fetched[0].size());
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_TRUE(Matches(view->data(), size, 99));
  view->Reset();
  EXPECT_EQ(Locations(), 1);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 0);
  EXPECT_EQ(Sent(rpc::Envelope::kPullReply), 0);
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 0);
  EXPECT_EQ(om_[0]->stats().copied_at_source, 1u);
  EXPECT_EQ(om_[0]->stats().pulls_completed, 1u);
  EXPECT_TRUE(Has(om_[0]->stats().ToString(), "1 copied at the source"));
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, AnObjectLargerThanOneBurstIsPulledThroughItsRaylet) {
  Build();
  EnableSourcePins();
  Put(1, Id(1), 4 * kMiB + 1, 6);  // more than 4 chunks of 1 MiB: would block the loop longer
  Fetch(kProcessSlot, Id(1), 1, 4 * kMiB + 1);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 4 * kMiB + 1, 6));
  EXPECT_EQ(pins_->calls, 0);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
  ExpectNothingHeld();
}

// A process of the source node holds its store's lock (it may be stopped there): the pull does
// not wait for it, it asks the source raylet.
TEST_F(ObjectManagerTest, ABusySourceStoreIsAskedThroughItsRaylet) {
  Build();
  EnableSourcePins();
  Put(1, Id(1), 2 * kMiB, 9);
  store_[1]->LockForTesting();
  Fetch(kProcessSlot, Id(1), 1, 2 * kMiB);
  store_[1]->UnlockForTesting();
  EXPECT_EQ(pins_->calls, 1);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 2 * kMiB, 9));
  EXPECT_EQ(om_[0]->stats().copied_at_source, 0u);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, ASpilledObjectIsPulledThroughItsRayletWhichRestoresIt) {
  Build(8 * kMiB, 8 * kMiB);
  EnableSpill();
  EnableSourcePins();
  Put(1, Id(1), 3 * kMiB, 7);
  ASSERT_TRUE(spill_[1]->MakeRoom(8 * kMiB).ok());
  ASSERT_FALSE(store_[1]->Contains(Id(1)));
  Fetch(kProcessSlot, Id(1), 1, 3 * kMiB);
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), 3 * kMiB, 7));
  EXPECT_EQ(pins_->calls, 1);
  EXPECT_EQ(om_[0]->stats().copied_at_source, 0u);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
  EXPECT_EQ(spill_[1]->stats().counters.restored_objects, 1u);
  ExpectNothingHeld();
}

TEST_F(ObjectManagerTest, AnotherSizeAtTheSourceLeavesTheErrorToItsRaylet) {
  Build();
  EnableSourcePins();
  Put(1, Id(1), 2 * kMiB, 3);
  Fetch(kProcessSlot, Id(1), 1, kMiB);  // the requester's size is wrong
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "2097152 bytes there, but 1048576"))
      << Fetched(kProcessSlot)[0].error();
  EXPECT_EQ(om_[0]->stats().copied_at_source, 0u);
  ExpectNothingHeld();
}

// A pull that waited for room is copied at the source once there is room, and answered then.
TEST_F(ObjectManagerTest, APullThatWaitedForRoomIsCopiedAtTheSource) {
  Build(2 * kMiB);
  EnableSourcePins();
  Put(0, Id(50), 2 * kMiB, 1);
  Put(1, Id(1), kMiB, 2);
  Fetch(kProcessSlot, Id(1), 1, kMiB);
  Pump();
  EXPECT_TRUE(Fetched(kProcessSlot).empty());
  Free(0, {Id(50).Binary()});
  om_[0]->Tick();  // room now: created, copied and answered in this pass
  DeliverAll();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_EQ(Fetched(kProcessSlot)[0].error(), "");
  EXPECT_TRUE(Matches(store_[0]->Get(Id(1))->data(), kMiB, 2));
  EXPECT_EQ(om_[0]->stats().copied_at_source, 1u);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 0);
}

// ---- one-sided pulls -----------------------------------------------------------------------

ObjectManagerConfig OneSided() {
  ObjectManagerConfig config;
  config.chunk_bytes = kMiB;
  config.max_chunks_in_flight = 4;
  config.one_sided_pulls = true;
  return config;
}

// With the creator's hints, the puller reads the bytes, then the table entry, and is done: no
// message to the source raylet at all (issue 7: an idle source raylet cannot be woken). An
// object of more chunks than the in-flight budget: the entry is read after the last one.
TEST_F(ObjectManagerTest, AOneSidedPullNeedsNoMessageToTheSourceRaylet) {
  Build(32 * kMiB, 32 * kMiB, OneSided());
  ExposeTables();
  Put(1, Id(100), 3 * kMiB + 5, 1);  // so the object of interest is not at offset 0
  const MutableBuffer made = PutAndTell(1, Id(1), 6 * kMiB, 99);
  FetchWithHints(made);
  EXPECT_EQ(reader_[0].reads_in_flight(), 4u);  // the budget
  reader_[0].CompleteAll();
  om_[0]->Tick();  // the last 2 chunks start
  EXPECT_EQ(reader_[0].entry_reads(), 0u);
  reader_[0].CompleteOldest(1);
  om_[0]->Tick();
  EXPECT_EQ(reader_[0].entry_reads(), 0u);  // not while a byte is still in flight
  reader_[0].CompleteAll();
  om_[0]->Tick();  // every byte landed: now the entry
  EXPECT_EQ(reader_[0].entry_reads(), 1u);
  EXPECT_TRUE(Fetched(kProcessSlot).empty());
  Pump();
  ExpectOneGoodFetch(Id(1), 6 * kMiB, 99);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 0);
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 0);
  EXPECT_EQ(om_[0]->stats().pulled_one_sided, 1u);
  EXPECT_EQ(om_[0]->stats().one_sided_misses, 0u);
  EXPECT_EQ(Locations(), 1);
  ExpectNothingHeld();
}

// The object is spilled at the source while its bytes are read, and another object takes its
// place: the bytes read are the other object's. The entry no longer holds it, so the puller asks
// the source raylet, which restores it, and reads it again: never the wrong bytes.
TEST_F(ObjectManagerTest, AOneSidedPullOfAnObjectReplacedMeanwhileAsksTheSourceRaylet) {
  Build(8 * kMiB, 8 * kMiB, OneSided());
  ExposeTables();
  EnableSpill();
  const MutableBuffer made = PutAndTell(1, Id(1), 3 * kMiB, 99);
  FetchWithHints(made);
  ASSERT_EQ(reader_[0].reads_in_flight(), 3u);
  ASSERT_TRUE(spill_[1]->MakeRoom(8 * kMiB).ok());
  ASSERT_FALSE(store_[1]->Contains(Id(1)));
  const MutableBuffer other = PutAndTell(1, Id(2), 3 * kMiB, 5);
  ASSERT_EQ(other.offset, made.offset);  // its bytes are where the reads look
  Pump();
  ExpectOneGoodFetch(Id(1), 3 * kMiB, 99);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 1);
  EXPECT_EQ(om_[0]->stats().pulled_one_sided, 0u);
  EXPECT_EQ(om_[0]->stats().one_sided_misses, 1u);
  EXPECT_EQ(reader_[0].started().size(), 6u);  // read twice
  ExpectNothingHeld();
}

// Freed at the source meanwhile: the entry says so, and the source raylet's answer is the error.
TEST_F(ObjectManagerTest, AOneSidedPullOfAnObjectFreedMeanwhileFailsWithTheSourcesAnswer) {
  Build(32 * kMiB, 32 * kMiB, OneSided());
  ExposeTables();
  const MutableBuffer made = PutAndTell(1, Id(1), kMiB, 3);
  FetchWithHints(made);
  Free(1, {Id(1).Binary()});
  Pump();
  ASSERT_EQ(Fetched(kProcessSlot).size(), 1u);
  EXPECT_TRUE(Has(Fetched(kProcessSlot)[0].error(), "not in node 1's store"))
      << Fetched(kProcessSlot)[0].error();
  EXPECT_FALSE(store_[0]->Contains(Id(1)));
  EXPECT_EQ(om_[0]->stats().one_sided_misses, 1u);
  ExpectNothingHeld();
}

// The object is replaced after its bytes landed but before the entry is read: the entry read
// must come after the bytes, and it sees the change.
TEST_F(ObjectManagerTest, AnObjectReplacedBetweenItsBytesAndItsEntryIsReadAgain) {
  Build(8 * kMiB, 8 * kMiB, OneSided());
  ExposeTables();
  EnableSpill();
  const MutableBuffer made = PutAndTell(1, Id(1), 2 * kMiB, 99);
  FetchWithHints(made);
  reader_[0].CompleteAll();  // the object's own bytes
  om_[0]->Tick();            // the entry read starts
  ASSERT_EQ(reader_[0].entry_reads(), 1u);
  ASSERT_TRUE(spill_[1]->MakeRoom(8 * kMiB).ok());
  const MutableBuffer other = PutAndTell(1, Id(2), 2 * kMiB, 5);
  ASSERT_EQ(other.table_slot == made.table_slot || other.offset == made.offset, true);
  Pump();
  ExpectOneGoodFetch(Id(1), 2 * kMiB, 99);
  EXPECT_EQ(om_[0]->stats().one_sided_misses, 1u);
  EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
  ExpectNothingHeld();
}

// An object that only moved in the table (a neighbour's delete shifted its entry back) is
// still where its bytes were read: the source raylet confirms it, nothing is read again.
TEST_F(ObjectManagerTest, AnEntryThatOnlyMovedKeepsTheBytesRead) {
  Build(32 * kMiB, 32 * kMiB, OneSided());
  ExposeTables();
  const MutableBuffer made = PutAndTell(1, Id(1), 2 * kMiB, 99);
  FetchWithHints(made);
  reader_[0].CompleteAll();
  om_[0]->Tick();  // the entry read starts; make the slot hold something else meanwhile
  uint8_t* entry = const_cast<uint8_t*>(store_[1]->table()) +
                   uint64_t{made.table_slot} * ObjectStore::kEntryBytes;
  uint8_t saved[ObjectStore::kEntryBytes];
  std::memcpy(saved, entry, sizeof(saved));
  std::memset(entry, 0, sizeof(saved));
  reader_[0].CompleteAll();
  std::memcpy(entry, saved, sizeof(saved));
  Pump();
  ExpectOneGoodFetch(Id(1), 2 * kMiB, 99);
  EXPECT_EQ(om_[0]->stats().one_sided_misses, 1u);
  EXPECT_EQ(reader_[0].started().size(), 2u);  // its 2 chunks, read once
  EXPECT_EQ(Sent(rpc::Envelope::kPullDone), 1);
  ExpectNothingHeld();
}

// A failed read of the entry is not the end: the source raylet is asked.
TEST_F(ObjectManagerTest, AFailedEntryReadAsksTheSourceRaylet) {
  Build(32 * kMiB, 32 * kMiB, OneSided());
  ExposeTables();
  const MutableBuffer made = PutAndTell(1, Id(1), kMiB, 8);
  FetchWithHints(made);
  reader_[0].CompleteAll();
  om_[0]->Tick();
  ASSERT_EQ(reader_[0].entry_reads(), 1u);
  reader_[0].FailOldest(1, Status::IoError("injected"));
  Pump();
  ExpectOneGoodFetch(Id(1), kMiB, 8);
  EXPECT_EQ(om_[0]->stats().one_sided_misses, 1u);
  ExpectNothingHeld();
}

// Without the entry hints, with a slot outside the table, or turned off: the source raylet is
// asked, and the bytes are read once.
TEST_F(ObjectManagerTest, WithoutHintsInRangeOrTurnedOffAPullAsksTheSourceRaylet) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    ObjectManagerConfig config = OneSided();
    config.one_sided_pulls = variant != 2;
    Build(32 * kMiB, 32 * kMiB, config);
    ExposeTables();
    MutableBuffer made = PutAndTell(1, Id(1), kMiB, 4);
    if (variant == 0) made.serial = 0;             // an older creator: no entry hints
    if (variant == 1) made.table_slot = 1u << 30;  // out of the table (the window's check)
    raylet_messages_.clear();
    FetchWithHints(made);
    Pump();
    ExpectOneGoodFetch(Id(1), kMiB, 4);
    EXPECT_EQ(Sent(rpc::Envelope::kPullRequest), 1);
    EXPECT_EQ(om_[0]->stats().pulled_one_sided, 0u);
    EXPECT_EQ(om_[0]->stats().one_sided_misses, 0u);
    EXPECT_EQ(reader_[0].entry_reads(), 0u);
    ExpectNothingHeld();
    for (auto& m : om_) m.reset();
    for (auto& st : store_) st.reset();
    reader_[0] = FakeRmaReader();
    reader_[1] = FakeRmaReader();
    to_processes_.clear();
  }
}

}  // namespace
}  // namespace raympi
