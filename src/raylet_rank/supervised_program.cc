#include "raylet_rank/supervised_program.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/frame.h"
#include "common/shm_janitor.h"

namespace raympi {

pid_t StartProgram(char** argv, const std::string& bootstrap_argument, bool close_fds,
                   int keep_fd) {
  std::string bootstrap = bootstrap_argument;
  std::vector<char*> args;
  args.push_back(argv[0]);
  args.push_back(bootstrap.data());
  for (char** a = argv + 1; *a != nullptr; ++a) args.push_back(*a);
  args.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (close_fds) {
      signal(SIGPIPE, SIG_DFL);  // a pre-launched supervisor ignores it; the program must not
      if (keep_fd < 3) {
        close_range(3, UINT_MAX, 0);
      } else {
        close_range(3, keep_fd - 1, 0);
        close_range(keep_fd + 1, UINT_MAX, 0);
      }
    }
    execv(argv[0], args.data());
    std::fprintf(stderr, "raympi: cannot start %s: %s\n", argv[0], std::strerror(errno));
    _exit(127);
  }
  return child;
}

int OpenPidFd(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

bool Ended(int pid_fd) {
  pollfd p{pid_fd, POLLIN, 0};
  return pid_fd >= 0 && poll(&p, 1, 0) == 1;
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

void LeaveWithoutRaylet(const Bootstrap& b, pid_t child) {
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

int WaitForProgram(const Bootstrap& b, pid_t child, int raylet_fd,
                   const std::function<void()>& meanwhile) {
  int child_fd = OpenPidFd(child);
  if (child_fd >= 0 && raylet_fd >= 0) {
    pollfd fds[2] = {{child_fd, POLLIN, 0}, {raylet_fd, POLLIN, 0}};
    const int timeout_ms = meanwhile ? 50 : -1;
    while (fds[0].revents == 0) {
      int n = poll(fds, 2, timeout_ms);
      if (n < 0 && errno != EINTR) break;
      if (fds[1].revents != 0 && fds[0].revents == 0) LeaveWithoutRaylet(b, child);
      if (n == 0 && meanwhile) meanwhile();
    }
    close(child_fd);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

void ReportProgramEnd(ShmBus& bus, const Bootstrap& b, pid_t child, int status) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(b.node, b.slot_base);
  *e.mutable_dst() = MakeAddress(b.node, kRayletSlot);
  if (b.driver) {
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (!WIFEXITED(status)) {
      std::fprintf(stderr, "raympi: the driver (pid %d) was %s; ending the job\n",
                   static_cast<int>(child), DescribeWaitStatus(status).c_str());
    }
    e.mutable_driver_exit()->set_exit_code(code);
  } else {
    *e.mutable_worker_died()->mutable_worker() = MakeAddress(b.node, b.slot_base);
    e.mutable_worker_died()->set_pid(static_cast<int32_t>(child));
    e.mutable_worker_died()->set_cause(DescribeWaitStatus(status));
  }
  (void)bus.Send(kRayletSlot, EncodeFrame(e));
}

void AnswerForTheDead(ShmBus& bus, const DeadProgram& dead, const rpc::Envelope& message) {
  if (!message.has_get_object()) return;  // pushed tasks: the raylet tells their owners
  rpc::Envelope reply;
  *reply.mutable_src() = MakeAddress(dead.node, dead.slot);
  *reply.mutable_dst() = message.src();
  rpc::ObjectValue* v = reply.mutable_object_value();
  v->set_object_id(message.get_object().object_id());
  v->set_is_error(true);
  v->set_error_function("Get");
  v->set_error_message("the object is lost: its owner (node " + std::to_string(dead.node) +
                       ", pid " + std::to_string(dead.pid) + ") " + dead.cause);
  int slot = message.src().node() == dead.node ? message.src().slot() : kRayletSlot;
  (void)bus.Send(slot, EncodeFrame(reply));
}

}  // namespace raympi
