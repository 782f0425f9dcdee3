#include "common/mpi_transport.h"

#include <climits>

#include "common/logging.h"

namespace raympi {

MpiTransport::MpiTransport(MPI_Comm comm, int tag) : comm_(comm), tag_(tag) {}

MpiTransport::~MpiTransport() {
  for (auto& s : sends_) MPI_Wait(&s.request, MPI_STATUS_IGNORE);
}

void MpiTransport::Send(int rank, std::string frame) {
  if (frame.size() > static_cast<size_t>(INT_MAX)) {
    // Control frames carry no bulk data; objects this large move by RMA (docs/design.md).
    RAYMPI_LOG_ERROR("dropping a {}-byte frame to rank {}: larger than 2 GiB", frame.size(), rank);
    return;
  }
  sends_.push_back(PendingSend{std::move(frame), MPI_REQUEST_NULL});
  PendingSend& s = sends_.back();
  MPI_Isend(s.bytes.data(), static_cast<int>(s.bytes.size()), MPI_BYTE, rank, tag_, comm_,
            &s.request);
}

bool MpiTransport::Poll(std::string* frame, int* source) {
  int flag = 0;
  MPI_Message message;
  MPI_Status status;
  MPI_Improbe(MPI_ANY_SOURCE, tag_, comm_, &flag, &message, &status);
  if (!flag) return false;
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  frame->resize(count);
  MPI_Mrecv(frame->data(), count, MPI_BYTE, &message, MPI_STATUS_IGNORE);
  *source = status.MPI_SOURCE;
  return true;
}

bool MpiTransport::Progress() {
  for (auto it = sends_.begin(); it != sends_.end();) {
    int done = 0;
    MPI_Test(&it->request, &done, MPI_STATUS_IGNORE);
    it = done ? sends_.erase(it) : std::next(it);
  }
  return !sends_.empty();
}

}  // namespace raympi
