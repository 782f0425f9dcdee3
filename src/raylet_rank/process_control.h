// What the raylet does to a worker process for placement groups: bind every thread of it to a
// set of PUs (and undo that), or kill it. Behind an interface so bundle bookkeeping is tested
// with a fake that records the calls.
#pragma once

#include <vector>

#include "common/status.h"

namespace raympi {

class ProcessControl {
 public:
  virtual ~ProcessControl() = default;
  // Binds every thread of `pid` to `pus` (OS indices); returns the PUs the process was allowed
  // before (its main thread's), to restore later with another Bind.
  virtual StatusOr<std::vector<int>> Bind(int pid, const std::vector<int>& pus) = 0;
  virtual Status Kill(int pid) = 0;
};

// Linux: sched_setaffinity on each thread in /proc/<pid>/task (threads started later inherit
// the binding from their creator); SIGKILL.
class LinuxProcessControl : public ProcessControl {
 public:
  StatusOr<std::vector<int>> Bind(int pid, const std::vector<int>& pus) override;
  Status Kill(int pid) override;
};

}  // namespace raympi
