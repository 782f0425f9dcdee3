// Naming and clean-up of the nodes' spill directories (docs/objects.md, "Spilling"). Each
// raylet spills into BASE/raympi-spill-<host>-p<raylet pid>-<job>-node<N>/ and removes it at the
// end. A raylet killed by a signal cannot; the next raylet on the same host removes directories
// whose raylet is gone. Only its own host's: on a shared file system another host's pids mean
// nothing here.
#pragma once

#include <sys/types.h>

#include <string>

namespace raympi {

std::string SpillDirPath(const std::string& base, const std::string& host, pid_t raylet_pid,
                         const std::string& job_key, int node);

// Removes BASE's spill directories of `host` whose raylet no longer runs. Returns how many.
int RemoveStaleSpillDirs(const std::string& base, const std::string& host);

}  // namespace raympi
