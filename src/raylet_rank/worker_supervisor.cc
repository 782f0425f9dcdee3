#include "raylet_rank/worker_supervisor.h"

#include <mpi.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/bootstrap.h"
#include "common/frame.h"
#include "common/shm_bus.h"
#include "common/shm_janitor.h"
#include "raylet_rank/supervised_program.h"

namespace raympi {

namespace {

// This process's rank in the world MPI_Comm_spawn made, known before MPI_Init.
int SpawnedRank() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK"}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return 0;
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
  ReportProgramEnd(bus, b, child, status);
  const DeadProgram dead{b.node, b.slot_base, child, DescribeWaitStatus(status)};
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
    AnswerForTheDead(bus, dead, message);
  }
}

}  // namespace

std::string SuperviseArgument(bool driver, const std::string& bus_name, int node, int slot_base,
                              int rank_offset) {
  return kSuperviseFlag + FormatBootstrap({driver, bus_name, node, slot_base, rank_offset});
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
  pid_t child = StartProgram(argv + 2, kBootstrapFlag + FormatBootstrap(b));
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
