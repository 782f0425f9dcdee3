// Point-to-point frames between the runtime ranks (GCS, raylets) over MPI.
// Thread-safety: not thread-safe; one thread per process makes every MPI call, so
// MPI_THREAD_FUNNELED suffices (and keeps one-sided MPI working over TCP).
#pragma once

#include <mpi.h>

#include <list>
#include <string>

#include "common/status.h"

namespace raympi {

// What the rank event loops need from a network; a fake implements it in unit tests.
class Transport {
 public:
  virtual ~Transport() = default;
  // Queues `frame` for `rank`; never blocks.
  virtual void Send(int rank, std::string frame) = 0;
  // Takes one arrived frame if there is one.
  virtual bool Poll(std::string* frame, int* source) = 0;
  // Moves queued sends forward; true while some are unfinished.
  virtual bool Progress() = 0;
};

class MpiTransport : public Transport {
 public:
  explicit MpiTransport(MPI_Comm comm, int tag = 7001);
  ~MpiTransport() override;  // completes outstanding sends
  void Send(int rank, std::string frame) override;
  bool Poll(std::string* frame, int* source) override;
  bool Progress() override;

 private:
  struct PendingSend {
    std::string bytes;
    MPI_Request request;
  };
  MPI_Comm comm_;
  int tag_;
  std::list<PendingSend> sends_;
};

}  // namespace raympi
