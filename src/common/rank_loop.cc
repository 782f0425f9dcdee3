#include "common/rank_loop.h"

#include <sched.h>
#include <time.h>

#include "common/logging.h"

namespace raympi {

RankLoop::RankLoop(const RankLoopConfig& config, Transport* transport, ShmBus* bus)
    : config_(config), transport_(transport), bus_(bus) {}

int RankLoop::RankOfNode(int node) const {
  if (node == kGcsNode) return 0;
  if (node < 0 || node >= static_cast<int>(config_.raylet_rank_of_node.size())) return -1;
  return config_.raylet_rank_of_node[node];
}

void RankLoop::Send(const rpc::Envelope& envelope) { Route(EncodeFrame(envelope)); }

void RankLoop::SendToRank(int rank, const rpc::Envelope& envelope) {
  last_mpi_activity_ = std::chrono::steady_clock::now();
  transport_->Send(rank, EncodeFrame(envelope));
}

void RankLoop::Dispatch(const std::string& frame, const MessageHandler& handler) {
  rpc::Envelope envelope;
  Status st = DecodeFrame(frame, &envelope);
  if (!st.ok()) {
    RAYMPI_LOG_ERROR("dropping a malformed frame: {}", st.ToString());
    return;
  }
  if (handler) {
    handler(envelope);
  } else if (fallback_handler_) {
    fallback_handler_(envelope);
  }
}

void RankLoop::Route(std::string frame) {
  int node, slot;
  Status st = PeekDestination(frame, &node, &slot);
  if (!st.ok()) {
    RAYMPI_LOG_ERROR("dropping a frame: {}", st.ToString());
    return;
  }
  if (node == kGcsNode && gcs_handler_) return Dispatch(frame, gcs_handler_);
  if (node == kThisRankNode) return Dispatch(frame, nullptr);
  if (bus_ != nullptr && node == config_.my_node) {
    if (slot == kRayletSlot) return Dispatch(frame, raylet_handler_);
    Status sent = bus_->Send(slot, frame);
    if (!sent.ok()) RAYMPI_LOG_ERROR("bus delivery to slot {} failed: {}", slot, sent.ToString());
    return;
  }
  int rank = RankOfNode(node);
  if (rank < 0) {
    RAYMPI_LOG_ERROR("dropping a frame for unknown node {}", node);
    return;
  }
  if (rank == config_.my_rank) return Dispatch(frame, nullptr);
  last_mpi_activity_ = std::chrono::steady_clock::now();
  transport_->Send(rank, std::move(frame));
}

void RankLoop::Run(const std::function<bool()>& done) {
  std::string frame;
  std::chrono::microseconds idle_sleep{0};
  while (!done()) {
    bool worked = false;
    int source;
    while (transport_->Poll(&frame, &source)) {
      last_mpi_activity_ = std::chrono::steady_clock::now();
      Route(std::move(frame));
      worked = true;
    }
    if (bus_ != nullptr) {
      for (;;) {
        auto got = bus_->TryReceive(kRayletSlot, &frame);
        if (!got.ok() || !*got) break;
        Route(std::move(frame));
        worked = true;
      }
    }
    bool busy = tick_ && tick_();
    transport_->Progress();
    if (worked) {
      idle_sleep = std::chrono::microseconds{0};
      continue;
    }
    if (busy) {
      sched_yield();
      continue;
    }
    // Back off towards max_idle_sleep: idle ranks must leave the cores to the tasks.
    // Shortly after MPI traffic a reply is likely on its way, and MPI cannot wake a sleeping
    // process: poll, yielding the core to anyone who needs it. A timed sleep here costs
    // ~70 us per hop on this kind of machine (docs/performance.md).
    if (std::chrono::steady_clock::now() - last_mpi_activity_ < config_.hot_window) {
      sched_yield();
      continue;
    }
    idle_sleep =
        std::min(config_.max_idle_sleep, std::max(std::chrono::microseconds{10}, idle_sleep * 2));
    if (bus_ != nullptr) {
      auto got = bus_->Receive(kRayletSlot, &frame, idle_sleep);
      if (got.ok() && *got) {
        Route(std::move(frame));
        idle_sleep = std::chrono::microseconds{0};
      }
    } else {
      timespec ts{0, static_cast<long>(idle_sleep.count() * 1000)};
      nanosleep(&ts, nullptr);
    }
  }
  while (transport_->Progress()) {
  }
}

}  // namespace raympi
