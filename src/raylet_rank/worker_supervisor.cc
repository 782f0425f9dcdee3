#include "raylet_rank/worker_supervisor.h"

#include <mpi.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/bootstrap.h"
#include "common/frame.h"
#include "common/shm_bus.h"
#include "common/shm_janitor.h"

namespace raympi {

namespace {

// This process's rank in the world MPI_Comm_spawn made, known before MPI_Init.
int SpawnedRank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK"}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return 0;
}

// The program, in a child that dies with us (mpirun killing the job leaves no orphan).
pid_t StartProgram(char** program_argv, const Bootstrap& b) {
  std::string bootstrap = kBootstrapFlag + FormatBootstrap(b);
  std::vector<char*> argv;
  argv.push_back(program_argv[0]);
  argv.push_back(bootstrap.data());
  for (char** a = program_argv + 1; *a != nullptr; ++a) argv.push_back(*a);
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    execv(program_argv[0], argv.data());
    std::fprintf(stderr, "raympi: cannot start %s: %s\n", program_argv[0], std::strerror(errno));
    _exit(127);
  }
  return child;
}

// A descriptor that becomes readable when process `pid` ends (-1: gone already, or no pidfds).
int OpenPidFd(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

bool Ended(int pid_fd) {
  pollfd p{pid_fd, POLLIN, 0};
  return pid_fd >= 0 && poll(&p, 1, 0) == 1;
}

// The raylet ended while this node's processes still ran (killed, or it left after losing the
// GCS): nothing can go on here. Ends the program, removes the node's shared memory (the raylet
// could not) and leaves without MPI (its peer is gone).
[[noreturn]] void LeaveWithoutRaylet(const Bootstrap& b, pid_t child) {
  if (child > 0 && kill(child, SIGKILL) == 0) waitpid(child, nullptr, 0);
  RemoveShmWithPrefix(b.bus_name);
  if (b.driver) {
    std::fprintf(stderr,
                 "raympi: the raylet of node %d (pid %d%s) ended before the job did; the job "
                 "cannot go on and ends\n",
                 b.node, RayletPidOfSegment(b.bus_name), b.node == 0 ? ", the GCS's rank" : "");
  }
  std::_Exit(1);
}

// Waits for the program to end. If the raylet ends first, the node is gone: leaves.
int WaitForProgram(const Bootstrap& b, pid_t child, int raylet_fd) {
  int child_fd = OpenPidFd(child);
  if (child_fd >= 0 && raylet_fd >= 0) {
    pollfd fds[2] = {{child_fd, POLLIN, 0}, {raylet_fd, POLLIN, 0}};
    while (fds[0].revents == 0) {
      if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
      if (fds[1].revents != 0 && fds[0].revents == 0) LeaveWithoutRaylet(b, child);
    }
    close(child_fd);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Answers a message that reached the dead worker's mailbox when the sender would otherwise
// wait forever: a borrower asking for an object this worker owned learns it is lost.
void AnswerForTheDead(ShmBus& bus, const Bootstrap& b, pid_t child, const std::string& cause,
                      const rpc::Envelope& message) {
  if (!message.has_get_object()) return;  // pushed tasks: the raylet tells their owners
  rpc::Envelope reply;
  *reply.mutable_src() = MakeAddress(b.node, b.slot_base);
  *reply.mutable_dst() = message.src();
  rpc::ObjectValue* v = reply.mutable_object_value();
  v->set_object_id(message.get_object().object_id());
  v->set_is_error(true);
  v->set_error_function("Get");
  v->set_error_message("the object is lost: its owner (node " + std::to_string(b.node) + ", pid " +
                       std::to_string(child) + ") " + cause);
  int slot = message.src().node() == b.node ? message.src().slot() : kRayletSlot;
  (void)bus.Send(slot, EncodeFrame(reply));
}

// Reports the end of the program to the raylet, then drains the slot's mailbox until the
// job's Shutdown (sleeping on its futex meanwhile: no CPU), answering for the dead. Returns
// whether the job is abandoned: it ends without MPI's collective end (a node was lost).
bool ReportAndWaitForShutdown(ShmBus& bus, const Bootstrap& b, pid_t child, int status,
                              int raylet_fd) {
  using JobEnd = ShmBus::JobEnd;
  // A worker that exited 0 after the raylet marked the job's end left on its Shutdown. Before
  // that, exit(0) inside a task is a death like any other: its task must run again.
  if (!b.driver && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
      bus.job_end() != JobEnd::kRunning) {
    return bus.job_end() == JobEnd::kAbandoned;
  }
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(b.node, b.slot_base);
  *e.mutable_dst() = MakeAddress(b.node, kRayletSlot);
  const std::string cause = DescribeWaitStatus(status);
  if (b.driver) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (!WIFEXITED(status)) {
      std::fprintf(stderr, "raympi: the driver (pid %d) was %s; ending the job\n",
                   static_cast<int>(child), cause.c_str());
    }
    e.mutable_driver_exit()->set_exit_code(code);
  } else {
    *e.mutable_worker_died()->mutable_worker() = MakeAddress(b.node, b.slot_base);
    e.mutable_worker_died()->set_pid(static_cast<int32_t>(child));
    e.mutable_worker_died()->set_cause(cause);
  }
  (void)bus.Send(kRayletSlot, EncodeFrame(e));
  std::string frame;
  for (;;) {
    // The driver may have taken the Shutdown itself before it left; the raylet marked the bus
    // first. (A Shutdown sent after this check wakes the Receive below.)
    if (bus.job_end() != JobEnd::kRunning) return bus.job_end() == JobEnd::kAbandoned;
    auto got = bus.Receive(b.slot_base, &frame, std::chrono::seconds(1));
    if (!got.ok()) return true;
    if (!*got) {
      // Checked when the mailbox is empty: a Shutdown sent just before the raylet left wins.
      if (Ended(raylet_fd)) LeaveWithoutRaylet(b, 0);
      continue;
    }
    rpc::Envelope message;
    if (!DecodeFrame(frame, &message).ok()) continue;
    if (message.has_shutdown()) return bus.job_end() == JobEnd::kAbandoned;
    AnswerForTheDead(bus, b, child, cause, message);
  }
}

}  // namespace

std::string SuperviseArgument(bool driver, const std::string& bus_name, int node, int slot_base,
                              int rank_offset) {
  return kSuperviseFlag + FormatBootstrap({driver, bus_name, node, slot_base, rank_offset});
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) +
           (name != nullptr ? " (SIG" + std::string(name) + ")" : std::string());
  }
  return "ended (wait status " + std::to_string(status) + ")";
}

int RunSupervisor(int argc, char** argv) {
  Bootstrap b;
  if (argc < 3 || !ParseBootstrap(argv[1] + std::strlen(kSuperviseFlag), &b) || b.supervised) {
    std::fprintf(stderr, "raympi: malformed supervisor arguments\n");
    return 2;
  }
  // From here `b` describes the program: its own slot, started by a supervisor.
  b.slot_base = b.Slot(SpawnedRank());
  b.rank_offset = 0;
  b.supervised = true;
  // Fork before MPI_Init: the program is a plain process, and MPI never sees it.
  pid_t child = StartProgram(argv + 2, b);
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm parent = MPI_COMM_NULL;
  MPI_Comm_get_parent(&parent);
  // The raylet runs on this host (it spawned us); its pid is in the node's segment names.
  int raylet_fd = OpenPidFd(RayletPidOfSegment(b.bus_name));
  // mpirun ending the job after the raylet was killed: nobody else would unlink the node's bus
  // and store.
  UnlinkOnTerminationSignal(b.bus_name, raylet_fd);
  auto bus = ShmBus::Attach(b.bus_name);
  if (!bus.ok()) LeaveWithoutRaylet(b, child);  // the node is gone already
  int status = W_EXITCODE(127, 0);              // reported as a worker that could not start
  if (child < 0) {
    std::fprintf(stderr, "raympi: cannot fork %s: %s\n", argv[2], std::strerror(errno));
  } else {
    status = WaitForProgram(b, child, raylet_fd);
  }
  if (ReportAndWaitForShutdown(**bus, b, child, status, raylet_fd)) {
    // The raylet leaves without MPI's collective end (a lost peer could never join it).
    std::_Exit(0);
  }
  if (parent != MPI_COMM_NULL) MPI_Comm_disconnect(&parent);
  MPI_Finalize();
  return 0;
}

}  // namespace raympi
