// The supervisor: what MPI_Comm_spawn starts for the driver and for each worker. It forks the
// user's program before MPI_Init (so the program never joins MPI), holds the MPI connection to
// its raylet, waits for the program and reports how it ended. A worker that segfaults, aborts
// or is killed is then an event its raylet handles (the task is retried, the pool starts
// another worker), not a dead MPI process that makes mpirun end the whole job.
//
//   raympi --raympi-supervise=<role>,<bus>,<node>,<slot base>,<rank offset> ./app [args]
#pragma once

#include <string>

namespace raympi {

constexpr const char* kSuperviseFlag = "--raympi-supervise=";

// The supervisor's first argument: how its program finds the node and its slot.
std::string SuperviseArgument(bool driver, const std::string& bus_name, int node, int slot_base,
                              int rank_offset);

// Runs the supervisor (argv[1] is the --raympi-supervise argument, argv[2] the program);
// returns the process's exit code.
int RunSupervisor(int argc, char** argv);

}  // namespace raympi
