// The baseline of the task benchmark: raw MPI ping-pong between two ranks (OSU-style).
//   mpirun -n 2 bench/baseline/mpi_pingpong [--bytes N] [--iters N] [--warmup N] [--runs N]
// Rank 0 sends N bytes, rank 1 echoes them; each run is a warm-up followed by a timed loop, and
// the latency is the median over runs of (time / iterations / 2), i.e. half a round trip in us.
// Prints one machine-readable row `name,value,unit,baseline,ratio` (and a human line on
// stderr). Plain MPI, nothing of raympi: this is what the transport alone costs.
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Options {
  int bytes = 8;
  int iters = 20000;
  int warmup = 2000;
  int runs = 7;
};

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&](int* v) {
      if (i + 1 >= argc) return false;
      *v = std::atoi(argv[++i]);
      return true;
    };
    bool ok = (a == "--bytes" && next(&o->bytes)) || (a == "--iters" && next(&o->iters)) ||
              (a == "--warmup" && next(&o->warmup)) || (a == "--runs" && next(&o->runs));
    if (!ok) return false;
  }
  return o->bytes >= 0 && o->iters > 0 && o->warmup >= 0 && o->runs > 0;
}

// One exchange loop; returns the half round trip in microseconds (meaningful on rank 0).
double PingPong(int rank, std::vector<char>& buf, int iters) {
  const int n = static_cast<int>(buf.size());
  MPI_Barrier(MPI_COMM_WORLD);
  double start = MPI_Wtime();
  for (int i = 0; i < iters; ++i) {
    if (rank == 0) {
      MPI_Send(buf.data(), n, MPI_CHAR, 1, 0, MPI_COMM_WORLD);
      MPI_Recv(buf.data(), n, MPI_CHAR, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    } else if (rank == 1) {
      MPI_Recv(buf.data(), n, MPI_CHAR, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      MPI_Send(buf.data(), n, MPI_CHAR, 0, 0, MPI_COMM_WORLD);
    }
  }
  return (MPI_Wtime() - start) * 1e6 / iters / 2;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  Options options;
  if (!ParseOptions(argc, argv, &options) || size != 2) {
    if (rank == 0) {
      std::fprintf(stderr,
                   "usage: mpirun -n 2 mpi_pingpong [--bytes N] [--iters N] [--warmup N] "
                   "[--runs N]%s\n",
                   size != 2 ? " (needs exactly 2 ranks)" : "");
    }
    MPI_Finalize();
    return 2;
  }
  std::vector<char> buf(static_cast<size_t>(options.bytes), 'x');
  std::vector<double> half_rtt;
  for (int r = 0; r < options.runs; ++r) {
    if (options.warmup > 0) PingPong(rank, buf, options.warmup);
    half_rtt.push_back(PingPong(rank, buf, options.iters));
  }
  if (rank == 0) {
    std::vector<double> sorted = half_rtt;
    std::sort(sorted.begin(), sorted.end());
    double median = sorted[sorted.size() / 2];
    std::printf("mpi.pingpong_%dB.half_rtt,%.3f,us,,\n", options.bytes, median);
    std::fprintf(stderr,
                 "MPI ping-pong %d B: half round trip median %.3f us (min %.3f, max %.3f) over "
                 "%d runs of %d iterations after %d warm-up\n",
                 options.bytes, median, sorted.front(), sorted.back(), options.runs,
                 options.iters, options.warmup);
  }
  MPI_Finalize();
  return 0;
}
