#include "objects/rma_window.h"

#include <climits>
#include <string>
#include <utility>

#include "common/logging.h"

namespace raympi {

std::string MpiErrorText(const char* call, int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) {
    return std::string(call) + ": MPI error " + std::to_string(code);
  }
  return std::string(call) + ": " + std::string(text, static_cast<size_t>(length));
}

Status CheckReadRange(int node, uint64_t window_bytes, uint64_t offset, uint64_t bytes) {
  // Written as two comparisons so that a huge offset cannot wrap offset + bytes around.
  if (offset > window_bytes || bytes > window_bytes - offset) {
    return Status::InvalidArgument("read of " + std::to_string(bytes) + " bytes at offset " +
                                   std::to_string(offset) + " is outside node " +
                                   std::to_string(node) + "'s window of " +
                                   std::to_string(window_bytes) + " bytes");
  }
  return Status::Ok();
}

StatusOr<std::unique_ptr<MpiRmaWindow>> MpiRmaWindow::Create(
    MPI_Comm comm, void* arena, size_t bytes, const std::map<int, int>& rank_of_node) {
  int num_ranks = 0, my_rank = 0;
  MPI_Comm_size(comm, &num_ranks);
  MPI_Comm_rank(comm, &my_rank);
  // Every rank computes the same mapping, so a bad one fails everywhere and nobody is left
  // waiting in the collectives below.
  for (const auto& [node, rank] : rank_of_node) {
    if (rank < 0 || rank >= num_ranks) {
      return Status::InvalidArgument("node " + std::to_string(node) + " maps to rank " +
                                     std::to_string(rank) + ", outside a communicator of " +
                                     std::to_string(num_ranks) + " ranks");
    }
  }
  if (bytes > static_cast<size_t>(LLONG_MAX)) {
    return Status::InvalidArgument("arena of " + std::to_string(bytes) + " bytes is too large");
  }

  // A duplicate with MPI_ERRORS_RETURN, so a failure comes back as a Status instead of
  // aborting the job, without changing the caller's communicator. The window keeps its own
  // reference, so the duplicate can be freed at once.
  MPI_Comm dup = MPI_COMM_NULL;
  int rc = MPI_Comm_dup(comm, &dup);
  if (rc != MPI_SUCCESS) return Status::Internal(MpiErrorText("MPI_Comm_dup", rc));
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);

  uint64_t mine = bytes;
  std::vector<uint64_t> sizes(static_cast<size_t>(num_ranks));
  rc = MPI_Allgather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, dup);
  if (rc != MPI_SUCCESS) {
    MPI_Comm_free(&dup);
    return Status::Internal(MpiErrorText("MPI_Allgather", rc));
  }
  std::unordered_map<int, uint64_t> window_size;
  for (const auto& [node, rank] : rank_of_node) window_size[node] = sizes[rank];

  MPI_Win win = MPI_WIN_NULL;
  rc = MPI_Win_create(arena, static_cast<MPI_Aint>(bytes), /*disp_unit=*/1, MPI_INFO_NULL, dup,
                      &win);
  MPI_Comm_free(&dup);
  if (rc != MPI_SUCCESS) return Status::Internal(MpiErrorText("MPI_Win_create", rc));
  MPI_Win_set_errhandler(win, MPI_ERRORS_RETURN);
  // One epoch for the window's whole life: NOCHECK because nobody ever takes an exclusive lock.
  rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, win);
  if (rc != MPI_SUCCESS) {
    MPI_Win_free(&win);
    return Status::Internal(MpiErrorText("MPI_Win_lock_all", rc));
  }
  return std::unique_ptr<MpiRmaWindow>(new MpiRmaWindow(win, rank_of_node, std::move(window_size)));
}

MpiRmaWindow::MpiRmaWindow(MPI_Win win, std::map<int, int> rank_of_node,
                           std::unordered_map<int, uint64_t> window_size)
    : win_(win), rank_of_node_(std::move(rank_of_node)), window_size_(std::move(window_size)) {}

MpiRmaWindow::~MpiRmaWindow() {
  Status st = Close();
  if (!st.ok()) RAYMPI_LOG_ERROR("closing the object window: {}", st.ToString());
}

Status MpiRmaWindow::Close() {
  if (win_ == MPI_WIN_NULL) return Status::Ok();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {
    win_ = MPI_WIN_NULL;
    return Status::Internal("the object window outlived MPI_Finalize; it was never freed");
  }
  // The reads' destinations are in the caller's arena: they must land before anyone reuses it.
  for (auto& [handle, request] : requests_) MPI_Wait(&request, MPI_STATUS_IGNORE);
  requests_.clear();
  int rc = MPI_Win_unlock_all(win_);
  Status st =
      rc == MPI_SUCCESS ? Status::Ok() : Status::Internal(MpiErrorText("MPI_Win_unlock_all", rc));
  rc = MPI_Win_free(&win_);
  win_ = MPI_WIN_NULL;
  if (rc != MPI_SUCCESS && st.ok()) st = Status::Internal(MpiErrorText("MPI_Win_free", rc));
  return st;
}

StatusOr<uint64_t> MpiRmaWindow::WindowSize(int node) const {
  auto it = window_size_.find(node);
  if (it == window_size_.end()) {
    return Status::NotFound("no object window for node " + std::to_string(node));
  }
  return it->second;
}

StatusOr<RmaReader::Handle> MpiRmaWindow::StartRead(int node, uint64_t offset, size_t bytes,
                                                    void* dest) {
  if (win_ == MPI_WIN_NULL) return Status::Unavailable("the object window is closed");
  StatusOr<uint64_t> window = WindowSize(node);
  if (!window.ok()) return window.status();
  RAYMPI_RETURN_IF_ERROR(CheckReadRange(node, *window, offset, bytes));
  if (bytes > static_cast<size_t>(INT_MAX)) {
    return Status::InvalidArgument("one read is at most " + std::to_string(INT_MAX) +
                                   " bytes, asked " + std::to_string(bytes) +
                                   " (split it into chunks)");
  }
  MPI_Request request = MPI_REQUEST_NULL;
  int rc =
      MPI_Rget(dest, static_cast<int>(bytes), MPI_BYTE, rank_of_node_.at(node),
               static_cast<MPI_Aint>(offset), static_cast<int>(bytes), MPI_BYTE, win_, &request);
  if (rc != MPI_SUCCESS) return Status::IoError(MpiErrorText("MPI_Rget", rc));
  Handle handle = next_handle_++;
  requests_.emplace(handle, request);
  return handle;
}

StatusOr<bool> MpiRmaWindow::Poll(Handle handle) {
  auto it = requests_.find(handle);
  if (it == requests_.end()) {
    return Status::NotFound("no read in flight with handle " + std::to_string(handle));
  }
  int done = 0;
  int rc = MPI_Test(&it->second, &done, MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS) {
    // The request is freed by a failed completion; forget it either way.
    requests_.erase(it);
    return Status::IoError(MpiErrorText("MPI_Rget completion", rc));
  }
  if (!done) return false;
  requests_.erase(it);
  return true;
}

}  // namespace raympi
