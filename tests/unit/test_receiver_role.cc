#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "worker/receiver_role.h"

namespace raympi {
namespace {

using Clock = ReceiverRole::Clock;
using std::chrono::microseconds;

constexpr Clock::time_point kNever = Clock::time_point::max();
constexpr microseconds kNoGrace{0};
constexpr microseconds kLongGrace = std::chrono::hours(1);

// Holds the owner's mutex and counts bus wake-ups.
struct Fixture {
  explicit Fixture(microseconds grace) : role(grace, [this] { ++wakes; }) {}
  std::mutex mu;
  int wakes = 0;  // under mu
  ReceiverRole role;

  // Spins (yielding) until `pred` holds under mu: waits for another thread to reach a state,
  // with no sleep standing in for synchronisation.
  template <typename Pred>
  void AwaitState(const Pred& pred) {
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (pred()) return;
      }
      std::this_thread::yield();
    }
  }

  // Starts an io thread that waits for the role (IoAcquire, taking mu) and stores the answer.
  std::thread StartIo(std::atomic<bool>& got) {
    return std::thread([this, &got] {
      std::unique_lock<std::mutex> l(mu);
      got = role.IoAcquire(l);
    });
  }
};

TEST(ReceiverRoleTest, FreeRoleIsTakenAtOnceAndReleased) {
  Fixture f(kLongGrace);
  ReceiverRole::Seat seat;
  std::unique_lock<std::mutex> lock(f.mu);
  EXPECT_TRUE(f.role.free());
  EXPECT_TRUE(f.role.Acquire(
      lock, seat, [] { return false; }, kNever));
  EXPECT_TRUE(f.role.held_by(seat));
  f.role.Release(seat);
  EXPECT_TRUE(f.role.free());
  EXPECT_EQ(f.wakes, 0);
}

TEST(ReceiverRoleTest, AcquireReturnsFalseWhenAlreadyDone) {
  Fixture f(kNoGrace);
  ReceiverRole::Seat holder, other;
  std::unique_lock<std::mutex> lock(f.mu);
  ASSERT_TRUE(f.role.Acquire(
      lock, holder, [] { return false; }, kNever));
  EXPECT_FALSE(f.role.Acquire(
      lock, other, [] { return true; }, kNever));
  EXPECT_EQ(f.role.queued(), 0u);
  EXPECT_FALSE(other.queued);
}

TEST(ReceiverRoleTest, IoTakesAFreeRoleOnlyAfterTheGrace) {
  Fixture f(kNoGrace);
  std::unique_lock<std::mutex> lock(f.mu);
  EXPECT_TRUE(f.role.IoAcquire(lock));
  EXPECT_TRUE(f.role.held_by_io());
  EXPECT_FALSE(f.role.IoMustYield());
  f.role.IoRelease();
  EXPECT_TRUE(f.role.free());

  // With a long grace after a user release, the io thread does not take the role: it is still
  // free when the io thread is stopped.
  Fixture g(kLongGrace);
  ReceiverRole::Seat seat;
  std::atomic<bool> io_result{true};
  {
    std::unique_lock<std::mutex> glock(g.mu);
    ASSERT_TRUE(g.role.Acquire(
        glock, seat, [] { return false; }, kNever));
    g.role.Release(seat);
  }
  std::thread io = g.StartIo(io_result);
  g.AwaitState([&] { return g.role.io_waiting(); });
  // Take and release the role while the io thread waits: it must never get it.
  for (int i = 0; i < 100; ++i) {
    std::unique_lock<std::mutex> glock(g.mu);
    ASSERT_TRUE(g.role.Acquire(
        glock, seat, [] { return false; }, kNever));
    g.role.Release(seat);
  }
  {
    std::lock_guard<std::mutex> glock(g.mu);
    EXPECT_TRUE(g.role.free());
    g.role.Stop();
  }
  io.join();
  EXPECT_FALSE(io_result);
}

TEST(ReceiverRoleTest, UserThreadGetsTheRoleFromTheReceivingIoThread) {
  Fixture f(kNoGrace);
  std::unique_lock<std::mutex> lock(f.mu);
  ASSERT_TRUE(f.role.IoAcquire(lock));
  f.role.BeginReceive();  // the io thread is blocked in its receive
  lock.unlock();

  ReceiverRole::Seat seat;
  std::atomic<bool> got{false};
  std::thread user([&] {
    std::unique_lock<std::mutex> l(f.mu);
    got = f.role.Acquire(
        l, seat, [] { return false; }, kNever);
    if (got) f.role.Release(seat);
  });
  // The user thread queues and wakes the receive.
  f.AwaitState([&] { return f.wakes == 1; });
  lock.lock();
  EXPECT_EQ(f.role.queued(), 1u);
  f.role.EndReceive();
  EXPECT_TRUE(f.role.IoMustYield());
  f.role.IoRelease();
  EXPECT_TRUE(f.role.held_by(seat));
  lock.unlock();
  user.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(f.wakes, 1);
}

TEST(ReceiverRoleTest, NoBusWakeWhileTheIoThreadIsHandling) {
  Fixture f(kNoGrace);
  std::unique_lock<std::mutex> lock(f.mu);
  ASSERT_TRUE(f.role.IoAcquire(lock));  // not receiving: handling under the mutex
  lock.unlock();
  ReceiverRole::Seat seat;
  std::thread user([&] {
    std::unique_lock<std::mutex> l(f.mu);
    if (f.role.Acquire(
            l, seat, [] { return false; }, kNever))
      f.role.Release(seat);
  });
  f.AwaitState([&] { return f.role.queued() == 1; });
  lock.lock();
  EXPECT_EQ(f.wakes, 0);  // it checks IoMustYield before its next receive
  EXPECT_TRUE(f.role.IoMustYield());
  f.role.IoRelease();
  lock.unlock();
  user.join();
  std::lock_guard<std::mutex> l(f.mu);
  EXPECT_TRUE(f.role.free());
}

TEST(ReceiverRoleTest, ReleaseHandsTheRoleToQueuedSeatsInOrder) {
  Fixture f(kLongGrace);
  ReceiverRole::Seat first, second, third;
  std::unique_lock<std::mutex> lock(f.mu);
  ASSERT_TRUE(f.role.Acquire(
      lock, first, [] { return false; }, kNever));
  lock.unlock();

  std::atomic<int> order{0};
  int second_rank = 0, third_rank = 0;
  auto waiter = [&](ReceiverRole::Seat& seat, int* rank) {
    std::unique_lock<std::mutex> l(f.mu);
    if (f.role.Acquire(
            l, seat, [] { return false; }, kNever)) {
      *rank = ++order;
      f.role.Release(seat);
    }
  };
  std::thread t2(waiter, std::ref(second), &second_rank);
  f.AwaitState([&] { return second.queued; });
  std::thread t3(waiter, std::ref(third), &third_rank);
  f.AwaitState([&] { return third.queued; });

  lock.lock();
  EXPECT_EQ(f.role.queued(), 2u);
  EXPECT_EQ(f.wakes, 0);  // a holding user thread hands over itself, no bus wake
  f.role.Release(first);
  EXPECT_TRUE(f.role.held_by(second));
  lock.unlock();
  t2.join();
  t3.join();
  EXPECT_EQ(second_rank, 1);
  EXPECT_EQ(third_rank, 2);
  lock.lock();
  EXPECT_TRUE(f.role.free());
}

TEST(ReceiverRoleTest, NotifyWakesAQueuedSeatWhoseConditionHolds) {
  Fixture f(kLongGrace);
  ReceiverRole::Seat holder, seat;
  std::unique_lock<std::mutex> lock(f.mu);
  ASSERT_TRUE(f.role.Acquire(
      lock, holder, [] { return false; }, kNever));
  lock.unlock();

  bool ready = false;  // under mu
  std::atomic<bool> got{true};
  std::thread user([&] {
    std::unique_lock<std::mutex> l(f.mu);
    got = f.role.Acquire(
        l, seat, [&] { return ready; }, kNever);
  });
  f.AwaitState([&] { return seat.queued; });
  lock.lock();
  ready = true;
  f.role.Notify(seat);
  lock.unlock();
  user.join();
  lock.lock();
  EXPECT_FALSE(got);
  EXPECT_EQ(f.role.queued(), 0u);
  EXPECT_TRUE(f.role.held_by(holder));
}

TEST(ReceiverRoleTest, NotifyWakesTheReceiveOfTheHolderOnly) {
  Fixture f(kLongGrace);
  ReceiverRole::Seat holder;
  std::unique_lock<std::mutex> lock(f.mu);
  ASSERT_TRUE(f.role.Acquire(
      lock, holder, [] { return false; }, kNever));
  f.role.Notify(holder);  // handling its own messages: it re-checks by itself
  EXPECT_EQ(f.wakes, 0);
  f.role.BeginReceive();
  f.role.Notify(holder);  // blocked in its receive: only the bus can wake it
  EXPECT_EQ(f.wakes, 1);
  f.role.EndReceive();
  f.role.Release(holder);
}

TEST(ReceiverRoleTest, DeadlineEndsAQueuedAcquire) {
  Fixture f(kLongGrace);
  ReceiverRole::Seat holder, seat;
  std::unique_lock<std::mutex> lock(f.mu);
  ASSERT_TRUE(f.role.Acquire(
      lock, holder, [] { return false; }, kNever));
  EXPECT_FALSE(f.role.Acquire(
      lock, seat, [] { return false; }, Clock::now() + std::chrono::milliseconds(1)));
  EXPECT_FALSE(seat.queued);
  EXPECT_EQ(f.role.queued(), 0u);
  EXPECT_TRUE(f.role.held_by(holder));
}

TEST(ReceiverRoleTest, StopReleasesEveryWaitingThread) {
  Fixture f(kLongGrace);
  ReceiverRole::Seat holder, seat;
  std::unique_lock<std::mutex> lock(f.mu);
  ASSERT_TRUE(f.role.Acquire(
      lock, holder, [] { return false; }, kNever));
  lock.unlock();
  std::atomic<bool> user_got{true}, io_got{true};
  std::thread user([&] {
    std::unique_lock<std::mutex> l(f.mu);
    user_got = f.role.Acquire(
        l, seat, [] { return false; }, kNever);
  });
  std::thread io = f.StartIo(io_got);
  f.AwaitState([&] { return seat.queued; });
  lock.lock();
  f.role.Stop();
  EXPECT_EQ(f.wakes, 1);  // the holder's receive returns too
  lock.unlock();
  user.join();
  io.join();
  EXPECT_FALSE(user_got);
  EXPECT_FALSE(io_got);
  lock.lock();
  f.role.Release(holder);
  EXPECT_TRUE(f.role.IoMustYield());
}

// Takes the role for `seat` (lock held on entry and on return) and starts an io thread that
// waits for it, storing IoAcquire's answer in `io_got`; returns once that thread sleeps untimed.
std::thread HoldWhileIoSleeps(Fixture& f, std::unique_lock<std::mutex>& lock,
                              ReceiverRole::Seat& seat, std::atomic<bool>& io_got) {
  EXPECT_TRUE(f.role.Acquire(
      lock, seat, [] { return false; }, kNever));
  lock.unlock();
  std::thread io = f.StartIo(io_got);
  f.AwaitState([&] { return f.role.io_sleep() == ReceiverRole::IoSleep::kUntilRelease; });
  lock.lock();
  return io;
}

// Issue 7: in a loop of synchronous tasks a user thread releases and retakes the role every few
// microseconds. The io thread must not be woken by each release (a futex wake and a context
// switch per task on both sides of the round trip, and the job's slow mode); it re-checks on its
// own timer once per grace, and still sleeps untimed while a holder keeps the role.
TEST(ReceiverRoleTest, Issue7IoThreadIsNotWokenByEveryReleaseOfALoop) {
  Fixture f(kLongGrace);
  ReceiverRole::Seat seat;
  std::unique_lock<std::mutex> lock(f.mu);
  std::atomic<bool> io_got{true};
  // Held since long ago (never released): the io thread sleeps until a release.
  std::thread io = HoldWhileIoSleeps(f, lock, seat, io_got);
  f.role.Release(seat);
  EXPECT_EQ(f.role.release_wakeups(), 1u);
  ASSERT_TRUE(f.role.Acquire(
      lock, seat, [] { return false; }, kNever));
  lock.unlock();
  // It wakes, finds the role taken back within the grace, and sleeps on its own timer.
  f.AwaitState([&] { return f.role.io_sleep() == ReceiverRole::IoSleep::kTimed; });
  lock.lock();
  for (int i = 0; i < 100; ++i) {
    f.role.Release(seat);
    ASSERT_TRUE(f.role.Acquire(
        lock, seat, [] { return false; }, kNever));
  }
  EXPECT_EQ(f.role.release_wakeups(), 1u);
  EXPECT_TRUE(f.role.held_by(seat));
  f.role.Stop();
  lock.unlock();
  io.join();
  EXPECT_FALSE(io_got);
}

TEST(ReceiverRoleTest, Issue7IoThreadTakesARoleLeftFreeAfterALoop) {
  Fixture f(microseconds(1000));
  ReceiverRole::Seat seat;
  std::unique_lock<std::mutex> lock(f.mu);
  std::atomic<bool> io_got{false};
  std::thread io = HoldWhileIoSleeps(f, lock, seat, io_got);
  f.role.Release(seat);
  ASSERT_TRUE(f.role.Acquire(
      lock, seat, [] { return false; }, kNever));
  f.role.Release(seat);  // the loop ends: the role stays free, and nobody wakes the io thread
  lock.unlock();
  io.join();  // its timer finds the role free for a grace and takes it
  EXPECT_TRUE(io_got);
  lock.lock();
  EXPECT_TRUE(f.role.held_by_io());
  EXPECT_LE(f.role.release_wakeups(), 2u);
}

// Takes the role for `seat` (lock held on entry and on return), starts an io thread that waits
// for it (IoAcquire's answer in `io_got`), and releases and retakes the role, letting the mutex
// go between turns, until that thread sleeps on its own timer.
std::thread ChurnUntilIoSleepsTimed(Fixture& f, std::unique_lock<std::mutex>& lock,
                                    ReceiverRole::Seat& seat, std::atomic<bool>& io_got) {
  EXPECT_TRUE(f.role.Acquire(
      lock, seat, [] { return false; }, kNever));
  std::thread io = f.StartIo(io_got);
  while (f.role.io_sleep() != ReceiverRole::IoSleep::kTimed) {
    f.role.Release(seat);
    EXPECT_TRUE(f.role.Acquire(
        lock, seat, [] { return false; }, kNever));
    lock.unlock();
    std::this_thread::yield();
    lock.lock();
  }
  return io;
}

// Issue 7: while a loop of short waits keeps retaking the role, the io thread's timer checks
// without the owner's mutex. Taking it at every expiry would block on the user thread that holds
// it, which then pays a futex wake (tens of microseconds on a VM) to let the io thread go.
// Below, the user thread keeps the mutex throughout: an io thread that took it would hang.
TEST(ReceiverRoleTest, Issue7IoTimerChecksWithoutTheOwnersMutexWhileTheRoleChurns) {
  // Long enough that the churning thread is never off the CPU for a whole grace.
  Fixture f(microseconds(50000));
  ReceiverRole::Seat seat;
  std::unique_lock<std::mutex> lock(f.mu);
  std::atomic<bool> io_got{true};
  std::thread io = ChurnUntilIoSleepsTimed(f, lock, seat, io_got);
  // Churn holding the mutex until the timer has found the role retaken three times.
  while (f.role.lockless_checks() < 3) {
    f.role.Release(seat);
    ASSERT_TRUE(f.role.Acquire(
        lock, seat, [] { return false; }, kNever));
    std::this_thread::yield();
  }
  EXPECT_TRUE(f.role.held_by(seat));
  f.role.Stop();
  lock.unlock();
  io.join();
  EXPECT_FALSE(io_got);
}

// While a loop of short waits keeps retaking the role, each look of the io thread's timer waits
// twice as long as the last, up to 2^kMaxChurnShift graces: its wake-ups take a core from the
// threads doing the work. A role then left free is still taken, and the back-off starts over.
TEST(ReceiverRoleTest, IoTimerBacksOffWhileTheRoleChurnsAndStillTakesAFreeRole) {
  // Long enough that the churning thread is never off the CPU for a whole grace.
  Fixture f(microseconds(20000));
  ReceiverRole::Seat seat;
  std::unique_lock<std::mutex> lock(f.mu);
  std::atomic<bool> io_got{false};
  std::thread io = ChurnUntilIoSleepsTimed(f, lock, seat, io_got);
  EXPECT_EQ(f.role.io_wait_graces(), 1);
  const uint64_t first = f.role.lockless_checks();
  uint64_t checks = first;
  int expected = 1;
  while (f.role.lockless_checks() < first + ReceiverRole::kMaxChurnShift + 1) {
    f.role.Release(seat);
    ASSERT_TRUE(f.role.Acquire(
        lock, seat, [] { return false; }, kNever));
    std::this_thread::yield();
    if (f.role.lockless_checks() > checks) {
      checks = f.role.lockless_checks();
      expected = std::min(expected * 2, 1 << ReceiverRole::kMaxChurnShift);
      // The timer publishes its next wait right after counting the look (at least this long).
      while (f.role.io_wait_graces() < expected) std::this_thread::yield();
    }
  }
  EXPECT_EQ(f.role.io_wait_graces(), 1 << ReceiverRole::kMaxChurnShift);
  f.role.Release(seat);  // the loop ends: the role stays free
  lock.unlock();
  io.join();  // within 8 graces the timer finds it free and the io thread takes it
  EXPECT_TRUE(io_got);
  EXPECT_EQ(f.role.io_wait_graces(), 1);
  lock.lock();
  EXPECT_TRUE(f.role.held_by_io());
}

}  // namespace
}  // namespace raympi
