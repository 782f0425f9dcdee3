#include "raylet_rank/worker_supervisor.h"

#include <mpi.h>
#include <signal.h>
#include <sys/prctl.h>
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

int WaitFor(pid_t child) {
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

// Reports the end of the program to the raylet; a worker's supervisor then drains its slot's
// mailbox until the job's Shutdown (it sleeps on the futex meanwhile: no CPU).
void Report(const Bootstrap& b, pid_t child, int status) {
  auto bus = ShmBus::Attach(b.bus_name);
  if (!bus.ok()) return;  // the raylet is gone: the job is ending anyway
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
    (void)(*bus)->Send(kRayletSlot, EncodeFrame(e));
    return;
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;  // left the job normally
  *e.mutable_worker_died()->mutable_worker() = MakeAddress(b.node, b.slot_base);
  e.mutable_worker_died()->set_pid(static_cast<int32_t>(child));
  e.mutable_worker_died()->set_cause(cause);
  (void)(*bus)->Send(kRayletSlot, EncodeFrame(e));
  std::string frame;
  for (;;) {
    auto got = (*bus)->Receive(b.slot_base, &frame, std::chrono::seconds(1));
    if (!got.ok()) return;
    if (!*got) continue;
    rpc::Envelope message;
    if (!DecodeFrame(frame, &message).ok()) continue;
    if (message.has_shutdown()) return;
    AnswerForTheDead(**bus, b, child, cause, message);
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
  if (child < 0) {
    std::fprintf(stderr, "raympi: cannot fork %s: %s\n", argv[2], std::strerror(errno));
  } else {
    Report(b, child, WaitFor(child));
  }
  if (parent != MPI_COMM_NULL) MPI_Comm_disconnect(&parent);
  MPI_Finalize();
  return 0;
}

}  // namespace raympi
