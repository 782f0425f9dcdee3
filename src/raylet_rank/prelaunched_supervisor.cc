#include "raylet_rank/prelaunched_supervisor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

#include "common/bootstrap.h"
#include "common/frame.h"
#include "common/shm_bus.h"
#include "common/shm_janitor.h"
#include "raylet_rank/supervised_program.h"

namespace raympi {

namespace {

using JobEnd = ShmBus::JobEnd;

// argv for execv, pointing into `command`.
std::vector<char*> ArgvOf(const std::vector<std::string>& command) {
  std::vector<char*> argv;
  for (const std::string& arg : command) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// Drains the mailboxes of the dead programs, answering what would otherwise wait forever; not
// `except`, where the raylet's StartProgram will arrive.
void AnswerEveryDead(ShmBus& bus, const std::vector<DeadProgram>& dead, int except = -1) {
  std::string frame;
  for (const DeadProgram& d : dead) {
    while (d.slot != except) {
      auto got = bus.TryReceive(d.slot, &frame);
      if (!got.ok() || !*got) break;
      rpc::Envelope message;
      if (DecodeFrame(frame, &message).ok()) AnswerForTheDead(bus, d, message);
    }
  }
}

// Waits at mailbox `at` for the raylet's StartProgram and returns its slot; nullopt when the
// job ends first. Answers for `dead` meanwhile (the last of them, if any, is the one at `at`).
std::optional<int> WaitForStart(ShmBus& bus, const Bootstrap& b, int at, int raylet_fd,
                                const std::vector<DeadProgram>& dead) {
  std::string frame;
  for (;;) {
    // The raylet marks the bus before it passes the job's Shutdown on, and a rank that was
    // never started gets no Shutdown: the mark is how it learns.
    if (bus.job_end() != JobEnd::kRunning) return std::nullopt;
    AnswerEveryDead(bus, dead, at);
    auto got = bus.Receive(at, &frame, std::chrono::milliseconds(100));
    if (!got.ok()) return std::nullopt;
    if (!*got) {
      if (bus.job_end() == JobEnd::kRunning && Ended(raylet_fd)) LeaveWithoutRaylet(b, 0);
      continue;
    }
    rpc::Envelope message;
    if (!DecodeFrame(frame, &message).ok()) continue;
    if (message.has_start_program()) return message.start_program().slot();
    if (message.has_shutdown()) return std::nullopt;
    for (const DeadProgram& d : dead) {
      if (d.slot == at) AnswerForTheDead(bus, d, message);
    }
  }
}

}  // namespace

WaitingProgram ForkWaitingProgram(const std::vector<std::string>& command) {
  WaitingProgram program;
  int fds[2];
  if (pipe(fds) != 0) return program;
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);  // only the supervisor writes the place
  std::vector<char*> argv = ArgvOf(command);
  program.pid = StartProgram(argv.data(), kBootstrapFlag + BootstrapFdArgument(fds[0]));
  close(fds[0]);
  program.bootstrap_fd = fds[1];
  return program;
}

void EndWaitingProgram(WaitingProgram* program) {
  if (program->bootstrap_fd >= 0) close(program->bootstrap_fd);  // it reads EOF and leaves
  program->bootstrap_fd = -1;
  if (program->pid > 0) {
    kill(program->pid, SIGKILL);
    while (waitpid(program->pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  program->pid = -1;
}

bool RunPrelaunchedSupervisor(const PrelaunchedPlace& place, WaitingProgram program,
                              const std::vector<std::string>& command) {
  signal(SIGPIPE, SIG_IGN);  // a program that ended before reading its place
  Bootstrap b{place.driver, place.bus_name, place.node, place.home_slot, 0, true};
  int raylet_fd = OpenPidFd(place.raylet_pid);
  // mpirun ending the job after the raylet was killed: nobody else would unlink the node's bus.
  UnlinkOnTerminationSignal(b.bus_name, raylet_fd);
  auto attached = ShmBus::Attach(b.bus_name);
  if (!attached.ok()) LeaveWithoutRaylet(b, program.pid);  // the node is gone already
  ShmBus& bus = **attached;

  std::optional<int> slot = WaitForStart(bus, b, place.home_slot, raylet_fd, {});
  if (!slot) {
    EndWaitingProgram(&program);
    return bus.job_end() == JobEnd::kAbandoned;
  }
  b.slot_base = *slot;
  const std::string line = FormatBootstrap(b) + "\n";
  if (write(program.bootstrap_fd, line.data(), line.size()) < 0 && errno != EPIPE) {
    std::fprintf(stderr, "raympi: cannot pass its place to %s: %s\n", command[0].c_str(),
                 std::strerror(errno));
  }
  close(program.bootstrap_fd);

  std::vector<char*> argv = ArgvOf(command);
  std::vector<DeadProgram> dead;  // earlier programs of this rank: it answers for them
  pid_t child = program.pid;
  for (;;) {
    int status = W_EXITCODE(127, 0);  // reported as a worker that could not start
    if (child > 0) {
      status = WaitForProgram(
          b, child, raylet_fd,
          dead.empty() ? std::function<void()>() : [&] { AnswerEveryDead(bus, dead); });
    }
    // A worker that exited 0 after the raylet marked the job's end left on its Shutdown.
    if (!b.driver && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
        bus.job_end() != JobEnd::kRunning) {
      return bus.job_end() == JobEnd::kAbandoned;
    }
    ReportProgramEnd(bus, b, child, status);
    dead.push_back({b.node, b.slot_base, child, DescribeWaitStatus(status)});
    // The driver is never started again; a worker's rank may run a replacement.
    slot = WaitForStart(bus, b, b.slot_base, raylet_fd, dead);
    if (!slot) return bus.job_end() == JobEnd::kAbandoned;
    b.slot_base = *slot;
    // Already in MPI: the fresh program gets its place as an argument, and none of our fds.
    child = StartProgram(argv.data(), kBootstrapFlag + FormatBootstrap(b), /*close_fds=*/true);
    if (child < 0) {
      std::fprintf(stderr, "raympi: cannot fork %s: %s\n", command[0].c_str(),
                   std::strerror(errno));
    }
  }
}

}  // namespace raympi
