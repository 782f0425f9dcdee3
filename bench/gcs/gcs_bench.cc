// GCS capacity: how many heartbeats (resource reports) per second rank 0's GcsServer absorbs
// while every other rank floods it, next to the same flood into a rank that only receives and
// drops the bytes (raw MPI, the baseline), and GcsServer::Handle alone, without MPI (the
// ceiling of the GCS's own code).
//   mpirun -n K bench/gcs/gcs_bench [--reports N] [--runs R]     (K >= 2)
// Each of the K-1 senders plays a node: it registers, then sends N reports as fast as MPI takes
// them, the way a raylet's heartbeat travels (a framed envelope over MpiTransport). Prints rows
// `name,value,unit,baseline,ratio`: the medians over R runs.
//
// Only heartbeats: raympi's GCS keeps no per-task table. Tasks go from owner to leased worker
// directly (Ray's direct path); the GCS sees leases' effects only through these reports.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/frame.h"
#include "common/logging.h"
#include "common/mpi_transport.h"
#include "gcs_rank/gcs_server.h"

namespace raympi {
namespace {

constexpr int kRawTag = 9101;

struct Options {
  int reports = 20000;  // per sender and run
  int runs = 5;
};

bool ParseOptions(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return false;
    int v = std::atoi(argv[++i]);
    if (a == "--reports") {
      o->reports = v;
    } else if (a == "--runs") {
      o->runs = v;
    } else {
      return false;
    }
  }
  return o->reports > 0 && o->runs > 0;
}

rpc::Envelope Registration(int node) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(node, kRayletSlot);
  *e.mutable_dst() = MakeAddress(kGcsNode, 0);
  rpc::NodeInfo* info = e.mutable_register_node()->mutable_info();
  info->set_node(node);
  info->set_host("bench");
  (*info->mutable_total()->mutable_amounts())["CPU"] = 64;
  return e;
}

// A heartbeat as a raylet sends it: the node's free resources.
rpc::Envelope Report(int node, int i) {
  rpc::Envelope e;
  *e.mutable_src() = MakeAddress(node, kRayletSlot);
  *e.mutable_dst() = MakeAddress(kGcsNode, 0);
  e.mutable_resource_report()->set_node(node);
  auto& amounts = *e.mutable_resource_report()->mutable_available()->mutable_amounts();
  amounts["CPU"] = i % 64;
  amounts["memory"] = 1e9;
  return e;
}

GcsServer::Callbacks QuietCallbacks() {
  GcsServer::Callbacks callbacks;
  callbacks.send = [](const rpc::Envelope&) {};
  callbacks.end_job = [](int) {};
  return callbacks;
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Rank 0: receives senders * n reports through MpiTransport into a GcsServer; reports/s.
double GcsReceive(int senders, int n, GcsServer* gcs) {
  MpiTransport transport(MPI_COMM_WORLD);
  MPI_Barrier(MPI_COMM_WORLD);
  auto start = std::chrono::steady_clock::now();
  std::string frame;
  rpc::Envelope envelope;
  int source = 0;
  for (long left = static_cast<long>(senders) * n; left > 0;) {
    if (!transport.Poll(&frame, &source)) continue;
    if (!DecodeFrame(frame, &envelope).ok()) std::abort();
    gcs->Handle(envelope);
    --left;
  }
  gcs->Tick();  // one view broadcast, as the event loop would do
  return static_cast<double>(senders) * n / Seconds(start);
}

void GcsSend(int rank, int n) {
  MpiTransport transport(MPI_COMM_WORLD);
  std::vector<std::string> frames;
  for (int i = 0; i < 64; ++i) frames.push_back(EncodeFrame(Report(rank, i)));
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 0; i < n; ++i) {
    transport.Send(0, frames[i % frames.size()]);
    // Keep the number of sends in flight bounded, as a raylet's loop does between passes.
    if (i % 64 == 63) {
      while (transport.Progress()) {
      }
    }
  }
  while (transport.Progress()) {
  }
}

// The baseline: the same bytes into a rank that only receives them (no decode, no GCS).
double RawReceive(int senders, int n, size_t bytes) {
  std::vector<char> buf(bytes + 64);
  MPI_Barrier(MPI_COMM_WORLD);
  auto start = std::chrono::steady_clock::now();
  for (long left = static_cast<long>(senders) * n; left > 0; --left) {
    MPI_Recv(buf.data(), static_cast<int>(buf.size()), MPI_CHAR, MPI_ANY_SOURCE, kRawTag,
             MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  }
  return static_cast<double>(senders) * n / Seconds(start);
}

void RawSend(int n, size_t bytes) {
  std::vector<char> buf(bytes, 'x');
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 0; i < n; ++i) {
    MPI_Send(buf.data(), static_cast<int>(bytes), MPI_CHAR, 0, kRawTag, MPI_COMM_WORLD);
  }
}

// GcsServer::Handle alone: decoded reports from `nodes` nodes, in one process.
double HandleOnly(int nodes, int n) {
  GcsServer gcs(QuietCallbacks());
  for (int node = 1; node <= nodes; ++node) {
    rpc::Envelope e = Registration(node);
    gcs.Handle(e);
  }
  std::vector<rpc::Envelope> reports;
  for (int node = 1; node <= nodes; ++node) reports.push_back(Report(node, node));
  auto start = std::chrono::steady_clock::now();
  long total = static_cast<long>(nodes) * n;
  for (long i = 0; i < total; ++i) gcs.Handle(reports[i % reports.size()]);
  gcs.Tick();
  return total / Seconds(start);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
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
  Options o;
  if (!ParseOptions(argc, argv, &o) || size < 2) {
    if (rank == 0) {
      std::fprintf(stderr, "usage: mpirun -n K gcs_bench [--reports N] [--runs R] (K >= 2)%s\n",
                   size < 2 ? ": needs at least 2 ranks" : "");
    }
    MPI_Finalize();
    return 2;
  }
  InitLogging("gcs-bench", "warn");
  const int senders = size - 1;
  const size_t frame_bytes = EncodeFrame(Report(1, 1)).size();
  GcsServer gcs(QuietCallbacks());
  for (int node = 1; rank == 0 && node <= senders; ++node) {
    rpc::Envelope e = Registration(node);
    gcs.Handle(e);
  }
  std::vector<double> through_gcs, raw, handle_only;
  for (int run = 0; run < o.runs; ++run) {
    if (rank == 0) {
      through_gcs.push_back(GcsReceive(senders, o.reports, &gcs));
      raw.push_back(RawReceive(senders, o.reports, frame_bytes));
      handle_only.push_back(HandleOnly(senders, o.reports));
    } else {
      GcsSend(rank, o.reports);
      RawSend(o.reports, frame_bytes);
    }
  }
  if (rank == 0) {
    double g = Median(through_gcs), r = Median(raw), h = Median(handle_only);
    std::printf("mpi.raw_heartbeat_messages.msgs_per_s,%.0f,msgs/s,,\n", r);
    std::printf("gcs.heartbeats.reports_per_s,%.0f,reports/s,%.0f,%.3f\n", g, r, g / r);
    std::printf("gcs.handle_only.reports_per_s,%.0f,reports/s,,\n", h);
    std::fprintf(stderr,
                 "GCS capacity, %d sender(s) x %d reports of %zu B: GCS absorbs %.0f/s, raw MPI "
                 "receive %.0f/s (%.2fx), GcsServer::Handle alone %.0f/s\n",
                 senders, o.reports, frame_bytes, g, r, g / r, h);
  }
  MPI_Finalize();
  return 0;
}
