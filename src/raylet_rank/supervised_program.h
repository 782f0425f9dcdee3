// What every supervisor does with its program, spawned (worker_supervisor.h) or pre-launched
// (prelaunched_supervisor.h): start it as a plain child that dies with the supervisor, see it
// end, report the end to the raylet and answer for it once it is dead.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "common/bootstrap.h"
#include "common/shm_bus.h"
#include "raympi.pb.h"

namespace raympi {

// Forks and execs argv[0] with `bootstrap_argument` inserted as its first argument; the child
// gets SIGKILL when the supervisor dies (no orphans). With `close_fds`, the child keeps only
// stdin/out/err and `keep_fd` (a supervisor that already joined MPI must not hand its sockets
// on) and SIGPIPE back at its default. Returns the child's pid, or -1 if fork failed.
pid_t StartProgram(char** argv, const std::string& bootstrap_argument, bool close_fds = false,
                   int keep_fd = -1);

// A descriptor that becomes readable when process `pid` ends (-1: gone already, or no pidfds).
int OpenPidFd(pid_t pid);
// Whether the process behind `pid_fd` has ended (false for -1).
bool Ended(int pid_fd);

// How a process ended, in words: "exited with code 3", "killed by signal 9 (SIGKILL)".
std::string DescribeWaitStatus(int status);

// The raylet ended while this node's processes still ran (killed, or it left after losing the
// GCS): nothing can go on here. Ends the program (if `child` > 0), removes the node's shared
// memory (the raylet could not) and leaves without MPI (its peer is gone).
[[noreturn]] void LeaveWithoutRaylet(const Bootstrap& b, pid_t child);

// Waits for the program `child` to end and returns its wait status. If the raylet ends first,
// the node is gone: leaves (LeaveWithoutRaylet). With `meanwhile`, calls it every 50 ms while
// waiting (a supervisor that also answers for an earlier, dead program).
int WaitForProgram(const Bootstrap& b, pid_t child, int raylet_fd,
                   const std::function<void()>& meanwhile = nullptr);

// Tells the raylet that the program of `b` (pid `child`) ended with wait status `status`:
// DriverExit for the driver, WorkerDied for a worker.
void ReportProgramEnd(ShmBus& bus, const Bootstrap& b, pid_t child, int status);

// A program that ended, and the slot whose mailbox its supervisor now serves.
struct DeadProgram {
  int node = 0;
  int slot = 0;
  pid_t pid = 0;
  std::string cause;  // DescribeWaitStatus of its end
};

// Answers a message that reached a dead program's mailbox when the sender would otherwise wait
// forever: a borrower asking for an object the dead program owned learns it is lost.
void AnswerForTheDead(ShmBus& bus, const DeadProgram& dead, const rpc::Envelope& message);

}  // namespace raympi
