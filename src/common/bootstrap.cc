#include "common/bootstrap.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <vector>

namespace raympi {

namespace {
constexpr const char* kSupervised = "supervised";
constexpr const char* kFdPrefix = "fd:";
}  // namespace

std::string FormatBootstrap(const Bootstrap& b) {
  return std::string(b.driver ? "driver" : "worker") + "," + b.bus_name + "," +
         std::to_string(b.node) + "," + std::to_string(b.slot_base) + "," +
         std::to_string(b.rank_offset) + (b.supervised ? std::string(",") + kSupervised : "");
}

bool ParseBootstrap(const std::string& text, Bootstrap* out) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  std::string part;
  while (std::getline(stream, part, ',')) parts.push_back(part);
  if (parts.size() < 5 || parts.size() > 6 || (parts[0] != "driver" && parts[0] != "worker")) {
    return false;
  }
  out->driver = parts[0] == "driver";
  out->bus_name = parts[1];
  out->node = std::atoi(parts[2].c_str());
  out->slot_base = std::atoi(parts[3].c_str());
  out->rank_offset = std::atoi(parts[4].c_str());
  out->supervised = parts.size() == 6 && parts[5] == kSupervised;
  return true;
}

std::string BootstrapFdArgument(int fd) { return kFdPrefix + std::to_string(fd); }

bool IsBootstrapFd(const std::string& text) { return text.rfind(kFdPrefix, 0) == 0; }

std::string ReadBootstrapFd(const std::string& text) {
  const int fd = std::atoi(text.c_str() + std::strlen(kFdPrefix));
  std::string out;
  char buffer[512];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.back() == '\n') break;  // the supervisor writes one line
  }
  close(fd);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace raympi
