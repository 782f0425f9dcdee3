// WorkerPool: the processes of one node by slot: which are starting, idle or leased. It starts
// workers in batches through a WorkerLauncher and hands idle ones out for leases, reusing them.
//
// Thread-safety: single-threaded (the raylet's event loop).
#pragma once

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "raylet_rank/worker_launcher.h"

namespace raympi {

// Mailboxes of a node's bus: the raylet's, the driver's, and a slot for every worker the node
// may start over the job (slots of dead workers are not reused). Room for two workers per CPU
// (tasks, and as many again blocked in Get or hosting CPU-less actors) plus replacements, and
// never fewer than 128; a fixed pool of pre-launched ranks needs one per rank and its restarts.
// RAYMPI_NODE_PROCESS_SLOTS overrides it.
int NodeProcessSlots(double num_cpus, int prelaunched_workers);

class WorkerPool {
 public:
  // `base` holds the program, bus and node; slots [first_slot, max_slots) are for workers.
  WorkerPool(WorkerLauncher* launcher, LaunchRequest base, int first_slot, int max_slots);

  // Starts `num_workers` workers, and the driver in the same launch when `with_driver`; fewer
  // when the node's slots run out (Unavailable when none is left).
  Status Start(int num_workers, bool with_driver);
  // A started process attached to the bus.
  void OnReady(int slot);
  std::optional<int> PopIdle();
  void Release(int slot);  // back to idle after its lease ended
  // The process ended; the slot is never reused. Returns whether it had become ready.
  bool MarkDead(int slot);
  bool IsAlive(int slot) const;

  int num_starting() const { return num_starting_; }
  bool IsWorker(int slot) const { return state_.count(slot) > 0; }
  // Every slot that was started (driver included), to tell them the job is over.
  std::vector<int> StartedSlots() const;

 private:
  enum class State { kStarting, kIdle, kLeased, kDead };
  WorkerLauncher* launcher_;
  LaunchRequest base_;
  int next_slot_;
  const int max_slots_;
  int num_starting_ = 0;
  bool driver_started_ = false;
  std::map<int, State> state_;
  std::deque<int> idle_;
};

}  // namespace raympi
