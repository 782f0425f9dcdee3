// ReceiverRole: which thread of a process receives its mailbox now. The bus mailbox has a
// single consumer, and a thread hand-off costs tens of microseconds on a small VM
// (docs/performance.md), so the thread that waits for a message receives it itself:
//
//  - A user thread that must block (Wait/Get, a worker's idle task thread) takes the role,
//    receives and handles messages until its own condition holds, then releases the role.
//  - Released, the role is free ("parked"): nobody receives. The io thread takes it only after
//    it has been free for `io_grace` (the driver runs user code, a worker executes a task), so a
//    loop of short waits never pays for waking the io thread and handing the role back. While
//    user threads take the role back within the grace, the io thread re-checks on its own timer
//    (at most once per grace) instead of being woken by every release, and without the owner's
//    mutex, which the user thread mostly holds then; only a role held for a whole grace makes it
//    sleep until the next release.
//  - A thread that wants the role while another holds it queues on its own condition variable.
//    If the io thread holds it, `wake_receiver` (the bus Wake) makes its receive return and it
//    hands the role on. A releasing thread hands the role to the first queued thread.
//
// Every method requires the owner's mutex (passed as `lock` where the method blocks): the
// role's state is part of the state that mutex guards.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace raympi {

class ReceiverRole {
 public:
  using Clock = std::chrono::steady_clock;
  // The io thread's look at a churning role waits at most 2^kMaxChurnShift graces.
  static constexpr int kMaxChurnShift = 3;

  // One per thread that can block: its condition variable and its place in the queue.
  struct Seat {
    std::condition_variable cv;
    bool queued = false;
  };

  // `wake_receiver` makes a receive in progress return (sticky: it may be called just before the
  // receiver blocks). Called with the owner's mutex held.
  ReceiverRole(std::chrono::microseconds io_grace, std::function<void()> wake_receiver);

  // ---- user threads ----

  // Blocks until `seat` holds the role (true), or until `done()` holds, `deadline` passes or the
  // role is stopped (false). `done` is evaluated under the owner's mutex whenever the seat is
  // notified. The holder must call Release.
  template <typename Done>
  bool Acquire(std::unique_lock<std::mutex>& lock, Seat& seat, const Done& done,
               Clock::time_point deadline);
  // Hands the role to the first queued seat, or leaves it free.
  void Release(Seat& seat);

  // The holder brackets each receive (with the owner's mutex released in between) so that
  // Notify knows when a bus wake-up is needed.
  void BeginReceive() { receiving_ = true; }
  void EndReceive() { receiving_ = false; }

  // `seat`'s condition may have become true: wakes its thread, or its receive if it holds the
  // role and is blocked receiving.
  void Notify(Seat& seat);
  // Every seat re-checks its condition (rare messages, shut-down).
  void NotifyAll();

  // ---- the io thread ----

  // Blocks until the io thread holds the role (true) or the role is stopped (false).
  bool IoAcquire(std::unique_lock<std::mutex>& lock);
  // The io thread must hand the role on: a user thread wants it, or stop.
  bool IoMustYield() const { return !queue_.empty() || stopped_; }
  // Hands the role to the first queued seat, or leaves it free.
  void IoRelease();

  // Wakes every thread; Acquire and IoAcquire return false from now on.
  void Stop();

  // ---- for tests and assertions ----
  bool held_by(const Seat& seat) const { return holder_ == Holder::kSeat && seat_ == &seat; }
  bool held_by_io() const { return holder_ == Holder::kIo; }
  bool free() const { return holder_ == Holder::kNone; }
  size_t queued() const { return queue_.size(); }
  bool io_waiting() const { return io_waiting_; }
  // How the io thread sleeps in IoAcquire, and how many releases had to wake it.
  enum class IoSleep { kAwake, kTimed, kUntilRelease };
  IoSleep io_sleep() const { return io_sleep_; }
  uint64_t release_wakeups() const { return release_wakeups_; }
  // Timer wake-ups that found the role retaken within the grace and slept again without the
  // owner's mutex.
  uint64_t lockless_checks() const { return lockless_checks_.load(std::memory_order_relaxed); }
  // How many graces the io thread's current timed look waits (1, 2, 4, ... while it churns).
  int io_wait_graces() const { return 1 << churn_shift_.load(std::memory_order_relaxed); }

 private:
  enum class Holder { kNone, kIo, kSeat };

  void Dequeue(Seat& seat);
  // Gives the role to the first queued seat; false when none is queued.
  bool HandToQueued();
  void Park();
  // The io thread, without the owner's mutex: sleeps until the role has not been released for a
  // whole grace (or Stop). Taking the mutex at every timer expiry would block, and then be woken
  // by, a user thread that holds it: a futex wake and tens of microseconds each on a small VM.
  // While the role keeps churning, each look waits twice as long as the last, up to
  // 2^kMaxChurnShift graces: every wake-up of the io thread takes a core from the threads doing
  // the work (on 2 cores, 1-2% of synchronous tasks paid 50-200 us for it).
  void SleepOutTheGrace();

  const std::chrono::microseconds io_grace_;
  const std::function<void()> wake_receiver_;
  Holder holder_ = Holder::kNone;
  Seat* seat_ = nullptr;  // the holder when holder_ == kSeat
  bool receiving_ = false;
  bool stopped_ = false;
  std::deque<Seat*> queue_;  // seats waiting for the role, first come first served
  // When the role was last left free; never: the clock's earliest time, not its epoch, which
  // is the boot on Linux (a process started within a grace of the boot would wait it out).
  Clock::time_point released_at_ = Clock::time_point::min();
  IoSleep io_sleep_ = IoSleep::kAwake;
  uint64_t release_wakeups_ = 0;  // releases that woke the io thread (a syscall each)
  bool io_waiting_ = false;       // the io thread sleeps in IoAcquire
  std::condition_variable io_cv_;
  // What SleepOutTheGrace reads without the owner's mutex (written under it).
  // released_at_, as ns since the clock's epoch
  std::atomic<int64_t> released_at_ns_{Clock::time_point::min().time_since_epoch().count()};
  std::atomic<uint64_t> lockless_checks_{0};
  std::atomic<int> churn_shift_{0};  // the io thread's current back-off (SleepOutTheGrace)
  std::mutex timer_mu_;              // taken after the owner's mutex, never before it
  std::condition_variable timer_cv_;
  bool timer_stopped_ = false;  // under timer_mu_
};

template <typename Done>
bool ReceiverRole::Acquire(std::unique_lock<std::mutex>& lock, Seat& seat, const Done& done,
                           Clock::time_point deadline) {
  for (;;) {
    if (held_by(seat)) return true;  // handed to us while we slept
    if (stopped_ || done()) break;
    if (holder_ == Holder::kNone) {
      // Free means nobody is queued: a release hands the role to the first queued seat.
      holder_ = Holder::kSeat;
      seat_ = &seat;
      return true;
    }
    if (!seat.queued) {
      seat.queued = true;
      queue_.push_back(&seat);
      if (holder_ == Holder::kIo && receiving_) wake_receiver_();
    }
    if (deadline == Clock::time_point::max()) {
      seat.cv.wait(lock);
    } else if (seat.cv.wait_until(lock, deadline) == std::cv_status::timeout) {
      if (held_by(seat)) return true;
      break;
    }
  }
  Dequeue(seat);
  return false;
}

}  // namespace raympi
