#include "objects/spill_dir.h"

#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

namespace raympi {

namespace {
std::string HostPrefix(const std::string& host) { return "raympi-spill-" + host + "-p"; }
}  // namespace

std::string SpillDirPath(const std::string& base, const std::string& host, pid_t raylet_pid,
                         const std::string& job_key, int node) {
  return base + "/" + HostPrefix(host) + std::to_string(raylet_pid) + "-" + job_key + "-node" +
         std::to_string(node);
}

int RemoveStaleSpillDirs(const std::string& base, const std::string& host) {
  namespace fs = std::filesystem;
  const std::string prefix = HostPrefix(host);
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(base, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0 || !entry.is_directory(ec)) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
    if (end == name.c_str() + prefix.size() || *end != '-' || pid <= 0) continue;
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    fs::remove_all(entry.path(), ec);
    if (!ec) ++removed;
  }
  return removed;
}

}  // namespace raympi
