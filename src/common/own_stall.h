// Notices this rank's own stalls. A rank that was not running its event loop (a blocking
// MPI_Comm_spawn, a swapped-out process) did not read the messages waiting in MPI meanwhile, so
// that time must not count as its peers' silence: heartbeat clocks are moved forward by it.
#pragma once

#include <chrono>

namespace raympi {

class OwnStall {
 public:
  using Clock = std::chrono::steady_clock;
  explicit OwnStall(Clock::duration threshold) : threshold_(threshold) {}

  // Records a tick at `now`; returns the pause since the previous tick if it was longer than
  // the threshold (a stall to discount), else zero.
  Clock::duration Tick(Clock::time_point now) {
    Clock::duration gap = now - last_tick_;
    bool stalled = last_tick_ != Clock::time_point{} && gap > threshold_;
    last_tick_ = now;
    return stalled ? gap : Clock::duration::zero();
  }

 private:
  Clock::duration threshold_;
  Clock::time_point last_tick_{};
};

}  // namespace raympi
