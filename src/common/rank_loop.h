// RankLoop: the event loop of a runtime rank (GCS, raylet, or both on rank 0). It moves frames
// between the node's shared-memory bus and MPI, hands frames addressed to a local component to
// its handler, and sleeps when idle: on the bus futex when the rank has a bus (a local message
// wakes it at once), with a short backoff that bounds how late an MPI message is noticed.
//
// Thread-safety: single-threaded; every MPI call of the process happens on this thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/frame.h"
#include "common/mpi_transport.h"
#include "common/shm_bus.h"

namespace raympi {

using MessageHandler = std::function<void(rpc::Envelope&)>;

struct RankLoopConfig {
  int my_rank = 0;
  int my_node = 0;                       // node whose raylet this rank hosts, if any
  std::vector<int> raylet_rank_of_node;  // node index -> MPI rank of its raylet
  std::chrono::microseconds max_idle_sleep{500};
  // For this long after MPI traffic an idle pass polls again at once (yielding the core)
  // instead of sleeping: a reply is likely on its way and MPI cannot wake a sleeping process.
  std::chrono::microseconds hot_window{5000};
};

class RankLoop {
 public:
  RankLoop(const RankLoopConfig& config, Transport* transport, ShmBus* bus);

  // Components hosted by this rank. A rank without a raylet has no bus.
  void SetGcsHandler(MessageHandler handler) { gcs_handler_ = std::move(handler); }
  void SetRayletHandler(MessageHandler handler) { raylet_handler_ = std::move(handler); }
  // Handles frames for no component (a spare rank's Shutdown).
  void SetFallbackHandler(MessageHandler handler) { fallback_handler_ = std::move(handler); }
  // Runs after every pass of the loop (timers, batched reports, transfers). Returns true while
  // it has work in progress that needs polling (bytes moving): the loop then yields instead
  // of sleeping.
  void SetTick(std::function<bool()> tick) { tick_ = std::move(tick); }

  // Delivers an envelope to its destination: a local component, the local bus, or MPI.
  void Send(const rpc::Envelope& envelope);
  // Sends a frame to a rank whatever its role (shut-down broadcast).
  void SendToRank(int rank, const rpc::Envelope& envelope);

  // Runs until `done` returns true, then drains outstanding MPI sends.
  void Run(const std::function<bool()>& done);

 private:
  void Route(std::string frame);
  void Dispatch(const std::string& frame, const MessageHandler& handler);
  int RankOfNode(int node) const;

  RankLoopConfig config_;
  Transport* transport_;
  ShmBus* bus_;
  MessageHandler gcs_handler_, raylet_handler_, fallback_handler_;
  std::chrono::steady_clock::time_point last_mpi_activity_{};
  std::function<bool()> tick_;
};

}  // namespace raympi
