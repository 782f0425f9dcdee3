// Two raylets' object planes over real MPI: each rank has an ObjectStore, an MpiRmaWindow over
// its arena and an ObjectManager; envelopes between the two travel as frames over MpiTransport.
// Rank 1 pulls a 64 MiB object from rank 0 (two waiters, one pull) and fails to fetch a missing
// one; then reads an object's table entry through the table window (one-sided pulls' check)
// while the object is sealed and after it is freed. The exit code is the number of failed
// checks over both ranks.
//   mpirun -n 2 rma_pull_test [object MiB]
#include <mpi.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "common/frame.h"
#include "common/logging.h"
#include "common/mpi_transport.h"
#include "objects/object_manager.h"
#include "objects/object_store.h"
#include "objects/rma_window.h"

namespace raympi {
namespace {

constexpr int kProcessSlot = 5;
constexpr int kOtherProcessSlot = 6;
const rpc::Address kOwner = MakeAddress(0, 3);  // the objects' owner, a process of node 0

ObjectId Id(uint32_t index) {
  ObjectId id;
  id.owner_node = 0;
  id.owner_slot = 3;
  id.owner_pid = 1;
  id.index = index;
  return id;
}

uint8_t PatternByte(size_t i) { return static_cast<uint8_t>((i * 131) ^ (i >> 13)); }

// One node of the test: a raylet's object plane and the messages for its processes.
class Node {
 public:
  Node(int node, ObjectStore* store, RmaReader* reader)
      : node_(node),
        transport_(MPI_COMM_WORLD, 7301),
        manager_(node, store, reader, [this](const rpc::Envelope& e) { Route(e); }) {}

  ObjectManager& manager() { return manager_; }
  const std::vector<rpc::Envelope>& for_processes() const { return for_processes_; }

  // One pass of a raylet's loop: receive, tick, move sends on.
  void Pass() {
    std::string frame;
    int source = 0;
    while (transport_.Poll(&frame, &source)) {
      rpc::Envelope e;
      Status st = DecodeFrame(frame, &e);
      CHECK(st.ok());
      if (st.ok()) Deliver(e);
    }
    manager_.Tick();
    transport_.Progress();
  }

  void Deliver(rpc::Envelope& e) {
    if (e.dst().slot() == kRayletSlot) {
      manager_.Handle(e);
    } else {
      for_processes_.push_back(e);
    }
  }

 private:
  // Node ids are ranks here. The manager never sends to its own raylet.
  void Route(const rpc::Envelope& e) {
    if (e.dst().node() != node_) {
      transport_.Send(e.dst().node(), EncodeFrame(e));
    } else {
      for_processes_.push_back(e);
    }
  }

  int node_;
  MpiTransport transport_;
  ObjectManager manager_;
  std::vector<rpc::Envelope> for_processes_;
};

rpc::Envelope Fetch(int slot, const ObjectId& id, uint64_t size) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(1, slot);
  *e.mutable_dst() = MakeAddress(1, kRayletSlot);
  e.mutable_fetch_object()->set_object_id(id.Binary());
  e.mutable_fetch_object()->set_node(0);
  e.mutable_fetch_object()->set_size(size);
  *e.mutable_fetch_object()->mutable_owner() = kOwner;
  return e;
}

void Run(int rank, size_t object_bytes, ObjectStore* store, RmaReader* reader) {
  Node node(rank, store, reader);
  const ObjectId big = Id(1), missing = Id(2);
  if (rank == 0) {
    auto buf = store->Create(big, object_bytes);
    CHECK(buf.ok());
    if (!buf.ok()) return;
    for (size_t i = 0; i < object_bytes; ++i) buf->data[i] = PatternByte(i);
    CHECK(store->Seal(big).ok());
  }
  MPI_Barrier(MPI_COMM_WORLD);  // the object exists before anyone asks for it

  const auto start = std::chrono::steady_clock::now();
  if (rank == 1) {
    for (rpc::Envelope e :
         {Fetch(kProcessSlot, big, object_bytes), Fetch(kOtherProcessSlot, big, object_bytes),
          Fetch(kProcessSlot, missing, 100)}) {
      node.Deliver(e);
    }
  }
  // Rank 1 is done with three answers; rank 0 once told of the copy and unpinned.
  auto done = [&] {
    if (rank == 1) return node.for_processes().size() == 3;
    const ObjectManagerStats stats = node.manager().stats();
    return node.for_processes().size() == 1 && stats.pulls_served == 1 &&
           stats.objects_pinned_for_peers == 0;
  };
  while (!done()) {
    node.Pass();
    if (std::chrono::steady_clock::now() - start > std::chrono::seconds(60)) {
      std::fprintf(stderr, "rank %d: no end after 60 s (%zu messages for processes)\n", rank,
                   node.for_processes().size());
      CHECK(false);
      return;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  if (rank == 0) {
    const rpc::Envelope& location = node.for_processes()[0];
    CHECK(location.has_object_location());
    CHECK(location.object_location().object_id() == big.Binary());
    CHECK(location.object_location().node() == 1);
    return;
  }
  int ok_replies = 0;
  for (const rpc::Envelope& e : node.for_processes()) {
    CHECK(e.has_object_fetched());
    if (e.object_fetched().object_id() == big.Binary()) {
      CHECK(e.object_fetched().error().empty());
      ok_replies += e.object_fetched().error().empty();
    } else {
      CHECK(e.object_fetched().error().find("is not in node 0's store") != std::string::npos);
    }
  }
  CHECK(ok_replies == 2);
  auto view = store->Get(big);
  CHECK(view.ok());
  if (view.ok()) {
    CHECK(view->size() == object_bytes);
    size_t wrong = 0;
    for (size_t i = 0; i < view->size(); ++i) wrong += view->data()[i] != PatternByte(i);
    if (wrong != 0) std::fprintf(stderr, "rank 1: %zu bytes differ\n", wrong);
    CHECK(wrong == 0);
  }
  const ObjectManagerStats stats = node.manager().stats();
  CHECK(stats.pulls_started == 2 && stats.pulls_completed == 1 && stats.pulls_failed == 1);
  CHECK(stats.bytes_pulled == object_bytes);
  std::printf("rma_pull_test: pulled %zu MiB in %.3f s (%.2f GB/s, message round trips included)\n",
              object_bytes >> 20, seconds, object_bytes / seconds / 1e9);
}

// Rank 1 reads the table entry of an object of rank 0 while it is sealed (it holds the object)
// and after rank 0 freed it (it no longer does).
void CheckEntryReads(int rank, ObjectStore* store, RmaReader* reader) {
  const ObjectId id = Id(3);
  MutableBuffer made;
  if (rank == 0) {
    auto buf = store->Create(id, 1000);
    CHECK(buf.ok());
    if (buf.ok()) made = *buf;
    CHECK(store->Seal(id).ok());
  }
  uint64_t hints[3] = {made.offset, made.table_slot, made.serial};
  MPI_Bcast(hints, 3, MPI_UINT64_T, 0, MPI_COMM_WORLD);
  for (bool freed : {false, true}) {
    if (rank == 0 && freed) CHECK(store->Delete(id).ok());
    MPI_Barrier(MPI_COMM_WORLD);  // rank 0 makes MPI calls here, as osc pt2pt needs
    if (rank == 1) {
      uint8_t entry[ObjectStore::kEntryBytes] = {};
      StatusOr<RmaReader::Handle> handle = reader->StartEntryRead(0, hints[1], entry);
      CHECK(handle.ok());
      while (handle.ok()) {
        StatusOr<bool> done = reader->Poll(*handle);
        CHECK(done.ok());
        if (!done.ok() || *done) break;
      }
      const bool holds =
          ObjectStore::EntryHolds(entry, id, hints[0], 1000, static_cast<uint32_t>(hints[2]));
      CHECK(holds == !freed);
      CHECK(!reader->StartEntryRead(0, uint64_t{1} << 40, entry).ok());  // outside the table
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
}

}  // namespace
}  // namespace raympi

int main(int argc, char** argv) {
  using namespace raympi;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  InitLogging("rma_pull_test");
  if (size != 2) {
    if (rank == 0) std::fprintf(stderr, "rma_pull_test needs exactly 2 ranks\n");
    MPI_Finalize();
    return 2;
  }
  const size_t object_bytes = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 64) << 20;

  // Named like a raylet's segments, so the janitor of a later job knows whose it is.
  const std::string name = "/raympi-p" + std::to_string(getpid()) + "-rma-pull-test";
  auto store = ObjectStore::Create(name, object_bytes + (4 << 20), 64);
  CHECK(store.ok());
  if (!store.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, store.status().ToString().c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  auto window = MpiRmaWindow::Create(MPI_COMM_WORLD, (*store)->arena(), (*store)->capacity(),
                                     {{0, 0}, {1, 1}}, (*store)->table(), (*store)->table_bytes());
  CHECK(window.ok());
  if (!window.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, window.status().ToString().c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  CHECK((*window)->WindowSize(1 - rank).ok() &&
        *(*window)->WindowSize(1 - rank) == (*store)->capacity());

  CHECK((*window)->TableSize(1 - rank).ok() &&
        *(*window)->TableSize(1 - rank) == (*store)->table_bytes());

  Run(rank, object_bytes, store->get(), window->get());
  CheckEntryReads(rank, store->get(), window->get());

  Status closed = (*window)->Close();  // collective
  CHECK(closed.ok());
  int mine = raympi_test::Failures(), total = 0;
  MPI_Allreduce(&mine, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) std::printf("rma_pull_test: %d failure(s)\n", total);
  window->reset();
  store->reset();
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
