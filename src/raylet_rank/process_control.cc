#include "raylet_rank/process_control.h"

#include <dirent.h>
#include <sched.h>
#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace raympi {

namespace {

Status ErrnoStatus(const std::string& call) {
  return Status::Internal(call + " failed: " + std::strerror(errno));
}

// Binds each thread listed now; returns how many it bound (0: the process is gone).
StatusOr<int> BindThreads(int pid, const cpu_set_t& set) {
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* tasks = opendir(dir.c_str());
  if (tasks == nullptr) return ErrnoStatus("opendir " + dir);
  int bound = 0;
  Status status = Status::Ok();
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    pid_t tid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (sched_setaffinity(tid, sizeof(set), &set) == 0) {
      ++bound;
    } else if (errno != ESRCH) {  // a thread that just ended is no error
      status = ErrnoStatus("sched_setaffinity of thread " + std::to_string(tid));
    }
  }
  closedir(tasks);
  if (!status.ok()) return status;
  return bound;
}

}  // namespace

StatusOr<std::vector<int>> LinuxProcessControl::Bind(int pid, const std::vector<int>& pus) {
  cpu_set_t before;
  CPU_ZERO(&before);
  if (sched_getaffinity(pid, sizeof(before), &before) != 0) {
    return ErrnoStatus("sched_getaffinity of pid " + std::to_string(pid));
  }
  std::vector<int> previous;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &before)) previous.push_back(cpu);
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int pu : pus) {
    if (pu < 0 || pu >= CPU_SETSIZE) {
      return Status::InvalidArgument("PU " + std::to_string(pu) + " is out of range");
    }
    CPU_SET(pu, &set);
  }
  // Twice: a thread started during the first pass may have copied its creator's old mask.
  for (int pass = 0; pass < 2; ++pass) {
    auto bound = BindThreads(pid, set);
    if (!bound.ok()) return bound.status();
  }
  return previous;
}

Status LinuxProcessControl::Kill(int pid) {
  if (pid <= 0) return Status::InvalidArgument("no pid to kill");
  if (kill(pid, SIGKILL) != 0 && errno != ESRCH) return ErrnoStatus("kill");
  return Status::Ok();
}

}  // namespace raympi
