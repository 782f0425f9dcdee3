#include "raylet_rank/prelaunched_launcher.h"

#include <string>

#include "common/frame.h"
#include "common/logging.h"

namespace raympi {

PrelaunchedLauncher::PrelaunchedLauncher(int node, int driver_slot, std::vector<int> worker_slots,
                                         Send send)
    : node_(node),
      driver_slot_(driver_slot),
      waiting_(worker_slots.begin(), worker_slots.end()),
      send_(std::move(send)) {}

Status PrelaunchedLauncher::Launch(const LaunchRequest& request) {
  if (request.with_driver && request.driver_slot != driver_slot_) {
    return Status::Unavailable("node " + std::to_string(node_) +
                               " has no pre-launched rank left for the driver");
  }
  if (request.num_workers > StartableWorkers()) {
    return Status::Unavailable(
        "node " + std::to_string(node_) + " has " + std::to_string(StartableWorkers()) +
        " pre-launched rank(s) free, not " + std::to_string(request.num_workers));
  }
  if (request.with_driver) {
    StartAt(driver_slot_, driver_slot_);
    driver_slot_ = -1;  // the driver is never started again
  }
  for (int i = 0; i < request.num_workers; ++i) {
    const int slot = request.first_worker_slot + i;
    // A rank that never ran a program waits at its own slot, which the pool hands out first;
    // a rank whose worker died waits at that worker's slot and takes the new one.
    std::deque<int>& from = !waiting_.empty() ? waiting_ : ended_;
    const int at = from.front();
    from.pop_front();
    StartAt(at, slot);
    running_.insert(slot);
  }
  if (request.num_workers > 0 || request.with_driver) {
    RAYMPI_LOG_INFO("node {} started {} pre-launched process(es)", node_,
                    request.num_workers + (request.with_driver ? 1 : 0));
  }
  return Status::Ok();
}

int PrelaunchedLauncher::StartableWorkers() const {
  return static_cast<int>(waiting_.size() + ended_.size());
}

void PrelaunchedLauncher::OnProcessEnded(int slot) {
  if (running_.erase(slot) > 0) ended_.push_back(slot);
}

void PrelaunchedLauncher::StartAt(int at, int slot) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(node_, kRayletSlot);
  *e.mutable_dst() = MakeAddress(node_, at);
  e.mutable_start_program()->set_slot(slot);
  send_(e);
}

}  // namespace raympi
