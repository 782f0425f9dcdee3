#include "common/shm_janitor.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/shm_segment.h"

namespace raympi {

namespace {

constexpr const char* kPrefix = "raympi-p";
char g_bus_name[256];
char g_store_name[256];
int g_only_if_ended_fd = -1;

// How long a supervisor's handler waits for its raylet to end. mpirun signals every process
// of the job at once, and a raylet that Open MPI itself ends (its peer died) runs none of our
// handlers: the supervisor that waits a little sees it gone and unlinks for it. Below the 1 s
// after which mpirun sends SIGKILL (odls_base_sigkill_timeout).
constexpr int kWaitForRayletMs = 700;

void OnTerminationSignal(int signal) {
  pollfd ended{g_only_if_ended_fd, POLLIN, 0};  // poll and shm_unlink are async-signal-safe
  if (g_only_if_ended_fd < 0 || poll(&ended, 1, kWaitForRayletMs) == 1) {
    shm_unlink(g_bus_name);
    shm_unlink(g_store_name);
  }
  // Die of the same signal, so the launcher sees what happened.
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigaction(signal, &action, nullptr);
  raise(signal);
}

}  // namespace

std::string ShmPrefix(const std::string& job_key, int node) {
  return ShmPrefixOf(static_cast<int>(getpid()), job_key, node);
}

std::string ShmPrefixOf(int pid, const std::string& job_key, int node) {
  return kPrefix + std::to_string(pid) + "-" + job_key + "-n" + std::to_string(node);
}

std::string StoreNameForBus(const std::string& bus_name) { return bus_name + "-store"; }

int RayletPidOfSegment(const std::string& name) {
  size_t start = name.rfind(kPrefix, 1);
  if (start == std::string::npos) return 0;
  start += std::strlen(kPrefix);
  char* end = nullptr;
  long pid = std::strtol(name.c_str() + start, &end, 10);
  if (end == name.c_str() + start || *end != '-' || pid <= 0) return 0;
  return static_cast<int>(pid);
}

void RemoveStaleShm() {
  for (const std::string& name : ListShm(kPrefix)) {
    int pid = RayletPidOfSegment(name);
    if (pid == 0 || kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    shm_unlink(("/" + name).c_str());
  }
}

void UnlinkOnTerminationSignal(const std::string& bus_name, int only_if_ended_pidfd) {
  g_only_if_ended_fd = only_if_ended_pidfd;
  std::strncpy(g_bus_name, bus_name.c_str(), sizeof(g_bus_name) - 1);
  std::strncpy(g_store_name, StoreNameForBus(bus_name).c_str(), sizeof(g_store_name) - 1);
  struct sigaction action {};
  action.sa_handler = OnTerminationSignal;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) sigaction(signal, &action, nullptr);
}

}  // namespace raympi
