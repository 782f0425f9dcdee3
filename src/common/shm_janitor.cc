#include "common/shm_janitor.h"

#include <dirent.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace raympi {

namespace {

constexpr const char* kPrefix = "raympi-p";
char g_bus_name[256];

void OnTerminationSignal(int signal) {
  shm_unlink(g_bus_name);
  // Die of the same signal, so the launcher sees what happened.
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigaction(signal, &action, nullptr);
  raise(signal);
}

}  // namespace

std::string ShmPrefix(const std::string& job_key, int node) {
  return kPrefix + std::to_string(getpid()) + "-" + job_key + "-n" + std::to_string(node);
}

void RemoveStaleShm() {
  DIR* dir = opendir("/dev/shm");
  if (dir == nullptr) return;
  size_t prefix_length = std::strlen(kPrefix);
  while (dirent* entry = readdir(dir)) {
    if (std::strncmp(entry->d_name, kPrefix, prefix_length) != 0) continue;
    char* end = nullptr;
    long pid = std::strtol(entry->d_name + prefix_length, &end, 10);
    if (end == entry->d_name + prefix_length || *end != '-' || pid <= 0) continue;
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    shm_unlink((std::string("/") + entry->d_name).c_str());
  }
  closedir(dir);
}

void UnlinkOnTerminationSignal(const std::string& bus_name) {
  std::strncpy(g_bus_name, bus_name.c_str(), sizeof(g_bus_name) - 1);
  struct sigaction action {};
  action.sa_handler = OnTerminationSignal;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) sigaction(signal, &action, nullptr);
}

}  // namespace raympi
