// GcsServer: the control store on rank 0. Holds the node table (resources, liveness) and the
// cluster resource view that it spreads to raylets, and ends the job when the driver exits.
//
// Thread-safety: single-threaded, driven by the rank's event loop.
#pragma once

#include <chrono>
#include <functional>
#include <map>

#include "raympi.pb.h"

namespace raympi {

struct GcsOptions {
  // The view is also spread at this period when nothing changed: raylets count the requests
  // they spill against their copy of it, and only a fresh copy undoes a wrong guess.
  std::chrono::steady_clock::duration view_refresh_period = std::chrono::milliseconds(100);
};

class GcsServer {
 public:
  using Clock = std::chrono::steady_clock;
  struct Callbacks {
    std::function<void(const rpc::Envelope&)> send;  // to a raylet (by dst address)
    std::function<void(int exit_code)> end_job;      // broadcast Shutdown to every rank
    std::function<Clock::time_point()> now;          // defaults to Clock::now
  };
  explicit GcsServer(Callbacks callbacks, GcsOptions options = GcsOptions());

  void Handle(rpc::Envelope& envelope);
  // Spreads the resource view if it changed since the last tick, or the refresh period passed.
  void Tick();

  bool job_ended() const { return job_ended_; }
  int exit_code() const { return exit_code_; }
  const std::map<int, rpc::NodeInfo>& nodes() const { return nodes_; }

 private:
  void BroadcastView();

  Callbacks callbacks_;
  GcsOptions options_;
  Clock::time_point last_broadcast_{};
  std::map<int, rpc::NodeInfo> nodes_;
  bool view_dirty_ = false;
  bool job_ended_ = false;
  int exit_code_ = 0;
};

}  // namespace raympi
