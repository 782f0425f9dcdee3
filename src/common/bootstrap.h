// How a process of a node learns its place: its role, the node's bus, its node and slot. The
// raylet passes it to each supervisor (--raympi-supervise=...), the supervisor to its program
// (--raympi-bootstrap=...): one text format, "role,bus,node,slot base,rank offset[,supervised]".
#pragma once

#include <string>

namespace raympi {

constexpr const char* kBootstrapFlag = "--raympi-bootstrap=";

struct Bootstrap {
  bool driver = false;
  std::string bus_name;
  int node = 0;
  int slot_base = 0;
  int rank_offset = 0;
  bool supervised = false;  // started by a supervisor: the process never joins MPI

  // A spawned process's slot from its rank in the world MPI_Comm_spawn made.
  int Slot(int rank) const { return slot_base + rank - rank_offset; }
};

std::string FormatBootstrap(const Bootstrap& b);
// False unless `text` is exactly what FormatBootstrap writes.
bool ParseBootstrap(const std::string& text, Bootstrap* out);

// A pre-launched program (no-spawn mode) starts before its node exists, so its bootstrap
// argument is "fd:N": the supervisor writes the text to pipe N once the raylet gives the
// process its place.
std::string BootstrapFdArgument(int fd);
bool IsBootstrapFd(const std::string& text);
// Reads the bootstrap from the pipe of an "fd:N" argument (blocks until the supervisor writes
// it) and closes the pipe. "" when the pipe closed first: the job ended before the process
// was given a place.
std::string ReadBootstrapFd(const std::string& text);

}  // namespace raympi
