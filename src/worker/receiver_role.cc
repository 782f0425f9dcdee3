#include "worker/receiver_role.h"

#include <algorithm>
#include <utility>

namespace raympi {

ReceiverRole::ReceiverRole(std::chrono::microseconds io_grace, std::function<void()> wake_receiver)
    : io_grace_(io_grace), wake_receiver_(std::move(wake_receiver)) {}

void ReceiverRole::Dequeue(Seat& seat) {
  if (!seat.queued) return;
  seat.queued = false;
  queue_.erase(std::remove(queue_.begin(), queue_.end(), &seat), queue_.end());
}

bool ReceiverRole::HandToQueued() {
  receiving_ = false;
  if (queue_.empty()) return false;
  Seat* next = queue_.front();
  queue_.pop_front();
  next->queued = false;
  holder_ = Holder::kSeat;
  seat_ = next;
  next->cv.notify_one();
  return true;
}

void ReceiverRole::Park() {
  holder_ = Holder::kNone;
  seat_ = nullptr;
  released_at_ = Clock::now();
  released_at_ns_.store(released_at_.time_since_epoch().count(), std::memory_order_relaxed);
  // Only when the io thread sleeps without a timeout; otherwise its timer sees the release.
  if (io_sleep_ == IoSleep::kUntilRelease) {
    ++release_wakeups_;
    io_cv_.notify_one();
  }
}

void ReceiverRole::Release(Seat& seat) {
  if (!held_by(seat)) return;
  if (!HandToQueued()) Park();
}

void ReceiverRole::IoRelease() {
  if (holder_ != Holder::kIo) return;
  if (!HandToQueued()) Park();
}

void ReceiverRole::Notify(Seat& seat) {
  if (held_by(seat)) {
    if (receiving_) wake_receiver_();
  } else {
    seat.cv.notify_one();
  }
}

void ReceiverRole::NotifyAll() {
  for (Seat* s : queue_) s->cv.notify_one();
  if (holder_ == Holder::kSeat && receiving_) wake_receiver_();
}

bool ReceiverRole::IoAcquire(std::unique_lock<std::mutex>& lock) {
  io_waiting_ = true;
  while (!stopped_) {
    const bool within_grace = Clock::now() < released_at_ + io_grace_;
    if (holder_ == Holder::kNone && !within_grace) {
      holder_ = Holder::kIo;
      io_waiting_ = false;
      return true;
    }
    if (within_grace) {
      // Free for less than a grace, or taken back within it (a loop of short waits): look again
      // when the grace ends, by our own timer. Asking the next release to wake us would cost a
      // futex wake and a context switch per task, and we would mostly find the role held again.
      io_sleep_ = IoSleep::kTimed;
      lock.unlock();
      SleepOutTheGrace();
      lock.lock();
    } else {
      // A user thread has held the role for a grace (it waits long, or idles): sleep until its
      // release (or Stop) wakes us, so an idle process costs no CPU.
      io_sleep_ = IoSleep::kUntilRelease;
      io_cv_.wait(lock);
    }
    io_sleep_ = IoSleep::kAwake;
  }
  io_waiting_ = false;
  return false;
}

void ReceiverRole::SleepOutTheGrace() {
  std::unique_lock<std::mutex> timer(timer_mu_);
  int shift = 0;  // each look at a churning role waits twice as long as the last
  for (;;) {
    churn_shift_.store(shift, std::memory_order_relaxed);
    const Clock::time_point released_at(
        Clock::duration(released_at_ns_.load(std::memory_order_relaxed)));
    const Clock::time_point due = released_at + io_grace_ * (1 << shift);
    if (timer_stopped_ || Clock::now() >= due) break;  // the caller decides under the mutex
    timer_cv_.wait_until(timer, due);
    // Released again since: the role churns (or was taken); sleep on without the mutex.
    if (released_at_ns_.load(std::memory_order_relaxed) != released_at.time_since_epoch().count()) {
      lockless_checks_.fetch_add(1, std::memory_order_relaxed);
      shift = std::min(shift + 1, kMaxChurnShift);
    }
  }
  churn_shift_.store(0, std::memory_order_relaxed);
}

void ReceiverRole::Stop() {
  stopped_ = true;
  {
    std::lock_guard<std::mutex> timer(timer_mu_);
    timer_stopped_ = true;
  }
  timer_cv_.notify_all();
  for (Seat* s : queue_) s->cv.notify_one();
  io_cv_.notify_all();
  // Whoever receives returns now (sticky, so also a receive about to start).
  wake_receiver_();
}

}  // namespace raympi
