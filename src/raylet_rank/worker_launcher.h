// How a raylet starts the processes of its node. The node manager only asks for "the driver
// and/or n workers in slots [first, first+n)"; the launcher decides how.
#pragma once

#include <mpi.h>

#include <limits>
#include <string>
#include <vector>

#include "common/status.h"

namespace raympi {

struct LaunchRequest {
  std::string supervisor;  // the raympi binary: spawned, it runs `program` as a child
  std::string program;
  std::vector<std::string> driver_args;  // with_driver: the user's arguments
  bool with_driver = false;              // the driver takes slot `driver_slot`
  int driver_slot = 1;
  int num_workers = 0;
  int first_worker_slot = 0;  // workers take consecutive slots from here
  std::string bus_name;
  int node = 0;
};

class WorkerLauncher {
 public:
  virtual ~WorkerLauncher() = default;
  virtual Status Launch(const LaunchRequest& request) = 0;
  // Called once the launched processes were told to exit: waits for them to go.
  virtual void ReleaseAll() = 0;
  // How many more workers Launch can start now: no limit when spawning; a fixed pool of
  // pre-launched ranks has only those whose program is not running.
  virtual int StartableWorkers() const { return std::numeric_limits<int>::max(); }
  // The process of `slot` ended (a pre-launched rank may then run a fresh one).
  virtual void OnProcessEnded(int /*slot*/) {}
};

// Starts processes with MPI_Comm_spawn(_multiple), placed on this rank's host: a supervisor
// each (worker_supervisor.h), which runs the program. A spawned process's slot is
// slot_base + (its rank in the spawned world - rank_offset).
class MpiSpawnLauncher : public WorkerLauncher {
 public:
  Status Launch(const LaunchRequest& request) override;
  void ReleaseAll() override;

 private:
  std::vector<MPI_Comm> intercomms_;  // one per launch, disconnected at the end
};

}  // namespace raympi
