// GcsServer: the control store on rank 0. Holds the node table (resources, liveness) and the
// cluster resource view that it spreads to raylets, and ends the job when the driver exits.
//
// Thread-safety: single-threaded, driven by the rank's event loop.
#pragma once

#include <functional>
#include <map>

#include "raympi.pb.h"

namespace raympi {

class GcsServer {
 public:
  struct Callbacks {
    std::function<void(const rpc::Envelope&)> send;  // to a raylet (by dst address)
    std::function<void(int exit_code)> end_job;      // broadcast Shutdown to every rank
  };
  explicit GcsServer(Callbacks callbacks);

  void Handle(rpc::Envelope& envelope);
  // Spreads the resource view if it changed since the last tick.
  void Tick();

  bool job_ended() const { return job_ended_; }
  int exit_code() const { return exit_code_; }
  const std::map<int, rpc::NodeInfo>& nodes() const { return nodes_; }

 private:
  void BroadcastView();

  Callbacks callbacks_;
  std::map<int, rpc::NodeInfo> nodes_;
  bool view_dirty_ = false;
  bool job_ended_ = false;
  int exit_code_ = 0;
};

}  // namespace raympi
