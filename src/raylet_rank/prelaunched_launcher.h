// No-spawn mode (`raympi --prelaunched`, and srun direct launch): the node's processes are MPI
// ranks started by the launcher with the job, each a supervisor whose program waits for its
// place (docs/design.md, "No-spawn mode"). "Launching" a process is telling such a rank, over
// the node's bus, which slot its program takes (StartProgram). The pool is fixed: a rank whose
// program ended can start a fresh one (a replacement worker), but no rank is ever added.
//
// Thread-safety: single-threaded (the raylet's event loop).
#pragma once

#include <deque>
#include <functional>
#include <set>
#include <vector>

#include "raylet_rank/worker_launcher.h"
#include "raympi.pb.h"

namespace raympi {

class PrelaunchedLauncher : public WorkerLauncher {
 public:
  using Send = std::function<void(const rpc::Envelope&)>;

  // `driver_slot`: the slot of the rank that runs the driver (-1: none on this node);
  // `worker_slots`: the slots where the other ranks of the node wait for their first program.
  PrelaunchedLauncher(int node, int driver_slot, std::vector<int> worker_slots, Send send);

  Status Launch(const LaunchRequest& request) override;
  void ReleaseAll() override {}
  int StartableWorkers() const override;
  void OnProcessEnded(int slot) override;

 private:
  // Tells the rank waiting at `at` to run its program as the process of `slot`.
  void StartAt(int at, int slot);

  const int node_;
  int driver_slot_;
  std::deque<int> waiting_;  // ranks that never ran a program, by the slot they wait at
  std::deque<int> ended_;    // ranks whose worker ended, by that worker's slot
  std::set<int> running_;    // slots of the workers these ranks run now
  Send send_;
};

}  // namespace raympi
