#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/shm_bus.h"
#include "common/shm_janitor.h"
#include "common/shm_segment.h"

namespace raympi {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr microseconds kLongTimeout = std::chrono::seconds(30);

bool ShmExists(const std::string& name) {  // name with the leading '/'
  struct stat st;
  return stat(("/dev/shm" + name).c_str(), &st) == 0;
}

// Deterministic content, so a torn or misplaced copy shows up.
std::string Pattern(size_t size, uint32_t seed) {
  std::string s(size, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < size; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// Creates a raw shm segment of `size` bytes (not a bus).
void MakeRawSegment(const std::string& name, size_t size) {
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << name;
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
  close(fd);
}

class ShmBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = "raympi-test-" + std::to_string(getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-";
  }

  // Every bus is destroyed by now (they are locals of the test body): nothing may remain.
  void TearDown() override {
    EXPECT_TRUE(ListShm(prefix_).empty()) << "leftover segment, e.g. " << ListShm(prefix_)[0];
    RemoveShmWithPrefix(prefix_);
  }

  std::string NewName() { return "/" + prefix_ + std::to_string(counter_++); }

  ShmBus::Options Small(size_t ring_bytes = 64 << 10, size_t large = 4 << 10, int slots = 4) {
    ShmBus::Options o;
    o.name = NewName();
    o.num_slots = slots;
    o.ring_bytes = ring_bytes;
    o.large_message_bytes = large;
    return o;
  }

  std::unique_ptr<ShmBus> MustCreate(const ShmBus::Options& o) {
    auto bus = ShmBus::Create(o);
    EXPECT_TRUE(bus.ok()) << bus.status().ToString();
    return bus.ok() ? std::move(*bus) : nullptr;
  }

  std::string prefix_;
  int counter_ = 0;
};

TEST_F(ShmBusTest, CreateAttachSendReceiveRoundTrip) {
  ShmBus::Options o = Small();
  auto owner = MustCreate(o);
  ASSERT_TRUE(owner);
  EXPECT_EQ(owner->num_slots(), 4);
  auto peer = ShmBus::Attach(o.name);
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  EXPECT_EQ((*peer)->num_slots(), 4);

  std::string msg;
  auto r = owner->TryReceive(1, &msg);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);

  ASSERT_TRUE((*peer)->Send(1, "hello").ok());
  ASSERT_TRUE((*peer)->Send(1, "").ok());  // empty messages are messages too
  ASSERT_TRUE(owner->Send(2, "to slot 2").ok());

  r = owner->TryReceive(1, &msg);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, "hello");
  r = owner->Receive(1, &msg, kLongTimeout);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, "");
  r = owner->TryReceive(1, &msg);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);

  r = (*peer)->Receive(2, &msg, kLongTimeout);  // the attached side receives as well
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, "to slot 2");
}

TEST_F(ShmBusTest, ManyMessagesArriveInOrder) {
  auto bus = MustCreate(Small(16 << 10, 2 << 10));  // small ring: the producer must wait
  ASSERT_TRUE(bus);
  constexpr int kCount = 20000;
  std::thread producer([&] {
    for (int i = 0; i < kCount; ++i) {
      Status st = bus->Send(0, std::to_string(i) + ":" + Pattern(i % 300, i));
      if (!st.ok()) ADD_FAILURE() << st.ToString();
    }
  });
  std::string msg;
  for (int i = 0; i < kCount; ++i) {
    auto r = bus->Receive(0, &msg, kLongTimeout);
    ASSERT_TRUE(r.ok() && *r) << "message " << i;
    ASSERT_EQ(msg, std::to_string(i) + ":" + Pattern(i % 300, i));
  }
  producer.join();
}

TEST_F(ShmBusTest, RingWrapsAroundWithMessagesLargerThanHalfTheRing) {
  constexpr size_t kRing = 4096;
  auto bus = MustCreate(Small(kRing, 4000));
  ASSERT_TRUE(bus);
  std::string msg;
  // Every message is > half the ring, so nearly every frame straddles the end.
  for (uint32_t i = 0; i < 300; ++i) {
    const std::string sent = Pattern(kRing / 2 + 1 + (i * 37) % 1900, i);
    ASSERT_TRUE(bus->Send(3, sent).ok());
    auto r = bus->TryReceive(3, &msg);
    ASSERT_TRUE(r.ok() && *r);
    ASSERT_EQ(msg, sent) << "message " << i;
  }
  // Same with a concurrent producer, so the ring is often full mid-wrap.
  std::thread producer([&] {
    for (uint32_t i = 0; i < 2000; ++i) {
      Status st = bus->Send(3, Pattern(kRing / 2 + 1 + (i * 53) % 1900, i));
      if (!st.ok()) ADD_FAILURE() << st.ToString();
    }
  });
  for (uint32_t i = 0; i < 2000; ++i) {
    auto r = bus->Receive(3, &msg, kLongTimeout);
    ASSERT_TRUE(r.ok() && *r);
    ASSERT_EQ(msg, Pattern(kRing / 2 + 1 + (i * 53) % 1900, i)) << "message " << i;
  }
  producer.join();
}

TEST_F(ShmBusTest, LargeMessageTravelsInSideSegmentAndLeavesNothing) {
  ShmBus::Options o = Small(64 << 10, 4 << 10);
  auto bus = MustCreate(o);
  ASSERT_TRUE(bus);
  const std::string side_prefix = o.name.substr(1) + "-m";
  const std::string big = Pattern(8 << 20, 7);

  ASSERT_TRUE(bus->Send(1, big).ok());
  EXPECT_EQ(ListShm(side_prefix).size(), 1u);  // really went through a side segment
  std::string msg;
  auto r = bus->Receive(1, &msg, kLongTimeout);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_TRUE(msg == big);
  EXPECT_TRUE(ListShm(side_prefix).empty());

  // The threshold itself stays inline; one byte more does not.
  ASSERT_TRUE(bus->Send(1, Pattern(o.large_message_bytes, 1)).ok());
  EXPECT_TRUE(ListShm(side_prefix).empty());
  ASSERT_TRUE(bus->Send(1, Pattern(o.large_message_bytes + 1, 2)).ok());
  EXPECT_EQ(ListShm(side_prefix).size(), 1u);
  r = bus->TryReceive(1, &msg);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, Pattern(o.large_message_bytes, 1));
  r = bus->TryReceive(1, &msg);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, Pattern(o.large_message_bytes + 1, 2));
  EXPECT_TRUE(ListShm(side_prefix).empty());
}

TEST_F(ShmBusTest, ReceiveTimesOutWhenEmpty) {
  auto bus = MustCreate(Small());
  ASSERT_TRUE(bus);
  std::string msg = "untouched";
  auto r = bus->Receive(0, &msg, microseconds(0));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);

  const auto start = Clock::now();
  r = bus->Receive(0, &msg, milliseconds(20));
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_GE(elapsed, milliseconds(20));  // never early
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_EQ(msg, "untouched");
}

TEST_F(ShmBusTest, WakeMakesBlockedReceiveReturn) {
  auto bus = MustCreate(Small());
  ASSERT_TRUE(bus);
  std::atomic<bool> started{false};
  StatusOr<bool> result = Status::Internal("not run");
  std::thread receiver([&] {
    std::string msg;
    started = true;
    result = bus->Receive(2, &msg, kLongTimeout);
  });
  while (!started) std::this_thread::yield();
  const auto start = Clock::now();
  bus->Wake(2);  // before or during the sleep, both must work (Wake is sticky)
  receiver.join();
  EXPECT_LT(Clock::now() - start, kLongTimeout / 2);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_FALSE(*result);

  // The Wake was consumed: the next Receive waits its full timeout.
  std::string msg;
  const auto again = Clock::now();
  auto r = bus->Receive(2, &msg, milliseconds(10));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_GE(Clock::now() - again, milliseconds(10));
}

TEST_F(ShmBusTest, WakeBeforeReceiveIsNotLost) {
  auto bus = MustCreate(Small());
  ASSERT_TRUE(bus);
  bus->Wake(1);
  std::string msg;
  const auto start = Clock::now();
  auto r = bus->Receive(1, &msg, kLongTimeout);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_LT(Clock::now() - start, kLongTimeout / 2);
  bus->Wake(1000);  // out of range: ignored, no crash
  bus->Wake(-1);
}

TEST_F(ShmBusTest, SendWakesBlockedReceive) {
  auto bus = MustCreate(Small());
  ASSERT_TRUE(bus);
  for (int round = 0; round < 50; ++round) {
    std::atomic<bool> started{false};
    std::string msg;
    StatusOr<bool> result = Status::Internal("not run");
    std::thread receiver([&] {
      started = true;
      result = bus->Receive(0, &msg, kLongTimeout);
    });
    while (!started) std::this_thread::yield();
    ASSERT_TRUE(bus->Send(0, "ping " + std::to_string(round)).ok());
    receiver.join();
    ASSERT_TRUE(result.ok() && *result);
    EXPECT_EQ(msg, "ping " + std::to_string(round));
  }
}

TEST_F(ShmBusTest, AwaitActivitySeesMessagesAndWakesAndOtherwiseWaitsItsBudget) {
  auto bus = MustCreate(Small());
  ASSERT_TRUE(bus);
  // Empty: waits the whole budget (never early) and says there is nothing.
  const auto start = Clock::now();
  EXPECT_FALSE(bus->AwaitActivity(1, milliseconds(5)));
  EXPECT_GE(Clock::now() - start, milliseconds(5));

  // A waiting message or a pending Wake answers at once, and neither is consumed.
  ASSERT_TRUE(bus->Send(1, "waiting").ok());
  EXPECT_TRUE(bus->AwaitActivity(1, kLongTimeout));
  EXPECT_TRUE(bus->AwaitActivity(1, kLongTimeout));
  std::string msg;
  auto r = bus->TryReceive(1, &msg);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, "waiting");
  bus->Wake(1);
  EXPECT_TRUE(bus->AwaitActivity(1, kLongTimeout));
  r = bus->Receive(1, &msg, kLongTimeout);  // the Wake is still there for Receive
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);

  // Another slot's message is not this slot's activity; one sent during the wait ends it.
  ASSERT_TRUE(bus->Send(2, "other slot").ok());
  EXPECT_FALSE(bus->AwaitActivity(1, milliseconds(2)));
  std::atomic<bool> started{false};
  std::thread sender([&] {
    while (!started) std::this_thread::yield();
    EXPECT_TRUE(bus->Send(1, "late").ok());
  });
  started = true;
  EXPECT_TRUE(bus->AwaitActivity(1, kLongTimeout));
  sender.join();
  r = bus->TryReceive(1, &msg);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, "late");

  EXPECT_FALSE(bus->AwaitActivity(1000, kLongTimeout));  // out of range: no wait, no crash
}

TEST_F(ShmBusTest, ManyProducersDeliverExactlyOnceInPerProducerOrder) {
  ShmBus::Options o = Small(8 << 10, 1 << 10);  // small ring: producers contend and wait
  auto bus = MustCreate(o);
  ASSERT_TRUE(bus);
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 5000;
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      auto peer = ShmBus::Attach(o.name);  // half the producers use their own mapping
      ShmBus* via = (p % 2 == 0 || !peer.ok()) ? bus.get() : peer->get();
      for (int i = 0; i < kPerProducer; ++i) {
        // Every 500th message goes through a side segment; order must still hold.
        size_t pad = i % 500 == 499 ? o.large_message_bytes + 100 : i % 64;
        Status st =
            via->Send(1, std::to_string(p) + " " + std::to_string(i) + " " + std::string(pad, 'x'));
        if (!st.ok()) ADD_FAILURE() << st.ToString();
      }
    });
  }
  std::vector<int> next(kProducers, 0);
  std::string msg;
  for (int n = 0; n < kProducers * kPerProducer; ++n) {
    auto r = bus->Receive(1, &msg, kLongTimeout);
    ASSERT_TRUE(r.ok() && *r) << "after " << n << " messages";
    int p = -1, i = -1;
    ASSERT_EQ(sscanf(msg.c_str(), "%d %d", &p, &i), 2) << msg.substr(0, 40);
    ASSERT_TRUE(p >= 0 && p < kProducers);
    ASSERT_EQ(i, next[p]) << "producer " << p;  // in order, no loss, no duplicate
    ++next[p];
  }
  for (auto& t : producers) t.join();
  for (int p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], kPerProducer);
  std::string extra;
  auto r = bus->TryReceive(1, &extra);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST_F(ShmBusTest, ProducerBlockedOnFullRingResumesWhenConsumerDrains) {
  auto bus = MustCreate(Small(4096, 1024));
  ASSERT_TRUE(bus);
  // A 1000-byte message takes a 1008-byte frame: four fit in 4096 bytes, a fifth does not.
  for (uint32_t i = 0; i < 4; ++i) ASSERT_TRUE(bus->Send(0, Pattern(1000, i)).ok());
  std::atomic<bool> done{false};
  std::thread producer([&] {
    EXPECT_TRUE(bus->Send(0, Pattern(1000, 4)).ok());
    done = true;
  });
  // Not synchronisation: only a chance for a wrong implementation to finish early.
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_FALSE(done);
  std::string msg;
  auto r = bus->TryReceive(0, &msg);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, Pattern(1000, 0));
  producer.join();  // returns only if draining woke the producer
  EXPECT_TRUE(done);
  for (uint32_t i = 1; i <= 4; ++i) {
    r = bus->TryReceive(0, &msg);
    ASSERT_TRUE(r.ok() && *r);
    EXPECT_EQ(msg, Pattern(1000, i));
  }
}

TEST_F(ShmBusTest, ForkedProcessDeliversToParent) {
  ShmBus::Options o = Small(16 << 10, 4 << 10);  // small ring: the child blocks on the parent
  auto bus = MustCreate(o);
  ASSERT_TRUE(bus);
  constexpr int kCount = 2000;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: no gtest assertions here, report through the exit code.
    int code = 0;
    {
      auto peer = ShmBus::Attach(o.name);
      if (!peer.ok()) _exit(2);
      for (int i = 0; i < kCount && code == 0; ++i) {
        if (!(*peer)->Send(3, "child " + std::to_string(i)).ok()) code = 3;
      }
      if (code == 0 && !(*peer)->Send(3, Pattern(2 << 20, 99)).ok()) code = 4;
    }  // detaching must not unlink the parent's segment
    _exit(code);
  }
  std::string msg;
  for (int i = 0; i < kCount; ++i) {
    auto r = bus->Receive(3, &msg, kLongTimeout);
    ASSERT_TRUE(r.ok() && *r) << "message " << i;
    ASSERT_EQ(msg, "child " + std::to_string(i));
  }
  auto r = bus->Receive(3, &msg, kLongTimeout);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_TRUE(msg == Pattern(2 << 20, 99));
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(ShmExists(o.name));
}

// Returns the scheduler state letter of `pid` from /proc (e.g. 'S' sleeping), or 0.
char ProcessState(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : 0;
}

TEST_F(ShmBusTest, ProducerKilledWhileBlockedDoesNotWedgeMailbox) {
  ShmBus::Options o = Small(4096, 1024);
  auto bus = MustCreate(o);
  ASSERT_TRUE(bus);
  for (uint32_t i = 0; i < 4; ++i) ASSERT_TRUE(bus->Send(0, Pattern(1000, i)).ok());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto peer = ShmBus::Attach(o.name);
    if (!peer.ok()) _exit(2);
    char c = 'r';
    if (write(fds[1], &c, 1) != 1) _exit(3);
    (*peer)->Send(0, Pattern(1000, 9));  // ring full: blocks holding the producer lock
    _exit(4);
  }
  close(fds[1]);
  char c = 0;
  ASSERT_EQ(read(fds[0], &c, 1), 1);
  close(fds[0]);
  // Best effort: kill it once it sleeps in Send, i.e. while it owns the robust mutex.
  const auto deadline = Clock::now() + std::chrono::seconds(2);
  while (ProcessState(pid) != 'S' && Clock::now() < deadline) std::this_thread::yield();
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFSIGNALED(status));

  std::string msg;
  for (uint32_t i = 0; i < 4; ++i) {
    auto r = bus->TryReceive(0, &msg);
    ASSERT_TRUE(r.ok() && *r);
    EXPECT_EQ(msg, Pattern(1000, i));
  }
  ASSERT_TRUE(bus->Send(0, "after the crash").ok());  // would hang on a non-robust lock
  auto r = bus->TryReceive(0, &msg);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(msg, "after the crash");
  r = bus->TryReceive(0, &msg);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST_F(ShmBusTest, CreateFailsWhenNameExists) {
  ShmBus::Options o = Small();
  auto first = MustCreate(o);
  ASSERT_TRUE(first);
  auto second = ShmBus::Create(o);
  ASSERT_FALSE(second.ok());
  const std::string& m = second.status().message();
  EXPECT_NE(m.find(o.name), std::string::npos) << m;
  EXPECT_NE(m.find("/dev/shm"), std::string::npos) << m;
  EXPECT_NE(m.find("stale"), std::string::npos) << m;
  // The failed Create must not have removed the existing segment.
  EXPECT_TRUE(ShmExists(o.name));
  ASSERT_TRUE(first->Send(0, "still works").ok());
  std::string msg;
  auto r = first->TryReceive(0, &msg);
  ASSERT_TRUE(r.ok() && *r);
}

TEST_F(ShmBusTest, AttachOfMissingNameFails) {
  auto bus = ShmBus::Attach(NewName());
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.status().code(), StatusCode::kNotFound);
}

TEST_F(ShmBusTest, AttachRejectsForeignOrTruncatedSegments) {
  const std::string tiny = NewName();
  MakeRawSegment(tiny, 16);
  auto bus = ShmBus::Attach(tiny);
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bus.status().message().find("too small"), std::string::npos);

  const std::string zeros = NewName();
  MakeRawSegment(zeros, 1 << 16);
  bus = ShmBus::Attach(zeros);
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bus.status().message().find("magic"), std::string::npos);

  // A real bus cut short (header intact, mailboxes missing).
  ShmBus::Options o = Small();
  auto owner = MustCreate(o);
  ASSERT_TRUE(owner);
  int fd = shm_open(o.name.c_str(), O_RDWR, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, 4096), 0);
  close(fd);
  bus = ShmBus::Attach(o.name);
  ASSERT_FALSE(bus.ok());
  EXPECT_EQ(bus.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bus.status().message().find("too small"), std::string::npos);

  shm_unlink(tiny.c_str());
  shm_unlink(zeros.c_str());
}

TEST_F(ShmBusTest, SlotOutOfRangeIsAnError) {
  auto bus = MustCreate(Small());
  ASSERT_TRUE(bus);
  std::string msg;
  for (int slot : {-1, 4, 1000}) {
    Status st = bus->Send(slot, "x");
    ASSERT_FALSE(st.ok());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("slot " + std::to_string(slot)), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("num_slots 4"), std::string::npos) << st.message();
    auto r = bus->TryReceive(slot, &msg);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    r = bus->Receive(slot, &msg, milliseconds(1));
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
  // Oversized messages to a bad slot must not leave a side segment behind.
  EXPECT_FALSE(bus->Send(9, Pattern(1 << 20, 0)).ok());
}

TEST_F(ShmBusTest, InvalidOptionsAreRejected) {
  ShmBus::Options o = Small();
  o.name = "no-leading-slash";
  EXPECT_EQ(ShmBus::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.name = "/a/b";
  EXPECT_EQ(ShmBus::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = Small();
  o.num_slots = 0;
  EXPECT_EQ(ShmBus::Create(o).status().code(), StatusCode::kInvalidArgument);
  o = Small();
  o.ring_bytes = o.large_message_bytes;  // cannot hold one maximal inline frame
  EXPECT_EQ(ShmBus::Create(o).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ShmBusTest, CreatorDestructorUnlinksSegment) {
  ShmBus::Options o = Small();
  auto owner = MustCreate(o);
  ASSERT_TRUE(owner);
  EXPECT_TRUE(ShmExists(o.name));
  {
    auto peer = ShmBus::Attach(o.name);
    ASSERT_TRUE(peer.ok());
    // A large message nobody receives: its side segment dies with the bus.
    ASSERT_TRUE((*peer)->Send(0, Pattern(1 << 20, 3)).ok());
  }
  EXPECT_TRUE(ShmExists(o.name));  // an attached bus does not unlink
  EXPECT_EQ(ListShm(o.name.substr(1) + "-m").size(), 1u);
  owner.reset();
  EXPECT_FALSE(ShmExists(o.name));
  EXPECT_TRUE(ListShm(o.name.substr(1) + "-m").empty());
  EXPECT_EQ(ShmBus::Attach(o.name).status().code(), StatusCode::kNotFound);
}

TEST_F(ShmBusTest, RemoveShmWithPrefixRemovesOnlyMatches) {
  const std::string a = "/" + prefix_ + "a-";
  const std::string b = "/" + prefix_ + "b-";
  MakeRawSegment(a + "1", 64);
  MakeRawSegment(a + "2", 64);
  MakeRawSegment(b + "1", 64);
  RemoveShmWithPrefix(a.substr(1));
  EXPECT_FALSE(ShmExists(a + "1"));
  EXPECT_FALSE(ShmExists(a + "2"));
  EXPECT_TRUE(ShmExists(b + "1"));
  RemoveShmWithPrefix(b);  // a leading '/' is tolerated
  EXPECT_FALSE(ShmExists(b + "1"));
}

TEST_F(ShmBusTest, JobEndIsSeenByEveryAttachedProcessAndAbandonedIsFinal) {
  ShmBus::Options o = Small();
  auto bus = MustCreate(o);
  ASSERT_NE(bus, nullptr);
  auto other = ShmBus::Attach(o.name);
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  EXPECT_EQ((*other)->job_end(), ShmBus::JobEnd::kRunning);
  bus->MarkJobEnd(ShmBus::JobEnd::kAbandoned);
  EXPECT_EQ((*other)->job_end(), ShmBus::JobEnd::kAbandoned);
  bus->MarkJobEnd(ShmBus::JobEnd::kNormal);  // a late normal Shutdown does not undo it
  EXPECT_EQ((*other)->job_end(), ShmBus::JobEnd::kAbandoned);
}

TEST(ShmJanitorTest, RayletPidIsReadFromASegmentNameWithOrWithoutTheSlash) {
  EXPECT_EQ(RayletPidOfSegment("/raympi-p1234-abcd-n0"), 1234);
  EXPECT_EQ(RayletPidOfSegment("raympi-p77-abcd-n3-store"), 77);
  EXPECT_EQ(RayletPidOfSegment("/raympi-test-bus"), 0);
  EXPECT_EQ(RayletPidOfSegment("/raympi-p-abcd"), 0);
  EXPECT_EQ(RayletPidOfSegment("/other-raympi-p12-x"), 0);
}

}  // namespace
}  // namespace raympi
