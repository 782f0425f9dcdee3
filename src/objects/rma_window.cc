#include "objects/rma_window.h"

#include <climits>
#include <cstdint>
#include <string>
#include <utility>

#include "common/logging.h"
#include "objects/object_store.h"

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

namespace {

// Exchanges every rank's window size, then makes the window over `base` and opens its
// passive-target epoch (one for the window's whole life: NOCHECK because nobody ever takes an
// exclusive lock). Collective over `comm`.
Status MakeWindow(MPI_Comm comm, const void* base, size_t bytes,
                  const std::map<int, int>& rank_of_node, MPI_Win* win,
                  std::unordered_map<int, uint64_t>* size_of_node) {
  int num_ranks = 0;
  MPI_Comm_size(comm, &num_ranks);
  uint64_t mine = bytes;
  std::vector<uint64_t> sizes(static_cast<size_t>(num_ranks));
  int rc = MPI_Allgather(&mine, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, comm);
  if (rc != MPI_SUCCESS) return Status::Internal(MpiErrorText("MPI_Allgather", rc));
  for (const auto& [node, rank] : rank_of_node) (*size_of_node)[node] = sizes[rank];
  // MPI only reads a window that others Get from; the signature is not const-correct.
  rc = MPI_Win_create(const_cast<void*>(base), static_cast<MPI_Aint>(bytes), /*disp_unit=*/1,
                      MPI_INFO_NULL, comm, win);
  if (rc != MPI_SUCCESS) return Status::Internal(MpiErrorText("MPI_Win_create", rc));
  MPI_Win_set_errhandler(*win, MPI_ERRORS_RETURN);
  rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, *win);
  if (rc != MPI_SUCCESS) {
    MPI_Win_free(win);
    return Status::Internal(MpiErrorText("MPI_Win_lock_all", rc));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::unique_ptr<MpiRmaWindow>> MpiRmaWindow::Create(MPI_Comm comm, void* arena,
                                                             size_t bytes,
                                                             const std::map<int, int>& rank_of_node,
                                                             const void* table,
                                                             size_t table_bytes) {
  int num_ranks = 0;
  MPI_Comm_size(comm, &num_ranks);
  // Every rank computes the same mapping, so a bad one fails everywhere and nobody is left
  // waiting in the collectives below.
  for (const auto& [node, rank] : rank_of_node) {
    if (rank < 0 || rank >= num_ranks) {
      return Status::InvalidArgument("node " + std::to_string(node) + " maps to rank " +
                                     std::to_string(rank) + ", outside a communicator of " +
                                     std::to_string(num_ranks) + " ranks");
    }
  }
  if (bytes > static_cast<size_t>(LLONG_MAX) || table_bytes > static_cast<size_t>(LLONG_MAX)) {
    return Status::InvalidArgument("arena of " + std::to_string(bytes) + " or table of " +
                                   std::to_string(table_bytes) + " bytes is too large");
  }

  // A duplicate with MPI_ERRORS_RETURN, so a failure comes back as a Status instead of
  // aborting the job, without changing the caller's communicator. The windows keep their own
  // reference, so the duplicate can be freed at once.
  MPI_Comm dup = MPI_COMM_NULL;
  int rc = MPI_Comm_dup(comm, &dup);
  if (rc != MPI_SUCCESS) return Status::Internal(MpiErrorText("MPI_Comm_dup", rc));
  MPI_Comm_set_errhandler(dup, MPI_ERRORS_RETURN);

  std::unique_ptr<MpiRmaWindow> window(new MpiRmaWindow());
  window->rank_of_node_ = rank_of_node;
  Status st = MakeWindow(dup, arena, bytes, rank_of_node, &window->win_, &window->window_size_);
  if (st.ok() && table != nullptr) {
    st = MakeWindow(dup, table, table_bytes, rank_of_node, &window->table_win_,
                    &window->table_size_);
    // A one-sided check of an entry must see the owner's plain stores to it; in the separate
    // model it might read a stale public copy. Then no table is offered: pulls ask the raylet.
    int* model = nullptr;
    int found = 0;
    if (st.ok()) MPI_Win_get_attr(window->table_win_, MPI_WIN_MODEL, &model, &found);
    if (st.ok() && (!found || *model != MPI_WIN_UNIFIED)) window->table_size_.clear();
  }
  MPI_Comm_free(&dup);
  if (!st.ok()) return st;  // the destructor frees a window already made (collective too)
  return window;
}

MpiRmaWindow::~MpiRmaWindow() {
  Status st = Close();
  if (!st.ok()) RAYMPI_LOG_ERROR("closing the object window: {}", st.ToString());
}

Status MpiRmaWindow::Close() {
  if (win_ == MPI_WIN_NULL && table_win_ == MPI_WIN_NULL) return Status::Ok();
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) {
    win_ = table_win_ = MPI_WIN_NULL;
    return Status::Internal("the object window outlived MPI_Finalize; it was never freed");
  }
  // The reads' destinations are in the caller's arena: they must land before anyone reuses it.
  for (auto& [handle, request] : requests_) MPI_Wait(&request, MPI_STATUS_IGNORE);
  requests_.clear();
  Status st = Status::Ok();
  for (MPI_Win* win : {&table_win_, &win_}) {
    if (*win == MPI_WIN_NULL) continue;
    int rc = MPI_Win_unlock_all(*win);
    if (rc != MPI_SUCCESS && st.ok()) st = Status::Internal(MpiErrorText("MPI_Win_unlock_all", rc));
    rc = MPI_Win_free(win);
    *win = MPI_WIN_NULL;
    if (rc != MPI_SUCCESS && st.ok()) st = Status::Internal(MpiErrorText("MPI_Win_free", rc));
  }
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
  return Read(win_, window_size_, node, offset, bytes, dest);
}

StatusOr<uint64_t> MpiRmaWindow::TableSize(int node) const {
  auto it = table_size_.find(node);
  if (it == table_size_.end()) return RmaReader::TableSize(node);
  return it->second;
}

StatusOr<RmaReader::Handle> MpiRmaWindow::StartEntryRead(int node, uint64_t table_slot,
                                                         void* dest) {
  if (table_win_ == MPI_WIN_NULL) return Status::Unavailable("the object window is closed");
  if (table_slot > UINT64_MAX / ObjectStore::kEntryBytes) {
    return Status::InvalidArgument("table slot " + std::to_string(table_slot) + " is impossible");
  }
  return Read(table_win_, table_size_, node, table_slot * ObjectStore::kEntryBytes,
              ObjectStore::kEntryBytes, dest);
}

StatusOr<RmaReader::Handle> MpiRmaWindow::Read(MPI_Win win,
                                               const std::unordered_map<int, uint64_t>& sizes,
                                               int node, uint64_t offset, size_t bytes,
                                               void* dest) {
  auto size = sizes.find(node);
  if (size == sizes.end()) {
    return Status::NotFound("no object window for node " + std::to_string(node));
  }
  RAYMPI_RETURN_IF_ERROR(CheckReadRange(node, size->second, offset, bytes));
  if (bytes > static_cast<size_t>(INT_MAX)) {
    return Status::InvalidArgument("one read is at most " + std::to_string(INT_MAX) +
                                   " bytes, asked " + std::to_string(bytes) +
                                   " (split it into chunks)");
  }
  MPI_Request request = MPI_REQUEST_NULL;
  int rc =
      MPI_Rget(dest, static_cast<int>(bytes), MPI_BYTE, rank_of_node_.at(node),
               static_cast<MPI_Aint>(offset), static_cast<int>(bytes), MPI_BYTE, win, &request);
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
