// No-spawn mode, the rank side (`raympi --prelaunched`, srun direct launch): every rank of a
// node but its raylet is a supervisor that the launcher started with the job. Before MPI_Init
// it forks the program, which waits in raympi::Init for its place (PLATFORM.md: a rank picks
// its role before MPI_Init); once the node's raylet starts it (StartProgram), the supervisor
// passes the place on and supervises the program as a spawned supervisor does. When its worker
// dies it answers for the dead and, asked by the raylet, starts a fresh one in a new slot.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace raympi {

// The program forked before MPI_Init, waiting for its place on a pipe.
struct WaitingProgram {
  pid_t pid = -1;
  int bootstrap_fd = -1;  // the pipe's write end
};

// Forks `command` (the resolved program and its arguments) with its bootstrap argument
// pointing at a pipe. Call before MPI_Init.
WaitingProgram ForkWaitingProgram(const std::vector<std::string>& command);

// The job did not start (bad layout): ends the waiting program.
void EndWaitingProgram(WaitingProgram* program);

// Where this rank's programs belong, known once the node's raylet made its bus.
struct PrelaunchedPlace {
  bool driver = false;  // the first supervisor rank of node 0
  std::string bus_name;
  int node = 0;
  int home_slot = 0;  // the slot it waits at for the raylet's first StartProgram
  int raylet_pid = 0;
};

// Supervises this rank's programs until the job's end; the bus must exist. Returns whether
// the job is abandoned (a node was lost: leave without MPI's collective end).
bool RunPrelaunchedSupervisor(const PrelaunchedPlace& place, WaitingProgram program,
                              const std::vector<std::string>& command);

}  // namespace raympi
