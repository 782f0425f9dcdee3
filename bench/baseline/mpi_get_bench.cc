// One-sided transfer bandwidth between 2 ranks, raw and through the object plane:
//   mpirun -n 2 bench/baseline/mpi_get_bench [--skip-1g] [--runs N] [--chunk-mib N]
//                                            [--in-flight N]
// For 1 MiB, 64 MiB and 1 GiB, rank 1 reads rank 0's bytes into its own memory with
//   1. one MPI_Get from an MPI_Win_create window over a pre-faulted shm_open'ed arena (what
//      raylets expose), the baseline;
//   2. the same window read in MPI_Rget chunks, pipelined as MpiRmaWindow does (no messages);
//   3. one MPI_Get from an MPI_Win_allocate window (the MPI library's own memory), a reference;
//   4. a pull through two ObjectManagers + MpiRmaWindow over ObjectStores (chunked, pipelined,
//      with the PullRequest/PullReply/PullDone messages over MpiTransport).
// Each transfer runs once untimed (warm-up), then N timed runs (5N for 1 MiB), the four methods
// taking turns within a run; the median is reported, and the pull's ratio to the Get is the median
// of the per-run ratios (robust against a machine shared with other jobs). Prints machine-readable
// rows `name,value,unit,baseline,ratio` on stdout, a table on stderr.
#include <fcntl.h>
#include <mpi.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/frame.h"
#include "common/logging.h"
#include "common/mpi_transport.h"
#include "objects/object_manager.h"
#include "objects/object_store.h"
#include "objects/rma_window.h"

namespace raympi {
namespace {

struct Options {
  bool skip_1g = false;
  int runs = 5;
  size_t chunk_mib = 8;
  int in_flight = 4;
};

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--skip-1g") {
      o->skip_1g = true;
    } else if (a == "--runs" && i + 1 < argc) {
      o->runs = std::atoi(argv[++i]);
    } else if (a == "--chunk-mib" && i + 1 < argc) {
      o->chunk_mib = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--in-flight" && i + 1 < argc) {
      o->in_flight = std::atoi(argv[++i]);
    } else {
      return false;
    }
  }
  return o->runs > 0 && o->chunk_mib > 0 && o->in_flight > 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A pre-faulted shared-memory arena, as a raylet's store has. Unlinked at once: only the
// mapping lives on, so an aborted run leaves nothing in /dev/shm.
uint8_t* MapArena(size_t bytes) {
  const std::string name = "/raympi-p" + std::to_string(getpid()) + "-get-bench";
  int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  if (fd < 0) return nullptr;
  shm_unlink(name.c_str());
  void* p = MAP_FAILED;
  if (ftruncate(fd, static_cast<off_t>(bytes)) == 0) {
    p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  }
  close(fd);
  if (p == MAP_FAILED) return nullptr;
  std::memset(p, 0x5a, bytes);  // touch every page
  return static_cast<uint8_t*>(p);
}

// A window over `bytes` of pre-faulted memory: a shm arena (MPI_Win_create, as raylets) or
// the MPI library's own (MPI_Win_allocate). In a passive epoch for its whole life.
struct RawWindow {
  uint8_t* base = nullptr;
  size_t bytes = 0;
  bool allocated = false;
  MPI_Win win = MPI_WIN_NULL;

  static RawWindow Create(size_t bytes, bool allocate, int rank) {
    RawWindow w;
    w.bytes = bytes;
    w.allocated = allocate;
    if (allocate) {
      MPI_Win_allocate(static_cast<MPI_Aint>(bytes), 1, MPI_INFO_NULL, MPI_COMM_WORLD, &w.base,
                       &w.win);
      std::memset(w.base, 0x5a, bytes);
    } else {
      w.base = MapArena(bytes);
      if (w.base == nullptr) {
        std::fprintf(stderr, "rank %d: cannot map a %zu-byte arena\n", rank, bytes);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
      MPI_Win_create(w.base, static_cast<MPI_Aint>(bytes), 1, MPI_INFO_NULL, MPI_COMM_WORLD,
                     &w.win);
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, w.win);
    return w;
  }
  void Free() {
    MPI_Win_unlock_all(win);
    MPI_Win_free(&win);
    if (!allocated) munmap(base, bytes);
  }
};

// Rank 1 reads `bytes` of rank 0's window with one MPI_Get; returns the seconds it took.
double TimeGet(const RawWindow& w, size_t bytes) {
  const double start = MPI_Wtime();
  MPI_Get(w.base, static_cast<int>(bytes), MPI_BYTE, 0, 0, static_cast<int>(bytes), MPI_BYTE,
          w.win);
  MPI_Win_flush(0, w.win);
  return MPI_Wtime() - start;
}

// The same in chunks of MPI_Rget, `in_flight` at a time, completed by MPI_Test: what
// MpiRmaWindow does, without the object plane around it.
double TimeChunkedGet(const RawWindow& w, size_t bytes, size_t chunk, int in_flight) {
  const double start = MPI_Wtime();
  std::vector<MPI_Request> requests;
  size_t next = 0;
  while (next < bytes || !requests.empty()) {
    while (next < bytes && static_cast<int>(requests.size()) < in_flight) {
      const int n = static_cast<int>(std::min(chunk, bytes - next));
      requests.emplace_back();
      MPI_Rget(w.base + next, n, MPI_BYTE, 0, static_cast<MPI_Aint>(next), n, MPI_BYTE, w.win,
               &requests.back());
      next += n;
    }
    for (size_t i = 0; i < requests.size();) {
      int done = 0;
      MPI_Test(&requests[i], &done, MPI_STATUS_IGNORE);
      if (done) {
        requests.erase(requests.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
  }
  return MPI_Wtime() - start;
}

// ---- through the object plane -----------------------------------------------------------

ObjectId Id(uint32_t index) {
  ObjectId id;
  id.owner_node = 0;
  id.owner_slot = 3;
  id.owner_pid = 1;
  id.index = index;
  return id;
}

// A raylet's object plane and the envelopes for the processes of its node (node id = rank).
class Raylet {
 public:
  Raylet(int node, ObjectStore* store, RmaReader* reader, ObjectManagerConfig config)
      : node_(node),
        transport_(MPI_COMM_WORLD, 7401),
        manager_(
            node, store, reader, [this](const rpc::Envelope& e) { Route(e); }, config) {}

  ObjectManager& manager() { return manager_; }
  // One pass of the event loop; returns an envelope for a process if one arrived.
  bool Pass(rpc::Envelope* for_process) {
    std::string frame;
    int source = 0;
    while (transport_.Poll(&frame, &source)) {
      rpc::Envelope e;
      if (!DecodeFrame(frame, &e).ok()) continue;
      if (e.dst().slot() == kRayletSlot) {
        manager_.Handle(e);
      } else {
        local_.push_back(std::move(e));
      }
    }
    manager_.Tick();
    transport_.Progress();
    if (local_.empty()) return false;
    *for_process = std::move(local_.front());
    local_.erase(local_.begin());
    return true;
  }
  void Send(const rpc::Envelope& e) { Route(e); }

 private:
  void Route(const rpc::Envelope& e) {
    if (e.dst().node() != node_) {
      transport_.Send(e.dst().node(), EncodeFrame(e));
    } else {
      local_.push_back(e);
    }
  }
  int node_;
  MpiTransport transport_;
  ObjectManager manager_;
  std::vector<rpc::Envelope> local_;
};

// Rank 1: pulls object `id` from rank 0, checks two bytes, frees the copy; returns seconds.
double TimePull(Raylet& raylet, ObjectStore* store, const ObjectId& id, size_t bytes,
                uint8_t expected) {
  rpc::Envelope fetch;
  *fetch.mutable_src() = MakeAddress(1, 5);
  *fetch.mutable_dst() = MakeAddress(1, kRayletSlot);
  fetch.mutable_fetch_object()->set_object_id(id.Binary());
  fetch.mutable_fetch_object()->set_node(0);
  fetch.mutable_fetch_object()->set_size(bytes);
  rpc::Envelope in;
  const double start = MPI_Wtime();
  raylet.manager().Handle(fetch);
  while (!(raylet.Pass(&in) && in.has_object_fetched())) {
  }
  const double seconds = MPI_Wtime() - start;
  if (!in.object_fetched().error().empty()) {
    std::fprintf(stderr, "pull failed: %s\n", in.object_fetched().error().c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  auto view = store->Get(id);
  if (!view.ok() || view->data()[0] != expected || view->data()[bytes - 1] != expected) {
    std::fprintf(stderr, "pulled bytes are wrong\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  view->Reset();
  store->Delete(id);
  // Tell rank 0 this run is over (it serves until then).
  rpc::Envelope over;
  *over.mutable_dst() = MakeAddress(0, 9);
  over.mutable_shutdown();
  raylet.Send(over);
  return seconds;
}

// Rank 0: serves pulls until rank 1 says the run is over.
void ServeOneRun(Raylet& raylet) {
  rpc::Envelope in;
  while (!(raylet.Pass(&in) && in.has_shutdown())) {
  }
}

// GB/s of every timed run, per method.
struct Timings {
  std::vector<double> get, chunked, allocated, pull;
};

}  // namespace
}  // namespace raympi

int main(int argc, char** argv) {
  using namespace raympi;
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  InitLogging("mpi_get_bench");
  Options options;
  if (!ParseOptions(argc, argv, &options) || size != 2) {
    if (rank == 0) {
      std::fprintf(stderr,
                   "usage: mpirun -n 2 mpi_get_bench [--skip-1g] [--runs N] [--chunk-mib N] "
                   "[--in-flight N]%s\n",
                   size != 2 ? " (needs exactly 2 ranks)" : "");
    }
    MPI_Finalize();
    return 2;
  }
  std::vector<size_t> sizes = {1 << 20, 64 << 20};
  if (!options.skip_1g) sizes.push_back(size_t{1} << 30);
  const size_t max = sizes.back();
  size_t total = 0;
  for (size_t bytes : sizes) total += bytes;

  // Every window lives through the whole run, and the methods take turns within each run, so
  // the noise of a shared machine hits them alike.
  RawWindow created = RawWindow::Create(max, false, rank);
  RawWindow allocated = RawWindow::Create(max, true, rank);
  const std::string name = "/raympi-p" + std::to_string(getpid()) + "-get-bench-store";
  auto store = ObjectStore::Create(name, total + (4 << 20), 64);
  if (!store.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, store.status().ToString().c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  auto window = MpiRmaWindow::Create(MPI_COMM_WORLD, (*store)->arena(), (*store)->capacity(),
                                     {{0, 0}, {1, 1}});
  if (!window.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, window.status().ToString().c_str());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  if (rank == 0) {
    for (size_t i = 0; i < sizes.size(); ++i) {
      auto buf = (*store)->Create(Id(i), sizes[i]);
      if (!buf.ok()) MPI_Abort(MPI_COMM_WORLD, 1);
      std::memset(buf->data, static_cast<int>(i + 1), sizes[i]);
      (*store)->Seal(Id(i));
    }
  }
  ObjectManagerConfig config;
  config.chunk_bytes = options.chunk_mib << 20;
  config.max_chunks_in_flight = options.in_flight;
  std::vector<Timings> timings(sizes.size());
  {
    Raylet raylet(rank, store->get(), window->get(), config);
    for (size_t i = 0; i < sizes.size(); ++i) {
      const size_t bytes = sizes[i];
      // Small transfers take 5x the runs (as object_bench's): cheap, and noisy at ~100 us.
      const int runs = bytes <= (size_t{8} << 20) ? 5 * options.runs : options.runs;
      // Rank 0 writes the source bytes again before every read (untimed, same values), as a
      // task makes a new object before each of object_bench's Gets: otherwise a 1 MiB read
      // finds them in the reader's CPU cache from the run before (17.8 against 10.9 GB/s
      // here), which no transfer between nodes does.
      uint8_t* object = nullptr;
      if (rank == 0) object = (*store)->arena() + (*store)->Get(Id(i))->offset();
      auto produce = [&](uint8_t* source, uint8_t value) {
        if (rank == 0) std::memset(source, value, bytes);
        MPI_Barrier(MPI_COMM_WORLD);
      };
      for (int r = -1; r < runs; ++r) {                    // run -1 warms up
        double get = 0, chunked = 0, alloc = 0, pull = 0;  // seconds, on rank 1
        produce(created.base, 0x5a);
        if (rank == 1) get = TimeGet(created, bytes);
        produce(created.base, 0x5a);
        if (rank == 1)
          chunked = TimeChunkedGet(created, bytes, config.chunk_bytes, options.in_flight);
        produce(allocated.base, 0x5a);
        if (rank == 1) alloc = TimeGet(allocated, bytes);
        produce(object, static_cast<uint8_t>(i + 1));
        if (rank == 1) {
          pull = TimePull(raylet, store->get(), Id(i), bytes, static_cast<uint8_t>(i + 1));
        } else {
          ServeOneRun(raylet);
        }
        if (r < 0 || rank != 1) continue;
        timings[i].get.push_back(bytes / get / 1e9);
        timings[i].chunked.push_back(bytes / chunked / 1e9);
        timings[i].allocated.push_back(bytes / alloc / 1e9);
        timings[i].pull.push_back(bytes / pull / 1e9);
      }
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  (*window)->Close();  // collective
  allocated.Free();
  created.Free();

  if (rank == 1) {
    std::fprintf(stderr,
                 "one-sided reads, rank 1 <- rank 0: median GB/s of %d runs (5x for 1 MiB) after a "
                 "warm-up; "
                 "chunked Rget and pull: %zu MiB chunks, %d in flight\n",
                 options.runs, options.chunk_mib, options.in_flight);
    std::fprintf(stderr, "%8s %14s %14s %16s %14s %14s\n", "size", "Win_create Get", "chunked Rget",
                 "Win_allocate Get", "object pull", "pull / Get");
    for (size_t i = 0; i < sizes.size(); ++i) {
      const std::string label = std::to_string(sizes[i] >> 20) + "MiB";
      std::vector<double> ratios;  // paired: the pull and the Get of the same run
      for (size_t r = 0; r < timings[i].get.size(); ++r) {
        ratios.push_back(timings[i].pull[r] / timings[i].get[r]);
      }
      const double get = Median(timings[i].get), chunked = Median(timings[i].chunked),
                   alloc = Median(timings[i].allocated), pull = Median(timings[i].pull),
                   ratio = Median(ratios);
      std::fprintf(stderr, "%8s %14.2f %14.2f %16.2f %14.2f %14.2f\n", label.c_str(), get, chunked,
                   alloc, pull, ratio);
      std::printf("mpi.get_win_create_%s,%.3f,GB/s,,\n", label.c_str(), get);
      // Rows for bench/run: the ratios are computed there (bench/suite/report.py); the pull's
      // per-run median ratio, steadier on a shared machine, is its own row.
      std::printf("mpi.rget_chunked_%s,%.3f,GB/s,,\n", label.c_str(), chunked);
      std::printf("mpi.get_win_allocate_%s,%.3f,GB/s,,\n", label.c_str(), alloc);
      std::printf("objects.pull_%s,%.3f,GB/s,,\n", label.c_str(), pull);
      std::printf("objects.pull_%s_over_mpi_get.median_ratio,%.3f,x,,\n", label.c_str(), ratio);
    }
    std::fflush(stdout);
  }
  store->reset();
  MPI_Finalize();
  return 0;
}
